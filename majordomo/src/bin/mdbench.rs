//! `mdbench`: Majordomo throughput and latency on loopback, against the raw socket floor.
//!
//! One run measures, each with the Guide's 11-byte "Hello world" body:
//! 1. the floor: a DEALER talking to a ROUTER echo server in another process (no broker), one
//!    request at a time and pipelined;
//! 2. through `mdbroker` with `mdworker` echo workers (separate processes, `--work-ms 0`):
//!    synchronous requests with 1 worker ([`Client`]), pipelined requests with 1 and 4 workers
//!    ([`AsyncClient`]); the 1-worker phases ask service `echo`, the 4-worker phase `echo4`,
//!    both on one broker;
//! 3. the same sync and 1-worker pipelined phases with request ids on (Guide 4.11: the broker
//!    remembers every id and its reply), their rate over the phase without ids and the
//!    broker's CPU time per request with and without;
//! 4. with `--broker ENDPOINT`, the same three phases through that already running broker (any
//!    MDP/0.1 broker, e.g. the Guide's C `mdbroker`), with our client and our workers, in the
//!    same rounds, and each of our rates over the other broker's (`/other`);
//! 5. p50/p99 round trip of every phase, the server's CPU time per request and the broker's
//!    resident memory (from /proc; not for the other broker, whose process we do not know),
//!    and each rate as a fraction of its floor;
//! 6. the memory per remembered reply: the RSS growth of a fresh mdbroker serving pipelined
//!    requests with ids, minus that of one serving them without, over the ids it remembers.
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
use common::cli::Verbosity;
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

/// Majordomo benchmark: raw zeromq floor, then sync and pipelined requests through mdbroker.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Requests in each pipelined phase of a round.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    requests: u64,
    /// Requests in each one-at-a-time phase of a round.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    sync_requests: u64,
    /// Rounds; each runs every phase once, the table shows the best and the median.
    #[arg(long, value_name = "N", default_value_t = 3)]
    rounds: u32,
    /// Requests in flight in the pipelined phases.
    #[arg(long, value_name = "N", default_value_t = 1000)]
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

/// Where each phase sits in a round's list (the other broker's three follow ours).
mod at {
    pub const FLOOR_SYNC: usize = 0;
    pub const FLOOR_PIPED: usize = 1;
    /// Our sync, async 1 worker, async 4 workers.
    pub const OURS: usize = 2;
    /// Our sync and async 1 worker with request ids.
    pub const IDS: usize = 5;
    /// The other broker's sync, async 1 worker, async 4 workers (with `--broker`).
    pub const OTHER: usize = 7;
}

/// The figures of one phase.
#[derive(Clone)]
struct Phase {
    name: &'static str,
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
        name: &'static str,
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
            name,
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

/// Raw DEALER ↔ ROUTER echo: one at a time, then pipelined.
async fn floor(args: &Args, ep: &str, pid: u32) -> anyhow::Result<(Phase, Phase)> {
    let mut dealer = DealerSocket::new();
    sock::connect(&mut dealer, ep, Duration::from_secs(10)).await?;
    let timeout = Duration::from_secs(10);
    let cpu = cpu_time(pid);

    let mut rtts = Vec::with_capacity(args.sync_requests as usize);
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

    let mut sent_at = vec![None; args.requests as usize];
    let mut rtts = Vec::with_capacity(args.requests as usize);
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < args.requests {
        while sent < args.requests && sent - received < args.window.max(1) {
            sent_at[sent as usize] = Some(Instant::now());
            sock::send(&mut dealer, body(sent), timeout).await?;
            sent += 1;
        }
        let reply = sock::recv(&mut dealer, timeout)
            .await?
            .context("floor: no echo")?;
        let seq = seq_of(&reply).context("floor: wrong echo")?;
        let at = sent_at
            .get_mut(seq as usize)
            .and_then(Option::take)
            .context("floor: duplicate echo")?;
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
async fn sync_phase(args: &Args, ep: &str, name: &'static str, ids: bool) -> anyhow::Result<Phase> {
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 1,
    };
    let mut client = Client::new(ep, options)?.with_request_ids(ids);
    let mut rtts = Vec::with_capacity(args.sync_requests as usize);
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
    name: &'static str,
    ids: bool,
) -> anyhow::Result<Phase> {
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 1,
    };
    let mut client = AsyncClient::connect(ep, options)
        .await?
        .with_request_ids(ids);
    let mut sent_at: HashMap<u64, Instant> = HashMap::with_capacity(args.window as usize * 2);
    let mut rtts = Vec::with_capacity(args.requests as usize);
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < args.requests {
        while sent < args.requests && sent - received < args.window.max(1) {
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
    async_phase(args, &ep, ONE, "memory", ids).await?;
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
    let rounds = args.rounds.max(1);
    println!(
        "mdbench: {} rounds of {} pipelined / {} one-at-a-time requests, window {}, loopback TCP",
        rounds, args.requests, args.sync_requests, args.window
    );

    // Every server runs for the whole benchmark; the rounds interleave the phases, so a burst
    // of load from elsewhere on the machine hits one round, not one phase.
    let echo_ep = free_endpoint()?;
    let echo = spawn(&me, &["echo-server", "--bind", &echo_ep])?;
    let ours_ep = free_endpoint()?;
    let ours = spawn(&bin_dir.join("mdbroker"), &["--bind", &ours_ep])?;
    let ours_pid = ours.0.id();
    let mut targets = vec![(ours_ep.clone(), "mdbroker")];
    if let Some(other) = &args.broker {
        targets.push((other.clone(), "other"));
    }
    let mut workers = Vec::new();
    for (ep, _) in &targets {
        for (service, count) in [(ONE, 1), (FOUR, 4)] {
            for _ in 0..count {
                let args = ["--broker", ep, "--service", service, "--work-ms", "0"];
                workers.push(spawn(&bin_dir.join("mdworker"), &args)?);
            }
            wait_for_workers(ep, service, count).await?;
        }
    }
    let rss_start = rss_kib(ours_pid);

    let names = [
        [
            "mdbroker sync, 1 worker",
            "mdbroker async, 1 worker",
            "mdbroker async, 4 workers",
        ],
        [
            "other sync, 1 worker",
            "other async, 1 worker",
            "other async, 4 workers",
        ],
    ];
    let id_names = [
        "mdbroker sync, 1 worker, ids",
        "mdbroker async, 1 worker, ids",
    ];
    let mut all: Vec<Vec<Phase>> = Vec::new();
    for round in 1..=rounds {
        let (floor_sync, floor_piped) = floor(&args, &echo_ep, echo.0.id()).await?;
        let mut phases = vec![floor_sync, floor_piped];
        for (t, (ep, _)) in targets.iter().enumerate() {
            // CPU time only for our broker: we do not know the other one's process.
            let pid = (t == 0).then_some(ours_pid);
            let (n_sync, n_async) = (args.sync_requests, args.requests);
            let c = pid.map(cpu_time);
            let sync = sync_phase(&args, ep, names[t][0], false).await?;
            phases.push(sync.with_cpu_of(pid, c, n_sync));
            let c = pid.map(cpu_time);
            let async1 = async_phase(&args, ep, ONE, names[t][1], false).await?;
            phases.push(async1.with_cpu_of(pid, c, n_async));
            let c = pid.map(cpu_time);
            let async4 = async_phase(&args, ep, FOUR, names[t][2], false).await?;
            phases.push(async4.with_cpu_of(pid, c, n_async));
            if t == 0 {
                // Request ids need our broker (another one would pass the rid frame on).
                let c = pid.map(cpu_time);
                let sync = sync_phase(&args, ep, id_names[0], true).await?;
                phases.push(sync.with_cpu_of(pid, c, n_sync));
                let c = pid.map(cpu_time);
                let async1 = async_phase(&args, ep, ONE, id_names[1], true).await?;
                phases.push(async1.with_cpu_of(pid, c, n_async));
            }
        }
        let rates: Vec<String> = phases.iter().map(|p| format!("{:.0}", p.rate)).collect();
        println!("round {round}: req/s {}", rates.join(" / "));
        all.push(phases);
    }
    let rss_end = rss_kib(ours_pid);
    drop(workers);
    drop(ours);
    drop(echo);

    // Per phase: the best round (least disturbed) and the median rate.
    let count = all[0].len();
    let best: Vec<Phase> = (0..count)
        .map(|i| {
            all.iter()
                .map(|round| round[i].clone())
                .max_by(|a, b| a.rate.total_cmp(&b.rate))
                .expect("at least one round")
        })
        .collect();
    let median = |i: usize| {
        let mut rates: Vec<f64> = all.iter().map(|round| round[i].rate).collect();
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    println!();
    println!(
        "{:<30} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "phase (best round)",
        "req/s",
        "median",
        "p50 ms",
        "p99 ms",
        "/floor",
        "/other",
        "CPU µs/req"
    );
    let has_other = count > at::OTHER;
    for (i, phase) in best.iter().enumerate() {
        // Sync compares with the one-at-a-time floor, async with the pipelined one.
        let of_floor = match (i, phase.pipelined) {
            (at::FLOOR_SYNC | at::FLOOR_PIPED, _) => "-".to_owned(),
            (_, false) => format!("{:.2}", phase.rate / best[at::FLOOR_SYNC].rate),
            (_, true) => format!("{:.2}", phase.rate / best[at::FLOOR_PIPED].rate),
        };
        let vs_other = match i {
            _ if !has_other => "-".to_owned(),
            i if (at::OURS..at::IDS).contains(&i) => {
                format!("{:.2}x", phase.rate / best[i - at::OURS + at::OTHER].rate)
            }
            _ => "-".to_owned(),
        };
        let cpu = if i < at::OTHER {
            format!("{:.1}", phase.server_cpu_us)
        } else {
            "-".to_owned()
        };
        println!(
            "{:<30} {:>9.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>10}",
            phase.name,
            phase.rate,
            median(i),
            ms(phase.p50),
            ms(phase.p99),
            of_floor,
            vs_other,
            cpu
        );
    }
    println!();
    println!("mdbroker RSS: {rss_start} KiB → {rss_end} KiB, start → end");
    let (sync, async1) = (at::OURS, at::OURS + 1);
    let (sync_ids, async1_ids) = (at::IDS, at::IDS + 1);
    println!(
        "request ids: rate {:.2} (sync), {:.2} (async) of the rate without ids (median over \
         median); broker CPU µs/req {:.1} → {:.1} (sync), {:.1} → {:.1} (async)",
        median(sync_ids) / median(sync),
        median(async1_ids) / median(async1),
        best[sync].server_cpu_us,
        best[sync_ids].server_cpu_us,
        best[async1].server_cpu_us,
        best[async1_ids].server_cpu_us
    );
    let with_ids = remembered_growth(&bin_dir, &args, true).await?;
    let without = remembered_growth(&bin_dir, &args, false).await?;
    let per_id = (with_ids.0 as f64 - without.0 as f64) * 1024.0 / with_ids.1.max(1) as f64;
    println!(
        "memory per remembered reply: {per_id:.0} bytes ({} requests with ids: RSS +{} KiB, \
         {} ids remembered; without ids: RSS +{} KiB)",
        args.requests, with_ids.0, with_ids.1, without.0
    );
    println!("/floor: rate over the floor's (sync over one-at-a-time, async over pipelined)");
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
            runtime.block_on(async {
                tokio::select! {
                    result = echo_server(&bind) => result,
                    () = common::shutdown::signal() => Ok(()),
                }
            })
        }
        None => runtime.block_on(bench(args)),
    }
}
