//! flserver1: Freelance model 1 server, an echo service.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use freelance::server_loop::serve;
use freelance::{Model, ServerConfig};

/// Freelance model 1 server: echoes every request (a REP service; a ROUTER underneath, so a
/// malformed request is logged and dropped).
#[derive(Debug, Parser)]
#[command(
    name = "flserver1",
    after_help = "Log lines (stderr, stable):\n  \
        I: flserver1 ready on <endpoint>\n  \
        E: malformed request from <peer>: <why>\n  \
        W: interrupted"
)]
struct Args {
    /// Endpoint to bind, e.g. tcp://*:5555.
    #[arg(value_parser = common::endpoint::parse)]
    endpoint: String,
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
    serve(ServerConfig {
        model: Model::Echo,
        bind: args.endpoint.clone(),
        identity: None,
    })
    .await
    .with_context(|| format!("flserver1 on {}", args.endpoint))
}
