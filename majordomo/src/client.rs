//! The client role's pure parts: its settings ([`ClientOptions`], [`PairOptions`] and the
//! Guide's defaults) and the schedule of a retried request (`Route`: one broker's attempts,
//! Lazy Pirate, or a pair's turns by Binary Star's client plan), which
//! [`common::retry::Requester`] runs; [`pair`] and [`stream`] hold the cores of the pipelined
//! pair client and of a streamed request. No sockets, no clock: the APIs that carry them out,
//! [`Client`](crate::Client), [`AsyncClient`](crate::AsyncClient) and the stream clients, are
//! the shell, in [`crate::client_loop`].

pub mod pair;
pub mod stream;

use binary_star::failover::{self, Plan, Policy, Strategy};
use common::retry::{self, Tries, Try};
use std::time::{Duration, Instant};

/// Guide default: how long one attempt waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(2500);
/// Guide default: attempts per request before giving up (mdcliapi counts the first one too).
pub const REQUEST_RETRIES: u32 = 3;
/// How long the backup broker of a pair may need before it serves: the pair's default peer
/// expiry, 2 × its 1000 ms state heartbeat (Binary Star's settle delay).
pub const SETTLE_DELAY: Duration = failover::SETTLE_DELAY;
/// How often a pair client resends while the other broker settles (Binary Star's vote).
pub const VOTE_INTERVAL: Duration = failover::VOTE_INTERVAL;

/// Settings of both clients.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long one attempt (including connecting) waits for a reply; for [`AsyncClient::recv`](crate::AsyncClient::recv)
    /// how long it waits for the next reply.
    pub timeout: Duration,
    /// Attempts per request in total ([`Client`](crate::Client) only). At least one is always made. With a
    /// broker pair: turns per request, for both clients ([`Client`](crate::client_loop#a-broker-pair-binary-star) docs).
    pub retries: u32,
}

/// The timing of a client of a broker pair, beyond [`ClientOptions`] (kept apart so that code
/// building `ClientOptions` by its fields goes on compiling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairOptions {
    /// How long the other broker may need before it serves: the pair's peer expiry. While it
    /// passes, the client votes.
    pub settle: Duration,
    /// How often a request is resent while the other broker settles (capped at the timeout).
    pub vote: Duration,
}

impl Default for PairOptions {
    fn default() -> Self {
        Self {
            settle: SETTLE_DELAY,
            vote: VOTE_INTERVAL,
        }
    }
}

impl PairOptions {
    /// How long a request to the pair may go unanswered before it is reported failed:
    /// `timeout` for the first broker's turn, then `settle + timeout` for each further one
    /// (`retries` turns in all), saturating.
    pub fn give_up(&self, options: &ClientOptions) -> Duration {
        let turn = self.settle.saturating_add(options.timeout);
        let more = options.retries.max(1) - 1;
        options.timeout.saturating_add(turn.saturating_mul(more))
    }

    /// Binary Star's client plan for the synchronous client: eager voting, giving up after
    /// [`give_up`](Self::give_up).
    pub fn policy(&self, options: &ClientOptions) -> Policy {
        Policy {
            strategy: Strategy::Eager,
            timeout: options.timeout,
            settle: self.settle,
            vote: self.vote,
            give_up: Some(self.give_up(options)),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: REQUEST_TIMEOUT,
            retries: REQUEST_RETRIES,
        }
    }
}

/// Where a [`Client`](crate::Client)'s tries go: one broker, `retries` times (Lazy Pirate), or a pair, by
/// Binary Star's client plan.
#[derive(Debug)]
pub(crate) enum Route {
    One(Tries),
    Pair(Plan),
}

impl retry::Schedule for Route {
    fn begin(&mut self, now: Instant) -> Try {
        match self {
            Route::One(tries) => tries.begin(now),
            Route::Pair(plan) => plan.begin(now),
        }
    }

    fn next(&mut self, now: Instant) -> Option<Try> {
        match self {
            Route::One(tries) => tries.next(now),
            Route::Pair(plan) => plan.next(now),
        }
    }

    fn answered(&mut self, now: Instant) {
        match self {
            Route::One(tries) => tries.answered(now),
            Route::Pair(plan) => plan.answered(now),
        }
    }
}
