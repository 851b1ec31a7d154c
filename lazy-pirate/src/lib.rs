//! Lazy Pirate: reliability on the client side (the Guide's `lpclient` and `lpserver`).
//!
//! The client sends a request on a REQ socket and waits a bounded time for the reply. With no
//! reply it closes the socket, opens a fresh one, sends again, and after a few tries gives up.
//! The server is a plain REP echo server that can be told to crash or stall.
//!
//! # Reading order
//! 1. `examples/lpclient.rs`, then `examples/lpserver.rs`: the Guide's two programs, as short.
//! 2. [`Requester`](common::retry::Requester)`::handle_timeout` in `common::retry`: the pattern
//!    itself. A try without its reply is resent on a fresh socket until the tries run out; then the
//!    request is abandoned.
//! 3. [`client::run_sequence`]: the `lpclient` loop that feeds that core and logs its events.
//!
//! | module | what it holds |
//! |---|---|
//! | [`core`] | the retry policy ([`core::RetryPolicy`], run by [`common::retry`]) and [`core::Sequence`] (no socket, no clock) |
//! | [`client`] | [`LazyPirateClient`] (the library API) and [`client::run_sequence`] (the `lpclient` loop) |
//! | [`server`] | [`server::EchoCore`] (pure fault decisions, a [`common::contract::Core`]) and [`server::serve`] (the `lpserver` loop) |
//!
//! Binaries: `lpclient` and `lpserver` (see `src/bin/`), thin shells over these modules.

pub mod client;
pub mod core;
pub mod server;

pub use client::{Abandoned, LazyPirateClient};
pub use core::{ReplyCheck, RetryPolicy};
