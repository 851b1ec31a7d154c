//! At most a burst of warnings a second, then one line saying how many were dropped: a flood
//! of hostile connections or malformed messages must not turn into a flood of log lines. Used by
//! the ingress guard (per endpoint) and by the Majordomo broker's shell.

use std::time::{Duration, Instant};

/// The window.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Whether to log a warning now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; first say that `suppressed` warnings were dropped since the last logged one.
    Log {
        /// Warnings dropped before this one.
        suppressed: u64,
    },
    /// Drop it (counted, reported with the next logged one).
    Suppress,
}

/// A clock-free counter: the caller passes `now`.
#[derive(Debug)]
pub struct Throttle {
    burst: u32,
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl Throttle {
    /// Logs at most `burst` warnings per [`WINDOW`].
    pub fn new(burst: u32) -> Self {
        Self {
            burst,
            window_start: None,
            in_window: 0,
            suppressed: 0,
        }
    }

    /// Decides about one warning at `now`.
    pub fn allow(&mut self, now: Instant) -> Verdict {
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window < self.burst {
            self.in_window += 1;
            Verdict::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            Verdict::Suppress
        }
    }

    /// The warnings dropped since the last logged one, now reported elsewhere (a periodic tick).
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BURST: u32 = 10;

    #[test]
    fn a_burst_is_logged_then_counted_then_reported() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(BURST);
        for _ in 0..BURST {
            assert_eq!(throttle.allow(t0), Verdict::Log { suppressed: 0 });
        }
        for _ in 0..5 {
            assert_eq!(
                throttle.allow(t0 + Duration::from_millis(500)),
                Verdict::Suppress
            );
        }
        assert_eq!(throttle.allow(t0 + WINDOW), Verdict::Log { suppressed: 5 });
        assert_eq!(throttle.allow(t0 + WINDOW), Verdict::Log { suppressed: 0 });
    }

    #[test]
    fn a_tick_takes_the_count() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(1);
        assert_eq!(throttle.allow(t0), Verdict::Log { suppressed: 0 });
        assert_eq!(throttle.allow(t0), Verdict::Suppress);
        assert_eq!(throttle.take_suppressed(), 1);
        assert_eq!(throttle.allow(t0 + WINDOW), Verdict::Log { suppressed: 0 });
    }
}
