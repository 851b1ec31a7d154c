//! The tour: runs each pattern's fault scenario and shows what survived.
//!
//! A scenario (`scenarios/<name>.toml`, format in `scenarios/README.md`) names the processes of
//! a pattern, the endpoints they share and a timeline of faults: kill -9, SIGSTOP/SIGCONT,
//! restart, SIGINT, and network faults (partition, heal, delay, throttle, reset) of hosts and
//! links routed through `common::netfault` proxies. The `tour` binary runs them with their
//! output interleaved; the pattern crates' process tests run the very same files through
//! [`Scenario::run`] and assert on the [`RunResults`], so what the tour shows is what CI checks.
//! Chaos mode ([`Scenario::chaos`]) replays a scenario's setup, then a seeded random schedule
//! of the faults its `[chaos]` table allows, and checks the invariants afterwards.
//!
//! | module | what it holds |
//! |---|---|
//! | [`chaos`] | chaos mode: the `[chaos]` table, a seeded random schedule of faults, the scenario turned into a [`ChaosRun`], and the invariants checked after |
//! | [`gap`] | the failover gap a client sees: its last answer by the old server to its first by the new one |
//! | [`promise`] | a pattern's own promise (one server answers, executed once, answered once), checked after a chaos run |
//! | [`scenario`] | the scenario file: parsing, checks, finding the files in Guide order |
//! | [`subst`] | `{endpoint}`, `{endpoint.port}` and `{variable}` expansion |
//! | `engine` | the timeline: ports, processes, fault proxies, steps, waits, measures, clean-up |
//! | `links` | the fault proxies (`common::netfault`) of the links, on a runtime of their own |
//! | [`net`] | hosts and links: which proxy gets which fault after a partition/heal/delay step |
//! | `hub` | every process's lines in one time-stamped log, echoed live |
//! | [`results`] | what a run produced ([`RunResults`]: counts, lines, events, measures) and the tables printed from it |
//! | [`timeline`] | the typed timeline of a run (lanes, markers, request marks, spans, brackets), built from its report |
//! | [`roles`] | each lane's roles over time (Binary Star states, a broker's view of its workers, a worker's busy time, a Freelance client's view of its servers) and the moments a promise was at risk, read from the programs' lines |
//! | `svg` | draws one timeline as an SVG picture (a pure function of the model); `svg::roles` its role bands, risk marks and legend |
//! | [`page`] | the HTML page of a tour: the overview table, then each scenario's picture, steps and problems |
//! | [`bins`] | where the pattern binaries are; building them under `cargo run` |
//! | [`style`] | terminal colours and durations as people read them |
//!
//! ```no_run
//! let mut scenario = tour::Scenario::load("paranoid-pirate")?;
//! scenario.set_var("heartbeat_ms", "100");
//! let report = scenario.run(&tour::RunOptions::default())?;
//! assert_eq!(report.lost, 0, "{}", report.dump());
//! # anyhow::Ok(())
//! ```

pub mod bins;
pub mod chaos;
mod engine;
pub mod gap;
mod hub;
mod links;
pub mod net;
pub mod page;
pub mod promise;
pub mod results;
pub mod roles;
pub mod scenario;
pub mod style;
pub mod subst;
mod svg;
pub mod timeline;

pub use chaos::ChaosRun;
pub use results::{
    ClientOutcome, Event, Executions, Measure, MeasureKind, NetEvent, RunResults, Shutdown,
};
pub use scenario::Scenario;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set by [`interrupt`]: every running scenario stops.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Stops every running scenario at once: its processes are woken and killed and
/// [`Scenario::run`] returns an error. The tour calls this on Ctrl-C, so a process left stopped
/// (SIGSTOP) by a step does not outlive it.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print every process's lines and the steps as they happen (the tour); off in tests.
    pub echo: bool,
    /// ANSI colours in the echo.
    pub color: bool,
    /// Where the binaries are; default: next to the running executable (`target/<profile>/`).
    pub bin_dir: Option<PathBuf>,
    /// Pass `--log-requests` to every client (`client = true`), so each request's outcome is
    /// in the [`RunResults`] (the timeline draws one mark per request).
    pub log_requests: bool,
    /// Write a timeline report of this run, `DIR/index.html`, whether the run passed, failed or
    /// could not finish (implies `log_requests`). The `tour` binary writes one page for all the
    /// scenarios it runs instead, with [`page::write_index`].
    pub report: Option<PathBuf>,
}

impl RunOptions {
    /// Whether clients must print their per-request lines.
    pub(crate) fn wants_request_lines(&self) -> bool {
        self.log_requests || self.report.is_some()
    }
}

/// A run that could not be played to the end, with what happened until then.
#[derive(Debug)]
pub struct RunFailure {
    /// Why the timeline stopped (a binary missing, a line that never came, Ctrl-C).
    pub error: anyhow::Error,
    /// The report of the run up to the failure; `None` if no process was ever started.
    pub partial: Option<Box<RunResults>>,
}

impl Scenario {
    /// Loads scenario `name` with variables overridden: how the pattern crates' tests replay a
    /// scenario with short heartbeats and intervals.
    pub fn load_with(name: &str, vars: &[(&str, &str)]) -> anyhow::Result<Scenario> {
        let mut scenario = Scenario::load(name)?;
        for (key, value) in vars {
            scenario.set_var(key, value);
        }
        Ok(scenario)
    }
}

/// For the pattern crates' tests: plays one chaos schedule of `duration` per seed on scenario
/// `name` (with `vars` overridden) and panics — with the seed, the schedule and every line of the
/// run — if an invariant broke or no request was answered at all.
pub fn assert_chaos_holds(name: &str, vars: &[(&str, &str)], seeds: &[u64], duration: Duration) {
    let scenario = Scenario::load_with(name, vars).expect("scenario file loads");
    for &seed in seeds {
        let run = scenario.chaos(seed, duration).expect("chaos schedule");
        assert!(!run.plan.is_empty(), "{}", run.describe());
        let (report, broken) = run.run(&RunOptions::default()).expect("timeline plays");
        assert!(
            broken.is_empty(),
            "{name} seed {seed}: {broken:?}\n{}\n{}",
            run.describe(),
            report.dump()
        );
        assert!(report.summary.answered > 0, "{}", report.dump());
    }
}

impl Scenario {
    /// Runs the scenario on fresh ports and returns what happened. An `Err` means the timeline
    /// could not be played (a binary missing, a `ready` or `wait` line that never came); lost
    /// requests and missing measures are in the [`RunResults`].
    pub fn run(&self, opts: &RunOptions) -> anyhow::Result<RunResults> {
        self.run_keeping(opts).map_err(|f| f.error)
    }

    /// Like [`run`](Self::run), but a run that cannot be played to the end still hands back
    /// the report of what happened until then. With [`RunOptions::report`] set, the timeline
    /// page is written in every case.
    pub fn run_keeping(&self, opts: &RunOptions) -> Result<RunResults, RunFailure> {
        let result = engine::run(self, opts).map_err(|f| RunFailure {
            error: f.error.context(format!("scenario {:?}", self.name())),
            partial: f.partial,
        });
        if let Some(dir) = &opts.report {
            let row = page::Row::from_result(self.name(), &result);
            if let Err(e) = page::write_index(dir, &[row]) {
                eprintln!("E: cannot write the report in {}: {e:#}", dir.display());
            }
        }
        result
    }
}
