//! The Paranoid Pirate queue's brain: which workers exist, which are idle, who gets the next
//! request, when to heartbeat, who is dead. No sockets, no clock.
//!
//! It follows [`common::contract::Core`]: the I/O loop ([`crate::queue_loop`]) feeds it messages
//! from the two ROUTER sockets through `handle_*(…, now)`, sends what [`Queue::poll_transmit`]
//! yields and logs what [`Queue::poll_event`] yields.
//!
//! # Rules
//! * A worker enters with READY and is then *idle*. Idle workers form an LRU list: the one
//!   idle longest gets the next request and becomes *busy*; its reply makes it idle again.
//! * Any valid message from a worker (READY, HEARTBEAT, reply) refreshes its liveness. A worker
//!   silent for `liveness × heartbeat` is purged, idle **or busy**.
//! * A HEARTBEAT from a busy worker refreshes its liveness and nothing else. (The Guide's
//!   `ppqueue` treats every worker message as "ready", so a busy worker that heartbeats is handed
//!   a second request; if it then dies, both are lost while another worker sits idle.)
//! * A request is never routed to a worker past its liveness deadline, even if the periodic
//!   purge has not run yet.
//! * The queue heartbeats every known worker, busy ones included, so a worker in the middle of
//!   a long request does not think the queue died.
//! * Malformed input from either side is reported as an [`Event::Malformed`] and dropped.
//! * When the backend socket reports that a worker's connection closed (the process died: the
//!   kernel closes its TCP connection; or a send to its identity fails), the worker is purged at
//!   once and the request it was working on goes back to the head of the pending list: nobody
//!   can answer it any more, so handing it on costs no duplicate. A hung worker keeps its
//!   connection, so for hangs liveness is the only detector, and its request is left to the
//!   client's retry (the worker may still answer it late).

use crate::protocol::{FrameError, FromWorker, Routed, ToWorker};
use bytes::Bytes;
use common::contract::{Core, Outbox};
use common::heartbeat::{Liveness, Ticker, HEARTBEAT_INTERVAL, HEARTBEAT_LIVENESS};
use common::Message;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Tuning of a [`Queue`].
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// How often the queue heartbeats each worker (Guide: 1000 ms).
    pub heartbeat: Duration,
    /// Missed heartbeats before a worker is dead (Guide: 3).
    pub liveness: u32,
    /// Requests held while every worker is busy; beyond that the oldest is dropped (its client
    /// retries). The I/O loop stops reading clients when no worker is idle, so this only
    /// absorbs races.
    pub max_pending: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            heartbeat: HEARTBEAT_INTERVAL,
            liveness: HEARTBEAT_LIVENESS,
            max_pending: 1000,
        }
    }
}

/// Which socket a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Clients (REQ) on the frontend ROUTER.
    Frontend,
    /// Workers (DEALER) on the backend ROUTER.
    Backend,
}

/// What a known worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Waiting for a request; on the LRU list.
    Idle,
    /// Working on a request; not on the LRU list until it replies.
    Busy,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A worker sent READY. `replaced` if the identity was already known (its old state is
    /// forgotten; a request it was busy with is its client's to retry).
    WorkerReady {
        /// Routing identity.
        worker: Bytes,
        /// The identity was already registered.
        replaced: bool,
    },
    /// A worker missed `liveness` heartbeats and was removed.
    WorkerPurged {
        /// Routing identity.
        worker: Bytes,
        /// Time since the queue last heard from it.
        silent: Duration,
        /// It was working on a request (now lost; the client retries).
        was_busy: bool,
    },
    /// A worker's connection closed; purged at once.
    WorkerGone {
        /// Routing identity.
        worker: Bytes,
        /// Time since the queue last heard from it.
        silent: Duration,
        /// The request it was working on went back to the head of the pending list.
        requeued: bool,
    },
    /// A message that is not valid 6/PPP, dropped.
    Malformed {
        /// Where it came from.
        side: Side,
        /// The routing identity of the sender (first frame), if any.
        peer: Option<Bytes>,
        /// What is wrong with it.
        error: FrameError,
    },
    /// A HEARTBEAT from a worker that is not registered (purged, or from before a restart of
    /// the queue). Ignored: it gets no heartbeats from us, declares the queue dead and comes
    /// back with READY under a fresh identity.
    UnknownWorker {
        /// Routing identity.
        worker: Bytes,
    },
    /// A reply from a worker that is not registered (it was purged while busy). Forwarded
    /// anyway: the client may still be waiting for it.
    LateReply {
        /// Routing identity.
        worker: Bytes,
    },
    /// A reply from a registered worker that had no request. Forwarded.
    UnexpectedReply {
        /// Routing identity.
        worker: Bytes,
    },
    /// The pending list overflowed and its oldest request was dropped.
    PendingOverflow {
        /// Address stack of the dropped request.
        client: Bytes,
    },
}

/// A message the queue wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send a command to a worker over the backend.
    ToWorker {
        /// Routing identity.
        worker: Bytes,
        /// What to send.
        command: ToWorker,
    },
    /// Send a reply to a client over the frontend.
    ToClient(Routed),
}

#[derive(Debug)]
struct Worker {
    liveness: Liveness,
    last_heard: Instant,
    /// The request it is working on (`None`: idle).
    in_flight: Option<Routed>,
}

impl Worker {
    fn state(&self) -> WorkerState {
        if self.in_flight.is_some() {
            WorkerState::Busy
        } else {
            WorkerState::Idle
        }
    }
}

/// The queue's state. See the module docs for the rules.
#[derive(Debug)]
pub struct Queue {
    config: QueueConfig,
    /// Every registered worker, idle or busy (ordered map: deterministic heartbeat order).
    workers: BTreeMap<Bytes, Worker>,
    /// Idle workers, longest idle first.
    idle: VecDeque<Bytes>,
    /// Requests waiting for an idle worker.
    pending: VecDeque<Routed>,
    ticker: Ticker,
    outbox: Outbox<Transmit, Event>,
}

impl Queue {
    /// An empty queue; the first heartbeat is due one interval after `now`.
    pub fn new(config: QueueConfig, now: Instant) -> Self {
        let ticker = Ticker::new(config.heartbeat, now);
        Self {
            config,
            workers: BTreeMap::new(),
            idle: VecDeque::new(),
            pending: VecDeque::new(),
            ticker,
            outbox: Outbox::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// True if a client request read now would go straight to a live worker. The I/O loop only
    /// reads the frontend then, leaving other requests queued in the socket (as the Guide does).
    pub fn accepts_requests(&self, now: Instant) -> bool {
        self.pending.is_empty()
            && self.idle.iter().any(|id| {
                self.workers
                    .get(id)
                    .is_some_and(|w| !w.liveness.is_dead(now))
            })
    }

    /// Registered workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Idle workers (on the LRU list).
    pub fn idle_count(&self) -> usize {
        self.idle.len()
    }

    /// Requests waiting for a worker.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The state of a registered worker.
    pub fn worker_state(&self, worker: &[u8]) -> Option<WorkerState> {
        self.workers.get(worker).map(Worker::state)
    }

    /// A message from the frontend ROUTER: `[client id, …, "", body…]`.
    pub fn handle_client(&mut self, message: Message, now: Instant) {
        let peer = message.first().cloned();
        match Routed::parse(message) {
            Ok(request) => {
                self.pending.push_back(request);
                if self.pending.len() > self.config.max_pending {
                    if let Some(dropped) = self.pending.pop_front() {
                        self.outbox.event(Event::PendingOverflow {
                            client: dropped.envelope.frames()[0].clone(),
                        });
                    }
                }
                self.dispatch(now);
            }
            Err(error) => self.outbox.event(Event::Malformed {
                side: Side::Frontend,
                peer,
                error,
            }),
        }
    }

    /// A message from the backend ROUTER: `[worker id, command or reply…]`.
    pub fn handle_worker(&mut self, mut message: Message, now: Instant) {
        let Some(worker) = message.pop_front() else {
            return self.outbox.event(Event::Malformed {
                side: Side::Backend,
                peer: None,
                error: FrameError::Empty,
            });
        };
        let command = match FromWorker::parse(message) {
            Ok(command) => command,
            Err(error) => {
                return self.outbox.event(Event::Malformed {
                    side: Side::Backend,
                    peer: Some(worker),
                    error,
                })
            }
        };
        match command {
            FromWorker::Ready => {
                let replaced = self.workers.contains_key(&worker);
                self.idle.retain(|id| *id != worker);
                self.workers.insert(
                    worker.clone(),
                    Worker {
                        liveness: Liveness::new(self.config.heartbeat, self.config.liveness, now),
                        last_heard: now,
                        in_flight: None,
                    },
                );
                self.idle.push_back(worker.clone());
                self.outbox.event(Event::WorkerReady { worker, replaced });
            }
            FromWorker::Heartbeat => match self.workers.get_mut(&worker) {
                // The fix over the Guide: liveness only, the worker stays busy if it is busy.
                Some(w) => {
                    w.liveness.heard(now);
                    w.last_heard = now;
                }
                None => self.outbox.event(Event::UnknownWorker { worker }),
            },
            FromWorker::Reply(reply) => {
                match self.workers.get_mut(&worker) {
                    Some(w) => {
                        w.liveness.heard(now);
                        w.last_heard = now;
                        if w.in_flight.take().is_some() {
                            self.idle.push_back(worker);
                        } else {
                            self.outbox.event(Event::UnexpectedReply { worker });
                        }
                    }
                    None => self.outbox.event(Event::LateReply { worker }),
                }
                self.outbox.transmit(Transmit::ToClient(reply));
            }
        }
        self.dispatch(now);
    }

    /// The worker's connection is gone: the backend socket saw it close, or a send to its
    /// identity failed because the socket no longer knows it. The worker is purged now instead
    /// of when its liveness runs out, and its request in flight goes to the next idle worker.
    pub fn handle_worker_lost(&mut self, worker: &[u8], now: Instant) {
        if let Some((worker, w)) = self.workers.remove_entry(worker) {
            self.idle.retain(|i| *i != worker);
            let requeued = match w.in_flight {
                Some(request) => {
                    self.pending.push_front(request);
                    true
                }
                None => false,
            };
            self.outbox.event(Event::WorkerGone {
                worker,
                silent: now.saturating_duration_since(w.last_heard),
                requeued,
            });
            self.dispatch(now);
        }
    }

    fn remove(&mut self, id: &Bytes, now: Instant) {
        if let Some(w) = self.workers.remove(id) {
            self.idle.retain(|i| i != id);
            self.outbox.event(Event::WorkerPurged {
                worker: id.clone(),
                silent: now.saturating_duration_since(w.last_heard),
                was_busy: w.in_flight.is_some(),
            });
        }
    }

    /// Hands pending requests to idle workers, longest idle first, skipping (and purging) any
    /// worker already past its deadline.
    fn dispatch(&mut self, now: Instant) {
        while !self.pending.is_empty() {
            let Some(id) = self.idle.pop_front() else {
                return;
            };
            let Some(worker) = self.workers.get_mut(&id) else {
                continue;
            };
            if worker.liveness.is_dead(now) {
                self.remove(&id, now);
                continue;
            }
            let request = self.pending.pop_front().expect("checked non-empty");
            worker.in_flight = Some(request.clone());
            self.outbox.transmit(Transmit::ToWorker {
                worker: id,
                command: ToWorker::Request(request),
            });
        }
    }
}

impl Core for Queue {
    type Transmit = Transmit;
    type Event = Event;

    /// Purges every worker past its deadline, idle or busy, then heartbeats the living ones
    /// when the interval is up.
    fn handle_timeout(&mut self, now: Instant) {
        let dead: Vec<Bytes> = self
            .workers
            .iter()
            .filter(|(_, w)| w.liveness.is_dead(now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.remove(&id, now);
        }
        if self.ticker.poll(now) {
            for worker in self.workers.keys() {
                self.outbox.transmit(Transmit::ToWorker {
                    worker: worker.clone(),
                    command: ToWorker::Heartbeat,
                });
            }
        }
    }

    /// The next heartbeat or the earliest worker expiry, whichever comes first (so a dead
    /// worker is purged on time, not a tick late).
    fn poll_timeout(&self) -> Option<Instant> {
        let heartbeat = self.ticker.deadline();
        Some(
            self.workers
                .values()
                .map(|w| w.liveness.deadline())
                .fold(heartbeat, Instant::min),
        )
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Everything the queue asked for after one input: its events, then its transmits.
    #[derive(Debug, PartialEq)]
    enum Output {
        ToWorker { worker: Bytes, command: ToWorker },
        ToClient(Routed),
        Event(Event),
    }

    fn drain(q: &mut Queue) -> Vec<Output> {
        let mut out: Vec<Output> = std::iter::from_fn(|| q.poll_event())
            .map(Output::Event)
            .collect();
        out.extend(std::iter::from_fn(|| q.poll_transmit()).map(|t| match t {
            Transmit::ToWorker { worker, command } => Output::ToWorker { worker, command },
            Transmit::ToClient(reply) => Output::ToClient(reply),
        }));
        out
    }

    /// One input, then [`drain`].
    trait Step {
        fn client(&mut self, message: Message, now: Instant) -> Vec<Output>;
        fn worker(&mut self, message: Message, now: Instant) -> Vec<Output>;
        fn gone(&mut self, worker: &[u8], now: Instant) -> Vec<Output>;
        fn timeout(&mut self, now: Instant) -> Vec<Output>;
    }

    impl Step for Queue {
        fn client(&mut self, message: Message, now: Instant) -> Vec<Output> {
            self.handle_client(message, now);
            drain(self)
        }
        fn worker(&mut self, message: Message, now: Instant) -> Vec<Output> {
            self.handle_worker(message, now);
            drain(self)
        }
        fn gone(&mut self, worker: &[u8], now: Instant) -> Vec<Output> {
            self.handle_worker_lost(worker, now);
            drain(self)
        }
        fn timeout(&mut self, now: Instant) -> Vec<Output> {
            self.handle_timeout(now);
            drain(self)
        }
    }

    fn config() -> QueueConfig {
        QueueConfig {
            heartbeat: 1000 * MS,
            liveness: 3,
            max_pending: 4,
        }
    }

    fn from_worker(id: &str, command: FromWorker) -> Message {
        let mut m = command.to_message();
        m.push_front(Bytes::copy_from_slice(id.as_bytes()));
        m
    }

    fn ready(id: &str) -> Message {
        from_worker(id, FromWorker::Ready)
    }

    fn heartbeat(id: &str) -> Message {
        from_worker(id, FromWorker::Heartbeat)
    }

    fn request(client: &str, body: &str) -> Message {
        Message::from_frames([client, "", body].map(|f| Bytes::copy_from_slice(f.as_bytes())))
    }

    /// The worker each request went to, with its body.
    fn routed(out: &[Output]) -> Vec<(String, String)> {
        out.iter()
            .filter_map(|o| match o {
                Output::ToWorker {
                    worker,
                    command: ToWorker::Request(r),
                } => Some((
                    String::from_utf8_lossy(worker).into_owned(),
                    String::from_utf8_lossy(r.body.first().unwrap()).into_owned(),
                )),
                _ => None,
            })
            .collect()
    }

    fn reply_from(out: &[Output], worker: &str) -> Message {
        let (_, request) = out
            .iter()
            .find_map(|o| match o {
                Output::ToWorker {
                    worker: w,
                    command: ToWorker::Request(r),
                } if w == worker.as_bytes() => Some((w, r.clone())),
                _ => None,
            })
            .expect("a request for this worker");
        from_worker(worker, FromWorker::Reply(request))
    }

    fn purged(out: &[Output]) -> Vec<(String, bool)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Event(Event::WorkerPurged {
                    worker, was_busy, ..
                }) => Some((String::from_utf8_lossy(worker).into_owned(), *was_busy)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn requests_go_to_the_longest_idle_worker_and_replies_back_to_the_client() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.worker(ready("B"), t0 + MS);
        let out = q.client(request("c1", "1"), t0 + 2 * MS);
        assert_eq!(routed(&out), [("A".into(), "1".into())]);
        assert_eq!(q.worker_state(b"A"), Some(WorkerState::Busy));
        let out2 = q.client(request("c2", "2"), t0 + 3 * MS);
        assert_eq!(routed(&out2), [("B".into(), "2".into())]);
        assert!(!q.accepts_requests(t0 + 3 * MS));

        let back = q.worker(reply_from(&out, "A"), t0 + 4 * MS);
        assert_eq!(
            back,
            [Output::ToClient(Routed::parse(request("c1", "1")).unwrap())]
        );
        assert_eq!(q.worker_state(b"A"), Some(WorkerState::Idle));
        assert!(q.accepts_requests(t0 + 4 * MS));
    }

    #[test]
    fn requests_wait_for_a_worker_and_go_out_when_one_is_ready() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        assert!(!q.accepts_requests(t0));
        assert!(routed(&q.client(request("c1", "1"), t0)).is_empty());
        assert_eq!(q.pending_count(), 1);
        let out = q.worker(ready("A"), t0 + MS);
        assert_eq!(routed(&out), [("A".into(), "1".into())]);
        assert_eq!(q.pending_count(), 0);
    }

    /// The defect of the Guide's queue, replayed: a busy worker heartbeats, the client's retry
    /// arrives, then the busy worker dies. The retry must go to the idle worker, not to the
    /// one that is busy (and about to die).
    #[test]
    fn heartbeat_from_a_busy_worker_does_not_make_it_idle() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.worker(ready("B"), t0);
        // Request 1 goes to A, which is slow. B is idle.
        let out = q.client(request("c", "1"), t0 + 10 * MS);
        assert_eq!(routed(&out), [("A".into(), "1".into())]);
        // Both heartbeat for two intervals; A is still working on request 1.
        for k in 1..=2u32 {
            let t = t0 + k * 1000 * MS;
            assert!(q.worker(heartbeat("A"), t).is_empty());
            assert!(q.worker(heartbeat("B"), t).is_empty());
            assert_eq!(q.worker_state(b"A"), Some(WorkerState::Busy));
        }
        assert_eq!(q.idle_count(), 1);
        // The client times out and retries: the retry must go to B.
        let out = q.client(request("c", "1"), t0 + 2500 * MS);
        assert_eq!(routed(&out), [("B".into(), "1".into())]);
        // A dies; B answers; a further request goes to B again, never to A.
        let back = q.worker(reply_from(&out, "B"), t0 + 2600 * MS);
        assert!(matches!(back[..], [Output::ToClient(_)]));
        let out = q.client(request("c", "2"), t0 + 2700 * MS);
        assert_eq!(routed(&out), [("B".into(), "2".into())]);
        // A is purged liveness × interval after its last heartbeat, while busy.
        assert!(purged(&q.timeout(t0 + 4999 * MS)).is_empty());
        assert_eq!(purged(&q.timeout(t0 + 5000 * MS)), [("A".into(), true)]);
        assert_eq!(q.worker_count(), 1);
    }

    #[test]
    fn silent_idle_and_busy_workers_are_purged_on_their_deadline() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.worker(ready("B"), t0 + 500 * MS);
        q.client(request("c", "1"), t0 + 600 * MS); // A busy
                                                    // The next deadline is A's expiry (3000 ms), after the first heartbeat (1000 ms).
        assert_eq!(q.poll_timeout(), Some(t0 + 1000 * MS));
        q.timeout(t0 + 1000 * MS);
        assert_eq!(q.poll_timeout(), Some(t0 + 2000 * MS));
        q.timeout(t0 + 2000 * MS);
        assert_eq!(q.poll_timeout(), Some(t0 + 3000 * MS));
        let out = q.timeout(t0 + 3000 * MS);
        assert_eq!(purged(&out), [("A".into(), true)]);
        match &out[0] {
            Output::Event(Event::WorkerPurged { silent, .. }) => assert_eq!(*silent, 3000 * MS),
            other => panic!("unexpected {other:?}"),
        }
        let out = q.timeout(t0 + 3500 * MS);
        assert_eq!(purged(&out), [("B".into(), false)]);
        assert_eq!(q.worker_count(), 0);
        assert_eq!(q.idle_count(), 0);
    }

    #[test]
    fn never_routes_to_an_expired_worker_even_before_the_purge_runs() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.worker(ready("B"), t0 + 2000 * MS);
        // At 3100 ms A is past its deadline but handle_timeout has not run.
        assert!(q.accepts_requests(t0 + 3100 * MS));
        let out = q.client(request("c", "1"), t0 + 3100 * MS);
        assert_eq!(purged(&out), [("A".into(), false)]);
        assert_eq!(routed(&out), [("B".into(), "1".into())]);
        // With B busy and A gone, nothing accepts requests; when B too expires, nothing does.
        assert!(!q.accepts_requests(t0 + 3200 * MS));
        q.worker(reply_from(&out, "B"), t0 + 3300 * MS);
        assert!(q.accepts_requests(t0 + 6299 * MS));
        assert!(!q.accepts_requests(t0 + 6300 * MS));
        let out = q.client(request("c", "2"), t0 + 6300 * MS);
        assert_eq!(purged(&out), [("B".into(), false)]);
        assert!(routed(&out).is_empty());
        assert_eq!(q.pending_count(), 1);
    }

    #[test]
    fn heartbeats_go_to_every_worker_busy_or_idle_once_per_interval() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.worker(ready("B"), t0);
        q.client(request("c", "1"), t0); // A busy
        assert!(q.timeout(t0 + 999 * MS).is_empty());
        let out = q.timeout(t0 + 1000 * MS);
        let targets: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::ToWorker {
                    worker,
                    command: ToWorker::Heartbeat,
                } => Some(worker.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(targets, [Bytes::from("A"), Bytes::from("B")]);
        assert!(q.timeout(t0 + 1500 * MS).is_empty());
    }

    #[test]
    fn heartbeats_keep_workers_alive() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        for k in 1..10u32 {
            q.worker(heartbeat("A"), t0 + k * 1000 * MS);
            assert!(purged(&q.timeout(t0 + k * 1000 * MS + 500 * MS)).is_empty());
        }
        assert_eq!(q.worker_count(), 1);
    }

    #[test]
    fn unknown_heartbeat_is_ignored_and_late_reply_is_forwarded() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        let out = q.worker(heartbeat("ghost"), t0);
        assert_eq!(
            out,
            [Output::Event(Event::UnknownWorker {
                worker: Bytes::from("ghost")
            })]
        );
        assert_eq!(q.worker_count(), 0);
        let reply = from_worker(
            "ghost",
            FromWorker::Reply(Routed::parse(request("c", "9")).unwrap()),
        );
        let out = q.worker(reply, t0);
        assert!(matches!(
            &out[..],
            [Output::Event(Event::LateReply { .. }), Output::ToClient(_)]
        ));
        assert_eq!(q.worker_count(), 0);
    }

    #[test]
    fn ready_again_replaces_the_old_registration() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.client(request("c", "1"), t0);
        let out = q.worker(ready("A"), t0 + MS);
        assert_eq!(
            out,
            [Output::Event(Event::WorkerReady {
                worker: Bytes::from("A"),
                replaced: true
            })]
        );
        assert_eq!(q.worker_state(b"A"), Some(WorkerState::Idle));
        assert_eq!(q.idle_count(), 1);
    }

    #[test]
    fn malformed_input_from_either_side_is_an_event_and_changes_nothing() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        let bad_worker = [
            Message::from_frames([&b"A"[..], &[0x07]]),
            Message::from_frames([&b"A"[..], &[0x01, 0x02]]),
            Message::from_frames([&b"A"[..], b"x", b"y"]),
            Message::from_frames([&b"A"[..]]),
        ];
        for m in bad_worker {
            let out = q.worker(m, t0 + 2000 * MS);
            assert!(
                matches!(
                    &out[..],
                    [Output::Event(Event::Malformed {
                        side: Side::Backend,
                        ..
                    })]
                ),
                "{out:?}"
            );
        }
        let big = Bytes::from(vec![b'x'; 300]);
        let bad_client = [
            Message::from_frames([&b"c"[..], b"no delimiter"]),
            Message::from_frames([Bytes::from("c"), big, Bytes::new(), Bytes::from("1")]),
            Message::from_frames([&b"c"[..], b""]),
        ];
        for m in bad_client {
            let out = q.client(m, t0 + 2000 * MS);
            assert!(
                matches!(
                    &out[..],
                    [Output::Event(Event::Malformed {
                        side: Side::Frontend,
                        ..
                    })]
                ),
                "{out:?}"
            );
        }
        // Garbage did not count as a heartbeat: A still expires at 3000 ms, and nothing queued.
        assert_eq!(q.pending_count(), 0);
        assert_eq!(purged(&q.timeout(t0 + 3000 * MS)), [("A".into(), false)]);
    }

    #[test]
    fn a_worker_whose_connection_closed_is_purged_at_once_and_its_request_goes_elsewhere() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.worker(ready("B"), t0);
        q.client(request("c1", "1"), t0); // A busy
        q.client(request("c2", "2"), t0); // B busy
                                          // B's connection closes (kill -9): request 2 waits for the next idle worker.
        let out = q.gone(b"B", t0 + 500 * MS);
        assert_eq!(
            out,
            [Output::Event(Event::WorkerGone {
                worker: Bytes::from("B"),
                silent: 500 * MS,
                requeued: true
            })]
        );
        assert_eq!(q.worker_count(), 1);
        assert_eq!(q.pending_count(), 1);
        // A later request queues behind it.
        let out = q.client(request("c3", "3"), t0 + 600 * MS);
        assert!(routed(&out).is_empty());
        // A answers request 1 and gets request 2 (it was first), then 3.
        let back = q.worker(
            from_worker(
                "A",
                FromWorker::Reply(Routed::parse(request("c1", "1")).unwrap()),
            ),
            t0 + 700 * MS,
        );
        assert_eq!(routed(&back), [("A".into(), "2".into())]);
        let back = q.worker(
            from_worker(
                "A",
                FromWorker::Reply(Routed::parse(request("c2", "2")).unwrap()),
            ),
            t0 + 800 * MS,
        );
        assert_eq!(routed(&back), [("A".into(), "3".into())]);
        // An idle worker gone: nothing to requeue; an unknown one: nothing at all.
        q.worker(ready("C"), t0 + 900 * MS);
        assert!(matches!(
            &q.gone(b"C", t0 + 950 * MS)[..],
            [Output::Event(Event::WorkerGone {
                requeued: false,
                ..
            })]
        ));
        assert!(q.gone(b"nobody", t0 + 950 * MS).is_empty());
        assert_eq!(q.worker_count(), 1);
    }

    #[test]
    fn a_hung_worker_that_expires_keeps_its_request_for_the_client_to_retry() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        q.worker(ready("A"), t0);
        q.worker(ready("B"), t0);
        q.client(request("c1", "1"), t0); // A busy, then hangs
        let out = q.timeout(t0 + 3000 * MS);
        assert!(purged(&out).contains(&("A".into(), true)));
        // Not requeued: a hung worker may still answer, and the client retries on its own.
        assert_eq!(q.pending_count(), 0);
        assert!(routed(&out).is_empty());
    }

    #[test]
    fn pending_overflow_drops_the_oldest() {
        let t0 = Instant::now();
        let mut q = Queue::new(config(), t0);
        for k in 0..5 {
            q.client(request(&format!("c{k}"), "x"), t0);
        }
        assert_eq!(q.pending_count(), 4);
        let out = q.client(request("c5", "x"), t0);
        assert_eq!(
            out,
            [Output::Event(Event::PendingOverflow {
                client: Bytes::from("c1")
            })]
        );
    }
}
