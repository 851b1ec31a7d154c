//! The Lazy Pirate client's retry policy and request numbering, with no socket and no clock.
//!
//! The retry itself is the workspace's one requester ([`common::retry::Requester`]: when a try
//! times out, whether a reply is the right one, when to resend on a fresh socket and when to
//! give up); [`RetryPolicy`] sets it up the Guide's way. [`Sequence`] numbers the requests the
//! way the Guide's client does (`"1"`, `"2"`, …).

use common::retry::{OnFailure, Requester, Tries};
use common::Message;
use std::time::Duration;

/// Guide default: how long one try waits for the reply (`REQUEST_TIMEOUT`, keep it > 1000 ms).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(2500);
/// Guide default: tries per request before abandoning (`REQUEST_RETRIES`; the first send counts).
pub const REQUEST_RETRIES: u32 = 3;

pub use common::retry::ReplyCheck;

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

impl RetryPolicy {
    /// The retry core this policy describes: one server, `retries` tries, each failed try
    /// waited out (a server being restarted needs the time).
    pub fn requester(self) -> Requester {
        Requester::new(
            Tries::new(self.timeout, self.retries, 1),
            self.check,
            OnFailure::WaitOut,
        )
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

    fn msg(s: &str) -> Message {
        Message::from_frames([s.to_owned()])
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
