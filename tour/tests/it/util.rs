//! Loading fixtures and running them with the fixture binary.

use std::path::{Path, PathBuf};
use tour::{RunOptions, RunResults, Scenario};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tour-fixture"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn load(name: &str) -> Scenario {
    Scenario::load_from(&fixtures(), name).unwrap()
}

pub fn opts() -> RunOptions {
    RunOptions {
        bin_dir: Some(bin_dir()),
        ..RunOptions::default()
    }
}

pub fn run(scenario: &Scenario) -> RunResults {
    scenario.run(&opts()).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The pids a process printed with the fixture's `pid` command.
pub fn pids(report: &RunResults, process: &str) -> Vec<i32> {
    report
        .lines_of(process)
        .iter()
        .filter_map(|l| l.strip_prefix("pid "))
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Whether a process with this pid still exists (a zombie counts: it was never reaped).
pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}
