//! The worker API (the Guide's mdwrkapi, done right).
//!
//! [`Worker::new`] spawns a background task (the *engine*) that owns the reconnecting
//! [`Session`] and carries out what the worker's pure cores decide ([`WorkerCore`](crate::worker::WorkerCore) per
//! broker, [`Brokers`] above them), independently of the code handling requests:
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
//! [`Worker::with_brokers`] with the two brokers of a pair (`mdbroker --primary` and
//! `--backup`) does all of that once per broker (a session, an identity, a liveness and a
//! back-off each) and speaks the pair's extension ([`crate::pair`]): it refuses the requests of
//! a broker that the other one outranks, and tells each broker what it runs and answers for the
//! other ([`brokers`] has the rules).
//!
//! Requests reach the handle through a channel, up to [`WorkerOptions::credit`] at a time (one
//! by default): the next comes once one is answered (a request that arrives meanwhile, from the
//! other broker, waits). With a credit above one the worker asks its brokers for that many
//! requests at once ([`crate::credit`]) and [`Worker::run`] runs that many handler futures
//! side by side; replies go out in the order they are ready. A reply belongs to
//! the connection ("session") its request came on, and a reply to a request from an earlier
//! session is not sent there: the broker on the other end no longer knows about that request
//! (the client retries instead; in a pair, the other broker still hears the reply).
//!
//! # Streamed replies (MDP/0.2)
//! [`Worker::partial`] sends one part of a reply before [`Worker::reply`] sends the last
//! (FINAL); [`Worker::run_streaming`] hands the handler a [`PartSender`] sender for them. With
//! [`WorkerOptions::dialect`] `Rfc18` or `Majortomo` the worker speaks MDP/0.2 and each part is
//! sent as a PARTIAL at once. With the default 0.1 the broker cannot take parts: they are kept
//! and sent in front of the reply's frames, as one REPLY (the broker's bridging rule, applied
//! at the worker). A 0.2 worker takes one request at a time and offers none of the 0.1
//! extensions (request ids, credit, broker pair).
//!
//! The handler must not block the runtime thread (use `tokio::time::sleep`, `spawn_blocking`),
//! or heartbeats stall with it.

use crate::protocol::{self, Dialect, WorkerCommand};
use crate::worker::brokers::{self, Brokers, Event};
use crate::worker::{ReplyTo, Request, Transmit, WorkerOptions, MAX_BROKERS};
use common::contract::{now, sleep_until, Core};
use common::session::{Session, SessionEvent, SessionOptions};
use common::sock::SockError;
use common::Message;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long [`Worker::shutdown`] waits for the engine to send DISCONNECT and stop.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Replies on their way to the engine.
const REPLY_QUEUE: usize = 8;

/// What can go wrong creating or using a [`Worker`].
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The broker endpoint is not `tcp://HOST:PORT` or `ipc://PATH`.
    #[error("invalid broker endpoint: {0}")]
    Endpoint(String),
    /// A worker serves one broker, or the two of a pair ([`MAX_BROKERS`]).
    #[error("a worker serves one broker or the two of a pair, not {0}")]
    BrokerCount(usize),
    /// The same endpoint twice: the two brokers of a pair are two processes.
    #[error("broker {0} given twice: a pair is two brokers")]
    SameBroker(String),
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
    /// [`WorkerOptions::credit`] is not 1 to [`crate::credit::MAX`].
    #[error("credit {0} is not 1 to {max}", max = crate::credit::MAX)]
    Credit(u32),
    /// An MDP/0.2 worker has none of 0.1's extensions: credit 1, one broker.
    #[error("an MDP/0.2 ({0}) worker takes one request at a time from one broker")]
    Dialect(Dialect),
}

/// A reply, or a part of one, on its way to the engine.
struct Outgoing {
    reply_to: ReplyTo,
    body: Message,
    /// The last part (REPLY, FINAL); a PARTIAL otherwise.
    last: bool,
}

/// Sends the parts of one streamed reply ([`Worker::run_streaming`]): each
/// [`send`](PartSender::send) is one PARTIAL; the handler's return value is the FINAL. Drop it with
/// the reply: while one lives, the engine does not see the handle's shutdown (it waits for the
/// reply channel to close).
#[derive(Debug, Clone)]
pub struct PartSender {
    reply_to: ReplyTo,
    replies: mpsc::Sender<Outgoing>,
}

impl PartSender {
    /// Sends one part of the reply now (MDP/0.2), or keeps it for the reply (0.1).
    pub async fn send(&self, body: Message) -> Result<(), WorkerError> {
        let reply_to = self.reply_to.clone();
        let part = Outgoing {
            reply_to,
            body,
            last: false,
        };
        self.replies
            .send(part)
            .await
            .map_err(|_| WorkerError::Stopped)
    }
}

/// A Majordomo worker for one service. See the [module docs](self).
pub struct Worker {
    service: String,
    credit: usize,
    requests: mpsc::Receiver<Request>,
    replies: Option<mpsc::Sender<Outgoing>>,
    engine: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a worker offering `service` at the broker `broker`. Returns at once; the engine
    /// connects in the background and keeps reconnecting until the worker is shut down.
    pub fn new(broker: &str, service: &str, options: WorkerOptions) -> Result<Self, WorkerError> {
        Self::with_brokers(&[broker], service, options)
    }

    /// Starts a worker offering `service` at each of `brokers`: one broker is
    /// [`Worker::new`]; two are the brokers of a pair (`mdbroker --primary` and `--backup`),
    /// served at once, each on its own connection, with request ids on (see the
    /// [module docs](self)). More than [`MAX_BROKERS`], none, or one endpoint twice is an error.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), majordomo::WorkerError> {
    /// use majordomo::{Worker, WorkerOptions};
    /// let pair = ["tcp://10.0.0.1:5555", "tcp://10.0.0.2:5555"];
    /// let mut worker = Worker::with_brokers(&pair, "echo", WorkerOptions::default())?;
    /// worker.run(|body| async move { body }).await
    /// # }
    /// ```
    pub fn with_brokers<S: AsRef<str>>(
        brokers: &[S],
        service: &str,
        options: WorkerOptions,
    ) -> Result<Self, WorkerError> {
        let brokers: Vec<String> = brokers.iter().map(|b| b.as_ref().to_owned()).collect();
        if brokers.is_empty() || brokers.len() > MAX_BROKERS {
            return Err(WorkerError::BrokerCount(brokers.len()));
        }
        for (k, broker) in brokers.iter().enumerate() {
            common::endpoint::validate(broker).map_err(WorkerError::Endpoint)?;
            if brokers[..k].contains(broker) {
                return Err(WorkerError::SameBroker(broker.clone()));
            }
        }
        if service.is_empty() {
            return Err(WorkerError::EmptyService);
        }
        if protocol::is_mmi(service.as_bytes()) {
            return Err(WorkerError::ReservedService(service.to_owned()));
        }
        if !(1..=crate::credit::MAX).contains(&options.credit) {
            return Err(WorkerError::Credit(options.credit));
        }
        if options.dialect.streams() && (options.credit != 1 || brokers.len() != 1) {
            return Err(WorkerError::Dialect(options.dialect));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WorkerError::NoRuntime)?;
        // The core hands over at most `credit` requests not yet answered.
        let (request_tx, requests) = mpsc::channel(options.credit as usize);
        let (replies, reply_rx) = mpsc::channel(REPLY_QUEUE);
        let credit = options.credit as usize;
        let engine = Engine {
            brokers,
            service: service.to_owned(),
            options,
            requests: request_tx,
            replies: reply_rx,
        };
        Ok(Self {
            service: service.to_owned(),
            credit,
            requests,
            replies: Some(replies),
            engine: Some(runtime.spawn(engine.run())),
        })
    }

    /// The service this worker offers.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The next request, or `None` once the worker has stopped. Cancel-safe.
    ///
    /// At most [`WorkerOptions::credit`] requests are out unanswered (one by default): the next
    /// one comes once one is answered with [`reply`](Self::reply) (a broker sends no more than
    /// that anyway; with a pair, a request from the other broker waits for its turn).
    pub async fn recv(&mut self) -> Option<Request> {
        self.requests.recv().await
    }

    /// Sends the reply to a request received with [`recv`](Self::recv), once (in MDP/0.2
    /// its FINAL part).
    pub async fn reply(&mut self, reply_to: ReplyTo, body: Message) -> Result<(), WorkerError> {
        let replies = self.replies.as_ref().ok_or(WorkerError::Stopped)?;
        let last = true;
        replies
            .send(Outgoing {
                reply_to,
                body,
                last,
            })
            .await
            .map_err(|_| WorkerError::Stopped)
    }

    /// Sends one part of the reply to a request received with [`recv`](Self::recv), before
    /// its [`reply`](Self::reply) (see the [module docs](self#streamed-replies-mdp02)).
    pub async fn partial(&mut self, reply_to: &ReplyTo, body: Message) -> Result<(), WorkerError> {
        self.parts(reply_to)?.send(body).await
    }

    /// A sender of parts for the request `reply_to`, usable while the reply is worked on.
    pub fn parts(&self, reply_to: &ReplyTo) -> Result<PartSender, WorkerError> {
        let replies = self.replies.clone().ok_or(WorkerError::Stopped)?;
        Ok(PartSender {
            reply_to: reply_to.clone(),
            replies,
        })
    }

    /// [`run`](Self::run) for a streaming handler: `handler(body, parts)` may send parts with
    /// [`PartSender::send`] and returns the last one.
    pub async fn run_streaming<F, Fut>(&mut self, mut handler: F) -> Result<(), WorkerError>
    where
        F: FnMut(Message, PartSender) -> Fut,
        Fut: Future<Output = Message>,
    {
        use futures::stream::{FuturesUnordered, StreamExt};
        let mut running = FuturesUnordered::new();
        loop {
            tokio::select! {
                request = self.requests.recv(), if running.len() < self.credit => match request {
                    Some(Request { body, reply_to, .. }) => {
                        let work = handler(body, self.parts(&reply_to)?);
                        running.push(async move { (reply_to, work.await) });
                    }
                    None => return Ok(()),
                },
                Some((reply_to, reply)) = running.next(), if !running.is_empty() => {
                    self.reply(reply_to, reply).await?;
                }
            }
        }
    }

    /// Receives requests, answers each with `handler(body)`, until the worker stops.
    ///
    /// Up to [`WorkerOptions::credit`] handler futures run side by side (polled by this one
    /// task: no `Send` needed); each reply goes out as soon as it is ready.
    ///
    /// Cancel it (e.g. in a `select!` with a shutdown signal) and call
    /// [`shutdown`](Self::shutdown) to leave cleanly.
    pub async fn run<F, Fut>(&mut self, mut handler: F) -> Result<(), WorkerError>
    where
        F: FnMut(Message) -> Fut,
        Fut: Future<Output = Message>,
    {
        // A handler that sends no parts: its one reply is the whole answer.
        self.run_streaming(|body, _parts| handler(body)).await
    }

    /// Sends DISCONNECT to the brokers and stops the engine (waits at most half a second).
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

/// The background task: a [`Session`] per broker driven by a [`Brokers`] core, the request
/// and reply channels to the handle.
struct Engine {
    brokers: Vec<String>,
    service: String,
    options: WorkerOptions,
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Outgoing>,
}

impl Engine {
    async fn run(mut self) {
        let mut core = Brokers::new(self.brokers.len(), &self.service, self.options.clone());
        let mut links: Vec<Session> = self
            .brokers
            .iter()
            .map(|broker| {
                Session::new(SessionOptions {
                    endpoint: broker.clone(),
                    connect_timeout: self.options.heartbeat,
                    send_timeout: self.options.heartbeat,
                    // The broker must see a new worker on every connection.
                    identity_prefix: "W",
                    // This worker's contract counts on heartbeats alone.
                    watch_disconnect: false,
                })
            })
            .collect();
        // After a failed send the core has ended that session (its Reconnect follows in the
        // queue): what else was queued for it is skipped, not sent into a dead socket.
        let mut failed = vec![false; links.len()];
        let mut turn = 0usize;
        loop {
            while let Some((k, transmit)) = core.poll_transmit() {
                match transmit {
                    Transmit::Reconnect { after } => {
                        failed[k] = false;
                        links[k].reconnect(after);
                    }
                    Transmit::Send(_) if failed[k] => {}
                    Transmit::Send(command) => {
                        if let Err(error) = self.send(k, &mut links[k], command).await {
                            failed[k] = true;
                            core.handle_broker_lost(k, error.to_string(), now());
                        }
                    }
                    Transmit::Close => links[k].close().await,
                }
            }
            while let Some(event) = core.poll_event() {
                if let Err(reply_to) = self.log(event) {
                    // Cannot happen (the channel holds the credit), but never leave the core
                    // waiting.
                    core.handle_dropped(&reply_to, now());
                }
            }
            if core.is_stopped() {
                return;
            }
            turn = turn.wrapping_add(1);
            tokio::select! {
                (k, event) = next_event(&mut links, turn) => match event {
                    SessionEvent::Connected => core.handle_connected(k, now()),
                    SessionEvent::ConnectFailed(error) => {
                        core.handle_connect_failed(k, error.to_string(), now());
                    }
                    SessionEvent::Message(frames) => {
                        tracing::debug!(
                            "({}) received from broker {}\n{}",
                            self.service,
                            self.brokers[k],
                            frames.dump()
                        );
                        core.handle_message(k, frames, now());
                    }
                    SessionEvent::Closed => {
                        core.handle_broker_lost(k, "connection closed".into(), now());
                    }
                    SessionEvent::Failed(error) => {
                        core.handle_broker_lost(k, format!("receive failed: {error}"), now());
                    }
                },
                reply = self.replies.recv() => match reply {
                    Some(Outgoing { reply_to, body, last: true }) => {
                        core.handle_reply(reply_to, body, now())
                    }
                    Some(Outgoing { reply_to, body, last: false }) => {
                        core.handle_partial(&reply_to, body, now())
                    }
                    None => core.handle_shutdown(now()),
                },
                () = sleep_until(core.poll_timeout()) => core.handle_timeout(now()),
            }
        }
    }

    /// Sends one command to broker `k`.
    async fn send(
        &self,
        k: usize,
        link: &mut Session,
        command: WorkerCommand,
    ) -> Result<(), SockError> {
        let ready = matches!(command, WorkerCommand::Ready { .. });
        let dialect = self.options.dialect;
        let frames = protocol::for_dealer_in(dialect, command.encode(dialect));
        let (service, broker) = (&self.service, &self.brokers[k]);
        tracing::debug!("({service}) sending to broker {broker}\n{}", frames.dump());
        link.send(frames).await?;
        if ready {
            tracing::info!(
                "({service}) worker ready as {} on {broker}",
                link.identity()
            );
        }
        Ok(())
    }

    /// The log-line contract of `mdworker` (and every worker of this API), and the hand-over
    /// of requests (a request the handle cannot take comes back as the error, by its address).
    fn log(&self, event: Event) -> Result<(), ReplyTo> {
        let service = &self.service;
        let at = |k: usize| self.brokers.get(k).map_or("?", String::as_str);
        match event {
            Event::Request(request) => match self.requests.try_send(request) {
                Err(mpsc::error::TrySendError::Full(request)) => {
                    tracing::error!("({service}) request dropped: the handler's hands are full");
                    return Err(request.reply_to);
                }
                // The handle is gone; the closed reply channel ends us.
                Err(mpsc::error::TrySendError::Closed(_)) | Ok(()) => {}
            },
            Event::Link(k, event) => self.log_link(at(k), event),
            Event::Standing { broker, standing } => {
                tracing::info!("({service}) broker {} is {standing}", at(broker));
            }
            Event::Refused {
                broker,
                rid,
                senior_broker,
                senior,
                first,
                ..
            } => {
                let (from, by) = (at(broker), at(senior_broker));
                if first {
                    tracing::warn!(
                        "({service}) request {rid} from {from} refused: {by} is {senior}"
                    );
                } else {
                    tracing::debug!(
                        "({service}) request {rid} from {from} refused: {by} is {senior}"
                    );
                }
            }
            Event::StaleRequest(k) => tracing::warn!(
                "({service}) dropped a request from a lost connection to the broker ({})",
                at(k)
            ),
            Event::Overflow(k) => tracing::error!(
                "({service}) request dropped: {} requests already wait for the handler ({})",
                brokers::WAITING,
                at(k)
            ),
            Event::UnknownReply(k) => tracing::warn!(
                "({service}) dropped a reply to a request not in hand ({})",
                at(k)
            ),
        }
        Ok(())
    }

    /// One broker session's lines: each ends with the broker's endpoint.
    fn log_link(&self, broker: &str, event: crate::worker::Event) {
        use crate::worker::Event as E;
        let service = &self.service;
        match event {
            E::Unreachable(error, retry_in) => tracing::warn!(
                "({service}) cannot reach broker at {broker} ({error}), retrying in {} ms",
                retry_in.as_millis()
            ),
            E::Silent(retry_in) => tracing::warn!(
                "({service}) broker silent for {} ms, reconnecting in {} ms ({broker})",
                self.options.heartbeat.saturating_mul(self.options.liveness).as_millis(),
                retry_in.as_millis()
            ),
            E::Lost(why, retry_in) => tracing::warn!(
                "({service}) lost the broker ({why}), reconnecting in {} ms ({broker})",
                retry_in.as_millis()
            ),
            E::Disconnected => {
                tracing::warn!("({service}) disconnected by broker, reconnecting ({broker})")
            }
            E::StaleReply => tracing::warn!(
                "({service}) dropped a reply: the broker connection it belongs to is gone ({broker})"
            ),
            E::Unexpected(name) => {
                tracing::error!("({service}) unexpected {name} from broker, ignored ({broker})")
            }
            E::Malformed(error) => {
                tracing::error!("({service}) malformed message from broker: {error} ({broker})")
            }
            E::Stopped => {
                tracing::info!("({service}) sent DISCONNECT, worker stopped ({broker})")
            }
            // Taken by the Brokers core, never passed on.
            E::Request(_) | E::Standing(_) => {}
        }
    }
}

/// The next event of any session, and whose. Each call starts looking at another session
/// (`turn`), so a busy broker cannot starve the other.
async fn next_event(links: &mut [Session], turn: usize) -> (usize, SessionEvent) {
    if let [link] = links {
        return (0, link.next().await);
    }
    let start = turn % links.len().max(1);
    let (front, back) = links.split_at_mut(start);
    let nexts = back
        .iter_mut()
        .zip(start..)
        .chain(front.iter_mut().zip(0..))
        .map(|(link, k)| Box::pin(async move { (k, link.next().await) }));
    futures::future::select_all(nexts).await.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::{PairFrames, Standing};
    use crate::protocol::{DISCONNECT, MDPW01, READY};
    use crate::rid::Rid;
    use binary_star::{Role, State};
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
            credit: 1,
            dialect: Default::default(),
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

    /// One broker of a fake pair: a ROUTER on an OS-assigned port, and the worker it saw.
    struct FakeBroker {
        router: RouterSocket,
        endpoint: String,
        worker: Option<Bytes>,
    }

    impl FakeBroker {
        async fn bind() -> Self {
            let mut router = RouterSocket::new();
            let endpoint = router.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
            Self {
                router,
                endpoint,
                worker: None,
            }
        }

        /// The worker's next command but a plain HEARTBEAT (bounded: a lost frame fails the
        /// test instead of hanging it).
        async fn next(&mut self) -> WorkerCommand {
            loop {
                let received = tokio::time::timeout(Duration::from_secs(10), self.router.recv())
                    .await
                    .expect("the worker spoke in time")
                    .unwrap();
                let (sender, inbound) = protocol::Inbound::parse(received.into()).unwrap();
                self.worker = sender.first().cloned();
                match inbound {
                    protocol::Inbound::Worker(WorkerCommand::Heartbeat) => {}
                    protocol::Inbound::Worker(command) => return command,
                    other => panic!("not a worker command: {other:?}"),
                }
            }
        }

        async fn send(&mut self, command: WorkerCommand) {
            let to = Message::from_frames([self.worker.clone().expect("a worker registered")]);
            let message = protocol::to_router(to, command.into_frames());
            common::sock::send(&mut self.router, message, 1000 * MS)
                .await
                .unwrap();
        }

        async fn standing(&mut self, standing: Standing) {
            self.send(WorkerCommand::Pair(PairFrames::Standing(standing)))
                .await;
        }

        /// A REQUEST as a paired broker sends it: its standing, the id, the body.
        async fn request(&mut self, standing: Standing, rid: &Rid, body: &str) {
            let mut body = Message::from_frames([body.to_owned()]);
            rid.put(&mut body);
            body.push_front(standing.to_frame());
            let client = Message::from_frames(["C"]);
            self.send(WorkerCommand::Request { client, body }).await;
        }
    }

    fn reply(body: &str) -> WorkerCommand {
        WorkerCommand::Reply {
            client: Message::from_frames(["C"]),
            body: Message::from_frames([body.to_owned()]),
        }
    }

    fn news(frames: PairFrames) -> WorkerCommand {
        WorkerCommand::Pair(frames)
    }

    /// The engine between two fake brokers of a pair, frame by frame: READY with both markers
    /// to both; a request from one is announced to the other when it starts and answered to
    /// both when done; once the other shows a senior ACTIVE standing, the first one's request
    /// is refused, and the handler never sees it.
    #[tokio::test]
    async fn serves_a_pair_running_answered_and_refused_on_the_wire() {
        let mut a = FakeBroker::bind().await;
        let mut b = FakeBroker::bind().await;
        let options = WorkerOptions {
            heartbeat: 200 * MS,
            // Brokers that say nothing but what the test tells them stay alive for 10 s.
            liveness: 50,
            reconnect: 200 * MS,
            reconnect_max: 1000 * MS,
            request_ids: false,
            credit: 1,
            dialect: Default::default(),
        };
        let mut worker =
            Worker::with_brokers(&[&a.endpoint, &b.endpoint], "echo", options).unwrap();
        // The handler: shows the test each request's id, echoes it when the test says so.
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let (go, mut go_rx) = mpsc::unbounded_channel::<()>();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = tokio::spawn(async move {
            loop {
                let request = tokio::select! {
                    request = worker.recv() => request.expect("the worker runs"),
                    _ = &mut stopped => break,
                };
                seen_tx.send(request.rid.clone().expect("an id")).unwrap();
                go_rx.recv().await.unwrap();
                worker.reply(request.reply_to, request.body).await.unwrap();
            }
            worker.shutdown().await;
        });
        let ready = WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: true,
            pair: true,
            credit: 1,
        };
        assert_eq!(
            a.next().await,
            ready,
            "both markers, ids although not asked for"
        );
        assert_eq!(b.next().await, ready);
        let (primary, backup) = (
            Standing {
                state: State::Active,
                epoch: 1,
                role: Role::Primary,
            },
            Standing {
                state: State::Passive,
                epoch: 1,
                role: Role::Backup,
            },
        );
        a.standing(primary).await;
        b.standing(backup).await;
        let mut ids = crate::rid::RidSource::new();
        let (r1, r2, r3, r4) = (
            ids.next_rid(),
            ids.next_rid(),
            ids.next_rid(),
            ids.next_rid(),
        );

        // A dispatches: B hears it runs, then A gets the reply and B a copy.
        a.request(primary, &r1, "one").await;
        assert_eq!(b.next().await, news(PairFrames::Running(r1.clone())));
        assert_eq!(seen.recv().await.unwrap(), r1);
        go.send(()).unwrap();
        assert_eq!(a.next().await, reply("one"));
        let one = Message::from_frames(["one"]);
        assert_eq!(b.next().await, news(PairFrames::Answered(r1, one)));

        // The backup takes over (epoch 2) and dispatches; A hears of it: the worker has seen
        // the new standing, which came first.
        let senior = Standing {
            state: State::Active,
            epoch: 2,
            role: Role::Backup,
        };
        b.request(senior, &r2, "two").await;
        assert_eq!(a.next().await, news(PairFrames::Running(r2.clone())));
        assert_eq!(seen.recv().await.unwrap(), r2);
        // The deposed primary dispatches too: refused, with the senior standing.
        a.request(primary, &r3, "three").await;
        assert_eq!(a.next().await, news(PairFrames::Refused(r3, senior)));
        go.send(()).unwrap();
        assert_eq!(
            b.next().await,
            reply("two"),
            "the reply, no news to its dispatcher"
        );
        let two = Message::from_frames(["two"]);
        assert_eq!(a.next().await, news(PairFrames::Answered(r2, two)));
        // The refused request never reaches the handler: the next one it sees is B's.
        b.request(senior, &r4, "four").await;
        assert_eq!(seen.recv().await.unwrap(), r4);
        go.send(()).unwrap();
        assert_eq!(b.next().await, reply("four"));
        assert!(matches!(a.next().await, WorkerCommand::Pair(PairFrames::Running(r)) if r == r4));
        assert!(
            matches!(a.next().await, WorkerCommand::Pair(PairFrames::Answered(r, _)) if r == r4)
        );

        // Shut down: DISCONNECT to both.
        stop.send(()).unwrap();
        handler.await.unwrap();
        assert_eq!(a.next().await, WorkerCommand::Disconnect);
        assert_eq!(b.next().await, WorkerCommand::Disconnect);
    }
}
