//! The Simple Pirate worker: a REQ socket that says READY, then echoes each request.
//!
//! [`WorkerCore`] decides what to do with a request (echo after the simulated work, echo late,
//! crash, or reject a malformed one); [`run`] is the socket loop around it.
//!
//! A worker that loses its connection (the queue closed it or died) reconnects with a fresh
//! socket and a fresh identity and says READY again. A queue that hangs without closing the
//! connection is not noticed — that takes heartbeats (Paranoid Pirate).

use crate::protocol::{self, FrameError, Reply, WorkerMessage};
use common::fault::{Fault, FaultPlan};
use common::rng::Rng;
use common::{sock, Message};
use std::future::Future;
use std::time::Duration;
use zeromq::{ReqSocket, Socket, SocketRecv};

/// Default bound on connecting to the queue before trying again.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default bound on sending READY or a reply.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

/// What the worker does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `reply` after `delay`.
    Reply {
        /// The request's envelope with the echoed body.
        reply: Reply,
        /// Simulated work (plus the overload delay when overloaded).
        delay: Duration,
        /// True when this answer simulates CPU overload.
        overloaded: bool,
    },
    /// Exit at once without answering.
    Crash,
    /// Not a request: drop it and say READY again (a REQ socket must send before it can
    /// receive, and READY puts this worker back on the queue's list).
    Reject(FrameError),
}

/// The worker's decisions: echo each request, with the faults of the plan.
#[derive(Debug, Clone)]
pub struct WorkerCore {
    plan: FaultPlan,
    work: Duration,
}

impl WorkerCore {
    /// Echoes after `work` per request, injecting the faults `plan` calls for.
    pub fn new(plan: FaultPlan, work: Duration) -> Self {
        Self { plan, work }
    }

    /// Decides what to do with `message` as the REQ socket delivered it.
    pub fn on_request(&mut self, message: Message) -> Action {
        let reply = match protocol::parse_work(message) {
            Ok(reply) => reply,
            Err(e) => return Action::Reject(e),
        };
        match self.plan.on_request() {
            Fault::Crash => Action::Crash,
            Fault::None => Action::Reply {
                reply,
                delay: self.work,
                overloaded: false,
            },
            Fault::Overload(extra) => Action::Reply {
                reply,
                delay: self.work + extra,
                overloaded: true,
            },
        }
    }
}

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
    let mut rng = Rng::from_entropy();
    loop {
        let identity = rng.identity();
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
    let mut to_send = WorkerMessage::Ready.to_frames();
    let mut announce = true;
    loop {
        if let Err(e) = sock::send(&mut socket, to_send, config.send_timeout).await {
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
        to_send = match core.on_request(request) {
            Action::Crash => {
                tracing::warn!("({id}) simulating a crash");
                return Session::End(WorkerEnd::Crashed);
            }
            Action::Reject(e) => {
                tracing::error!("({id}) malformed request dropped: {e}");
                WorkerMessage::Ready.to_frames()
            }
            Action::Reply {
                reply,
                delay,
                overloaded,
            } => {
                if overloaded {
                    tracing::warn!("({id}) simulating CPU overload");
                } else {
                    tracing::info!("({id}) normal reply");
                }
                if !delay.is_zero() {
                    // Even a zero sleep waits for the timer's next tick (about 1 ms).
                    tokio::time::sleep(delay).await;
                }
                WorkerMessage::Reply(reply).to_frames()
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(body: &str) -> Message {
        Message::from_frames(["C1".to_owned(), String::new(), body.to_owned()])
    }

    #[test]
    fn echoes_the_envelope_and_body_then_crashes_as_planned() {
        let d = Duration::from_millis(3);
        let mut core = WorkerCore::new(FaultPlan::none().crash_after(Some(1)), d);
        let Action::Reply {
            reply,
            delay,
            overloaded,
        } = core.on_request(work("1"))
        else {
            panic!("a reply")
        };
        assert_eq!((delay, overloaded), (d, false));
        assert_eq!(WorkerMessage::Reply(reply).to_frames(), work("1"));
        assert_eq!(core.on_request(work("2")), Action::Crash);
    }

    #[test]
    fn overload_delays_and_malformed_is_rejected_without_counting() {
        let extra = Duration::from_millis(20);
        let mut core = WorkerCore::new(
            FaultPlan::none().overload_after(Some(0), extra),
            Duration::ZERO,
        );
        assert_eq!(
            core.on_request(Message::from_frames(["no envelope"])),
            Action::Reject(FrameError::MissingDelimiter)
        );
        assert!(matches!(
            core.on_request(work("1")),
            Action::Reply {
                overloaded: true,
                delay,
                ..
            } if delay == extra
        ));
    }
}
