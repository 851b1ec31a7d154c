//! bstarcli — the Binary Star failover client: sends numbered requests, checks the echo.
//!
//! Log lines (stable): `I: server replied OK (<n>)` per answer, the failover lines of
//! `binary_star::client`, and at the end `I: summary sent=… answered=… failed=… retries=…`.

use binary_star::failover::{Policy, Strategy};
use binary_star::Client;
use clap::{Parser, ValueEnum};
use common::cli::{millis, Verbosity};
use common::report::Summary;
use common::{endpoint, Message};
use std::time::Duration;

/// How to fail over (see `binary_star::failover`).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StrategyArg {
    /// Switch at once and resend every --vote-ms while the other server settles.
    Eager,
    /// The Guide's client: wait out --timeout-ms, sleep --settle-ms, resend once.
    Guide,
}

/// Binary Star client: sends numbered requests to a bstarsrv pair and fails over between them.
#[derive(Debug, Parser)]
#[command(name = "bstarcli", version)]
struct Args {
    /// The primary server's frontend.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5001", value_parser = endpoint::parse)]
    primary: String,
    /// The backup server's frontend.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5002", value_parser = endpoint::parse)]
    backup: String,
    /// Send this many requests, then print the summary and exit (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// Pause after each answer, in milliseconds (the Guide sends one request a second).
    #[arg(long, value_name = "MS", default_value = "1000", value_parser = millis)]
    interval_ms: Duration,
    /// Milliseconds to wait for a reply before failing over.
    #[arg(long, value_name = "MS", default_value = "1000", value_parser = millis)]
    timeout_ms: Duration,
    /// Milliseconds the other server may need to take over (the Guide sleeps this long).
    #[arg(long, value_name = "MS", default_value = "2000", value_parser = millis)]
    settle_ms: Duration,
    /// Eager strategy: resend interval while the other server settles, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "250", value_parser = millis)]
    vote_ms: Duration,
    /// Failover strategy.
    #[arg(long, value_enum, default_value = "eager")]
    strategy: StrategyArg,
    /// Report a request failed after this many milliseconds without an answer
    /// (default: keep trying, like the Guide).
    #[arg(long, value_name = "MS", value_parser = millis)]
    give_up_ms: Option<Duration>,
    #[command(flatten)]
    verbosity: Verbosity,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    args.verbosity.init_logging();
    let policy = Policy {
        strategy: match args.strategy {
            StrategyArg::Eager => Strategy::Eager,
            StrategyArg::Guide => Strategy::Guide,
        },
        timeout: args.timeout_ms,
        settle: args.settle_ms,
        vote: args.vote_ms,
        give_up: args.give_up_ms,
    };
    tracing::info!("connecting to server at {}...", args.primary);
    let mut client = Client::new([args.primary.clone(), args.backup.clone()], policy);
    let mut summary = Summary::default();
    let shutdown = common::shutdown::signal();
    tokio::pin!(shutdown);
    let mut sequence = 0u64;
    while args.requests.is_none_or(|n| sequence < n) {
        sequence += 1;
        let body = sequence.to_string();
        summary.sent += 1;
        tokio::select! {
            () = &mut shutdown => {
                tracing::warn!("interrupted, request {sequence} abandoned");
                summary.failed += 1;
                break;
            }
            result = client.request(Message::from_frames([body.clone()])) => match result {
                Ok(reply) if reply.len() == 1 && reply.first().is_some_and(|f| f[..] == *body.as_bytes()) => {
                    summary.answered += 1;
                    tracing::info!("server replied OK ({body})");
                }
                Ok(reply) => {
                    summary.failed += 1;
                    tracing::error!("bad reply from server: {reply:?}");
                }
                Err(e) => {
                    summary.failed += 1;
                    tracing::error!("request {sequence} failed: {e}");
                }
            },
        }
        if args.requests.is_some_and(|n| sequence >= n) {
            break;
        }
        tokio::select! {
            () = &mut shutdown => {
                tracing::warn!("interrupted");
                break;
            }
            () = tokio::time::sleep(args.interval_ms) => {}
        }
    }
    summary.retries = client.retries();
    summary.log();
}
