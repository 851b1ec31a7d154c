//! Command-line argument groups shared by the binaries (flatten them into a clap `Parser`), and
//! the ranges every numeric flag is checked against.
//!
//! # Ranges
//!
//! Every numeric flag takes its value parser from here, so a typo is a clear start-up error
//! (`invalid value '0' for '--heartbeat-ms <MS>': 0 is not in 1..=86400000`) and never a
//! panic, a busy loop or a silent no-op, and the same kind of value has the same range in
//! every program. Each flag's help ends with its range, `(MIN to MAX)`; the tour's flag walk
//! (`tour/tests/it/flags.rs`) checks that, and that the range is the one enforced.
//!
//! | parser | range | for |
//! |---|---|---|
//! | [`ms`], [`duration_ms`] | 1 to [`MS_MAX`] (a day) | intervals, timeouts, delays |
//! | [`ms_or_zero`], [`duration_ms_or_zero`] | 0 to [`MS_MAX`] | pauses and simulated work, where 0 means none |
//! | [`count`] | 1 to [`COUNT_MAX`] | requests, rounds, runs |
//! | [`count_or_zero`] | 0 to [`COUNT_MAX`] | counts where 0 means something (said in the help) |
//! | [`in_flight`] | 1 to [`IN_FLIGHT_MAX`] | requests under way or held at once |
//! | [`parallel`] | 1 to [`PARALLEL_MAX`] | connections or workers run side by side |
//! | [`liveness`] | 1 to [`LIVENESS_MAX`] | missed heartbeats before a peer is dead |
//! | [`tries`] | 1 to [`TRIES_MAX`] | attempts per request |
//! | [`bytes()`] | 0 to [`BYTES_MAX`] | byte thresholds |
//! | [`budget_bytes`] | 256 to [`BYTES_MAX`] | memory budgets, which must hold something |
//! | [`seed`] | any `u64` | seeds (an identifier, not a quantity) |
//!
//! A day bounds every time: `now + interval`, `interval × liveness` and the back-offs stay far
//! from overflow (the libraries saturate all the same, see [`crate::contract::saturating_add`]).

use crate::fault::FaultPlan;
use crate::rng::Rng;
use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::Args;
use std::ops::RangeInclusive;
use std::time::Duration;

pub use crate::ranges::{
    BYTES_MAX, COUNT_MAX, IN_FLIGHT_MAX, LIVENESS_MAX, MS_MAX, PARALLEL_MAX, TRIES_MAX,
};

/// A `T` within `range` (the other parsers are this with a name).
pub fn ranged<T: TryFrom<u64>>(range: RangeInclusive<u64>) -> RangedU64ValueParser<T> {
    RangedU64ValueParser::new().range(range)
}

/// Milliseconds of an interval, timeout or delay: 1 to [`MS_MAX`]. Zero is refused: a zero
/// heartbeat or timeout would spin or give up at once.
pub fn ms() -> RangedU64ValueParser<u64> {
    ranged(1..=MS_MAX)
}

/// Milliseconds of a pause or of simulated work, where 0 means none: 0 to [`MS_MAX`].
pub fn ms_or_zero() -> RangedU64ValueParser<u64> {
    ranged(0..=MS_MAX)
}

/// [`ms`] as a [`Duration`].
pub fn duration_ms() -> impl TypedValueParser<Value = Duration> {
    ms().map(Duration::from_millis)
}

/// [`ms_or_zero`] as a [`Duration`].
pub fn duration_ms_or_zero() -> impl TypedValueParser<Value = Duration> {
    ms_or_zero().map(Duration::from_millis)
}

/// A count of requests, rounds or runs: 1 to [`COUNT_MAX`] (zero would do nothing).
pub fn count<T: TryFrom<u64>>() -> RangedU64ValueParser<T> {
    ranged(1..=COUNT_MAX)
}

/// A count where 0 means something the flag's help says: 0 to [`COUNT_MAX`].
pub fn count_or_zero<T: TryFrom<u64>>() -> RangedU64ValueParser<T> {
    ranged(0..=COUNT_MAX)
}

/// Requests under way or held at once: 1 to [`IN_FLIGHT_MAX`].
pub fn in_flight<T: TryFrom<u64>>() -> RangedU64ValueParser<T> {
    ranged(1..=IN_FLIGHT_MAX)
}

/// Connections or workers side by side: 1 to [`PARALLEL_MAX`].
pub fn parallel<T: TryFrom<u64>>() -> RangedU64ValueParser<T> {
    ranged(1..=PARALLEL_MAX)
}

/// Missed heartbeats before a peer counts as dead: 1 to [`LIVENESS_MAX`].
pub fn liveness() -> RangedU64ValueParser<u32> {
    ranged(1..=u64::from(LIVENESS_MAX))
}

/// Attempts per request, the first included: 1 to [`TRIES_MAX`].
pub fn tries() -> RangedU64ValueParser<u32> {
    ranged(1..=u64::from(TRIES_MAX))
}

/// A byte threshold: 0 to [`BYTES_MAX`].
pub fn bytes<T: TryFrom<u64>>() -> RangedU64ValueParser<T> {
    ranged(0..=BYTES_MAX)
}

/// A memory budget in bytes: 256 (room for one small request with its bookkeeping) to
/// [`BYTES_MAX`].
pub fn budget_bytes<T: TryFrom<u64>>() -> RangedU64ValueParser<T> {
    ranged(256..=BYTES_MAX)
}

/// A seed: any `u64` (stated, like every range, in the help: 0 to 18446744073709551615).
pub fn seed() -> RangedU64ValueParser<u64> {
    ranged(0..=u64::MAX)
}

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
    /// Milliseconds of simulated work per request, 0 for none (the Guide's servers sleep 1 s)
    /// (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = ms_or_zero())]
    pub work_ms: u64,
    /// Crash (exit at once, without answering) on the request after the first N; 0 crashes on
    /// the first (0 to 1000000000).
    #[arg(long, value_name = "N", value_parser = count_or_zero::<u64>())]
    pub crash_after: Option<u64>,
    /// Answer every request after the first N only after --overload-ms (simulated CPU
    /// overload); 0 overloads every request (0 to 1000000000).
    #[arg(long, value_name = "N", value_parser = count_or_zero::<u64>())]
    pub overload_after: Option<u64>,
    /// Delay of an overloaded answer, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = ms())]
    pub overload_ms: u64,
    /// Misbehave at random like the Guide's servers (1 request in 10 crashes, 1 in 10 is slow).
    #[arg(long)]
    pub random_faults: bool,
    /// Seed for --random-faults, to replay the same run (default: from the clock)
    /// (0 to 18446744073709551615).
    #[arg(long, value_name = "S", value_parser = seed())]
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

/// The ingress guard's limits, shown in `--help` of every server (see [`crate::guard`]).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ingress guard (every bound tcp:// endpoint)")]
pub struct GuardArgs {
    /// Close a connection that sends a frame or message larger than this many bytes (each
    /// frame counts 64 bytes on top of its body) (1024 to 1073741824).
    #[arg(long, value_name = "BYTES", default_value_t = crate::guard::DEFAULT_MAX_MSG_BYTES,
          value_parser = ranged::<u64>(crate::guard::MSG_BYTES_RANGE))]
    pub max_msg_bytes: u64,
    /// Refuse a connection while this many are open on the same endpoint (1 to 20000).
    #[arg(long, value_name = "N", default_value_t = crate::guard::DEFAULT_MAX_CONNECTIONS,
          value_parser = ranged::<usize>(crate::guard::CONNECTIONS_RANGE))]
    pub max_connections: usize,
    /// Close a connection whose ZMTP greeting and READY do not arrive within this many ms
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = crate::guard::DEFAULT_HANDSHAKE.as_millis() as u64,
          value_parser = ms())]
    pub handshake_ms: u64,
    /// Accept connections only from this address block (repeatable; default: any address).
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<crate::guard::allow::Cidr>,
    /// UNSAFE, for benchmarking only: bind zeromq directly, so one malformed frame header can
    /// abort the process.
    #[arg(long)]
    pub no_guard: bool,
    /// Speak CURVE (encrypted, authenticated) on every tcp:// endpoint with this secret key
    /// file (a zcert NAME_secret file, e.g. from zkeygen); clients need its public key.
    #[arg(long, value_name = "FILE", value_parser = curve_secret)]
    pub curve_secret: Option<crate::curve::keys::KeyPair>,
    /// With --curve-secret: admit only clients whose public key has a zcert file in DIR
    /// (re-read when DIR changes).
    #[arg(long, value_name = "DIR", requires = "curve_secret")]
    pub curve_allow: Option<std::path::PathBuf>,
}

/// The CURVE client side, flattened into every binary that connects out (see
/// [`crate::curve::connect`]): with `--curve-server-key`, every `tcp://` endpoint it connects
/// to must be a CURVE server holding that key's secret.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "CURVE client (every tcp:// endpoint this program connects to)")]
pub struct CurveClientArgs {
    /// Speak CURVE (encrypted, authenticated) to every tcp:// endpoint this program connects
    /// to; the server must hold the secret of KEY: 40 Z85 characters, or the server's public
    /// zcert file (as zkeygen writes it). A server with another key is
    /// refused with an E: line; there is no fallback to NULL.
    // Z85 text may start with '-' (a fifth of random keys do): still a value, not a flag.
    #[arg(long, value_name = "KEY", value_parser = curve_server_key, allow_hyphen_values = true)]
    pub curve_server_key: Option<crate::curve::keys::PublicKey>,
    /// With --curve-server-key: this program's own key pair (a zcert NAME_secret file, e.g.
    /// from zkeygen), so a server's --curve-allow can admit it. Without it a fresh pair is made
    /// at start-up (its public key is logged), which only servers without --curve-allow admit.
    #[arg(long, value_name = "FILE", value_parser = curve_secret, requires = "curve_server_key")]
    pub curve_key: Option<crate::curve::keys::KeyPair>,
}

/// `--curve-server-key KEY`: a file holding a public key if KEY names one, else Z85 text.
fn curve_server_key(text: &str) -> Result<crate::curve::keys::PublicKey, String> {
    let path = std::path::Path::new(text);
    if path.is_file() {
        return crate::curve::keys::read_public(path).map_err(|e| e.to_string());
    }
    crate::curve::keys::PublicKey::from_z85(text)
        .map_err(|_| "neither a zcert file nor a Z85 key of 40 characters".to_owned())
}

impl CurveClientArgs {
    /// The client configuration these flags describe (`None`: NULL, as without CURVE).
    pub fn config(&self) -> Option<crate::curve::connect::ClientConfig> {
        let server = self.curve_server_key?;
        let pair = self.curve_key.clone().unwrap_or_else(|| {
            let pair = crate::curve::keys::KeyPair::generate();
            tracing::info!(
                "curve: no --curve-key, using a fresh key pair for this run, public key {}",
                pair.public
            );
            pair
        });
        Some(crate::curve::connect::ClientConfig {
            pair,
            server,
            max_msg_bytes: crate::guard::DEFAULT_MAX_MSG_BYTES,
        })
    }

    /// Makes every later connect in this process use these flags (call after logging is set
    /// up, before connecting).
    pub fn install(&self) {
        crate::curve::connect::install(self.config());
    }
}

/// `--curve-secret FILE`: the key pair, read at start-up so a bad file is a clear error.
fn curve_secret(path: &str) -> Result<crate::curve::keys::KeyPair, String> {
    crate::curve::keys::read_secret(std::path::Path::new(path)).map_err(|e| e.to_string())
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
            curve: self
                .curve_secret
                .clone()
                .map(|pair| crate::guard::CurveConfig {
                    pair,
                    allow: self.curve_allow.clone(),
                }),
        }
    }

    /// Makes every later bind in this process use these limits (call before binding), and
    /// raises the descriptor limit so `--max-connections` can be reached on every endpoint.
    pub fn install(&self) {
        crate::guard::install(self.config());
        crate::guard::raise_descriptor_limit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Both {
        #[command(flatten)]
        faults: FaultArgs,
        #[command(flatten)]
        guard: GuardArgs,
    }

    fn parse(args: &[&str]) -> Result<Both, String> {
        Both::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_lie_inside_their_ranges() {
        let both = parse(&[]).expect("defaults parse");
        assert_eq!(both.faults.work_ms, 1000);
        assert_eq!(both.guard.config(), crate::guard::GuardConfig::default());
    }

    #[test]
    fn a_value_outside_its_range_is_refused_naming_the_flag() {
        for (flag, value) in [
            ("--handshake-ms", "0"),
            ("--handshake-ms", "86400001"),
            ("--overload-ms", "0"),
            ("--max-msg-bytes", "1023"),
            ("--max-msg-bytes", "18446744073709551615"),
            ("--max-connections", "0"),
            ("--crash-after", "1000000001"),
            ("--seed", "18446744073709551616"),
        ] {
            let error = parse(&[flag, value]).expect_err(flag);
            assert!(
                error.contains(&format!("invalid value '{value}' for '{flag} <")),
                "{flag} {value}: {error}"
            );
        }
    }

    #[test]
    fn zero_is_accepted_where_it_means_something() {
        let both = parse(&[
            "--work-ms",
            "0",
            "--crash-after",
            "0",
            "--overload-after",
            "0",
        ])
        .expect("zeros that mean none / the first request");
        assert_eq!(both.faults.work(), Duration::ZERO);
        assert_eq!(both.faults.crash_after, Some(0));
        let both = parse(&[
            "--seed",
            "18446744073709551615",
            "--max-msg-bytes",
            "1073741824",
        ])
        .expect("the largest values");
        assert_eq!(both.faults.seed, Some(u64::MAX));
        assert_eq!(both.guard.max_msg_bytes, 1 << 30);
    }

    #[test]
    fn the_curve_server_key_is_z85_text_or_a_zcert_file_and_the_own_key_needs_it() {
        #[derive(Debug, Parser)]
        struct Client {
            #[command(flatten)]
            curve: CurveClientArgs,
        }
        let parse = |args: &[&str]| {
            Client::try_parse_from(std::iter::once("c").chain(args.iter().copied()))
                .map_err(|e| e.to_string())
        };
        let pair = crate::curve::keys::KeyPair::generate();
        let dir = std::env::temp_dir().join(format!("zcli-{}", crate::ids::token()));
        std::fs::create_dir(&dir).unwrap();
        let (public, secret) = pair.write_files(&dir, "server").unwrap();
        let z85 = pair.public.to_z85();
        let by_text = parse(&["--curve-server-key", &z85]).expect("Z85 text");
        assert_eq!(by_text.curve.curve_server_key, Some(pair.public));
        // A Z85 key may start with '-' and is still the flag's value.
        let dashed = std::iter::repeat_with(|| crate::curve::keys::KeyPair::generate().public)
            .find(|key| key.to_z85().starts_with('-'))
            .unwrap();
        let by_dashed = parse(&["--curve-server-key", &dashed.to_z85()]).expect("leading '-'");
        assert_eq!(by_dashed.curve.curve_server_key, Some(dashed));
        let by_file = parse(&["--curve-server-key", public.to_str().unwrap()]).expect("file");
        assert_eq!(by_file.curve.curve_server_key, Some(pair.public));
        let config = parse(&[
            "--curve-server-key",
            &z85,
            "--curve-key",
            secret.to_str().unwrap(),
        ])
        .expect("own key")
        .curve
        .config()
        .expect("CURVE on");
        assert_eq!(
            (config.server, config.pair.public),
            (pair.public, pair.public)
        );
        let error = parse(&["--curve-server-key", "not a key"]).expect_err("garbage");
        assert!(
            error.contains("neither a zcert file nor a Z85 key"),
            "{error}"
        );
        let error = parse(&["--curve-key", secret.to_str().unwrap()]).expect_err("alone");
        assert!(error.contains("--curve-server-key"), "{error}");
        assert!(
            parse(&[]).unwrap().curve.config().is_none(),
            "NULL without flags"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_duration_parsers_check_then_convert() {
        #[derive(Debug, Parser)]
        struct Timing {
            #[arg(long, value_parser = duration_ms())]
            every: Duration,
            #[arg(long, value_parser = duration_ms_or_zero())]
            pause: Duration,
        }
        let t = Timing::try_parse_from(["t", "--every", "250", "--pause", "0"]).expect("valid");
        assert_eq!(
            (t.every, t.pause),
            (Duration::from_millis(250), Duration::ZERO)
        );
        let error = Timing::try_parse_from(["t", "--every", "0", "--pause", "0"])
            .expect_err("zero interval")
            .to_string();
        assert!(error.contains("0 is not in 1..=86400000"), "{error}");
    }
}
