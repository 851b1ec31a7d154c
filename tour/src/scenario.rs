//! Scenario files (`scenarios/<name>.toml`): parsing, checking and finding them.
//!
//! The format is documented in `scenarios/README.md`; this module is its parser. Everything a
//! scenario file can get wrong (an unknown process in a step, a step with two actions, a
//! placeholder that names nothing) is reported when the file is loaded, with the file's name,
//! not half-way through a run.

use crate::chaos::ChaosSpec;
use crate::net::{Link, NetAction, NetState};
use crate::subst;
use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The order `tour` runs the scenarios in: the Guide's chapter order. Others follow by name.
pub const GUIDE_ORDER: [&str; 7] = [
    "lazy-pirate",
    "simple-pirate",
    "paranoid-pirate",
    "majordomo",
    "titanic",
    "binary-star",
    "freelance",
];

/// How long a (re)started process may take to print its `ready` line unless the file says.
pub const DEFAULT_READY_TIMEOUT_MS: u64 = 20_000;
/// How long a step's `wait` may take unless it says.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 20_000;
/// Whole-scenario limit unless the file says.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// One fault scenario: processes, endpoints, variables and a timeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) guide: String,
    #[serde(default)]
    pub(crate) endpoints: Vec<String>,
    #[serde(default)]
    pub(crate) vars: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) timeout_ms: Option<u64>,
    /// Why the tour does not run this scenario unless it is named (a fix it needs is not in).
    #[serde(default)]
    pub(crate) pending: Option<String>,
    #[serde(default, rename = "process")]
    pub(crate) processes: Vec<ProcessSpec>,
    #[serde(default, rename = "step")]
    pub(crate) steps: Vec<Step>,
    /// Host name → the processes on it (a process in no host is a host of its own name).
    #[serde(default)]
    pub(crate) hosts: BTreeMap<String, Vec<String>>,
    /// Connections routed through a fault proxy.
    #[serde(default, rename = "link")]
    pub(crate) links: Vec<LinkSpec>,
    /// What chaos mode may do to this scenario's processes and hosts.
    #[serde(default)]
    pub(crate) chaos: Option<ChaosSpec>,
    /// Set by chaos mode: end with Ctrl-C to every process, each allowed this long to exit.
    #[serde(skip)]
    pub(crate) exit_check: Option<std::time::Duration>,
    /// Where the file was read from (for messages).
    #[serde(skip)]
    pub(crate) source: PathBuf,
}

/// A `[[process]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcessSpec {
    pub(crate) name: String,
    pub(crate) bin: String,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    pub(crate) ready: Option<String>,
    pub(crate) ready_timeout_ms: Option<u64>,
    #[serde(default)]
    pub(crate) client: bool,
}

/// A `[[link]]` table: the processes in `from` reach `endpoint` (bound by `to`) through a fault
/// proxy each, written `{endpoint.via.process}` in their arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkSpec {
    pub(crate) endpoint: String,
    pub(crate) to: String,
    pub(crate) from: Vec<String>,
}

/// A duration in milliseconds written as a number or as a text with placeholders.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Millis {
    Number(u64),
    Text(String),
}

impl Millis {
    /// The value, with placeholders expanded.
    pub(crate) fn resolve(&self, values: &subst::Values) -> anyhow::Result<std::time::Duration> {
        let ms = match self {
            Millis::Number(n) => *n,
            Millis::Text(t) => {
                let text = values.expand(t)?;
                text.trim().parse().with_context(|| {
                    format!("{t:?} expands to {text:?}, not a number of milliseconds")
                })?
            }
        };
        Ok(std::time::Duration::from_millis(ms))
    }
}

/// `delay = { on = [...], ms = N }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelaySpec {
    pub(crate) on: Vec<String>,
    pub(crate) ms: u64,
}

/// `throttle = { on = [...], bytes_per_s = N }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThrottleSpec {
    on: Vec<String>,
    bytes_per_s: u64,
}

/// What a step does to its processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Kill,
    Stop,
    Cont,
    Restart,
    Interrupt,
}

impl Action {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Kill => "kill -9",
            Action::Stop => "stop (SIGSTOP)",
            Action::Cont => "cont (SIGCONT)",
            Action::Restart => "restart",
            Action::Interrupt => "interrupt (SIGINT)",
        }
    }
}

/// A `[[step]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Step {
    #[serde(default)]
    pub(crate) at_ms: u64,
    /// Run at least this long after the previous step's action began: a number, or a text
    /// with placeholders (`"{partition_ms}"`), so tests can shorten a partition.
    pub(crate) after_ms: Option<Millis>,
    start: Option<Vec<String>>,
    pub(crate) kill: Option<Vec<String>>,
    pub(crate) stop: Option<Vec<String>>,
    pub(crate) cont: Option<Vec<String>>,
    pub(crate) restart: Option<Vec<String>>,
    interrupt: Option<Vec<String>>,
    pub(crate) partition: Option<Vec<String>>,
    partition_out: Option<Vec<String>>,
    partition_in: Option<Vec<String>>,
    pub(crate) heal: Option<Vec<String>>,
    pub(crate) delay: Option<DelaySpec>,
    throttle: Option<ThrottleSpec>,
    reset: Option<Vec<String>>,
    pub(crate) wait: Option<LineSpec>,
    pub(crate) measure: Option<MeasureSpec>,
    /// Clients whose failover gap around this step is measured (see [`crate::gap`]).
    #[serde(default)]
    pub(crate) gap: Vec<GapSpec>,
    pub(crate) note: Option<String>,
    /// Only here to explain a common slip: a top-level key written after `[[step]]` belongs to
    /// that step in TOML.
    timeout_ms: Option<u64>,
}

impl Step {
    /// A step `after` the previous action, with a note and nothing else (chaos mode fills in
    /// the action).
    pub(crate) fn after(after: std::time::Duration, note: String) -> Step {
        Step {
            at_ms: 0,
            after_ms: Some(Millis::Number(after.as_millis() as u64)),
            start: None,
            kill: None,
            stop: None,
            cont: None,
            restart: None,
            interrupt: None,
            partition: None,
            partition_out: None,
            partition_in: None,
            heal: None,
            delay: None,
            throttle: None,
            reset: None,
            wait: None,
            measure: None,
            gap: Vec::new(),
            note: Some(note),
            timeout_ms: None,
        }
    }

    /// The step's action and its processes; `None` for a step that only waits, measures or notes.
    pub(crate) fn action(&self) -> Option<(Action, &[String])> {
        self.actions().into_iter().next()
    }

    fn actions(&self) -> Vec<(Action, &[String])> {
        [
            (Action::Start, &self.start),
            (Action::Kill, &self.kill),
            (Action::Stop, &self.stop),
            (Action::Cont, &self.cont),
            (Action::Restart, &self.restart),
            (Action::Interrupt, &self.interrupt),
        ]
        .into_iter()
        .filter_map(|(a, list)| list.as_deref().map(|l| (a, l)))
        .collect()
    }

    /// The step's network action and the hosts or links it names, if it has one.
    pub(crate) fn net_action(&self) -> Option<(NetAction, &[String])> {
        self.net_actions().into_iter().next()
    }

    fn net_actions(&self) -> Vec<(NetAction, &[String])> {
        let mut out: Vec<(NetAction, &[String])> = [
            (NetAction::Partition, &self.partition),
            (NetAction::PartitionOut, &self.partition_out),
            (NetAction::PartitionIn, &self.partition_in),
            (NetAction::Heal, &self.heal),
            (NetAction::Reset, &self.reset),
        ]
        .into_iter()
        .filter_map(|(a, list)| list.as_deref().map(|l| (a, l)))
        .collect();
        if let Some(d) = &self.delay {
            out.push((
                NetAction::Delay(std::time::Duration::from_millis(d.ms)),
                &d.on,
            ));
        }
        if let Some(t) = &self.throttle {
            out.push((NetAction::Throttle(t.bytes_per_s), &t.on));
        }
        out
    }
}

/// `wait = { process, line, timeout_ms }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LineSpec {
    pub(crate) process: String,
    pub(crate) line: String,
    pub(crate) timeout_ms: Option<u64>,
}

/// `measure = { label, process, line }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MeasureSpec {
    pub(crate) label: String,
    pub(crate) process: String,
    pub(crate) line: String,
}

/// `gap = [{ label, process, line }]`: the client `process`'s wait from its last answer by the
/// old server to its first by the new one, which follows its `line` (see [`crate::gap`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GapSpec {
    pub(crate) label: String,
    pub(crate) process: String,
    pub(crate) line: String,
}

/// The workspace's `scenarios/` folder (where this crate was built from).
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tour crate lives inside the workspace")
        .join("scenarios")
}

impl Scenario {
    /// Loads `scenarios/<name>.toml` from the workspace.
    pub fn load(name: &str) -> anyhow::Result<Scenario> {
        Scenario::load_from(&scenarios_dir(), name)
    }

    /// Loads `<dir>/<name>.toml`.
    pub fn load_from(dir: &Path, name: &str) -> anyhow::Result<Scenario> {
        let path = dir.join(format!("{name}.toml"));
        if !path.exists() {
            let known: Vec<String> = Scenario::all_in(dir)
                .map(|all| all.iter().map(|s| s.name.clone()).collect())
                .unwrap_or_default();
            bail!(
                "no scenario {name:?} ({} does not exist); known: {}",
                path.display(),
                known.join(", ")
            );
        }
        Scenario::from_file(&path)
    }

    /// Every scenario of the workspace, in the Guide's order (see [`GUIDE_ORDER`]).
    pub fn all() -> anyhow::Result<Vec<Scenario>> {
        Scenario::all_in(&scenarios_dir())
    }

    /// Every `*.toml` scenario in `dir`, in the Guide's order, then the others by name.
    pub fn all_in(dir: &Path) -> anyhow::Result<Vec<Scenario>> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let mut all = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                all.push(Scenario::from_file(&path)?);
            }
        }
        all.sort_by(|a, b| sort_key(&a.name).cmp(&sort_key(&b.name)));
        Ok(all)
    }

    /// Reads and checks one scenario file.
    pub fn from_file(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut scenario =
            Scenario::parse(&text).with_context(|| format!("in {}", path.display()))?;
        scenario.source = path.to_owned();
        Ok(scenario)
    }

    /// Parses and checks a scenario from TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Scenario> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.check()?;
        Ok(scenario)
    }

    /// The name `tour NAME` selects.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One-line description.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The Guide section the pattern comes from.
    pub fn guide(&self) -> &str {
        &self.guide
    }

    /// Why a plain `tour` skips this scenario (it runs when named), if it does.
    pub fn pending(&self) -> Option<&str> {
        self.pending.as_deref()
    }

    /// Whole-scenario limit.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }

    /// Overrides (or adds) a `[vars]` entry, e.g. a shorter heartbeat for a test.
    pub fn set_var(&mut self, key: &str, value: &str) {
        self.vars.insert(key.to_owned(), value.to_owned());
    }

    /// The current value of a variable.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Overrides the whole-scenario limit (`timeout_ms`).
    pub fn set_timeout(&mut self, timeout: std::time::Duration) {
        self.timeout_ms = Some(timeout.as_millis() as u64);
    }

    /// Placeholder values with each endpoint's port from `port_of`.
    /// Placeholder values for one run: each endpoint's port, the variables, and `{tmpdir}`
    /// (a private directory of the run, removed when it ends) unless a variable overrides it.
    pub(crate) fn values(
        &self,
        mut port_of: impl FnMut(&str) -> u16,
        tmpdir: &str,
    ) -> subst::Values {
        let mut vars = self.vars.clone();
        vars.entry("tmpdir".into()).or_insert_with(|| tmpdir.into());
        subst::Values {
            ports: self
                .endpoints
                .iter()
                .chain(self.link_names().iter())
                .map(|e| (e.clone(), port_of(e)))
                .collect(),
            vars,
        }
    }

    /// The host a process runs on: the `[hosts]` entry listing it, else its own name.
    pub(crate) fn host_of<'a>(&'a self, process: &'a str) -> &'a str {
        self.hosts
            .iter()
            .find(|(_, procs)| procs.iter().any(|p| p == process))
            .map_or(process, |(h, _)| h.as_str())
    }

    /// Every link as `(name, endpoint)`, in file order: `endpoint.via.process`.
    pub(crate) fn link_endpoints(&self) -> Vec<(String, String)> {
        self.links
            .iter()
            .flat_map(|l| {
                l.from
                    .iter()
                    .map(|f| (format!("{}.via.{f}", l.endpoint), l.endpoint.clone()))
            })
            .collect()
    }

    fn link_names(&self) -> Vec<String> {
        self.link_endpoints().into_iter().map(|(n, _)| n).collect()
    }

    /// The links with the hosts at their ends, for [`crate::net::NetState`].
    pub(crate) fn net_links(&self) -> Vec<Link> {
        self.links
            .iter()
            .flat_map(|l| {
                l.from.iter().map(|f| Link {
                    name: format!("{}.via.{f}", l.endpoint),
                    from_host: self.host_of(f).to_owned(),
                    to_host: self.host_of(&l.to).to_owned(),
                })
            })
            .collect()
    }

    /// Every host that has at least one process, with its processes in scenario order (for the
    /// report's lanes).
    pub fn host_groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for p in &self.processes {
            let host = self.host_of(&p.name);
            match groups.iter_mut().find(|(h, _)| h == host) {
                Some((_, procs)) => procs.push(p.name.clone()),
                None => groups.push((host.to_owned(), vec![p.name.clone()])),
            }
        }
        groups
    }

    /// Whether some step's `gap` reads this process's answers (it must print its request lines).
    pub(crate) fn gap_reads(&self, process: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.gap.iter().any(|g| g.process == process))
    }

    pub(crate) fn process_index(&self, name: &str) -> Option<usize> {
        self.processes.iter().position(|p| p.name == name)
    }

    /// Keeps the setup only (chaos mode): the steps up to the last `start`, without their
    /// measures and gaps.
    pub(crate) fn keep_setup_only(&mut self) {
        let setup_end = self
            .steps
            .iter()
            .rposition(|s| matches!(s.action(), Some((Action::Start, _))))
            .map_or(0, |i| i + 1);
        self.steps.truncate(setup_end);
        for s in &mut self.steps {
            s.measure = None;
            s.gap.clear();
        }
    }

    /// Checks everything that does not depend on the values of ports and variables, in the
    /// order the file is read: names, network, the `[chaos]` table, each step, the clients,
    /// the placeholders. The first problem is the error.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        self.check_names()?;
        self.check_network()?;
        let net = NetState::new(self.net_links());
        if let Some(spec) = &self.chaos {
            spec.check(self, &net)?;
        }
        let mut started = BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            self.check_step(i + 1, step, &net, &mut started)?;
        }
        self.check_clients_started(&started)?;
        self.check_placeholders()
    }
}

impl Scenario {
    /// The scenario's name, its processes' names (distinct) and binaries, and endpoints that
    /// are not also variables.
    fn check_names(&self) -> anyhow::Result<()> {
        if self.name.trim().is_empty() {
            bail!("`name` is empty");
        }
        let mut seen = BTreeSet::new();
        for p in &self.processes {
            if !seen.insert(p.name.as_str()) {
                bail!("two processes are named {:?}", p.name);
            }
            if p.bin.is_empty() {
                bail!("process {:?} has no `bin`", p.name);
            }
        }
        for e in &self.endpoints {
            if self.vars.contains_key(e) {
                bail!("{e:?} is both an endpoint and a variable");
            }
        }
        Ok(())
    }

    /// Step `n`: at most one action, on processes, hosts or links that exist, or else
    /// something to wait for, measure or note; `started` collects the processes it starts.
    fn check_step<'a>(
        &self,
        n: usize,
        step: &'a Step,
        net: &NetState,
        started: &mut BTreeSet<&'a str>,
    ) -> anyhow::Result<()> {
        if step.timeout_ms.is_some() {
            bail!(
                "step {n} has `timeout_ms`: the scenario's limit is a top-level key and must \
                 come before the first table ([vars], [[process]], [[step]]); after \
                 `[[step]]` TOML gives it to that step"
            );
        }
        let actions = step.actions();
        let net_actions = step.net_actions();
        if actions.len() + net_actions.len() > 1 {
            bail!(
                "step {n} has more than one action (start/kill/stop/cont/restart/interrupt/\
                 partition/partition_out/partition_in/heal/delay/throttle/reset)"
            );
        }
        if let Some((action, names)) = net_actions.first() {
            self.check_net_action(n, *action, names, net)?;
        }
        if let Some((action, names)) = actions.first() {
            if names.is_empty() {
                bail!("step {n}: `{}` lists no process", action.verb());
            }
            for name in names.iter() {
                self.check_known(name, action.verb(), n)?;
                if matches!(action, Action::Start | Action::Restart) {
                    started.insert(name.as_str());
                }
            }
        } else if net_actions.is_empty()
            && step.wait.is_none()
            && step.measure.is_none()
            && step.gap.is_empty()
            && step.note.is_none()
        {
            bail!("step {n} does nothing (no action, wait, measure, gap or note)");
        }
        self.check_reads(n, step)
    }

    /// Step `n`'s network action: a throttle that lets something through, on hosts with
    /// links or links.
    fn check_net_action(
        &self,
        n: usize,
        action: NetAction,
        names: &[String],
        net: &NetState,
    ) -> anyhow::Result<()> {
        if action == NetAction::Throttle(0) {
            bail!("step {n}: throttle to 0 bytes/s holds everything: use `partition`");
        }
        if names.is_empty() {
            bail!("step {n}: `{}` names no host or link", action.verb());
        }
        for name in names {
            if !net.touches(name) {
                bail!(
                    "step {n}: `{}` names {name:?}, which is neither a host with links \
                     nor a link; hosts with links: {}; links: {}",
                    action.verb(),
                    self.hosts_with_links(net).join(", "),
                    self.link_names().join(", ")
                );
            }
        }
        Ok(())
    }

    /// Step `n`'s wait, measure and gaps read lines of processes that exist; a gap's, of a
    /// client.
    fn check_reads(&self, n: usize, step: &Step) -> anyhow::Result<()> {
        if let Some(w) = &step.wait {
            self.check_known(&w.process, "wait", n)?;
        }
        if let Some(m) = &step.measure {
            self.check_known(&m.process, "measure", n)?;
        }
        for g in &step.gap {
            self.check_known(&g.process, "gap", n)?;
            if !self
                .processes
                .iter()
                .any(|p| p.name == g.process && p.client)
            {
                bail!(
                    "step {n}: gap {:?} names {:?}, which is not a client: a gap is read \
                     from a client's answers (`client = true`)",
                    g.label,
                    g.process
                );
            }
        }
        Ok(())
    }

    /// `name`, named by a step's `what`, is a process of the scenario.
    fn check_known(&self, name: &str, what: &str, step: usize) -> anyhow::Result<()> {
        if self.process_index(name).is_none() {
            bail!("step {step}: {what} names unknown process {name:?}");
        }
        Ok(())
    }

    /// Every client is started by some step (`started`: the processes steps start).
    fn check_clients_started(&self, started: &BTreeSet<&str>) -> anyhow::Result<()> {
        for p in self.processes.iter().filter(|p| p.client) {
            if !started.contains(p.name.as_str()) {
                bail!("client {:?} is never started by a step", p.name);
            }
        }
        Ok(())
    }

    /// Every placeholder names an endpoint or a variable (ports are not known yet).
    fn check_placeholders(&self) -> anyhow::Result<()> {
        let values = self.values(|_| 1, "/tmp");
        for p in &self.processes {
            for a in p.args.iter().chain(p.ready.iter()) {
                values
                    .expand(a)
                    .with_context(|| format!("process {:?}", p.name))?;
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            let texts = step
                .wait
                .iter()
                .map(|w| &w.line)
                .chain(step.measure.iter().map(|m| &m.line))
                .chain(step.gap.iter().map(|g| &g.line))
                .chain(step.note.iter());
            for t in texts {
                values
                    .expand(t)
                    .with_context(|| format!("step {}", i + 1))?;
            }
            if let Some(after) = &step.after_ms {
                after
                    .resolve(&values)
                    .with_context(|| format!("step {}: after_ms", i + 1))?;
            }
        }
        Ok(())
    }
}

impl Scenario {
    fn hosts_with_links(&self, net: &NetState) -> Vec<String> {
        let mut hosts: Vec<String> = net
            .links()
            .iter()
            .flat_map(|l| [l.from_host.clone(), l.to_host.clone()])
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// Checks `[hosts]` and `[[link]]`.
    fn check_network(&self) -> anyhow::Result<()> {
        let mut placed = BTreeMap::new();
        for (host, procs) in &self.hosts {
            if procs.is_empty() {
                bail!("host {host:?} lists no process");
            }
            for p in procs {
                if self.process_index(p).is_none() {
                    bail!("host {host:?} lists unknown process {p:?}");
                }
                if let Some(other) = placed.insert(p.as_str(), host.as_str()) {
                    bail!("process {p:?} is on two hosts, {other:?} and {host:?}");
                }
            }
        }
        // A process on no listed host is a host of its own name: that name must be free.
        for p in &self.processes {
            if !placed.contains_key(p.name.as_str()) && self.hosts.contains_key(&p.name) {
                bail!(
                    "host {:?} has the name of process {:?}, which is not on it (a process on \
                     no listed host is a host of its own name)",
                    p.name,
                    p.name
                );
            }
        }
        for l in &self.links {
            if !self.endpoints.contains(&l.endpoint) {
                bail!(
                    "[[link]] to endpoint {:?}, which is not in `endpoints`",
                    l.endpoint
                );
            }
            if self.process_index(&l.to).is_none() {
                bail!(
                    "[[link]] to {:?}: `to` names unknown process {:?}",
                    l.endpoint,
                    l.to
                );
            }
            if l.from.is_empty() {
                bail!("[[link]] to {:?} has an empty `from`", l.endpoint);
            }
            for f in &l.from {
                if self.process_index(f).is_none() {
                    bail!(
                        "[[link]] to {:?}: `from` names unknown process {f:?}",
                        l.endpoint
                    );
                }
            }
        }
        let names = self.link_names();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                bail!("link {n:?} is declared twice");
            }
            if self.hosts.contains_key(n) || self.process_index(n).is_some() {
                bail!("link {n:?} has the name of a host or process");
            }
        }
        Ok(())
    }
}

/// The Guide's scenarios first, in the chapter's order; then their variants (`lazy-pirate-…`)
/// in the same order; then the others by name.
fn sort_key(name: &str) -> (usize, usize, &str) {
    if let Some(rank) = GUIDE_ORDER.iter().position(|n| *n == name) {
        return (0, rank, name);
    }
    let variant = GUIDE_ORDER.iter().position(|n| {
        name.strip_prefix(n)
            .is_some_and(|rest| rest.starts_with('-'))
    });
    match variant {
        Some(rank) => (1, rank, name),
        None => (2, 0, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "demo"
title = "Demo"
guide = "Somewhere"
endpoints = ["front"]
timeout_ms = 5000
[vars]
hb = "100"
[[process]]
name = "server"
bin = "srv"
args = ["--bind", "{front}", "--hb", "{hb}"]
ready = "ready on {front.port}"
[[process]]
name = "client"
bin = "cli"
args = ["{front}"]
client = true
[[step]]
start = ["server", "client"]
[[step]]
at_ms = 100
kill = ["server"]
measure = { label = "gone", process = "client", line = "retry" }
note = "the server dies"
"#;

    #[test]
    fn parses_a_complete_scenario() {
        let s = Scenario::parse(GOOD).unwrap();
        assert_eq!(s.name(), "demo");
        assert_eq!(s.timeout(), std::time::Duration::from_millis(5000));
        assert_eq!(s.processes.len(), 2);
        assert!(s.processes[1].client);
        assert_eq!(s.steps[0].action().unwrap().0, Action::Start);
        assert_eq!(s.steps[1].action().unwrap().0, Action::Kill);
        assert_eq!(s.steps[1].at_ms, 100);
        assert_eq!(s.steps[1].measure.as_ref().unwrap().label, "gone");
    }

    #[test]
    fn a_gap_names_a_client_and_its_switch_line() {
        let gap = r#"gap = [{ label = "failover", process = "client", line = "{front}" }]"#;
        let with = |gap: &str| GOOD.replace("note = \"the server dies\"", gap);
        let s = Scenario::parse(&with(gap)).unwrap();
        assert_eq!(s.steps[1].gap[0].label, "failover");
        assert!(s.gap_reads("client") && !s.gap_reads("server"));
        for (from, to, why) in [
            ("\"client\"", "\"server\"", "which is not a client"),
            ("\"client\"", "\"clint\"", "gap names unknown process"),
            (", line = \"{front}\"", "", "missing field `line`"),
            ("{front}", "{back}", "{back}"),
        ] {
            let e = error_of(&with(&gap.replace(from, to)));
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn a_chaos_pair_names_two_processes_that_are_not_clients() {
        let with = |pair: &str| {
            format!(
                "{GOOD}\n[[process]]\nname = \"backup\"\nbin = \"srv\"\n[chaos]\n\
                 kill = [\"server\"]\nmax_fault_ms = 100\nmax_quiet_ms = 100\n\
                 promises = [\"executed-once\"]\npair = {pair}\n"
            )
        };
        let s = Scenario::parse(&with(r#"["server", "backup"]"#)).unwrap();
        let run = s.chaos(1, std::time::Duration::from_secs(1)).unwrap();
        assert_eq!(
            run.terms.pair,
            Some(["server".to_owned(), "backup".to_owned()])
        );
        for (pair, why) in [
            (r#"["server"]"#, "two processes"),
            (r#"["server", "server"]"#, "two processes"),
            (r#"["server", "backup", "client"]"#, "two processes"),
            (r#"["server", "bakup"]"#, "unknown process \"bakup\""),
            (r#"["server", "client"]"#, "client \"client\""),
        ] {
            let e = error_of(&with(pair));
            assert!(e.contains(why), "{pair}: {e}");
        }
    }

    #[test]
    fn set_var_overrides_and_adds() {
        let mut s = Scenario::parse(GOOD).unwrap();
        s.set_var("hb", "10");
        s.set_var("extra", "x");
        assert_eq!(s.var("hb"), Some("10"));
        assert_eq!(s.var("extra"), Some("x"));
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", Scenario::parse(text).unwrap_err())
    }

    #[test]
    fn rejects_unknown_process_in_a_step() {
        let bad = GOOD.replace("kill = [\"server\"]", "kill = [\"sever\"]");
        assert!(error_of(&bad).contains("unknown process \"sever\""));
    }

    #[test]
    fn rejects_two_actions_in_one_step() {
        let bad = GOOD.replace(
            "kill = [\"server\"]",
            "kill = [\"server\"]\nstop = [\"server\"]",
        );
        assert!(error_of(&bad).contains("more than one action"));
    }

    #[test]
    fn rejects_unknown_placeholder() {
        let bad = GOOD.replace("{hb}", "{heartbeat}");
        assert!(error_of(&bad).contains("{heartbeat}"));
    }

    #[test]
    fn rejects_unknown_keys() {
        let bad = GOOD.replace("client = true", "client = true\nclinet = 1");
        assert!(error_of(&bad).contains("clinet"));
    }

    #[test]
    fn explains_timeout_written_after_the_steps() {
        let bad = format!("{GOOD}\ntimeout_ms = 9000\n");
        assert!(error_of(&bad).contains("top-level key"));
    }

    #[test]
    fn rejects_a_client_nobody_starts() {
        let bad = GOOD.replace("start = [\"server\", \"client\"]", "start = [\"server\"]");
        assert!(error_of(&bad).contains("never started"));
    }

    const NET: &str = r#"
name = "net"
endpoints = ["front", "back"]
[vars]
hold_ms = "300"
[hosts]
qhost = ["queue"]
[[process]]
name = "queue"
bin = "q"
args = ["{front}", "{back}"]
[[process]]
name = "worker"
bin = "w"
args = ["{back.via.worker}"]
[[process]]
name = "client"
bin = "c"
args = ["{front.via.client}", "{front.via.client.port}"]
client = true
[[link]]
endpoint = "back"
to = "queue"
from = ["worker"]
[[link]]
endpoint = "front"
to = "queue"
from = ["client"]
[[step]]
start = ["queue", "worker", "client"]
[[step]]
at_ms = 100
partition = ["qhost"]
measure = { label = "m", process = "client", line = "x" }
[[step]]
after_ms = "{hold_ms}"
heal = ["qhost"]
[[step]]
after_ms = 5
partition_out = ["worker"]
[[step]]
delay = { on = ["back.via.worker"], ms = 50 }
[[step]]
throttle = { on = ["client"], bytes_per_s = 1000 }
[[step]]
reset = ["front.via.client"]
"#;

    #[test]
    fn parses_hosts_links_and_network_steps() {
        let s = Scenario::parse(NET).unwrap();
        assert_eq!(s.host_of("queue"), "qhost");
        assert_eq!(s.host_of("worker"), "worker");
        let links = s.net_links();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].name, "back.via.worker");
        assert_eq!(
            (links[0].from_host.as_str(), links[0].to_host.as_str()),
            ("worker", "qhost")
        );
        let actions: Vec<NetAction> = s
            .steps
            .iter()
            .filter_map(|st| st.net_action().map(|a| a.0))
            .collect();
        assert_eq!(
            actions,
            [
                NetAction::Partition,
                NetAction::Heal,
                NetAction::PartitionOut,
                NetAction::Delay(std::time::Duration::from_millis(50)),
                NetAction::Throttle(1000),
                NetAction::Reset
            ]
        );
        let v = s.values(|e| if e == "front.via.client" { 7 } else { 1 }, "/tmp");
        assert_eq!(
            v.expand("{front.via.client} {front.via.client.port}")
                .unwrap(),
            "tcp://127.0.0.1:7 7"
        );
        assert_eq!(
            s.host_groups(),
            [
                ("qhost".to_string(), vec!["queue".to_string()]),
                ("worker".to_string(), vec!["worker".to_string()]),
                ("client".to_string(), vec!["client".to_string()])
            ]
        );
    }

    #[test]
    fn after_ms_takes_numbers_and_placeholders() {
        let mut s = Scenario::parse(NET).unwrap();
        let v = s.values(|_| 1, "/tmp");
        let after: Vec<u128> = s
            .steps
            .iter()
            .filter_map(|st| st.after_ms.as_ref())
            .map(|a| a.resolve(&v).unwrap().as_millis())
            .collect();
        assert_eq!(after, [300, 5]);
        s.set_var("hold_ms", "soon");
        let e = format!("{:#}", s.check().unwrap_err());
        assert!(e.contains("after_ms"), "{e}");
        assert!(e.contains("not a number of milliseconds"), "{e}");
    }

    fn net_error_of(from: &str, to: &str) -> String {
        let bad = NET.replacen(from, to, 1);
        assert_ne!(bad, NET, "{from:?} not in the scenario");
        error_of(&bad)
    }

    #[test]
    fn rejects_unknown_hosts_and_links_in_network_steps() {
        let e = net_error_of("partition = [\"qhost\"]", "partition = [\"qhots\"]");
        assert!(
            e.contains("names \"qhots\", which is neither a host"),
            "{e}"
        );
        assert!(e.contains("hosts with links: client, qhost, worker"), "{e}");
        assert!(
            e.contains("links: back.via.worker, front.via.client"),
            "{e}"
        );
        let e = net_error_of("heal = [\"qhost\"]", "heal = [\"front.via.worker\"]");
        assert!(e.contains("\"front.via.worker\", which is neither"), "{e}");
        let e = net_error_of("on = [\"back.via.worker\"]", "on = []");
        assert!(e.contains("names no host or link"), "{e}");
    }

    #[test]
    fn rejects_bad_hosts_and_links() {
        let e = net_error_of("qhost = [\"queue\"]", "qhost = [\"queue\", \"qeue\"]");
        assert!(
            e.contains("host \"qhost\" lists unknown process \"qeue\""),
            "{e}"
        );
        let e = net_error_of(
            "qhost = [\"queue\"]",
            "qhost = [\"queue\"]\nh2 = [\"queue\"]",
        );
        assert!(e.contains("on two hosts"), "{e}");
        let e = net_error_of("to = \"queue\"", "to = \"qeue\"");
        assert!(e.contains("`to` names unknown process \"qeue\""), "{e}");
        let e = net_error_of("from = [\"worker\"]", "from = [\"wrker\"]");
        assert!(e.contains("`from` names unknown process \"wrker\""), "{e}");
        let e = net_error_of("endpoint = \"back\"", "endpoint = \"bak\"");
        assert!(e.contains("not in `endpoints`"), "{e}");
        // A placeholder of a link nobody declared.
        let e = net_error_of("{back.via.worker}", "{back.via.client}");
        assert!(e.contains("{back.via.client}"), "{e}");
    }

    #[test]
    fn rejects_a_network_action_beside_a_process_action() {
        let e = net_error_of(
            "heal = [\"qhost\"]",
            "heal = [\"qhost\"]\nkill = [\"worker\"]",
        );
        assert!(e.contains("more than one action"), "{e}");
    }

    #[test]
    fn sorts_in_guide_order_then_by_name() {
        let mut names = vec![
            "zeta",
            "freelance-partition",
            "freelance",
            "lazy-pirate",
            "alpha",
            "majordomo-partition",
            "majordomo",
            "lazy-pirate-partition",
        ];
        names.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        assert_eq!(
            names,
            [
                "lazy-pirate",
                "majordomo",
                "freelance",
                "lazy-pirate-partition",
                "majordomo-partition",
                "freelance-partition",
                "alpha",
                "zeta"
            ]
        );
    }
}
