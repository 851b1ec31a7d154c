//! flclient3: Freelance model 3 client, through the flcliapi-style API.

use clap::Parser;
use common::cli;
use freelance::agent::{Timing, ATTEMPT_TIMEOUT, GLOBAL_TIMEOUT, PING_INTERVAL, SERVER_TTL};
use freelance::cli::{client_help, run, RunArgs};
use freelance::{AgentConfig, FreelanceClient};
use std::process::ExitCode;
use std::time::Duration;

/// Freelance model 3 client (10/FLP): pings every server, sends each request to the first
/// live one and fails over to the next when it dies or does not answer in time.
#[derive(Debug, Parser)]
#[command(name = "flclient3", after_help = client_help("  \
    I: connected to <endpoint>                                       a link (re)connected\n  \
    I: relinking <endpoint>: fresh connection to a dead server       the dead server's socket is replaced\n  \
    I: server <endpoint> alive                                       first PONG, or back from dead\n  \
    W: server <endpoint> dead (<why>)                                silent, no reply, or connection lost\n  \
    W: failover: request <n> from <endpoint> to <endpoint>           resent to another server"))]
struct Args {
    /// Server endpoints in order of preference; each must equal that server's --endpoint.
    #[arg(required = true, value_parser = common::endpoint::parse)]
    endpoints: Vec<String>,
    /// Number of requests to send (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = cli::count::<u64>())]
    requests: u64,
    /// A request FAILS when no server answered within this many milliseconds
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = GLOBAL_TIMEOUT.as_millis() as u64,
          value_parser = cli::ms())]
    timeout_ms: u64,
    /// One server gets this many milliseconds to answer before the request moves on
    /// (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = ATTEMPT_TIMEOUT.as_millis() as u64,
          value_parser = cli::ms())]
    attempt_timeout_ms: u64,
    /// Ping every server this often, in milliseconds (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = PING_INTERVAL.as_millis() as u64,
          value_parser = cli::ms())]
    ping_ms: u64,
    /// A server silent this many milliseconds is dead (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = SERVER_TTL.as_millis() as u64,
          value_parser = cli::ms())]
    ttl_ms: u64,
    /// Bounds one connect attempt to a server, in milliseconds (1 to 86400000).
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
    let ms = Duration::from_millis;
    let config = AgentConfig {
        timing: Timing {
            ping_interval: ms(args.ping_ms),
            server_ttl: ms(args.ttl_ms),
            global_timeout: ms(args.timeout_ms),
            attempt_timeout: ms(args.attempt_timeout_ms),
        },
        connect_timeout: ms(args.connect_timeout_ms),
        ..AgentConfig::default()
    };
    let mut client = FreelanceClient::new(config);
    for endpoint in &args.endpoints {
        if client.connect(endpoint).await.is_err() {
            return ExitCode::FAILURE;
        }
    }
    let code = run(&mut client, args.run.options(args.requests), shutdown).await;
    client.close().await;
    code
}
