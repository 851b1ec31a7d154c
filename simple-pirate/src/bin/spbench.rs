//! `spbench`: requests/s of REQ → `spqueue` → one `spworker` (simulated work 0), against a direct
//! REQ → REP echo pair, measured in one run, and the ratio.
//!
//! Every party is its own process, as in a deployment: `spbench` re-executes itself with
//! `SPBENCH_ROLE=echo|queue|worker` (and `SPBENCH_ENDPOINTS`) to run the REP echo server, the
//! queue (this crate's `queue::run`) or the worker (`worker::run`); those children log nothing.
//! The client is the parent: one REQ socket sending the sequence numbers `1..` and checking each
//! echo, like `lpclient` without its log line per reply. Loopback TCP on free ports.
//! Every process runs a single-threaded tokio runtime, as the real binaries do.
//! Per round it also prints the CPU time per request each server-side process used (summed
//! over its threads from Linux `/proc/<pid>/task/*/schedstat`), which is steadier than the
//! rate on a shared machine.
//! The queue runs twice per round, behind its ingress guard (as `spqueue` does by default) and
//! with the guard off (`--no-guard`), so the guard's cost is measured in the same run; the
//! direct pair, the floor, runs without it.
//! Rounds alternate direct and queued runs, so load from elsewhere on the machine hits both;
//! the median round is reported as well as each one. Figures only, no pass/fail.

use anyhow::{bail, Context};
use clap::Parser;
use common::bench::{free_endpoint, median, ChildGuard};
use common::fault::FaultPlan;
use common::{cli, sock, Message};
use simple_pirate::queue_loop::{self as queue, QueueConfig};
use simple_pirate::worker_loop::{self as worker, WorkerConfig};
use simple_pirate::WorkerCore;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use zeromq::{RepSocket, ReqSocket, Socket, SocketRecv};

/// Measures requests/s through spqueue + one spworker against a direct REQ/REP pair.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Requests timed per setup and round (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = cli::count::<u64>())]
    requests: u64,
    /// Untimed requests sent first in each setup (connections, caches, allocator warm up); 0
    /// for none (0 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = cli::count_or_zero::<u64>())]
    warmup: u64,
    /// Rounds; each measures both setups, direct first (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = cli::count::<u32>())]
    rounds: u32,
    /// Milliseconds to wait for a connection or any one reply before the run is declared
    /// broken (exit status 1) (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = cli::ms())]
    timeout_ms: u64,
}

const ROLE: &str = "SPBENCH_ROLE";
const ENDPOINTS: &str = "SPBENCH_ENDPOINTS";
/// Set to `off` to run a child without the ingress guard (`--no-guard`).
const GUARD: &str = "SPBENCH_GUARD";

fn main() -> anyhow::Result<ExitCode> {
    // The same single-threaded runtime as spqueue, spworker, lpserver and lpclient use.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    if let Ok(role) = std::env::var(ROLE) {
        let endpoints = std::env::var(ENDPOINTS).unwrap_or_default();
        let endpoints: Vec<String> = endpoints.split(',').map(str::to_owned).collect();
        if std::env::var(GUARD).is_ok_and(|g| g == "off") {
            common::guard::install(common::guard::GuardConfig {
                enabled: false,
                ..Default::default()
            });
        }
        runtime.block_on(child_role(&role, &endpoints))?;
        return Ok(ExitCode::SUCCESS);
    }
    let args = Args::parse();
    common::logging::init(false);
    match runtime.block_on(common::shutdown::unless_interrupted(bench(&args))) {
        Some(result) => result.map(|()| ExitCode::SUCCESS),
        None => Ok(ExitCode::from(common::shutdown::INTERRUPTED)),
    }
}

/// The server side of a setup, in a child process.
async fn child_role(role: &str, endpoints: &[String]) -> anyhow::Result<()> {
    let shutdown = common::shutdown::signal();
    match (role, endpoints) {
        ("echo", [bind]) => {
            let mut socket = RepSocket::new();
            sock::bind(&mut socket, bind).await?;
            tokio::pin!(shutdown);
            loop {
                let request = tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    r = socket.recv() => r?,
                };
                sock::send(&mut socket, Message::from(request), Duration::from_secs(1)).await?;
            }
        }
        ("queue", [frontend, backend]) => {
            let config = QueueConfig {
                frontend: frontend.clone(),
                backend: backend.clone(),
                send_timeout: queue::SEND_TIMEOUT,
            };
            queue::run(config, shutdown).await?;
            Ok(())
        }
        ("worker", [backend]) => {
            let config = WorkerConfig {
                queue: backend.clone(),
                connect_timeout: worker::CONNECT_TIMEOUT,
                send_timeout: worker::SEND_TIMEOUT,
            };
            worker::run(
                config,
                WorkerCore::new(FaultPlan::none(), Duration::ZERO),
                shutdown,
            )
            .await;
            Ok(())
        }
        _ => bail!("unknown {ROLE}={role} with {ENDPOINTS}={endpoints:?}"),
    }
}

/// This program again, as the `role` process (killed when dropped).
fn spawn(role: &str, endpoints: &[&str], guard: bool) -> anyhow::Result<ChildGuard> {
    let exe = std::env::current_exe().context("own executable")?;
    ChildGuard::spawn(
        Command::new(exe)
            .env(ROLE, role)
            .env(GUARD, if guard { "on" } else { "off" })
            .env(ENDPOINTS, endpoints.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    )
    .with_context(|| format!("start the {role} process"))
}

/// CPU time a child has used so far, summed over its threads (Linux `/proc`; `None`
/// elsewhere).
fn cpu(child: &ChildGuard) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id())).ok()?;
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        nanos += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(nanos))
}

/// CPU microseconds per request a child spent during a run, as text.
fn cpu_per_request(child: &ChildGuard, before: Option<Duration>, requests: u64) -> String {
    match (before, cpu(child)) {
        (Some(before), Some(after)) => format!(
            "{:.1} us",
            (after - before).as_secs_f64() * 1e6 / requests as f64
        ),
        _ => "n/a".to_owned(),
    }
}

/// Sends `warmup + requests` numbered requests on one REQ socket; returns timed requests/s.
async fn drive(server: &str, args: &Args) -> anyhow::Result<f64> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut socket = ReqSocket::new();
    sock::connect(&mut socket, server, timeout)
        .await
        .with_context(|| format!("connect to {server} within --timeout-ms {timeout:?}"))?;
    let mut started = Instant::now();
    for n in 1..=args.warmup + args.requests {
        if n == args.warmup + 1 {
            started = Instant::now();
        }
        let request = Message::from_frames([n.to_string()]);
        sock::send(&mut socket, request.clone(), timeout)
            .await
            .with_context(|| format!("send request {n} within --timeout-ms {timeout:?}"))?;
        let reply = sock::recv(&mut socket, timeout)
            .await?
            .with_context(|| format!("no reply to request {n} within --timeout-ms {timeout:?}"))?;
        if reply != request {
            bail!("request {n} answered with {reply:?}");
        }
    }
    Ok(args.requests as f64 / started.elapsed().as_secs_f64())
}

/// Requests/s and where the CPU went.
struct Run {
    rate: f64,
    cpu: String,
}

async fn direct(args: &Args) -> anyhow::Result<Run> {
    let endpoint = free_endpoint()?;
    let server = spawn("echo", &[&endpoint], false)?;
    let before = cpu(&server);
    let rate = drive(&endpoint, args).await?;
    let total = args.warmup + args.requests;
    let cpu = format!("echo {}", cpu_per_request(&server, before, total));
    Ok(Run { rate, cpu })
}

async fn queued(args: &Args, guard: bool) -> anyhow::Result<Run> {
    let (frontend, backend) = (free_endpoint()?, free_endpoint()?);
    let queue = spawn("queue", &[&frontend, &backend], guard)?;
    let worker = spawn("worker", &[&backend], guard)?;
    let (queue_before, worker_before) = (cpu(&queue), cpu(&worker));
    // The queue reads no request until the worker's READY arrived, so the warm-up waits for it.
    let rate = drive(&frontend, args).await?;
    let total = args.warmup + args.requests;
    let cpu = format!(
        "queue {}, worker {}",
        cpu_per_request(&queue, queue_before, total),
        cpu_per_request(&worker, worker_before, total)
    );
    Ok(Run { rate, cpu })
}

async fn bench(args: &Args) -> anyhow::Result<()> {
    tracing::info!(
        "measuring {} requests per setup and round ({} warm-up), {} rounds",
        args.requests,
        args.warmup,
        args.rounds
    );
    let (mut directs, mut queueds, mut bares) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let d = direct(args).await.context("direct REQ/REP run")?;
        let q = queued(args, true).await.context("queued run")?;
        let b = queued(args, false).await.context("queued run, no guard")?;
        println!(
            "round {round}: direct REQ->REP {:>7.0} req/s | REQ->spqueue->spworker {:>7.0} req/s | ratio {:.2} | same, --no-guard {:>7.0} req/s | CPU per request: {}; {}; no guard: {}",
            d.rate,
            q.rate,
            q.rate / d.rate,
            b.rate,
            d.cpu,
            q.cpu,
            b.cpu
        );
        directs.push(d.rate);
        queueds.push(q.rate);
        bares.push(b.rate);
    }
    // At least one round, so never the default.
    let (d, q, b) = (
        median(directs).unwrap_or_default(),
        median(queueds).unwrap_or_default(),
        median(bares).unwrap_or_default(),
    );
    println!("median: direct REQ->REP {d:.0} req/s");
    println!("median: REQ->spqueue->1 spworker (work 0) {q:.0} req/s");
    println!("median: the same with --no-guard {b:.0} req/s");
    println!(
        "guard cost: {:.1} % of the queued rate (guarded {q:.0} vs unguarded {b:.0} req/s, medians)",
        (1.0 - q / b) * 100.0
    );
    println!(
        "ratio queued/direct: {:.2} (the queue adds a hop and two sockets)",
        q / d
    );
    Ok(())
}
