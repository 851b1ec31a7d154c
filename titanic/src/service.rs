//! The three TSP services: request body in, reply body out, with the store behind them.
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
//! Malformed input is logged with `E:` and answered; it never stops the service.

use crate::index::Lookup;
use crate::journal::Record;
use crate::protocol::{self, NewRequest, RequestId, Status};
use crate::store::{Outcome, Store, StoreError};
use common::Message;
use majordomo::rid::Rid;

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

/// Answers one request to `service`; `rid` is the client's request id, if it sent one.
pub async fn handle(
    store: &Store,
    service: TspService,
    rid: Option<&Rid>,
    body: Message,
) -> Message {
    match service {
        TspService::Request => request(store, rid, body).await,
        TspService::Reply => reply(store, &body),
        TspService::Close => close(store, &body).await,
    }
}

fn bad_request(service: TspService, why: impl std::fmt::Display) -> Message {
    tracing::error!("{}: bad request ({why}), answered 400", service.name());
    Status::Unknown.reply()
}

fn store_failed(service: TspService, error: &StoreError) -> Message {
    match error {
        StoreError::TooLarge(_) => bad_request(service, error),
        _ => {
            tracing::error!("{}: {error}, answered 500", service.name());
            Status::Error.reply()
        }
    }
}

/// The UUID already stored for a retried request, logged.
fn stored_before(store: &Store, rid: &Rid) -> Option<Message> {
    let id = store.find_key(rid.as_bytes())?;
    tracing::info!(
        "{}: retry of request {rid} already stored as {id}",
        protocol::REQUEST_SERVICE
    );
    Some(protocol::accepted(id))
}

async fn request(store: &Store, rid: Option<&Rid>, body: Message) -> Message {
    if let Some(answer) = rid.and_then(|rid| stored_before(store, rid)) {
        return answer;
    }
    let request = match NewRequest::parse(body) {
        Ok(request) => request,
        Err(e) => return bad_request(TspService::Request, e),
    };
    // The dispatcher calls the service by name through the Majordomo client, which takes text.
    if std::str::from_utf8(&request.service).is_err() {
        return bad_request(TspService::Request, "service name is not UTF-8");
    }
    let id = RequestId::random();
    let service = request.service.clone();
    let record = Record::Request {
        id,
        service: request.service,
        body: request.body,
        key: rid.map(|rid| bytes::Bytes::copy_from_slice(rid.as_bytes())),
    };
    match store.append(record).await {
        // Skipped: the same id was being stored at the same time; that one is durable now.
        Ok(Outcome::Skipped) => match rid.and_then(|rid| stored_before(store, rid)) {
            Some(answer) => answer,
            None => {
                tracing::error!(
                    "{}: request not stored, answered 500",
                    protocol::REQUEST_SERVICE
                );
                Status::Error.reply()
            }
        },
        Ok(Outcome::Written) => {
            tracing::debug!(
                "request {id} for {} stored",
                String::from_utf8_lossy(&service)
            );
            protocol::accepted(id)
        }
        Err(e) => store_failed(TspService::Request, &e),
    }
}

fn reply(store: &Store, body: &Message) -> Message {
    let id = match protocol::parse_uuid_body(body) {
        Ok(id) => id,
        Err(e) => return bad_request(TspService::Reply, e),
    };
    match store.lookup(id) {
        Lookup::Replied(reply) => protocol::reply_found(&reply),
        Lookup::Pending => Status::Pending.reply(),
        Lookup::Unknown => Status::Unknown.reply(),
    }
}

async fn close(store: &Store, body: &Message) -> Message {
    let id = match protocol::parse_uuid_body(body) {
        Ok(id) => id,
        Err(e) => return bad_request(TspService::Close, e),
    };
    match store.append(Record::Close { id }).await {
        Ok(_) => {
            tracing::debug!("request {id} closed");
            Status::Ok.reply()
        }
        Err(e) => store_failed(TspService::Close, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Answer;
    use crate::store::StoreOptions;
    use bytes::Bytes;

    async fn call(store: &Store, service: TspService, frames: &[&[u8]]) -> Answer {
        let body = Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)));
        Answer::parse(handle(store, service, None, body).await).unwrap()
    }

    async fn call_rid(store: &Store, rid: &Rid, frames: &[&[u8]]) -> Answer {
        let body = Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)));
        let reply = handle(store, TspService::Request, Some(rid), body).await;
        Answer::parse(reply).unwrap()
    }

    #[tokio::test]
    async fn a_retried_request_with_the_same_id_gets_the_same_uuid_also_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (store, _) = Store::open(&path, StoreOptions::default()).unwrap();
        let rid = Rid::new("00000000deadbeef-1").unwrap();
        let first = call_rid(&store, &rid, &[b"echo", b"debit"]).await;
        assert_eq!(first.status, Status::Ok);
        let again = call_rid(&store, &rid, &[b"echo", b"debit"]).await;
        assert_eq!(again.uuid().unwrap(), first.uuid().unwrap());
        // Concurrent retries (one being stored while the next arrives): still one request.
        let other = Rid::new("00000000deadbeef-2").unwrap();
        let (a, b) = tokio::join!(
            call_rid(&store, &other, &[b"echo", b"x"]),
            call_rid(&store, &other, &[b"echo", b"x"])
        );
        assert_eq!(a.uuid().unwrap(), b.uuid().unwrap());
        // Without an id, as before: a second request.
        let plain = call(&store, TspService::Request, &[b"echo", b"debit"]).await;
        assert_ne!(plain.uuid().unwrap(), first.uuid().unwrap());
        assert_eq!(store.counts().pending, 3);
        store.close().await;

        let (store, _) = Store::open(&path, StoreOptions::default()).unwrap();
        let after = call_rid(&store, &rid, &[b"echo", b"debit"]).await;
        assert_eq!(
            after.uuid().unwrap(),
            first.uuid().unwrap(),
            "the id is journaled"
        );
        // Once closed, the id is forgotten with its request.
        let uuid = first.uuid().unwrap().to_string();
        call(&store, TspService::Close, &[uuid.as_bytes()]).await;
        let fresh = call_rid(&store, &rid, &[b"echo", b"debit"]).await;
        assert_ne!(fresh.uuid().unwrap(), first.uuid().unwrap());
        assert_eq!(store.counts().pending, 3);
        store.close().await;
    }

    #[tokio::test]
    async fn the_status_codes_of_the_three_services() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("j"), StoreOptions::default()).unwrap();

        let a = call(&store, TspService::Request, &[b"echo", b"hello"]).await;
        assert_eq!(a.status, Status::Ok);
        let id = a.uuid().unwrap();
        let uuid = id.to_string();

        let a = call(&store, TspService::Reply, &[uuid.as_bytes()]).await;
        assert_eq!(a.status, Status::Pending);
        store
            .append(Record::Reply {
                id,
                body: vec![Bytes::from("hello")],
            })
            .await
            .unwrap();
        for _ in 0..2 {
            let a = call(&store, TspService::Reply, &[uuid.as_bytes()]).await;
            assert_eq!(a.status, Status::Ok);
            assert_eq!(a.rest, Message::from_frames(["hello"]));
        }
        for _ in 0..2 {
            let a = call(&store, TspService::Close, &[uuid.as_bytes()]).await;
            assert_eq!(a.status, Status::Ok);
        }
        let a = call(&store, TspService::Reply, &[uuid.as_bytes()]).await;
        assert_eq!(a.status, Status::Unknown);
        let stranger = RequestId::random().to_string();
        let a = call(&store, TspService::Close, &[stranger.as_bytes()]).await;
        assert_eq!(a.status, Status::Ok);
        let a = call(&store, TspService::Reply, &[stranger.as_bytes()]).await;
        assert_eq!(a.status, Status::Unknown);
        store.close().await;
    }

    #[tokio::test]
    async fn bad_requests_get_400() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("j"), StoreOptions::default()).unwrap();
        let cases: [(TspService, &[&[u8]]); 7] = [
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
        for (service, frames) in cases {
            let a = call(&store, service, frames).await;
            assert_eq!(a.status, Status::Unknown, "{service:?} {frames:?}");
        }
        assert_eq!(store.counts().pending, 0);
        store.close().await;
    }

    #[tokio::test]
    async fn a_closed_store_answers_500() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("j"), StoreOptions::default()).unwrap();
        store.close().await;
        let a = call(&store, TspService::Request, &[b"echo", b"x"]).await;
        assert_eq!(a.status, Status::Error);
        let id = RequestId::random().to_string();
        let a = call(&store, TspService::Close, &[id.as_bytes()]).await;
        assert_eq!(a.status, Status::Error);
    }
}
