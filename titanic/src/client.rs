//! The TSP client's decisions for one request's life: hand it to Titanic, poll for its reply,
//! close it, and retry whatever Titanic cannot answer yet. Pure: no socket, no clock. The shell
//! ([`crate::client_loop`]) makes each call with the Majordomo client, which already retries
//! on fresh sockets ([`common::retry`]); this core is the TSP level above it, the Guide's
//! ticlient loop, which never gives up on a request Titanic may still hold.
//!
//! ```text
//!  Storing ──200 <uuid>──▶ Polling ──200 + reply──▶ Closing ──answered──▶ done
//!   │  ▲                    │  ▲ 300: poll again      │  ▲
//!   └──┘ 500, silence,      └──┘ after `poll`         └──┘ 500, silence: after `poll`
//!        unusable: after `poll`
//! ```
//!
//! Status handling follows 9/TSP: `300` (pending) and `500` (server error) are retried after
//! `poll`, as is a call that got no answer at all (Titanic or the broker is down: the
//! Majordomo client has already retried on fresh sockets); `400` is final
//! ([`TiError::Rejected`]), as is an endpoint the client cannot use.

use crate::protocol::{self, Answer, NewRequest, RequestId, Status, TspError};
use bytes::Bytes;
use common::contract::{self, Core, Outbox};
use common::Message;
use majordomo::ClientError;
use std::time::{Duration, Instant};

/// Why a TSP call failed for good.
#[derive(Debug, thiserror::Error)]
pub enum TiError {
    /// Titanic answered `400`: unknown (or closed) request, or a malformed one. Do not retry.
    #[error("{service} answered 400 (unknown or malformed request)")]
    Rejected {
        /// The TSP service that refused.
        service: &'static str,
    },
    /// The client could not be created (bad endpoint).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A call for the shell to make through the Majordomo client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The TSP service.
    pub service: &'static str,
    /// The body.
    pub body: Message,
    /// Carry the request's one request id: every call storing the request does, so Titanic
    /// stores it once however often it is retried.
    pub with_rid: bool,
}

/// Why a call is made again.
#[derive(Debug)]
pub enum Retry {
    /// Titanic answered `500`.
    Failed,
    /// The answer could not be parsed.
    Malformed(TspError),
    /// No answer after every Majordomo attempt.
    NoAnswer,
    /// The Majordomo client failed otherwise.
    Client(ClientError),
    /// `titanic.request` answered without a usable UUID.
    Unusable(String),
}

/// What happened, for the shell to log.
#[derive(Debug)]
pub enum Event {
    /// The call to `service` is made again after the poll interval.
    Retrying {
        /// The TSP service.
        service: &'static str,
        /// Why.
        why: Retry,
    },
    /// Titanic has the request on disk.
    Stored {
        /// Its UUID.
        id: RequestId,
    },
    /// No reply yet: asked again after the poll interval.
    NotYet {
        /// The request.
        id: RequestId,
    },
    /// The reply is there.
    Replied {
        /// The request.
        id: RequestId,
        /// The reply's frames.
        reply: Vec<Bytes>,
    },
    /// Titanic confirmed the close: the request's life is over.
    Closed {
        /// The request.
        id: RequestId,
        /// Its reply.
        reply: Vec<Bytes>,
        /// False if [`with_verify`](TiRequest::with_verify) asked for a reply equal to the
        /// request's body (an echo service) and it is not: the request failed.
        good: bool,
    },
    /// The request failed for good.
    Failed(TiError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Storing,
    Polling(RequestId),
    Closing(RequestId, Vec<Bytes>),
    Done,
}

/// One request's life through Titanic. See the [module docs](self).
#[derive(Debug)]
pub struct TiRequest {
    request: Message,
    /// The body the reply must equal, with `--verify`.
    expect: Option<Vec<Bytes>>,
    poll: Duration,
    first_poll: Duration,
    step: Step,
    /// The next call, not before this; `None` while a call is under way (or when done).
    due: Option<Instant>,
    retries: u64,
    out: Outbox<Transmit, Event>,
}

impl TiRequest {
    /// A request for `request.service`, started at `now`: its first call goes out at once.
    /// `poll`: the wait between polls for the reply and before every retry; `first_poll`: the
    /// wait before the first poll.
    pub fn new(request: &NewRequest, poll: Duration, first_poll: Duration, now: Instant) -> Self {
        let mut this = Self {
            request: request.to_message(),
            expect: None,
            poll,
            first_poll,
            step: Step::Storing,
            due: Some(now),
            retries: 0,
            out: Outbox::default(),
        };
        this.handle_timeout(now);
        this
    }

    /// Checks that the reply equals the request's body (an echo service): the
    /// [`Event::Closed`] says whether it does.
    pub fn with_verify(mut self, request: &NewRequest, verify: bool) -> Self {
        self.expect = verify.then(|| request.body.clone());
        self
    }

    /// Calls made again so far (the Majordomo client's own resends not included).
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// True once the request is closed or failed for good.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// The call from [`poll_transmit`](Core::poll_transmit) ended: the answer's body, or the
    /// Majordomo client's error.
    pub fn handle_answer(&mut self, answer: Result<Message, ClientError>, now: Instant) {
        let service = self.service();
        let answer = match answer {
            Ok(reply) => match Answer::parse(reply) {
                Ok(Answer {
                    status: Status::Error,
                    ..
                }) => return self.retry(service, Retry::Failed, now),
                Ok(Answer {
                    status: Status::Unknown,
                    ..
                }) => return self.fail(TiError::Rejected { service }),
                Ok(answer) => answer,
                Err(e) => return self.retry(service, Retry::Malformed(e), now),
            },
            Err(ClientError::NoReply { .. }) => return self.retry(service, Retry::NoAnswer, now),
            Err(e @ ClientError::Endpoint(_)) => return self.fail(e.into()),
            Err(e) => return self.retry(service, Retry::Client(e), now),
        };
        match std::mem::replace(&mut self.step, Step::Done) {
            Step::Storing => match (answer.status, answer.uuid()) {
                (Status::Ok, Ok(id)) => {
                    self.out.event(Event::Stored { id });
                    self.step = Step::Polling(id);
                    // Zero: poll at once (a zero sleep would still wait for the timer's tick).
                    self.due = Some(contract::saturating_add(now, self.first_poll));
                }
                (status, id) => {
                    let why = id
                        .err()
                        .map_or_else(|| format!("status {status}"), |e| e.to_string());
                    self.step = Step::Storing;
                    self.retry(service, Retry::Unusable(why), now);
                }
            },
            Step::Polling(id) => match answer.status {
                Status::Ok => {
                    let reply: Vec<Bytes> = answer.rest.into_frames().into();
                    self.out.event(Event::Replied {
                        id,
                        reply: reply.clone(),
                    });
                    self.step = Step::Closing(id, reply);
                    self.due = Some(now);
                }
                _ => {
                    self.out.event(Event::NotYet { id });
                    self.step = Step::Polling(id);
                    self.due = Some(contract::saturating_add(now, self.poll));
                }
            },
            Step::Closing(id, reply) => {
                let good = self.expect.as_ref().is_none_or(|body| *body == reply);
                self.out.event(Event::Closed { id, reply, good });
            }
            Step::Done => {}
        }
        self.handle_timeout(now);
    }

    /// The service the current step calls.
    fn service(&self) -> &'static str {
        match self.step {
            Step::Storing | Step::Done => protocol::REQUEST_SERVICE,
            Step::Polling(_) => protocol::REPLY_SERVICE,
            Step::Closing(..) => protocol::CLOSE_SERVICE,
        }
    }

    fn retry(&mut self, service: &'static str, why: Retry, now: Instant) {
        if self.step == Step::Done {
            return;
        }
        self.out.event(Event::Retrying { service, why });
        self.retries += 1;
        self.due = Some(contract::saturating_add(now, self.poll));
    }

    fn fail(&mut self, error: TiError) {
        if self.step == Step::Done {
            return;
        }
        self.step = Step::Done;
        self.due = None;
        self.out.event(Event::Failed(error));
    }
}

impl Core for TiRequest {
    type Transmit = Transmit;
    type Event = Event;

    fn handle_timeout(&mut self, now: Instant) {
        if self.due.is_none_or(|due| now < due) {
            return;
        }
        let (body, with_rid) = match &self.step {
            Step::Storing => (self.request.clone(), true),
            Step::Polling(id) | Step::Closing(id, _) => (protocol::uuid_body(*id), false),
            Step::Done => return,
        };
        self.due = None;
        self.out.transmit(Transmit {
            service: self.service(),
            body,
            with_rid,
        });
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.out.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_millis(5000);
    const FIRST: Duration = Duration::from_millis(100);

    fn request() -> NewRequest {
        NewRequest {
            service: Bytes::from("echo"),
            body: vec![Bytes::from("hello")],
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn transmits(core: &mut TiRequest) -> Vec<Transmit> {
        std::iter::from_fn(|| core.poll_transmit()).collect()
    }

    fn events(core: &mut TiRequest) -> Vec<Event> {
        std::iter::from_fn(|| core.poll_event()).collect()
    }

    /// The one call the core asks for now, to `service`.
    fn call(core: &mut TiRequest, service: &str) -> Transmit {
        match &transmits(core)[..] {
            [call] if call.service == service => call.clone(),
            other => panic!("expected one call to {service}, got {other:?}"),
        }
    }

    fn no_reply() -> Result<Message, ClientError> {
        Err(ClientError::NoReply {
            service: protocol::REQUEST_SERVICE.into(),
            attempts: 3,
        })
    }

    #[test]
    fn a_request_is_stored_polled_for_and_closed_in_virtual_time() {
        let t0 = Instant::now();
        let mut core = TiRequest::new(&request(), POLL, FIRST, t0);
        let store = call(&mut core, protocol::REQUEST_SERVICE);
        assert!(store.with_rid, "storing calls carry the request's id");
        assert_eq!(store.body, request().to_message());
        assert_eq!(
            core.poll_timeout(),
            None,
            "nothing is due while a call is under way"
        );

        let id = RequestId::random();
        core.handle_answer(Ok(protocol::accepted(id)), t0 + ms(10));
        assert!(matches!(&events(&mut core)[..], [Event::Stored { id: s }] if *s == id));
        assert!(transmits(&mut core).is_empty(), "the first poll waits");
        assert_eq!(core.poll_timeout(), Some(t0 + ms(10) + FIRST));
        core.handle_timeout(t0 + ms(109));
        assert!(transmits(&mut core).is_empty(), "early: harmless");
        core.handle_timeout(t0 + ms(110));
        let poll = call(&mut core, protocol::REPLY_SERVICE);
        assert!(!poll.with_rid);
        assert_eq!(poll.body, protocol::uuid_body(id));

        // 300: asked again after the poll interval, not counted as a retry.
        core.handle_answer(Ok(Status::Pending.reply()), t0 + ms(120));
        assert!(matches!(&events(&mut core)[..], [Event::NotYet { .. }]));
        assert_eq!(core.poll_timeout(), Some(t0 + ms(120) + POLL));
        core.handle_timeout(t0 + ms(120) + POLL);
        call(&mut core, protocol::REPLY_SERVICE);

        // The reply: closed at once.
        let reply = vec![Bytes::from("hello")];
        core.handle_answer(Ok(protocol::reply_found(&reply)), t0 + ms(5200));
        assert!(matches!(&events(&mut core)[..], [Event::Replied { reply: r, .. }] if *r == reply));
        let close = call(&mut core, protocol::CLOSE_SERVICE);
        assert_eq!(close.body, protocol::uuid_body(id));
        core.handle_answer(Ok(Status::Ok.reply()), t0 + ms(5210));
        assert!(
            matches!(&events(&mut core)[..], [Event::Closed { id: c, reply: r, good: true }] if *c == id && *r == reply)
        );
        assert!(core.is_done());
        assert_eq!(core.retries(), 0);
        assert_eq!(core.poll_timeout(), None);
        core.handle_timeout(t0 + ms(100_000));
        assert!(transmits(&mut core).is_empty());
    }

    #[test]
    fn a_zero_first_poll_polls_at_once() {
        let t0 = Instant::now();
        let mut core = TiRequest::new(&request(), POLL, Duration::ZERO, t0);
        call(&mut core, protocol::REQUEST_SERVICE);
        core.handle_answer(Ok(protocol::accepted(RequestId::random())), t0);
        call(&mut core, protocol::REPLY_SERVICE);
    }

    #[test]
    fn silence_500_and_garbage_are_retried_after_the_poll_interval_forever() {
        let t0 = Instant::now();
        let mut core = TiRequest::new(&request(), POLL, FIRST, t0);
        let first = call(&mut core, protocol::REQUEST_SERVICE);
        let mut now = t0;
        let answers: Vec<Result<Message, ClientError>> = vec![
            no_reply(),
            Ok(Status::Error.reply()),
            Ok(Message::from_frames(["hello?"])),
            Ok(Message::new()),
            Err(ClientError::Brokers(3)),
            // 200 without a UUID, and 300, are no answer to titanic.request either.
            Ok(Status::Ok.reply()),
            Ok(Status::Pending.reply()),
        ];
        let count = answers.len() as u64;
        for answer in answers {
            core.handle_answer(answer, now);
            match &events(&mut core)[..] {
                [Event::Retrying { service, .. }] => {
                    assert_eq!(*service, protocol::REQUEST_SERVICE)
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(core.poll_timeout(), Some(now + POLL));
            core.handle_timeout(now + POLL - ms(1));
            assert!(transmits(&mut core).is_empty());
            now += POLL;
            core.handle_timeout(now);
            assert_eq!(
                call(&mut core, protocol::REQUEST_SERVICE),
                first,
                "the same call again"
            );
        }
        assert_eq!(core.retries(), count);
        assert!(!core.is_done());
        // The reason, for the log: what was unusable.
        let pending = Status::Pending.reply().with(RequestId::random().to_frame());
        core.handle_answer(Ok(pending), now);
        assert!(matches!(
            &events(&mut core)[..],
            [Event::Retrying { why: Retry::Unusable(why), .. }] if why == "status 300"
        ));
    }

    #[test]
    fn a_400_or_an_unusable_endpoint_ends_the_request() {
        let t0 = Instant::now();
        let mut core = TiRequest::new(&request(), POLL, Duration::ZERO, t0);
        call(&mut core, protocol::REQUEST_SERVICE);
        core.handle_answer(Ok(protocol::accepted(RequestId::random())), t0);
        events(&mut core);
        call(&mut core, protocol::REPLY_SERVICE);
        core.handle_answer(Ok(Status::Unknown.reply()), t0);
        match &events(&mut core)[..] {
            [Event::Failed(TiError::Rejected { service })] => {
                assert_eq!(*service, protocol::REPLY_SERVICE)
            }
            other => panic!("{other:?}"),
        }
        assert!(core.is_done());
        assert_eq!(core.poll_timeout(), None);
        // A late answer changes nothing.
        core.handle_answer(no_reply(), t0);
        assert!(events(&mut core).is_empty() && transmits(&mut core).is_empty());

        let mut core = TiRequest::new(&request(), POLL, FIRST, t0);
        call(&mut core, protocol::REQUEST_SERVICE);
        core.handle_answer(Err(ClientError::Endpoint("nowhere".into())), t0);
        assert!(matches!(
            &events(&mut core)[..],
            [Event::Failed(TiError::Client(ClientError::Endpoint(_)))]
        ));
        assert!(core.is_done());
    }

    #[test]
    fn durations_of_u64_max_milliseconds_never_panic() {
        let t0 = Instant::now();
        let huge = Duration::from_millis(u64::MAX);
        let mut core = TiRequest::new(&request(), huge, huge, t0);
        call(&mut core, protocol::REQUEST_SERVICE);
        core.handle_answer(no_reply(), t0);
        assert!(core.poll_timeout().unwrap() > t0);
        core.handle_timeout(t0 + ms(1));
        assert!(transmits(&mut core).is_empty());
    }

    #[test]
    fn with_verify_a_reply_that_is_not_the_request_fails_it() {
        let t0 = Instant::now();
        for (verify, reply, good) in [
            (true, "hello", true),
            (true, "olleh", false),
            (false, "olleh", true),
        ] {
            let mut core = TiRequest::new(&request(), POLL, Duration::ZERO, t0)
                .with_verify(&request(), verify);
            call(&mut core, protocol::REQUEST_SERVICE);
            core.handle_answer(Ok(protocol::accepted(RequestId::random())), t0);
            call(&mut core, protocol::REPLY_SERVICE);
            core.handle_answer(Ok(protocol::reply_found(&[Bytes::from(reply)])), t0);
            call(&mut core, protocol::CLOSE_SERVICE);
            core.handle_answer(Ok(Status::Ok.reply()), t0);
            let closed = events(&mut core).pop();
            assert!(
                matches!(closed, Some(Event::Closed { good: g, .. }) if g == good),
                "{verify} {reply}: {closed:?}"
            );
        }
    }
}
