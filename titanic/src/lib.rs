//! Titanic (9/TSP): durable, disconnected request-reply on top of Majordomo.
//!
//! A client hands a request to Titanic and gets a UUID back as soon as the request is safely on
//! disk; Titanic forwards it to the real service whenever that service is up, keeps the reply,
//! and hands it out until the client closes the request. Broker, worker, Titanic and client can
//! each crash and restart without losing an acknowledged request.
//!
//! # Reading order
//! 1. `examples/titanic.rs`, then `examples/ticlient.rs`: the Guide's two programs, shorter.
//! 2. [`service::handle`]: the three TSP services. A request is acknowledged only once it is in the
//!    journal; a reply is handed out until the client closes it.
//! 3. [`Dispatcher`](dispatch::Dispatcher)`::handle_timeout`: when to ask `mmi.service` and which
//!    stored requests to forward to the real service.
//!
//! | module | what it holds |
//! |---|---|
//! | [`tsp`] | the three services' frames, typed: UUIDs, status codes, request/reply bodies |
//! | [`journal`] | the on-disk record format (length + CRC-32 + MessagePack) and the recovery scan, linear in the file's size whatever the damage |
//! | [`index`] | the in-memory state rebuilt from the journal, admission rules, compaction policy |
//! | [`store`] | the journal file, the writer thread with group commit, compaction, recovery |
//! | [`dispatch`] | the dispatcher's decisions (a [`Core`](common::contract::Core)): when to ask `mmi.service`, what to forward, back-off |
//! | [`service`] | the three TSP services: request body in, reply body out, store behind |
//! | [`server`] | the `titanic` process: journal, services as Majordomo workers, dispatcher loop |
//! | [`client`] | the TSP client behind `ticlient`: request, poll for the reply, close |
//!
//! `tsp`, `journal`, `index` and `dispatch` are pure (no files, no sockets, no clock) and
//! unit-tested with virtual time; `store` is the only code that touches the file, `server` and
//! `client` the only code that touches sockets (through the `majordomo` APIs).

pub mod client;
pub mod dispatch;
pub mod index;
pub mod journal;
pub mod server;
pub mod service;
pub mod store;
pub mod tsp;

pub use store::{FsyncPolicy, Store, StoreError, StoreOptions};
pub use tsp::{RequestId, Status};
