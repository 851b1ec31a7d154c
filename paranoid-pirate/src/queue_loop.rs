//! `ppqueue`'s I/O loop: a frontend ROUTER for clients, a backend ROUTER for workers, and a
//! [`Queue`] that makes every decision.
//!
//! # Log lines (a contract: tests and the tour wait for them)
//! * `I: ppqueue ready (frontend <endpoint>, backend <endpoint>)` once both sockets are bound
//! * `I: worker <id> ready` when a worker registers
//! * `W: worker <id> expired, purged (silent <ms> ms)` when a worker misses its heartbeats
//! * `W: worker <id> disconnected, purged (silent <ms> ms)` when its connection closes (a killed
//!   process); both purge lines contain "purged"
//! * `E: …` for every malformed message, which is dropped
//! * `I: ppqueue interrupted, exiting` on SIGINT/SIGTERM

use crate::queue::{Event, Queue, QueueConfig, Side, Transmit};
use bytes::Bytes;
use common::contract::{self, Core};
use common::msg::frame_text;
use common::sock::{self, SockError};
use common::Message;
use futures::StreamExt;
use std::future::Future;
use std::time::Duration;
use tracing::{debug, error, info, warn};
use zeromq::{RouterSocket, Socket, SocketEvent, SocketRecv, ZmqError};

/// Everything `ppqueue` needs to run.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Where clients connect (Guide: `tcp://*:5555`).
    pub frontend: String,
    /// Where workers connect (Guide: `tcp://*:5556`).
    pub backend: String,
    /// Heartbeat, liveness and pending-request bound.
    pub config: QueueConfig,
    /// Longest a single send may take; a stuck peer costs at most this, never the whole queue.
    pub send_timeout: Duration,
}

/// Why the queue could not run.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// An endpoint could not be bound (in use, bad address, …).
    #[error("cannot bind {side} endpoint {endpoint}: {source}")]
    Bind {
        /// "frontend" or "backend".
        side: &'static str,
        /// The endpoint as given.
        endpoint: String,
        /// What the socket library said.
        source: SockError,
    },
}

/// Binds both sockets and serves until `shutdown` resolves.
pub async fn run(
    options: QueueOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), QueueError> {
    let mut frontend = RouterSocket::new();
    let mut backend = RouterSocket::new();
    let front_at = sock::bind(&mut frontend, &options.frontend)
        .await
        .map_err(|source| QueueError::Bind {
            side: "frontend",
            endpoint: options.frontend.clone(),
            source,
        })?;
    let back_at = sock::bind(&mut backend, &options.backend)
        .await
        .map_err(|source| QueueError::Bind {
            side: "backend",
            endpoint: options.backend.clone(),
            source,
        })?;
    info!("ppqueue ready (frontend {front_at}, backend {back_at})");

    // Peer disconnects on the backend: a killed worker's connection closes at once, so the
    // queue need not wait for its liveness to run out.
    let mut backend_events = backend.monitor();
    let mut monitoring = true;
    let mut queue = Queue::new(options.config.clone(), contract::now());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            received = backend.recv() => match received {
                Ok(message) => {
                    let message = Message::from(message);
                    debug!("from worker:\n{}", message.dump());
                    queue.handle_worker(message, contract::now());
                }
                Err(e) => receive_failed("backend", e).await,
            },
            received = frontend.recv(), if queue.accepts_requests(contract::now()) => match received {
                Ok(message) => {
                    let message = Message::from(message);
                    debug!("from client:\n{}", message.dump());
                    queue.handle_client(message, contract::now());
                }
                Err(e) => receive_failed("frontend", e).await,
            },
            event = backend_events.next(), if monitoring => match event {
                Some(SocketEvent::Disconnected(peer)) => {
                    queue.handle_worker_lost(&Bytes::from(peer), contract::now());
                }
                Some(_) => {}
                None => monitoring = false,
            },
            () = contract::sleep_until(queue.poll_timeout()) => queue.handle_timeout(contract::now()),
        }
        // Events first, so each is logged before the sends it led to.
        loop {
            while let Some(event) = queue.poll_event() {
                log_event(&event);
            }
            let Some(transmit) = queue.poll_transmit() else {
                break;
            };
            match transmit {
                Transmit::ToClient(reply) => {
                    let message = reply.to_message();
                    let client = message.first().map(|p| frame_text(p)).unwrap_or_default();
                    debug!("to client:\n{}", message.dump());
                    if let Err(e) = sock::send(&mut frontend, message, options.send_timeout).await {
                        // Usually a client that gave up on this try and reconnected.
                        warn!("reply to client {client} lost: {e}");
                    }
                }
                Transmit::ToWorker { worker, command } => {
                    let mut message = command.to_message();
                    message.push_front(worker.clone());
                    debug!("to worker:\n{}", message.dump());
                    match sock::send(&mut backend, message, options.send_timeout).await {
                        Ok(()) => continue,
                        // Its queue in the socket is full: it has not read for a long time. The
                        // message did not go out; rather than leave a request with a worker that
                        // is not reading, treat it as gone (it re-registers when it recovers).
                        Err(e @ SockError::Timeout(..)) => {
                            warn!("send to worker {} failed: {e}", frame_text(&worker));
                        }
                        // The socket no longer knows this identity: the worker is gone.
                        Err(e) => debug!("send to worker {} failed: {e}", frame_text(&worker)),
                    }
                    queue.handle_worker_lost(&worker, contract::now());
                }
            }
        }
    }
    info!("ppqueue interrupted, exiting");
    Ok(())
}

/// A receive error is not expected from a ROUTER; log it and pause a moment so a socket that
/// keeps failing cannot spin the loop.
async fn receive_failed(side: &str, e: ZmqError) {
    error!("{side} receive failed: {e}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn log_event(event: &Event) {
    match event {
        Event::WorkerReady { worker, replaced } => {
            if *replaced {
                info!(
                    "worker {} ready (again: old registration replaced)",
                    frame_text(worker)
                );
            } else {
                info!("worker {} ready", frame_text(worker));
            }
        }
        Event::WorkerPurged {
            worker,
            silent,
            was_busy,
        } => warn!(
            "worker {} expired, purged (silent {} ms){}",
            frame_text(worker),
            silent.as_millis(),
            if *was_busy {
                "; its request is lost, the client retries"
            } else {
                ""
            }
        ),
        Event::WorkerGone {
            worker,
            silent,
            requeued,
        } => warn!(
            "worker {} disconnected, purged (silent {} ms){}",
            frame_text(worker),
            silent.as_millis(),
            if *requeued {
                "; its request goes to the next idle worker"
            } else {
                ""
            }
        ),
        Event::Malformed { side, peer, error } => error!(
            "invalid message from {} {}: {error}; dropped",
            match side {
                Side::Frontend => "client",
                Side::Backend => "worker",
            },
            peer.as_deref().map(frame_text).unwrap_or_default()
        ),
        Event::UnknownWorker { worker } => warn!(
            "heartbeat from unregistered worker {}, ignored (it must send READY)",
            frame_text(worker)
        ),
        Event::LateReply { worker } => warn!(
            "late reply from purged worker {}, forwarded to its client",
            frame_text(worker)
        ),
        Event::UnexpectedReply { worker } => warn!(
            "reply from idle worker {} with no request, forwarded",
            frame_text(worker)
        ),
        Event::PendingOverflow { client } => error!(
            "too many pending requests: dropped the oldest, from client {}",
            frame_text(client)
        ),
    }
}

/// The Guide's endpoints (`tcp://*:5555`, `tcp://*:5556`) and timings.
impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            frontend: "tcp://*:5555".into(),
            backend: "tcp://*:5556".into(),
            config: QueueConfig::default(),
            send_timeout: Duration::from_millis(500),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{FromWorker, ToWorker};
    use common::testkit::tcp_endpoint;
    use zeromq::DealerSocket;

    /// The shell's one timing job is to call the core when `poll_timeout` says. In virtual
    /// time: a worker that says READY and then nothing gets a heartbeat once per interval, and
    /// none after liveness × interval, when it is purged.
    #[tokio::test(start_paused = true)]
    async fn a_silent_worker_is_heartbeated_each_interval_then_purged() {
        let backend = tcp_endpoint();
        let options = QueueOptions {
            frontend: tcp_endpoint(),
            backend: backend.clone(),
            ..QueueOptions::default()
        };
        let interval = options.config.heartbeat;
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(run(options, async {
            stopped.await.ok();
        }));
        let mut worker = DealerSocket::new();
        let long = Duration::from_secs(60);
        sock::connect(&mut worker, &backend, long).await.unwrap();
        sock::send(&mut worker, FromWorker::Ready.to_message(), long)
            .await
            .unwrap();
        let ready_at = contract::now();
        let mut heard = Vec::new();
        while let Some(message) = sock::recv(&mut worker, 10 * interval).await.unwrap() {
            assert_eq!(ToWorker::parse(message).unwrap(), ToWorker::Heartbeat);
            heard.push(contract::now() - ready_at);
        }
        // READY came at most an interval after the queue's clock started, so 2 or 3 heartbeats
        // fall before the worker's 3-interval deadline, one interval apart, and none after it.
        assert!((2..=3).contains(&heard.len()), "{heard:?}");
        assert!(
            heard.windows(2).all(|w| w[1] - w[0] == interval),
            "{heard:?}"
        );
        assert!(*heard.last().unwrap() < 3 * interval, "{heard:?}");
    }
}
