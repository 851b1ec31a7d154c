//! The timeline of a scenario run, as a typed model: lanes, markers, request marks, spans and
//! brackets.
//!
//! [`Timeline::from_report`] turns a [`RunResults`] (typed events, time-stamped lines, measures)
//! into that model; the `svg` module draws it and the `page` module puts the pictures on the
//! tour's HTML page. The model knows neither, so the picture is a pure function of the model
//! and both are unit-tested without running anything.
//!
//! Request marks come from the clients' per-request lines (`--log-requests`):
//! `I: request seq=17 outcome=answered tries=2 latency_ms=35`, printed when the request's outcome
//! is final; the mark is drawn at the send time, `latency_ms` before the line arrived.

use crate::net::NetAction;
use crate::results::{EventKind, ProcessChange, RunResults};
use crate::roles::Roles;
use common::report::{self, RequestLine};
use std::time::Duration;

/// One scenario's timeline, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The scenario's name.
    pub scenario: String,
    /// Where the time axis ends (the end of the run, or the last thing seen if later).
    pub end: Duration,
    /// One lane per process, in the scenario's order (grouped by host when there are hosts).
    pub lanes: Vec<Lane>,
    /// One marker per step of the timeline that was played.
    pub markers: Vec<Marker>,
    /// Shaded intervals across the lanes (network faults).
    pub spans: Vec<Span>,
    /// One bracket per `measure`.
    pub brackets: Vec<Bracket>,
    /// Each lane's roles over time and the moments a promise was at risk ([`crate::roles`]).
    pub roles: Roles,
}

/// One process of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// The process name.
    pub name: String,
    /// The host it belongs to, when the scenario groups processes into hosts.
    pub host: Option<String>,
    /// A client: it gets a latency strip with its request marks.
    pub client: bool,
    /// When it was running or stopped; gaps are when it was not running (not started yet, dead).
    pub segments: Vec<Segment>,
    /// Where a run ended.
    pub ends: Vec<LaneEnd>,
    /// Its requests, in the order their outcome was printed.
    pub requests: Vec<RequestMark>,
}

/// An interval of one run of a process in one state.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start, since the start of the scenario.
    pub from: Duration,
    /// End.
    pub to: Duration,
    /// Running or hung.
    pub state: SegmentState,
    /// Which run (1 = first start; 2+ = restarted).
    pub run: u32,
}

/// The state of a process during a [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    /// Running.
    Running,
    /// Stopped by SIGSTOP (hung).
    Stopped,
}

/// The end of one run of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneEnd {
    /// When.
    pub at: Duration,
    /// Killed by the tour (kill -9, restart, timeout) rather than ended by itself.
    pub killed: bool,
    /// How, as people read it ("kill -9", "exited with code 0").
    pub how: String,
}

/// A client request's outcome as drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkOutcome {
    /// Answered on the first try.
    Answered,
    /// Answered after one or more retries.
    Retried,
    /// Abandoned, timed out, or in flight when the client was interrupted.
    Failed,
}

impl MarkOutcome {
    /// The CSS class and legend word.
    pub fn class(self) -> &'static str {
        match self {
            MarkOutcome::Answered => "answered",
            MarkOutcome::Retried => "retried",
            MarkOutcome::Failed => "failed",
        }
    }
}

/// One request of a client.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMark {
    /// The client's own request number.
    pub seq: u64,
    /// When it was first sent.
    pub sent: Duration,
    /// From the first send to the outcome.
    pub latency: Duration,
    /// Sends of the request (1 = no retry).
    pub tries: u32,
    /// How it ended.
    pub outcome: MarkOutcome,
}

/// A step of the scenario, drawn as a line across the lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// When the step began.
    pub at: Duration,
    /// The step's number (1-based).
    pub step: usize,
    /// What it did ("kill -9 worker1"), or its note if it has no action.
    pub label: String,
    /// The step's note, if any.
    pub note: Option<String>,
    /// How it is drawn.
    pub kind: MarkerKind,
}

/// What kind of step a [`Marker`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// Starting processes.
    Start,
    /// A fault: kill -9, stop, cont, restart, interrupt.
    Fault,
    /// A network action: partition, heal, delay, throttle, reset.
    Network,
    /// A step that only waits, measures or notes.
    Note,
}

/// A shaded interval across the lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Start.
    pub from: Duration,
    /// End (`None`: still in force when the run ended).
    pub to: Option<Duration>,
    /// What it is.
    pub kind: SpanKind,
    /// Hover text ("partition host server_host").
    pub label: String,
    /// The lanes it shades (the processes of the host, or the connecting process of a link).
    pub lanes: Vec<usize>,
}

/// The kinds of [`Span`]: a network fault from the step that set it to the `heal` that ended
/// it. Each kind is a CSS class of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Both directions held (a cable pull).
    Partition,
    /// One direction held.
    OneWay,
    /// Added latency.
    Delay,
    /// Limited bandwidth.
    Throttle,
}

impl SpanKind {
    /// The CSS class.
    pub fn class(self) -> &'static str {
        match self {
            SpanKind::Partition => "partition",
            SpanKind::OneWay => "oneway",
            SpanKind::Delay => "delay",
            SpanKind::Throttle => "throttle",
        }
    }

    /// The span a network action opens; `None` for heal and reset.
    pub fn of(action: NetAction) -> Option<SpanKind> {
        match action {
            NetAction::Partition => Some(SpanKind::Partition),
            NetAction::PartitionIn | NetAction::PartitionOut => Some(SpanKind::OneWay),
            NetAction::Delay(_) => Some(SpanKind::Delay),
            NetAction::Throttle(_) => Some(SpanKind::Throttle),
            NetAction::Heal | NetAction::Reset => None,
        }
    }
}

/// A measured recovery, drawn as a labelled bracket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bracket {
    /// The measure's label.
    pub label: String,
    /// The lane of the process whose line ends it.
    pub lane: usize,
    /// The step's action (for a gap: the client's last answer before it).
    pub from: Duration,
    /// The line that ended it; `None` if it never came.
    pub to: Option<Duration>,
}

/// How the timeline colours a client's request line (contract 2, parsed by
/// [`common::report::RequestLine`]).
pub fn outcome_of(line: &RequestLine) -> MarkOutcome {
    match (line.outcome, line.tries) {
        (report::Outcome::Failed, _) => MarkOutcome::Failed,
        (report::Outcome::Answered, 0 | 1) => MarkOutcome::Answered,
        (report::Outcome::Answered, _) => MarkOutcome::Retried,
    }
}

impl Timeline {
    /// Builds the timeline of a run from its report.
    pub fn from_report(report: &RunResults) -> Timeline {
        let mut end = report.elapsed;
        // Lanes grouped by host, in the order of the hosts; hosts are shown only when the
        // scenario declares some (otherwise every process is a host of its own name).
        let declared = report
            .hosts
            .iter()
            .any(|(h, procs)| procs.len() != 1 || procs[0] != *h);
        let host_of = |name: &str| {
            report
                .hosts
                .iter()
                .position(|(_, procs)| procs.iter().any(|p| p == name))
        };
        let mut order: Vec<&crate::results::ProcessInfo> = report.processes.iter().collect();
        order.sort_by_key(|p| host_of(&p.name).unwrap_or(usize::MAX));
        let mut lanes: Vec<Lane> = order
            .iter()
            .map(|p| Lane {
                name: p.name.clone(),
                host: host_of(&p.name)
                    .filter(|_| declared)
                    .map(|h| report.hosts[h].0.clone()),
                client: p.client,
                segments: Vec::new(),
                ends: Vec::new(),
                requests: Vec::new(),
            })
            .collect();
        let names: Vec<String> = lanes.iter().map(|l| l.name.clone()).collect();
        let lane_of = |name: &str| names.iter().position(|n| n == name);
        for e in &report.events {
            end = end.max(e.at);
        }
        for l in &report.output {
            end = end.max(l.at);
        }
        // Per lane: the open segment (start, state, run).
        let mut open: Vec<Option<(Duration, SegmentState, u32)>> = vec![None; lanes.len()];
        let mut markers = Vec::new();
        for e in &report.events {
            match &e.kind {
                EventKind::Message => {}
                EventKind::Step {
                    number,
                    action,
                    processes,
                    network,
                    note,
                } => {
                    let (label, kind) = match action {
                        Some(verb) => (
                            format!("{verb} {}", processes.join(", ")),
                            if *network {
                                MarkerKind::Network
                            } else if verb == "start" {
                                MarkerKind::Start
                            } else {
                                MarkerKind::Fault
                            },
                        ),
                        None => (note.clone().unwrap_or_default(), MarkerKind::Note),
                    };
                    markers.push(Marker {
                        at: e.at,
                        step: *number,
                        label,
                        note: note.clone(),
                        kind,
                    });
                }
                EventKind::Process { process, change } => {
                    let Some(i) = lane_of(process) else { continue };
                    let lane = &mut lanes[i];
                    let close = |open: &mut Option<(Duration, SegmentState, u32)>,
                                 lane: &mut Lane|
                     -> Option<u32> {
                        let (from, state, run) = open.take()?;
                        lane.segments.push(Segment {
                            from,
                            to: e.at,
                            state,
                            run,
                        });
                        Some(run)
                    };
                    match change {
                        ProcessChange::Started { run } => {
                            close(&mut open[i], lane);
                            open[i] = Some((e.at, SegmentState::Running, *run));
                        }
                        ProcessChange::Stopped | ProcessChange::Continued => {
                            let state = if *change == ProcessChange::Stopped {
                                SegmentState::Stopped
                            } else {
                                SegmentState::Running
                            };
                            if let Some(run) = close(&mut open[i], lane) {
                                open[i] = Some((e.at, state, run));
                            }
                        }
                        ProcessChange::Interrupted => {}
                        ProcessChange::Killed => {
                            if close(&mut open[i], lane).is_some() {
                                lane.ends.push(LaneEnd {
                                    at: e.at,
                                    killed: true,
                                    how: "killed (SIGKILL)".to_owned(),
                                });
                            }
                        }
                        ProcessChange::Exited { how } => {
                            close(&mut open[i], lane);
                            lane.ends.push(LaneEnd {
                                at: e.at,
                                killed: false,
                                how: how.clone(),
                            });
                        }
                    }
                }
            }
        }
        for (i, o) in open.into_iter().enumerate() {
            if let Some((from, state, run)) = o {
                lanes[i].segments.push(Segment {
                    from,
                    to: end,
                    state,
                    run,
                });
            }
        }
        for line in &report.output {
            let Some(i) = lane_of(&line.process) else {
                continue;
            };
            if !lanes[i].client || !line.text.contains("request seq=") {
                continue;
            }
            if let Ok(r) = line.text.parse::<RequestLine>() {
                let latency = Duration::from_millis(r.latency_ms);
                lanes[i].requests.push(RequestMark {
                    seq: r.seq,
                    sent: line.at.saturating_sub(latency),
                    latency,
                    tries: u32::try_from(r.tries).unwrap_or(u32::MAX),
                    outcome: outcome_of(&r),
                });
            }
        }
        let brackets = report
            .measures
            .iter()
            .map(|m| Bracket {
                label: m.label.clone(),
                lane: lane_of(&m.process).unwrap_or(0),
                from: m.at,
                to: m.elapsed.map(|d| m.at + d),
            })
            .collect();
        let spans = network_spans(report, &names, end);
        let roles = crate::roles::read(report, &lanes, end);
        Timeline {
            scenario: report.scenario.clone(),
            end,
            lanes,
            markers,
            spans,
            brackets,
            roles,
        }
    }

    /// Request marks by outcome: (answered incl. retried, retried, failed).
    pub fn request_counts(&self) -> (u64, u64, u64) {
        let all = self.lanes.iter().flat_map(|l| &l.requests);
        let mut counts = (0, 0, 0);
        for r in all {
            match r.outcome {
                MarkOutcome::Answered => counts.0 += 1,
                MarkOutcome::Retried => {
                    counts.0 += 1;
                    counts.1 += 1;
                }
                MarkOutcome::Failed => counts.2 += 1,
            }
        }
        counts
    }
}

/// The spans of the network faults: each named host or link keeps its fault from the step that
/// set it until a `heal` names it (a later fault on the same name replaces it).
fn network_spans(report: &RunResults, lanes: &[String], end: Duration) -> Vec<Span> {
    let lanes_of = |target: &str| -> Vec<usize> {
        let procs: Vec<&str> = match report.hosts.iter().find(|(h, _)| h == target) {
            Some((_, procs)) => procs.iter().map(String::as_str).collect(),
            // A link `endpoint.via.process`: the connecting process.
            None => target
                .rsplit_once(".via.")
                .map(|(_, p)| p)
                .into_iter()
                .collect(),
        };
        procs
            .iter()
            .filter_map(|p| lanes.iter().position(|l| l == p))
            .collect()
    };
    let mut spans: Vec<Span> = Vec::new();
    // Target name → index of its open span.
    let mut open: Vec<(String, usize)> = Vec::new();
    for (at, net) in report.net_events() {
        for target in &net.targets {
            if net.action == NetAction::Reset {
                continue;
            }
            if let Some(pos) = open.iter().position(|(t, _)| t == target) {
                let (_, i) = open.remove(pos);
                spans[i].to = Some(at);
            }
            if let Some(kind) = SpanKind::of(net.action) {
                let what = if net.hosts.contains(target) {
                    "host"
                } else {
                    "link"
                };
                open.push((target.clone(), spans.len()));
                spans.push(Span {
                    from: at,
                    to: None,
                    kind,
                    label: format!("{} {what} {target}", net.action.verb()),
                    lanes: lanes_of(target),
                });
            }
        }
    }
    for span in &mut spans {
        if span.to.is_some_and(|t| t > end) {
            span.to = Some(end);
        }
    }
    spans
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::{
        ClientOutcome, Event, Measure, MeasureKind, OutputLine, ProcessChange, ProcessInfo,
        RunResults,
    };
    use common::report::Summary;
    use std::collections::BTreeMap;

    pub(crate) fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ev(at: u64, kind: EventKind) -> Event {
        Event {
            at: ms(at),
            text: String::new(),
            kind,
            net: None,
        }
    }

    pub(crate) fn proc_ev(at: u64, process: &str, change: ProcessChange) -> Event {
        ev(
            at,
            EventKind::Process {
                process: process.into(),
                change,
            },
        )
    }

    fn step(at: u64, number: usize, action: Option<&str>, processes: &[&str]) -> Event {
        ev(
            at,
            EventKind::Step {
                number,
                action: action.map(str::to_owned),
                processes: processes.iter().map(|p| p.to_string()).collect(),
                network: false,
                note: Some(format!("note {number}")),
            },
        )
    }

    pub(crate) fn line(at: u64, process: &str, text: &str) -> OutputLine {
        OutputLine {
            at: ms(at),
            process: process.into(),
            run: 1,
            text: text.into(),
        }
    }

    /// A server started, hung, continued, killed, restarted; a client with three requests.
    pub(crate) fn sample() -> RunResults {
        let summary = Summary {
            sent: 3,
            answered: 2,
            failed: 1,
            retries: 2,
        };
        RunResults {
            scenario: "demo".into(),
            summary,
            lost: 0,
            clients: vec![ClientOutcome {
                name: "client".into(),
                summary: Some(summary),
                exit_code: Some(1),
                timed_out: false,
            }],
            measures: vec![
                Measure {
                    label: "served again".into(),
                    elapsed: Some(ms(700)),
                    at: ms(1000),
                    process: "client".into(),
                    kind: MeasureKind::Line,
                },
                Measure {
                    label: "never".into(),
                    elapsed: None,
                    at: ms(1500),
                    process: "server".into(),
                    kind: MeasureKind::Line,
                },
            ],
            lines: BTreeMap::new(),
            events: vec![
                step(0, 1, Some("start"), &["server", "client"]),
                proc_ev(1, "server", ProcessChange::Started { run: 1 }),
                proc_ev(2, "client", ProcessChange::Started { run: 1 }),
                step(300, 2, Some("stop (SIGSTOP)"), &["server"]),
                proc_ev(300, "server", ProcessChange::Stopped),
                step(500, 3, Some("cont (SIGCONT)"), &["server"]),
                proc_ev(500, "server", ProcessChange::Continued),
                step(1000, 4, Some("restart"), &["server"]),
                proc_ev(1000, "server", ProcessChange::Killed),
                proc_ev(1010, "server", ProcessChange::Started { run: 2 }),
                step(1500, 5, None, &[]),
                proc_ev(
                    1900,
                    "client",
                    ProcessChange::Exited {
                        how: "exited with code 1".into(),
                    },
                ),
            ],
            elapsed: ms(2000),
            shutdown: None,
            hosts: vec![
                ("server".into(), vec!["server".into()]),
                ("client".into(), vec!["client".into()]),
            ],
            processes: vec![
                ProcessInfo {
                    name: "server".into(),
                    client: false,
                },
                ProcessInfo {
                    name: "client".into(),
                    client: true,
                },
            ],
            output: vec![
                line(
                    100,
                    "client",
                    "I: request seq=1 outcome=answered tries=1 latency_ms=50",
                ),
                line(
                    1700,
                    "client",
                    "I: request seq=2 outcome=answered tries=3 latency_ms=1500",
                ),
                line(
                    1800,
                    "server",
                    "I: request seq=9 outcome=failed tries=1 latency_ms=5",
                ),
                line(
                    1890,
                    "client",
                    "I: request seq=3 outcome=failed tries=3 latency_ms=100",
                ),
                line(
                    1895,
                    "client",
                    "I: summary sent=3 answered=2 failed=1 retries=2",
                ),
            ],
        }
    }

    pub(crate) fn net(at: u64, number: usize, action: NetAction, targets: &[&str]) -> [Event; 2] {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        let hosts = targets
            .iter()
            .filter(|t| !t.contains(".via."))
            .cloned()
            .collect();
        [
            ev(
                at,
                EventKind::Step {
                    number,
                    action: Some(action.verb()),
                    processes: targets.clone(),
                    network: true,
                    note: None,
                },
            ),
            Event {
                net: Some(crate::results::NetEvent {
                    action,
                    targets,
                    hosts,
                    links: Vec::new(),
                }),
                ..ev(at, EventKind::Message)
            },
        ]
    }

    #[test]
    fn network_faults_shade_their_hosts_lanes_until_healed() {
        let mut r = sample();
        r.hosts = vec![
            ("box1".into(), vec!["client".into()]),
            ("box2".into(), vec!["server".into()]),
        ];
        r.events
            .extend(net(600, 6, NetAction::Partition, &["box2"]));
        r.events
            .extend(net(700, 7, NetAction::Delay(ms(50)), &["q.via.client"]));
        r.events.extend(net(800, 8, NetAction::Heal, &["box2"]));
        r.events.extend(net(900, 9, NetAction::Reset, &["box1"]));
        let t = Timeline::from_report(&r);
        // Grouped by host: box1 (client) first.
        let lanes: Vec<(&str, Option<&str>)> = t
            .lanes
            .iter()
            .map(|l| (l.name.as_str(), l.host.as_deref()))
            .collect();
        assert_eq!(lanes, [("client", Some("box1")), ("server", Some("box2"))]);
        assert_eq!(t.spans.len(), 2);
        assert_eq!(t.spans[0].kind, SpanKind::Partition);
        assert_eq!((t.spans[0].from, t.spans[0].to), (ms(600), Some(ms(800))));
        assert_eq!(t.spans[0].lanes, [1]);
        assert_eq!(t.spans[1].kind, SpanKind::Delay);
        assert_eq!(t.spans[1].to, None, "never healed");
        assert_eq!(t.spans[1].lanes, [0]);
        let network = t
            .markers
            .iter()
            .filter(|m| m.kind == MarkerKind::Network)
            .count();
        assert_eq!(network, 4);
        // The measure's lane follows the reordering.
        assert_eq!(t.brackets[0].lane, 0);
    }

    #[test]
    fn request_lines_are_coloured_by_outcome_and_tries() {
        let outcome = |l: &str| outcome_of(&l.parse::<RequestLine>().unwrap());
        let line = "12:00:01 I: request seq=17 outcome=answered tries=2 latency_ms=35";
        assert_eq!(outcome(line), MarkOutcome::Retried);
        let line = "I: request seq=1 outcome=answered tries=1 latency_ms=3";
        assert_eq!(outcome(line), MarkOutcome::Answered);
        let line = "I: request seq=3 outcome=failed tries=4 latency_ms=10000";
        assert_eq!(outcome(line), MarkOutcome::Failed);
    }

    #[test]
    fn lanes_follow_starts_hangs_kills_and_restarts() {
        let t = Timeline::from_report(&sample());
        assert_eq!(t.lanes.len(), 2);
        let server = &t.lanes[0];
        let states: Vec<(u64, u64, SegmentState, u32)> = server
            .segments
            .iter()
            .map(|s| {
                (
                    s.from.as_millis() as u64,
                    s.to.as_millis() as u64,
                    s.state,
                    s.run,
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                (1, 300, SegmentState::Running, 1),
                (300, 500, SegmentState::Stopped, 1),
                (500, 1000, SegmentState::Running, 1),
                (1010, 2000, SegmentState::Running, 2),
            ]
        );
        assert_eq!(server.ends.len(), 1);
        assert!(server.ends[0].killed);
        let client = &t.lanes[1];
        assert_eq!(client.segments.len(), 1);
        assert_eq!(client.segments[0].to, ms(1900));
        assert!(!client.ends[0].killed);
    }

    #[test]
    fn requests_are_drawn_at_their_send_time_with_their_outcome() {
        let t = Timeline::from_report(&sample());
        assert!(t.lanes[0].requests.is_empty(), "only clients have requests");
        let reqs = &t.lanes[1].requests;
        let got: Vec<(u64, u64, MarkOutcome)> = reqs
            .iter()
            .map(|r| (r.seq, r.sent.as_millis() as u64, r.outcome))
            .collect();
        assert_eq!(
            got,
            [
                (1, 50, MarkOutcome::Answered),
                (2, 200, MarkOutcome::Retried),
                (3, 1790, MarkOutcome::Failed)
            ]
        );
        assert_eq!(t.request_counts(), (2, 1, 1));
    }

    #[test]
    fn steps_become_markers_and_measures_brackets() {
        let t = Timeline::from_report(&sample());
        let kinds: Vec<(usize, MarkerKind)> = t.markers.iter().map(|m| (m.step, m.kind)).collect();
        assert_eq!(
            kinds,
            [
                (1, MarkerKind::Start),
                (2, MarkerKind::Fault),
                (3, MarkerKind::Fault),
                (4, MarkerKind::Fault),
                (5, MarkerKind::Note),
            ]
        );
        assert_eq!(t.markers[3].label, "restart server");
        assert_eq!(t.brackets.len(), 2);
        assert_eq!(t.brackets[0].lane, 1);
        assert_eq!(t.brackets[0].to, Some(ms(1700)));
        assert_eq!(t.brackets[1].to, None);
    }
}
