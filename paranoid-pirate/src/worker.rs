//! The Paranoid Pirate worker's brain: heartbeats to the queue, the queue's liveness, the
//! reconnect back-off, one request at a time and the simulated faults. No sockets, no clock.
//!
//! The I/O loop ([`crate::worker_loop`]) owns the DEALER socket and runs the work off the loop,
//! so heartbeats keep flowing while a request is being worked on.
//!
//! # Life of a worker
//! 1. [`WorkerCore::connected`]: a fresh socket is connected; send READY. The queue's liveness
//!    starts full.
//! 2. Every message from the queue (HEARTBEAT or a request) refreshes the queue's liveness and
//!    resets the back-off. A request becomes a [`Job`]; one runs at a time, others wait.
//! 3. [`WorkerCore::on_timeout`] says when to send HEARTBEAT, and when the queue has been silent
//!    for `liveness × heartbeat`: then the socket must be dropped and a new one connected after
//!    the back-off delay (1 s doubling to 32 s). A connection that closes outright (the queue
//!    was killed) is reported through [`WorkerCore::lost_queue`] and handled the same way,
//!    without waiting for the silence.
//! 4. Work finished for an older connection is not answered: that queue forgot us (it purged
//!    us or restarted), and the client has retried.

use crate::protocol::{FrameError, FromWorker, Routed, ToWorker};
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
    /// silent one.
    pub fn silence_limit(&self) -> Duration {
        self.heartbeat * self.liveness.max(1)
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

/// What [`WorkerCore::on_timeout`] wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timeout {
    /// Nothing yet.
    Nothing,
    /// Send this HEARTBEAT.
    Heartbeat(FromWorker),
    /// The queue has been silent too long: drop the socket, wait `reconnect_in`, connect a
    /// fresh one (with a fresh identity) and call [`WorkerCore::connected`].
    QueueDead {
        /// The back-off delay.
        reconnect_in: Duration,
    },
}

/// What to do when a job's work is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The reply to send, or `None` if the job's connection is gone.
    pub reply: Option<FromWorker>,
    /// The next waiting job to start, if any.
    pub next: Option<Job>,
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
    /// Incremented by every [`WorkerCore::connected`].
    connection: u64,
    /// A job is running in the I/O loop.
    working: bool,
    /// Requests received while working.
    backlog: VecDeque<Routed>,
}

impl WorkerCore {
    /// A disconnected worker; call [`WorkerCore::connected`] once the socket is up.
    pub fn new(config: WorkerConfig, faults: FaultPlan) -> Self {
        let backoff = Backoff::new(config.reconnect_initial, config.reconnect_max);
        Self {
            config,
            faults,
            backoff,
            link: None,
            connection: 0,
            working: false,
            backlog: VecDeque::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// True between [`WorkerCore::connected`] and the queue being declared dead.
    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }

    /// A fresh socket is connected: returns the READY to send. Requests left over from the
    /// previous connection are forgotten.
    pub fn connected(&mut self, now: Instant) -> FromWorker {
        self.connection += 1;
        self.backlog.clear();
        self.link = Some(Link {
            queue: Liveness::new(self.config.heartbeat, self.config.liveness, now),
            ticker: Ticker::new(self.config.heartbeat, now),
        });
        FromWorker::Ready
    }

    /// The queue cannot be reached: a connect attempt failed, or the connection closed (the
    /// queue process died; its kernel closed the socket). Returns how long to wait before the
    /// next attempt.
    pub fn lost_queue(&mut self) -> Duration {
        self.link = None;
        self.backlog.clear();
        self.backoff.next_delay()
    }

    /// A message from the queue. Returns a job to start now, if it is a request and no other
    /// job is running (otherwise it waits its turn).
    pub fn on_message(
        &mut self,
        message: Message,
        now: Instant,
    ) -> Result<Option<Job>, FrameError> {
        let command = ToWorker::parse(message)?;
        if let Some(link) = self.link.as_mut() {
            link.queue.heard(now);
        }
        self.backoff.reset();
        match command {
            ToWorker::Heartbeat => Ok(None),
            ToWorker::Request(request) => {
                self.backlog.push_back(request);
                Ok(self.next_job())
            }
        }
    }

    /// The running job is done and `body` is its answer.
    pub fn work_done(&mut self, job: &Job, body: Message) -> Finished {
        self.working = false;
        let reply = (job.connection == self.connection && self.link.is_some())
            .then(|| FromWorker::Reply(job.request.reply(body)));
        Finished {
            reply,
            next: self.next_job(),
        }
    }

    fn next_job(&mut self) -> Option<Job> {
        if self.working {
            return None;
        }
        let request = self.backlog.pop_front()?;
        self.working = true;
        Some(Job {
            connection: self.connection,
            request,
            fault: self.faults.on_request(),
        })
    }

    /// Timer work: heartbeat when due, or declare the queue dead.
    pub fn on_timeout(&mut self, now: Instant) -> Timeout {
        let Some(link) = self.link.as_mut() else {
            return Timeout::Nothing;
        };
        if link.queue.is_dead(now) {
            self.link = None;
            self.backlog.clear();
            return Timeout::QueueDead {
                reconnect_in: self.backoff.next_delay(),
            };
        }
        if link.ticker.poll(now) {
            return Timeout::Heartbeat(FromWorker::Heartbeat);
        }
        Timeout::Nothing
    }

    /// When [`WorkerCore::on_timeout`] must run next (`None` while disconnected).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.link
            .as_ref()
            .map(|l| l.ticker.deadline().min(l.queue.deadline()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const MS: Duration = Duration::from_millis(1);

    fn core() -> WorkerCore {
        WorkerCore::new(
            WorkerConfig {
                heartbeat: 1000 * MS,
                liveness: 3,
                reconnect_initial: 1000 * MS,
                reconnect_max: 32000 * MS,
            },
            FaultPlan::none(),
        )
    }

    fn request(body: &str) -> Message {
        Message::from_frames(["client", "", body].map(|f| Bytes::copy_from_slice(f.as_bytes())))
    }

    fn heartbeat() -> Message {
        ToWorker::Heartbeat.to_message()
    }

    #[test]
    fn sends_ready_then_heartbeats_every_interval() {
        let t0 = Instant::now();
        let mut w = core();
        assert_eq!(w.connected(t0), FromWorker::Ready);
        assert_eq!(w.next_deadline(), Some(t0 + 1000 * MS));
        assert_eq!(w.on_timeout(t0 + 999 * MS), Timeout::Nothing);
        assert_eq!(
            w.on_timeout(t0 + 1000 * MS),
            Timeout::Heartbeat(FromWorker::Heartbeat)
        );
        w.on_message(heartbeat(), t0 + 1500 * MS).unwrap();
        assert_eq!(
            w.on_timeout(t0 + 2000 * MS),
            Timeout::Heartbeat(FromWorker::Heartbeat)
        );
    }

    #[test]
    fn keeps_heartbeating_while_a_job_runs() {
        let t0 = Instant::now();
        let mut w = core();
        w.connected(t0);
        let job = w.on_message(request("1"), t0).unwrap().expect("a job");
        for k in 1..=5u32 {
            let t = t0 + k * 1000 * MS;
            assert_eq!(w.on_timeout(t), Timeout::Heartbeat(FromWorker::Heartbeat));
            w.on_message(heartbeat(), t).unwrap();
        }
        let done = w.work_done(&job, Message::from_frames(["1"]));
        assert_eq!(
            done.reply,
            Some(FromWorker::Reply(Routed::parse(request("1")).unwrap()))
        );
        assert_eq!(done.next, None);
    }

    #[test]
    fn one_job_at_a_time_in_arrival_order() {
        let t0 = Instant::now();
        let mut w = core();
        w.connected(t0);
        let first = w.on_message(request("1"), t0).unwrap().unwrap();
        assert_eq!(w.on_message(request("2"), t0).unwrap(), None);
        let done = w.work_done(&first, Message::from_frames(["1"]));
        let second = done.next.expect("the waiting request");
        assert_eq!(second.request, Routed::parse(request("2")).unwrap());
    }

    #[test]
    fn silent_queue_is_dead_after_liveness_intervals_and_backoff_doubles() {
        let t0 = Instant::now();
        let mut w = core();
        w.connected(t0);
        // Heartbeats go out, nothing comes back.
        assert!(matches!(
            w.on_timeout(t0 + 1000 * MS),
            Timeout::Heartbeat(_)
        ));
        assert!(matches!(
            w.on_timeout(t0 + 2000 * MS),
            Timeout::Heartbeat(_)
        ));
        assert_eq!(w.next_deadline(), Some(t0 + 3000 * MS));
        assert_eq!(
            w.on_timeout(t0 + 3000 * MS),
            Timeout::QueueDead {
                reconnect_in: 1000 * MS
            }
        );
        assert!(!w.is_connected());
        assert_eq!(w.next_deadline(), None);
        assert_eq!(w.on_timeout(t0 + 3500 * MS), Timeout::Nothing);
        // The next attempts back off 2 s, 4 s, … up to 32 s.
        let mut delays = Vec::new();
        for k in 0..6u32 {
            let t = t0 + (10 + k) * 100_000 * MS;
            w.connected(t);
            match w.on_timeout(t + 3000 * MS) {
                Timeout::QueueDead { reconnect_in } => delays.push(reconnect_in.as_millis()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(delays, [2000, 4000, 8000, 16000, 32000, 32000]);
        assert_eq!(w.lost_queue(), 32000 * MS);
        // One heartbeat from a live queue resets the back-off.
        let t = t0 + 10_000_000 * MS;
        w.connected(t);
        w.on_message(heartbeat(), t + 100 * MS).unwrap();
        assert_eq!(
            w.on_timeout(t + 3100 * MS),
            Timeout::QueueDead {
                reconnect_in: 1000 * MS
            }
        );
    }

    #[test]
    fn replies_for_a_previous_connection_are_dropped() {
        let t0 = Instant::now();
        let mut w = core();
        w.connected(t0);
        let job = w.on_message(request("1"), t0).unwrap().unwrap();
        assert_eq!(w.on_message(request("2"), t0).unwrap(), None);
        assert!(matches!(
            w.on_timeout(t0 + 3000 * MS),
            Timeout::QueueDead { .. }
        ));
        w.connected(t0 + 4000 * MS);
        let done = w.work_done(&job, Message::from_frames(["1"]));
        assert_eq!(done.reply, None);
        assert_eq!(
            done.next, None,
            "the waiting request belonged to the old queue"
        );
    }

    #[test]
    fn garbage_from_the_queue_is_an_error_and_does_not_count_as_life() {
        let t0 = Instant::now();
        let mut w = core();
        w.connected(t0);
        assert_eq!(
            w.on_message(Message::from_frames([&[0x01u8][..]]), t0 + 2000 * MS),
            Err(FrameError::WrongDirection("READY"))
        );
        assert!(w
            .on_message(Message::from_frames(["x", "y"]), t0 + 2000 * MS)
            .is_err());
        assert!(matches!(
            w.on_timeout(t0 + 3000 * MS),
            Timeout::QueueDead { .. }
        ));
    }

    #[test]
    fn the_fault_plan_decides_per_job() {
        let t0 = Instant::now();
        let mut w = WorkerCore::new(
            WorkerConfig::default(),
            FaultPlan::none().crash_after(Some(1)),
        );
        w.connected(t0);
        let job = w.on_message(request("1"), t0).unwrap().unwrap();
        assert_eq!(job.fault, Fault::None);
        w.work_done(&job, Message::from_frames(["1"]));
        let job = w.on_message(request("2"), t0).unwrap().unwrap();
        assert_eq!(job.fault, Fault::Crash);
    }
}
