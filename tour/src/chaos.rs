//! Chaos mode: a random schedule of the faults a pattern claims to survive, drawn from a seed,
//! and the invariants checked once it has been played.
//!
//! A scenario's `[chaos]` table lists what may be done to which process or host (kill -9 and
//! restart, stop and cont, partition and heal, delay and heal) and how long a fault and the
//! quiet time between two faults may last. [`schedule`] draws the faults from a seed: the
//! same seed and settings give the same schedule, printed so a failing run can be replayed
//! (`tour --chaos --seed S`). One fault is in force at a time and each is undone before the
//! next: what a pattern promises to survive is a fault and its repair, not a pile-up.
//! [`violations`] reads a run's [`RunResults`] for what must never happen. Both are pure: no clock,
//! no process.
//!
//! The scenario side of chaos mode lives here too: `ChaosSpec` (the file's `[chaos]` table) and
//! its checks, and [`Scenario::chaos`], which turns a scenario into a [`ChaosRun`]: its setup
//! steps, then the schedule as ordinary steps the engine plays like any other.

use crate::net::NetState;
use crate::promise::{Promise, Terms};
use crate::results::RunResults;
use crate::scenario::{DelaySpec, Millis, Scenario, Step};
use anyhow::{bail, Context};
use common::report::{Outcome, RequestLine};
use common::rng::Rng;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One kind of fault and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` the process, restart it when the fault ends.
    Kill(String),
    /// SIGSTOP the process, SIGCONT when the fault ends.
    Stop(String),
    /// Partition the host (or link), heal when the fault ends.
    Partition(String),
    /// Add this latency to the host's (or link's) links, heal when the fault ends.
    Delay(String, Duration),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill(p) => write!(f, "kill -9 {p}, restart"),
            Fault::Stop(p) => write!(f, "stop {p}, cont"),
            Fault::Partition(h) => write!(f, "partition {h}, heal"),
            Fault::Delay(h, d) => write!(f, "delay {h} by {} ms, heal", d.as_millis()),
        }
    }
}

/// A fault of the schedule: begins `quiet` after the previous one ended (or after the setup),
/// lasts `lasts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Quiet time before it.
    pub quiet: Duration,
    /// What is done.
    pub fault: Fault,
    /// How long until it is undone.
    pub lasts: Duration,
}

/// What a scenario allows chaos to do, with its timings resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Menu {
    /// Processes that may be killed and restarted.
    pub kill: Vec<String>,
    /// Processes that may be stopped and continued.
    pub stop: Vec<String>,
    /// Hosts or links that may be partitioned and healed.
    pub partition: Vec<String>,
    /// Hosts or links that may be delayed and healed.
    pub delay: Vec<String>,
    /// Latency added by a delay fault.
    pub delay_by: Duration,
    /// Longest fault (each lasts between a quarter of this and all of it).
    pub max_fault: Duration,
    /// Longest quiet time between two faults (each between half of this and all of it).
    pub max_quiet: Duration,
}

/// Draws the faults of a `duration`-long schedule from `seed`: the same inputs always give
/// the same schedule. Faults are drawn until the next one would end after `duration`.
pub fn schedule(menu: &Menu, seed: u64, duration: Duration) -> Vec<Planned> {
    let mut rng = Rng::seeded(seed);
    let kinds: Vec<(usize, &Vec<String>)> = [&menu.kill, &menu.stop, &menu.partition, &menu.delay]
        .into_iter()
        .enumerate()
        .filter(|(_, targets)| !targets.is_empty())
        .collect();
    let mut out = Vec::new();
    if kinds.is_empty() {
        return out;
    }
    let pick = |rng: &mut Rng, max: Duration, min_share: u64| {
        let max = max.as_millis() as u64;
        let min = max / min_share;
        Duration::from_millis(min + rng.below(max - min + 1))
    };
    let mut t = Duration::ZERO;
    loop {
        let quiet = pick(&mut rng, menu.max_quiet, 2);
        let lasts = pick(&mut rng, menu.max_fault, 4);
        let (kind, targets) = kinds[rng.below(kinds.len() as u64) as usize];
        let target = targets[rng.below(targets.len() as u64) as usize].clone();
        if t + quiet + lasts > duration {
            break;
        }
        t += quiet + lasts;
        let fault = match kind {
            0 => Fault::Kill(target),
            1 => Fault::Stop(target),
            2 => Fault::Partition(target),
            _ => Fault::Delay(target, menu.delay_by),
        };
        out.push(Planned {
            quiet,
            fault,
            lasts,
        });
    }
    out
}

/// The schedule as printed before a run and after a failure: one fault per line with its
/// start and end times after the setup.
pub fn describe(seed: u64, plan: &[Planned]) -> String {
    let mut out = format!("chaos seed {seed}: {} faults\n", plan.len());
    let mut t = Duration::ZERO;
    for p in plan {
        t += p.quiet;
        let start = t;
        t += p.lasts;
        out.push_str(&format!(
            "  {:>7.3} s .. {:>7.3} s  {}\n",
            start.as_secs_f64(),
            t.as_secs_f64(),
            p.fault
        ));
    }
    out
}

/// Lines of a client that mean it accepted or saw a reply to another request.
const WRONG_REPLY: [&str; 3] = ["malformed reply", "wrong reply", "unexpected reply"];

/// Everything that went wrong in a chaos run; empty means it passed.
///
/// - nothing lost: every request a client sent was answered or reported failed;
/// - no request failed before the final Ctrl-C (read from the client's request lines, which
///   chaos mode asks every client for; of a client without them, at most one may have failed:
///   the one in flight at Ctrl-C);
/// - no reply delivered for the wrong request (a client line saying so);
/// - no process exited that the schedule did not end (before the final Ctrl-C);
/// - every process exited within `exit_limit` of the final Ctrl-C.
pub fn violations(report: &RunResults, exit_limit: Duration) -> Vec<String> {
    let mut out = Vec::new();
    if report.lost > 0 {
        out.push(format!("{} requests lost", report.lost));
    }
    let shutdown_at = report.shutdown.as_ref().map(|s| s.at);
    for c in &report.clients {
        // Each request's outcome with the time its line came: an asynchronous client has many
        // requests in flight at Ctrl-C, each rightly counted failed then.
        let requests: Vec<(Duration, RequestLine)> = report
            .output
            .iter()
            .filter(|l| l.process == c.name && l.text.contains("request seq="))
            .filter_map(|l| Some((l.at, l.text.parse::<RequestLine>().ok()?)))
            .collect();
        let failed_early = requests
            .iter()
            .filter(|(at, r)| {
                r.outcome == Outcome::Failed && shutdown_at.is_none_or(|end| *at < end)
            })
            .count();
        match c.summary {
            None => out.push(format!("client {} printed no summary", c.name)),
            Some(_) if failed_early > 0 => out.push(format!(
                "client {}: {failed_early} requests failed before the final Ctrl-C",
                c.name
            )),
            Some(s) if requests.is_empty() && s.failed > 1 => out.push(format!(
                "client {}: {} requests failed (only the one in flight at Ctrl-C may)",
                c.name, s.failed
            )),
            Some(_) => {}
        }
        for line in report.lines_of(&c.name) {
            if WRONG_REPLY.iter().any(|w| line.contains(w)) {
                out.push(format!("client {}: {line}", c.name));
            }
        }
    }
    for e in &report.events {
        if shutdown_at.is_some_and(|at| e.at >= at) {
            break;
        }
        let exited = e.text.contains(" (exited with") || e.text.contains(" (ended by");
        if exited && !e.text.starts_with("**") {
            out.push(format!(
                "at {:.3} s, not caused by the schedule: {}",
                e.at.as_secs_f64(),
                e.text
            ));
        }
    }
    match &report.shutdown {
        None => out.push("the final Ctrl-C never happened".into()),
        Some(s) => {
            for (name, took) in &s.exits {
                match took {
                    Some(d) if *d <= exit_limit => {}
                    Some(d) => out.push(format!(
                        "{name} took {} ms to exit after Ctrl-C (limit {} ms)",
                        d.as_millis(),
                        exit_limit.as_millis()
                    )),
                    None => out.push(format!(
                        "{name} did not exit within {} ms of Ctrl-C",
                        exit_limit.as_millis()
                    )),
                }
            }
        }
    }
    out
}

/// The `[chaos]` table: the faults the pattern claims to survive, and their timings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChaosSpec {
    #[serde(default)]
    kill: Vec<String>,
    #[serde(default)]
    stop: Vec<String>,
    #[serde(default)]
    partition: Vec<String>,
    #[serde(default)]
    delay: Vec<String>,
    delay_ms: Option<Millis>,
    max_fault_ms: Millis,
    max_quiet_ms: Millis,
    /// The pattern's own promises, checked at the end of a run (see [`crate::promise`]).
    #[serde(default)]
    promises: Vec<String>,
    /// For `one-server-answers`: the grace after each step of the schedule before only one
    /// server may answer.
    settle_ms: Option<Millis>,
    /// For `executed-once`: the two brokers of a pair, whose faults no longer excuse a repeat
    /// one at a time (see [`crate::promise`]).
    #[serde(default)]
    pair: Vec<String>,
    /// Variables changed in chaos mode (e.g. a client that runs until Ctrl-C).
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

impl ChaosSpec {
    /// Checks the table against the scenario's processes and network when the file is loaded:
    /// no client is killed or stopped (clients run throughout), only hosts with links and links
    /// are partitioned or delayed, and each promise has what it needs.
    pub(crate) fn check(&self, scenario: &Scenario, net: &NetState) -> anyhow::Result<()> {
        for p in self.kill.iter().chain(&self.stop) {
            match scenario.processes.iter().find(|s| &s.name == p) {
                None => bail!("[chaos] names unknown process {p:?}"),
                Some(s) if s.client => {
                    bail!("[chaos] may not kill or stop client {p:?}: clients run throughout")
                }
                Some(_) => {}
            }
        }
        for h in self.partition.iter().chain(&self.delay) {
            if !net.touches(h) {
                bail!("[chaos] names {h:?}, which is neither a host with links nor a link");
            }
        }
        for p in &self.promises {
            let promise: Promise = p
                .parse()
                .map_err(|e| anyhow::anyhow!("[chaos] promises: {e}"))?;
            if promise == Promise::OneServerAnswers && self.settle_ms.is_none() {
                bail!("[chaos] promise {p:?} needs settle_ms");
            }
        }
        if !self.pair.is_empty() {
            if self.pair.len() != 2 || self.pair[0] == self.pair[1] {
                bail!("[chaos] pair must name two processes, not {:?}", self.pair);
            }
            for p in &self.pair {
                match scenario.processes.iter().find(|s| &s.name == p) {
                    None => bail!("[chaos] pair names unknown process {p:?}"),
                    Some(s) if s.client => bail!("[chaos] pair names client {p:?}"),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// What the schedule may draw, with its timings resolved against the run's values.
    fn menu(&self, values: &crate::subst::Values) -> anyhow::Result<Menu> {
        Ok(Menu {
            kill: self.kill.clone(),
            stop: self.stop.clone(),
            partition: self.partition.clone(),
            delay: self.delay.clone(),
            delay_by: match &self.delay_ms {
                Some(m) => m.resolve(values).context("[chaos] delay_ms")?,
                None => Duration::from_millis(200),
            },
            max_fault: self
                .max_fault_ms
                .resolve(values)
                .context("[chaos] max_fault_ms")?,
            max_quiet: self
                .max_quiet_ms
                .resolve(values)
                .context("[chaos] max_quiet_ms")?,
        })
    }

    /// The pattern's own promises, parsed.
    fn promises(&self) -> anyhow::Result<Vec<Promise>> {
        self.promises
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|e| anyhow::anyhow!("[chaos] promises: {e}"))
            })
            .collect()
    }

    /// The grace after each step before only one server may answer (`one-server-answers`).
    fn settle(&self, values: &crate::subst::Values) -> anyhow::Result<Duration> {
        Ok(match &self.settle_ms {
            Some(m) => m.resolve(values).context("[chaos] settle_ms")?,
            None => Duration::ZERO,
        })
    }

    /// The two brokers of a pair, if the table names them.
    fn pair(&self) -> Option<[String; 2]> {
        match &self.pair[..] {
            [a, b] => Some([a.clone(), b.clone()]),
            _ => None,
        }
    }
}

/// A scenario turned into a chaos run: its setup steps, then a seeded random schedule.
#[derive(Debug, Clone)]
pub struct ChaosRun {
    /// The scenario to run: the setup steps of the file, then the schedule as steps.
    pub scenario: Scenario,
    /// The seed the schedule was drawn from.
    pub seed: u64,
    /// The faults, in order.
    pub plan: Vec<Planned>,
    /// How long each process may take to exit after the final Ctrl-C.
    pub exit_limit: Duration,
    /// The pattern's own promises, checked after the general invariants.
    pub promises: Vec<Promise>,
    /// What the promises need to know (the settle time, a broker pair).
    pub terms: Terms,
}

impl ChaosRun {
    /// The schedule as printed before the run and after a failure.
    pub fn describe(&self) -> String {
        describe(self.seed, &self.plan)
    }

    /// Plays the run and returns the report with the broken invariants (empty: passed).
    pub fn run(
        &self,
        opts: &crate::RunOptions,
    ) -> anyhow::Result<(crate::RunResults, Vec<String>)> {
        let report = self.scenario.run(opts)?;
        let broken = self.violations(&report);
        Ok((report, broken))
    }

    /// Like [`run`](Self::run), but a run that cannot be played to the end still hands back
    /// what happened until then (for the timeline report); the invariants are checked on a
    /// complete run only.
    pub fn run_keeping(
        &self,
        opts: &crate::RunOptions,
    ) -> (Result<crate::RunResults, crate::RunFailure>, Vec<String>) {
        let result = self.scenario.run_keeping(opts);
        let broken = match &result {
            Ok(report) => self.violations(report),
            Err(_) => Vec::new(),
        };
        (result, broken)
    }

    /// The general invariants, then the pattern's own promises.
    fn violations(&self, report: &crate::RunResults) -> Vec<String> {
        let mut broken = violations(report, self.exit_limit);
        broken.extend(crate::promise::violations(
            report,
            &self.promises,
            &self.terms,
        ));
        broken
    }
}

impl Scenario {
    /// Whether the file has a `[chaos]` table.
    pub fn has_chaos(&self) -> bool {
        self.chaos.is_some()
    }

    /// This scenario in chaos mode: the steps up to the last `start` (the setup, without its
    /// measures), then `duration` of faults drawn from `seed` out of the `[chaos]` table, then
    /// Ctrl-C to every process. The table's `vars` override the file's and those set so far;
    /// change them afterwards on [`ChaosRun::scenario`].
    pub fn chaos(&self, seed: u64, duration: Duration) -> anyhow::Result<ChaosRun> {
        let Some(spec) = &self.chaos else {
            bail!("scenario {:?} has no [chaos] table", self.name);
        };
        let mut run = self.clone();
        for (k, v) in &spec.vars {
            run.vars.insert(k.clone(), v.clone());
        }
        let values = run.values(|_| 1, "/tmp");
        let menu = spec.menu(&values)?;
        let plan = schedule(&menu, seed, duration);
        let promises = spec.promises()?;
        let settle = spec.settle(&values)?;
        run.keep_setup_only();
        for p in &plan {
            run.steps.extend(fault_steps(p));
        }
        // Room for the setup and the last recovery, on top of the schedule.
        run.timeout_ms = Some(duration.as_millis() as u64 + 120_000);
        let exit_limit = Duration::from_secs(1);
        run.exit_check = Some(exit_limit);
        run.title = format!("chaos seed {seed}, {} faults: {}", plan.len(), run.title);
        run.check()?;
        Ok(ChaosRun {
            scenario: run,
            seed,
            plan,
            exit_limit,
            promises,
            terms: Terms {
                settle,
                pair: spec.pair(),
            },
        })
    }
}

/// The two steps of a planned fault: the fault `quiet` after the previous step, and its undoing
/// (restart, cont, heal) `lasts` after that.
fn fault_steps(p: &Planned) -> [Step; 2] {
    let mut begin = Step::after(
        p.quiet,
        format!("chaos: {} after {}", p.fault, crate::style::human(p.lasts)),
    );
    let mut end = Step::after(p.lasts, "chaos: the fault is undone".to_owned());
    match &p.fault {
        Fault::Kill(proc) => {
            begin.kill = Some(vec![proc.clone()]);
            end.restart = Some(vec![proc.clone()]);
        }
        Fault::Stop(proc) => {
            begin.stop = Some(vec![proc.clone()]);
            end.cont = Some(vec![proc.clone()]);
        }
        Fault::Partition(host) => {
            begin.partition = Some(vec![host.clone()]);
            end.heal = Some(vec![host.clone()]);
        }
        Fault::Delay(host, by) => {
            begin.delay = Some(DelaySpec {
                on: vec![host.clone()],
                ms: by.as_millis() as u64,
            });
            end.heal = Some(vec![host.clone()]);
        }
    }
    [begin, end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ClientOutcome, Event, EventKind, Shutdown};
    use common::report::Summary;
    use std::collections::BTreeMap;

    fn menu() -> Menu {
        Menu {
            kill: vec!["worker1".into(), "queue".into()],
            stop: vec!["worker2".into()],
            partition: vec!["h1".into(), "h2".into()],
            delay: vec!["h2".into()],
            delay_by: Duration::from_millis(200),
            max_fault: Duration::from_millis(4000),
            max_quiet: Duration::from_millis(2000),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = schedule(&menu(), 7, Duration::from_secs(60));
        assert_eq!(a, schedule(&menu(), 7, Duration::from_secs(60)));
        assert_eq!(
            describe(7, &a),
            describe(7, &schedule(&menu(), 7, Duration::from_secs(60)))
        );
        assert_ne!(a, schedule(&menu(), 8, Duration::from_secs(60)));
    }

    #[test]
    fn faults_fit_the_duration_and_the_bounds_and_use_every_kind() {
        let plan = schedule(&menu(), 42, Duration::from_secs(600));
        let total: Duration = plan.iter().map(|p| p.quiet + p.lasts).sum();
        assert!(total <= Duration::from_secs(600));
        assert!(total > Duration::from_secs(590), "{total:?}");
        for p in &plan {
            assert!(
                p.quiet >= Duration::from_millis(1000) && p.quiet <= Duration::from_millis(2000)
            );
            assert!(
                p.lasts >= Duration::from_millis(1000) && p.lasts <= Duration::from_millis(4000)
            );
        }
        let has = |f: fn(&Fault) -> bool| plan.iter().any(|p| f(&p.fault));
        assert!(has(|f| matches!(f, Fault::Kill(p) if p == "queue")));
        assert!(has(|f| matches!(f, Fault::Kill(p) if p == "worker1")));
        assert!(has(|f| matches!(f, Fault::Stop(_))));
        assert!(has(|f| matches!(f, Fault::Partition(h) if h == "h1")));
        assert!(has(
            |f| matches!(f, Fault::Delay(_, d) if *d == Duration::from_millis(200))
        ));
    }

    #[test]
    fn only_listed_kinds_are_drawn_and_an_empty_menu_draws_nothing() {
        let only_kill = Menu {
            stop: vec![],
            partition: vec![],
            delay: vec![],
            ..menu()
        };
        let plan = schedule(&only_kill, 1, Duration::from_secs(60));
        assert!(!plan.is_empty());
        assert!(plan.iter().all(|p| matches!(p.fault, Fault::Kill(_))));
        let nothing = Menu {
            kill: vec![],
            ..only_kill
        };
        assert!(schedule(&nothing, 1, Duration::from_secs(60)).is_empty());
        // Too short for even one fault.
        assert!(schedule(&menu(), 1, Duration::from_millis(500)).is_empty());
    }

    #[test]
    fn describe_prints_start_and_end_times() {
        let plan = vec![Planned {
            quiet: Duration::from_millis(1500),
            fault: Fault::Partition("h1".into()),
            lasts: Duration::from_millis(2000),
        }];
        let text = describe(3, &plan);
        assert!(text.contains("chaos seed 3: 1 faults"), "{text}");
        assert!(
            text.contains("1.500 s ..   3.500 s  partition h1, heal"),
            "{text}"
        );
    }

    fn report() -> RunResults {
        let s = Summary {
            sent: 10,
            answered: 9,
            failed: 1,
            retries: 2,
        };
        RunResults {
            scenario: "x".into(),
            summary: s,
            lost: 0,
            clients: vec![ClientOutcome {
                name: "client".into(),
                summary: Some(s),
                exit_code: Some(1),
                timed_out: false,
            }],
            measures: vec![],
            lines: BTreeMap::new(),
            events: vec![
                Event {
                    at: Duration::from_secs(1),
                    text: "** kill -9 worker1".into(),
                    kind: EventKind::Message,
                    net: None,
                },
                Event {
                    at: Duration::from_secs(9),
                    text: "client (exited with code 1)".into(),
                    kind: EventKind::Message,
                    net: None,
                },
            ],
            hosts: vec![],
            shutdown: Some(Shutdown {
                at: Duration::from_secs(8),
                exits: vec![
                    ("client".into(), Some(Duration::from_millis(20))),
                    ("queue".into(), Some(Duration::from_millis(300))),
                ],
            }),
            elapsed: Duration::from_secs(9),
            processes: vec![],
            output: vec![],
        }
    }

    #[test]
    fn a_clean_run_has_no_violations() {
        assert_eq!(
            violations(&report(), Duration::from_secs(1)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_broken_invariant_is_named() {
        let mut r = report();
        r.lost = 2;
        r.clients[0].summary = Some(Summary {
            sent: 10,
            answered: 6,
            failed: 2,
            retries: 0,
        });
        r.lines.insert(
            "client".into(),
            vec!["E: malformed reply from server: 7".into()],
        );
        r.events.insert(
            1,
            Event {
                at: Duration::from_secs(2),
                text: "queue (ended by SIGSEGV)".into(),
                kind: EventKind::Message,
                net: None,
            },
        );
        r.shutdown.as_mut().unwrap().exits[1].1 = Some(Duration::from_millis(1500));
        r.shutdown
            .as_mut()
            .unwrap()
            .exits
            .push(("worker1".into(), None));
        let v = violations(&r, Duration::from_secs(1)).join("\n");
        for needle in [
            "2 requests lost",
            "2 requests failed",
            "malformed reply",
            "not caused by the schedule: queue (ended by SIGSEGV)",
            "queue took 1500 ms",
            "worker1 did not exit",
        ] {
            assert!(v.contains(needle), "{needle}: {v}");
        }
        assert!(!v.contains("client (exited"), "{v}");
    }

    #[test]
    fn with_request_lines_only_the_requests_in_flight_at_ctrl_c_may_fail() {
        use crate::results::OutputLine;
        let line = |ms: u64, text: &str| OutputLine {
            at: Duration::from_millis(ms),
            process: "client".into(),
            run: 1,
            text: text.into(),
        };
        let mut r = report();
        r.clients[0].summary = Some(Summary {
            sent: 10,
            answered: 7,
            failed: 3,
            retries: 0,
        });
        // An asynchronous client: three requests in flight at Ctrl-C (8 s), failed then.
        r.output = vec![
            line(
                7000,
                "I: request seq=7 outcome=answered tries=1 latency_ms=5",
            ),
            line(
                8010,
                "I: request seq=8 outcome=failed tries=1 latency_ms=30",
            ),
            line(
                8010,
                "I: request seq=9 outcome=failed tries=1 latency_ms=20",
            ),
            line(
                8010,
                "I: request seq=10 outcome=failed tries=1 latency_ms=10",
            ),
        ];
        assert_eq!(violations(&r, Duration::from_secs(1)), Vec::<String>::new());
        // One that ran out of tries before Ctrl-C is a broken promise.
        r.output[0] = line(
            7000,
            "I: request seq=7 outcome=failed tries=10 latency_ms=9000",
        );
        let v = violations(&r, Duration::from_secs(1));
        assert_eq!(
            v,
            ["client client: 1 requests failed before the final Ctrl-C"],
            "{v:?}"
        );
    }
}
