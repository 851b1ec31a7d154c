//! The Lazy Pirate client: a REQ socket that retries on a fresh socket and then gives up.
//!
//! [`LazyPirateClient::request`] is the library API: send one request, get its reply or
//! [`Abandoned`]. [`run_sequence`] is the Guide's `lpclient` loop on top of it (numbered
//! requests until a count, Ctrl-C, or the server is given up on).
//!
//! Every try is bounded by one deadline: connecting (the `zeromq` crate's `connect()` waits for
//! the peer), sending and receiving all share it. A REQ socket whose receive timed out refuses to
//! send again, so every retry drops the socket and opens a new one — the Guide's pattern, and
//! here the only way.

use crate::core::{ReplyVerdict, Requester, RetryPolicy, Sequence, TimeoutVerdict};
use common::report::{Ledger, Summary};
use common::{sock, Message};
use std::future::Future;
use std::time::{Duration, Instant};
use zeromq::{ReqSocket, Socket};

/// The request was tried as often as the policy allows and never answered.
#[derive(Debug, thiserror::Error)]
#[error("server seems to be offline: no reply after {tries} tries")]
pub struct Abandoned {
    /// The request that went unanswered.
    pub request: Message,
    /// How many times it was sent.
    pub tries: u32,
}

/// The socket of the current try, and whether it may still receive.
struct Conn {
    socket: ReqSocket,
    /// False once the socket's one receive after a send is used (or it failed): a REQ socket
    /// then has to send before it can receive, so only a fresh try helps.
    awaiting: bool,
}

/// A Lazy Pirate client talking to one server endpoint.
pub struct LazyPirateClient {
    server: String,
    core: Requester,
    conn: Option<Conn>,
    connected_once: bool,
}

impl LazyPirateClient {
    /// A client for `server` (e.g. `tcp://localhost:5555`); connects on the first request.
    pub fn new(server: impl Into<String>, policy: RetryPolicy) -> Self {
        Self {
            server: server.into(),
            core: Requester::new(policy),
            conn: None,
            connected_once: false,
        }
    }

    /// Counts so far.
    pub fn summary(&self) -> Summary {
        self.core.summary()
    }

    /// Gives up on the request in flight (e.g. on Ctrl-C while [`request`](Self::request) was
    /// cancelled); it is counted failed. Returns it, if there was one.
    pub fn interrupt(&mut self) -> Option<Message> {
        self.conn = None;
        self.core.interrupt()
    }

    /// Sends `request` and waits for its reply, resending on a fresh socket after each timeout.
    ///
    /// Cancel-safe in the sense that matters: if the future is dropped, call
    /// [`interrupt`](Self::interrupt) to count the request; a later `request` also does so.
    pub async fn request(&mut self, request: Message) -> Result<Message, Abandoned> {
        if self.core.in_flight().is_some() {
            // A previous call was cancelled mid-flight.
            self.interrupt();
        }
        let mut deadline = match self.core.start(request.clone(), Instant::now()) {
            Ok(deadline) => deadline,
            Err(busy) => unreachable!("{busy} after interrupt"),
        };
        let mut to_send = Some(request);
        let mut tries = 1;
        loop {
            if let Some(request) = to_send.take() {
                self.send(request, deadline).await;
            }
            let received = self.receive(deadline).await;
            match received {
                Some(reply) => match self.core.on_reply(reply) {
                    ReplyVerdict::Accepted(reply) => {
                        tracing::info!("server replied OK ({})", text(&reply));
                        return Ok(reply);
                    }
                    ReplyVerdict::Malformed(reply) => {
                        tracing::error!("malformed reply from server: {}", text(&reply));
                    }
                },
                None => match self.core.on_timeout(Instant::now()) {
                    TimeoutVerdict::Wait(until) => deadline = until,
                    TimeoutVerdict::Retry {
                        request,
                        deadline: until,
                        attempt,
                    } => {
                        tracing::warn!("no response from server, retrying…");
                        self.conn = None;
                        tracing::warn!("reconnecting to server…");
                        deadline = until;
                        tries = attempt;
                        to_send = Some(request);
                    }
                    TimeoutVerdict::Abandon(request) => {
                        tracing::error!("server seems to be offline, abandoning");
                        self.conn = None;
                        return Err(Abandoned { request, tries });
                    }
                    TimeoutVerdict::Idle => unreachable!("a request is in flight"),
                },
            }
        }
    }

    /// Connects (if needed) and sends, all before `deadline`. Failures are logged; the caller
    /// then waits out the deadline, which paces retries the way a timeout would.
    async fn send(&mut self, request: Message, deadline: Instant) {
        if self.conn.is_none() {
            if !self.connected_once {
                tracing::info!("connecting to server at {}…", self.server);
                self.connected_once = true;
            }
            let mut socket = ReqSocket::new();
            let left = deadline.saturating_duration_since(Instant::now());
            match sock::connect(&mut socket, &self.server, left).await {
                Ok(()) => {
                    self.conn = Some(Conn {
                        socket,
                        awaiting: false,
                    })
                }
                Err(sock::SockError::Timeout(..)) => return,
                Err(e) => {
                    tracing::warn!("cannot connect to {}: {e}", self.server);
                    return;
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        tracing::debug!("sending request:\n{}", request.dump());
        let left = deadline.saturating_duration_since(Instant::now());
        match sock::send(
            &mut conn.socket,
            request,
            left.max(Duration::from_millis(1)),
        )
        .await
        {
            Ok(()) => conn.awaiting = true,
            Err(e) => {
                tracing::warn!("cannot send to {}: {e}", self.server);
                self.conn = None;
            }
        }
    }

    /// Waits for a reply until `deadline`; `None` once it has passed without one.
    async fn receive(&mut self, deadline: Instant) -> Option<Message> {
        let left = deadline.saturating_duration_since(Instant::now());
        let conn = match self.conn.as_mut() {
            Some(conn) if conn.awaiting => conn,
            _ => {
                tokio::time::sleep(left).await;
                return None;
            }
        };
        conn.awaiting = false;
        match sock::recv(&mut conn.socket, left).await {
            Ok(Some(reply)) => {
                tracing::debug!("received reply:\n{}", reply.dump());
                Some(reply)
            }
            Ok(None) => {
                // Timed out: the socket still awaits this reply (kept for an early wake-up).
                conn.awaiting = true;
                None
            }
            Err(e) => {
                // E.g. the server closed the connection (crashed). Wait out the try anyway: a
                // server being restarted needs the time.
                tracing::warn!("connection to server lost ({e}), waiting out the timeout");
                self.conn = None;
                tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
                None
            }
        }
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
        let seq = ledger.start(Instant::now());
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
                    ledger.answered(seq, Instant::now());
                } else {
                    ledger.failed(seq, Instant::now());
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
    ledger.finish(Instant::now())
}
