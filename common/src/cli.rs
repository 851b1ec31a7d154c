//! Command-line argument groups shared by the binaries (flatten them into a clap `Parser`).

use crate::fault::FaultPlan;
use crate::rng::Rng;
use clap::Args;
use std::time::Duration;

/// `-v/--verbose`.
#[derive(Debug, Clone, Args)]
pub struct Verbosity {
    /// Log every frame sent and received (D: lines).
    #[arg(short, long)]
    pub verbose: bool,
}

impl Verbosity {
    /// Installs the Guide-style logger at the chosen level.
    pub fn init_logging(&self) {
        crate::logging::init(self.verbose);
    }
}

/// `--log-requests`, flattened into every client (lpclient, mdclient, mdclient2, ticlient,
/// bstarcli, flclient1-3).
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct RequestLog {
    /// Print one `I: request …` line per request when its outcome is known (the tour's report
    /// reads these).
    #[arg(long)]
    pub log_requests: bool,
}

impl RequestLog {
    /// The ledger a client counts its requests in, logging request lines if asked to.
    pub fn ledger(&self) -> crate::report::Ledger {
        crate::report::Ledger::new(self.log_requests)
    }
}

/// Simulated work and faults for servers and workers.
#[derive(Debug, Clone, Args)]
pub struct FaultArgs {
    /// Milliseconds of simulated work per request (the Guide's servers sleep 1 s).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub work_ms: u64,
    /// Crash (exit at once, without answering) on the request after the first N.
    #[arg(long, value_name = "N")]
    pub crash_after: Option<u64>,
    /// Answer every request after the first N only after --overload-ms (simulated CPU overload).
    #[arg(long, value_name = "N")]
    pub overload_after: Option<u64>,
    /// Delay of an overloaded answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub overload_ms: u64,
    /// Misbehave at random like the Guide's servers (1 request in 10 crashes, 1 in 10 is slow).
    #[arg(long)]
    pub random_faults: bool,
    /// Seed for --random-faults, to replay the same run (default: from the clock).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
}

impl FaultArgs {
    /// The fault plan these flags describe.
    pub fn plan(&self) -> FaultPlan {
        let rng = self
            .random_faults
            .then(|| self.seed.map_or_else(Rng::from_entropy, Rng::seeded));
        FaultPlan::none()
            .crash_after(self.crash_after)
            .overload_after(self.overload_after, Duration::from_millis(self.overload_ms))
            .random(rng)
    }

    /// The simulated work per request.
    pub fn work(&self) -> Duration {
        Duration::from_millis(self.work_ms)
    }
}

/// Parses a millisecond count into a [`Duration`] (for `value_parser`).
pub fn millis(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{s:?} is not a whole number of milliseconds"))
}
