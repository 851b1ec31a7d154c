//! One service's waiting requests: a FIFO per client, served round-robin, bounded by bytes.
//!
//! Why not one FIFO per service: a client that fires 50,000 requests (or never reads its
//! replies) would put every other client's request behind its own. Here each client (keyed by
//! the routing id of the peer that sent the request) has its own FIFO, and dispatch takes one
//! request from each client in turn, so a second client waits for at most one request per
//! other client, however deep their backlogs are.
//!
//! The bound is in bytes ([`Queued::cost`]: the frames plus a fixed bookkeeping overhead), not
//! in requests, so it bounds memory whatever the request sizes. When a new request does not
//! fit, fairness decides who loses: a client already holding at least its fair share (bound ÷
//! clients waiting) is refused; otherwise the newest requests of the biggest holder are evicted
//! to make room. A flood therefore costs the flooder, never a light client.
//!
//! A request is stored compactly (one boxed slice of frames, an expiry), because a broker may
//! hold hundreds of thousands of them: the Guide's `mdclient2` fires 100,000 before reading.
//! Its request id ([`crate::rid`]), if it has one, stays in that slice as the rid frame the
//! client sent (one flag says so), so an id costs no extra field, allocation or copy.
//!
//! Whatever the queue drops (refused, evicted, expired, its client gone) is given back to the
//! caller, which must tell the request-id store ([`super::dedup`]): a retry of a dropped
//! request has to run again, not wait for a reply that will never come.

use crate::rid::Rid;
use bytes::Bytes;
use common::Message;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Bytes of bookkeeping charged per waiting request on top of its frames (the queue entry, the
/// boxed frame slice, the allocator's share), so many tiny requests are not free.
pub const QUEUED_OVERHEAD: usize = 128;
/// Bytes charged per frame on top of its content (the frame handle).
const FRAME_OVERHEAD: usize = std::mem::size_of::<Bytes>();

/// A request waiting for a worker: the client's address stack, then the body.
#[derive(Clone)]
pub struct Queued {
    /// Client frames (`client_frames` of them), then the rid frame if `has_rid`, then the body
    /// frames.
    frames: Box<[Bytes]>,
    client_frames: u32,
    has_rid: bool,
    /// When it is dropped if still waiting.
    pub expires: Instant,
    /// The parts of a streamed reply delivered so far (MDP/0.2; `None` until the first
    /// PARTIAL): a request requeued mid-stream keeps them ([`super::stream`]).
    pub stream: Option<Box<super::stream::Parts>>,
}

impl Queued {
    /// A request from `client` (its address stack, never empty) with `body`. A body that starts
    /// with a rid frame ([`Rid::from_frame`]) makes a request with that id.
    pub fn new(client: Message, body: Message, expires: Instant) -> Self {
        let client_frames = client.len() as u32;
        let has_rid = body.first().and_then(Rid::from_frame).is_some();
        let frames: Vec<Bytes> = client
            .into_frames()
            .into_iter()
            .chain(body.into_frames())
            .collect();
        Self {
            frames: frames.into_boxed_slice(),
            client_frames,
            has_rid,
            expires,
            stream: None,
        }
    }

    /// The same request from another client address (another address that asked for the same
    /// request id), keeping its id, body and expiry.
    pub fn with_client(self, client: Message) -> Self {
        let client_frames = client.len() as u32;
        let body = self
            .frames
            .iter()
            .skip(self.client_frames as usize)
            .cloned();
        let frames: Vec<Bytes> = client.into_frames().into_iter().chain(body).collect();
        Self {
            frames: frames.into_boxed_slice(),
            client_frames,
            has_rid: self.has_rid,
            expires: self.expires,
            stream: self.stream,
        }
    }

    /// The request's id, if the client sent one.
    pub fn rid(&self) -> Option<Rid> {
        if !self.has_rid {
            return None;
        }
        self.frames
            .get(self.client_frames as usize)
            .and_then(Rid::from_frame)
    }

    /// True if the client sent a request id (cheaper than [`rid`](Self::rid)).
    pub fn has_rid(&self) -> bool {
        self.has_rid
    }

    /// True if `client` is the request's client address stack.
    pub fn is_from(&self, client: &Message) -> bool {
        let own = &self.frames[..self.client_frames as usize];
        own.len() == client.len() && own.iter().zip(client.iter()).all(|(a, b)| a == b)
    }

    /// The client's address stack (frames shared, not copied).
    pub fn client(&self) -> Message {
        Message::from_frames(self.frames[..self.client_frames as usize].iter().cloned())
    }

    /// The routing id of the peer that sent it: the key of its FIFO.
    pub fn peer(&self) -> Bytes {
        self.frames.first().cloned().unwrap_or_default()
    }

    /// What it is charged against the queue's byte bound: its frames, and the parts of a
    /// streamed reply it carries back into the queue after its worker died mid-stream (they
    /// only change while it runs, so the charge is the same when it leaves the queue).
    pub fn cost(&self) -> usize {
        QUEUED_OVERHEAD
            + self
                .stream
                .as_deref()
                .map_or(0, super::stream::Parts::bytes)
            + self
                .frames
                .iter()
                .map(|f| f.len() + FRAME_OVERHEAD)
                .sum::<usize>()
    }

    /// The client's address stack and the body, as a REQUEST to a worker carries them (frames
    /// shared, not copied), leaving the request in place for the broker to keep. The body
    /// starts with the rid frame if the request has an id and `with_rid` (the worker asked for
    /// ids); otherwise it is the body the client wrote after its rid frame.
    pub fn parts(&self, with_rid: bool) -> (Message, Message) {
        let (client, body) = self.frames.split_at(self.client_frames as usize);
        let skip = usize::from(self.has_rid && !with_rid);
        (
            Message::from_frames(client.iter().cloned()),
            Message::from_frames(body[skip..].iter().cloned()),
        )
    }

    /// The client's address stack and the body as the client sent it (rid frame included).
    pub fn into_parts(self) -> (Message, Message) {
        let mut frames = self.frames.into_vec();
        let body = frames.split_off(self.client_frames as usize);
        (Message::from_frames(frames), Message::from_frames(body))
    }
}

/// What [`FairQueue::push`] did with a request.
pub enum Admission {
    /// Queued; `evicted` newer requests of a bigger holder were dropped to make room.
    Queued {
        /// Requests of other clients dropped to make room (empty when there was room), given
        /// back so that their ids can be abandoned.
        evicted: Vec<Queued>,
    },
    /// Not queued: the queue is full and this client already holds its fair share.
    Refused,
}

/// One client's FIFO and its byte total.
#[derive(Default)]
struct ClientFifo {
    requests: VecDeque<Queued>,
    bytes: usize,
}

/// Waiting requests of one service. See the [module docs](self).
#[derive(Default)]
pub struct FairQueue {
    clients: HashMap<Bytes, ClientFifo>,
    /// Clients with waiting requests, the next to be served first.
    turn: VecDeque<Bytes>,
    len: usize,
    bytes: usize,
}

impl FairQueue {
    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes charged for the waiting requests.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Clients with waiting requests.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Queues `request` at the back of its client's FIFO, if it fits within `max_bytes`
    /// (evicting from bigger holders as the module docs say).
    pub fn push(&mut self, request: Queued, max_bytes: usize) -> Admission {
        let peer = request.peer();
        let cost = request.cost();
        let mut evicted = Vec::new();
        if self.bytes + cost > max_bytes {
            let holders = self.clients.len() + usize::from(!self.clients.contains_key(&peer));
            let share = max_bytes / holders.max(1);
            let held = self.clients.get(&peer).map_or(0, |c| c.bytes);
            if held + cost > share {
                return Admission::Refused;
            }
            // Evicting every other client would leave `held + cost <= share <= max_bytes`, so
            // this loop always makes room before it runs out of victims.
            while self.bytes + cost > max_bytes {
                let Some(victim) = self.biggest_other_than(&peer) else {
                    break;
                };
                evicted.extend(self.pop_newest_of(&victim));
            }
        }
        let fifo = self.clients.entry(peer.clone()).or_default();
        if fifo.requests.is_empty() {
            self.turn.push_back(peer);
        }
        fifo.bytes += cost;
        fifo.requests.push_back(request);
        self.len += 1;
        self.bytes += cost;
        Admission::Queued { evicted }
    }

    /// Puts a request back at the head of the queue: first of its client's FIFO, and its client
    /// served next. For a request whose worker went away before answering. Never refused (it
    /// was admitted once).
    pub fn push_front(&mut self, request: Queued) {
        let peer = request.peer();
        let cost = request.cost();
        let fifo = self.clients.entry(peer.clone()).or_default();
        fifo.bytes += cost;
        fifo.requests.push_front(request);
        self.len += 1;
        self.bytes += cost;
        self.turn.retain(|p| *p != peer);
        self.turn.push_front(peer);
    }

    /// The next request, taking clients in turn.
    pub fn pop(&mut self) -> Option<Queued> {
        let peer = self.turn.pop_front()?;
        let fifo = self.clients.get_mut(&peer)?;
        let request = fifo.requests.pop_front()?;
        let cost = request.cost();
        fifo.bytes -= cost;
        self.len -= 1;
        self.bytes -= cost;
        if fifo.requests.is_empty() {
            self.clients.remove(&peer);
        } else {
            self.turn.push_back(peer);
        }
        Some(request)
    }

    /// Drops every request that expired at `now` and gives them back.
    pub fn expire(&mut self, now: Instant) -> Vec<Queued> {
        let mut dropped = Vec::new();
        let mut emptied = false;
        for fifo in self.clients.values_mut() {
            // Each FIFO is in expiry order (requests put back at the front are older).
            while fifo.requests.front().is_some_and(|r| r.expires <= now) {
                if let Some(request) = fifo.requests.pop_front() {
                    fifo.bytes -= request.cost();
                    self.bytes -= request.cost();
                    self.len -= 1;
                    dropped.push(request);
                }
            }
            emptied |= fifo.requests.is_empty();
        }
        if emptied {
            self.clients.retain(|_, fifo| !fifo.requests.is_empty());
            let clients = &self.clients;
            self.turn.retain(|peer| clients.contains_key(peer));
        }
        dropped
    }

    /// The earliest expiry among waiting requests.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(|fifo| fifo.requests.front().map(|r| r.expires))
            .min()
    }

    /// Takes every waiting request out (the broker stopped dispatching).
    pub fn drain(&mut self) -> Vec<Queued> {
        self.turn.clear();
        self.len = 0;
        self.bytes = 0;
        std::mem::take(&mut self.clients)
            .into_values()
            .flat_map(|fifo| fifo.requests)
            .collect()
    }

    /// Drops every request of `peer` (its connection closed: no reply could reach it) and
    /// gives them back, oldest first.
    pub fn remove_client(&mut self, peer: &[u8]) -> Vec<Queued> {
        let Some(fifo) = self.clients.remove(peer) else {
            return Vec::new();
        };
        self.turn.retain(|p| p != peer);
        self.len -= fifo.requests.len();
        self.bytes -= fifo.bytes;
        fifo.requests.into()
    }

    fn biggest_other_than(&self, peer: &Bytes) -> Option<Bytes> {
        self.clients
            .iter()
            .filter(|(p, fifo)| *p != peer && !fifo.requests.is_empty())
            .max_by_key(|(_, fifo)| fifo.bytes)
            .map(|(p, _)| p.clone())
    }

    fn pop_newest_of(&mut self, peer: &Bytes) -> Option<Queued> {
        let fifo = self.clients.get_mut(peer)?;
        let request = fifo.requests.pop_back();
        if let Some(request) = &request {
            let cost = request.cost();
            fifo.bytes -= cost;
            self.bytes -= cost;
            self.len -= 1;
        }
        if fifo.requests.is_empty() {
            self.clients.remove(peer);
            self.turn.retain(|p| p != peer);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn req(client: &str, body: &str, expires: Instant) -> Queued {
        Queued::new(
            Message::from_frames([client.to_owned()]),
            Message::from_frames([body.to_owned()]),
            expires,
        )
    }

    /// Requests evicted by a push, or `None` if it was refused.
    fn evicted(admission: Admission) -> Option<usize> {
        match admission {
            Admission::Queued { evicted } => Some(evicted.len()),
            Admission::Refused => None,
        }
    }

    fn order(q: &mut FairQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop())
            .map(|r| {
                let (client, body) = r.into_parts();
                format!(
                    "{}:{}",
                    String::from_utf8_lossy(client.first().unwrap()),
                    String::from_utf8_lossy(body.first().unwrap())
                )
            })
            .collect()
    }

    #[test]
    fn clients_are_served_in_turn_each_in_its_own_order() {
        let t = Instant::now();
        let mut q = FairQueue::default();
        for i in 0..4 {
            q.push(req("A", &i.to_string(), t), usize::MAX);
        }
        q.push(req("B", "0", t), usize::MAX);
        q.push(req("B", "1", t), usize::MAX);
        assert_eq!(q.len(), 6);
        assert_eq!(order(&mut q), ["A:0", "B:0", "A:1", "B:1", "A:2", "A:3"]);
        assert_eq!((q.len(), q.bytes(), q.clients()), (0, 0, 0));
    }

    #[test]
    fn a_request_put_back_goes_out_next() {
        let t = Instant::now();
        let mut q = FairQueue::default();
        q.push(req("A", "0", t), usize::MAX);
        q.push(req("B", "0", t), usize::MAX);
        q.push(req("B", "1", t), usize::MAX);
        let first = q.pop().unwrap();
        q.push_front(req("B", "again", t));
        q.push_front(first);
        assert_eq!(order(&mut q), ["A:0", "B:again", "B:0", "B:1"]);
    }

    #[test]
    fn a_full_queue_refuses_the_big_holder_and_evicts_for_a_light_one() {
        let t = Instant::now();
        let cost = req("A", "x", t).cost();
        let mut q = FairQueue::default();
        let max = 10 * cost;
        for _ in 0..10 {
            assert_eq!(evicted(q.push(req("A", "x", t), max)), Some(0));
        }
        assert_eq!(evicted(q.push(req("A", "x", t), max)), None);
        // B holds nothing: room is made by dropping A's newest.
        assert_eq!(evicted(q.push(req("B", "y", t), max)), Some(1));
        assert!(q.bytes() <= max);
        for _ in 0..4 {
            assert_eq!(evicted(q.push(req("B", "y", t), max)), Some(1));
        }
        // B now holds its fair half: it is refused too, A keeps the other half.
        assert_eq!(evicted(q.push(req("B", "y", t), max)), None);
        assert_eq!(q.len(), 10);
        let served = order(&mut q);
        assert_eq!(served.iter().filter(|s| s.starts_with('B')).count(), 5);
    }

    #[test]
    fn expiry_and_client_removal_keep_the_counts_right() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut q = FairQueue::default();
        q.push(req("A", "0", t + s), usize::MAX);
        q.push(req("A", "1", t + 3 * s), usize::MAX);
        q.push(req("B", "0", t + 2 * s), usize::MAX);
        q.push(req("C", "0", t + 5 * s), usize::MAX);
        assert_eq!(q.poll_timeout(), Some(t + s));
        assert_eq!(q.expire(t + 2 * s).len(), 2);
        assert_eq!(q.poll_timeout(), Some(t + 3 * s));
        assert_eq!(q.remove_client(b"C").len(), 1);
        assert!(q.remove_client(b"nobody").is_empty());
        assert_eq!(order(&mut q), ["A:1"]);
        assert_eq!((q.len(), q.bytes(), q.clients()), (0, 0, 0));
    }

    #[test]
    fn a_proxied_request_keeps_its_address_stack() {
        let t = Instant::now();
        let r = Queued::new(
            Message::from_frames(["proxy", "C1"]),
            Message::from_frames(["a", "b"]),
            t,
        );
        assert_eq!(r.peer(), Bytes::from("proxy"));
        assert_eq!(r.rid(), None);
        assert_eq!(r.parts(true), r.clone().into_parts());
        assert_eq!(r.parts(false), r.clone().into_parts());
        let (client, body) = r.into_parts();
        assert_eq!(client, Message::from_frames(["proxy", "C1"]));
        assert_eq!(body, Message::from_frames(["a", "b"]));
    }

    #[test]
    fn a_request_id_rides_in_the_frames_and_comes_back_with_what_is_dropped() {
        let t = Instant::now();
        let rid = Rid::new("c-7").unwrap();
        let mut body = Message::from_frames(["x"]);
        rid.put(&mut body);
        let r = Queued::new(Message::from_frames(["A"]), body, t);
        assert_eq!(r.rid(), Some(rid.clone()));
        // Only a worker that asked for ids gets the rid frame.
        assert_eq!(r.parts(true).1.len(), 2);
        assert_eq!(r.parts(false).1, Message::from_frames(["x"]));
        // Another address that asked for the same id takes it over, id and body kept.
        let moved = r.clone().with_client(Message::from_frames(["proxy", "B"]));
        assert_eq!(moved.peer(), Bytes::from("proxy"));
        assert_eq!(moved.rid(), Some(rid.clone()));
        assert_eq!(moved.parts(false).1, Message::from_frames(["x"]));
        assert_eq!(moved.cost(), r.cost() + FRAME_OVERHEAD + 5);
        // What the queue drops comes back with its id: evicted, expired, client gone.
        let max = 2 * r.cost();
        let mut q = FairQueue::default();
        q.push(r.clone(), max);
        q.push(r.clone(), max);
        let Admission::Queued { evicted } = q.push(req("B", "y", t), max) else {
            panic!("B was refused");
        };
        assert_eq!(
            evicted.iter().map(Queued::rid).collect::<Vec<_>>(),
            [Some(rid.clone())]
        );
        let expired = q.expire(t);
        assert_eq!(expired.len(), 2);
        assert!(q.is_empty());
        q.push(r, max);
        let gone = q.remove_client(b"A");
        assert_eq!(
            gone.into_iter().map(|r| r.rid()).collect::<Vec<_>>(),
            [Some(rid)]
        );
    }
}
