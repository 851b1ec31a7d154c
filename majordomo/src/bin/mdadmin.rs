//! `mdadmin`: prints the broker's services (and optionally workers and counters) as tables,
//! the way `rabbitmqctl list_queues` does, from the MMI extensions `mmi.services`,
//! `mmi.workers` and `mmi.broker`.
//!
//! Output (stdout): a header line `service  idle  busy  waiting  served`, then one line per
//! service; `--workers` adds `worker  service  state  expires_ms` rows (`worker` is the start of
//! the identity, `W1A2B3C4D..`: the broker shows no client enough to connect as a worker), `--stats`
//! the broker counters as `name value` lines.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use common::Message;
use majordomo::broker::{MMI_BROKER, MMI_SERVICES, MMI_WORKERS};
use majordomo::client::ClientArgs;
use majordomo::mmi::{self, ServiceRow, WorkerRow};

/// Shows what a Majordomo broker is doing: services, workers, counters.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// Also list every worker.
    #[arg(long)]
    workers: bool,
    /// Also print the broker's counters.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    verbosity: Verbosity,
}

async fn report(args: &Args) -> anyhow::Result<()> {
    let mut client = args.client.connect()?;
    let reply = client.send(MMI_SERVICES, Message::new()).await?;
    let rows = ServiceRow::parse_all(&reply).context(MMI_SERVICES)?;
    print!("{}", mmi::services_table(&rows));
    if args.workers {
        let reply = client.send(MMI_WORKERS, Message::new()).await?;
        let rows = WorkerRow::parse_all(&reply).context(MMI_WORKERS)?;
        println!();
        print!("{}", mmi::workers_table(&rows));
    }
    if args.stats {
        let reply = client.send(MMI_BROKER, Message::new()).await?;
        println!();
        for (name, value) in mmi::parse_broker(&reply).context(MMI_BROKER)? {
            println!("{name:<18} {value}");
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.verbosity.init_logging();
    tokio::select! {
        result = report(&args) => result.context("asking the broker"),
        () = common::shutdown::signal() => anyhow::bail!("interrupted"),
    }
}
