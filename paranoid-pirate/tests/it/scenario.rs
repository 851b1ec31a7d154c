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
    // The generous version of the (liveness + 1) × interval bound, for a loaded machine.
    report.assert_measured_within(
        &[
            "dead worker purged",
            "hung worker purged",
            "hung worker re-registered",
            "queue restart: a worker ready again",
        ],
        bound * 4,
    );
    // The client's request sent just before the queue died was still answered, and the queue
    // restart is in the log: it really happened under load.
    assert!(report.count("queue", "ppqueue ready") >= 2, "{dump}");
}

/// The `paranoid-pirate-partition` scenario with short timings: silent partitions (no FIN, no
/// RST) of a worker's host, then of the queue's host, found only by the heartbeats.
#[test]
fn paranoid_pirate_partition_scenario_loses_nothing() {
    let mut scenario =
        tour::Scenario::load("paranoid-pirate-partition").expect("scenario file loads");
    for (key, value) in [
        ("heartbeat_ms", HEARTBEAT_MS.to_string()),
        ("reconnect_ms", "200".into()),
        ("reconnect_max_ms", "400".into()),
        ("client_timeout_ms", "600".into()),
        ("interval_ms", "20".into()),
        ("lead_ms", "500".into()),
        ("partition_ms", "2000".into()),
        // Enough requests that the client is still sending at the last heal.
        ("requests", "250".into()),
    ] {
        scenario.set_var(key, &value);
    }
    scenario.set_timeout(Duration::from_secs(90));
    let report = scenario
        .run(&tour::RunOptions::default())
        .expect("timeline plays");
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (250, 250, 0), "{dump}");
    assert!(report.ok(), "{dump}");
    // Two partitions and two heals happened, as typed events.
    let net: Vec<String> = report
        .net_events()
        .map(|(_, e)| format!("{} {}", e.action.verb(), e.hosts.join(",")))
        .collect();
    assert_eq!(
        net,
        ["partition h2", "heal h2", "partition h1", "heal h1"],
        "{dump}"
    );
    let bound = Duration::from_millis((LIVENESS + 1) * HEARTBEAT_MS) * 4;
    let purged = report.measure("partitioned worker purged").expect("purged");
    assert!(purged < bound, "purged after {purged:?}: {dump}");
    // Back after heal: within the reconnect back-off cap plus a connect, generously.
    report.assert_measured_within(
        &[
            "worker1 ready again after heal",
            "client served again after the queue's heal",
        ],
        Duration::from_secs(5),
    );
}

/// Chaos mode in CI: two short seeded schedules of faults on the queue, the workers and their
/// hosts, the client sending throughout; every invariant must hold.
#[test]
fn paranoid_pirate_survives_short_chaos_runs() {
    let hb = HEARTBEAT_MS.to_string();
    tour::assert_chaos_holds(
        "paranoid-pirate-partition",
        &[
            ("heartbeat_ms", &hb),
            ("reconnect_ms", "200"),
            ("reconnect_max_ms", "400"),
            ("client_timeout_ms", "600"),
            ("interval_ms", "20"),
            ("chaos_fault_ms", "1500"),
            ("chaos_quiet_ms", "1000"),
        ],
        &[1, 2],
        Duration::from_secs(6),
    );
}
