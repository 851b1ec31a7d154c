//! The state SUB socket, kept connected to the peer's PUB by a task of its own.
//!
//! The `zeromq` crate's `connect()` does not return until the peer is up, and once connected a
//! SUB reconnects by itself only with a back-off that grows to 30 s: a backup down for a minute
//! would be heard again half a minute after it came back. This task therefore owns the socket:
//! each connect attempt is bounded, a failed attempt is retried at once with a fresh socket,
//! and when the connection drops (the socket's monitor reports it) the socket is replaced and
//! the attempts start over. A peer that is merely frozen keeps its connection, so the state
//! messages it queued are read in order when it wakes (the stall rule in [`crate::node`] relies
//! on that). The reactor's loop only reads a channel and never waits on a connect.

use common::{sock, Message};
use futures::{Stream, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zeromq::{Socket, SocketEvent, SubSocket};

/// What the link reports to the reactor.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The SUB is (again) connected and subscribed to the peer's PUB.
    Up,
    /// A message from the peer's PUB.
    State(Message),
}

/// Messages from the peer's state PUB, as they arrive.
pub(crate) struct StateLink {
    events: mpsc::Receiver<LinkEvent>,
    task: JoinHandle<()>,
}

impl StateLink {
    /// Starts connecting to `endpoint`; every attempt gives up after `attempt` and is retried.
    pub(crate) fn spawn(endpoint: String, attempt: Duration) -> StateLink {
        let (tx, events) = mpsc::channel(256);
        let task = tokio::spawn(keep_connected(endpoint, attempt, tx));
        StateLink { events, task }
    }

    /// The next event (cancel-safe).
    pub(crate) async fn recv(&mut self) -> Option<LinkEvent> {
        self.events.recv().await
    }
}

impl Drop for StateLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn keep_connected(endpoint: String, attempt: Duration, tx: mpsc::Sender<LinkEvent>) {
    let mut ever_connected = false;
    loop {
        let (mut sub, mut monitor) = connect(&endpoint, attempt).await;
        if ever_connected {
            tracing::info!("resubscribed to the peer state at {endpoint}");
        } else {
            tracing::info!("subscribed to the peer state at {endpoint}");
        }
        ever_connected = true;
        if tx.send(LinkEvent::Up).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                received = zeromq::SocketRecv::recv(&mut sub) => match received {
                    Ok(message) => {
                        if tx.send(LinkEvent::State(Message::from(message))).await.is_err() {
                            return; // the reactor is gone
                        }
                    }
                    Err(e) => {
                        tracing::debug!("state sub receive error: {e}");
                        break;
                    }
                },
                event = monitor.next() => match event {
                    Some(SocketEvent::Disconnected(_)) | None => break,
                    Some(_) => {}
                },
            }
        }
        tracing::warn!("lost the peer state connection to {endpoint}, reconnecting");
    }
}

/// Connects a fresh SUB (subscribed to everything) to `endpoint`, retrying until it works.
async fn connect(
    endpoint: &str,
    attempt: Duration,
) -> (SubSocket, impl Stream<Item = SocketEvent> + Unpin) {
    let mut failures = 0u64;
    loop {
        let started = tokio::time::Instant::now();
        let mut sub = SubSocket::with_options(sock::options(attempt, None));
        let monitor = sub.monitor();
        let result = match sub.subscribe("").await {
            Ok(()) => sock::connect(&mut sub, endpoint, attempt).await,
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => return (sub, monitor),
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::debug!(
                        "cannot reach the peer state at {endpoint} yet ({e}); retrying"
                    );
                }
                // An error that comes back at once (bad address) must not spin the CPU.
                tokio::time::sleep_until(started + attempt).await;
            }
        }
    }
}
