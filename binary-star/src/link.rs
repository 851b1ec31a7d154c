//! The state SUB socket, kept connected to the peer's PUB by a task of its own.
//!
//! The `zeromq` crate's `connect()` does not return until the peer is up, and once connected a
//! SUB reconnects by itself only with a back-off that grows to 30 s: a backup down for a minute
//! would be heard again half a minute after it came back. This task therefore owns the socket:
//! each connect attempt is bounded, a failed attempt is retried at once with a fresh socket,
//! and when the connection drops (the socket's monitor reports it) the socket is replaced and
//! the attempts start over.
//!
//! A silent network partition is never reported: no FIN, no RST, the monitor stays quiet, and
//! after the heal the peer's messages would wait on TCP's retransmission back-off (seconds to
//! minutes on a real network) while both servers, each believing the other gone, could serve.
//! So when nothing at all has arrived for `silence` (the peer's expiry, at least two
//! heartbeats) the socket is also replaced; a fresh connect gets through as soon as the network
//! does, and the peer's next heartbeat is current. What was queued on the old connection is
//! lost, which is fine: it would be stale (see the epochs in [`crate::node`]).
//!
//! When *this* process was frozen, the messages queued in the socket are read first (the loop
//! prefers a ready message to the silence timer), in order, so the stall rule in
//! [`crate::node`] still sees what the peer did meanwhile. The reactor's loop only reads a
//! channel and never waits on a connect.

use common::contract::{self, now};
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
    /// Starts connecting to `endpoint`; every attempt gives up after `attempt` and is retried;
    /// a connection that brings nothing for `silence` is replaced.
    pub(crate) fn spawn(endpoint: String, attempt: Duration, silence: Duration) -> StateLink {
        let (tx, events) = mpsc::channel(256);
        let task = tokio::spawn(keep_connected(endpoint, attempt, silence, tx));
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

async fn keep_connected(
    endpoint: String,
    attempt: Duration,
    silence: Duration,
    tx: mpsc::Sender<LinkEvent>,
) {
    let mut ever_connected = false;
    // Replacements for silence in a row: only the first of a run is logged at `W:`.
    let mut silent_runs = 0u64;
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
        let mut quiet_since = now();
        let silent = loop {
            tokio::select! {
                biased;
                received = zeromq::SocketRecv::recv(&mut sub) => match received {
                    Ok(message) => {
                        quiet_since = now();
                        silent_runs = 0;
                        if tx.send(LinkEvent::State(Message::from(message))).await.is_err() {
                            return; // the reactor is gone
                        }
                    }
                    Err(e) => {
                        tracing::debug!("state sub receive error: {e}");
                        break false;
                    }
                },
                event = monitor.next() => match event {
                    Some(SocketEvent::Disconnected(_)) | None => break false,
                    Some(_) => {}
                },
                () = contract::sleep_until(Some(quiet_since + silence)) => break true,
            }
        };
        if !silent {
            tracing::warn!("lost the peer state connection to {endpoint}, reconnecting");
        } else {
            silent_runs += 1;
            let ms = silence.as_millis();
            if silent_runs == 1 {
                tracing::warn!(
                    "no state from the peer for {ms} ms, replacing the connection to {endpoint}"
                );
            } else {
                tracing::debug!(
                    "no state from the peer for {ms} ms, replacing the connection to {endpoint}"
                );
            }
        }
    }
}

/// Connects a fresh SUB (subscribed to everything) to `endpoint`, retrying until it works.
async fn connect(
    endpoint: &str,
    attempt: Duration,
) -> (SubSocket, impl Stream<Item = SocketEvent> + Unpin) {
    let mut failures = 0u64;
    loop {
        let started = now();
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
                contract::sleep_until(Some(contract::saturating_add(started, attempt))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeromq::{PubSocket, SocketSend, ZmqMessage};

    const MS: Duration = Duration::from_millis(1);

    /// The next event within a minute of virtual time.
    async fn next(link: &mut StateLink) -> LinkEvent {
        tokio::time::timeout(60_000 * MS, link.recv())
            .await
            .expect("no link event within a minute")
            .expect("the link task ended")
    }

    /// In virtual time: a peer PUB that publishes is kept, one that goes silent is replaced
    /// after exactly `silence`, and again after each further `silence`.
    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_replaced_after_the_silence_time() {
        let path = std::env::temp_dir().join(format!("bstar-link-{}.ipc", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let endpoint = format!("ipc://{}", path.display());
        let mut publisher = PubSocket::new();
        publisher.bind(&endpoint).await.unwrap();
        let (attempt, silence) = (1000 * MS, 2000 * MS);
        let mut link = StateLink::spawn(endpoint, attempt, silence);
        assert!(matches!(next(&mut link).await, LinkEvent::Up));
        // A heartbeat every 500 ms for 5 s: the connection stays (no second Up).
        let mut heard = 0;
        let until = now() + 5000 * MS;
        while now() < until {
            tokio::time::sleep(500 * MS).await;
            publisher.send(ZmqMessage::from("4:1")).await.unwrap();
            while let Ok(Some(event)) = tokio::time::timeout(MS, link.recv()).await {
                assert!(matches!(event, LinkEvent::State(_)), "{event:?}");
                heard += 1;
            }
        }
        assert!(heard >= 8, "heard {heard} of 10 heartbeats");
        // The peer falls silent: replaced after `silence`, then again after each `silence`.
        for _ in 0..2 {
            let quiet = now();
            assert!(matches!(next(&mut link).await, LinkEvent::Up));
            let waited = now() - quiet;
            assert!(
                waited >= silence - 500 * MS && waited < silence + attempt,
                "replaced after {waited:?}"
            );
        }
        let _ = std::fs::remove_file(&path);
    }
}
