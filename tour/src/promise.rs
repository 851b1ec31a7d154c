//! A pattern's own promise, checked from the processes' lines at the end of a chaos run.
//!
//! The general invariants of [`chaos::violations`](crate::chaos::violations) hold for every
//! pattern; these are what one pattern claims on top, named in its `[chaos]` table
//! (`promises = [...]`). Each check needs its evidence in the run's lines and fails when there
//! is none, so a promise can never pass because nobody printed anything. Pure: reads a
//! [`RunResults`].
//!
//! | promise | evidence (stable log lines) | what must hold |
//! |---|---|---|
//! | `one-server-answers` | `bstarsrv --log-replies`: `answered a client request` | between two schedule steps, once `settle` has passed after the first, at most one server answers clients |
//! | `executed-once` | `mdworker --log-executions`: `executed request id=<id> count=<n>` | a request id runs again only if a fault of the schedule was in force, between the two runs, on either worker that ran it or on a process that relays requests (one that is neither a client nor a worker: the broker, titanic); with a broker pair ([`Terms::pair`]), on either worker or on both brokers at once |
//! | `answered-once` | `ticlient`: `request UUID <uuid>`, `reply to <uuid>: …`; the worker's executions of `titanic-<uuid>` | every acknowledged request is answered exactly once (unanswered only if its client counted it failed at Ctrl-C), every answer was executed by the service, and no request was stored twice (an executed UUID that no client was given, beyond the requests the clients counted failed) |
//!
//! Why `executed-once` excuses faults of relays and of both workers: the broker's
//! request-id store is in memory (a restarted broker has forgotten every id), and a worker
//! that ran a request and then died, froze or lost its network before its reply reached the
//! broker cannot be told apart from one that never ran it; the broker then forgets the request
//! so the retry runs it (see `majordomo::broker::dedup`). A second run with no such fault in
//! between is a broken promise. The second worker counts too because runs are ordered by when
//! they were logged, and a worker stopped mid-request logs its run only after it resumes, which
//! can be after the retry's run on the other worker.
//!
//! With a broker pair (the `[chaos]` table's `pair = ["primary", "backup"]`) the brokers are no
//! longer an excuse one at a time: that is the point of the pair. Each broker hears from the
//! workers what runs and what was answered (`majordomo::pair`), so the broker that survives a
//! fault of the other joins a retry to the running request or replays its reply. A repeat is
//! then excused only by a fault on a worker that ran it (as above), or by faults on both
//! brokers in force at the same moment between the two runs (news sent to a broker that is
//! down are lost). Titanic's faults excuse nothing either: it forwards a stored request under
//! the same id (`titanic-<uuid>`) every time, so its re-forward after a restart reaches a broker
//! that knows the id, exactly like a client's retry.

use crate::results::{EventKind, RunResults};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a pattern promises on top of the general chaos invariants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promise {
    /// Binary Star: never two servers answering clients in the same interval after the settle
    /// time.
    OneServerAnswers,
    /// Majordomo with request ids: no request executed twice unless a fault in between could
    /// have lost its first run.
    ExecutedOnce,
    /// Titanic: every acknowledged request answered exactly once, none stored twice.
    AnsweredOnce,
}

impl Promise {
    /// Every promise, for messages.
    pub const ALL: [Promise; 3] = [
        Promise::OneServerAnswers,
        Promise::ExecutedOnce,
        Promise::AnsweredOnce,
    ];

    fn name(self) -> &'static str {
        match self {
            Promise::OneServerAnswers => "one-server-answers",
            Promise::ExecutedOnce => "executed-once",
            Promise::AnsweredOnce => "answered-once",
        }
    }
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Promise {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Promise::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Promise::ALL.iter().map(|p| p.name()).collect();
                format!("unknown promise {s:?} (known: {})", names.join(", "))
            })
    }
}

/// The line `bstarsrv --log-replies` prints for every reply it sends a client.
pub const REPLY_LINE: &str = "answered a client request";
/// The line `mdworker --log-executions` prints for every request it ran.
const EXECUTED: &str = crate::results::Executions::LINE;
/// The request id titanic gives the forward of stored request `<uuid>`.
const TITANIC_RID: &str = "titanic-";

/// What a scenario's `[chaos]` table tells the promises about the pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    /// `one-server-answers`: the grace after each schedule step before only one server may
    /// answer.
    pub settle: Duration,
    /// `executed-once`: the two brokers of a pair, whose faults excuse a repeat only when both
    /// are in force at once (see the [module docs](self)).
    pub pair: Option<[String; 2]>,
}

/// Every broken promise of `promises` in `report`, under the scenario's `terms`.
pub fn violations(report: &RunResults, promises: &[Promise], terms: &Terms) -> Vec<String> {
    let mut out = Vec::new();
    for p in promises {
        match p {
            Promise::OneServerAnswers => one_server_answers(report, terms.settle, &mut out),
            Promise::ExecutedOnce => executed_once(report, terms.pair.as_ref(), &mut out),
            Promise::AnsweredOnce => answered_once(report, &mut out),
        }
    }
    out
}

/// Lines before the final Ctrl-C (all of them if there was none).
fn lines_before_shutdown(report: &RunResults) -> impl Iterator<Item = &crate::results::OutputLine> {
    let end = report.shutdown.as_ref().map(|s| s.at);
    report
        .output
        .iter()
        .filter(move |l| end.is_none_or(|end| l.at < end))
}

/// Times of the schedule's steps that did something (start, faults, their repair).
fn step_times(report: &RunResults) -> Vec<Duration> {
    report
        .events
        .iter()
        .filter(|e| {
            matches!(
                &e.kind,
                EventKind::Step {
                    action: Some(_),
                    ..
                }
            )
        })
        .map(|e| e.at)
        .collect()
}

fn one_server_answers(report: &RunResults, settle: Duration, out: &mut Vec<String>) {
    let replies: Vec<_> = lines_before_shutdown(report)
        .filter(|l| l.text.contains(REPLY_LINE))
        .collect();
    if replies.is_empty() {
        out.push(format!(
            "one-server-answers: no server printed {REPLY_LINE:?} (run bstarsrv with --log-replies)"
        ));
        return;
    }
    let steps = step_times(report);
    let end = report.shutdown.as_ref().map_or(report.elapsed, |s| s.at);
    // The quiet stretches: from `settle` after a step to the next step.
    let mut stretches = Vec::new();
    for (i, &from) in steps.iter().enumerate() {
        let to = steps.get(i + 1).copied().unwrap_or(end);
        if from + settle < to {
            stretches.push((from + settle, to));
        }
    }
    for (from, to) in stretches {
        let mut by: BTreeMap<&str, (u64, Duration, Duration)> = BTreeMap::new();
        for l in replies.iter().filter(|l| l.at >= from && l.at < to) {
            let e = by.entry(&l.process).or_insert((0, l.at, l.at));
            e.0 += 1;
            e.2 = l.at;
        }
        if by.len() > 1 {
            let who: Vec<_> = by
                .iter()
                .map(|(p, (n, first, last))| {
                    format!(
                        "{p} {n} replies ({:.3} s .. {:.3} s)",
                        first.as_secs_f64(),
                        last.as_secs_f64()
                    )
                })
                .collect();
            out.push(format!(
                "one-server-answers: between {:.3} s and {:.3} s (settle {} ms after a step) \
                 more than one server answered clients: {}",
                from.as_secs_f64(),
                to.as_secs_f64(),
                settle.as_millis(),
                who.join(", ")
            ));
        }
    }
}

/// The request id of an execution line.
fn executed_id(text: &str) -> Option<&str> {
    let rest = text.split(EXECUTED).nth(1)?;
    rest.split_whitespace().next().filter(|id| *id != "-")
}

/// From when to when (`None`: never undone) each process had a fault of the schedule on it,
/// directly or through its host or one of its links.
fn fault_spans(report: &RunResults) -> BTreeMap<String, Vec<(Duration, Option<Duration>)>> {
    let members = |name: &str| -> Vec<String> {
        if let Some((_, procs)) = report.hosts.iter().find(|(h, _)| h == name) {
            return procs.clone();
        }
        // A link `endpoint.via.process`: its connecting process; else a process name.
        match name.rsplit_once(".via.") {
            Some((_, p)) => vec![p.to_owned()],
            None => vec![name.to_owned()],
        }
    };
    let mut spans: BTreeMap<String, Vec<(Duration, Option<Duration>)>> = BTreeMap::new();
    for e in &report.events {
        let EventKind::Step {
            action: Some(verb),
            processes,
            ..
        } = &e.kind
        else {
            continue;
        };
        let v = verb.as_str();
        let opens = ["kill", "stop", "partition", "delay", "throttle"]
            .iter()
            .any(|w| v.starts_with(w));
        let closes = ["restart", "cont", "heal", "start"]
            .iter()
            .any(|w| v.starts_with(w));
        // A restart kills and starts at once, a reset aborts the connections at once: faults
        // of an instant.
        let instant = v.starts_with("restart") || v.starts_with("reset");
        for name in processes {
            for p in members(name) {
                let list = spans.entry(p).or_default();
                if closes {
                    if let Some(open) = list.iter_mut().rev().find(|s| s.1.is_none()) {
                        open.1 = Some(e.at);
                    }
                }
                if opens {
                    list.push((e.at, None));
                }
                if instant {
                    list.push((e.at, Some(e.at)));
                }
            }
        }
    }
    spans
}

type Spans = BTreeMap<String, Vec<(Duration, Option<Duration>)>>;

fn faulty_between(spans: &Spans, process: &str, from: Duration, to: Duration) -> bool {
    spans.get(process).is_some_and(|list| {
        list.iter()
            .any(|(s, e)| *s <= to && e.is_none_or(|e| e >= from))
    })
}

/// Whether `a` and `b` both had a fault in force at one moment between `from` and `to`.
fn both_faulty_between(spans: &Spans, a: &str, b: &str, from: Duration, to: Duration) -> bool {
    let (Some(sa), Some(sb)) = (spans.get(a), spans.get(b)) else {
        return false;
    };
    sa.iter().any(|(s1, e1)| {
        sb.iter().any(|(s2, e2)| {
            let start = from.max(*s1).max(*s2);
            let end = [Some(to), *e1, *e2].into_iter().flatten().min();
            end.is_some_and(|end| start <= end)
        })
    })
}

fn executed_once(report: &RunResults, pair: Option<&[String; 2]>, out: &mut Vec<String>) {
    let mut runs: BTreeMap<&str, Vec<(Duration, &str)>> = BTreeMap::new();
    let mut workers = BTreeSet::new();
    for l in &report.output {
        if let Some(id) = executed_id(&l.text) {
            runs.entry(id).or_default().push((l.at, &l.process));
            workers.insert(l.process.as_str());
        }
    }
    if runs.is_empty() {
        out.push(
            "executed-once: no worker printed an execution with a request id \
             (run mdworker with --log-executions, clients with ids)"
                .into(),
        );
        return;
    }
    let clients: BTreeSet<&str> = report.clients.iter().map(|c| c.name.as_str()).collect();
    // With a pair, no relay excuses a repeat on its own (see the module docs).
    let relays: Vec<&str> = match pair {
        Some(_) => Vec::new(),
        None => report
            .processes
            .iter()
            .map(|p| p.name.as_str())
            .filter(|p| !clients.contains(p) && !workers.contains(p))
            .collect(),
    };
    let spans = fault_spans(report);
    let mut unexcused = Vec::new();
    let mut excused = 0;
    for (id, list) in &runs {
        for runs in list.windows(2) {
            let ((t1, p1), (t2, p2)) = (runs[0], runs[1]);
            // Either worker counts: one that was stopped logs its run late, after the retry's.
            let excuse = [p1, p2]
                .into_iter()
                .chain(relays.iter().copied())
                .any(|p| faulty_between(&spans, p, t1, t2))
                || pair.is_some_and(|[a, b]| both_faulty_between(&spans, a, b, t1, t2));
            if excuse {
                excused += 1;
            } else {
                unexcused.push(format!(
                    "{id} ({p1} at {:.3} s, {p2} at {:.3} s)",
                    t1.as_secs_f64(),
                    t2.as_secs_f64()
                ));
            }
        }
    }
    if !unexcused.is_empty() {
        let shown: Vec<_> = unexcused.iter().take(5).cloned().collect();
        let excuses = match pair {
            Some([a, b]) => format!("either worker or both {a} and {b} at once"),
            None => "either worker or a relay".to_owned(),
        };
        out.push(format!(
            "executed-once: {} request(s) ran again with no fault in between on {excuses} \
             ({excused} repeat(s) excused by a fault): {}{}",
            unexcused.len(),
            shown.join(", "),
            if unexcused.len() > 5 { ", …" } else { "" }
        ));
    }
}

fn answered_once(report: &RunResults, out: &mut Vec<String>) {
    let clients: BTreeSet<&str> = report.clients.iter().map(|c| c.name.as_str()).collect();
    let mut acked: BTreeMap<&str, &str> = BTreeMap::new();
    let mut answers: BTreeMap<&str, u64> = BTreeMap::new();
    let mut executed: BTreeSet<&str> = BTreeSet::new();
    for l in &report.output {
        if clients.contains(l.process.as_str()) {
            if let Some(rest) = l.text.split("request UUID ").nth(1) {
                if let Some(u) = rest.split_whitespace().next() {
                    acked.insert(u, &l.process);
                }
            } else if let Some(rest) = l.text.split("reply to ").nth(1) {
                if let Some(u) = rest.split(':').next() {
                    *answers.entry(u.trim()).or_default() += 1;
                }
            }
        } else if let Some(u) = executed_id(&l.text).and_then(|id| id.strip_prefix(TITANIC_RID)) {
            executed.insert(u);
        }
    }
    if acked.is_empty() {
        out.push("answered-once: no client printed \"request UUID\"".into());
        return;
    }
    for (u, n) in &answers {
        if !acked.contains_key(u) {
            out.push(format!(
                "answered-once: reply to {u}, which no client was given"
            ));
        }
        if *n > 1 {
            out.push(format!("answered-once: {u} answered {n} times"));
        }
        if !executed.contains(u) {
            out.push(format!(
                "answered-once: {u} answered but never executed by the service \
                 (run the worker with --log-executions)"
            ));
        }
    }
    let failed_of = |c: &str| {
        report
            .client(c)
            .and_then(|c| c.summary)
            .map_or(0, |s| s.failed)
    };
    for c in &clients {
        let open: Vec<&&str> = acked
            .iter()
            .filter(|(u, who)| *who == c && !answers.contains_key(*u))
            .map(|(u, _)| u)
            .collect();
        if open.len() as u64 > failed_of(c) {
            out.push(format!(
                "answered-once: client {c}: {} acknowledged request(s) never answered \
                 but {} counted failed: {}",
                open.len(),
                failed_of(c),
                open.iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let strangers: Vec<&&str> = executed
        .iter()
        .filter(|u| !acked.contains_key(*u))
        .collect();
    let in_flight: u64 = clients.iter().map(|c| failed_of(c)).sum();
    if strangers.len() as u64 > in_flight {
        out.push(format!(
            "answered-once: {} stored request(s) executed that no client was given a UUID for \
             (stored twice?), only {in_flight} request(s) were in flight: {}",
            strangers.len(),
            strangers
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ClientOutcome, Event, OutputLine, ProcessInfo, Shutdown};
    use common::report::Summary;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn settle(n: u64) -> Terms {
        Terms {
            settle: ms(n),
            pair: None,
        }
    }

    fn step(at: u64, verb: &str, who: &str) -> Event {
        Event {
            at: ms(at),
            text: format!("step {verb} {who}"),
            kind: EventKind::Step {
                number: 0,
                action: Some(verb.into()),
                processes: vec![who.into()],
                network: false,
                note: None,
            },
            net: None,
        }
    }

    fn line(at: u64, process: &str, text: &str) -> OutputLine {
        OutputLine {
            at: ms(at),
            process: process.into(),
            run: 1,
            text: text.into(),
        }
    }

    fn report(events: Vec<Event>, output: Vec<OutputLine>, failed: u64) -> RunResults {
        let s = Summary {
            sent: 10,
            answered: 10 - failed,
            failed,
            retries: 0,
        };
        RunResults {
            scenario: "x".into(),
            summary: s,
            lost: 0,
            clients: vec![ClientOutcome {
                name: "client".into(),
                summary: Some(s),
                exit_code: Some(0),
                timed_out: false,
            }],
            measures: vec![],
            lines: Default::default(),
            events,
            hosts: vec![("h1".into(), vec!["broker".into()])],
            shutdown: Some(Shutdown {
                at: ms(100_000),
                exits: vec![],
            }),
            elapsed: ms(101_000),
            processes: [
                "broker", "titanic", "w1", "w2", "client", "primary", "backup",
            ]
            .iter()
            .map(|n| ProcessInfo {
                name: n.to_string(),
                client: *n == "client",
            })
            .collect(),
            output,
        }
    }

    #[test]
    fn promises_parse_by_name_and_unknown_ones_are_refused() {
        for p in Promise::ALL {
            assert_eq!(p.to_string().parse::<Promise>(), Ok(p));
        }
        let e = "exactly-once".parse::<Promise>().unwrap_err();
        assert!(e.contains("one-server-answers"), "{e}");
    }

    #[test]
    fn a_promise_without_evidence_fails() {
        let r = report(vec![], vec![], 0);
        let v = violations(&r, &Promise::ALL, &settle(1000));
        assert_eq!(v.len(), 3, "{v:?}");
    }

    #[test]
    fn two_servers_answering_after_the_settle_time_is_caught() {
        let events = vec![
            step(0, "start", "primary"),
            step(10_000, "stop (SIGSTOP)", "primary"),
            step(20_000, "cont (SIGCONT)", "primary"),
        ];
        // Primary answers, is stopped; the backup takes over; after cont the primary answers
        // a held request inside the settle time: allowed.
        let mut output = vec![
            line(1000, "primary", REPLY_LINE),
            line(9000, "primary", REPLY_LINE),
            line(13_000, "backup", REPLY_LINE),
            line(19_000, "backup", REPLY_LINE),
            line(20_100, "primary", REPLY_LINE),
            line(25_000, "backup", REPLY_LINE),
        ];
        let ok = report(events.clone(), output.clone(), 0);
        assert!(violations(&ok, &[Promise::OneServerAnswers], &settle(3000)).is_empty());
        // The primary still answering well after the settle time: split brain.
        output.push(line(27_000, "primary", REPLY_LINE));
        let bad = report(events, output, 0);
        let v = violations(&bad, &[Promise::OneServerAnswers], &settle(3000));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("between 23.000 s and 100.000 s"), "{v:?}");
        assert!(v[0].contains("backup 1 replies") && v[0].contains("primary 1 replies"));
    }

    fn exec(at: u64, who: &str, id: &str) -> OutputLine {
        line(
            at,
            who,
            &format!("I: (echo) executed request id={id} count=1"),
        )
    }

    #[test]
    fn a_second_execution_is_excused_only_by_a_fault_on_a_worker_that_ran_it_or_a_relay() {
        let events = vec![
            step(5000, "kill -9", "w1"),
            step(6000, "restart", "w1"),
            step(10_000, "partition", "h1"),
            step(12_000, "heal", "h1"),
            step(20_000, "stop (SIGSTOP)", "w2"),
            step(21_000, "cont (SIGCONT)", "w2"),
            step(30_000, "stop (SIGSTOP)", "w1"),
            step(31_000, "cont (SIGCONT)", "w1"),
        ];
        let output = vec![
            exec(4900, "w1", "a"),   // w1 killed after running it:
            exec(6500, "w2", "a"),   // excused
            exec(9000, "w2", "b"),   // the broker's host partitioned between:
            exec(13_000, "w1", "b"), // excused
            exec(15_000, "w2", "c"), // nothing happened to w2 or the broker:
            exec(15_500, "w1", "c"), // not excused (w2 stopped only later)
            exec(16_000, "w1", "-"), // no id: not counted
            exec(16_100, "w1", "-"),
            exec(30_500, "w2", "d"), // the retry of a request w1 ran while stopped,
            exec(31_200, "w1", "d"), // logged only once w1 resumed: excused
        ];
        let r = report(events, output, 0);
        let v = violations(&r, &[Promise::ExecutedOnce], &Terms::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("1 request(s) ran again"), "{v:?}");
        assert!(v[0].contains("c (w2 at 15.000 s, w1 at 15.500 s)"), "{v:?}");
        assert!(v[0].contains("3 repeat(s) excused"), "{v:?}");
    }

    #[test]
    fn with_a_broker_pair_only_a_worker_or_both_brokers_at_once_excuse_a_second_execution() {
        let events = vec![
            step(5000, "kill -9", "primary"),
            step(6000, "restart", "primary"),
            step(10_000, "kill -9", "backup"),
            step(11_000, "restart", "backup"),
            step(20_000, "stop (SIGSTOP)", "titanic"),
            step(21_000, "cont (SIGCONT)", "titanic"),
            step(40_000, "kill -9", "primary"),
            step(41_000, "partition", "backup"),
            step(42_000, "heal", "backup"),
            step(43_000, "restart", "primary"),
            step(50_000, "kill -9", "w1"),
            step(51_000, "restart", "w1"),
        ];
        let output = vec![
            exec(4000, "w1", "f"),   // the primary's fault, then the backup's, one after
            exec(4900, "w1", "a"),   // the primary killed alone:
            exec(6500, "w2", "a"),   // no excuse with a pair
            exec(9000, "w1", "b"),   // the backup killed alone:
            exec(12_000, "w2", "b"), // no excuse
            exec(12_500, "w2", "f"), // the other: no excuse (never both at once)
            exec(19_000, "w1", "c"), // titanic stopped:
            exec(22_000, "w2", "c"), // no excuse with a pair
            exec(39_000, "w2", "d"), // both brokers down at once (41 s to 42 s):
            exec(44_000, "w1", "d"), // excused
            exec(49_900, "w1", "e"), // the worker that ran it killed:
            exec(51_500, "w2", "e"), // excused
        ];
        let r = report(events, output, 0);
        // Without a pair every one of them has an excuse (a relay's fault).
        assert_eq!(
            violations(&r, &[Promise::ExecutedOnce], &Terms::default()),
            Vec::<String>::new()
        );
        let pair = Terms {
            settle: ms(0),
            pair: Some(["primary".into(), "backup".into()]),
        };
        let v = violations(&r, &[Promise::ExecutedOnce], &pair);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("4 request(s) ran again"), "{v:?}");
        assert!(v[0].contains("both primary and backup at once"), "{v:?}");
        assert!(v[0].contains("2 repeat(s) excused"), "{v:?}");
        for id in ["a (w1", "b (w1", "c (w1", "f (w1"] {
            assert!(v[0].contains(id), "{id}: {v:?}");
        }
    }

    #[test]
    fn titanic_answers_each_acknowledged_request_once() {
        let good = vec![
            line(100, "client", "I: request UUID u1"),
            exec(200, "w1", "titanic-u1"),
            line(300, "client", "I: reply to u1: Hello #0"),
            line(400, "client", "I: request UUID u2"),
        ];
        // u2 is the one in flight at Ctrl-C, counted failed.
        let r = report(vec![], good.clone(), 1);
        assert_eq!(
            violations(&r, &[Promise::AnsweredOnce], &Terms::default()),
            Vec::<String>::new()
        );
        // Not counted failed: an acknowledged request left unanswered.
        let r = report(vec![], good.clone(), 0);
        let v = violations(&r, &[Promise::AnsweredOnce], &Terms::default());
        assert!(v.iter().any(|l| l.contains("never answered")), "{v:?}");
        let mut bad = good;
        bad.push(line(500, "client", "I: reply to u1: Hello #0"));
        bad.push(line(600, "client", "I: reply to u3: Hello #3"));
        bad.push(exec(700, "w1", "titanic-u4"));
        bad.push(exec(800, "w1", "titanic-u5"));
        let r = report(vec![], bad, 1);
        let v = violations(&r, &[Promise::AnsweredOnce], &Terms::default()).join("\n");
        for needle in [
            "u1 answered 2 times",
            "reply to u3, which no client was given",
            "u3 answered but never executed",
            "2 stored request(s) executed that no client was given",
        ] {
            assert!(v.contains(needle), "{needle}: {v}");
        }
    }
}
