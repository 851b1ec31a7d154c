//! Deterministic fault simulation for servers and workers, from explicit flags.
//!
//! The Guide's servers crash or slow down at random. Here each fault is a flag
//! (`--crash-after N`, `--overload-after N`) and the Guide's randomness is opt-in and seeded
//! (`--random-faults --seed S`), so a test or the tour can reproduce exactly what happened.

use crate::rng::Rng;
use std::time::Duration;

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
}
