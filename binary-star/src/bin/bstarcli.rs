//! bstarcli — the Binary Star failover client: sends numbered requests, checks the echo.
//!
//! Log lines (stable): `I: server replied OK (<n>)` per answer, the failover lines of
//! `binary_star::Client`, with `--log-requests` one `I: request seq=… outcome=… tries=…
//! latency_ms=…` per request, and at the end `I: summary sent=… answered=… failed=… retries=…`
//! (a request in flight at Ctrl-C counts failed). Exits non-zero exactly when a request failed.

use binary_star::failover::{Policy, Strategy};
use binary_star::Client;
use clap::{Parser, ValueEnum};
use common::cli::{self, RequestLog, Verbosity};
use common::{contract, endpoint, Message};
use std::process::ExitCode;
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
    /// Send this many requests, then print the summary and exit (default: until Ctrl-C)
    /// (1 to 1000000000).
    #[arg(long, value_name = "N", value_parser = cli::count::<u64>())]
    requests: Option<u64>,
    /// Pause after each answer, in milliseconds, 0 for none (the Guide sends one request a
    /// second) (0 to 86400000).
    #[arg(long, value_name = "MS", default_value = "1000", value_parser = cli::duration_ms_or_zero())]
    interval_ms: Duration,
    /// Milliseconds to wait for a reply before failing over (1 to 86400000).
    #[arg(long, value_name = "MS", default_value = "1000", value_parser = cli::duration_ms())]
    timeout_ms: Duration,
    /// Milliseconds the other server may need to take over (the Guide sleeps this long); 0
    /// resends at once (0 to 86400000).
    #[arg(long, value_name = "MS", default_value = "2000", value_parser = cli::duration_ms_or_zero())]
    settle_ms: Duration,
    /// Eager strategy: resend interval while the other server settles, in milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value = "250", value_parser = cli::duration_ms())]
    vote_ms: Duration,
    /// Failover strategy.
    #[arg(long, value_enum, default_value = "eager")]
    strategy: StrategyArg,
    /// Report a request failed after this many milliseconds without an answer
    /// (default: keep trying, like the Guide) (1 to 86400000).
    #[arg(long, value_name = "MS", value_parser = cli::duration_ms())]
    give_up_ms: Option<Duration>,
    #[command(flatten)]
    log: RequestLog,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    let shutdown = common::shutdown::signal();
    tokio::pin!(shutdown);
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
    let mut ledger = args.log.ledger();
    while args.requests.is_none_or(|n| ledger.summary().sent < n) {
        let seq = ledger.start(contract::now());
        let body = seq.to_string();
        let retries = client.retries();
        tokio::select! {
            () = &mut shutdown => {
                ledger.set_tries(seq, client.retries() - retries + 1);
                tracing::warn!("interrupted, request {seq} abandoned");
                break;
            }
            result = client.request(Message::from_frames([body.clone()])) => {
                ledger.set_tries(seq, client.retries() - retries + 1);
                let now = contract::now();
                match result {
                    Ok(reply) if reply.len() == 1 && reply.first().is_some_and(|f| f[..] == *body.as_bytes()) => {
                        ledger.answered(seq, now);
                        tracing::info!("server replied OK ({body})");
                    }
                    Ok(reply) => {
                        ledger.failed(seq, now);
                        tracing::error!("bad reply from server: {reply:?}");
                    }
                    Err(e) => {
                        ledger.failed(seq, now);
                        tracing::error!("request {seq} failed: {e}");
                    }
                }
            },
        }
        if args.requests.is_some_and(|n| seq >= n) {
            break;
        }
        if args.interval_ms.is_zero() {
            continue; // even a zero sleep waits for the timer's next tick (about 1 ms)
        }
        tokio::select! {
            () = &mut shutdown => {
                tracing::warn!("interrupted");
                break;
            }
            () = tokio::time::sleep(args.interval_ms) => {}
        }
    }
    ledger.finish(contract::now()).exit_code()
}
