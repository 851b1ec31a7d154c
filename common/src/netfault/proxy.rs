//! The I/O shell: a TCP listener, one task per relayed connection, and two [`Pipe`]s per
//! connection driven by the current [`Fault`].
//!
//! The current fault and a count of `reset` commands live in one `watch` channel: `apply` is a
//! plain synchronous store, and every connection task wakes on a change. Tasks live in a `JoinSet`
//! owned by the accept task, so dropping the last [`Proxy`] handle stops the listener and every
//! connection with it.

use super::command::{Command, Direction, Fault};
use super::pipe::{End, Flow, Pipe, Step};
use bytes::BytesMut;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Bytes read from a socket at once. Big enough that `pass` costs a few syscalls per 64 KiB.
const READ_CHUNK: usize = 64 * 1024;

/// What every connection task watches.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    fault: Fault,
    /// How many `reset` commands were applied: a connection started when this was `n` aborts as
    /// soon as it exceeds `n`.
    resets: u64,
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
    state: watch::Sender<State>,
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
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let (state, watcher) = watch::channel(State::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, watcher));
        Ok(Proxy {
            inner: Arc::new(Inner {
                local,
                upstream,
                state,
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
async fn accept_loop(listener: TcpListener, upstream: SocketAddr, watcher: watch::Receiver<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let epoch = watcher.borrow().resets;
                    connections.spawn(relay(client, peer, upstream, watcher.clone(), epoch));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("netfault: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow for ever.
            Some(_) = connections.join_next() => {}
        }
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
    mut watcher: watch::Receiver<State>,
    epoch: u64,
) {
    tracing::debug!("netfault: {peer} connected");
    // A handshake needs both directions; while either is held the connection hangs, as a connect
    // across a real partition does (the upstream sees nothing).
    let ready = wait_for(&mut watcher, |state| {
        state.resets > epoch
            || (Flow::of(state.fault, Direction::Upstream) != Flow::Held
                && Flow::of(state.fault, Direction::Downstream) != Flow::Held)
    })
    .await;
    let Some(state) = ready else { return };
    if state.resets > epoch {
        abort(&client, None);
        return;
    }
    let connected = tokio::select! {
        connected = TcpStream::connect(upstream) => connected,
        _ = reset_requested(watcher.clone(), epoch) => {
            abort(&client, None);
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
        let up = pump(Direction::Upstream, client_in, server_out, watcher.clone());
        let down = pump(
            Direction::Downstream,
            server_in,
            client_out,
            watcher.clone(),
        );
        tokio::select! {
            pumped = async { tokio::try_join!(up, down) } => match pumped {
                Ok(_) => Outcome::Closed,
                Err(_) => Outcome::Abort,
            },
            reset = reset_requested(watcher, epoch) => {
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

/// Makes the coming close send RST instead of FIN (SO_LINGER 0); the streams are dropped by the
/// caller right after.
fn abort(client: &TcpStream, server: Option<&TcpStream>) {
    for stream in std::iter::once(client).chain(server) {
        if let Err(e) = stream.set_zero_linger() {
            tracing::warn!("netfault: cannot set SO_LINGER 0: {e}");
        }
    }
}

/// Waits until `ready` holds for the current state and returns it; `None` if the proxy is gone.
async fn wait_for(
    watcher: &mut watch::Receiver<State>,
    ready: impl Fn(&State) -> bool,
) -> Option<State> {
    loop {
        let state = *watcher.borrow_and_update();
        if ready(&state) {
            return Some(state);
        }
        watcher.changed().await.ok()?;
    }
}

/// Resolves `true` once a `reset` newer than `epoch` is applied, `false` if the proxy is gone.
async fn reset_requested(mut watcher: watch::Receiver<State>, epoch: u64) -> bool {
    wait_for(&mut watcher, |state| state.resets > epoch)
        .await
        .is_some()
}

/// Moves one direction: reads from `from` into a [`Pipe`], writes what the current fault lets
/// out to `to`. Returns `Ok` after passing the sender's FIN on; `Err` when the connection must be
/// aborted (the sender's RST passed on, or the receiver gone).
async fn pump(
    direction: Direction,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut watcher: watch::Receiver<State>,
) -> io::Result<()> {
    let mut pipe = Pipe::new();
    let mut buffer = BytesMut::new();
    loop {
        let flow = Flow::of(watcher.borrow_and_update().fault, direction);
        // Write whatever may leave now. A write blocked by a slow receiver is backpressure: this
        // direction reads nothing meanwhile, as TCP would.
        let wake_at = loop {
            match pipe.poll(flow, Instant::now()) {
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
        if reading {
            // Reuses the same allocation once the bytes handed out before are written and dropped.
            buffer.reserve(READ_CHUNK);
        }
        // A disabled branch's future is still built, so give the sleep some instant.
        let sleep_until =
            wake_at.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            read = from.read_buf(&mut buffer), if reading => {
                let now = Instant::now();
                match read {
                    Ok(0) => pipe.push_end(End::Fin, now),
                    Ok(_) => pipe.push(buffer.split().freeze(), now),
                    Err(_) => pipe.push_end(End::Reset, now),
                }
            }
            _ = tokio::time::sleep_until(sleep_until.into()), if wake_at.is_some() => {}
            changed = watcher.changed() => {
                if changed.is_err() {
                    return Ok(()); // the proxy is gone
                }
            }
        }
    }
}
