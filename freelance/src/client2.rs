//! Model 2's brain, with no sockets and no clock: sequence numbers, how many copies of a
//! request to fire, which reply wins, when the request fails.
//!
//! The `zeromq` crate's DEALER round-robins, so one copy per connected server reaches every
//! server once. The first reply carrying the current sequence number wins; replies to earlier
//! requests (the other servers' duplicates) are dropped. The table also tracks which servers
//! are connected, because the DEALER never reconnects by itself: the client re-connects a
//! server once it answers again, and fires the request in progress once more at every
//! connected server, so the newcomer gets a copy whatever the round-robin order.
//!
//! It follows [`common::contract::Core`]: shots to fire come out of `poll_transmit`, the
//! request's outcome out of `poll_event`, and `poll_timeout` is the request's deadline.

use crate::protocol::{shotgun_request, ProtocolError, SequencedReply};
use common::contract::{self, Core, Outbox};
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

/// How the request in progress ended, and what else the shell must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Its first matching reply.
    Answered(SequencedReply),
    /// No server answered before the deadline.
    Failed {
        /// The request number.
        sequence: u64,
    },
    /// A connected server dropped its connection: it gets no more copies until it is back
    /// (the shell probes it).
    ServerLost {
        /// The server's index.
        index: usize,
    },
    /// A reply that is not model 2's `["", sequence, body…]`: dropped.
    Malformed(ProtocolError),
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
    outbox: Outbox<Shot, Event>,
}

impl Shotgun {
    /// A client of `servers` servers, none connected yet.
    pub fn new(servers: usize, timeout: Duration) -> Self {
        Self {
            timeout,
            sequence: 0,
            connected: vec![false; servers],
            pending: None,
            outbox: Outbox::default(),
        }
    }

    /// Server `index` is connected. If a request is in progress it must reach the newcomer
    /// too; round-robin cannot aim at one server, so the request is fired once more at every
    /// connected server (the others' duplicates are dropped by sequence number).
    pub fn handle_connected(&mut self, index: usize, _now: Instant) {
        if let Some(slot) = self.connected.get_mut(index) {
            *slot = true;
        }
        self.fire();
    }

    /// Server `index` dropped its connection: [`Event::ServerLost`] if it was connected (an
    /// unknown index, or a server already lost, changes nothing).
    pub fn handle_server_lost(&mut self, index: usize, _now: Instant) {
        let was_connected = self
            .connected
            .get_mut(index)
            .is_some_and(|slot| std::mem::replace(slot, false));
        if was_connected {
            self.outbox.event(Event::ServerLost { index });
        }
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
    pub fn handle_request(&mut self, body: &Message, now: Instant) {
        self.sequence += 1;
        self.pending = Some(Pending {
            sequence: self.sequence,
            message: shotgun_request(self.sequence, body),
            deadline: contract::saturating_add(now, self.timeout),
        });
        self.fire();
    }

    /// Queues the request in progress, if any: one copy per connected server.
    fn fire(&mut self) {
        let copies = self.live();
        if let Some(p) = &self.pending {
            self.outbox.transmit(Shot {
                sequence: p.sequence,
                message: p.message.clone(),
                copies,
            });
        }
    }

    /// A reply arrived. If it answers the request in progress, that is over: an
    /// [`Event::Answered`]. A duplicate or a reply to an earlier request is dropped; one that
    /// does not parse is an [`Event::Malformed`].
    pub fn handle_reply(&mut self, message: Message, _now: Instant) {
        let reply = match SequencedReply::parse(message) {
            Ok(reply) => reply,
            Err(e) => return self.outbox.event(Event::Malformed(e)),
        };
        let answered = self.pending.take_if(|p| p.sequence == reply.sequence);
        if answered.is_some() {
            self.outbox.event(Event::Answered(reply));
        }
    }
}

impl Core for Shotgun {
    type Transmit = Shot;
    type Event = Event;

    /// Fails the request in progress if its deadline has passed.
    fn handle_timeout(&mut self, now: Instant) {
        if let Some(Pending { sequence, .. }) = self.pending.take_if(|p| now >= p.deadline) {
            self.outbox.event(Event::Failed { sequence });
        }
    }

    /// When the request in progress fails, if there is one.
    fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    fn poll_transmit(&mut self) -> Option<Shot> {
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

    fn reply(seq: u64) -> Message {
        Message::new().with("").with(seq.to_string()).with("OK")
    }

    /// Starts a request and takes its shot.
    fn fire(gun: &mut Shotgun, body: &'static str, now: Instant) -> Shot {
        gun.handle_request(&Message::new().with(body), now);
        gun.poll_transmit().unwrap()
    }

    /// Hands `message` in; the reply it completed, if any, or why it was dropped.
    fn answer(
        gun: &mut Shotgun,
        message: Message,
    ) -> Result<Option<SequencedReply>, ProtocolError> {
        gun.handle_reply(message, Instant::now());
        match gun.poll_event() {
            None => Ok(None),
            Some(Event::Answered(reply)) => Ok(Some(reply)),
            Some(Event::Malformed(e)) => Err(e),
            Some(other) => panic!("not an answer: {other:?}"),
        }
    }

    /// Server `index` dropped its connection; true if it was connected.
    fn lost(gun: &mut Shotgun, index: usize) -> bool {
        gun.handle_server_lost(index, Instant::now());
        match gun.poll_event() {
            None => false,
            Some(Event::ServerLost { index: i }) if i == index => true,
            Some(other) => panic!("not a lost server: {other:?}"),
        }
    }

    /// Runs the timer at `now`; the request that failed, if any.
    fn expire(gun: &mut Shotgun, now: Instant) -> Option<u64> {
        gun.handle_timeout(now);
        gun.poll_event().map(|event| match event {
            Event::Failed { sequence } => sequence,
            other => panic!("not a failure: {other:?}"),
        })
    }

    #[test]
    fn one_copy_per_connected_server_and_the_first_matching_reply_wins() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(3, GLOBAL_TIMEOUT);
        gun.handle_connected(0, t0);
        gun.handle_connected(1, t0);
        gun.handle_connected(2, t0);
        let shot = fire(&mut gun, "random name", t0);
        assert_eq!(shot.copies, 3);
        assert_eq!(shot.sequence, 1);
        assert_eq!(
            shot.message,
            Message::new().with("").with("1").with("random name")
        );
        let first = answer(&mut gun, reply(1)).unwrap().unwrap();
        assert_eq!(first.sequence, 1);
        // The other two servers' copies are duplicates now.
        assert_eq!(answer(&mut gun, reply(1)), Ok(None));
        assert_eq!(gun.poll_timeout(), None);
        let shot = fire(&mut gun, "x", t0);
        assert_eq!(shot.sequence, 2);
        assert_eq!(
            answer(&mut gun, reply(1)),
            Ok(None),
            "a reply to request 1 is stale"
        );
        assert!(answer(&mut gun, reply(2)).unwrap().is_some());
    }

    #[test]
    fn a_dead_server_gets_no_copy_and_the_request_fails_at_the_deadline() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(3, GLOBAL_TIMEOUT);
        gun.handle_connected(0, t0);
        gun.handle_connected(1, t0);
        assert!(lost(&mut gun, 1));
        assert!(!lost(&mut gun, 1));
        assert!(!lost(&mut gun, 7), "unknown index is ignored");
        assert_eq!(fire(&mut gun, "x", t0).copies, 1);
        assert_eq!(gun.poll_timeout(), Some(t0 + 2500 * MS));
        assert_eq!(expire(&mut gun, t0 + 2499 * MS), None);
        assert_eq!(expire(&mut gun, t0 + 2500 * MS), Some(1));
        assert_eq!(gun.poll_timeout(), None);
    }

    #[test]
    fn a_timeout_of_u64_max_milliseconds_never_panics() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(1, Duration::from_millis(u64::MAX));
        gun.handle_connected(0, t0);
        assert_eq!(fire(&mut gun, "x", t0).copies, 1);
        assert!(gun
            .poll_timeout()
            .is_some_and(|at| at > t0 + 3_600_000 * MS));
        assert_eq!(
            expire(&mut gun, t0 + 3_600_000 * MS),
            None,
            "not due for ages"
        );
    }

    #[test]
    fn a_server_that_connects_during_a_request_gets_a_copy() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(2, GLOBAL_TIMEOUT);
        gun.handle_connected(0, t0);
        assert_eq!(gun.poll_transmit(), None, "nothing pending yet");
        lost(&mut gun, 0);
        let shot = fire(&mut gun, "x", t0);
        assert_eq!(shot.copies, 0);
        gun.handle_connected(1, t0);
        assert_eq!(
            gun.poll_transmit(),
            Some(Shot {
                copies: 1,
                ..shot.clone()
            })
        );
        assert!(gun.is_connected(1));
        assert_eq!(gun.live(), 1);
        // A second newcomer: round-robin cannot aim, so every connected server gets one more.
        gun.handle_connected(0, t0);
        assert_eq!(gun.poll_transmit().map(|s| s.copies), Some(2));
    }

    #[test]
    fn malformed_replies_are_errors_and_keep_the_request_pending() {
        let t0 = Instant::now();
        let mut gun = Shotgun::new(1, GLOBAL_TIMEOUT);
        fire(&mut gun, "x", t0);
        assert!(answer(&mut gun, Message::new().with("1").with("OK")).is_err());
        assert!(gun.poll_timeout().is_some());
    }
}
