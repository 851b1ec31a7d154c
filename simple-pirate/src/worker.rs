//! The Simple Pirate worker: a REQ socket that says READY, then echoes each request.
//!
//! [`WorkerCore`] decides what to do with a request (echo after the simulated work, echo late,
//! or crash); [`run`] is the socket loop around it, and answers a malformed request with READY.
//!
//! A worker that loses its connection (the queue closed it or died) reconnects with a fresh
//! socket and a fresh identity and says READY again. A queue that hangs without closing the
//! connection is not noticed — that takes heartbeats (Paranoid Pirate).

use crate::protocol::{self, WorkerMessage};
use common::contract::{self, Core};
use common::fault::{Answer, FaultyServer, Served};
use common::{sock, Message};
use std::future::Future;
use std::time::Duration;
use zeromq::{ReqSocket, Socket, SocketRecv};

/// Default bound on connecting to the queue before trying again.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default bound on sending READY or a reply.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

/// The worker's decisions: echo each request, with the faults of the plan.
pub type WorkerCore = FaultyServer<WorkerMessage>;

/// READY, sent right after connecting and instead of an answer to a malformed request (a REQ
/// socket must send before it can receive, and READY puts this worker back on the queue's list).
const READY: Answer<WorkerMessage> = Answer {
    reply: WorkerMessage::Ready,
    delay: Duration::ZERO,
};

/// Where the worker connects and its bounds.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue's backend endpoint (the Guide: `tcp://localhost:5556`).
    pub queue: String,
    /// Bound on one connect attempt.
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

/// Why one connection ended.
enum Session {
    End(WorkerEnd),
    Reconnect,
}

/// Serves requests from the queue until `shutdown` resolves or a crash is simulated.
///
/// Logs `I: (<id>) worker ready` after each READY, then per request `I: (<id>) normal reply`,
/// `W: (<id>) simulating CPU overload` or `W: (<id>) simulating a crash`.
pub async fn run(
    config: WorkerConfig,
    mut core: WorkerCore,
    shutdown: impl Future<Output = ()>,
) -> WorkerEnd {
    tokio::pin!(shutdown);
    loop {
        // From the OS: a peer that connects under it would take this worker's route.
        let identity = common::ids::identity("");
        let session = tokio::select! {
            biased;
            () = &mut shutdown => return WorkerEnd::Interrupted,
            session = serve_one_connection(&config, &mut core, &identity) => session,
        };
        match session {
            Session::End(end) => return end,
            Session::Reconnect => {}
        }
    }
}

/// Connects with a fresh socket as `identity`, says READY and serves until the connection fails.
async fn serve_one_connection(config: &WorkerConfig, core: &mut WorkerCore, id: &str) -> Session {
    tracing::debug!("({id}) connecting to the queue at {}", config.queue);
    let mut socket = ReqSocket::with_options(sock::options(config.connect_timeout, Some(id)));
    match sock::connect(&mut socket, &config.queue, config.connect_timeout).await {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!("({id}) cannot reach the queue at {}: {e}", config.queue);
            if !matches!(e, sock::SockError::Timeout(..)) {
                tokio::time::sleep(config.connect_timeout).await;
            }
            return Session::Reconnect;
        }
    }
    let mut next = Some(READY);
    let mut announce = true;
    // The core answers every request it does not crash on, so this loops until the connection
    // fails or a crash is simulated.
    while let Some(Answer { reply, delay }) = next.take() {
        if !delay.is_zero() {
            // Even a zero sleep waits for the timer's next tick (about 1 ms).
            tokio::time::sleep(delay).await;
        }
        if let Err(e) = sock::send(&mut socket, reply.to_frames(), config.send_timeout).await {
            tracing::warn!("({id}) lost the queue ({e}), reconnecting");
            return Session::Reconnect;
        }
        if announce {
            tracing::info!("({id}) worker ready");
            announce = false;
        }
        let request = match socket.recv().await {
            Ok(request) => Message::from(request),
            Err(e) => {
                tracing::warn!("({id}) lost the queue ({e}), reconnecting");
                return Session::Reconnect;
            }
        };
        tracing::debug!("({id}) received request:\n{}", request.dump());
        match protocol::parse_work(request) {
            Ok(reply) => core.handle_request(WorkerMessage::Reply(reply), contract::now()),
            Err(e) => {
                tracing::error!("({id}) malformed request dropped: {e}");
                next = Some(READY);
                continue;
            }
        }
        while let Some(served) = core.poll_event() {
            match served {
                Served::Normal => tracing::info!("({id}) normal reply"),
                Served::Overloaded => tracing::warn!("({id}) simulating CPU overload"),
                Served::Crash => {
                    tracing::warn!("({id}) simulating a crash");
                    return Session::End(WorkerEnd::Crashed);
                }
            }
        }
        next = core.poll_transmit();
    }
    Session::Reconnect
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FrameError;
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
        let ready = Message::from_frames([&b""[..], &[common::envelope::READY]]);
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
