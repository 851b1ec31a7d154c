//! Worker credit: several requests in flight at one worker (an opt-in extension of 7/MDP).
//!
//! MDP/0.1 hands a worker one request and waits for its reply, so a worker whose requests wait
//! on I/O (a database, another service) serves one at a time however little CPU they take. A
//! worker that can run `n` requests at once says so in READY, and the broker then keeps up to
//! `n` of its requests out at that worker; replies may come back in any order.
//!
//! # Wire form (next to the request ids of [`crate::rid`] and the pair of [`crate::pair`])
//!
//! ```text
//! READY    worker → broker   "MDPW01", 0x01, service, [rid MARKER], MARKER "<n>", [pair MARKER]
//! REQUEST  broker → worker   "MDPW01", 0x02, client…, "", [standing], [rid], body…   (unchanged)
//! REPLY    worker → broker   "MDPW01", 0x03, client…, "", [rid], body…
//!
//! MARKER = "\0MDPCRD1:", n = 1 to 10 decimal digits
//! ```
//!
//! * The **credit frame** is [`MARKER`] followed by the credit in decimal ASCII (`\0MDPCRD1:16`).
//!   It has the shape of the other capability frames (a NUL, a name, a version, a colon), so
//!   a text service name or body is never mistaken for it, and a later version of it can live
//!   beside this one. READY's capability frames may come in any order, each at most once; ours
//!   sends rid, credit, pair. A worker that asks for no credit (or for 1) sends no frame: the
//!   Guide's C workers and libzmq workers are served exactly as before, one request at a time.
//! * **Credit needs request ids.** With several requests out, the broker must know which one a
//!   REPLY answers, to keep the rest for requeueing if the worker goes away. The rid frame
//!   names the request, so a worker with credit must ask for ids (the rid marker in the same
//!   READY) and must put the request's rid frame back in front of its REPLY's body, as it got
//!   it. A READY with credit but no rid marker is served with credit 1 (logged:
//!   `W: worker <id> asked for credit <n> without request ids: served one request at a time`).
//! * A request **without an id** (its client sends none, e.g. the Guide's C client) still goes
//!   to credit workers, but at most one such request is out at a worker at a time: its REPLY,
//!   which carries no rid frame, then answers that one. While every worker with spare credit
//!   has one out, the service's queue waits for one of their replies, its order kept.
//! * The credit is bounded: 1 to [`MAX`]. A bigger one is served as [`MAX`] (logged: `W: worker
//!   <id> asked for credit <n>: served <MAX>`), 0 as 1; a frame whose number is not 1 to 10
//!   digits makes the READY malformed (dropped, as any bad frame).
//! * Heartbeats and liveness are unchanged. A worker whose connection closes (or that says
//!   DISCONNECT, or that the broker cannot reach) hands **all** its requests back to the head
//!   of their queues for the next workers, ids and all, so a retry joins them and each runs
//!   once; a worker purged for silence loses them all (their ids are forgotten, the clients
//!   retry), as a lone request is lost today.
//!
//! Only this workspace's `mdbroker` knows the frame: the Guide's C broker ignores READY's extra
//! frames (the worker then simply gets one request at a time), but an `mdbroker` built before
//! this extension refuses such a READY as malformed.

use bytes::{BufMut, Bytes, BytesMut};

/// The first bytes of the credit frame.
pub const MARKER: &[u8] = b"\0MDPCRD1:";
/// Most requests a broker keeps out at one worker: enough for I/O-bound work (1,024 requests
/// of 10 ms each is 100,000 per second), few enough that a worker that dies takes a bounded
/// batch back to the queues.
pub const MAX: u32 = 1024;
/// Longest decimal number the frame may carry (a `u32`).
const MAX_DIGITS: usize = 10;

/// The credit frame for `credit`.
pub fn to_frame(credit: u32) -> Bytes {
    let digits = credit.to_string();
    let mut frame = BytesMut::with_capacity(MARKER.len() + digits.len());
    frame.put_slice(MARKER);
    frame.put_slice(digits.as_bytes());
    frame.freeze()
}

/// True if `frame` claims to be a credit frame (it starts with [`MARKER`]).
pub fn is_credit(frame: &[u8]) -> bool {
    frame.starts_with(MARKER)
}

/// The credit a credit frame announces, as sent (not yet bounded); `None` if what follows the
/// marker is not 1 to 10 decimal digits (or more than `u32::MAX`).
pub fn from_frame(frame: &[u8]) -> Option<u32> {
    let digits = frame.strip_prefix(MARKER)?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Why a broker serves a worker with less credit than it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// It asked for more than one without the rid marker: replies could not be told apart.
    NoRequestIds,
    /// It asked for more than [`MAX`].
    Max,
    /// It asked for 0: served as 1.
    Zero,
}

/// The credit a broker grants for `asked` (`request_ids`: READY had the rid marker), and why
/// it is less than asked, if it is.
pub fn grant(asked: u32, request_ids: bool) -> (u32, Option<Limit>) {
    match asked {
        0 => (1, Some(Limit::Zero)),
        1 => (1, None),
        _ if !request_ids => (1, Some(Limit::NoRequestIds)),
        n if n > MAX => (MAX, Some(Limit::Max)),
        n => (n, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_refused() {
        assert_eq!(&to_frame(16)[..], b"\0MDPCRD1:16");
        for n in [0, 1, 16, MAX, u32::MAX] {
            assert_eq!(from_frame(&to_frame(n)), Some(n));
        }
        for bad in [
            &b"\0MDPCRD1:"[..],
            b"\0MDPCRD1:-1",
            b"\0MDPCRD1: 4",
            b"\0MDPCRD1:4x",
            b"\0MDPCRD1:99999999999",
            b"\0MDPCRD1:4294967296",
            b"\0MDPCRD2:4",
            b"16",
        ] {
            assert_eq!(from_frame(bad), None, "{bad:?}");
        }
        assert!(is_credit(b"\0MDPCRD1:x") && !is_credit(b"\0MDPRID1:"));
    }

    #[test]
    fn the_grant_is_bounded_and_needs_request_ids() {
        assert_eq!(grant(1, false), (1, None));
        assert_eq!(grant(16, true), (16, None));
        assert_eq!(grant(MAX, true), (MAX, None));
        assert_eq!(grant(MAX + 1, true), (MAX, Some(Limit::Max)));
        assert_eq!(grant(u32::MAX, true), (MAX, Some(Limit::Max)));
        assert_eq!(grant(16, false), (1, Some(Limit::NoRequestIds)));
        assert_eq!(grant(0, true), (1, Some(Limit::Zero)));
    }
}
