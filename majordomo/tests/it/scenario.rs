//! The tour's Majordomo scenario, with short intervals: nothing may be lost.

use std::time::Duration;

#[test]
fn the_majordomo_scenario_loses_nothing() {
    let mut scenario = tour::Scenario::load("majordomo").unwrap();
    for (key, value) in [
        ("heartbeat_ms", "100"),
        ("reconnect_ms", "200"),
        ("work_ms", "20"),
        ("requests", "300"),
        ("client_timeout_ms", "1000"),
        ("client_retries", "10"),
    ] {
        scenario.set_var(key, value);
    }
    scenario.set_timeout(Duration::from_secs(90));
    let report = scenario.run(&tour::RunOptions::default()).unwrap();
    assert_eq!(report.lost, 0, "{}", report.dump());
    let client = report.client("client").unwrap();
    assert_eq!(client.exit_code, Some(0), "{}", report.dump());
    assert_eq!(report.summary.answered, 300, "{}", report.dump());
    // Every request ran under its own id. (A retry may run again only across the broker's
    // restart, which empties its memory of ids; the table shows how many did.)
    let runs = report.executions();
    assert_eq!(runs.ids, 300, "{runs:?}\n{}", report.dump());
    eprintln!("{}", report.table(false));
    assert!(
        report.measure("dead worker purged").is_some(),
        "{}",
        report.dump()
    );
    assert!(
        report
            .measure("broker restarted: worker1 re-registered")
            .is_some(),
        "{}",
        report.dump()
    );
}

/// The `majordomo-partition` scenario with short intervals: silent partitions of a worker's
/// host, then of the broker's host; nothing may be lost.
#[test]
fn the_majordomo_partition_scenario_loses_nothing() {
    let mut scenario = tour::Scenario::load("majordomo-partition").unwrap();
    for (key, value) in [
        ("heartbeat_ms", "100"),
        ("reconnect_ms", "200"),
        ("client_timeout_ms", "600"),
        ("interval_ms", "20"),
        ("lead_ms", "500"),
        ("partition_ms", "1500"),
        // Enough requests that the client is still sending at the last heal.
        ("requests", "250"),
    ] {
        scenario.set_var(key, value);
    }
    scenario.set_timeout(Duration::from_secs(90));
    let report = scenario.run(&tour::RunOptions::default()).unwrap();
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (250, 250, 0), "{dump}");
    assert!(report.ok(), "{dump}");
    assert_eq!(
        report.client("client").unwrap().exit_code,
        Some(0),
        "{dump}"
    );
    let partitioned: Vec<String> = report
        .net_events()
        .filter(|(_, e)| e.action == tour::net::NetAction::Partition)
        .flat_map(|(_, e)| e.hosts.clone())
        .collect();
    assert_eq!(partitioned, ["h2", "h1"], "{dump}");
    report.assert_measured_within(
        &[
            "partitioned worker purged",
            "worker1 re-registered after heal",
            "client served again after the broker's heal",
        ],
        Duration::from_secs(5),
    );
}

/// Chaos mode in CI: two short seeded schedules of faults on the broker, the workers and their
/// hosts, the client sending throughout; every invariant must hold.
#[test]
fn majordomo_survives_short_chaos_runs() {
    tour::assert_chaos_holds(
        "majordomo-partition",
        &[
            ("heartbeat_ms", "100"),
            ("reconnect_ms", "200"),
            ("client_timeout_ms", "600"),
            ("interval_ms", "20"),
            ("chaos_fault_ms", "1500"),
            ("chaos_quiet_ms", "1000"),
        ],
        &[1, 2],
        Duration::from_secs(6),
    );
}
