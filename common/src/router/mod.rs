//! The native guarded ROUTER: our own ZMTP 3.x server side over tokio TCP, for the Majordomo
//! broker's public endpoint. The guard's rules apply exactly as on the relay ([`crate::guard`]),
//! but with no private hop: the bytes are checked and decoded in one place and zeromq never
//! sees them.
//!
//! ```text
//! relay guard:  peer ──tcp──▶ guard ──unix──▶ zeromq ROUTER ──▶ broker     (4 syscalls a crossing)
//! native:       peer ──tcp──▶ Router (checker + codec) ──channel──▶ broker (1 syscall a crossing)
//! ```
//!
//! Admission is the guard's own code (`guard::admit`: `--allow`, `--max-connections`),
//! the bytes go through the guard's [`crate::guard::zmtp::Checker`] before they are parsed
//! (sizes refused from the header, before anything is allocated for the body), the handshake
//! deadline is `--handshake-ms`, and a broken rule closes the connection with the guard's
//! `W: guard <addr>: closed <peer>: <reason>` line, throttled the same way. With
//! `--curve-secret` each connection runs the pure [`crate::curve::server::Connection`] and the
//! plain stream it emits is decoded here; the client's authenticated key comes with
//! [`Event::Connected`].
//!
//! Per connection one task runs a small state machine over one `select!`: it decodes every
//! complete message of a read before reading again, hands them to the broker through one
//! bounded channel (shared by all connections, so a busy broker slows readers instead of
//! queueing without bound), and writes all the messages queued for the peer with one vectored
//! write per wake-up. Connect and disconnect events travel in the same channel as the messages:
//! in order, and never dropped (unlike zeromq's monitor).
//!
//! The broker's side ([`Router`]) is a ROUTER: messages arrive with the peer's routing id as
//! their first frame, and a message sent with a routing id as its first frame goes to that
//! peer, or fails with [`SendError::Unknown`] when no such peer is connected (like zeromq's
//! ROUTER, so the broker purges a worker whose send failed). Each peer has a queue of
//! [`PEER_QUEUE`] messages (libzmq's default high-water mark); when it is full, `send` waits up
//! to the caller's timeout and then fails with [`SendError::Timeout`].

pub mod codec;

use crate::curve::keys::PublicKey;
use crate::curve::server::{Connection, ServerKeys};
use crate::guard::{self, End, GuardConfig, Permit, Shared, ERROR_FLUSH};
use crate::msg::Message;
use bytes::{Bytes, BytesMut};
use codec::{Decoded, Decoder, WriteQueue};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Messages queued for one peer before `send` waits (libzmq's default `ZMQ_SNDHWM`).
pub const PEER_QUEUE: usize = 1000;
/// Items (messages, connects, disconnects) waiting for the broker, from all connections.
pub const INBOUND_QUEUE: usize = 4096;
/// Encoded bytes a connection holds for its peer before it stops taking from its queue.
pub const WRITE_HIGH_WATER: usize = 256 * 1024;

/// What the broker receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer finished its handshake; later messages from it carry `id`.
    Connected {
        /// Its routing id.
        id: Bytes,
        /// Its address.
        peer: SocketAddr,
        /// With CURVE, its authenticated long-term public key.
        client_key: Option<PublicKey>,
    },
    /// A message: the peer's routing id, then its frames.
    Message(Message),
    /// The peer's connection closed (after its last message). Always delivered.
    Disconnected(Bytes),
}

/// Why a send failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// No peer with that routing id is connected.
    #[error("no peer with that routing id")]
    Unknown,
    /// The peer's queue stayed full for the whole timeout.
    #[error("send timed out after {0:?}")]
    Timeout(Duration),
    /// A message needs a routing id frame.
    #[error("a message needs a routing id")]
    Empty,
}

/// What a connection hands the broker's side (a connect carries the peer's queue).
enum Inbound {
    Connected {
        id: Bytes,
        peer: SocketAddr,
        client_key: Option<PublicKey>,
        queue: mpsc::Sender<Message>,
    },
    Message(Message),
    Disconnected(Bytes),
}

/// The routing ids in use, and the next one to generate. Pure: no socket, no clock.
#[derive(Debug)]
pub struct RoutingIds {
    in_use: HashSet<Bytes>,
    next: u32,
}

impl RoutingIds {
    /// Generated ids start at `seed` (libzmq starts at a random number too).
    pub fn new(seed: u32) -> Self {
        Self {
            in_use: HashSet::new(),
            next: seed,
        }
    }

    /// The routing id of a peer that asked for `asked`: its own when non-empty and not in use
    /// (`true`), otherwise a fresh 5-byte one, `0x00` and a counter, as libzmq makes them
    /// (`false`: the peer's wish was refused).
    pub fn assign(&mut self, asked: Option<&Bytes>) -> (Bytes, bool) {
        if let Some(asked) = asked.filter(|a| !a.is_empty()) {
            if self.in_use.insert(asked.clone()) {
                return (asked.clone(), true);
            }
        }
        loop {
            let mut id = [0u8; 5];
            id[1..].copy_from_slice(&self.next.to_be_bytes());
            self.next = self.next.wrapping_add(1);
            let id = Bytes::copy_from_slice(&id);
            if self.in_use.insert(id.clone()) {
                return (id, asked.is_none_or(|a| a.is_empty()));
            }
        }
    }

    /// The id's connection closed: the id may be given again.
    pub fn release(&mut self, id: &Bytes) {
        self.in_use.remove(id);
    }
}

/// The broker's end of a native ROUTER bound on a public TCP address.
pub struct Router {
    local: SocketAddr,
    events: mpsc::Receiver<Inbound>,
    peers: HashMap<Bytes, mpsc::Sender<Message>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Router {
    fn drop(&mut self) {
        // Connections end by themselves: their queues and the event channel close.
        self.accept.abort();
    }
}

impl Router {
    /// Listens on `public` (`host:port`, port 0 picks one) with the guard's `config` (which
    /// must be enabled: `--no-guard` uses zeromq's ROUTER). Runs on the current runtime.
    pub async fn bind(public: &str, config: GuardConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(public).await?;
        let local = listener.local_addr()?;
        let shared = Shared::new(local, config, None)?;
        tracing::debug!("guard {local}: native ROUTER (no relay)");
        if let Some(keys) = shared.curve() {
            tracing::info!("guard {local}: CURVE server, public key {}", keys.public());
        }
        let (tx, events) = mpsc::channel(INBOUND_QUEUE);
        let seed = u32::from_be_bytes(crate::curve::protocol::random());
        let ids = Arc::new(Mutex::new(RoutingIds::new(seed)));
        let accept = tokio::spawn(accept_loop(listener, shared, ids, tx));
        Ok(Self {
            local,
            events,
            peers: HashMap::new(),
            accept,
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next event. Cancel-safe.
    pub async fn recv(&mut self) -> Event {
        loop {
            match self.events.recv().await {
                Some(item) => return self.absorb(item),
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// An event already waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.events.try_recv().ok().map(|item| self.absorb(item))
    }

    fn absorb(&mut self, item: Inbound) -> Event {
        match item {
            Inbound::Connected {
                id,
                peer,
                client_key,
                queue,
            } => {
                self.peers.insert(id.clone(), queue);
                Event::Connected {
                    id,
                    peer,
                    client_key,
                }
            }
            Inbound::Message(message) => Event::Message(message),
            Inbound::Disconnected(id) => {
                self.peers.remove(&id);
                Event::Disconnected(id)
            }
        }
    }

    /// Routing ids connected now.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// Queues `message` (routing id first) for its peer, waiting at most `timeout` for room.
    pub async fn send(&mut self, mut message: Message, timeout: Duration) -> Result<(), SendError> {
        let id = message.pop_front().ok_or(SendError::Empty)?;
        let queue = self.peers.get(&id).ok_or(SendError::Unknown)?;
        match queue.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Unknown),
            Err(mpsc::error::TrySendError::Full(message)) => {
                match tokio::time::timeout(timeout, queue.send(message)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(SendError::Unknown),
                    Err(_) => Err(SendError::Timeout(timeout)),
                }
            }
        }
    }
}

/// Admits peers by the guard's rules and starts a connection task for each.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    ids: Arc<Mutex<RoutingIds>>,
    events: mpsc::Sender<Inbound>,
) {
    loop {
        let (stream, peer, config, permit) = guard::admit(&listener, &shared).await;
        let curve = shared.curve();
        let ids = Arc::clone(&ids);
        let events = events.clone();
        tokio::spawn(serve(stream, peer, config, curve, permit, ids, events));
    }
}

/// Runs one connection, then reports why it ended and delivers its last events.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    config: GuardConfig,
    curve: Option<Arc<ServerKeys>>,
    permit: Permit,
    ids: Arc<Mutex<RoutingIds>>,
    events: mpsc::Sender<Inbound>,
) {
    let (rd, wr) = stream.into_split();
    let mut conn = Conn::new(peer, &config, curve, Arc::clone(&ids));
    let end = conn.run(rd, wr, &events, &config).await;
    permit.report(peer, end, &config);
    // Messages decoded before the close still count; the disconnect follows them, and only
    // then is the id free again (so a new peer's connect always comes after it).
    for item in conn.pending.drain(..) {
        let _ = events.send(item).await;
    }
    if let Some(id) = conn.id.take() {
        let _ = events.send(Inbound::Disconnected(id.clone())).await;
        ids.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(&id);
    }
}

/// One connection's state.
struct Conn {
    peer: SocketAddr,
    decoder: Decoder,
    /// The CURVE side, with its raw read buffer.
    curve: Option<(Connection, BytesMut)>,
    out: WriteQueue,
    /// Decoded items not yet taken by the broker's channel.
    pending: VecDeque<Inbound>,
    /// The routing id, once READY arrived.
    id: Option<Bytes>,
    ids: Arc<Mutex<RoutingIds>>,
    /// Our end of the peer's queue, given to the broker with the connect event.
    queue: Option<mpsc::Sender<Message>>,
    rx: mpsc::Receiver<Message>,
}

/// What stopped a connection's loop early.
enum Stop {
    End(End),
}

impl From<guard::zmtp::Violation> for Stop {
    fn from(v: guard::zmtp::Violation) -> Self {
        Stop::End(End::Violation(v))
    }
}

impl Conn {
    fn new(
        peer: SocketAddr,
        config: &GuardConfig,
        keys: Option<Arc<ServerKeys>>,
        ids: Arc<Mutex<RoutingIds>>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(PEER_QUEUE);
        let (decoder, curve) = match keys {
            None => (Decoder::new(config.max_msg_bytes), None),
            Some(keys) => (
                Decoder::prechecked(),
                Some((Connection::new(keys, config.max_msg_bytes), BytesMut::new())),
            ),
        };
        Self {
            peer,
            decoder,
            curve,
            out: WriteQueue::default(),
            pending: VecDeque::new(),
            id: None,
            ids,
            queue: Some(queue),
            rx,
        }
    }

    async fn run(
        &mut self,
        mut rd: OwnedReadHalf,
        mut wr: OwnedWriteHalf,
        events: &mpsc::Sender<Inbound>,
        config: &GuardConfig,
    ) -> End {
        let deadline = tokio::time::Instant::now() + config.handshake;
        if let Err(Stop::End(end)) = self.start() {
            return end;
        }
        let mut queue_open = true;
        loop {
            let handshaking = self.id.is_none();
            let result = tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline), if handshaking => {
                    return End::HandshakeTimeout;
                }
                permit = events.reserve(), if !self.pending.is_empty() => {
                    let Ok(permit) = permit else { return End::Closed };
                    self.deliver(permit, events);
                    Ok(())
                }
                message = self.rx.recv(), if !handshaking && queue_open
                    && self.out.len() < WRITE_HIGH_WATER => {
                    match message {
                        Some(message) => self.take_queue(message),
                        None => {
                            queue_open = false;
                            Ok(())
                        }
                    }
                }
                written = write_some(&mut wr, &self.out), if !self.out.is_empty() => {
                    match written {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(n) => {
                            self.out.consume(n);
                            Ok(())
                        }
                    }
                }
                read = read_some(&mut rd, &mut self.decoder, &mut self.curve),
                    if self.pending.is_empty() => match read {
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(_) => self.decode(),
                },
            };
            if let Err(Stop::End(end)) = result {
                // A CURVE ERROR command, when one is due, goes out before the close.
                self.flush_curve();
                if !self.out.is_empty() {
                    let slices_written = async {
                        while !self.out.is_empty() {
                            match write_some(&mut wr, &self.out).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => self.out.consume(n),
                            }
                        }
                    };
                    let _ = tokio::time::timeout(ERROR_FLUSH, slices_written).await;
                }
                return end;
            }
            if !queue_open && self.out.is_empty() {
                // The broker is gone and everything it sent is written.
                let _ = wr.shutdown().await;
                return End::Closed;
            }
        }
    }

    /// Our greeting and READY (through CURVE when it is on).
    fn start(&mut self) -> Result<(), Stop> {
        match &mut self.curve {
            None => codec::handshake(&mut self.out),
            Some((conn, _)) => {
                let mut plain = Vec::new();
                codec::handshake(&mut plain);
                conn.feed_server(&plain)
                    .map_err(|r| Stop::End(End::Curve(r)))?;
                self.flush_curve();
            }
        }
        Ok(())
    }

    /// Decodes every complete item of what was read.
    fn decode(&mut self) -> Result<(), Stop> {
        if let Some((conn, raw)) = &mut self.curve {
            let handled = conn.feed_peer(raw, crate::contract::now());
            raw.clear();
            let plain = conn.take_to_server();
            self.decoder.extend(&plain);
            self.flush_curve();
            handled.map_err(|r| Stop::End(End::Curve(r)))?;
        }
        self.decoder.received()?;
        while let Some(item) = self.decoder.decode()? {
            self.handle(item)?;
        }
        Ok(())
    }

    fn handle(&mut self, item: Decoded) -> Result<(), Stop> {
        match item {
            Decoded::Ready(ready) => {
                let (id, own) = self
                    .ids
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .assign(ready.identity.as_ref());
                if !own {
                    tracing::debug!(
                        "guard: {} asked for a routing id already in use; given another",
                        self.peer
                    );
                }
                let client_key = self.curve.as_ref().and_then(|(c, _)| c.client_key());
                if let Some(queue) = self.queue.take() {
                    self.pending.push_back(Inbound::Connected {
                        id: id.clone(),
                        peer: self.peer,
                        client_key,
                        queue,
                    });
                }
                self.id = Some(id);
            }
            Decoded::Ping { context } => self.write(|out| codec::pong(out, &context))?,
            Decoded::Ignored(name) => {
                tracing::debug!("guard: {} sent command {name:?}, ignored", self.peer);
            }
            Decoded::Message(frames) => {
                let mut message = Message::from_frames(frames);
                if let Some(id) = &self.id {
                    message.push_front(id.clone());
                }
                self.pending.push_back(Inbound::Message(message));
            }
        }
        Ok(())
    }

    /// Hands as many pending items to the broker as the channel takes now.
    fn deliver(&mut self, permit: mpsc::Permit<'_, Inbound>, events: &mpsc::Sender<Inbound>) {
        if let Some(item) = self.pending.pop_front() {
            permit.send(item);
        }
        while !self.pending.is_empty() {
            let Ok(permit) = events.try_reserve() else {
                return;
            };
            if let Some(item) = self.pending.pop_front() {
                permit.send(item);
            }
        }
    }

    /// Encodes `message` and everything else already queued for the peer (one write follows).
    fn take_queue(&mut self, message: Message) -> Result<(), Stop> {
        self.write(|out| codec::encode(out, message.into_frames().into_iter()))?;
        while self.out.len() < WRITE_HIGH_WATER {
            let Ok(message) = self.rx.try_recv() else {
                break;
            };
            self.write(|out| codec::encode(out, message.into_frames().into_iter()))?;
        }
        Ok(())
    }

    /// Queues bytes for the peer: as they are, or encrypted in MESSAGE boxes.
    fn write(&mut self, encode: impl FnOnce(&mut dyn codec::Sink)) -> Result<(), Stop> {
        match &mut self.curve {
            None => encode(&mut self.out),
            Some((conn, _)) => {
                let mut plain = Vec::new();
                encode(&mut plain);
                conn.feed_server(&plain)
                    .map_err(|r| Stop::End(End::Curve(r)))?;
                self.flush_curve();
            }
        }
        Ok(())
    }

    fn flush_curve(&mut self) {
        if let Some((conn, _)) = &mut self.curve {
            self.out.push(Bytes::from(conn.take_to_peer()));
        }
    }
}

/// One read: into the decoder's buffer, or into the raw buffer CURVE decrypts from.
async fn read_some(
    rd: &mut OwnedReadHalf,
    decoder: &mut Decoder,
    curve: &mut Option<(Connection, BytesMut)>,
) -> std::io::Result<usize> {
    match curve {
        None => rd.read_buf(decoder.read_buffer()).await,
        Some((_, raw)) => {
            raw.reserve(codec::FIRST_READ);
            rd.read_buf(raw).await
        }
    }
}

/// One vectored write of what is queued.
async fn write_some(wr: &mut OwnedWriteHalf, out: &WriteQueue) -> std::io::Result<usize> {
    let slices = out.slices();
    wr.write_vectored(&slices).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_in_use_is_not_given_twice() {
        let mut ids = RoutingIds::new(u32::MAX);
        let w = Bytes::from_static(b"worker");
        assert_eq!(ids.assign(Some(&w)), (w.clone(), true));
        let (other, own) = ids.assign(Some(&w));
        assert!(!own);
        assert_eq!(other, Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]));
        // Generated ids wrap and skip ids in use.
        let (next, own) = ids.assign(None);
        assert!(own, "nothing asked, nothing refused");
        assert_eq!(next, Bytes::from_static(&[0, 0, 0, 0, 0]));
        ids.release(&w);
        assert_eq!(ids.assign(Some(&w)), (w, true));
        let empty = Bytes::new();
        assert_eq!(ids.assign(Some(&empty)).0.len(), 5);
    }

    #[test]
    fn a_peer_asking_for_a_generated_id_in_use_gets_another() {
        let mut ids = RoutingIds::new(7);
        let (first, _) = ids.assign(None);
        let (second, own) = ids.assign(Some(&first));
        assert!(!own);
        assert_ne!(first, second);
    }
}
