//! The broker's I/O loop: one ROUTER socket around the pure [`crate::broker::Broker`].
//!
//! The ROUTER is [`Front`]: for a guarded `tcp://` endpoint (the default) it is the native
//! guarded ROUTER of [`common::router`] (the guard's rules and our own ZMTP codec on the public
//! port, no private relay hop); for `ipc://` endpoints and `--no-guard` it is zeromq's
//! `RouterSocket`. The loop below does not know which.
//!
//! The loop `select!`s over the socket, the core's next deadline and the shutdown future, and
//! makes no decisions. Two things keep it from ever being blocked by a peer:
//!
//! * every send is bounded by [`SEND_TIMEOUT`]: the `zeromq` crate's ROUTER *blocks* once a
//!   peer's queue holds 100 000 messages (libzmq would drop at its high-water mark). A send that
//!   timed out is reported to the core ([`Broker::handle_send_blocked`]), which pauses the peer
//!   for [`STUCK_PAUSE`]: its messages are dropped at once, like a libzmq ROUTER drops at the
//!   high-water mark, so a client that never reads its replies costs the broker at most one
//!   short wait per pause;
//! * messages already received are handled in batches (up to [`BATCH`] before sending), which
//!   keeps the per-message overhead of `select!` and the timer off the fast path;
//! * after each full batch the loop yields to the runtime. The socket's writer tasks share the
//!   broker's thread, and a `recv` that is always ready (a client flooding requests) never
//!   returns `Pending` by itself (the crate's futures do not take part in tokio's cooperative
//!   budget): without the yield, no reply to anyone would be written until the flood was
//!   read to its end (measured: 1.3–2 s stalls for a light client beside a 50,000-request
//!   flood).
//!
//! Peers that go away are reported to the core at once ([`Broker::handle_peer_lost`]), two
//! ways: the disconnect event ([`Lost::Closed`]: a killed worker is purged and its request
//! handed on, without waiting for its heartbeats to run out; the native ROUTER never drops
//! one, zeromq's socket monitor may), and a send that fails because the ROUTER no longer knows
//! the identity ([`Lost::Unreachable`], the backstop when a monitor event was missed).
//!
//! The core's [`Event`]s become the log lines `mdbroker` documents (one `match`). Lines caused by
//! peer input are throttled: at most [`LOG_BURST`] a second, then one line saying how many were
//! suppressed (at the next window or heartbeat tick), so a flood cannot become a log flood.

pub use crate::broker::STUCK_PAUSE;
use crate::broker::{Broker, BrokerConfig, Event, Lost, Offence};
use crate::ha::{self, PairedBroker, Transmit};
use binary_star::node::{self, Publish, Timing};
use binary_star::pair::{log_event, PeerInput, StateSockets};
use binary_star::Role;
use bytes::Bytes;
use common::busy_poll::BusyPoll;
use common::contract::{self, Core};
use common::guard;
use common::msg::frame_text as text;
use common::router::{self, Router};
use common::sock::{self, SockError};
use common::throttle::{Throttle, Verdict};
use common::Message;
use futures::StreamExt;
use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};
use zeromq::{RouterSocket, Socket, SocketEvent, SocketRecv, ZmqMessage, ZmqResult};

/// Longest wait for a peer's send queue to take a message.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(20);
/// Messages handled per wake-up before the replies they caused are sent.
pub const BATCH: usize = 64;
/// Log lines caused by peer input allowed per second before they are counted instead.
pub const LOG_BURST: u32 = 20;

/// What can stop the broker.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The endpoint could not be bound.
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        /// The endpoint asked for.
        endpoint: String,
        /// Why.
        source: SockError,
    },
}

/// One broker of a pair: its role, its state sockets and the pair's timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairConfig {
    /// Primary or backup.
    pub role: Role,
    /// Our state publisher (PUB, bound); the peer's `state_sub` connects here.
    pub state_pub: String,
    /// The peer's state publisher (our SUB connects to it).
    pub state_sub: String,
    /// State heartbeats and the peer's expiry; both brokers must use the same.
    pub timing: Timing,
}

/// The broker's ROUTER: the native guarded one on a guarded `tcp://` endpoint, zeromq's
/// otherwise (`ipc://`, `--no-guard`).
pub enum Front {
    /// [`common::router::Router`]: no relay hop, reliable connect/disconnect events.
    Native(Router),
    /// zeromq's ROUTER and its monitor (`None` once the monitor channel closed).
    Zmq(
        Box<RouterSocket>,
        Option<futures::channel::mpsc::Receiver<SocketEvent>>,
    ),
}

/// What the broker's ROUTER delivered.
enum Input {
    Message(Message),
    /// A peer's handshake done, with its authenticated CURVE key (native ROUTER only).
    Connected(Bytes, Option<common::curve::keys::PublicKey>),
    Disconnected(Bytes),
    /// Nothing for the core (a connect, another monitor event, a receive error logged).
    Nothing,
}

/// Why a send to a peer failed.
enum SendFailed {
    /// The peer's queue stayed full for [`SEND_TIMEOUT`].
    Timeout,
    /// The ROUTER does not know the peer (it has gone).
    Gone(String),
}

impl Front {
    /// Binds `endpoint` as the broker does: native for a guarded `tcp://`, zeromq otherwise.
    /// Returns the endpoint as bound (port resolved).
    async fn bind(endpoint: &str) -> Result<(Self, String), SockError> {
        let at = common::endpoint::bindable(endpoint);
        let config = guard::installed();
        match at.strip_prefix("tcp://") {
            Some(public) if config.enabled => {
                let router = Router::bind(public, config)
                    .await
                    .map_err(|e| SockError::Guard(at.clone(), e))?;
                let bound = format!("tcp://{}", router.local_addr());
                Ok((Self::Native(router), bound))
            }
            _ => {
                let mut socket = RouterSocket::new();
                let bound = sock::bind(&mut socket, &at).await?;
                let monitor = socket.monitor();
                Ok((Self::Zmq(Box::new(socket), Some(monitor)), bound))
            }
        }
    }

    /// The next input. Cancel-safe.
    async fn next(&mut self) -> Input {
        match self {
            Self::Native(router) => Self::native(router.recv().await),
            Self::Zmq(socket, monitor) => {
                let event = async {
                    match monitor {
                        Some(events) => events.next().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    received = socket.recv() => Self::zmq(received),
                    event = event => match event {
                        Some(SocketEvent::Disconnected(peer)) => {
                            Input::Disconnected(Bytes::from(peer))
                        }
                        Some(_) => Input::Nothing,
                        None => {
                            *monitor = None;
                            Input::Nothing
                        }
                    },
                }
            }
        }
    }

    /// An input already waiting, without waiting.
    async fn try_next(&mut self) -> Option<Input> {
        match self {
            Self::Native(router) => router.try_recv().map(Self::native),
            Self::Zmq(socket, _) => try_recv(socket).await.map(Self::zmq),
        }
    }

    fn native(event: router::Event) -> Input {
        match event {
            router::Event::Message(message) => Input::Message(message),
            router::Event::Disconnected(id) => Input::Disconnected(id),
            router::Event::Connected { id, client_key, .. } => Input::Connected(id, client_key),
        }
    }

    fn zmq(received: ZmqResult<ZmqMessage>) -> Input {
        match received {
            Ok(frames) => Input::Message(Message::from(frames)),
            Err(error) => {
                error!("receive failed: {error}");
                Input::Nothing
            }
        }
    }

    /// Sends `message` (routing id first), waiting at most [`SEND_TIMEOUT`] for room.
    async fn send(&mut self, message: Message) -> Result<(), SendFailed> {
        match self {
            Self::Native(router) => match router.send(message, SEND_TIMEOUT).await {
                Ok(()) => Ok(()),
                Err(router::SendError::Timeout(_)) => Err(SendFailed::Timeout),
                Err(e) => Err(SendFailed::Gone(e.to_string())),
            },
            Self::Zmq(socket, _) => {
                match sock::send(socket.as_mut(), message, SEND_TIMEOUT).await {
                    Ok(()) => Ok(()),
                    Err(SockError::Timeout(..)) => Err(SendFailed::Timeout),
                    Err(e) => Err(SendFailed::Gone(e.to_string())),
                }
            }
        }
    }
}

/// A bound broker, ready to [`run`](Server::run).
pub struct Server {
    front: Front,
    endpoint: String,
    config: BrokerConfig,
    /// `Some` for one broker of a pair.
    pair: Option<(PairConfig, StateSockets)>,
    /// How long the loop keeps polling after a message before it sleeps (zero: not at all).
    busy_poll: Duration,
}

impl Server {
    /// Binds `endpoint` (the Guide's `tcp://*:5555` notation is accepted) for a lone broker.
    pub async fn bind(endpoint: &str, config: BrokerConfig) -> Result<Self, ServerError> {
        let (front, bound) = Front::bind(endpoint)
            .await
            .map_err(|source| ServerError::Bind {
                endpoint: endpoint.to_owned(),
                source,
            })?;
        Ok(Self {
            front,
            endpoint: bound,
            config,
            pair: None,
            busy_poll: Duration::ZERO,
        })
    }

    /// Keep polling the sockets for `window` after each message instead of sleeping
    /// ([`common::busy_poll`]): faster round trips under load, one busy core while traffic
    /// flows. Zero (the default) turns it off.
    pub fn with_busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = window;
        self
    }

    /// Binds `endpoint` and the state publisher of one broker of a pair ([`crate::ha`]), and
    /// starts connecting to the peer's state publisher.
    pub async fn bind_pair(
        endpoint: &str,
        config: BrokerConfig,
        pair: PairConfig,
    ) -> Result<Self, ServerError> {
        let mut server = Self::bind(endpoint, config).await?;
        let state = StateSockets::bind(&pair.state_pub, &pair.state_sub, pair.timing)
            .await
            .map_err(|source| ServerError::Bind {
                endpoint: pair.state_pub.clone(),
                source,
            })?;
        server.pair = Some((pair, state));
        Ok(server)
    }

    /// The endpoint actually bound (port resolved when `:0` was asked).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The state publisher's endpoint as bound, for a broker of a pair.
    pub fn state_endpoint(&self) -> Option<&str> {
        self.pair.as_ref().map(|(_, state)| state.pub_endpoint())
    }

    /// Serves until `shutdown` resolves; then sends DISCONNECT to every worker and returns.
    ///
    /// Logs `I: mdbroker ready on <endpoint>` first (a broker of a pair adds its role and
    /// state endpoints).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            front: mut socket,
            endpoint,
            config,
            pair,
            busy_poll,
        } = self;
        let busy_poll = BusyPoll::start(busy_poll);
        let now = contract::now();
        let (core, mut state) = match pair {
            None => {
                info!("mdbroker ready on {endpoint}");
                (Kind::Lone(Box::new(Broker::new(config, now))), None)
            }
            Some((pair, state)) => {
                info!(
                    "mdbroker ready on {endpoint} as {} (state-pub {}, state-sub {}, heartbeat {} ms, liveness {})",
                    pair.role,
                    state.pub_endpoint(),
                    pair.state_sub,
                    pair.timing.heartbeat.as_millis(),
                    pair.timing.liveness
                );
                let core = PairedBroker::new(pair.role, pair.timing, config, now);
                (Kind::Pair(Box::new(core)), Some(state))
            }
        };
        let mut shell = Shell {
            core,
            throttle: PeerLines(Throttle::new(LOG_BURST)),
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    shell.shutdown(contract::now());
                    shell.flush(&mut socket, &mut state).await;
                    // No LINGER: give the writers a moment to put the DISCONNECTs on the wire.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    info!("mdbroker interrupted, shutting down");
                    return;
                }
                received = socket.next() => {
                    let now = contract::now();
                    shell.handle(received, now);
                    let mut handled = 1;
                    while handled < BATCH {
                        match socket.try_next().await {
                            Some(received) => shell.handle(received, now),
                            None => break,
                        }
                        handled += 1;
                    }
                    if shell.poll_timeout().is_some_and(|at| at <= now) {
                        shell.timeout(now);
                    }
                    shell.log_events(now);
                    shell.flush(&mut socket, &mut state).await;
                    if let Some(poller) = &busy_poll {
                        poller.touch(now);
                    }
                    // A full batch: more is waiting and `recv` would never return `Pending`.
                    // Otherwise the next `select!` waits, and the writers run then (later, so
                    // they write more messages per system call).
                    if handled == BATCH {
                        tokio::task::yield_now().await;
                    }
                    continue;
                }
                Some(input) = peer_input(&mut state) => {
                    let now = contract::now();
                    shell.peer_input(input, now);
                    shell.log_events(now);
                }
                () = contract::sleep_until(shell.poll_timeout()) => {
                    let now = contract::now();
                    shell.timeout(now);
                    shell.log_events(now);
                }
            }
            shell.flush(&mut socket, &mut state).await;
        }
    }
}

/// The next input from the pair's peer; never ready for a lone broker.
async fn peer_input(state: &mut Option<StateSockets>) -> Option<PeerInput> {
    match state {
        Some(state) => state.recv().await,
        None => std::future::pending().await,
    }
}

/// Polls `recv` once: a message already queued, or `None` without waiting.
async fn try_recv(socket: &mut RouterSocket) -> Option<ZmqResult<ZmqMessage>> {
    let mut receiving = socket.recv();
    poll_fn(|cx| match receiving.as_mut().poll(cx) {
        Poll::Ready(received) => Poll::Ready(Some(received)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The core of a lone broker, or of one broker of a pair.
enum Kind {
    Lone(Box<Broker>),
    Pair(Box<PairedBroker>),
}

/// What the core asks to send.
enum Out {
    Router(Message),
    State(Publish),
}

/// The core and the log throttle.
struct Shell {
    core: Kind,
    throttle: PeerLines,
}

impl Shell {
    fn handle(&mut self, received: Input, now: Instant) {
        match received {
            Input::Message(frames) => {
                debug!("received\n{}", frames.dump());
                match &mut self.core {
                    Kind::Lone(broker) => broker.handle_message(frames, now),
                    Kind::Pair(paired) => paired.handle_message(frames, now),
                }
            }
            Input::Disconnected(peer) => self.peer_lost(&peer, Lost::Closed, now),
            Input::Connected(peer, key) => match &mut self.core {
                Kind::Lone(broker) => broker.handle_connected(&peer, key, now),
                Kind::Pair(paired) => paired.handle_connected(&peer, key, now),
            },
            Input::Nothing => {}
        }
    }

    fn peer_lost(&mut self, peer: &Bytes, lost: Lost, now: Instant) {
        match &mut self.core {
            Kind::Lone(broker) => broker.handle_peer_lost(peer, lost, now),
            Kind::Pair(paired) => paired.handle_peer_lost(peer, lost, now),
        }
    }

    fn send_blocked(&mut self, peer: &Bytes, now: Instant) {
        match &mut self.core {
            Kind::Lone(broker) => broker.handle_send_blocked(peer, now),
            Kind::Pair(paired) => paired.handle_send_blocked(peer, now),
        }
        self.log_events(now);
    }

    fn shutdown(&mut self, now: Instant) {
        match &mut self.core {
            Kind::Lone(broker) => broker.handle_shutdown(now),
            Kind::Pair(paired) => paired.handle_shutdown(now),
        }
    }

    fn timeout(&mut self, now: Instant) {
        match &mut self.core {
            Kind::Lone(broker) => broker.handle_timeout(now),
            Kind::Pair(paired) => paired.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.core {
            Kind::Lone(broker) => broker.poll_timeout(),
            Kind::Pair(paired) => paired.poll_timeout(),
        }
    }

    fn poll_transmit(&mut self) -> Option<Out> {
        match &mut self.core {
            Kind::Lone(broker) => broker.poll_transmit().map(Out::Router),
            Kind::Pair(paired) => paired.poll_transmit().map(|t| match t {
                Transmit::Router(message) => Out::Router(message),
                Transmit::State(publish) => Out::State(publish),
            }),
        }
    }

    /// A state message (or the link coming up) from the pair's peer.
    fn peer_input(&mut self, input: PeerInput, now: Instant) {
        let Kind::Pair(paired) = &mut self.core else {
            return;
        };
        match input {
            PeerInput::LinkUp => paired.handle_link_up(now),
            PeerInput::State(Ok(message), _) => paired.handle_peer(message, now),
            PeerInput::State(Err(e), frames) => {
                if self.throttle.allow(now) {
                    error!("bad state message from peer: {e}, ignored");
                }
                debug!("state from peer:\n{}", frames.dump());
            }
        }
    }

    /// Logs the core's events: a lone broker's are the broker's, a pair's add the node's.
    fn log_events(&mut self, now: Instant) {
        loop {
            let event = match &mut self.core {
                Kind::Lone(broker) => broker.poll_event(),
                Kind::Pair(paired) => match paired.poll_event() {
                    Some(ha::Event::Broker(event)) => Some(event),
                    Some(event) => {
                        log_pair_event(event, &mut self.throttle, now);
                        continue;
                    }
                    None => None,
                },
            };
            match event {
                Some(event) => log_broker_event(event, &mut self.throttle, now),
                None => return,
            }
        }
    }

    /// Sends the core's output, never waiting long for one peer.
    async fn flush(&mut self, socket: &mut Front, state: &mut Option<StateSockets>) {
        while let Some(out) = self.poll_transmit() {
            let message = match out {
                Out::Router(message) => message,
                Out::State(publish) => {
                    if let Some(state) = state {
                        state.publish(publish).await;
                    }
                    continue;
                }
            };
            let Some(peer) = message.first().cloned() else {
                continue;
            };
            debug!("sending\n{}", message.dump());
            match socket.send(message).await {
                Ok(()) => {}
                // The core pauses the peer and purges a worker (its requests go on).
                Err(SendFailed::Timeout) => self.send_blocked(&peer, contract::now()),
                // The ROUTER no longer knows the peer: it has gone away. A worker's request goes
                // to the next worker (this loop sends it on).
                Err(SendFailed::Gone(error)) => {
                    debug!("send to {} failed: {error}", text(&peer));
                    let now = contract::now();
                    self.peer_lost(&peer, Lost::Unreachable, now);
                    self.log_events(now);
                }
            }
        }
        // What the core decided while dropping messages to paused peers (purged workers).
        self.log_events(contract::now());
    }
}

/// Logs one broker event as the line `mdbroker` documents; lines caused by peer input pass the
/// throttle (`if p.allow(now)`) first.
fn log_broker_event(event: Event, p: &mut PeerLines, now: Instant) {
    let next = |in_flight: usize| match in_flight {
        0 => String::new(),
        1 => " (its request goes to the next worker)".to_owned(),
        n => format!(" (its {n} requests go to the next workers)"),
    };
    match event {
        Event::Malformed(e) if p.allow(now) => error!("malformed message dropped: {e}"),
        Event::NotReading { peer, pause } => warn!(
            "peer {} is not reading; dropping messages to it for {} ms",
            text(&peer),
            pause.as_millis()
        ),
        Event::BadEnvelope(n) if p.allow(now) => {
            error!("worker message with a {n}-frame envelope dropped")
        }
        Event::WorkerReady { id, service } => {
            info!("worker {} ready for service {}", text(&id), text(&service))
        }
        Event::WorkerLeft { id, in_flight } => {
            info!("worker {} disconnected{}", text(&id), next(in_flight))
        }
        Event::CreditLimited {
            id,
            asked,
            granted,
            why,
        } if p.allow(now) => {
            let id = text(&id);
            match why {
                crate::credit::Limit::NoRequestIds => warn!(
                    "worker {id} asked for credit {asked} without request ids: served one request at a time"
                ),
                crate::credit::Limit::Max | crate::credit::Limit::Zero => {
                    warn!("worker {id} asked for credit {asked}: served {granted}")
                }
            }
        }
        Event::UnknownLeft(id) => {
            debug!("DISCONNECT from unknown worker {} ignored", text(&id))
        }
        Event::WorkerGone {
            id,
            unreachable,
            in_flight,
        } if p.allow(now) => {
            let why = if unreachable {
                "unreachable"
            } else {
                "disconnected"
            };
            warn!("worker {} {why}, purged{}", text(&id), next(in_flight))
        }
        Event::WorkerExpired { id, in_flight } => {
            let lost = match in_flight {
                0 => String::new(),
                1 => " (its request is lost)".to_owned(),
                n => format!(" (its {n} requests are lost)"),
            };
            warn!("worker {} expired, purged{lost}", text(&id))
        }
        Event::Disconnected { id, why } if p.allow(now) => {
            let id = text(&id);
            let what = match why {
                Offence::SecondReady => format!("worker {id} sent a second READY"),
                Offence::ReservedService(s) => {
                    format!("worker {id} may not offer reserved service {}", text(&s))
                }
                Offence::ReplyWhileIdle => format!("REPLY from idle worker {id}"),
                Offence::ReplyToUnknownRequest => {
                    format!("REPLY from worker {id} to no request out at it")
                }
                Offence::ReplyFromUnknown => format!("REPLY from unknown worker {id}"),
                Offence::UnknownHeartbeat => format!("HEARTBEAT from unknown worker {id}"),
                Offence::RequestToBroker => format!("REQUEST sent to the broker by {id}"),
                Offence::KeyNotAllowed { service, key } => format!(
                    "worker {id} may not offer service {}: key {} not in --worker-keys",
                    text(&service),
                    key.map_or_else(|| "none (no CURVE)".to_owned(), |k| k.to_z85())
                ),
            };
            warn!("{what}, disconnected")
        }
        Event::ClientGone {
            client,
            kept,
            dropped,
        } => {
            let client = text(&client);
            if kept > 0 && p.allow(now) {
                info!("client {client} disconnected, {kept} of its waiting requests kept for a retry from another address");
            }
            if dropped > 0 && p.allow(now) {
                warn!(
                    "client {client} disconnected, its {dropped} waiting requests dropped"
                );
            }
        }
        Event::QueueFull {
            service,
            waiting,
            bytes,
            client,
            evicted,
        } if p.allow(now) => {
            let (service, client) = (text(&service), text(&client));
            let full = format!(
                "queue of service {service} full ({waiting} waiting, {bytes} bytes)"
            );
            match evicted {
                None => warn!("{full}, request from {client} dropped"),
                Some(n) => warn!("{full}, {n} newest requests of its biggest client dropped for {client}"),
            }
        }
        Event::Expired {
            service,
            count,
            after,
            at_dispatch,
        } if p.allow(now) => {
            let (service, ms) = (text(&service), after.as_millis());
            match at_dispatch {
                true => warn!("request for {service} expired after {ms} ms in queue, dropped"),
                false => warn!("{count} request(s) for {service} expired after {ms} ms in queue, dropped"),
            }
        }
        Event::RetryJoined { rid, service } if p.allow(now) => {
            let service = text(&service);
            info!("retry of request {rid} for {service} joined the running one")
        }
        Event::RetryReplayed { rid, service } if p.allow(now) => {
            let service = text(&service);
            info!("retry of request {rid} for {service} answered from memory")
        }
        Event::DedupForgot {
            forgotten: f,
            ttl,
            max_entries,
        } => {
            let (aged, evicted, ttl) = (f.aged, f.evicted, ttl.as_millis());
            if aged > 0 {
                info!("dedup forgot {aged} request ids older than {ttl} ms");
            }
            if evicted > 0 {
                let young = f.evicted_age.unwrap_or_default().as_millis();
                warn!("dedup store full ({max_entries} ids): forgot {evicted} request ids early, the youngest {young} ms old");
            }
        }
        Event::Tick => p.report(),
        Event::Fenced { id, rid, senior } => warn!(
            "worker {} refused request {rid}: the other broker is {senior}, standing down",
            text(&id)
        ),
        Event::AnsweredElsewhere { id, rid, delivered } if delivered > 0 => info!(
            "reply to request {rid} from worker {} (dispatched by the other broker) sent to {delivered} client(s)",
            text(&id)
        ),
        Event::AnsweredElsewhere { id, rid, .. } => debug!(
            "worker {} reported the reply to request {rid} of the other broker",
            text(&id)
        ),
        Event::StoodDown { dropped } if dropped > 0 => warn!(
            "no longer active: {dropped} waiting requests dropped (their clients retry at the active broker)"
        ),
        Event::StoodDown { .. } => {}
        Event::Answered { count } => info!("answered a client request (count={count})"),
        Event::MisplacedPairFrames(id) if p.allow(now) => {
            error!("worker {} sent broker-pair frames only a broker sends, dropped", text(&id))
        }
        Event::StreamTruncated { service, parts } if p.allow(now) => warn!(
            "streamed reply of {} too long for a 0.1 client: its {parts} partial(s) dropped, final sent",
            text(&service)
        ),
        _ => {} // throttled
    }
}

/// Logs one event of a broker pair that is not the broker core's: the node's (the lines every
/// Binary Star server prints), and client requests dropped because this broker must not serve.
fn log_pair_event(event: ha::Event, p: &mut PeerLines, now: Instant) {
    match event {
        ha::Event::Pair(node::Event::Resumed) => info!("resumed after stall"),
        ha::Event::Pair(event) => log_event(&event),
        ha::Event::Rejected { state, why, first } if first && p.allow(now) => {
            warn!("request dropped in state {state}: {why}")
        }
        ha::Event::Rejected { state, why, .. } => debug!("request dropped in state {state}: {why}"),
        ha::Event::HeldFull if p.allow(now) => warn!("too many held requests, dropped one"),
        ha::Event::Fatal(fatal) => error!("fatal error - {fatal}"),
        ha::Event::HeldFull | ha::Event::Broker(_) => {}
    }
}

/// The throttle on log lines caused by peer input, so floods are summarised, not printed.
struct PeerLines(Throttle);

impl PeerLines {
    /// Whether to print a line now; first reports the lines suppressed in the last window.
    fn allow(&mut self, now: Instant) -> bool {
        match self.0.allow(now) {
            Verdict::Log { suppressed } => {
                report_suppressed(suppressed);
                true
            }
            Verdict::Suppress => false,
        }
    }

    /// Reports the lines suppressed so far (on the heartbeat tick).
    fn report(&mut self) {
        report_suppressed(self.0.take_suppressed());
    }
}

fn report_suppressed(count: u64) {
    if count > 0 {
        warn!("{count} more warnings about peer input suppressed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_input_lines_are_throttled_per_second() {
        let t0 = Instant::now();
        let mut lines = PeerLines(Throttle::new(LOG_BURST));
        let allowed = (0..100).filter(|_| lines.allow(t0)).count();
        assert_eq!(allowed, LOG_BURST as usize);
        assert_eq!(lines.0.take_suppressed(), 100 - u64::from(LOG_BURST));
        // The next window allows a burst again, with nothing left to report.
        assert!(lines.allow(t0 + Duration::from_secs(1)));
        assert_eq!(lines.0.take_suppressed(), 0);
    }
}
