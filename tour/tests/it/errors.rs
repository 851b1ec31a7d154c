//! Timelines that cannot be played fail with a message that says why.

use crate::util::{fixtures, load, opts};
use std::time::{Duration, Instant};
use tour::Scenario;

fn error_of(name: &str) -> String {
    let err = load(name).run(&opts()).expect_err("the run should fail");
    format!("{err:#}")
}

#[test]
fn a_missing_ready_line_quotes_the_output() {
    let e = error_of("never-ready");
    assert!(e.contains("never printed its ready line \"ready\""), "{e}");
    assert!(e.contains("within 300 ms"), "{e}");
    assert!(e.contains("server | starting"), "{e}");
}

#[test]
fn a_process_dying_before_ready_fails_at_once() {
    let started = Instant::now();
    let e = error_of("dies-before-ready");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the 30 s ready timeout"
    );
    assert!(e.contains("exited with code 3"), "{e}");
    assert!(e.contains("server | oops"), "{e}");
}

#[test]
fn a_wait_that_times_out_names_the_line() {
    let e = error_of("wait-timeout");
    assert!(e.contains("no line containing \"never printed\""), "{e}");
}

#[test]
fn a_missing_binary_is_named() {
    let e = error_of("missing-bin");
    assert!(e.contains("binary `no-such-binary`"), "{e}");
    assert!(e.contains("cargo build --workspace --bins"), "{e}");
}

#[test]
fn an_unknown_scenario_lists_the_known_ones() {
    let e = format!(
        "{:#}",
        Scenario::load_from(&fixtures(), "nope").unwrap_err()
    );
    assert!(e.contains("no scenario \"nope\""), "{e}");
    assert!(e.contains("faults"), "{e}");
}

#[test]
fn every_fixture_and_every_workspace_scenario_parses() {
    assert!(Scenario::all_in(&fixtures()).unwrap().len() >= 10);
    // The pattern crates' scenario files: a broken one fails here, not in the middle of a tour.
    for s in Scenario::all().unwrap() {
        assert!(!s.title().is_empty(), "{} has no title", s.name());
        assert!(!s.guide().is_empty(), "{} has no Guide section", s.name());
    }
}
