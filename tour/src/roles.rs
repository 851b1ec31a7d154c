//! Roles over time: what each process *was* while it ran, read from the lines it (or its peers)
//! printed, and the moments where a pattern's promise was at risk.
//!
//! A lane of the [`Timeline`](crate::timeline::Timeline) is green while its process runs; for the
//! patterns whose point is a change of role that leaves the point out. [`read`] turns a run's
//! time-stamped lines into [`Track`]s of [`Band`]s, each band one [`Role`] held from one line to
//! the next, and into [`Risk`]s. Nothing here runs anything or reads a clock: it is a pure
//! function of the [`RunResults`] and the lanes, unit-tested like the rest of the timeline.
//!
//! | role | read from (the programs' documented log lines) | track |
//! |---|---|---|
//! | [`Role::Pair`] | `bstarsrv` (and `mdbroker --primary/--backup`): `I: primary ready` / `I: backup ready` / `mdbroker ready on … as primary` (waiting for the peer: PRIMARY, BACKUP), `I: state ACTIVE - … (epoch <n>)`, `I: state PASSIVE - … (epoch <n>)` | the server's own |
//! | [`Role::Worker`] | a broker's `I: worker <id> ready for service …` (registered), `W: worker <id> expired, purged` / `… disconnected, purged` / `… unreachable, purged` (purged), `I: worker <id> disconnected` (left); `<id>` belongs to the worker that printed `worker ready as <id> on …` | on the worker's lane, one per broker that sees it |
//! | [`Role::Server`] | a Freelance client's `I: server <endpoint> alive` / `W: server <endpoint> dead (…)`; the endpoint belongs to the server that printed `I: flserver<n> ready on <bound> as <endpoint>` (or bound it) | on the server's lane, one per client that sees it (on the client's lane, one per endpoint, when no server printed it) |
//! | [`Role::Busy`] | the worker's own `mdworker --log-executions` lines: `I: (<service>) executing request id=<id>` (a request starts) and `I: (<service>) executed request id=<id> count=<n>` (it is done); busy while at least one runs, gaps under 1 % of the time axis joined ([`merge_gap`]) | on the worker's lane ([`View::Executions`]) |
//! | [`Role::Titanic`] | `ticlient`: `I: request UUID <uuid>` (stored), `I: reply to <uuid>: …` (answered), `I: closed <uuid>` (closed, the band ends) | on the client's lane, one row per request under way at once |
//!
//! Risks: [`RiskKind::DualActive`] (two pair servers ACTIVE at once, from their own bands),
//! [`RiskKind::RunTwice`] (a request id executed a second time: the workers'
//! `executed request id=<id> count=<n>` lines, [`Executions::LINE`]) and
//! [`RiskKind::NoServer`] (a Freelance client whose every known server is dead).

use crate::results::{Executions, RunResults};
use crate::timeline::Lane;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Which server of a Binary Star pair a process is (its `--primary`/`--backup` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairNode {
    /// `-p` / `--primary`.
    Primary,
    /// `-b` / `--backup`.
    Backup,
}

/// A Binary Star server's state (the FSM's four states; PRIMARY and BACKUP are one, `Waiting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairState {
    /// Started, not yet ACTIVE or PASSIVE: the FSM's PRIMARY or BACKUP state.
    Waiting,
    /// Serving clients.
    Active,
    /// Standing by.
    Passive,
}

/// How a broker sees one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerStanding {
    /// READY received: the broker may hand it requests.
    Registered,
    /// Dropped by the broker (expired, its connection closed, unreachable).
    Purged,
    /// Said DISCONNECT itself.
    Left,
}

/// How a Freelance client sees one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// Answering pings.
    Alive,
    /// Silent, no reply, or its connection lost.
    Dead,
}

/// Where a Titanic request is in its life, as its client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TitanicStage {
    /// Titanic stored it (the client has its UUID) and its reply is not there yet.
    Stored,
    /// The client has its reply and has not yet closed it.
    Answered,
}

/// What a process is during a [`Band`], as the lines of its track say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A Binary Star server: `bstarsrv`, or one broker of `mdbroker --primary/--backup`.
    Pair {
        /// Primary or backup.
        node: PairNode,
        /// Its FSM state.
        state: PairState,
        /// Its epoch (term); `None` while waiting (the line that starts it names none).
        epoch: Option<u64>,
    },
    /// A Majordomo worker as one broker sees it.
    Worker(WorkerStanding),
    /// A Freelance server as one client sees it.
    Server(Liveness),
    /// One of a Titanic client's requests, from stored to closed.
    Titanic(TitanicStage),
    /// A Majordomo worker running at least one request. The roles issue lists it with the
    /// broker's view of each worker (registered, busy, purged), but this is the worker's own
    /// time, read from its own `executing request id=<id>` and `executed request id=<id>` lines
    /// ([`View::Executions`]), not from a broker's. One band holds every execution that
    /// overlaps it or follows the previous one of the same run within the [`merge_gap`].
    Busy {
        /// The requests whose execution started in the band.
        requests: usize,
    },
}

impl Role {
    /// The short label drawn in the band ("ACTIVE e2", "PRIMARY", "registered").
    pub fn label(self) -> String {
        match self {
            Role::Pair { node, state, epoch } => {
                let state = match (state, node) {
                    (PairState::Waiting, PairNode::Primary) => "PRIMARY",
                    (PairState::Waiting, PairNode::Backup) => "BACKUP",
                    (PairState::Active, _) => "ACTIVE",
                    (PairState::Passive, _) => "PASSIVE",
                };
                match epoch {
                    Some(e) => format!("{state} e{e}"),
                    None => state.to_owned(),
                }
            }
            Role::Worker(WorkerStanding::Registered) => "registered".to_owned(),
            Role::Worker(WorkerStanding::Purged) => "purged".to_owned(),
            Role::Worker(WorkerStanding::Left) => "left".to_owned(),
            Role::Server(Liveness::Alive) => "alive".to_owned(),
            Role::Server(Liveness::Dead) => "dead".to_owned(),
            Role::Titanic(TitanicStage::Stored) => "stored".to_owned(),
            Role::Titanic(TitanicStage::Answered) => "answered".to_owned(),
            Role::Busy { .. } => "busy".to_owned(),
        }
    }

    /// The longer form for hover text ("primary, ACTIVE in epoch 2").
    pub fn describe(self) -> String {
        match self {
            Role::Pair { node, state, epoch } => {
                let node = match node {
                    PairNode::Primary => "primary",
                    PairNode::Backup => "backup",
                };
                let state = match state {
                    PairState::Waiting => "waiting for its peer",
                    PairState::Active => "ACTIVE",
                    PairState::Passive => "PASSIVE",
                };
                match epoch {
                    Some(e) => format!("{node}, {state} in epoch {e}"),
                    None => format!("{node}, {state}"),
                }
            }
            Role::Worker(s) => format!("worker {}", Role::Worker(s).label()),
            Role::Server(s) => format!("server {}", Role::Server(s).label()),
            Role::Titanic(TitanicStage::Stored) => {
                "Titanic request stored, its reply not yet fetched".to_owned()
            }
            Role::Titanic(TitanicStage::Answered) => {
                "Titanic request answered, not yet closed".to_owned()
            }
            Role::Busy { requests: 1 } => "worker busy with 1 request".to_owned(),
            Role::Busy { requests } => format!("worker busy with {requests} requests"),
        }
    }

    /// The CSS class of its band (one per colour of the legend).
    pub fn class(self) -> &'static str {
        match self {
            Role::Pair {
                state: PairState::Waiting,
                ..
            } => "waiting",
            Role::Pair {
                state: PairState::Active,
                ..
            } => "active",
            Role::Pair {
                state: PairState::Passive,
                ..
            } => "passive",
            Role::Worker(WorkerStanding::Registered) => "registered",
            Role::Worker(WorkerStanding::Purged) => "purged",
            Role::Worker(WorkerStanding::Left) => "left",
            Role::Server(Liveness::Alive) => "alive",
            Role::Server(Liveness::Dead) => "dead",
            Role::Titanic(TitanicStage::Stored) => "stored",
            Role::Titanic(TitanicStage::Answered) => "answered-ti",
            Role::Busy { .. } => "busy",
        }
    }

    fn is_active(self) -> bool {
        matches!(
            self,
            Role::Pair {
                state: PairState::Active,
                ..
            }
        )
    }
}

/// What began or ended a band: a line some process printed, or the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// When, since the start of the scenario.
    pub at: Duration,
    /// The process whose line or run it was.
    pub process: String,
    /// The line as printed, or what ended the run ("killed (SIGKILL)", "still running at the end").
    pub text: String,
}

impl Cause {
    /// "primary at 3.512 s: I: state ACTIVE - …".
    pub fn describe(&self) -> String {
        format!(
            "{} at {:.3} s: {}",
            self.process,
            self.at.as_secs_f64(),
            self.text
        )
    }
}

/// One role held over an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    /// Start, since the start of the scenario.
    pub from: Duration,
    /// End.
    pub to: Duration,
    /// What it was.
    pub role: Role,
    /// The line that began it.
    pub began: Cause,
    /// The line (or end of run) that ended it.
    pub ended: Cause,
}

/// Whose view a [`Track`] is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum View {
    /// The process's own role (a pair server's state).
    Own,
    /// The process as another one sees it (a worker as that broker sees it, a Freelance server
    /// as that client sees it).
    SeenBy(String),
    /// Another process as this one sees it: a Freelance server, by the endpoint the client
    /// names, when no lane is known to hold it (drawn on the client's lane).
    Sees(String),
    /// A Titanic client's requests, one row per request under way at once (0, 1, …): each
    /// request goes to the first row free when it was stored.
    Requests(usize),
    /// A worker's own executions, from its own lines: when it was busy ([`Role::Busy`]).
    Executions,
}

/// The bands of one lane for one [`View`], in time order, not overlapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The lane (index into [`Timeline::lanes`](crate::timeline::Timeline::lanes)).
    pub lane: usize,
    /// Whose view.
    pub view: View,
    /// Its bands.
    pub bands: Vec<Band>,
}

/// What was at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RiskKind {
    /// Two (or more) servers of a pair ACTIVE at once: split brain.
    DualActive,
    /// A request id executed again (it ran twice).
    RunTwice,
    /// A client with no live server at all.
    NoServer,
}

impl RiskKind {
    /// The CSS class.
    pub fn class(self) -> &'static str {
        match self {
            RiskKind::DualActive => "dual-active",
            RiskKind::RunTwice => "run-twice",
            RiskKind::NoServer => "no-server",
        }
    }
}

/// A moment (or interval) where the pattern's promise was at risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    /// What.
    pub kind: RiskKind,
    /// From.
    pub from: Duration,
    /// To (equal to `from` for a point: a second execution).
    pub to: Duration,
    /// The lanes concerned, the first one where the mark is drawn.
    pub lanes: Vec<usize>,
    /// The lines that began and ended it, for the hover text.
    pub began: Cause,
    /// See `began`.
    pub ended: Cause,
}

/// Every track and risk of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roles {
    /// The tracks, ordered by lane then view as first seen.
    pub tracks: Vec<Track>,
    /// The risks, in time order.
    pub risks: Vec<Risk>,
}

/// A line's meaning for the roles.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    /// A pair server bound its sockets as primary or backup.
    PairReady(PairNode),
    /// A pair server changed state.
    PairState(PairState, u64),
    /// A broker's news of a worker identity.
    Worker(String, WorkerStanding),
    /// A Freelance client's news of a server endpoint.
    Server(String, Liveness),
}

/// Parses one line (with or without a time prefix) into what it says about roles.
fn said(text: &str) -> Option<Said> {
    if text.contains("I: primary ready") {
        return Some(Said::PairReady(PairNode::Primary));
    }
    if text.contains("I: backup ready") {
        return Some(Said::PairReady(PairNode::Backup));
    }
    if let Some(rest) = after(text, "I: mdbroker ready on ") {
        if rest.contains(" as primary") {
            return Some(Said::PairReady(PairNode::Primary));
        }
        if rest.contains(" as backup") {
            return Some(Said::PairReady(PairNode::Backup));
        }
        return None;
    }
    if let Some(rest) = after(text, "I: state ") {
        let state = if rest.starts_with("ACTIVE") {
            PairState::Active
        } else if rest.starts_with("PASSIVE") {
            PairState::Passive
        } else {
            return None;
        };
        let epoch = rest
            .rsplit_once("(epoch ")?
            .1
            .trim_end()
            .strip_suffix(')')?
            .parse()
            .ok()?;
        return Some(Said::PairState(state, epoch));
    }
    if let Some(rest) = after(text, "I: worker ") {
        let (id, tail) = rest.split_once(' ')?;
        if tail.starts_with("ready for service ") {
            return Some(Said::Worker(id.to_owned(), WorkerStanding::Registered));
        }
        if tail.starts_with("disconnected") {
            return Some(Said::Worker(id.to_owned(), WorkerStanding::Left));
        }
        return None;
    }
    if let Some(rest) = after(text, "W: worker ") {
        let (id, tail) = rest.split_once(' ')?;
        let purged = tail.starts_with("expired, purged")
            || tail.starts_with("disconnected, purged")
            || tail.starts_with("unreachable, purged");
        return purged.then(|| Said::Worker(id.to_owned(), WorkerStanding::Purged));
    }
    if let Some(rest) = after(text, "I: server ") {
        let endpoint = rest.strip_suffix(" alive")?;
        return Some(Said::Server(endpoint.to_owned(), Liveness::Alive));
    }
    if let Some(rest) = after(text, "W: server ") {
        let (endpoint, tail) = rest.split_once(' ')?;
        return tail
            .starts_with("dead")
            .then(|| Said::Server(endpoint.to_owned(), Liveness::Dead));
    }
    None
}

/// The text after `marker`, if the line has it (after an optional time prefix).
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).map(|i| &text[i + marker.len()..])
}

/// The worker identity a worker's `worker ready as <id> on <broker>` line names.
fn worker_identity(text: &str) -> Option<&str> {
    let rest = after(text, " worker ready as ")?;
    rest.split_whitespace().next()
}

/// The endpoints a Freelance server's ready line names: where it bound, and the identity its
/// clients know it by (model 3).
fn server_endpoints(text: &str) -> Option<Vec<&str>> {
    let rest = after(text, "I: flserver")?;
    let rest = after(rest, " ready on ")?;
    let (bound, identity) = match rest.split_once(" as ") {
        Some((bound, identity)) => (bound, Some(identity.trim())),
        None => (rest.trim(), None),
    };
    Some(std::iter::once(bound).chain(identity).collect())
}

/// A band being built: its role, what began it, and whose run ends it.
#[derive(Debug, Clone)]
struct Open {
    role: Role,
    began: Cause,
    /// The lane and run whose end closes it (the server's own run; the broker's or client's).
    owner: (usize, u32),
}

/// Ends of runs: the last moment of each (lane, run), with what ended it.
struct Runs<'a> {
    lanes: &'a [Lane],
    end: Duration,
}

impl Runs<'_> {
    fn end_of(&self, lane: usize, run: u32) -> Cause {
        let l = &self.lanes[lane];
        let to = l
            .segments
            .iter()
            .filter(|s| s.run == run)
            .map(|s| s.to)
            .max()
            .unwrap_or(self.end);
        let text = l
            .ends
            .iter()
            .find(|e| e.at == to)
            .map_or_else(|| "still running at the end".to_owned(), |e| e.how.clone());
        Cause {
            at: to,
            process: l.name.clone(),
            text,
        }
    }
}

/// Reads the roles of a run from its lines; `lanes` are the timeline's (their runs' ends close
/// the bands), `end` the end of its time axis.
pub fn read(report: &RunResults, lanes: &[Lane], end: Duration) -> Roles {
    let lane_of = |name: &str| lanes.iter().position(|l| l.name == name);
    let runs = Runs { lanes, end };
    // Worker identities → the worker's lane, from every line first (the broker's line about a
    // READY may be time-stamped before the worker's own).
    let mut workers: HashMap<String, usize> = HashMap::new();
    for line in &report.output {
        if let (Some(id), Some(i)) = (worker_identity(&line.text), lane_of(&line.process)) {
            workers.insert(id.to_owned(), i);
        }
    }
    // Freelance server endpoints → the server's lane: `I: flserver3 ready on <bound> as <id>`,
    // the identity being the endpoint its clients use (flserver1/2: the bound endpoint).
    let mut endpoints: HashMap<String, usize> = HashMap::new();
    for line in &report.output {
        if let (Some(names), Some(i)) = (server_endpoints(&line.text), lane_of(&line.process)) {
            for name in names {
                endpoints.insert(name.to_owned(), i);
            }
        }
    }
    let mut tracks: Vec<Track> = Vec::new();
    let mut open: Vec<Option<Open>> = Vec::new();
    let mut pair_node: HashMap<(usize, u32), PairNode> = HashMap::new();
    // Freelance: per client lane, each endpoint's liveness and the open no-server risk.
    let mut servers: BTreeMap<usize, (u32, BTreeMap<String, Liveness>)> = BTreeMap::new();
    let mut no_server: BTreeMap<usize, (Cause, u32)> = BTreeMap::new();
    let mut risks = Vec::new();
    for line in &report.output {
        let Some(i) = lane_of(&line.process) else {
            continue;
        };
        let Some(what) = said(&line.text) else {
            continue;
        };
        let cause = Cause {
            at: line.at,
            process: line.process.clone(),
            text: line.text.clone(),
        };
        let (lane, view, role) = match what {
            Said::PairReady(node) => {
                pair_node.insert((i, line.run), node);
                let role = Role::Pair {
                    node,
                    state: PairState::Waiting,
                    epoch: None,
                };
                (i, View::Own, role)
            }
            Said::PairState(state, epoch) => {
                let Some(&node) = pair_node.get(&(i, line.run)) else {
                    continue;
                };
                let role = Role::Pair {
                    node,
                    state,
                    epoch: Some(epoch),
                };
                (i, View::Own, role)
            }
            Said::Worker(id, standing) => {
                let Some(&w) = workers.get(&id) else { continue };
                (
                    w,
                    View::SeenBy(line.process.clone()),
                    Role::Worker(standing),
                )
            }
            Said::Server(endpoint, liveness) => {
                // A restarted client starts knowing no server; a risk of its last run ended
                // with that run.
                let (run, known) = servers.entry(i).or_insert((line.run, BTreeMap::new()));
                if *run != line.run {
                    *run = line.run;
                    known.clear();
                    if let Some((began, old)) = no_server.remove(&i) {
                        risks.push(risk(
                            RiskKind::NoServer,
                            vec![i],
                            began,
                            runs.end_of(i, old),
                        ));
                    }
                }
                known.insert(endpoint.clone(), liveness);
                let none_alive = known.values().all(|l| *l == Liveness::Dead);
                match (none_alive, no_server.contains_key(&i)) {
                    (true, false) => {
                        no_server.insert(i, (cause.clone(), line.run));
                    }
                    (false, true) => {
                        let (began, run) = no_server.remove(&i).expect("checked");
                        let ended = earlier(cause.clone(), runs.end_of(i, run));
                        risks.push(risk(RiskKind::NoServer, vec![i], began, ended));
                    }
                    _ => {}
                }
                match endpoints.get(&endpoint) {
                    Some(&server) => (
                        server,
                        View::SeenBy(line.process.clone()),
                        Role::Server(liveness),
                    ),
                    None => (i, View::Sees(endpoint), Role::Server(liveness)),
                }
            }
        };
        let t = match tracks.iter().position(|t| t.lane == lane && t.view == view) {
            Some(t) => t,
            None => {
                tracks.push(Track {
                    lane,
                    view,
                    bands: Vec::new(),
                });
                open.push(None);
                tracks.len() - 1
            }
        };
        if let Some(o) = open[t].take() {
            let ended = earlier(cause.clone(), runs.end_of(o.owner.0, o.owner.1));
            close(&mut tracks[t], o, ended);
        }
        open[t] = Some(Open {
            role,
            began: cause,
            owner: (i, line.run),
        });
    }
    for (t, o) in open.into_iter().enumerate() {
        if let Some(o) = o {
            let ended = runs.end_of(o.owner.0, o.owner.1);
            close(&mut tracks[t], o, ended);
        }
    }
    for (i, (began, run)) in no_server {
        risks.push(risk(
            RiskKind::NoServer,
            vec![i],
            began,
            runs.end_of(i, run),
        ));
    }
    tracks.extend(titanic_requests(report, lanes, &runs));
    tracks.extend(busy(report, lanes, &runs, merge_gap(end)));
    // By lane; a worker's own busy row first, right under its bar.
    tracks.sort_by_key(|t| (t.lane, t.view != View::Executions));
    risks.extend(dual_actives(&tracks));
    risks.extend(second_runs(report, lanes));
    risks.sort_by_key(|r| (r.from, r.to));
    Roles { tracks, risks }
}

/// A Titanic client's requests from its lines `I: request UUID <uuid>` (stored),
/// `I: reply to <uuid>: …` (answered) and `I: closed <uuid>` (closed: the request is over),
/// packed into rows so that no two overlap in one row.
fn titanic_requests(report: &RunResults, lanes: &[Lane], runs: &Runs) -> Vec<Track> {
    let lane_of = |name: &str| lanes.iter().position(|l| l.name == name);
    // Per lane, in the order stored: (uuid, run, bands so far, open stage).
    struct Request {
        uuid: String,
        run: u32,
        bands: Vec<Band>,
        open: Option<(TitanicStage, Cause)>,
    }
    let mut per_lane: BTreeMap<usize, Vec<Request>> = BTreeMap::new();
    for line in &report.output {
        let Some(i) = lane_of(&line.process) else {
            continue;
        };
        let cause = Cause {
            at: line.at,
            process: line.process.clone(),
            text: line.text.clone(),
        };
        let uuid_after = |marker: &str| -> Option<String> {
            let rest = after(&line.text, marker)?;
            let uuid = rest.split([' ', ':']).next()?;
            (!uuid.is_empty()).then(|| uuid.to_owned())
        };
        if let Some(uuid) = uuid_after("I: request UUID ") {
            per_lane.entry(i).or_default().push(Request {
                uuid,
                run: line.run,
                bands: Vec::new(),
                open: Some((TitanicStage::Stored, cause)),
            });
            continue;
        }
        let (uuid, next) = if let Some(uuid) = uuid_after("I: reply to ") {
            (uuid, Some(TitanicStage::Answered))
        } else if let Some(uuid) = uuid_after("I: closed ") {
            (uuid, None)
        } else {
            continue;
        };
        let Some(request) = per_lane
            .get_mut(&i)
            .and_then(|rs| rs.iter_mut().rev().find(|r| r.uuid == uuid))
        else {
            continue;
        };
        if let Some((stage, began)) = request.open.take() {
            request.bands.push(Band {
                from: began.at,
                to: cause.at.max(began.at),
                role: Role::Titanic(stage),
                began,
                ended: cause.clone(),
            });
        }
        request.open = next.map(|stage| (stage, cause));
    }
    let mut tracks = Vec::new();
    for (lane, requests) in per_lane {
        // Rows: the tracks of this lane and when each is free again.
        let mut rows: Vec<(Track, Duration)> = Vec::new();
        for mut r in requests {
            if let Some((stage, began)) = r.open.take() {
                let ended = runs.end_of(lane, r.run);
                r.bands.push(Band {
                    from: began.at,
                    to: ended.at.max(began.at),
                    role: Role::Titanic(stage),
                    began,
                    ended,
                });
            }
            let (Some(first), Some(last)) = (r.bands.first(), r.bands.last()) else {
                continue;
            };
            let (from, to) = (first.from, last.to);
            let row = match rows.iter().position(|(_, free)| *free <= from) {
                Some(row) => row,
                None => {
                    rows.push((
                        Track {
                            lane,
                            view: View::Requests(rows.len()),
                            bands: Vec::new(),
                        },
                        Duration::ZERO,
                    ));
                    rows.len() - 1
                }
            };
            rows[row].0.bands.extend(r.bands);
            rows[row].1 = to;
        }
        tracks.extend(rows.into_iter().map(|(t, _)| t));
    }
    tracks
}

/// What a worker prints when a request's work starts (`mdworker --log-executions`); its end is
/// [`Executions::LINE`] with the same id.
const EXECUTING: &str = "executing request id=";

/// The longest idle time between two executions of one worker that are still drawn as one busy
/// band: 1 % of the time axis (a few pixels), so that a worker serving thousands of short
/// requests one after the other is one band, not thousands of slivers, while a pause a reader
/// can see stays a gap.
pub fn merge_gap(axis: Duration) -> Duration {
    axis / 100
}

/// Each worker's busy time from its own lines: busy from `executing request id=<id>` to
/// `executed request id=<id>`, while at least one request runs (`--concurrency` runs several
/// at once); a request whose end line never comes is cut by the end of the worker's run (a
/// kill, a crash). Busy intervals of one run apart by less than `gap` are one band, whose
/// `began` is the first start line, `ended` the last end line (or the run's end), and whose
/// [`Role::Busy`] counts the requests started in it. An end line without its start line
/// (a worker run without the start lines) draws nothing.
fn busy(report: &RunResults, lanes: &[Lane], runs: &Runs, gap: Duration) -> Vec<Track> {
    let lane_of = |name: &str| lanes.iter().position(|l| l.name == name);
    /// One lane's executions so far.
    struct Worker {
        run: u32,
        /// Request ids running, with how many times each (`-` for requests without an id).
        running: HashMap<String, usize>,
        /// The interval under way: its first start line and how many started in it.
        open: Option<(Cause, usize)>,
        /// The bands so far, each with its run (only bands of one run are joined).
        bands: Vec<(u32, Band)>,
    }
    impl Worker {
        fn close(&mut self, ended: Cause, gap: Duration) {
            let Some((began, requests)) = self.open.take() else {
                return;
            };
            let to = ended.at.max(began.at);
            if let Some((run, last)) = self.bands.last_mut() {
                if *run == self.run && began.at.saturating_sub(last.to) < gap {
                    if let Role::Busy { requests: n } = &mut last.role {
                        *n += requests;
                    }
                    last.to = to.max(last.to);
                    last.ended = ended;
                    return;
                }
            }
            self.bands.push((
                self.run,
                Band {
                    from: began.at,
                    to,
                    role: Role::Busy { requests },
                    began,
                    ended,
                },
            ));
        }
    }
    let mut workers: BTreeMap<usize, Worker> = BTreeMap::new();
    for line in &report.output {
        let (id, starts) = if let Some(rest) = after(&line.text, EXECUTING) {
            (rest, true)
        } else if let Some(rest) = after(&line.text, Executions::LINE) {
            (rest, false)
        } else {
            continue;
        };
        let Some(id) = id.split_whitespace().next() else {
            continue;
        };
        let Some(i) = lane_of(&line.process) else {
            continue;
        };
        let w = workers.entry(i).or_insert_with(|| Worker {
            run: line.run,
            running: HashMap::new(),
            open: None,
            bands: Vec::new(),
        });
        if w.run != line.run {
            // A new run: what the last one left running ended with it.
            w.close(runs.end_of(i, w.run), gap);
            w.running.clear();
            w.run = line.run;
        }
        let cause = Cause {
            at: line.at,
            process: line.process.clone(),
            text: line.text.clone(),
        };
        if starts {
            *w.running.entry(id.to_owned()).or_default() += 1;
            w.open.get_or_insert((cause, 0)).1 += 1;
        } else if let Some(n) = w.running.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                w.running.remove(id);
            }
            if w.running.is_empty() {
                w.close(cause, gap);
            }
        }
    }
    workers
        .into_iter()
        .filter_map(|(lane, mut w)| {
            w.close(runs.end_of(lane, w.run), gap);
            (!w.bands.is_empty()).then(|| Track {
                lane,
                view: View::Executions,
                bands: w.bands.into_iter().map(|(_, b)| b).collect(),
            })
        })
        .collect()
}

/// The earlier of a line and the end of the run that owns a band.
fn earlier(line: Cause, run_end: Cause) -> Cause {
    if run_end.at < line.at {
        run_end
    } else {
        line
    }
}

fn close(track: &mut Track, o: Open, ended: Cause) {
    let to = ended.at.max(o.began.at);
    track.bands.push(Band {
        from: o.began.at,
        to,
        role: o.role,
        began: o.began,
        ended,
    });
}

fn risk(kind: RiskKind, lanes: Vec<usize>, began: Cause, ended: Cause) -> Risk {
    Risk {
        kind,
        from: began.at,
        to: ended.at.max(began.at),
        lanes,
        began,
        ended,
    }
}

/// The intervals where two or more servers' own bands say ACTIVE: from the line that made the
/// second one ACTIVE to the line (or death) that left only one.
fn dual_actives(tracks: &[Track]) -> Vec<Risk> {
    let active: Vec<(usize, &Band)> = tracks
        .iter()
        .filter(|t| t.view == View::Own)
        .flat_map(|t| t.bands.iter().map(move |b| (t.lane, b)))
        .filter(|(_, b)| b.role.is_active() && b.to > b.from)
        .collect();
    let mut cuts: Vec<Duration> = active.iter().flat_map(|(_, b)| [b.from, b.to]).collect();
    cuts.sort();
    cuts.dedup();
    let mut risks: Vec<Risk> = Vec::new();
    let mut current: Option<Risk> = None;
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let covering: Vec<&(usize, &Band)> = active
            .iter()
            .filter(|(_, band)| band.from <= a && band.to >= b)
            .collect();
        if covering.len() >= 2 {
            let mut lanes: Vec<usize> = covering.iter().map(|(l, _)| *l).collect();
            lanes.sort();
            lanes.dedup();
            let ended = covering
                .iter()
                .map(|(_, band)| band)
                .min_by_key(|band| band.to)
                .map(|band| band.ended.clone())
                .expect("two bands");
            match current.as_mut() {
                Some(r) if r.to == a => {
                    r.to = b;
                    r.ended = ended;
                    for l in lanes {
                        if !r.lanes.contains(&l) {
                            r.lanes.push(l);
                        }
                    }
                }
                _ => {
                    risks.extend(current.take());
                    let began = covering
                        .iter()
                        .map(|(_, band)| band)
                        .max_by_key(|band| band.from)
                        .map(|band| band.began.clone())
                        .expect("two bands");
                    current = Some(Risk {
                        kind: RiskKind::DualActive,
                        from: a,
                        to: b,
                        lanes,
                        began,
                        ended,
                    });
                }
            }
        }
    }
    risks.extend(current);
    risks
}

/// Every execution of a request id after its first one (the workers' `executed request id=…`
/// lines): a point on the lane that ran it again, hovering with both lines.
fn second_runs(report: &RunResults, lanes: &[Lane]) -> Vec<Risk> {
    let lane_of = |name: &str| lanes.iter().position(|l| l.name == name);
    let mut first: HashMap<&str, (usize, Cause)> = HashMap::new();
    let mut risks = Vec::new();
    for line in &report.output {
        let Some(rest) = after(&line.text, Executions::LINE) else {
            continue;
        };
        let id = rest.split_whitespace().next().unwrap_or("-");
        let Some(i) = lane_of(&line.process) else {
            continue;
        };
        if id == "-" {
            continue;
        }
        let cause = Cause {
            at: line.at,
            process: line.process.clone(),
            text: line.text.clone(),
        };
        match first.get(id) {
            None => {
                first.insert(id, (i, cause));
            }
            Some((j, began)) => {
                let mut lanes = vec![i];
                if *j != i {
                    lanes.push(*j);
                }
                risks.push(Risk {
                    kind: RiskKind::RunTwice,
                    from: line.at,
                    to: line.at,
                    lanes,
                    began: began.clone(),
                    ended: cause,
                });
            }
        }
    }
    risks
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::net::NetAction;
    use crate::results::{OutputLine, ProcessChange, ProcessInfo};
    use crate::timeline::tests::{line, ms, net, proc_ev, sample};
    use crate::timeline::Timeline;

    /// A report of `processes` (name, client) with these events and lines.
    fn report(
        processes: &[(&str, bool)],
        events: Vec<crate::results::Event>,
        output: Vec<OutputLine>,
        elapsed: u64,
    ) -> RunResults {
        let mut r = sample();
        r.processes = processes
            .iter()
            .map(|(name, client)| ProcessInfo {
                name: (*name).into(),
                client: *client,
            })
            .collect();
        r.hosts = processes
            .iter()
            .map(|(n, _)| ((*n).into(), vec![(*n).into()]))
            .collect();
        r.events = events;
        r.output = output;
        r.measures.clear();
        r.elapsed = ms(elapsed);
        r
    }

    fn started(at: u64, p: &str, run: u32) -> crate::results::Event {
        proc_ev(at, p, ProcessChange::Started { run })
    }

    fn run_line(at: u64, process: &str, run: u32, text: &str) -> OutputLine {
        OutputLine {
            run,
            ..line(at, process, text)
        }
    }

    fn pair(role: Role) -> (PairState, Option<u64>) {
        match role {
            Role::Pair { state, epoch, .. } => (state, epoch),
            other => panic!("not a pair role: {other:?}"),
        }
    }

    /// `(from, to, state, epoch)` of a lane's own bands.
    fn own(t: &Timeline, lane: &str) -> Vec<(u64, u64, PairState, Option<u64>)> {
        let i = t.lanes.iter().position(|l| l.name == lane).unwrap();
        t.roles
            .tracks
            .iter()
            .filter(|tr| tr.lane == i && tr.view == View::Own)
            .flat_map(|tr| &tr.bands)
            .map(|b| {
                let (state, epoch) = pair(b.role);
                (
                    b.from.as_millis() as u64,
                    b.to.as_millis() as u64,
                    state,
                    epoch,
                )
            })
            .collect()
    }

    /// The lines of `binary-star-partition` (as the servers print them, with a time prefix):
    /// the primary ACTIVE, its host cut off, the backup taking over by client vote in a new
    /// epoch, the heal, and the primary stepping down.
    pub(crate) fn binary_star_partition() -> RunResults {
        let mut events = vec![started(5, "primary", 1), started(6, "backup", 1)];
        events.extend(net(2000, 3, NetAction::Partition, &["h1"]));
        events.extend(net(5000, 4, NetAction::Heal, &["h1"]));
        let output = vec![
            line(
                10,
                "primary",
                "22:00:00 I: primary ready: frontend=tcp://127.0.0.1:1 state-pub=tcp://127.0.0.1:2 \
                 state-sub=tcp://127.0.0.1:3 heartbeat=250 ms liveness=2 on-conflict=resolve",
            ),
            line(12, "backup", "22:00:00 I: backup ready: frontend=tcp://127.0.0.1:4"),
            line(
                300,
                "primary",
                "22:00:00 I: state ACTIVE - connected to backup (passive), ready as active (epoch 1)",
            ),
            line(
                310,
                "backup",
                "22:00:00 I: state PASSIVE - connected to peer (active), ready as passive (epoch 1)",
            ),
            line(2600, "backup", "22:00:02 W: peer silent for 600 ms (expired)"),
            line(
                2700,
                "backup",
                "22:00:02 I: state ACTIVE - failover successful: client request after the peer \
                 expired (epoch 2)",
            ),
            line(5040, "primary", "22:00:05 I: peer is ACTIVE"),
            line(
                5050,
                "backup",
                "22:00:05 W: dual actives: we are senior (epoch 2, peer 1), staying active",
            ),
            line(
                5090,
                "primary",
                "22:00:05 I: state PASSIVE - dual actives resolved: the peer is senior, ready as \
                 passive (epoch 2)",
            ),
        ];
        report(
            &[("primary", false), ("backup", false), ("client", true)],
            events,
            output,
            8000,
        )
    }

    #[test]
    fn binary_star_lines_give_each_server_its_states_with_their_epochs() {
        use PairState::*;
        let t = Timeline::from_report(&binary_star_partition());
        assert_eq!(
            own(&t, "primary"),
            [
                (10, 300, Waiting, None),
                (300, 5090, Active, Some(1)),
                (5090, 8000, Passive, Some(2)),
            ]
        );
        assert_eq!(
            own(&t, "backup"),
            [
                (12, 310, Waiting, None),
                (310, 2700, Passive, Some(1)),
                (2700, 8000, Active, Some(2)),
            ]
        );
        // Each band knows the lines that began and ended it.
        let primary = &t.roles.tracks[0].bands[1];
        assert!(primary.began.text.contains("ready as active (epoch 1)"));
        assert!(primary.ended.text.contains("dual actives resolved"));
        assert_eq!(primary.ended.process, "primary");
        let last = &t.roles.tracks[0].bands[2];
        assert_eq!(last.ended.text, "still running at the end");
        assert_eq!(primary.role.label(), "ACTIVE e1");
        assert_eq!(t.roles.tracks[0].bands[0].role.label(), "PRIMARY");
        assert_eq!(t.roles.tracks[1].bands[0].role.label(), "BACKUP");
        // The client prints nothing about roles: no track.
        assert_eq!(t.roles.tracks.len(), 2);
    }

    #[test]
    fn two_active_servers_are_a_risk_from_the_takeover_to_the_step_down() {
        let t = Timeline::from_report(&binary_star_partition());
        let dual: Vec<&Risk> = t
            .roles
            .risks
            .iter()
            .filter(|r| r.kind == RiskKind::DualActive)
            .collect();
        assert_eq!(dual.len(), 1, "{:?}", t.roles.risks);
        let r = dual[0];
        assert_eq!((r.from, r.to), (ms(2700), ms(5090)));
        assert_eq!(r.lanes, [0, 1]);
        assert_eq!(r.began.process, "backup");
        assert!(r.began.text.contains("failover successful"));
        assert_eq!(r.ended.process, "primary");
        assert!(r.ended.text.contains("dual actives resolved"));
        assert_eq!(t.roles.risks.len(), 1, "no other risk");
    }

    #[test]
    fn a_killed_server_loses_its_role_and_a_restart_begins_anew() {
        use PairState::*;
        let mut r = binary_star_partition();
        // The backup is killed while ACTIVE at 4 s, before the heal, and restarted at 6 s.
        r.events
            .push(proc_ev(4000, "backup", ProcessChange::Killed));
        r.events.push(started(6000, "backup", 2));
        r.output
            .retain(|l| !(l.process == "backup" && l.at > ms(4000)));
        r.output
            .push(run_line(6010, "backup", 2, "I: backup ready: …"));
        r.output.push(run_line(
            6200,
            "backup",
            2,
            "I: state PASSIVE - connected to peer (active), ready as passive (epoch 1)",
        ));
        r.output
            .retain(|l| !l.text.contains("dual actives resolved"));
        r.output.sort_by_key(|l| l.at);
        let t = Timeline::from_report(&r);
        assert_eq!(
            own(&t, "backup"),
            [
                (12, 310, Waiting, None),
                (310, 2700, Passive, Some(1)),
                (2700, 4000, Active, Some(2)),
                (6010, 6200, Waiting, None),
                (6200, 8000, Passive, Some(1)),
            ]
        );
        let killed = &t.roles.tracks[1].bands[2];
        assert_eq!(killed.ended.text, "killed (SIGKILL)");
        // Dual active only while the backup lived.
        let dual: Vec<(Duration, Duration)> = t
            .roles
            .risks
            .iter()
            .filter(|r| r.kind == RiskKind::DualActive)
            .map(|r| (r.from, r.to))
            .collect();
        assert_eq!(dual, [(ms(2700), ms(4000))]);
    }

    #[test]
    fn a_broker_pair_prints_the_same_states() {
        assert_eq!(
            said("I: mdbroker ready on tcp://0.0.0.0:5555 as backup (state-pub tcp://x, …)"),
            Some(Said::PairReady(PairNode::Backup))
        );
        assert_eq!(said("I: mdbroker ready on tcp://0.0.0.0:5555"), None);
        assert_eq!(
            said("12:00:00 I: state ACTIVE - failover successful: x (epoch 12)"),
            Some(Said::PairState(PairState::Active, 12))
        );
        assert_eq!(said("I: state ACTIVE - no epoch"), None);
    }

    #[test]
    fn a_purged_worker_registered_again_under_a_new_identity() {
        let output = vec![
            line(
                100,
                "worker",
                "I: (echo) worker ready as W-AAA on tcp://127.0.0.1:1",
            ),
            line(101, "broker", "I: worker W-AAA ready for service echo"),
            line(3000, "broker", "W: worker W-AAA expired, purged"),
            line(
                5000,
                "worker",
                "I: (echo) worker ready as W-BBB on tcp://127.0.0.1:1",
            ),
            // The broker's line may come before the worker's own.
            line(4990, "broker", "I: worker W-BBB ready for service echo"),
            line(7000, "broker", "I: worker W-BBB disconnected"),
            line(7100, "broker", "W: worker W-CCC expired, purged"),
        ];
        let mut output = output;
        output.sort_by_key(|l| l.at);
        let r = report(
            &[("broker", false), ("worker", false), ("client", true)],
            vec![
                started(0, "broker", 1),
                started(50, "worker", 1),
                proc_ev(2000, "worker", ProcessChange::Stopped),
                proc_ev(4000, "worker", ProcessChange::Continued),
            ],
            output,
            8000,
        );
        let t = Timeline::from_report(&r);
        assert_eq!(t.roles.tracks.len(), 1, "{:?}", t.roles.tracks);
        let track = &t.roles.tracks[0];
        assert_eq!(track.lane, 1, "drawn on the worker's lane");
        assert_eq!(track.view, View::SeenBy("broker".into()));
        let bands: Vec<(u64, u64, Role)> = track
            .bands
            .iter()
            .map(|b| (b.from.as_millis() as u64, b.to.as_millis() as u64, b.role))
            .collect();
        use WorkerStanding::*;
        assert_eq!(
            bands,
            [
                (101, 3000, Role::Worker(Registered)),
                (3000, 4990, Role::Worker(Purged)),
                (4990, 7000, Role::Worker(Registered)),
                (7000, 8000, Role::Worker(Left)),
            ]
        );
        assert!(track.bands[1].began.text.contains("expired, purged"));
        assert!(t.roles.risks.is_empty());
    }

    /// A worker with `--concurrency` (two requests at once, then one soon after, one long
    /// after, one cut by a kill, one in its second run and one still running at the end), its
    /// broker, and a second worker that prints only end lines; the axis is 10 s (merge gap
    /// 100 ms).
    pub(crate) fn busy_worker() -> RunResults {
        let ex = |at, run, id: &str| {
            run_line(
                at,
                "worker",
                run,
                &format!("I: (echo) executing request id={id}"),
            )
        };
        let done = |at, run, id: &str| {
            run_line(
                at,
                "worker",
                run,
                &format!("I: (echo) executed request id={id} count=1"),
            )
        };
        let output = vec![
            line(
                50,
                "worker",
                "I: (echo) worker ready as W-1 on tcp://127.0.0.1:1",
            ),
            line(60, "broker", "I: worker W-1 ready for service echo"),
            ex(100, 1, "a-1"),
            ex(150, 1, "a-2"),
            done(300, 1, "a-1"),
            done(400, 1, "a-2"),
            // 50 ms idle: the same band.
            ex(450, 1, "a-3"),
            done(600, 1, "a-3"),
            // 1.4 s idle: a band of its own.
            ex(2000, 1, "a-4"),
            done(2100, 1, "a-4"),
            ex(3000, 1, "a-5"),
            // Killed at 3.5 s while a-5 runs; restarted at 3.55 s, it runs a-5 again 60 ms
            // after the kill: a new run, a new band.
            ex(3610, 2, "a-5"),
            done(3700, 2, "a-5"),
            // An end line whose start this run never printed.
            done(5000, 2, "zz"),
            ex(9000, 2, "a-6"),
            line(9100, "other", "I: (echo) executed request id=b-1 count=1"),
        ];
        report(
            &[("broker", false), ("worker", false), ("other", false)],
            vec![
                started(0, "broker", 1),
                started(10, "worker", 1),
                started(10, "other", 1),
                proc_ev(3500, "worker", ProcessChange::Killed),
                started(3550, "worker", 2),
            ],
            output,
            10_000,
        )
    }

    #[test]
    fn a_worker_is_busy_while_one_of_its_requests_runs_with_short_pauses_joined() {
        let t = Timeline::from_report(&busy_worker());
        assert_eq!(merge_gap(ms(10_000)), ms(100));
        let views: Vec<(usize, &View)> = t
            .roles
            .tracks
            .iter()
            .map(|tr| (tr.lane, &tr.view))
            .collect();
        assert_eq!(
            views,
            [(1, &View::Executions), (1, &View::SeenBy("broker".into()))],
            "its own busy row first; no busy row for end lines alone"
        );
        let bands: Vec<(u64, u64, Role, &str, &str)> = t.roles.tracks[0]
            .bands
            .iter()
            .map(|b| {
                (
                    b.from.as_millis() as u64,
                    b.to.as_millis() as u64,
                    b.role,
                    b.began.text.as_str(),
                    b.ended.text.as_str(),
                )
            })
            .collect();
        let busy = |requests| Role::Busy { requests };
        assert_eq!(
            bands,
            [
                (
                    100,
                    600,
                    busy(3),
                    "I: (echo) executing request id=a-1",
                    "I: (echo) executed request id=a-3 count=1"
                ),
                (
                    2000,
                    2100,
                    busy(1),
                    "I: (echo) executing request id=a-4",
                    "I: (echo) executed request id=a-4 count=1"
                ),
                (
                    3000,
                    3500,
                    busy(1),
                    "I: (echo) executing request id=a-5",
                    "killed (SIGKILL)"
                ),
                (
                    3610,
                    3700,
                    busy(1),
                    "I: (echo) executing request id=a-5",
                    "I: (echo) executed request id=a-5 count=1"
                ),
                (
                    9000,
                    10_000,
                    busy(1),
                    "I: (echo) executing request id=a-6",
                    "still running at the end"
                ),
            ]
        );
        assert_eq!(busy(3).describe(), "worker busy with 3 requests");
        assert_eq!(busy(1).describe(), "worker busy with 1 request");
        assert_eq!(
            (busy(3).label(), busy(3).class()),
            ("busy".to_owned(), "busy")
        );
    }

    #[test]
    fn overlapping_executions_end_when_the_last_one_does_not_the_first() {
        // Two at once, the first ending before the second; a third starting while the second
        // runs; the same id twice at once (no id: `id=-`) ends only with its second end line.
        let lines = [
            (100, "executing request id=x-1"),
            (200, "executing request id=x-2"),
            (300, "executed request id=x-1 count=1"),
            (350, "executing request id=x-3"),
            (500, "executed request id=x-2 count=1"),
            (700, "executed request id=x-3 count=1"),
            (5000, "executing request id=-"),
            (5100, "executing request id=-"),
            (5200, "executed request id=- count=1"),
            (5300, "executed request id=- count=2"),
        ];
        let output = lines
            .iter()
            .map(|(at, text)| line(*at, "w", &format!("12:00:00 I: (echo) {text}")))
            .collect();
        let r = report(&[("w", false)], vec![started(0, "w", 1)], output, 10_000);
        let t = Timeline::from_report(&r);
        assert_eq!(t.roles.tracks.len(), 1);
        let bands: Vec<(u64, u64, Role)> = t.roles.tracks[0]
            .bands
            .iter()
            .map(|b| (b.from.as_millis() as u64, b.to.as_millis() as u64, b.role))
            .collect();
        assert_eq!(
            bands,
            [
                (100, 700, Role::Busy { requests: 3 }),
                (5000, 5300, Role::Busy { requests: 2 }),
            ]
        );
        assert!(t.roles.risks.is_empty(), "{:?}", t.roles.risks);
    }

    #[test]
    fn a_dead_freelance_server_comes_back_and_a_client_with_none_is_at_risk() {
        let a = "tcp://127.0.0.1:5555";
        let b = "tcp://127.0.0.1:5556";
        let output = vec![
            line(100, "client", &format!("I: server {a} alive")),
            line(120, "client", &format!("I: server {b} alive")),
            line(
                1000,
                "client",
                &format!("W: server {a} dead (silent for 600 ms)"),
            ),
            line(1500, "client", &format!("W: server {b} dead (no reply)")),
            line(2500, "client", &format!("I: server {a} alive")),
            line(2600, "client", "I: server replied OK (7)"),
        ];
        let mut output = output;
        // Server a says which endpoint it is; b's process printed nothing the tour knows.
        output.insert(
            0,
            line(
                5,
                "server",
                "I: flserver3 ready on tcp://0.0.0.0:40001 as tcp://127.0.0.1:5555",
            ),
        );
        let r = report(
            &[("server", false), ("client", true)],
            vec![started(0, "server", 1), started(10, "client", 1)],
            output,
            4000,
        );
        let t = Timeline::from_report(&r);
        let track = |ep: &str| {
            t.roles
                .tracks
                .iter()
                .find(|tr| match &tr.view {
                    View::Sees(e) => e == ep,
                    View::SeenBy(_) => ep == a,
                    View::Own | View::Requests(_) | View::Executions => false,
                })
                .unwrap()
        };
        assert_eq!(track(a).lane, 0, "on server a's lane");
        assert_eq!(track(a).view, View::SeenBy("client".into()));
        assert_eq!(track(b).lane, 1, "b unknown: on the client's lane");
        let of = |ep: &str| -> Vec<(u64, u64, Role)> {
            track(ep)
                .bands
                .iter()
                .map(|b| (b.from.as_millis() as u64, b.to.as_millis() as u64, b.role))
                .collect()
        };
        use Liveness::*;
        assert_eq!(
            of(a),
            [
                (100, 1000, Role::Server(Alive)),
                (1000, 2500, Role::Server(Dead)),
                (2500, 4000, Role::Server(Alive)),
            ]
        );
        assert_eq!(
            of(b),
            [
                (120, 1500, Role::Server(Alive)),
                (1500, 4000, Role::Server(Dead))
            ]
        );
        assert_eq!(t.roles.risks.len(), 1);
        let r = &t.roles.risks[0];
        assert_eq!(r.kind, RiskKind::NoServer);
        assert_eq!(
            (r.from, r.to, r.lanes.as_slice()),
            (ms(1500), ms(2500), &[1][..])
        );
        assert!(r.ended.text.contains("alive"));
    }

    #[test]
    fn a_request_executed_twice_is_marked_where_it_ran_again() {
        let output = vec![
            line(100, "w1", "I: (echo) executed request id=c-1 count=1"),
            line(200, "w1", "I: (echo) executed request id=- count=1"),
            line(250, "w1", "I: (echo) executed request id=- count=2"),
            line(300, "w2", "I: (echo) executed request id=c-2 count=1"),
            line(900, "w2", "I: (echo) executed request id=c-1 count=1"),
        ];
        let r = report(
            &[("w1", false), ("w2", false)],
            vec![started(0, "w1", 1), started(0, "w2", 1)],
            output,
            1000,
        );
        let t = Timeline::from_report(&r);
        assert_eq!(t.roles.risks.len(), 1, "{:?}", t.roles.risks);
        let r = &t.roles.risks[0];
        assert_eq!(r.kind, RiskKind::RunTwice);
        assert_eq!((r.from, r.to), (ms(900), ms(900)));
        assert_eq!(r.lanes, [1, 0]);
        assert_eq!(r.began.process, "w1");
        assert_eq!(r.began.at, ms(100));
    }

    #[test]
    fn titanic_requests_go_from_stored_to_answered_to_closed_in_rows_that_never_overlap() {
        let u = |n: u32| format!("0000000{n}-aaaa-bbbb-cccc-dddddddddddd");
        let output = vec![
            line(100, "ticlient", &format!("I: request UUID {}", u(1))),
            line(150, "ticlient", &format!("I: request UUID {}", u(2))),
            line(400, "ticlient", &format!("I: reply to {}: hello #0", u(1))),
            line(420, "ticlient", &format!("I: closed {}", u(1))),
            line(500, "ticlient", &format!("I: request UUID {}", u(3))),
            line(600, "ticlient", &format!("I: reply to {}: hello #1", u(2))),
            line(610, "ticlient", &format!("I: closed {}", u(2))),
            line(900, "ticlient", &format!("I: reply to {}: hello #2", u(3))),
        ];
        let r = report(
            &[("titanic", false), ("ticlient", true)],
            vec![
                started(0, "titanic", 1),
                started(10, "ticlient", 1),
                proc_ev(950, "ticlient", ProcessChange::Killed),
            ],
            output,
            1000,
        );
        let t = Timeline::from_report(&r);
        type Spans = Vec<(u64, u64, Role)>;
        let rows: Vec<(View, Spans)> = t
            .roles
            .tracks
            .iter()
            .map(|tr| {
                assert_eq!(tr.lane, 1);
                let bands = tr
                    .bands
                    .iter()
                    .map(|b| (b.from.as_millis() as u64, b.to.as_millis() as u64, b.role))
                    .collect();
                (tr.view.clone(), bands)
            })
            .collect();
        use TitanicStage::*;
        let (s, a) = (Role::Titanic(Stored), Role::Titanic(Answered));
        assert_eq!(
            rows,
            [
                // Request 1, then request 3 once row 0 is free again (closed at 420 ms).
                (
                    View::Requests(0),
                    vec![(100, 400, s), (400, 420, a), (500, 900, s), (900, 950, a)]
                ),
                (View::Requests(1), vec![(150, 600, s), (600, 610, a)]),
            ]
        );
        // Request 3 was never closed: its band ends with the client's kill.
        let last = t.roles.tracks[0].bands.last().unwrap();
        assert_eq!(last.ended.text, "killed (SIGKILL)");
        assert!(t.roles.tracks[0].bands[1]
            .ended
            .text
            .contains("I: closed 00000001"));
    }

    #[test]
    fn a_restarted_freelance_client_knows_no_server_until_it_hears_one() {
        let a = "tcp://127.0.0.1:5555";
        let output = vec![
            line(100, "client", &format!("I: server {a} alive")),
            line(500, "client", &format!("W: server {a} dead (silent)")),
            run_line(1100, "client", 2, &format!("W: server {a} dead (no reply)")),
            run_line(1500, "client", 2, &format!("I: server {a} alive")),
        ];
        let r = report(
            &[("client", true)],
            vec![
                started(0, "client", 1),
                proc_ev(800, "client", ProcessChange::Killed),
                started(1000, "client", 2),
            ],
            output,
            2000,
        );
        let t = Timeline::from_report(&r);
        let risks: Vec<(u64, u64, &str)> = t
            .roles
            .risks
            .iter()
            .map(|r| {
                assert_eq!(r.kind, RiskKind::NoServer);
                (
                    r.from.as_millis() as u64,
                    r.to.as_millis() as u64,
                    r.ended.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            risks,
            [
                (500, 800, "killed (SIGKILL)"),
                (1100, 1500, "I: server tcp://127.0.0.1:5555 alive"),
            ]
        );
        let bands: Vec<(u64, u64)> = t.roles.tracks[0]
            .bands
            .iter()
            .map(|b| (b.from.as_millis() as u64, b.to.as_millis() as u64))
            .collect();
        assert_eq!(bands, [(100, 500), (500, 800), (1100, 1500), (1500, 2000)]);
    }
}
