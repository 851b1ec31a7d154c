//! bstarbench — measures the failover a Binary Star client sees when the active primary dies.
//!
//! For each heartbeat and client strategy, and for several runs: start a `bstarsrv` pair (the
//! binaries next to this one, so build them with the same profile), run the failover client
//! in-process at one request a second (started at a random phase of the heartbeat), `kill -9`
//! the primary at a random moment, and record
//! * the failover time: kill → first answer from the backup;
//! * the gap: the client's last answer before the kill → its first answer after it;
//! * false failovers: a switch seen by the client, or a takeover by the backup, before the kill.
//!
//! Prints one line per run, then the medians per configuration and the eager/guide ratio.
//! Never passes or fails on time: these are figures to read.

use anyhow::{bail, Context};
use binary_star::failover::{Policy, Strategy};
use binary_star::Client;
use clap::Parser;
use common::bench::{free_endpoint, median, ChildGuard};
use common::cli;
use common::rng::Rng;
use common::Message;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failover benchmark: kill the active primary under a steady client, median of several runs.
#[derive(Debug, Parser)]
#[command(name = "bstarbench", version)]
struct Args {
    /// Runs per configuration (the median is reported) (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = cli::count::<usize>())]
    runs: usize,
    /// Server heartbeats to measure, in milliseconds (comma-separated), each (1 to 86400000).
    #[arg(long, value_name = "MS", value_delimiter = ',', default_value = "1000,250", value_parser = cli::ms())]
    heartbeats: Vec<u64>,
    /// Client strategies to measure (eager, guide; comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "guide,eager")]
    strategies: Vec<String>,
    /// Pause after each answer, in milliseconds, 0 for none (the Guide's client sends one a
    /// second) (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = cli::ms_or_zero())]
    interval_ms: u64,
    /// Client request timeout, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = cli::ms())]
    timeout_ms: u64,
    /// Client settle delay, in milliseconds; 0 resends at once (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = cli::ms_or_zero())]
    settle_ms: u64,
    /// Eager client: resend interval while the other server settles, in milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 250, value_parser = cli::ms())]
    vote_ms: u64,
    /// Steady traffic before the kill, in milliseconds (plus a random part of one interval)
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 3000, value_parser = cli::ms())]
    steady_ms: u64,
    /// Seed for the kill moments (0 to 18446744073709551615).
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = cli::seed())]
    seed: u64,
    /// Where bstarsrv is (default: next to this executable).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

/// A server process whose stderr lines are collected with their arrival time.
struct Server {
    child: ChildGuard,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Server {
    fn spawn(bin: &Path, args: &[String]) -> anyhow::Result<Server> {
        let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let sink = Arc::clone(&lines);
        let child = ChildGuard::spawn_watched(bin, args, move |line| {
            if let Ok(mut lines) = sink.lock() {
                lines.push((Instant::now(), line));
            }
        })
        .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Server { child, lines })
    }

    /// When the first line containing `needle` was printed, if it was.
    fn seen(&self, needle: &str) -> Option<Instant> {
        let lines = self.lines.lock().ok()?;
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    async fn wait_for(&self, needle: &str, limit: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = self.seen(needle) {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
                bail!("no {needle:?} within {limit:?}: {lines:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn kill(&mut self) {
        self.child.kill();
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Copy)]
struct Run {
    failover: Duration,
    gap: Duration,
    false_failovers: u32,
    answered: u64,
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

async fn one_run(
    bin: &Path,
    heartbeat_ms: u64,
    policy: Policy,
    args: &Args,
    rng: &mut Rng,
) -> anyhow::Result<Run> {
    let [pf, bf, pp, bp] = [
        free_endpoint()?,
        free_endpoint()?,
        free_endpoint()?,
        free_endpoint()?,
    ];
    let hb = heartbeat_ms.to_string();
    let server_args = |role: &str, fe: &str, state_pub: &str, state_sub: &str| -> Vec<String> {
        [
            role,
            "--frontend",
            fe,
            "--state-pub",
            state_pub,
            "--state-sub",
            state_sub,
            "--heartbeat-ms",
            &hb,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut primary = Server::spawn(bin, &server_args("-p", &pf, &pp, &bp))?;
    let backup = Server::spawn(bin, &server_args("-b", &bf, &bp, &pp))?;
    let settle_limit = Duration::from_millis(heartbeat_ms.saturating_mul(10).saturating_add(5000));
    primary.wait_for("I: state ACTIVE", settle_limit).await?;
    backup.wait_for("I: state PASSIVE", settle_limit).await?;

    // Start the client at a random phase of the heartbeat, so the two clocks are not locked.
    let phase = Duration::from_millis(rng.below(heartbeat_ms.max(1)));
    tokio::time::sleep(phase).await;
    let mut client = Client::new([pf.clone(), bf.clone()], policy);
    let interval = Duration::from_millis(args.interval_ms);
    let kill_after = Duration::from_millis(
        args.steady_ms
            .saturating_add(rng.below(args.interval_ms.max(1))),
    );
    let started = Instant::now();
    let kill_time = common::contract::saturating_add(started, kill_after);
    let mut killed_at: Option<Instant> = None;
    let mut last_before_kill: Option<Instant> = None;
    let mut first_after: Option<Instant> = None;
    let mut false_failovers = 0u32;
    let mut answered = 0u64;
    let mut sequence = 0u64;
    while first_after.is_none() {
        sequence += 1;
        let body = sequence.to_string();
        // Kill while the client waits or sleeps, whichever comes at the chosen moment.
        let reply = {
            let request = client.request(Message::from_frames([body.clone()]));
            tokio::pin!(request);
            loop {
                let kill_at = tokio::time::Instant::from_std(kill_time);
                tokio::select! {
                    reply = &mut request => break reply,
                    () = tokio::time::sleep_until(kill_at), if killed_at.is_none() => {
                        primary.kill();
                        killed_at = Some(Instant::now());
                    }
                }
            }
        };
        let now = Instant::now();
        let reply = reply.context("the client gave up")?;
        if reply.first().map(|f| &f[..]) != Some(body.as_bytes()) {
            bail!("bad reply {reply:?} to {body}");
        }
        answered += 1;
        match killed_at {
            None => {
                last_before_kill = Some(now);
                if client.server() != pf || client.last_failover().is_some() {
                    false_failovers += 1;
                }
            }
            Some(_) if client.server() == bf => first_after = Some(now),
            Some(_) => {}
        }
        let pause = tokio::time::sleep(interval);
        tokio::pin!(pause);
        loop {
            let kill_at = tokio::time::Instant::from_std(kill_time);
            tokio::select! {
                () = &mut pause => break,
                () = tokio::time::sleep_until(kill_at), if killed_at.is_none() => {
                    primary.kill();
                    killed_at = Some(Instant::now());
                }
            }
        }
    }
    let killed_at = killed_at.context("never killed")?;
    let first_after = first_after.context("no answer after the kill")?;
    if let Some(early) = backup.seen("I: state ACTIVE").filter(|t| *t < killed_at) {
        false_failovers += 1;
        eprintln!(
            "W: backup went ACTIVE {:?} before the kill",
            killed_at - early
        );
    }
    Ok(Run {
        failover: first_after - killed_at,
        gap: first_after - last_before_kill.unwrap_or(started),
        false_failovers,
        answered,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // Ctrl-C drops the benchmark, and with it the servers it started (`Server` kills on drop).
    Ok(
        match common::shutdown::unless_interrupted(bench(args)).await {
            Some(result) => result.map(|()| ExitCode::SUCCESS)?,
            None => ExitCode::from(common::shutdown::INTERRUPTED),
        },
    )
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("executable directory")?
            .to_owned(),
    };
    let bin = bin_dir.join("bstarsrv");
    if !bin.exists() {
        bail!(
            "{} not found: cargo build --release -p binary-star",
            bin.display()
        );
    }
    let mut rng = Rng::seeded(args.seed);
    println!(
        "bstarbench: {} runs per configuration; client sends one request every {} ms \
         (timeout {} ms, settle {} ms, vote {} ms); kill -9 the active primary after {}-{} ms",
        args.runs,
        args.interval_ms,
        args.timeout_ms,
        args.settle_ms,
        args.vote_ms,
        args.steady_ms,
        args.steady_ms + args.interval_ms
    );
    let mut table = Vec::new();
    for &heartbeat_ms in &args.heartbeats {
        for name in &args.strategies {
            let strategy = match name.as_str() {
                "eager" => Strategy::Eager,
                "guide" => Strategy::Guide,
                other => bail!("unknown strategy {other:?} (eager, guide)"),
            };
            let policy = Policy {
                strategy,
                timeout: Duration::from_millis(args.timeout_ms),
                settle: Duration::from_millis(args.settle_ms),
                vote: Duration::from_millis(args.vote_ms),
                give_up: Some(Duration::from_secs(60)),
            };
            let mut failovers = Vec::new();
            let mut gaps = Vec::new();
            let mut false_failovers = 0;
            for run in 1..=args.runs {
                let r = one_run(&bin, heartbeat_ms, policy, &args, &mut rng).await?;
                println!(
                    "heartbeat {heartbeat_ms:>4} ms  {name:<5}  run {run}: kill → answer {:>5} ms, \
                     gap {:>5} ms, answered {}, false failovers {}",
                    ms(r.failover),
                    ms(r.gap),
                    r.answered,
                    r.false_failovers
                );
                failovers.push(r.failover);
                gaps.push(r.gap);
                false_failovers += r.false_failovers;
            }
            let (lo, hi) = (
                failovers.iter().min().copied().unwrap_or_default(),
                failovers.iter().max().copied().unwrap_or_default(),
            );
            table.push((
                heartbeat_ms,
                name.clone(),
                median(failovers).unwrap_or_default(),
                lo,
                hi,
                median(gaps).unwrap_or_default(),
                false_failovers,
            ));
        }
    }
    println!();
    println!("heartbeat  strategy  kill→answer median (min-max)  gap median  false failovers");
    for (hb, name, med, lo, hi, gap, false_failovers) in &table {
        println!(
            "{hb:>6} ms  {name:<8}  {:>6} ms ({}-{})          {:>6} ms  {false_failovers}",
            ms(*med),
            ms(*lo),
            ms(*hi),
            ms(*gap)
        );
    }
    for &hb in &args.heartbeats {
        let find = |s: &str| table.iter().find(|r| r.0 == hb && r.1 == s);
        if let (Some(guide), Some(eager)) = (find("guide"), find("eager")) {
            println!(
                "heartbeat {hb} ms: eager/guide kill→answer {:.2}, gap {:.2}",
                eager.2.as_secs_f64() / guide.2.as_secs_f64().max(1e-9),
                eager.5.as_secs_f64() / guide.5.as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(())
}
