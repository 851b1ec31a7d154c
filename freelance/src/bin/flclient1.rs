//! flclient1: Freelance model 1 client.

use clap::Parser;
use common::cli;
use freelance::cli::{client_help, run, RunArgs};
use freelance::client1_loop::{MAX_RETRIES, REQUEST_TIMEOUT};
use freelance::{Model1Client, Model1Config};
use std::process::ExitCode;
use std::time::Duration;

/// Freelance model 1 client: each request goes over a fresh REQ socket to the first server,
/// then the next one on timeout; a single server is tried --retries times.
#[derive(Debug, Parser)]
#[command(name = "flclient1", after_help = client_help("  \
    W: no response from <endpoint> (<why>)                           each failed attempt"))]
struct Args {
    /// Server endpoints, tried in this order (e.g. tcp://localhost:5555).
    #[arg(required = true, value_parser = common::endpoint::parse)]
    endpoints: Vec<String>,
    /// Number of requests to send (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = cli::count::<u64>())]
    requests: u64,
    /// How long one attempt (connect, send, reply) may take, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = REQUEST_TIMEOUT.as_millis() as u64,
          value_parser = cli::ms())]
    timeout_ms: u64,
    /// With a single server: attempts before the request FAILS (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = MAX_RETRIES, value_parser = cli::tries())]
    retries: u32,
    #[command(flatten)]
    run: RunArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.run.verbosity.init_logging();
    args.run.curve.install();
    let shutdown = common::shutdown::signal();
    let config = Model1Config {
        timeout: Duration::from_millis(args.timeout_ms),
        tries: args.retries,
    };
    let mut client = Model1Client::new(args.endpoints, config);
    run(&mut client, args.run.options(args.requests), shutdown).await
}
