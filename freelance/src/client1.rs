//! Model 1 client: a fresh REQ socket per attempt, one server after another.
//!
//! A REQ whose reply never came refuses to send again, and the `zeromq` crate's REQ never
//! reconnects, so each attempt opens its own socket, bounded in all (connect, send, receive) by
//! the request timeout. Which server each attempt tries is decided by [`crate::retry`].
//!
//! # Log lines
//! * `W: no response from <endpoint> (<why>)` for each failed attempt

use crate::driver::{Failed, Reply, Requester};
use crate::retry::{attempts, is_echo};
use common::sock::{self, SockError};
use common::Message;
use std::time::{Duration, Instant};
use zeromq::{ReqSocket, Socket};

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
            timeout: crate::retry::REQUEST_TIMEOUT,
            tries: crate::retry::MAX_RETRIES,
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The server could not be reached in time.
    #[error("connect: {0}")]
    Connect(SockError),
    /// The request could not be handed to the socket.
    #[error("send: {0}")]
    Send(SockError),
    /// The connection failed while waiting.
    #[error("receive: {0}")]
    Recv(SockError),
    /// Nothing came back in time.
    #[error("no reply within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Something came back, but not our request.
    #[error("reply is not the echo of the request")]
    NotEcho,
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
        let plan = attempts(&self.endpoints, self.config.tries);
        for (index, endpoint) in plan.iter().enumerate() {
            match try_once(endpoint, body, self.config.timeout).await {
                Ok(reply) => {
                    return Ok(Reply {
                        server: Some((*endpoint).to_owned()),
                        body: reply,
                        attempts: index as u32 + 1,
                    })
                }
                Err(e) => tracing::warn!("no response from {endpoint} ({e})"),
            }
        }
        Err(Failed {
            attempts: plan.len() as u32,
            reason: format!("no server answered ({} attempts)", plan.len()),
        })
    }
}

impl Requester for Model1Client {
    async fn request(&mut self, number: u64) -> Result<Reply, Failed> {
        self.send(&Message::new().with(format!("hello {number}")))
            .await
    }
}

/// One attempt on one server, on its own REQ socket, all within `timeout`.
pub async fn try_once(
    endpoint: &str,
    body: &Message,
    timeout: Duration,
) -> Result<Message, AttemptError> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut socket = ReqSocket::with_options(sock::options(timeout, None));
    sock::connect(&mut socket, endpoint, timeout)
        .await
        .map_err(AttemptError::Connect)?;
    sock::send(&mut socket, body.clone(), left())
        .await
        .map_err(AttemptError::Send)?;
    let reply = sock::recv(&mut socket, left())
        .await
        .map_err(AttemptError::Recv)?
        .ok_or(AttemptError::Timeout(timeout))?;
    if is_echo(body, &reply) {
        Ok(reply)
    } else {
        Err(AttemptError::NotEcho)
    }
}
