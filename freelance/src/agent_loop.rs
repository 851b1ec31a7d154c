//! Model 3 client API (the Guide's flcliapi): a [`FreelanceClient`] handle, an agent task that
//! owns the [`ServerTable`], and one link task per server.
//!
//! The Guide runs the agent in a thread behind an `inproc` pipe; here it is a tokio task behind
//! channels. The agent does no I/O decisions itself: every input goes to the table with the
//! time, every output of the table is carried out.
//!
//! Each server gets its own *link*: a ROUTER socket (no identity, as FLP says) connected to that
//! one server, in its own task. That is how the shell copes with the `zeromq` crate:
//! * `connect()` waits until the server is up, so it runs in the link, never in the agent
//!   loop, and is bounded by the connect timeout and retried;
//! * a ROUTER never reconnects, so when the socket monitor reports the server gone the link
//!   tells the agent (the table fails the request over at once) and starts again with a fresh
//!   socket, which also gives the server a fresh client identity. Once connected the agent
//!   pings at once, and the first PONG makes the restarted server usable again;
//! * a silent network partition is never reported, so when the table declares a server dead
//!   (silent, or a request unanswered) it asks for a relink: the link drops its socket and
//!   connects a fresh one. The old connection would have carried our PINGs into TCP's
//!   retransmission back-off, and a healed server came back into use 12-13 s after the heal;
//!   a fresh connect gets through as soon as the network does.
//!
//! The link addresses the server by the routing identity the server announced, which FLP
//! requires to be its endpoint; a mismatch still works with this client but is logged, since a
//! libzmq client could not reach that server.
//!
//! # Log lines (a stable contract)
//! * `I: connecting to <endpoint>` when the API's `connect` is called
//! * `I: connected to <endpoint>` each time a link (re)connects
//! * `I: relinking <endpoint>: fresh connection to a dead server` when a dead server's
//!   connected socket is replaced
//! * `I: server <endpoint> alive` on its first PONG, and again after it was dead
//! * `W: server <endpoint> dead (<why>)`, why = `silent for <ttl> ms`,
//!   `no reply to request <n> within <ms> ms` or `connection lost`
//! * `W: failover: request <n> from <endpoint> to <endpoint>`
//! * `W: server at <endpoint> calls itself <identity>; …` on an identity mismatch
//! * `E: message from <endpoint>: <why>` for a malformed message from a server

use crate::agent::{Event, Failure, ServerReply, ServerTable, Timing, Transmit};
use crate::driver::{Failed, ModelClient, Reply};
use bytes::Bytes;
use common::contract::{self, now, Core};
use common::msg::frame_text;
use common::sock;
use common::Message;
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zeromq::{RouterSocket, Socket, SocketEvent, SocketRecv};

/// Messages waiting for a link; beyond this the agent drops (the table's timers recover).
const LINK_QUEUE: usize = 256;
/// Pause before a new connect attempt after one ended in an error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Model 3 settings.
#[derive(Debug, Clone, Copy)]
pub struct AgentConfig {
    /// The table's timers (ping interval, server TTL, global and attempt timeouts).
    pub timing: Timing,
    /// Bounds one connect attempt of a link.
    pub connect_timeout: Duration,
    /// Bounds handing one message to a link's socket.
    pub send_timeout: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            timing: Timing::default(),
            connect_timeout: Duration::from_millis(1000),
            send_timeout: Duration::from_millis(1000),
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No server answered within the global timeout.
    #[error(transparent)]
    Failed(#[from] Failure),
    /// The agent task is gone (the runtime is shutting down).
    #[error("the client agent has stopped")]
    AgentGone,
    /// A request was sent while another was in progress (the API takes one at a time).
    #[error("a request is already in progress")]
    Busy,
}

/// What the agent hands a link.
enum ToLink {
    /// Send these frames to the server.
    Send(Message),
    /// The server was declared dead: replace the socket by a fresh one.
    Relink,
}

enum Command {
    Connect(String),
    Request {
        body: Message,
        reply: oneshot::Sender<Result<ServerReply, RequestError>>,
    },
}

/// The Freelance client API: connect to servers, then send requests one at a time.
///
/// Must be created inside a tokio runtime. Dropping it stops the agent and its links.
pub struct FreelanceClient {
    commands: mpsc::Sender<Command>,
    agent: JoinHandle<()>,
}

impl FreelanceClient {
    /// Starts the agent task.
    pub fn new(config: AgentConfig) -> Self {
        let (commands, inbox) = mpsc::channel(16);
        let agent = tokio::spawn(agent(config, inbox));
        Self { commands, agent }
    }

    /// Adds a server. Returns at once: the link connects in the background, and the server is
    /// used from its first PONG on. Servers are preferred in the order they were added.
    pub async fn connect(&self, endpoint: &str) -> Result<(), RequestError> {
        self.commands
            .send(Command::Connect(endpoint.to_owned()))
            .await
            .map_err(|_| RequestError::AgentGone)
    }

    /// Sends a request to the first live server, failing over to the next ones, and returns
    /// the reply or the failure once the global timeout has passed.
    pub async fn request(&mut self, body: Message) -> Result<ServerReply, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request { body, reply })
            .await
            .map_err(|_| RequestError::AgentGone)?;
        answer.await.map_err(|_| RequestError::AgentGone)?
    }

    /// Stops the agent and waits for it.
    pub async fn close(self) {
        drop(self.commands);
        let _ = self.agent.await;
    }
}

impl ModelClient for FreelanceClient {
    async fn request(&mut self, _number: u64) -> Result<Reply, Failed> {
        match FreelanceClient::request(self, Message::new().with("random name")).await {
            Ok(answer) => Ok(Reply {
                server: Some(answer.server),
                body: answer.body,
                attempts: answer.attempts,
            }),
            Err(RequestError::Failed(failure)) => Err(Failed {
                attempts: failure.attempts,
                reason: format!(
                    "no server answered within {} ms",
                    failure.waited.as_millis()
                ),
            }),
            Err(e) => Err(Failed {
                attempts: 0,
                reason: e.to_string(),
            }),
        }
    }
}

/// What a link reports to the agent.
enum LinkEvent {
    Up(String),
    Down(String),
    Message(String, Message),
}

async fn agent(config: AgentConfig, mut commands: mpsc::Receiver<Command>) {
    let mut table = ServerTable::new(config.timing);
    let (events_tx, mut events) = mpsc::channel::<LinkEvent>(1024);
    let mut links: HashMap<String, mpsc::Sender<ToLink>> = HashMap::new();
    let mut waiting: Option<oneshot::Sender<Result<ServerReply, RequestError>>> = None;
    // The caller of the request just handed to the table, until it starts or is refused.
    let mut incoming: Option<oneshot::Sender<Result<ServerReply, RequestError>>> = None;
    loop {
        while let Some(event) = table.poll_event() {
            match event {
                Event::Added { server } => {
                    tracing::info!("connecting to {server}");
                    let (outbox, inbox) = mpsc::channel(LINK_QUEUE);
                    links.insert(server.clone(), outbox);
                    tokio::spawn(link(server, config, inbox, events_tx.clone()));
                }
                Event::Alive { server } => tracing::info!("server {server} alive"),
                Event::Dead { server, reason } => {
                    tracing::warn!("server {server} dead ({reason})")
                }
                Event::Failover { sequence, from, to } => {
                    tracing::warn!("failover: request {sequence} from {from} to {to}")
                }
                Event::Answered(answer) => {
                    if let Some(waiting) = waiting.take() {
                        let _ = waiting.send(Ok(answer));
                    }
                }
                Event::Failed(failure) => {
                    if let Some(waiting) = waiting.take() {
                        let _ = waiting.send(Err(failure.into()));
                    }
                }
                Event::Started { .. } => waiting = incoming.take(),
                Event::Busy => {
                    if let Some(reply) = incoming.take() {
                        let _ = reply.send(Err(RequestError::Busy));
                    }
                }
                Event::Malformed { server, error } => {
                    tracing::error!("message from {server}: {error}")
                }
            }
        }
        while let Some(transmit) = table.poll_transmit() {
            let (server, to_link, what) = match transmit {
                Transmit::Send { server, message } => (server, ToLink::Send(message), "message"),
                Transmit::Relink { server } => (server, ToLink::Relink, "relink"),
            };
            if let Some(link) = links.get(&server) {
                if link.try_send(to_link).is_err() {
                    tracing::debug!("link to {server} is full, {what} dropped");
                }
            }
        }
        tokio::select! {
            command = commands.recv() => match command {
                None => break,
                Some(Command::Connect(endpoint)) => table.handle_connect(&endpoint, now()),
                Some(Command::Request { body, reply }) => {
                    incoming = Some(reply);
                    table.handle_request(body, now());
                }
            },
            Some(event) = events.recv() => {
                let now = now();
                match event {
                    LinkEvent::Up(endpoint) => {
                        tracing::info!("connected to {endpoint}");
                        table.handle_link_up(&endpoint, now);
                    }
                    LinkEvent::Down(endpoint) => table.handle_link_lost(&endpoint, now),
                    LinkEvent::Message(endpoint, message) => {
                        tracing::debug!("from {endpoint}\n{}", message.dump());
                        table.handle_message(&endpoint, message, now);
                    }
                }
            }
            () = contract::sleep_until(table.poll_timeout()) => table.handle_timeout(now()),
        }
    }
}

/// Runs `work` while dropping whatever the agent sends meanwhile (it could not be delivered).
/// Returns `None` if the agent went away.
async fn draining<T>(
    outbox: &mut mpsc::Receiver<ToLink>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return Some(result),
            message = outbox.recv() => {
                message?;
            }
        }
    }
}

/// One server's connection: connect (bounded, retried), forward traffic both ways, report up
/// and down, start over with a fresh socket when the connection drops.
async fn link(
    endpoint: String,
    config: AgentConfig,
    mut outbox: mpsc::Receiver<ToLink>,
    events: mpsc::Sender<LinkEvent>,
) {
    loop {
        let mut socket = RouterSocket::with_options(sock::options(config.connect_timeout, None));
        let mut monitor = socket.monitor();
        let connect = sock::connect(&mut socket, &endpoint, config.connect_timeout);
        match draining(&mut outbox, connect).await {
            None => return,
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::debug!("connect to {endpoint}: {e}");
                if draining(&mut outbox, tokio::time::sleep(RECONNECT_PAUSE))
                    .await
                    .is_none()
                {
                    return;
                }
                continue;
            }
        }
        let mut server = Bytes::from(endpoint.clone());
        while let Ok(event) = monitor.try_recv() {
            if let SocketEvent::Connected(_, id) = event {
                server = Bytes::from(id);
            }
        }
        if server != endpoint.as_bytes() {
            tracing::warn!(
                "server at {endpoint} calls itself {}; FLP clients address a server by its \
                 endpoint, start it with --endpoint {endpoint}",
                frame_text(&server)
            );
        }
        if events.send(LinkEvent::Up(endpoint.clone())).await.is_err() {
            return;
        }
        let why = loop {
            tokio::select! {
                received = socket.recv() => match received {
                    Ok(message) => {
                        let mut message = Message::from(message);
                        message.pop_front(); // the server's routing id
                        if events.send(LinkEvent::Message(endpoint.clone(), message)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => break format!("receive failed: {e}"),
                },
                event = monitor.next() => match event {
                    Some(SocketEvent::Disconnected(_)) | None => break "disconnected".to_owned(),
                    Some(_) => {}
                },
                outgoing = outbox.recv() => match outgoing {
                    None => return,
                    Some(ToLink::Relink) => {
                        tracing::info!("relinking {endpoint}: fresh connection to a dead server");
                        break "relink".to_owned();
                    }
                    Some(ToLink::Send(mut message)) => {
                        tracing::debug!("to {endpoint}\n{}", message.dump());
                        message.push_front(server.clone());
                        if let Err(e) = sock::send(&mut socket, message, config.send_timeout).await {
                            break format!("send failed: {e}");
                        }
                    }
                },
            }
        };
        tracing::debug!("link to {endpoint}: {why}");
        if events
            .send(LinkEvent::Down(endpoint.clone()))
            .await
            .is_err()
        {
            return;
        }
    }
}
