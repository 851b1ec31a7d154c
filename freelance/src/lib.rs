//! Brokerless reliability: the Guide's Freelance pattern, models 1, 2 and 3.
//!
//! Clients talk straight to a handful of equivalent servers and survive any of them dying.
//!
//! # Reading order
//! 1. `examples/flclient1.rs` and `examples/flserver1.rs`, then `examples/flclient3.rs`: the
//!    Guide's programs, shorter.
//! 2. [`client1::Model1Client::send`]: model 1, each server in turn on [`common::retry`].
//! 3. [`ServerTable`](table::ServerTable)`::handle_timeout`: model 3. Pings keep each server's
//!    liveness; a request goes to the first live server and fails over when its reply is late.
//!
//! | model | client | server | idea |
//! |---|---|---|---|
//! | 1 | `flclient1` ([`client1`]) | `flserver1` | REQ per attempt, one server after another |
//! | 2 | `flclient2` ([`client2`]) | `flserver2` | DEALER fires each request at every server |
//! | 3 | `flclient3` ([`agent`]) | `flserver3` | ROUTER to ROUTER (10/FLP), pings, failover |
//!
//! Modules, pure core first (no sockets, no clock; time is passed in):
//!
//! | module | what it holds |
//! |---|---|
//! | [`frames`] | typed frames of the three models; malformed input is a typed error |
//! | [`shotgun`] | model 2's sequence numbers, copies, winning reply, deadline |
//! | [`table`] | model 3's server table and timers: liveness, pings, failover, FAILED |
//! | [`server`] | the ROUTER loop of `flserver1..3` |
//! | [`client1`], [`client2`] | the model 1 client (on [`common::retry`]) and the model 2 client shell |
//! | [`agent`] | model 3's client API ([`FreelanceClient`]): agent task and per-server links |
//! | [`driver`] | the client programs' loop: N requests, replies, rate, summary line |
//! | [`cli`] | clap arguments shared by the client programs |
//!
//! The cores of models 2 and 3 ([`shotgun`], [`table`]) follow [`common::contract::Core`].
//!
//! Each module documents the log lines it guarantees; tests and the tour wait for them.

pub mod agent;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client1;
pub mod client2;
pub mod driver;
pub mod frames;
pub mod server;
pub mod shotgun;
pub mod table;

pub use agent::{AgentConfig, FreelanceClient, RequestError};
