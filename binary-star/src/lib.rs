//! Binary Star: a high-availability primary/backup server pair, as a reusable library.
//!
//! # Reading order
//! 1. `examples/bstarsrv.rs`, then `examples/bstarcli.rs`: the Guide's two programs.
//! 2. [`fsm::step`]: the state machine, one state × event → outcome function, including the
//!    client vote that lets a backup take over only when the primary is gone.
//! 3. [`node::Node::handle_peer`]: heartbeats, peer expiry and the epochs that settle a dual
//!    active after a partition; [`failover::Plan`] is the client's side.
//! 4. [`node_loop::Reactor`]: the loop around the node, which serves what the node passes on.
//!
//! Map of the crate (pure modules first; they read no clock and touch no socket):
//!
//! | module | what it holds |
//! |---|---|
//! | [`fsm`] | the Guide's state machine as one function: state × event × now × peer expiry → decision |
//! | [`protocol`] | the one-digit state message, parsed into a typed [`fsm::State`] |
//! | [`node`] | one server's decisions: heartbeats, peer expiry, the client vote, the stall rule, the requests held while quiet |
//! | [`failover`] | the client's decisions: which server to ask, when to resend, when to give up |
//! | [`pair`] | the state PUB and SUB of one server, for any server that owns its frontend (the reactor, the Majordomo broker pair) |
//! | [`node_loop`] | the node's I/O shell, the reactor any service runs inside: frontend ROUTER, and the [`pair`] sockets |
//! | [`client_loop`] | the failover client API ([`Client`]): `request()` hides which server answered, on [`common::retry`] with a [`failover::Plan`] |
//!
//! The server's core, [`node::Node`], follows [`common::contract::Core`]: inputs through
//! `handle_*`, state messages out through `poll_transmit`, log-worthy events through `poll_event`,
//! client requests to serve through [`node::Node::poll_request`].
//!
//! Binaries: `bstarsrv` (an echo service on the reactor), `bstarcli` (the failover client) and
//! `bstarbench` (measures the failover gap a client sees).

pub mod client_loop;
pub mod failover;
pub mod fsm;
mod link;
pub mod node;
pub mod node_loop;
pub mod pair;
pub mod protocol;

pub use client_loop::{Client, ClientError};
pub use fsm::{Fatal, Role, State};
pub use node_loop::{Config, Reactor, ReactorError, Service};
