//! The Titanic process: the store, the three services as Majordomo workers, and the
//! dispatcher's I/O loop. Makes no decisions of its own: the store decides what is durable, the
//! [`Dispatcher`] what to forward when.
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

use crate::dispatch::{Action, DispatchConfig, Dispatcher, Event, Forwarded, Probe};
use crate::journal::Record;
use crate::service::{self, TspService};
use crate::store::{Store, StoreError, StoreOptions};
use crate::tsp::RequestId;
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
        let reply = service::handle(&store, service, request.rid.as_ref(), request.body).await;
        if worker.reply(request.reply_to, reply).await.is_err() {
            break;
        }
    }
    worker.shutdown().await;
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
