//! Paranoid Pirate (the ZeroMQ Guide, chapter 4, "Robust Reliable Queuing"): a queue and
//! workers that heartbeat each other over 6/PPP, so the queue drops dead or hung workers and
//! workers find their way back to a restarted queue. Clients are plain Lazy Pirate REQ clients
//! (`lpclient`).
//!
//! # Reading order
//! 1. `examples/ppqueue.rs`, then `examples/ppworker.rs`: the Guide's two programs, shorter.
//! 2. [`Queue`](queue::Queue)`::handle_timeout`: the queue's half of the pattern. It heartbeats
//!    every worker each interval and purges one that stayed silent for `liveness` intervals.
//! 3. [`WorkerCore`](worker::WorkerCore)`::handle_timeout`: the worker's half. A silent queue means
//!    a fresh session after a back-off that doubles; [`worker_loop::run`] carries that out.
//!
//! | module | layer | what it holds |
//! |---|---|---|
//! | [`protocol`] | pure | 6/PPP frames as types: [`protocol::FromWorker`], [`protocol::ToWorker`], [`protocol::Routed`] |
//! | [`queue`] | pure | the queue's worker table (a [`common::contract::Core`]): LRU of idle workers, busy workers, liveness, purge, heartbeats |
//! | [`worker`] | pure | the worker's heartbeats, the queue's liveness, reconnect back-off, jobs, faults |
//! | [`queue_loop`] | I/O | `ppqueue`: two ROUTER sockets around a [`queue::Queue`] |
//! | [`worker_loop`] | I/O | `ppworker`: a [`common::session::Session`] driven by a [`worker::WorkerCore`], work run off the loop |
//!
//! The binaries `ppqueue` and `ppworker` only parse flags and call the two loops.
//!
//! Differences from the Guide's C programs, on purpose:
//! * a HEARTBEAT from a busy worker does not put it back on the idle list (the Guide's queue
//!   does, and then hands a second request to a worker that may be about to die);
//! * busy workers are heartbeated and purged too, not only idle ones;
//! * workers keep heartbeating while they work, and take a fresh identity on every reconnect;
//! * a connection that closes (a killed worker, a killed queue) is acted on at once instead of
//!   after `liveness` silent intervals, and the request a killed worker held goes to another
//!   worker right away; heartbeats remain the only detector for a hung peer;
//! * malformed frames from either side are logged with `E:` and dropped, never asserted on.

pub mod protocol;
pub mod queue;
pub mod queue_loop;
pub mod worker;
pub mod worker_loop;
