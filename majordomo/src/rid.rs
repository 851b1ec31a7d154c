//! Request ids (the Guide's 4.11 "service idempotence"): one id per *logical* request, kept
//! across every retry and every fresh socket, so the broker can tell a retry from a new request.
//!
//! # Wire form (an opt-in extension of 7/MDP; see the README)
//!
//! The id travels as one extra frame, the **rid frame**: the 9 bytes [`MARKER`]
//! (`0x00 "MDPRID1:"`) followed by the id itself (1 to [`MAX_LEN`] printable ASCII bytes).
//! It is always the *first body frame*:
//!
//! ```text
//! REQUEST  client → broker   "MDPC01", service, rid, body…
//! REPLY    broker → client   "MDPC01", service, rid, body…     (only if the request had one)
//! READY    worker → broker   "MDPW01", 0x01, service, MARKER  (the worker asks for ids)
//! REQUEST  broker → worker   "MDPW01", 0x02, client…, "", rid, body…   (only to such workers)
//! ```
//!
//! Why this is safe with peers that do not opt in:
//! * a client that sends no rid frame is served exactly as before (no dedup, no rid back);
//! * a worker that did not send the marker in READY never sees a rid frame: the broker strips it
//!   (the Guide's C workers and libzmq workers get the body as the client wrote it). The broker
//!   still deduplicates for them, because it knows which request each worker is running;
//! * the Guide's C broker ignores frames after the service in READY, so our worker's READY is
//!   accepted there (it then simply gets no ids);
//! * a body frame can only be mistaken for a rid frame if it starts with a NUL byte followed by
//!   `MDPRID1:`, which no text body does.
//!
//! A client that opts in must talk to a broker that understands rid frames (this workspace's
//! `mdbroker`): the Guide's C broker would pass the frame on to the worker as part of the body.
//!
//! Ids made by [`RidSource`] are `<16 hex digits>-<n>`: a random client instance id (64 bits:
//! two clients collide with odds of about 2⁻⁶⁴ per pair) and the client's own request counter.

use bytes::{BufMut, Bytes, BytesMut};
use common::Message;
use std::fmt;

/// The first bytes of every rid frame, and on its own the READY capability frame.
pub const MARKER: &[u8] = b"\0MDPRID1:";
/// Longest id accepted, in bytes.
pub const MAX_LEN: usize = 64;

/// One logical request's id (the bytes after [`MARKER`]). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rid(Bytes);

impl Rid {
    /// An id from its text; `None` unless it is 1 to [`MAX_LEN`] printable ASCII bytes.
    pub fn new(id: impl Into<Bytes>) -> Option<Self> {
        let id = id.into();
        let valid = !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(u8::is_ascii_graphic);
        valid.then_some(Self(id))
    }

    /// The id's bytes (without the marker).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The same id in a buffer of its own (an id taken from a received frame shares that
    /// frame's buffer; a store that keeps ids should not keep whole frames alive).
    pub fn detached(&self) -> Self {
        Self(Bytes::copy_from_slice(&self.0))
    }

    /// The rid frame: [`MARKER`] then the id.
    pub fn to_frame(&self) -> Bytes {
        let mut frame = BytesMut::with_capacity(MARKER.len() + self.0.len());
        frame.put_slice(MARKER);
        frame.put_slice(&self.0);
        frame.freeze()
    }

    /// Reads a rid frame. `None` for any other frame (including a malformed rid frame, which is
    /// then treated as an ordinary body frame: the sender did not follow this convention).
    pub fn from_frame(frame: &Bytes) -> Option<Self> {
        if frame.len() > MARKER.len() && frame.starts_with(MARKER) {
            Self::new(frame.slice(MARKER.len()..))
        } else {
            None
        }
    }

    /// Takes the rid frame off the front of `body`, if there is one.
    pub fn take(body: &mut Message) -> Option<Self> {
        let rid = body.first().and_then(Self::from_frame)?;
        body.pop_front();
        Some(rid)
    }

    /// Puts the rid frame in front of `body`.
    pub fn put(&self, body: &mut Message) {
        body.push_front(self.to_frame());
    }
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always printable ASCII (checked in `new`).
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rid({self})")
    }
}

/// Makes the ids of one client: a random instance id and a counter.
#[derive(Debug, Clone)]
pub struct RidSource {
    instance: u64,
    next: u64,
}

impl RidSource {
    /// Ids for a client whose instance id is `instance` (pass something random).
    pub fn new(instance: u64) -> Self {
        Self { instance, next: 1 }
    }

    /// Ids with a random instance id.
    pub fn random() -> Self {
        Self::new(common::rng::Rng::from_entropy().next_u64())
    }

    /// The next id: `<instance as 16 hex digits>-<counter>`, the counter from 1.
    pub fn next_rid(&mut self) -> Rid {
        let text = format!("{:016x}-{}", self.instance, self.next);
        self.next += 1;
        Rid::new(text).expect("hex digits, '-' and decimal digits are printable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rid_frames_round_trip_and_sit_in_front_of_the_body() {
        let mut ids = RidSource::new(0xdead_beef);
        let first = ids.next_rid();
        assert_eq!(first.to_string(), "00000000deadbeef-1");
        assert_eq!(ids.next_rid().to_string(), "00000000deadbeef-2");
        let frame = first.to_frame();
        assert_eq!(&frame[..], b"\0MDPRID1:00000000deadbeef-1");
        let mut body = Message::from_frames(["hello"]);
        first.put(&mut body);
        assert_eq!(body.len(), 2);
        assert_eq!(Rid::take(&mut body), Some(first));
        assert_eq!(body, Message::from_frames(["hello"]));
        assert_eq!(
            Rid::take(&mut body),
            None,
            "an ordinary frame is left alone"
        );
        assert_eq!(body.len(), 1);
    }

    #[test]
    fn anything_else_is_an_ordinary_body_frame() {
        for frame in [
            &b""[..],
            b"MDPRID1:abc",    // no NUL
            b"\0MDPRID1:",     // the bare marker (READY's capability, not an id)
            b"\0MDPRID1:a b",  // a space
            b"\0MDPRID1:\x01", // control byte
            b"\0MDPRID2:abc",  // another version
            &[b'x'; 10][..],   // text
        ] {
            let mut body = Message::from_frames([Bytes::copy_from_slice(frame)]);
            assert_eq!(Rid::take(&mut body), None, "{frame:?}");
            assert_eq!(body.len(), 1);
        }
        let long = [b"\0MDPRID1:".as_slice(), &[b'a'; MAX_LEN + 1]].concat();
        assert_eq!(Rid::from_frame(&Bytes::from(long)), None);
        let longest = [b"\0MDPRID1:".as_slice(), &[b'a'; MAX_LEN]].concat();
        assert!(Rid::from_frame(&Bytes::from(longest)).is_some());
        assert_eq!(Rid::take(&mut Message::new()), None);
    }
}
