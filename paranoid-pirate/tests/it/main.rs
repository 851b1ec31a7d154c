//! Process tests for `ppqueue` and `ppworker`: the real binaries, killed, hung and restarted,
//! with `lpclient` (from `lazy-pirate`) and libzmq peers talking to them.
//!
//! Run `cargo build -p lazy-pirate` first: the client tests need its `lpclient` binary.

mod bad_input;
mod cli;
mod detection;
mod examples;
mod failover;
mod guard;
mod interop;
mod liveness;
mod memory;
mod scenario;
mod util;
