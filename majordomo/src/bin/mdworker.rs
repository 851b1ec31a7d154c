//! `mdworker`: an echo worker for one Majordomo service, with the pirates' fault flags.
//!
//! Log lines (stable): `I: (<service>) worker ready as <id> on <broker>` after every READY,
//! `W: (<service>) broker silent for <ms> ms, reconnecting in <ms> ms`,
//! `W: (<service>) lost the broker (<reason>), reconnecting in <ms> ms` (a send failed),
//! `W: (<service>) disconnected by broker, reconnecting`,
//! `W: (<service>) simulating a crash after <n> requests`,
//! `I: (<service>) sent DISCONNECT, worker stopped` on Ctrl-C.

use anyhow::Context;
use clap::Parser;
use common::cli::{FaultArgs, Verbosity};
use common::fault::Fault;
use majordomo::worker::{self, Worker, WorkerOptions};
use std::time::Duration;

/// Majordomo echo worker: answers every request of its service with the request body.
#[derive(Debug, Parser)]
#[command(version, mut_arg("work_ms", |a| a.default_value("0")))]
struct Args {
    /// Broker endpoint.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5555", value_parser = common::endpoint::parse)]
    broker: String,
    /// Service to offer.
    #[arg(long, default_value = "echo")]
    service: String,
    /// Heartbeat interval, in milliseconds (use the broker's).
    #[arg(long, value_name = "MS", default_value_t = worker::HEARTBEAT_INTERVAL.as_millis() as u64)]
    heartbeat_ms: u64,
    /// Silent heartbeat intervals after which the broker counts as dead.
    #[arg(long, value_name = "N", default_value_t = worker::HEARTBEAT_LIVENESS)]
    liveness: u32,
    /// First delay before reconnecting to a dead broker, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = worker::RECONNECT_DELAY.as_millis() as u64)]
    reconnect_ms: u64,
    /// Cap of the doubling reconnect delay, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = worker::RECONNECT_MAX.as_millis() as u64)]
    reconnect_max_ms: u64,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    verbosity: Verbosity,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    let options = WorkerOptions {
        heartbeat: Duration::from_millis(args.heartbeat_ms.max(1)),
        liveness: args.liveness.max(1),
        reconnect: Duration::from_millis(args.reconnect_ms),
        reconnect_max: Duration::from_millis(args.reconnect_max_ms.max(args.reconnect_ms)),
    };
    let mut worker =
        Worker::new(&args.broker, &args.service, options).context("starting mdworker")?;
    let mut plan = args.faults.plan();
    let work = args.faults.work();
    let service = args.service.clone();
    let handler = |body| {
        let fault = plan.on_request();
        let served = plan.served();
        let service = service.clone();
        async move {
            let delay = match fault {
                Fault::None => work,
                Fault::Overload(extra) => work + extra,
                Fault::Crash => {
                    tracing::warn!("({service}) simulating a crash after {served} requests");
                    std::process::exit(1);
                }
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            body
        }
    };
    tokio::select! {
        result = worker.run(handler) => result.context("worker stopped")?,
        () = common::shutdown::signal() => worker.shutdown().await,
    }
    Ok(())
}
