//! The Binary Star client API: one `request()` call, failover hidden inside.
//!
//! ```no_run
//! # async fn demo() -> Result<(), binary_star::ClientError> {
//! use binary_star::Client;
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
//! socket is dropped and the next attempt opens a fresh one (Lazy Pirate): that is the
//! workspace's one retrying client ([`common::retry`]), with [`Plan`] deciding which server to
//! ask and when.
//!
//! # Log lines (stable)
//!
//! * `W: no response from <endpoint>, failing over to <endpoint>` — a switch.
//! * `I: failover to <endpoint> after <ms> ms (<gap> ms since the previous answer)` — the first
//!   answer after a switch; `<ms>` counts from the request's first send.

use crate::failover::{Plan, Policy};
use common::contract;
use common::msg::EmptyMessage;
use common::retry::{Event, OnFailure, ReplyCheck, Requester, RetryClient};
use common::Message;
use std::time::{Duration, Instant};
use zeromq::ReqSocket;

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

/// A client of a Binary Star pair.
pub struct Client {
    retry: RetryClient<ReqSocket, Plan>,
    last_answer: Option<Instant>,
    last_failover: Option<FailoverSeen>,
}

impl Client {
    /// A client of the pair `[primary, backup]`; nothing is connected until the first request.
    pub fn new(servers: [String; 2], policy: Policy) -> Client {
        let plan = Plan::new(policy, contract::now());
        Client {
            retry: RetryClient::new(
                servers.into(),
                Requester::new(plan, ReplyCheck::Any, OnFailure::Next),
            ),
            last_answer: None,
            last_failover: None,
        }
    }

    /// Sends `body` and returns the reply, failing over between the two servers as needed.
    pub async fn request(&mut self, body: Message) -> Result<Message, ClientError> {
        if body.is_empty() {
            return Err(EmptyMessage.into());
        }
        let servers = self.retry.endpoints().to_vec();
        let (last_answer, last_failover) = (&mut self.last_answer, &mut self.last_failover);
        let reply = self.retry.request(body, |event| match event {
            Event::Retrying { from, to, .. } if from != to => tracing::warn!(
                "no response from {}, failing over to {}",
                servers[*from],
                servers[*to]
            ),
            Event::Failed {
                endpoint, error, ..
            } => tracing::debug!("no answer from {}: {}", servers[*endpoint], error.sock()),
            Event::TimedOut { endpoint, .. } => {
                tracing::debug!("no answer from {}: no reply in time", servers[*endpoint])
            }
            Event::Answered {
                endpoint,
                waited,
                switched,
                ..
            } => {
                let now = contract::now();
                if *switched {
                    let seen = failover_seen(&servers[*endpoint], *waited, *last_answer, now);
                    *last_failover = Some(seen);
                }
                *last_answer = Some(now);
            }
            _ => {}
        });
        reply.await.map_err(|_| {
            let limit = self.retry.core().schedule().policy().give_up;
            ClientError::GaveUp(limit.unwrap_or_default())
        })
    }

    /// The endpoint that answered last (where the next request goes first).
    pub fn server(&self) -> &str {
        &self.retry.endpoints()[self.retry.core().schedule().settled()]
    }

    /// The most recent failover, if any.
    pub fn last_failover(&self) -> Option<&FailoverSeen> {
        self.last_failover.as_ref()
    }

    /// Resends so far (votes and retries after a failover or timeout).
    pub fn retries(&self) -> u64 {
        self.retry.core().summary().retries
    }
}

/// Logs the failover line and says what the caller saw.
fn failover_seen(to: &str, waited: Duration, last: Option<Instant>, now: Instant) -> FailoverSeen {
    let gap = last.map(|t| now - t);
    let gap_text = gap.map_or_else(
        || "no previous answer".to_owned(),
        |g| format!("{} ms since the previous answer", g.as_millis()),
    );
    tracing::info!(
        "failover to {to} after {} ms ({gap_text})",
        waited.as_millis()
    );
    FailoverSeen {
        to: to.to_owned(),
        waited,
        gap,
    }
}
