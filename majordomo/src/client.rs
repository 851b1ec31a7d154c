//! Client APIs: [`Client`] (synchronous, the Guide's mdcliapi) and [`AsyncClient`] (pipelined,
//! mdcliapi2).
//!
//! Both talk MDP/0.1 client frames (`"", "MDPC01", service, body…`) over a DEALER socket.
//!
//! * [`Client::send`] waits for the reply to one request. It gives each attempt
//!   [`ClientOptions::timeout`]; on silence it throws the socket away and resends on a fresh one
//!   (new routing identity, so a late reply to the old attempt can never be mistaken for the new
//!   one), up to [`ClientOptions::retries`] attempts in total, then returns
//!   [`ClientError::NoReply`]. This is "lazy pirate" on top of Majordomo, and the retrying is
//!   the workspace's one [`RetryClient`] (`common::retry`); this module adds the MDP frames.
//! * [`AsyncClient`] keeps one socket: [`send`](AsyncClient::send) never waits for a reply, so
//!   many requests are in flight; [`recv`](AsyncClient::recv) returns replies as they come.
//!   It does not retry: a request that never gets an answer shows up as a `recv` timeout.
//!
//! # Request ids (Guide 4.11)
//! With [`Client::with_request_ids`] every logical request carries one id ([`crate::rid`]) on
//! all its attempts and fresh sockets, so this workspace's broker runs it once however often
//! it is retried: a retry joins the running request or gets the remembered reply. The rid frame
//! comes back on the reply and is stripped here; a reply with another request's id is dropped.
//! Off by default (the Guide's C broker would pass the frame on to its worker).

use crate::protocol::{self, ClientCommand, MMI_OK, MMI_SERVICE};
use crate::rid::{Rid, RidSource};
use bytes::Bytes;
use common::retry::{Event, OnFailure, ReplyCheck, Requester, RetryClient, Tries};
use common::sock::{self, SockError};
use common::{contract, Message};
use std::time::Duration;
use zeromq::{DealerSocket, Socket};

/// Guide default: how long one attempt waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(2500);
/// Guide default: attempts per request before giving up (mdcliapi counts the first one too).
pub const REQUEST_RETRIES: u32 = 3;

/// Settings of both clients.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long one attempt (including connecting) waits for a reply; for [`AsyncClient::recv`]
    /// how long it waits for the next reply.
    pub timeout: Duration,
    /// Attempts per request in total ([`Client`] only). At least one is always made.
    pub retries: u32,
}

/// The command-line flags of a synchronous client (`mdclient`, `mmiecho`, `mdadmin`): flatten
/// into a clap parser, then [`ClientArgs::connect`].
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Broker endpoint.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5555", value_parser = common::endpoint::parse)]
    pub broker: String,
    /// How long one attempt waits for its reply, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = REQUEST_TIMEOUT.as_millis() as u64,
          value_parser = common::cli::ms())]
    pub timeout_ms: u64,
    /// Attempts per request in total (the Guide's REQUEST_RETRIES) (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = REQUEST_RETRIES, value_parser = common::cli::tries())]
    pub retries: u32,
}

impl ClientArgs {
    /// The options these flags describe.
    pub fn options(&self) -> ClientOptions {
        ClientOptions {
            timeout: Duration::from_millis(self.timeout_ms),
            retries: self.retries,
        }
    }

    /// A synchronous client for the broker these flags name.
    pub fn connect(&self) -> Result<Client, ClientError> {
        Client::new(&self.broker, self.options())
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: REQUEST_TIMEOUT,
            retries: REQUEST_RETRIES,
        }
    }
}

/// What can go wrong for a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No reply after every attempt: the service is down, unknown, or too slow.
    #[error("no reply from service {service:?} after {attempts} attempt(s)")]
    NoReply {
        /// The service asked.
        service: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The broker endpoint is not `tcp://HOST:PORT` or `ipc://PATH`.
    #[error("invalid broker endpoint: {0}")]
    Endpoint(String),
    /// The socket failed (connect timeout, send timeout, library error).
    #[error(transparent)]
    Socket(#[from] SockError),
}

fn new_socket(timeout: Duration) -> DealerSocket {
    DealerSocket::with_options(sock::options(timeout, None))
}

fn request_frames(service: &str, rid: Option<&Rid>, mut body: Message) -> Message {
    if let Some(rid) = rid {
        rid.put(&mut body);
    }
    protocol::for_dealer(
        ClientCommand::Request {
            service: Bytes::copy_from_slice(service.as_bytes()),
            body,
        }
        .into_frames(),
    )
}

/// Parses what a client DEALER received into `(service, rid, body)`, logging and dropping
/// garbage. The rid frame, if any, is taken off the body.
fn parse_reply(frames: Message) -> Option<(Bytes, Option<Rid>, Message)> {
    let parsed = protocol::from_dealer(frames).and_then(ClientCommand::parse_reply);
    match parsed {
        Ok(
            ClientCommand::Reply { service, mut body }
            | ClientCommand::Request { service, mut body },
        ) => {
            let rid = Rid::take(&mut body);
            Some((service, rid, body))
        }
        Err(error) => {
            tracing::error!("malformed reply from broker: {error}");
            None
        }
    }
}

/// The synchronous Majordomo client: one request at a time, retried on a fresh socket.
///
/// ```no_run
/// # async fn demo() -> Result<(), majordomo::client::ClientError> {
/// use majordomo::client::{Client, ClientOptions};
/// let mut client = Client::new("tcp://localhost:5555", ClientOptions::default())?;
/// let reply = client.send("echo", common::Message::from_frames(["Hello world"])).await?;
/// # Ok(()) }
/// ```
pub struct Client {
    options: ClientOptions,
    retry: RetryClient<DealerSocket>,
    rids: Option<RidSource>,
}

impl Client {
    /// A client of the broker at `broker`. Connects lazily, on the first request.
    pub fn new(broker: &str, options: ClientOptions) -> Result<Self, ClientError> {
        common::endpoint::validate(broker).map_err(ClientError::Endpoint)?;
        let tries = Tries::new(options.timeout, options.retries, 1);
        Ok(Self {
            options,
            retry: RetryClient::new(
                vec![broker.to_owned()],
                Requester::new(tries, ReplyCheck::Any, OnFailure::WaitOut),
            ),
            rids: None,
        })
    }

    /// Turns request ids on or off ([module docs](self#request-ids-guide-411)). With them on,
    /// each [`send`](Self::send) is one logical request with a fresh, unguessable id
    /// ([`RidSource`]).
    pub fn with_request_ids(mut self, on: bool) -> Self {
        self.rids = on.then(RidSource::new);
        self
    }

    /// The id the next [`send`](Self::send) will use, taken now (for callers that keep one
    /// logical request across several `send` calls, with [`send_with_rid`](Self::send_with_rid)).
    /// `None` when request ids are off.
    pub fn next_rid(&mut self) -> Option<Rid> {
        self.rids.as_mut().map(RidSource::next_rid)
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Requests resent after a timeout, over this client's life (for the summary line).
    pub fn resends(&self) -> u64 {
        self.retry.core().summary().retries
    }

    /// Sends `body` to `service` and returns the reply body.
    ///
    /// Each attempt gets [`ClientOptions::timeout`]; after a silent attempt the socket is
    /// replaced and the request sent again, [`ClientOptions::retries`] attempts in all.
    pub async fn send(&mut self, service: &str, body: Message) -> Result<Message, ClientError> {
        let rid = self.next_rid();
        self.send_with_rid(service, rid.as_ref(), body).await
    }

    /// Like [`send`](Self::send), with the request id given (`None`: no id). Every attempt
    /// carries the same id.
    pub async fn send_with_rid(
        &mut self,
        service: &str,
        rid: Option<&Rid>,
        body: Message,
    ) -> Result<Message, ClientError> {
        let request = request_frames(service, rid, body);
        let ms = self.options.timeout.as_millis();
        let tries = self.retry.core().schedule().total();
        // The reply must come from the service asked, for this request (a fresh socket per
        // retry already keeps a late reply to an old try away).
        let filter = |frames| match parse_reply(frames) {
            Some((_, Some(got), _)) if rid.is_some_and(|want| *want != got) => {
                tracing::warn!("dropped a reply to another request ({got})");
                None
            }
            Some((from, _, body)) if from == service.as_bytes() => Some(body),
            Some((from, _, _)) => {
                let from = String::from_utf8_lossy(&from);
                tracing::warn!("dropped a reply from {from} while waiting for {service}");
                None
            }
            None => None,
        };
        let log = |event: &Event| match event {
            // A failure at once (a reset, say, from a proxy in front of a dead broker) must not
            // burn every retry in a few milliseconds: the try still lasts its timeout.
            Event::Failed { error, .. } => tracing::warn!(
                "request to {service} failed: {}; waiting out the attempt's {ms} ms",
                error.sock()
            ),
            Event::Retrying { attempt, .. } => tracing::warn!(
                "no reply from {service} within {ms} ms, retrying ({attempt}/{tries})"
            ),
            _ => {}
        };
        match self.retry.request_with(request, filter, log).await {
            Ok(reply) => Ok(reply),
            Err(abandoned) => Err(ClientError::NoReply {
                service: service.to_owned(),
                attempts: abandoned.tries,
            }),
        }
    }

    /// Asks the broker (8/MMI `mmi.service`) whether any worker offers `service`.
    pub async fn service_available(&mut self, service: &str) -> Result<bool, ClientError> {
        let reply = self
            .send(MMI_SERVICE, Message::from_frames([service.to_owned()]))
            .await?;
        Ok(reply.first().is_some_and(|code| code == MMI_OK.as_bytes()))
    }
}

/// The asynchronous Majordomo client: many requests in flight on one DEALER socket.
///
/// Replies come back in the order the broker gets them from workers, which with several workers
/// is not the order of the requests: put a correlation id in the body if you need one.
pub struct AsyncClient {
    broker: String,
    options: ClientOptions,
    socket: DealerSocket,
    rids: Option<RidSource>,
}

impl AsyncClient {
    /// Connects to the broker at `broker`, waiting at most [`ClientOptions::timeout`].
    pub async fn connect(broker: &str, options: ClientOptions) -> Result<Self, ClientError> {
        common::endpoint::validate(broker).map_err(ClientError::Endpoint)?;
        let mut socket = new_socket(options.timeout);
        sock::connect(&mut socket, broker, options.timeout).await?;
        Ok(Self {
            broker: broker.to_owned(),
            options,
            socket,
            rids: None,
        })
    }

    /// Replaces the socket with a fresh one (new identity). Replies to requests sent on the old
    /// socket are lost; use it after a broker restart.
    pub async fn reconnect(&mut self) -> Result<(), ClientError> {
        let mut socket = new_socket(self.options.timeout);
        sock::connect(&mut socket, &self.broker, self.options.timeout).await?;
        self.socket = socket;
        Ok(())
    }

    /// Turns request ids on or off ([module docs](self#request-ids-guide-411)): each
    /// [`send`](Self::send) then carries a fresh id, and [`recv_with_rid`](Self::recv_with_rid)
    /// says which request a reply answers.
    pub fn with_request_ids(mut self, on: bool) -> Self {
        self.rids = on.then(RidSource::new);
        self
    }

    /// Queues a request for `service`; does not wait for the reply. Returns its id when
    /// request ids are on.
    pub async fn send(&mut self, service: &str, body: Message) -> Result<Option<Rid>, ClientError> {
        let rid = self.rids.as_mut().map(RidSource::next_rid);
        self.send_with_rid(service, rid.as_ref(), body).await?;
        Ok(rid)
    }

    /// Queues a request with the id given (e.g. to resend a request under its first id).
    pub async fn send_with_rid(
        &mut self,
        service: &str,
        rid: Option<&Rid>,
        body: Message,
    ) -> Result<(), ClientError> {
        let frames = request_frames(service, rid, body);
        Ok(sock::send(&mut self.socket, frames, self.options.timeout).await?)
    }

    /// The next reply as `(service, body)`, or `None` if none came within
    /// [`ClientOptions::timeout`].
    pub async fn recv(&mut self) -> Result<Option<(String, Message)>, ClientError> {
        self.recv_timeout(self.options.timeout).await
    }

    /// Like [`recv`](Self::recv) with an explicit timeout.
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(String, Message)>, ClientError> {
        let reply = self.recv_with_rid(timeout).await?;
        Ok(reply.map(|(service, _, body)| (service, body)))
    }

    /// The next reply as `(service, request id, body)` (the id if the request had one), or
    /// `None` if none came within `timeout`.
    pub async fn recv_with_rid(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(String, Option<Rid>, Message)>, ClientError> {
        let deadline = contract::saturating_add(contract::now(), timeout);
        loop {
            let left = deadline.saturating_duration_since(contract::now());
            let Some(frames) = sock::recv(&mut self.socket, left).await? else {
                return Ok(None);
            };
            if let Some((service, rid, body)) = parse_reply(frames) {
                let service = String::from_utf8_lossy(&service).into_owned();
                return Ok(Some((service, rid, body)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Other crates (Titanic) run the clients and workers inside spawned tasks.
    #[test]
    fn clients_workers_and_their_futures_are_send() {
        let mut client = Client::new("tcp://127.0.0.1:1", ClientOptions::default()).unwrap();
        assert_send(&client);
        let request = client.send("echo", Message::new());
        assert_send(&request);
        drop(request);
        let available = client.service_available("echo");
        assert_send(&available);
        drop(available);
        let connect = AsyncClient::connect("tcp://127.0.0.1:1", ClientOptions::default());
        assert_send(&connect);
        fn async_ops(c: &mut AsyncClient) {
            assert_send(&c.send("echo", Message::new()));
            assert_send(&c.recv());
        }
        let _ = async_ops;
        fn worker_ops(w: &mut crate::worker::Worker) {
            assert_send(&w.recv());
            assert_send(&w.run(|body| async move { body }));
        }
        let _ = worker_ops;
        fn worker_is_send(w: crate::worker::Worker) {
            assert_send(&w);
            assert_send(&w.shutdown());
        }
        let _ = worker_is_send;
    }
}
