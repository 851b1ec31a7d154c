//! The synchronous client for streamed replies (MDP/0.2): one request, its reply consumed
//! part by part.
//!
//! [`StreamClient::request`] sends a request and returns a [`ReplyStream`]; each
//! [`next`](ReplyStream::next) yields a [`Part`]: zero or more [`Part::Partial`], then one
//! [`Part::Final`]. The timeout is *per part*: it starts again with every part that arrives, so
//! a long stream is fine as long as it keeps coming. On silence the request is sent again on a
//! fresh socket (Lazy Pirate), up to [`ClientOptions::retries`] attempts in all.
//!
//! A retry must not repeat parts already yielded. Every request carries a request id
//! ([`crate::rid`]) unless turned off: this workspace's broker then joins the running request or
//! answers from memory, and either way sends the stream again from its first part; a broker
//! without ids runs it again, from its first part too. So each attempt's parts are counted and
//! the first ones, as many as were already yielded, are skipped ([`StreamCore`]). This assumes
//! what a retry assumes anyway: the same request gets the same answer.
//!
//! Against a 0.1 broker ([`Dialect::V01`]) the reply is one part, the `Final`.
//!
//! [`AsyncStreamClient`] is the pipelined one: many requests in flight on one socket, each part
//! delivered as it comes, tagged with its request's id.

use super::{new_socket, ClientError};
use crate::client::stream::{Next, Part, StreamCore};
use crate::client::ClientOptions;
use crate::protocol::{self, ClientCommand, Dialect};
use crate::rid::{Rid, RidSource};
use bytes::Bytes;
use common::sock;
use common::Message;
use std::time::Instant;
use zeromq::DealerSocket;

/// A synchronous Majordomo client whose replies are streams. See the [module docs](self).
pub struct StreamClient {
    broker: String,
    options: ClientOptions,
    dialect: Dialect,
    rids: Option<RidSource>,
    /// The socket of the last request if its reply ended with the FINAL (nothing of it can
    /// still arrive): the next request reuses it. A retry always takes a fresh one.
    socket: Option<DealerSocket>,
}

impl StreamClient {
    /// A client of `broker` speaking `dialect`, with request ids on.
    pub fn new(
        broker: &str,
        options: ClientOptions,
        dialect: Dialect,
    ) -> Result<Self, ClientError> {
        common::endpoint::validate(broker).map_err(ClientError::Endpoint)?;
        Ok(Self {
            broker: broker.to_owned(),
            options,
            dialect,
            rids: Some(RidSource::new()),
            socket: None,
        })
    }

    /// Turns request ids off (for a broker that would pass the id frame on to its workers,
    /// such as majortomo's or the Guide's).
    pub fn without_request_ids(mut self) -> Self {
        self.rids = None;
        self
    }

    /// Sends `body` to `service`; the reply comes from the returned stream.
    pub async fn request(
        &mut self,
        service: &str,
        body: Message,
    ) -> Result<ReplyStream<'_>, ClientError> {
        let rid = self.rids.as_mut().map(RidSource::next_rid);
        let socket = self.socket.take();
        let mut stream = ReplyStream {
            core: StreamCore::new(&self.options, Instant::now()),
            socket,
            client: self,
            service: service.to_owned(),
            body,
            rid,
        };
        stream.send().await?;
        Ok(stream)
    }
}

/// The reply to one [`StreamClient::request`], part by part.
pub struct ReplyStream<'a> {
    client: &'a mut StreamClient,
    core: StreamCore,
    socket: Option<DealerSocket>,
    service: String,
    body: Message,
    rid: Option<Rid>,
}

impl ReplyStream<'_> {
    /// The request's id, if ids are on.
    pub fn rid(&self) -> Option<&Rid> {
        self.rid.as_ref()
    }

    /// Sends the request: on the socket of a request answered whole, else on a fresh socket
    /// (new identity: nothing of an earlier attempt can arrive on it).
    async fn send(&mut self) -> Result<(), ClientError> {
        let (timeout, dialect) = (self.client.options.timeout, self.client.dialect);
        let reused = self.socket.is_some();
        let mut socket = match self.socket.take() {
            Some(socket) => socket,
            None => {
                let mut socket = new_socket(timeout);
                sock::connect(&mut socket, &self.client.broker, timeout).await?;
                socket
            }
        };
        let mut body = self.body.clone();
        if let Some(rid) = &self.rid {
            rid.put(&mut body);
        }
        let request = ClientCommand::Request {
            service: Bytes::copy_from_slice(self.service.as_bytes()),
            body,
        };
        let frames = protocol::for_dealer_in(dialect, request.encode(dialect));
        if let Err(error) = sock::send(&mut socket, frames.clone(), timeout).await {
            if !reused {
                return Err(error.into());
            }
            // The kept socket's broker may have gone away meanwhile: once more on a fresh one.
            socket = new_socket(timeout);
            sock::connect(&mut socket, &self.client.broker, timeout).await?;
            sock::send(&mut socket, frames, timeout).await?;
        }
        self.socket = Some(socket);
        Ok(())
    }

    /// The next part, or `None` after the FINAL. Fails with [`ClientError::NoReply`] when a
    /// part does not come within the timeout on the last attempt.
    pub async fn next(&mut self) -> Option<Result<Part, ClientError>> {
        loop {
            let deadline = match self.core.poll(Instant::now()) {
                Next::Done => return None,
                Next::GiveUp => {
                    let attempts = self.core.attempts_made();
                    return Some(Err(ClientError::NoReply {
                        service: self.service.clone(),
                        attempts,
                    }));
                }
                Next::Resend(attempt) => {
                    self.socket = None; // a fresh one: the old attempt's parts must not arrive
                    tracing::warn!(
                        "no part from {} within {} ms, resending (attempt {attempt})",
                        self.client.broker,
                        self.client.options.timeout.as_millis()
                    );
                    if let Err(error) = self.send().await {
                        tracing::warn!("resend failed: {error}");
                    }
                    continue;
                }
                Next::Wait(deadline) => deadline,
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            let Some(socket) = self.socket.as_mut() else {
                tokio::time::sleep(wait).await;
                continue;
            };
            let frames = match sock::recv(socket, wait).await {
                Ok(Some(frames)) => frames,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!("receive failed: {error}");
                    self.socket = None;
                    continue;
                }
            };
            let Some(part) = self.parse(frames) else {
                continue;
            };
            if let Some(part) = self.core.receive(part, Instant::now()) {
                if part.is_final() {
                    // Answered whole: the next request may use this socket.
                    self.client.socket = self.socket.take();
                }
                return Some(Ok(part));
            }
        }
    }

    /// Collects the whole reply: every part's frames, in order.
    pub async fn collect(mut self) -> Result<Vec<Part>, ClientError> {
        let mut parts = Vec::new();
        while let Some(part) = self.next().await {
            parts.push(part?);
        }
        Ok(parts)
    }

    /// A part from the broker, its rid frame checked and taken off; garbage logged and
    /// dropped.
    fn parse(&self, frames: Message) -> Option<Part> {
        let dialect = self.client.dialect;
        let parsed = protocol::from_dealer_in(dialect, frames)
            .and_then(|f| ClientCommand::parse_reply_in(dialect, f));
        let (last, mut body) = match parsed {
            Ok(ClientCommand::Partial { body, .. }) => (false, body),
            Ok(ClientCommand::Reply { body, .. }) => (true, body),
            Ok(ClientCommand::Request { .. }) => return None,
            Err(error) => {
                tracing::error!("malformed reply from broker: {error}");
                return None;
            }
        };
        if let Some(rid) = &self.rid {
            match Rid::take(&mut body) {
                Some(got) if got == *rid => {}
                // A broker that passes ids through unchanged (majortomo's echoing worker) may
                // leave it off the parts: take them as they are.
                None => {}
                Some(other) => {
                    tracing::warn!("dropped a part of another request ({other})");
                    return None;
                }
            }
        }
        Some(if last {
            Part::Final(body)
        } else {
            Part::Partial(body)
        })
    }
}

/// A pipelined client for streamed replies (mdcliapi2's shape): [`send`](Self::send) never
/// waits, [`recv`](Self::recv) returns each part as it comes, tagged with the id of the
/// request it belongs to (the broker puts the request's id in front of every part). One socket,
/// no retries: a request that is never answered shows up as a `recv` timeout. A part without
/// an id (from a broker that strips it, or a 0.1 worker behind majortomo's broker that does
/// not echo it) cannot be told apart and is dropped with a warning.
pub struct AsyncStreamClient {
    socket: DealerSocket,
    options: ClientOptions,
    dialect: Dialect,
    rids: RidSource,
}

impl AsyncStreamClient {
    /// Connects to `broker` (bounded by the timeout), speaking `dialect`.
    pub async fn connect(
        broker: &str,
        options: ClientOptions,
        dialect: Dialect,
    ) -> Result<Self, ClientError> {
        common::endpoint::validate(broker).map_err(ClientError::Endpoint)?;
        let mut socket = new_socket(options.timeout);
        sock::connect(&mut socket, broker, options.timeout).await?;
        Ok(Self {
            socket,
            options,
            dialect,
            rids: RidSource::new(),
        })
    }

    /// Sends a request; returns its id, which tags every part of its reply.
    pub async fn send(&mut self, service: &str, mut body: Message) -> Result<Rid, ClientError> {
        let rid = self.rids.next_rid();
        rid.put(&mut body);
        let request = ClientCommand::Request {
            service: Bytes::copy_from_slice(service.as_bytes()),
            body,
        };
        let frames = protocol::for_dealer_in(self.dialect, request.encode(self.dialect));
        sock::send(&mut self.socket, frames, self.options.timeout).await?;
        Ok(rid)
    }

    /// The next part of any request, with that request's id; `None` if nothing came within the
    /// timeout.
    pub async fn recv(&mut self) -> Result<Option<(Rid, Part)>, ClientError> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let Some(frames) = sock::recv(&mut self.socket, wait).await? else {
                return Ok(None);
            };
            let parsed = protocol::from_dealer_in(self.dialect, frames)
                .and_then(|f| ClientCommand::parse_reply_in(self.dialect, f));
            let (last, mut body) = match parsed {
                Ok(ClientCommand::Partial { body, .. }) => (false, body),
                Ok(ClientCommand::Reply { body, .. }) => (true, body),
                Ok(ClientCommand::Request { .. }) => continue,
                Err(error) => {
                    tracing::error!("malformed reply from broker: {error}");
                    continue;
                }
            };
            let Some(rid) = Rid::take(&mut body) else {
                tracing::warn!("dropped a part without a request id");
                continue;
            };
            let part = if last {
                Part::Final(body)
            } else {
                Part::Partial(body)
            };
            return Ok(Some((rid, part)));
        }
    }
}
