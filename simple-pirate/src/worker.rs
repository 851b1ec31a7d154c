//! The Simple Pirate worker's decisions, with no socket and no clock: when to (re)connect, what
//! to send next, and how to answer each request.
//!
//! A REQ socket must send before it can receive, so the worker always has exactly one message to
//! send next: READY on a fresh connection, the echo of each request (after the simulated work,
//! late, or never: the [`FaultPlan`]'s call), and READY again instead of an answer to a request
//! it cannot read (READY puts it back on the queue's list; the client retries the lost request).
//!
//! The back-off: a connect that timed out has already waited its bound, so the next attempt
//! starts at once; a connect refused outright (nobody listening yet) waits [`CONNECT_TIMEOUT`]
//! (the shell's `--connect-timeout-ms`) before the next, so a worker started before its queue
//! does not spin. A connection lost after it was up is retried at once, with a fresh socket and
//! a fresh identity (the shell's [`crate::worker_loop::run`] carries that out).

use crate::protocol::{self, FrameError, WorkerMessage};
use common::contract::{self, Core, Outbox};
use common::fault::{Answer, FaultPlan, FaultyServer, Served};
use common::Message;
use std::time::{Duration, Instant};

/// Default bound on connecting to the queue, and the pause after a refused connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// READY, sent right after connecting and instead of an answer to a malformed request.
const READY: Answer<WorkerMessage> = Answer {
    reply: WorkerMessage::Ready,
    delay: Duration::ZERO,
};

/// What the worker asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Open a fresh REQ socket with a fresh identity and connect it to the queue.
    Connect,
    /// Send `reply` once `delay` (the simulated work) has passed, then wait for the next request.
    Send(Answer<WorkerMessage>),
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first READY on this connection went out: the worker is on the queue's list.
    Ready,
    /// What the fault plan did with a request; [`Served::Crash`] means exit at once.
    Served(Served),
    /// A request that does not parse: dropped, and READY sent in its place.
    Malformed(FrameError),
}

/// The worker's decisions: reconnect and back-off, READY, and the fault plan's answers.
#[derive(Debug, Clone)]
pub struct WorkerCore {
    server: FaultyServer<WorkerMessage>,
    retry_pause: Duration,
    /// When to try connecting again after a refused connect.
    reconnect_at: Option<Instant>,
    /// True from a new connection until its first send succeeded.
    announce: bool,
    outbox: Outbox<Transmit, Event>,
}

impl WorkerCore {
    /// A worker that answers after `work` per request, with the faults `plan` calls for. Its
    /// first request to the shell is [`Transmit::Connect`].
    pub fn new(plan: FaultPlan, work: Duration) -> Self {
        let mut outbox = Outbox::default();
        outbox.transmit(Transmit::Connect);
        Self {
            server: FaultyServer::new(plan, work),
            retry_pause: CONNECT_TIMEOUT,
            reconnect_at: None,
            announce: false,
            outbox,
        }
    }

    /// The same worker with another pause after a refused connect (the default is
    /// [`CONNECT_TIMEOUT`]).
    pub fn with_retry_pause(mut self, pause: Duration) -> Self {
        self.retry_pause = pause;
        self
    }

    /// The socket connected: say READY.
    pub fn handle_connected(&mut self, _now: Instant) {
        self.announce = true;
        self.outbox.transmit(Transmit::Send(READY));
    }

    /// A connect failed; `timed_out` if it used up its whole bound (then try again at once),
    /// otherwise wait the retry pause first.
    pub fn handle_connect_error(&mut self, timed_out: bool, now: Instant) {
        if timed_out {
            self.outbox.transmit(Transmit::Connect);
        } else {
            self.reconnect_at = Some(contract::saturating_add(now, self.retry_pause));
        }
    }

    /// The last [`Transmit::Send`] went out.
    pub fn handle_sent(&mut self, _now: Instant) {
        if std::mem::take(&mut self.announce) {
            self.outbox.event(Event::Ready);
        }
    }

    /// A request arrived, as the REQ socket hands it over (client envelope, body).
    pub fn handle_request(&mut self, request: Message, now: Instant) {
        match protocol::parse_work(request) {
            Ok(reply) => {
                self.server.handle_request(WorkerMessage::Reply(reply), now);
                while let Some(served) = self.server.poll_event() {
                    self.outbox.event(Event::Served(served));
                }
                while let Some(answer) = self.server.poll_transmit() {
                    self.outbox.transmit(Transmit::Send(answer));
                }
            }
            Err(e) => {
                self.outbox.event(Event::Malformed(e));
                self.outbox.transmit(Transmit::Send(READY));
            }
        }
    }

    /// A send or receive failed: the queue closed the connection or died. Reconnect at once.
    pub fn handle_queue_lost(&mut self, _now: Instant) {
        self.announce = false;
        self.outbox.transmit(Transmit::Connect);
    }
}

impl Core for WorkerCore {
    type Transmit = Transmit;
    type Event = Event;

    /// The pause after a refused connect is over: connect again.
    fn handle_timeout(&mut self, now: Instant) {
        if self.reconnect_at.is_some_and(|at| now >= at) {
            self.reconnect_at = None;
            self.outbox.transmit(Transmit::Connect);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.reconnect_at
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Everything the worker asked for since the last call: its events and its transmits.
    fn drain(w: &mut WorkerCore) -> (Vec<Event>, Vec<Transmit>) {
        let events = std::iter::from_fn(|| w.poll_event()).collect();
        (events, std::iter::from_fn(|| w.poll_transmit()).collect())
    }

    fn request(body: &str) -> Message {
        Message::from_frames(["C1", "", body].map(str::to_owned))
    }

    fn echo(body: &str, delay: Duration) -> Transmit {
        let reply = protocol::parse_work(request(body)).unwrap();
        Transmit::Send(Answer {
            reply: WorkerMessage::Reply(reply),
            delay,
        })
    }

    #[test]
    fn a_refused_connect_waits_the_pause_a_timed_out_one_retries_at_once() {
        let t0 = Instant::now();
        let mut w = WorkerCore::new(FaultPlan::none(), MS).with_retry_pause(1000 * MS);
        assert_eq!(drain(&mut w), (vec![], vec![Transmit::Connect]));
        assert_eq!(w.poll_timeout(), None);
        // Refused: nothing until the pause is over, however often the timer is run early.
        w.handle_connect_error(false, t0);
        assert_eq!(w.poll_timeout(), Some(t0 + 1000 * MS));
        w.handle_timeout(t0 + 999 * MS);
        assert_eq!(drain(&mut w), (vec![], vec![]));
        w.handle_timeout(t0 + 1000 * MS);
        assert_eq!(drain(&mut w), (vec![], vec![Transmit::Connect]));
        assert_eq!(w.poll_timeout(), None);
        // Timed out: the bound was the wait, so the next attempt starts at once.
        let t1 = t0 + 2000 * MS;
        w.handle_connect_error(true, t1);
        assert_eq!(drain(&mut w), (vec![], vec![Transmit::Connect]));
        assert_eq!(w.poll_timeout(), None);
    }

    #[test]
    fn ready_goes_first_and_is_announced_once_per_connection() {
        let t = Instant::now();
        let mut w = WorkerCore::new(FaultPlan::none(), 5 * MS);
        drain(&mut w);
        w.handle_connected(t);
        assert_eq!(drain(&mut w), (vec![], vec![Transmit::Send(READY)]));
        w.handle_sent(t);
        assert_eq!(drain(&mut w), (vec![Event::Ready], vec![]));
        w.handle_request(request("1"), t);
        assert_eq!(
            drain(&mut w),
            (vec![Event::Served(Served::Normal)], vec![echo("1", 5 * MS)])
        );
        w.handle_sent(t);
        assert_eq!(drain(&mut w), (vec![], vec![]), "a reply is not a READY");
        // The queue went away: reconnect at once, and announce READY on the new connection.
        w.handle_queue_lost(t);
        assert_eq!(drain(&mut w), (vec![], vec![Transmit::Connect]));
        w.handle_connected(t);
        w.handle_sent(t);
        assert_eq!(
            drain(&mut w),
            (vec![Event::Ready], vec![Transmit::Send(READY)])
        );
    }

    #[test]
    fn a_malformed_request_is_answered_with_ready_and_does_not_count() {
        let t = Instant::now();
        let plan = FaultPlan::none().crash_after(Some(1));
        let mut w = WorkerCore::new(plan, 5 * MS);
        w.handle_connected(t);
        w.handle_sent(t);
        drain(&mut w);
        w.handle_request(Message::from_frames(["no envelope"]), t);
        assert_eq!(
            drain(&mut w),
            (
                vec![Event::Malformed(FrameError::MissingDelimiter)],
                vec![Transmit::Send(READY)]
            )
        );
        w.handle_sent(t);
        assert_eq!(
            drain(&mut w),
            (vec![], vec![]),
            "READY again, not announced"
        );
        // The malformed request was not served: the plan's one answer is still to come.
        w.handle_request(request("1"), t);
        assert_eq!(
            drain(&mut w),
            (vec![Event::Served(Served::Normal)], vec![echo("1", 5 * MS)])
        );
        w.handle_request(request("2"), t);
        assert_eq!(drain(&mut w), (vec![Event::Served(Served::Crash)], vec![]));
    }
}
