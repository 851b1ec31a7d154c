//! The tour: runs each pattern's fault scenario and shows what survived.
//!
//! A scenario (`scenarios/<name>.toml`, format in `scenarios/README.md`) names the processes of
//! a pattern, the endpoints they share and a timeline of faults: kill -9, SIGSTOP/SIGCONT,
//! restart, SIGINT, and network faults (partition, heal, delay, throttle, reset) of hosts and
//! links routed through `common::netfault` proxies. The `tour` binary runs them with their
//! output interleaved; the pattern crates' process tests run the very same files through
//! [`Scenario::run`] and assert on the [`Report`], so what the tour shows is what CI checks.
//! Chaos mode ([`Scenario::chaos`]) replays a scenario's setup, then a seeded random schedule
//! of the faults its `[chaos]` table allows, and checks the invariants afterwards.
//!
//! | module | what it holds |
//! |---|---|
//! | [`chaos`] | chaos mode: a seeded random schedule of faults, and the invariants checked after |
//! | [`scenario`] | the scenario file: parsing, checks, finding the files in Guide order |
//! | [`subst`] | `{endpoint}`, `{endpoint.port}` and `{variable}` expansion |
//! | `engine` | the timeline: ports, processes, fault proxies, steps, waits, measures, clean-up |
//! | `links` | the fault proxies (`common::netfault`) of the links, on a runtime of their own |
//! | [`net`] | hosts and links: which proxy gets which fault after a partition/heal/delay step |
//! | `hub` | every process's lines in one time-stamped log, echoed live |
//! | [`report`] | the outcome of a run and the tables printed from it |
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
mod hub;
mod links;
pub mod net;
pub mod report;
pub mod scenario;
pub mod style;
pub mod subst;

pub use report::{ClientOutcome, Event, Executions, Measure, NetEvent, Report, Shutdown};
pub use scenario::ChaosRun;
pub use scenario::Scenario;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

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
}

impl Scenario {
    /// Runs the scenario on fresh ports and returns what happened. An `Err` means the timeline
    /// could not be played (a binary missing, a `ready` or `wait` line that never came); lost
    /// requests and missing measures are in the [`Report`].
    pub fn run(&self, opts: &RunOptions) -> anyhow::Result<Report> {
        engine::run(self, opts).with_context_name(self.name())
    }
}

/// Prefixes an error with the scenario's name.
trait WithScenario<T> {
    fn with_context_name(self, name: &str) -> anyhow::Result<T>;
}

impl<T> WithScenario<T> for anyhow::Result<T> {
    fn with_context_name(self, name: &str) -> anyhow::Result<T> {
        anyhow::Context::with_context(self, || format!("scenario {name:?}"))
    }
}
