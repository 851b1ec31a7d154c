//! The tour's `freelance` scenario, with short timings, as CI runs it.

use std::time::Duration;

#[test]
fn the_freelance_scenario_answers_everything_until_nothing_is_up() {
    let mut scenario = tour::Scenario::load("freelance").unwrap();
    scenario.set_var("ping_ms", "300");
    scenario.set_var("ttl_ms", "900");
    scenario.set_var("timeout_ms", "1000");
    scenario.set_var("attempt_ms", "300");
    scenario.set_var("interval_ms", "20");
    let report = scenario.run(&tour::RunOptions::default()).unwrap();
    let dump = report.dump();
    let client = report.client("client").expect("client outcome");
    // Exactly one request failed, the one sent once every server was dead; nothing lost.
    assert_eq!(report.lost, 0, "{dump}");
    assert_eq!(report.summary.failed, 1, "{dump}");
    assert!(report.summary.answered >= 20, "{dump}");
    assert!(
        report.summary.retries >= 1,
        "a failover from the hung server: {dump}"
    );
    assert_eq!(client.exit_code, Some(1), "{dump}");
    for label in [
        "killed server1 declared dead",
        "request failed over from hung server2",
        "restarted server1 in use again",
        "FAILED reported with every server down",
    ] {
        assert!(report.measure(label).is_some(), "{label}: {dump}");
    }
    // The failure came only after the last step killed every server, within the timeout.
    let failed_after = report
        .measure("FAILED reported with every server down")
        .unwrap();
    assert!(
        failed_after < Duration::from_millis(3 * 1000 + 2000),
        "{dump}"
    );
    assert_eq!(report.count("client", "FAILED"), 1, "{dump}");
}

/// The `freelance-partition` scenario with short timings: the server in use is partitioned;
/// after the heal it must be in use again within about one ping interval.
#[test]
fn the_freelance_partition_scenario_uses_the_healed_server_again_soon() {
    let mut scenario = tour::Scenario::load("freelance-partition").unwrap();
    for (key, value) in [
        ("ping_ms", "300"),
        ("ttl_ms", "900"),
        ("timeout_ms", "1000"),
        ("attempt_ms", "300"),
        ("interval_ms", "20"),
        ("requests", "400"),
        ("lead_ms", "500"),
        ("partition_ms", "3000"),
    ] {
        scenario.set_var(key, value);
    }
    let report = scenario.run(&tour::RunOptions::default()).unwrap();
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    assert_eq!(report.summary.failed, 0, "{dump}");
    assert!(report.ok(), "{dump}");
    let back = report
        .measure("server1 in use again after heal")
        .expect("measured");
    // One ping interval plus a connect, generously for a loaded machine.
    assert!(
        back < Duration::from_millis(4 * 300 + 1000),
        "{back:?}: {dump}"
    );
}

/// Chaos mode in CI: two short seeded schedules of faults on one server (or host) at a time,
/// the client sending throughout; every invariant must hold.
#[test]
fn freelance_survives_short_chaos_runs() {
    tour::assert_chaos_holds(
        "freelance-partition",
        &[
            ("ping_ms", "300"),
            ("ttl_ms", "900"),
            ("timeout_ms", "1000"),
            ("attempt_ms", "300"),
            ("interval_ms", "20"),
            ("chaos_fault_ms", "1500"),
            ("chaos_quiet_ms", "1000"),
        ],
        &[1, 2],
        Duration::from_secs(6),
    );
}
