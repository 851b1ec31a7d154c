//! `mmiecho`: asks the broker (8/MMI `mmi.service`) whether a service has workers.
//!
//! Prints `Lookup <service> service: <code>` on standard output (`200` or `404`; `501` for a
//! broker without MMI) and exits 0; exits 1 if the broker does not answer.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use common::Message;
use majordomo::client::{self, Client, ClientOptions};
use majordomo::protocol::MMI_SERVICE;
use std::time::Duration;

/// Looks up a service through the Majordomo Management Interface.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Broker endpoint.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://localhost:5555", value_parser = common::endpoint::parse)]
    broker: String,
    /// Service to look up.
    #[arg(long, default_value = "echo")]
    service: String,
    /// MMI service to ask (mmi.service is the spec's; others show the 501 answer).
    #[arg(long, default_value = MMI_SERVICE)]
    mmi: String,
    /// How long one attempt waits for the answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = client::REQUEST_TIMEOUT.as_millis() as u64)]
    timeout_ms: u64,
    /// Attempts in total.
    #[arg(long, value_name = "N", default_value_t = client::REQUEST_RETRIES)]
    retries: u32,
    #[command(flatten)]
    verbosity: Verbosity,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    let options = ClientOptions {
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        retries: args.retries.max(1),
    };
    let mut client = Client::new(&args.broker, options)?;
    let reply = tokio::select! {
        reply = client.send(&args.mmi, Message::from_frames([args.service.clone()])) => reply,
        () = common::shutdown::signal() => anyhow::bail!("interrupted"),
    }
    .context("asking the broker")?;
    let code = reply
        .first()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default();
    println!("Lookup {} service: {code}", args.service);
    Ok(())
}
