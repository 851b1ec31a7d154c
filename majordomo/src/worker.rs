//! The worker API (the Guide's mdwrkapi, done right).
//!
//! [`Worker::new`] spawns a background task (the *engine*) that owns the DEALER socket and
//! does everything the protocol asks of a worker, independently of the code handling requests:
//!
//! * connects (bounded: the `zeromq` crate would otherwise wait for the broker up to 30 s) and
//!   sends READY;
//! * sends HEARTBEAT every [`WorkerOptions::heartbeat`] — also while a request is being handled,
//!   so a long request does not get the worker purged;
//! * declares the broker dead after [`WorkerOptions::liveness`] silent heartbeat intervals,
//!   waits a back-off ([`WorkerOptions::reconnect`], doubling up to
//!   [`WorkerOptions::reconnect_max`]), and reconnects on a fresh socket with a fresh identity;
//! * on DISCONNECT from the broker (e.g. a restarted broker that does not know us) reconnects at
//!   once and sends READY again;
//! * when the [`Worker`] is dropped or [`shut down`](Worker::shutdown), sends DISCONNECT.
//!
//! Requests reach the handle through a channel; a reply belongs to the connection ("session")
//! its request came on, and a reply to a request from an earlier session is dropped: the broker
//! on the other end no longer knows about that request (the client retries instead).
//!
//! The handler must not block the runtime thread (use `tokio::time::sleep`, `spawn_blocking`),
//! or heartbeats stall with it.

use crate::protocol::{self, WorkerCommand};
use crate::rid::Rid;
use bytes::Bytes;
use common::heartbeat::{Backoff, Liveness, Ticker};
use common::rng::Rng;
use common::{sock, Message};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zeromq::{DealerSocket, Socket, SocketRecv};

/// Guide default (mdwrkapi): heartbeat interval.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(2500);
/// Guide default: the broker is dead after this many silent intervals (3–5 is reasonable).
pub const HEARTBEAT_LIVENESS: u32 = 3;
/// Guide default: wait this long before reconnecting to a broker found dead.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(2500);
/// Further failed attempts double the delay up to this.
pub const RECONNECT_MAX: Duration = Duration::from_millis(32000);

/// How long [`Worker::shutdown`] waits for the engine to send DISCONNECT and stop.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Requests the engine may hand over before the handle takes them (MDP sends one at a time).
const REQUEST_QUEUE: usize = 8;

/// Worker settings; the defaults are the Guide's.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Heartbeat interval (the broker should use the same).
    pub heartbeat: Duration,
    /// Silent intervals after which the broker counts as dead.
    pub liveness: u32,
    /// First delay before reconnecting to a dead or unreachable broker.
    pub reconnect: Duration,
    /// Cap of the doubling reconnect delay.
    pub reconnect_max: Duration,
    /// Ask the broker for each request's id ([`crate::rid`]; READY carries the marker frame),
    /// handed over in [`Request::rid`]. Off by default: a broker that does not know the
    /// extension (the Guide's C broker ignores the frame) simply sends no ids.
    pub request_ids: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            heartbeat: HEARTBEAT_INTERVAL,
            liveness: HEARTBEAT_LIVENESS,
            reconnect: RECONNECT_DELAY,
            reconnect_max: RECONNECT_MAX,
            request_ids: false,
        }
    }
}

/// What can go wrong creating or using a [`Worker`].
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The broker endpoint is not `tcp://HOST:PORT` or `ipc://PATH`.
    #[error("invalid broker endpoint: {0}")]
    Endpoint(String),
    /// Empty service names are not valid MDP.
    #[error("the service name must not be empty")]
    EmptyService,
    /// `mmi.*` services are answered by the broker; it disconnects workers that offer them.
    #[error("service {0:?} is reserved for the broker (mmi.*)")]
    ReservedService(String),
    /// [`Worker::new`] must be called inside a tokio runtime.
    #[error("no tokio runtime to run the worker in")]
    NoRuntime,
    /// The worker has been shut down.
    #[error("the worker has stopped")]
    Stopped,
}

/// Where a reply goes: the client's address and the connection the request came on.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    client: Message,
    session: u64,
}

impl ReplyTo {
    /// The client's address stack as the broker sent it.
    pub fn client(&self) -> &Message {
        &self.client
    }
}

/// One request handed to the worker.
#[derive(Debug)]
pub struct Request {
    /// The request body as the client sent it.
    pub body: Message,
    /// The request's id, if the client sent one and [`WorkerOptions::request_ids`] is on. A
    /// retry of the same logical request carries the same id (the broker normally answers
    /// retries itself, so a worker sees an id twice only after a lost worker or a forgotten id).
    pub rid: Option<Rid>,
    /// Pass this to [`Worker::reply`].
    pub reply_to: ReplyTo,
}

/// A reply on its way to the engine.
struct Outgoing {
    reply_to: ReplyTo,
    body: Message,
}

/// A Majordomo worker for one service. See the [module docs](self).
pub struct Worker {
    service: String,
    requests: mpsc::Receiver<Request>,
    replies: Option<mpsc::Sender<Outgoing>>,
    session: Arc<AtomicU64>,
    engine: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a worker offering `service` at the broker `broker`. Returns at once; the engine
    /// connects in the background and keeps reconnecting until the worker is shut down.
    pub fn new(broker: &str, service: &str, options: WorkerOptions) -> Result<Self, WorkerError> {
        common::endpoint::validate(broker).map_err(WorkerError::Endpoint)?;
        if service.is_empty() {
            return Err(WorkerError::EmptyService);
        }
        if protocol::is_mmi(service.as_bytes()) {
            return Err(WorkerError::ReservedService(service.to_owned()));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WorkerError::NoRuntime)?;
        let (request_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        let (replies, reply_rx) = mpsc::channel(REQUEST_QUEUE);
        let session = Arc::new(AtomicU64::new(0));
        let engine = Engine {
            broker: broker.to_owned(),
            service: service.to_owned(),
            options,
            requests: request_tx,
            replies: reply_rx,
            session: Arc::clone(&session),
            rng: Rng::from_entropy(),
        };
        Ok(Self {
            service: service.to_owned(),
            requests,
            replies: Some(replies),
            session,
            engine: Some(runtime.spawn(engine.run())),
        })
    }

    /// The service this worker offers.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The next request, or `None` once the worker has stopped.
    pub async fn recv(&mut self) -> Option<Request> {
        loop {
            let request = self.requests.recv().await?;
            if request.reply_to.session == self.session.load(Ordering::Acquire) {
                return Some(request);
            }
            tracing::warn!(
                "({}) dropped a request from a lost connection to the broker",
                self.service
            );
        }
    }

    /// Sends the reply to a request received with [`recv`](Self::recv).
    pub async fn reply(&mut self, reply_to: ReplyTo, body: Message) -> Result<(), WorkerError> {
        let replies = self.replies.as_ref().ok_or(WorkerError::Stopped)?;
        replies
            .send(Outgoing { reply_to, body })
            .await
            .map_err(|_| WorkerError::Stopped)
    }

    /// Receives requests, answers each with `handler(body)`, until the worker stops.
    ///
    /// Cancel it (e.g. in a `select!` with a shutdown signal) and call
    /// [`shutdown`](Self::shutdown) to leave cleanly.
    pub async fn run<F, Fut>(&mut self, mut handler: F) -> Result<(), WorkerError>
    where
        F: FnMut(Message) -> Fut,
        Fut: Future<Output = Message>,
    {
        while let Some(Request { body, reply_to, .. }) = self.recv().await {
            let reply = handler(body).await;
            self.reply(reply_to, reply).await?;
        }
        Ok(())
    }

    /// Sends DISCONNECT to the broker and stops the engine (waits at most half a second).
    pub async fn shutdown(mut self) {
        self.replies = None;
        if let Some(engine) = self.engine.take() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, engine).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the reply channel tells the engine to send DISCONNECT and stop.
        self.replies = None;
    }
}

/// Why a session (one connection to the broker) ended.
enum End {
    /// The handle is gone: DISCONNECT was sent, stop.
    Shutdown,
    /// The broker said DISCONNECT: reconnect at once.
    Disconnected,
    /// The broker fell silent for `liveness` intervals: back off, then reconnect.
    Silent,
    /// The socket failed (e.g. a send found no connection): back off, then reconnect.
    Failed(String),
}

/// The background task that owns the socket.
struct Engine {
    broker: String,
    service: String,
    options: WorkerOptions,
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Outgoing>,
    session: Arc<AtomicU64>,
    rng: Rng,
}

impl Engine {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.options.reconnect, self.options.reconnect_max);
        let mut delay = None;
        loop {
            if let Some(delay) = delay.take() {
                if !self.wait(delay).await {
                    return;
                }
            }
            // A fresh identity per connection: a reconnect under the old identity can lose
            // replies, and the broker must see a new worker.
            let identity = format!("W{}", self.rng.identity());
            let options = sock::options(self.options.heartbeat, Some(&identity));
            let mut socket = DealerSocket::with_options(options);
            let window = self.options.reconnect.max(self.options.heartbeat);
            let broker = self.broker.clone();
            let connected = tokio::select! {
                result = sock::connect(&mut socket, &broker, window) => result,
                () = self.replies_closed() => return,
            };
            if let Err(error) = connected {
                let next = backoff.next_delay();
                tracing::warn!(
                    "({}) cannot reach broker at {} ({error}), retrying in {} ms",
                    self.service,
                    self.broker,
                    next.as_millis()
                );
                delay = Some(next);
                continue;
            }
            backoff.reset();
            let session = self.session.fetch_add(1, Ordering::AcqRel) + 1;
            match self.session(&mut socket, session, &identity).await {
                End::Shutdown => return,
                End::Disconnected => {
                    tracing::warn!("({}) disconnected by broker, reconnecting", self.service);
                }
                End::Silent => {
                    let next = backoff.next_delay();
                    tracing::warn!(
                        "({}) broker silent for {} ms, reconnecting in {} ms",
                        self.service,
                        (self.options.heartbeat * self.options.liveness).as_millis(),
                        next.as_millis()
                    );
                    delay = Some(next);
                }
                End::Failed(why) => {
                    let next = backoff.next_delay();
                    tracing::warn!(
                        "({}) lost the broker ({why}), reconnecting in {} ms",
                        self.service,
                        next.as_millis()
                    );
                    delay = Some(next);
                }
            }
        }
    }

    /// Sleeps `delay` while there is no connection; replies arriving meanwhile are stale and
    /// dropped. False if the handle went away.
    async fn wait(&mut self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return true,
                reply = self.replies.recv() => match reply {
                    Some(_) => tracing::warn!(
                        "({}) dropped a reply: the broker connection it belongs to is gone",
                        self.service
                    ),
                    None => return false,
                },
            }
        }
    }

    /// Resolves when the handle has gone away (drops stale replies meanwhile).
    async fn replies_closed(&mut self) {
        while self.replies.recv().await.is_some() {
            tracing::warn!(
                "({}) dropped a reply: the broker connection it belongs to is gone",
                self.service
            );
        }
    }

    /// Sends one command; `Err` carries the reason for the log.
    async fn send(&self, socket: &mut DealerSocket, command: WorkerCommand) -> Result<(), String> {
        let frames = protocol::for_dealer(command.into_frames());
        tracing::debug!("({}) sending to broker\n{}", self.service, frames.dump());
        sock::send(socket, frames, self.options.heartbeat)
            .await
            .map_err(|error| error.to_string())
    }

    async fn session(&mut self, socket: &mut DealerSocket, session: u64, identity: &str) -> End {
        let ready = WorkerCommand::Ready {
            service: Bytes::copy_from_slice(self.service.as_bytes()),
            request_ids: self.options.request_ids,
        };
        if let Err(why) = self.send(socket, ready).await {
            return End::Failed(why);
        }
        tracing::info!(
            "({}) worker ready as {identity} on {}",
            self.service,
            self.broker
        );
        let now = Instant::now().into_std();
        let mut broker = Liveness::new(self.options.heartbeat, self.options.liveness, now);
        let mut ticker = Ticker::new(self.options.heartbeat, now);
        loop {
            let deadline = ticker.deadline().min(broker.deadline());
            tokio::select! {
                received = socket.recv() => {
                    let frames = match received {
                        Ok(frames) => Message::from(frames),
                        Err(error) => return End::Failed(format!("receive failed: {error}")),
                    };
                    broker.heard(Instant::now().into_std());
                    tracing::debug!("({}) received from broker\n{}", self.service, frames.dump());
                    match protocol::from_dealer(frames).and_then(WorkerCommand::parse) {
                        Ok(WorkerCommand::Request { client, mut body }) => {
                            let reply_to = ReplyTo { client, session };
                            let rid = if self.options.request_ids {
                                Rid::take(&mut body)
                            } else {
                                None
                            };
                            let request = Request { body, rid, reply_to };
                            if let Err(error) = self.requests.try_send(request) {
                                match error {
                                    mpsc::error::TrySendError::Full(_) => tracing::error!(
                                        "({}) request dropped: {REQUEST_QUEUE} requests already wait for the handler",
                                        self.service
                                    ),
                                    // The handle is gone; the closed reply channel ends us.
                                    mpsc::error::TrySendError::Closed(_) => {}
                                }
                            }
                        }
                        Ok(WorkerCommand::Heartbeat) => {}
                        Ok(WorkerCommand::Disconnect) => return End::Disconnected,
                        Ok(other) => tracing::error!(
                            "({}) unexpected {} from broker, ignored",
                            self.service,
                            other.name()
                        ),
                        Err(error) => tracing::error!(
                            "({}) malformed message from broker: {error}",
                            self.service
                        ),
                    }
                }
                reply = self.replies.recv() => match reply {
                    Some(Outgoing { reply_to, body }) if reply_to.session == session => {
                        let reply = WorkerCommand::Reply { client: reply_to.client, body };
                        if let Err(why) = self.send(socket, reply).await {
                            return End::Failed(why);
                        }
                    }
                    Some(_) => tracing::warn!(
                        "({}) dropped a reply: the broker connection it belongs to is gone",
                        self.service
                    ),
                    None => {
                        let _ = self.send(socket, WorkerCommand::Disconnect).await;
                        // No LINGER in the zeromq crate: give the socket's writer a moment to
                        // put DISCONNECT on the wire before the socket (and maybe the process)
                        // goes away.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        tracing::info!("({}) sent DISCONNECT, worker stopped", self.service);
                        return End::Shutdown;
                    }
                },
                () = tokio::time::sleep_until(Instant::from_std(deadline)) => {
                    let now = Instant::now().into_std();
                    if broker.is_dead(now) {
                        return End::Silent;
                    }
                    if ticker.poll(now) {
                        if let Err(why) = self.send(socket, WorkerCommand::Heartbeat).await {
                            return End::Failed(why);
                        }
                    }
                }
            }
        }
    }
}
