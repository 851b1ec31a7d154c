//! The I/O shell: a TCP listener, one task per relayed connection, and two [`Pipe`]s per
//! connection driven by the current [`Fault`].
//!
//! The current fault and a count of `reset` commands live in one `watch` channel: `apply` is a
//! plain synchronous store, and every connection task wakes on a change. Tasks live in a `JoinSet`
//! owned by the accept task, so dropping the last [`Proxy`] handle stops the listener and every
//! connection with it.

use super::command::{Command, Direction, Fault};
use super::pipe::{next_retransmission, End, Flow, Pipe, Step, SYN_RTO};
use crate::contract;
use bytes::BytesMut;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Bytes read from a socket at once. Big enough that `pass` costs a few syscalls per 64 KiB.
const READ_CHUNK: usize = 64 * 1024;
/// Below this much free space left in the read buffer, a new one is taken. Until then small reads
/// share one allocation: held chunks keep their buffer alive, so taking a fresh 64 KiB for every
/// 10-byte heartbeat held in a partition would hold thousands of times the bytes it counts.
const MIN_SPARE: usize = 4 * 1024;

/// What every connection task watches.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    fault: Fault,
    /// How many `reset` commands were applied: a connection started when this was `n` aborts as
    /// soon as it exceeds `n`.
    resets: u64,
}

/// How a [`Proxy`] behaves beyond the current [`Fault`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Heal as a real network does: bytes that waited in a hold arrive at the sender's next TCP
    /// retransmission (Linux's back-off from a 200 ms timeout, doubling: after a 10 s partition
    /// up to 6.4 s after the heal), and a connection accepted during the hold reaches the server
    /// at the client's next SYN retry (1, 3, 7, 15 s … after it connected). Off by default: then
    /// everything held flows the moment the link heals, which makes recovery look faster than
    /// it is on a real network.
    pub tcp_backoff: bool,
}

/// A running fault proxy: a handle, cheap to clone. The last handle dropped stops the listener and
/// closes every relayed connection.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    local: SocketAddr,
    upstream: SocketAddr,
    options: Options,
    state: watch::Sender<State>,
    /// Relayed connections alive now (also those hanging in a partition).
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("listen", &self.inner.local)
            .field("upstream", &self.inner.upstream)
            .field("fault", &self.fault())
            .finish()
    }
}

impl Proxy {
    /// Listens on `listen` (port 0: the OS picks one, see [`local_addr`](Self::local_addr)) and
    /// relays every accepted connection to `upstream`, starting in [`Fault::Pass`]. Must be called
    /// inside a tokio runtime; the proxy runs on it until the last handle is dropped.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> io::Result<Proxy> {
        Proxy::start_with(listen, upstream, Options::default()).await
    }

    /// [`start`](Self::start) with [`Options`].
    pub async fn start_with(
        listen: SocketAddr,
        upstream: SocketAddr,
        options: Options,
    ) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let (state, watcher) = watch::channel(State::default());
        let connections = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            options,
            watcher,
            Arc::clone(&connections),
        ));
        Ok(Proxy {
            inner: Arc::new(Inner {
                local,
                upstream,
                options,
                state,
                connections,
                accept,
            }),
        })
    }

    /// The address the proxy listens on (with the OS-assigned port if started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The address every connection is relayed to.
    pub fn upstream(&self) -> SocketAddr {
        self.inner.upstream
    }

    /// The options it was started with.
    pub fn options(&self) -> Options {
        self.inner.options
    }

    /// How many connections the proxy relays now, counting those that hang in a partition (the
    /// kernel accepted them; the proxy took them from its backlog). Lets a test wait until a
    /// connection is in place before it applies a fault.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// Applies a command. Synchronous (callable from non-async code) and immediate: every
    /// connection sees it at its next wake-up, which the change itself triggers.
    pub fn apply(&self, command: Command) {
        self.inner.state.send_modify(|state| match command {
            Command::Set(fault) => state.fault = fault,
            Command::Heal => state.fault = Fault::Pass,
            Command::Reset => state.resets += 1,
        });
    }

    /// The current fault.
    pub fn fault(&self) -> Fault {
        self.inner.state.borrow().fault
    }
}

/// Accepts connections for ever, each in its own task. Connections are accepted in every mode:
/// during a partition the kernel completes the client's handshake, as it would for a listener
/// whose host is cut off only further along the path; nothing more happens until it heals.
async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    options: Options,
    watcher: watch::Receiver<State>,
    counter: Arc<AtomicUsize>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    // A reset applied from now on aborts this connection. One applied an instant
                    // before, while its handshake waited in the backlog, does not: a client that
                    // connects right after a reset must never be aborted by it, since most of
                    // the zeromq crate's sockets never reconnect by themselves.
                    let epoch = watcher.borrow().resets;
                    let live = Live::new(&counter);
                    let watcher = watcher.clone();
                    connections.spawn(async move {
                        relay(client, peer, upstream, options, watcher, epoch).await;
                        drop(live);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("netfault: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow for ever.
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Counts a relayed connection in [`Proxy::connections`] while it lives.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(counter: &Arc<AtomicUsize>) -> Live {
        counter.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(counter))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a relayed connection ended.
enum Outcome {
    /// Both directions ended cleanly (FIN passed on each way): close normally.
    Closed,
    /// A `reset` command, a peer's RST, or a failed write: abort both sides with RST.
    Abort,
    /// The proxy was dropped.
    Stopped,
}

/// Relays one client connection: waits until the fault lets a TCP handshake through, connects to
/// the upstream, then pumps both directions until they end or a reset aborts them.
async fn relay(
    mut client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    options: Options,
    mut watcher: watch::Receiver<State>,
    epoch: u64,
) {
    tracing::debug!("netfault: {peer} connected");
    let accepted = contract::now();
    if !link_up(&mut watcher, epoch, options.tcp_backoff.then_some(accepted)).await {
        // A reset, or the proxy is gone.
        abort(&client, None);
        return;
    }
    let connect = TcpStream::connect(upstream);
    tokio::pin!(connect);
    let connected = tokio::select! {
        connected = &mut connect => connected,
        _ = reset_requested(watcher.clone(), epoch) => {
            abort(&client, None);
            // The kernel may have completed the connect already: reset that side too, rather
            // than let a dropped socket send the server a FIN.
            if let Ok(Ok(server)) = tokio::time::timeout(Duration::from_millis(100), connect).await {
                abort(&server, None);
            }
            return;
        }
    };
    let mut server = match connected {
        Ok(server) => server,
        Err(e) => {
            // What a client of a dead server sees, as near as an accepted connection allows.
            tracing::warn!("netfault: cannot connect {peer} to {upstream}: {e}");
            abort(&client, None);
            return;
        }
    };
    // Relay each write at once: Nagle's algorithm in the proxy would add latency the direct
    // path does not have.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let outcome = {
        let (client_in, client_out) = client.split();
        let (server_in, server_out) = server.split();
        let pipe = || {
            if options.tcp_backoff {
                Pipe::with_tcp_backoff()
            } else {
                Pipe::new()
            }
        };
        let up = pump(Direction::Upstream, pipe(), client_in, server_out, &watcher);
        let down = pump(
            Direction::Downstream,
            pipe(),
            server_in,
            client_out,
            &watcher,
        );
        tokio::select! {
            pumped = async { tokio::try_join!(up, down) } => match pumped {
                Ok(_) => Outcome::Closed,
                Err(_) => Outcome::Abort,
            },
            reset = reset_requested(watcher.clone(), epoch) => {
                if reset { Outcome::Abort } else { Outcome::Stopped }
            }
        }
    };
    match outcome {
        Outcome::Abort => {
            tracing::debug!("netfault: {peer} aborted (RST both ways)");
            abort(&client, Some(&server));
        }
        Outcome::Closed | Outcome::Stopped => tracing::debug!("netfault: {peer} closed"),
    }
}

/// Waits until the link lets a TCP handshake through: both directions must flow, so while either
/// is held the connection hangs, as a connect across a real partition does (the upstream sees
/// nothing). With `syn_sent` (TCP back-off on), a connection that had to wait goes through only at
/// the client's next SYN retry. Returns `false` on a `reset` newer than `epoch` or when the proxy
/// is gone.
async fn link_up(
    watcher: &mut watch::Receiver<State>,
    epoch: u64,
    syn_sent: Option<Instant>,
) -> bool {
    let handshake_passes = |state: &State| {
        Flow::of(state.fault, Direction::Upstream) != Flow::Held
            && Flow::of(state.fault, Direction::Downstream) != Flow::Held
    };
    let mut waited = false;
    loop {
        let state = *watcher.borrow_and_update();
        if state.resets > epoch {
            return false;
        }
        if !handshake_passes(&state) {
            waited = true;
            if watcher.changed().await.is_err() {
                return false;
            }
            continue;
        }
        let Some(syn_sent) = syn_sent.filter(|_| waited) else {
            return true;
        };
        let retry = next_retransmission(syn_sent, SYN_RTO, contract::now());
        tokio::select! {
            () = contract::sleep_until(Some(retry)) => return true,
            // A new partition or a reset before the retry: look again.
            changed = watcher.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Makes the coming close send RST instead of FIN (SO_LINGER 0); the streams are dropped by the
/// caller right after.
fn abort(stream: &TcpStream, other: Option<&TcpStream>) {
    for stream in std::iter::once(stream).chain(other) {
        if let Err(e) = stream.set_zero_linger() {
            tracing::warn!("netfault: cannot set SO_LINGER 0: {e}");
        }
    }
}

/// Resolves `true` once a `reset` newer than `epoch` is applied, `false` if the proxy is gone.
async fn reset_requested(mut watcher: watch::Receiver<State>, epoch: u64) -> bool {
    loop {
        if watcher.borrow_and_update().resets > epoch {
            return true;
        }
        if watcher.changed().await.is_err() {
            return false;
        }
    }
}

/// Moves one direction: reads from `from` into a [`Pipe`], writes what the current fault lets
/// out to `to`. Returns `Ok` after passing the sender's FIN on; `Err` when the connection must be
/// aborted (the sender's RST passed on, or the receiver gone).
async fn pump(
    direction: Direction,
    mut pipe: Pipe,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    watcher: &watch::Receiver<State>,
) -> io::Result<()> {
    let mut watcher = watcher.clone();
    let mut buffer = BytesMut::new();
    loop {
        let flow = Flow::of(watcher.borrow_and_update().fault, direction);
        // Write whatever may leave now. A write blocked by a slow receiver is backpressure: this
        // direction reads nothing meanwhile, as TCP would.
        let wake_at = loop {
            match pipe.poll(flow, contract::now()) {
                Step::Write(bytes) => to.write_all(&bytes).await?,
                Step::Finish(End::Fin) => {
                    to.shutdown().await?;
                    return Ok(());
                }
                Step::Finish(End::Reset) => return Err(io::ErrorKind::ConnectionReset.into()),
                Step::Wait(at) => break at,
            }
        };
        let reading = pipe.wants_input();
        if reading && buffer.capacity() - buffer.len() < MIN_SPARE {
            // Reuses the same allocation once the bytes handed out before are written and dropped.
            buffer.reserve(READ_CHUNK);
        }
        tokio::select! {
            read = from.read_buf(&mut buffer), if reading => {
                let now = contract::now();
                match read {
                    Ok(0) => pipe.push_end(End::Fin, now),
                    Ok(_) => pipe.push(buffer.split().freeze(), now),
                    Err(_) => pipe.push_end(End::Reset, now),
                }
            }
            () = contract::sleep_until(wake_at) => {}
            changed = watcher.changed() => {
                if changed.is_err() {
                    return Ok(()); // the proxy is gone
                }
            }
        }
    }
}
