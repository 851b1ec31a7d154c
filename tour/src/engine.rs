//! Runs a scenario: allocate ports, start processes, play the timeline, collect the outcome.
//!
//! The engine owns every child process. It is single-threaded: it sleeps on the [`Hub`] until
//! the next step is due or the line it waits for arrives, and polls its children for exits every
//! few milliseconds while it does. Whatever happens (a failed step, a panic in a test), dropping
//! the engine wakes every stopped process, kills and reaps it, so no run leaves anything behind.

use crate::gap::{self, Seen};
use crate::hub::{Echo, Hub, PendingMeasure};
use crate::links::Links;
use crate::net::{LinkCommand, NetAction, NetState};
use crate::results::{
    ClientOutcome, EventKind, Measure, MeasureKind, NetEvent, OutputLine, ProcessChange,
    ProcessInfo, RunResults, Shutdown,
};
use crate::scenario::{
    Action, LineSpec, Scenario, Step, DEFAULT_READY_TIMEOUT_MS, DEFAULT_WAIT_TIMEOUT_MS,
};
use crate::style;
use crate::subst;
use crate::{RunFailure, RunOptions};
use anyhow::{anyhow, bail, Context};
use common::report::{Outcome, RequestLine, Summary};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often children are checked for exits while the engine waits.
const POLL: Duration = Duration::from_millis(10);
/// How long the last lines of killed processes may take to arrive.
const DRAIN: Duration = Duration::from_secs(3);
/// How many of a process's last lines an error message quotes.
const TAIL: usize = 15;

/// A process of the scenario with its placeholders expanded.
struct Slot {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    ready: Option<String>,
    ready_timeout: Duration,
    client: bool,
    child: Option<Child>,
    /// Runs started so far (the current run's number).
    runs: u32,
    last_exit: Option<ExitStatus>,
    timed_out: bool,
}

impl Slot {
    /// `bin arg…` as typed in a shell.
    fn command_line(&self) -> String {
        let bin = self
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::iter::once(bin)
            .chain(self.args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn signal(&self, signal: Signal) {
        if let Some(child) = &self.child {
            let _ = kill(Pid::from_raw(child.id() as i32), signal);
        }
    }

    /// SIGCONT (a stopped process must not stay behind), SIGKILL, reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.last_exit = Some(status);
            }
        }
    }
}

/// What the engine waits for.
enum Until<'a> {
    /// Only the time.
    Time,
    /// A line of process `proc` (of run `run`, if given) at index ≥ `cursor`.
    Line {
        proc: usize,
        run: Option<u32>,
        needle: &'a str,
        cursor: usize,
    },
    /// Every client has exited and every measure has happened: the scenario is over.
    End,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    Done,
    TimedOut,
    /// The process waited on is gone and its pipes are closed: the line cannot come.
    ProcessGone,
    /// [`crate::interrupt`] was called.
    Interrupted,
}

impl Waited {
    /// Turns an interruption into an error, anything else into itself.
    fn or_interrupted(self) -> anyhow::Result<Waited> {
        if self == Waited::Interrupted {
            bail!("interrupted");
        }
        Ok(self)
    }
}

/// A `gap` of a step, measured once the run is over (see [`crate::gap`]).
struct PendingGap {
    label: String,
    proc: usize,
    /// The client's line that marks its first answer from the other server.
    switch: String,
    /// The step's number (1-based).
    step: usize,
    /// The step's action, since the start.
    at: Duration,
}

struct Engine {
    hub: Arc<Hub>,
    slots: Vec<Slot>,
    /// When the scenario started.
    start: Instant,
    gaps: Vec<PendingGap>,
    /// Which link has which fault (pure) and the proxies that apply it (`None`: no links).
    net: NetState,
    links: Option<Links>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            slot.kill();
        }
    }
}

/// Runs `scenario` (see [`Scenario::run_keeping`]): when the timeline cannot be played to the
/// end, the report of what happened up to then comes with the error.
pub(crate) fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunResults, RunFailure> {
    let mut held = None;
    play(scenario, opts, &mut held).map_err(|error| {
        let partial = held.as_mut().and_then(|engine: &mut Engine| {
            let elapsed = engine.start.elapsed();
            engine.finish(scenario, elapsed).ok().map(Box::new)
        });
        RunFailure { error, partial }
    })
}

/// Plays the timeline with the engine kept in `held`, so a failed run can still be reported:
/// the ports and fault proxies, the processes, the steps one by one, then the end of the run.
fn play(
    scenario: &Scenario,
    opts: &RunOptions,
    held: &mut Option<Engine>,
) -> anyhow::Result<RunResults> {
    let bin_dir = match &opts.bin_dir {
        Some(dir) => dir.clone(),
        None => crate::bins::default_bin_dir()?,
    };
    let ports = free_ports(&scenario.endpoints)?;
    let proxies = LinkProxies::start(scenario, &ports)?;
    // Lives until this function returns, after every process of the run is gone.
    let tmpdir = tempfile::Builder::new()
        .prefix(&format!("tour-{}-", scenario.name))
        .tempdir()
        .context("creating the run's {tmpdir}")?;
    let values = scenario.values(|e| proxies.ports[e], &tmpdir.path().to_string_lossy());
    let slots = slots(scenario, opts, &bin_dir, &values)?;
    let echo = echo(opts, &slots);
    let start = Instant::now();
    let engine = held.insert(Engine {
        hub: Arc::new(Hub::new(slots.len(), start, echo)),
        slots,
        start,
        gaps: Vec::new(),
        net: NetState::new(scenario.net_links()),
        links: proxies.links,
    });
    engine.announce(scenario, &ports, &proxies.ports, &proxies.endpoints);
    let deadline = start + scenario.timeout();
    let mut previous_action = start;
    for (i, step) in scenario.steps.iter().enumerate() {
        let n = i + 1;
        let mut due = start + Duration::from_millis(step.at_ms);
        if let Some(after) = &step.after_ms {
            due = due.max(previous_action + after.resolve(&values)?);
        }
        engine.pump(due, &mut Until::Time).or_interrupted()?;
        if Instant::now() >= deadline {
            engine.hub.say(
                &format!("** timeout_ms reached: steps {n}.. not run"),
                style::RED,
            );
            break;
        }
        previous_action = engine.step(scenario, n, step, &values)?;
    }
    // Chaos mode ends with Ctrl-C to everyone, timed.
    let shutdown = scenario
        .exit_check
        .map(|limit| engine.interrupt_all(start, limit));
    // The clients (and the measures still to come) decide when the scenario is over.
    if engine.pump(deadline, &mut Until::End).or_interrupted()? != Waited::Done {
        engine.kill_clients_at_timeout();
    }
    let elapsed = start.elapsed();
    let mut report = engine.finish(scenario, elapsed)?;
    report.shutdown = shutdown;
    Ok(report)
}

/// The links' fault proxies (one per link, in front of the endpoint's real port) and the port
/// every placeholder expands to: an endpoint's own port, a link's proxy port.
struct LinkProxies {
    /// Each link's name and the endpoint it leads to, in the order of the proxies.
    endpoints: Vec<(String, String)>,
    /// The proxies; `None` when the scenario has no links.
    links: Option<Links>,
    /// Endpoint or link name → the port its placeholder expands to.
    ports: BTreeMap<String, u16>,
}

impl LinkProxies {
    fn start(scenario: &Scenario, ports: &BTreeMap<String, u16>) -> anyhow::Result<LinkProxies> {
        let endpoints = scenario.link_endpoints();
        let links = if endpoints.is_empty() {
            None
        } else {
            let upstreams: Vec<std::net::SocketAddr> = endpoints
                .iter()
                .map(|(_, e)| ([127, 0, 0, 1], ports[e]).into())
                .collect();
            Some(Links::start(&upstreams)?)
        };
        let mut all_ports = ports.clone();
        if let Some(links) = &links {
            for (i, (name, _)) in endpoints.iter().enumerate() {
                all_ports.insert(name.clone(), links.port(i));
            }
        }
        Ok(LinkProxies {
            endpoints,
            links,
            ports: all_ports,
        })
    }
}

/// One slot per process, its placeholders expanded; an error if a binary is missing.
fn slots(
    scenario: &Scenario,
    opts: &RunOptions,
    bin_dir: &std::path::Path,
    values: &subst::Values,
) -> anyhow::Result<Vec<Slot>> {
    // Chaos mode reads the clients' request lines to tell failures before its final Ctrl-C
    // from those at it.
    let chaos = scenario.exit_check.is_some();
    let mut slots = Vec::new();
    for p in &scenario.processes {
        let program = bin_dir.join(&p.bin);
        if !program.is_file() {
            bail!(
                "binary `{}` (process {:?} of scenario {:?}) not found in {}: build it with \
                 `cargo build --workspace --bins`{}",
                p.bin,
                p.name,
                scenario.name,
                bin_dir.display(),
                if cfg!(debug_assertions) {
                    ""
                } else {
                    " --release"
                }
            );
        }
        let mut args = p
            .args
            .iter()
            .map(|a| values.expand(a))
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("process {:?}", p.name))?;
        if p.client && (opts.wants_request_lines() || scenario.gap_reads(&p.name) || chaos) {
            // Contract: every client prints one `I: request …` line per request with it.
            args.push("--log-requests".to_owned());
        }
        slots.push(Slot {
            name: p.name.clone(),
            program,
            args,
            ready: p.ready.as_deref().map(|r| values.expand(r)).transpose()?,
            ready_timeout: Duration::from_millis(
                p.ready_timeout_ms.unwrap_or(DEFAULT_READY_TIMEOUT_MS),
            ),
            client: p.client,
            child: None,
            runs: 0,
            last_exit: None,
            timed_out: false,
        });
    }
    Ok(slots)
}

/// The live echo (the tour): names right-aligned to the longest; `None` in tests.
fn echo(opts: &RunOptions, slots: &[Slot]) -> Option<Echo> {
    opts.echo.then(|| {
        let width = slots.iter().map(|s| s.name.len()).max().unwrap_or(0);
        Echo {
            names: slots
                .iter()
                .map(|s| format!("{:>width$}", s.name))
                .collect(),
            color: opts.color,
        }
    })
}

impl Engine {
    /// The run's first lines: its title, its endpoints, and each link as the `netfault`
    /// command a person would run for it in a terminal.
    fn announce(
        &self,
        scenario: &Scenario,
        ports: &BTreeMap<String, u16>,
        all_ports: &BTreeMap<String, u16>,
        link_endpoints: &[(String, String)],
    ) {
        let title = if scenario.title.is_empty() {
            scenario.name.clone()
        } else {
            format!("{}: {}", scenario.name, scenario.title)
        };
        self.hub.say(&format!("== {title}"), style::BOLD);
        if !ports.is_empty() {
            let list: Vec<String> = scenario
                .endpoints
                .iter()
                .map(|e| format!("{e}=tcp://127.0.0.1:{}", ports[e]))
                .collect();
            self.hub
                .say(&format!("** endpoints {}", list.join(" ")), style::DIM);
        }
        for (i, link) in self.net.links().iter().enumerate() {
            let (name, endpoint) = &link_endpoints[i];
            self.hub.say(
                &format!(
                    "** link {name} (host {} → host {}): netfault --listen tcp://127.0.0.1:{} \
                     --to tcp://127.0.0.1:{}",
                    link.from_host, link.to_host, all_ports[name], ports[endpoint]
                ),
                style::DIM,
            );
        }
    }

    /// Plays step `n` once it is due: records it, arms its measure and gaps, does its action,
    /// waits for its line. Returns when its action began (the next `after_ms` counts from it).
    fn step(
        &mut self,
        scenario: &Scenario,
        n: usize,
        step: &Step,
        values: &subst::Values,
    ) -> anyhow::Result<Instant> {
        self.record_step(n, step, values)?;
        let action_at = Instant::now();
        let cursor = self.hub.lock().lines.len();
        self.arm(scenario, n, step, values, action_at, cursor)?;
        if let Some((action, names)) = step.net_action() {
            self.net_step(scenario, action, names);
        }
        if let Some((action, names)) = step.action() {
            for name in names {
                let proc = scenario.process_index(name).expect("checked at load");
                self.act(action, proc)
                    .with_context(|| format!("step {n}: {} {name}", action.verb()))?;
            }
        }
        if let Some(w) = &step.wait {
            self.wait_for_line(scenario, n, w, values, cursor)?;
        }
        Ok(action_at)
    }

    /// Records step `n` as an event and says its note.
    fn record_step(&self, n: usize, step: &Step, values: &subst::Values) -> anyhow::Result<()> {
        let note = step.note.as_ref().map(|n| values.expand(n)).transpose()?;
        let (action, processes) = step
            .action()
            .map(|(a, names)| (Some(a.verb().to_owned()), names.to_vec()))
            .or_else(|| {
                step.net_action()
                    .map(|(a, names)| (Some(a.verb()), names.to_vec()))
            })
            .unwrap_or_default();
        self.hub.record(
            format!("step {n}"),
            EventKind::Step {
                number: n,
                action,
                processes,
                network: step.net_action().is_some(),
                note: note.clone(),
            },
        );
        if let Some(note) = &note {
            self.hub.say(&format!("** {note}"), style::STEP);
        }
        Ok(())
    }

    /// Arms step `n`'s measure (its line is looked for from `cursor` on) and its gaps (read
    /// once the run is over), both timed from `action_at`.
    fn arm(
        &mut self,
        scenario: &Scenario,
        n: usize,
        step: &Step,
        values: &subst::Values,
        action_at: Instant,
        cursor: usize,
    ) -> anyhow::Result<()> {
        if let Some(m) = &step.measure {
            let proc = scenario.process_index(&m.process).expect("checked at load");
            self.hub.lock().measures.push(PendingMeasure {
                label: m.label.clone(),
                proc,
                step: n,
                needle: values.expand(&m.line)?,
                from: action_at,
                from_index: cursor,
                elapsed: None,
            });
        }
        for g in &step.gap {
            self.gaps.push(PendingGap {
                label: g.label.clone(),
                proc: scenario.process_index(&g.process).expect("checked at load"),
                switch: values.expand(&g.line)?,
                step: n,
                at: self.hub.since_start(action_at),
            });
        }
        Ok(())
    }

    /// Step `n`'s `wait`: its process's line (from `cursor` on) within its timeout, or an error
    /// that says why not.
    fn wait_for_line(
        &mut self,
        scenario: &Scenario,
        n: usize,
        w: &LineSpec,
        values: &subst::Values,
        cursor: usize,
    ) -> anyhow::Result<()> {
        let proc = scenario.process_index(&w.process).expect("checked at load");
        let needle = values.expand(&w.line)?;
        let timeout = Duration::from_millis(w.timeout_ms.unwrap_or(DEFAULT_WAIT_TIMEOUT_MS));
        self.hub.say(
            &format!("** waiting for {:?} from {}", needle, w.process),
            style::DIM,
        );
        let mut until = Until::Line {
            proc,
            run: None,
            needle: &needle,
            cursor,
        };
        match self
            .pump(Instant::now() + timeout, &mut until)
            .or_interrupted()?
        {
            Waited::Done => Ok(()),
            why => bail!(
                "step {n}: {} printed no line containing {needle:?} {}",
                w.process,
                self.why(proc, why, timeout)
            ),
        }
    }

    /// The run reached `timeout_ms` with clients still running: each is killed, its request in
    /// flight counted as lost.
    fn kill_clients_at_timeout(&mut self) {
        for proc in 0..self.slots.len() {
            let slot = &mut self.slots[proc];
            if slot.client && slot.child.is_some() {
                slot.timed_out = true;
                slot.kill();
                self.hub.say_about(
                    proc,
                    &slot.name,
                    "(still running at timeout_ms: killed, its request in flight counts as lost)",
                    EventKind::Process {
                        process: slot.name.clone(),
                        change: ProcessChange::Killed,
                    },
                );
            }
        }
    }
}

impl Engine {
    /// Sends SIGINT to every running process at once and times each one's exit; a process
    /// still running after a grace of `limit` + 2 s is left to [`finish`](Self::finish).
    fn interrupt_all(&mut self, start: Instant, limit: Duration) -> Shutdown {
        self.reap();
        let at = Instant::now();
        self.hub.say(
            &format!(
                "** Ctrl-C (SIGINT) to every process: each must exit within {}",
                style::human(limit)
            ),
            style::STEP,
        );
        let running: Vec<usize> = (0..self.slots.len())
            .filter(|&p| self.slots[p].child.is_some())
            .collect();
        for &p in &running {
            self.slots[p].signal(Signal::SIGINT);
        }
        let mut exits: Vec<Option<Duration>> = vec![None; running.len()];
        let grace = at + limit + Duration::from_secs(2);
        while exits.iter().any(Option::is_none) && Instant::now() < grace {
            for (i, &p) in running.iter().enumerate() {
                let slot = &mut self.slots[p];
                let Some(child) = slot.child.as_mut() else {
                    continue;
                };
                if let Ok(Some(status)) = child.try_wait() {
                    let took = at.elapsed();
                    exits[i] = Some(took);
                    slot.child = None;
                    slot.last_exit = Some(status);
                    let how = describe(status);
                    self.hub.say_about(
                        p,
                        &slot.name,
                        &format!("({how} {} after Ctrl-C)", style::human(took)),
                        EventKind::Process {
                            process: slot.name.clone(),
                            change: ProcessChange::Exited {
                                how: format!("{how} after Ctrl-C"),
                            },
                        },
                    );
                }
            }
            drop(self.hub.wait(self.hub.lock(), POLL));
        }
        Shutdown {
            at: at.saturating_duration_since(start),
            exits: running
                .iter()
                .zip(exits)
                .map(|(&p, e)| (self.slots[p].name.clone(), e))
                .collect(),
        }
    }

    /// Performs a network step: works out which links change and tells their proxies.
    fn net_step(&mut self, scenario: &Scenario, action: NetAction, names: &[String]) {
        let covered: Vec<usize> = {
            let mut all: Vec<usize> = names.iter().flat_map(|n| self.net.links_of(n)).collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        let link_names: Vec<String> = covered
            .iter()
            .map(|&i| self.net.links()[i].name.clone())
            .collect();
        let hosts: Vec<String> = names
            .iter()
            .filter(|n| self.net.links().iter().all(|l| &l.name != *n))
            .cloned()
            .collect();
        let changes = self.net.apply(action, names);
        let event = NetEvent {
            action,
            targets: names.to_vec(),
            hosts,
            links: link_names.clone(),
        };
        let what = names
            .iter()
            .map(|n| {
                if scenario.host_groups().iter().any(|(h, _)| h == n) {
                    format!("host {n}")
                } else {
                    format!("link {n}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        self.hub.say_event(
            &format!("** {} {what}", action.verb()),
            style::STEP,
            Some(event),
        );
        // What a person would type into each link's `netfault`, grouped by command.
        let mut by_command: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, command) in &changes {
            let typed = match command {
                LinkCommand::Reset => "reset".to_owned(),
                LinkCommand::Set(fault) => fault.to_string(),
            };
            by_command
                .entry(typed)
                .or_default()
                .push(self.net.links()[*i].name.clone());
            if let Some(links) = &self.links {
                links.apply(*i, *command);
            }
        }
        if changes.is_empty() {
            self.hub.say(
                &format!(
                    "   (no link changes: {} already as asked)",
                    link_names.join(", ")
                ),
                style::DIM,
            );
        }
        for (typed, on) in by_command {
            self.hub.say(
                &format!("   netfault> {typed}    (on {})", on.join(", ")),
                style::DIM,
            );
        }
    }

    /// Performs one action on one process.
    fn act(&mut self, action: Action, proc: usize) -> anyhow::Result<()> {
        let name = self.slots[proc].name.clone();
        let mut text = format!("** {} {name}", action.verb());
        if matches!(action, Action::Start | Action::Restart) {
            // The command line, so a reader can run the same thing in a terminal.
            text.push_str(&format!(": {}", self.slots[proc].command_line()));
        }
        let change = match action {
            Action::Start => None,
            Action::Kill | Action::Restart => Some(ProcessChange::Killed),
            Action::Stop => Some(ProcessChange::Stopped),
            Action::Cont => Some(ProcessChange::Continued),
            Action::Interrupt => Some(ProcessChange::Interrupted),
        };
        let kind = change.map_or(EventKind::Message, |change| EventKind::Process {
            process: name.clone(),
            change,
        });
        self.hub.say_kind(&text, style::STEP, kind, None);
        self.reap();
        let slot = &mut self.slots[proc];
        match action {
            Action::Start => {
                if slot.child.is_some() {
                    bail!("{name} is already running (use restart)");
                }
                self.spawn(proc)?;
            }
            Action::Restart => {
                slot.kill();
                self.spawn(proc)?;
            }
            Action::Kill => slot.kill(),
            Action::Stop => slot.signal(Signal::SIGSTOP),
            Action::Cont => slot.signal(Signal::SIGCONT),
            Action::Interrupt => slot.signal(Signal::SIGINT),
        }
        Ok(())
    }

    /// Starts a new run of `proc` and waits for its `ready` line.
    fn spawn(&mut self, proc: usize) -> anyhow::Result<()> {
        let cursor = self.hub.lock().lines.len();
        let slot = &mut self.slots[proc];
        let mut child = Command::new(&slot.program)
            .args(&slot.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", slot.program.display()))?;
        slot.runs += 1;
        let run = slot.runs;
        self.hub.record(
            format!("{} started (run {run})", slot.name),
            EventKind::Process {
                process: slot.name.clone(),
                change: ProcessChange::Started { run },
            },
        );
        self.hub
            .pump(proc, run, child.stdout.take().expect("piped"));
        self.hub
            .pump(proc, run, child.stderr.take().expect("piped"));
        slot.child = Some(child);
        let Some(ready) = slot.ready.clone() else {
            return Ok(());
        };
        let timeout = slot.ready_timeout;
        let mut until = Until::Line {
            proc,
            run: Some(run),
            needle: &ready,
            cursor,
        };
        match self
            .pump(Instant::now() + timeout, &mut until)
            .or_interrupted()?
        {
            Waited::Done => Ok(()),
            why => Err(anyhow!(
                "{} never printed its ready line {ready:?} {}",
                self.slots[proc].name,
                self.why(proc, why, timeout)
            )),
        }
    }

    /// Explains a failed wait, with the last lines of the process.
    fn why(&self, proc: usize, why: Waited, timeout: Duration) -> String {
        let slot = &self.slots[proc];
        let reason = match why {
            Waited::ProcessGone => match slot.last_exit {
                Some(status) => format!("before it ended ({})", describe(status)),
                None => "and is not running".to_owned(),
            },
            _ => format!("within {}", style::human(timeout)),
        };
        let state = self.hub.lock();
        let lines: Vec<&str> = state
            .lines
            .iter()
            .filter(|l| l.proc == proc)
            .map(|l| l.text.as_str())
            .collect();
        let tail = &lines[lines.len().saturating_sub(TAIL)..];
        format!(
            "{reason}; its last {} lines:\n{}",
            tail.len(),
            tail.iter()
                .map(|l| format!("  {} | {l}", slot.name))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// Notices children that exited by themselves.
    fn reap(&mut self) {
        for proc in 0..self.slots.len() {
            let slot = &mut self.slots[proc];
            let Some(child) = slot.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                slot.child = None;
                slot.last_exit = Some(status);
                let how = describe(status);
                self.hub.say_about(
                    proc,
                    &slot.name,
                    &format!("({how})"),
                    EventKind::Process {
                        process: slot.name.clone(),
                        change: ProcessChange::Exited { how: how.clone() },
                    },
                );
            }
        }
    }

    /// Waits until `until` holds or `deadline` passes, reaping exited children meanwhile.
    fn pump(&mut self, deadline: Instant, until: &mut Until<'_>) -> Waited {
        loop {
            if crate::interrupted() {
                return Waited::Interrupted;
            }
            self.reap();
            let state = self.hub.lock();
            match until {
                Until::Time => {}
                Until::End => {
                    if self.slots.iter().all(|s| !s.client || s.child.is_none())
                        && state.measures.iter().all(|m| m.elapsed.is_some())
                    {
                        return Waited::Done;
                    }
                }
                Until::Line {
                    proc,
                    run,
                    needle,
                    cursor,
                } => {
                    let found = state.lines[*cursor..].iter().any(|l| {
                        l.proc == *proc
                            && run.is_none_or(|r| l.run == r)
                            && l.text.contains(*needle)
                    });
                    if found {
                        return Waited::Done;
                    }
                    *cursor = state.lines.len();
                    let slot = &self.slots[*proc];
                    let current = run.is_none_or(|r| r == slot.runs);
                    if slot.child.is_none() && current && state.open_pipes[*proc] == 0 {
                        return Waited::ProcessGone;
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Waited::TimedOut;
            }
            drop(self.hub.wait(state, POLL.min(deadline - now)));
        }
    }

    /// Ends every process, waits for their last lines and builds the report.
    fn finish(&mut self, scenario: &Scenario, elapsed: Duration) -> anyhow::Result<RunResults> {
        for slot in &mut self.slots {
            slot.kill();
        }
        let drained = Instant::now() + DRAIN;
        let mut state = self.hub.lock();
        while state.open_pipes.iter().any(|&n| n > 0) && Instant::now() < drained {
            state = self.hub.wait(state, POLL);
        }
        let mut lines: BTreeMap<String, Vec<String>> = self
            .slots
            .iter()
            .map(|s| (s.name.clone(), Vec::new()))
            .collect();
        for l in &state.lines {
            if let Some(v) = lines.get_mut(&self.slots[l.proc].name) {
                v.push(l.text.clone());
            }
        }
        let mut measures: Vec<(usize, Measure)> = state
            .measures
            .iter()
            .map(|m| {
                let measure = Measure {
                    label: m.label.clone(),
                    elapsed: m.elapsed,
                    at: self.hub.since_start(m.from),
                    process: self.slots[m.proc].name.clone(),
                    kind: MeasureKind::Line,
                };
                (m.step, measure)
            })
            .collect();
        for g in &self.gaps {
            // The client's answers and switch lines, in the order it printed them.
            let seen: Vec<(Duration, Seen)> = state
                .lines
                .iter()
                .filter(|l| l.proc == g.proc)
                .filter_map(|l| {
                    if l.text.contains(&g.switch) {
                        return Some((l.at, Seen::Switch));
                    }
                    let answered = l.text.contains("request seq=")
                        && l.text.parse::<RequestLine>().ok()?.outcome == Outcome::Answered;
                    answered.then_some((l.at, Seen::Answer))
                })
                .collect();
            let silence = gap::failover_gap(&seen, g.at);
            let measure = Measure {
                label: g.label.clone(),
                elapsed: silence.map(|s| s.length()),
                at: silence.map_or(g.at, |s| s.from),
                process: self.slots[g.proc].name.clone(),
                kind: MeasureKind::Gap,
            };
            measures.push((g.step, measure));
        }
        // In step order (stable: a step's line measure before its gaps).
        measures.sort_by_key(|(step, _)| *step);
        let measures = measures.into_iter().map(|(_, m)| m).collect();
        let events = state.events.clone();
        let output = state
            .lines
            .iter()
            .map(|l| OutputLine {
                at: l.at,
                process: self.slots[l.proc].name.clone(),
                run: l.run,
                text: l.text.clone(),
            })
            .collect();
        drop(state);
        let clients: Vec<ClientOutcome> = self
            .slots
            .iter()
            .filter(|s| s.client)
            .map(|s| ClientOutcome {
                name: s.name.clone(),
                summary: Summary::last_in(&lines[&s.name]),
                exit_code: if s.timed_out {
                    None
                } else {
                    s.last_exit.and_then(|e| e.code())
                },
                timed_out: s.timed_out,
            })
            .collect();
        let mut summary = Summary::default();
        for s in clients.iter().filter_map(|c| c.summary) {
            summary.sent += s.sent;
            summary.answered += s.answered;
            summary.failed += s.failed;
            summary.retries += s.retries;
        }
        Ok(RunResults {
            scenario: scenario.name.clone(),
            summary,
            lost: clients.iter().map(ClientOutcome::lost).sum(),
            clients,
            measures,
            lines,
            events,
            hosts: scenario.host_groups(),
            shutdown: None,
            elapsed,
            processes: self
                .slots
                .iter()
                .map(|s| ProcessInfo {
                    name: s.name.clone(),
                    client: s.client,
                })
                .collect(),
            output,
        })
    }
}

/// `arg` quoted for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("ended by {}", s.as_str()),
            Err(_) => format!("ended by signal {sig}"),
        },
        _ => "ended".to_owned(),
    }
}

/// A distinct free port on 127.0.0.1 for each endpoint (never one this process handed out
/// before, so parallel scenario runs in one test binary never share a port).
fn free_ports(names: &[String]) -> anyhow::Result<BTreeMap<String, u16>> {
    Ok(names
        .iter()
        .map(|n| (n.clone(), common::endpoint::free_port()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(shell_quote("--frontend"), "--frontend");
        assert_eq!(shell_quote("tcp://127.0.0.1:5555"), "tcp://127.0.0.1:5555");
        assert_eq!(shell_quote("out=say hi"), "'out=say hi'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn endpoints_get_distinct_ports() {
        let names: Vec<String> = (0..8).map(|i| format!("e{i}")).collect();
        let ports = free_ports(&names).unwrap();
        let distinct: std::collections::BTreeSet<u16> = ports.values().copied().collect();
        assert_eq!(distinct.len(), 8);
    }
}
