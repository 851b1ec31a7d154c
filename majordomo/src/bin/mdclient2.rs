//! `mdclient2`: sends N requests pipelined through the asynchronous Majordomo client.
//!
//! Keeps up to `--window` requests in flight. A reply that does not come within
//! `--timeout-ms` of the previous one fails every request still in flight (the asynchronous
//! client does not retry). Ends with `I: summary sent=N answered=A failed=F retries=0` and
//! exits 0 only if every request was answered. Each request carries a request id (Guide 4.11,
//! `majordomo::rid`) unless `--no-request-ids` is given.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use common::report::Summary;
use common::Message;
use majordomo::client::{self, AsyncClient, ClientOptions};
use std::collections::HashSet;
use std::time::Duration;

/// Majordomo asynchronous client: N echo requests, many in flight.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Broker endpoint.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5555", value_parser = common::endpoint::parse)]
    broker: String,
    /// Service to ask.
    #[arg(long, default_value = "echo")]
    service: String,
    /// Number of requests.
    #[arg(long, value_name = "N", default_value_t = 10)]
    requests: u64,
    /// Most requests in flight at once (keep it under the broker's --max-queue).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    window: u64,
    /// How long to wait for the next reply before failing the requests in flight, in ms.
    #[arg(long, value_name = "MS", default_value_t = client::REQUEST_TIMEOUT.as_millis() as u64)]
    timeout_ms: u64,
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
    let options = ClientOptions {
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        retries: 1,
    };
    let mut summary = Summary::default();
    let run = async {
        let mut client = AsyncClient::connect(&args.broker, options)
            .await
            .context("connecting mdclient2")?
            .with_request_ids(!args.no_request_ids);
        let mut in_flight = HashSet::new();
        while summary.answered + summary.failed < args.requests {
            while summary.sent < args.requests && (in_flight.len() as u64) < args.window.max(1) {
                let body = format!("Hello world {}", summary.sent);
                client
                    .send(&args.service, Message::from_frames([body.clone()]))
                    .await?;
                in_flight.insert(body);
                summary.sent += 1;
            }
            match client.recv().await? {
                Some((_, reply)) => {
                    let body = reply
                        .first()
                        .map(|f| String::from_utf8_lossy(f).into_owned());
                    match body.filter(|b| reply.len() == 1 && in_flight.remove(b)) {
                        Some(_) => summary.answered += 1,
                        None => tracing::error!("unexpected reply {reply:?}"),
                    }
                }
                None => {
                    tracing::error!(
                        "no reply within {} ms, {} requests in flight failed",
                        args.timeout_ms,
                        in_flight.len()
                    );
                    summary.failed += in_flight.len() as u64;
                    in_flight.clear();
                }
            }
        }
        anyhow::Ok(())
    };
    let outcome = tokio::select! {
        result = run => result,
        () = common::shutdown::signal() => { tracing::info!("mdclient2 interrupted"); Ok(()) }
    };
    summary.log();
    outcome?;
    std::process::exit(if summary.answered == summary.sent {
        0
    } else {
        1
    });
}
