//! Simple Pirate: a queue between Lazy Pirate clients and many workers (the Guide's `spqueue`
//! and `spworker`; clients are `lpclient` from the `lazy-pirate` crate).
//!
//! The queue keeps a least-recently-used list of ready workers and hands each client request
//! to the one that has waited longest. It adds no reliability of its own: a request lost with a
//! dead worker is recovered by the client's retry, which the queue routes to a live worker.
//!
//! # Reading order
//! 1. `examples/spqueue.rs`, then `examples/spworker.rs`: the Guide's two programs.
//! 2. [`queue::Queue::handle_worker`] and [`queue::Queue::handle_client`]: the pattern
//!    itself. A READY or a reply puts a worker at the back of the ready list; a request goes to
//!    the worker that has waited longest.
//! 3. [`worker::WorkerCore`]: the worker's side, READY, the echo and the reconnect back-off.
//! 4. [`queue_loop::run`] and [`worker_loop::run`]: the `spqueue` and `spworker` loops around
//!    those cores.
//!
//! | module | layer | what it holds |
//! |---|---|---|
//! | [`protocol`] | pure | frames ↔ typed [`protocol::Request`], [`protocol::WorkerMessage`], with typed errors |
//! | [`queue`] | pure | the LRU worker list and routing decisions ([`queue::Queue`], a [`common::contract::Core`]) |
//! | [`worker`] | pure | READY, the fault plan's answers, malformed requests, the reconnect back-off ([`worker::WorkerCore`], a [`common::contract::Core`]) |
//! | [`queue_loop`] | I/O | `spqueue`: two ROUTER sockets around a [`queue::Queue`] |
//! | [`worker_loop`] | I/O | `spworker`: a REQ socket driven by a [`worker::WorkerCore`] |
//!
//! Binaries: `spqueue`, `spworker`, and `spbench` (requests/s through the queue vs. direct).

pub mod protocol;
pub mod queue;
pub mod queue_loop;
pub mod worker;
pub mod worker_loop;

pub use queue_loop::{BindError, QueueConfig};
pub use worker::WorkerCore;
pub use worker_loop::{WorkerConfig, WorkerEnd};
