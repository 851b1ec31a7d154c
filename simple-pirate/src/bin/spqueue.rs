//! `spqueue`: the Simple Pirate queue. ROUTER for clients, ROUTER for workers, LRU routing.
//!
//! Log lines (a stable contract): `I: spqueue ready (frontend <ep>, backend <ep>)`,
//! `I: worker <id> ready`, `E: malformed … dropped: <reason>`,
//! `W: worker <id> unreachable (…), request re-routed`.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use simple_pirate::queue_loop::{run, SEND_TIMEOUT};
use simple_pirate::QueueConfig;
use std::time::Duration;

/// Simple Pirate queue: routes client requests to the least recently used ready worker.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Endpoint to bind for clients (the Guide's `*` means all interfaces).
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://*:5555", value_parser = common::endpoint::parse)]
    frontend: String,
    /// Endpoint to bind for workers.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://*:5556", value_parser = common::endpoint::parse)]
    backend: String,
    /// Milliseconds a send may take before the message is dropped (a stuck peer never blocks
    /// the queue) (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = SEND_TIMEOUT.as_millis() as u64, value_parser = common::cli::ms())]
    send_timeout_ms: u64,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    guard: common::cli::GuardArgs,
}

// One thread: each program is a single loop, and on a small shared machine a thread pool only
// adds cross-thread wake-ups (spbench measured about half the queue's CPU per request this way).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.guard.install();
    let config = QueueConfig {
        frontend: args.frontend,
        backend: args.backend,
        send_timeout: Duration::from_millis(args.send_timeout_ms),
    };
    run(config, common::shutdown::signal())
        .await
        .context("spqueue failed to start")
}
