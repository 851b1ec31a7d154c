//! The Simple Pirate worker: a REQ socket that says READY, then echoes each request.
//!
//! [`WorkerCore`] decides what to do with a request (echo after the simulated work, echo late,
//! crash, or reject a malformed one) and says it through `poll_event` and `poll_transmit`;
//! [`run`] is the socket loop around it.
//!
//! A worker that loses its connection (the queue closed it or died) reconnects with a fresh
//! socket and a fresh identity and says READY again. A queue that hangs without closing the
//! connection is not noticed — that takes heartbeats (Paranoid Pirate).

use crate::protocol::{self, FrameError, WorkerMessage};
use common::contract::{self, Core, Outbox};
use common::fault::{Fault, FaultPlan};
use common::rng::Rng;
use common::{sock, Message};
use std::future::Future;
use std::time::{Duration, Instant};
use zeromq::{ReqSocket, Socket, SocketRecv};

/// Default bound on connecting to the queue before trying again.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default bound on sending READY or a reply.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

/// What the worker sends next, once `delay` (the simulated work) has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// A reply, or READY after a malformed request.
    pub message: WorkerMessage,
    /// Simulated work (plus the overload delay when overloaded).
    pub delay: Duration,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request answered after the normal work.
    Normal,
    /// A request answered late: simulated CPU overload.
    Overloaded,
    /// The fault plan calls for a crash: the shell exits at once without answering.
    Crash,
    /// Not a request: dropped, and READY sent instead (a REQ socket must send before it can
    /// receive, and READY puts this worker back on the queue's list).
    Malformed(FrameError),
}

/// The worker's decisions: echo each request, with the faults of the plan. A
/// [`common::contract::Core`] with no timer.
#[derive(Debug, Clone)]
pub struct WorkerCore {
    plan: FaultPlan,
    work: Duration,
    outbox: Outbox<Answer, Event>,
}

impl WorkerCore {
    /// Echoes after `work` per request, injecting the faults `plan` calls for.
    pub fn new(plan: FaultPlan, work: Duration) -> Self {
        let outbox = Outbox::default();
        Self { plan, work, outbox }
    }

    /// `message` arrived, as the REQ socket delivered it.
    pub fn handle_request(&mut self, message: Message, _now: Instant) {
        let (event, message, delay) = match protocol::parse_work(message) {
            Err(e) => (Event::Malformed(e), WorkerMessage::Ready, Duration::ZERO),
            Ok(reply) => match self.plan.on_request() {
                Fault::Crash => return self.outbox.event(Event::Crash),
                Fault::None => (Event::Normal, WorkerMessage::Reply(reply), self.work),
                Fault::Overload(extra) => (
                    Event::Overloaded,
                    WorkerMessage::Reply(reply),
                    self.work + extra,
                ),
            },
        };
        self.outbox.event(event);
        self.outbox.transmit(Answer { message, delay });
    }
}

impl Core for WorkerCore {
    type Transmit = Answer;
    type Event = Event;

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_transmit(&mut self) -> Option<Answer> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
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
    let mut next = Some(Answer {
        message: WorkerMessage::Ready,
        delay: Duration::ZERO,
    });
    let mut announce = true;
    // The core answers every request it does not crash on, so this loops until the connection
    // fails or a crash is simulated.
    while let Some(Answer { message, delay }) = next.take() {
        if !delay.is_zero() {
            // Even a zero sleep waits for the timer's next tick (about 1 ms).
            tokio::time::sleep(delay).await;
        }
        if let Err(e) = sock::send(&mut socket, message.to_frames(), config.send_timeout).await {
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
        core.handle_request(request, contract::now());
        while let Some(event) = core.poll_event() {
            match event {
                Event::Normal => tracing::info!("({id}) normal reply"),
                Event::Overloaded => tracing::warn!("({id}) simulating CPU overload"),
                Event::Malformed(e) => tracing::error!("({id}) malformed request dropped: {e}"),
                Event::Crash => {
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

    fn work(body: &str) -> Message {
        Message::from_frames(["C1".to_owned(), String::new(), body.to_owned()])
    }

    /// One request in; the event and the answer out.
    fn answer(core: &mut WorkerCore, message: Message) -> (Option<Event>, Option<Answer>) {
        core.handle_request(message, Instant::now());
        let step = (core.poll_event(), core.poll_transmit());
        assert_eq!((core.poll_event(), core.poll_transmit()), (None, None));
        step
    }

    #[test]
    fn echoes_the_envelope_and_body_then_crashes_as_planned() {
        let d = Duration::from_millis(3);
        let mut core = WorkerCore::new(FaultPlan::none().crash_after(Some(1)), d);
        assert_eq!(core.poll_timeout(), None);
        let (event, Some(Answer { message, delay })) = answer(&mut core, work("1")) else {
            panic!("a reply")
        };
        assert_eq!((delay, event), (d, Some(Event::Normal)));
        assert_eq!(message.to_frames(), work("1"));
        assert_eq!(answer(&mut core, work("2")), (Some(Event::Crash), None));
    }

    #[test]
    fn overload_delays_and_malformed_is_rejected_without_counting() {
        let extra = Duration::from_millis(20);
        let mut core = WorkerCore::new(
            FaultPlan::none().overload_after(Some(0), extra),
            Duration::ZERO,
        );
        assert_eq!(
            answer(&mut core, Message::from_frames(["no envelope"])),
            (
                Some(Event::Malformed(FrameError::MissingDelimiter)),
                Some(Answer {
                    message: WorkerMessage::Ready,
                    delay: Duration::ZERO
                })
            )
        );
        assert!(matches!(
            answer(&mut core, work("1")),
            (Some(Event::Overloaded), Some(Answer { delay, .. })) if delay == extra
        ));
    }

    /// The shell holds one timing job, the simulated work. In virtual time: READY first, then
    /// each reply exactly the work after its request.
    #[tokio::test(start_paused = true)]
    async fn the_reply_waits_for_the_work() {
        use zeromq::{RouterSocket, SocketSend};
        let endpoint = common::testkit::tcp_endpoint();
        let mut queue = RouterSocket::new();
        sock::bind(&mut queue, &endpoint).await.unwrap();
        let effort = Duration::from_secs(30);
        let config = WorkerConfig {
            queue: endpoint,
            connect_timeout: CONNECT_TIMEOUT,
            send_timeout: SEND_TIMEOUT,
        };
        let core = WorkerCore::new(FaultPlan::none(), effort);
        tokio::spawn(run(config, core, std::future::pending()));
        let mut ready = Message::from(queue.recv().await.unwrap());
        let worker = ready.pop_front().unwrap();
        assert_eq!(ready, Message::from_frames([&b""[..], &[protocol::READY]]));
        let mut request = work("1");
        request.push_front(bytes::Bytes::new());
        request.push_front(worker.clone());
        let sent_at = contract::now();
        queue
            .send(request.clone().try_into().unwrap())
            .await
            .unwrap();
        let reply = Message::from(queue.recv().await.unwrap());
        assert_eq!((reply, contract::now() - sent_at), (request, effort));
    }
}
