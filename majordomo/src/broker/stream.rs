//! Streamed replies (MDP/0.2 PARTIAL … FINAL) in the broker: what a request has delivered so
//! far, and the bridging rule to MDP/0.1 clients.
//!
//! A request being answered in parts carries a [`Parts`]: the parts delivered to its client,
//! kept (up to [`super::BrokerConfig::max_stream_bytes`]) for three readers:
//!
//! * **a 0.1 client** cannot take a PARTIAL: it gets one REPLY whose body is every PARTIAL's
//!   frames, then the FINAL's, concatenated in order (the bridging rule). If the parts outgrow
//!   the bound, they are dropped and the 0.1 client gets the FINAL's frames only (logged).
//! * **a rerun**: a request whose worker died mid-stream goes back to its queue with its
//!   `Parts`; the next worker starts the stream over, and its first parts, which the client
//!   already has, are not sent again ([`Parts::partial`] says [`Fate::Duplicate`]). This
//!   assumes what a retry assumes anyway: the service answers the same request the same way.
//! * **a retry** (the request-id store, [`super::dedup`]): a stream is remembered whole
//!   ([`pack`]) with its FINAL, and a retry that joined a running stream or asks for an
//!   answered one gets every part from the first ([`unpack`]). A stream that outgrew the bound
//!   is not remembered: its id is forgotten at its FINAL, and the retries that joined it get
//!   no answer (they retry, and it runs anew), so no client gets a stream with a hole.

use bytes::Bytes;
use common::Message;

/// The first frame of a remembered stream in the request-id store (never sent on the wire;
/// starts with NUL like this workspace's other markers).
const PACKED: &[u8] = b"\0MDPSTR1:";

/// Bytes charged per frame on top of its content.
const FRAME_OVERHEAD: usize = 32;

/// The parts one request has delivered, and where its current run stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    /// Parts delivered so far, in order (empty once `overflow`).
    kept: Vec<Message>,
    /// Parts delivered so far, kept or not.
    delivered: usize,
    /// Parts received from the current run (a rerun starts at zero).
    this_run: usize,
    /// Bytes of `kept`.
    bytes: usize,
    /// The parts outgrew the bound and were dropped.
    overflow: bool,
}

/// What to do with a PARTIAL a worker sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// New: deliver it to the streaming (MDP/0.2) client.
    Deliver,
    /// An earlier run already delivered this part: drop it.
    Duplicate,
}

impl Parts {
    /// A PARTIAL arrived: counts it, keeps it within `max_bytes`, says whether it is new.
    pub fn partial(&mut self, body: &Message, max_bytes: usize) -> Fate {
        self.this_run += 1;
        if self.this_run <= self.delivered {
            return Fate::Duplicate;
        }
        self.delivered += 1;
        if !self.overflow {
            let cost: usize = body.iter().map(|f| f.len() + FRAME_OVERHEAD).sum();
            if self.bytes.saturating_add(cost) > max_bytes {
                self.overflow = true;
                self.kept = Vec::new();
                self.bytes = 0;
            } else {
                self.bytes += cost;
                self.kept.push(body.clone());
            }
        }
        Fate::Deliver
    }

    /// The request goes to another worker: its run starts over.
    pub fn rerun(&mut self) {
        self.this_run = 0;
    }

    /// The parts delivered so far, if all are kept (`None` after an overflow).
    pub fn kept(&self) -> Option<&[Message]> {
        (!self.overflow).then_some(&self.kept[..])
    }

    /// Parts delivered so far.
    pub fn delivered(&self) -> usize {
        self.delivered
    }

    /// True if the parts outgrew the bound.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Bytes of the parts kept (what a requeued request is charged for them).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The bridging rule: the one body a 0.1 client gets for `parts` then `last`.
pub fn concatenate(parts: &[Message], last: Message) -> Message {
    let mut body = Message::new();
    for part in parts {
        part.iter().for_each(|f| body.push_back(f.clone()));
    }
    body.append(last);
    body
}

/// A whole reply as the request-id store keeps it: a plain reply (no parts) as it is, a
/// stream as one message: a marker frame (`\0MDPSTR1:`), the frame counts of each part (4 bytes little-endian
/// each, the FINAL last), then all frames.
pub fn pack(parts: &[Message], last: &Message) -> Message {
    if parts.is_empty() && last.first().is_none_or(|f| f != PACKED) {
        return last.clone();
    }
    let mut counts = Vec::with_capacity(4 * (parts.len() + 1));
    let mut packed = Message::from_frames([Bytes::from_static(PACKED)]);
    packed.push_back(Bytes::new()); // the counts, filled in below
    for part in parts.iter().chain(std::iter::once(last)) {
        counts.extend_from_slice(&(part.len() as u32).to_le_bytes());
        part.iter().for_each(|f| packed.push_back(f.clone()));
    }
    let mut frames = packed.into_frames();
    frames[1] = Bytes::from(counts);
    Message::from_frames(frames)
}

/// The parts and the FINAL of a remembered reply ([`pack`]); a plain reply has no parts.
pub fn unpack(remembered: Message) -> (Vec<Message>, Message) {
    if remembered.first().is_none_or(|f| f != PACKED) {
        return (Vec::new(), remembered);
    }
    let mut frames = remembered.into_frames();
    frames.pop_front();
    let counts = frames.pop_front().unwrap_or_default();
    let mut parts: Vec<Message> = counts
        .chunks_exact(4)
        .map(|c| {
            let n = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
            Message::from_frames(frames.drain(..n.min(frames.len())))
        })
        .collect();
    let last = parts.pop().unwrap_or_default();
    (parts, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(frames: &[&'static str]) -> Message {
        Message::from_frames(frames.iter().copied())
    }

    #[test]
    fn a_rerun_skips_the_parts_already_delivered() {
        let mut parts = Parts::default();
        assert_eq!(parts.partial(&m(&["1"]), 1000), Fate::Deliver);
        assert_eq!(parts.partial(&m(&["2"]), 1000), Fate::Deliver);
        // The worker dies; the next one starts over.
        parts.rerun();
        assert_eq!(parts.partial(&m(&["1"]), 1000), Fate::Duplicate);
        assert_eq!(parts.partial(&m(&["2"]), 1000), Fate::Duplicate);
        assert_eq!(parts.partial(&m(&["3"]), 1000), Fate::Deliver);
        assert_eq!(parts.delivered(), 3);
        assert_eq!(parts.kept().unwrap(), &[m(&["1"]), m(&["2"]), m(&["3"])]);
        assert_eq!(parts.bytes(), 3 * (1 + FRAME_OVERHEAD));
    }

    #[test]
    fn a_requeued_request_is_charged_for_its_kept_parts() {
        use crate::broker::fair::Queued;
        let t0 = std::time::Instant::now();
        let mut request = Queued::new(m(&["C1"]), m(&["q"]), t0);
        let plain = request.cost();
        let mut parts = Parts::default();
        parts.partial(&Message::from_frames([vec![b'x'; 100]]), 1000);
        request.stream = Some(Box::new(parts));
        assert_eq!(request.cost(), plain + 100 + FRAME_OVERHEAD);
    }

    #[test]
    fn parts_beyond_the_bound_are_delivered_but_not_kept() {
        let mut parts = Parts::default();
        let big = Message::from_frames([vec![b'x'; 60]]);
        assert_eq!(parts.partial(&big, 100), Fate::Deliver);
        assert!(parts.kept().is_some());
        assert_eq!(parts.partial(&big, 100), Fate::Deliver);
        assert!(parts.overflowed() && parts.kept().is_none());
        assert_eq!(parts.partial(&big, 100), Fate::Deliver);
        assert_eq!(parts.delivered(), 3);
    }

    #[test]
    fn the_bridging_rule_concatenates_in_order() {
        let body = concatenate(&[m(&["a", "b"]), m(&[]), m(&["c"])], m(&["z"]));
        assert_eq!(body, m(&["a", "b", "c", "z"]));
        assert_eq!(concatenate(&[], m(&["z"])), m(&["z"]));
    }

    #[test]
    fn pack_and_unpack_round_trip() {
        let parts = vec![m(&["a", "b"]), m(&[]), m(&["c"])];
        let last = m(&["z", ""]);
        let packed = pack(&parts, &last);
        assert_eq!(unpack(packed), (parts, last));
        // A plain reply is kept as it is.
        assert_eq!(pack(&[], &m(&["only"])), m(&["only"]));
        assert_eq!(unpack(m(&["only"])), (vec![], m(&["only"])));
        // A plain reply that happens to start with the marker is packed, so it survives.
        let tricky = m(&["\0MDPSTR1:", "x"]);
        assert_eq!(unpack(pack(&[], &tricky)), (vec![], tricky));
        // A corrupt count cannot panic.
        let bad = Message::from_frames([&b"\0MDPSTR1:"[..], &[9, 0, 0, 0], b"a"]);
        assert_eq!(unpack(bad), (vec![], m(&["a"])));
    }
}
