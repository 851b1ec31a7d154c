//! `mdbench`: Majordomo throughput and latency on loopback, against the raw socket floor.
//!
//! One run measures, each with the Guide's 11-byte "Hello world" body:
//! 1. the floor: a DEALER talking to a ROUTER echo server in another process (no broker, and
//!    no ingress guard: zeromq alone), one request at a time and pipelined;
//! 2. through `mdbroker` with `mdworker` echo workers (separate processes, `--work-ms 0`):
//!    synchronous requests with 1 worker ([`Client`]), pipelined requests with 1 and 4 workers
//!    ([`AsyncClient`]); the 1-worker phases ask service `echo`, the 4-worker phase `echo4`,
//!    both on one broker;
//! 3. the same sync and 1-worker pipelined phases through a second `mdbroker --no-guard`, so
//!    the cost of the ingress guard ([`common::guard`]) is measured in the same rounds: the
//!    guarded rate over the unguarded one and the broker's CPU time per request in each;
//! 4. the same two phases with request ids on (Guide 4.11: the broker remembers every id and
//!    its reply), their rate over the phase without ids and the broker's CPU time per request
//!    with and without;
//! 5. with `--broker ENDPOINT`, the sync and both pipelined phases through that already running
//!    broker (any MDP/0.1 broker, e.g. the Guide's C `mdbroker`), with our client and our
//!    workers, in the same rounds, and each of our (guarded) rates over the other broker's
//!    (`/other`). Everything sent to that broker is plain 7/MDP: no MMI (the Guide's C broker
//!    aborts on a request without a body, and a foreign broker may have no MMI at all), no
//!    request ids (the workers run with `--no-request-ids`, the clients without ids). It is
//!    ready for a phase once each of the phase's workers has logged its READY and one echo
//!    request has made the round trip ([`wait_for_round_trip`]). With `--broker-pid PID`, its
//!    CPU time per request and RSS are read from /proc as for our brokers; `--only-broker`
//!    measures it alone (with the floor), e.g. for its latencies;
//! 6. p50/p99 round trip of every phase, the server's CPU time per request and our brokers'
//!    resident memory (from /proc; for the other broker only with `--broker-pid`), and each
//!    rate as a fraction of its floor;
//! 7. the memory per remembered reply: the RSS growth of a fresh mdbroker serving pipelined
//!    requests with ids, minus that of one serving them without, over the ids it remembers;
//! 8. with `--curve`, the sync and 1-worker pipelined phases through a third mdbroker with CURVE
//!    (`--curve-secret`, `--curve-allow`; its workers and this client with keys, fresh pairs
//!    in a private directory), against the guarded NULL broker in the same rounds: the cost of
//!    the encryption and of the client's relay; then, for both brokers, the median time of 50
//!    fresh connects (the handshake) and the memory per connection (RSS growth of this client
//!    and of the broker with 200 idle connections open);
//! 9. unless `--no-pair`, the cost of replication: the sync and 1-worker pipelined phases with
//!    ids through a broker pair (`mdbroker --primary` and `--backup`, state endpoints on free
//!    ports, one `mdworker` registered with both) against the same phases on the lone guarded
//!    broker, in the same rounds: the rate ratio (of the medians, and each round's own: the
//!    two phases run side by side), the latencies, and the CPU time per request of the active
//!    broker, of the passive one, of the worker and of all three. The client is the lone
//!    phases' own one-broker client with ids, pointed at the primary (active from the start):
//!    the two phases then differ only where replication happens, the worker's two extra
//!    messages per request (`running` and `answered`, [`majordomo::pair`]) and the passive
//!    broker's bookkeeping. The pair clients' failover machinery is a client's cost, not
//!    replication's; on one host the passive broker also competes for the cores of the others;
//! 10. the memory per replicated entry: the RSS growth of the passive broker of a fresh pair
//!     whose primary serves pipelined requests with ids, minus that of one serving them without
//!     (no news then), over the ids the passive broker remembers (the code of 7);
//! 11. unless `--no-credit`, worker credit ([`majordomo::credit`]): one `mdworker --concurrency
//!     N --work-ms 10` (10 ms of simulated I/O per request, a sleep) per credit N of 1, 2, 4, 8,
//!     16 and 64, on a fresh lone broker, each given pipelined requests with ids (a window of
//!     2N, so the broker always has the next ones queued), about half a second's worth each,
//!     two passes: the scaling curve (each point's best pass), each credit's rate over credit
//!     1's. Ideal is N times; `--credit-only` runs just this part.
//!
//! `--mdp02` measures MDP/0.2 instead: 0.1 against both 0.2 dialects on our broker, optionally
//! majortomo's broker (`--majortomo ENDPOINT`), and a streaming worker's parts per second
//! (`mdp02` module).
//!
//! The phases of a round are a table ([`plan`]: which broker, which load, ids or not), run by
//! one phase runner ([`Broker::run`]).
//!
//! There is no column against C figures measured on another day: on a shared machine they
//! mislead (the C broker did 5,900/s sync one day and 15,138/s on another). Point `--broker` at
//! a C broker to compare in the same run.
//!
//! The phases run in several interleaved rounds; the table shows each phase's best round and
//! median rate, because on a shared machine a burst of outside load can halve one phase. A
//! pair phase runs next to the lone phase it is compared with ([`run_order`]), after it in odd
//! rounds and before it in even ones, so that both meet the same moment of the machine and
//! neither always goes first; the table and the round lines keep the plan's order.
//!
//! On the 2-vCPU virtual machine this was written on, the phases that pass one message at a
//! time between processes are bimodal: a round (often a whole run) has the brokers' CPU time
//! per request at about 20 µs (sync) or at about 45 µs, with rates twice as high in the first
//! mode, with the code before the broker pair as with this one. The cost of waking idle
//! virtual CPUs would explain it (one run with a niced busy loop beside it was all in the
//! first mode), but that is not proven. So outside load moves the figures both ways, and a
//! pair (one process more, busy with the news) can beat a lone broker in the 1-worker
//! pipelined phase: read the CPU time per request of all the processes before the rates.
//!
//! It prints figures, never a verdict. Build with `--release`: `mdbroker` and `mdworker` are
//! taken from the directory of this executable (or `--bin-dir`).

#[path = "mdbench/mdp02.rs"]
mod mdp02;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use common::bench::{free_endpoint, median, rss_kib, ChildGuard};
use common::cli::{self, Verbosity};
use common::curve::connect::ClientConfig;
use common::curve::keys::KeyPair;
use common::sock;
use common::Message;
use majordomo::broker::{MMI_BROKER, MMI_PAIR, MMI_SERVICES};
use majordomo::mmi::{parse_broker, parse_pair, ServiceRow};
use majordomo::{AsyncClient, Client, ClientOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend};

/// Service of the 1-worker phases.
const ONE: &str = "echo";
/// Service of the 4-worker phase.
const FOUR: &str = "echo4";

/// Majordomo benchmark: raw zeromq floor, then sync and pipelined requests through mdbroker,
/// guarded and --no-guard, with and without request ids, and through a broker pair.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Requests in each pipelined phase of a round (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 50_000, value_parser = cli::count::<u64>())]
    requests: u64,
    /// Requests in each one-at-a-time phase of a round (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = cli::count::<u64>())]
    sync_requests: u64,
    /// Rounds; each runs every phase once, the table shows the best and the median
    /// (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = cli::count::<u32>())]
    rounds: u32,
    /// Requests in flight in the pipelined phases (1 to 1000000).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = cli::in_flight::<u64>())]
    window: u64,
    /// Where mdbroker and mdworker are (default: next to this executable).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Also measure this already running MDP/0.1 broker (e.g. the Guide's C mdbroker) with our
    /// client and workers, in the same rounds (default: none, only our mdbroker).
    #[arg(long, value_name = "ENDPOINT", value_parser = common::endpoint::parse)]
    broker: Option<String>,
    /// The process id of the --broker broker, to print its CPU time per request (user + system
    /// of all its threads, from /proc/PID/stat, as for our brokers) and its RSS. The process
    /// listening on the broker's port: `ss -ltnp 'sport = :5555'` shows it (users:(("mdbroker",
    /// pid=…))), or `$!` after starting the broker in the background from a shell (default:
    /// none, no CPU figure for that broker).
    #[arg(long, value_name = "PID", requires = "broker", value_parser = clap::value_parser!(u32).range(1..))]
    broker_pid: Option<u32>,
    /// Measure only the floor and the --broker broker: none of our brokers, no memory runs
    /// (e.g. to read that broker's latencies; default: ours too).
    #[arg(long, requires = "broker")]
    only_broker: bool,
    /// Skip the broker pair (`mdbroker --primary` and `--backup`): its phases, the cost of
    /// replication and the memory per replicated entry (default: measured).
    #[arg(long)]
    no_pair: bool,
    /// Skip the worker-credit curve (one worker with 10 ms of simulated I/O per request, credit
    /// 1 to 64; default: measured, a few seconds).
    #[arg(long, conflicts_with = "credit_only")]
    no_credit: bool,
    /// Measure only the worker-credit curve.
    #[arg(long)]
    credit_only: bool,
    /// Also measure the sync and 1-worker pipelined phases through a third mdbroker with CURVE
    /// (`--curve-secret`, `--curve-allow`), its workers and this client with keys (fresh
    /// pairs in a private directory), against the guarded NULL broker in the same rounds
    /// (default: not measured).
    #[arg(long)]
    curve: bool,
    /// Measure MDP/0.2 instead: sync and async through our broker in 0.1, RFC 18 and
    /// majortomo's framing (same clients, echo workers of each dialect), and a streaming
    /// worker's parts per second.
    #[arg(long, conflicts_with_all = ["credit_only", "broker"])]
    mdp02: bool,
    /// With --mdp02: also through majortomo's broker (Python, PyPI) already running at this
    /// endpoint, with our clients and workers in its dialect.
    #[arg(long, value_name = "ENDPOINT", requires = "mdp02", value_parser = common::endpoint::parse)]
    majortomo: Option<String>,
    /// With --mdp02: PARTIALs per reply of the streaming worker (1 to 1000000).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = cli::ranged::<u32>(1..=1_000_000))]
    partials: u32,
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    verbosity: Verbosity,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// (internal) the floor's echo server: a bare ROUTER that sends every message back.
    #[command(hide = true)]
    EchoServer {
        /// Endpoint to bind.
        #[arg(long)]
        bind: String,
    },
}

/// Which broker a phase goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Our mdbroker as it runs by default: behind its ingress guard ([`common::guard`]).
    Guarded,
    /// Our mdbroker with `--no-guard` (zeromq binds the public port itself): the guard's cost.
    Unguarded,
    /// The already running broker at `--broker`.
    Other,
    /// A pair of our (guarded) mdbrokers, `--primary` and `--backup`, with pair workers (`mdworker
    /// --broker P --broker B`); the phases go to the primary, the active one.
    Pair,
    /// Our guarded mdbroker with CURVE; its workers and our client connect with keys (`--curve`).
    Curve,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Guarded => "mdbroker",
            Via::Unguarded => "mdbroker --no-guard",
            Via::Other => "other",
            Via::Pair => "mdbroker pair",
            Via::Curve => "mdbroker CURVE",
        }
    }
}

/// How a phase sends its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// One at a time to [`ONE`] ([`Client`]).
    Sync,
    /// `--window` in flight to [`ONE`] ([`AsyncClient`]).
    Async1,
    /// `--window` in flight to [`FOUR`].
    Async4,
}

impl Load {
    const ALL: [Load; 3] = [Load::Sync, Load::Async1, Load::Async4];

    fn label(self) -> &'static str {
        match self {
            Load::Sync => "sync, 1 worker",
            Load::Async1 => "async, 1 worker",
            Load::Async4 => "async, 4 workers",
        }
    }

    /// The service asked, and how many workers serve it.
    fn service(self) -> (&'static str, u64) {
        match self {
            Load::Sync | Load::Async1 => (ONE, 1),
            Load::Async4 => (FOUR, 4),
        }
    }
}

/// One broker phase of a round: a row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    via: Via,
    load: Load,
    /// Request ids on (Guide 4.11): the broker remembers every id and its reply.
    ids: bool,
}

impl Spec {
    fn name(self) -> String {
        let ids = if self.ids { ", ids" } else { "" };
        format!("{} {}{ids}", self.via.label(), self.load.label())
    }
}

/// The broker phases of every round, in the order they run and are shown: per load, our
/// guarded broker, then the same through `--no-guard` and with request ids (sync and 1 worker
/// only), then the other broker's; with `pair`, last (so that the rows before keep their
/// places), the broker pair's sync and 1-worker phases, with ids (a pair worker needs them).
/// Without `ours`, only the other broker's phases.
fn plan(other: bool, ours: bool, pair: bool, curve: bool) -> Vec<Spec> {
    let mut plan = Vec::new();
    for load in Load::ALL {
        let spec = |via, ids| Spec { via, load, ids };
        if !ours {
            if other {
                plan.push(spec(Via::Other, false));
            }
            continue;
        }
        plan.push(spec(Via::Guarded, false));
        if load != Load::Async4 {
            if curve {
                plan.push(spec(Via::Curve, false));
            }
            plan.push(spec(Via::Unguarded, false));
            // Request ids need our broker (another one would pass the rid frame on).
            plan.push(spec(Via::Guarded, true));
        }
        if other {
            plan.push(spec(Via::Other, false));
        }
    }
    if pair && ours {
        for load in [Load::Sync, Load::Async1] {
            plan.push(Spec {
                via: Via::Pair,
                load,
                ids: true,
            });
        }
    }
    plan
}

/// The order in which round `round` (from 1) runs the phases of `plan`, as indexes into it: the
/// plan's order, except that a pair phase runs next to the lone broker's phase it is compared
/// with (the same load with ids), after it in odd rounds and before it in even ones.
fn run_order(plan: &[Spec], round: u32) -> Vec<usize> {
    let partner = |lone: &Spec| {
        let pair = Spec {
            via: Via::Pair,
            ..*lone
        };
        (lone.via == Via::Guarded && lone.ids)
            .then(|| plan.iter().position(|s| *s == pair))
            .flatten()
    };
    let mut order = Vec::with_capacity(plan.len());
    for (i, spec) in plan.iter().enumerate() {
        match partner(spec) {
            Some(j) if round.is_multiple_of(2) => order.extend([j, i]),
            Some(j) => order.extend([i, j]),
            None if spec.via == Via::Pair => {} // with its partner, or below
            None => order.push(i),
        }
    }
    // A pair phase without a lone partner (none in today's plan) runs last.
    for i in 0..plan.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    order
}

/// A broker the phases go through, with its workers.
struct Broker {
    via: Via,
    /// Where the phases send their requests (of a pair: the primary's endpoint).
    ep: String,
    /// Our broker's process (`None` for the other broker, which we did not start); of a pair,
    /// the primary, the active broker.
    process: Option<ChildGuard>,
    /// The other broker's process id, if given (`--broker-pid`).
    other_pid: Option<u32>,
    /// Of a pair: the backup's endpoint and process, the passive broker.
    passive: Option<(String, ChildGuard)>,
    /// The echo workers, with the service each offers.
    workers: Vec<(&'static str, ChildGuard)>,
    /// Of the CURVE broker: what our client connects with, and the key files' directory.
    curve: Option<(ClientConfig, KeyDir)>,
}

/// The CURVE broker's key files (server, workers, client) in a private directory, removed on
/// drop.
struct KeyDir(PathBuf);

impl KeyDir {
    /// A fresh mode-0700 directory for key files.
    fn new() -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("mdbench-keys-{}", common::ids::token()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        std::fs::create_dir(dir.join("allow"))?;
        Ok(Self(dir))
    }

    /// A fresh pair named `name`, admitted by the broker's allow directory; its secret file.
    fn client(&self, name: &str) -> anyhow::Result<(KeyPair, PathBuf)> {
        let pair = KeyPair::generate();
        let (public, secret) = pair.write_files(&self.0, name)?;
        std::fs::copy(public, self.0.join("allow").join(name))?;
        Ok((pair, secret))
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes this process's connects speak CURVE with `config` until dropped (then NULL again):
/// only the CURVE broker's phases and its start-up checks run under one.
struct CurveScope;

impl CurveScope {
    fn enter(config: Option<&ClientConfig>) -> Option<Self> {
        let config = config?;
        common::curve::connect::install(Some(config.clone()));
        Some(Self)
    }
}

impl Drop for CurveScope {
    fn drop(&mut self) {
        common::curve::connect::install(None);
    }
}

impl Broker {
    fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|kid| kid.id()).or(self.other_pid)
    }

    /// The passive broker's process, for a pair.
    fn passive_pid(&self) -> Option<u32> {
        self.passive.as_ref().map(|(_, kid)| kid.id())
    }

    /// The processes of the workers of `service`.
    fn worker_pids(&self, service: &str) -> Vec<u32> {
        self.workers
            .iter()
            .filter(|(s, _)| *s == service)
            .map(|(_, kid)| kid.id())
            .collect()
    }

    /// Our broker processes (and the other broker's, if known), named for the RSS line.
    fn processes(&self) -> Vec<(String, u32)> {
        let mut named = Vec::new();
        if let Some(pid) = self.pid() {
            let name = match self.via {
                Via::Pair => format!("{}, active", self.via.label()),
                via => via.label().to_owned(),
            };
            named.push((name, pid));
        }
        if let Some(pid) = self.passive_pid() {
            named.push((format!("{}, passive", self.via.label()), pid));
        }
        named
    }

    /// Starts our broker for `via` (or takes the other one at `other`, whose process is
    /// `other_pid` if known) and the echo workers of every service the plan asks of it, and
    /// waits until they are registered. A pair is ready when its primary is ACTIVE, its backup
    /// PASSIVE, and the backup has heard the workers' news. The other broker is only spoken
    /// to in plain 7/MDP: its workers do not ask for request ids, and it is ready once every
    /// worker has sent its READY and one request has made the round trip.
    async fn start(
        via: Via,
        bin_dir: &std::path::Path,
        other: Option<&str>,
        other_pid: Option<u32>,
        plan: &[Spec],
    ) -> anyhow::Result<Self> {
        let mdbroker = bin_dir.join("mdbroker");
        let mut curve = None;
        let mut worker_keys: Vec<String> = Vec::new();
        let (ep, process, passive) = match via {
            Via::Other => (other.context("no --broker")?.to_owned(), None, None),
            Via::Guarded | Via::Unguarded => {
                let ep = free_endpoint()?;
                let mut args = vec!["--bind", ep.as_str()];
                if via == Via::Unguarded {
                    args.push("--no-guard");
                }
                let kid = spawn(&mdbroker, &args)?;
                (ep, Some(kid), None)
            }
            Via::Curve => {
                let ep = free_endpoint()?;
                let keys = KeyDir::new()?;
                let server = KeyPair::generate();
                let (_, secret) = server.write_files(&keys.0, "server")?;
                let (pair, worker_secret) = keys.client("worker")?;
                drop(pair);
                let (client, _) = keys.client("mdbench")?;
                let allow = keys.0.join("allow");
                let args = [
                    "--bind",
                    ep.as_str(),
                    "--curve-secret",
                    path_str(&secret)?,
                    "--curve-allow",
                    path_str(&allow)?,
                ];
                let kid = spawn(&mdbroker, &args)?;
                worker_keys = vec![
                    "--curve-server-key".to_owned(),
                    server.public.to_z85(),
                    "--curve-key".to_owned(),
                    path_str(&worker_secret)?.to_owned(),
                ];
                let config = ClientConfig {
                    pair: client,
                    server: server.public,
                    max_msg_bytes: common::guard::DEFAULT_MAX_MSG_BYTES,
                };
                curve = Some((config, keys));
                (ep, Some(kid), None)
            }
            Via::Pair => {
                let (ep, backup_ep) = (free_endpoint()?, free_endpoint()?);
                let (primary_pub, backup_pub) = (free_endpoint()?, free_endpoint()?);
                let paired = |bind: &str, role, publish: &str, subscribe: &str| {
                    let args = [bind, role, "--state-pub", publish, "--state-sub", subscribe];
                    spawn(&mdbroker, &[&["--bind"], &args[..]].concat())
                };
                let primary = paired(&ep, "--primary", &primary_pub, &backup_pub)?;
                let backup = paired(&backup_ep, "--backup", &backup_pub, &primary_pub)?;
                wait_for_pair(&ep, &backup_ep).await?;
                (ep, Some(primary), Some((backup_ep, backup)))
            }
        };
        let mut services: Vec<(&'static str, u64)> = Vec::new();
        for spec in plan.iter().filter(|s| s.via == via) {
            if !services.contains(&spec.load.service()) {
                services.push(spec.load.service());
            }
        }
        // A pair worker registers with both brokers.
        let mut brokers = vec!["--broker", ep.as_str()];
        if let Some((backup, _)) = &passive {
            brokers.extend(["--broker", backup.as_str()]);
        }
        let mut workers = Vec::new();
        for (service, count) in services {
            let mut readies = Vec::new();
            for _ in 0..count {
                let mut args = brokers.clone();
                args.extend(["--service", service, "--work-ms", "0"]);
                args.extend(worker_keys.iter().map(String::as_str));
                let mdworker = bin_dir.join("mdworker");
                if via == Via::Other {
                    // Plain 7/MDP: READY without the request-id marker frame.
                    args.push("--no-request-ids");
                    let (kid, lines) = spawn_watched(&mdworker, &args)?;
                    workers.push((service, kid));
                    readies.push(lines);
                } else {
                    workers.push((service, spawn(&mdworker, &args)?));
                }
            }
            if via == Via::Other {
                for lines in &mut readies {
                    wait_for_line(lines, "worker ready as", Duration::from_secs(20))
                        .await
                        .with_context(|| format!("a {service} worker for the broker at {ep}"))?;
                }
                wait_for_round_trip(&ep, service).await?;
                continue;
            }
            let scope = CurveScope::enter(curve.as_ref().map(|(config, _)| config));
            wait_for_workers(&ep, service, count).await?;
            drop(scope);
            if let Some((backup, _)) = &passive {
                wait_for_workers(backup, service, count).await?;
                wait_for_news(&ep, backup, service).await?;
            }
        }
        Ok(Self {
            via,
            ep,
            process,
            other_pid: other_pid.filter(|_| via == Via::Other),
            passive,
            workers,
            curve,
        })
    }

    /// Runs one phase through this broker, with the CPU time per request of the broker (the
    /// active one of a pair), of the passive broker of a pair, and of the phase's workers, where
    /// their processes are ours.
    async fn run(&self, args: &Args, spec: Spec) -> anyhow::Result<Phase> {
        let pid = self.pid();
        let passive = self.passive_pid();
        let workers = self.worker_pids(spec.load.service().0);
        let before = pid.map(cpu_time);
        let passive_before = passive.map(cpu_time);
        let workers_before = cpu_time_of(&workers);
        let _curve = CurveScope::enter(self.curve.as_ref().map(|(config, _)| config));
        let (phase, count) = match spec.load {
            Load::Sync => (
                sync_phase(args, &self.ep, spec.name(), spec.ids).await?,
                args.sync_requests,
            ),
            load => (
                async_phase(args, &self.ep, load.service().0, spec.name(), spec.ids).await?,
                args.requests,
            ),
        };
        let mut phase = phase.with_cpu_of(pid, before, count);
        phase.passive_cpu_us = passive
            .zip(passive_before)
            .map(|(pid, before)| us_per_request(cpu_time(pid).saturating_sub(before), count));
        phase.worker_cpu_us = (!workers.is_empty())
            .then(|| us_per_request(cpu_time_of(&workers).saturating_sub(workers_before), count));
        Ok(phase)
    }
}

/// The figures of one phase.
#[derive(Clone)]
struct Phase {
    name: String,
    /// Pipelined (compared with the pipelined floor) or one at a time.
    pipelined: bool,
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time (user + system) the server process (echo server or broker) spent per request:
    /// unlike the rates, hardly affected by other load on the machine.
    server_cpu_us: f64,
    /// The same for the passive broker of a pair.
    passive_cpu_us: Option<f64>,
    /// The same for the phase's workers together, when they are ours.
    worker_cpu_us: Option<f64>,
}

impl Phase {
    fn new(
        name: impl Into<String>,
        pipelined: bool,
        count: u64,
        elapsed: Duration,
        mut rtts: Vec<Duration>,
    ) -> Self {
        rtts.sort_unstable();
        let pick = |q: f64| {
            rtts.get(((rtts.len() as f64 * q) as usize).min(rtts.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Self {
            name: name.into(),
            pipelined,
            rate: count as f64 / elapsed.as_secs_f64(),
            p50: pick(0.50),
            p99: pick(0.99),
            server_cpu_us: 0.0,
            passive_cpu_us: None,
            worker_cpu_us: None,
        }
    }

    /// Records the server's CPU time over the phase (`before` taken at its start).
    fn with_cpu(mut self, pid: u32, before: Duration, count: u64) -> Self {
        self.server_cpu_us = us_per_request(cpu_time(pid).saturating_sub(before), count);
        self
    }

    /// As [`with_cpu`](Self::with_cpu) when the server's process is known (`pid` and `before`
    /// are `None` for the other broker without `--broker-pid`).
    fn with_cpu_of(self, pid: Option<u32>, before: Option<Duration>, count: u64) -> Self {
        match (pid, before) {
            (Some(pid), Some(before)) => self.with_cpu(pid, before, count),
            _ => self,
        }
    }
}

/// User + system CPU time of a process, from `/proc/<pid>/stat` (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at "state" (field 3).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15, i.e. indexes 11 and 12 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// [`cpu_time`] of several processes together.
fn cpu_time_of(pids: &[u32]) -> Duration {
    pids.iter().map(|&pid| cpu_time(pid)).sum()
}

/// CPU time `used` over `count` requests, in µs per request.
fn us_per_request(used: Duration, count: u64) -> f64 {
    used.as_secs_f64() * 1e6 / count.max(1) as f64
}

fn body(seq: u64) -> Message {
    Message::from_frames([format!("Hello world {seq}")])
}

fn seq_of(body: &Message) -> Option<u64> {
    let text = std::str::from_utf8(body.first()?).ok()?;
    text.strip_prefix("Hello world ")?.parse().ok()
}

/// A path as UTF-8 text for a child's command line.
fn path_str(path: &std::path::Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

fn spawn(program: &PathBuf, args: &[&str]) -> anyhow::Result<ChildGuard> {
    ChildGuard::spawn(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .with_context(|| format!("starting {}", program.display()))
}

/// As [`spawn`], with the child's stderr (where our programs log) sent line by line to the
/// returned channel; the lines keep being read (and dropped once the channel is gone) for as
/// long as the child runs, so its log never fills the pipe.
fn spawn_watched(
    program: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<(ChildGuard, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let child = ChildGuard::spawn_watched(program, args, move |line| {
        let _ = tx.send(line);
    })
    .with_context(|| format!("starting {}", program.display()))?;
    Ok((child, rx))
}

/// Waits (at most `bound`) for a line containing `needle` on `lines` (of [`spawn_watched`]).
async fn wait_for_line(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    needle: &str,
    bound: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) if line.contains(needle) => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) => bail!("exited before logging {needle:?}"),
            Err(_) => bail!("no {needle:?} line within {} s", bound.as_secs()),
        }
    }
}

/// Fresh connects timed per broker, for the handshake's cost.
const CONNECTS: usize = 50;
/// Connections held open at once per broker, for the memory each costs.
const HELD: usize = 200;

/// The handshake time and memory per connection of the guarded NULL broker and the CURVE
/// broker (`--curve`): the median of [`CONNECTS`] fresh DEALER connects (until zeromq's
/// `connect()` returns: with CURVE, the server's READY has opened), and the RSS growth of this
/// client process and of the broker with [`HELD`] idle connections open. One line per broker.
async fn connection_costs(brokers: &[Broker]) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for via in [Via::Guarded, Via::Curve] {
        let Some(broker) = brokers.iter().find(|b| b.via == via) else {
            continue;
        };
        let _curve = CurveScope::enter(broker.curve.as_ref().map(|(config, _)| config));
        let mut times = Vec::with_capacity(CONNECTS);
        for _ in 0..CONNECTS {
            let mut dealer =
                DealerSocket::with_options(sock::options(Duration::from_secs(10), None));
            let started = Instant::now();
            sock::connect(&mut dealer, &broker.ep, Duration::from_secs(10)).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let me = std::process::id();
        let broker_pid = broker.pid().context("our broker runs")?;
        let (me_before, broker_before) = (rss_kib(me), rss_kib(broker_pid));
        let mut held = Vec::with_capacity(HELD);
        for _ in 0..HELD {
            let mut dealer =
                DealerSocket::with_options(sock::options(Duration::from_secs(10), None));
            sock::connect(&mut dealer, &broker.ep, Duration::from_secs(10)).await?;
            held.push(dealer);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let per =
            |before: u64, after: u64| after.saturating_sub(before) as f64 * 1024.0 / HELD as f64;
        lines.push(format!(
            "  {:<17} handshake (connect until ready) median {:.2} ms of {CONNECTS}; {HELD} idle \
             connections: {:.1} kB each in this client, {:.1} kB each in the broker",
            format!("{}:", via.label()),
            median(times).unwrap_or_default(),
            per(me_before, rss_kib(me)) / 1000.0,
            per(broker_before, rss_kib(broker_pid)) / 1000.0,
        ));
        drop(held);
    }
    Ok(lines)
}

async fn echo_server(bind: &str) -> anyhow::Result<()> {
    let mut router = RouterSocket::new();
    sock::bind(&mut router, bind).await?;
    loop {
        let message = router.recv().await?;
        router.send(message).await?;
    }
}

/// Room for `n` round-trip times, reserved up to a million: a huge `--requests` grows the list
/// as the run goes instead of asking for all of its memory at the start.
fn latencies(n: u64) -> Vec<Duration> {
    Vec::with_capacity(n.min(1 << 20) as usize)
}

/// Send times of the requests in flight, by sequence number (at most `--window` of them).
fn in_flight_stamps(window: u64) -> HashMap<u64, Instant> {
    HashMap::with_capacity(window.saturating_mul(2).min(1 << 16) as usize)
}

/// Raw DEALER ↔ ROUTER echo: one at a time, then pipelined.
async fn floor(args: &Args, ep: &str, pid: u32) -> anyhow::Result<(Phase, Phase)> {
    let mut dealer = DealerSocket::new();
    sock::connect(&mut dealer, ep, Duration::from_secs(10)).await?;
    let timeout = Duration::from_secs(10);
    let cpu = cpu_time(pid);

    let mut rtts = latencies(args.sync_requests);
    let started = Instant::now();
    for seq in 0..args.sync_requests {
        let sent = Instant::now();
        sock::send(&mut dealer, body(seq), timeout).await?;
        let reply = sock::recv(&mut dealer, timeout)
            .await?
            .context("floor: no echo")?;
        if seq_of(&reply) != Some(seq) {
            bail!("floor: wrong echo {reply:?}");
        }
        rtts.push(sent.elapsed());
    }
    let sync = Phase::new(
        "floor, one at a time",
        false,
        args.sync_requests,
        started.elapsed(),
        rtts,
    )
    .with_cpu(pid, cpu, args.sync_requests);
    let cpu = cpu_time(pid);

    let mut sent_at = in_flight_stamps(args.window);
    let mut rtts = latencies(args.requests);
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < args.requests {
        while sent < args.requests && sent - received < args.window {
            sent_at.insert(sent, Instant::now());
            sock::send(&mut dealer, body(sent), timeout).await?;
            sent += 1;
        }
        let reply = sock::recv(&mut dealer, timeout)
            .await?
            .context("floor: no echo")?;
        let seq = seq_of(&reply).context("floor: wrong echo")?;
        let at = sent_at.remove(&seq).context("floor: duplicate echo")?;
        rtts.push(at.elapsed());
        received += 1;
    }
    let piped = Phase::new(
        "floor, pipelined",
        true,
        args.requests,
        started.elapsed(),
        rtts,
    )
    .with_cpu(pid, cpu, args.requests);
    Ok((sync, piped))
}

/// Waits until our broker reports `workers` idle workers for `service` (our `mmi.services`
/// extension: only for our brokers, never the other one).
async fn wait_for_workers(ep: &str, service: &str, workers: u64) -> anyhow::Result<()> {
    let options = ClientOptions {
        timeout: Duration::from_millis(1000),
        retries: 1,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut client = Client::new(ep, options.clone())?;
        if let Ok(reply) = client.send(MMI_SERVICES, Message::new()).await {
            let rows = ServiceRow::parse_all(&reply)
                .with_context(|| format!("mmi.services of the broker at {ep}"))?;
            if rows.iter().any(|r| r.name == service && r.idle == workers) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the broker at {ep} never had {workers} {service} workers");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until one request for `service` has made the round trip through the broker at `ep`:
/// the readiness check for a broker that is not ours, plain 7/MDP (no MMI: the Guide's C
/// broker asserts that a request has a body frame and aborts on an MMI query without one, and
/// a foreign broker need not implement MMI at all). A request sent before any worker was
/// registered may stay queued in that broker; its late reply goes to a closed socket.
async fn wait_for_round_trip(ep: &str, service: &str) -> anyhow::Result<()> {
    let options = ClientOptions {
        timeout: Duration::from_millis(1000),
        retries: 1,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut client = Client::new(ep, options.clone())?;
        if let Ok(reply) = client.send(service, body(0)).await {
            if seq_of(&reply) == Some(0) {
                return Ok(());
            }
            bail!("the broker at {ep} answered a {service} request with {reply:?}");
        }
        if Instant::now() > deadline {
            bail!("the broker at {ep} never answered a {service} request");
        }
    }
}

/// Asks our broker at `ep` an MMI question (no body).
async fn ask(ep: &str, service: &str) -> anyhow::Result<Message> {
    let options = ClientOptions {
        timeout: Duration::from_secs(5),
        retries: 1,
    };
    Ok(Client::new(ep, options)?
        .send(service, Message::new())
        .await?)
}

/// One counter of our broker's `mmi.broker` (0 if it has none of that name).
async fn broker_stat(ep: &str, name: &str) -> anyhow::Result<u64> {
    let reply = ask(ep, MMI_BROKER).await?;
    Ok(parse_broker(&reply)?
        .into_iter()
        .find_map(|(n, value)| (n == name).then_some(value))
        .unwrap_or(0))
}

/// Our paired broker's state (`ACTIVE`, `PASSIVE`, …), from `mmi.pair`.
async fn pair_state(ep: &str) -> anyhow::Result<String> {
    let reply = ask(ep, MMI_PAIR).await?;
    Ok(parse_pair(&reply)?
        .into_iter()
        .find_map(|(n, value)| (n == "state").then_some(value))
        .unwrap_or_default())
}

/// Waits until the pair has met: the primary at `primary` ACTIVE, the backup at `backup`
/// PASSIVE.
async fn wait_for_pair(primary: &str, backup: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let states = (pair_state(primary).await, pair_state(backup).await);
        if let (Ok(p), Ok(b)) = &states {
            if p == "ACTIVE" && b == "PASSIVE" {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the broker pair never settled: primary {:?}, backup {:?}",
                states.0,
                states.1
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends requests with ids for `service` to the primary until the backup has heard the reply
/// of one: a worker sends its news to a broker only once that broker has shown it its standing
/// (on a heartbeat), and the first phase must not start before.
async fn wait_for_news(primary: &str, backup: &str, service: &str) -> anyhow::Result<()> {
    let options = ClientOptions {
        timeout: Duration::from_secs(5),
        retries: 1,
    };
    let mut client = Client::new(primary, options)?.with_request_ids(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    for seq in 0.. {
        client.send(service, body(seq)).await?;
        if broker_stat(backup, "answered_elsewhere").await? > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the passive broker at {backup} never heard a {service} worker's news")
}

/// Waits (at most 10 s) until the passive broker at `ep` has heard `count` replies to the
/// active broker's requests in all (`answered_elsewhere`: the news trail the replies a
/// little), and returns how many it heard.
async fn heard(ep: &str, count: u64) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let heard = broker_stat(ep, "answered_elsewhere").await?;
        if heard >= count || Instant::now() > deadline {
            return Ok(heard);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request at a time to service [`ONE`], with request ids if `ids`.
async fn sync_phase(args: &Args, ep: &str, name: String, ids: bool) -> anyhow::Result<Phase> {
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 1,
    };
    let mut client = Client::new(ep, options)?.with_request_ids(ids);
    let mut rtts = latencies(args.sync_requests);
    let started = Instant::now();
    for seq in 0..args.sync_requests {
        let sent = Instant::now();
        let reply = client.send(ONE, body(seq)).await?;
        if seq_of(&reply) != Some(seq) {
            bail!("sync: wrong reply {reply:?}");
        }
        rtts.push(sent.elapsed());
    }
    Ok(Phase::new(
        name,
        false,
        args.sync_requests,
        started.elapsed(),
        rtts,
    ))
}

/// `args.window` requests in flight to `service`, with request ids if `ids`.
async fn async_phase(
    args: &Args,
    ep: &str,
    service: &str,
    name: String,
    ids: bool,
) -> anyhow::Result<Phase> {
    pipelined(ep, service, name, ids, args.requests, args.window).await
}

/// `requests` requests to `service`, `window` in flight, with request ids if `ids`.
async fn pipelined(
    ep: &str,
    service: &str,
    name: String,
    ids: bool,
    requests: u64,
    window: u64,
) -> anyhow::Result<Phase> {
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 1,
    };
    let mut client = AsyncClient::connect(ep, options)
        .await?
        .with_request_ids(ids);
    let mut sent_at = in_flight_stamps(window);
    let mut rtts = latencies(requests);
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < requests {
        while sent < requests && sent - received < window {
            sent_at.insert(sent, Instant::now());
            client.send(service, body(sent)).await?;
            sent += 1;
        }
        let (_, reply) = client
            .recv()
            .await?
            .context("async: no reply within 10 s")?;
        let at = seq_of(&reply)
            .and_then(|seq| sent_at.remove(&seq))
            .context("async: unexpected reply")?;
        rtts.push(at.elapsed());
        received += 1;
    }
    Ok(Phase::new(name, true, requests, started.elapsed(), rtts))
}

/// The credits of the worker-credit curve.
const CREDITS: [u64; 6] = [1, 2, 4, 8, 16, 64];
/// Simulated I/O per request in the credit curve: a sleep in the worker (`--work-ms`).
const CREDIT_WORK: Duration = Duration::from_millis(10);
/// Requests per unit of credit at each point: with 10 ms of work, half a second at the ideal
/// rate (100 per second per unit of credit).
const CREDIT_REQUESTS: u64 = 50;
/// Passes over the curve; each point shows its best pass (a burst of outside load on this
/// shared machine hits one pass of a point, not both).
const CREDIT_PASSES: usize = 2;

/// The worker-credit curve: a fresh lone broker, one `mdworker --concurrency N` per credit
/// (each its own service), each point's pipelined requests with ids (which credit needs).
/// Prints the rates and their ratios to credit 1; never a verdict.
async fn credit_curve(bin_dir: &std::path::Path) -> anyhow::Result<()> {
    let ep = free_endpoint()?;
    let _broker = spawn(&bin_dir.join("mdbroker"), &["--bind", &ep])?;
    let work = CREDIT_WORK.as_millis().to_string();
    let mut workers = Vec::new();
    for credit in CREDITS {
        let (service, n) = (format!("credit-{credit}"), credit.to_string());
        let args = [
            "--broker",
            &ep,
            "--service",
            &service,
            "--concurrency",
            &n,
            "--work-ms",
            &work,
        ];
        workers.push(spawn(&bin_dir.join("mdworker"), &args)?);
        wait_for_workers(&ep, &service, 1).await?;
    }
    println!(
        "worker credit: one mdworker --concurrency N --work-ms {work} (simulated I/O), pipelined \
         requests with ids, window 2N, {CREDIT_REQUESTS}×N requests per point, best of \
         {CREDIT_PASSES} passes"
    );
    let mut best: Vec<Option<Phase>> = vec![None; CREDITS.len()];
    for _ in 0..CREDIT_PASSES {
        for (credit, best) in CREDITS.into_iter().zip(&mut best) {
            let service = format!("credit-{credit}");
            let requests = CREDIT_REQUESTS * credit;
            let phase =
                pipelined(&ep, &service, service.clone(), true, requests, 2 * credit).await?;
            if best.as_ref().is_none_or(|b| phase.rate > b.rate) {
                *best = Some(phase);
            }
        }
    }
    println!(
        "{:>7} {:>9} {:>10} {:>8} {:>8}",
        "credit", "req/s", "/credit 1", "p50 ms", "p99 ms"
    );
    let base = best[0].as_ref().map_or(1.0, |b| b.rate);
    for (credit, phase) in CREDITS.into_iter().zip(best.iter().flatten()) {
        println!(
            "{credit:>7} {:>9.0} {:>9.2}x {:>8} {:>8}",
            phase.rate,
            phase.rate / base,
            ms(phase.p50),
            ms(phase.p99)
        );
    }
    println!(
        "ideal: N× credit 1 (each request sleeps {work} ms in the worker; the issue's target is \
         credit 16 ≥ 12× credit 1)"
    );
    drop(workers);
    Ok(())
}

/// A broker's RSS growth over a memory run, and the ids it came to remember.
#[derive(Debug, Clone, Copy)]
struct Growth {
    kib: u64,
    ids: u64,
}

impl Growth {
    /// Bytes per remembered id: this growth minus `without`'s (the same run without ids), over
    /// the ids remembered.
    fn per_id(self, without: Growth) -> f64 {
        (self.kib as f64 - without.kib as f64) * 1024.0 / self.ids.max(1) as f64
    }
}

/// A fresh broker for `via` (our lone mdbroker, or a pair) with one worker serves
/// `args.requests` pipelined requests (with or without ids): the RSS growth of the broker (of a
/// pair: the active one, then the passive one, once it has heard every reply) and the ids each
/// came to remember (from `mmi.broker`).
async fn remembered_growth(
    bin_dir: &std::path::Path,
    args: &Args,
    via: Via,
    ids: bool,
) -> anyhow::Result<Vec<Growth>> {
    let plan = [Spec {
        via,
        load: Load::Async1,
        ids,
    }];
    let broker = Broker::start(via, bin_dir, None, None, &plan).await?;
    let mut sides = vec![(broker.ep.as_str(), broker.pid().context("not our broker")?)];
    if let (Some((ep, _)), Some(pid)) = (&broker.passive, broker.passive_pid()) {
        sides.push((ep.as_str(), pid));
    }
    let mut before = Vec::new();
    for &(ep, pid) in &sides {
        let counts = (
            broker_stat(ep, "dedup_ids").await?,
            broker_stat(ep, "answered_elsewhere").await?,
        );
        before.push((counts, rss_kib(pid)));
    }
    async_phase(args, &broker.ep, ONE, "memory".to_owned(), ids).await?;
    let mut grown = Vec::new();
    for (i, (&(ep, pid), ((remembered, answered), rss))) in sides.iter().zip(before).enumerate() {
        if i > 0 && ids {
            heard(ep, answered + args.requests).await?;
        }
        let rss = rss_kib(pid).saturating_sub(rss);
        grown.push(Growth {
            kib: rss,
            ids: broker_stat(ep, "dedup_ids")
                .await?
                .saturating_sub(remembered),
        });
    }
    Ok(grown)
}

/// The figures of a run: every round's phases (the floor's two first, then the plan's), the
/// best round of each phase and its median rate.
struct Table {
    plan: Vec<Spec>,
    rounds: Vec<Vec<Phase>>,
    /// Whether the other broker's CPU time was measured (`--broker-pid`).
    other_cpu: bool,
}

impl Table {
    /// Where the floor's phases are in a round.
    const FLOOR_SYNC: usize = 0;
    const FLOOR_PIPED: usize = 1;

    /// The row of `spec`, if the plan has it.
    fn row(&self, spec: Spec) -> Option<usize> {
        self.plan.iter().position(|s| *s == spec).map(|i| i + 2)
    }

    /// The phase of row `i` in its best round (the least disturbed).
    fn best(&self, i: usize) -> &Phase {
        self.rounds
            .iter()
            .map(|round| &round[i])
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .expect("at least one round")
    }

    /// The median rate of row `i` (with an even number of rounds, the mean of the middle two).
    fn median(&self, i: usize) -> f64 {
        median(self.rounds.iter().map(|round| round[i].rate)).unwrap_or_default()
    }

    /// The median over the rounds of what `figure` gives for row `i` (`None` if it gives
    /// nothing in any round).
    fn median_of(&self, i: usize, figure: impl Fn(&Phase) -> Option<f64>) -> Option<f64> {
        median(self.rounds.iter().filter_map(|round| figure(&round[i])))
    }

    fn print(&self) {
        let count = self.rounds[0].len();
        let width = (0..count)
            .map(|i| self.rounds[0][i].name.chars().count())
            .max()
            .unwrap_or(0)
            .max("phase (best round)".len());
        println!(
            "{:<width$} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10}",
            "phase (best round)",
            "req/s",
            "median",
            "p50 ms",
            "p99 ms",
            "/floor",
            "/other",
            "CPU µs/req"
        );
        for i in 0..count {
            let phase = self.best(i);
            let spec = i.checked_sub(2).map(|p| self.plan[p]);
            // Sync compares with the one-at-a-time floor, async with the pipelined one.
            let of_floor = match (spec, phase.pipelined) {
                (None, _) => "-".to_owned(),
                (Some(_), false) => format!("{:.2}", phase.rate / self.best(Self::FLOOR_SYNC).rate),
                (Some(_), true) => format!("{:.2}", phase.rate / self.best(Self::FLOOR_PIPED).rate),
            };
            // Our default broker against the other one under the same load.
            let vs_other = spec
                .filter(|s| s.via == Via::Guarded && !s.ids)
                .and_then(|s| {
                    self.row(Spec {
                        via: Via::Other,
                        ..s
                    })
                })
                .map_or("-".to_owned(), |o| {
                    format!("{:.2}x", phase.rate / self.best(o).rate)
                });
            let cpu = self.best_cpu(i);
            println!(
                "{:<width$} {:>9.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>10}",
                phase.name,
                phase.rate,
                self.median(i),
                ms(phase.p50),
                ms(phase.p99),
                of_floor,
                vs_other,
                cpu
            );
        }
    }

    /// One line per load the plan runs both ways: the rate of `changed` over that of `base`
    /// (medians) and the broker's CPU time per request in each (best rounds); then, indented,
    /// the lines `detail` gives for the two rows (changed first).
    fn contrast(
        &self,
        title: &str,
        base: impl Fn(Load) -> Spec,
        changed: impl Fn(Load) -> Spec,
        detail: impl Fn(usize, usize) -> Vec<String>,
    ) {
        println!("{title}:");
        for load in Load::ALL {
            let (Some(b), Some(c)) = (self.row(base(load)), self.row(changed(load))) else {
                continue;
            };
            let ratio = self.median(c) / self.median(b);
            println!(
                "  {:<17} rate {ratio:.2}x ({:+.1} %: {:.0} vs {:.0} req/s), broker CPU {} vs {} µs/req",
                format!("{}:", load.label()),
                (ratio - 1.0) * 100.0,
                self.median(c),
                self.median(b),
                self.best_cpu(c),
                self.best_cpu(b),
            );
            for more in detail(c, b) {
                println!("  {:<17} {more}", "");
            }
        }
    }

    /// The broker's CPU time per request in the best round of row `i`, or `-` for the other
    /// broker without `--broker-pid`.
    fn best_cpu(&self, i: usize) -> String {
        let other = i
            .checked_sub(2)
            .is_some_and(|p| self.plan[p].via == Via::Other);
        if other && !self.other_cpu {
            "-".to_owned()
        } else {
            format!("{:.1}", self.best(i).server_cpu_us)
        }
    }

    /// The details of the cost of replication, the pair's row `pair` against the lone broker's
    /// row `lone`: each round's own ratio of rates (the two phases run side by side, see
    /// [`run_order`]), the latencies (best rounds), and the CPU time per request of the active
    /// broker, the passive one, the workers and all of them (medians of the rounds: a round's
    /// CPU time moves less than its rate, but this machine has slow and fast rounds).
    fn replication(&self, pair: usize, lone: usize) -> Vec<String> {
        let ratios: Vec<f64> = self
            .rounds
            .iter()
            .map(|round| round[pair].rate / round[lone].rate)
            .collect();
        let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = ratios.iter().copied().fold(0.0, f64::max);
        let ratio = median(ratios).unwrap_or_default();
        let (p, l) = (self.best(pair), self.best(lone));
        let cpu = |row, figure: fn(&Phase) -> Option<f64>| {
            self.median_of(row, figure)
                .map_or("-".to_owned(), |us| format!("{us:.1}"))
        };
        let active = |phase: &Phase| Some(phase.server_cpu_us);
        let all = |phase: &Phase| {
            let workers = phase.worker_cpu_us?;
            Some(phase.server_cpu_us + phase.passive_cpu_us.unwrap_or(0.0) + workers)
        };
        vec![
            format!(
                "each round's ratio {lowest:.2}x to {highest:.2}x, median {ratio:.2}x; p50 {} vs {} ms, p99 {} vs {} ms",
                ms(p.p50),
                ms(l.p50),
                ms(p.p99),
                ms(l.p99),
            ),
            format!(
                "CPU µs/req, medians of the rounds: active broker {} vs {}, passive broker {}, \
                 worker {} vs {}, all three {} vs {}",
                cpu(pair, active),
                cpu(lone, active),
                cpu(pair, |phase| phase.passive_cpu_us),
                cpu(pair, |phase| phase.worker_cpu_us),
                cpu(lone, |phase| phase.worker_cpu_us),
                cpu(pair, all),
                cpu(lone, all),
            ),
        ]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => me.parent().context("no directory")?.to_owned(),
    };
    if cfg!(debug_assertions) {
        eprintln!("W: this is a debug build; figures mean little (cargo build --release)");
    }
    if args.credit_only {
        return credit_curve(&bin_dir).await;
    }
    if args.mdp02 {
        return mdp02::run(&args, &bin_dir).await;
    }
    if let Some(pid) = args.broker_pid {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("--broker-pid {pid}: no such process"))?;
    }
    // --curve holds 200 connections open, three descriptors each through the CURVE relay.
    common::guard::raise_descriptor_limit();
    let rounds = args.rounds;
    println!(
        "mdbench: {} rounds of {} pipelined / {} one-at-a-time requests, window {}, loopback TCP",
        rounds, args.requests, args.sync_requests, args.window
    );

    // Every server runs for the whole benchmark; the rounds interleave the phases, so a burst
    // of load from elsewhere on the machine hits one round, not one phase.
    let echo_ep = free_endpoint()?;
    let echo = spawn(&me, &["echo-server", "--bind", &echo_ep])?;
    let ours = !args.only_broker;
    let pair = !args.no_pair && ours;
    let plan = plan(args.broker.is_some(), ours, pair, args.curve && ours);
    let mut brokers: Vec<Broker> = Vec::new();
    for spec in &plan {
        if !brokers.iter().any(|b| b.via == spec.via) {
            let other = args.broker.as_deref();
            let broker = Broker::start(spec.via, &bin_dir, other, args.broker_pid, &plan).await?;
            brokers.push(broker);
        }
    }
    let processes: Vec<(String, u32)> = brokers.iter().flat_map(Broker::processes).collect();
    let rss = || -> Vec<u64> { processes.iter().map(|(_, pid)| rss_kib(*pid)).collect() };
    let rss_start = rss();
    // The replies the passive broker of the pair heard of before the rounds (while starting).
    let passive_ep = brokers
        .iter()
        .find_map(|b| b.passive.as_ref().map(|(ep, _)| ep.clone()));
    let heard_start = match &passive_ep {
        Some(ep) => broker_stat(ep, "answered_elsewhere").await?,
        None => 0,
    };

    let mut table = Table {
        plan: plan.clone(),
        rounds: Vec::new(),
        other_cpu: args.broker_pid.is_some(),
    };
    for round in 1..=rounds {
        let (floor_sync, floor_piped) = floor(&args, &echo_ep, echo.id()).await?;
        let mut ran: Vec<Option<Phase>> = vec![None; plan.len()];
        for i in run_order(&plan, round) {
            let broker = brokers
                .iter()
                .find(|b| b.via == plan[i].via)
                .expect("every broker of the plan was started");
            ran[i] = Some(broker.run(&args, plan[i]).await?);
        }
        let mut phases = vec![floor_sync, floor_piped];
        phases.extend(ran.into_iter().flatten());
        let rates: Vec<String> = phases.iter().map(|p| format!("{:.0}", p.rate)).collect();
        println!("round {round}: req/s {}", rates.join(" / "));
        table.rounds.push(phases);
    }
    let rss_end = rss();
    // The pair's news: every request of its phases had an id, so the passive broker must have
    // heard every reply; and the primary must still be the active one.
    let pair_news = match brokers.iter().find(|b| b.via == Via::Pair) {
        Some(broker) => {
            let backup = passive_ep.as_deref().context("a pair has a backup")?;
            let sent = u64::from(rounds).saturating_mul(args.sync_requests + args.requests);
            let heard = heard(backup, heard_start.saturating_add(sent))
                .await?
                .saturating_sub(heard_start);
            Some(format!(
                "broker pair after the rounds: primary {}, backup {}; the passive broker heard \
                 the replies of {heard} of the {sent} requests of the pair's phases",
                pair_state(&broker.ep).await?,
                pair_state(backup).await?,
            ))
        }
        None => None,
    };
    let connections = if args.curve && ours {
        Some(connection_costs(&brokers).await?)
    } else {
        None
    };
    drop(brokers);
    drop(echo);

    println!();
    table.print();
    println!();
    let rss_line: Vec<String> = processes
        .iter()
        .zip(rss_start.iter().zip(&rss_end))
        .map(|((name, _), (start, end))| format!("{start} KiB → {end} KiB ({name})"))
        .collect();
    let keepers = if pair {
        "the guarded one and the pair's two also keep"
    } else {
        "the guarded one also keeps"
    };
    if !processes.is_empty() {
        println!(
            "RSS, start → end: {} ({keepers} the replies of the phases with ids)",
            rss_line.join(", ")
        );
    }
    let of = |via, ids| move |load| Spec { via, load, ids };
    if ours && args.curve {
        table.contrast(
            "CURVE cost (CURVE vs NULL, both guarded; median rates, CPU of the best rounds)",
            of(Via::Guarded, false),
            of(Via::Curve, false),
            |_, _| Vec::new(),
        );
        for line in connections.iter().flatten() {
            println!("{line}");
        }
    }
    if ours {
        table.contrast(
            "guard cost (guarded vs --no-guard; median rates, CPU of the best rounds)",
            of(Via::Unguarded, false),
            of(Via::Guarded, false),
            |_, _| Vec::new(),
        );
        table.contrast(
            "request ids (with vs without, both guarded; median rates, CPU of the best rounds)",
            of(Via::Guarded, false),
            of(Via::Guarded, true),
            |_, _| Vec::new(),
        );
    }
    if args.broker.is_some() && ours {
        let cpu = if args.broker_pid.is_some() {
            "CPU of the best rounds"
        } else {
            "CPU of the best rounds, the other's unknown without --broker-pid"
        };
        table.contrast(
            &format!("the other broker (ours guarded vs the other; median rates, {cpu})"),
            of(Via::Other, false),
            of(Via::Guarded, false),
            |_, _| Vec::new(),
        );
        table.contrast(
            &format!("the other broker (ours --no-guard vs the other; median rates, {cpu})"),
            of(Via::Other, false),
            of(Via::Unguarded, false),
            |_, _| Vec::new(),
        );
    }
    if pair {
        table.contrast(
            "replication (broker pair vs lone broker, both guarded with ids; median rates, CPU of \
             the best rounds, the active broker's)",
            of(Via::Guarded, true),
            of(Via::Pair, true),
            |pair, lone| table.replication(pair, lone),
        );
    }
    if let Some(line) = pair_news {
        println!("{line}");
    }
    if ours {
        let with_ids = remembered_growth(&bin_dir, &args, Via::Guarded, true).await?[0];
        let without = remembered_growth(&bin_dir, &args, Via::Guarded, false).await?[0];
        println!(
            "memory per remembered reply: {:.0} bytes ({} requests with ids: RSS +{} KiB, \
             {} ids remembered; without ids: RSS +{} KiB)",
            with_ids.per_id(without),
            args.requests,
            with_ids.kib,
            with_ids.ids,
            without.kib
        );
    }
    if pair {
        let with_ids = remembered_growth(&bin_dir, &args, Via::Pair, true).await?;
        let without = remembered_growth(&bin_dir, &args, Via::Pair, false).await?;
        let (Some(&passive), Some(&passive_without)) = (with_ids.get(1), without.get(1)) else {
            bail!("a pair without a passive broker");
        };
        println!(
            "memory per replicated entry: {:.0} bytes at the passive broker ({} requests with \
             ids through a fresh pair: its RSS +{} KiB, {} ids remembered; without ids: RSS +{} \
             KiB); the active broker of that pair: {:.0} bytes per remembered reply",
            passive.per_id(passive_without),
            args.requests,
            passive.kib,
            passive.ids,
            passive_without.kib,
            with_ids[0].per_id(without[0]),
        );
    }
    if !args.no_credit && ours {
        println!();
        credit_curve(&bin_dir).await?;
        println!();
    }
    println!("/floor: rate over the floor's (sync over one-at-a-time, async over pipelined); the floor's echo server runs without the guard");
    if let Some(other) = &args.broker {
        println!("/other: our mdbroker's rate over the broker at {other}, same rounds, same client and workers");
    }
    let whose = match args.broker_pid {
        Some(pid) => format!(" or of the other broker (pid {pid}, all its threads)"),
        None => String::new(),
    };
    println!(
        "CPU µs/req: user+system time of the echo server (floor) or of our mdbroker{whose}, per request"
    );
    if pair {
        println!(
            "mdbroker pair: a primary (ACTIVE) and a backup (PASSIVE), one mdworker registered \
             with both; the client (the lone phases' one, ids on) talks to the primary, and CPU \
             µs/req is the primary's"
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match &args.command {
        Some(Cmd::EchoServer { bind }) => {
            let bind = bind.clone();
            // The floor is zeromq alone, so its echo server runs without the ingress guard.
            common::guard::install(common::guard::GuardConfig {
                enabled: false,
                ..Default::default()
            });
            runtime.block_on(async {
                tokio::select! {
                    result = echo_server(&bind) => result,
                    () = common::shutdown::signal() => Ok(()),
                }
            })
        }
        None => {
            // Ctrl-C drops the benchmark, and with it every process it started (`ChildGuard`).
            runtime
                .block_on(common::shutdown::unless_interrupted(bench(args)))
                .unwrap_or_else(|| std::process::exit(common::shutdown::INTERRUPTED.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pair_phase_runs_next_to_its_lone_partner_alternately_first_and_second() {
        for (other, pair, curve) in [
            (false, false, false),
            (false, true, true),
            (true, false, true),
            (true, true, false),
        ] {
            let plan = plan(other, true, pair, curve);
            assert_eq!(
                plan.iter().filter(|s| s.via == Via::Curve).count(),
                if curve { 2 } else { 0 },
                "CURVE: the sync and 1-worker phases"
            );
            for round in 1..=4 {
                let order = run_order(&plan, round);
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(
                    sorted,
                    (0..plan.len()).collect::<Vec<_>>(),
                    "each phase once"
                );
                let at = |spec: Spec| order.iter().position(|&i| plan[i] == spec);
                let mut pairs = 0;
                for spec in plan.iter().filter(|s| s.via == Via::Pair) {
                    let lone = Spec {
                        via: Via::Guarded,
                        ..*spec
                    };
                    let (p, l) = (at(*spec).unwrap(), at(lone).unwrap());
                    let second = if round.is_multiple_of(2) { l } else { p };
                    assert_eq!(second, p.max(l), "round {round}: {spec:?}");
                    assert_eq!(p.abs_diff(l), 1, "adjacent");
                    pairs += 1;
                }
                assert_eq!(pairs, if pair { 2 } else { 0 });
                // The other phases keep the plan's order.
                let rest: Vec<usize> = order
                    .iter()
                    .copied()
                    .filter(|&i| plan[i].via != Via::Pair)
                    .collect();
                assert!(rest.windows(2).all(|w| w[0] < w[1]), "{rest:?}");
                if !pair {
                    assert_eq!(order, (0..plan.len()).collect::<Vec<_>>());
                }
            }
        }
    }
}
