//! `mdclient`: sends N requests one at a time through the synchronous Majordomo client.
//!
//! Each request is retried on a fresh socket after `--timeout-ms` of silence, `--retries`
//! attempts in all. Logs `I: request <i> answered after <k> attempts` when retries were needed,
//! `W: no reply from <service> within <ms> ms, retrying (k/n)` and
//! `E: request <i> failed: <reason>`; with `--log-requests` one
//! `I: request seq=… outcome=… tries=… latency_ms=…` per request. Ends with the rate,
//! `I: <answered> replies in <s> s: <rate> requests/s`, then the summary line
//! `I: summary sent=N answered=A failed=F retries=R` (a request in flight at Ctrl-C counts
//! failed). Exits non-zero exactly when a request failed.
//!
//! Each request carries a request id (Guide 4.11, `majordomo::rid`), the same on every retry,
//! so the broker runs it once however often it is retried; `--no-request-ids` sends none.
//!
//! With `--broker` given twice (a broker pair, primary first) requests fail over between the
//! two (`majordomo::client`, "A broker pair"): `--retries` then counts turns, `--settle-ms` is
//! the time the other broker may need to take over, request ids are always on
//! (`--no-request-ids` is refused), and each switch logs `W: no reply from <endpoint> within
//! <ms> ms, failing over to <other>` (or `W: request to <endpoint> failed (<why>), failing over
//! to <other>`), then `I: answered by <endpoint> after failover (<ms> ms)`.

use anyhow::Context;
use clap::Parser;
use common::cli::{self, RequestLog, Verbosity};
use common::report::rate_line;
use common::{contract, Message};
use majordomo::client::ClientArgs;
use std::process::ExitCode;
use std::time::Duration;

/// Majordomo synchronous client: N echo requests, one after the other.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// Service to ask.
    #[arg(long, default_value = "echo")]
    service: String,
    /// Number of requests (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = cli::count::<u64>())]
    requests: u64,
    /// Pause between requests, in milliseconds, 0 for none (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = cli::ms_or_zero())]
    interval_ms: u64,
    /// Stop at the first request that gets no reply (the Guide's behaviour).
    #[arg(long)]
    stop_on_failure: bool,
    /// Send no request ids (by default every request carries one, kept across its retries, so
    /// the broker runs it once: see the README's "Request ids"). Refused with two brokers.
    #[arg(long)]
    no_request_ids: bool,
    #[command(flatten)]
    log: RequestLog,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    if args.no_request_ids && args.client.brokers.pair()?.is_some() {
        anyhow::bail!(
            "--no-request-ids cannot be used with two brokers: a failover without request ids \
             could run a request twice"
        );
    }
    let shutdown = common::shutdown::signal();
    tokio::pin!(shutdown);
    let mut client = args
        .client
        .connect()
        .context("starting mdclient")?
        .with_request_ids(!args.no_request_ids);
    let mut ledger = args.log.ledger();
    let started = contract::now();
    for i in 0..args.requests {
        if i > 0 && args.interval_ms > 0 {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(Duration::from_millis(args.interval_ms)) => {}
            }
        }
        let body = format!("Hello world {i}");
        let seq = ledger.start(contract::now());
        let resends = client.resends();
        let result = tokio::select! {
            biased;
            () = &mut shutdown => {
                ledger.set_tries(seq, client.resends() - resends + 1);
                tracing::info!("mdclient interrupted");
                break;
            }
            result = client.send(&args.service, Message::from_frames([body.clone()])) => result,
        };
        let attempts = client.resends() - resends + 1;
        ledger.set_tries(seq, attempts);
        match result {
            Ok(reply) if reply == Message::from_frames([body]) => {
                ledger.answered(seq, contract::now());
                if attempts > 1 {
                    tracing::info!("request {i} answered after {attempts} attempts");
                }
            }
            Ok(reply) => {
                ledger.failed(seq, contract::now());
                tracing::error!("request {i} failed: wrong reply {reply:?}");
            }
            Err(error) => {
                ledger.failed(seq, contract::now());
                tracing::error!("request {i} failed: {error}");
                if args.stop_on_failure {
                    break;
                }
            }
        }
    }
    tracing::info!(
        "{}",
        rate_line(ledger.summary().answered, contract::now() - started)
    );
    Ok(ledger.finish(contract::now()).exit_code())
}
