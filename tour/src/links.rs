//! The fault proxies of a scenario's links, on a small tokio runtime of their own.
//!
//! The engine is synchronous (threads and a condition variable); the proxies of
//! `common::netfault` are tokio tasks. This shell owns a one-worker runtime that runs them for
//! the whole scenario, so a link keeps its address across process restarts, and turns the pure
//! [`LinkCommand`]s of [`crate::net`] into `Proxy::apply` calls, which take effect at once.

use crate::net::{Dir, LinkCommand, LinkFault};
use anyhow::Context;
use common::netfault::{Command, Direction, Fault, Proxy};
use std::net::SocketAddr;

/// Running proxies, one per link, in [`crate::net::NetState::links`] order.
pub(crate) struct Links {
    proxies: Vec<Proxy>,
    /// Declared last so it is dropped after the proxies: their tasks end with it.
    runtime: tokio::runtime::Runtime,
}

impl Links {
    /// Starts one proxy per upstream address, each listening on a fresh port of 127.0.0.1.
    pub(crate) fn start(upstreams: &[SocketAddr]) -> anyhow::Result<Links> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tour-netfault")
            .enable_all()
            .build()
            .context("starting the runtime of the fault proxies")?;
        let proxies = runtime.block_on(async {
            let mut proxies = Vec::with_capacity(upstreams.len());
            for up in upstreams {
                let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
                let proxy = Proxy::start(listen, *up)
                    .await
                    .with_context(|| format!("starting a fault proxy to {up}"))?;
                proxies.push(proxy);
            }
            anyhow::Ok(proxies)
        })?;
        Ok(Links { proxies, runtime })
    }

    /// The port link `index` listens on.
    pub(crate) fn port(&self, index: usize) -> u16 {
        self.proxies[index].local_addr().port()
    }

    /// Passes a command to link `index`'s proxy.
    pub(crate) fn apply(&self, index: usize, command: LinkCommand) {
        let _in_runtime = self.runtime.enter();
        self.proxies[index].apply(to_netfault(command));
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        let _in_runtime = self.runtime.enter();
        self.proxies.clear();
    }
}

/// The proxy's own command for a pure [`LinkCommand`].
fn to_netfault(command: LinkCommand) -> Command {
    match command {
        LinkCommand::Reset => Command::Reset,
        // `heal` is what a person types: the same as `Set(Pass)`, and what the tour prints.
        LinkCommand::Set(LinkFault::Pass) => Command::Heal,
        LinkCommand::Set(fault) => Command::Set(match fault {
            LinkFault::Pass => Fault::Pass,
            LinkFault::Partition => Fault::Partition,
            LinkFault::OneWay(Dir::Up) => Fault::OneWay(Direction::Upstream),
            LinkFault::OneWay(Dir::Down) => Fault::OneWay(Direction::Downstream),
            LinkFault::Delay(d) => Fault::Delay(d),
            LinkFault::Throttle(b) => Fault::Throttle(b),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_link_fault_reads_as_the_same_netfault_command() {
        // The tour prints `LinkFault`'s Display as the line to type into `netfault`: it must
        // parse to the very command the tour applies.
        for fault in [
            LinkFault::Pass,
            LinkFault::Partition,
            LinkFault::OneWay(Dir::Up),
            LinkFault::OneWay(Dir::Down),
            LinkFault::Delay(Duration::from_millis(250)),
            LinkFault::Throttle(4096),
        ] {
            let typed: Command = fault.to_string().parse().expect("netfault parses it");
            let applied = to_netfault(LinkCommand::Set(fault));
            assert_eq!(typed, applied, "{fault}");
        }
    }
}
