//! Shared pieces of the reliable request-reply cookbook.
//!
//! Every pattern crate builds on these modules:
//!
//! | module | what it holds |
//! |---|---|
//! | [`msg`] | [`Message`], a multipart message with the envelope operations the patterns need |
//! | [`heartbeat`] | clock-free liveness counting, heartbeat timers and reconnect back-off |
//! | [`endpoint`] | the Guide's `tcp://*:5555` notation mapped to something the `zeromq` crate binds |
//! | [`sock`] | socket helpers that bound every connect, send and receive by a deadline |
//! | [`logging`] | the Guide's `I:` / `W:` / `E:` log lines, `-v` frame dumps |
//! | [`cli`] | clap argument groups shared by the binaries (verbosity, heartbeats, fault flags) |
//! | [`fault`] | deterministic fault simulation (`--crash-after`, `--overload-after`, `--seed`) |
//! | [`rng`] | a tiny seeded PRNG, so simulated faults are reproducible |
//! | [`netfault`] | a TCP fault proxy: partition, one-way partition, delay, throttle, reset of a live link |
//! | [`report`] | the `summary sent=… answered=… failed=… retries=…` line every client ends with |
//! | [`shutdown`] | Ctrl-C / SIGTERM as a future |
//! | `testkit` | (feature `testkit`) spawn binaries, wait for log lines, kill -9, SIGSTOP/SIGCONT |
//!
//! The pure parts (`msg`, `heartbeat`, `fault`, `rng`, `netfault`'s `Pipe`) read no clock and touch no socket: time is
//! passed in as `now: Instant`, so they are unit-tested with virtual time.

pub mod cli;
pub mod endpoint;
pub mod fault;
pub mod heartbeat;
pub mod logging;
pub mod msg;
pub mod netfault;
pub mod report;
pub mod rng;
pub mod shutdown;
pub mod sock;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use msg::Message;
