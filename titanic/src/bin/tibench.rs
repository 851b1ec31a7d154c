//! `tibench`: how fast Titanic acknowledges durable requests, under each `--fsync` policy.
//!
//! One run measures, with 100-byte request bodies:
//! 1. the store alone: appends/s with 1 and 16 concurrent writers under `always`, `batch` and
//!    `never`, records per sync, and the Guide's reference design emulated the way its titanic
//!    stores a request (one file created per request, the UUID appended to a queue file, no
//!    fsync);
//! 2. through `mdbroker` with a `titanic` process per policy (`--workers 16`):
//!    `titanic.request` acknowledgements/s with 1 and 16 concurrent clients, for a service with
//!    no worker, so only the acknowledgement path is measured;
//! 3. end to end with an `mdworker` echo worker: time from sending `titanic.request` until
//!    `titanic.reply` first answers 200 (polled every millisecond), p50/p99.
//!
//! It prints figures and ratios, never a verdict. Build with `--release`; `mdbroker`,
//! `mdworker` and `titanic` are taken from the directory of this executable (or `--bin-dir`).
//! The journals go to a fresh directory under `--dir` (default: the system temp directory),
//! removed at the end; use a directory on the disk you care about. Ctrl-C stops the run within
//! a moment, stops the processes it started, removes the directory and exits with status 130.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use common::bench::{free_endpoint, ChildGuard};
use common::Message;
use majordomo::{Client, ClientOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};
use titanic::journal::Record;
use titanic::protocol::{self, Answer, RequestId, Status};
use titanic::{FsyncPolicy, Store, StoreOptions};

/// Titanic benchmark: store appends/s, durable acknowledgements/s, end-to-end latency.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Seconds each throughput cell runs (0.1 to 86400).
    #[arg(long, value_name = "S", default_value_t = 3.0, value_parser = seconds)]
    seconds: f64,
    /// Sequential requests in each end-to-end latency phase (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = common::cli::count::<usize>())]
    latency_requests: usize,
    /// Directory for the journals (a fresh subdirectory is made and removed).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Where mdbroker, mdworker and titanic are (default: next to this executable).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Only the store-layer measurements (no processes).
    #[arg(long)]
    store_only: bool,
    /// Copy the log lines of the child processes to standard error.
    #[arg(long)]
    show_logs: bool,
}

const POLICIES: [FsyncPolicy; 3] = [FsyncPolicy::Always, FsyncPolicy::Batch, FsyncPolicy::Never];
const CONCURRENCY: [usize; 2] = [1, 16];
const BODY: [u8; 100] = [b'x'; 100];
/// Set by `--show-logs`.
static SHOW_LOGS: AtomicBool = AtomicBool::new(false);
/// Set by Ctrl-C: every loop of the run checks it and stops.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// `--seconds`: 0.1 to 86400 (a day). A float, so it needs its own check: NaN, infinities and
/// negative or huge values would make `Duration::from_secs_f64` panic.
fn seconds(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if (0.1..=86_400.0).contains(&s) {
        Ok(s)
    } else {
        Err(format!("{text} is not in 0.1..=86400"))
    }
}

/// Sets [`INTERRUPTED`] on Ctrl-C, from a thread of its own: the store layer runs on plain
/// threads, outside any runtime. The handler is installed before this returns.
fn watch_ctrl_c() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signal = {
        let _in_runtime = runtime.enter();
        common::shutdown::signal()
    };
    std::thread::spawn(move || {
        runtime.block_on(signal);
        INTERRUPTED.store(true, Ordering::Relaxed);
    });
    Ok(())
}

/// An error once Ctrl-C was pressed, so the run unwinds (dropping, and so killing, its
/// processes).
fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// Resolves once Ctrl-C was pressed.
async fn interrupted() {
    while !INTERRUPTED.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    SHOW_LOGS.store(args.show_logs, Ordering::Relaxed);
    watch_ctrl_c()?;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("tibench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run(&args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    if INTERRUPTED.load(Ordering::Relaxed) {
        eprintln!("W: interrupted");
        // 128 + SIGINT, as a shell reports a program ended by Ctrl-C.
        return Ok(ExitCode::from(130));
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn run(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let span = Duration::from_secs_f64(args.seconds);
    println!(
        "tibench: journals in {}, {} s per cell",
        dir.display(),
        span.as_secs_f64()
    );
    let store = store_layer(dir, span)?;
    if args.store_only {
        return Ok(());
    }
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("executable has no directory")?
            .to_owned(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        tokio::select! {
            result = through_titanic(args, dir, &bin_dir, span, &store) => result,
            () = interrupted() => bail!("interrupted"),
        }
    })
}

fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// Appends/s and records per sync, by policy and writer count.
struct StoreFigures {
    cells: Vec<(FsyncPolicy, usize, f64, f64)>,
}

impl StoreFigures {
    fn get(&self, policy: FsyncPolicy, writers: usize) -> f64 {
        self.cells
            .iter()
            .find(|c| c.0 == policy && c.1 == writers)
            .map_or(f64::NAN, |c| c.2)
    }
}

fn request_record() -> Record {
    Record::Request {
        id: RequestId::random(),
        service: Bytes::from_static(b"echo"),
        body: vec![Bytes::from_static(&BODY)],
        key: None,
    }
}

/// Runs `writers` threads calling `op` until `span` has passed (or Ctrl-C); returns
/// operations/s.
fn hammer(writers: usize, span: Duration, op: impl Fn() + Sync) -> f64 {
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| {
                let mut n = 0;
                while start.elapsed() < span && !INTERRUPTED.load(Ordering::Relaxed) {
                    op();
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    rate(done.load(Ordering::Relaxed), start.elapsed())
}

fn store_layer(dir: &Path, span: Duration) -> anyhow::Result<StoreFigures> {
    println!();
    println!("1. store layer: appends acknowledged per second (100-byte requests)");
    println!("   {:<44} {:>12} {:>12}", "", "1 writer", "16 writers");
    let mut cells = Vec::new();
    for policy in POLICIES {
        let mut row = Vec::new();
        for writers in CONCURRENCY {
            let path = dir.join(format!("store-{policy}-{writers}"));
            let options = StoreOptions {
                fsync: policy,
                ..StoreOptions::default()
            };
            let (store, _) = Store::open(&path, options)?;
            let per_s = hammer(writers, span, || {
                store
                    .submit(request_record())
                    .wait_blocking()
                    .expect("append failed");
            });
            let appended = store.counts().pending as f64;
            let per_sync = appended / store.syncs().max(1) as f64;
            store.shutdown();
            check_interrupted()?;
            cells.push((policy, writers, per_s, per_sync));
            row.push((per_s, per_sync));
        }
        let label = format!("journal, --fsync {policy}");
        let cell = |(r, p): (f64, f64)| {
            if policy == FsyncPolicy::Never {
                format!("{r:>12.0}")
            } else {
                format!("{r:>7.0} ({p:.1}/sync)")
            }
        };
        println!("   {label:<44} {:>12} {:>12}", cell(row[0]), cell(row[1]));
    }
    let mut reference = Vec::new();
    for writers in CONCURRENCY {
        let rdir = dir.join(format!("reference-{writers}"));
        std::fs::create_dir_all(&rdir)?;
        let queue = Mutex::new(());
        reference.push(hammer(writers, span, || reference_store(&rdir, &queue)));
        check_interrupted()?;
    }
    println!(
        "   {:<44} {:>12.0} {:>12.0}",
        "Guide's design: file per request, no fsync", reference[0], reference[1]
    );
    let figures = StoreFigures { cells };
    let (b1, b16) = (
        figures.get(FsyncPolicy::Batch, 1),
        figures.get(FsyncPolicy::Batch, 16),
    );
    println!(
        "   batch/never: {:.2} (1 writer), {:.2} (16 writers); batch/always with 16 writers: {:.1}×",
        b1 / figures.get(FsyncPolicy::Never, 1),
        b16 / figures.get(FsyncPolicy::Never, 16),
        b16 / figures.get(FsyncPolicy::Always, 16)
    );
    println!(
        "   durable batch vs the Guide's non-durable design: {:.2}× (1 writer), {:.2}× (16 writers)",
        b1 / reference[0],
        b16 / reference[1]
    );
    Ok(figures)
}

/// The Guide's titanic storing one request: a new file holding the request, then the UUID
/// appended to the queue file (opened and closed each time). No fsync anywhere.
fn reference_store(dir: &Path, queue: &Mutex<()>) {
    let id = RequestId::random();
    let mut f = std::fs::File::create(dir.join(format!("{id}.req"))).expect("create");
    f.write_all(b"echo").expect("write");
    f.write_all(&BODY).expect("write");
    drop(f);
    let _guard = queue.lock().unwrap_or_else(|e| e.into_inner());
    let mut q = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("queue"))
        .expect("queue");
    writeln!(q, "-{id}").expect("queue write");
}

/// A child process killed when dropped, with its stderr lines forwarded to a channel.
struct Kid {
    _child: ChildGuard,
    lines: mpsc::Receiver<String>,
}

impl Kid {
    fn spawn(program: &Path, args: &[&str]) -> anyhow::Result<Kid> {
        let (tx, lines) = mpsc::channel();
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let child = ChildGuard::spawn_watched(program, args, move |line| {
            if SHOW_LOGS.load(Ordering::Relaxed) {
                eprintln!("  [{name}] {line}");
            }
            let _ = tx.send(line);
        })
        .with_context(|| format!("starting {}", program.display()))?;
        Ok(Kid {
            _child: child,
            lines,
        })
    }

    /// Waits until `n` lines containing `needle` have been printed (or Ctrl-C).
    fn wait_lines(&self, needle: &str, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        while seen < n {
            check_interrupted()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no {n} lines containing {needle:?} within 30 s");
            }
            // In slices, so that Ctrl-C is noticed while waiting.
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) if line.contains(needle) => seen += 1,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("exited before printing {n} lines containing {needle:?}")
                }
            }
        }
        Ok(())
    }
}

fn client(endpoint: &str) -> anyhow::Result<Client> {
    let options = ClientOptions {
        timeout: Duration::from_secs(5),
        retries: 3,
    };
    Ok(Client::new(endpoint, options)?)
}

async fn call(client: &mut Client, service: &str, body: Message) -> anyhow::Result<Answer> {
    let reply = client.send(service, body).await?;
    Ok(Answer::parse(reply)?)
}

fn new_request(service: &'static str) -> Message {
    Message::from_frames([
        Bytes::from_static(service.as_bytes()),
        Bytes::from_static(&BODY),
    ])
}

/// `titanic.request` acknowledgements/s with `clients` concurrent clients.
async fn ack_rate(endpoint: &str, clients: usize, span: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut client = client(endpoint)?;
        tasks.spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < span {
                let answer = call(
                    &mut client,
                    protocol::REQUEST_SERVICE,
                    new_request("bench.sink"),
                )
                .await?;
                if answer.status != Status::Ok {
                    bail!("titanic.request answered {}", answer.status);
                }
                n += 1;
            }
            Ok(n)
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n??;
    }
    Ok(rate(total, start.elapsed()))
}

/// Request → reply available, `n` times in a row; sorted latencies.
async fn latencies(endpoint: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut client = client(endpoint)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let answer = call(&mut client, protocol::REQUEST_SERVICE, new_request("echo")).await?;
        let id = answer.uuid()?;
        loop {
            let answer = call(
                &mut client,
                protocol::REPLY_SERVICE,
                protocol::uuid_body(id),
            )
            .await?;
            match answer.status {
                Status::Ok => break,
                Status::Pending => tokio::time::sleep(Duration::from_millis(1)).await,
                other => bail!("titanic.reply answered {other}"),
            }
        }
        out.push(start.elapsed());
        call(
            &mut client,
            protocol::CLOSE_SERVICE,
            protocol::uuid_body(id),
        )
        .await?;
    }
    out.sort();
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn through_titanic(
    args: &Args,
    dir: &Path,
    bin_dir: &Path,
    span: Duration,
    store: &StoreFigures,
) -> anyhow::Result<()> {
    println!();
    println!("2. titanic.request through mdbroker: durable acknowledgements per second");
    println!("   (titanic --workers 16; a service without workers, so nothing is forwarded)");
    println!(
        "   {:<24} {:>10} {:>11} {:>28}",
        "", "1 client", "16 clients", "store alone (1 / 16)"
    );
    let mut acks = Vec::new();
    let mut lat = Vec::new();
    for policy in POLICIES {
        // A fresh broker each time: the previous titanic's workers must not linger in it.
        let endpoint = free_endpoint()?;
        let broker = Kid::spawn(&bin_dir.join("mdbroker"), &["--bind", &endpoint])?;
        broker.wait_lines("mdbroker ready", 1)?;
        let worker = Kid::spawn(&bin_dir.join("mdworker"), &["--broker", &endpoint])?;
        worker.wait_lines("(echo) worker ready", 1)?;
        let journal = dir.join(format!("titanic-{policy}/journal"));
        let journal = journal.to_str().context("journal path is not UTF-8")?;
        let policy_arg = policy.to_string();
        let titanic = Kid::spawn(
            &bin_dir.join("titanic"),
            &[
                "--broker",
                &endpoint,
                "--journal",
                journal,
                "--fsync",
                &policy_arg,
                "--workers",
                "16",
            ],
        )?;
        // 16 workers for each of the three services.
        titanic.wait_lines(") worker ready", 48)?;
        let mut row = Vec::new();
        for clients in CONCURRENCY {
            row.push(ack_rate(&endpoint, clients, span).await?);
        }
        println!(
            "   {:<24} {:>10.0} {:>11.0} {:>13.0} / {:<12.0}",
            format!("--fsync {policy}"),
            row[0],
            row[1],
            store.get(policy, 1),
            store.get(policy, 16)
        );
        acks.push(row);
        lat.push(latencies(&endpoint, args.latency_requests).await?);
        drop((titanic, worker, broker));
    }
    println!(
        "   batch/never: {:.2} (1 client), {:.2} (16 clients); 16 clients vs 1 under batch: {:.1}×",
        acks[1][0] / acks[2][0],
        acks[1][1] / acks[2][1],
        acks[1][1] / acks[1][0]
    );

    println!();
    println!(
        "3. end to end: titanic.request sent → titanic.reply answers 200 (echo worker, {} requests, polled every 1 ms)",
        args.latency_requests
    );
    println!(
        "   {:<24} {:>9} {:>9} {:>9}",
        "", "p50 ms", "p99 ms", "max ms"
    );
    for (policy, l) in POLICIES.iter().zip(&lat) {
        println!(
            "   {:<24} {:>9.2} {:>9.2} {:>9.2}",
            format!("--fsync {policy}"),
            ms(percentile(l, 0.5)),
            ms(percentile(l, 0.99)),
            ms(*l.last().unwrap_or(&Duration::ZERO))
        );
    }
    Ok(())
}
