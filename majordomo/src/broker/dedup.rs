//! The broker's request-id store (Guide 4.11, "service idempotence"). Pure: no sockets, no
//! clock (`now` is passed in).
//!
//! # Why in the broker
//! A retry may reach another worker than the first attempt, so a cache inside one worker cannot
//! catch it; a store shared by the workers of a service would need its own protocol and storage.
//! The broker sees every request and every reply, and knows which worker runs which request, so
//! it can do all of it alone, for any worker (the Guide's C workers included):
//!
//! * a request whose id is new is [dispatched](Admit::Dispatch) and remembered as *running*;
//! * a retry of a request still queued or running is [joined](Admit::Joined) to it: it is not
//!   dispatched again, and the one reply goes to every client address that asked (a retrying
//!   client usually asks from a fresh socket, so only the newest address still listens);
//! * a retry of a request already answered gets the [remembered reply](Admit::Replay) at once;
//! * if the request is lost before it is answered (its worker died or left, it expired in the
//!   queue, the queue was full), [`Dedup::abandon`] forgets it, so the next retry runs it. This is
//!   the one case of "at least once" left: a worker that dies after doing the work but before
//!   its reply reaches the broker cannot be told apart from one that died before.
//!
//! # Bounds
//! At most [`DedupConfig::max_entries`] ids are remembered, each at most [`DedupConfig::ttl`]
//! (counted from the request while it runs, from the reply once answered). Reaching either bound
//! forgets the oldest entries; [`Dedup::expire`] returns what was forgotten so the broker reports
//! it. A retry that comes after its id was forgotten runs again: keep the TTL longer than the
//! clients' whole retry window (Guide default: 3 attempts × 2.5 s).
//!
//! The key is (service, id): ids are unique per client instance, and the service keeps one
//! service's entries from answering a request for another.
//!
//! # Memory
//! An entry is kept small, because a full store holds [`MAX_ENTRIES`] of them: its key is one
//! shared allocation (id, NUL, service) used by both the map and the age queue; a running entry
//! stores no client address (the request carries the first one; only retries that joined it
//! are stored); a reply is packed into one exact buffer. Measured with `mdbench` (release):
//! about 260 bytes per remembered short reply with this crate's ids (39 bytes each), so about
//! 26 MB for a full store at the default bound (it was 520 bytes when each entry owned copies of
//! its key, address and frames, and 240 with the shorter ids before they became unguessable).

use crate::rid::Rid;
use bytes::Bytes;
use common::Message;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default most ids remembered at once.
pub const MAX_ENTRIES: usize = 100_000;
/// Default time an id is remembered: well past a Guide client's whole retry window (3 × 2.5 s).
pub const TTL: Duration = Duration::from_secs(60);

/// Bounds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupConfig {
    /// Most ids remembered at once (0 turns deduplication off).
    pub max_entries: usize,
    /// How long an id is remembered.
    pub ttl: Duration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            max_entries: MAX_ENTRIES,
            ttl: TTL,
        }
    }
}

/// What to do with a request that carries an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// A new id: queue and dispatch the request as usual (it is now remembered as running).
    Dispatch,
    /// A retry of a request still queued or running: do nothing now; the reply will also go to
    /// this client.
    Joined,
    /// A retry of an answered request: send this reply body (without the rid frame) back.
    Replay(Message),
}

/// What [`Dedup::expire`] forgot, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Entries older than the TTL.
    pub aged: u64,
    /// Entries dropped early because the store was full (since the last `expire`).
    pub evicted: u64,
    /// The age of the youngest entry dropped early.
    pub evicted_age: Option<Duration>,
}

impl Forgotten {
    /// True if nothing was forgotten.
    pub fn is_empty(&self) -> bool {
        self.aged == 0 && self.evicted == 0
    }
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Retries joined to a request still queued or running.
    pub joined: u64,
    /// Retries answered from a remembered reply.
    pub replayed: u64,
    /// Requests forgotten because they were lost before their reply.
    pub abandoned: u64,
    /// Entries forgotten by age.
    pub aged: u64,
    /// Entries forgotten early because the store was full.
    pub evicted: u64,
}

/// The key of an entry: the id, a NUL (never in an id), then the service name, in one
/// allocation that the map and the age queue share.
type Key = Arc<[u8]>;

/// Writes the key of (`service`, `rid`) into `buf`, for a lookup that allocates nothing.
fn fill_key(buf: &mut Vec<u8>, service: &[u8], rid: &Rid) {
    buf.clear();
    buf.extend_from_slice(rid.as_bytes());
    buf.push(0);
    buf.extend_from_slice(service);
}

enum State {
    /// Queued or running. `joined`: the *other* client addresses that asked for it (retries,
    /// usually from fresh sockets); the address of the first try is in the request itself, so
    /// it is not stored twice. (Whether it runs on a worker of the pair's other broker is kept
    /// apart, in [`Dedup::elsewhere`], so that an entry stays as small as before pairs.)
    Running { joined: Vec<Message> },
    /// Answered with this body, packed ([`pack`]).
    Done { reply: Bytes },
}

/// A reply body as one buffer: per frame a 4-byte little-endian length, then the frame. One
/// exact allocation per remembered reply, whatever the frame count, and it keeps no received
/// buffer alive.
fn pack(body: &Message) -> Bytes {
    let total = body.iter().map(|f| 4 + f.len()).sum();
    let mut packed = Vec::with_capacity(total);
    for frame in body.iter() {
        packed.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        packed.extend_from_slice(frame);
    }
    Bytes::from(packed)
}

/// The body [`pack`]ed into `packed` (frames are slices of it, not copies).
fn unpack(packed: &Bytes) -> Message {
    let mut body = Message::new();
    let mut at = 0;
    while let Some(len) = packed.get(at..at + 4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        body.push_back(packed.slice(at + 4..at + 4 + len));
        at += 4 + len;
    }
    body
}

struct Entry {
    state: State,
    /// When the age of this entry started (request, then reply).
    stamp: Instant,
    /// Matches the entry's current record in `order` (older records there are stale).
    seq: u64,
}

/// The request-id store. See the [module docs](self).
pub struct Dedup {
    config: DedupConfig,
    entries: HashMap<Key, Entry>,
    /// (seq, key) in stamp order; a record whose seq no longer matches its entry is stale.
    order: VecDeque<(u64, Key)>,
    next_seq: u64,
    pending: Forgotten,
    stats: DedupStats,
    /// Where lookup keys are built ([`fill_key`]).
    scratch: Vec<u8>,
    /// Running entries that run on a worker for the other broker of a pair ([`crate::pair`]):
    /// this broker holds no request for them and must not run one. Empty for a lone broker.
    elsewhere: HashSet<Key>,
}

/// Copies a frame into its own allocation: a frame received from the network may share its
/// buffer with other frames, which a remembered address must not keep alive.
fn own(frame: &Bytes) -> Bytes {
    Bytes::copy_from_slice(frame)
}

impl Dedup {
    /// An empty store.
    pub fn new(config: DedupConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            pending: Forgotten::default(),
            stats: DedupStats::default(),
            scratch: Vec::new(),
            elsewhere: HashSet::new(),
        }
    }

    /// Ids remembered (running and answered).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counters since start.
    pub fn stats(&self) -> DedupStats {
        self.stats
    }

    /// Adds an entry for the key in `scratch`.
    fn insert(&mut self, state: State, now: Instant) {
        let key: Key = Arc::from(&self.scratch[..]);
        self.next_seq += 1;
        self.order.push_back((self.next_seq, key.clone()));
        let entry = Entry {
            state,
            stamp: now,
            seq: self.next_seq,
        };
        self.entries.insert(key, entry);
        self.enforce_count(now);
    }

    /// A request for `service` with id `rid` from `client`: decides whether it runs.
    pub fn admit(&mut self, service: &Bytes, rid: &Rid, client: &Message, now: Instant) -> Admit {
        if self.config.max_entries == 0 {
            return Admit::Dispatch;
        }
        fill_key(&mut self.scratch, service, rid);
        if let Some(entry) = self.entries.get_mut(&self.scratch[..]) {
            return match &mut entry.state {
                State::Running { joined } => {
                    if !joined.contains(client) {
                        joined.push(client.iter().map(own).collect());
                    }
                    self.stats.joined += 1;
                    Admit::Joined
                }
                State::Done { reply } => {
                    self.stats.replayed += 1;
                    Admit::Replay(unpack(reply))
                }
            };
        }
        let joined = Vec::new();
        self.insert(State::Running { joined }, now);
        Admit::Dispatch
    }

    /// The reply to a request with id `rid` arrived: remembers it and returns the client
    /// addresses that joined it (the caller answers the address the worker named, then these,
    /// skipping that one if it is among them). Empty if nobody joined, or if the id was not
    /// running here any more (forgotten: the reply is remembered anyway, for later retries).
    pub fn finish(
        &mut self,
        service: &Bytes,
        rid: &Rid,
        reply: &Message,
        now: Instant,
    ) -> Vec<Message> {
        if self.config.max_entries == 0 {
            return Vec::new();
        }
        fill_key(&mut self.scratch, service, rid);
        let Some(entry) = self.entries.get_mut(&self.scratch[..]) else {
            self.insert(State::Done { reply: pack(reply) }, now);
            return Vec::new();
        };
        let State::Running { joined } = &mut entry.state else {
            // Answered twice (it ran twice after an abandon): keep the first answer.
            return Vec::new();
        };
        let joined = std::mem::take(joined);
        if !self.elsewhere.is_empty() {
            self.elsewhere.remove(&self.scratch[..]);
        }
        entry.state = State::Done { reply: pack(reply) };
        entry.stamp = now;
        self.next_seq += 1;
        entry.seq = self.next_seq;
        if let Some((key, _)) = self.entries.get_key_value(&self.scratch[..]) {
            self.order.push_back((self.next_seq, key.clone()));
        }
        joined
    }

    /// A queued or running request was lost before its reply (worker gone, expired, dropped):
    /// forget it, so that the next retry runs it again. Answered entries are kept.
    pub fn abandon(&mut self, service: &Bytes, rid: &Rid) {
        fill_key(&mut self.scratch, service, rid);
        if let Some(Entry {
            state: State::Running { .. },
            ..
        }) = self.entries.get(&self.scratch[..])
        {
            self.entries.remove(&self.scratch[..]);
            if !self.elsewhere.is_empty() {
                self.elsewhere.remove(&self.scratch[..]);
            }
            self.stats.abandoned += 1;
        }
    }

    /// The peer `peer` (a routing id: the first frame of a client address) went away while
    /// the request `rid` waited in its queue, and the queue dropped it. If another address
    /// joined this id (the client retried from a fresh socket before its old one closed),
    /// that address is returned and no longer counted as joined: the caller queues the request
    /// for it instead, and the entry keeps running. Otherwise the request is
    /// [abandoned](Self::abandon).
    pub fn leave(&mut self, service: &Bytes, rid: &Rid, peer: &[u8]) -> Option<Message> {
        fill_key(&mut self.scratch, service, rid);
        if let Some(Entry {
            state: State::Running { joined },
            ..
        }) = self.entries.get_mut(&self.scratch[..])
        {
            joined.retain(|w| w.first().is_some_and(|p| p != peer));
            if !joined.is_empty() {
                return Some(joined.remove(0));
            }
        }
        self.abandon(service, rid);
        None
    }

    /// A worker of a broker pair reports running `rid` for the other broker ([`crate::pair`]):
    /// remember it as running *elsewhere*, so that a retry here joins it and a copy of it
    /// waiting here is never dispatched. An answered id stays answered.
    pub fn running_elsewhere(&mut self, service: &Bytes, rid: &Rid, now: Instant) {
        if self.config.max_entries == 0 {
            return;
        }
        fill_key(&mut self.scratch, service, rid);
        match self.entries.get_key_value(&self.scratch[..]) {
            Some((
                key,
                Entry {
                    state: State::Running { .. },
                    ..
                },
            )) => {
                let key = key.clone();
                self.elsewhere.insert(key);
            }
            Some(_) => {}
            None => {
                let joined = Vec::new();
                self.insert(State::Running { joined }, now);
                if let Some((key, _)) = self.entries.get_key_value(&self.scratch[..]) {
                    let key = key.clone();
                    self.elsewhere.insert(key);
                }
            }
        }
    }

    /// What to do with a request about to be dispatched, given its id: `None` to run it, or
    /// what happened to it meanwhile through a worker of the pair's other broker.
    pub fn before_dispatch(
        &mut self,
        service: &Bytes,
        rid: &Rid,
        client: &Message,
    ) -> Option<Admit> {
        fill_key(&mut self.scratch, service, rid);
        let elsewhere = self.elsewhere.contains(&self.scratch[..]);
        match &mut self.entries.get_mut(&self.scratch[..])?.state {
            State::Running { .. } if !elsewhere => None,
            // Running on a worker for the other broker: the reply comes as news; wait for it.
            State::Running { joined } => {
                if !joined.contains(client) {
                    joined.push(client.iter().map(own).collect());
                }
                Some(Admit::Joined)
            }
            State::Done { reply } => Some(Admit::Replay(unpack(reply))),
        }
    }

    /// Forgets entries older than the TTL; returns what was forgotten since the last call
    /// (including early evictions of a full store), for the log.
    pub fn expire(&mut self, now: Instant) -> Forgotten {
        while let Some((seq, key)) = self.order.front() {
            match self.entries.get(key) {
                Some(entry) if entry.seq == *seq => {
                    if now.saturating_duration_since(entry.stamp) < self.config.ttl {
                        break;
                    }
                    self.entries.remove(key);
                    self.elsewhere.remove(key);
                    self.pending.aged += 1;
                    self.stats.aged += 1;
                }
                _ => {} // stale record
            }
            self.order.pop_front();
        }
        std::mem::take(&mut self.pending)
    }

    /// When the oldest entry reaches the TTL (call [`expire`](Self::expire) then), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.order.iter().find_map(|(seq, key)| {
            let entry = self.entries.get(key).filter(|e| e.seq == *seq)?;
            Some(entry.stamp + self.config.ttl)
        })
    }

    /// Drops the oldest entries while there are more than `max_entries`.
    fn enforce_count(&mut self, now: Instant) {
        while self.entries.len() > self.config.max_entries {
            let Some((seq, key)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
                self.elsewhere.remove(&key);
                if let Some(entry) = self.entries.remove(&key) {
                    self.pending.evicted += 1;
                    self.stats.evicted += 1;
                    self.pending.evicted_age = Some(now.saturating_duration_since(entry.stamp));
                }
            }
        }
        // Stale records at the front cost memory only; drop them while we are here.
        while let Some((seq, key)) = self.order.front() {
            if self.entries.get(key).is_some_and(|e| e.seq == *seq) {
                break;
            }
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_as_small_as_before_pairs() {
        // A full store holds MAX_ENTRIES of these: every byte counts 100,000 times.
        assert_eq!(std::mem::size_of::<State>(), 32);
        assert_eq!(std::mem::size_of::<Entry>(), 56);
    }

    const MS: Duration = Duration::from_millis(1);

    fn rid(n: u32) -> Rid {
        Rid::new(format!("c-{n}")).unwrap()
    }

    fn addr(name: &str) -> Message {
        Message::from_frames([name.to_owned()])
    }

    fn body(text: &str) -> Message {
        Message::from_frames([text.to_owned()])
    }

    fn echo() -> Bytes {
        Bytes::from_static(b"echo")
    }

    fn store(max_entries: usize, ttl_ms: u64) -> Dedup {
        Dedup::new(DedupConfig {
            max_entries,
            ttl: Duration::from_millis(ttl_ms),
        })
    }

    #[test]
    fn a_retry_joins_the_running_request_and_every_asker_gets_the_one_reply() {
        let t0 = Instant::now();
        let mut d = store(10, 1000);
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C1"), t0), Admit::Dispatch);
        // The same client retrying from a fresh socket, then the same socket again.
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C1b"), t0 + 10 * MS),
            Admit::Joined
        );
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C1b"), t0 + 20 * MS),
            Admit::Joined
        );
        // The first address is the request's own; the store returns the ones that joined.
        let joined = d.finish(&echo(), &rid(1), &body("done"), t0 + 30 * MS);
        assert_eq!(joined, vec![addr("C1b")]);
        assert_eq!(d.stats().joined, 2);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn a_retry_after_the_reply_gets_the_remembered_reply() {
        let t0 = Instant::now();
        let mut d = store(10, 1000);
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C1"), t0), Admit::Dispatch);
        d.finish(&echo(), &rid(1), &body("r1"), t0 + 5 * MS);
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C2"), t0 + 900 * MS),
            Admit::Replay(body("r1"))
        );
        assert_eq!(d.stats().replayed, 1);
        // Another id, or the same id for another service, is a new request.
        assert_eq!(d.admit(&echo(), &rid(2), &addr("C1"), t0), Admit::Dispatch);
        let other = Bytes::from_static(b"other");
        assert_eq!(d.admit(&other, &rid(1), &addr("C1"), t0), Admit::Dispatch);
    }

    #[test]
    fn an_abandoned_request_runs_again_but_an_answered_one_is_kept() {
        let t0 = Instant::now();
        let mut d = store(10, 1000);
        d.admit(&echo(), &rid(1), &addr("C1"), t0);
        d.abandon(&echo(), &rid(1));
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C1"), t0), Admit::Dispatch);
        d.finish(&echo(), &rid(1), &body("r"), t0);
        d.abandon(&echo(), &rid(1));
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C1"), t0),
            Admit::Replay(body("r"))
        );
        assert_eq!(d.stats().abandoned, 1);
    }

    #[test]
    fn ttl_counts_from_the_request_then_from_the_reply() {
        let t0 = Instant::now();
        let mut d = store(10, 100);
        d.admit(&echo(), &rid(1), &addr("C1"), t0);
        d.admit(&echo(), &rid(2), &addr("C1"), t0 + 10 * MS);
        assert_eq!(d.poll_timeout(), Some(t0 + 100 * MS));
        // rid 1 answered at 90 ms: now it lives until 190 ms.
        d.finish(&echo(), &rid(1), &body("r"), t0 + 90 * MS);
        assert_eq!(d.poll_timeout(), Some(t0 + 110 * MS));
        assert!(d.expire(t0 + 109 * MS).is_empty());
        let gone = d.expire(t0 + 110 * MS);
        assert_eq!(gone.aged, 1, "rid 2 (still running) aged out");
        assert_eq!(d.len(), 1);
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C"), t0 + 189 * MS),
            Admit::Replay(body("r"))
        );
        assert_eq!(d.expire(t0 + 190 * MS).aged, 1);
        assert!(d.is_empty());
        assert_eq!(d.poll_timeout(), None);
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C"), t0), Admit::Dispatch);
        assert_eq!(d.stats().aged, 2);
    }

    #[test]
    fn a_full_store_forgets_the_oldest_and_says_so() {
        let t0 = Instant::now();
        let mut d = store(3, 10_000);
        for n in 1..=5 {
            d.admit(&echo(), &rid(n), &addr("C"), t0 + n * MS);
            d.finish(&echo(), &rid(n), &body("r"), t0 + n * MS);
        }
        assert_eq!(d.len(), 3);
        let gone = d.expire(t0 + 10 * MS);
        assert_eq!(gone.evicted, 2);
        assert_eq!(
            gone.evicted_age,
            Some(3 * MS),
            "rid 2 (2 ms) dropped at 5 ms"
        );
        assert!(d.expire(t0 + 10 * MS).is_empty(), "reported once");
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C"), t0), Admit::Dispatch);
        assert_eq!(
            d.admit(&echo(), &rid(5), &addr("C"), t0),
            Admit::Replay(body("r"))
        );
        // Stale order records do not pile up: at most two per live entry.
        assert!(d.order.len() <= 2 * d.len() + 1, "{}", d.order.len());
    }

    #[test]
    fn a_reply_for_a_forgotten_id_is_remembered_for_later_retries() {
        let t0 = Instant::now();
        let mut d = store(10, 100);
        d.admit(&echo(), &rid(1), &addr("C1"), t0);
        d.expire(t0 + 100 * MS);
        assert!(d
            .finish(&echo(), &rid(1), &body("late"), t0 + 150 * MS)
            .is_empty());
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C1"), t0 + 160 * MS),
            Admit::Replay(body("late"))
        );
        // A second answer (it ran twice) does not replace the first, nor reach anyone.
        assert!(d
            .finish(&echo(), &rid(1), &body("again"), t0 + 170 * MS)
            .is_empty());
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C1"), t0 + 180 * MS),
            Admit::Replay(body("late"))
        );
    }

    #[test]
    fn zero_entries_turns_it_off() {
        let t0 = Instant::now();
        let mut d = store(0, 100);
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C"), t0), Admit::Dispatch);
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C"), t0), Admit::Dispatch);
        assert!(d.finish(&echo(), &rid(1), &body("r"), t0).is_empty());
        assert!(d.is_empty());
    }

    #[test]
    fn many_ids_under_churn_stay_within_bounds() {
        let t0 = Instant::now();
        let mut d = store(1000, 50);
        for n in 0..20_000u32 {
            let now = t0 + n / 10 * MS;
            assert_eq!(d.admit(&echo(), &rid(n), &addr("C"), now), Admit::Dispatch);
            if n % 7 != 0 {
                d.finish(&echo(), &rid(n), &body("r"), now);
            } else {
                d.abandon(&echo(), &rid(n));
            }
            if n % 100 == 0 {
                d.expire(now);
            }
            assert!(d.len() <= 1000);
        }
        // Within the TTL (last 50 ms = 500 ids), retries are caught.
        let now = t0 + 1999 * MS;
        d.expire(now);
        assert_eq!(
            d.admit(&echo(), &rid(19_998), &addr("C"), now),
            Admit::Replay(body("r"))
        );
        assert!(d.order.len() <= 3 * 1000, "{}", d.order.len());
    }

    #[test]
    fn a_waiter_that_leaves_hands_the_request_to_the_next_one() {
        let t0 = Instant::now();
        let mut d = store(10, 1000);
        d.admit(&echo(), &rid(1), &addr("C1"), t0);
        d.admit(&echo(), &rid(1), &addr("C1b"), t0);
        assert_eq!(d.leave(&echo(), &rid(1), b"C1"), Some(addr("C1b")));
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C1c"), t0), Admit::Joined);
        assert_eq!(d.leave(&echo(), &rid(1), b"C1b"), Some(addr("C1c")));
        assert_eq!(d.leave(&echo(), &rid(1), b"C1c"), None);
        assert_eq!(d.stats().abandoned, 1);
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C2"), t0), Admit::Dispatch);
    }

    #[test]
    fn a_remembered_reply_keeps_every_frame() {
        for frames in [
            vec![],
            vec!["".to_owned()],
            vec!["a".into(), "".into(), "ccc".into()],
        ] {
            let reply = Message::from_frames(frames.clone());
            assert_eq!(unpack(&pack(&reply)), reply, "{frames:?}");
        }
        let t0 = Instant::now();
        let mut d = store(10, 1000);
        d.admit(&echo(), &rid(1), &addr("C1"), t0);
        // The first address asking again (same socket) joins; the broker skips the duplicate.
        assert_eq!(d.admit(&echo(), &rid(1), &addr("C1"), t0), Admit::Joined);
        let two = Message::from_frames(["x", "yz"]);
        assert_eq!(d.finish(&echo(), &rid(1), &two, t0), vec![addr("C1")]);
        assert_eq!(
            d.admit(&echo(), &rid(1), &addr("C2"), t0),
            Admit::Replay(two)
        );
    }
}
