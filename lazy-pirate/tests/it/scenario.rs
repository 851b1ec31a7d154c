//! The tour's `lazy-pirate` scenario, with shorter timings: what the tour shows is what CI checks.

use std::time::Duration;

#[test]
fn lazy_pirate_scenario_recovers_from_a_restart_then_abandons() {
    let mut scenario = tour::Scenario::load("lazy-pirate").expect("scenario file loads");
    scenario.set_var("timeout_ms", "500");
    scenario.set_var("work_ms", "10");
    scenario.set_timeout(Duration::from_secs(60));
    let report = scenario
        .run(&tour::RunOptions::default())
        .expect("timeline plays");
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    // crash_after = 5: two runs of the server answer 5 requests each, the 11th is abandoned.
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (11, 10, 1), "{dump}");
    let client = report.client("client").expect("client outcome");
    assert_eq!(client.exit_code, Some(1), "{dump}");
    assert!(
        report
            .measure("client served by the restarted server")
            .is_some(),
        "{dump}"
    );
    assert!(
        report
            .measure("client gives up on the dead server")
            .is_some(),
        "{dump}"
    );
    let replies: Vec<String> = report
        .lines_of("client")
        .iter()
        .filter_map(|l| l.strip_prefix("I: server replied OK ("))
        .map(|r| r.trim_end_matches(')').to_owned())
        .collect();
    let expected: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    assert_eq!(replies, expected, "{dump}");
}

/// The `lazy-pirate-partition` scenario with short timings: a partition shorter than the
/// client's retry window is bridged, a longer one ends in one request reported failed.
#[test]
fn lazy_pirate_partition_scenario_bridges_a_short_partition_and_abandons_a_long_one() {
    let mut scenario = tour::Scenario::load("lazy-pirate-partition").expect("scenario file loads");
    for (key, value) in [
        ("timeout_ms", "500"),
        ("interval_ms", "20"),
        ("lead_ms", "500"),
        ("short_partition_ms", "700"),
        ("long_partition_ms", "3000"),
    ] {
        scenario.set_var(key, value);
    }
    scenario.set_timeout(Duration::from_secs(60));
    let report = scenario
        .run(&tour::RunOptions::default())
        .expect("timeline plays");
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    // Only the request in flight during the long partition failed; the client said so.
    let s = report.summary;
    assert_eq!(s.failed, 1, "{dump}");
    assert_eq!(s.sent, s.answered + 1, "{dump}");
    assert!(s.answered >= 2, "{dump}");
    assert_eq!(
        report.client("client").unwrap().exit_code,
        Some(1),
        "{dump}"
    );
    assert!(report.ok(), "{dump}");
    let served = report
        .measure("served again after the short partition healed")
        .expect("served after heal");
    assert!(served < Duration::from_secs(3), "{served:?}: {dump}");
    // Gave up after its 3 tries of 500 ms, well before the 3 s partition ended.
    let gave_up = report
        .measure("client gives up during the long partition")
        .expect("gave up");
    assert!(
        gave_up >= Duration::from_millis(1000) && gave_up < Duration::from_millis(3000),
        "{gave_up:?}: {dump}"
    );
    // Every reply the client accepted carried the number it had asked for, in order.
    let replies: Vec<u64> = report
        .lines_of("client")
        .iter()
        .filter_map(|l| l.strip_prefix("I: server replied OK ("))
        .map(|r| r.trim_end_matches(')').parse().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=s.answered).collect();
    assert_eq!(replies, expected, "{dump}");
}

/// Chaos mode in CI: two short seeded schedules of kill/restart, stop/cont, partition/heal and
/// delay of the server, the client sending throughout; every invariant must hold.
#[test]
fn lazy_pirate_survives_short_chaos_runs() {
    tour::assert_chaos_holds(
        "lazy-pirate-partition",
        &[
            ("timeout_ms", "500"),
            ("interval_ms", "20"),
            ("chaos_fault_ms", "900"),
            ("chaos_quiet_ms", "600"),
        ],
        &[1, 2],
        Duration::from_secs(5),
    );
}
