//! The state sockets of one server of a pair, for any server that owns its frontend itself: the
//! [`node_loop`](crate::node_loop) is one, the Majordomo broker pair (`mdbroker --primary`) another.
//!
//! [`StateSockets`] binds the state publisher (PUB) and keeps the subscriber (SUB) connected to
//! the peer's publisher (see the private `link` module: bounded connects, a fresh socket after a
//! drop or a silence). Its owner feeds what [`StateSockets::recv`] returns to its
//! [`Node`](crate::node::Node) and publishes what the node asks for with
//! [`StateSockets::publish`]; the decisions stay in the node.

use crate::link::{LinkEvent, StateLink};
use crate::node::{Event, Publish, Timing};
use crate::protocol::{self, StateMessage, WireError};
use common::sock::{self, SockError};
use common::Message;
use zeromq::{PubSocket, Socket};

/// What arrived from the peer.
#[derive(Debug)]
pub enum PeerInput {
    /// Our SUB is (again) connected to the peer's PUB: publish our state at once
    /// ([`Node::handle_link_up`](crate::node::Node::handle_link_up)).
    LinkUp,
    /// A state message ([`Node::handle_peer`](crate::node::Node::handle_peer)), or why it was
    /// refused (log it and go on).
    State(Result<StateMessage, WireError>, Message),
}

/// The state PUB (bound) and SUB (connected to the peer) of one server.
pub struct StateSockets {
    publisher: PubSocket,
    link: StateLink,
    pub_bound: String,
    timing: Timing,
}

impl StateSockets {
    /// Binds the publisher on `state_pub` (through the guard, like every bind) and starts
    /// connecting the subscriber to the peer's publisher at `state_sub`.
    pub async fn bind(
        state_pub: &str,
        state_sub: &str,
        timing: Timing,
    ) -> Result<StateSockets, SockError> {
        let mut publisher = PubSocket::new();
        let pub_bound = sock::bind(&mut publisher, state_pub).await?;
        // A silent link is replaced once the peer would have expired (at least two heartbeats).
        let silence = timing.peer_ttl().max(2 * timing.heartbeat);
        let link = StateLink::spawn(state_sub.to_owned(), timing.heartbeat, silence);
        Ok(StateSockets {
            publisher,
            link,
            pub_bound,
            timing,
        })
    }

    /// The publisher's endpoint as bound (port resolved).
    pub fn pub_endpoint(&self) -> &str {
        &self.pub_bound
    }

    /// The next input from the peer (cancel-safe); `None` only if the link task ended.
    pub async fn recv(&mut self) -> Option<PeerInput> {
        Some(match self.link.recv().await? {
            LinkEvent::Up => PeerInput::LinkUp,
            LinkEvent::State(message) => PeerInput::State(protocol::parse_state(&message), message),
        })
    }

    /// Publishes a state message. PUB never blocks (it drops for slow subscribers), but the
    /// send is bounded all the same; a failure is logged, the next heartbeat tries again.
    pub async fn publish(&mut self, Publish(state, epoch): Publish) {
        let message = protocol::state_message(state, epoch);
        if let Err(e) = sock::send(&mut self.publisher, message, self.timing.heartbeat).await {
            tracing::warn!("cannot publish state {state}: {e}");
        }
    }
}

/// Logs a node's event as the line every server of a pair prints for it (the table in
/// `binary-star/README.md`). [`Event::Resumed`] is logged by the caller, which knows how many
/// requests it held, and [`Event::Fatal`] by the caller that stops on it.
pub fn log_event(event: &Event) {
    match *event {
        Event::Changed {
            to, reason, epoch, ..
        } => tracing::info!("state {to} - {reason} (epoch {epoch})"),
        Event::PeerState {
            peer,
            after_silence: None,
        } => tracing::info!("peer is {peer}"),
        Event::PeerState {
            peer,
            after_silence: Some(silent),
        } => tracing::info!(
            "peer is back ({peer}) after {} ms of silence",
            silent.as_millis()
        ),
        Event::PeerExpired { silent } => {
            tracing::warn!("peer silent for {} ms (expired)", silent.as_millis())
        }
        Event::SameRole(state) => {
            tracing::error!("peer also says {state}: both servers have the same role (-p/-b)")
        }
        Event::Stalled { late } => tracing::warn!(
            "stalled: heartbeat {} ms late; listening to the peer before serving",
            late.as_millis()
        ),
        Event::Stale { peer, epoch, ours } => tracing::info!(
            "ignoring stale state messages from the peer ({peer} in epoch {epoch} < {ours})"
        ),
        Event::Senior { peer_epoch, ours } => tracing::warn!(
            "dual actives: we are senior (epoch {ours}, peer {peer_epoch}), staying active"
        ),
        Event::Resumed => tracing::info!("resumed after stall"),
        Event::Rejected {
            state,
            why,
            first: true,
        } => tracing::warn!("request dropped in state {state}: {why}"),
        Event::Rejected { state, why, .. } => {
            tracing::debug!("request dropped in state {state}: {why}")
        }
        Event::HeldFull => tracing::warn!("too many held requests, dropped one"),
        // The caller logs it as it stops.
        Event::Fatal(_) => {}
    }
}
