//! What a scenario run produced, and the tables the tour prints from it.

use crate::net::NetAction;
use crate::style::{self, human, paint};
use common::report::Summary;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What one scenario run produced: the clients' counts, every line and event, the measures.
#[derive(Debug, Clone)]
pub struct RunResults {
    /// The scenario's name.
    pub scenario: String,
    /// Summary lines of all clients added up.
    pub summary: Summary,
    /// Requests with no outcome: `sent − answered − failed` over the clients' summary lines,
    /// plus one per client killed by the timeout or ended without a summary line.
    pub lost: u64,
    /// One entry per client process, in the scenario's order.
    pub clients: Vec<ClientOutcome>,
    /// Every `measure` of the timeline, in step order.
    pub measures: Vec<Measure>,
    /// Every line each process printed (all its runs), by process name.
    pub lines: BTreeMap<String, Vec<String>>,
    /// The timeline as it happened: steps, notes, processes exiting, network faults.
    pub events: Vec<Event>,
    /// Every host with its processes, in the scenario's order (a process on no `[hosts]` entry
    /// is a host of its own name).
    pub hosts: Vec<(String, Vec<String>)>,
    /// Chaos mode's final Ctrl-C to every process, if the run ended with one.
    pub shutdown: Option<Shutdown>,
    /// Wall-clock time from the first step to the end of the scenario.
    pub elapsed: Duration,
    /// The scenario's processes in file order (the lanes of the timeline report).
    pub processes: Vec<ProcessInfo>,
    /// Every line of every process with its arrival time, in arrival order.
    pub output: Vec<OutputLine>,
}

/// A process of the scenario as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The process name in the scenario.
    pub name: String,
    /// `client = true`: its summary and per-request lines count.
    pub client: bool,
}

/// One line a process printed, with when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// Time since the start of the scenario.
    pub at: Duration,
    /// The process name.
    pub process: String,
    /// Which run of the process (1 = first start).
    pub run: u32,
    /// The line without its line ending.
    pub text: String,
}

/// Something the tour did or saw, with its time since the scenario started.
#[derive(Debug, Clone)]
pub struct Event {
    /// Time since the start of the scenario.
    pub at: Duration,
    /// What it printed, e.g. `** kill -9 worker1` or `client (exited with code 0)`.
    pub text: String,
    /// What it means for the timeline, typed (the report draws from this, never the text).
    pub kind: EventKind,
    /// For a network step (partition, heal, delay, throttle, reset): what it did, typed.
    pub net: Option<NetEvent>,
}

/// The final Ctrl-C of a chaos run: when it was sent and how long each process took to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// Time since the start of the scenario.
    pub at: Duration,
    /// Each process running then, with the time it took to exit (`None`: it did not, within
    /// the grace the tour gives before killing it).
    pub exits: Vec<(String, Option<Duration>)>,
}

/// A network step as it happened: the timeline report draws partition/heal spans from these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEvent {
    /// The action.
    pub action: NetAction,
    /// The names the step gave, as written (hosts and links).
    pub targets: Vec<String>,
    /// Those of the targets that are hosts.
    pub hosts: Vec<String>,
    /// Every link the targets cover (`endpoint.via.process`), whether its fault changed or not.
    pub links: Vec<String>,
}

/// What an [`Event`] means for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A message only: the title, the endpoints, a note, a wait.
    Message,
    /// Step `number` (1-based, in file order) began; `action` is its verb (`kill -9`, …) if it
    /// has one, done to `processes`.
    Step {
        /// 1-based step number.
        number: usize,
        /// The action's verb, if the step has an action.
        action: Option<String>,
        /// The processes the action is done to (hosts and links for a network action).
        processes: Vec<String>,
        /// A network action (partition, heal, delay, …): see the event's `net`.
        network: bool,
        /// The step's note, expanded.
        note: Option<String>,
    },
    /// A process changed state.
    Process {
        /// The process name.
        process: String,
        /// What happened to it.
        change: ProcessChange,
    },
}

/// A change of a process's state, as the timeline draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessChange {
    /// A run began (1 = first start, 2+ = restarted).
    Started {
        /// The run's number.
        run: u32,
    },
    /// SIGSTOP sent: it hangs.
    Stopped,
    /// SIGCONT sent: it runs again.
    Continued,
    /// SIGINT sent; it exits by itself (an `Exited` follows).
    Interrupted,
    /// Killed by the tour (kill -9, restart, the scenario's timeout).
    Killed,
    /// Ended by itself (`how`: "exited with code 1", "ended by SIGSEGV").
    Exited {
        /// As the tour printed it.
        how: String,
    },
}

/// How one client process ended.
#[derive(Debug, Clone)]
pub struct ClientOutcome {
    /// The process name in the scenario.
    pub name: String,
    /// Its last `summary` line, if it printed one.
    pub summary: Option<Summary>,
    /// Exit code of its last run; `None` when a signal ended it (or it never ended).
    pub exit_code: Option<i32>,
    /// Still running at `timeout_ms`, so the tour killed it.
    pub timed_out: bool,
}

impl ClientOutcome {
    /// What this client contributes to [`RunResults::lost`].
    pub fn lost(&self) -> u64 {
        let in_flight = u64::from(self.timed_out || self.summary.is_none());
        self.summary.map_or(0, |s| s.lost()) + in_flight
    }
}

/// Requests the workers report executing (`mdworker --log-executions` prints
/// `executed request id=<id> count=<n>` once per execution), to set next to `answered`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Executions {
    /// Execution lines, over every process and run.
    pub total: u64,
    /// Distinct request ids among them (requests sent without an id, `id=-`, not counted).
    pub ids: u64,
    /// Executions beyond the first of the same id: retries that ran again.
    pub repeated: u64,
}

impl Executions {
    /// The line every execution prints.
    pub const LINE: &'static str = "executed request id=";

    /// Counts the execution lines among `lines`.
    pub fn count<'a>(lines: impl IntoIterator<Item = &'a String>) -> Self {
        let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
        let mut total = 0;
        for line in lines {
            let Some(rest) = line.split(Self::LINE).nth(1) else {
                continue;
            };
            total += 1;
            let id = rest.split_whitespace().next().unwrap_or("-");
            if id != "-" {
                *seen.entry(id).or_default() += 1;
            }
        }
        Self {
            total,
            ids: seen.len() as u64,
            repeated: seen.values().map(|n| n - 1).sum(),
        }
    }
}

/// A measured recovery time.
#[derive(Debug, Clone)]
pub struct Measure {
    /// The label from the scenario ("dead worker purged").
    pub label: String,
    /// How long it took (see [`MeasureKind`]); `None` if it never ended.
    pub elapsed: Option<Duration>,
    /// When it began, since the start of the scenario: the step's action, or for a
    /// [`MeasureKind::Gap`] the client's last answer before the gap.
    pub at: Duration,
    /// The process whose line ends the measure.
    pub process: String,
    /// What is timed.
    pub kind: MeasureKind,
}

impl Measure {
    /// "dead worker purged 3.1 s", or "… never": how the tables and the page show it.
    pub fn text(&self) -> String {
        match self.elapsed {
            Some(d) => format!("{} {}", self.label, human(d)),
            None => format!("{} never", self.label),
        }
    }
}

/// What a [`Measure`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasureKind {
    /// A step's `measure`: from the step's action to the first matching line after it.
    Line,
    /// A step's `gap`: a client's wait from its last answer by the old server to its first by
    /// the new one ([`crate::gap::failover_gap`]), the failover as the client saw it.
    Gap,
}

impl RunResults {
    /// Nothing lost and every measure happened: what the tour calls a pass.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.measures.iter().all(|m| m.elapsed.is_some())
    }

    /// For the pattern crates' tests: every measure in `labels` happened, each in less than
    /// `bound` (printed, so a run's recovery times show with `--nocapture`); otherwise panics
    /// with the whole run.
    pub fn assert_measured_within(&self, labels: &[&str], bound: Duration) {
        for label in labels {
            let took = self
                .measure(label)
                .unwrap_or_else(|| panic!("no measure {label:?}: {}", self.dump()));
            eprintln!("{label}: {} ms", took.as_millis());
            assert!(took < bound, "{label} took {took:?}: {}", self.dump());
        }
    }

    /// The time of the measure with this label.
    pub fn measure(&self, label: &str) -> Option<Duration> {
        self.measures
            .iter()
            .find(|m| m.label == label)
            .and_then(|m| m.elapsed)
    }

    /// The outcome of the named client.
    pub fn client(&self, name: &str) -> Option<&ClientOutcome> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// Every line of the named process (empty if it printed none).
    pub fn lines_of(&self, process: &str) -> &[String] {
        self.lines.get(process).map_or(&[], Vec::as_slice)
    }

    /// Executions reported by the workers (all processes), see [`Executions`].
    pub fn executions(&self) -> Executions {
        Executions::count(self.lines.values().flatten())
    }

    /// How many lines of `process` contain `needle`.
    pub fn count(&self, process: &str, needle: &str) -> usize {
        self.lines_of(process)
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The network steps of the run, in order, with their times.
    pub fn net_events(&self) -> impl Iterator<Item = (std::time::Duration, &NetEvent)> {
        self.events
            .iter()
            .filter_map(|e| e.net.as_ref().map(|n| (e.at, n)))
    }

    /// How many events contain `needle`.
    pub fn count_events(&self, needle: &str) -> usize {
        self.events
            .iter()
            .filter(|e| e.text.contains(needle))
            .count()
    }

    /// When the first event containing `needle` happened.
    pub fn event_at(&self, needle: &str) -> Option<Duration> {
        self.events
            .iter()
            .find(|e| e.text.contains(needle))
            .map(|e| e.at)
    }

    /// The timeline and every process's output, for assertion messages.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let _ = writeln!(out, "{:>8.3} {}", e.at.as_secs_f64(), e.text);
        }
        for (name, lines) in &self.lines {
            for line in lines {
                let _ = writeln!(out, "{name} | {line}");
            }
        }
        out
    }

    /// The per-scenario table as text.
    pub fn table(&self, color: bool) -> String {
        let mut out = String::new();
        let verdict = if self.ok() {
            paint("ok", style::GREEN, color)
        } else {
            paint("FAILED", style::RED, color)
        };
        let _ = writeln!(
            out,
            "{} {} ({} in {})",
            paint("==", style::BOLD, color),
            paint(&self.scenario, style::BOLD, color),
            verdict,
            human(self.elapsed)
        );
        let width = self
            .clients
            .iter()
            .map(|c| c.name.len())
            .chain([6])
            .max()
            .unwrap_or(6);
        let _ = writeln!(
            out,
            "   {:<width$} {:>6} {:>8} {:>6} {:>6} {:>7}  exit",
            "client", "sent", "answered", "failed", "lost", "retries"
        );
        for c in &self.clients {
            let s = c.summary.unwrap_or_default();
            let exit = match (c.timed_out, c.exit_code) {
                (true, _) => "killed at timeout".to_owned(),
                (false, Some(code)) => code.to_string(),
                (false, None) => "signal".to_owned(),
            };
            let nums = if c.summary.is_some() {
                format!("{:>6} {:>8} {:>6}", s.sent, s.answered, s.failed)
            } else {
                format!("{:>6} {:>8} {:>6}", "?", "?", "?")
            };
            let lost = format!("{:>6}", c.lost());
            let lost = if c.lost() > 0 {
                paint(&lost, style::RED, color)
            } else {
                lost
            };
            let _ = writeln!(
                out,
                "   {:<width$} {nums} {lost} {:>7}  {exit}",
                c.name, s.retries
            );
        }
        if self.clients.len() > 1 {
            let s = self.summary;
            let _ = writeln!(
                out,
                "   {:<width$} {:>6} {:>8} {:>6} {:>6} {:>7}",
                "total", s.sent, s.answered, s.failed, self.lost, s.retries
            );
        }
        let runs = self.executions();
        if runs.total > 0 {
            let text = format!(
                "executions {} for {} answered: {} request ids, {} ran again",
                runs.total, self.summary.answered, runs.ids, runs.repeated
            );
            let text = if runs.repeated > 0 {
                paint(&text, style::STEP, color)
            } else {
                text
            };
            let _ = writeln!(out, "   {text}");
        }
        for m in &self.measures {
            let text = match (m.elapsed, m.kind) {
                (Some(d), MeasureKind::Line) => format!("{} after {}", m.label, human(d)),
                (Some(d), MeasureKind::Gap) => format!(
                    "{}: {} without an answer ({:.3} s → {:.3} s)",
                    m.label,
                    human(d),
                    m.at.as_secs_f64(),
                    (m.at + d).as_secs_f64()
                ),
                (None, _) => paint(&format!("{}: never happened", m.label), style::RED, color),
            };
            let _ = writeln!(out, "   {text}");
        }
        out
    }

    /// Prints [`table`](Self::table) to standard output.
    pub fn print_table(&self, color: bool) {
        print!("{}", self.table(color));
    }
}

/// The closing table of a tour: one row per scenario (a report, or why it could not run).
pub fn overview(rows: &[(String, Result<RunResults, String>)], color: bool) -> String {
    let width = rows
        .iter()
        .map(|(n, _)| n.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:>6} {:>8} {:>6} {:>6} {:>7}  {:<7} measures",
        "scenario", "sent", "answered", "failed", "lost", "retries", "result"
    );
    for (name, row) in rows {
        match row {
            Ok(r) => {
                let s = r.summary;
                let result = if r.ok() {
                    paint(&format!("{:<7}", "ok"), style::GREEN, color)
                } else {
                    paint(&format!("{:<7}", "FAILED"), style::RED, color)
                };
                let measures: Vec<String> = r.measures.iter().map(Measure::text).collect();
                let _ = writeln!(
                    out,
                    "{name:<width$} {:>6} {:>8} {:>6} {:>6} {:>7}  {result} {}",
                    s.sent,
                    s.answered,
                    s.failed,
                    r.lost,
                    s.retries,
                    measures.join("; ")
                );
            }
            Err(e) => {
                let result = paint(&format!("{:<7}", "ERROR"), style::RED, color);
                let first = e.lines().next().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{name:<width$} {:>6} {:>8} {:>6} {:>6} {:>7}  {result} {first}",
                    "-", "-", "-", "-", "-"
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RunResults {
        let s = Summary {
            sent: 10,
            answered: 9,
            failed: 1,
            retries: 4,
        };
        RunResults {
            scenario: "demo".into(),
            summary: s,
            lost: 0,
            clients: vec![ClientOutcome {
                name: "client".into(),
                summary: Some(s),
                exit_code: Some(1),
                timed_out: false,
            }],
            measures: vec![Measure {
                label: "dead worker purged".into(),
                elapsed: Some(Duration::from_millis(3100)),
                at: Duration::from_secs(1),
                process: "client".into(),
                kind: MeasureKind::Line,
            }],
            lines: BTreeMap::new(),
            events: Vec::new(),
            hosts: Vec::new(),
            shutdown: None,
            elapsed: Duration::from_secs(5),
            processes: vec![ProcessInfo {
                name: "client".into(),
                client: true,
            }],
            output: Vec::new(),
        }
    }

    #[test]
    fn client_loss_counts_a_missing_summary_or_a_timeout_once() {
        let mut c = report().clients[0].clone();
        assert_eq!(c.lost(), 0);
        c.timed_out = true;
        assert_eq!(c.lost(), 1);
        c.summary = None;
        assert_eq!(c.lost(), 1);
        c.summary = Some(Summary {
            sent: 5,
            answered: 2,
            failed: 1,
            retries: 0,
        });
        assert_eq!(c.lost(), 3);
    }

    #[test]
    fn table_shows_counts_exit_codes_and_measures() {
        let t = report().table(false);
        assert!(t.contains("demo (ok in 5.0 s)"), "{t}");
        assert!(t.contains("dead worker purged after 3.1 s"), "{t}");
        let row = t
            .lines()
            .filter(|l| l.trim_start().starts_with("client "))
            .nth(1)
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, ["client", "10", "9", "1", "0", "4", "1"]);
    }

    #[test]
    fn executions_are_counted_per_request_id_and_shown_next_to_answered() {
        let mut r = report();
        assert!(
            !r.table(false).contains("executions"),
            "no line without workers' lines"
        );
        let lines = [
            "I: (echo) executing request id=a-1",
            "I: (echo) executed request id=a-1 count=1",
            "I: (echo) executed request id=a-2 count=1",
            "I: (echo) executed request id=- count=1",
        ];
        r.lines
            .insert("worker1".into(), lines.map(String::from).to_vec());
        r.lines.insert(
            "worker2".into(),
            vec!["I: (echo) executed request id=a-2 count=1".into()],
        );
        assert_eq!(
            r.executions(),
            Executions {
                total: 4,
                ids: 2,
                repeated: 1
            }
        );
        let t = r.table(false);
        assert!(
            t.contains("executions 4 for 9 answered: 2 request ids, 1 ran again"),
            "{t}"
        );
    }

    #[test]
    fn a_gap_shows_how_long_the_client_went_without_an_answer_and_between_which_answers() {
        let mut r = report();
        r.measures.push(Measure {
            label: "client's failover gap".into(),
            elapsed: Some(Duration::from_millis(3250)),
            at: Duration::from_millis(4900),
            process: "client".into(),
            kind: MeasureKind::Gap,
        });
        let t = r.table(false);
        assert!(
            t.contains("client's failover gap: 3.2 s without an answer (4.900 s → 8.150 s)"),
            "{t}"
        );
        assert!(r.ok());
    }

    #[test]
    fn a_measure_that_never_happened_fails_the_report() {
        let mut r = report();
        r.measures[0].elapsed = None;
        assert!(!r.ok());
        assert!(r
            .table(false)
            .contains("dead worker purged: never happened"));
        let o = overview(
            &[("demo".into(), Ok(r)), ("x".into(), Err("boom".into()))],
            false,
        );
        assert!(o.contains("FAILED"), "{o}");
        assert!(o.contains("ERROR   boom"), "{o}");
    }
}
