//! Simple Pirate: a queue between Lazy Pirate clients and many workers (the Guide's `spqueue`
//! and `spworker`; clients are `lpclient` from the `lazy-pirate` crate).
//!
//! The queue keeps a least-recently-used list of ready workers and hands each client request
//! to the one that has waited longest. It adds no reliability of its own: a request lost with a
//! dead worker is recovered by the client's retry, which the queue routes to a live worker.
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
