//! The broker's pure core: services, waiting requests, workers, dispatch and MMI.
//!
//! No sockets, no clock, no logger; it follows [`common::contract::Core`]. Feed it every
//! message the ROUTER receives with [`Broker::handle_message`], call `handle_timeout` when
//! `poll_timeout` is due, send whatever `poll_transmit` yields (each message starts with the
//! routing id of its peer, ready for a ROUTER) and log whatever `poll_event` yields ([`Event`]).
//!
//! What it does that the Guide's reference broker does not:
//! * the reserved `mmi.` prefix is checked on the *service name*: a worker offering an `mmi.*`
//!   service gets DISCONNECT;
//! * requests for a service wait at most [`BrokerConfig::request_timeout`], in one FIFO per
//!   client served round-robin and bounded by [`BrokerConfig::max_queue_bytes`] (see
//!   [`fair`]), so a flooding client cannot starve the others; what is refused or dropped is
//!   counted and reported ([`Event::QueueFull`], [`Event::Expired`]);
//! * every worker silent for `liveness × heartbeat` is purged, idle or busy;
//! * a worker whose connection closes or whose send fails ([`Broker::handle_peer_lost`], from
//!   the socket monitor or the ROUTER) is purged at once, and the requests it was working on
//!   go back to the head of their service queue for the next workers; so do the requests of a
//!   worker that sends DISCONNECT while busy;
//! * a peer that does not read (a send to it blocked, [`Broker::handle_send_blocked`]) is
//!   paused for [`STUCK_PAUSE`]: messages to it are dropped at once, as a libzmq ROUTER drops
//!   at its high-water mark, and a worker among them is purged like an unreachable one;
//! * a worker that asked for credit ([`crate::credit`]) gets up to that many requests at once;
//!   its REPLY names the request it answers by the rid frame (one request without an id at a
//!   time). Workers with spare credit take turns, so requests spread over them; a worker of
//!   credit 1 (every worker that does not ask) is the Guide's;
//! * a client whose connection closes has its waiting requests dropped (no reply could reach it);
//! * a valid but unexpected command (HEARTBEAT or REPLY from an unknown worker, a second READY,
//!   a REPLY with no request out, a REQUEST sent *to* the broker by a worker) gets DISCONNECT,
//!   which is how workers re-register after a broker restart.
//!
//! * requests carrying a request id ([`crate::rid`]) are deduplicated by [`dedup`]: a retry
//!   joins the running request or gets the remembered reply instead of running twice. The hooks
//!   here are small and named `dedup_*`. The id rides with the request ([`fair::Queued::rid`]),
//!   also when it is requeued; every path that drops a waiting or running request (refused or
//!   evicted by a full queue, expired, its client gone, its worker purged for silence) abandons
//!   its id, so that a retry runs it again instead of joining a request nobody will answer.
//!
//! * MDP/0.2 (18/MDP) peers share the socket with 0.1 ones: each message's dialect is
//!   recognised from its frames ([`protocol`]), kept per peer (a worker's in its entry, a
//!   streaming client's in a small map by routing id) and every answer goes out in it. A 0.2
//!   worker streams its reply as PARTIALs and a FINAL; a 0.2 client gets them as they come; a
//!   0.1 client gets them concatenated into one REPLY ([`stream`]: the bridging rule, its
//!   bound, reruns after a worker died mid-stream, and how retries get whole streams). A
//!   PARTIAL proves the worker alive like any command. The 0.1 extensions (request-id marker
//!   in READY, credit, broker pair) are not offered to 0.2 workers: they take one request at a
//!   time and get no pair frames; a request id at the head of a client's body works for 0.2
//!   clients too, and comes back at the head of every PARTIAL and the FINAL.
//!
//! Service entries live while they have workers or waiting requests; nothing is kept for a
//! name once both are gone, so churn and garbage service names do not grow the broker.
//!
//! Malformed input is reported ([`Event::Malformed`]) and dropped. The shell
//! ([`crate::broker_loop`]) turns events into log lines and throttles those caused by peer input.

use crate::pair::{PairFrames, Standing};
use crate::protocol::{
    self, ClientCommand, Dialect, Inbound, ProtocolError, Received, WorkerCommand,
};
use crate::rid::Rid;
use binary_star::State;
use bytes::Bytes;
use common::contract::{self, Core, Outbox};
use common::curve::keys::PublicKey;
use common::heartbeat::{Liveness, Ticker};
use common::Message;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub mod dedup;
pub mod fair;
pub mod stream;

use dedup::{Admit, Dedup, DedupConfig, Forgotten};
use fair::{Admission, FairQueue, Queued};

/// Guide default: heartbeat interval (mdbroker's `HEARTBEAT_INTERVAL`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(2500);
/// Guide default: a worker is dead after this many silent intervals.
pub const HEARTBEAT_LIVENESS: u32 = 3;
/// How long a request may wait for a worker. The Guide has no limit (its requests wait forever).
/// A synchronous client gives up after 3 × 2.5 s, but a pipelining one (the Guide's `mdclient2`
/// fires 100,000 requests before reading) needs its last request to wait until the workers got
/// through all the others: a minute covers that at a few thousand requests a second.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(60_000);
/// Bytes one service's waiting requests may take (frames plus
/// [`fair::QUEUED_OVERHEAD`] each) before requests are refused: 100,000 small requests take
/// about 16 MiB, so the Guide's `mdclient2` fits many times over.
pub const MAX_QUEUE_BYTES: usize = 256 << 20;
/// Bytes of one streamed reply the broker keeps (for a 0.1 client, which gets it as one
/// REPLY, and for retries): beyond it the parts are only passed on ([`stream`]).
pub const MAX_STREAM_BYTES: usize = 16 << 20;
/// MDP/0.2 client peers whose dialect is remembered at once; beyond it the oldest is
/// forgotten (normally each is forgotten when its connection closes).
pub const MAX_STREAMING_CLIENTS: usize = 1 << 16;
/// How long messages to a peer that does not read are dropped without trying, once a send to
/// it blocked ([`Broker::handle_send_blocked`]): the pause costs the broker one short wait per
/// second for such a peer instead of one per message.
pub const STUCK_PAUSE: Duration = Duration::from_secs(1);

/// MMI extension: one row per service (see [`crate::mmi`]).
pub const MMI_SERVICES: &str = "mmi.services";
/// MMI extension: one row per worker (see [`crate::mmi`]).
pub const MMI_WORKERS: &str = "mmi.workers";
/// MMI extension: broker counters as name/value pairs (see [`crate::mmi`]).
pub const MMI_BROKER: &str = "mmi.broker";
/// MMI extension: this broker's place in a pair as name/value pairs (see [`crate::mmi`]).
pub const MMI_PAIR: &str = "mmi.pair";

/// Broker settings; the defaults are the Guide's where it has one.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Heartbeat interval towards workers.
    pub heartbeat: Duration,
    /// Silent heartbeat intervals after which a worker is purged.
    pub liveness: u32,
    /// Longest time a request waits in a service queue.
    pub request_timeout: Duration,
    /// Most bytes one service's waiting requests may take (see [`fair`]).
    pub max_queue_bytes: usize,
    /// Bounds of the request-id store ([`dedup`]).
    pub dedup: DedupConfig,
    /// Report every reply sent to a client for a service ([`Event::Answered`]; `mdbroker
    /// --log-replies`, which the tour's `one-server-answers` check reads).
    pub log_replies: bool,
    /// Which CURVE keys may register workers for which service (`--worker-keys`).
    pub worker_keys: WorkerKeys,
    /// Most bytes of one streamed reply kept for bridging and retries ([`stream`]).
    pub max_stream_bytes: usize,
}

/// Decides whether an authenticated key belongs to a service's workers.
pub type KeyCheck = std::sync::Arc<dyn Fn(&PublicKey) -> bool + Send + Sync>;

/// Which authenticated client keys may register workers for which service (`mdbroker
/// --worker-keys SERVICE=DIR`). A service not listed is open to every peer the guard admitted;
/// a listed one only to workers whose connection authenticated a key the check accepts (a
/// connection without CURVE has no key and is refused).
#[derive(Clone, Default)]
pub struct WorkerKeys(HashMap<Bytes, KeyCheck>);

impl std::fmt::Debug for WorkerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.0.keys().map(|s| String::from_utf8_lossy(s)))
            .finish()
    }
}

impl WorkerKeys {
    /// Only keys `check` accepts may offer `service` (replaces an earlier check for it).
    pub fn restrict(&mut self, service: impl Into<Bytes>, check: KeyCheck) {
        self.0.insert(service.into(), check);
    }

    /// Whether a worker whose connection authenticated `key` may offer `service`.
    pub fn admits(&self, service: &[u8], key: Option<&PublicKey>) -> bool {
        match self.0.get(service) {
            None => true,
            Some(check) => key.is_some_and(|key| check(key)),
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            heartbeat: HEARTBEAT_INTERVAL,
            liveness: HEARTBEAT_LIVENESS,
            request_timeout: REQUEST_TIMEOUT,
            max_queue_bytes: MAX_QUEUE_BYTES,
            dedup: DedupConfig::default(),
            log_replies: false,
            worker_keys: WorkerKeys::default(),
            max_stream_bytes: MAX_STREAM_BYTES,
        }
    }
}

/// Counters since the broker started (also served as `mmi.broker`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Client requests accepted (MMI included).
    pub requests: u64,
    /// Replies forwarded from workers to clients.
    pub replies: u64,
    /// Requests refused, or evicted to make room for a lighter client, because their service
    /// queue was at its byte bound.
    pub dropped_full: u64,
    /// Requests dropped after waiting `request_timeout`.
    pub expired: u64,
    /// Requests lost with a busy worker purged for silence.
    pub lost_with_worker: u64,
    /// Requests put back at the head of their queue because their worker went away.
    pub requeued: u64,
    /// Waiting requests dropped because their client's connection closed.
    pub dropped_client_gone: u64,
    /// Workers purged because their connection closed or a send to them failed.
    pub workers_gone: u64,
    /// Workers purged for silence.
    pub purged: u64,
    /// DISCONNECTs sent for unexpected or forbidden commands.
    pub disconnects_sent: u64,
    /// Messages dropped as malformed.
    pub malformed: u64,
    /// Replies to service requests sent to clients (counted with
    /// [`BrokerConfig::log_replies`] only).
    pub answered: u64,
    /// Replies reported by workers for requests the pair's other broker dispatched.
    pub answered_elsewhere: u64,
    /// Requests refused by a worker because the pair's other broker outranks this one.
    pub fenced: u64,
    /// Waiting requests dropped when this broker became PASSIVE.
    pub dropped_passive: u64,
}

/// One service: its waiting requests and its workers.
#[derive(Default)]
pub(crate) struct Service {
    pub(crate) requests: FairQueue,
    /// Workers with spare credit, each once, the one waiting longest first: the next request
    /// goes to the front one, which goes to the back if it has credit left (so requests spread
    /// over workers with credit; a worker of credit 1 leaves the list until it answers).
    idle: VecDeque<Bytes>,
    /// Registered workers (idle + busy).
    pub(crate) workers: usize,
    /// Workers with at least one request out (ours or the other broker's).
    pub(crate) busy: usize,
    pub(crate) served: u64,
}

/// One registered worker.
pub(crate) struct Worker {
    pub(crate) service: Bytes,
    /// The dialect of its READY: everything it is sent is in it.
    dialect: Dialect,
    pub(crate) liveness: Liveness,
    /// The worker asked for request ids in READY.
    request_ids: bool,
    /// Requests it may have out at once ([`crate::credit`]; 1 unless it asked for more).
    pub(crate) credit: usize,
    /// The requests it is working on, oldest first, kept to be put back if the worker goes
    /// away (the id of each, if it has one, is the running id its reply is remembered under).
    in_flight: Vec<Queued>,
    /// The worker serves a broker pair (READY carried [`crate::pair::MARKER`]): it gets our standing
    /// and sends news ([`crate::pair`]).
    pair: bool,
    /// The requests it reported running for the other broker of the pair; they take its credit
    /// here too.
    elsewhere: Vec<Rid>,
}

impl Worker {
    /// Requests out at it, ours and the other broker's.
    pub(crate) fn used(&self) -> usize {
        self.in_flight.len() + self.elsewhere.len()
    }

    pub(crate) fn busy(&self) -> bool {
        self.used() > 0
    }

    /// True if it may take one more request.
    fn has_room(&self) -> bool {
        self.used() < self.credit
    }

    /// True if it may take a request without an id: its REPLY could not name it, so a worker
    /// has at most one out (always true for a worker of credit 1 with room).
    fn takes_anonymous(&self) -> bool {
        self.credit == 1 || self.in_flight.iter().all(Queued::has_rid)
    }

    /// Takes the request a REPLY from it answers: the only one of a worker of credit 1; with
    /// credit, the one of `client` with the id `rid` (the rid frame the worker put in front of
    /// its reply), or its one request without an id if `rid` is `None`.
    fn take_answered(&mut self, client: &Message, rid: Option<&Rid>) -> Option<Queued> {
        if self.credit == 1 {
            return self.in_flight.pop();
        }
        let at = self
            .in_flight
            .iter()
            .position(|q| q.is_from(client) && q.rid().as_ref() == rid)?;
        Some(self.in_flight.remove(at))
    }
}

/// What the broker reports, oldest first through `poll_event`. The shell ([`crate::broker_loop`])
/// turns each into its documented log line; those marked *peer input* are throttled there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant's doc says what its fields are
pub enum Event {
    /// A message that is not valid MDP was dropped (peer input).
    Malformed(ProtocolError),
    /// A send to `peer` blocked: it does not read, and messages to it are dropped for `pause`
    /// ([`Broker::handle_send_blocked`]).
    NotReading { peer: Bytes, pause: Duration },
    /// A worker message with an envelope of this many frames was dropped: workers connect
    /// directly, so theirs is one routing id (peer input).
    BadEnvelope(usize),
    /// A worker registered for `service`.
    WorkerReady { id: Bytes, service: Bytes },
    /// A worker asked for credit `asked` and is served with `granted` ([`crate::credit`]):
    /// `why` says why less.
    CreditLimited {
        id: Bytes,
        asked: u32,
        granted: u32,
        why: crate::credit::Limit,
    },
    /// A worker said DISCONNECT; its `in_flight` requests go to the next workers.
    WorkerLeft { id: Bytes, in_flight: usize },
    /// DISCONNECT from a worker that is not registered: ignored.
    UnknownLeft(Bytes),
    /// A worker's connection closed (or, if `unreachable`, a send to it failed): purged, its
    /// `in_flight` requests handed to the next workers (peer input).
    WorkerGone {
        id: Bytes,
        unreachable: bool,
        in_flight: usize,
    },
    /// A worker silent for `liveness × heartbeat` was purged, with its `in_flight` requests.
    WorkerExpired { id: Bytes, in_flight: usize },
    /// A worker broke the protocol and was sent DISCONNECT (peer input).
    Disconnected { id: Bytes, why: Offence },
    /// A client's connection closed: `kept` of its waiting requests were taken over by a retry
    /// from another address, `dropped` were dropped (peer input).
    ClientGone {
        client: Bytes,
        kept: usize,
        dropped: usize,
    },
    /// `service`'s queue was full (`waiting` requests, `bytes`) when `client` sent a request:
    /// it was refused (`evicted: None`), or that many newest requests of the biggest client
    /// were dropped to make room (peer input).
    QueueFull {
        service: Bytes,
        waiting: usize,
        bytes: usize,
        client: Bytes,
        evicted: Option<usize>,
    },
    /// `count` requests for `service` waited `after` and were dropped; `at_dispatch` if found
    /// expired when a worker came rather than by the timer (peer input).
    Expired {
        service: Bytes,
        count: usize,
        after: Duration,
        at_dispatch: bool,
    },
    /// A retry of request `rid` joined the running one (peer input).
    RetryJoined { rid: Rid, service: Bytes },
    /// A retry of request `rid` was answered from the remembered reply (peer input).
    RetryReplayed { rid: Rid, service: Bytes },
    /// The request-id store forgot ids: `forgotten.aged` older than `ttl`, `forgotten.evicted`
    /// early because it held `max_entries`.
    DedupForgot {
        forgotten: Forgotten,
        ttl: Duration,
        max_entries: usize,
    },
    /// A heartbeat tick: every worker was sent HEARTBEAT (the shell reports suppressed lines).
    Tick,
    /// A worker of the pair refused our request `rid`: `senior` outranks this broker, which
    /// must stand down ([`crate::ha`] feeds it to the pair's node). The request goes back to
    /// the head of its queue.
    Fenced {
        id: Bytes,
        rid: Rid,
        senior: Standing,
    },
    /// A worker reported the reply to `rid`, a request the other broker of the pair
    /// dispatched; it went to `delivered` clients whose retries had joined it here.
    AnsweredElsewhere {
        id: Bytes,
        rid: Rid,
        delivered: usize,
    },
    /// This broker stopped dispatching (its pair made it PASSIVE): `dropped` waiting requests
    /// were dropped (their clients retry at the active broker).
    StoodDown { dropped: usize },
    /// A worker sent broker-pair frames only a broker sends (peer input).
    MisplacedPairFrames(Bytes),
    /// A reply went to a client, the `count`th ([`BrokerConfig::log_replies`] only).
    Answered { count: u64 },
    /// A 0.1 client got only the FINAL of a streamed reply from `service`: its `parts` PARTIALs
    /// outgrew [`BrokerConfig::max_stream_bytes`] (peer input).
    StreamTruncated { service: Bytes, parts: usize },
}

/// Why a worker was sent DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offence {
    /// A second READY.
    SecondReady,
    /// READY for a reserved `mmi.*` service.
    ReservedService(Bytes),
    /// REPLY from a registered worker with no request out.
    ReplyWhileIdle,
    /// REPLY from a worker with credit that names no request out at it (client and rid).
    ReplyToUnknownRequest,
    /// REPLY from a worker that is not registered.
    ReplyFromUnknown,
    /// HEARTBEAT from a worker that is not registered.
    UnknownHeartbeat,
    /// REQUEST sent to the broker.
    RequestToBroker,
    /// READY for a service its connection's key may not offer (`--worker-keys`).
    KeyNotAllowed {
        /// The service asked for.
        service: Bytes,
        /// The connection's authenticated key; `None` without CURVE.
        key: Option<PublicKey>,
    },
}

/// How a peer was lost ([`Broker::handle_peer_lost`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Its connection closed (the ROUTER's disconnect event): a worker is purged, a client's
    /// waiting requests are dropped.
    Closed,
    /// A send to it failed because the ROUTER no longer knows it: a worker is purged, nothing
    /// changes for a client (its reply is lost, it retries).
    Unreachable,
}

/// The Majordomo broker state machine. See the [module docs](self).
pub struct Broker {
    config: BrokerConfig,
    pub(crate) services: HashMap<Bytes, Service>,
    pub(crate) workers: HashMap<Bytes, Worker>,
    outbox: Outbox<Message, Event>,
    ticker: Ticker,
    next_expiry: Option<Instant>,
    pub(crate) stats: BrokerStats,
    pub(crate) dedup: Dedup,
    /// `None` for a lone broker (it always dispatches); in a pair, our standing: we dispatch
    /// only while ACTIVE, and pair workers get it with every REQUEST and HEARTBEAT.
    pub(crate) standing: Option<Standing>,
    /// In a pair: the peer's last state and when it was last heard (for `mmi.pair`).
    pub(crate) peer: Option<(State, Instant)>,
    /// The authenticated CURVE key of each connected peer that has one.
    pub(crate) peer_keys: HashMap<Bytes, PublicKey>,
    /// The dialect of each MDP/0.2 client peer, by routing id (0.1 peers are not kept), in
    /// the order first seen (for the bound [`MAX_STREAMING_CLIENTS`]).
    streaming_clients: HashMap<Bytes, Dialect>,
    streaming_order: VecDeque<Bytes>,
    /// Peers that do not read, and until when messages to them are dropped ([`STUCK_PAUSE`]).
    paused: HashMap<Bytes, Instant>,
    /// The latest `now` an input brought: `poll_transmit` takes no time, and a worker purged
    /// there (a message to it was dropped) is purged at this time.
    clock: Instant,
}

impl Broker {
    /// A broker with no services and no workers, started at `now`.
    pub fn new(config: BrokerConfig, now: Instant) -> Self {
        Self {
            ticker: Ticker::new(config.heartbeat, now),
            dedup: Dedup::new(config.dedup),
            config,
            services: HashMap::new(),
            workers: HashMap::new(),
            outbox: Outbox::default(),
            next_expiry: None,
            stats: BrokerStats::default(),
            standing: None,
            peer: None,
            peer_keys: HashMap::new(),
            streaming_clients: HashMap::new(),
            streaming_order: VecDeque::new(),
            paused: HashMap::new(),
            clock: now,
        }
    }

    /// Every input starts here: time moves on, and pauses that ran out end.
    fn advance(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if !self.paused.is_empty() {
            self.paused.retain(|_, until| *until > now);
        }
    }

    /// In a pair: the peer was heard at `now`, in `state` (for `mmi.pair`).
    pub fn set_peer(&mut self, state: State, now: Instant) {
        self.peer = Some((state, now));
    }

    /// Our standing in a broker pair ([`crate::ha`] calls this on every change of state or
    /// epoch). Dispatching starts when it becomes ACTIVE, and stops when it no longer is: the
    /// waiting requests are then dropped (their clients retry at the active broker), and the
    /// requests out at workers are still answered here.
    pub fn set_standing(&mut self, standing: Standing, now: Instant) {
        self.advance(now);
        let was = self.dispatching();
        let changed = self.standing != Some(standing);
        self.standing = Some(standing);
        if changed {
            // Tell the pair workers now, not a heartbeat later: the sooner a worker hears a
            // new ACTIVE standing, the shorter the time it could still run a request of a
            // deposed broker.
            for (id, worker) in &self.workers {
                if worker.pair {
                    self.outbox.transmit(protocol::to_router(
                        Message::from_frames([id.clone()]),
                        WorkerCommand::Pair(PairFrames::Standing(standing)).into_frames(),
                    ));
                }
            }
        }
        match (was, self.dispatching()) {
            (false, true) => {
                let names: Vec<Bytes> = self.services.keys().cloned().collect();
                for name in names {
                    self.dispatch(&name, now);
                }
            }
            (true, false) => self.drop_waiting(),
            _ => {}
        }
    }

    /// Our standing in a pair (`None` for a lone broker).
    pub fn standing(&self) -> Option<Standing> {
        self.standing
    }

    /// True unless this broker is one of a pair and not ACTIVE.
    fn dispatching(&self) -> bool {
        self.standing.is_none_or(|s| s.state == State::Active)
    }

    /// Drops every waiting request (this broker no longer dispatches); their ids are
    /// abandoned, so a retry at whichever broker serves runs them.
    fn drop_waiting(&mut self) {
        let mut dropped = 0;
        for (name, service) in &mut self.services {
            for request in service.requests.drain() {
                if let Some(rid) = request.rid() {
                    self.dedup.abandon(name, &rid);
                }
                dropped += 1;
            }
        }
        let names: Vec<Bytes> = self.services.keys().cloned().collect();
        for name in names {
            self.forget_if_unused(&name);
        }
        self.next_expiry = None;
        self.stats.dropped_passive += dropped as u64;
        self.outbox.event(Event::StoodDown { dropped });
    }

    /// Counters since start.
    pub fn stats(&self) -> BrokerStats {
        self.stats
    }

    /// Registered workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Service entries (services with workers or waiting requests).
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Counters of the request-id store.
    pub fn dedup_stats(&self) -> dedup::DedupStats {
        self.dedup.stats()
    }

    /// Request ids remembered (running and answered).
    pub fn dedup_len(&self) -> usize {
        self.dedup.len()
    }

    /// Handles one message as received by the ROUTER (`routing id, "", header, …`).
    pub fn handle_message(&mut self, frames: Message, now: Instant) {
        self.handle_parsed(Received::parse(frames), now);
    }

    /// [`handle_message`](Self::handle_message) for a message already parsed (the broker pair,
    /// [`crate::ha`], looks at client requests before they get here).
    pub fn handle_parsed(&mut self, parsed: Result<Received, ProtocolError>, now: Instant) {
        self.advance(now);
        match parsed {
            Ok(Received {
                sender,
                dialect,
                command: Inbound::Client(command),
            }) => self.client_command(sender, dialect, command, now),
            Ok(Received {
                sender,
                dialect,
                command: Inbound::Worker(command),
            }) => self.worker_command(sender, dialect, command, now),
            Err(error) => {
                self.stats.malformed += 1;
                self.outbox.event(Event::Malformed(error));
            }
        }
    }

    /// Sends DISCONNECT to every worker and forgets them (the broker is going away; they
    /// reconnect to its successor at once instead of waiting for their liveness to run out).
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.advance(now);
        let ids: Vec<(Bytes, Dialect)> = self
            .workers
            .iter()
            .map(|(id, w)| (id.clone(), w.dialect))
            .collect();
        for (id, dialect) in ids {
            self.send_disconnect(&id, dialect);
        }
    }

    /// A peer finished its handshake; `key` is the CURVE key its connection authenticated
    /// (the native ROUTER's connect event), checked when it sends READY (`--worker-keys`).
    pub fn handle_connected(&mut self, peer: &Bytes, key: Option<PublicKey>, now: Instant) {
        self.advance(now);
        match key {
            Some(key) => self.peer_keys.insert(peer.clone(), key),
            None => self.peer_keys.remove(peer),
        };
    }

    /// `peer` is gone: its connection closed ([`Lost::Closed`], the socket monitor's
    /// `Disconnected`) or the ROUTER no longer knows it ([`Lost::Unreachable`], a send failed).
    ///
    /// A worker is purged at once and its requests in flight go back to the head of their
    /// service queue, to the next idle worker. A closed client's waiting requests are dropped;
    /// for an unreachable client nothing changes (its reply is lost, it retries).
    pub fn handle_peer_lost(&mut self, peer: &Bytes, lost: Lost, now: Instant) {
        self.advance(now);
        match lost {
            Lost::Closed => self.peer_closed(peer, now),
            Lost::Unreachable => {
                if self.workers.contains_key(peer) {
                    self.worker_gone(peer, true, now);
                }
            }
        }
    }

    /// A send to `peer` found its queue full for the shell's whole send timeout: the peer does
    /// not read. Messages to it are dropped for [`STUCK_PAUSE`] ([`Event::NotReading`]), and
    /// a worker is purged like an unreachable one (it is no use), its requests handed on.
    pub fn handle_send_blocked(&mut self, peer: &Bytes, now: Instant) {
        self.advance(now);
        self.outbox.event(Event::NotReading {
            peer: peer.clone(),
            pause: STUCK_PAUSE,
        });
        self.paused
            .insert(peer.clone(), contract::saturating_add(now, STUCK_PAUSE));
        if self.workers.contains_key(peer) {
            self.worker_gone(peer, true, now);
        }
    }

    /// [`Lost::Closed`]: a worker is purged, a client's waiting requests dropped.
    fn peer_closed(&mut self, peer: &Bytes, now: Instant) {
        self.peer_keys.remove(peer);
        if self.workers.contains_key(peer) {
            self.worker_gone(peer, false, now);
            return;
        }
        if self.streaming_clients.remove(peer).is_some() {
            if let Some(at) = self.streaming_order.iter().position(|p| p == peer) {
                self.streaming_order.remove(at);
            }
        }
        let (mut dropped, mut handed) = (0, 0);
        let mut emptied = Vec::new();
        for (name, service) in &mut self.services {
            // Newest first, so that requests handed on keep their order at the queue's head.
            for request in service.requests.remove_client(peer).into_iter().rev() {
                // Dedup hook: a retry of this request from another address (a fresh socket)
                // may have been joined to it; that address takes it over. Otherwise its id is
                // abandoned, so a later retry runs it.
                let other = request
                    .rid()
                    .and_then(|rid| self.dedup.leave(name, &rid, peer));
                match other {
                    Some(client) => {
                        service.requests.push_front(request.with_client(client));
                        handed += 1;
                    }
                    None => dropped += 1,
                }
            }
            if service.requests.is_empty() && service.workers == 0 {
                emptied.push(name.clone());
            }
        }
        for name in emptied {
            self.forget_if_unused(&name);
        }
        self.stats.dropped_client_gone += dropped as u64;
        if handed + dropped > 0 {
            self.outbox.event(Event::ClientGone {
                client: peer.clone(),
                kept: handed,
                dropped,
            });
        }
    }

    fn worker_gone(&mut self, id: &Bytes, unreachable: bool, now: Instant) {
        let in_flight = self.workers.get(id).map_or(0, Worker::used);
        self.outbox.event(Event::WorkerGone {
            id: id.clone(),
            unreachable,
            in_flight,
        });
        self.stats.workers_gone += 1;
        self.remove_worker(id, Leaving::Requeue(now));
    }

    /// Remembers the dialect of a client peer (only 0.2 ones are kept: 0.1 is the default).
    fn note_client(&mut self, client: &Message, dialect: Dialect) {
        let Some(peer) = client.first() else { return };
        if !dialect.streams() {
            if !self.streaming_clients.is_empty() {
                self.streaming_clients.remove(peer);
            }
            return;
        }
        if self
            .streaming_clients
            .insert(peer.clone(), dialect)
            .is_none()
        {
            self.streaming_order.push_back(peer.clone());
            while self.streaming_order.len() > MAX_STREAMING_CLIENTS {
                if let Some(old) = self.streaming_order.pop_front() {
                    self.streaming_clients.remove(&old);
                }
            }
        }
    }

    /// The dialect a client address is answered in.
    fn client_dialect(&self, client: &Message) -> Dialect {
        if self.streaming_clients.is_empty() {
            return Dialect::V01;
        }
        client
            .first()
            .and_then(|peer| self.streaming_clients.get(peer))
            .copied()
            .unwrap_or_default()
    }

    fn client_command(
        &mut self,
        client: Message,
        dialect: Dialect,
        command: ClientCommand,
        now: Instant,
    ) {
        let ClientCommand::Request { service, mut body } = command else {
            // Parsing a client message at the broker only ever yields a REQUEST.
            return;
        };
        self.note_client(&client, dialect);
        self.stats.requests += 1;
        // The rid frame stays in front of the body: the queue keeps it there (see `fair`).
        let rid = body.first().and_then(Rid::from_frame);
        if protocol::is_mmi(&service) {
            if rid.is_some() {
                body.pop_front();
            }
            let reply = self.mmi(&service, &body, now);
            self.send_reply(client, service, rid.as_ref(), &[], reply);
            return;
        }
        if let Some(rid) = &rid {
            if !self.dedup_admit(&client, &service, rid, now) {
                return;
            }
        }
        let max_bytes = self.config.max_queue_bytes;
        let expires = contract::saturating_add(now, self.config.request_timeout);
        // The client's own id (last frame of its address stack), for the events.
        let who = client.iter().last().cloned().unwrap_or_default();
        let entry = self.services.entry(service.clone()).or_default();
        let admission = entry
            .requests
            .push(Queued::new(client, body, expires), max_bytes);
        let full = |evicted| Event::QueueFull {
            service: service.clone(),
            waiting: entry.requests.len(),
            bytes: entry.requests.bytes(),
            client: who,
            evicted,
        };
        match admission {
            Admission::Queued { evicted } if evicted.is_empty() => {}
            Admission::Queued { evicted } => {
                self.outbox.event(full(Some(evicted.len())));
                self.stats.dropped_full += evicted.len() as u64;
                self.dedup_dropped(&service, &evicted);
            }
            Admission::Refused => {
                self.outbox.event(full(None));
                self.stats.dropped_full += 1;
                if let Some(rid) = &rid {
                    self.dedup.abandon(&service, rid);
                }
                self.forget_if_unused(&service);
                return;
            }
        }
        self.next_expiry = Some(self.next_expiry.map_or(expires, |at| at.min(expires)));
        self.dispatch(&service, now);
    }

    /// Sends a whole reply to `client` in its dialect: the `parts` not delivered yet, then
    /// `body` as the REPLY or FINAL; each with the request's id in front if it has one. A 0.1
    /// client gets `parts` and `body` concatenated into one REPLY (the bridging rule).
    fn send_reply(
        &mut self,
        client: Message,
        service: Bytes,
        rid: Option<&Rid>,
        parts: &[Message],
        body: Message,
    ) {
        if self.config.log_replies && !protocol::is_mmi(&service) {
            self.stats.answered += 1;
            self.outbox.event(Event::Answered {
                count: self.stats.answered,
            });
        }
        let dialect = self.client_dialect(&client);
        let mut body = if dialect.streams() {
            for part in parts {
                self.send_partial(&client, dialect, &service, rid, part.clone());
            }
            body
        } else {
            stream::concatenate(parts, body)
        };
        if let Some(rid) = rid {
            rid.put(&mut body);
        }
        let reply = ClientCommand::Reply { service, body }.encode(dialect);
        self.outbox
            .transmit(protocol::to_router_in(dialect, client, reply));
    }

    /// Sends one PARTIAL to a streaming client.
    fn send_partial(
        &mut self,
        client: &Message,
        dialect: Dialect,
        service: &Bytes,
        rid: Option<&Rid>,
        mut body: Message,
    ) {
        if let Some(rid) = rid {
            rid.put(&mut body);
        }
        let partial = ClientCommand::Partial {
            service: service.clone(),
            body,
        };
        self.outbox.transmit(protocol::to_router_in(
            dialect,
            client.clone(),
            partial.encode(dialect),
        ));
    }

    /// Dedup hook for a request with an id: true if it is new and must be queued; otherwise
    /// the retry was joined to its running request or answered from the store.
    fn dedup_admit(&mut self, client: &Message, service: &Bytes, rid: &Rid, now: Instant) -> bool {
        match self.dedup.admit(service, rid, client, now) {
            Admit::Dispatch => true,
            Admit::Joined => {
                self.outbox.event(Event::RetryJoined {
                    rid: rid.clone(),
                    service: service.clone(),
                });
                false
            }
            Admit::Replay(remembered) => {
                self.outbox.event(Event::RetryReplayed {
                    rid: rid.clone(),
                    service: service.clone(),
                });
                let (parts, last) = stream::unpack(remembered);
                self.send_reply(client.clone(), service.clone(), Some(rid), &parts, last);
                false
            }
        }
    }

    /// A worker's REPLY or FINAL for `client`'s request ended it: the client gets the reply
    /// (a streaming client only the FINAL, it has the parts; a 0.1 client every kept part
    /// concatenated). With an id, the whole reply is remembered (dedup hook) and sent whole to
    /// every other address that joined it (each once).
    fn finish_request(
        &mut self,
        client: Message,
        service: Bytes,
        rid: Option<Rid>,
        parts: Option<Box<stream::Parts>>,
        body: Message,
        now: Instant,
    ) {
        let kept: &[Message] = parts
            .as_deref()
            .and_then(stream::Parts::kept)
            .unwrap_or(&[]);
        let overflowed = parts.as_deref().is_some_and(stream::Parts::overflowed);
        let joined = match &rid {
            // Its parts are gone: it cannot be remembered or sent whole. Forgotten, so that the
            // retries that joined it retry again and run it anew (their clients skip the parts
            // they have), rather than get a stream with a hole.
            Some(rid) if overflowed => {
                self.dedup.abandon(&service, rid);
                Vec::new()
            }
            Some(rid) => {
                let remembered = stream::pack(kept, &body);
                self.dedup.finish(&service, rid, &remembered, now)
            }
            None => Vec::new(),
        };
        let to_client: &[Message] = if self.client_dialect(&client).streams() {
            &[]
        } else {
            if let Some(p) = parts.as_deref().filter(|p| p.overflowed()) {
                self.outbox.event(Event::StreamTruncated {
                    service: service.clone(),
                    parts: p.delivered(),
                });
            }
            kept
        };
        let others: Vec<Message> = joined.into_iter().filter(|w| *w != client).collect();
        self.send_reply(
            client,
            service.clone(),
            rid.as_ref(),
            to_client,
            body.clone(),
        );
        for waiter in others {
            self.send_reply(waiter, service.clone(), rid.as_ref(), kept, body.clone());
        }
    }

    /// Dedup hook for requests a queue dropped before they ran (refused, evicted, expired):
    /// their ids are forgotten, so that a retry runs them again instead of joining a request
    /// that will never be answered.
    fn dedup_dropped(&mut self, service: &Bytes, dropped: &[Queued]) {
        for rid in dropped.iter().filter_map(Queued::rid) {
            self.dedup.abandon(service, &rid);
        }
    }

    /// Reports what the request-id store forgot (by age, or early because it was full).
    fn dedup_expire(&mut self, now: Instant) {
        let forgotten = self.dedup.expire(now);
        if !forgotten.is_empty() {
            self.outbox.event(Event::DedupForgot {
                forgotten,
                ttl: self.config.dedup.ttl,
                max_entries: self.config.dedup.max_entries,
            });
        }
    }

    fn worker_command(
        &mut self,
        sender: Message,
        dialect: Dialect,
        command: WorkerCommand,
        now: Instant,
    ) {
        // Workers connect directly: their envelope is their routing id.
        let id = match (sender.len(), sender.first()) {
            (1, Some(id)) => id.clone(),
            _ => {
                self.stats.malformed += 1;
                self.outbox.event(Event::BadEnvelope(sender.len()));
                return;
            }
        };
        let known = self.workers.contains_key(&id);
        if known && !matches!(command, WorkerCommand::Disconnect) {
            if let Some(worker) = self.workers.get_mut(&id) {
                worker.liveness.heard(now);
            }
        }
        match command {
            WorkerCommand::Ready { .. } if known => {
                self.disconnect(&id, dialect, Offence::SecondReady)
            }
            WorkerCommand::Ready { service, .. } if protocol::is_mmi(&service) => {
                self.disconnect(&id, dialect, Offence::ReservedService(service));
            }
            WorkerCommand::Ready { service, .. }
                if !self
                    .config
                    .worker_keys
                    .admits(&service, self.peer_keys.get(&id)) =>
            {
                let key = self.peer_keys.get(&id).copied();
                self.disconnect(&id, dialect, Offence::KeyNotAllowed { service, key });
            }
            WorkerCommand::Ready {
                service,
                request_ids,
                pair,
                credit,
            } => {
                self.outbox.event(Event::WorkerReady {
                    id: id.clone(),
                    service: service.clone(),
                });
                let (granted, limit) = crate::credit::grant(credit, request_ids);
                if let Some(why) = limit {
                    self.outbox.event(Event::CreditLimited {
                        id: id.clone(),
                        asked: credit,
                        granted,
                        why,
                    });
                }
                let liveness = Liveness::new(self.config.heartbeat, self.config.liveness, now);
                self.workers.insert(
                    id.clone(),
                    Worker {
                        service: service.clone(),
                        dialect,
                        liveness,
                        request_ids,
                        credit: granted as usize,
                        in_flight: Vec::new(),
                        pair,
                        elsewhere: Vec::new(),
                    },
                );
                let entry = self.services.entry(service.clone()).or_default();
                entry.workers += 1;
                entry.idle.push_back(id);
                self.dispatch(&service, now);
            }
            WorkerCommand::Reply { client, mut body } => {
                let Some(worker) = self
                    .workers
                    .get_mut(&id)
                    .filter(|w| !w.in_flight.is_empty())
                else {
                    let why = if known {
                        Offence::ReplyWhileIdle
                    } else {
                        Offence::ReplyFromUnknown
                    };
                    self.disconnect(&id, dialect, why);
                    return;
                };
                // A worker with credit names the request by its rid frame (crate::credit).
                let named = if worker.credit > 1 {
                    Rid::take(&mut body)
                } else {
                    None
                };
                let was_full = !worker.has_room();
                let Some(mut answered) = worker.take_answered(&client, named.as_ref()) else {
                    self.disconnect(&id, dialect, Offence::ReplyToUnknownRequest);
                    return;
                };
                let running = answered.rid();
                let parts = answered.stream.take();
                let service = worker.service.clone();
                let now_idle = !worker.busy();
                if let Some(entry) = self.services.get_mut(&service) {
                    entry.served += 1;
                    if now_idle {
                        entry.busy -= 1;
                    }
                    if was_full {
                        entry.idle.push_back(id);
                    }
                }
                self.stats.replies += 1;
                self.finish_request(client, service.clone(), running, parts, body, now);
                self.dispatch(&service, now);
            }
            WorkerCommand::Partial { client, body } => self.partial(&id, dialect, client, body),
            WorkerCommand::Pair(frames) if known => self.pair_news(&id, frames, now),
            WorkerCommand::Pair(_) => self.disconnect(&id, dialect, Offence::UnknownHeartbeat),
            WorkerCommand::Heartbeat if known => {}
            WorkerCommand::Heartbeat => self.disconnect(&id, dialect, Offence::UnknownHeartbeat),
            WorkerCommand::Disconnect if known => {
                let in_flight = self.workers.get(&id).map_or(0, Worker::used);
                self.outbox.event(Event::WorkerLeft {
                    id: id.clone(),
                    in_flight,
                });
                self.remove_worker(&id, Leaving::Requeue(now));
            }
            WorkerCommand::Disconnect => self.outbox.event(Event::UnknownLeft(id)),
            WorkerCommand::Request { .. } => {
                self.disconnect(&id, dialect, Offence::RequestToBroker)
            }
        }
    }

    /// A PARTIAL from worker `id` for `client`: passed on to a streaming client at once (a 0.1
    /// client gets it with the FINAL), kept for bridging and retries, or dropped if an earlier
    /// run of the request already delivered it ([`stream`]). Only a worker of credit 1 (every
    /// 0.2 worker) can stream: the part must belong to its one request.
    fn partial(&mut self, id: &Bytes, dialect: Dialect, client: Message, body: Message) {
        let max_bytes = self.config.max_stream_bytes;
        let Some(worker) = self.workers.get_mut(id) else {
            self.disconnect(id, dialect, Offence::ReplyFromUnknown);
            return;
        };
        let service = worker.service.clone();
        let Some(request) = worker.in_flight.first_mut() else {
            self.disconnect(id, dialect, Offence::ReplyWhileIdle);
            return;
        };
        if worker.credit != 1 || !request.is_from(&client) {
            self.disconnect(id, dialect, Offence::ReplyToUnknownRequest);
            return;
        }
        let parts = request.stream.get_or_insert_with(Default::default);
        if parts.partial(&body, max_bytes) == stream::Fate::Duplicate {
            return;
        }
        let rid = request.rid();
        let to = self.client_dialect(&client);
        if to.streams() {
            self.send_partial(&client, to, &service, rid.as_ref(), body);
        }
    }

    /// News from a registered worker of a broker pair ([`crate::pair`]).
    fn pair_news(&mut self, id: &Bytes, frames: PairFrames, now: Instant) {
        let Some(worker) = self.workers.get_mut(id) else {
            return;
        };
        let service = worker.service.clone();
        match frames {
            // It runs `rid` for the other broker: it takes one of its credit here too, and a
            // retry here joins it.
            PairFrames::Running(rid) => {
                if !worker.has_room() || worker.elsewhere.contains(&rid) {
                    return; // all its credit is taken here: it cannot run another (a stale report)
                }
                let was_idle = !worker.busy();
                worker.elsewhere.push(rid.detached());
                let full = !worker.has_room();
                if let Some(entry) = self.services.get_mut(&service) {
                    if was_idle {
                        entry.busy += 1;
                    }
                    if full {
                        if let Some(at) = entry.idle.iter().position(|w| w == id) {
                            entry.idle.remove(at);
                        }
                    }
                }
                self.dedup.running_elsewhere(&service, &rid, now);
            }
            // Its reply to a request of the other broker: remembered, and sent to the clients
            // whose retries joined it here (e.g. after that broker died).
            PairFrames::Answered(rid, body) => {
                if let Some(at) = worker.elsewhere.iter().position(|r| *r == rid) {
                    let was_full = !worker.has_room();
                    worker.elsewhere.swap_remove(at);
                    let now_idle = !worker.busy();
                    if let Some(entry) = self.services.get_mut(&service) {
                        if now_idle {
                            entry.busy -= 1;
                        }
                        if was_full {
                            entry.idle.push_back(id.clone());
                        }
                    }
                }
                let joined = self.dedup.finish(&service, &rid, &body, now);
                let delivered = joined.len();
                for client in joined {
                    self.send_reply(client, service.clone(), Some(&rid), &[], body.clone());
                }
                self.stats.answered_elsewhere += 1;
                self.outbox.event(Event::AnsweredElsewhere {
                    id: id.clone(),
                    rid,
                    delivered,
                });
                self.dispatch(&service, now);
            }
            // It did not run our request: a broker it hears outranks us. The request goes back
            // to the head of its queue; the pair will make us stand down.
            PairFrames::Refused(rid, senior) => {
                let Some(at) = worker
                    .in_flight
                    .iter()
                    .position(|q| q.rid().as_ref() == Some(&rid))
                else {
                    return;
                };
                let was_full = !worker.has_room();
                let request = worker.in_flight.remove(at);
                let now_idle = !worker.busy();
                if let Some(entry) = self.services.get_mut(&service) {
                    if now_idle {
                        entry.busy -= 1;
                    }
                    if was_full {
                        entry.idle.push_back(id.clone());
                    }
                    entry.requests.push_front(request);
                }
                self.stats.fenced += 1;
                self.outbox.event(Event::Fenced {
                    id: id.clone(),
                    rid,
                    senior,
                });
            }
            PairFrames::Standing(_) => {
                self.stats.malformed += 1;
                self.outbox.event(Event::MisplacedPairFrames(id.clone()));
            }
        }
    }

    /// Sends DISCONNECT to `id` (in `dialect`, the one it spoke) and forgets it if it was
    /// registered; `why` is reported.
    fn disconnect(&mut self, id: &Bytes, dialect: Dialect, why: Offence) {
        self.outbox.event(Event::Disconnected {
            id: id.clone(),
            why,
        });
        self.send_disconnect(id, dialect);
    }

    fn send_disconnect(&mut self, id: &Bytes, dialect: Dialect) {
        self.stats.disconnects_sent += 1;
        self.outbox.transmit(protocol::to_router_in(
            dialect,
            Message::from_frames([id.clone()]),
            WorkerCommand::Disconnect.encode(dialect),
        ));
        // A worker told to go away by us is misbehaving: its request is not handed on (the
        // client retries).
        self.remove_worker(id, Leaving::DropRequest);
    }

    /// Forgets a worker. Its requests in flight, if any, are put back at the head of their
    /// service queue ([`Leaving::Requeue`]), oldest first, or dropped.
    fn remove_worker(&mut self, id: &Bytes, leaving: Leaving) {
        let Some(worker) = self.workers.remove(id) else {
            return;
        };
        let Some(entry) = self.services.get_mut(&worker.service) else {
            return;
        };
        entry.workers -= 1;
        if worker.busy() {
            entry.busy -= 1;
        }
        if worker.has_room() {
            if let Some(at) = entry.idle.iter().position(|w| w == id) {
                entry.idle.remove(at);
            }
        }
        for rid in &worker.elsewhere {
            // It may have died running it: a retry runs it again (at least once).
            self.dedup.abandon(&worker.service, rid);
        }
        // Newest first, so that the oldest ends at the head of the queue.
        for request in worker.in_flight.into_iter().rev() {
            match leaving {
                Leaving::Requeue(_) => {
                    // It keeps its id, still running in the store: a retry joins it.
                    let expires = request.expires;
                    entry.requests.push_front(request);
                    self.stats.requeued += 1;
                    self.next_expiry = Some(self.next_expiry.map_or(expires, |at| at.min(expires)));
                }
                Leaving::DropRequest => {
                    self.stats.lost_with_worker += 1;
                    if let Some(rid) = request.rid() {
                        self.dedup.abandon(&worker.service, &rid);
                    }
                }
            }
        }
        match leaving {
            Leaving::Requeue(now) => self.dispatch(&worker.service, now),
            Leaving::DropRequest => self.forget_if_unused(&worker.service),
        }
    }

    fn forget_if_unused(&mut self, service: &Bytes) {
        if self
            .services
            .get(service)
            .is_some_and(|s| s.workers == 0 && s.requests.is_empty())
        {
            self.services.remove(service);
        }
    }

    /// Hands waiting requests of `service` to its workers with spare credit.
    fn dispatch(&mut self, service: &Bytes, now: Instant) {
        if !self.dispatching() {
            return;
        }
        let Some(mut entry) = self.services.get_mut(service) else {
            return;
        };
        while !entry.idle.is_empty() {
            let Some(request) = entry.requests.pop() else {
                break;
            };
            // A worker of the pair may have run it meanwhile for the other broker.
            let settled = request.rid().and_then(|rid| {
                Some((
                    self.dedup
                        .before_dispatch(service, &rid, &request.client())?,
                    rid,
                ))
            });
            match settled {
                Some((Admit::Joined, _)) => continue,
                Some((Admit::Replay(remembered), rid)) => {
                    let (parts, last) = stream::unpack(remembered);
                    self.send_reply(request.client(), service.clone(), Some(&rid), &parts, last);
                    // `send_reply` needs `self`: look the service up again.
                    let Some(again) = self.services.get_mut(service) else {
                        return;
                    };
                    entry = again;
                    continue;
                }
                Some((Admit::Dispatch, _)) | None => {}
            }
            if request.expires <= now {
                self.stats.expired += 1;
                if let Some(rid) = request.rid() {
                    self.dedup.abandon(service, &rid);
                }
                self.outbox.event(Event::Expired {
                    service: service.clone(),
                    count: 1,
                    after: self.config.request_timeout,
                    at_dispatch: true,
                });
                continue;
            }
            // A request without an id goes to a worker that has none out (with credit, its
            // REPLY could not say which it answers); the first in turn, almost always.
            let at = if request.has_rid() {
                Some(0)
            } else {
                let workers = &self.workers;
                entry
                    .idle
                    .iter()
                    .position(|w| workers.get(w).is_some_and(Worker::takes_anonymous))
            };
            let Some(id) = at.and_then(|at| entry.idle.remove(at)) else {
                // Every worker with spare credit has one such request out: it waits for a
                // reply (it keeps its client's turn).
                entry.requests.push_front(request);
                break;
            };
            let Some(worker) = self.workers.get_mut(&id) else {
                entry.requests.push_front(request); // a stale entry of the list: next one
                continue;
            };
            if !worker.busy() {
                entry.busy += 1;
            }
            let (client, mut body) = request.parts(worker.request_ids);
            if let (true, Some(standing)) = (worker.pair, self.standing) {
                body.push_front(standing.to_frame());
            }
            let mut request = request;
            if let Some(parts) = request.stream.as_mut() {
                parts.rerun(); // requeued mid-stream: the new run's first parts are known
            }
            worker.in_flight.push(request);
            if worker.has_room() {
                entry.idle.push_back(id.clone());
            }
            let dialect = worker.dialect;
            let command = WorkerCommand::Request { client, body };
            self.outbox.transmit(protocol::to_router_in(
                dialect,
                Message::from_frames([id]),
                command.encode(dialect),
            ));
        }
        self.forget_if_unused(service);
    }

    /// Drops requests that waited too long; recomputes the next expiry.
    fn expire_requests(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        let mut emptied = Vec::new();
        for (name, entry) in &mut self.services {
            let expired = entry.requests.expire(now);
            if !expired.is_empty() {
                for rid in expired.iter().filter_map(Queued::rid) {
                    self.dedup.abandon(name, &rid);
                }
                self.stats.expired += expired.len() as u64;
                self.outbox.event(Event::Expired {
                    service: name.clone(),
                    count: expired.len(),
                    after: self.config.request_timeout,
                    at_dispatch: false,
                });
            }
            match entry.requests.poll_timeout() {
                Some(first) => next = Some(next.map_or(first, |n| n.min(first))),
                None if entry.workers == 0 => emptied.push(name.clone()),
                None => {}
            }
        }
        for name in emptied {
            self.forget_if_unused(&name);
        }
        self.next_expiry = next;
    }
}

impl Core for Broker {
    /// A message for the ROUTER, routing id first.
    type Transmit = Message;
    type Event = Event;

    /// Heartbeats, purges silent workers, expires old requests.
    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if self.next_expiry.is_some_and(|at| at <= now) {
            self.expire_requests(now);
        }
        if !self.ticker.poll(now) {
            return;
        }
        self.dedup_expire(now);
        let dead: Vec<Bytes> = self
            .workers
            .iter()
            .filter(|(_, worker)| worker.liveness.is_dead(now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            let in_flight = self.workers.get(&id).map_or(0, Worker::used);
            self.outbox.event(Event::WorkerExpired {
                id: id.clone(),
                in_flight,
            });
            self.stats.purged += 1;
            // A silent worker may be hung on this very request: do not hand it to the next
            // worker (the client retries if it wants to).
            self.remove_worker(&id, Leaving::DropRequest);
        }
        for (id, worker) in &self.workers {
            let heartbeat = match self.standing {
                Some(standing) if worker.pair => {
                    WorkerCommand::Pair(PairFrames::Standing(standing))
                }
                _ => WorkerCommand::Heartbeat,
            };
            self.outbox.transmit(protocol::to_router_in(
                worker.dialect,
                Message::from_frames([id.clone()]),
                heartbeat.encode(worker.dialect),
            ));
        }
        self.outbox.event(Event::Tick);
    }

    /// Always some: the next heartbeat tick, or a request's expiry before it.
    fn poll_timeout(&self) -> Option<Instant> {
        let tick = self.ticker.deadline();
        Some(self.next_expiry.map_or(tick, |expiry| expiry.min(tick)))
    }

    /// Messages to a paused peer ([`handle_send_blocked`](Broker::handle_send_blocked)) are
    /// dropped here, not returned: a worker among them would be left busy with a request it
    /// never got, so it is purged and its requests go to the next workers.
    fn poll_transmit(&mut self) -> Option<Message> {
        loop {
            let message = self.outbox.poll_transmit()?;
            let paused = match message.first() {
                Some(peer) if !self.paused.is_empty() => self.paused.contains_key(peer),
                _ => false,
            };
            if !paused {
                return Some(message);
            }
            let Some(peer) = message.first().cloned() else {
                continue;
            };
            if self.workers.contains_key(&peer) {
                self.worker_gone(&peer, true, self.clock);
            }
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

/// What happens to the request of a worker being forgotten.
#[derive(Clone, Copy)]
enum Leaving {
    /// Its connection closed or it said DISCONNECT: the next worker gets the request (the
    /// service is dispatched at this time).
    Requeue(Instant),
    /// Silent or misbehaving: the request is not handed on.
    DropRequest,
}

#[cfg(test)]
mod tests;
