//! Shared pieces of the reliable request-reply cookbook.
//!
//! # Reading order
//! [`contract`] first: the one shape every pattern's core follows, so each crate reads the same
//! way. Then the two shared drivers that sit on it: [`retry`] (every client that retries; its
//! shell is [`retry_loop`]) and [`session`] (every worker that reconnects).
//!
//! Every pattern crate builds on these modules:
//!
//! | module | what it holds |
//! |---|---|
//! | [`contract`] | the one shape of every pattern's core (`handle_*`, `handle_timeout`, `poll_timeout`, `poll_transmit`, `poll_event`) and the shell's clock |
//! | [`msg`] | [`Message`], a multipart message with the envelope operations the patterns need |
//! | [`envelope`] | the validated ROUTER [`envelope::Envelope`], the one [`envelope::FrameError`] vocabulary and its limits, the 6/PPP command bytes |
//! | [`heartbeat`] | clock-free liveness counting, heartbeat timers and reconnect back-off |
//! | [`endpoint`] | the Guide's `tcp://*:5555` notation mapped to something the `zeromq` crate binds; a free port for tests and benchmarks |
//! | [`session`] | the reconnecting DEALER of every worker that reconnects: fresh identity, bounded connect, monitor, back-off wait, no-LINGER close |
//! | [`sock`] | socket helpers that bound every connect, send and receive by a deadline; the one `bind` and the one `connect` (through a CURVE relay with `--curve-server-key`) |
//! | [`guard`] | the ingress guard in front of every bound TCP endpoint: ZMTP headers checked, limits |
//! | [`router`] | the native guarded ROUTER (the Majordomo broker's public endpoint): the guard's rules and our own ZMTP codec, no relay hop |
//! | [`curve`] | CurveZMQ: keys and `zcert` files (`zkeygen`), the pure server handshake (the guard, `--curve-allow`) and client (the relay of every connect) |
//! | `logging` | (feature `cli`) the Guide's `I:` / `W:` / `E:` log lines, `-v` frame dumps |
//! | `bench` | (feature `cli`) what the benchmark binaries share: a free endpoint, child processes killed on drop, the median, a process's RSS |
//! | `cli` | (feature `cli`) clap argument groups shared by the binaries (verbosity, heartbeats, fault flags, guard limits) and the range of every numeric flag |
//! | [`ranges`] | the largest value of each kind of configured number (a day of milliseconds, …), for flags and libraries alike |
//! | [`fault`] | deterministic fault simulation (`--crash-after`, `--overload-after`, `--seed`), and [`fault::FaultyServer`], the core of a server that only answers under it |
//! | [`ids`] | request ids and socket identities from the OS random source (unguessable, never from the clock or `rng`) |
//! | [`rng`] | a tiny seeded PRNG, so simulated faults are reproducible (fault schedules only) |
//! | [`netfault`] | a TCP fault proxy: partition, one-way partition, delay, throttle, reset of a live link |
//! | [`report`] | the one accounting rule of every client ([`report::Ledger`]), its summary line and the `--log-requests` lines |
//! | [`retry`] | retry on a fresh socket: the one requester core ([`retry::Requester`]) of every client that resends, and when its socket may be kept |
//! | [`retry_loop`] | its shell ([`retry::RetryClient`], re-exported from `retry`): connect, send and receive within each try's deadline |
//! | [`busy_poll`] | a server's opt-in polling through the gaps of a busy exchange, instead of a wake-up from sleep per message (`mdbroker --spin-us`) |
//! | [`throttle`] | at most a burst of warnings a second, then a count of the rest (guard, broker) |
//! | [`shutdown`] | Ctrl-C / SIGTERM as a future |
//! | `hostile` | (feature `hostile`, part of `testkit`) the hostile byte sequences every server's tests send through its guard, and the probe of what else a server listens on; with feature `libzmq`, the libzmq request each test makes after them |
//! | `testkit` | (feature `testkit`) spawn binaries, wait for log lines, kill -9, SIGSTOP/SIGCONT |
//!
//! The pure parts (`msg`, `envelope`, `heartbeat`, `fault`, `rng`, `netfault`'s `Pipe`, `guard::zmtp`,
//! `guard::allow`, `throttle`) read no clock and touch no socket: time is passed in as
//! `now: Instant`, so they are unit-tested with virtual time.

#[cfg(feature = "cli")]
pub mod bench;
pub mod busy_poll;
#[cfg(feature = "cli")]
pub mod cli;
pub mod contract;
pub mod curve;
pub mod endpoint;
pub mod envelope;
pub mod fault;
pub mod guard;
pub mod heartbeat;
#[cfg(feature = "hostile")]
pub mod hostile;
pub mod ids;
#[cfg(feature = "cli")]
pub mod logging;
pub mod msg;
pub mod netfault;
pub mod ranges;
pub mod report;
pub mod retry;
pub mod retry_loop;
pub mod rng;
pub mod router;
pub mod session;
pub mod shutdown;
pub mod sock;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod throttle;

pub use msg::Message;
