//! The TSP client's shell (the Guide's ticlient as an API): [`TiClient`] carries one request's
//! life at a time, making the calls its core ([`TiRequest`]) asks for with the Majordomo client
//! and logging what the core reports; [`run_load`] drives many lanes of them for
//! `ticlient --count N --concurrency C`. When to retry, poll and give up is the core's.
//!
//! With [`TiClientOptions::request_ids`], each request keeps one request id
//! ([`majordomo::rid`]) over all its calls and retries, so Titanic stores it once even when its
//! `200` was lost (Titanic killed after storing it, a lost reply): the retry gets the same UUID.

use crate::client::{Event, Retry, TiRequest};
use crate::protocol::{self, NewRequest, RequestId};
use bytes::Bytes;
use common::contract::{self, Core};
use common::report::Ledger;
use majordomo::{Client, ClientOptions, PairOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::client::TiError;

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

    /// Carries `request` through its life: stored, its reply polled for (the first poll after
    /// `first_poll`), closed. Returns its UUID once Titanic has confirmed the close, and whether
    /// the reply is good (with `verify`: equal to the request's body).
    pub async fn run(
        &mut self,
        request: &NewRequest,
        first_poll: Duration,
        verify: bool,
    ) -> Result<(RequestId, bool), TiError> {
        // One logical request: one id for every call storing it, however often it is retried.
        let rid = self.mdp.next_rid();
        let mut core = TiRequest::new(request, self.options.poll, first_poll, contract::now())
            .with_verify(request, verify);
        loop {
            while let Some(event) = core.poll_event() {
                match event {
                    Event::Retrying { service, why } => {
                        self.retries += 1;
                        log_retry(service, why);
                    }
                    Event::Stored { id } => tracing::info!("request UUID {id}"),
                    Event::NotYet { id } => tracing::debug!("no reply yet for {id}, trying again"),
                    Event::Replied { id, reply } => {
                        let text: Vec<_> =
                            reply.iter().map(|f| common::msg::frame_text(f)).collect();
                        tracing::info!("reply to {id}: {}", text.join(" | "));
                    }
                    Event::Closed { id, good, .. } => {
                        tracing::info!("closed {id}");
                        return Ok((id, good));
                    }
                    Event::Failed(error) => return Err(error),
                }
            }
            if let Some(call) = core.poll_transmit() {
                let answer = match rid.as_ref().filter(|_| call.with_rid) {
                    Some(rid) => {
                        self.mdp
                            .send_with_rid(call.service, Some(rid), call.body)
                            .await
                    }
                    None => self.mdp.send(call.service, call.body).await,
                };
                core.handle_answer(answer, contract::now());
                continue;
            }
            contract::sleep_until(core.poll_timeout()).await;
            core.handle_timeout(contract::now());
        }
    }
}

/// The log line of a call made again.
fn log_retry(service: &'static str, why: Retry) {
    match why {
        Retry::Failed => tracing::warn!("{service} answered 500, retrying"),
        Retry::Malformed(e) => tracing::error!("{service}: malformed answer ({e}), retrying"),
        Retry::NoAnswer => tracing::warn!("no answer from {service}, retrying"),
        Retry::Client(e) => tracing::warn!("{service}: {e}, retrying"),
        Retry::Unusable(why) => tracing::error!(
            "{}: unusable answer ({why}), retrying",
            protocol::REQUEST_SERVICE
        ),
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
            let (id, good) = client.run(&request, load.first_poll, load.verify).await?;
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
