//! The Binary Star reactor, the node's I/O shell: wraps any request-reply service in a
//! primary/backup pair.
//!
//! The reactor owns the three sockets of a server: the client frontend (ROUTER, bound), the
//! state publisher (PUB, bound) and the state subscriber (SUB, connected to the peer's PUB by
//! a task of its own, see `link`). Its loop waits on the peer's state messages, client requests,
//! the next deadline of the [`Node`] and the shutdown future, and does what the node decides:
//! publish, serve the requests it passes on (by calling the [`Service`]), or stop on a
//! split-brain error. Which requests to drop, and which to hold while quiet after a stall, is
//! the node's call ([`Node::handle_request`]).
//!
//! # Log lines
//!
//! What the reactor and its state link print is a stable contract that tests and the tour
//! wait for. The one table of those lines, with `bstarsrv`'s and `bstarcli`'s, is in the
//! crate's `README.md` ("Log lines"): a change to a line here changes it there too.

use crate::fsm::{Fatal, Role, State};
use crate::node::{Event, Node, OnConflict, Publish, Request, Timing};
use crate::pair::{log_event, PeerInput, StateSockets};
use crate::protocol::{StateMessage, WireError};
use common::contract::{self, now, Core};
use common::sock::{self, SockError};
use common::Message;
use std::future::Future;
use zeromq::{RouterSocket, Socket};

/// Guide endpoints of the primary: frontend, state PUB, state SUB.
pub const PRIMARY_ENDPOINTS: [&str; 3] = ["tcp://*:5001", "tcp://*:5003", "tcp://localhost:5004"];
/// Guide endpoints of the backup: frontend, state PUB, state SUB.
pub const BACKUP_ENDPOINTS: [&str; 3] = ["tcp://*:5002", "tcp://*:5004", "tcp://localhost:5003"];

/// Where a server listens and whom it watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Primary or backup.
    pub role: Role,
    /// Client frontend (ROUTER, bound).
    pub frontend: String,
    /// Our state publisher (PUB, bound); the peer's `state_sub` connects here.
    pub state_pub: String,
    /// The peer's state publisher (our SUB connects to it).
    pub state_sub: String,
    /// Heartbeat interval and peer liveness.
    pub timing: Timing,
    /// What to do when both servers are ACTIVE or both PASSIVE.
    pub on_conflict: OnConflict,
}

impl Config {
    /// The Guide's endpoints and timing for `role` (ports 5001-5004, heartbeat 1 s).
    pub fn guide(role: Role) -> Config {
        let [frontend, state_pub, state_sub] = match role {
            Role::Primary => PRIMARY_ENDPOINTS,
            Role::Backup => BACKUP_ENDPOINTS,
        };
        Config {
            role,
            frontend: frontend.into(),
            state_pub: state_pub.into(),
            state_sub: state_sub.into(),
            timing: Timing::default(),
            on_conflict: OnConflict::Resolve,
        }
    }
}

/// The application inside the reactor.
pub trait Service {
    /// Answers one client request (the body frames, envelope already removed). Called only
    /// while the server is ACTIVE. `None` sends no reply.
    fn serve(&mut self, request: Message) -> Option<Message>;

    /// The server just became ACTIVE (it now serves clients).
    fn became_active(&mut self) {}

    /// The server just became PASSIVE (its peer serves clients).
    fn became_passive(&mut self) {}
}

/// Why the reactor could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ReactorError {
    /// A socket could not be bound.
    #[error("cannot bind the {what} to {endpoint}")]
    Bind {
        /// Which socket.
        what: &'static str,
        /// The endpoint asked for.
        endpoint: String,
        /// The socket error.
        source: SockError,
    },
    /// Both servers were ACTIVE, or both PASSIVE: this server stopped.
    #[error("fatal error - {0}")]
    Fatal(#[from] Fatal),
}

/// A bound Binary Star server, ready to [`run`](Reactor::run).
pub struct Reactor {
    config: Config,
    frontend: RouterSocket,
    state: StateSockets,
    frontend_bound: String,
}

impl Reactor {
    /// Binds the frontend and the state publisher. The subscriber connects once running.
    pub async fn bind(config: Config) -> Result<Reactor, ReactorError> {
        remove_stale_ipc(&config.frontend);
        remove_stale_ipc(&config.state_pub);
        let mut frontend = RouterSocket::new();
        let frontend_bound =
            sock::bind(&mut frontend, &config.frontend)
                .await
                .map_err(|source| ReactorError::Bind {
                    what: "frontend",
                    endpoint: config.frontend.clone(),
                    source,
                })?;
        let state = StateSockets::bind(&config.state_pub, &config.state_sub, config.timing)
            .await
            .map_err(|source| ReactorError::Bind {
                what: "state publisher",
                endpoint: config.state_pub.clone(),
                source,
            })?;
        Ok(Reactor {
            config,
            frontend,
            state,
            frontend_bound,
        })
    }

    /// The frontend endpoint actually bound (with the port resolved).
    pub fn frontend_endpoint(&self) -> &str {
        &self.frontend_bound
    }

    /// The state publisher endpoint actually bound.
    pub fn state_pub_endpoint(&self) -> &str {
        self.state.pub_endpoint()
    }

    /// Runs until `shutdown` resolves (`Ok`) or the pair hits a split-brain error (`Err`).
    pub async fn run<S, F>(self, service: &mut S, shutdown: F) -> Result<(), ReactorError>
    where
        S: Service,
        F: Future<Output = ()>,
    {
        let timing = self.config.timing;
        tracing::info!(
            "{} ready: frontend={} state-pub={} state-sub={} heartbeat={} ms liveness={} \
             on-conflict={}",
            self.config.role,
            self.frontend_bound,
            self.state.pub_endpoint(),
            self.config.state_sub,
            timing.heartbeat.as_millis(),
            timing.liveness,
            self.config.on_conflict
        );
        let mut running = Running {
            node: Node::new(self.config.role, timing, now())
                .with_on_conflict(self.config.on_conflict),
            reactor: self,
            service,
        };
        tokio::pin!(shutdown);
        loop {
            // Every turn, not only when the timer fires: the select below is biased, so a
            // flood of input must not starve the heartbeat (an early call is harmless).
            running.node.handle_timeout(now());
            running.drain().await;
            let deadline = running.node.poll_timeout();
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::warn!("interrupted");
                    return Ok(());
                }
                Some(input) = running.reactor.state.recv() => match input {
                    PeerInput::State(parsed, message) => running.peer_message(parsed, &message)?,
                    PeerInput::LinkUp => running.node.handle_link_up(now()),
                },
                received = zeromq::SocketRecv::recv(&mut running.reactor.frontend) => {
                    match received {
                        Ok(message) => running.client_request(message.into()),
                        Err(e) => tracing::error!("frontend receive error: {e}"),
                    }
                }
                () = contract::sleep_until(deadline) => {}
            }
        }
    }
}

/// The reactor while running: the sockets, the node's decisions and the application.
struct Running<'s, S> {
    reactor: Reactor,
    node: Node,
    service: &'s mut S,
}

impl<S: Service> Running<'_, S> {
    /// Serves the requests the node passes on, logs its events and publishes what it asked
    /// for, until none is left (the node releases each request once the events decided before
    /// it are logged).
    async fn drain(&mut self) {
        loop {
            if let Some(request) = self.node.poll_request() {
                self.serve(request).await;
            } else if let Some(event) = self.node.poll_event() {
                self.event(event);
            } else if let Some(publish) = self.node.poll_transmit() {
                self.publish(publish).await;
            } else {
                return;
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Changed { to, .. } => {
                log_event(&event);
                match to {
                    State::Active => self.service.became_active(),
                    State::Passive => self.service.became_passive(),
                    State::Primary | State::Backup => {}
                }
            }
            Event::Resumed => {
                let held = self.node.released();
                tracing::info!("resumed after stall ({held} requests held)");
            }
            _ => log_event(&event),
        }
    }

    fn peer_message(
        &mut self,
        parsed: Result<StateMessage, WireError>,
        message: &Message,
    ) -> Result<(), Fatal> {
        tracing::debug!("state from peer:\n{}", message.dump());
        match parsed {
            Ok(peer) => {
                self.node.handle_peer(peer, now());
                // Read every event the message caused: a split-brain error stops the server
                // before any of them is acted on.
                let events: Vec<Event> = std::iter::from_fn(|| self.node.poll_event()).collect();
                let fatal = events.iter().find_map(|event| match event {
                    Event::Fatal(fatal) => Some(*fatal),
                    _ => None,
                });
                if let Some(fatal) = fatal {
                    tracing::error!("fatal error - {fatal}, aborting");
                    return Err(fatal);
                }
                for event in events {
                    self.event(event);
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!("bad state message from peer: {e}, ignored");
                Ok(())
            }
        }
    }

    async fn publish(&mut self, publish: Publish) {
        self.reactor.state.publish(publish).await;
    }

    fn client_request(&mut self, mut message: Message) {
        tracing::debug!("client request:\n{}", message.dump());
        let Some(envelope) = split_request(&mut message) else {
            tracing::error!(
                "malformed client request ({} frames), dropped",
                message.len()
            );
            return;
        };
        let request = Request {
            envelope,
            body: message,
        };
        self.node.handle_request(request, now());
    }

    async fn serve(&mut self, request: Request) {
        let Some(mut reply) = self.service.serve(request.body) else {
            return;
        };
        if reply.is_empty() {
            return;
        }
        reply.prepend(request.envelope);
        let timeout = self.reactor.config.timing.heartbeat;
        if let Err(e) = sock::send(&mut self.reactor.frontend, reply, timeout).await {
            tracing::warn!("cannot send reply: {e}");
        }
    }
}

/// Removes the socket file a killed server left at an `ipc://` endpoint, if nobody listens there.
///
/// libzmq unlinks the file before binding; the `zeromq` crate refuses to bind over it, so a
/// server restarted after `kill -9` could not come back on the same `ipc://` endpoint. A file
/// somebody still accepts on is left alone (the bind then fails as it should).
fn remove_stale_ipc(endpoint: &str) {
    #[cfg(unix)]
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        let path = std::path::Path::new(path);
        let refused = matches!(
            std::os::unix::net::UnixStream::connect(path),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        );
        if refused && std::fs::remove_file(path).is_ok() {
            tracing::info!("removed the stale socket file at {endpoint}");
        }
    }
}

/// Splits a frontend message into the envelope (routing id, and the empty delimiter a REQ
/// client adds) and the body. `None` if there is no body.
fn split_request(message: &mut Message) -> Option<Message> {
    let envelope = match message.split_envelope() {
        Some(envelope) => envelope,
        // A DEALER client without a delimiter: the routing id alone is the envelope.
        None => Message::from_frames(message.pop_front()),
    };
    (!message.is_empty() && !envelope.is_empty()).then_some(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_req_and_dealer_clients_keep_their_envelope() {
        let mut req = Message::from_frames(["id-1", "", "hello"]);
        let envelope = split_request(&mut req).unwrap();
        assert_eq!(envelope, Message::from_frames(["id-1", ""]));
        assert_eq!(req, Message::from_frames(["hello"]));

        let mut dealer = Message::from_frames(["id-2", "hello", "world"]);
        let envelope = split_request(&mut dealer).unwrap();
        assert_eq!(envelope, Message::from_frames(["id-2"]));
        assert_eq!(dealer, Message::from_frames(["hello", "world"]));

        assert!(split_request(&mut Message::from_frames(["id-3", ""])).is_none());
        assert!(split_request(&mut Message::from_frames(["id-4"])).is_none());
    }

    #[test]
    fn guide_config_uses_the_guide_ports() {
        let p = Config::guide(Role::Primary);
        assert_eq!(
            (
                p.frontend.as_str(),
                p.state_pub.as_str(),
                p.state_sub.as_str()
            ),
            ("tcp://*:5001", "tcp://*:5003", "tcp://localhost:5004")
        );
        let b = Config::guide(Role::Backup);
        assert_eq!(
            (
                b.frontend.as_str(),
                b.state_pub.as_str(),
                b.state_sub.as_str()
            ),
            ("tcp://*:5002", "tcp://*:5004", "tcp://localhost:5003")
        );
        assert_eq!(p.timing, Timing::default());
    }
}
