//! The in-memory index of the journal: what every live request looks like now. Pure.
//!
//! The index is rebuilt on start by applying every record of the journal in order, and kept up
//! to date by applying each record once it is durable, so it always describes exactly what is
//! on disk. It also keeps the byte accounting that drives compaction: *live* bytes are records
//! a compacted journal would still need (request and reply of every open request), *dead* bytes
//! are everything else (closed requests, their close records, ignored duplicates).
//!
//! The writer asks [`Index::admit`] before it writes a record, so the journal never holds a
//! second reply for the same request, nor a close for a request it does not know, nor a second
//! request with the same client request id (key) while the first is open.

use crate::journal::Record;
use crate::protocol::RequestId;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A request that has not been closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Arrival order (0, 1, 2, … in journal order): the dispatcher forwards oldest first.
    pub seq: u64,
    /// The service to forward to.
    pub service: Bytes,
    /// The request frames.
    pub body: Vec<Bytes>,
    /// The reply, once stored.
    pub reply: Option<Vec<Bytes>>,
    /// The client's request id, if it sent one.
    pub key: Option<Bytes>,
    /// Journal bytes of this request's records (request, and reply if any).
    bytes: u64,
}

/// What `titanic.reply` can say about a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Stored, no reply yet (`300`).
    Pending,
    /// Stored with its reply (`200` + reply).
    Replied(Vec<Bytes>),
    /// Never stored, or closed (`400`).
    Unknown,
}

/// Whether the writer should write a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write it: it changes the state.
    Write,
    /// Do not write it: applying it would change nothing (a duplicate reply, a close of an
    /// unknown request, a reused UUID, a request whose key an open request already has).
    Skip,
}

/// Records admitted into a batch that is not yet durable, so that [`Index::admit`] judges a
/// record against the index *and* everything queued before it in the same batch.
#[derive(Debug, Default)]
pub struct BatchView {
    requested: HashSet<RequestId>,
    replied: HashSet<RequestId>,
    closed: HashSet<RequestId>,
    keys: HashSet<Bytes>,
}

impl BatchView {
    /// Notes an admitted record.
    pub fn note(&mut self, record: &Record) {
        let id = record.id();
        match record {
            Record::Request { key, .. } => {
                if let Some(key) = key {
                    self.keys.insert(key.clone());
                }
                self.requested.insert(id)
            }
            Record::Reply { .. } => self.replied.insert(id),
            Record::Close { .. } => self.closed.insert(id),
        };
    }

    /// Forgets everything (the batch became durable and was applied to the index).
    pub fn clear(&mut self) {
        self.requested.clear();
        self.replied.clear();
        self.closed.clear();
        self.keys.clear();
    }
}

/// When compaction pays off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactPolicy {
    /// Never compact while fewer dead bytes than this have piled up (avoids rewriting a small
    /// file over and over).
    pub min_dead_bytes: u64,
}

impl Default for CompactPolicy {
    fn default() -> Self {
        Self {
            min_dead_bytes: 1 << 20,
        }
    }
}

/// Counts of what the index holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests waiting for their reply.
    pub pending: usize,
    /// Requests with their reply stored, not yet closed.
    pub replied: usize,
    /// Journal bytes a compacted journal would keep.
    pub live_bytes: u64,
    /// Journal bytes compaction would drop.
    pub dead_bytes: u64,
}

/// The state of every open request.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<RequestId, Entry>,
    /// Requests without a reply, by arrival order.
    pending: BTreeMap<u64, RequestId>,
    /// Open requests by their client request id.
    keys: HashMap<Bytes, RequestId>,
    next_seq: u64,
    live_bytes: u64,
    dead_bytes: u64,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Should `record` be written, given the index and the not-yet-durable `batch`?
    pub fn admit(&self, record: &Record, batch: &BatchView) -> Admission {
        let id = record.id();
        let known = self.entries.contains_key(&id) || batch.requested.contains(&id);
        let closed = batch.closed.contains(&id);
        let write = match record {
            Record::Request { key, .. } => {
                let key_taken = key
                    .as_ref()
                    .is_some_and(|k| self.keys.contains_key(k) || batch.keys.contains(k));
                !known && !key_taken
            }
            Record::Reply { .. } => {
                let has_reply = self.entries.get(&id).is_some_and(|e| e.reply.is_some())
                    || batch.replied.contains(&id);
                known && !closed && !has_reply
            }
            Record::Close { .. } => known && !closed,
        };
        if write {
            Admission::Write
        } else {
            Admission::Skip
        }
    }

    /// Applies a durable record that takes `size` bytes in the journal. Records that change
    /// nothing (see [`Admission::Skip`]) only count as dead bytes; returns whether it changed
    /// the state.
    pub fn apply(&mut self, record: Record, size: u64) -> bool {
        let id = record.id();
        match record {
            Record::Request {
                service, body, key, ..
            } if !self.entries.contains_key(&id)
                && !key.as_ref().is_some_and(|k| self.keys.contains_key(k)) =>
            {
                let seq = self.next_seq;
                self.next_seq += 1;
                if let Some(key) = &key {
                    self.keys.insert(key.clone(), id);
                }
                self.entries.insert(
                    id,
                    Entry {
                        seq,
                        service,
                        body,
                        reply: None,
                        key,
                        bytes: size,
                    },
                );
                self.pending.insert(seq, id);
                self.live_bytes += size;
                true
            }
            Record::Reply { body, .. } => match self.entries.get_mut(&id) {
                Some(entry) if entry.reply.is_none() => {
                    entry.reply = Some(body);
                    entry.bytes += size;
                    self.pending.remove(&entry.seq);
                    self.live_bytes += size;
                    true
                }
                _ => {
                    self.dead_bytes += size;
                    false
                }
            },
            Record::Close { .. } => match self.entries.remove(&id) {
                Some(entry) => {
                    self.pending.remove(&entry.seq);
                    if let Some(key) = &entry.key {
                        self.keys.remove(key);
                    }
                    self.live_bytes -= entry.bytes;
                    self.dead_bytes += entry.bytes + size;
                    true
                }
                None => {
                    self.dead_bytes += size;
                    false
                }
            },
            Record::Request { .. } => {
                self.dead_bytes += size;
                false
            }
        }
    }

    /// What `titanic.reply` should answer for `id`.
    pub fn lookup(&self, id: RequestId) -> Lookup {
        match self.entries.get(&id) {
            Some(Entry {
                reply: Some(reply), ..
            }) => Lookup::Replied(reply.clone()),
            Some(_) => Lookup::Pending,
            None => Lookup::Unknown,
        }
    }

    /// The open request that a client sent with request id `key`, if any.
    pub fn find_key(&self, key: &[u8]) -> Option<RequestId> {
        self.keys.get(key).copied()
    }

    /// The open request `id`, if any.
    pub fn get(&self, id: RequestId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Requests without a reply that arrived after `after` (a `seq`; `None` for all), oldest
    /// first, with their `seq`.
    pub fn pending_after(&self, after: Option<u64>) -> impl Iterator<Item = (u64, RequestId)> + '_ {
        let from = after.map_or(0, |s| s + 1);
        self.pending.range(from..).map(|(&seq, &id)| (seq, id))
    }

    /// How much is pending, replied, live and dead.
    pub fn counts(&self) -> Counts {
        Counts {
            pending: self.pending.len(),
            replied: self.entries.len() - self.pending.len(),
            live_bytes: self.live_bytes,
            dead_bytes: self.dead_bytes,
        }
    }

    /// True once dead records dominate the journal (and there are enough of them to matter).
    pub fn should_compact(&self, policy: &CompactPolicy) -> bool {
        self.dead_bytes >= policy.min_dead_bytes && self.dead_bytes > self.live_bytes
    }

    /// The records a compacted journal holds: each open request, then its reply if any, in
    /// arrival order, so a reopened index forwards in the same order as before.
    pub fn live_records(&self) -> impl Iterator<Item = Record> + '_ {
        let mut open: Vec<(&RequestId, &Entry)> = self.entries.iter().collect();
        open.sort_unstable_by_key(|(_, e)| e.seq);
        open.into_iter().flat_map(|(&id, e)| {
            let request = Record::Request {
                id,
                service: e.service.clone(),
                body: e.body.clone(),
                key: e.key.clone(),
            };
            let reply = e.reply.clone().map(|body| Record::Reply { id, body });
            std::iter::once(request).chain(reply)
        })
    }

    /// After the journal was rewritten from [`live_records`](Self::live_records): `sizes` gives
    /// each record's new size (in the same order), nothing is dead any more.
    pub fn compacted(&mut self, sizes: &[(RequestId, u64)]) {
        for entry in self.entries.values_mut() {
            entry.bytes = 0;
        }
        for (id, size) in sizes {
            if let Some(entry) = self.entries.get_mut(id) {
                entry.bytes += size;
            }
        }
        self.live_bytes = sizes.iter().map(|(_, s)| s).sum();
        self.dead_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> RequestId {
        RequestId::from_bytes([n; 16])
    }

    fn request(n: u8) -> Record {
        Record::Request {
            id: id(n),
            service: Bytes::from("echo"),
            body: vec![Bytes::from(vec![n])],
            key: None,
        }
    }

    fn reply(n: u8) -> Record {
        Record::Reply {
            id: id(n),
            body: vec![Bytes::from(format!("re {n}"))],
        }
    }

    fn close(n: u8) -> Record {
        Record::Close { id: id(n) }
    }

    #[test]
    fn lookup_follows_the_life_of_a_request() {
        let mut ix = Index::new();
        assert_eq!(ix.lookup(id(1)), Lookup::Unknown);
        assert!(ix.apply(request(1), 30));
        assert_eq!(ix.lookup(id(1)), Lookup::Pending);
        assert!(ix.apply(reply(1), 20));
        assert_eq!(ix.lookup(id(1)), Lookup::Replied(vec![Bytes::from("re 1")]));
        // Asking again does not consume the reply.
        assert_eq!(ix.lookup(id(1)), Lookup::Replied(vec![Bytes::from("re 1")]));
        assert!(ix.apply(close(1), 10));
        assert_eq!(ix.lookup(id(1)), Lookup::Unknown);
        assert_eq!(
            ix.counts(),
            Counts {
                pending: 0,
                replied: 0,
                live_bytes: 0,
                dead_bytes: 60
            }
        );
    }

    #[test]
    fn second_reply_and_unknown_close_change_nothing() {
        let mut ix = Index::new();
        ix.apply(request(1), 30);
        ix.apply(reply(1), 20);
        assert!(!ix.apply(
            Record::Reply {
                id: id(1),
                body: vec![Bytes::from("other")]
            },
            25
        ));
        assert_eq!(ix.lookup(id(1)), Lookup::Replied(vec![Bytes::from("re 1")]));
        assert!(!ix.apply(close(7), 10));
        assert!(!ix.apply(reply(8), 10));
        assert!(!ix.apply(request(1), 30));
        let c = ix.counts();
        assert_eq!((c.live_bytes, c.dead_bytes), (50, 75));
    }

    #[test]
    fn admit_sees_the_index_and_the_batch() {
        let mut ix = Index::new();
        let mut batch = BatchView::default();
        assert_eq!(ix.admit(&reply(1), &batch), Admission::Skip);
        assert_eq!(ix.admit(&close(1), &batch), Admission::Skip);
        assert_eq!(ix.admit(&request(1), &batch), Admission::Write);
        batch.note(&request(1));
        assert_eq!(ix.admit(&request(1), &batch), Admission::Skip);
        assert_eq!(ix.admit(&reply(1), &batch), Admission::Write);
        batch.note(&reply(1));
        assert_eq!(ix.admit(&reply(1), &batch), Admission::Skip);
        assert_eq!(ix.admit(&close(1), &batch), Admission::Write);
        batch.note(&close(1));
        assert_eq!(ix.admit(&close(1), &batch), Admission::Skip);

        batch.clear();
        ix.apply(request(2), 10);
        assert_eq!(ix.admit(&reply(2), &batch), Admission::Write);
        ix.apply(reply(2), 10);
        assert_eq!(ix.admit(&reply(2), &batch), Admission::Skip);
        assert_eq!(ix.admit(&close(2), &batch), Admission::Write);
        batch.note(&close(2));
        assert_eq!(ix.admit(&reply(2), &batch), Admission::Skip);
    }

    #[test]
    fn pending_is_in_arrival_order_and_resumable() {
        let mut ix = Index::new();
        for n in [5, 3, 9, 1] {
            ix.apply(request(n), 10);
        }
        ix.apply(reply(3), 10);
        let all: Vec<_> = ix.pending_after(None).collect();
        assert_eq!(all, vec![(0, id(5)), (2, id(9)), (3, id(1))]);
        let later: Vec<_> = ix.pending_after(Some(2)).map(|(_, i)| i).collect();
        assert_eq!(later, vec![id(1)]);
        ix.apply(close(9), 10);
        assert_eq!(ix.pending_after(Some(0)).count(), 1);
    }

    #[test]
    fn compaction_policy_waits_for_dead_bytes_to_dominate() {
        let policy = CompactPolicy {
            min_dead_bytes: 100,
        };
        let mut ix = Index::new();
        for n in 0..10 {
            ix.apply(request(n), 30);
        }
        for n in 0..3 {
            ix.apply(close(n), 10);
        }
        // dead 120 ≥ 100 but live 210 > dead.
        assert!(!ix.should_compact(&policy));
        for n in 3..6 {
            ix.apply(close(n), 10);
        }
        // dead 240 > live 120.
        assert!(ix.should_compact(&policy));
        assert!(!ix.should_compact(&CompactPolicy {
            min_dead_bytes: 1000
        }));
    }

    #[test]
    fn live_records_rebuild_the_same_index() {
        let mut ix = Index::new();
        for n in 0..6 {
            ix.apply(request(n), 30);
        }
        for n in [1, 4] {
            ix.apply(reply(n), 20);
        }
        for n in [0, 4] {
            ix.apply(close(n), 10);
        }
        let live: Vec<_> = ix.live_records().collect();
        assert_eq!(
            live,
            vec![request(1), reply(1), request(2), request(3), request(5)]
        );
        let mut again = Index::new();
        let mut sizes = Vec::new();
        for r in live {
            sizes.push((r.id(), 7));
            again.apply(r, 7);
        }
        ix.compacted(&sizes);
        for n in 0..6 {
            assert_eq!(ix.lookup(id(n)), again.lookup(id(n)), "request {n}");
        }
        let order = |ix: &Index| ix.pending_after(None).map(|(_, i)| i).collect::<Vec<_>>();
        assert_eq!(order(&ix), order(&again));
        assert_eq!(ix.counts(), again.counts());
        assert_eq!(ix.counts().live_bytes, 35);
    }

    fn keyed(n: u8, key: &'static str) -> Record {
        Record::Request {
            id: id(n),
            service: Bytes::from("echo"),
            body: vec![Bytes::from(vec![n])],
            key: Some(Bytes::from(key)),
        }
    }

    #[test]
    fn a_key_names_one_open_request_survives_compaction_and_is_freed_by_close() {
        let mut ix = Index::new();
        let mut batch = BatchView::default();
        assert_eq!(ix.admit(&keyed(1, "k1"), &batch), Admission::Write);
        batch.note(&keyed(1, "k1"));
        // The same key again in the same batch, under another UUID: skipped.
        assert_eq!(ix.admit(&keyed(2, "k1"), &batch), Admission::Skip);
        batch.clear();
        assert!(ix.apply(keyed(1, "k1"), 30));
        assert_eq!(ix.find_key(b"k1"), Some(id(1)));
        assert_eq!(ix.admit(&keyed(2, "k1"), &batch), Admission::Skip);
        assert!(
            !ix.apply(keyed(2, "k1"), 30),
            "a duplicate key changes nothing"
        );
        assert_eq!(ix.counts().pending, 1);
        // Compaction keeps the key.
        let mut again = Index::new();
        for r in ix.live_records() {
            again.apply(r, 7);
        }
        assert_eq!(again.find_key(b"k1"), Some(id(1)));
        // Closing forgets it.
        ix.apply(close(1), 10);
        assert_eq!(ix.find_key(b"k1"), None);
        assert_eq!(ix.admit(&keyed(3, "k1"), &batch), Admission::Write);
    }
}
