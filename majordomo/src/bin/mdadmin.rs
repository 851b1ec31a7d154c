//! `mdadmin`: prints the broker's services (and optionally workers and counters) as tables,
//! the way `rabbitmqctl list_queues` does, from the MMI extensions `mmi.services`,
//! `mmi.workers` and `mmi.broker`.
//!
//! Output (stdout): for a broker of a pair first a line `pair: <role> <STATE> (epoch <n>), peer
//! <STATE> heard <ms> ms ago` (from `mmi.pair`), then a header line `service  idle  busy  waiting  served`, then one line per
//! service; `--workers` adds `worker  service  state  expires_ms  in_flight  credit  key` rows
//! (`in_flight`: requests out at the worker, `credit`: how many it may have, see
//! `majordomo::credit`; `worker` is the start of
//! the identity, `W1A2B3C4D..`: the broker shows no client enough to connect as a worker), `--stats`
//! the broker counters as `name value` lines.
//!
//! With `--broker` given twice (a broker pair) it asks each broker in turn, not the pair:
//! before each broker's tables a line `broker <endpoint>`, and a blank line between the two. A
//! broker that does not answer gets `E: <endpoint>: <why>` and the other is still shown; the
//! exit status is 1 if either did not answer.

use anyhow::Context;
use clap::Parser;
use common::cli::Verbosity;
use common::Message;
use majordomo::broker::{MMI_BROKER, MMI_PAIR, MMI_SERVICES, MMI_WORKERS};
use majordomo::mmi::{self, ServiceRow, WorkerRow};
use majordomo::{Client, ClientArgs};

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
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

/// One broker's tables.
async fn report(args: &Args, broker: &str) -> anyhow::Result<()> {
    let mut client = Client::new(broker, args.client.options())?;
    // A broker of a pair says so first; a lone one says `role none`, the Guide's broker 501.
    let reply = client.send(MMI_PAIR, Message::new()).await?;
    if let Some(line) = mmi::parse_pair(&reply)
        .ok()
        .and_then(|rows| mmi::pair_line(&rows))
    {
        println!("{line}");
    }
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
    args.curve.install();
    let brokers = &args.client.brokers;
    let run = async {
        let Some(pair) = brokers.pair()? else {
            return report(&args, &brokers.broker[0])
                .await
                .context("asking the broker");
        };
        // Each broker of a pair on its own: the point is to see both, the passive one too.
        let mut failed = 0;
        for (i, broker) in pair.into_iter().enumerate() {
            if i > 0 {
                println!();
            }
            println!("broker {broker}");
            if let Err(error) = report(&args, broker).await {
                tracing::error!("{broker}: {:#}", error.context("asking the broker"));
                failed += 1;
            }
        }
        match failed {
            0 => Ok(()),
            n => anyhow::bail!("asking the broker: {n} of 2 brokers did not answer"),
        }
    };
    tokio::select! {
        result = run => result,
        () = common::shutdown::signal() => anyhow::bail!("interrupted"),
    }
}
