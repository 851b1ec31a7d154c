//! `spworker`: the Simple Pirate worker. REQ with a random printable identity; says READY,
//! then echoes requests, with simulated work and faults from flags.
//!
//! Log lines (a stable contract): `I: (<id>) worker ready`, `I: (<id>) normal reply`,
//! `W: (<id>) simulating CPU overload`, `W: (<id>) simulating a crash` (then exit code 2).

use clap::Parser;
use common::cli::{FaultArgs, Verbosity};
use simple_pirate::worker_loop::{run, CONNECT_TIMEOUT, SEND_TIMEOUT};
use simple_pirate::{WorkerConfig, WorkerCore, WorkerEnd};
use std::process::ExitCode;
use std::time::Duration;

/// Simple Pirate worker: serves the queue's requests (echo), crashing or stalling when told to.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The queue's worker endpoint to connect to.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5556", value_parser = common::endpoint::parse)]
    queue: String,
    /// Milliseconds one connect attempt may take before trying again (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = CONNECT_TIMEOUT.as_millis() as u64, value_parser = common::cli::ms())]
    connect_timeout_ms: u64,
    /// Milliseconds sending READY or a reply may take before reconnecting (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = SEND_TIMEOUT.as_millis() as u64, value_parser = common::cli::ms())]
    send_timeout_ms: u64,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

/// Exit code of a simulated crash.
const CRASH_EXIT: u8 = 2;

// One thread: each program is a single loop, and on a small shared machine a thread pool only
// adds cross-thread wake-ups (spbench measured about half the queue's CPU per request this way).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    let config = WorkerConfig {
        queue: args.queue,
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        send_timeout: Duration::from_millis(args.send_timeout_ms),
    };
    let core = WorkerCore::new(args.faults.plan(), args.faults.work());
    match run(config, core, common::shutdown::signal()).await {
        WorkerEnd::Interrupted => ExitCode::SUCCESS,
        WorkerEnd::Crashed => ExitCode::from(CRASH_EXIT),
    }
}
