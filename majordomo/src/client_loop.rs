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
//!
//! # A broker pair (Binary Star)
//! [`Client::new_pair`] and [`AsyncClient::new_pair`] take two brokers, primary first, and fail
//! over between them as Binary Star's client does ([`binary_star::failover`]): on silence they
//! switch to the other broker at once and, while it may still be passive
//! ([`PairOptions::settle`], the pair's peer expiry), resend every [`PairOptions::vote`]; the
//! first request the passive broker gets after its peer expired is the vote that makes it take
//! over. Request ids are always on (they cannot be turned off): a request resent to the other
//! broker keeps its id, so a broker that knows the id joins the running request or answers it
//! from memory instead of running it again. [`ClientOptions::retries`] counts *turns*: one
//! broker's chance each, the first lasting [`ClientOptions::timeout`], each later one a failover,
//! `settle` of votes then `timeout`; a request is reported failed after its last turn (so with
//! `retries = 1` a request never goes to the second broker).
//!
//! * [`Client`] runs on the same [`RetryClient`], with [`binary_star::failover::Plan`] as its
//!   schedule: a request fails after `timeout + (retries - 1) × (settle + timeout)`.
//! * [`AsyncClient`] keeps every outstanding request until it is answered and, when the broker
//!   in use is silent for `timeout`, carries them all to the other one under their ids
//!   ([`pair`], its pure core); a reply to a request answered already is dropped, never
//!   delivered twice, and [`recv_outcome`](AsyncClient::recv_outcome) reports a request that had
//!   all its turns as [`Answer::Failed`].
//!
//! Log lines (stable): `W: no reply from <endpoint> within <ms> ms, failing over to <other>`
//! (the asynchronous client adds `: resending <n> requests`), or `W: request to <endpoint>
//! failed (<why>), failing over to <other>` when the connection failed; then, on the first
//! answer from the other broker, `I: answered by <endpoint> after failover (<ms> ms)` (from the
//! request's first send, or for the asynchronous client from the start of the silence).
//! Each switch logs once; the resends between (votes) are `D:` lines.

pub mod stream;

use crate::client::pair::{self, PairCore};
use crate::client::{ClientOptions, PairOptions, Route};
#[cfg(feature = "cli")]
use crate::client::{REQUEST_RETRIES, REQUEST_TIMEOUT, SETTLE_DELAY};
use crate::protocol::{self, ClientCommand, MMI_OK, MMI_SERVICE};
use crate::rid::{Rid, RidSource};
use binary_star::failover::Plan;
use bytes::Bytes;
use common::contract::Core;
use common::retry::{Event, OnFailure, ReplyCheck, Requester, RetryClient, Tries};
use common::sock::{self, SockError};
use common::{contract, Message};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, Socket, SocketRecv};

/// The broker flags every Majordomo client shares (`mdclient`, `mdclient2`, `mmiecho`,
/// `mdadmin`): one broker, or a pair.
#[cfg(feature = "cli")]
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Broker endpoint. Give it twice for a broker pair, primary first (see the README's
    /// "Clients of a broker pair").
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5555", value_parser = common::endpoint::parse)]
    pub broker: Vec<String>,
    /// With two brokers: how long the other broker may need before it serves (the pair's peer
    /// expiry), while the client resends every 250 ms, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = SETTLE_DELAY.as_millis() as u64,
          value_parser = common::cli::ms())]
    pub settle_ms: u64,
}

#[cfg(feature = "cli")]
impl BrokerArgs {
    /// The pair, if two brokers were given; `None` for one; an error for more.
    pub fn pair(&self) -> Result<Option<[&str; 2]>, ClientError> {
        match self.broker.as_slice() {
            [_] => Ok(None),
            [primary, backup] => Ok(Some([primary, backup])),
            other => Err(ClientError::Brokers(other.len())),
        }
    }

    /// The pair timing these flags describe.
    pub fn pair_options(&self) -> PairOptions {
        PairOptions {
            settle: Duration::from_millis(self.settle_ms),
            ..PairOptions::default()
        }
    }
}

/// The command-line flags of a synchronous client (`mdclient`, `mmiecho`, `mdadmin`): flatten
/// into a clap parser, then [`ClientArgs::connect`].
#[cfg(feature = "cli")]
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub brokers: BrokerArgs,
    /// How long one attempt waits for its reply, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = REQUEST_TIMEOUT.as_millis() as u64,
          value_parser = common::cli::ms())]
    pub timeout_ms: u64,
    /// Attempts per request in total (the Guide's REQUEST_RETRIES); with two brokers, turns:
    /// the first broker's timeout, then one failover each (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = REQUEST_RETRIES, value_parser = common::cli::tries())]
    pub retries: u32,
}

#[cfg(feature = "cli")]
impl ClientArgs {
    /// The options these flags describe.
    pub fn options(&self) -> ClientOptions {
        ClientOptions {
            timeout: Duration::from_millis(self.timeout_ms),
            retries: self.retries,
        }
    }

    /// A synchronous client for the broker, or the pair, these flags name.
    pub fn connect(&self) -> Result<Client, ClientError> {
        Client::with_brokers(
            &self.brokers.broker,
            self.options(),
            self.brokers.pair_options(),
        )
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
    /// More brokers than a pair were given.
    #[error("a client takes one broker or a pair (two --broker), not {0}")]
    Brokers(usize),
    /// A request to a broker pair had all its turns without an answer ([`AsyncClient`]).
    #[error("no reply from either broker to request {rid} for {service:?} after {sends} send(s)")]
    GaveUp {
        /// The service asked.
        service: String,
        /// The request's id.
        rid: Rid,
        /// How often it was sent.
        sends: u32,
    },
    /// The socket failed (connect timeout, send timeout, library error).
    #[error(transparent)]
    Socket(#[from] SockError),
}

pub(crate) fn new_socket(timeout: Duration) -> DealerSocket {
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
            | ClientCommand::Request { service, mut body }
            | ClientCommand::Partial { service, mut body },
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
/// # async fn demo() -> Result<(), majordomo::ClientError> {
/// use majordomo::{Client, ClientOptions, PairOptions};
/// let mut client = Client::new("tcp://localhost:5555", ClientOptions::default())?;
/// let reply = client.send("echo", common::Message::from_frames(["Hello world"])).await?;
/// // A broker pair: fails over between the two, request ids always on.
/// let brokers = ["tcp://localhost:5555", "tcp://localhost:5556"];
/// let mut pair = Client::new_pair(brokers, ClientOptions::default(), PairOptions::default())?;
/// let reply = pair.send("echo", common::Message::from_frames(["Hello world"])).await?;
/// # Ok(()) }
/// ```
pub struct Client {
    options: ClientOptions,
    retry: RetryClient<DealerSocket, Route>,
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
                Requester::new(Route::One(tries), ReplyCheck::Any, OnFailure::WaitOut),
            ),
            rids: None,
        })
    }

    /// A client of one broker ([`new`](Self::new)) or of a pair ([`new_pair`](Self::new_pair)),
    /// by how many endpoints are given; more than two is an error. For programs that take
    /// `--broker` once or twice (Titanic, say).
    pub fn with_brokers<S: AsRef<str>>(
        brokers: &[S],
        options: ClientOptions,
        pair: PairOptions,
    ) -> Result<Self, ClientError> {
        match brokers {
            [one] => Self::new(one.as_ref(), options),
            [primary, backup] => Self::new_pair([primary.as_ref(), backup.as_ref()], options, pair),
            other => Err(ClientError::Brokers(other.len())),
        }
    }

    /// A client of the broker pair `[primary, backup]` ([module
    /// docs](self#a-broker-pair-binary-star)), with request ids on. Connects lazily, on the
    /// first request.
    pub fn new_pair(
        brokers: [&str; 2],
        options: ClientOptions,
        pair: PairOptions,
    ) -> Result<Self, ClientError> {
        for broker in brokers {
            common::endpoint::validate(broker).map_err(ClientError::Endpoint)?;
        }
        let plan = Plan::new(pair.policy(&options), contract::now());
        Ok(Self {
            options,
            retry: RetryClient::new(
                brokers.map(str::to_owned).into(),
                // The plan paces its tries itself: a broker that refuses at once is left at once.
                Requester::new(Route::Pair(plan), ReplyCheck::Any, OnFailure::Next),
            ),
            rids: Some(RidSource::new()),
        })
    }

    /// True for a client of a broker pair.
    pub fn is_pair(&self) -> bool {
        matches!(self.retry.core().schedule(), Route::Pair(_))
    }

    /// The broker the next request goes to first (for a pair: the one that answered last).
    pub fn broker(&self) -> &str {
        let index = match self.retry.core().schedule() {
            Route::One(_) => 0,
            Route::Pair(plan) => plan.settled(),
        };
        &self.retry.endpoints()[index]
    }

    /// Turns request ids on or off ([module docs](self#request-ids-guide-411)). With them on,
    /// each [`send`](Self::send) is one logical request with a fresh, unguessable id
    /// ([`RidSource`]). A pair client ignores `false`: without ids a failover could run a
    /// request twice.
    pub fn with_request_ids(mut self, on: bool) -> Self {
        if !self.is_pair() {
            self.rids = on.then(RidSource::new);
        }
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

    /// Requests resent after a timeout, over this client's life (for the summary line). For a
    /// pair this includes the votes.
    pub fn resends(&self) -> u64 {
        self.retry.core().summary().retries
    }

    /// Sends `body` to `service` and returns the reply body.
    ///
    /// Each attempt gets [`ClientOptions::timeout`]; after a silent attempt the socket is
    /// replaced and the request sent again, [`ClientOptions::retries`] attempts in all (for a
    /// pair: the failover plan of the [module docs](self#a-broker-pair-binary-star)).
    pub async fn send(&mut self, service: &str, body: Message) -> Result<Message, ClientError> {
        let rid = self.next_rid();
        self.send_with_rid(service, rid.as_ref(), body).await
    }

    /// Like [`send`](Self::send), with the request id given (`None`: no id; a pair client then
    /// takes a fresh one). Every attempt carries the same id.
    pub async fn send_with_rid(
        &mut self,
        service: &str,
        rid: Option<&Rid>,
        body: Message,
    ) -> Result<Message, ClientError> {
        let fresh = match rid {
            None if self.is_pair() => self.next_rid(),
            _ => None,
        };
        let rid = rid.or(fresh.as_ref());
        let request = request_frames(service, rid, body);
        let ms = self.options.timeout.as_millis();
        let pair = self.is_pair();
        let brokers = self.retry.endpoints().to_vec();
        let tries = match self.retry.core().schedule() {
            Route::One(tries) => tries.total(),
            Route::Pair(_) => 0,
        };
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
        // Why the current try of a pair ended early, for the failover line.
        let mut failure = None;
        let mut log = |event: &Event| match event {
            Event::Failed { endpoint, error } if pair => {
                tracing::debug!("request to {} failed: {}", brokers[*endpoint], error.sock());
                failure = Some(error.sock().to_string());
            }
            Event::Retrying { from, to, .. } if pair && from != to => {
                let (from, to) = (&brokers[*from], &brokers[*to]);
                match failure.take() {
                    Some(why) => {
                        tracing::warn!("request to {from} failed ({why}), failing over to {to}")
                    }
                    None => {
                        tracing::warn!("no reply from {from} within {ms} ms, failing over to {to}")
                    }
                }
            }
            Event::Retrying { to, attempt, .. } if pair => {
                failure = None;
                tracing::debug!(
                    "no reply from {} yet, resending (vote, try {attempt})",
                    brokers[*to]
                );
            }
            Event::Answered {
                endpoint,
                waited,
                switched: true,
                ..
            } if pair => tracing::info!(
                "answered by {} after failover ({} ms)",
                brokers[*endpoint],
                waited.as_millis()
            ),
            // A failure at once (a reset, say, from a proxy in front of a dead broker) must not
            // burn every retry in a few milliseconds: the try still lasts its timeout.
            Event::Failed { error, .. } if !pair => tracing::warn!(
                "request to {service} failed: {}; waiting out the attempt's {ms} ms",
                error.sock()
            ),
            Event::Retrying { attempt, .. } if !pair => tracing::warn!(
                "no reply from {service} within {ms} ms, retrying ({attempt}/{tries})"
            ),
            _ => {}
        };
        match self.retry.request_with(request, filter, &mut log).await {
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

/// What a request of an [`AsyncClient`] came to, as [`AsyncClient::recv_outcome`] returns it:
/// its reply, or its failure after every turn. (Not [`crate::protocol::Received`], a message
/// as the broker received it.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A reply, to a request not answered before.
    Reply {
        /// The service that answered.
        service: String,
        /// The request's id, if it had one.
        rid: Option<Rid>,
        /// The reply body.
        body: Message,
        /// How often the request was sent (1 for a one-broker client, which does not resend).
        sends: u32,
    },
    /// A request to a broker pair that had all its turns without an answer: it failed.
    Failed {
        /// The service asked.
        service: String,
        /// The request's id.
        rid: Rid,
        /// The request body, as sent.
        body: Message,
        /// How often it was sent.
        sends: u32,
    },
}

/// The asynchronous Majordomo client: many requests in flight on one DEALER socket.
///
/// Replies come back in the order the broker gets them from workers, which with several workers
/// is not the order of the requests: put a correlation id in the body if you need one.
///
/// With one broker it does not retry: a request that never gets an answer shows up as a `recv`
/// timeout. With a pair ([`new_pair`](Self::new_pair)) it keeps every request until it is
/// answered or has had its turns, and fails over with all of them ([module
/// docs](self#a-broker-pair-binary-star)).
pub struct AsyncClient {
    options: ClientOptions,
    rids: Option<RidSource>,
    link: Link,
}

enum Link {
    One {
        broker: String,
        socket: DealerSocket,
    },
    Pair(Box<PairLink>),
}

/// The shell of a [`PairCore`]: the socket to the broker in use, the clock, the log lines.
struct PairLink {
    brokers: [String; 2],
    core: PairCore,
    socket: Option<(usize, DealerSocket)>,
    /// Requests given up, not yet handed to the caller.
    failed: VecDeque<Answer>,
    send_timeout: Duration,
}

impl AsyncClient {
    /// Connects to the broker at `broker`, waiting at most [`ClientOptions::timeout`].
    pub async fn connect(broker: &str, options: ClientOptions) -> Result<Self, ClientError> {
        common::endpoint::validate(broker).map_err(ClientError::Endpoint)?;
        let mut socket = new_socket(options.timeout);
        sock::connect(&mut socket, broker, options.timeout).await?;
        Ok(Self {
            options,
            rids: None,
            link: Link::One {
                broker: broker.to_owned(),
                socket,
            },
        })
    }

    /// A client of the broker pair `[primary, backup]`, request ids on. Connects on the first
    /// send, to the primary; see the [module docs](self#a-broker-pair-binary-star). The
    /// requests it keeps until answered are bounded by the caller (how many it has in flight).
    pub fn new_pair(
        brokers: [&str; 2],
        options: ClientOptions,
        pair: PairOptions,
    ) -> Result<Self, ClientError> {
        for broker in brokers {
            common::endpoint::validate(broker).map_err(ClientError::Endpoint)?;
        }
        let core = PairCore::new(pair::Policy {
            timeout: options.timeout,
            settle: pair.settle,
            vote: pair.vote,
            turns: options.retries,
        });
        let link = PairLink {
            brokers: brokers.map(str::to_owned),
            core,
            socket: None,
            failed: VecDeque::new(),
            send_timeout: options.timeout,
        };
        Ok(Self {
            options,
            rids: Some(RidSource::new()),
            link: Link::Pair(Box::new(link)),
        })
    }

    /// True for a client of a broker pair.
    pub fn is_pair(&self) -> bool {
        matches!(self.link, Link::Pair(_))
    }

    /// Replaces the socket with a fresh one (new identity). With one broker, replies to
    /// requests sent on the old socket are lost; use it after a broker restart. A pair client
    /// resends what is outstanding on the new socket.
    pub async fn reconnect(&mut self) -> Result<(), ClientError> {
        match &mut self.link {
            Link::One { broker, socket } => {
                let mut fresh = new_socket(self.options.timeout);
                sock::connect(&mut fresh, broker, self.options.timeout).await?;
                *socket = fresh;
            }
            Link::Pair(link) => {
                link.core.handle_reconnect(contract::now());
                link.pump().await;
            }
        }
        Ok(())
    }

    /// Turns request ids on or off ([module docs](self#request-ids-guide-411)): each
    /// [`send`](Self::send) then carries a fresh id, and [`recv_with_rid`](Self::recv_with_rid)
    /// says which request a reply answers. A pair client ignores `false`: its failover resends
    /// by id.
    pub fn with_request_ids(mut self, on: bool) -> Self {
        if !self.is_pair() {
            self.rids = on.then(RidSource::new);
        }
        self
    }

    /// Queues a request for `service`; does not wait for the reply. Returns its id when
    /// request ids are on (always for a pair).
    pub async fn send(&mut self, service: &str, body: Message) -> Result<Option<Rid>, ClientError> {
        let rid = self.rids.as_mut().map(RidSource::next_rid);
        self.send_with_rid(service, rid.as_ref(), body).await?;
        Ok(rid)
    }

    /// Queues a request with the id given (e.g. to resend a request under its first id). A
    /// pair client takes a fresh id for `None`.
    pub async fn send_with_rid(
        &mut self,
        service: &str,
        rid: Option<&Rid>,
        body: Message,
    ) -> Result<(), ClientError> {
        match &mut self.link {
            Link::One { socket, .. } => {
                let frames = request_frames(service, rid, body);
                Ok(sock::send(socket, frames, self.options.timeout).await?)
            }
            Link::Pair(link) => {
                let rid = match rid {
                    Some(rid) => rid.clone(),
                    None => self.rids.get_or_insert_default().next_rid(),
                };
                link.core
                    .handle_send(rid, service.to_owned(), body, contract::now());
                link.pump().await;
                Ok(())
            }
        }
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
    /// `None` if none came within `timeout`. A pair client returns `None` at once when nothing
    /// is outstanding, and a request it gave up on as [`ClientError::GaveUp`] (use
    /// [`recv_outcome`](Self::recv_outcome) to get it as a value).
    pub async fn recv_with_rid(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(String, Option<Rid>, Message)>, ClientError> {
        let deadline = contract::saturating_add(contract::now(), timeout);
        match &mut self.link {
            Link::One { socket, .. } => loop {
                let left = deadline.saturating_duration_since(contract::now());
                let Some(frames) = sock::recv(socket, left).await? else {
                    return Ok(None);
                };
                if let Some((service, rid, body)) = parse_reply(frames) {
                    let service = String::from_utf8_lossy(&service).into_owned();
                    return Ok(Some((service, rid, body)));
                }
            },
            Link::Pair(link) => match link.next(Some(deadline)).await {
                Some(Answer::Reply {
                    service, rid, body, ..
                }) => Ok(Some((service, rid, body))),
                Some(Answer::Failed {
                    service,
                    rid,
                    sends,
                    ..
                }) => Err(ClientError::GaveUp {
                    service,
                    rid,
                    sends,
                }),
                None => Ok(None),
            },
        }
    }

    /// The next outcome: a reply, or (pair client) a request that had all its turns without an
    /// answer. `None`: with one broker, no reply came within [`ClientOptions::timeout`]; with a
    /// pair, nothing is outstanding (a pair client waits, failing over as needed, until a
    /// request is answered or given up).
    pub async fn recv_outcome(&mut self) -> Result<Option<Answer>, ClientError> {
        match &mut self.link {
            Link::One { .. } => {
                let reply = self.recv_with_rid(self.options.timeout).await?;
                Ok(reply.map(|(service, rid, body)| Answer::Reply {
                    service,
                    rid,
                    body,
                    sends: 1,
                }))
            }
            Link::Pair(link) => Ok(link.next(None).await),
        }
    }
}

impl PairLink {
    /// The next reply or give-up, failing over as the core says; `None` when nothing is
    /// outstanding or `deadline` passed.
    async fn next(&mut self, deadline: Option<Instant>) -> Option<Answer> {
        loop {
            self.pump().await;
            if let Some(failed) = self.failed.pop_front() {
                return Some(failed);
            }
            if self.core.outstanding() == 0 || deadline.is_some_and(|d| contract::now() >= d) {
                return None;
            }
            let wake = match (self.core.poll_timeout(), deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let received = match &mut self.socket {
                Some((_, socket)) => tokio::select! {
                    received = socket.recv() => Some(received),
                    () = contract::sleep_until(wake) => None,
                },
                None => {
                    contract::sleep_until(wake).await;
                    None
                }
            };
            let frames = match received {
                None => continue,
                Some(Ok(frames)) => Message::from(frames),
                Some(Err(error)) => {
                    tracing::debug!("receive failed: {error}");
                    self.socket = None;
                    self.core.handle_broker_lost(contract::now());
                    continue;
                }
            };
            tracing::debug!("received reply:\n{}", frames.dump());
            let Some((service, rid, body)) = parse_reply(frames) else {
                continue;
            };
            let Some(rid) = rid else {
                tracing::warn!("dropped a reply without a request id");
                continue;
            };
            self.core.handle_reply(&rid, contract::now());
            if let Some(answered) = self.core.poll_answered() {
                // The resends an answer from a new broker triggers go out before it is handed on.
                self.pump().await;
                return Some(Answer::Reply {
                    service: String::from_utf8_lossy(&service).into_owned(),
                    rid: Some(rid),
                    body,
                    sends: answered.sends,
                });
            }
            self.log_events();
        }
    }

    /// Carries out everything the core asks, until it asks nothing more (or gave a request up,
    /// which the caller hears of first).
    async fn pump(&mut self) {
        loop {
            self.core.handle_timeout(contract::now());
            let mut any = false;
            while let Some(transmit) = self.core.poll_transmit() {
                any = true;
                self.carry_out(transmit).await;
            }
            self.log_events();
            if !any || !self.failed.is_empty() {
                return;
            }
        }
    }

    async fn carry_out(&mut self, transmit: pair::Transmit) {
        match transmit {
            pair::Transmit::Open { broker, until } => {
                self.socket = None;
                let bound = until
                    .saturating_duration_since(contract::now())
                    .max(Duration::from_millis(1));
                // The crate's own connect timeout is longer: the error reported is always ours.
                let mut socket = new_socket(bound.saturating_mul(2));
                match sock::connect(&mut socket, &self.brokers[broker], bound).await {
                    Ok(()) => self.socket = Some((broker, socket)),
                    Err(error) => {
                        tracing::debug!("cannot reach {}: {error}", self.brokers[broker]);
                        self.core.handle_broker_lost(contract::now());
                    }
                }
            }
            pair::Transmit::Send {
                broker,
                rid,
                service,
                body,
            } => {
                let Some((_, socket)) = self.socket.as_mut().filter(|(at, _)| *at == broker) else {
                    return;
                };
                let frames = request_frames(&service, Some(&rid), body);
                tracing::debug!("sending request:\n{}", frames.dump());
                if let Err(error) = sock::send(socket, frames, self.send_timeout).await {
                    tracing::debug!("send to {} failed: {error}", self.brokers[broker]);
                    self.socket = None;
                    self.core.handle_broker_lost(contract::now());
                }
            }
        }
    }

    fn log_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            match event {
                pair::Event::FailedOver {
                    from,
                    to,
                    silent,
                    carried,
                    gave_up,
                } => {
                    let (from, to) = (&self.brokers[from], &self.brokers[to]);
                    let ms = silent.as_millis();
                    let gave_up = match gave_up {
                        0 => String::new(),
                        n => format!(" ({n} failed: no turns left)"),
                    };
                    tracing::warn!(
                        "no reply from {from} within {ms} ms, failing over to {to}: \
                         resending {carried} requests{gave_up}"
                    );
                }
                pair::Event::GaveUp {
                    rid,
                    service,
                    body,
                    sends,
                } => {
                    tracing::debug!("request {rid} for {service} failed after {sends} sends");
                    self.failed.push_back(Answer::Failed {
                        service,
                        rid,
                        body,
                        sends,
                    });
                }
                pair::Event::Voted { broker, rid } => {
                    tracing::debug!("voting at {} with request {rid}", self.brokers[broker])
                }
                pair::Event::Resent { broker, count } => tracing::debug!(
                    "resent {count} requests to {} under their ids",
                    self.brokers[broker]
                ),
                pair::Event::Recovered { broker, waited } => tracing::info!(
                    "answered by {} after failover ({} ms)",
                    self.brokers[broker],
                    waited.as_millis()
                ),
                pair::Event::Duplicate { rid } => {
                    tracing::debug!("dropped a duplicate reply to request {rid} (answered already)")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use binary_star::failover::Strategy;
    use clap::Parser;

    fn assert_send<T: Send>(_: &T) {}

    const MS: Duration = Duration::from_millis(1);

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        client: ClientArgs,
    }

    fn flags(args: &[&str]) -> Result<ClientArgs, clap::Error> {
        Flags::try_parse_from(std::iter::once("mdclient").chain(args.iter().copied()))
            .map(|f| f.client)
    }

    #[test]
    fn one_broker_or_a_pair_from_the_flags_never_three() {
        let one = flags(&[]).unwrap();
        assert_eq!(one.brokers.pair().unwrap(), None);
        assert!(!one.connect().unwrap().is_pair());
        let two = flags(&["--broker", "tcp://a:1", "--broker", "tcp://b:2"]).unwrap();
        assert_eq!(
            two.brokers.pair().unwrap(),
            Some(["tcp://a:1", "tcp://b:2"])
        );
        assert_eq!(two.brokers.pair_options().settle, SETTLE_DELAY);
        let client = two.connect().unwrap();
        assert!(client.is_pair());
        assert_eq!(client.broker(), "tcp://a:1", "the primary first");
        let three = [
            "--broker",
            "tcp://a:1",
            "--broker",
            "tcp://b:2",
            "--broker",
            "tcp://c:3",
        ];
        let error = flags(&three).unwrap().connect().err().unwrap();
        assert!(matches!(error, ClientError::Brokers(3)), "{error}");
        assert!(
            error.to_string().contains("one broker or a pair"),
            "{error}"
        );
        let settle = flags(&["--settle-ms", "500"]).unwrap();
        assert_eq!(settle.brokers.pair_options().settle, 500 * MS);
        assert!(flags(&["--settle-ms", "0"]).is_err());
    }

    #[test]
    fn a_pair_client_always_sends_request_ids() {
        let brokers = ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"];
        let options = ClientOptions::default();
        let mut client = Client::new_pair(brokers, options.clone(), PairOptions::default())
            .unwrap()
            .with_request_ids(false);
        assert!(client.next_rid().is_some(), "ids cannot be turned off");
        let mut single = Client::new(brokers[0], options.clone()).unwrap();
        assert!(single.next_rid().is_none(), "off by default for one broker");
        let pipelined = AsyncClient::new_pair(brokers, options, PairOptions::default())
            .unwrap()
            .with_request_ids(false);
        assert!(pipelined.rids.is_some());
        let bad = Client::new_pair(
            ["tcp://a:1", "nowhere"],
            ClientOptions::default(),
            PairOptions::default(),
        );
        assert!(matches!(bad, Err(ClientError::Endpoint(_))));
    }

    #[test]
    fn retries_are_turns_for_a_pair_one_timeout_then_settle_and_timeout_each() {
        let pair = PairOptions::default();
        let with = |retries| ClientOptions {
            retries,
            ..ClientOptions::default()
        };
        // 2.5 s on the primary, then 2 s of votes and 2.5 s on the backup, twice.
        assert_eq!(pair.give_up(&with(3)), 11_500 * MS);
        assert_eq!(pair.give_up(&with(1)), 2_500 * MS, "one turn: no failover");
        let huge = ClientOptions {
            timeout: Duration::from_millis(u64::MAX),
            retries: u32::MAX,
        };
        assert_eq!(pair.give_up(&huge), Duration::MAX);
        let policy = pair.policy(&with(2));
        assert_eq!(policy.strategy, Strategy::Eager);
        assert_eq!(
            (policy.timeout, policy.settle, policy.vote),
            (2500 * MS, 2000 * MS, 250 * MS)
        );
    }

    /// The schedule of a pair client in virtual time: the primary for `timeout`, then the
    /// backup (votes for `settle`, then a full `timeout`), then given up after its turns.
    #[test]
    fn a_pair_request_fails_over_once_per_turn_then_is_abandoned() {
        let t0 = Instant::now();
        let options = ClientOptions {
            timeout: 1000 * MS,
            retries: 2,
        };
        let pair = PairOptions::default();
        let plan = Plan::new(pair.policy(&options), t0);
        let mut core = Requester::new(Route::Pair(plan), ReplyCheck::Any, OnFailure::Next);
        core.handle_request(Message::from_frames(["1"]), t0);
        let mut sends = Vec::new();
        let mut now = t0;
        let abandoned = loop {
            while let Some(t) = core.poll_transmit() {
                sends.push((t.endpoint, t.at - t0));
            }
            if let Some(tries) = std::iter::from_fn(|| core.poll_event()).find_map(|e| match e {
                Event::Abandoned { tries, .. } => Some(tries),
                _ => None,
            }) {
                break tries;
            }
            now = core.poll_timeout().unwrap();
            core.handle_timeout(now);
        };
        assert_eq!(now - t0, 4000 * MS, "timeout + settle + timeout");
        assert_eq!(sends[0], (0, Duration::ZERO));
        assert_eq!(sends[1], (1, 1000 * MS), "switched at once");
        assert!(sends[1..].iter().all(|&(to, _)| to == 1), "{sends:?}");
        assert_eq!(abandoned as usize, sends.len());
        assert_eq!(
            sends.len(),
            1 + 8 + 1,
            "primary, 8 votes, the backup's full timeout"
        );
    }

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
            assert_send(&c.recv_outcome());
            assert_send(&c.reconnect());
        }
        let _ = async_ops;
        fn worker_ops(w: &mut crate::Worker) {
            assert_send(&w.recv());
            assert_send(&w.run(|body| async move { body }));
        }
        let _ = worker_ops;
        fn worker_is_send(w: crate::Worker) {
            assert_send(&w);
            assert_send(&w.shutdown());
        }
        let _ = worker_is_send;
    }
}
