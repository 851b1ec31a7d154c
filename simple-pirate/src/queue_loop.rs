//! The `spqueue` socket loop: two ROUTER sockets around a [`Queue`].
//!
//! One task, one `select!`: the backend (workers) is always read, the frontend (clients) only
//! while [`Queue::wants_requests`]. Every send is bounded by `send_timeout`, so a peer that
//! stopped reading (its queue in the `zeromq` crate is full and `send` would block) costs one
//! dropped message, never a frozen queue.
//!
//! The backend's socket monitor reports a worker whose connection closed (a killed process):
//! the queue forgets it at once and hands its request in flight to the next worker (log line
//! `W: worker <id> disconnected, purged`). A send to a worker that fails is handled the same way.

use crate::protocol::{frame_label, PeerId};
use crate::queue::{Event, Lost, Queue, Route, Side};
use bytes::Bytes;
use common::contract::{self, Core};
use common::{sock, Message};
use futures::StreamExt;
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

/// The server could not start: its endpoint and why (one type for every server).
pub use common::sock::BindError;

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

/// Runs the queue until `shutdown` resolves.
///
/// Logs `I: spqueue ready (frontend <ep>, backend <ep>)` once both sockets are bound and
/// `I: worker <id> ready` for each READY; malformed messages are logged with `E:` and dropped.
pub async fn run(config: QueueConfig, shutdown: impl Future<Output = ()>) -> Result<(), BindError> {
    tokio::pin!(shutdown);
    let (mut frontend, frontend_at) = bind(&config.frontend).await?;
    let (mut backend, backend_at) = bind(&config.backend).await?;
    tracing::info!("spqueue ready (frontend {frontend_at}, backend {backend_at})");
    let mut queue = Queue::new();
    let mut backend_events = backend.monitor();
    let mut monitoring = true;
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            m = backend.recv() => match m {
                Ok(m) => on_worker_message(&mut queue, Message::from(m)),
                Err(e) => tracing::error!("backend receive failed: {e}"),
            },
            m = frontend.recv(), if queue.wants_requests() => match m {
                Ok(m) => on_client_message(&mut queue, Message::from(m)),
                Err(e) => tracing::error!("frontend receive failed: {e}"),
            },
            e = backend_events.next(), if monitoring => match e {
                Some(SocketEvent::Disconnected(peer)) => {
                    let worker = PeerId::new(Bytes::from(peer));
                    queue.handle_worker_lost(&worker, Lost::Disconnected, contract::now());
                }
                Some(_) => {}
                None => monitoring = false,
            },
        }
        // Events first, so each is logged before the sends it led to.
        loop {
            while let Some(event) = queue.poll_event() {
                log_event(&event);
            }
            match queue.poll_transmit() {
                None => break,
                Some(Route::ToWorker { worker, request }) => {
                    let frames = request.to_worker(&worker);
                    tracing::debug!("to worker:\n{}", frames.dump());
                    if let Err(e) = sock::send(&mut backend, frames, config.send_timeout).await {
                        tracing::warn!("worker {worker} unreachable ({e}), request re-routed");
                        queue.handle_worker_lost(&worker, Lost::Unreachable, contract::now());
                    }
                }
                Some(Route::ToClient(reply)) => {
                    let frames = reply.to_client();
                    tracing::debug!("to client:\n{}", frames.dump());
                    if let Err(e) = sock::send(&mut frontend, frames, config.send_timeout).await {
                        tracing::warn!(
                            "client {} unreachable ({e}), reply dropped",
                            reply.client()
                        );
                    }
                }
            }
        }
    }
    tracing::info!("spqueue interrupted, exiting");
    Ok(())
}

fn on_worker_message(queue: &mut Queue, message: Message) {
    tracing::debug!("from worker:\n{}", message.dump());
    queue.handle_worker(message, contract::now());
}

fn on_client_message(queue: &mut Queue, message: Message) {
    tracing::debug!("from client:\n{}", message.dump());
    queue.handle_client(message, contract::now());
}

fn log_event(event: &Event) {
    match event {
        Event::WorkerReady(worker) => tracing::info!("worker {worker} ready"),
        Event::DuplicateReady(worker) => {
            tracing::warn!("worker {worker} sent READY twice, ignored")
        }
        Event::WorkerGone {
            worker,
            busy: false,
        } => tracing::warn!("worker {worker} disconnected, purged"),
        Event::WorkerGone { worker, busy: true } => tracing::warn!(
            "worker {worker} disconnected, purged (its request goes to the next worker)"
        ),
        Event::Malformed {
            from: Side::Worker,
            sender,
            error,
        } => tracing::error!(
            "malformed message from worker {} dropped: {error}",
            frame_label(sender)
        ),
        Event::Malformed {
            from: Side::Client,
            sender,
            error,
        } => tracing::error!(
            "malformed request from client {} dropped: {error}",
            frame_label(sender)
        ),
        Event::Dropped(request) => tracing::warn!(
            "no worker ready, request from client {} dropped",
            request.client()
        ),
    }
}
