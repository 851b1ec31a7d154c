//! Brokerless reliability: the Guide's Freelance pattern, models 1, 2 and 3.
//!
//! Clients talk straight to a handful of equivalent servers and survive any of them dying.
//!
//! # Reading order
//! 1. `examples/flclient1.rs` and `examples/flserver1.rs`, then `examples/flclient3.rs`: the
//!    Guide's programs, shorter.
//! 2. [`client1_loop::Model1Client::send`]: model 1, each server in turn on [`common::retry`].
//! 3. [`ServerTable`](agent::ServerTable)`::handle_timeout`: model 3. Pings keep each server's
//!    liveness; a request goes to the first live server and fails over when its reply is late.
//!
//! | model | client | server | idea |
//! |---|---|---|---|
//! | 1 | `flclient1` ([`client1_loop`]) | `flserver1` | REQ per attempt, one server after another |
//! | 2 | `flclient2` ([`client2`], [`client2_loop`]) | `flserver2` | DEALER fires each request at every server |
//! | 3 | `flclient3` ([`agent`], [`agent_loop`]) | `flserver3` | ROUTER to ROUTER (10/FLP), pings, failover |
//!
//! Modules, pure cores first (no sockets, no clock; time is passed in), then their I/O shells:
//!
//! | module | layer | what it holds |
//! |---|---|---|
//! | [`protocol`] | pure | typed frames of the three models; malformed input is a typed error |
//! | [`client2`] | pure | model 2's client: sequence numbers, copies, winning reply, deadline ([`client2::Shotgun`]) |
//! | [`agent`] | pure | model 3's client agent: the server table and its timers, liveness, pings, failover, FAILED ([`agent::ServerTable`]) |
//! | [`server_loop`] | I/O | the ROUTER loop of `flserver1..3` |
//! | [`client1_loop`] | I/O | the model 1 client, on [`common::retry`] |
//! | [`client2_loop`] | I/O | the model 2 client: one DEALER around a [`client2::Shotgun`] |
//! | [`agent_loop`] | I/O | model 3's client API ([`FreelanceClient`]): the agent task and per-server links around an [`agent::ServerTable`] |
//! | [`driver`] | I/O | the client programs' loop: N requests, replies, rate, summary line |
//! | [`cli`] | | clap arguments shared by the client programs |
//!
//! The cores of models 2 and 3 ([`client2`], [`agent`]) follow [`common::contract::Core`].
//!
//! Each module documents the log lines it guarantees; tests and the tour wait for them.

pub mod agent;
pub mod agent_loop;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client1_loop;
pub mod client2;
pub mod client2_loop;
pub mod driver;
pub mod protocol;
pub mod server_loop;

pub use agent_loop::{AgentConfig, FreelanceClient, RequestError};
pub use client1_loop::{Model1Client, Model1Config};
pub use client2_loop::{Model2Client, Model2Config};
pub use server_loop::{Model, ServerConfig};
