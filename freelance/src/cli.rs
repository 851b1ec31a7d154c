//! Command-line pieces shared by the programs: [`RunArgs`] (flatten into a client's clap
//! parser), the exit status, and a Ctrl-C future armed at start-up.

use crate::driver::{drive, DriveOptions, DriveResult, ModelClient};
use clap::Args;
use common::cli::{RequestLog, Verbosity};
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

/// How a client program runs its requests.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Pause between two requests, in milliseconds (0: back to back, as in the Guide)
    /// (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = common::cli::ms_or_zero())]
    pub interval_ms: u64,
    /// Do not log each reply (failures, the rate and the summary are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Go on after a request FAILED instead of stopping at the first failure.
    #[arg(long)]
    pub keep_going: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: RequestLog,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub curve: common::cli::CurveClientArgs,
}

impl RunArgs {
    /// The driver options for `requests` requests.
    pub fn options(&self, requests: u64) -> DriveOptions {
        DriveOptions {
            requests,
            interval: Duration::from_millis(self.interval_ms),
            quiet: self.quiet,
            keep_going: self.keep_going,
            log_requests: self.log.log_requests,
        }
    }
}

/// The `--help` epilogue of a client: the log lines every client prints, then `extra` (the
/// model's own lines, one per line, indented by two spaces), then the exit status.
pub fn client_help(extra: &str) -> String {
    format!(
        "Log lines (stderr, stable):
  I: sending <n> requests                                          start (Ctrl-C handled from here)
  I: reply <n> [from <endpoint>]: <frames> [(after <k> attempts)]   each reply, unless --quiet
  E: request <n> FAILED: <why>                                      no server answered in time
  E: no server answered, aborting                                   unless --keep-going
  I: request seq=<n> outcome=<answered|failed> tries=<n> latency_ms=<n>   with --log-requests
  I: <answered> replies in <s> s: <rate> requests/s
  I: summary sent=<n> answered=<n> failed=<n> retries=<n>          retries: resends
{extra}
Exit status: 0 if no request FAILED, 1 if any did (a request in flight at Ctrl-C counts
FAILED, so sent = answered + failed always)."
    )
}

/// Exit status of a client run: failure if any request FAILED.
pub fn exit_code(outcome: &DriveResult) -> ExitCode {
    outcome.summary.exit_code()
}

/// Drives `requester` until done or `shutdown`; returns the exit status.
pub async fn run<R: ModelClient>(
    requester: &mut R,
    options: DriveOptions,
    shutdown: impl Future<Output = ()>,
) -> ExitCode {
    let outcome = drive(requester, &options, shutdown).await;
    exit_code(&outcome)
}
