//! flclient2: Freelance model 2 client.

use clap::Parser;
use common::cli;
use freelance::cli::{client_help, run, RunArgs};
use freelance::client2::GLOBAL_TIMEOUT;
use freelance::{Model2Client, Model2Config};
use std::process::ExitCode;
use std::time::Duration;

/// Freelance model 2 client: one DEALER connected to every server fires each request at all
/// of them and takes the first reply with the right sequence number.
#[derive(Debug, Parser)]
#[command(name = "flclient2", after_help = client_help("  \
    I: connected to <endpoint>                                       a server (re)joined\n  \
    W: server <endpoint> disconnected                                its connection dropped"))]
struct Args {
    /// Server endpoints (e.g. tcp://localhost:5555 tcp://localhost:5556).
    #[arg(required = true, value_parser = common::endpoint::parse)]
    endpoints: Vec<String>,
    /// Number of requests to send (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 10000, value_parser = cli::count::<u64>())]
    requests: u64,
    /// A request FAILS when no server answered within this many milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = GLOBAL_TIMEOUT.as_millis() as u64,
          value_parser = cli::ms())]
    timeout_ms: u64,
    /// Bounds one connect attempt, and the wait for servers at start, in milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = cli::ms())]
    connect_timeout_ms: u64,
    #[command(flatten)]
    run: RunArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.run.verbosity.init_logging();
    args.run.curve.install();
    let shutdown = common::shutdown::signal();
    tokio::pin!(shutdown);
    let config = Model2Config {
        timeout: Duration::from_millis(args.timeout_ms),
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
    };
    // The wait for the servers may be long (--connect-timeout-ms): Ctrl-C ends it too, before
    // any request (the summary then says so: nothing sent, nothing failed).
    let mut client = tokio::select! {
        client = Model2Client::connect(args.endpoints, config) => client,
        () = &mut shutdown => {
            tracing::warn!("interrupted while connecting");
            return args.run.log.ledger().finish(common::contract::now()).exit_code();
        }
    };
    run(&mut client, args.run.options(args.requests), shutdown).await
}
