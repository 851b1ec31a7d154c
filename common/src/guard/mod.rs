//! The ingress guard: no bytes from the network reach the `zeromq` decoder unchecked.
//!
//! The `zeromq` crate's decoder trusts the length a frame header announces: it reserves that
//! many bytes before reading them, so one 10-byte header announcing 2^62 bytes aborts the whole
//! process, and it has no maximum message size, no handshake deadline and no connection limit.
//! None of that can be configured, so every public TCP endpoint is owned by a guard instead:
//!
//! ```text
//! peer ──tcp──▶ guard (public address) ──private unix socket──▶ zeromq socket
//!               checks greeting + frame headers, limits, allowlist
//! ```
//!
//! [`crate::sock::bind`] — the one bind helper every program uses — binds the zeromq socket on
//! a private Unix socket ([`private`]: a fresh directory only the server's user can enter,
//! removed when the guard stops) and starts a guard on the address the user asked for, so no
//! server can bind around it. A Unix hop costs far less CPU than a loopback TCP one (measured
//! with mdbench), and unlike a loopback port or an abstract socket, other users of the host
//! cannot reach it. Per connection the guard runs two pumps in one task: peer → server bytes
//! go through the pure [`zmtp::Checker`] (headers parsed, bodies skipped by counting, one copy
//! from the read buffer to the socket); server → peer bytes are relayed unchecked. A violation
//! closes both sides with one `W:` line naming the peer and the reason.
//!
//! Limits (flags in [`crate::cli::GuardArgs`], defaults here): frame and message size
//! (`--max-msg-bytes`), handshake deadline (`--handshake-ms`), open connections
//! (`--max-connections`), source addresses (`--allow`).
//!
//! With `--curve-secret FILE` ([`CurveConfig`]) the guard is a CURVE server instead of a
//! checking relay: the pure [`crate::curve::server::Connection`] does the handshake with the
//! peer, speaks NULL to zeromq on the peer's behalf and turns MESSAGEs into plain frames and
//! back, with every limit above applied to the decrypted frames (`--curve-allow DIR` admits
//! only the client keys filed there; re-read when DIR changes and on SIGHUP).
//!
//! **The native path.** The Majordomo broker's public endpoint does without the relay: it is a
//! [`crate::router::Router`], our own ZMTP server side, which admits peers with this module's
//! `admit` (same `--allow`, `--max-connections`), feeds every byte to the same
//! [`zmtp::Checker`] before decoding it, applies `--handshake-ms` and CURVE the same way and
//! logs the same lines (`Permit::report`). zeromq never sees those bytes and there is no
//! private socket behind that port. Every other server keeps the relay.
//!
//! What the guard changes for the server: zeromq sees every peer as coming from 127.0.0.1 (the
//! real address is in the guard's log lines), and a peer's TCP close reaches zeromq as the
//! guard closing its relay connection, at once, so socket monitors still report it.
//!
//! Log lines (a stable contract; at most [`WARN_BURST`] a second per endpoint):
//!
//! | line | when |
//! |---|---|
//! | `W: guard <public addr>: closed <peer addr>: <reason>` | a rule broken (size, greeting, flags, handshake deadline) |
//! | `W: guard <public addr>: refused <peer addr>: … (--max-connections N)` / `… not in --allow` | connection refused at accept |
//! | `W: guard <public addr>: N more warnings suppressed` | before the next line after a throttled burst |
//! | `D: guard <public addr>: relaying to zeromq on …` | guard started (`-v`) |
//! | `I: guard <public addr>: CURVE server, public key <Z85>` | guard started with `--curve-secret` |
//! | `W: guard <public addr>: closed <peer addr>: CURVE client key <Z85> not allowed` | a client key outside `--curve-allow` (other CURVE refusals name their reason the same way) |
//!
//! `ipc://` endpoints are not guarded: the socket file's permissions decide who can connect
//! (a Unix socket needs write permission to connect to), and anyone who can is trusted as a
//! process of the server's own user is. See the README's Security section for the whole model.
//!
//! | module | what it holds |
//! |---|---|
//! | [`zmtp`] | the pure checker: greeting and frame headers fed in any chunking |
//! | [`allow`] | `--allow CIDR` address blocks |
//! | [`private`] | the private Unix socket behind every guard: a fresh mode-0700 directory |

pub mod allow;
pub mod private;
pub mod zmtp;

use crate::curve::server::{Connection, Refusal, ServerKeys};
use crate::throttle::{self, Throttle};
use allow::Cidr;
use private::PrivateSocket;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use zmtp::{Checker, Violation};

/// Default `--max-msg-bytes`: 16 MiB, far above any message the patterns send.
pub const DEFAULT_MAX_MSG_BYTES: u64 = 16 * 1024 * 1024;
/// What `--max-msg-bytes` accepts: at least 1 KiB, so a handshake and a small message still
/// fit (each frame counts 64 bytes on top of its body); at most 1 GiB, far below the sizes the
/// limit exists to stop (a header announcing 2^62 bytes), since zeromq allocates a frame's
/// announced length at once.
pub const MSG_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1024..=1 << 30;
/// Default `--max-connections`. Each guarded connection costs three descriptors (the peer's,
/// the relay's and zeromq's), so 256 stays well inside the usual limit of 1,024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// What `--max-connections` accepts: up to about a third of the descriptors the guard asks
/// for ([`raise_descriptor_limit`]); past that, running out of descriptors refuses first.
pub const CONNECTIONS_RANGE: std::ops::RangeInclusive<u64> = 1..=20_000;
/// Default `--handshake-ms`: a peer on loopback or a LAN greets in milliseconds.
pub const DEFAULT_HANDSHAKE: Duration = Duration::from_secs(5);
/// Warnings a guard logs per second before it counts the rest instead.
pub const WARN_BURST: u32 = 10;
/// Bytes a relay reads at most at once: a pipelined burst crosses in one or two reads.
const CHUNK: usize = 64 * 1024;
/// Bytes a relay starts with, per direction: an idle connection holds only this much (a broker
/// with hundreds of mostly idle workers must not hold 128 KiB for each); a read that fills the
/// buffer doubles it, up to [`CHUNK`].
const FIRST_CHUNK: usize = 4 * 1024;
/// Pause after a failed `accept` (e.g. out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a guard enforces. [`Default`] is the safe configuration every server gets when no flag
/// is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// False only with `--no-guard` (benchmarking): binds go straight to zeromq.
    pub enabled: bool,
    /// Largest frame, and largest message (frames chained by MORE), in bytes.
    pub max_msg_bytes: u64,
    /// Connections open at once per guarded endpoint; one more is refused.
    pub max_connections: usize,
    /// Time from accept to a complete greeting and READY command.
    pub handshake: Duration,
    /// Source address blocks accepted; empty accepts all.
    pub allow: Vec<Cidr>,
    /// `--curve-secret` (and `--curve-allow`): speak CURVE to peers instead of relaying NULL.
    pub curve: Option<CurveConfig>,
}

/// The guard's CURVE server settings (see [`crate::curve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveConfig {
    /// The server's long-term key pair (`--curve-secret FILE`).
    pub pair: crate::curve::keys::KeyPair,
    /// Only clients whose public key has a zcert file here are admitted (`--curve-allow DIR`);
    /// `None` admits any client that completes the handshake.
    pub allow: Option<std::path::PathBuf>,
}

impl CurveConfig {
    /// The keys every connection of one guard shares; reads the allow directory once and
    /// re-reads it on each SIGHUP while the guard's runtime runs.
    fn server_keys(&self) -> std::io::Result<Arc<ServerKeys>> {
        let allow: crate::curve::server::AllowFn = match &self.allow {
            None => Box::new(|_| true),
            Some(path) => {
                let dir = crate::curve::AllowDir::open(path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("--curve-allow {}: {e}", path.display()))
                })?;
                tracing::info!(
                    "guard: {} client keys allowed from {}",
                    dir.len(),
                    path.display()
                );
                let dir = Arc::new(dir);
                reload_on_sighup(Arc::downgrade(&dir));
                Box::new(move |key| dir.permits(key))
            }
        };
        Ok(Arc::new(ServerKeys::new(self.pair.clone(), allow)))
    }
}

/// Re-reads `--curve-allow` on every SIGHUP until the guard holding it is gone. Installing the
/// handler means SIGHUP no longer ends the process, which is what a server with keys to reload
/// wants (as sshd and nginx do).
fn reload_on_sighup(dir: std::sync::Weak<crate::curve::AllowDir>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("guard: cannot watch SIGHUP; --curve-allow is re-read only when it changes");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(dir) = dir.upgrade() else { return };
            dir.reload();
        }
    });
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_msg_bytes: DEFAULT_MAX_MSG_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake: DEFAULT_HANDSHAKE,
            allow: Vec::new(),
            curve: None,
        }
    }
}

/// Where a guard relays to: the zeromq socket's private Unix socket ([`private`]). Cloned into
/// each connect; the directory goes when the last clone does.
#[derive(Debug, Clone)]
pub struct Upstream(Arc<PrivateSocket>);

impl Upstream {
    /// The upstream behind `socket`.
    pub fn new(socket: PrivateSocket) -> Self {
        Self(Arc::new(socket))
    }

    async fn connect(&self) -> std::io::Result<UnixStream> {
        UnixStream::connect(self.0.path()).await
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix {}", self.0.path().display())
    }
}

/// The configuration [`crate::sock::bind`] applies; `None` until a binary installs its flags.
static INSTALLED: RwLock<Option<GuardConfig>> = RwLock::new(None);

/// Sets the configuration for every later bind in this process (a binary calls this once, from
/// its `--max-msg-bytes` … flags). Without it, binds get [`GuardConfig::default`]. A global
/// because the bind helper is shared by every pattern: no server can forget to pass it.
pub fn install(config: GuardConfig) {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = Some(config);
}

/// Descriptors a process asks for at most when it raises its soft limit.
const WANTED_DESCRIPTORS: u64 = 65_536;

/// Raises the soft limit on open descriptors towards the hard one (at most
/// 65,536): each guarded connection takes three descriptors, so a server with
/// two guarded endpoints at the default `--max-connections` needs about 1,536, more than the
/// common soft limit of 1,024. Returns the soft limit now in force, if it could be read.
pub fn raise_descriptor_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let want = hard.min(WANTED_DESCRIPTORS);
    if soft < want && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() {
        tracing::debug!("guard: descriptor limit raised from {soft} to {want}");
        return Some(want);
    }
    Some(soft)
}

/// The configuration binds use now.
pub fn installed() -> GuardConfig {
    INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_default()
}

/// State shared by a guard's accept loop and its connections (also the native ROUTER's,
/// [`crate::router`], which applies the same admission rules and log lines).
pub(crate) struct Shared {
    /// The public address, as logged.
    public: SocketAddr,
    /// Where the zeromq socket listens; replaced when the same address is bound again. `None`
    /// for the native ROUTER (no relay).
    upstream: Mutex<Option<Upstream>>,
    config: Mutex<GuardConfig>,
    /// The CURVE keys when `config.curve` is set (built once per guard: cookie keys, allow-list).
    curve: Mutex<Option<Arc<ServerKeys>>>,
    open: AtomicUsize,
    alive: AtomicBool,
    throttle: Mutex<Throttle>,
}

impl Shared {
    /// State for an endpoint listening on `public`; `upstream` is the relay's target.
    pub(crate) fn new(
        public: SocketAddr,
        config: GuardConfig,
        upstream: Option<Upstream>,
    ) -> std::io::Result<Arc<Self>> {
        let curve = match &config.curve {
            Some(curve) => Some(curve.server_keys()?),
            None => None,
        };
        Ok(Arc::new(Self {
            public,
            upstream: Mutex::new(upstream),
            config: Mutex::new(config),
            curve: Mutex::new(curve),
            open: AtomicUsize::new(0),
            alive: AtomicBool::new(true),
            throttle: Mutex::new(Throttle::new(WARN_BURST)),
        }))
    }

    fn upstream(&self) -> Option<Upstream> {
        self.upstream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn curve(&self) -> Option<Arc<ServerKeys>> {
        self.curve
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn config(&self) -> GuardConfig {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Logs one `W:` line unless this guard already logged a burst this second.
    pub(crate) fn warn(&self, line: std::fmt::Arguments<'_>) {
        let now = crate::contract::now();
        let mut throttle = self.throttle.lock().unwrap_or_else(PoisonError::into_inner);
        match throttle.allow(now) {
            throttle::Verdict::Log { suppressed } => {
                if suppressed > 0 {
                    tracing::warn!(
                        "guard {}: {suppressed} more warnings suppressed",
                        self.public
                    );
                }
                tracing::warn!("guard {}: {line}", self.public);
            }
            throttle::Verdict::Suppress => {}
        }
    }
}

/// Guards started in this process, by public address, so binding an address again (a server
/// restarted inside one process) points the running guard at the new socket.
static GUARDS: Mutex<Option<HashMap<SocketAddr, Arc<Shared>>>> = Mutex::new(None);

/// Marks a guard dead when its accept loop ends (or its runtime is dropped).
struct AliveMark(Arc<Shared>);

impl Drop for AliveMark {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::SeqCst);
        let mut guards = GUARDS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(map) = guards.as_mut() {
            if map
                .get(&self.0.public)
                .is_some_and(|s| Arc::ptr_eq(s, &self.0))
            {
                map.remove(&self.0.public);
            }
        }
    }
}

/// Starts a guard listening on `public` (`host:port`, port 0 picks one) that relays checked
/// bytes to `upstream`; returns the address it listens on. The guard runs on the current tokio
/// runtime until the zeromq socket behind it is gone (a relay connect is refused) or the
/// runtime ends.
pub async fn start(
    public: &str,
    upstream: Upstream,
    config: GuardConfig,
) -> std::io::Result<SocketAddr> {
    // The same address bound again while its guard still runs: retarget it.
    let wanted: Option<SocketAddr> = public.parse().ok().filter(|a: &SocketAddr| a.port() != 0);
    if let Some(addr) = wanted {
        let guards = GUARDS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = guards.as_ref().and_then(|m| m.get(&addr)) {
            if shared.alive.load(Ordering::SeqCst) {
                let curve = match &config.curve {
                    Some(curve) => Some(curve.server_keys()?),
                    None => None,
                };
                *shared
                    .upstream
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(upstream);
                *shared.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
                *shared.curve.lock().unwrap_or_else(PoisonError::into_inner) = curve;
                return Ok(addr);
            }
        }
    }
    let listener = TcpListener::bind(public).await?;
    let local = listener.local_addr()?;
    let shared = Shared::new(local, config, Some(upstream.clone()))?;
    GUARDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(local, Arc::clone(&shared));
    tracing::debug!("guard {local}: relaying to zeromq on {upstream}");
    if let Some(keys) = shared.curve() {
        tracing::info!("guard {local}: CURVE server, public key {}", keys.public());
    }
    tokio::spawn(accept_loop(listener, AliveMark(shared)));
    Ok(local)
}

/// Accepts peers, applies the allowlist and the connection limit, and starts a relay for each.
async fn accept_loop(listener: TcpListener, mark: AliveMark) {
    let shared = &mark.0;
    loop {
        let (peer_stream, peer, config, permit) = admit(&listener, shared).await;
        let Some(upstream) = shared.upstream() else {
            return;
        };
        // Connect before the peer's greeting arrives: libzmq peers wait for the server's
        // signature before sending the rest of theirs.
        let server = match upstream.connect().await {
            Ok(server) => server,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::debug!("guard {}: zeromq socket gone, guard stops", shared.public);
                return;
            }
            Err(e) => {
                shared.warn(format_args!("closed {peer}: relay to zeromq failed: {e}"));
                continue;
            }
        };
        let curve = shared.curve();
        tokio::spawn(relay(peer_stream, peer, server, config, curve, permit));
    }
}

/// The next peer admitted by the allowlist and the connection limit (refusals are logged and
/// closed here), with the configuration in force and its connection permit. Shared by the
/// relay and the native ROUTER, so both admit by exactly the same rules.
pub(crate) async fn admit(
    listener: &TcpListener,
    shared: &Arc<Shared>,
) -> (TcpStream, SocketAddr, GuardConfig, Permit) {
    loop {
        let (peer_stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                shared.warn(format_args!("accept failed: {e}"));
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let config = shared.config();
        if !allow::permits(&config.allow, peer.ip()) {
            shared.warn(format_args!("refused {peer}: not in --allow"));
            continue;
        }
        let open = shared.open.fetch_add(1, Ordering::SeqCst);
        if open >= config.max_connections {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            shared.warn(format_args!(
                "refused {peer}: {open} connections open (--max-connections {})",
                config.max_connections
            ));
            continue;
        }
        let _ = peer_stream.set_nodelay(true);
        return (peer_stream, peer, config, Permit(Arc::clone(shared)));
    }
}

/// Counts one open connection until dropped.
pub(crate) struct Permit(Arc<Shared>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a guarded connection ended.
pub(crate) enum End {
    /// Either side closed or reset: nothing to report.
    Closed,
    /// The peer broke a rule.
    Violation(Violation),
    /// The peer did not finish its greeting and READY in time.
    HandshakeTimeout,
    /// The peer broke a CURVE rule (or a limit, on the decrypted stream).
    Curve(Refusal),
}

/// Relays one connection until either side closes or the peer breaks a rule.
async fn relay(
    mut peer_stream: TcpStream,
    peer: SocketAddr,
    mut server: UnixStream,
    config: GuardConfig,
    curve: Option<Arc<ServerKeys>>,
    permit: Permit,
) {
    let (peer_rx, peer_tx) = peer_stream.split();
    let (server_rx, server_tx) = server.split();
    let end = match curve {
        Some(keys) => curve_pump(peer_rx, peer_tx, server_rx, server_tx, &config, keys).await,
        None => pump(peer_rx, peer_tx, server_rx, server_tx, &config).await,
    };
    permit.report(peer, end, &config);
    // Dropping both streams closes both sides; zeromq sees the relay connection end.
}

impl Permit {
    /// Logs why a connection ended: the guard's stable `closed <peer>: <reason>` lines.
    pub(crate) fn report(&self, peer: SocketAddr, end: End, config: &GuardConfig) {
        match end {
            End::Closed => {}
            End::Violation(v) => self.0.warn(format_args!("closed {peer}: {v}")),
            End::Curve(r) => self.0.warn(format_args!("closed {peer}: {r}")),
            End::HandshakeTimeout => self.0.warn(format_args!(
                "closed {peer}: handshake not completed within {} ms (--handshake-ms)",
                config.handshake.as_millis()
            )),
        }
    }
}

/// Moves bytes both ways until either side closes or the peer breaks a rule: peer → server
/// through the checker, server → peer as they come. One task, two futures: no cross-task
/// wake-ups per message.
async fn pump(
    mut peer_rx: impl AsyncRead + Unpin,
    mut peer_tx: impl AsyncWrite + Unpin,
    mut server_rx: impl AsyncRead + Unpin,
    mut server_tx: impl AsyncWrite + Unpin,
    config: &GuardConfig,
) -> End {
    let deadline = tokio::time::Instant::now() + config.handshake;
    let inbound = async {
        let mut checker = Checker::new(config.max_msg_bytes);
        let mut buf = vec![0u8; FIRST_CHUNK];
        loop {
            let read = if checker.handshake_done() {
                peer_rx.read(&mut buf).await
            } else {
                match tokio::time::timeout_at(deadline, peer_rx.read(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => return End::HandshakeTimeout,
                }
            };
            let n = match read {
                Ok(0) | Err(_) => return End::Closed,
                Ok(n) => n,
            };
            if let Err(v) = checker.feed(&buf[..n]) {
                return End::Violation(v);
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                return End::Closed;
            }
            grow_if_filled(&mut buf, n);
        }
    };
    let outbound = async {
        let mut buf = vec![0u8; FIRST_CHUNK];
        loop {
            match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if peer_tx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    grow_if_filled(&mut buf, n);
                }
            }
        }
    };
    tokio::select! {
        end = inbound => end,
        () = outbound => End::Closed,
    }
}

/// The CURVE relay: every byte both ways goes through the pure [`Connection`], which answers
/// the handshake, decrypts the peer's MESSAGEs into plain frames for zeromq and encrypts
/// zeromq's frames into MESSAGEs. One task; writes are awaited before the next read, so a peer
/// that does not read slows only its own connection.
async fn curve_pump(
    mut peer_rx: impl AsyncRead + Unpin,
    mut peer_tx: impl AsyncWrite + Unpin,
    mut server_rx: impl AsyncRead + Unpin,
    mut server_tx: impl AsyncWrite + Unpin,
    config: &GuardConfig,
    keys: Arc<ServerKeys>,
) -> End {
    let deadline = tokio::time::Instant::now() + config.handshake;
    let mut conn = Connection::new(keys, config.max_msg_bytes);
    let mut peer_buf = vec![0u8; FIRST_CHUNK];
    let mut server_buf = vec![0u8; FIRST_CHUNK];
    loop {
        let out = conn.take_to_peer();
        if !out.is_empty() && peer_tx.write_all(&out).await.is_err() {
            return End::Closed;
        }
        let out = conn.take_to_server();
        if !out.is_empty() && server_tx.write_all(&out).await.is_err() {
            return End::Closed;
        }
        let handshaking = !conn.handshake_done();
        let result = tokio::select! {
            read = peer_rx.read(&mut peer_buf) => match read {
                Ok(0) | Err(_) => return End::Closed,
                Ok(n) => {
                    let r = conn.feed_peer(&peer_buf[..n], crate::contract::now());
                    grow_if_filled(&mut peer_buf, n);
                    r
                }
            },
            read = server_rx.read(&mut server_buf) => match read {
                Ok(0) | Err(_) => return End::Closed,
                Ok(n) => {
                    let r = conn.feed_server(&server_buf[..n]);
                    grow_if_filled(&mut server_buf, n);
                    r
                }
            },
            () = tokio::time::sleep_until(deadline), if handshaking => return End::HandshakeTimeout,
        };
        if let Err(refusal) = result {
            // An ERROR command, when one is due, goes out before the close (best effort).
            let out = conn.take_to_peer();
            if !out.is_empty() {
                let _ = tokio::time::timeout(ERROR_FLUSH, peer_tx.write_all(&out)).await;
            }
            return End::Curve(refusal);
        }
    }
}

/// How long a refused CURVE peer's ERROR command may take to write before the close.
pub(crate) const ERROR_FLUSH: Duration = Duration::from_millis(100);

/// Doubles a relay buffer (up to [`CHUNK`]) when a read filled it: more is probably waiting.
fn grow_if_filled(buf: &mut Vec<u8>, read: usize) {
    if read == buf.len() && buf.len() < CHUNK {
        buf.resize(buf.len() * 2, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_limit_is_never_lowered() {
        use nix::sys::resource::{getrlimit, Resource};
        let (before, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let now = raise_descriptor_limit().expect("readable limit");
        assert!(
            now >= before.min(WANTED_DESCRIPTORS) && now <= hard,
            "{before} → {now}"
        );
        assert_eq!(
            getrlimit(Resource::RLIMIT_NOFILE).unwrap().0,
            now.max(before)
        );
    }

    #[test]
    fn defaults_are_safe() {
        let config = GuardConfig::default();
        assert!(config.enabled);
        assert_eq!(config.max_msg_bytes, 16 * 1024 * 1024);
        assert!(config.allow.is_empty());
    }
}
