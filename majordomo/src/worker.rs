//! The worker API (the Guide's mdwrkapi, done right).
//!
//! [`Worker::new`] spawns a background task (the *engine*) that owns the reconnecting
//! [`Session`] and carries out what the worker's pure core ([`core::WorkerCore`]) decides,
//! independently of the code handling requests:
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

pub mod core;

use self::core::{Event, Transmit, WorkerCore};
use crate::protocol::{self, WorkerCommand};
use crate::rid::Rid;
use common::contract::{now, sleep_until, Core};
use common::session::{Session, SessionEvent, SessionOptions};
use common::Message;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// The background task: a [`Session`] to the broker driven by a [`WorkerCore`], the request
/// and reply channels to the handle.
struct Engine {
    broker: String,
    service: String,
    options: WorkerOptions,
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Outgoing>,
    session: Arc<AtomicU64>,
}

impl Engine {
    async fn run(mut self) {
        let mut core = WorkerCore::new(&self.service, self.options.clone());
        let mut link = Session::new(SessionOptions {
            endpoint: self.broker.clone(),
            connect_timeout: self.options.heartbeat,
            send_timeout: self.options.heartbeat,
            // The broker must see a new worker on every connection.
            identity_prefix: "W",
            // This worker's contract counts on heartbeats alone.
            watch_disconnect: false,
        });
        let service = self.service.clone();
        loop {
            while let Some(transmit) = core.poll_transmit() {
                match transmit {
                    Transmit::Reconnect { after } => link.reconnect(after),
                    Transmit::Send(command) => self.send(&mut link, &mut core, command).await,
                    Transmit::Close => link.close().await,
                }
            }
            while let Some(event) = core.poll_event() {
                self.log(event);
            }
            if core.is_stopped() {
                return;
            }
            tokio::select! {
                event = link.next() => match event {
                    SessionEvent::Connected => {
                        core.handle_connected(now());
                        self.session.store(core.session(), Ordering::Release);
                    }
                    SessionEvent::ConnectFailed(error) => {
                        core.handle_connect_failed(error.to_string(), now());
                    }
                    SessionEvent::Message(frames) => {
                        tracing::debug!("({service}) received from broker\n{}", frames.dump());
                        core.handle_message(frames, now());
                    }
                    SessionEvent::Closed => core.handle_failed("connection closed".into(), now()),
                    SessionEvent::Failed(error) => {
                        core.handle_failed(format!("receive failed: {error}"), now());
                    }
                },
                reply = self.replies.recv() => match reply {
                    Some(Outgoing { reply_to, body }) => core.handle_reply(reply_to, body, now()),
                    None => core.handle_stop(now()),
                },
                () = sleep_until(core.poll_timeout()) => core.handle_timeout(now()),
            }
        }
    }

    /// Sends one command; a failure ends the session (DISCONNECT's is moot: we are leaving).
    async fn send(&self, link: &mut Session, core: &mut WorkerCore, command: WorkerCommand) {
        let ready = matches!(command, WorkerCommand::Ready { .. });
        let frames = protocol::for_dealer(command.into_frames());
        tracing::debug!("({}) sending to broker\n{}", self.service, frames.dump());
        match link.send(frames).await {
            Ok(()) if ready => tracing::info!(
                "({}) worker ready as {} on {}",
                self.service,
                link.identity(),
                self.broker
            ),
            Ok(()) => {}
            Err(error) => core.handle_failed(error.to_string(), now()),
        }
    }

    /// The log-line contract of `mdworker` (and every worker of this API), and the hand-over
    /// of requests.
    fn log(&self, event: Event) {
        let service = &self.service;
        match event {
            Event::Request(request) => match self.requests.try_send(request) {
                Err(mpsc::error::TrySendError::Full(_)) => tracing::error!(
                    "({service}) request dropped: {REQUEST_QUEUE} requests already wait for the handler"
                ),
                // The handle is gone; the closed reply channel ends us.
                Err(mpsc::error::TrySendError::Closed(_)) | Ok(()) => {}
            },
            Event::Unreachable(error, retry_in) => tracing::warn!(
                "({service}) cannot reach broker at {} ({error}), retrying in {} ms",
                self.broker,
                retry_in.as_millis()
            ),
            Event::Silent(retry_in) => tracing::warn!(
                "({service}) broker silent for {} ms, reconnecting in {} ms",
                self.options.heartbeat.saturating_mul(self.options.liveness).as_millis(),
                retry_in.as_millis()
            ),
            Event::Lost(why, retry_in) => tracing::warn!(
                "({service}) lost the broker ({why}), reconnecting in {} ms",
                retry_in.as_millis()
            ),
            Event::Disconnected => {
                tracing::warn!("({service}) disconnected by broker, reconnecting")
            }
            Event::StaleReply => tracing::warn!(
                "({service}) dropped a reply: the broker connection it belongs to is gone"
            ),
            Event::Unexpected(name) => {
                tracing::error!("({service}) unexpected {name} from broker, ignored")
            }
            Event::Malformed(error) => {
                tracing::error!("({service}) malformed message from broker: {error}")
            }
            Event::Stopped => tracing::info!("({service}) sent DISCONNECT, worker stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DISCONNECT, MDPW01, READY};
    use bytes::Bytes;
    use common::contract::now;
    use std::time::Instant;
    use zeromq::{RouterSocket, Socket, SocketRecv};

    const MS: Duration = Duration::from_millis(1);

    /// The next message with command `command` at the fake broker: when, and from whom.
    async fn next(router: &mut RouterSocket, command: u8) -> (Instant, Bytes) {
        loop {
            let m = Message::from(router.recv().await.unwrap());
            if m.get(3).map(|c| &c[..]) == Some(&[command][..]) {
                return (now(), m.get(0).unwrap().clone());
            }
        }
    }

    /// The engine against a broker that says DISCONNECT once and then nothing: it comes back at
    /// once, then after `liveness × heartbeat` of silence plus the back-off, each time with a
    /// fresh identity, and says DISCONNECT when shut down. Paused time runs the waits at once;
    /// Unix-socket I/O completes inside the kernel call, so the virtual clock never outruns it.
    #[tokio::test(start_paused = true)]
    async fn reconnects_at_once_on_disconnect_and_after_silence_plus_the_backoff() {
        let path = std::env::temp_dir().join(format!("mdworker-engine-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let endpoint = format!("ipc://{}", path.display());
        let mut router = RouterSocket::new();
        router.bind(&endpoint).await.unwrap();
        let options = WorkerOptions {
            heartbeat: 1000 * MS,
            liveness: 3,
            reconnect: 2000 * MS,
            reconnect_max: 32000 * MS,
            request_ids: false,
        };
        let worker = Worker::new(&endpoint, "echo", options).unwrap();
        let (t1, id1) = next(&mut router, READY).await;
        let mut disconnect = Message::from_frames([&b""[..], MDPW01, &[DISCONNECT][..]]);
        disconnect.push_front(id1.clone());
        common::sock::send(&mut router, disconnect, 1000 * MS)
            .await
            .unwrap();
        let (t2, id2) = next(&mut router, READY).await;
        assert!(t2 - t1 < 10 * MS, "DISCONNECT: back at once");
        let (t3, id3) = next(&mut router, READY).await;
        let silence = (t3 - t2).as_millis();
        assert!(
            (5000..5050).contains(&silence),
            "3 s silence + 2 s back-off: {silence} ms"
        );
        assert!(id1 != id2 && id2 != id3 && id1 != id3);
        worker.shutdown().await;
        let (_, bye) = next(&mut router, DISCONNECT).await;
        assert_eq!(bye, id3);
        let _ = std::fs::remove_file(&path);
    }
}
