//! Retry on a fresh socket: the one requester of every client that resends (Lazy Pirate,
//! Majordomo's `Client`, Freelance model 1, the Binary Star client).
//!
//! [`Requester`] is the core: one request in flight, its tries, the reply check, when to give
//! up. Which endpoint each try goes to and when is a [`Schedule`]: [`Tries`] (one endpoint N
//! times, or several once each in turn) or a pattern's own (Binary Star's failover plan).
//! [`RetryClient`] is the shell: it opens a fresh socket for every retry (a REQ whose reply never
//! came refuses to send again, and the `zeromq` crate's sockets never reconnect), bounds connect,
//! send and receive by the try's deadline, and hands every [`Event`] to the caller to log.

use crate::contract::{self, Core, Outbox};
use crate::report::Summary;
use crate::sock::{self, SockError};
use crate::Message;
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, ReqSocket, Socket, SocketRecv, SocketSend};

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

/// What the core asks the shell to send: `request` to `endpoint`, on a fresh socket unless
/// the shell's socket to that endpoint is still good (it is dropped whenever a try fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The request, unchanged on every try.
    pub request: Message,
    /// Index of the endpoint.
    pub endpoint: usize,
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
}

/// Returned by [`Requester::handle_request`] when a request is still in flight.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a request is already in flight")]
pub struct Busy;

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

    /// Starts a new request at `now`.
    pub fn handle_request(&mut self, request: Message, now: Instant) -> Result<(), Busy> {
        if self.flight.is_some() {
            return Err(Busy);
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
        Ok(())
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

    /// The current try failed before its deadline (the shell's socket said so).
    pub fn handle_error(&mut self, error: TryError, now: Instant) {
        let Some(flight) = &self.flight else {
            return;
        };
        let endpoint = flight.now.endpoint;
        self.out.event(Event::Failed { endpoint, error });
        self.failed(now);
    }

    /// The user gave up (Ctrl-C): the request in flight, if any, is counted failed.
    pub fn interrupt(&mut self) -> Option<Message> {
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
                self.out.transmit(Transmit {
                    request: flight.request.clone(),
                    endpoint: flight.now.endpoint,
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

/// A socket a [`RetryClient`] can try with.
pub trait TrySocket: Socket + SocketSend + SocketRecv {
    /// True for REQ: one reply per request, after which only a resend can help.
    const ONE_REPLY: bool;
}

impl TrySocket for ReqSocket {
    const ONE_REPLY: bool = true;
}

impl TrySocket for DealerSocket {
    const ONE_REPLY: bool = false;
}

/// The request was tried as often as the schedule allows and never answered.
#[derive(Debug, thiserror::Error)]
#[error("no reply after {tries} tries")]
pub struct Abandoned {
    /// The request that went unanswered.
    pub request: Message,
    /// How many times it was sent.
    pub tries: u32,
}

/// The shell of a [`Requester`]: sockets, the clock, and the caller's log lines.
pub struct RetryClient<S: TrySocket, P = Tries> {
    endpoints: Vec<String>,
    core: Requester<P>,
    /// The socket of the current (or last answered) try, its endpoint, and whether it may
    /// still receive.
    socket: Option<(usize, S, bool)>,
}

impl<S: TrySocket, P: Schedule> RetryClient<S, P> {
    /// A client of `endpoints` (indexes of the schedule's tries); connects on the first request.
    pub fn new(endpoints: Vec<String>, core: Requester<P>) -> Self {
        Self {
            endpoints,
            core,
            socket: None,
        }
    }

    /// The core (counts, schedule).
    pub fn core(&self) -> &Requester<P> {
        &self.core
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Gives up on the request in flight (its `request` future was dropped); it is counted
    /// failed. Returns it, if there was one.
    pub fn interrupt(&mut self) -> Option<Message> {
        self.socket = None;
        self.core.interrupt()
    }

    /// Sends `request` and waits for the answer, resending as the schedule says; `on_event`
    /// sees every event (to log it).
    pub async fn request(
        &mut self,
        request: Message,
        on_event: impl FnMut(&Event),
    ) -> Result<Message, Abandoned> {
        self.request_with(request, Some, on_event).await
    }

    /// Like [`request`](Self::request); `filter` sees
    /// each reply first (`None` drops it: the caller logs why).
    pub async fn request_with(
        &mut self,
        request: Message,
        mut filter: impl FnMut(Message) -> Option<Message>,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Message, Abandoned> {
        if self.core.in_flight().is_some() {
            // A previous call was cancelled mid-flight: its socket may still get that reply.
            self.interrupt();
        }
        if let Err(busy) = self.core.handle_request(request, contract::now()) {
            unreachable!("{busy} after interrupt");
        }
        loop {
            // Events first: a failed try's socket must go before the next try opens its own.
            while let Some(event) = self.core.poll_event() {
                on_event(&event);
                match event {
                    Event::Answered { reply, .. } => return Ok(reply),
                    Event::Abandoned { request, tries } => {
                        self.socket = None;
                        return Err(Abandoned { request, tries });
                    }
                    Event::Failed { .. } | Event::TimedOut { .. } | Event::Retrying { .. } => {
                        self.socket = None
                    }
                    Event::Rejected { .. } => {}
                }
            }
            if let Some(transmit) = self.core.poll_transmit() {
                self.transmit(transmit).await;
                continue;
            }
            let deadline = self.core.poll_timeout();
            let received = match &mut self.socket {
                Some((_, socket, awaiting @ true)) => tokio::select! {
                    received = socket.recv() => {
                        *awaiting = !S::ONE_REPLY;
                        Some(received)
                    }
                    () = contract::sleep_until(deadline) => None,
                },
                _ => {
                    contract::sleep_until(deadline).await;
                    None
                }
            };
            let now = contract::now();
            match received {
                Some(Ok(reply)) => {
                    let reply = Message::from(reply);
                    tracing::debug!("received reply:\n{}", reply.dump());
                    if let Some(reply) = filter(reply) {
                        self.core.handle_reply(reply, now);
                    }
                }
                Some(Err(e)) => {
                    self.socket = None;
                    self.core.handle_error(TryError::Recv(e.into()), now);
                }
                None => self.core.handle_timeout(now),
            }
        }
    }

    /// Connects (unless the socket to that endpoint is still open) and sends, by `until`.
    async fn transmit(&mut self, t: Transmit) {
        let left = || t.until.saturating_duration_since(contract::now());
        if self
            .socket
            .as_ref()
            .is_none_or(|(at, ..)| *at != t.endpoint)
        {
            self.socket = None;
            // Connecting gets the try's whole length (a log line then says "after 1s"); the
            // crate's own connect timeout is set longer, so one error is reported, always ours.
            let length = t.until.saturating_duration_since(t.at);
            let mut socket = S::with_options(sock::options(length.saturating_mul(2), None));
            let endpoint = &self.endpoints[t.endpoint];
            if let Err(e) = sock::connect(&mut socket, endpoint, length).await {
                self.core
                    .handle_error(TryError::Connect(e), contract::now());
                return;
            }
            self.socket = Some((t.endpoint, socket, false));
        }
        let Some((_, socket, awaiting)) = self.socket.as_mut() else {
            return;
        };
        tracing::debug!("sending request:\n{}", t.request.dump());
        let send = sock::send(socket, t.request, left().max(Duration::from_millis(1)));
        match send.await {
            Ok(()) => *awaiting = true,
            Err(e) => {
                self.socket = None;
                self.core.handle_error(TryError::Send(e), contract::now());
            }
        }
    }
}

#[cfg(test)]
mod tests;
