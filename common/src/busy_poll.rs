//! Busy polling after activity: a server keeps its runtime polling the sockets for a short
//! window after each message instead of going to sleep, so the next message of a busy exchange
//! is read without a wake-up from sleep.
//!
//! Why: on the machines measured here a wake-up from sleep is most of a broker's share of a
//! round trip (`majordomo/NOTES.md`: with the Guide's C peers, `mdbroker` answered 1.4× the C
//! broker's synchronous rate sleeping between messages, and about 2.5–3× polling through the
//! gaps). The cost is one busy core while traffic flows; `window` after the last message the
//! program sleeps again, so an idle one costs nothing. Off unless asked (`mdbroker --spin-us`).
//!
//! How: a task that, once woken by [`BusyPoll::touch`], yields to the runtime until the window
//! has passed. A yielding task makes tokio's scheduler poll its I/O driver without blocking,
//! so the sockets are read the moment data arrives. The decision is [`keeps_spinning`].

use crate::contract;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Whether a poller whose last activity was at `last` keeps polling at `now`.
pub fn keeps_spinning(last: Instant, now: Instant, window: Duration) -> bool {
    now.saturating_duration_since(last) < window
}

/// The polling task of one server loop; it stops when this is dropped.
pub struct BusyPoll {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    /// When the poller started: `last` counts from here.
    base: Instant,
    /// Nanoseconds from `base` to the last activity.
    last: AtomicU64,
    window: Duration,
    wake: Notify,
}

impl Shared {
    fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

impl BusyPoll {
    /// Starts the poller on the current runtime; `None` for a zero window (no polling).
    pub fn start(window: Duration) -> Option<Self> {
        if window.is_zero() {
            return None;
        }
        let shared = Arc::new(Shared {
            base: contract::now(),
            last: AtomicU64::new(0),
            window,
            wake: Notify::new(),
        });
        let task = tokio::spawn(spin(Arc::clone(&shared)));
        Some(Self { shared, task })
    }

    /// A message was handled at `now`: poll until `window` after it.
    pub fn touch(&self, now: Instant) {
        let nanos = now.saturating_duration_since(self.shared.base).as_nanos();
        self.shared
            .last
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.shared.wake.notify_one();
    }
}

impl Drop for BusyPoll {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spin(shared: Arc<Shared>) {
    loop {
        shared.wake.notified().await;
        while keeps_spinning(shared.last(), contract::now(), shared.window) {
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn polls_through_the_window_after_the_last_message_only() {
        let t0 = Instant::now();
        assert!(keeps_spinning(t0, t0, 100 * US));
        assert!(keeps_spinning(t0, t0 + 99 * US, 100 * US));
        assert!(!keeps_spinning(t0, t0 + 100 * US, 100 * US));
        // A clock read before the activity it compares with (two threads) still polls.
        assert!(keeps_spinning(t0 + 10 * US, t0, 100 * US));
        assert!(!keeps_spinning(t0, t0, Duration::ZERO));
    }

    #[tokio::test]
    async fn the_poller_yields_to_timers_and_sleeps_once_the_window_has_passed() {
        assert!(BusyPoll::start(Duration::ZERO).is_none());
        let poll = BusyPoll::start(Duration::from_millis(50)).expect("a poller");
        poll.touch(contract::now());
        // The poller spins on this same thread: the sleep ends only because it yields.
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(!keeps_spinning(
            poll.shared.last(),
            contract::now(),
            poll.shared.window
        ));
        drop(poll);
    }
}
