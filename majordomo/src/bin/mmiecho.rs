//! `mmiecho`: asks the broker (8/MMI `mmi.service`) whether a service has workers.
//!
//! Prints `Lookup <service> service: <code>` on standard output (`200` or `404`; `501` for a
//! broker without MMI) and exits 0; exits 1 if the broker does not answer. With `--broker`
//! given twice (a broker pair) it asks the pair like any pair client: the broker that serves,
//! failing over if the first is silent.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use common::Message;
use majordomo::protocol::MMI_SERVICE;
use majordomo::ClientArgs;

/// Looks up a service through the Majordomo Management Interface.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// Service to look up.
    #[arg(long, default_value = "echo")]
    service: String,
    /// MMI service to ask (mmi.service is the spec's; others show the 501 answer).
    #[arg(long, default_value = MMI_SERVICE)]
    mmi: String,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    let mut client = args.client.connect()?;
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
