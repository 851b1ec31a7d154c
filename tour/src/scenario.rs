//! Scenario files (`scenarios/<name>.toml`): parsing, checking and finding them.
//!
//! The format is documented in `scenarios/README.md`; this module is its parser. Everything a
//! scenario file can get wrong (an unknown process in a step, a step with two actions, a
//! placeholder that names nothing) is reported when the file is loaded, with the file's name,
//! not half-way through a run.

use crate::subst;
use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::BTreeMap;
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
    #[serde(default, rename = "process")]
    pub(crate) processes: Vec<ProcessSpec>,
    #[serde(default, rename = "step")]
    pub(crate) steps: Vec<Step>,
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
    start: Option<Vec<String>>,
    kill: Option<Vec<String>>,
    stop: Option<Vec<String>>,
    cont: Option<Vec<String>>,
    restart: Option<Vec<String>>,
    interrupt: Option<Vec<String>>,
    pub(crate) wait: Option<LineSpec>,
    pub(crate) measure: Option<MeasureSpec>,
    pub(crate) note: Option<String>,
    /// Only here to explain a common slip: a top-level key written after `[[step]]` belongs to
    /// that step in TOML.
    timeout_ms: Option<u64>,
}

impl Step {
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
                .map(|e| (e.clone(), port_of(e)))
                .collect(),
            vars,
        }
    }

    pub(crate) fn process_index(&self, name: &str) -> Option<usize> {
        self.processes.iter().position(|p| p.name == name)
    }

    /// Checks everything that does not depend on the values of ports and variables.
    fn check(&self) -> anyhow::Result<()> {
        if self.name.trim().is_empty() {
            bail!("`name` is empty");
        }
        let mut seen = std::collections::BTreeSet::new();
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
        let known = |name: &str, what: &str, step: usize| -> anyhow::Result<()> {
            if self.process_index(name).is_none() {
                bail!("step {step}: {what} names unknown process {name:?}");
            }
            Ok(())
        };
        let mut started = std::collections::BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let n = i + 1;
            if step.timeout_ms.is_some() {
                bail!(
                    "step {n} has `timeout_ms`: the scenario's limit is a top-level key and must \
                     come before the first table ([vars], [[process]], [[step]]); after \
                     `[[step]]` TOML gives it to that step"
                );
            }
            let actions = step.actions();
            if actions.len() > 1 {
                bail!("step {n} has more than one action (start/kill/stop/cont/restart/interrupt)");
            }
            if let Some((action, names)) = actions.first() {
                if names.is_empty() {
                    bail!("step {n}: `{}` lists no process", action.verb());
                }
                for name in names.iter() {
                    known(name, action.verb(), n)?;
                    if matches!(action, Action::Start | Action::Restart) {
                        started.insert(name.as_str());
                    }
                }
            } else if step.wait.is_none() && step.measure.is_none() && step.note.is_none() {
                bail!("step {n} does nothing (no action, wait, measure or note)");
            }
            if let Some(w) = &step.wait {
                known(&w.process, "wait", n)?;
            }
            if let Some(m) = &step.measure {
                known(&m.process, "measure", n)?;
            }
        }
        for p in self.processes.iter().filter(|p| p.client) {
            if !started.contains(p.name.as_str()) {
                bail!("client {:?} is never started by a step", p.name);
            }
        }
        // Every placeholder must name an endpoint or a variable (ports are not known yet).
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
                .chain(step.note.iter());
            for t in texts {
                values
                    .expand(t)
                    .with_context(|| format!("step {}", i + 1))?;
            }
        }
        Ok(())
    }
}

fn sort_key(name: &str) -> (usize, &str) {
    let rank = GUIDE_ORDER
        .iter()
        .position(|n| *n == name)
        .unwrap_or(GUIDE_ORDER.len());
    (rank, name)
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

    #[test]
    fn sorts_in_guide_order_then_by_name() {
        let mut names = vec!["zeta", "freelance", "lazy-pirate", "alpha", "majordomo"];
        names.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        assert_eq!(
            names,
            ["lazy-pirate", "majordomo", "freelance", "alpha", "zeta"]
        );
    }
}
