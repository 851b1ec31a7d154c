//! flserver2: Freelance model 2 server: answers [sequence, "OK"].

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use freelance::server_loop::serve;
use freelance::{Model, ServerConfig};

/// Freelance model 2 server: answers each [sequence, body] request with [sequence, "OK"] (a
/// REP service; a ROUTER underneath, so a malformed request is logged and dropped).
#[derive(Debug, Parser)]
#[command(
    name = "flserver2",
    after_help = "Log lines (stderr, stable):\n  \
        I: flserver2 ready on <endpoint>\n  \
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
        model: Model::Sequence,
        bind: args.endpoint.clone(),
        identity: None,
    })
    .await
    .with_context(|| format!("flserver2 on {}", args.endpoint))
}
