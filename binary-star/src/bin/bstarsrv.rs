//! bstarsrv — a Binary Star server: an echo service inside the Binary Star reactor.
//!
//! Run one as primary and one as backup, in any order: `bstarsrv -p` and `bstarsrv -b`.
//! The log lines are listed in the crate's `README.md` ("Log lines"). Exit status: 0 after
//! Ctrl-C, 2 after a split-brain error (dual actives / dual passives, only with
//! `--on-conflict abort`), 1 if a socket cannot be bound.
//!
//! With `--log-replies`, one `I: answered a client request (count=<n>)` line per reply handed to
//! the frontend (the service runs only while ACTIVE): a stable line, so that the tour's chaos
//! mode can tell which server answered clients when (its `one-server-answers` promise).

use anyhow::Context;
use binary_star::node::{OnConflict, Timing};
use binary_star::{Config, Reactor, Role, Service};
use clap::{ArgGroup, Parser};
use common::cli::{self, Verbosity};
use common::{endpoint, Message};
use std::process::ExitCode;
use std::time::Duration;

/// How the pair uses CURVE (also in the crate's README).
const CURVE_HELP: &str =
    "CURVE: give both servers the same key pair (--curve-secret FILE, e.g. from \
zkeygen) and, for the state link, --curve-server-key with that pair's public key (and \
--curve-key FILE, the same secret file, if --curve-allow is used: then the allow directory \
must hold the pair's public file). Each server then accepts state only from a peer holding \
the pair's secret; bstarcli needs only the one public key (--curve-server-key) for both.";

/// Binary Star server (echo service): one of a primary/backup pair; clients use bstarcli.
#[derive(Debug, Parser)]
#[command(name = "bstarsrv", version, after_help = CURVE_HELP)]
#[command(group(ArgGroup::new("role").required(true).args(["primary", "backup"])))]
struct Args {
    /// Run as the primary (active when the pair starts).
    /// Endpoints: frontend tcp://*:5001, state PUB tcp://*:5003, state SUB tcp://localhost:5004.
    #[arg(short, long)]
    primary: bool,
    /// Run as the backup (takes over when the primary is gone).
    /// Endpoints: frontend tcp://*:5002, state PUB tcp://*:5004, state SUB tcp://localhost:5003.
    #[arg(short, long)]
    backup: bool,
    /// Client frontend to bind (ROUTER) [default: tcp://*:5001 primary, tcp://*:5002 backup].
    #[arg(long, value_name = "ENDPOINT", value_parser = endpoint::parse)]
    frontend: Option<String>,
    /// Where to publish our state (PUB, bind) [default: tcp://*:5003 primary, tcp://*:5004 backup].
    #[arg(long, value_name = "ENDPOINT", value_parser = endpoint::parse)]
    state_pub: Option<String>,
    /// The peer's state publisher (SUB, connect)
    /// [default: tcp://localhost:5004 primary, tcp://localhost:5003 backup].
    #[arg(long, value_name = "ENDPOINT", value_parser = endpoint::parse)]
    state_sub: Option<String>,
    /// Milliseconds between state messages; both servers must use the same value
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = cli::ms())]
    heartbeat_ms: u64,
    /// Heartbeats without a state message after which the peer counts as gone (1 to 100).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = cli::liveness())]
    liveness: u32,
    /// Both servers ACTIVE (or both PASSIVE), e.g. after a network partition healed:
    /// `resolve` settles it by epoch (the newer takeover stays ACTIVE, a tie goes to the
    /// primary); `abort` is the Guide's rule (log `E: fatal error - dual actives`, exit 2).
    #[arg(long, value_name = "RULE", default_value_t = OnConflict::Resolve, value_parser = on_conflict())]
    on_conflict: OnConflict,
    /// Print `I: answered a client request (count=<n>)` for every reply (for the tour's chaos
    /// checks; off by default: one line per request).
    #[arg(long)]
    log_replies: bool,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
    #[command(flatten)]
    guard: common::cli::GuardArgs,
}

impl Args {
    fn config(&self) -> Config {
        let role = if self.primary {
            Role::Primary
        } else {
            Role::Backup
        };
        let guide = Config::guide(role);
        Config {
            role,
            frontend: self.frontend.clone().unwrap_or(guide.frontend),
            state_pub: self.state_pub.clone().unwrap_or(guide.state_pub),
            state_sub: self.state_sub.clone().unwrap_or(guide.state_sub),
            timing: Timing {
                heartbeat: Duration::from_millis(self.heartbeat_ms),
                liveness: self.liveness,
            },
            on_conflict: self.on_conflict,
        }
    }
}

/// `--on-conflict`: the two rules, listed in `--help`.
fn on_conflict() -> impl clap::builder::TypedValueParser<Value = OnConflict> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["resolve", "abort"])
        .map(|rule| rule.parse::<OnConflict>().unwrap_or_default())
}

/// The Guide's service: every request comes back as its reply.
struct Echo {
    /// `--log-replies`: log each reply.
    log: bool,
    /// Replies so far.
    count: u64,
}

impl Service for Echo {
    fn serve(&mut self, request: Message) -> Option<Message> {
        self.count += 1;
        if self.log {
            tracing::info!("answered a client request (count={})", self.count);
        }
        Some(request)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    args.guard.install();
    let config = args.config();
    let reactor = Reactor::bind(config.clone())
        .await
        .with_context(|| format!("cannot start the {} server", config.role))?;
    match reactor
        .run(
            &mut Echo {
                log: args.log_replies,
                count: 0,
            },
            common::shutdown::signal(),
        )
        .await
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The reactor has logged `E: fatal error - …, aborting`.
        Err(binary_star::ReactorError::Fatal(_)) => Ok(ExitCode::from(2)),
        Err(e) => Err(e).context("server stopped"),
    }
}
