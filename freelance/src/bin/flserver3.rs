//! flserver3: Freelance model 3 server, speaking 10/FLP.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use freelance::server_loop::{public_endpoint, serve};
use freelance::{Model, ServerConfig};

/// Freelance model 3 server (10/FLP): a ROUTER whose routing identity is its public endpoint;
/// answers PING with PONG and [control, body] with [control, "OK"].
#[derive(Debug, Parser)]
#[command(
    name = "flserver3",
    after_help = "Clients must connect to exactly the --endpoint string: it is how they address \
        the server.\n\nLog lines (stderr, stable):\n  \
        I: flserver3 ready on <bound endpoint> as <identity>\n  \
        E: malformed request from <peer>: <why>\n  \
        W: interrupted"
)]
struct Args {
    /// Endpoint to bind.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://*:5555", value_parser = common::endpoint::parse)]
    bind: String,
    /// Public endpoint clients connect to, used as the routing identity
    /// [default: --bind with * replaced by localhost].
    #[arg(long, value_name = "ENDPOINT", value_parser = common::endpoint::parse)]
    endpoint: Option<String>,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    guard: common::cli::GuardArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.guard.install();
    let identity = args
        .endpoint
        .clone()
        .unwrap_or_else(|| public_endpoint(&args.bind));
    serve(ServerConfig {
        model: Model::Flp,
        bind: args.bind.clone(),
        identity: Some(identity),
    })
    .await
    .with_context(|| format!("flserver3 on {}", args.bind))
}
