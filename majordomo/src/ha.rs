//! One broker of a Majordomo pair: the broker core ([`Broker`]) under a Binary Star node
//! ([`Node`]). Pure, like both: no sockets, no clock.
//!
//! The node decides whether this broker is ACTIVE (it dispatches) or PASSIVE (it keeps its
//! workers registered and listens to their news, [`crate::pair`], but dispatches nothing):
//!
//! * a client REQUEST for a service is the pair's *client request* event: served while
//!   ACTIVE; at a PASSIVE broker it is dropped unanswered (the client's retry goes to the
//!   other broker), unless the peer has been silent for its whole expiry, in which case it is
//!   the *vote* that makes this broker take over and serve it; while the node is quiet after a
//!   stall it is held, then decided;
//! * `mmi.*` requests and every worker command go to the broker core in any state: a passive
//!   broker still answers MMI and keeps its workers (they are ready the moment it takes over);
//! * every change of state or epoch becomes the broker core's standing
//!   ([`Broker::set_standing`]): it starts or stops dispatching, and pair workers see the new
//!   standing with the next REQUEST or HEARTBEAT;
//! * a worker that refuses a request because the other broker outranks this one
//!   ([`broker::Event::Fenced`]) makes the node step down at once ([`Node::handle_fence`]).
//!
//! It follows [`common::contract::Core`]: messages for the ROUTER and state messages for the
//! state PUB come out of `poll_transmit` ([`Transmit`]), what to log out of `poll_event`
//! ([`Event`]).

use crate::broker::{self, Broker, BrokerConfig, Lost};
use crate::pair::Standing;
use crate::protocol::{self, ClientCommand, Inbound, Received};
use binary_star::fsm::Rejection;
use binary_star::node::{self, Node, Publish, Timing, Verdict};
use binary_star::protocol::StateMessage;
use binary_star::{Role, State};
use bytes::Bytes;
use common::contract::{Core, Outbox};
use common::Message;
use std::collections::VecDeque;
use std::time::Instant;

/// Client requests held while the node is quiet after a stall; beyond this they are dropped
/// (the clients retry).
pub const MAX_HELD: usize = 10_000;

/// What the shell must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A message for the ROUTER, routing id first.
    Router(Message),
    /// A state message for the state PUB.
    State(Publish),
}

/// What the shell must log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The broker core's event.
    Broker(broker::Event),
    /// The pair's node's event (state changes, the peer's news).
    Pair(node::Event),
    /// A client request was dropped unanswered: this broker must not serve it now. `first`
    /// for the first since the last change of state (the shell logs that one louder).
    Rejected {
        /// Our state when it came.
        state: State,
        /// Why it must not be served.
        why: Rejection,
        /// The first since the last change of state.
        first: bool,
    },
    /// A client request was dropped because [`MAX_HELD`] were already held.
    HeldFull,
    /// The peer's state makes the pair's split-brain rule stop the broker (only under the
    /// Guide's `--on-conflict abort`, which a broker pair never uses).
    Fatal(binary_star::Fatal),
}

/// One broker of a pair. See the [module docs](self).
pub struct PairedBroker {
    broker: Broker,
    node: Node,
    held: VecDeque<Received>,
    rejected_since_change: u64,
    outbox: Outbox<Transmit, Event>,
}

impl PairedBroker {
    /// A broker of `role` starting at `now`: the node publishes its state at once and gives the
    /// peer one expiry to show up; the broker dispatches nothing until the node makes it ACTIVE.
    pub fn new(role: Role, timing: Timing, config: BrokerConfig, now: Instant) -> Self {
        let node = Node::new(role, timing, now);
        let mut broker = Broker::new(config, now);
        broker.set_standing(standing_of(&node), now);
        let mut paired = Self {
            broker,
            node,
            held: VecDeque::new(),
            rejected_since_change: 0,
            outbox: Outbox::default(),
        };
        paired.settle(now);
        paired
    }

    /// The broker core (counters, tables).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The pair's node (state, epoch, peer expiry).
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// One message as the ROUTER received it.
    pub fn handle_message(&mut self, frames: Message, now: Instant) {
        match Received::parse(frames) {
            Ok(received) if is_service_request(&received.command) => {
                self.client_request(received, now)
            }
            parsed => self.broker.handle_parsed(parsed, now),
        }
        self.settle(now);
    }

    /// A message from the peer's state PUB; a split-brain verdict is [`Event::Fatal`].
    pub fn handle_peer(&mut self, message: StateMessage, now: Instant) {
        self.node.handle_peer(message, now);
        if let Some(fatal) = self.node.fatal() {
            self.outbox.event(Event::Fatal(fatal));
        }
        self.broker.set_peer(message.state, now);
        self.settle(now);
    }

    /// Our state SUB (re)connected to the peer's PUB.
    pub fn handle_link_up(&mut self, now: Instant) {
        self.node.handle_link_up(now);
        self.settle(now);
    }

    /// A peer's handshake done, with its authenticated CURVE key (see
    /// [`Broker::handle_connected`]).
    pub fn handle_connected(
        &mut self,
        peer: &Bytes,
        key: Option<common::curve::keys::PublicKey>,
        now: Instant,
    ) {
        self.broker.handle_connected(peer, key, now);
    }

    /// `peer`'s connection closed or a send to it failed ([`Broker::handle_peer_lost`]).
    pub fn handle_peer_lost(&mut self, peer: &Bytes, lost: Lost, now: Instant) {
        self.broker.handle_peer_lost(peer, lost, now);
        self.settle(now);
    }

    /// A send to `peer` blocked: it does not read ([`Broker::handle_send_blocked`]).
    pub fn handle_send_blocked(&mut self, peer: &Bytes, now: Instant) {
        self.broker.handle_send_blocked(peer, now);
        self.settle(now);
    }

    /// The broker is going away: DISCONNECT to every worker.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.broker.handle_shutdown(now);
        self.settle(now);
    }

    fn client_request(&mut self, received: Received, now: Instant) {
        match self.node.client_request_verdict(now) {
            Verdict::Serve => self.broker.handle_parsed(Ok(received), now),
            Verdict::Reject(why) => {
                self.rejected_since_change += 1;
                self.outbox.event(Event::Rejected {
                    state: self.node.state(),
                    why,
                    first: self.rejected_since_change == 1,
                });
            }
            Verdict::Hold if self.held.len() >= MAX_HELD => self.outbox.event(Event::HeldFull),
            Verdict::Hold => self.held.push_back(received),
        }
    }

    /// Carries out what the node and the broker core decided, until neither has more: a change
    /// of state becomes the broker's standing, the end of a stall decides the held requests, a
    /// fence report makes the node step down; everything is passed on to the shell.
    fn settle(&mut self, now: Instant) {
        loop {
            if let Some(event) = self.node.poll_event() {
                match event {
                    node::Event::Changed { .. } => {
                        self.rejected_since_change = 0;
                        self.broker.set_standing(standing_of(&self.node), now);
                    }
                    node::Event::Resumed => {
                        for received in std::mem::take(&mut self.held) {
                            self.client_request(received, now);
                        }
                    }
                    _ => {}
                }
                self.outbox.event(Event::Pair(event));
            } else if let Some(event) = self.broker.poll_event() {
                if let broker::Event::Fenced { senior, .. } = &event {
                    self.node.handle_fence(senior.epoch, now);
                }
                self.outbox.event(Event::Broker(event));
            } else if let Some(publish) = self.node.poll_transmit() {
                self.outbox.transmit(Transmit::State(publish));
            } else if self.broker.standing() != Some(standing_of(&self.node)) {
                // An epoch adopted without a change of state (an ACTIVE node hearing a higher
                // one from a PASSIVE peer): workers must see the epoch we really hold.
                self.broker.set_standing(standing_of(&self.node), now);
            } else {
                return;
            }
        }
    }
}

/// True for a client REQUEST to a service (not `mmi.*`): the pair's client-request event.
fn is_service_request(inbound: &Inbound) -> bool {
    matches!(inbound, Inbound::Client(ClientCommand::Request { service, .. })
        if !protocol::is_mmi(service))
}

/// The broker's standing, from the node.
fn standing_of(node: &Node) -> Standing {
    Standing {
        state: node.state(),
        epoch: node.epoch(),
        role: node.role(),
    }
}

impl Core for PairedBroker {
    type Transmit = Transmit;
    type Event = Event;

    /// The node's timers (heartbeats to the peer, its expiry, the stall rule) and the
    /// broker's (heartbeats to workers, purges, expiries).
    fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
        self.broker.handle_timeout(now);
        self.settle(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.node.poll_timeout(), self.broker.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The node's state messages first, then the broker's ROUTER messages, taken from the
    /// broker only now: it drops those to a paused peer at the time they would be sent
    /// ([`Broker::handle_send_blocked`]). A worker it purges for that has no news for the
    /// node, so its events are passed on as they are.
    fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(transmit) = self.outbox.poll_transmit() {
            return Some(transmit);
        }
        let message = self.broker.poll_transmit();
        while let Some(event) = self.broker.poll_event() {
            self.outbox.event(Event::Broker(event));
        }
        message.map(Transmit::Router)
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests;
