//! Paranoid Pirate queue: clients (`lpclient`) on the frontend, `ppworker`s on the backend,
//! heartbeats both ways, dead or hung workers purged.

use anyhow::Context;
use clap::Parser;
use common::cli::{self, Verbosity};
use common::endpoint;
use paranoid_pirate::queue::QueueConfig;
use paranoid_pirate::queue_loop::{self, QueueOptions};
use std::time::Duration;

/// Paranoid Pirate queue (6/PPP): load-balances client requests over heartbeating workers.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Endpoint clients connect to (ROUTER, bound).
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://*:5555", value_parser = endpoint::parse)]
    frontend: String,
    /// Endpoint workers connect to (ROUTER, bound).
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://*:5556", value_parser = endpoint::parse)]
    backend: String,
    /// Milliseconds between heartbeats to each worker (1 to 86400000).
    #[arg(long = "heartbeat-ms", value_name = "MS", default_value = "1000", value_parser = cli::duration_ms())]
    heartbeat: Duration,
    /// Missed worker heartbeats before the worker is purged; 3-5 is reasonable (1 to 100).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = cli::liveness())]
    liveness: u32,
    /// Longest one send may block (a stuck peer must not freeze the queue), in milliseconds
    /// (1 to 86400000).
    #[arg(long = "send-timeout-ms", value_name = "MS", default_value = "500", value_parser = cli::duration_ms())]
    send_timeout: Duration,
    /// Requests held while every worker is busy before the oldest is dropped (1 to 1000000).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = cli::in_flight::<usize>())]
    max_pending: usize,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    guard: common::cli::GuardArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.guard.install();
    let options = QueueOptions {
        frontend: args.frontend,
        backend: args.backend,
        config: QueueConfig {
            heartbeat: args.heartbeat,
            liveness: args.liveness,
            max_pending: args.max_pending,
        },
        send_timeout: args.send_timeout,
    };
    queue_loop::run(options, common::shutdown::signal())
        .await
        .context("ppqueue failed")
}
