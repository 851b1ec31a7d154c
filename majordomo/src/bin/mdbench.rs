//! `mdbench`: Majordomo throughput and latency on loopback, against the raw socket floor.
//!
//! One run measures, each with the Guide's 11-byte "Hello world" body:
//! 1. the floor: a DEALER talking to a ROUTER echo server in another process (no broker), one
//!    request at a time and pipelined;
//! 2. through `mdbroker` with `mdworker` echo workers (separate processes, `--work-ms 0`):
//!    synchronous requests with 1 worker ([`Client`]), pipelined requests with 1 and 4 workers
//!    ([`AsyncClient`]);
//! 3. the same sync and 1-worker pipelined phases with request ids on (Guide 4.11: the broker
//!    remembers every id and its reply), and their rate over the phase without ids;
//! 4. p50/p99 round trip of every phase, the server's CPU time per request and the broker's
//!    resident memory (from /proc), and each rate as a fraction of its floor and against the C
//!    reference broker's published figures;
//! 5. the memory per remembered reply: the RSS growth of a fresh broker serving pipelined
//!    requests with ids, minus that of one serving them without, over the ids it remembers.
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
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend};

/// The C reference broker on a 2-core machine (from the issue): requests per second.
const C_SYNC: f64 = 5_900.0;
/// ... asynchronous client, 1 worker.
const C_ASYNC_1: f64 = 8_200.0;
/// ... asynchronous client, 2 workers.
const C_ASYNC_2: f64 = 11_200.0;

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

/// The figures of one phase.
#[derive(Clone)]
struct Phase {
    name: &'static str,
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time (user + system) the server process (echo server or broker) spent per request:
    /// unlike the rates, hardly affected by other load on the machine.
    server_cpu_us: f64,
}

impl Phase {
    fn new(name: &'static str, count: u64, elapsed: Duration, mut rtts: Vec<Duration>) -> Self {
        rtts.sort_unstable();
        let pick = |q: f64| {
            rtts.get(((rtts.len() as f64 * q) as usize).min(rtts.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Self {
            name,
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
    let piped = Phase::new("floor, pipelined", args.requests, started.elapsed(), rtts).with_cpu(
        pid,
        cpu,
        args.requests,
    );
    Ok((sync, piped))
}

/// Waits until the broker reports `workers` idle workers for "echo".
async fn wait_for_workers(ep: &str, workers: u64) -> anyhow::Result<()> {
    let options = ClientOptions {
        timeout: Duration::from_millis(1000),
        retries: 1,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut client = Client::new(ep, options.clone())?;
        if let Ok(reply) = client.send(MMI_SERVICES, Message::new()).await {
            let rows = ServiceRow::parse_all(&reply)?;
            if rows.iter().any(|r| r.name == "echo" && r.idle == workers) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the broker never had {workers} echo workers");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sync_phase(args: &Args, ep: &str, ids: bool) -> anyhow::Result<Phase> {
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 1,
    };
    let mut client = Client::new(ep, options)?.with_request_ids(ids);
    let mut rtts = Vec::with_capacity(args.sync_requests as usize);
    let started = Instant::now();
    for seq in 0..args.sync_requests {
        let sent = Instant::now();
        let reply = client.send("echo", body(seq)).await?;
        if seq_of(&reply) != Some(seq) {
            bail!("sync: wrong reply {reply:?}");
        }
        rtts.push(sent.elapsed());
    }
    let name = if ids {
        "mdbroker sync, ids"
    } else {
        "mdbroker sync, 1 worker"
    };
    Ok(Phase::new(
        name,
        args.sync_requests,
        started.elapsed(),
        rtts,
    ))
}

async fn async_phase(
    args: &Args,
    ep: &str,
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
            client.send("echo", body(sent)).await?;
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
    Ok(Phase::new(name, args.requests, started.elapsed(), rtts))
}

/// A fresh broker with one worker serves `args.requests` pipelined requests (with or without
/// ids): its RSS growth in KiB and the ids it remembers at the end (from `mmi.broker`).
async fn remembered_growth(
    bin_dir: &std::path::Path,
    args: &Args,
    ids: bool,
) -> anyhow::Result<(u64, u64)> {
    let ep = free_endpoint()?;
    let broker = spawn(&bin_dir.join("mdbroker"), &["--bind", &ep])?;
    let _worker = spawn(
        &bin_dir.join("mdworker"),
        &["--broker", ep.as_str(), "--work-ms", "0"],
    )?;
    wait_for_workers(&ep, 1).await?;
    let pid = broker.0.id();
    let before = rss_kib(pid);
    async_phase(args, &ep, "memory", ids).await?;
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
    let mut brokers = Vec::new();
    let mut workers = Vec::new();
    for count in [1, 4] {
        let ep = free_endpoint()?;
        brokers.push((
            spawn(&bin_dir.join("mdbroker"), &["--bind", &ep])?,
            ep.clone(),
        ));
        for _ in 0..count {
            let args = ["--broker", ep.as_str(), "--work-ms", "0"];
            workers.push(spawn(&bin_dir.join("mdworker"), &args)?);
        }
        wait_for_workers(&ep, count).await?;
    }
    let (pid1, ep1) = (brokers[0].0 .0.id(), brokers[0].1.clone());
    let (pid4, ep4) = (brokers[1].0 .0.id(), brokers[1].1.clone());
    let rss_start = (rss_kib(pid1), rss_kib(pid4));

    let mut all: Vec<Vec<Phase>> = Vec::new();
    for round in 1..=rounds {
        let (floor_sync, floor_piped) = floor(&args, &echo_ep, echo.0.id()).await?;
        let cpu = cpu_time(pid1);
        let sync = sync_phase(&args, &ep1, false)
            .await?
            .with_cpu(pid1, cpu, args.sync_requests);
        let cpu = cpu_time(pid1);
        let sync_ids = sync_phase(&args, &ep1, true)
            .await?
            .with_cpu(pid1, cpu, args.sync_requests);
        let cpu = cpu_time(pid1);
        let async1 = async_phase(&args, &ep1, "mdbroker async, 1 worker", false)
            .await?
            .with_cpu(pid1, cpu, args.requests);
        let cpu = cpu_time(pid1);
        let async1_ids = async_phase(&args, &ep1, "mdbroker async, ids", true)
            .await?
            .with_cpu(pid1, cpu, args.requests);
        let cpu = cpu_time(pid4);
        let async4 = async_phase(&args, &ep4, "mdbroker async, 4 workers", false)
            .await?
            .with_cpu(pid4, cpu, args.requests);
        let phases = vec![
            floor_sync,
            floor_piped,
            sync,
            sync_ids,
            async1,
            async1_ids,
            async4,
        ];
        let rates: Vec<String> = phases.iter().map(|p| format!("{:.0}", p.rate)).collect();
        println!("round {round}: req/s {}", rates.join(" / "));
        all.push(phases);
    }
    let rss_end = (rss_kib(pid1), rss_kib(pid4));
    drop(workers);
    drop(brokers);
    drop(echo);

    // Per phase: the best round (least disturbed) and the median rate.
    let best: Vec<Phase> = (0..7)
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
        "{:<27} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "phase (best round)", "req/s", "median", "p50 ms", "p99 ms", "/floor", "/C", "CPU µs/req"
    );
    let reference = [
        (None, None),
        (None, None),
        (Some(0), Some(C_SYNC)),
        (Some(0), Some(C_SYNC)),
        (Some(1), Some(C_ASYNC_1)),
        (Some(1), Some(C_ASYNC_1)),
        (Some(1), Some(C_ASYNC_2)),
    ];
    for (i, (phase, (floor, c))) in best.iter().zip(reference).enumerate() {
        let of_floor = floor.map_or("-".to_owned(), |f: usize| {
            format!("{:.2}", phase.rate / best[f].rate)
        });
        let vs_c = c.map_or("-".to_owned(), |c| format!("{:.2}x", phase.rate / c));
        println!(
            "{:<27} {:>9.0} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>10.1}",
            phase.name,
            phase.rate,
            median(i),
            ms(phase.p50),
            ms(phase.p99),
            of_floor,
            vs_c,
            phase.server_cpu_us
        );
    }
    println!();
    println!(
        "mdbroker RSS: {} KiB → {} KiB (1 worker), {} KiB → {} KiB (4 workers), start → end",
        rss_start.0, rss_end.0, rss_start.1, rss_end.1
    );
    println!(
        "request ids (median over median): sync {:.2}, async {:.2} of the rate without ids; broker CPU µs/req {:.1} → {:.1} (sync), {:.1} → {:.1} (async)",
        median(3) / median(2),
        median(5) / median(4),
        best[2].server_cpu_us,
        best[3].server_cpu_us,
        best[4].server_cpu_us,
        best[5].server_cpu_us
    );
    let (with_ids, without) = (
        remembered_growth(&bin_dir, &args, true).await?,
        remembered_growth(&bin_dir, &args, false).await?,
    );
    let per_id = (with_ids.0 as f64 - without.0 as f64) * 1024.0 / with_ids.1.max(1) as f64;
    println!(
        "memory per remembered reply: {per_id:.0} bytes ({} requests with ids: RSS +{} KiB, {} ids remembered; without ids: RSS +{} KiB)",
        args.requests, with_ids.0, with_ids.1, without.0
    );
    println!("/floor: rate over the floor's (sync over one-at-a-time, async over pipelined)");
    println!("/C: rate over the C reference broker on 2 cores ({C_SYNC:.0}/s sync; {C_ASYNC_1:.0}/s async with 1 worker, {C_ASYNC_2:.0}/s with 2)");
    println!("CPU µs/req: user+system time of the echo server (floor) or of mdbroker, per request");
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
