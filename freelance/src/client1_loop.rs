//! Model 1 client: a fresh REQ socket per attempt, one server after another.
//!
//! A REQ whose reply never came refuses to send again, and the `zeromq` crate's REQ never
//! reconnects, so each attempt opens its own socket, bounded in all (connect, send, receive) by
//! the request timeout. The attempts are the workspace's one retrying client
//! ([`common::retry`]): with one server it behaves like Lazy Pirate (try it `tries` times);
//! with several it tries each once, in the order given, moving on at once when one fails. Every
//! request starts again from the first server, as in the Guide: that is model 1's known
//! weakness (a dead first server costs a timeout on every request), which models 2 and 3 remove.
//!
//! # Log lines
//! * `W: no response from <endpoint> (<why>)` for each failed attempt

use crate::driver::{Failed, ModelClient, Reply};
use common::retry::{self, Event, OnFailure, ReplyCheck, RetryClient, Tries};
use common::Message;
use std::time::Duration;
use zeromq::ReqSocket;

/// Guide (flclient1): how long one attempt waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// Guide (flclient1): attempts on a single server before giving up.
pub const MAX_RETRIES: u32 = 3;

/// Model 1 settings.
#[derive(Debug, Clone)]
pub struct Model1Config {
    /// One attempt (connect, send, receive) may take this long.
    pub timeout: Duration,
    /// With a single server: how many attempts.
    pub tries: u32,
}

impl Default for Model1Config {
    fn default() -> Self {
        Self {
            timeout: REQUEST_TIMEOUT,
            tries: MAX_RETRIES,
        }
    }
}

/// A model-1 client of one or more echo servers.
#[derive(Debug, Clone)]
pub struct Model1Client {
    endpoints: Vec<String>,
    config: Model1Config,
}

impl Model1Client {
    /// A client of `endpoints` (nothing is connected until a request is sent).
    pub fn new(endpoints: Vec<String>, config: Model1Config) -> Self {
        Self { endpoints, config }
    }

    /// Sends `body` to each planned server in turn until one echoes it.
    pub async fn send(&self, body: &Message) -> Result<Reply, Failed> {
        let no_server = |attempts| Failed {
            attempts,
            reason: format!("no server answered ({attempts} attempts)"),
        };
        if self.endpoints.is_empty() {
            return Err(no_server(0));
        }
        let tries = Tries::new(self.config.timeout, self.config.tries, self.endpoints.len());
        let core = retry::Requester::new(tries, ReplyCheck::Echo, OnFailure::Next);
        // A client per request: every request gets fresh sockets, as in the Guide.
        let mut client = RetryClient::<ReqSocket>::new(self.endpoints.clone(), core);
        let ms = self.config.timeout.as_millis();
        let mut answered_by = (0, 1);
        let reply = client.request(body.clone(), |event| match event {
            Event::Answered {
                endpoint, tries, ..
            } => answered_by = (*endpoint, *tries),
            Event::Failed {
                endpoint, error, ..
            } => {
                let endpoint = &self.endpoints[*endpoint];
                tracing::warn!("no response from {endpoint} ({error})");
            }
            Event::TimedOut { endpoint, .. } => {
                let endpoint = &self.endpoints[*endpoint];
                tracing::warn!("no response from {endpoint} (no reply within {ms} ms)");
            }
            Event::Rejected { endpoint, .. } => {
                let endpoint = &self.endpoints[*endpoint];
                tracing::warn!(
                    "no response from {endpoint} (reply is not the echo of the request)"
                );
            }
            Event::Retrying { .. } | Event::Abandoned { .. } | Event::Busy { .. } => {}
        });
        match reply.await {
            Ok(body) => Ok(Reply {
                server: Some(self.endpoints[answered_by.0].clone()),
                body,
                attempts: answered_by.1,
            }),
            Err(abandoned) => Err(no_server(abandoned.tries)),
        }
    }
}

impl ModelClient for Model1Client {
    async fn request(&mut self, number: u64) -> Result<Reply, Failed> {
        self.send(&Message::new().with(format!("hello {number}")))
            .await
    }
}
