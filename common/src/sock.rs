//! Socket helpers that never wait forever.
//!
//! The `zeromq` crate's `connect()` waits until the peer is up, a `recv()` on a socket whose
//! peer died waits forever, and a `send()` blocks once a peer's queue is full. Every helper here
//! takes a deadline, so a loop that must keep heartbeating is never stuck inside the library.

use crate::curve;
use crate::endpoint;
use crate::guard::private::PrivateSocket;
use crate::guard::{self, Upstream};
use crate::msg::{EmptyMessage, Message};
use std::time::Duration;
use zeromq::{Endpoint, Socket, SocketOptions, SocketRecv, SocketSend, ZmqError, ZmqMessage};

/// What can go wrong talking to a socket.
#[derive(Debug, thiserror::Error)]
pub enum SockError {
    /// The operation did not complete within its deadline.
    #[error("{0} timed out after {1:?}")]
    Timeout(&'static str, Duration),
    /// The socket library reported an error.
    #[error(transparent)]
    Zmq(#[from] ZmqError),
    /// An empty message cannot be sent.
    #[error(transparent)]
    Empty(#[from] EmptyMessage),
    /// The ingress guard could not listen on the public address.
    #[error("cannot listen on {0}: {1}")]
    Guard(String, std::io::Error),
    /// A CURVE connect failed: the server refused, or its handshake did not check out (the
    /// relay logged the reason with an `E:` line; see [`crate::curve::connect`]).
    #[error("CURVE connect to {0} failed: {1}")]
    Curve(String, String),
}

/// A server that could not bind its endpoint: which endpoint, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {endpoint}: {source}")]
pub struct BindError {
    /// The endpoint asked for.
    pub endpoint: String,
    /// What the socket library said.
    #[source]
    pub source: SockError,
}

/// Socket options with the connect timeout set, and optionally a routing identity.
pub fn options(connect_timeout: Duration, identity: Option<&str>) -> SocketOptions {
    let mut options = SocketOptions::default();
    options.connect_timeout(connect_timeout);
    if let Some(id) = identity {
        if let Ok(id) = id.parse() {
            options.peer_identity(id);
        }
    }
    options
}

/// Binds, accepting the Guide's `tcp://*:N`; returns the endpoint actually bound (port resolved).
///
/// Every bind in the workspace goes through here, so every public TCP endpoint is guarded: the
/// zeromq socket listens on a private Unix socket that only this user can reach
/// ([`guard::private`]) and a [`guard`] owns the address asked for, checking each peer's bytes
/// before zeromq decodes them (the configuration is the one the binary installed from its
/// flags, [`guard::installed`]; safe defaults without flags). `ipc://` endpoints are bound
/// directly (their file permissions decide who connects; see [`guard`]).
pub async fn bind<S: Socket>(socket: &mut S, at: &str) -> Result<String, SockError> {
    let at = endpoint::bindable(at);
    let config = guard::installed();
    let public = match at.strip_prefix("tcp://") {
        Some(public) if config.enabled => public,
        _ => return Ok(socket.bind(&at).await?.to_string()),
    };
    let (private, upstream) = bind_private(socket).await.map_err(|e| match e {
        PrivateBindError::Zmq(e) => SockError::Zmq(e),
        PrivateBindError::Io(e) => SockError::Guard(at.clone(), e),
    })?;
    match guard::start(public, upstream, config).await {
        Ok(local) => Ok(format!("tcp://{local}")),
        Err(e) => {
            let _ = socket.unbind(private).await;
            Err(SockError::Guard(at, e))
        }
    }
}

enum PrivateBindError {
    Zmq(ZmqError),
    Io(std::io::Error),
}

/// Binds the zeromq socket where only its guard connects: a Unix socket in a fresh directory
/// that only this user can enter.
async fn bind_private<S: Socket>(socket: &mut S) -> Result<(Endpoint, Upstream), PrivateBindError> {
    let (private, listener) = PrivateSocket::bind().map_err(PrivateBindError::Io)?;
    listener
        .set_nonblocking(true)
        .map_err(PrivateBindError::Io)?;
    let endpoint = socket
        .bind_listener(listener)
        .await
        .map_err(PrivateBindError::Zmq)?;
    Ok((endpoint, Upstream::new(private)))
}

/// Connects, giving up after `timeout` (the crate would otherwise retry for up to 30 s).
///
/// Every connect in the workspace goes through here, so with `--curve-server-key` installed
/// ([`curve::connect::install`]) every `tcp://` connect speaks CURVE through a relay of its
/// own (a fresh TCP connection and CURVE session each time; no fallback to NULL). A CURVE
/// refusal is returned as [`SockError::Curve`] once `timeout` has passed, as an unreachable
/// server's timeout would be, so a pattern that retries at once does not spin.
pub async fn connect<S: Socket>(
    socket: &mut S,
    to: &str,
    timeout: Duration,
) -> Result<(), SockError> {
    let to = endpoint::connectable(to);
    if let (Some(remote), Some(config)) = (to.strip_prefix("tcp://"), curve::connect::installed()) {
        return connect_curve(socket, remote, config, timeout).await;
    }
    match tokio::time::timeout(timeout, socket.connect(&to)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SockError::Timeout("connect", timeout)),
    }
}

/// [`connect`] through a CURVE relay: zeromq connects to the relay's private socket.
async fn connect_curve<S: Socket>(
    socket: &mut S,
    remote: &str,
    config: curve::connect::ClientConfig,
    timeout: Duration,
) -> Result<(), SockError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut relay = curve::connect::start(remote, config, deadline)
        .map_err(|e| SockError::Curve(format!("tcp://{remote}"), e.to_string()))?;
    let result = tokio::time::timeout_at(deadline, socket.connect(relay.endpoint())).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            // The relay closed zeromq's connection: say why, once the attempt's time is up.
            tokio::time::sleep_until(deadline).await;
            match relay.failure() {
                Some(why) => Err(SockError::Curve(format!("tcp://{remote}"), why)),
                None => Err(e.into()),
            }
        }
        Err(_) => Err(SockError::Timeout("connect", timeout)),
    }
}

/// Receives one message, or `Ok(None)` if none arrived within `timeout`. Cancel-safe.
pub async fn recv<S: SocketRecv>(
    socket: &mut S,
    timeout: Duration,
) -> Result<Option<Message>, SockError> {
    match tokio::time::timeout(timeout, socket.recv()).await {
        Ok(result) => Ok(Some(Message::from(result?))),
        Err(_) => Ok(None),
    }
}

/// Sends one message, failing if the socket does not take it within `timeout`.
///
/// A ROUTER whose peer's queue is full blocks in `send`; the timeout turns that into an error
/// the caller can log, so one stuck peer never freezes a broker.
pub async fn send<S: SocketSend>(
    socket: &mut S,
    message: Message,
    timeout: Duration,
) -> Result<(), SockError> {
    let message = ZmqMessage::try_from(message)?;
    match tokio::time::timeout(timeout, socket.send(message)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SockError::Timeout("send", timeout)),
    }
}
