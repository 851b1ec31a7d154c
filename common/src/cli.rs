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

/// The ingress guard's limits, shown in `--help` of every server (see [`crate::guard`]).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ingress guard (every bound tcp:// endpoint)")]
pub struct GuardArgs {
    /// Close a connection that sends a frame or message larger than this many bytes (each
    /// frame counts 64 bytes on top of its body).
    #[arg(long, value_name = "BYTES", default_value_t = crate::guard::DEFAULT_MAX_MSG_BYTES)]
    pub max_msg_bytes: u64,
    /// Refuse a connection while this many are open on the same endpoint.
    #[arg(long, value_name = "N", default_value_t = crate::guard::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Close a connection whose ZMTP greeting and READY do not arrive within this many ms.
    #[arg(long, value_name = "MS", default_value_t = crate::guard::DEFAULT_HANDSHAKE.as_millis() as u64)]
    pub handshake_ms: u64,
    /// Accept connections only from this address block (repeatable; default: any address).
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<crate::guard::allow::Cidr>,
    /// UNSAFE, for benchmarking only: bind zeromq directly, so one malformed frame header can
    /// abort the process.
    #[arg(long)]
    pub no_guard: bool,
}

impl GuardArgs {
    /// The guard configuration these flags describe.
    pub fn config(&self) -> crate::guard::GuardConfig {
        crate::guard::GuardConfig {
            enabled: !self.no_guard,
            max_msg_bytes: self.max_msg_bytes,
            max_connections: self.max_connections,
            handshake: Duration::from_millis(self.handshake_ms),
            allow: self.allow.clone(),
        }
    }

    /// Makes every later bind in this process use these limits (call before binding), and
    /// raises the descriptor limit so `--max-connections` can be reached on every endpoint.
    pub fn install(&self) {
        crate::guard::install(self.config());
        crate::guard::raise_descriptor_limit();
    }
}
