//! `mdbroker`: the Majordomo broker (7/MDP with 8/MMI) on one ROUTER socket.
//!
//! Log lines (stable, tests wait for them):
//! `I: mdbroker ready on <endpoint>`, `I: worker <id> ready for service <name>`,
//! `I: worker <id> disconnected`, `W: worker <id> expired, purged`,
//! `W: worker <id> may not offer reserved service <name>, disconnected`,
//! `W: worker <id> may not offer service <name>: key <Z85> not in --worker-keys, disconnected`,
//! `W: HEARTBEAT from unknown worker <id>, disconnected`,
//! `W: worker <id> disconnected, purged` (its connection closed; when busy, `(its request goes
//! to the next worker)` or, for a worker with credit, `(its <n> requests go to the next
//! workers)` follows), `W: worker <id> unreachable, purged`,
//! `W: worker <id> asked for credit <n> without request ids: served one request at a time`,
//! `W: worker <id> asked for credit <n>: served <m>` (see `majordomo::credit`),
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
//!
//! As one broker of a pair (`--primary` / `--backup`, see `majordomo::ha`):
//! `I: mdbroker ready on <endpoint> as primary (state-pub …, state-sub …, heartbeat <ms> ms,
//! liveness <n>)`; every line of a Binary Star server (`I: state ACTIVE - <reason> (epoch <n>)`,
//! `I: peer is <STATE>`, `W: peer silent for <ms> ms (expired)`, … as `binary-star/README.md`
//! lists them); `W: request dropped in state PASSIVE: <why>` (the first after each change of
//! state, the rest at `-v`);
//! `W: no longer active: <n> waiting requests dropped (their clients retry at the active broker)`;
//! `I: reply to request <id> from worker <w> (dispatched by the other broker) sent to <n> client(s)`;
//! `W: worker <w> refused request <id>: the other broker is <standing>, standing down`;
//! with `--log-replies`, `I: answered a client request (count=<n>)` for every reply to a service
//! request (the line `bstarsrv --log-replies` prints, for the tour's `one-server-answers`).

use anyhow::Context;
use binary_star::node::{self, Timing};
use binary_star::Role;
use clap::{ArgGroup, Parser};
use common::cli::{self, Verbosity};
use majordomo::broker::dedup::{self, DedupConfig};
use majordomo::broker::{self, BrokerConfig};
use majordomo::{PairConfig, Server};
use std::time::Duration;

/// Majordomo broker: routes requests from clients to workers by service name, answers mmi.*
/// itself.
#[derive(Debug, Parser)]
#[command(version)]
#[command(group(ArgGroup::new("pair").args(["primary", "backup"]).requires_all(["state_pub", "state_sub"])))]
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
    /// After each message, keep polling the sockets for up to N microseconds before sleeping:
    /// under load the next message is read without a wake-up from sleep (synchronous round
    /// trips about twice as fast), at the cost of one busy core while traffic flows; idle, the
    /// broker sleeps as before. 0 sleeps at once (0 to 1000000).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = cli::ranged::<u64>(0..=1_000_000))]
    spin_us: u64,
    /// Run as the primary of a broker pair (Binary Star): it is active when the pair starts.
    /// Needs --state-pub and --state-sub.
    #[arg(long, help_heading = "Broker pair")]
    primary: bool,
    /// Run as the backup of a broker pair: it takes over when the primary is gone and a client
    /// asks it. Needs --state-pub and --state-sub.
    #[arg(long, help_heading = "Broker pair")]
    backup: bool,
    /// Where to publish our state (PUB, bind), e.g. tcp://*:5003.
    #[arg(long, value_name = "ENDPOINT", value_parser = common::endpoint::parse,
          requires = "pair", help_heading = "Broker pair")]
    state_pub: Option<String>,
    /// The peer broker's state publisher (SUB, connect), e.g. tcp://backup-host:5004.
    #[arg(long, value_name = "ENDPOINT", value_parser = common::endpoint::parse,
          requires = "pair", help_heading = "Broker pair")]
    state_sub: Option<String>,
    /// Milliseconds between state messages to the peer; both brokers must use the same
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = node::HEARTBEAT.as_millis() as u64,
          value_parser = cli::ms(), help_heading = "Broker pair")]
    pair_heartbeat_ms: u64,
    /// State heartbeats without a message after which the peer counts as gone (1 to 100).
    #[arg(long, value_name = "N", default_value_t = node::LIVENESS, value_parser = cli::liveness(),
          help_heading = "Broker pair")]
    pair_liveness: u32,
    /// Print `I: answered a client request (count=<n>)` for every reply to a service request
    /// (for the tour's chaos checks of a broker pair; off by default: one line per request).
    #[arg(long)]
    log_replies: bool,
    /// With --curve-secret: only workers whose connection authenticated a key with a zcert
    /// file in DIR may register for SERVICE; a READY from any other key (or without CURVE)
    /// gets DISCONNECT and a W: line. Repeatable, one SERVICE each; services not named are
    /// open to every admitted peer. DIR is re-read when it changes and on SIGHUP.
    #[arg(long, value_name = "SERVICE=DIR", value_parser = worker_keys_arg,
          requires = "curve_secret", help_heading = "Security")]
    worker_keys: Vec<(String, std::path::PathBuf)>,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    guard: common::cli::GuardArgs,
}

impl Args {
    /// The pair this broker belongs to, if `--primary` or `--backup` was given.
    fn pair(&self) -> Option<PairConfig> {
        let role = match (self.primary, self.backup) {
            (true, _) => Role::Primary,
            (_, true) => Role::Backup,
            _ => return None,
        };
        Some(PairConfig {
            role,
            // clap requires both with --primary/--backup.
            state_pub: self.state_pub.clone()?,
            state_sub: self.state_sub.clone()?,
            timing: Timing {
                heartbeat: Duration::from_millis(self.pair_heartbeat_ms),
                liveness: self.pair_liveness,
            },
        })
    }
}

/// `--worker-keys SERVICE=DIR`.
fn worker_keys_arg(text: &str) -> Result<(String, std::path::PathBuf), String> {
    match text.split_once('=') {
        Some((service, dir)) if !service.is_empty() && !dir.is_empty() => {
            Ok((service.to_owned(), dir.into()))
        }
        _ => Err("expected SERVICE=DIR, e.g. echo=keys/echo-workers".to_owned()),
    }
}

/// The `--worker-keys` checks: each DIR read once now (an unreadable one is a startup error),
/// again when it changes, and on SIGHUP (for a file edited in place, as `--curve-allow`).
fn worker_keys(args: &[(String, std::path::PathBuf)]) -> anyhow::Result<broker::WorkerKeys> {
    let mut keys = broker::WorkerKeys::default();
    let mut dirs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (service, dir) in args {
        anyhow::ensure!(
            seen.insert(service.clone()),
            "--worker-keys {service}=…: service given twice"
        );
        let allowed = common::curve::AllowDir::open(dir)
            .with_context(|| format!("--worker-keys {service}={}", dir.display()))?;
        tracing::info!(
            "worker keys for {service}: {} from {}",
            allowed.len(),
            dir.display()
        );
        let allowed = std::sync::Arc::new(allowed);
        dirs.push(allowed.clone());
        keys.restrict(
            service.clone(),
            std::sync::Arc::new(move |key| allowed.permits(key)),
        );
    }
    if !dirs.is_empty() {
        reload_on_sighup(dirs);
    }
    Ok(keys)
}

/// Re-reads the `--worker-keys` directories on every SIGHUP. Installing the handler also
/// means SIGHUP no longer ends the broker, as with the guard's `--curve-allow`.
fn reload_on_sighup(dirs: Vec<std::sync::Arc<common::curve::AllowDir>>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    dirs.iter().for_each(|dir| dir.reload());
                }
            });
        }
        Err(e) => {
            tracing::warn!("cannot watch SIGHUP ({e}): --worker-keys re-read only when changed")
        }
    }
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
        log_replies: args.log_replies,
        worker_keys: worker_keys(&args.worker_keys)?,
        ..BrokerConfig::default()
    };
    let server = match args.pair() {
        None => Server::bind(&args.bind, config).await,
        Some(pair) => Server::bind_pair(&args.bind, config, pair).await,
    }
    .context("starting mdbroker")?
    .with_busy_poll(Duration::from_micros(args.spin_us));
    // A spawned task, not the runtime's `block_on` future: the native ROUTER's connection tasks
    // wake the broker on every message, and waking the `block_on` future costs the
    // current-thread scheduler one extra non-blocking `epoll_wait` each time (2 a request,
    // measured with strace), where waking a task is a push onto its run queue.
    tokio::spawn(server.run(common::shutdown::signal()))
        .await
        .context("mdbroker's loop")?;
    Ok(())
}
