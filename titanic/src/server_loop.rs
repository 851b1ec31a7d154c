//! The Titanic process: the store, the three services as Majordomo workers, and the
//! dispatcher's I/O loop. Makes no decisions of its own: the store decides what is durable, a
//! [`Call`] what each TSP service answers, the [`Dispatcher`] what to forward when.
//!
//! * Each TSP service runs as [`TitanicConfig::workers`] Majordomo workers. A Majordomo worker
//!   holds one request at a time, so several `titanic.request` workers are what lets concurrent
//!   clients share one group commit.
//! * The dispatcher pulls requests waiting for a reply from the store (woken whenever new ones
//!   become durable), asks `mmi.service` whether their service is up, forwards them with the
//!   synchronous Majordomo client (one client per request under way, so a reply is never
//!   mistaken for another's) and journals each reply before it counts as done.
//!
//! Log lines (stable): `I: journal <path> opened: …` once the journal is recovered (preceded by
//! `W: journal <path>: dropped …` for each damaged stretch), `I: titanic ready` once the services
//! are started, `W: service <name> not available, asking again in <ms> ms`,
//! `W: no reply from <name> for <uuid>, asking again in <ms> ms`, `I: titanic stopped` on Ctrl-C.

use crate::index::Lookup;
use crate::journal::Record;
use crate::protocol::{self, RequestId};
use crate::server::service::{self, Call, Stored, Transmit, TspService};
use crate::server::{Action, DispatchConfig, Dispatcher, Event, Forwarded, Probe};
use crate::store::{Store, StoreError, StoreOptions};
use bytes::Bytes;
use common::contract::{self, Core};
use common::Message;
use majordomo::rid::Rid;
use majordomo::{Client, ClientError, ClientOptions, PairOptions};
use majordomo::{Worker, WorkerError, WorkerOptions};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Everything a Titanic process needs to know.
#[derive(Debug, Clone)]
pub struct TitanicConfig {
    /// The Majordomo broker, or the two of a pair (primary first): the service workers
    /// register with both, the forwarding client fails over between them.
    pub brokers: Vec<String>,
    /// Failover timing of the forwarding client, with a pair.
    pub pair: PairOptions,
    /// The journal file.
    pub journal: PathBuf,
    /// Durability and compaction.
    pub store: StoreOptions,
    /// Heartbeats and reconnects of the service workers.
    pub worker: WorkerOptions,
    /// Majordomo workers per TSP service.
    pub workers: usize,
    /// Timeout and attempts of each forwarded request.
    pub client: ClientOptions,
    /// Forwarding window and back-off.
    pub dispatch: DispatchConfig,
}

/// What stops Titanic from starting.
#[derive(Debug, thiserror::Error)]
pub enum TitanicError {
    /// The journal cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A service worker cannot be created (bad endpoint, no runtime).
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The forwarding client cannot be created (bad endpoint).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// How long the service workers get to send DISCONNECT on shutdown.
const STOP_GRACE: Duration = Duration::from_millis(700);

/// Runs Titanic until `shutdown` resolves.
pub async fn run(
    config: TitanicConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TitanicError> {
    let path = config.journal.clone();
    let options = config.store;
    let (store, recovery) = tokio::task::spawn_blocking(move || Store::open(&path, options))
        .await
        .expect("journal open task panicked")?;
    tracing::info!(
        "journal {} opened: {recovery} (fsync {})",
        config.journal.display(),
        config.store.fsync
    );
    // Fail early on a bad endpoint rather than in a background task.
    Client::with_brokers(&config.brokers, config.client.clone(), config.pair)?;

    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for service in TspService::ALL {
        for _ in 0..config.workers.max(1) {
            // Request ids let a retried titanic.request find the UUID it got before.
            let options = WorkerOptions {
                request_ids: true,
                ..config.worker.clone()
            };
            let worker = Worker::with_brokers(&config.brokers, service.name(), options)?;
            tasks.spawn(serve(worker, service, store.clone(), stop.clone()));
        }
    }
    tasks.spawn(dispatch(config.clone(), store.clone(), stop.clone()));
    tracing::info!(
        "titanic ready: {} workers per service on {}",
        config.workers.max(1),
        config.brokers.join(" and ")
    );

    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    store.close().await;
    tracing::info!("titanic stopped");
    Ok(())
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One Majordomo worker for one TSP service.
async fn serve(
    mut worker: Worker,
    service: TspService,
    store: Store,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let request = tokio::select! {
            request = worker.recv() => request,
            () = stopped(&mut stop) => break,
        };
        let Some(request) = request else { break };
        let reply = answer(&store, service, request.rid.as_ref(), request.body).await;
        if worker.reply(request.reply_to, reply).await.is_err() {
            break;
        }
    }
    worker.shutdown().await;
}

impl Stored for Store {
    fn lookup(&self, id: RequestId) -> Lookup {
        Store::lookup(self, id)
    }

    fn find_key(&self, key: &[u8]) -> Option<RequestId> {
        Store::find_key(self, key)
    }
}

/// Answers one request to `service` (`rid`: the client's request id, if it sent one): runs a
/// [`Call`], journaling what it asks to, and logs its events.
pub async fn answer(
    store: &Store,
    service: TspService,
    rid: Option<&Rid>,
    body: Message,
) -> Message {
    let mut call = Call::new(service);
    call.handle_request(rid, body, store, contract::now());
    loop {
        while let Some(event) = call.poll_event() {
            log_call(event);
        }
        match call.poll_transmit() {
            Some(Transmit::Append(record)) => {
                let acked = store.append(record).await;
                call.handle_appended(acked, store, contract::now());
            }
            Some(Transmit::Answer(answer)) => return answer,
            // Every call ends with an answer; should one not, the client is told to retry.
            None => return protocol::Status::Error.reply(),
        }
    }
}

/// The services' log lines.
fn log_call(event: service::Event) {
    use service::Event;
    match event {
        Event::Malformed { service, why } => {
            tracing::error!("{}: bad request ({why}), answered 400", service.name());
        }
        Event::StoreFailed { service, error } => {
            tracing::error!("{}: {error}, answered 500", service.name());
        }
        Event::NotStored => tracing::error!(
            "{}: request not stored, answered 500",
            protocol::REQUEST_SERVICE
        ),
        Event::Retried { rid, id } => tracing::info!(
            "{}: retry of request {rid} already stored as {id}",
            protocol::REQUEST_SERVICE
        ),
        Event::Stored { id, service } => tracing::debug!(
            "request {id} for {} stored",
            String::from_utf8_lossy(&service)
        ),
        Event::Closed { id } => tracing::debug!("request {id} closed"),
    }
}

/// What a probe or forward task reports back to the dispatcher loop.
enum Report {
    Probed {
        service: Bytes,
        probe: Probe,
    },
    Forwarded {
        id: RequestId,
        result: Forwarded,
        /// Boxed: a client holds its retry state, far larger than a probe.
        client: Box<Client>,
    },
}

/// The dispatcher's I/O loop around [`Dispatcher`].
async fn dispatch(config: TitanicConfig, store: Store, mut stop: watch::Receiver<bool>) {
    let mut core = Dispatcher::new(config.dispatch);
    let mut changes = store.changes();
    let mut last_seq = None;
    let (report_tx, mut reports) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let mut idle: Vec<Client> = Vec::new();
    // A probe asks each broker once: one turn with a lone broker, one at each broker of a pair.
    // A pair client's single turn goes to the first broker only, so while the primary is down
    // no probe would reach the backup and nothing stored would be forwarded.
    let probe_options = ClientOptions {
        retries: if config.brokers.len() > 1 { 2 } else { 1 },
        ..config.client.clone()
    };
    let new_client = |options: &ClientOptions| {
        Client::with_brokers(&config.brokers, options.clone(), config.pair)
            .expect("endpoints validated at start")
    };
    loop {
        let now = contract::now();
        for (seq, id, service) in store.pending_after(last_seq) {
            last_seq = Some(seq);
            core.handle_pending(seq, id, service, now);
        }
        while let Some(action) = core.poll_transmit() {
            let report = report_tx.clone();
            match action {
                Action::Probe { service } => {
                    let mut client = new_client(&probe_options);
                    tasks.spawn(async move {
                        let name = String::from_utf8_lossy(&service).into_owned();
                        let probe = match client.service_available(&name).await {
                            Ok(true) => Probe::Up,
                            Ok(false) => Probe::Down,
                            Err(_) => Probe::NoBroker,
                        };
                        let _ = report.send(Report::Probed { service, probe });
                    });
                }
                Action::Forward { id, service } => {
                    let client = idle.pop().unwrap_or_else(|| new_client(&config.client));
                    let store = store.clone();
                    tasks.spawn(async move {
                        let (result, client) = forward(&store, id, &service, client).await;
                        let _ = report.send(Report::Forwarded {
                            id,
                            result,
                            client: Box::new(client),
                        });
                    });
                }
            }
        }
        while let Some(event) = core.poll_event() {
            let (Event::ServiceDown {
                service, retry_in, ..
            }
            | Event::ForwardFailed {
                service, retry_in, ..
            }) = &event;
            let (name, ms) = (String::from_utf8_lossy(service), retry_in.as_millis());
            match event {
                Event::ServiceDown { no_broker: true, .. } => tracing::warn!("service {name} not available (no answer from the broker), asking again in {ms} ms"),
                Event::ServiceDown { .. } => tracing::warn!("service {name} not available, asking again in {ms} ms"),
                Event::ForwardFailed { id, .. } => tracing::warn!("no reply from {name} for {id}, asking again in {ms} ms"),
            }
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            Some(report) = reports.recv() => match report {
                Report::Probed { service, probe } => {
                    core.handle_probe(&service, probe, contract::now());
                }
                Report::Forwarded { id, result, client } => {
                    idle.push(*client);
                    core.handle_forwarded(id, result, contract::now());
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = contract::sleep_until(core.poll_timeout()) => core.handle_timeout(contract::now()),
            () = stopped(&mut stop) => break,
        }
    }
    tasks.abort_all();
}

/// Forwards one stored request and journals its reply.
async fn forward(
    store: &Store,
    id: RequestId,
    service: &Bytes,
    mut client: Client,
) -> (Forwarded, Client) {
    let Some((_, body)) = store.pending_request(id) else {
        return (Forwarded::Gone, client);
    };
    let name = String::from_utf8_lossy(service);
    tracing::debug!("forwarding {id} to {name}");
    // The UUID as request id: a forward repeated (after a timeout, or by a restarted Titanic)
    // is joined or answered by the broker instead of running the service again.
    let rid = Rid::new(format!("titanic-{id}"));
    let body = Message::from_frames(body);
    let reply = match client.send_with_rid(&name, rid.as_ref(), body).await {
        Ok(reply) => reply,
        Err(_) => {
            // A client that gave up has thrown its socket away; a fresh one is made per attempt.
            return (Forwarded::NoReply, client);
        }
    };
    let record = Record::Reply {
        id,
        body: reply.into_frames().into(),
    };
    let result = match store.append(record).await {
        Ok(_) => {
            tracing::debug!("reply to {id} stored");
            Forwarded::Stored
        }
        Err(e) => {
            tracing::error!("cannot store the reply to {id}: {e}");
            Forwarded::StoreFailed
        }
    };
    (result, client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Answer, Status};
    use crate::store::StoreOptions;
    use bytes::Bytes;

    async fn call(store: &Store, service: TspService, frames: &[&[u8]]) -> Answer {
        let body = Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)));
        Answer::parse(answer(store, service, None, body).await).unwrap()
    }

    async fn call_rid(store: &Store, rid: &Rid, frames: &[&[u8]]) -> Answer {
        let body = Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)));
        let reply = answer(store, TspService::Request, Some(rid), body).await;
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
        for (service, frames) in service::MALFORMED {
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
