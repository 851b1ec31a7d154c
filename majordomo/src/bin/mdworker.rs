//! `mdworker`: an echo worker for one Majordomo service, with the pirates' fault flags.
//!
//! `--broker` twice serves a broker pair (`mdbroker --primary` and `--backup`): the worker
//! registers with both and speaks the pair's extension (majordomo's `pair` module).
//!
//! `--concurrency N` runs up to N requests at once and asks the broker for that credit
//! (majordomo's `credit` module; needs request ids): with `--work-ms`, which sleeps (I/O, not
//! CPU), one worker then serves about N / work requests per second.
//!
//! `--dialect rfc18` (or `majortomo`) speaks MDP/0.2, and `--partials N` streams each reply:
//! N PARTIALs, the k-th one frame `part <k>/<N>`, `--part-ms` apart, then the echo as the FINAL
//! (with the default 0.1 the parts go in front of the echo in one REPLY, as the broker bridges
//! a stream for a 0.1 client).
//!
//! Log lines (stable; each line about one broker names it, as `<broker>`):
//! `I: (<service>) worker ready as <id> on <broker>` after every READY,
//! `W: (<service>) cannot reach broker at <broker> (<reason>), retrying in <ms> ms`,
//! `W: (<service>) broker silent for <ms> ms, reconnecting in <ms> ms (<broker>)`,
//! `W: (<service>) lost the broker (<reason>), reconnecting in <ms> ms (<broker>)` (a send
//! failed), `W: (<service>) disconnected by broker, reconnecting (<broker>)`,
//! `W: (<service>) simulating a crash after <n> requests`,
//! `I: (<service>) sent DISCONNECT, worker stopped (<broker>)` on Ctrl-C, once per broker with
//! a connection. With a pair: `I: (<service>) broker <broker> is <STATE> <epoch> <role>` when a
//! broker shows its standing in a new connection or a changed one, and
//! `W: (<service>) request <id> from <broker> refused: <other broker> is <STATE> <epoch> <role>`
//! when a request is not run because the other broker outranks its sender (once per pair of
//! standings; the rest with `-v`). A refused request is not executed.
//! With `--log-executions`, two lines per request it executed:
//! `I: (<service>) executing request id=<id>` when the work starts, and
//! `I: (<service>) executed request id=<id> count=<n>` when it is done (after the work, before
//! the reply), `<n>` being how often this process has executed that id (`id=-` for requests
//! without an id; their count is per process). Tests and the tour count the `executed` lines to
//! prove a request ran exactly once; the tour draws the worker busy from each start line to its
//! end line. A request cut short (a crash, a kill) has a start line and no end line.

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use common::cli::{self, FaultArgs, Verbosity};
use common::fault::Fault;
use futures::stream::{FuturesUnordered, StreamExt};
use majordomo::protocol::Dialect;
use majordomo::rid::Rid;
use majordomo::{worker, Worker, WorkerOptions};
use std::collections::HashMap;
use std::time::Duration;

/// Majordomo echo worker: answers every request of its service with the request body.
#[derive(Debug, Parser)]
#[command(version, mut_arg("work_ms", |a| a.default_value("0")))]
struct Args {
    /// Broker endpoint; give it twice for the two brokers of a pair (`mdbroker --primary` and
    /// `--backup`): the worker registers with both.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5555", value_parser = common::endpoint::parse)]
    broker: Vec<String>,
    /// Service to offer.
    #[arg(long, default_value = "echo")]
    service: String,
    /// Heartbeat interval, in milliseconds (use the broker's) (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = worker::HEARTBEAT_INTERVAL.as_millis() as u64,
          value_parser = cli::ms())]
    heartbeat_ms: u64,
    /// Silent heartbeat intervals after which the broker counts as dead (1 to 100).
    #[arg(long, value_name = "N", default_value_t = worker::HEARTBEAT_LIVENESS, value_parser = cli::liveness())]
    liveness: u32,
    /// First delay before reconnecting to a dead broker, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = worker::RECONNECT_DELAY.as_millis() as u64,
          value_parser = cli::ms())]
    reconnect_ms: u64,
    /// Cap of the doubling reconnect delay, in milliseconds; never below --reconnect-ms
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = worker::RECONNECT_MAX.as_millis() as u64,
          value_parser = cli::ms())]
    reconnect_max_ms: u64,
    /// Print `I: (<service>) executing request id=<id>` when a request's work starts and
    /// `I: (<service>) executed request id=<id> count=<n>` when it is done (the tour and tests
    /// count these; the per-id counts are kept for the process's life).
    #[arg(long)]
    log_executions: bool,
    /// Do not ask the broker for request ids (READY without the id marker frame); not with a
    /// pair, whose news are keyed by ids, nor with --concurrency above 1.
    #[arg(long)]
    no_request_ids: bool,
    /// Requests run at once: above 1, READY asks the broker for this credit and that many
    /// requests are out at this worker, each running its --work-ms (a sleep, like waiting on
    /// I/O) side by side; replies go back as each is done, in any order. 1 is the Guide's
    /// worker (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = cli::ranged::<u32>(1..=u64::from(majordomo::credit::MAX)))]
    concurrency: u32,
    /// Protocol: `0.1` (7/MDP, the Guide's), `rfc18` (MDP/0.2 as RFC 18 writes it; also
    /// `0.2`) or `majortomo` (MDP/0.2 as the majortomo Python package frames it). A 0.2 worker
    /// serves one broker at --concurrency 1 and gets no request ids.
    #[arg(long, value_name = "DIALECT", default_value = "0.1")]
    dialect: Dialect,
    /// Stream each reply: this many PARTIALs (`part <k>/<N>`) before the echo (0 to 1000000).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = cli::ranged::<u32>(0..=1_000_000))]
    partials: u32,
    /// Pause before each PARTIAL, in milliseconds (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 0,
          value_parser = cli::ranged::<u64>(0..=86_400_000))]
    part_ms: u64,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let usage =
        |kind, why: String| -> ! { Args::command().bin_name("mdworker").error(kind, why).exit() };
    if let [first, second] = &args.broker[..] {
        if first == second {
            usage(
                ErrorKind::ValueValidation,
                format!("--broker {first} given twice: a pair is two brokers"),
            );
        }
        if args.no_request_ids {
            let why = "--no-request-ids: a worker of a broker pair always asks for request ids";
            usage(ErrorKind::ArgumentConflict, why.into());
        }
    }
    if args.dialect.streams() && (args.concurrency > 1 || args.broker.len() > 1) {
        let why = format!(
            "--dialect {}: an MDP/0.2 worker serves one broker at --concurrency 1",
            args.dialect
        );
        usage(ErrorKind::ArgumentConflict, why);
    }
    if args.concurrency > 1 && args.no_request_ids {
        let why =
            "--no-request-ids: a worker with --concurrency above 1 names its replies by request id";
        usage(ErrorKind::ArgumentConflict, why.into());
    }
    if args.broker.len() > worker::MAX_BROKERS {
        let why = format!(
            "--broker given {} times: a worker serves one broker or the two of a pair",
            args.broker.len()
        );
        usage(ErrorKind::TooManyValues, why);
    }
    args.verbosity.init_logging();
    args.curve.install();
    let options = WorkerOptions {
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        liveness: args.liveness,
        reconnect: Duration::from_millis(args.reconnect_ms),
        reconnect_max: Duration::from_millis(args.reconnect_max_ms.max(args.reconnect_ms)),
        request_ids: !args.no_request_ids,
        credit: args.concurrency,
        dialect: args.dialect,
    };
    let mut worker =
        Worker::with_brokers(&args.broker, &args.service, options).context("starting mdworker")?;
    let mut plan = args.faults.plan();
    let work = args.faults.work();
    let service = args.service.clone();
    let mut executions: HashMap<Option<Rid>, u64> = HashMap::new();
    let concurrency = args.concurrency as usize;
    let run = async {
        // The requests being worked on: each a sleep of its delay (simulated I/O), side by
        // side, up to --concurrency; a request is done when its sleep is.
        let mut running = FuturesUnordered::new();
        loop {
            let request = tokio::select! {
                request = worker.recv(), if running.len() < concurrency => match request {
                    Some(request) => request,
                    None => break,
                },
                Some(request) = running.next(), if !running.is_empty() => {
                    let request: majordomo::Request = request;
                    if args.log_executions {
                        let id = request.rid.as_ref().map_or("-".to_owned(), Rid::to_string);
                        let count = executions.entry(request.rid.clone()).or_default();
                        *count += 1;
                        tracing::info!("({service}) executed request id={id} count={count}");
                    }
                    worker.reply(request.reply_to, request.body).await?;
                    continue;
                }
            };
            let delay = match plan.on_request() {
                Fault::None => work,
                Fault::Overload(extra) => work.saturating_add(extra),
                Fault::Crash => {
                    let served = plan.served();
                    tracing::warn!("({service}) simulating a crash after {served} requests");
                    std::process::exit(1);
                }
            };
            if args.log_executions {
                let id = request.rid.as_ref().map_or("-".to_owned(), Rid::to_string);
                tracing::info!("({service}) executing request id={id}");
            }
            // The stream is part of the work: its PARTIALs go out as it runs.
            let parts = worker.parts(&request.reply_to)?;
            let (n, pause) = (args.partials, Duration::from_millis(args.part_ms));
            running.push(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                for k in 1..=n {
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    let part = common::Message::from_frames([format!("part {k}/{n}")]);
                    if parts.send(part).await.is_err() {
                        break; // the worker stopped; the reply fails below too
                    }
                }
                request
            });
        }
        anyhow::Ok(())
    };
    tokio::select! {
        result = run => result.context("worker stopped")?,
        () = common::shutdown::signal() => {}
    }
    worker.shutdown().await;
    Ok(())
}
