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
//! 3. [`client_loop::run_sequence`]: the `lpclient` loop that feeds that core and logs its
//!    events.
//!
//! | module | layer | what it holds |
//! |---|---|---|
//! | [`policy`] | pure | the retry policy ([`policy::RetryPolicy`], run by [`common::retry`]) and [`policy::Sequence`] |
//! | [`client_loop`] | I/O | [`LazyPirateClient`] (the library API) and [`client_loop::run_sequence`] (the `lpclient` loop), on [`common::retry`]'s requester |
//! | [`server_loop`] | I/O | `lpserver`: [`server_loop::serve`], a REP socket around an [`EchoCore`] ([`common::fault::FaultyServer`], a [`common::contract::Core`]) |
//!
//! Both cores live in `common` (the requester, the fault plan's server), so this crate holds
//! the policy and the two loops.
//!
//! Binaries: `lpclient` and `lpserver` (see `src/bin/`), thin shells over these modules.

pub mod client_loop;
pub mod policy;
pub mod server_loop;

pub use client_loop::{Abandoned, LazyPirateClient};
pub use policy::{ReplyCheck, RetryPolicy};
pub use server_loop::{EchoCore, ServerEnd};
