//! The Lazy Pirate client's decisions, with no socket and no clock.
//!
//! A [`Requester`] tracks the one request in flight: when its current try times out, whether a
//! reply is the right one, when to resend on a fresh socket and when to give up. The I/O shell
//! ([`crate::client`]) feeds it replies and timeouts with `now` and does what it says.
//! [`Sequence`] numbers the requests the way the Guide's client does (`"1"`, `"2"`, …).

use common::report::Summary;
use common::Message;
use std::time::{Duration, Instant};

/// Guide default: how long one try waits for the reply (`REQUEST_TIMEOUT`, keep it > 1000 ms).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(2500);
/// Guide default: tries per request before abandoning (`REQUEST_RETRIES`; the first send counts).
pub const REQUEST_RETRIES: u32 = 3;

/// Which replies count as the answer to the request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCheck {
    /// The reply must equal the request frame for frame: the Guide's echo servers return the
    /// sequence number, so a stale or foreign reply is caught.
    Echo,
    /// Any reply is accepted (for servers that do not echo).
    Any,
}

/// How long to wait and how often to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Time one try waits for its reply.
    pub timeout: Duration,
    /// Tries per request, the first send included (the Guide's `REQUEST_RETRIES`); at least 1.
    pub retries: u32,
    /// Which replies are accepted.
    pub check: ReplyCheck,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: REQUEST_TIMEOUT,
            retries: REQUEST_RETRIES,
            check: ReplyCheck::Echo,
        }
    }
}

/// What to make of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyVerdict {
    /// The answer to the request in flight: it is done.
    Accepted(Message),
    /// Not the answer (wrong sequence number, or nothing was in flight). Keep waiting until the
    /// current deadline; the socket has used up its one receive, so only a resend can help.
    Malformed(Message),
}

/// What to do when the current try's deadline has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeoutVerdict {
    /// The deadline has not passed yet: keep waiting until this instant.
    Wait(Instant),
    /// Close the socket, open a fresh one, send `request` again and wait until `deadline`.
    Retry {
        /// The request to resend, unchanged.
        request: Message,
        /// When this new try times out.
        deadline: Instant,
        /// Which try this is (2 for the first resend).
        attempt: u32,
    },
    /// Tries used up: the request failed (the server seems to be offline).
    Abandon(Message),
    /// Nothing is in flight.
    Idle,
}

/// Returned by [`Requester::start`] when a request is still in flight.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a request is already in flight")]
pub struct Busy;

#[derive(Debug, Clone)]
struct InFlight {
    request: Message,
    attempt: u32,
    deadline: Instant,
}

/// The retry state machine of one Lazy Pirate client: at most one request in flight.
#[derive(Debug, Clone)]
pub struct Requester {
    policy: RetryPolicy,
    in_flight: Option<InFlight>,
    summary: Summary,
}

impl Requester {
    /// A requester with nothing in flight.
    pub fn new(policy: RetryPolicy) -> Self {
        let policy = RetryPolicy {
            retries: policy.retries.max(1),
            ..policy
        };
        Self {
            policy,
            in_flight: None,
            summary: Summary::default(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Starts a new request at `now`; returns the deadline of its first try.
    pub fn start(&mut self, request: Message, now: Instant) -> Result<Instant, Busy> {
        if self.in_flight.is_some() {
            return Err(Busy);
        }
        let deadline = now + self.policy.timeout;
        self.in_flight = Some(InFlight {
            request,
            attempt: 1,
            deadline,
        });
        self.summary.sent += 1;
        Ok(deadline)
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<&Message> {
        self.in_flight.as_ref().map(|f| &f.request)
    }

    /// When the current try times out, if a request is in flight.
    pub fn deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|f| f.deadline)
    }

    /// A reply arrived.
    pub fn on_reply(&mut self, reply: Message) -> ReplyVerdict {
        let Some(flight) = &self.in_flight else {
            return ReplyVerdict::Malformed(reply);
        };
        let matches = match self.policy.check {
            ReplyCheck::Echo => reply == flight.request,
            ReplyCheck::Any => true,
        };
        if matches {
            self.in_flight = None;
            self.summary.answered += 1;
            ReplyVerdict::Accepted(reply)
        } else {
            ReplyVerdict::Malformed(reply)
        }
    }

    /// Called when the shell's wait ended without an accepted reply.
    pub fn on_timeout(&mut self, now: Instant) -> TimeoutVerdict {
        let Some(flight) = &mut self.in_flight else {
            return TimeoutVerdict::Idle;
        };
        if now < flight.deadline {
            return TimeoutVerdict::Wait(flight.deadline);
        }
        if flight.attempt >= self.policy.retries {
            let request = self.in_flight.take().map(|f| f.request).unwrap_or_default();
            self.summary.failed += 1;
            return TimeoutVerdict::Abandon(request);
        }
        flight.attempt += 1;
        flight.deadline = now + self.policy.timeout;
        self.summary.retries += 1;
        TimeoutVerdict::Retry {
            request: flight.request.clone(),
            deadline: flight.deadline,
            attempt: flight.attempt,
        }
    }

    /// The user gave up (Ctrl-C): the request in flight, if any, is reported failed.
    pub fn interrupt(&mut self) -> Option<Message> {
        let flight = self.in_flight.take()?;
        self.summary.failed += 1;
        Some(flight.request)
    }

    /// Counts so far: sent, answered, failed, retries.
    pub fn summary(&self) -> Summary {
        self.summary
    }
}

/// The Guide client's request bodies: the sequence number in decimal, from 1.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    last: u64,
}

impl Sequence {
    /// A sequence whose first request is `"1"`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next request: a single frame holding the next sequence number.
    pub fn next_request(&mut self) -> (u64, Message) {
        self.last += 1;
        (self.last, Message::from_frames([self.last.to_string()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);

    fn requester(retries: u32) -> Requester {
        Requester::new(RetryPolicy {
            timeout: T,
            retries,
            check: ReplyCheck::Echo,
        })
    }

    fn msg(s: &str) -> Message {
        Message::from_frames([s.to_owned()])
    }

    #[test]
    fn matching_reply_is_accepted_and_counted() {
        let now = Instant::now();
        let mut r = requester(3);
        assert_eq!(r.start(msg("1"), now), Ok(now + T));
        assert_eq!(r.on_reply(msg("1")), ReplyVerdict::Accepted(msg("1")));
        assert_eq!(r.in_flight(), None);
        let s = r.summary();
        assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 1, 0, 0));
    }

    #[test]
    fn wrong_sequence_is_malformed_and_keeps_the_request_in_flight() {
        let now = Instant::now();
        let mut r = requester(3);
        r.start(msg("2"), now).unwrap();
        assert_eq!(r.on_reply(msg("1")), ReplyVerdict::Malformed(msg("1")));
        assert_eq!(r.in_flight(), Some(&msg("2")));
        assert_eq!(r.deadline(), Some(now + T));
        assert_eq!(r.on_reply(msg("2")), ReplyVerdict::Accepted(msg("2")));
    }

    #[test]
    fn reply_with_nothing_in_flight_is_malformed() {
        let mut r = requester(3);
        assert_eq!(r.on_reply(msg("7")), ReplyVerdict::Malformed(msg("7")));
        assert_eq!(r.summary().answered, 0);
    }

    #[test]
    fn any_check_accepts_whatever_comes_back() {
        let now = Instant::now();
        let mut r = Requester::new(RetryPolicy {
            check: ReplyCheck::Any,
            ..RetryPolicy::default()
        });
        r.start(msg("1"), now).unwrap();
        assert_eq!(
            r.on_reply(msg("world")),
            ReplyVerdict::Accepted(msg("world"))
        );
    }

    #[test]
    fn early_timeout_only_waits() {
        let now = Instant::now();
        let mut r = requester(3);
        r.start(msg("1"), now).unwrap();
        assert_eq!(r.on_timeout(now + T / 2), TimeoutVerdict::Wait(now + T));
        assert_eq!(r.summary().retries, 0);
    }

    #[test]
    fn retries_then_abandons_after_the_guides_three_tries() {
        let t0 = Instant::now();
        let mut r = requester(3);
        r.start(msg("4"), t0).unwrap();
        let t1 = t0 + T;
        assert_eq!(
            r.on_timeout(t1),
            TimeoutVerdict::Retry {
                request: msg("4"),
                deadline: t1 + T,
                attempt: 2
            }
        );
        let t2 = t1 + T;
        assert_eq!(
            r.on_timeout(t2),
            TimeoutVerdict::Retry {
                request: msg("4"),
                deadline: t2 + T,
                attempt: 3
            }
        );
        assert_eq!(r.on_timeout(t2 + T), TimeoutVerdict::Abandon(msg("4")));
        assert_eq!(r.on_timeout(t2 + T * 2), TimeoutVerdict::Idle);
        let s = r.summary();
        assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 0, 1, 2));
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn a_reply_to_a_resend_is_accepted_and_the_next_request_starts_fresh() {
        let t0 = Instant::now();
        let mut r = requester(3);
        r.start(msg("1"), t0).unwrap();
        assert!(matches!(r.on_timeout(t0 + T), TimeoutVerdict::Retry { .. }));
        assert_eq!(r.on_reply(msg("1")), ReplyVerdict::Accepted(msg("1")));
        // The next request gets all three tries again.
        let t1 = t0 + T * 2;
        r.start(msg("2"), t1).unwrap();
        assert!(matches!(
            r.on_timeout(t1 + T),
            TimeoutVerdict::Retry { attempt: 2, .. }
        ));
        assert!(matches!(
            r.on_timeout(t1 + T * 2),
            TimeoutVerdict::Retry { attempt: 3, .. }
        ));
        assert!(matches!(
            r.on_timeout(t1 + T * 3),
            TimeoutVerdict::Abandon(_)
        ));
        let s = r.summary();
        assert_eq!((s.sent, s.answered, s.failed, s.retries), (2, 1, 1, 3));
    }

    #[test]
    fn one_try_means_no_resend() {
        let t0 = Instant::now();
        let mut r = requester(0); // clamped to one try
        assert_eq!(r.policy().retries, 1);
        r.start(msg("1"), t0).unwrap();
        assert_eq!(r.on_timeout(t0 + T), TimeoutVerdict::Abandon(msg("1")));
    }

    #[test]
    fn only_one_request_in_flight() {
        let now = Instant::now();
        let mut r = requester(3);
        r.start(msg("1"), now).unwrap();
        assert_eq!(r.start(msg("2"), now), Err(Busy));
        assert_eq!(r.summary().sent, 1);
    }

    #[test]
    fn interrupt_reports_the_request_in_flight_failed() {
        let now = Instant::now();
        let mut r = requester(3);
        assert_eq!(r.interrupt(), None);
        r.start(msg("1"), now).unwrap();
        assert_eq!(r.interrupt(), Some(msg("1")));
        let s = r.summary();
        assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1));
    }

    #[test]
    fn sequence_counts_from_one_in_decimal() {
        let mut seq = Sequence::new();
        assert_eq!(seq.next_request(), (1, msg("1")));
        assert_eq!(seq.next_request(), (2, msg("2")));
        for _ in 0..7 {
            seq.next_request();
        }
        assert_eq!(seq.next_request(), (10, msg("10")));
    }
}
