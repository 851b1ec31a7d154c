//! Majordomo on a broker pair: what the two brokers and their workers tell each other.
//!
//! `mdbroker --primary` / `--backup` runs two brokers as a Binary Star pair ([`binary_star`]:
//! state messages and epochs between the brokers, the client vote). Only the ACTIVE broker
//! dispatches. Workers register with both, and they are what keeps request ids executed once
//! across a failover: a worker knows better than anyone which request it runs and what it
//! answered, so it tells the *other* broker, as it happens:
//!
//! * **running** — when it starts a request dispatched by one broker, it tells the others the
//!   request's id: a retry of that id at the other broker (after a failover) joins the running
//!   request instead of running it again, and that broker counts the worker busy;
//! * **answered** — when it has the reply, it sends the reply as usual to the broker that
//!   dispatched the request *and* a copy, under the id, to the others: a retry there gets the
//!   remembered reply, and a client whose retry joined the running request gets it from there
//!   (this is how the reply of a request whose broker died on the way reaches its client
//!   through the new active broker);
//! * **refused** — the epochs of the pair ([`binary_star::node`]) are fencing tokens: every
//!   REQUEST and HEARTBEAT from a paired broker carries its standing (state, epoch, role). A
//!   worker refuses a request from a broker that another live broker outranks (a broker that
//!   was cut off by a partition and does not know yet that it was replaced), and says so, with
//!   the senior standing: that broker steps down at once ([`Node::handle_fence`]) instead of
//!   running a request whose client already went to the other broker.
//!
//! A worker re-announces what it runs, and the replies of its last requests, each time it
//! registers with a broker, so a broker that restarted learns them too.
//!
//! [`Node::handle_fence`]: binary_star::node::Node::handle_fence
//!
//! # Wire form (an opt-in extension of 7/MDP, next to the request ids of [`crate::rid`])
//!
//! Every frame of the extension starts with [`MARKER`] (`0x00 "MDPHA1:"`):
//!
//! ```text
//! READY      worker → broker   "MDPW01", 0x01, service [, rid marker], MARKER        I serve a pair
//! HEARTBEAT  broker → worker   "MDPW01", 0x04, MARKER "<standing>"                   to pair workers
//! REQUEST    broker → worker   "MDPW01", 0x02, client…, "", MARKER "<standing>", [rid], body…
//! HEARTBEAT  worker → broker   "MDPW01", 0x04, MARKER "running", rid
//! HEARTBEAT  worker → broker   "MDPW01", 0x04, MARKER "answered", rid, body…
//! HEARTBEAT  worker → broker   "MDPW01", 0x04, MARKER "refused", rid, MARKER "<standing>"
//!
//! standing = STATE " " epoch " " role       e.g. "ACTIVE 17 primary", "PASSIVE 17 backup"
//! rid      = a rid frame of crate::rid ("\0MDPRID1:<id>")
//! ```
//!
//! Only a broker of a pair sends standings, and only to workers whose READY carried the marker;
//! a worker sends news only to brokers that sent it a standing. So the Guide's C peers never
//! see a frame of it: a C worker registers with one broker and is served by it while it is
//! active; the news ride on HEARTBEAT, which the C broker would take as a plain heartbeat.
//!
//! # What stays at-least-once
//! * A request whose worker died (or froze, or lost its network) while running it, as with one
//!   broker: nobody can tell whether it ran.
//! * Both brokers lost at once: news sent to a broker that was down are gone (a restarted broker
//!   learns the running request and the last [`REPLAY`] replies of each worker when it
//!   registers, nothing older).
//! * A worker cut off with a deposed broker (on the same side of a partition) does not hear
//!   the senior broker, so it cannot refuse: while a partition splits the pair, each side may
//!   serve, as Binary Star does; the epochs settle it when the partition heals.

use crate::protocol::ProtocolError;
use crate::rid::Rid;
use binary_star::{Role, State};
use bytes::{BufMut, Bytes, BytesMut};
use common::Message;
use std::fmt;

/// The first bytes of every frame of the extension, and on its own READY's capability frame.
pub const MARKER: &[u8] = b"\0MDPHA1:";

/// Replies a worker remembers and re-announces when it registers with a broker.
pub const REPLAY: usize = 64;

/// A paired broker's standing: its Binary Star state and epoch, and its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// ACTIVE, PASSIVE (or PRIMARY/BACKUP before the pair has met).
    pub state: State,
    /// The broker's epoch (see [`binary_star::node`]).
    pub epoch: u64,
    /// Primary or backup: breaks a tie of epochs, as between the brokers themselves.
    pub role: Role,
}

impl Standing {
    /// True if `self` is ACTIVE and senior to `other`: `other` is not ACTIVE, or has a lower
    /// epoch, or the same epoch as a backup against our primary (the pair's own rule).
    pub fn outranks(&self, other: &Standing) -> bool {
        self.state == State::Active
            && (other.state != State::Active
                || (self.epoch, self.role == Role::Primary)
                    > (other.epoch, other.role == Role::Primary))
    }

    /// The standing frame: [`MARKER`] then `STATE epoch role`.
    pub fn to_frame(&self) -> Bytes {
        marked(self.to_string().as_bytes())
    }

    /// Reads a standing frame; `None` for any other frame.
    pub fn from_frame(frame: &[u8]) -> Option<Standing> {
        let text = std::str::from_utf8(frame.strip_prefix(MARKER)?).ok()?;
        let mut words = text.split(' ');
        let name = words.next()?;
        let state = State::ALL.into_iter().find(|s| s.to_string() == name)?;
        let epoch = words.next()?.parse().ok()?;
        let role = match words.next()? {
            "primary" => Role::Primary,
            "backup" => Role::Backup,
            _ => return None,
        };
        words
            .next()
            .is_none()
            .then_some(Standing { state, epoch, role })
    }

    /// Takes a standing frame off the front of a request body, if there is one.
    pub fn take(body: &mut Message) -> Option<Standing> {
        let standing = body.first().and_then(|f| Standing::from_frame(f))?;
        body.pop_front();
        Some(standing)
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.state, self.epoch, self.role)
    }
}

/// `MARKER` followed by `text`.
fn marked(text: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(MARKER.len() + text.len());
    frame.put_slice(MARKER);
    frame.put_slice(text);
    frame.freeze()
}

const RUNNING: &[u8] = b"running";
const ANSWERED: &[u8] = b"answered";
const REFUSED: &[u8] = b"refused";

/// What the extension carries in a HEARTBEAT (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairFrames {
    /// Broker → worker: the broker's standing.
    Standing(Standing),
    /// Worker → broker: I run this request, dispatched by another broker.
    Running(Rid),
    /// Worker → broker: the reply to this request, dispatched by another broker.
    Answered(Rid, Message),
    /// Worker → broker: I did not run your request `rid`: this broker outranks you.
    Refused(Rid, Standing),
}

impl PairFrames {
    /// The name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            PairFrames::Standing(_) => "standing",
            PairFrames::Running(_) => "running",
            PairFrames::Answered(..) => "answered",
            PairFrames::Refused(..) => "refused",
        }
    }

    /// True if `frames` (what follows HEARTBEAT's command byte) belong to the extension.
    pub fn is_pair(frames: &Message) -> bool {
        frames.first().is_some_and(|f| f.starts_with(MARKER))
    }

    /// Parses what follows HEARTBEAT's command byte.
    pub fn parse(mut frames: Message) -> Result<PairFrames, ProtocolError> {
        let bad = |why: &'static str| ProtocolError::Pair(why);
        let first = frames.pop_front().ok_or(bad("no frames"))?;
        let kind = first.strip_prefix(MARKER).ok_or(bad("no marker"))?;
        let mut rid = || {
            frames
                .pop_front()
                .and_then(|f| Rid::from_frame(&f))
                .ok_or(bad("a request id frame must follow"))
        };
        let parsed = match kind {
            RUNNING => PairFrames::Running(rid()?),
            ANSWERED => {
                let rid = rid()?;
                return Ok(PairFrames::Answered(rid, frames));
            }
            REFUSED => {
                let rid = rid()?;
                let standing = frames
                    .pop_front()
                    .and_then(|f| Standing::from_frame(&f))
                    .ok_or(bad("a standing frame must follow the id"))?;
                PairFrames::Refused(rid, standing)
            }
            _ => PairFrames::Standing(
                Standing::from_frame(&first).ok_or(bad("unknown kind or bad standing"))?,
            ),
        };
        match frames.len() {
            0 => Ok(parsed),
            extra => Err(ProtocolError::TrailingFrames {
                command: "HEARTBEAT",
                extra,
            }),
        }
    }

    /// The frames that follow HEARTBEAT's command byte.
    pub fn into_frames(self) -> Message {
        match self {
            PairFrames::Standing(standing) => Message::from_frames([standing.to_frame()]),
            PairFrames::Running(rid) => Message::from_frames([marked(RUNNING), rid.to_frame()]),
            PairFrames::Answered(rid, mut body) => {
                body.push_front(rid.to_frame());
                body.push_front(marked(ANSWERED));
                body
            }
            PairFrames::Refused(rid, standing) => {
                Message::from_frames([marked(REFUSED), rid.to_frame(), standing.to_frame()])
            }
        }
    }
}

/// The worker's fence: given the standing of the broker a request came from and those of the
/// other brokers it currently hears, the senior standing that forbids running it, if any.
pub fn fence<'a>(
    from: &Standing,
    others: impl IntoIterator<Item = &'a Standing>,
) -> Option<Standing> {
    others
        .into_iter()
        .filter(|other| other.outranks(from))
        .max_by_key(|s| (s.epoch, s.role == Role::Primary))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(state: State, epoch: u64, role: Role) -> Standing {
        Standing { state, epoch, role }
    }

    #[test]
    fn standings_round_trip_and_rank_like_the_pair() {
        let a = standing(State::Active, 3, Role::Primary);
        assert_eq!(&a.to_frame()[..], b"\0MDPHA1:ACTIVE 3 primary");
        assert_eq!(Standing::from_frame(&a.to_frame()), Some(a));
        let b = standing(State::Active, 4, Role::Backup);
        assert!(b.outranks(&a) && !a.outranks(&b));
        let tie = standing(State::Active, 3, Role::Backup);
        assert!(
            a.outranks(&tie) && !tie.outranks(&a),
            "a tie goes to the primary"
        );
        let passive = standing(State::Passive, 9, Role::Backup);
        assert!(a.outranks(&passive) && !passive.outranks(&a));
        for bad in [
            &b"\0MDPHA1:ACTIVE 3"[..],
            b"\0MDPHA1:ACTIVE x primary",
            b"\0MDPHA1:LEADER 3 primary",
            b"\0MDPHA1:ACTIVE 3 primary extra",
            b"ACTIVE 3 primary",
        ] {
            assert_eq!(Standing::from_frame(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn news_round_trip_and_garbage_is_an_error() {
        let rid = Rid::new("abc-1").unwrap();
        let senior = standing(State::Active, 5, Role::Backup);
        for news in [
            PairFrames::Standing(senior),
            PairFrames::Running(rid.clone()),
            PairFrames::Answered(rid.clone(), Message::from_frames(["a", "b"])),
            PairFrames::Answered(rid.clone(), Message::new()),
            PairFrames::Refused(rid.clone(), senior),
        ] {
            let frames = news.clone().into_frames();
            assert!(PairFrames::is_pair(&frames));
            assert_eq!(PairFrames::parse(frames), Ok(news));
        }
        let running = Bytes::from_static(b"\0MDPHA1:running");
        for bad in [
            Message::new(),
            Message::from_frames([running.clone()]),
            Message::from_frames([running.clone(), Bytes::from_static(b"not a rid")]),
            Message::from_frames([running, rid.to_frame(), Bytes::from_static(b"x")]),
            Message::from_frames([Bytes::from_static(b"\0MDPHA1:dancing")]),
        ] {
            assert!(PairFrames::parse(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_worker_refuses_only_a_request_that_a_live_senior_outranks() {
        let old = standing(State::Active, 1, Role::Primary);
        let new = standing(State::Active, 2, Role::Backup);
        assert_eq!(fence(&old, [&new]), Some(new));
        assert_eq!(fence(&new, [&old]), None);
        assert_eq!(fence(&old, []), None, "alone it serves");
        let passive = standing(State::Passive, 2, Role::Backup);
        assert_eq!(fence(&old, [&passive]), None);
    }
}
