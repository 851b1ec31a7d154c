//! The pure core of one streamed request (MDP/0.2): the timeout *per part*, the attempts, and
//! the parts of a retry already yielded. A retry's stream starts again from its first part
//! (the broker joins the running request or answers from memory, a broker without ids runs it
//! again), so each attempt's parts are counted and as many as were already yielded are
//! skipped. The shell that carries it out is [`StreamClient`](crate::StreamClient).

use super::ClientOptions;
use common::Message;
use std::time::{Duration, Instant};

/// One part of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A PARTIAL: more follow.
    Partial(Message),
    /// The FINAL (or an MDP/0.1 REPLY): the reply is complete.
    Final(Message),
}

impl Part {
    /// The part's frames.
    pub fn body(&self) -> &Message {
        let (Part::Partial(body) | Part::Final(body)) = self;
        body
    }

    /// True for the last part.
    pub fn is_final(&self) -> bool {
        matches!(self, Part::Final(_))
    }
}

/// What the stream's pure core wants done next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Wait for a part until then.
    Wait(Instant),
    /// Silence: send the request again on a fresh socket (attempt number inside).
    Resend(u32),
    /// Silence after the last attempt: the request failed (and is over).
    GiveUp,
    /// The FINAL arrived.
    Done,
}

/// The pure core of one streamed request: per-part deadlines, attempts, and the parts of a
/// retry already yielded. Not a [`common::contract::Core`] (it sends nothing and reports
/// nothing): like the broker's helpers it answers at once, [`receive`](Self::receive) with the
/// part to hand on and [`poll`](Self::poll) with what to do next. See the [module docs](self) and [`StreamClient`](crate::StreamClient).
#[derive(Debug)]
pub struct StreamCore {
    timeout: Duration,
    attempts: u32,
    attempt: u32,
    /// Parts yielded to the caller.
    yielded: usize,
    /// Parts received in the current attempt.
    this_attempt: usize,
    deadline: Instant,
    done: bool,
}

impl StreamCore {
    /// A request sent (first attempt) at `now`.
    pub fn new(options: &ClientOptions, now: Instant) -> Self {
        Self {
            timeout: options.timeout,
            attempts: options.retries.max(1),
            attempt: 1,
            yielded: 0,
            this_attempt: 0,
            deadline: common::contract::saturating_add(now, options.timeout),
            done: false,
        }
    }

    /// A part arrived at `now`: the deadline starts again; `Some` if it is new to the caller.
    pub fn receive(&mut self, part: Part, now: Instant) -> Option<Part> {
        if self.done {
            return None;
        }
        self.deadline = common::contract::saturating_add(now, self.timeout);
        self.this_attempt += 1;
        if part.is_final() {
            self.done = true;
            return Some(part);
        }
        if self.this_attempt <= self.yielded {
            return None; // a retry's replay of a part the caller has
        }
        self.yielded += 1;
        Some(part)
    }

    /// What to do at `now`.
    pub fn poll(&mut self, now: Instant) -> Next {
        if self.done {
            return Next::Done;
        }
        if now < self.deadline {
            return Next::Wait(self.deadline);
        }
        if self.attempt >= self.attempts {
            // The request is over: a part that still comes is not handed on.
            self.done = true;
            return Next::GiveUp;
        }
        self.attempt += 1;
        self.this_attempt = 0;
        self.deadline = common::contract::saturating_add(now, self.timeout);
        Next::Resend(self.attempt)
    }

    /// Attempts made so far.
    pub fn attempts_made(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn p(s: &str) -> Part {
        Part::Partial(Message::from_frames([s.to_owned()]))
    }

    fn f(s: &str) -> Part {
        Part::Final(Message::from_frames([s.to_owned()]))
    }

    fn options() -> ClientOptions {
        ClientOptions {
            timeout: 100 * MS,
            retries: 3,
        }
    }

    #[test]
    fn the_timeout_starts_again_with_every_part() {
        let t0 = Instant::now();
        let mut core = StreamCore::new(&options(), t0);
        assert_eq!(core.poll(t0), Next::Wait(t0 + 100 * MS));
        // Parts every 90 ms for a second: never a resend.
        for k in 1..=11u32 {
            let t = t0 + 90 * k * MS;
            assert_eq!(core.poll(t), Next::Wait(t0 + 90 * (k - 1) * MS + 100 * MS));
            assert_eq!(core.receive(p("x"), t), Some(p("x")));
        }
        let t = t0 + 990 * MS;
        assert_eq!(core.receive(f("end"), t), Some(f("end")));
        assert_eq!(core.poll(t + 1000 * MS), Next::Done);
        assert_eq!(core.attempts_made(), 1);
    }

    #[test]
    fn a_retry_skips_the_parts_already_yielded_then_gives_up_after_the_last_attempt() {
        let t0 = Instant::now();
        let mut core = StreamCore::new(&options(), t0);
        assert_eq!(core.receive(p("1"), t0), Some(p("1")));
        assert_eq!(core.receive(p("2"), t0), Some(p("2")));
        assert_eq!(core.poll(t0 + 100 * MS), Next::Resend(2));
        // The retry's stream starts from the first part again.
        assert_eq!(core.receive(p("1"), t0 + 110 * MS), None);
        assert_eq!(core.receive(p("2"), t0 + 110 * MS), None);
        assert_eq!(core.receive(p("3"), t0 + 110 * MS), Some(p("3")));
        assert_eq!(core.poll(t0 + 210 * MS), Next::Resend(3));
        assert_eq!(core.poll(t0 + 310 * MS), Next::GiveUp);
    }
}
