//! The tour's `paranoid-pirate` scenario with short heartbeats: what the tour shows is what CI
//! checks.

use crate::util::{HEARTBEAT_MS, LIVENESS};
use std::time::Duration;

#[test]
fn paranoid_pirate_scenario_loses_nothing() {
    let mut scenario = tour::Scenario::load("paranoid-pirate").expect("scenario file loads");
    scenario.set_var("heartbeat_ms", &HEARTBEAT_MS.to_string());
    scenario.set_var("reconnect_ms", "200");
    scenario.set_var("client_timeout_ms", "1500");
    // Enough requests to keep the client busy past the queue restart (at 7 s on the timeline).
    scenario.set_var("requests", "120");
    scenario.set_timeout(Duration::from_secs(90));
    let report = scenario
        .run(&tour::RunOptions::default())
        .expect("timeline plays");
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (120, 120, 0), "{dump}");
    assert_eq!(
        report.client("client").and_then(|c| c.exit_code),
        Some(0),
        "{dump}"
    );

    let bound = Duration::from_millis((LIVENESS + 1) * HEARTBEAT_MS);
    for label in [
        "dead worker purged",
        "hung worker purged",
        "hung worker re-registered",
        "queue restart: a worker ready again",
    ] {
        let took = report
            .measure(label)
            .unwrap_or_else(|| panic!("no measure {label:?}: {dump}"));
        eprintln!("{label}: {} ms", took.as_millis());
        // The generous version of the (liveness + 1) × interval bound, for a loaded machine.
        assert!(took < bound * 4, "{label} took {took:?}: {dump}");
    }
    // The client's request sent just before the queue died was still answered, and the queue
    // restart is in the log: it really happened under load.
    assert!(report.count("queue", "ppqueue ready") >= 2, "{dump}");
}
