//! `mdclient`: sends N requests one at a time through the synchronous Majordomo client.
//!
//! Each request is retried on a fresh socket after `--timeout-ms` of silence, `--retries`
//! attempts in all. Ends with the summary line
//! `I: summary sent=N answered=A failed=F retries=R` and exits 0 only if every request was
//! answered. Also logs `I: request <i> answered after <k> attempts` when retries were needed,
//! `W: no reply from <service> within <ms> ms, retrying (k/n)` and
//! `E: request <i> failed: <reason>`.
//!
//! Each request carries a request id (Guide 4.11, `majordomo::rid`), the same on every retry,
//! so the broker runs it once however often it is retried; `--no-request-ids` sends none.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use common::report::Summary;
use common::Message;
use majordomo::client::ClientArgs;
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
    /// Number of requests.
    #[arg(long, value_name = "N", default_value_t = 10)]
    requests: u64,
    /// Pause between requests, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    interval_ms: u64,
    /// Stop at the first request that gets no reply (the Guide's behaviour).
    #[arg(long)]
    stop_on_failure: bool,
    /// Send no request ids (by default every request carries one, kept across its retries, so
    /// the broker runs it once: see the README's "Request ids").
    #[arg(long)]
    no_request_ids: bool,
    #[command(flatten)]
    verbosity: Verbosity,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    let mut client = args
        .client
        .connect()
        .context("starting mdclient")?
        .with_request_ids(!args.no_request_ids);
    let mut summary = Summary::default();
    let run = async {
        for i in 0..args.requests {
            if i > 0 && args.interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
            }
            let body = format!("Hello world {i}");
            summary.sent += 1;
            let resends = client.resends();
            match client
                .send(&args.service, Message::from_frames([body.clone()]))
                .await
            {
                Ok(reply) if reply == Message::from_frames([body]) => {
                    summary.answered += 1;
                    let attempts = client.resends() - resends + 1;
                    if attempts > 1 {
                        tracing::info!("request {i} answered after {attempts} attempts");
                    }
                }
                Ok(reply) => {
                    summary.failed += 1;
                    tracing::error!("request {i} failed: wrong reply {reply:?}");
                }
                Err(error) => {
                    summary.failed += 1;
                    tracing::error!("request {i} failed: {error}");
                    if args.stop_on_failure {
                        break;
                    }
                }
            }
            summary.retries = client.resends();
        }
    };
    tokio::select! {
        () = run => {}
        () = common::shutdown::signal() => tracing::info!("mdclient interrupted"),
    }
    summary.retries = client.resends();
    summary.log();
    std::process::exit(if summary.answered == summary.sent {
        0
    } else {
        1
    });
}
