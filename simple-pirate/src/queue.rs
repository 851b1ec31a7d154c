//! The `spqueue` socket loop: two ROUTER sockets around a [`Broker`].
//!
//! One task, one `select!`: the backend (workers) is always read, the frontend (clients) only
//! while [`Broker::wants_requests`]. Every send is bounded by `send_timeout`, so a peer that
//! stopped reading (its queue in the `zeromq` crate is full and `send` would block) costs one
//! dropped message, never a frozen queue.
//!
//! The backend's socket monitor reports a worker whose connection closed (a killed process):
//! the broker forgets it at once and hands its request in flight to the next worker (log line
//! `W: worker <id> disconnected, purged`). A send to a worker that fails is handled the same way.

use crate::broker::{Broker, Dispatch, Gone, Readiness, Route};
use crate::protocol::{self, frame_label};

use crate::protocol::PeerId;
use common::{sock, Message};
use futures::StreamExt;
use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;
use zeromq::{RouterSocket, Socket, SocketEvent, SocketRecv};

/// Default bound on one send; a healthy peer takes a message in microseconds.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// Where the queue listens and how long a send may take.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Endpoint for clients (the Guide: `tcp://*:5555`).
    pub frontend: String,
    /// Endpoint for workers (the Guide: `tcp://*:5556`).
    pub backend: String,
    /// Bound on each send.
    pub send_timeout: Duration,
}

/// The queue could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {endpoint}: {source}")]
pub struct BindError {
    /// The endpoint asked for.
    pub endpoint: String,
    /// What the socket library said.
    #[source]
    pub source: sock::SockError,
}

async fn bind(at: &str) -> Result<(RouterSocket, String), BindError> {
    let mut socket = RouterSocket::new();
    match sock::bind(&mut socket, at).await {
        Ok(bound) => Ok((socket, bound)),
        Err(source) => Err(BindError {
            endpoint: at.to_owned(),
            source,
        }),
    }
}

enum Event {
    Backend(Result<zeromq::ZmqMessage, zeromq::ZmqError>),
    Frontend(Result<zeromq::ZmqMessage, zeromq::ZmqError>),
    WorkerGone(PeerId),
    Nothing,
}

/// Runs the queue until `shutdown` resolves.
///
/// Logs `I: spqueue ready (frontend <ep>, backend <ep>)` once both sockets are bound and
/// `I: worker <id> ready` for each READY; malformed messages are logged with `E:` and dropped.
pub async fn run(config: QueueConfig, shutdown: impl Future<Output = ()>) -> Result<(), BindError> {
    tokio::pin!(shutdown);
    let (mut frontend, frontend_at) = bind(&config.frontend).await?;
    let (mut backend, backend_at) = bind(&config.backend).await?;
    tracing::info!("spqueue ready (frontend {frontend_at}, backend {backend_at})");
    let mut broker = Broker::new();
    let mut backend_events = backend.monitor();
    let mut monitoring = true;
    let mut shell = Shell {
        frontend: &mut frontend,
        backend: &mut backend,
        send_timeout: config.send_timeout,
    };
    loop {
        let event = tokio::select! {
            biased;
            () = &mut shutdown => break,
            m = shell.backend.recv() => Event::Backend(m),
            m = shell.frontend.recv(), if broker.wants_requests() => Event::Frontend(m),
            e = backend_events.next(), if monitoring => match e {
                Some(SocketEvent::Disconnected(peer)) => {
                    Event::WorkerGone(PeerId::new(bytes::Bytes::from(peer)))
                }
                Some(_) => Event::Nothing,
                None => {
                    monitoring = false;
                    Event::Nothing
                }
            },
        };
        match event {
            Event::Backend(Ok(m)) => shell.on_worker_message(&mut broker, Message::from(m)).await,
            Event::Frontend(Ok(m)) => shell.on_client_message(&mut broker, Message::from(m)).await,
            Event::Backend(Err(e)) => tracing::error!("backend receive failed: {e}"),
            Event::Frontend(Err(e)) => tracing::error!("frontend receive failed: {e}"),
            Event::WorkerGone(worker) => match broker.on_worker_gone(&worker) {
                Gone::Unknown => {}
                Gone::Idle => tracing::warn!("worker {worker} disconnected, purged"),
                Gone::Busy(route) => {
                    tracing::warn!(
                            "worker {worker} disconnected, purged (its request goes to the next worker)"
                        );
                    shell
                        .deliver(&mut broker, route.into_iter().collect())
                        .await;
                }
            },
            Event::Nothing => {}
        }
    }
    tracing::info!("spqueue interrupted, exiting");
    Ok(())
}

struct Shell<'a> {
    frontend: &'a mut RouterSocket,
    backend: &'a mut RouterSocket,
    send_timeout: Duration,
}

impl Shell<'_> {
    async fn on_worker_message(&mut self, broker: &mut Broker, message: Message) {
        tracing::debug!("from worker:\n{}", message.dump());
        // The sender's id, kept (a reference count, no copy) for the error line.
        let sender = message.first().cloned().unwrap_or_default();
        match protocol::parse_worker(message) {
            Ok((worker, msg)) => {
                let step = broker.on_worker(worker.clone(), msg);
                match step.readiness {
                    Readiness::Registered => tracing::info!("worker {worker} ready"),
                    Readiness::Duplicate => {
                        tracing::warn!("worker {worker} sent READY twice, ignored")
                    }
                    Readiness::Returned => {}
                }
                self.deliver(broker, step.routes).await;
            }
            Err(e) => tracing::error!(
                "malformed message from worker {} dropped: {e}",
                frame_label(&sender)
            ),
        }
    }

    async fn on_client_message(&mut self, broker: &mut Broker, message: Message) {
        tracing::debug!("from client:\n{}", message.dump());
        let sender = message.first().cloned().unwrap_or_default();
        match protocol::parse_request(message) {
            Ok(request) => match broker.on_request(request) {
                Dispatch::Route(route) => self.deliver(broker, vec![route]).await,
                Dispatch::Held => {}
                Dispatch::Dropped(request) => tracing::warn!(
                    "no worker ready, request from client {} dropped",
                    request.client()
                ),
            },
            Err(e) => tracing::error!(
                "malformed request from client {} dropped: {e}",
                frame_label(&sender)
            ),
        }
    }

    /// Sends every route; a request whose worker is gone goes back to the broker for another.
    async fn deliver(&mut self, broker: &mut Broker, routes: Vec<Route>) {
        let mut routes = VecDeque::from(routes);
        while let Some(route) = routes.pop_front() {
            match route {
                Route::ToWorker { worker, request } => {
                    let frames = request.to_worker(&worker);
                    tracing::debug!("to worker:\n{}", frames.dump());
                    if let Err(e) = sock::send(self.backend, frames, self.send_timeout).await {
                        tracing::warn!("worker {worker} unreachable ({e}), request re-routed");
                        routes.extend(broker.on_worker_unreachable(&worker, request));
                    }
                }
                Route::ToClient(reply) => {
                    let frames = reply.to_client();
                    tracing::debug!("to client:\n{}", frames.dump());
                    if let Err(e) = sock::send(self.frontend, frames, self.send_timeout).await {
                        tracing::warn!(
                            "client {} unreachable ({e}), reply dropped",
                            reply.client()
                        );
                    }
                }
            }
        }
    }
}
