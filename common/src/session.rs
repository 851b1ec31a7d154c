//! The reconnecting session of every worker that reconnects (`ppworker`, the Majordomo
//! `Worker`): one DEALER to one endpoint, replaced by a fresh one whenever the worker's core
//! decides the peer is gone.
//!
//! The core decides *when* (silence, DISCONNECT, a failed send) and *how long to back off*; the
//! [`Session`] carries it out and reports what the network did as a [`SessionEvent`]. Why each
//! step is needed with the `zeromq` crate 0.7 (each was observed with it):
//! * a DEALER never reconnects by itself, and a peer that comes back under its old identity can
//!   lose replies: every connection is a new socket with a fresh random identity, drawn from the
//!   OS ([`crate::ids`]) because a peer that connects under it takes the worker's route;
//! * `connect()` waits up to 30 s for an absent peer: every attempt is bounded;
//! * the socket monitor is the only prompt sign that the peer's connection closed (optional:
//!   a worker whose contract counts only on heartbeats leaves it off);
//! * there is no LINGER: [`Session::close`] pauses before dropping the socket, so a last message
//!   (DISCONNECT) reaches the wire.
//!
//! [`Session::next`] is cancel-safe: a shell puts it in its `select!` beside its other inputs.

use crate::ids;
use crate::sock::{self, SockError};
use crate::Message;
use futures::channel::mpsc::Receiver;
use futures::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Sleep;
use zeromq::{DealerSocket, Socket, SocketEvent, SocketRecv, ZmqError};

/// How long [`Session::close`] lets the socket's writer flush a last message (no LINGER).
pub const LINGER: Duration = Duration::from_millis(20);

/// Where and how a [`Session`] connects.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The peer (`tcp://…` or `ipc://…`).
    pub endpoint: String,
    /// Bound on one connect attempt.
    pub connect_timeout: Duration,
    /// Bound on one send.
    pub send_timeout: Duration,
    /// Put before each random identity (`W` gives `W` and 32 hex digits, [`ids::identity`]).
    pub identity_prefix: &'static str,
    /// Report a closed connection ([`SessionEvent::Closed`]) from the socket monitor.
    pub watch_disconnect: bool,
}

/// What happened on the session's socket.
#[derive(Debug)]
pub enum SessionEvent {
    /// A fresh socket is connected ([`Session::identity`] is its identity).
    Connected,
    /// The connect attempt failed or timed out; the session is idle.
    ConnectFailed(SockError),
    /// A message from the peer.
    Message(Message),
    /// The monitor saw the peer's connection close; the session is idle.
    Closed,
    /// Receiving failed; the session is idle.
    Failed(ZmqError),
}

type Connecting = Pin<Box<dyn Future<Output = (DealerSocket, Result<(), SockError>)> + Send>>;

enum State {
    /// No socket: waits for [`Session::reconnect`].
    Idle,
    /// Backing off (if there is a sleep) before the next connect.
    Waiting(Option<Pin<Box<Sleep>>>),
    Connecting(Connecting),
    Connected {
        socket: DealerSocket,
        monitor: Option<Receiver<SocketEvent>>,
    },
}

/// One worker's reconnecting DEALER. See the [module docs](self).
pub struct Session {
    options: SessionOptions,
    identity: String,
    state: State,
}

impl Session {
    /// An idle session: call [`reconnect`](Self::reconnect) to connect.
    pub fn new(options: SessionOptions) -> Self {
        Self {
            options,
            identity: String::new(),
            state: State::Idle,
        }
    }

    /// The identity of the current (or last) socket.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// True while a socket is connected.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// Drops the current socket, waits `after` (the back-off the core asked for), then connects
    /// a fresh socket with a fresh identity. [`next`](Self::next) reports the outcome.
    pub fn reconnect(&mut self, after: Duration) {
        // A zero sleep would still wait for the timer's next tick (about 1 ms).
        let sleep = (!after.is_zero()).then(|| Box::pin(tokio::time::sleep(after)));
        self.state = State::Waiting(sleep);
    }

    fn connect(&mut self) -> State {
        self.identity = ids::identity(self.options.identity_prefix);
        let timeout = self.options.connect_timeout;
        let mut socket = DealerSocket::with_options(sock::options(timeout, Some(&self.identity)));
        let endpoint = self.options.endpoint.clone();
        State::Connecting(Box::pin(async move {
            let result = sock::connect(&mut socket, &endpoint, timeout).await;
            (socket, result)
        }))
    }

    /// The next thing that happens on the session; pending forever while idle. Cancel-safe.
    pub async fn next(&mut self) -> SessionEvent {
        loop {
            match &mut self.state {
                State::Idle => std::future::pending::<()>().await,
                State::Waiting(sleep) => {
                    if let Some(sleep) = sleep {
                        sleep.as_mut().await;
                    }
                    self.state = self.connect();
                }
                State::Connecting(connecting) => {
                    let (mut socket, result) = connecting.as_mut().await;
                    if let Err(e) = result {
                        self.state = State::Idle;
                        return SessionEvent::ConnectFailed(e);
                    }
                    let monitor = self.options.watch_disconnect.then(|| socket.monitor());
                    self.state = State::Connected { socket, monitor };
                    return SessionEvent::Connected;
                }
                State::Connected { socket, monitor } => {
                    let event = tokio::select! {
                        received = socket.recv() => match received {
                            Ok(message) => return SessionEvent::Message(message.into()),
                            Err(e) => SessionEvent::Failed(e),
                        },
                        () = disconnected(monitor) => SessionEvent::Closed,
                    };
                    self.state = State::Idle;
                    return event;
                }
            }
        }
    }

    /// Sends within the send timeout; an error if no socket is connected.
    pub async fn send(&mut self, message: Message) -> Result<(), SockError> {
        match &mut self.state {
            State::Connected { socket, .. } => {
                sock::send(socket, message, self.options.send_timeout).await
            }
            _ => Err(ZmqError::Other("not connected").into()),
        }
    }

    /// Ends the session after its last message: the [`LINGER`] pause, then the socket goes.
    pub async fn close(&mut self) {
        if self.is_connected() {
            tokio::time::sleep(LINGER).await;
        }
        self.state = State::Idle;
    }
}

/// Resolves when the monitor reports the connection closed; never if there is no monitor.
async fn disconnected(monitor: &mut Option<Receiver<SocketEvent>>) {
    while let Some(events) = monitor {
        match events.next().await {
            Some(SocketEvent::Disconnected(_)) => return,
            Some(_) => {}
            None => *monitor = None,
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::now;
    use zeromq::{RouterSocket, SocketSend, ZmqMessage};

    fn ipc(name: &str) -> String {
        let path = std::env::temp_dir().join(format!("session-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        format!("ipc://{}", path.display())
    }

    fn options(endpoint: &str) -> SessionOptions {
        SessionOptions {
            endpoint: endpoint.to_owned(),
            connect_timeout: Duration::from_millis(500),
            send_timeout: Duration::from_millis(500),
            identity_prefix: "W",
            watch_disconnect: true,
        }
    }

    // Unix-socket I/O completes inside the kernel call, so paused time does not outrun it.
    #[tokio::test(start_paused = true)]
    async fn backs_off_then_connects_with_a_fresh_identity_each_time() {
        let endpoint = ipc("fresh");
        let mut router = RouterSocket::new();
        router.bind(&endpoint).await.unwrap();
        let mut session = Session::new(options(&endpoint));
        let mut identities = Vec::new();
        for _ in 0..2 {
            let start = now();
            session.reconnect(Duration::from_secs(4));
            assert!(matches!(session.next().await, SessionEvent::Connected));
            assert!(
                now() - start >= Duration::from_secs(4),
                "the back-off is waited"
            );
            // The prefix, then an unguessable part from the OS (not the Guide's 32-bit one).
            let random = session.identity().strip_prefix('W').expect("the prefix");
            assert_eq!(random.len(), crate::ids::TOKEN_LEN);
            assert!(random.bytes().all(|b| b.is_ascii_hexdigit()));
            identities.push(session.identity().to_owned());
            session.send(Message::from_frames(["hi"])).await.unwrap();
            let got = router.recv().await.unwrap();
            assert_eq!(got.get(0).unwrap().as_ref(), session.identity().as_bytes());
        }
        assert_ne!(identities[0], identities[1]);
        // The peer's messages come through.
        let mut reply = ZmqMessage::from(identities[1].clone());
        reply.push_back("back".into());
        router.send(reply).await.unwrap();
        match session.next().await {
            SessionEvent::Message(m) => assert_eq!(m, Message::from_frames(["back"])),
            other => panic!("{other:?}"),
        }
        // Closing pauses for the writer, then the session is idle and cannot send.
        let before = now();
        session.close().await;
        assert!(now() - before >= LINGER);
        assert!(!session.is_connected());
        assert!(session.send(Message::from_frames(["x"])).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_absent_peer_fails_after_the_connect_timeout() {
        let mut session = Session::new(options(&ipc("absent")));
        let start = now();
        session.reconnect(Duration::ZERO);
        assert!(matches!(
            session.next().await,
            SessionEvent::ConnectFailed(_)
        ));
        let took = now() - start;
        assert!(took >= Duration::from_millis(500) && took < Duration::from_millis(600));
    }
}
