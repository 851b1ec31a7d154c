//! `mdbroker`: the Majordomo broker (7/MDP with 8/MMI) on one ROUTER socket.
//!
//! Log lines (stable, tests wait for them):
//! `I: mdbroker ready on <endpoint>`, `I: worker <id> ready for service <name>`,
//! `I: worker <id> disconnected`, `W: worker <id> expired, purged`,
//! `W: worker <id> may not offer reserved service <name>, disconnected`,
//! `W: HEARTBEAT from unknown worker <id>, disconnected`,
//! `W: worker <id> disconnected, purged` (its connection closed; when busy, `(its request goes
//! to the next worker)` follows), `W: worker <id> unreachable, purged`,
//! `W: client <id> disconnected, its <n> waiting requests dropped`,
//! `W: <n> request(s) for <service> expired after <ms> ms in queue, dropped`,
//! `W: queue of service <name> full (<n> waiting, <b> bytes), request from <client> dropped`,
//! `W: queue of service <name> full (…), <n> newest requests of its biggest client dropped for <client>`,
//! `E: malformed message dropped: <reason>`, `I: mdbroker interrupted, shutting down`.
//! Request ids (see `majordomo::rid`):
//! `I: retry of request <id> for <service> joined the running one`,
//! `I: retry of request <id> for <service> answered from memory`,
//! `I: dedup forgot <n> request ids older than <ms> ms`,
//! `W: dedup store full (<max> ids): forgot <n> request ids early, the youngest <ms> ms old`.

use anyhow::Context;
use clap::Parser;
use common::cli::{self, Verbosity};
use majordomo::broker::dedup::{self, DedupConfig};
use majordomo::broker::{self, BrokerConfig};
use majordomo::server::Server;
use std::time::Duration;

/// Majordomo broker: routes requests from clients to workers by service name, answers mmi.*
/// itself.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Endpoint to bind, for clients and workers alike.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://*:5555", value_parser = common::endpoint::parse)]
    bind: String,
    /// Heartbeat interval towards workers, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = broker::HEARTBEAT_INTERVAL.as_millis() as u64,
          value_parser = cli::ms())]
    heartbeat_ms: u64,
    /// Silent heartbeat intervals after which a worker is purged; 3-5 is reasonable
    /// (1 to 100).
    #[arg(long, value_name = "N", default_value_t = broker::HEARTBEAT_LIVENESS, value_parser = cli::liveness())]
    liveness: u32,
    /// Longest time a request waits for a worker, in milliseconds; then it is dropped
    /// (1 to 86400000).
    #[arg(long, alias = "request-timeout", value_name = "MS",
          default_value_t = broker::REQUEST_TIMEOUT.as_millis() as u64, value_parser = cli::ms())]
    request_timeout_ms: u64,
    /// Most bytes one service's waiting requests may take (frames + 128 bytes each). Each
    /// client has its own queue, served in turn; when full, a client holding its fair share is
    /// refused, otherwise the biggest holder's newest requests make room (256 to
    /// 1099511627776).
    #[arg(long, value_name = "BYTES", default_value_t = broker::MAX_QUEUE_BYTES,
          value_parser = cli::budget_bytes::<usize>())]
    max_queue_bytes: usize,
    /// Most request ids the broker remembers for deduplicating retries; 0 turns it off
    /// (0 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = dedup::MAX_ENTRIES,
          value_parser = cli::count_or_zero::<usize>())]
    dedup_max: usize,
    /// How long a request id (and its reply) is remembered, in milliseconds: keep it longer
    /// than the clients' whole retry window (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = dedup::TTL.as_millis() as u64, value_parser = cli::ms())]
    dedup_ttl_ms: u64,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    guard: common::cli::GuardArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.guard.install();
    let config = BrokerConfig {
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        liveness: args.liveness,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        max_queue_bytes: args.max_queue_bytes,
        dedup: DedupConfig {
            max_entries: args.dedup_max,
            ttl: Duration::from_millis(args.dedup_ttl_ms),
        },
    };
    let server = Server::bind(&args.bind, config)
        .await
        .context("starting mdbroker")?;
    server.run(common::shutdown::signal()).await;
    Ok(())
}
