//! The Lazy Pirate client: a REQ socket that retries on a fresh socket and then gives up.
//!
//! [`LazyPirateClient::request`] is the library API: send one request, get its reply or
//! [`Abandoned`]. [`run_sequence`] is the Guide's `lpclient` loop on top of it (numbered
//! requests until a count, Ctrl-C, or the server is given up on).
//!
//! The retrying is the workspace's one [`RetryClient`]: every try is bounded by one deadline
//! (connect, send and receive share it), and a REQ socket whose receive timed out refuses to
//! send again, so every retry opens a fresh socket. This module turns its events into the
//! Guide's log lines.

use crate::policy::{RetryPolicy, Sequence};
use common::contract;
use common::report::{Ledger, Summary};
pub use common::retry::Abandoned;
use common::retry::{Event, RetryClient, TryError};
use common::sock::SockError;
use common::Message;
use std::future::Future;
use std::time::Duration;
use zeromq::ReqSocket;

/// A Lazy Pirate client talking to one server endpoint.
pub struct LazyPirateClient {
    inner: RetryClient<ReqSocket>,
    connected_once: bool,
}

impl LazyPirateClient {
    /// A client for `server` (e.g. `tcp://localhost:5555`); connects on the first request.
    pub fn new(server: impl Into<String>, policy: RetryPolicy) -> Self {
        Self {
            inner: RetryClient::new(vec![server.into()], policy.requester()),
            connected_once: false,
        }
    }

    /// Counts so far.
    pub fn summary(&self) -> Summary {
        self.inner.core().summary()
    }

    /// Gives up on the request in flight (e.g. on Ctrl-C while [`request`](Self::request) was
    /// cancelled); it is counted failed. Returns it, if there was one.
    pub fn interrupt(&mut self) -> Option<Message> {
        self.inner.interrupt()
    }

    /// Sends `request` and waits for its reply, resending on a fresh socket after each timeout.
    ///
    /// Cancel-safe in the sense that matters: if the future is dropped, call
    /// [`interrupt`](Self::interrupt) to count the request; a later `request` also does so.
    pub async fn request(&mut self, request: Message) -> Result<Message, Abandoned> {
        let server = &self.inner.endpoints()[0];
        if !self.connected_once {
            tracing::info!("connecting to server at {server}…");
            self.connected_once = true;
        }
        let server = server.clone();
        self.inner
            .request(request, |event| log(&server, event))
            .await
    }
}

/// The Guide's log line for each event of the retry core.
fn log(server: &str, event: &Event) {
    match event {
        Event::Answered { reply, .. } => tracing::info!("server replied OK ({})", text(reply)),
        Event::Rejected { reply, .. } => {
            tracing::error!("malformed reply from server: {}", text(reply))
        }
        // A connect that did not finish in time is just a silent try.
        Event::Failed {
            error: TryError::Connect(SockError::Timeout(..)),
            ..
        }
        | Event::TimedOut { .. }
        | Event::Busy { .. } => {}
        Event::Failed { error, .. } => match error {
            TryError::Connect(e) => tracing::warn!("cannot connect to {server}: {e}"),
            TryError::Send(e) => tracing::warn!("cannot send to {server}: {e}"),
            // E.g. the server closed the connection (crashed). The try is waited out anyway:
            // a server being restarted needs the time.
            TryError::Recv(e) => {
                tracing::warn!("connection to server lost ({e}), waiting out the timeout")
            }
        },
        Event::Retrying { .. } => {
            tracing::warn!("no response from server, retrying…");
            tracing::warn!("reconnecting to server…");
        }
        Event::Abandoned { .. } => tracing::error!("server seems to be offline, abandoning"),
    }
}

/// A message's frames as text, separated by spaces (for log lines).
pub fn text(message: &Message) -> String {
    message
        .iter()
        .map(|f| common::msg::frame_text(f))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How [`run_sequence`] paces itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop after this many requests (`None`: until Ctrl-C or the server is given up on).
    pub requests: Option<u64>,
    /// Pause between one reply and the next request.
    pub interval: Duration,
}

/// The Guide's `lpclient`: requests `"1"`, `"2"`, … each checked against its echo, until
/// `options.requests` are answered, a request is abandoned, or `shutdown` resolves.
///
/// Every request is counted in `ledger` (its sequence number is the request body); a request
/// in flight when `shutdown` resolves counts failed. Ends the ledger (logging the summary line)
/// and returns the counts.
pub async fn run_sequence(
    client: &mut LazyPirateClient,
    options: RunOptions,
    ledger: &mut Ledger,
    shutdown: impl Future<Output = ()>,
) -> Summary {
    tokio::pin!(shutdown);
    let mut sequence = Sequence::new();
    loop {
        if options.requests.is_some_and(|n| ledger.summary().sent >= n) {
            break;
        }
        let (number, request) = sequence.next_request();
        let seq = ledger.start(contract::now());
        debug_assert_eq!(seq, number);
        let retries_before = client.summary().retries;
        let tries = |client: &LazyPirateClient| 1 + client.summary().retries - retries_before;
        tokio::select! {
            biased;
            () = &mut shutdown => {
                if client.interrupt().is_some() {
                    tracing::warn!("interrupted, request {number} given up");
                }
                ledger.set_tries(seq, tries(client));
                break;
            }
            outcome = client.request(request) => {
                ledger.set_tries(seq, tries(client));
                if outcome.is_ok() {
                    ledger.answered(seq, contract::now());
                } else {
                    ledger.failed(seq, contract::now());
                    break;
                }
            }
        }
        if !options.interval.is_zero() {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(options.interval) => {}
            }
        }
    }
    ledger.finish(contract::now())
}
