//! The one shape every pattern's core follows, and the two clock helpers every shell uses.
//!
//! Each pattern is split in two. The **core** makes every decision (who gets the next request,
//! when a peer is dead, when to retry, what to send) and touches no socket, no clock and no
//! logger, so its unit tests drive it with virtual time. The **shell** is a thin tokio loop that
//! owns the sockets, reads the clock, feeds the core and carries out what it asks.
//!
//! # Files
//!
//! | file | what it holds |
//! |---|---|
//! | `protocol.rs` | the crate's wire: typed frames, parse and build, constants |
//! | `<role>.rs` | the pure core of one role, named as the Guide names the program (`broker`, `worker`, `queue`, `client`, `server`, `node`, …); its parts in `<role>/…` |
//! | `<role>_loop.rs` | that role's shell, the tokio loop; a shell users hold as a library API (a `Client`, a `Worker`) is re-exported at the crate root |
//!
//! Anything else is named for what it holds, never like a role and never `core` (it would
//! shadow `::core`). In this crate: [`retry`](crate::retry) and
//! [`retry_loop`](crate::retry_loop).
//!
//! # Vocabulary
//!
//! | the core's method | what it means |
//! |---|---|
//! | `handle_*(…, now)` | an input arrived at `now` (`handle_request`, `handle_reply`, `handle_worker`, …): `now` is always the last argument, even where unused, and nothing is returned |
//! | `handle_<who>_lost(…, now)` | the peer is gone, however the shell noticed (`handle_worker_lost`, `handle_server_lost`, `handle_peer_lost`, `handle_link_lost`, `handle_broker_lost`); its arrival is `handle_connected` / `handle_link_up` |
//! | `handle_shutdown(now)` | the program is stopping (Ctrl-C): say goodbye where the protocol has a way |
//! | [`handle_timeout(now)`](Core::handle_timeout) | the deadline the core asked for has passed (calling it early is harmless) |
//! | [`poll_timeout()`](Core::poll_timeout) | when the core next wants `handle_timeout`; `None` if it waits only for input |
//! | [`poll_transmit()`](Core::poll_transmit) | the next message to send (or socket to open): the shell sends until `None` |
//! | [`poll_event()`](Core::poll_event) | the next thing worth logging or counting, as a typed event: the shell logs until `None` |
//!
//! Outcomes, verdicts and malformed input are events, never return values: a frame the
//! `protocol` parser refuses becomes the core's own `Event::Malformed { .. }` (the shell logs
//! it), and where a shell must act on a verdict it reads the event. Two kinds of code are not
//! cores and keep out of this vocabulary: a helper a core owns (a fair queue, a dedup table)
//! names its time-driven method `expire(now)`, and a pure byte codec (the CURVE connections,
//! the router's ZMTP codec) takes its input through `feed_*` or `decode` and may return a
//! `Result`, as a parser does.
//!
//! # The shell's loop
//!
//! ```ignore
//! loop {
//!     while let Some(out) = core.poll_transmit() { socket.send(out).await?; }
//!     while let Some(event) = core.poll_event() { log(event); }
//!     tokio::select! {
//!         message = socket.recv() => core.handle_message(message?, contract::now()),
//!         () = contract::sleep_until(core.poll_timeout()) => core.handle_timeout(contract::now()),
//!     }
//! }
//! ```
//!
//! Shells read the clock only through [`now`] and wait only through [`sleep_until`], which use
//! tokio's clock: a shell test under `#[tokio::test(start_paused = true)]` then runs in virtual
//! time too. Cores and shells compute deadlines with [`saturating_add`], so no configured
//! duration, however large, can make `now + duration` panic.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The part of the contract every core has in common. Inputs (`handle_*`) differ per pattern and
/// are plain methods; this trait names the rest, so shells and tests can rely on it.
pub trait Core {
    /// What the core asks the shell to send (a message, or a socket to open and a message).
    type Transmit;
    /// What the core reports for logging or measuring.
    type Event;

    /// The deadline from [`poll_timeout`](Core::poll_timeout) has passed; `now` is the time.
    fn handle_timeout(&mut self, now: Instant);
    /// When [`handle_timeout`](Core::handle_timeout) is next due; `None` if only input matters.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next thing to send, oldest first.
    fn poll_transmit(&mut self) -> Option<Self::Transmit>;
    /// The next event to log or count, oldest first.
    fn poll_event(&mut self) -> Option<Self::Event>;
}

/// The two queues behind `poll_transmit` and `poll_event`, for cores that fill them as they
/// decide. Both are first in, first out.
#[derive(Debug, Clone)]
pub struct Outbox<T, E> {
    transmits: VecDeque<T>,
    events: VecDeque<E>,
}

impl<T, E> Default for Outbox<T, E> {
    fn default() -> Self {
        Self {
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }
}

impl<T, E> Outbox<T, E> {
    /// Queues a message for the shell to send.
    pub fn transmit(&mut self, transmit: T) {
        self.transmits.push_back(transmit);
    }

    /// Queues an event for the shell to log or count.
    pub fn event(&mut self, event: E) {
        self.events.push_back(event);
    }

    /// What `poll_transmit` returns.
    pub fn poll_transmit(&mut self) -> Option<T> {
        self.transmits.pop_front()
    }

    /// What `poll_event` returns.
    pub fn poll_event(&mut self) -> Option<E> {
        self.events.pop_front()
    }

    /// Messages waiting to be sent.
    pub fn pending_transmits(&self) -> usize {
        self.transmits.len()
    }
}

/// The shell's clock: tokio's, as a [`std::time::Instant`] a core accepts. Under a paused tokio
/// runtime this is virtual time.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Farthest a deadline is put: thirty years, as tokio does for a sleep too long to represent.
pub const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `now + after`, saturating: a duration past [`FAR_FUTURE`] waits that long instead, so a huge
/// configured timeout means "never" rather than an overflow panic (`Instant + Duration` panics).
pub fn saturating_add(now: Instant, after: Duration) -> Instant {
    // `now` is time since boot, so thirty more years always fit; `now` is the last resort.
    now.checked_add(after.min(FAR_FUTURE)).unwrap_or(now)
}

/// Waits until `deadline` on tokio's clock; forever when there is none (so it can sit in a
/// `select!` beside the sockets).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn outbox_is_first_in_first_out_per_queue() {
        let mut outbox: Outbox<u32, &str> = Outbox::default();
        outbox.transmit(1);
        outbox.event("a");
        outbox.transmit(2);
        assert_eq!(outbox.pending_transmits(), 2);
        assert_eq!(outbox.poll_transmit(), Some(1));
        assert_eq!(outbox.poll_transmit(), Some(2));
        assert_eq!(outbox.poll_transmit(), None);
        assert_eq!(outbox.poll_event(), Some("a"));
        assert_eq!(outbox.poll_event(), None);
    }

    #[test]
    fn saturating_add_adds_and_saturates_instead_of_panicking() {
        let t0 = Instant::now();
        assert_eq!(
            saturating_add(t0, Duration::from_millis(5)),
            t0 + Duration::from_millis(5)
        );
        assert_eq!(saturating_add(t0, Duration::ZERO), t0);
        // `t0 + Duration::MAX` would panic; the deadline becomes the far future.
        assert_eq!(saturating_add(t0, Duration::MAX), t0 + FAR_FUTURE);
        let far = saturating_add(t0, Duration::from_millis(u64::MAX));
        assert_eq!(far, t0 + FAR_FUTURE);
        // Adding again from there still does not panic.
        assert!(saturating_add(far, Duration::MAX) > far);
    }

    #[tokio::test(start_paused = true)]
    async fn the_shell_clock_is_tokios_and_pauses_with_it() {
        let start = now();
        sleep_until(Some(start + Duration::from_secs(3600))).await;
        // An hour of virtual time passes at once; the clock read through `now` agrees.
        assert!(now() >= start + Duration::from_secs(3600));
        assert!(now() < start + Duration::from_secs(3601));
    }
}
