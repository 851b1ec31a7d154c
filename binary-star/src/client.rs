//! The Binary Star client API: one `request()` call, failover hidden inside.
//!
//! ```no_run
//! # async fn demo() -> Result<(), binary_star::client::ClientError> {
//! use binary_star::client::Client;
//! use binary_star::failover::Policy;
//! use common::Message;
//!
//! let mut client = Client::new(
//!     ["tcp://localhost:5001".into(), "tcp://localhost:5002".into()],
//!     Policy::default(),
//! );
//! let reply = client.request(Message::from_frames(["hello"])).await?;
//! # Ok(()) }
//! ```
//!
//! Each attempt uses a REQ socket, as the Guide's `bstarcli` does. The `zeromq` crate's REQ
//! refuses a second send after an unanswered one and never reconnects, so after any failure the
//! socket is dropped and the next attempt opens a fresh one (Lazy Pirate). [`Plan`] decides which
//! server to ask and when.
//!
//! # Log lines (stable)
//!
//! * `W: no response from <endpoint>, failing over to <endpoint>` — a switch.
//! * `I: failover to <endpoint> after <ms> ms (<gap> ms since the previous answer)` — the first
//!   answer after a switch; `<ms>` counts from the request's first send.

use crate::failover::{Failover, Plan, Policy, Step};
use common::msg::EmptyMessage;
use common::{sock, Message};
use std::time::Duration;
use tokio::time::Instant;
use zeromq::{ReqSocket, Socket};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neither server answered within the policy's give-up time.
    #[error("no answer from either server within {0:?}")]
    GaveUp(Duration),
    /// A request needs at least one frame.
    #[error(transparent)]
    Empty(#[from] EmptyMessage),
}

/// A failover seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverSeen {
    /// The endpoint that answered after the switch.
    pub to: String,
    /// From the request's first send to its answer.
    pub waited: Duration,
    /// From the previous answer (from the other server) to this one.
    pub gap: Option<Duration>,
}

/// Why one attempt failed (logged at `D:`, then handled by the plan).
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("no reply in time")]
    Timeout,
    #[error(transparent)]
    Sock(#[from] sock::SockError),
}

/// A client of a Binary Star pair.
pub struct Client {
    servers: [String; 2],
    plan: Plan,
    socket: Option<(usize, ReqSocket)>,
    last_answer: Option<Instant>,
    last_failover: Option<FailoverSeen>,
}

impl Client {
    /// A client of the pair `[primary, backup]`; nothing is connected until the first request.
    pub fn new(servers: [String; 2], policy: Policy) -> Client {
        Client {
            servers,
            plan: Plan::new(policy, Instant::now().into_std()),
            socket: None,
            last_answer: None,
            last_failover: None,
        }
    }

    /// Sends `body` and returns the reply, failing over between the two servers as needed.
    pub async fn request(&mut self, body: Message) -> Result<Message, ClientError> {
        if body.is_empty() {
            return Err(EmptyMessage.into());
        }
        let mut step = self.plan.begin(Instant::now().into_std());
        let mut previous = None;
        loop {
            let Step::Send { server, at, until } = step else {
                self.socket = None;
                let limit = self.plan.policy().give_up.unwrap_or_default();
                return Err(ClientError::GaveUp(limit));
            };
            if let Some(previous) = previous.filter(|p| *p != server) {
                tracing::warn!(
                    "no response from {}, failing over to {}",
                    self.servers[previous],
                    self.servers[server]
                );
            }
            previous = Some(server);
            tokio::time::sleep_until(Instant::from_std(at)).await;
            match self
                .attempt(server, body.clone(), Instant::from_std(until))
                .await
            {
                Ok(reply) => {
                    let now = Instant::now();
                    if let Some(failover) = self.plan.answered(now.into_std()) {
                        self.report(failover, now);
                    }
                    self.last_answer = Some(now);
                    return Ok(reply);
                }
                Err(e) => {
                    tracing::debug!("no answer from {}: {e}", self.servers[server]);
                    self.socket = None;
                    step = self.plan.failed(Instant::now().into_std());
                }
            }
        }
    }

    /// The endpoint that answered last (where the next request goes first).
    pub fn server(&self) -> &str {
        &self.servers[self.plan.settled()]
    }

    /// The most recent failover, if any.
    pub fn last_failover(&self) -> Option<&FailoverSeen> {
        self.last_failover.as_ref()
    }

    /// Resends so far (votes and retries after a failover or timeout).
    pub fn retries(&self) -> u64 {
        self.plan.retries()
    }

    fn report(&mut self, failover: Failover, now: Instant) {
        let gap = self.last_answer.map(|t| now - t);
        let to = self.servers[failover.to].clone();
        let gap_text = gap.map_or_else(
            || "no previous answer".to_owned(),
            |g| format!("{} ms since the previous answer", g.as_millis()),
        );
        tracing::info!(
            "failover to {to} after {} ms ({gap_text})",
            failover.waited.as_millis()
        );
        self.last_failover = Some(FailoverSeen {
            to,
            waited: failover.waited,
            gap,
        });
    }

    async fn attempt(
        &mut self,
        server: usize,
        body: Message,
        until: Instant,
    ) -> Result<Message, AttemptError> {
        let left = || until.saturating_duration_since(Instant::now());
        if self.socket.as_ref().is_none_or(|(s, _)| *s != server) {
            let endpoint = &self.servers[server];
            tracing::debug!("connecting to server at {endpoint}...");
            let mut socket = ReqSocket::with_options(sock::options(left(), None));
            sock::connect(&mut socket, endpoint, left()).await?;
            self.socket = Some((server, socket));
        }
        let Some((_, socket)) = self.socket.as_mut() else {
            return Err(AttemptError::Timeout);
        };
        sock::send(socket, body, left()).await?;
        sock::recv(socket, left())
            .await?
            .ok_or(AttemptError::Timeout)
    }
}
