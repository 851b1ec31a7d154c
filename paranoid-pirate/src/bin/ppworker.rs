//! Paranoid Pirate worker: serves requests from `ppqueue`, heartbeats it, and reconnects with
//! back-off when it goes silent.

use clap::Parser;
use common::cli::{self, FaultArgs, Verbosity};
use common::endpoint;
use paranoid_pirate::worker::WorkerConfig;
use paranoid_pirate::worker_loop::{self, Exit, WorkerOptions};
use std::process::ExitCode;
use std::time::Duration;

/// Paranoid Pirate worker (6/PPP): echoes each request after simulated work.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The queue's backend endpoint (DEALER, connected).
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5556", value_parser = endpoint::parse)]
    queue: String,
    /// Milliseconds between heartbeats to the queue (1 to 86400000).
    #[arg(long = "heartbeat-ms", value_name = "MS", default_value = "1000", value_parser = cli::duration_ms())]
    heartbeat: Duration,
    /// Missed queue heartbeats before the queue is considered dead; 3-5 is reasonable
    /// (1 to 100).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = cli::liveness())]
    liveness: u32,
    /// First reconnect delay after the queue is considered dead, in milliseconds
    /// (1 to 86400000).
    #[arg(long = "reconnect-ms", value_name = "MS", default_value = "1000", value_parser = cli::duration_ms())]
    reconnect: Duration,
    /// The reconnect delay doubles up to this many milliseconds (1 to 86400000).
    #[arg(long = "reconnect-max-ms", value_name = "MS", default_value = "32000", value_parser = cli::duration_ms())]
    reconnect_max: Duration,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    let options = WorkerOptions {
        queue: args.queue,
        config: WorkerConfig {
            heartbeat: args.heartbeat,
            liveness: args.liveness,
            reconnect_initial: args.reconnect,
            reconnect_max: args.reconnect_max,
        },
        work: args.faults.work(),
        faults: args.faults.plan(),
    };
    match worker_loop::run(options, common::shutdown::signal()).await {
        Exit::Interrupted => ExitCode::SUCCESS,
        Exit::Crashed => ExitCode::FAILURE,
    }
}
