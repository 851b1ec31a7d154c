//! The CURVE client side of every connect: a relay in front of the zeromq socket.
//!
//! The `zeromq` crate speaks only NULL, so when a binary installed `--curve-server-key`
//! ([`install`]), [`crate::sock::connect`] — the one connect helper every program uses — does
//! not let the socket reach the server itself:
//!
//! ```text
//! zeromq socket ──unix (private)──▶ relay task ──tcp, CURVE──▶ server (guard, libzmq, …)
//!               NULL, plain frames   pure client::Relay   HELLO … READY, MESSAGEs
//! ```
//!
//! - Each connect gets a fresh private Unix socket ([`crate::guard::private`]: a new mode-0700
//!   directory, removed as soon as zeromq's one connection arrived, swept after `kill -9`),
//!   a fresh TCP connection and a fresh CURVE session (new transient keys). A pattern that
//!   recreates its socket on liveness expiry therefore gets a new session every time.
//! - zeromq's `connect()` returns only once the server's READY opened: the relay holds back its
//!   own NULL READY until then, and retries a refused TCP connect until the connect deadline,
//!   as zeromq does for a NULL connect. So "connected" still means "the server is up".
//! - A refusal (the server's WELCOME does not open under the key we expect, an ERROR, a
//!   tampered or truncated handshake) is logged once per attempt as
//!   `E: curve <endpoint>: <reason> (expected server key <Z85>)`, the local side is closed and
//!   [`crate::sock::connect`] reports it after the connect deadline (so a pattern that
//!   retries does not spin). There is no fallback to NULL.
//! - After the handshake, a server that closes, resets or sends a MESSAGE that does not open
//!   ends the session: the local side is closed at once, so the socket monitor reports
//!   `Disconnected` just as for a NULL peer that went away.
//! - A SUB's own reconnect (zeromq retries the endpoint it connected to) cannot reach the relay
//!   again: its private socket is gone once used. The patterns replace the socket instead
//!   (Binary Star's state link does, on the monitor's `Disconnected`).

use super::client::{ClientRefusal, Relay};
use super::keys::{KeyPair, PublicKey};
use crate::guard::private::PrivateSocket;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A connecting program's CURVE settings (`--curve-server-key`, `--curve-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// This program's long-term key pair (what the server's `--curve-allow` must list).
    pub pair: KeyPair,
    /// The public key every server this program connects to must hold the secret of.
    pub server: PublicKey,
    /// Largest message accepted from a server (frames chained by MORE), in bytes.
    pub max_msg_bytes: u64,
}

/// The configuration [`crate::sock::connect`] applies; `None`: NULL, as zeromq does.
static INSTALLED: RwLock<Option<ClientConfig>> = RwLock::new(None);

/// Makes every later tcp:// connect in this process speak CURVE with `config` (`None`: NULL).
/// A global for the same reason as [`crate::guard::install`]: the connect helper is shared by
/// every pattern, so no program can connect around it.
pub fn install(config: Option<ClientConfig>) {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = config;
}

/// The configuration connects use now.
pub fn installed() -> Option<ClientConfig> {
    INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// First pause between refused TCP connects; doubled up to [`MAX_RETRY`] (zeromq's own
/// connect starts at 50 ms too).
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Longest pause between refused TCP connects.
const MAX_RETRY: Duration = Duration::from_secs(1);
/// Bytes a relay reads at once, per direction.
const CHUNK: usize = 64 * 1024;

/// One relay started for one connect: where zeromq must connect, and how the handshake ended.
pub struct Pending {
    endpoint: String,
    outcome: oneshot::Receiver<Result<(), String>>,
}

impl Pending {
    /// The private `ipc://` endpoint the zeromq socket must connect to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Why the relay gave up, if it did (a CURVE refusal or the server unreachable).
    pub fn failure(&mut self) -> Option<String> {
        self.outcome.try_recv().ok().and_then(Result::err)
    }
}

/// Starts a relay to the CURVE server at `remote` (`host:port`) that lives until `deadline`
/// unless zeromq connects and the handshake completes before then.
pub fn start(remote: &str, config: ClientConfig, deadline: Instant) -> std::io::Result<Pending> {
    let (private, listener) = PrivateSocket::bind()?;
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    let endpoint = format!("ipc://{}", private.path().display());
    let (report, outcome) = oneshot::channel();
    tokio::spawn(run(
        listener,
        private,
        remote.to_owned(),
        config,
        deadline,
        report,
    ));
    Ok(Pending { endpoint, outcome })
}

/// Accepts zeromq's one connection, reaches the server, and relays until either side ends.
async fn run(
    listener: UnixListener,
    private: PrivateSocket,
    remote: String,
    config: ClientConfig,
    deadline: Instant,
    report: oneshot::Sender<Result<(), String>>,
) {
    let local = match tokio::time::timeout_at(deadline, listener.accept()).await {
        Ok(Ok((local, _))) => local,
        _ => return,
    };
    // Nobody else may ever connect: the socket and its directory go now.
    drop(listener);
    drop(private);
    let server = match connect_tcp(&remote, deadline).await {
        Ok(server) => server,
        Err(e) => {
            tracing::debug!("curve tcp://{remote}: {e}");
            let _ = report.send(Err(format!("cannot reach tcp://{remote}: {e}")));
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let relay = Relay::new(config.pair, config.server, config.max_msg_bytes);
    match pump(local, server, relay, deadline, report).await {
        Ok(()) => tracing::debug!("curve tcp://{remote}: session ended"),
        Err(End::Deadline) => tracing::debug!("curve tcp://{remote}: {}", End::Deadline),
        Err(end) => tracing::error!(
            "curve tcp://{remote}: {end} (expected server key {})",
            config.server
        ),
    }
}

/// TCP connect, retrying a refused one (server not up yet) until `deadline`.
async fn connect_tcp(remote: &str, deadline: Instant) -> std::io::Result<TcpStream> {
    let mut pause = FIRST_RETRY;
    loop {
        match tokio::time::timeout_at(deadline, TcpStream::connect(remote)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                if Instant::now() + pause >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// Why a relay ended before its session was up.
enum End {
    /// The server's bytes did not check out: an `E:` line.
    Refused(ClientRefusal),
    /// The server closed during the handshake: an `E:` line (it refused us).
    Closed(&'static str),
    /// No READY before the connect deadline: a server that is slow or stopped, which a NULL
    /// connect would report only as a timeout too (`D:` line).
    Deadline,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(r) => r.fmt(f),
            Self::Closed(what) => f.write_str(what),
            Self::Deadline => {
                f.write_str("CURVE handshake not completed before the connect deadline")
            }
        }
    }
}

/// Moves bytes through the pure [`Relay`] both ways in one task until either side closes.
/// `Err` only for a refusal or a handshake that did not complete.
async fn pump(
    mut local: UnixStream,
    mut server: TcpStream,
    mut relay: Relay,
    deadline: Instant,
    report: oneshot::Sender<Result<(), String>>,
) -> Result<(), End> {
    let mut report = Some(report);
    let (mut local_rx, mut local_tx) = local.split();
    let (mut server_rx, mut server_tx) = server.split();
    let mut local_buf = vec![0u8; 4096];
    let mut server_buf = vec![0u8; 4096];
    let fail = |report: &mut Option<oneshot::Sender<_>>, end: End| {
        if let Some(report) = report.take() {
            let _ = report.send(Err(end.to_string()));
        }
        Err(end)
    };
    loop {
        let out = relay.take_to_remote();
        if !out.is_empty() && server_tx.write_all(&out).await.is_err() {
            if relay.handshake_done() {
                return Ok(());
            }
            return fail(&mut report, End::Closed(relay.close_reason()));
        }
        let out = relay.take_to_local();
        if !out.is_empty() && local_tx.write_all(&out).await.is_err() {
            return Ok(());
        }
        if relay.handshake_done() {
            if let Some(report) = report.take() {
                let _ = report.send(Ok(()));
            }
        }
        let handshaking = !relay.handshake_done();
        let result = tokio::select! {
            read = local_rx.read(&mut local_buf) => match read {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    let r = relay.feed_local(&local_buf[..n]);
                    grow_if_filled(&mut local_buf, n);
                    r
                }
            },
            read = server_rx.read(&mut server_buf) => match read {
                Ok(0) | Err(_) if handshaking => {
                    return fail(&mut report, End::Closed(relay.close_reason()));
                }
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    let r = relay.feed_remote(&server_buf[..n]);
                    grow_if_filled(&mut server_buf, n);
                    r
                }
            },
            () = tokio::time::sleep_until(deadline), if handshaking => {
                return fail(&mut report, End::Deadline);
            }
        };
        if let Err(refusal) = result {
            return fail(&mut report, End::Refused(refusal));
        }
    }
}

/// Doubles a relay buffer (up to [`CHUNK`]) when a read filled it.
fn grow_if_filled(buf: &mut Vec<u8>, read: usize) {
    if read == buf.len() && buf.len() < CHUNK {
        buf.resize(buf.len() * 2, 0);
    }
}
