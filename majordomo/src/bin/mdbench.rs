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
//!    (`/other`);
//! 6. p50/p99 round trip of every phase, the server's CPU time per request and our brokers'
//!    resident memory (from /proc; not for the other broker, whose process we do not know),
//!    and each rate as a fraction of its floor;
//! 7. the memory per remembered reply: the RSS growth of a fresh mdbroker serving pipelined
//!    requests with ids, minus that of one serving them without, over the ids it remembers.
//!
//! The phases of a round are a table ([`plan`]: which broker, which load, ids or not), run by
//! one phase runner ([`Broker::run`]).
//!
//! There is no column against C figures measured on another day: on a shared machine they
//! mislead (the C broker did 5,900/s sync one day and 15,138/s on another). Point `--broker` at
//! a C broker to compare in the same run.
//!
//! The phases run in several interleaved rounds; the table shows each phase's best round and
//! median rate, because on a shared machine a burst of outside load can halve one phase.
//!
//! It prints figures, never a verdict. Build with `--release`: `mdbroker` and `mdworker` are
//! taken from the directory of this executable (or `--bin-dir`).

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use common::cli::{self, Verbosity};
use common::sock;
use common::Message;
use majordomo::broker::{MMI_BROKER, MMI_SERVICES};
use majordomo::client::{AsyncClient, Client, ClientOptions};
use majordomo::mmi::{parse_broker, ServiceRow};
use majordomo::protocol::MMI_SERVICE;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend};

/// Service of the 1-worker phases.
const ONE: &str = "echo";
/// Service of the 4-worker phase.
const FOUR: &str = "echo4";

/// Majordomo benchmark: raw zeromq floor, then sync and pipelined requests through mdbroker,
/// guarded and --no-guard, with and without request ids.
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

/// Kills the child process when dropped, so an early error leaves nothing running.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Guarded => "mdbroker",
            Via::Unguarded => "mdbroker --no-guard",
            Via::Other => "other",
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
/// only), then the other broker's.
fn plan(other: bool) -> Vec<Spec> {
    let mut plan = Vec::new();
    for load in Load::ALL {
        let spec = |via, ids| Spec { via, load, ids };
        plan.push(spec(Via::Guarded, false));
        if load != Load::Async4 {
            plan.push(spec(Via::Unguarded, false));
            // Request ids need our broker (another one would pass the rid frame on).
            plan.push(spec(Via::Guarded, true));
        }
        if other {
            plan.push(spec(Via::Other, false));
        }
    }
    plan
}

/// A broker the phases go through, with its workers.
struct Broker {
    via: Via,
    ep: String,
    /// Our broker's process (`None` for the other broker: we do not know its process).
    process: Option<Kid>,
    _workers: Vec<Kid>,
}

impl Broker {
    fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|kid| kid.0.id())
    }

    /// Starts our broker for `via` (or takes the other one at `ep`) and the echo workers of
    /// every service the plan asks of it, and waits until they are registered.
    async fn start(
        via: Via,
        bin_dir: &std::path::Path,
        other: Option<&str>,
        plan: &[Spec],
    ) -> anyhow::Result<Self> {
        let (ep, process) = match via {
            Via::Other => (other.context("no --broker")?.to_owned(), None),
            Via::Guarded | Via::Unguarded => {
                let ep = free_endpoint()?;
                let mut args = vec!["--bind", ep.as_str()];
                if via == Via::Unguarded {
                    args.push("--no-guard");
                }
                let kid = spawn(&bin_dir.join("mdbroker"), &args)?;
                (ep, Some(kid))
            }
        };
        let mut services: Vec<(&str, u64)> = Vec::new();
        for spec in plan.iter().filter(|s| s.via == via) {
            if !services.contains(&spec.load.service()) {
                services.push(spec.load.service());
            }
        }
        let mut workers = Vec::new();
        for (service, count) in services {
            for _ in 0..count {
                let args = [
                    "--broker",
                    ep.as_str(),
                    "--service",
                    service,
                    "--work-ms",
                    "0",
                ];
                workers.push(spawn(&bin_dir.join("mdworker"), &args)?);
            }
            wait_for_workers(&ep, service, count).await?;
        }
        Ok(Self {
            via,
            ep,
            process,
            _workers: workers,
        })
    }

    /// Runs one phase through this broker, with the broker's CPU time per request if known.
    async fn run(&self, args: &Args, spec: Spec) -> anyhow::Result<Phase> {
        let pid = self.pid();
        let before = pid.map(cpu_time);
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
        Ok(phase.with_cpu_of(pid, before, count))
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
        }
    }

    /// Records the server's CPU time over the phase (`before` taken at its start).
    fn with_cpu(mut self, pid: u32, before: Duration, count: u64) -> Self {
        let used = cpu_time(pid).saturating_sub(before);
        self.server_cpu_us = used.as_secs_f64() * 1e6 / count.max(1) as f64;
        self
    }

    /// As [`with_cpu`](Self::with_cpu) when the server's process is known (`pid` and `before`
    /// are `None` for a broker we did not start).
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

fn body(seq: u64) -> Message {
    Message::from_frames([format!("Hello world {seq}")])
}

fn seq_of(body: &Message) -> Option<u64> {
    let text = std::str::from_utf8(body.first()?).ok()?;
    text.strip_prefix("Hello world ")?.parse().ok()
}

fn free_endpoint() -> anyhow::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("tcp://127.0.0.1:{port}"))
}

fn spawn(program: &PathBuf, args: &[&str]) -> anyhow::Result<Kid> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(Kid(child))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
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

/// Waits until the broker reports `workers` idle workers for `service`. A broker without our
/// `mmi.services` extension (the Guide's) is asked `mmi.service` (8/MMI) instead, which only
/// says whether there is a worker; then the others get a second to register.
async fn wait_for_workers(ep: &str, service: &str, workers: u64) -> anyhow::Result<()> {
    let options = ClientOptions {
        timeout: Duration::from_millis(1000),
        retries: 1,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut client = Client::new(ep, options.clone())?;
        if let Ok(reply) = client.send(MMI_SERVICES, Message::new()).await {
            match ServiceRow::parse_all(&reply) {
                Ok(rows) => {
                    if rows.iter().any(|r| r.name == service && r.idle == workers) {
                        return Ok(());
                    }
                }
                Err(_) => {
                    let ask = Message::from_frames([service.to_owned()]);
                    let reply = client.send(MMI_SERVICE, ask).await?;
                    if reply.first().is_some_and(|code| &code[..] == b"200") {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        return Ok(());
                    }
                }
            }
        }
        if Instant::now() > deadline {
            bail!("the broker at {ep} never had {workers} {service} workers");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 1,
    };
    let mut client = AsyncClient::connect(ep, options)
        .await?
        .with_request_ids(ids);
    let mut sent_at = in_flight_stamps(args.window);
    let mut rtts = latencies(args.requests);
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < args.requests {
        while sent < args.requests && sent - received < args.window {
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
    Ok(Phase::new(
        name,
        true,
        args.requests,
        started.elapsed(),
        rtts,
    ))
}

/// A fresh mdbroker with one worker serves `args.requests` pipelined requests (with or without
/// ids): its RSS growth in KiB and the ids it remembers at the end (from `mmi.broker`).
async fn remembered_growth(
    bin_dir: &std::path::Path,
    args: &Args,
    ids: bool,
) -> anyhow::Result<(u64, u64)> {
    let ep = free_endpoint()?;
    let broker = spawn(&bin_dir.join("mdbroker"), &["--bind", &ep])?;
    let worker_args = ["--broker", ep.as_str(), "--service", ONE, "--work-ms", "0"];
    let _worker = spawn(&bin_dir.join("mdworker"), &worker_args)?;
    wait_for_workers(&ep, ONE, 1).await?;
    let pid = broker.0.id();
    let before = rss_kib(pid);
    async_phase(args, &ep, ONE, "memory".to_owned(), ids).await?;
    let after = rss_kib(pid);
    let options = ClientOptions {
        timeout: Duration::from_secs(5),
        retries: 1,
    };
    let reply = Client::new(&ep, options)?
        .send(MMI_BROKER, Message::new())
        .await?;
    let remembered = parse_broker(&reply)?
        .into_iter()
        .find_map(|(name, value)| (name == "dedup_ids").then_some(value))
        .unwrap_or(0);
    Ok((after.saturating_sub(before), remembered))
}

/// The figures of a run: every round's phases (the floor's two first, then the plan's), the
/// best round of each phase and its median rate.
struct Table {
    plan: Vec<Spec>,
    rounds: Vec<Vec<Phase>>,
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
        let mut rates: Vec<f64> = self.rounds.iter().map(|round| round[i].rate).collect();
        rates.sort_by(f64::total_cmp);
        let half = rates.len() / 2;
        if rates.len().is_multiple_of(2) {
            (rates[half - 1] + rates[half]) / 2.0
        } else {
            rates[half]
        }
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
            let cpu = match spec {
                Some(Spec {
                    via: Via::Other, ..
                }) => "-".to_owned(),
                _ => format!("{:.1}", phase.server_cpu_us),
            };
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
    /// (medians) and the broker's CPU time per request in each (best rounds).
    fn contrast(&self, title: &str, base: impl Fn(Load) -> Spec, changed: impl Fn(Load) -> Spec) {
        println!("{title}:");
        for load in Load::ALL {
            let (Some(b), Some(c)) = (self.row(base(load)), self.row(changed(load))) else {
                continue;
            };
            let ratio = self.median(c) / self.median(b);
            println!(
                "  {:<17} rate {ratio:.2}x ({:+.1} %: {:.0} vs {:.0} req/s), broker CPU {:.1} vs {:.1} µs/req",
                format!("{}:", load.label()),
                (ratio - 1.0) * 100.0,
                self.median(c),
                self.median(b),
                self.best(c).server_cpu_us,
                self.best(b).server_cpu_us,
            );
        }
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
    let rounds = args.rounds;
    println!(
        "mdbench: {} rounds of {} pipelined / {} one-at-a-time requests, window {}, loopback TCP",
        rounds, args.requests, args.sync_requests, args.window
    );

    // Every server runs for the whole benchmark; the rounds interleave the phases, so a burst
    // of load from elsewhere on the machine hits one round, not one phase.
    let echo_ep = free_endpoint()?;
    let echo = spawn(&me, &["echo-server", "--bind", &echo_ep])?;
    let plan = plan(args.broker.is_some());
    let mut brokers: Vec<Broker> = Vec::new();
    for spec in &plan {
        if !brokers.iter().any(|b| b.via == spec.via) {
            let broker = Broker::start(spec.via, &bin_dir, args.broker.as_deref(), &plan).await?;
            brokers.push(broker);
        }
    }
    let rss = |brokers: &[Broker]| -> Vec<u64> {
        brokers
            .iter()
            .filter_map(Broker::pid)
            .map(rss_kib)
            .collect()
    };
    let rss_start = rss(&brokers);

    let mut table = Table {
        plan: plan.clone(),
        rounds: Vec::new(),
    };
    for round in 1..=rounds {
        let (floor_sync, floor_piped) = floor(&args, &echo_ep, echo.0.id()).await?;
        let mut phases = vec![floor_sync, floor_piped];
        for spec in &plan {
            let broker = brokers
                .iter()
                .find(|b| b.via == spec.via)
                .expect("every broker of the plan was started");
            phases.push(broker.run(&args, *spec).await?);
        }
        let rates: Vec<String> = phases.iter().map(|p| format!("{:.0}", p.rate)).collect();
        println!("round {round}: req/s {}", rates.join(" / "));
        table.rounds.push(phases);
    }
    let rss_end = rss(&brokers);
    let ours: Vec<Via> = brokers
        .iter()
        .filter(|b| b.process.is_some())
        .map(|b| b.via)
        .collect();
    drop(brokers);
    drop(echo);

    println!();
    table.print();
    println!();
    let rss_line: Vec<String> = ours
        .iter()
        .zip(rss_start.iter().zip(&rss_end))
        .map(|(via, (start, end))| format!("{start} KiB → {end} KiB ({})", via.label()))
        .collect();
    println!(
        "RSS, start → end: {} (the guarded one also keeps the replies of the phases with ids)",
        rss_line.join(", ")
    );
    let of = |via, ids| move |load| Spec { via, load, ids };
    table.contrast(
        "guard cost (guarded vs --no-guard; median rates, CPU of the best rounds)",
        of(Via::Unguarded, false),
        of(Via::Guarded, false),
    );
    table.contrast(
        "request ids (with vs without, both guarded; median rates, CPU of the best rounds)",
        of(Via::Guarded, false),
        of(Via::Guarded, true),
    );
    let with_ids = remembered_growth(&bin_dir, &args, true).await?;
    let without = remembered_growth(&bin_dir, &args, false).await?;
    let per_id = (with_ids.0 as f64 - without.0 as f64) * 1024.0 / with_ids.1.max(1) as f64;
    println!(
        "memory per remembered reply: {per_id:.0} bytes ({} requests with ids: RSS +{} KiB, \
         {} ids remembered; without ids: RSS +{} KiB)",
        args.requests, with_ids.0, with_ids.1, without.0
    );
    println!("/floor: rate over the floor's (sync over one-at-a-time, async over pipelined); the floor's echo server runs without the guard");
    if let Some(other) = &args.broker {
        println!("/other: our mdbroker's rate over the broker at {other}, same rounds, same client and workers");
    }
    println!(
        "CPU µs/req: user+system time of the echo server (floor) or of our mdbroker, per request"
    );
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
            // Ctrl-C drops the benchmark, and with it every process it started (`Kid`).
            runtime
                .block_on(common::shutdown::unless_interrupted(bench(args)))
                .unwrap_or_else(|| std::process::exit(common::shutdown::INTERRUPTED.into()))
        }
    }
}
