//! `ticlient`: the Guide's Titanic client — hand a request to Titanic, poll for the reply, close
//! it — with `--count` and `--concurrency` for load.
//!
//! Log lines (stable): `I: request UUID <uuid>` once Titanic has stored a request,
//! `I: reply to <uuid>: <text>` when its reply is there, `I: closed <uuid>` once the close is
//! confirmed,
//! `E: <uuid>: reply does not match the request …` (with `--verify`),
//! `E: request <n>: titanic.<service> answered 400 …`, `I: interrupted` on Ctrl-C,
//! with `--log-requests` one `I: request seq=… outcome=… tries=… latency_ms=…` per request,
//! and always last `I: summary sent=<n> answered=<n> failed=<n> retries=<n>`.
//! A request still under way at Ctrl-C counts failed. Exit status 1 if any request failed
//! (a `400`, a wrong reply, or interrupted).

use anyhow::Context;
use clap::Parser;
use common::cli::{self, RequestLog, Verbosity};
use common::contract;
use majordomo::{client, BrokerArgs, ClientOptions};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use titanic::client_loop::{Load, TiClientOptions};

/// Titanic client: sends requests through Titanic and waits for their replies.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    brokers: BrokerArgs,
    /// The service the requests are for.
    #[arg(long, default_value = "echo")]
    service: String,
    /// Request body (with --count > 1, " #N" is appended so each request is distinct).
    #[arg(long, default_value = "Hello world")]
    body: String,
    /// Requests to send in all (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = cli::count::<u64>())]
    count: u64,
    /// Requests under way at once (each with its own connection) (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = cli::parallel::<u64>())]
    concurrency: u64,
    /// Wait between polls for a reply, and before retrying after 500 or silence, in ms
    /// (the Guide's ticlient waits 5 s) (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 5000, value_parser = cli::ms())]
    poll_ms: u64,
    /// Wait before the first poll for a reply, in milliseconds; 0 polls at once
    /// (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = cli::ms_or_zero())]
    first_poll_ms: u64,
    /// Timeout of each Majordomo attempt, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = client::REQUEST_TIMEOUT.as_millis() as u64,
          value_parser = cli::ms())]
    timeout_ms: u64,
    /// Majordomo attempts per call before it counts as unanswered (and is retried later)
    /// (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = client::REQUEST_RETRIES, value_parser = cli::tries())]
    retries: u32,
    /// Check that each reply equals its request (for an echo service); a mismatch fails it.
    #[arg(long)]
    verify: bool,
    /// Send no request ids (by default each request keeps one id over all its retries, so a
    /// retried titanic.request gets the UUID stored the first time).
    #[arg(long)]
    no_request_ids: bool,
    #[command(flatten)]
    log: RequestLog,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    let shutdown = common::shutdown::signal();
    let load = Arc::new(Load {
        brokers: args.brokers.broker.clone(),
        service: args.service,
        body: args.body,
        count: args.count,
        concurrency: args.concurrency,
        first_poll: Duration::from_millis(args.first_poll_ms),
        verify: args.verify,
        options: TiClientOptions {
            mdp: ClientOptions {
                timeout: Duration::from_millis(args.timeout_ms),
                retries: args.retries,
            },
            poll: Duration::from_millis(args.poll_ms),
            request_ids: !args.no_request_ids,
            pair: args.brokers.pair_options(),
        },
    });
    let ledger = Arc::new(Mutex::new(args.log.ledger()));
    tokio::select! {
        result = titanic::client_loop::run_load(load, Arc::clone(&ledger)) => {
            result.context("ticlient")?;
        }
        () = shutdown => tracing::info!("interrupted"),
    }
    let summary = ledger
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .finish(contract::now());
    Ok(summary.exit_code())
}
