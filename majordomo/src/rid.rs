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
//! Ids made by [`RidSource`] are `<32 hex digits>-<n>`: a fresh token from the operating
//! system's random source for every id ([`common::ids::token`], 122 random bits), then the
//! client's own request counter, for people reading logs. The broker hands a remembered reply to
//! whoever presents its id (a retry comes from a fresh socket, so it cannot check who asks):
//! an id must not be guessable, neither from the clock and the pid nor from the client's
//! previous ids, or a reply could be stolen while the broker remembers it.

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

/// Makes the ids of one client: a fresh unguessable token per id, then a counter.
#[derive(Debug, Clone)]
pub struct RidSource {
    next: u64,
}

impl Default for RidSource {
    fn default() -> Self {
        Self::new()
    }
}

impl RidSource {
    /// Ids for one client, counting from 1.
    pub fn new() -> Self {
        Self { next: 1 }
    }

    /// The next id: `<token>-<counter>`, the token 32 hex digits fresh from the OS (the counter
    /// only makes logs readable; the token alone keeps ids apart and unguessable).
    pub fn next_rid(&mut self) -> Rid {
        let text = format!("{}-{}", common::ids::token(), self.next);
        self.next += 1;
        Rid::new(text).expect("32 hex digits, '-' and at most 20 decimal digits: printable, < 64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::rng::Rng;
    use std::collections::HashSet;
    use std::ops::RangeInclusive;
    use std::sync::{Arc, Barrier};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// An id's random part (the hex digits before the last `-`) as text.
    fn token(rid: &Rid) -> &str {
        let text = std::str::from_utf8(rid.as_bytes()).unwrap();
        text.rsplit_once('-').expect("<token>-<n>").0
    }

    /// Longest common prefix of two strings, in bytes.
    fn common_prefix(a: &str, b: &str) -> usize {
        a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
    }

    #[test]
    fn two_sources_started_together_never_collide_and_no_id_follows_from_the_last() {
        const IDS: usize = 100_000;
        let start = Arc::new(Barrier::new(2));
        let clients: Vec<_> = (0..2)
            .map(|_| {
                let start = start.clone();
                std::thread::spawn(move || {
                    // Both sources are made in the same instant (same millisecond, same pid).
                    start.wait();
                    let mut source = RidSource::new();
                    (0..IDS).map(|_| source.next_rid()).collect::<Vec<_>>()
                })
            })
            .collect();
        let clients: Vec<Vec<Rid>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let mut tokens = HashSet::new();
        for ids in &clients {
            for (n, rid) in ids.iter().enumerate() {
                let text = rid.to_string();
                let (tok, counter) = text.rsplit_once('-').unwrap();
                assert_eq!(counter, (n + 1).to_string(), "{text}");
                assert_eq!(tok.len(), common::ids::TOKEN_LEN, "{text}");
                assert!(
                    tok.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "{text}"
                );
                assert!(rid.as_bytes().len() <= MAX_LEN);
                tokens.insert(tok.to_owned());
            }
            // A known id tells nothing of the next: consecutive tokens agree on no more leading
            // digits than chance gives (a base plus a counter, say, would share most of them).
            let longest = ids
                .windows(2)
                .map(|w| common_prefix(token(&w[0]), token(&w[1])))
                .max()
                .unwrap();
            assert!(
                longest < 10,
                "consecutive tokens share {longest} leading digits"
            );
        }
        // Every random part is new: across both clients, and from one id to the next.
        assert_eq!(tokens.len(), 2 * IDS, "a random part was repeated");
    }

    fn wall_clock_nanos() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }

    /// What someone who knows a client's pid and the moment it started can try: every seed
    /// `Rng::from_entropy` (wall-clock nanoseconds XOR the pid) could have drawn in `window`, and
    /// the first outputs of each. True if one of them is the random part of an id in `ids`, the
    /// bits a v4 UUID fixes (version, variant) aside.
    fn rebuilt_from_clock_and_pid(window: RangeInclusive<u64>, ids: &[Rid]) -> bool {
        const HIGH: u64 = !0xF000; // the version nibble
        const LOW: u64 = !(0b11 << 62); // the variant bits
        let pid = u64::from(std::process::id()) << 32;
        let halves: Vec<(u64, u64)> = ids
            .iter()
            .map(|rid| {
                let bits = u128::from_str_radix(token(rid), 16).expect("hex");
                ((bits >> 64) as u64, bits as u64)
            })
            .collect();
        window.into_iter().any(|nanos| {
            let mut rng = Rng::seeded(nanos ^ pid);
            (0..8).any(|_| {
                let guess = rng.next_u64();
                halves
                    .iter()
                    .any(|&(high, low)| guess & HIGH == high & HIGH || guess & LOW == low & LOW)
            })
        })
    }

    /// Runs `make` between two readings of the wall clock, a few times, and keeps the run with
    /// the narrowest window (a preempted run would make the search long, not wrong).
    fn timed(make: impl Fn() -> Vec<Rid>) -> (RangeInclusive<u64>, Vec<Rid>) {
        let (window, ids) = (0..5)
            .map(|_| {
                let before = wall_clock_nanos();
                let ids = make();
                (before..=wall_clock_nanos(), ids)
            })
            .min_by_key(|(window, _)| window.end() - window.start())
            .unwrap();
        assert!(
            window.end() - window.start() < 10_000_000,
            "no quiet 10 ms to time the ids in"
        );
        (window, ids)
    }

    #[test]
    fn ids_come_from_the_os_not_from_the_clock_and_the_pid() {
        // The search works: it finds an id made the way ids were made before (an instance id
        // from the clock-and-pid seed, then a counter).
        let (window, old) = timed(|| {
            let instance = Rng::from_entropy().next_u64();
            vec![Rid::new(format!("{instance:016x}-1")).unwrap()]
        });
        assert!(rebuilt_from_clock_and_pid(window, &old));
        // It does not find ours: they come from the OS's random source.
        let (window, ids) = timed(|| {
            let mut source = RidSource::new();
            (0..4).map(|_| source.next_rid()).collect()
        });
        assert!(
            !rebuilt_from_clock_and_pid(window, &ids),
            "request ids follow from the clock and the pid: {ids:?}"
        );
    }

    #[test]
    fn rid_frames_round_trip_and_sit_in_front_of_the_body() {
        let first = Rid::new("00000000deadbeef-1").unwrap();
        assert_eq!(first.to_string(), "00000000deadbeef-1");
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
