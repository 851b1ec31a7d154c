//! Deterministic fault simulation for servers and workers, from explicit flags.
//!
//! The Guide's servers crash or slow down at random. Here each fault is a flag
//! (`--crash-after N`, `--overload-after N`) and the Guide's randomness is opt-in and seeded
//! (`--random-faults --seed S`), so a test or the tour can reproduce exactly what happened.
//!
//! [`FaultyServer`] is the whole core of a server that only answers under such a plan
//! (`lpserver`, `spworker`).

use crate::contract::{Core, Outbox};
use crate::rng::Rng;
use std::time::{Duration, Instant};

/// What a server should do with the request it just received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Exit at once without answering (simulates a crash).
    Crash,
    /// Answer only after this delay (simulates CPU overload).
    Overload(Duration),
}

/// Decides, request by request, whether to simulate a fault.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    crash_after: Option<u64>,
    overload_after: Option<u64>,
    overload_delay: Duration,
    random: Option<Rng>,
    served: u64,
}

impl FaultPlan {
    /// A plan that never injects a fault.
    pub fn none() -> Self {
        Self {
            crash_after: None,
            overload_after: None,
            overload_delay: Duration::ZERO,
            random: None,
            served: 0,
        }
    }

    /// Crash on the request after the first `n` have been served.
    pub fn crash_after(mut self, n: Option<u64>) -> Self {
        self.crash_after = n;
        self
    }

    /// Every request after the first `n` is delayed by `delay`.
    pub fn overload_after(mut self, n: Option<u64>, delay: Duration) -> Self {
        self.overload_after = n;
        self.overload_delay = delay;
        self
    }

    /// The Guide's behaviour: after a few cycles, crash or overload at random (1 in 10 each),
    /// drawn from a seeded generator.
    pub fn random(mut self, rng: Option<Rng>) -> Self {
        self.random = rng;
        self
    }

    /// Requests answered so far (the ones that got [`Fault::None`] or [`Fault::Overload`]).
    pub fn served(&self) -> u64 {
        self.served
    }

    /// Call once per incoming request.
    pub fn on_request(&mut self) -> Fault {
        let index = self.served;
        if self.crash_after.is_some_and(|n| index >= n) {
            return Fault::Crash;
        }
        let mut fault = if self.overload_after.is_some_and(|n| index >= n) {
            Fault::Overload(self.overload_delay)
        } else {
            Fault::None
        };
        // The Guide waits a few cycles before misbehaving.
        if let Some(rng) = self.random.as_mut().filter(|_| index >= 3) {
            match rng.below(10) {
                0 => return Fault::Crash,
                1 => fault = Fault::Overload(self.overload_delay.max(Duration::from_secs(2))),
                _ => {}
            }
        }
        self.served += 1;
        fault
    }
}

/// What a [`FaultyServer`] sends next, once `delay` (the simulated work) has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<R> {
    /// The reply.
    pub reply: R,
    /// Simulated work (plus the overload delay when overloaded).
    pub delay: Duration,
}

/// What a [`FaultyServer`] did with a request, for the shell's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Answered after the normal work.
    Normal,
    /// Answered late: simulated CPU overload.
    Overloaded,
    /// Not answered: the shell exits at once, as a crashed process would.
    Crash,
}

/// A server's decisions: answer each request after the simulated work, answer late, or crash,
/// as the [`FaultPlan`] says. A [`Core`] with no timer: the [`Answer`] leaves through
/// `poll_transmit`, what was [`Served`] through `poll_event`.
#[derive(Debug, Clone)]
pub struct FaultyServer<R> {
    plan: FaultPlan,
    work: Duration,
    outbox: Outbox<Answer<R>, Served>,
}

impl<R> FaultyServer<R> {
    /// Answers after `work` per request, injecting the faults `plan` calls for.
    pub fn new(plan: FaultPlan, work: Duration) -> Self {
        let outbox = Outbox::default();
        Self { plan, work, outbox }
    }

    /// A request arrived; `reply` is what answering it sends.
    pub fn handle_request(&mut self, reply: R, _now: Instant) {
        let (served, delay) = match self.plan.on_request() {
            Fault::Crash => return self.outbox.event(Served::Crash),
            Fault::None => (Served::Normal, self.work),
            Fault::Overload(extra) => (Served::Overloaded, self.work.saturating_add(extra)),
        };
        self.outbox.event(served);
        self.outbox.transmit(Answer { reply, delay });
    }
}

impl<R> Core for FaultyServer<R> {
    type Transmit = Answer<R>;
    type Event = Served;

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_transmit(&mut self) -> Option<Answer<R>> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Served> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_after_n_answers_exactly_n() {
        let mut plan = FaultPlan::none().crash_after(Some(3));
        let faults: Vec<_> = (0..4).map(|_| plan.on_request()).collect();
        assert_eq!(
            faults,
            [Fault::None, Fault::None, Fault::None, Fault::Crash]
        );
        assert_eq!(plan.served(), 3);
    }

    #[test]
    fn overload_after_delays_the_rest() {
        let d = Duration::from_millis(50);
        let mut plan = FaultPlan::none().overload_after(Some(1), d);
        assert_eq!(plan.on_request(), Fault::None);
        assert_eq!(plan.on_request(), Fault::Overload(d));
        assert_eq!(plan.on_request(), Fault::Overload(d));
    }

    #[test]
    fn random_faults_are_reproducible_from_the_seed() {
        let run = |seed| {
            let mut p = FaultPlan::none().random(Some(Rng::seeded(seed)));
            (0..50).map(|_| p.on_request()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert!(run(42)[..3].iter().all(|f| *f == Fault::None));
        assert!(run(42).contains(&Fault::Crash));
    }

    fn msg(s: &str) -> crate::Message {
        crate::Message::from_frames([s.to_owned()])
    }

    /// One request in; what was served and the answer out.
    fn answer<R: std::fmt::Debug + PartialEq>(
        server: &mut FaultyServer<R>,
        reply: R,
    ) -> (Option<Served>, Option<Answer<R>>) {
        server.handle_request(reply, Instant::now());
        let step = (server.poll_event(), server.poll_transmit());
        assert_eq!((server.poll_event(), server.poll_transmit()), (None, None));
        step
    }

    #[test]
    fn answers_after_the_work_then_crashes_as_planned() {
        let work = Duration::from_millis(5);
        let mut server = FaultyServer::new(FaultPlan::none().crash_after(Some(2)), work);
        assert_eq!(server.poll_timeout(), None);
        for n in ["1", "2"] {
            assert_eq!(
                answer(&mut server, msg(n)),
                (
                    Some(Served::Normal),
                    Some(Answer {
                        reply: msg(n),
                        delay: work
                    })
                )
            );
        }
        assert_eq!(answer(&mut server, msg("3")), (Some(Served::Crash), None));
    }

    #[test]
    fn overload_adds_its_delay_to_the_work() {
        let work = Duration::from_millis(5);
        let extra = Duration::from_millis(50);
        let mut server = FaultyServer::new(FaultPlan::none().overload_after(Some(1), extra), work);
        assert!(matches!(
            answer(&mut server, msg("1")),
            (Some(Served::Normal), Some(_))
        ));
        assert_eq!(
            answer(&mut server, msg("2")),
            (
                Some(Served::Overloaded),
                Some(Answer {
                    reply: msg("2"),
                    delay: work + extra
                })
            )
        );
    }
}
