//! Retry on a fresh socket: the one requester core of every client that resends (Lazy Pirate,
//! Majordomo's `Client`, Freelance model 1, the Binary Star client).
//!
//! [`Requester`] is the core: one request in flight, its tries, the reply check, when to give
//! up, and whether the shell's socket may be kept for the next try (a REQ whose reply never came
//! refuses to send again, and the `zeromq` crate's sockets never reconnect, so every failed try
//! costs the socket). Which endpoint each try goes to and when is a [`Schedule`]: [`Tries`] (one
//! endpoint N times, or several once each in turn) or a pattern's own (Binary Star's failover
//! plan). Its shell, [`RetryClient`], lives in [`retry_loop`](crate::retry_loop) and is
//! re-exported here with its socket trait and error.

use crate::contract::{self, Core, Outbox};
use crate::report::Summary;
use crate::sock::SockError;
use crate::Message;
use std::time::{Duration, Instant};

pub use crate::retry_loop::{Abandoned, RetryClient, TrySocket};

/// One try of a request: to which endpoint, not before when, and until when it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Try {
    /// Index of the endpoint to ask.
    pub endpoint: usize,
    /// Not before this instant.
    pub at: Instant,
    /// The try has failed if no answer came by this instant.
    pub until: Instant,
}

/// Where and when each try of a request goes.
pub trait Schedule {
    /// The first try of a request that starts at `now`.
    fn begin(&mut self, now: Instant) -> Try;
    /// The current try failed at `now`: the next one, or `None` to abandon the request.
    fn next(&mut self, now: Instant) -> Option<Try>;
    /// The current try was answered at `now`.
    fn answered(&mut self, _now: Instant) {}
}

/// The plain schedule: every try waits `timeout`. One endpoint is tried `tries` times (Lazy
/// Pirate); several are tried once each, in order (Freelance model 1). Every request starts
/// again with the first endpoint.
#[derive(Debug, Clone)]
pub struct Tries {
    timeout: Duration,
    total: u32,
    endpoints: u32,
    made: u32,
}

impl Tries {
    /// `tries` (at least 1) tries per request over `endpoints` endpoints, `timeout` each.
    pub fn new(timeout: Duration, tries: u32, endpoints: usize) -> Self {
        let endpoints = endpoints.max(1) as u32;
        let total = if endpoints > 1 {
            endpoints
        } else {
            tries.max(1)
        };
        let made = 0;
        Self {
            timeout,
            total,
            endpoints,
            made,
        }
    }

    /// Tries per request.
    pub fn total(&self) -> u32 {
        self.total
    }

    fn try_at(&mut self, now: Instant) -> Try {
        let endpoint = (self.made % self.endpoints) as usize;
        self.made += 1;
        let until = contract::saturating_add(now, self.timeout);
        Try {
            endpoint,
            at: now,
            until,
        }
    }
}

impl Schedule for Tries {
    fn begin(&mut self, now: Instant) -> Try {
        self.made = 0;
        self.try_at(now)
    }

    fn next(&mut self, now: Instant) -> Option<Try> {
        (self.made < self.total).then(|| self.try_at(now))
    }
}

/// Which replies answer the request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCheck {
    /// The reply must equal the request frame for frame (echo servers), so a stale or foreign
    /// reply is caught.
    Echo,
    /// Any reply is accepted (the shell filtered already, or the server does not echo).
    Any,
}

/// What a try that failed before its deadline (an error, a wrong reply) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Wait out the deadline before the next try: a restarting server needs the time, and a
    /// reset at once must not burn every try in milliseconds (Lazy Pirate, Majordomo).
    WaitOut,
    /// Go on to the next try at once (Freelance model 1; Binary Star's plan paces itself).
    Next,
}

/// The stage of a try that failed.
#[derive(Debug, thiserror::Error)]
pub enum TryError {
    /// The endpoint could not be reached in time.
    #[error("connect: {0}")]
    Connect(SockError),
    /// The request could not be handed to the socket.
    #[error("send: {0}")]
    Send(SockError),
    /// The connection failed while waiting for the reply.
    #[error("receive: {0}")]
    Recv(SockError),
}

impl TryError {
    /// The socket error, whatever the stage.
    pub fn sock(&self) -> &SockError {
        match self {
            TryError::Connect(e) | TryError::Send(e) | TryError::Recv(e) => e,
        }
    }
}

/// What the core asks the shell to send: `request` to `endpoint`, on a fresh socket when
/// `fresh` says so, else on the socket the shell kept from the last answered try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The request, unchanged on every try.
    pub request: Message,
    /// Index of the endpoint.
    pub endpoint: usize,
    /// Open a new socket to `endpoint` (dropping any other) rather than reuse the kept one.
    pub fresh: bool,
    /// 1 for the first try.
    pub attempt: u32,
    /// When the try was due to start.
    pub at: Instant,
    /// Connect, send and receive all end by this instant.
    pub until: Instant,
}

/// What happened, for the shell to log or count.
#[derive(Debug)]
pub enum Event {
    /// The answer: the request is done.
    Answered {
        /// The reply.
        reply: Message,
        /// Who answered.
        endpoint: usize,
        /// Tries it took (1: no retry).
        tries: u32,
        /// From the request's start to its answer.
        waited: Duration,
        /// The answer came from another endpoint than the previous answer (first: endpoint 0).
        switched: bool,
    },
    /// A reply that is not the answer (wrong echo, or nothing was in flight): dropped.
    Rejected {
        /// The reply.
        reply: Message,
        /// The endpoint of the current try (0 when none is in flight).
        endpoint: usize,
    },
    /// A try failed before its deadline.
    Failed {
        /// The endpoint tried.
        endpoint: usize,
        /// What failed.
        error: TryError,
    },
    /// A try's deadline passed without an answer.
    TimedOut {
        /// The endpoint tried.
        endpoint: usize,
    },
    /// The request goes out again.
    Retrying {
        /// Which try this is (2 for the first resend).
        attempt: u32,
        /// The endpoint the previous try went to.
        from: usize,
        /// The endpoint this try goes to.
        to: usize,
    },
    /// Tries used up: the request failed.
    Abandoned {
        /// The request.
        request: Message,
        /// How often it was sent.
        tries: u32,
    },
    /// A request came while another was in flight: refused, never sent, not counted. (The
    /// shell interrupts a cancelled request before it starts the next, so it never sees this.)
    Busy {
        /// The refused request.
        request: Message,
    },
}

#[derive(Debug)]
struct Flight {
    request: Message,
    now: Try,
    attempt: u32,
    started: Instant,
    transmitted: bool,
    failed: bool,
}

/// The retry core: at most one request in flight, its tries, and its outcome.
#[derive(Debug)]
pub struct Requester<S = Tries> {
    schedule: S,
    check: ReplyCheck,
    on_failure: OnFailure,
    flight: Option<Flight>,
    last_answer: usize,
    /// The endpoint whose socket the shell may keep: set when a try goes out, cleared when a try
    /// fails (the socket may be dead, and a REQ refuses to send twice) or is given up.
    socket: Option<usize>,
    summary: Summary,
    out: Outbox<Transmit, Event>,
}

impl<S: Schedule> Requester<S> {
    /// A requester with nothing in flight.
    pub fn new(schedule: S, check: ReplyCheck, on_failure: OnFailure) -> Self {
        Self {
            schedule,
            check,
            on_failure,
            flight: None,
            last_answer: 0,
            socket: None,
            summary: Summary::default(),
            out: Outbox::default(),
        }
    }

    /// The schedule in use.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }

    /// Counts so far: sent, answered, failed, retries.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<&Message> {
        self.flight.as_ref().map(|f| &f.request)
    }

    /// The endpoint whose socket the shell keeps open; `None`: close whatever socket it holds.
    /// Read it after the events: a try that failed or timed out takes its socket with it, an
    /// answered one leaves it for the next request to the same endpoint.
    pub fn socket(&self) -> Option<usize> {
        self.socket
    }

    /// Starts a new request at `now`, unless one is in flight ([`Event::Busy`]).
    pub fn handle_request(&mut self, request: Message, now: Instant) {
        if self.flight.is_some() {
            self.out.event(Event::Busy { request });
            return;
        }
        let first = self.schedule.begin(now);
        self.summary.sent += 1;
        self.flight = Some(Flight {
            request,
            now: first,
            attempt: 1,
            started: now,
            transmitted: false,
            failed: false,
        });
        self.handle_timeout(now);
    }

    /// A reply arrived.
    pub fn handle_reply(&mut self, reply: Message, now: Instant) {
        let Some(flight) = &self.flight else {
            self.out.event(Event::Rejected { reply, endpoint: 0 });
            return;
        };
        let endpoint = flight.now.endpoint;
        if !flight.transmitted {
            // Nothing was sent to this try's endpoint yet: a late answer to the previous try.
            self.out.event(Event::Rejected { reply, endpoint });
            return;
        }
        if self.check == ReplyCheck::Echo && reply != flight.request {
            self.out.event(Event::Rejected { reply, endpoint });
            self.failed(now);
            return;
        }
        let tries = flight.attempt;
        let waited = now.saturating_duration_since(flight.started);
        self.flight = None;
        self.schedule.answered(now);
        self.summary.answered += 1;
        let switched = endpoint != self.last_answer;
        self.last_answer = endpoint;
        self.out.event(Event::Answered {
            reply,
            endpoint,
            tries,
            waited,
            switched,
        });
    }

    /// The current try failed before its deadline (the shell's socket said so). The socket is
    /// done for, whether or not a request is still in flight.
    pub fn handle_error(&mut self, error: TryError, now: Instant) {
        self.socket = None;
        let Some(flight) = &self.flight else {
            return;
        };
        let endpoint = flight.now.endpoint;
        self.out.event(Event::Failed { endpoint, error });
        self.failed(now);
    }

    /// The user gave up (Ctrl-C): the request in flight, if any, is counted failed.
    pub fn interrupt(&mut self) -> Option<Message> {
        // The interrupted request's reply may still come on that socket: never reuse it.
        self.socket = None;
        let flight = self.flight.take()?;
        self.summary.failed += 1;
        Some(flight.request)
    }

    fn failed(&mut self, now: Instant) {
        match &mut self.flight {
            Some(flight) if self.on_failure == OnFailure::WaitOut => flight.failed = true,
            Some(_) => self.next(now),
            None => {}
        }
    }

    /// The current try is over: start the next one or abandon.
    fn next(&mut self, now: Instant) {
        let Some(flight) = &mut self.flight else {
            return;
        };
        let from = flight.now.endpoint;
        // Whatever comes next, the socket of the try that is over goes.
        self.socket = None;
        match self.schedule.next(now) {
            Some(next) => {
                flight.now = next;
                flight.attempt += 1;
                flight.transmitted = false;
                flight.failed = false;
                self.summary.retries += 1;
                self.out.event(Event::Retrying {
                    attempt: flight.attempt,
                    from,
                    to: next.endpoint,
                });
                self.handle_timeout(now);
            }
            None => {
                let tries = flight.attempt;
                let request = self.flight.take().map(|f| f.request).unwrap_or_default();
                self.summary.failed += 1;
                self.out.event(Event::Abandoned { request, tries });
            }
        }
    }
}

impl<S: Schedule> Core for Requester<S> {
    type Transmit = Transmit;
    type Event = Event;

    fn handle_timeout(&mut self, now: Instant) {
        let Some(flight) = &mut self.flight else {
            return;
        };
        if !flight.transmitted {
            if now >= flight.now.at {
                flight.transmitted = true;
                let endpoint = flight.now.endpoint;
                let fresh = self.socket != Some(endpoint);
                self.socket = Some(endpoint);
                self.out.transmit(Transmit {
                    request: flight.request.clone(),
                    endpoint,
                    fresh,
                    attempt: flight.attempt,
                    at: flight.now.at,
                    until: flight.now.until,
                });
            }
        } else if now >= flight.now.until {
            if !flight.failed {
                let endpoint = flight.now.endpoint;
                self.out.event(Event::TimedOut { endpoint });
            }
            self.next(now);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let flight = self.flight.as_ref()?;
        Some(if flight.transmitted {
            flight.now.until
        } else {
            flight.now.at
        })
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.out.poll_event()
    }
}

#[cfg(test)]
mod tests;
