//! The `spworker` socket loop: a REQ socket driven by a [`WorkerCore`].
//!
//! The core decides when to connect, what to send and how to answer; this loop connects (each
//! time with a fresh socket and a fresh identity), sleeps the simulated work, sends, receives
//! and logs. A REQ socket alternates, so after each send comes one receive.
//!
//! A worker that loses its connection (the queue closed it or died) reconnects with a fresh
//! socket and a fresh identity and says READY again. A queue that hangs without closing the
//! connection is not noticed — that takes heartbeats (Paranoid Pirate).

use crate::worker::{Event, Transmit, WorkerCore};
use common::contract::{self, Core};
use common::fault::{Answer, Served};
use common::{sock, Message};
use std::future::Future;
use std::time::Duration;
use zeromq::{ReqSocket, Socket, SocketRecv};

pub use crate::worker::CONNECT_TIMEOUT;
/// Default bound on sending READY or a reply.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

/// Where the worker connects and its bounds.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue's backend endpoint (the Guide: `tcp://localhost:5556`).
    pub queue: String,
    /// Bound on one connect attempt, and the pause after a refused one.
    pub connect_timeout: Duration,
    /// Bound on one send.
    pub send_timeout: Duration,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEnd {
    /// `shutdown` resolved (Ctrl-C).
    Interrupted,
    /// The fault plan called for a crash; the caller should exit with a failure code.
    Crashed,
}

/// Serves requests from the queue until `shutdown` resolves or a crash is simulated. The core's
/// pause after a refused connect is set to `config.connect_timeout`.
///
/// Logs `I: (<id>) worker ready` after each READY, then per request `I: (<id>) normal reply`,
/// `W: (<id>) simulating CPU overload` or `W: (<id>) simulating a crash`.
pub async fn run(
    config: WorkerConfig,
    core: WorkerCore,
    shutdown: impl Future<Output = ()>,
) -> WorkerEnd {
    let mut core = core.with_retry_pause(config.connect_timeout);
    tokio::select! {
        biased;
        () = shutdown => WorkerEnd::Interrupted,
        crashed = serve(&config, &mut core) => crashed,
    }
}

/// Carries out what the core asks until it simulates a crash.
async fn serve(config: &WorkerConfig, core: &mut WorkerCore) -> WorkerEnd {
    let mut socket: Option<ReqSocket> = None;
    // The identity of the current connection, for the log lines.
    let mut id = String::new();
    // A send went out: the REQ socket now waits for the request.
    let mut awaiting = false;
    loop {
        while let Some(event) = core.poll_event() {
            match event {
                Event::Ready => tracing::info!("({id}) worker ready"),
                Event::Served(Served::Normal) => tracing::info!("({id}) normal reply"),
                Event::Served(Served::Overloaded) => {
                    tracing::warn!("({id}) simulating CPU overload")
                }
                Event::Served(Served::Crash) => {
                    tracing::warn!("({id}) simulating a crash");
                    return WorkerEnd::Crashed;
                }
                Event::Malformed(e) => tracing::error!("({id}) malformed request dropped: {e}"),
            }
        }
        match core.poll_transmit() {
            Some(Transmit::Connect) => {
                awaiting = false;
                // The old connection, if any, closes before the new one opens.
                socket = None;
                // From the OS: a peer that connects under it would take this worker's route.
                id = common::ids::identity("");
                tracing::debug!("({id}) connecting to the queue at {}", config.queue);
                let mut fresh =
                    ReqSocket::with_options(sock::options(config.connect_timeout, Some(&id)));
                match sock::connect(&mut fresh, &config.queue, config.connect_timeout).await {
                    Ok(()) => {
                        socket = Some(fresh);
                        core.handle_connected(contract::now());
                    }
                    Err(e) => {
                        tracing::warn!("({id}) cannot reach the queue at {}: {e}", config.queue);
                        let timed_out = matches!(e, sock::SockError::Timeout(..));
                        core.handle_connect_error(timed_out, contract::now());
                    }
                }
            }
            Some(Transmit::Send(Answer { reply, delay })) => {
                let Some(socket) = socket.as_mut() else {
                    // The core sends only on a connection it was told of.
                    continue;
                };
                if !delay.is_zero() {
                    // Even a zero sleep waits for the timer's next tick (about 1 ms).
                    tokio::time::sleep(delay).await;
                }
                match sock::send(socket, reply.to_frames(), config.send_timeout).await {
                    Ok(()) => {
                        awaiting = true;
                        core.handle_sent(contract::now());
                    }
                    Err(e) => {
                        tracing::warn!("({id}) lost the queue ({e}), reconnecting");
                        core.handle_queue_lost(contract::now());
                    }
                }
            }
            None if awaiting => {
                awaiting = false;
                let Some(socket) = socket.as_mut() else {
                    continue;
                };
                match socket.recv().await {
                    Ok(request) => {
                        let request = Message::from(request);
                        tracing::debug!("({id}) received request:\n{}", request.dump());
                        core.handle_request(request, contract::now());
                    }
                    Err(e) => {
                        tracing::warn!("({id}) lost the queue ({e}), reconnecting");
                        core.handle_queue_lost(contract::now());
                    }
                }
            }
            None => {
                contract::sleep_until(core.poll_timeout()).await;
                core.handle_timeout(contract::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{self, FrameError};
    use bytes::Bytes;
    use common::fault::FaultPlan;
    use zeromq::{RouterSocket, SocketSend};

    /// The shell, in virtual time: READY first; READY at once for a malformed request, which
    /// does not count; then each echo (envelope and body) after exactly its simulated work,
    /// overload included; then the crash the plan calls for.
    #[tokio::test(start_paused = true)]
    async fn echoes_after_the_work_rejects_malformed_without_counting_then_crashes() {
        let endpoint = common::testkit::tcp_endpoint();
        let mut queue = RouterSocket::new();
        sock::bind(&mut queue, &endpoint).await.unwrap();
        let (work, extra) = (Duration::from_secs(30), Duration::from_secs(20));
        let config = WorkerConfig {
            queue: endpoint,
            connect_timeout: CONNECT_TIMEOUT,
            send_timeout: SEND_TIMEOUT,
        };
        let plan = FaultPlan::none()
            .overload_after(Some(1), extra)
            .crash_after(Some(2));
        let worker = tokio::spawn(run(
            config,
            WorkerCore::new(plan, work),
            std::future::pending(),
        ));
        let ready = Message::from_frames([&b""[..], &[common::envelope::ppp::READY]]);
        let mut first = Message::from(queue.recv().await.unwrap());
        let id = first.pop_front().unwrap();
        assert_eq!(first, ready);
        // One exchange: what came back (without the worker's id) and after how long.
        let mut exchange = async |frames: &[&str]| {
            let mut request =
                Message::from_frames(frames.iter().map(|f| Bytes::from(f.to_string())));
            request.push_front(Bytes::new());
            request.push_front(id.clone());
            let sent_at = contract::now();
            queue.send(request.try_into().unwrap()).await.unwrap();
            let mut reply = Message::from(queue.recv().await.unwrap());
            reply.pop_front();
            (reply, contract::now() - sent_at)
        };
        let malformed = ["no envelope"];
        assert_eq!(
            protocol::parse_work(Message::from_frames(malformed)),
            Err(FrameError::MissingDelimiter)
        );
        assert_eq!(exchange(&malformed).await, (ready, Duration::ZERO));
        let echo = |body: &str| Message::from_frames(["", "C1", "", body].map(str::to_owned));
        assert_eq!(exchange(&["C1", "", "1"]).await, (echo("1"), work));
        assert_eq!(exchange(&["C1", "", "2"]).await, (echo("2"), work + extra));
        let mut last = Message::from_frames(["C1", "", "3"]);
        last.push_front(Bytes::new());
        last.push_front(id.clone());
        queue.send(last.try_into().unwrap()).await.unwrap();
        assert_eq!(worker.await.unwrap(), WorkerEnd::Crashed);
    }
}
