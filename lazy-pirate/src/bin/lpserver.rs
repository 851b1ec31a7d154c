//! `lpserver`: the Lazy Pirate server. A REP echo server with simulated work, overload and
//! crashes from explicit flags.
//!
//! Log lines (a stable contract): `I: lpserver ready on <endpoint>`, `I: normal request (<body>)`,
//! `W: simulating CPU overload`, `W: simulating a crash` (then exit code 2).

use anyhow::Context;
use clap::Parser;
use common::cli::{FaultArgs, Verbosity};
use lazy_pirate::server_loop::{serve, SEND_TIMEOUT};
use lazy_pirate::{EchoCore, ServerEnd};
use std::process::ExitCode;
use std::time::Duration;

/// Lazy Pirate server: echoes requests, and crashes or stalls when told to.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Endpoint to bind (the Guide's `*` means all interfaces).
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://*:5555", value_parser = common::endpoint::parse)]
    bind: String,
    /// Milliseconds to wait for a client to take a reply before dropping it (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = SEND_TIMEOUT.as_millis() as u64, value_parser = common::cli::ms())]
    send_timeout_ms: u64,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    guard: common::cli::GuardArgs,
}

/// Exit code of a simulated crash, distinct from start-up errors (1).
const CRASH_EXIT: u8 = 2;

// One thread: each program is a single loop, and on a small shared machine a thread pool only
// adds cross-thread wake-ups (spbench measured about half the queue's CPU per request this way).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.guard.install();
    let core = EchoCore::new(args.faults.plan(), args.faults.work());
    let end = serve(
        &args.bind,
        core,
        Duration::from_millis(args.send_timeout_ms),
        common::shutdown::signal(),
    )
    .await
    .context("lpserver failed to start")?;
    Ok(match end {
        ServerEnd::Interrupted => ExitCode::SUCCESS,
        ServerEnd::Crashed => ExitCode::from(CRASH_EXIT),
    })
}
