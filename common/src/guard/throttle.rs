//! At most a burst of warnings a second, then one line saying how many were dropped: a flood
//! of hostile connections must not turn into a flood of log lines.

use std::time::{Duration, Instant};

/// Warnings logged per window before the rest are counted instead.
pub const BURST: u32 = 10;
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
#[derive(Debug, Default)]
pub struct Throttle {
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl Throttle {
    /// Decides about one warning at `now`.
    pub fn allow(&mut self, now: Instant) -> Verdict {
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window < BURST {
            self.in_window += 1;
            Verdict::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            Verdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_then_counted_then_reported() {
        let t0 = Instant::now();
        let mut throttle = Throttle::default();
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
}
