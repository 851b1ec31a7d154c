//! Simple Pirate: a queue between Lazy Pirate clients and many workers (the Guide's `spqueue`
//! and `spworker`; clients are `lpclient` from the `lazy-pirate` crate).
//!
//! The queue keeps a least-recently-used list of ready workers and hands each client request
//! to the one that has waited longest. It adds no reliability of its own: a request lost with a
//! dead worker is recovered by the client's retry, which the queue routes to a live worker.
//!
//! # Reading order
//! 1. `examples/spqueue.rs`, then `examples/spworker.rs`: the Guide's two programs.
//! 2. [`broker::Broker::handle_worker`] and [`broker::Broker::handle_request`]: the pattern
//!    itself. A READY or a reply puts a worker at the back of the ready list; a request goes to
//!    the worker that has waited longest.
//! 3. [`queue::run`]: the `spqueue` loop around that core.
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | frames ↔ typed [`protocol::Request`], [`protocol::WorkerMessage`], with typed errors |
//! | [`broker`] | pure LRU worker list and routing decisions ([`broker::Broker`], a [`common::contract::Core`]) |
//! | [`queue`] | the `spqueue` socket loop around the broker |
//! | [`worker`] | [`worker::WorkerCore`] (pure fault decisions, a [`common::contract::Core`]) and the `spworker` socket loop |
//!
//! Binaries: `spqueue`, `spworker`, and `spbench` (requests/s through the queue vs. direct).

pub mod broker;
pub mod protocol;
pub mod queue;
pub mod worker;
