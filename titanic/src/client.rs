//! The TSP client (the Guide's ticlient as an API): hand a request to Titanic, poll for its
//! reply, close it. [`TiClient`] does one request at a time; [`run_load`] drives many lanes of
//! them for `ticlient --count N --concurrency C`.
//!
//! Status handling follows 9/TSP: `300` (pending) and `500` (server error) are retried after
//! [`TiClientOptions::poll`], as is a call that got no answer at all (Titanic or the broker is
//! down: the Majordomo client has already retried on fresh sockets); `400` is final and
//! returned as [`TiError::Rejected`].
//!
//! With [`TiClientOptions::request_ids`], each [`TiClient::request`] keeps one request id
//! ([`majordomo::rid`]) over all its calls and retries, so Titanic stores it once even when its
//! `200` was lost (Titanic killed after storing it, a lost reply): the retry gets the same UUID.

use crate::tsp::{self, Answer, NewRequest, RequestId, Status, TspError};
use bytes::Bytes;
use common::contract;
use common::report::Ledger;
use common::Message;
use majordomo::rid::Rid;
use majordomo::{Client, ClientError, ClientOptions, PairOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Client settings.
#[derive(Debug, Clone)]
pub struct TiClientOptions {
    /// Timeout and attempts of each Majordomo call.
    pub mdp: ClientOptions,
    /// Wait between polls of `titanic.reply`, and before retrying after `500` or silence.
    pub poll: Duration,
    /// Send request ids (see the [module docs](self)). Off by default; always on with a
    /// broker pair.
    pub request_ids: bool,
    /// Failover timing when the client knows a broker pair.
    pub pair: PairOptions,
}

impl Default for TiClientOptions {
    fn default() -> Self {
        Self {
            mdp: ClientOptions::default(),
            // The Guide's ticlient waits 5 s after each "no reply yet".
            poll: Duration::from_millis(5000),
            request_ids: false,
            pair: PairOptions::default(),
        }
    }
}

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

/// One TSP client: one Majordomo client, one call at a time.
pub struct TiClient {
    mdp: Client,
    options: TiClientOptions,
    /// Calls repeated after a `500` or no answer.
    retries: u64,
}

impl TiClient {
    /// A client of one broker, or of a broker pair (two endpoints, primary first).
    pub fn new<S: AsRef<str>>(brokers: &[S], options: TiClientOptions) -> Result<Self, TiError> {
        Ok(Self {
            mdp: Client::with_brokers(brokers, options.mdp.clone(), options.pair)?
                .with_request_ids(options.request_ids),
            options,
            retries: 0,
        })
    }

    /// Resends so far: Majordomo-level resends after a timeout plus TSP calls repeated after a
    /// `500` or no answer.
    pub fn retries(&self) -> u64 {
        self.retries + self.mdp.resends()
    }

    /// Calls `service` until it answers something other than `500` (or silence). With `rid`,
    /// every call carries that request id; without, each call is a request of its own.
    async fn call(
        &mut self,
        service: &'static str,
        rid: Option<&Rid>,
        body: Message,
    ) -> Result<Answer, TiError> {
        loop {
            let sent = match rid {
                Some(rid) => {
                    self.mdp
                        .send_with_rid(service, Some(rid), body.clone())
                        .await
                }
                None => self.mdp.send(service, body.clone()).await,
            };
            match sent {
                Ok(reply) => match Answer::parse(reply) {
                    Ok(Answer {
                        status: Status::Error,
                        ..
                    }) => tracing::warn!("{service} answered 500, retrying"),
                    Ok(Answer {
                        status: Status::Unknown,
                        ..
                    }) => return Err(TiError::Rejected { service }),
                    Ok(answer) => return Ok(answer),
                    Err(e) => tracing::error!("{service}: malformed answer ({e}), retrying"),
                },
                Err(ClientError::NoReply { .. }) => {
                    tracing::warn!("no answer from {service}, retrying");
                }
                Err(e @ ClientError::Endpoint(_)) => return Err(e.into()),
                Err(e) => tracing::warn!("{service}: {e}, retrying"),
            }
            self.retries += 1;
            tokio::time::sleep(self.options.poll).await;
        }
    }

    /// Hands a request for `service` to Titanic; returns its UUID once Titanic has it on disk.
    pub async fn request(&mut self, request: &NewRequest) -> Result<RequestId, TiError> {
        // One logical request: one id for every call below, however often it is retried.
        let rid = self.mdp.next_rid();
        loop {
            let answer = self
                .call(tsp::REQUEST_SERVICE, rid.as_ref(), request.to_message())
                .await?;
            match (answer.status, answer.uuid()) {
                (Status::Ok, Ok(id)) => return Ok(id),
                (status, id) => {
                    let why = id
                        .err()
                        .map_or_else(|| format!("status {status}"), |e: TspError| e.to_string());
                    tracing::error!(
                        "{}: unusable answer ({why}), retrying",
                        tsp::REQUEST_SERVICE
                    );
                    self.retries += 1;
                    tokio::time::sleep(self.options.poll).await;
                }
            }
        }
    }

    /// Asks once for the reply to `id`: `Some(reply)` if it is there, `None` while pending.
    pub async fn reply(&mut self, id: RequestId) -> Result<Option<Vec<Bytes>>, TiError> {
        let answer = self
            .call(tsp::REPLY_SERVICE, None, tsp::uuid_body(id))
            .await?;
        Ok(match answer.status {
            Status::Ok => Some(answer.rest.into_frames().into()),
            _ => None,
        })
    }

    /// Polls until the reply to `id` is there (`first`: how long to wait before the first poll).
    pub async fn wait_reply(
        &mut self,
        id: RequestId,
        first: Duration,
    ) -> Result<Vec<Bytes>, TiError> {
        if !first.is_zero() {
            // Skipped when zero: even a zero sleep waits for the timer's next tick (about 1 ms).
            tokio::time::sleep(first).await;
        }
        loop {
            if let Some(reply) = self.reply(id).await? {
                return Ok(reply);
            }
            tracing::debug!("no reply yet for {id}, trying again");
            tokio::time::sleep(self.options.poll).await;
        }
    }

    /// Tells Titanic to forget `id` and its reply.
    pub async fn close(&mut self, id: RequestId) -> Result<(), TiError> {
        self.call(tsp::CLOSE_SERVICE, None, tsp::uuid_body(id))
            .await
            .map(drop)
    }
}

/// A load run: `count` requests, `concurrency` at a time (what `ticlient` does).
#[derive(Debug, Clone)]
pub struct Load {
    /// The Majordomo broker, or the two of a pair.
    pub brokers: Vec<String>,
    /// The service the requests are for.
    pub service: String,
    /// Request body; with `count > 1`, ` #<n>` is appended so that each request is distinct.
    pub body: String,
    /// Requests in all.
    pub count: u64,
    /// Requests under way at once, each lane with its own connection.
    pub concurrency: u64,
    /// Wait before the first poll for a reply.
    pub first_poll: Duration,
    /// Check that each reply equals its request (an echo service); a mismatch is a failure.
    pub verify: bool,
    /// Client settings of every lane.
    pub options: TiClientOptions,
}

impl Load {
    /// The body of request number `n`.
    fn body(&self, n: u64) -> String {
        if self.count == 1 {
            self.body.clone()
        } else {
            format!("{} #{n}", self.body)
        }
    }
}

/// Runs `load`, counting every request in `ledger` as it goes (so an interrupted run still has
/// its counts: the caller ends the ledger, which fails the requests still under way). Logs
/// `I: request UUID <uuid>` once a request is stored, `I: reply to <uuid>: <text>` once its reply
/// is there, `I: closed <uuid>` once Titanic has confirmed the close (the request's life is
/// over: the tour draws stored → answered → closed from these three); failures are logged with
/// `E:` and counted.
pub async fn run_load(load: Arc<Load>, ledger: Arc<Mutex<Ledger>>) -> Result<(), TiError> {
    let lanes = load.concurrency.clamp(1, load.count.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..lanes {
        let client = TiClient::new(&load.brokers, load.options.clone())?;
        tasks.spawn(lane(
            Arc::clone(&load),
            client,
            first,
            lanes,
            Arc::clone(&ledger),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Requests `first, first + step, …` below `load.count`, one after another.
async fn lane(
    load: Arc<Load>,
    mut client: TiClient,
    first: u64,
    step: u64,
    ledger: Arc<Mutex<Ledger>>,
) {
    let ledger = || ledger.lock().unwrap_or_else(|e| e.into_inner());
    for n in (first..load.count).step_by(step as usize) {
        let request = NewRequest {
            service: Bytes::from(load.service.clone()),
            body: vec![Bytes::from(load.body(n))],
        };
        let seq = ledger().start(contract::now());
        let retries_before = client.retries();
        let outcome = async {
            let id = client.request(&request).await?;
            tracing::info!("request UUID {id}");
            let reply = client.wait_reply(id, load.first_poll).await?;
            let text: Vec<_> = reply.iter().map(|f| common::msg::frame_text(f)).collect();
            tracing::info!("reply to {id}: {}", text.join(" | "));
            client.close(id).await?;
            tracing::info!("closed {id}");
            let good = !load.verify || reply == request.body;
            if !good {
                tracing::error!("{id}: reply does not match the request {:?}", load.body(n));
            }
            Ok::<bool, TiError>(good)
        }
        .await;
        let tries = 1 + client.retries() - retries_before;
        ledger().set_tries(seq, tries);
        let now = contract::now();
        match outcome {
            Ok(true) => ledger().answered(seq, now),
            Ok(false) => ledger().failed(seq, now),
            Err(e) => {
                tracing::error!("request {n}: {e}");
                ledger().failed(seq, now)
            }
        };
    }
}
