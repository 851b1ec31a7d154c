//! Titanic (9/TSP): durable, disconnected request-reply on top of Majordomo.
//!
//! A client hands a request to Titanic and gets a UUID back as soon as the request is safely on
//! disk; Titanic forwards it to the real service whenever that service is up, keeps the reply,
//! and hands it out until the client closes the request. Broker, worker, Titanic and client can
//! each crash and restart without losing an acknowledged request.
//!
//! # Reading order
//! 1. `examples/titanic.rs`, then `examples/ticlient.rs`: the Guide's two programs, shorter.
//! 2. [`Call`](server::service::Call): the three TSP services. A request is acknowledged only
//!    once it is in the journal; a reply is handed out until the client closes it.
//! 3. [`Dispatcher`](server::Dispatcher)`::handle_timeout`: when to ask `mmi.service` and which
//!    stored requests to forward to the real service.
//! 4. [`TiRequest`](client::TiRequest): the client's side of one request (store, poll for the
//!    reply, close), retrying whatever Titanic cannot answer yet.
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | the three services' frames, typed: UUIDs, status codes, request/reply bodies |
//! | [`journal`] | the on-disk record format (length + CRC-32 + MessagePack) and the recovery scan, linear in the file's size whatever the damage |
//! | [`index`] | the in-memory state rebuilt from the journal, admission rules, compaction policy |
//! | [`store`] | the [`Store`] handle; in `store/`: the journal `file`, its `recovery` on open, the `writer` thread with group commit and compaction |
//! | [`server`] | the `titanic` process's decisions (each a [`Core`](common::contract::Core)): the dispatcher (when to ask `mmi.service`, what to forward, back-off) and, in [`server::service`], the three TSP services (request body in, answer out, what to journal) |
//! | [`server_loop`] | the `titanic` process: journal, services as Majordomo workers, dispatcher loop |
//! | [`client`] | the TSP client's decisions for one request (a [`Core`](common::contract::Core)): store, poll for the reply, close, retry after `500` or silence, stop at `400` |
//! | [`client_loop`] | the TSP client behind `ticlient`: makes the calls `client` asks for with the Majordomo client, runs the load lanes |
//!
//! `protocol`, `journal`, `index`, `server` and `client` are pure (no files, no sockets, no clock) and
//! unit-tested with virtual time; `store` is the only code that touches the file, `server_loop` and
//! `client_loop` the only code that touches sockets (through the `majordomo` APIs).

pub mod client;
pub mod client_loop;
pub mod index;
pub mod journal;
pub mod protocol;
pub mod server;
pub mod server_loop;
pub mod store;

pub use protocol::{RequestId, Status};
pub use store::{FsyncPolicy, Store, StoreError, StoreOptions};
