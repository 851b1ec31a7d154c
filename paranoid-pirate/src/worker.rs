//! The Paranoid Pirate worker's brain: heartbeats to the queue, the queue's liveness, the
//! reconnect back-off, one request at a time and the simulated faults. No sockets, no clock; it
//! follows [`common::contract`].
//!
//! The shell ([`crate::worker_loop`]) owns the [`common::session::Session`] and runs the work
//! off the loop, so heartbeats keep flowing while a request is being worked on.
//!
//! # Life of a worker
//! 1. A new core asks for a connection ([`Transmit::Reconnect`]); once it is up,
//!    [`WorkerCore::handle_connected`] sends READY and the queue's liveness starts full.
//! 2. Every message from the queue (HEARTBEAT or a request) refreshes the queue's liveness and
//!    resets the back-off. A request becomes an [`Event::Job`]; one runs at a time, others wait.
//! 3. [`handle_timeout`](Core::handle_timeout) sends HEARTBEAT when due, and once the queue has
//!    been silent for `liveness × heartbeat` drops the connection and reconnects after the
//!    back-off (1 s doubling to 32 s). A connection that closes or fails outright (the queue was
//!    killed) is reported through [`WorkerCore::handle_queue_lost`] and handled the same way,
//!    without waiting for the silence.
//! 4. Work finished for an older connection is not answered: that queue forgot us (it purged
//!    us or restarted), and the client has retried.

use crate::protocol::{FrameError, FromWorker, Routed, ToWorker};
use common::contract::{Core, Outbox};
use common::fault::{Fault, FaultPlan};
use common::heartbeat::{
    Backoff, Liveness, Ticker, HEARTBEAT_INTERVAL, HEARTBEAT_LIVENESS, INTERVAL_INIT, INTERVAL_MAX,
};
use common::Message;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tuning of a [`WorkerCore`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How often the worker heartbeats the queue (Guide: 1000 ms).
    pub heartbeat: Duration,
    /// Missed queue heartbeats before the queue is dead (Guide: 3).
    pub liveness: u32,
    /// First reconnect delay (Guide: 1000 ms).
    pub reconnect_initial: Duration,
    /// Reconnect delay cap (Guide: 32000 ms).
    pub reconnect_max: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            heartbeat: HEARTBEAT_INTERVAL,
            liveness: HEARTBEAT_LIVENESS,
            reconnect_initial: INTERVAL_INIT,
            reconnect_max: INTERVAL_MAX,
        }
    }
}

impl WorkerConfig {
    /// How long the queue may stay silent: `heartbeat × liveness`. Also the bound on one
    /// connect attempt, since a queue that does not accept us in that time is as dead as a
    /// silent one. Saturates rather than overflowing.
    pub fn silence_limit(&self) -> Duration {
        self.heartbeat.saturating_mul(self.liveness.max(1))
    }
}

/// A request to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Which connection it arrived on (the reply is dropped if that connection is gone).
    pub connection: u64,
    /// The request, envelope included.
    pub request: Routed,
    /// What the fault plan says to do with it.
    pub fault: Fault,
}

/// What the core asks the shell to do with the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send this to the queue.
    Send(FromWorker),
    /// Drop the socket, wait `after`, connect a fresh one (fresh identity), then call
    /// [`WorkerCore::handle_connected`] (or [`WorkerCore::handle_queue_lost`] if that fails).
    Reconnect {
        /// The back-off delay.
        after: Duration,
    },
}

/// What the core reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start working on this job.
    Job(Job),
    /// The queue has been silent for `liveness × heartbeat`.
    QueueSilent,
    /// The connection is dropped; the next one comes after this back-off.
    Reconnecting(Duration),
    /// Work finished for a connection that is gone: its reply is dropped.
    StaleReply,
    /// A message from the queue that is not 6/PPP: dropped, and not counted as life.
    Malformed(FrameError),
}

#[derive(Debug)]
struct Link {
    queue: Liveness,
    ticker: Ticker,
}

/// The worker's state across connections.
#[derive(Debug)]
pub struct WorkerCore {
    config: WorkerConfig,
    faults: FaultPlan,
    backoff: Backoff,
    /// `None` while disconnected (backing off or connecting).
    link: Option<Link>,
    /// Incremented by every [`WorkerCore::handle_connected`].
    connection: u64,
    /// A job is running in the shell.
    working: bool,
    /// Requests received while working.
    backlog: VecDeque<Routed>,
    outbox: Outbox<Transmit, Event>,
}

impl WorkerCore {
    /// A disconnected worker that asks for its first connection at once.
    pub fn new(config: WorkerConfig, faults: FaultPlan) -> Self {
        let backoff = Backoff::new(config.reconnect_initial, config.reconnect_max);
        let mut outbox = Outbox::default();
        outbox.transmit(Transmit::Reconnect {
            after: Duration::ZERO,
        });
        Self {
            config,
            faults,
            backoff,
            link: None,
            connection: 0,
            working: false,
            backlog: VecDeque::new(),
            outbox,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// True between [`WorkerCore::handle_connected`] and the queue being declared lost.
    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }

    /// A fresh socket is connected: READY goes out, the queue's liveness starts full. Requests
    /// left over from the previous connection are forgotten.
    pub fn handle_connected(&mut self, now: Instant) {
        self.connection += 1;
        self.backlog.clear();
        self.link = Some(Link {
            queue: Liveness::new(self.config.heartbeat, self.config.liveness, now),
            ticker: Ticker::new(self.config.heartbeat, now),
        });
        self.outbox.transmit(Transmit::Send(FromWorker::Ready));
    }

    /// The queue cannot be reached: a connect attempt failed, the connection closed (the queue
    /// process died; its kernel closed the socket) or the socket failed. Reconnects after the
    /// back-off.
    pub fn handle_queue_lost(&mut self, _now: Instant) {
        self.link = None;
        self.backlog.clear();
        let after = self.backoff.next_delay();
        self.outbox.event(Event::Reconnecting(after));
        self.outbox.transmit(Transmit::Reconnect { after });
    }

    /// A send failed. Without READY the queue does not know us: it counts as losing the queue,
    /// and the worker starts afresh. A lost HEARTBEAT shows up as silence soon enough, and a
    /// lost reply is retried by its client.
    pub fn handle_unsent(&mut self, command: &FromWorker, now: Instant) {
        if *command == FromWorker::Ready && self.link.is_some() {
            self.handle_queue_lost(now);
        }
    }

    /// A message from the queue. A request becomes an [`Event::Job`] at once if no other job is
    /// running (otherwise it waits its turn). Garbage is an [`Event::Malformed`] and does not
    /// count as life.
    pub fn handle_message(&mut self, message: Message, now: Instant) {
        let command = match ToWorker::parse(message) {
            Ok(command) => command,
            Err(e) => return self.outbox.event(Event::Malformed(e)),
        };
        if let Some(link) = self.link.as_mut() {
            link.queue.heard(now);
        }
        self.backoff.reset();
        if let ToWorker::Request(request) = command {
            self.backlog.push_back(request);
            self.next_job();
        }
    }

    /// The running job is done and `body` is its answer: the reply goes out if the job's
    /// connection is still the current one, and the next waiting job starts.
    pub fn handle_work_done(&mut self, job: &Job, body: Message, _now: Instant) {
        self.working = false;
        if job.connection == self.connection && self.link.is_some() {
            let reply = FromWorker::Reply(job.request.reply(body));
            self.outbox.transmit(Transmit::Send(reply));
        } else {
            self.outbox.event(Event::StaleReply);
        }
        self.next_job();
    }

    fn next_job(&mut self) {
        if self.working {
            return;
        }
        let Some(request) = self.backlog.pop_front() else {
            return;
        };
        self.working = true;
        self.outbox.event(Event::Job(Job {
            connection: self.connection,
            request,
            fault: self.faults.on_request(),
        }));
    }
}

impl Core for WorkerCore {
    type Transmit = Transmit;
    type Event = Event;

    /// Heartbeats when due, or declares the queue dead and reconnects after the back-off.
    fn handle_timeout(&mut self, now: Instant) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if link.queue.is_dead(now) {
            self.outbox.event(Event::QueueSilent);
            self.handle_queue_lost(now);
        } else if link.ticker.poll(now) {
            self.outbox.transmit(Transmit::Send(FromWorker::Heartbeat));
        }
    }

    /// `None` while disconnected.
    fn poll_timeout(&self) -> Option<Instant> {
        self.link
            .as_ref()
            .map(|l| l.ticker.deadline().min(l.queue.deadline()))
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
    use bytes::Bytes;

    const MS: Duration = Duration::from_millis(1);

    fn core() -> WorkerCore {
        let mut w = WorkerCore::new(
            WorkerConfig {
                heartbeat: 1000 * MS,
                liveness: 3,
                reconnect_initial: 1000 * MS,
                reconnect_max: 32000 * MS,
            },
            FaultPlan::none(),
        );
        assert_eq!(
            w.transmits(),
            [Transmit::Reconnect {
                after: Duration::ZERO
            }]
        );
        w
    }

    impl WorkerCore {
        fn transmits(&mut self) -> Vec<Transmit> {
            std::iter::from_fn(|| self.poll_transmit()).collect()
        }
        fn events(&mut self) -> Vec<Event> {
            std::iter::from_fn(|| self.poll_event()).collect()
        }
        /// The job the last input started, if any.
        fn job(&mut self) -> Option<Job> {
            self.events().into_iter().find_map(|e| match e {
                Event::Job(job) => Some(job),
                _ => None,
            })
        }
        /// The back-off of the reconnect the last input asked for.
        fn reconnect(&mut self) -> Option<Duration> {
            self.transmits().into_iter().find_map(|t| match t {
                Transmit::Reconnect { after } => Some(after),
                _ => None,
            })
        }
    }

    fn request(body: &str) -> Message {
        Message::from_frames(["client", "", body].map(|f| Bytes::copy_from_slice(f.as_bytes())))
    }

    fn heartbeat() -> Message {
        ToWorker::Heartbeat.to_message()
    }

    const HEARTBEAT: Transmit = Transmit::Send(FromWorker::Heartbeat);

    /// Hands `message` in; the error it was dropped for, if any (its other events stay queued).
    fn feed(w: &mut WorkerCore, message: Message, now: Instant) -> Result<(), FrameError> {
        w.handle_message(message, now);
        let mut result = Ok(());
        for event in w.events() {
            match event {
                Event::Malformed(e) => result = Err(e),
                other => w.outbox.event(other),
            }
        }
        result
    }

    #[test]
    fn sends_ready_then_heartbeats_every_interval() {
        let t0 = Instant::now();
        let mut w = core();
        w.handle_connected(t0);
        assert_eq!(w.transmits(), [Transmit::Send(FromWorker::Ready)]);
        assert_eq!(w.poll_timeout(), Some(t0 + 1000 * MS));
        w.handle_timeout(t0 + 999 * MS);
        assert_eq!(w.transmits(), []);
        w.handle_timeout(t0 + 1000 * MS);
        assert_eq!(w.transmits(), [HEARTBEAT]);
        feed(&mut w, heartbeat(), t0 + 1500 * MS).unwrap();
        w.handle_timeout(t0 + 2000 * MS);
        assert_eq!(w.transmits(), [HEARTBEAT]);
        assert_eq!(w.events(), []);
    }

    #[test]
    fn keeps_heartbeating_while_a_job_runs() {
        let t0 = Instant::now();
        let mut w = core();
        w.handle_connected(t0);
        feed(&mut w, request("1"), t0).unwrap();
        let job = w.job().expect("a job");
        for k in 1..=5u32 {
            let t = t0 + k * 1000 * MS;
            w.transmits();
            w.handle_timeout(t);
            assert_eq!(w.transmits(), [HEARTBEAT]);
            feed(&mut w, heartbeat(), t).unwrap();
        }
        w.handle_work_done(&job, Message::from_frames(["1"]), t0);
        assert_eq!(
            w.transmits(),
            [Transmit::Send(FromWorker::Reply(
                Routed::parse(request("1")).unwrap()
            ))]
        );
        assert_eq!(w.events(), []);
    }

    #[test]
    fn one_job_at_a_time_in_arrival_order() {
        let t0 = Instant::now();
        let mut w = core();
        w.handle_connected(t0);
        feed(&mut w, request("1"), t0).unwrap();
        let first = w.job().unwrap();
        feed(&mut w, request("2"), t0).unwrap();
        assert_eq!(w.job(), None);
        w.handle_work_done(&first, Message::from_frames(["1"]), t0);
        let second = w.job().expect("the waiting request");
        assert_eq!(second.request, Routed::parse(request("2")).unwrap());
    }

    #[test]
    fn silent_queue_is_dead_after_liveness_intervals_and_backoff_doubles() {
        let t0 = Instant::now();
        let mut w = core();
        w.handle_connected(t0);
        w.transmits();
        // Heartbeats go out, nothing comes back.
        w.handle_timeout(t0 + 1000 * MS);
        w.handle_timeout(t0 + 2000 * MS);
        assert_eq!(w.transmits(), [HEARTBEAT, HEARTBEAT]);
        assert_eq!(w.poll_timeout(), Some(t0 + 3000 * MS));
        w.handle_timeout(t0 + 3000 * MS);
        assert_eq!(
            w.events(),
            [Event::QueueSilent, Event::Reconnecting(1000 * MS)]
        );
        assert_eq!(w.transmits(), [Transmit::Reconnect { after: 1000 * MS }]);
        assert!(!w.is_connected());
        assert_eq!(w.poll_timeout(), None);
        w.handle_timeout(t0 + 3500 * MS);
        assert_eq!((w.transmits(), w.events()), (vec![], vec![]));
        // The next attempts back off 2 s, 4 s, … up to 32 s.
        let mut delays = Vec::new();
        for k in 0..6u32 {
            let t = t0 + (10 + k) * 100_000 * MS;
            w.handle_connected(t);
            w.handle_timeout(t + 3000 * MS);
            delays.push(w.reconnect().expect("queue dead").as_millis());
        }
        assert_eq!(delays, [2000, 4000, 8000, 16000, 32000, 32000]);
        w.handle_queue_lost(t0);
        assert_eq!(w.reconnect(), Some(32000 * MS));
        // One heartbeat from a live queue resets the back-off.
        let t = t0 + 10_000_000 * MS;
        w.handle_connected(t);
        feed(&mut w, heartbeat(), t + 100 * MS).unwrap();
        w.handle_timeout(t + 3100 * MS);
        assert_eq!(w.reconnect(), Some(1000 * MS));
    }

    #[test]
    fn a_closed_connection_or_an_unsent_ready_reconnects_after_the_backoff() {
        let t0 = Instant::now();
        let mut w = core();
        w.handle_queue_lost(t0);
        assert_eq!(w.events(), [Event::Reconnecting(1000 * MS)]);
        assert_eq!(w.reconnect(), Some(1000 * MS));
        w.handle_connected(t0);
        w.transmits();
        // A lost HEARTBEAT or reply is no reason to reconnect; a lost READY is.
        w.handle_unsent(&FromWorker::Heartbeat, t0);
        assert_eq!(w.reconnect(), None);
        w.handle_unsent(&FromWorker::Ready, t0);
        assert_eq!(w.reconnect(), Some(2000 * MS));
        assert!(!w.is_connected());
    }

    #[test]
    fn replies_for_a_previous_connection_are_dropped() {
        let t0 = Instant::now();
        let mut w = core();
        w.handle_connected(t0);
        feed(&mut w, request("1"), t0).unwrap();
        let job = w.job().unwrap();
        feed(&mut w, request("2"), t0).unwrap();
        assert_eq!(w.job(), None);
        w.handle_timeout(t0 + 3000 * MS);
        assert!(w.reconnect().is_some());
        w.events();
        w.handle_connected(t0 + 4000 * MS);
        w.transmits();
        w.handle_work_done(&job, Message::from_frames(["1"]), t0);
        assert_eq!(w.transmits(), []);
        assert_eq!(
            w.events(),
            [Event::StaleReply],
            "the waiting request belonged to the old queue"
        );
    }

    #[test]
    fn garbage_from_the_queue_is_an_error_and_does_not_count_as_life() {
        let t0 = Instant::now();
        let mut w = core();
        w.handle_connected(t0);
        assert_eq!(
            feed(
                &mut w,
                Message::from_frames([&[0x01u8][..]]),
                t0 + 2000 * MS
            ),
            Err(FrameError::WrongDirection("READY"))
        );
        assert!(feed(&mut w, Message::from_frames(["x", "y"]), t0 + 2000 * MS).is_err());
        w.handle_timeout(t0 + 3000 * MS);
        assert!(w.reconnect().is_some());
    }

    #[test]
    fn the_fault_plan_decides_per_job() {
        let t0 = Instant::now();
        let mut w = WorkerCore::new(
            WorkerConfig::default(),
            FaultPlan::none().crash_after(Some(1)),
        );
        w.handle_connected(t0);
        feed(&mut w, request("1"), t0).unwrap();
        let job = w.job().unwrap();
        assert_eq!(job.fault, Fault::None);
        w.handle_work_done(&job, Message::from_frames(["1"]), t0);
        feed(&mut w, request("2"), t0).unwrap();
        assert_eq!(w.job().unwrap().fault, Fault::Crash);
    }
}
