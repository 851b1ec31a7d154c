//! `titanic`: the Titanic broker (9/TSP) — `titanic.request`, `titanic.reply` and
//! `titanic.close` as Majordomo services, a crash-safe journal, and a dispatcher that forwards
//! stored requests to their service whenever it is up.
//!
//! Log lines (stable, tests wait for them):
//! `W: journal <path>: dropped torn tail|corrupt stretch of <n> bytes at offset <o> (<why>)`,
//! `W: journal <path>: rewritten keeping all <n> intact records`,
//! `I: journal <path> opened: <n> records read, <p> requests pending, <r> replied, …`,
//! `I: titanic ready: <n> workers per service on <broker>`,
//! `W: service <name> not available, asking again in <ms> ms`,
//! `W: no reply from <name> for <uuid>, asking again in <ms> ms`,
//! `I: journal compacted: …`, `E: titanic.<service>: bad request (<why>), answered 400`,
//! `I: titanic stopped` on Ctrl-C.

use anyhow::Context;
use clap::Parser;
use common::cli::{self, Verbosity};
use majordomo::worker::{self, WorkerOptions};
use majordomo::{client, BrokerArgs, ClientOptions};
use std::path::PathBuf;
use std::time::Duration;
use titanic::index::CompactPolicy;
use titanic::server::DispatchConfig;
use titanic::server_loop::{self, TitanicConfig};
use titanic::{FsyncPolicy, StoreOptions};

/// Titanic: durable, disconnected request-reply on top of a Majordomo broker.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    brokers: BrokerArgs,
    /// Journal file (created with its directory if missing).
    #[arg(long, value_name = "PATH", default_value = ".titanic/journal")]
    journal: PathBuf,
    /// When to sync the journal: after every record, once per batch of concurrent records
    /// (group commit), or never (survives a crash of titanic, not of the machine).
    #[arg(long, value_enum, default_value_t = FsyncPolicy::Batch)]
    fsync: FsyncPolicy,
    /// Compact the journal once closed requests take more bytes than open ones and at least
    /// this many; 0: as soon as they take more (0 to 1099511627776).
    #[arg(long, value_name = "BYTES", default_value_t = CompactPolicy::default().min_dead_bytes,
          value_parser = cli::bytes::<u64>())]
    compact_min_bytes: u64,
    /// Majordomo workers per TSP service (one request each at a time; more of them let
    /// concurrent clients share a sync) (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = cli::parallel::<usize>())]
    workers: usize,
    /// Requests forwarded to their services at once (1 to 1000000).
    #[arg(long, value_name = "N", default_value_t = DispatchConfig::default().window,
          value_parser = cli::in_flight::<usize>())]
    window: usize,
    /// Heartbeat interval of the service workers, in milliseconds (use the broker's)
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = worker::HEARTBEAT_INTERVAL.as_millis() as u64,
          value_parser = cli::ms())]
    heartbeat_ms: u64,
    /// Silent heartbeat intervals after which the workers consider the broker dead (1 to 100).
    #[arg(long, value_name = "N", default_value_t = worker::HEARTBEAT_LIVENESS, value_parser = cli::liveness())]
    liveness: u32,
    /// First delay before a worker reconnects to a dead broker, in milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = worker::RECONNECT_DELAY.as_millis() as u64,
          value_parser = cli::ms())]
    reconnect_ms: u64,
    /// Timeout of each attempt to forward a request (and of `mmi.service`), in milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = client::REQUEST_TIMEOUT.as_millis() as u64,
          value_parser = cli::ms())]
    timeout_ms: u64,
    /// Attempts per forward before the service counts as down (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = client::REQUEST_RETRIES, value_parser = cli::tries())]
    retries: u32,
    /// First delay before asking again about a service that is down, in milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = DispatchConfig::default().retry.as_millis() as u64,
          value_parser = cli::ms())]
    retry_ms: u64,
    /// The delay doubles up to this (never below --retry-ms), in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = DispatchConfig::default().retry_max.as_millis() as u64,
          value_parser = cli::ms())]
    retry_max_ms: u64,
    /// How long an `mmi.service` 200 is trusted before asking again, in milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = DispatchConfig::default().fresh.as_millis() as u64,
          value_parser = cli::ms())]
    fresh_ms: u64,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    let ms = Duration::from_millis;
    let config = TitanicConfig {
        brokers: args.brokers.broker.clone(),
        pair: args.brokers.pair_options(),
        journal: args.journal,
        store: StoreOptions {
            fsync: args.fsync,
            compact: CompactPolicy {
                min_dead_bytes: args.compact_min_bytes,
            },
            ..StoreOptions::default()
        },
        worker: WorkerOptions {
            heartbeat: ms(args.heartbeat_ms),
            liveness: args.liveness,
            reconnect: ms(args.reconnect_ms),
            ..WorkerOptions::default()
        },
        workers: args.workers,
        client: ClientOptions {
            timeout: ms(args.timeout_ms),
            retries: args.retries,
        },
        dispatch: DispatchConfig {
            window: args.window,
            retry: ms(args.retry_ms),
            retry_max: ms(args.retry_max_ms.max(args.retry_ms)),
            fresh: ms(args.fresh_ms),
        },
    };
    server_loop::run(config, common::shutdown::signal())
        .await
        .context("titanic")
}
