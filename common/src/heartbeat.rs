//! Heartbeating, liveness and reconnect back-off, with no clock inside.
//!
//! Every function takes `now` from the caller, so the same logic runs against
//! `tokio::time::Instant::now()` in a program and against a hand-advanced instant in a test.
//!
//! The Guide counts *missed intervals* ("liveness 3"): a peer is dead when nothing has been heard
//! from it for `liveness × interval`. [`Liveness`] keeps that as a single deadline, which is the
//! same rule without a counter to decrement in the right place.
//!
//! Nothing here panics on extreme durations: deadlines saturate
//! ([`contract::saturating_add`](crate::contract::saturating_add)), so does `interval ×
//! liveness` and the back-off's doubling, and a [`Ticker`] never ticks faster than [`MIN_TICK`].

use crate::contract::saturating_add;
use std::time::{Duration, Instant};

/// Guide default: one heartbeat a second (6/PPP).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1000);
/// Guide default: a peer is dead after 3 missed heartbeats (3 to 5 is reasonable).
pub const HEARTBEAT_LIVENESS: u32 = 3;
/// Guide default: first reconnect delay after the peer is declared dead.
pub const INTERVAL_INIT: Duration = Duration::from_millis(1000);
/// Guide default: the reconnect delay doubles up to this.
pub const INTERVAL_MAX: Duration = Duration::from_millis(32000);
/// The shortest [`Ticker`] interval: a zero interval would tick on every poll, a busy loop.
pub const MIN_TICK: Duration = Duration::from_millis(1);

/// When a peer counts as dead: `liveness` intervals after we last heard from it.
#[derive(Debug, Clone)]
pub struct Liveness {
    ttl: Duration,
    expires_at: Instant,
}

impl Liveness {
    /// A peer just heard from at `now`, dead after `liveness` silent `interval`s.
    pub fn new(interval: Duration, liveness: u32, now: Instant) -> Self {
        let ttl = interval.saturating_mul(liveness.max(1));
        Self {
            ttl,
            expires_at: saturating_add(now, ttl),
        }
    }

    /// Any traffic from the peer resets the deadline.
    pub fn heard(&mut self, now: Instant) {
        self.expires_at = saturating_add(now, self.ttl);
    }

    /// True once the peer has been silent for the whole time-to-live.
    pub fn is_dead(&self, now: Instant) -> bool {
        now >= self.expires_at
    }

    /// The instant at which the peer will be declared dead unless heard from.
    pub fn deadline(&self) -> Instant {
        self.expires_at
    }

    /// The full time-to-live (`interval × liveness`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// A periodic timer: tells when the next heartbeat is due.
#[derive(Debug, Clone)]
pub struct Ticker {
    interval: Duration,
    next: Instant,
}

impl Ticker {
    /// First tick one `interval` (at least [`MIN_TICK`]) after `now`.
    pub fn new(interval: Duration, now: Instant) -> Self {
        let interval = interval.max(MIN_TICK);
        Self {
            interval,
            next: saturating_add(now, interval),
        }
    }

    /// True if a tick is due at `now`; the next one is then scheduled one interval later.
    ///
    /// A late caller gets one tick, not a burst: the schedule restarts from `now`.
    pub fn poll(&mut self, now: Instant) -> bool {
        if now >= self.next {
            self.next = saturating_add(now, self.interval);
            true
        } else {
            false
        }
    }

    /// When the next tick is due.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// Restarts the schedule: next tick one interval after `now`.
    pub fn reset(&mut self, now: Instant) {
        self.next = saturating_add(now, self.interval);
    }

    /// The tick interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// Exponential reconnect back-off: `initial`, doubling each failure, capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A back-off that starts at `initial` and never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            current: initial,
        }
    }

    /// The delay to wait now; the following call returns twice as much (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        delay
    }

    /// After a successful exchange the next failure waits only `initial` again.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn liveness_expires_after_interval_times_liveness() {
        let t0 = Instant::now();
        let mut l = Liveness::new(1000 * MS, 3, t0);
        assert!(!l.is_dead(t0 + 2999 * MS));
        assert!(l.is_dead(t0 + 3000 * MS));
        l.heard(t0 + 2500 * MS);
        assert!(!l.is_dead(t0 + 5499 * MS));
        assert!(l.is_dead(t0 + 5500 * MS));
        assert_eq!(l.deadline(), t0 + 5500 * MS);
        assert_eq!(l.ttl(), 3000 * MS);
    }

    #[test]
    fn ticker_fires_once_per_interval_and_does_not_burst_when_late() {
        let t0 = Instant::now();
        let mut t = Ticker::new(100 * MS, t0);
        assert!(!t.poll(t0 + 99 * MS));
        assert!(t.poll(t0 + 100 * MS));
        assert!(!t.poll(t0 + 150 * MS));
        // Very late: one tick, then the schedule restarts from now.
        assert!(t.poll(t0 + 1000 * MS));
        assert!(!t.poll(t0 + 1099 * MS));
        assert_eq!(t.deadline(), t0 + 1100 * MS);
    }

    #[test]
    fn extreme_durations_saturate_instead_of_panicking() {
        let t0 = Instant::now();
        let huge = Duration::from_millis(u64::MAX);
        let mut l = Liveness::new(huge, u32::MAX, t0);
        assert_eq!(l.ttl(), Duration::MAX);
        assert!(!l.is_dead(t0 + Duration::from_secs(3600 * 24 * 365)));
        l.heard(t0 + MS);
        assert!(l.deadline() > t0);
        let mut t = Ticker::new(huge, t0);
        assert!(!t.poll(t0 + Duration::from_secs(3600)));
        t.reset(t0 + MS);
        assert!(t.deadline() > t0 + MS);
        let mut b = Backoff::new(huge, Duration::MAX);
        assert_eq!(b.next_delay(), huge);
        assert_eq!(b.next_delay(), huge * 2);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::MAX);
    }

    #[test]
    fn a_zero_interval_ticks_at_most_every_millisecond() {
        let t0 = Instant::now();
        let mut t = Ticker::new(Duration::ZERO, t0);
        assert_eq!(t.interval(), MIN_TICK);
        assert!(!t.poll(t0), "not due at once");
        assert!(t.poll(t0 + MS));
        assert!(
            !t.poll(t0 + MS),
            "one tick per millisecond, not one per poll"
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(1000 * MS, 32000 * MS);
        let delays: Vec<_> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000]);
        b.reset();
        assert_eq!(b.next_delay(), 1000 * MS);
    }
}
