//! The three TSP services' decisions: request body in, answer out, the journal behind them.
//! Pure: no file, no socket, no clock. The shell ([`crate::server_loop`]) runs one [`Call`] per
//! request a Majordomo worker receives.
//!
//! * `titanic.request`: journal the request and answer `200 <uuid>` once it is durable; `400`
//!   for a malformed or oversized request, `500` if the journal cannot take it (retry later).
//!   A request that carries a client request id ([`majordomo::rid`]) already held by an open
//!   request is a retry: it gets that request's UUID, and nothing new is stored. The id is in
//!   the journal, so this holds across a Titanic restart.
//! * `titanic.reply`: `200` + the reply, `300` while pending, `400` for an unknown or closed
//!   UUID (or a malformed one). Never deletes anything.
//! * `titanic.close`: forget the request; `200` also for unknown UUIDs (idempotent), `400` for a
//!   malformed UUID, `500` if the journal cannot take the close.
//!
//! Malformed input is an [`Event::Malformed`] (the shell logs it with `E:`) and is answered; it
//! never stops the service.
//!
//! # A call
//!
//! [`Call::handle_request`] reads what it needs from the durable state ([`Stored`]) and either
//! answers at once ([`Transmit::Answer`]) or asks the shell to journal a record
//! ([`Transmit::Append`]); the shell reports the writer's acknowledgement with
//! [`Call::handle_appended`], and the answer follows.

use crate::index::{Index, Lookup};
use crate::journal::Record;
use crate::protocol::{self, NewRequest, RequestId, Status};
use crate::store::{Acked, StoreError};
use bytes::Bytes;
use common::contract::{Core, Outbox};
use common::Message;
use majordomo::rid::Rid;
use std::time::Instant;

/// One of the three TSP services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TspService {
    /// `titanic.request`.
    Request,
    /// `titanic.reply`.
    Reply,
    /// `titanic.close`.
    Close,
}

impl TspService {
    /// All three, in the order they are registered.
    pub const ALL: [TspService; 3] = [TspService::Request, TspService::Reply, TspService::Close];

    /// The MDP service name.
    pub fn name(self) -> &'static str {
        match self {
            TspService::Request => protocol::REQUEST_SERVICE,
            TspService::Reply => protocol::REPLY_SERVICE,
            TspService::Close => protocol::CLOSE_SERVICE,
        }
    }
}

/// What a call reads of the durable state: the journal's index, read-only. The store
/// implements it (under its read lock); tests use an [`Index`] directly.
pub trait Stored {
    /// What `titanic.reply` should answer for `id`.
    fn lookup(&self, id: RequestId) -> Lookup;
    /// The open request a client sent with request id `key`, if any.
    fn find_key(&self, key: &[u8]) -> Option<RequestId>;
}

impl Stored for Index {
    fn lookup(&self, id: RequestId) -> Lookup {
        Index::lookup(self, id)
    }

    fn find_key(&self, key: &[u8]) -> Option<RequestId> {
        Index::find_key(self, key)
    }
}

/// What the call asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Journal this record and report the acknowledgement with [`Call::handle_appended`].
    Append(Record),
    /// The answer to send to the client: the call is over.
    Answer(Message),
}

/// What happened, for the shell to log.
#[derive(Debug)]
pub enum Event {
    /// A malformed or oversized request: answered `400`.
    Malformed {
        /// The service asked.
        service: TspService,
        /// What is wrong with it.
        why: String,
    },
    /// The journal could not take the record: answered `500`.
    StoreFailed {
        /// The service asked.
        service: TspService,
        /// The store's error.
        error: StoreError,
    },
    /// The request was skipped by the writer, yet no open request holds its id: answered `500`.
    NotStored,
    /// A retried `titanic.request`: its id is held by an open request, whose UUID is answered.
    Retried {
        /// The client's request id.
        rid: Rid,
        /// The UUID stored the first time.
        id: RequestId,
    },
    /// A new request is durable: answered `200 <uuid>`.
    Stored {
        /// Its UUID.
        id: RequestId,
        /// The service it is for.
        service: Bytes,
    },
    /// A close is durable: answered `200`.
    Closed {
        /// The request closed.
        id: RequestId,
    },
}

/// The record being journaled, and what it was for.
#[derive(Debug)]
enum Appending {
    Request {
        id: RequestId,
        service: Bytes,
        rid: Option<Rid>,
    },
    Close {
        id: RequestId,
    },
}

/// One call to one TSP service, from its request to its answer. See the [module docs](self).
#[derive(Debug)]
pub struct Call {
    service: TspService,
    appending: Option<Appending>,
    out: Outbox<Transmit, Event>,
}

impl Call {
    /// A call to `service`, waiting for its request.
    pub fn new(service: TspService) -> Self {
        Self {
            service,
            appending: None,
            out: Outbox::default(),
        }
    }

    /// The request arrived: `rid` is the client's request id, if it sent one; `stored` is the
    /// durable state as it is now.
    pub fn handle_request(
        &mut self,
        rid: Option<&Rid>,
        body: Message,
        stored: &impl Stored,
        now: Instant,
    ) {
        let _ = now;
        match self.service {
            TspService::Request => self.request(rid, body, stored),
            TspService::Reply => self.reply(&body, stored),
            TspService::Close => self.close(&body),
        }
    }

    /// The writer acknowledged the record of [`Transmit::Append`] (or failed); `stored` is the
    /// durable state after it.
    pub fn handle_appended(
        &mut self,
        acked: Result<Acked, StoreError>,
        stored: &impl Stored,
        now: Instant,
    ) {
        let _ = now;
        let Some(appending) = self.appending.take() else {
            return;
        };
        let error = match acked {
            Ok(acked) => return self.appended(appending, acked, stored),
            Err(error) => error,
        };
        match error {
            StoreError::TooLarge(_) => self.bad_request(error.to_string()),
            _ => {
                self.out.event(Event::StoreFailed {
                    service: self.service,
                    error,
                });
                self.answer(Status::Error.reply());
            }
        }
    }

    fn appended(&mut self, appending: Appending, acked: Acked, stored: &impl Stored) {
        match (appending, acked) {
            (Appending::Request { id, service, .. }, Acked::Written) => {
                self.out.event(Event::Stored { id, service });
                self.answer(protocol::accepted(id));
            }
            // Skipped: the same id was being stored at the same time; that one is durable now.
            (Appending::Request { rid, .. }, Acked::Skipped) => {
                if !rid.is_some_and(|rid| self.stored_before(&rid, stored)) {
                    self.out.event(Event::NotStored);
                    self.answer(Status::Error.reply());
                }
            }
            (Appending::Close { id }, _) => {
                self.out.event(Event::Closed { id });
                self.answer(Status::Ok.reply());
            }
        }
    }

    fn answer(&mut self, answer: Message) {
        self.out.transmit(Transmit::Answer(answer));
    }

    fn bad_request(&mut self, why: String) {
        self.out.event(Event::Malformed {
            service: self.service,
            why,
        });
        self.answer(Status::Unknown.reply());
    }

    /// Answers with the UUID already stored for a retried request, if there is one.
    fn stored_before(&mut self, rid: &Rid, stored: &impl Stored) -> bool {
        let Some(id) = stored.find_key(rid.as_bytes()) else {
            return false;
        };
        self.out.event(Event::Retried {
            rid: rid.clone(),
            id,
        });
        self.answer(protocol::accepted(id));
        true
    }

    fn request(&mut self, rid: Option<&Rid>, body: Message, stored: &impl Stored) {
        if rid.is_some_and(|rid| self.stored_before(rid, stored)) {
            return;
        }
        let request = match NewRequest::parse(body) {
            Ok(request) => request,
            Err(e) => return self.bad_request(e.to_string()),
        };
        // The dispatcher calls the service by name through the Majordomo client, which takes text.
        if std::str::from_utf8(&request.service).is_err() {
            return self.bad_request("service name is not UTF-8".into());
        }
        let id = RequestId::random();
        self.appending = Some(Appending::Request {
            id,
            service: request.service.clone(),
            rid: rid.cloned(),
        });
        self.out.transmit(Transmit::Append(Record::Request {
            id,
            service: request.service,
            body: request.body,
            key: rid.map(|rid| Bytes::copy_from_slice(rid.as_bytes())),
        }));
    }

    fn reply(&mut self, body: &Message, stored: &impl Stored) {
        let id = match protocol::parse_uuid_body(body) {
            Ok(id) => id,
            Err(e) => return self.bad_request(e.to_string()),
        };
        let answer = match stored.lookup(id) {
            Lookup::Replied(reply) => protocol::reply_found(&reply),
            Lookup::Pending => Status::Pending.reply(),
            Lookup::Unknown => Status::Unknown.reply(),
        };
        self.answer(answer);
    }

    fn close(&mut self, body: &Message) {
        let id = match protocol::parse_uuid_body(body) {
            Ok(id) => id,
            Err(e) => return self.bad_request(e.to_string()),
        };
        self.appending = Some(Appending::Close { id });
        self.out.transmit(Transmit::Append(Record::Close { id }));
    }
}

impl Core for Call {
    type Transmit = Transmit;
    type Event = Event;

    /// A call waits only for its input and the writer: no deadline of its own.
    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.out.poll_event()
    }
}

/// Malformed requests, one per way of being malformed: every one is answered `400` (tested
/// here on the core, and in `server_loop` through the store).
#[cfg(test)]
pub(crate) const MALFORMED: [(TspService, &[&[u8]]); 7] = [
    (TspService::Request, &[]),
    (TspService::Request, &[b"echo"]),
    (TspService::Request, &[b"", b"x"]),
    (TspService::Request, &[&[0xff, 0xfe], b"x"]),
    (TspService::Reply, &[b"not-a-uuid"]),
    (TspService::Reply, &[]),
    (
        TspService::Close,
        &[b"0123456789abcdef0123456789abcdef", b"extra"],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Answer;

    fn message(frames: &[&[u8]]) -> Message {
        Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)))
    }

    fn drain(call: &mut Call) -> (Vec<Transmit>, Vec<Event>) {
        (
            std::iter::from_fn(|| call.poll_transmit()).collect(),
            std::iter::from_fn(|| call.poll_event()).collect(),
        )
    }

    fn answer(transmits: &[Transmit]) -> Answer {
        match transmits {
            [Transmit::Answer(answer)] => Answer::parse(answer.clone()).unwrap(),
            other => panic!("expected one answer, got {other:?}"),
        }
    }

    fn appended(transmits: &[Transmit]) -> Record {
        match transmits {
            [Transmit::Append(record)] => record.clone(),
            other => panic!("expected one record to journal, got {other:?}"),
        }
    }

    /// The index after `record` became durable.
    fn apply(index: &mut Index, record: Record) {
        index.apply(record, 100);
    }

    #[test]
    fn a_request_is_answered_only_once_its_record_is_durable() {
        let t0 = Instant::now();
        let mut index = Index::new();
        let mut call = Call::new(TspService::Request);
        call.handle_request(None, message(&[b"echo", b"hello"]), &index, t0);
        let (transmits, events) = drain(&mut call);
        assert!(events.is_empty());
        let record = appended(&transmits);
        let Record::Request {
            id, ref service, ..
        } = record
        else {
            panic!("{record:?}")
        };
        assert_eq!(service, &Bytes::from("echo"));
        apply(&mut index, record.clone());
        call.handle_appended(Ok(Acked::Written), &index, t0);
        let (transmits, events) = drain(&mut call);
        let a = answer(&transmits);
        assert_eq!(a.status, Status::Ok);
        assert_eq!(a.uuid().unwrap(), id);
        assert!(matches!(&events[..], [Event::Stored { id: stored, .. }] if *stored == id));
    }

    #[test]
    fn a_retry_with_a_stored_id_gets_its_uuid_and_writes_nothing() {
        let t0 = Instant::now();
        let mut index = Index::new();
        let rid = Rid::new("00000000deadbeef-1").unwrap();
        let mut first = Call::new(TspService::Request);
        first.handle_request(Some(&rid), message(&[b"echo", b"debit"]), &index, t0);
        let record = appended(&drain(&mut first).0);
        let Record::Request { id, ref key, .. } = record else {
            panic!("{record:?}")
        };
        assert_eq!(key.as_deref(), Some(rid.as_bytes()), "the id is journaled");
        apply(&mut index, record.clone());

        let mut again = Call::new(TspService::Request);
        again.handle_request(Some(&rid), message(&[b"echo", b"debit"]), &index, t0);
        let (transmits, events) = drain(&mut again);
        assert_eq!(answer(&transmits).uuid().unwrap(), id);
        assert!(matches!(&events[..], [Event::Retried { id: was, .. }] if *was == id));
    }

    #[test]
    fn a_retry_skipped_by_the_writer_gets_the_uuid_stored_meanwhile() {
        let t0 = Instant::now();
        let mut index = Index::new();
        let rid = Rid::new("00000000deadbeef-2").unwrap();
        // Two calls with one id, both before either record is durable.
        let mut a = Call::new(TspService::Request);
        let mut b = Call::new(TspService::Request);
        a.handle_request(Some(&rid), message(&[b"echo", b"x"]), &index, t0);
        b.handle_request(Some(&rid), message(&[b"echo", b"x"]), &index, t0);
        let first = appended(&drain(&mut a).0);
        let _second = appended(&drain(&mut b).0);
        let Record::Request { id, .. } = first else {
            panic!("{first:?}")
        };
        apply(&mut index, first);
        a.handle_appended(Ok(Acked::Written), &index, t0);
        b.handle_appended(Ok(Acked::Skipped), &index, t0);
        assert_eq!(answer(&drain(&mut a).0).uuid().unwrap(), id);
        let (transmits, events) = drain(&mut b);
        assert_eq!(answer(&transmits).uuid().unwrap(), id);
        assert!(matches!(&events[..], [Event::Retried { .. }]));

        // Skipped with nothing to show for it: 500, and the client retries.
        let mut lost = Call::new(TspService::Request);
        lost.handle_request(None, message(&[b"echo", b"y"]), &index, t0);
        drain(&mut lost);
        lost.handle_appended(Ok(Acked::Skipped), &index, t0);
        let (transmits, events) = drain(&mut lost);
        assert_eq!(answer(&transmits).status, Status::Error);
        assert!(matches!(&events[..], [Event::NotStored]));
    }

    #[test]
    fn reply_answers_from_the_durable_state_and_close_is_idempotent() {
        let t0 = Instant::now();
        let mut index = Index::new();
        let id = RequestId::random();
        let uuid = id.to_string();
        let ask = |index: &Index| {
            let mut call = Call::new(TspService::Reply);
            call.handle_request(None, message(&[uuid.as_bytes()]), index, t0);
            answer(&drain(&mut call).0)
        };
        assert_eq!(ask(&index).status, Status::Unknown);
        apply(
            &mut index,
            Record::Request {
                id,
                service: Bytes::from("echo"),
                body: vec![Bytes::from("hello")],
                key: None,
            },
        );
        assert_eq!(ask(&index).status, Status::Pending);
        apply(
            &mut index,
            Record::Reply {
                id,
                body: vec![Bytes::from("hello")],
            },
        );
        for _ in 0..2 {
            let a = ask(&index);
            assert_eq!(a.status, Status::Ok);
            assert_eq!(a.rest, Message::from_frames(["hello"]));
        }
        // A close asks for a record, and answers 200 whatever the writer made of it.
        for acked in [Acked::Written, Acked::Skipped] {
            let mut close = Call::new(TspService::Close);
            close.handle_request(None, message(&[uuid.as_bytes()]), &index, t0);
            assert_eq!(appended(&drain(&mut close).0), Record::Close { id });
            apply(&mut index, Record::Close { id });
            close.handle_appended(Ok(acked), &index, t0);
            let (transmits, events) = drain(&mut close);
            assert_eq!(answer(&transmits).status, Status::Ok);
            assert!(matches!(&events[..], [Event::Closed { id: closed }] if *closed == id));
        }
        assert_eq!(ask(&index).status, Status::Unknown);
    }

    #[test]
    fn malformed_requests_are_events_answered_400_and_write_nothing() {
        let t0 = Instant::now();
        let index = Index::new();
        for (service, frames) in MALFORMED {
            let mut call = Call::new(service);
            call.handle_request(None, message(frames), &index, t0);
            let (transmits, events) = drain(&mut call);
            assert_eq!(answer(&transmits).status, Status::Unknown, "{frames:?}");
            assert!(
                matches!(&events[..], [Event::Malformed { service: s, .. }] if *s == service),
                "{events:?}"
            );
        }
    }

    #[test]
    fn a_journal_that_refuses_answers_500_and_an_oversized_record_400() {
        let t0 = Instant::now();
        let index = Index::new();
        let id = RequestId::random().to_string();
        for (service, frames) in [
            (TspService::Request, &[&b"echo"[..], b"x"][..]),
            (TspService::Close, &[id.as_bytes()][..]),
        ] {
            let mut call = Call::new(service);
            call.handle_request(None, message(frames), &index, t0);
            drain(&mut call);
            call.handle_appended(Err(StoreError::Closed), &index, t0);
            let (transmits, events) = drain(&mut call);
            assert_eq!(answer(&transmits).status, Status::Error);
            assert!(matches!(&events[..], [Event::StoreFailed { .. }]));
        }
        let mut call = Call::new(TspService::Request);
        call.handle_request(None, message(&[b"echo", b"x"]), &index, t0);
        drain(&mut call);
        call.handle_appended(
            Err(StoreError::TooLarge("record too large".into())),
            &index,
            t0,
        );
        let (transmits, events) = drain(&mut call);
        assert_eq!(answer(&transmits).status, Status::Unknown);
        assert!(matches!(&events[..], [Event::Malformed { .. }]));
        // An acknowledgement with nothing appended changes nothing.
        call.handle_appended(Ok(Acked::Written), &index, t0);
        assert!(call.poll_transmit().is_none() && call.poll_event().is_none());
    }
}
