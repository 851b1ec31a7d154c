//! Network faults of a scenario, decided without any socket: which link gets which fault.
//!
//! A scenario routes some connections through links (one fault proxy each, see
//! `common::netfault`) and groups its processes into hosts. Steps name hosts or links:
//! `partition = ["h1"]` cuts every link that starts or ends on host `h1`. Several faults may be
//! in force at once (h1 and h2 partitioned, then only h1 healed): each named host or link keeps
//! its own faults, and a link's effective fault combines those of its own name and of the hosts
//! at both ends. [`NetState::apply`] returns the links whose effective fault changed, so the
//! engine only has to pass them to their proxies. Pure and unit-tested; the engine is the shell.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A direction on a link, as the fault proxy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    /// Bytes from the connecting process to the one that bound the endpoint.
    Up,
    /// Bytes from the bound endpoint back to the connecting process.
    Down,
}

/// A network action of a scenario step, as written (and as recorded in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetAction {
    /// Hold both directions: no FIN, no RST, connects hang (a cable pull).
    Partition,
    /// Hold whatever the named host sends (for a link: its connecting side sends, i.e. up).
    PartitionOut,
    /// Hold whatever the named host receives (for a link: down).
    PartitionIn,
    /// Remove every fault of the named hosts or links.
    Heal,
    /// Added latency per chunk, both directions.
    Delay(Duration),
    /// Bytes per second, each direction.
    Throttle(u64),
    /// Abort every current connection with RST (a one-off, not a state).
    Reset,
}

impl NetAction {
    /// The verb the tour prints (`partition`, `delay 200 ms`, …).
    pub fn verb(self) -> String {
        match self {
            NetAction::Partition => "partition".into(),
            NetAction::PartitionOut => "partition outbound".into(),
            NetAction::PartitionIn => "partition inbound".into(),
            NetAction::Heal => "heal".into(),
            NetAction::Delay(d) => format!("delay {} ms", d.as_millis()),
            NetAction::Throttle(b) => format!("throttle {b} B/s"),
            NetAction::Reset => "reset".into(),
        }
    }
}

/// What one link's proxy should do: mirrors `common::netfault::Fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFault {
    /// Move bytes freely.
    Pass,
    /// Hold both directions.
    Partition,
    /// Hold one direction.
    OneWay(Dir),
    /// Added latency per chunk.
    Delay(Duration),
    /// Bytes per second.
    Throttle(u64),
}

impl fmt::Display for LinkFault {
    /// The line a person would type into the `netfault` binary for this fault.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkFault::Pass => write!(f, "heal"),
            LinkFault::Partition => write!(f, "partition"),
            LinkFault::OneWay(Dir::Up) => write!(f, "partition up"),
            LinkFault::OneWay(Dir::Down) => write!(f, "partition down"),
            LinkFault::Delay(d) => write!(f, "delay {}", d.as_millis()),
            LinkFault::Throttle(b) => write!(f, "throttle {b}"),
        }
    }
}

/// One link: a connecting host and the host that bound the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `endpoint.via.process`, also its placeholder.
    pub name: String,
    /// Host of the connecting process.
    pub from_host: String,
    /// Host of the process that bound the endpoint.
    pub to_host: String,
}

/// What a link proxy must be told after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCommand {
    /// Switch to this fault.
    Set(LinkFault),
    /// Abort its connections (RST) and keep its fault.
    Reset,
}

/// The faults one name (host or link) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    both: bool,
    out: bool,
    inbound: bool,
    /// Delay or throttle with the order it was set in (the latest wins on a link).
    shape: Option<(u64, LinkFault)>,
}

/// The network faults in force, by host and link name.
#[derive(Debug, Clone)]
pub struct NetState {
    links: Vec<Link>,
    held: BTreeMap<String, Held>,
    effective: Vec<LinkFault>,
    order: u64,
}

impl NetState {
    /// Every link in [`LinkFault::Pass`].
    pub fn new(links: Vec<Link>) -> NetState {
        let effective = vec![LinkFault::Pass; links.len()];
        NetState {
            links,
            held: BTreeMap::new(),
            effective,
            order: 0,
        }
    }

    /// The links, in the order [`apply`](Self::apply) indexes them.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Whether `name` is a host or a link touching any link.
    pub fn touches(&self, name: &str) -> bool {
        !self.links_of(name).is_empty()
    }

    /// Indexes of the links a host or link name covers.
    pub fn links_of(&self, name: &str) -> Vec<usize> {
        self.links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.name == name || l.from_host == name || l.to_host == name)
            .map(|(i, _)| i)
            .collect()
    }

    /// The current fault of link `index`.
    pub fn fault(&self, index: usize) -> LinkFault {
        self.effective[index]
    }

    /// Applies `action` to the named hosts and links; returns what each affected proxy must be
    /// told (only links whose fault changed, plus every covered link for `Reset`), in link order.
    pub fn apply(&mut self, action: NetAction, names: &[String]) -> Vec<(usize, LinkCommand)> {
        if action == NetAction::Reset {
            let mut covered: Vec<usize> = names.iter().flat_map(|n| self.links_of(n)).collect();
            covered.sort_unstable();
            covered.dedup();
            return covered
                .into_iter()
                .map(|i| (i, LinkCommand::Reset))
                .collect();
        }
        self.order += 1;
        for name in names {
            let held = self.held.entry(name.clone()).or_default();
            match action {
                NetAction::Partition => held.both = true,
                NetAction::PartitionOut => held.out = true,
                NetAction::PartitionIn => held.inbound = true,
                NetAction::Heal => *held = Held::default(),
                NetAction::Delay(d) => held.shape = Some((self.order, LinkFault::Delay(d))),
                NetAction::Throttle(b) => held.shape = Some((self.order, LinkFault::Throttle(b))),
                NetAction::Reset => unreachable!("handled above"),
            }
        }
        let mut changed = Vec::new();
        for i in 0..self.links.len() {
            let now = self.combine(i);
            if now != self.effective[i] {
                self.effective[i] = now;
                changed.push((i, LinkCommand::Set(now)));
            }
        }
        changed
    }

    /// The effective fault of link `i` from everything its name and its hosts hold.
    fn combine(&self, i: usize) -> LinkFault {
        let link = &self.links[i];
        let mut up = false;
        let mut down = false;
        let mut shape: Option<(u64, LinkFault)> = None;
        let mut take = |name: &str, out_is: Dir| {
            let Some(h) = self.held.get(name) else {
                return;
            };
            if h.both {
                up = true;
                down = true;
            }
            let (out, inbound) = match out_is {
                Dir::Up => (&mut up, &mut down),
                Dir::Down => (&mut down, &mut up),
            };
            *out |= h.out;
            *inbound |= h.inbound;
            if let Some(s) = h.shape {
                if shape.is_none_or(|cur| s.0 > cur.0) {
                    shape = Some(s);
                }
            }
        };
        // A link's own name: its connecting side is "out".
        take(&link.name, Dir::Up);
        take(&link.from_host, Dir::Up);
        if link.to_host != link.from_host {
            take(&link.to_host, Dir::Down);
        }
        match (up, down) {
            (true, true) => LinkFault::Partition,
            (true, false) => LinkFault::OneWay(Dir::Up),
            (false, true) => LinkFault::OneWay(Dir::Down),
            (false, false) => shape.map_or(LinkFault::Pass, |s| s.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// worker1 (host w1) → queue (host q), client (host c) → queue.
    fn state() -> NetState {
        NetState::new(vec![
            Link {
                name: "backend.via.worker1".into(),
                from_host: "w1".into(),
                to_host: "q".into(),
            },
            Link {
                name: "frontend.via.client".into(),
                from_host: "c".into(),
                to_host: "q".into(),
            },
        ])
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn partitioning_a_host_cuts_every_link_to_or_from_it() {
        let mut s = state();
        assert_eq!(
            s.apply(NetAction::Partition, &names(&["q"])),
            [
                (0, LinkCommand::Set(LinkFault::Partition)),
                (1, LinkCommand::Set(LinkFault::Partition))
            ]
        );
        let mut s = state();
        assert_eq!(
            s.apply(NetAction::Partition, &names(&["w1"])),
            [(0, LinkCommand::Set(LinkFault::Partition))]
        );
        assert_eq!(s.fault(1), LinkFault::Pass);
    }

    #[test]
    fn heal_restores_and_reports_only_changes() {
        let mut s = state();
        s.apply(NetAction::Partition, &names(&["w1"]));
        assert_eq!(s.apply(NetAction::Partition, &names(&["w1"])), []);
        assert_eq!(
            s.apply(NetAction::Heal, &names(&["w1"])),
            [(0, LinkCommand::Set(LinkFault::Pass))]
        );
        assert_eq!(s.apply(NetAction::Heal, &names(&["w1"])), []);
    }

    #[test]
    fn a_link_stays_cut_while_either_end_is_partitioned() {
        let mut s = state();
        s.apply(NetAction::Partition, &names(&["w1"]));
        s.apply(NetAction::Partition, &names(&["q"]));
        let changed = s.apply(NetAction::Heal, &names(&["q"]));
        assert_eq!(changed, [(1, LinkCommand::Set(LinkFault::Pass))]);
        assert_eq!(s.fault(0), LinkFault::Partition);
    }

    #[test]
    fn one_way_partitions_are_relative_to_the_named_host() {
        let mut s = state();
        // Nothing leaves the queue's host: the down direction of both links.
        assert_eq!(
            s.apply(NetAction::PartitionOut, &names(&["q"])),
            [
                (0, LinkCommand::Set(LinkFault::OneWay(Dir::Down))),
                (1, LinkCommand::Set(LinkFault::OneWay(Dir::Down)))
            ]
        );
        // Nothing reaches worker1's host either: still only down on its link.
        assert_eq!(s.apply(NetAction::PartitionIn, &names(&["w1"])), []);
        // Nothing leaves worker1's host: both directions held on its link.
        assert_eq!(
            s.apply(NetAction::PartitionOut, &names(&["w1"])),
            [(0, LinkCommand::Set(LinkFault::Partition))]
        );
        // A link name: out = up.
        let mut s = state();
        assert_eq!(
            s.apply(NetAction::PartitionOut, &names(&["frontend.via.client"])),
            [(1, LinkCommand::Set(LinkFault::OneWay(Dir::Up)))]
        );
    }

    #[test]
    fn the_latest_delay_or_throttle_wins_and_a_partition_overrides_it() {
        let mut s = state();
        s.apply(NetAction::Delay(Duration::from_millis(200)), &names(&["q"]));
        assert_eq!(s.fault(0), LinkFault::Delay(Duration::from_millis(200)));
        s.apply(NetAction::Throttle(1000), &names(&["w1"]));
        assert_eq!(s.fault(0), LinkFault::Throttle(1000));
        assert_eq!(s.fault(1), LinkFault::Delay(Duration::from_millis(200)));
        s.apply(NetAction::Partition, &names(&["c"]));
        assert_eq!(s.fault(1), LinkFault::Partition);
        s.apply(NetAction::Heal, &names(&["c"]));
        assert_eq!(s.fault(1), LinkFault::Delay(Duration::from_millis(200)));
    }

    #[test]
    fn reset_covers_each_link_once_and_changes_no_fault() {
        let mut s = state();
        s.apply(NetAction::Partition, &names(&["w1"]));
        assert_eq!(
            s.apply(NetAction::Reset, &names(&["q", "w1"])),
            [(0, LinkCommand::Reset), (1, LinkCommand::Reset)]
        );
        assert_eq!(s.fault(0), LinkFault::Partition);
    }

    #[test]
    fn faults_print_as_netfault_commands() {
        assert_eq!(LinkFault::Partition.to_string(), "partition");
        assert_eq!(LinkFault::OneWay(Dir::Up).to_string(), "partition up");
        assert_eq!(
            LinkFault::Delay(Duration::from_millis(200)).to_string(),
            "delay 200"
        );
        assert_eq!(LinkFault::Pass.to_string(), "heal");
    }
}
