//! `lpclient`: the Lazy Pirate client. Sends numbered requests, retries on a fresh socket,
//! abandons after `--retries` tries, ends with the summary line.
//!
//! Log lines (a stable contract): `I: server replied OK (N)`, `E: malformed reply from server: …`,
//! `W: no response from server, retrying…`, `W: reconnecting to server…`,
//! `E: server seems to be offline, abandoning`,
//! `I: summary sent=… answered=… failed=… retries=…` (always last; a request in flight at Ctrl-C
//! counts failed), and with `--log-requests` one `I: request seq=… outcome=… tries=…
//! latency_ms=…` per request. Exit code non-zero exactly when a request failed.

use clap::Parser;
use common::cli::{self, RequestLog, Verbosity};
use lazy_pirate::client_loop::{run_sequence, RunOptions};
use lazy_pirate::policy::{REQUEST_RETRIES, REQUEST_TIMEOUT};
use lazy_pirate::{LazyPirateClient, ReplyCheck, RetryPolicy};
use std::process::ExitCode;
use std::time::Duration;

/// Lazy Pirate client: request-reply with timeouts, retries on a fresh socket, and giving up.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Server endpoint to connect to.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5555", value_parser = common::endpoint::parse)]
    server: String,
    /// Stop after this many requests (default: until Ctrl-C or the server is abandoned)
    /// (1 to 1000000000).
    #[arg(long, value_name = "N", value_parser = cli::count::<u64>())]
    requests: Option<u64>,
    /// Milliseconds one try waits for the reply (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = REQUEST_TIMEOUT.as_millis() as u64, value_parser = cli::ms())]
    timeout_ms: u64,
    /// Tries per request before abandoning, the first send included (the Guide's
    /// REQUEST_RETRIES) (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = REQUEST_RETRIES, value_parser = cli::tries())]
    retries: u32,
    /// Milliseconds to pause between a reply and the next request, 0 for none
    /// (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = cli::ms_or_zero())]
    interval_ms: u64,
    #[command(flatten)]
    log: RequestLog,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

// One thread: each program is a single loop, and on a small shared machine a thread pool only
// adds cross-thread wake-ups (spbench measured about half the queue's CPU per request this way).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    let policy = RetryPolicy {
        timeout: Duration::from_millis(args.timeout_ms),
        retries: args.retries,
        check: ReplyCheck::Echo,
    };
    let mut client = LazyPirateClient::new(args.server, policy);
    let options = RunOptions {
        requests: args.requests,
        interval: Duration::from_millis(args.interval_ms),
    };
    let mut ledger = args.log.ledger();
    let shutdown = common::shutdown::signal();
    run_sequence(&mut client, options, &mut ledger, shutdown)
        .await
        .exit_code()
}
