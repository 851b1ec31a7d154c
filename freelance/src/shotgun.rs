//! Model 2's brain, with no sockets and no clock: sequence numbers, how many copies of a
//! request to fire, which reply wins, when the request fails.
//!
//! The `zeromq` crate's DEALER round-robins, so one copy per connected server reaches every
//! server once. The first reply carrying the current sequence number wins; replies to earlier
//! requests (the other servers' duplicates) are dropped. The table also tracks which servers
//! are connected, because the DEALER never reconnects by itself: the client re-connects a
//! server once it answers again, and fires the request in progress once more at every
//! connected server, so the newcomer gets a copy whatever the round-robin order.

use crate::frames::{shotgun_request, FrameError, SequencedReply};
use common::Message;
use std::time::{Duration, Instant};

/// Guide (flclient2): give up on a request when no server answered within this.
pub const GLOBAL_TIMEOUT: Duration = Duration::from_millis(2500);

/// A request to fire: `copies` times the same message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    /// The request number.
    pub sequence: u64,
    /// `["", sequence, body…]`, ready for the DEALER.
    pub message: Message,
    /// How many copies to send: one per connected server.
    pub copies: usize,
}

#[derive(Debug)]
struct Pending {
    sequence: u64,
    message: Message,
    deadline: Instant,
}

/// Sequence numbers, connected servers and the request in progress of a model-2 client.
#[derive(Debug)]
pub struct Shotgun {
    timeout: Duration,
    sequence: u64,
    connected: Vec<bool>,
    pending: Option<Pending>,
}

impl Shotgun {
    /// A client of `servers` servers, none connected yet.
    pub fn new(servers: usize, timeout: Duration) -> Self {
        Self {
            timeout,
            sequence: 0,
            connected: vec![false; servers],
            pending: None,
        }
    }

    /// Server `index` is connected. If a request is in progress it must reach the newcomer
    /// too; round-robin cannot aim at one server, so the request is fired once more at every
    /// connected server (the others' duplicates are dropped by sequence number).
    pub fn connected(&mut self, index: usize) -> Option<Shot> {
        if let Some(slot) = self.connected.get_mut(index) {
            *slot = true;
        }
        let copies = self.live();
        self.pending.as_ref().map(|p| Shot {
            sequence: p.sequence,
            message: p.message.clone(),
            copies,
        })
    }

    /// Server `index` dropped its connection. Returns true if it was connected.
    pub fn disconnected(&mut self, index: usize) -> bool {
        self.connected
            .get_mut(index)
            .map(|slot| std::mem::replace(slot, false))
            .unwrap_or(false)
    }

    /// True if server `index` is connected.
    pub fn is_connected(&self, index: usize) -> bool {
        self.connected.get(index).copied().unwrap_or(false)
    }

    /// Number of connected servers.
    pub fn live(&self) -> usize {
        self.connected.iter().filter(|c| **c).count()
    }

    /// Starts the next request: one copy per connected server (none if none is connected: the
    /// request then waits for a server to connect, until its deadline).
    pub fn fire(&mut self, body: &Message, now: Instant) -> Shot {
        self.sequence += 1;
        let message = shotgun_request(self.sequence, body);
        self.pending = Some(Pending {
            sequence: self.sequence,
            message: message.clone(),
            deadline: now + self.timeout,
        });
        Shot {
            sequence: self.sequence,
            message,
            copies: self.live(),
        }
    }

    /// A reply arrived. `Ok(Some)` if it answers the request in progress (which is then over),
    /// `Ok(None)` for a duplicate or a reply to an earlier request.
    pub fn on_reply(&mut self, message: Message) -> Result<Option<SequencedReply>, FrameError> {
        let reply = SequencedReply::parse(message)?;
        Ok(self
            .pending
            .take_if(|p| p.sequence == reply.sequence)
            .map(|_| reply))
    }

    /// When the request in progress fails, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    /// Fails the request in progress if its deadline has passed; returns its number.
    pub fn expire(&mut self, now: Instant) -> Option<u64> {
        self.pending
            .take_if(|p| now >= p.deadline)
            .map(|p| p.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn reply(seq: u64) -> Message {
        Message::new().with("").with(seq.to_string()).with("OK")
    }

    #[test]
    fn one_copy_per_connected_server_and_the_first_matching_reply_wins() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(3, GLOBAL_TIMEOUT);
        gun.connected(0);
        gun.connected(1);
        gun.connected(2);
        let shot = gun.fire(&Message::new().with("random name"), t0);
        assert_eq!(shot.copies, 3);
        assert_eq!(shot.sequence, 1);
        assert_eq!(
            shot.message,
            Message::new().with("").with("1").with("random name")
        );
        let first = gun.on_reply(reply(1)).unwrap().unwrap();
        assert_eq!(first.sequence, 1);
        // The other two servers' copies are duplicates now.
        assert_eq!(gun.on_reply(reply(1)), Ok(None));
        assert_eq!(gun.deadline(), None);
        let shot = gun.fire(&Message::new().with("x"), t0);
        assert_eq!(shot.sequence, 2);
        assert_eq!(
            gun.on_reply(reply(1)),
            Ok(None),
            "a reply to request 1 is stale"
        );
        assert!(gun.on_reply(reply(2)).unwrap().is_some());
    }

    #[test]
    fn a_dead_server_gets_no_copy_and_the_request_fails_at_the_deadline() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(3, GLOBAL_TIMEOUT);
        gun.connected(0);
        gun.connected(1);
        assert!(gun.disconnected(1));
        assert!(!gun.disconnected(1));
        assert!(!gun.disconnected(7), "unknown index is ignored");
        assert_eq!(gun.fire(&Message::new().with("x"), t0).copies, 1);
        assert_eq!(gun.deadline(), Some(t0 + 2500 * MS));
        assert_eq!(gun.expire(t0 + 2499 * MS), None);
        assert_eq!(gun.expire(t0 + 2500 * MS), Some(1));
        assert_eq!(gun.deadline(), None);
    }

    #[test]
    fn a_server_that_connects_during_a_request_gets_a_copy() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(2, GLOBAL_TIMEOUT);
        assert_eq!(gun.connected(0), None, "nothing pending yet");
        gun.disconnected(0);
        let shot = gun.fire(&Message::new().with("x"), t0);
        assert_eq!(shot.copies, 0);
        assert_eq!(
            gun.connected(1),
            Some(Shot {
                copies: 1,
                ..shot.clone()
            })
        );
        assert!(gun.is_connected(1));
        assert_eq!(gun.live(), 1);
        // A second newcomer: round-robin cannot aim, so every connected server gets one more.
        assert_eq!(gun.connected(0).map(|s| s.copies), Some(2));
    }

    #[test]
    fn malformed_replies_are_errors_and_keep_the_request_pending() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(1, GLOBAL_TIMEOUT);
        gun.fire(&Message::new().with("x"), t0);
        assert!(gun.on_reply(Message::new().with("1").with("OK")).is_err());
        assert!(gun.deadline().is_some());
    }
}
