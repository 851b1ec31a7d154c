//! The tour's `binary-star` scenario, with short timings: primary killed, restarted passive,
//! backup killed; every request answered.

use std::time::Duration;

/// The short timings every test here plays the scenarios at.
const FAST: [(&str, &str); 5] = [
    ("heartbeat_ms", "250"),
    ("timeout_ms", "600"),
    ("settle_ms", "1200"),
    ("vote_ms", "100"),
    ("interval_ms", "50"),
];

/// Scenario `name` at [`FAST`] timings, with `more` variables on top.
fn fast(name: &str, more: &[(&str, &str)]) -> tour::Scenario {
    let vars: Vec<_> = FAST.iter().chain(more).copied().collect();
    tour::Scenario::load_with(name, &vars).expect("scenario file")
}

#[test]
fn the_binary_star_scenario_loses_nothing() {
    let mut scenario = fast("binary-star", &[("requests", "120")]);
    scenario.set_timeout(Duration::from_secs(60));
    let report = scenario
        .run(&tour::RunOptions::default())
        .expect("the timeline plays");
    assert_eq!(report.lost, 0, "{}", report.dump());
    assert_eq!(report.summary.answered, 120, "{}", report.dump());
    assert_eq!(report.summary.failed, 0, "{}", report.dump());
    assert!(report.ok(), "{}", report.dump());
    // 2 × heartbeat + timeout + settle delay.
    let bound = Duration::from_millis(2 * 250 + 600 + 1200);
    for label in ["failover seen by the client", "back to the primary"] {
        let m = report
            .measures
            .iter()
            .find(|m| m.label.contains(label))
            .unwrap_or_else(|| panic!("no measure {label:?}: {}", report.dump()));
        let elapsed = m.elapsed.expect("measured");
        assert!(
            elapsed <= bound,
            "{label}: {elapsed:?} > {bound:?}\n{}",
            report.dump()
        );
    }
}

/// The `binary-star-partition` scenario with short timings: the active primary's host is
/// partitioned twice while the client sends; after each heal exactly one server must stay
/// active and nothing may be lost.
#[test]
fn the_binary_star_partition_scenario_loses_nothing() {
    let mut scenario = fast(
        "binary-star-partition",
        &[
            ("requests", "200"),
            ("lead_ms", "1000"),
            ("short_partition_ms", "1500"),
            ("long_partition_ms", "4000"),
        ],
    );
    scenario.set_timeout(Duration::from_secs(90));
    let report = scenario
        .run(&tour::RunOptions::default())
        .expect("the timeline plays");
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    assert_eq!(report.summary.failed, 0, "{dump}");
    assert!(report.ok(), "{dump}");
    // Neither server exited: a partition must never end in an outage.
    for server in ["primary", "backup"] {
        assert!(
            report.event_at(&format!("{server} (exited")).is_none(),
            "{server} exited: {dump}"
        );
    }
    // After the first heal the primary (older epoch) stepped down: one active server.
    let settled = report
        .measure("heal to a single active server (the primary steps down)")
        .expect("measured");
    assert!(settled < Duration::from_secs(5), "{settled:?}: {dump}");
}

/// Chaos mode in CI: two short seeded schedules of kill -9 / restart, stop / cont, partitions
/// and delays of both servers' hosts and the client's, the client sending throughout; the
/// general invariants and Binary Star's own promise (after the settle time, never two servers
/// answering clients) must hold.
#[test]
fn binary_star_survives_short_chaos_runs() {
    tour::assert_chaos_holds(
        "binary-star-partition",
        &[
            FAST.as_slice(),
            &[
                ("chaos_fault_ms", "1500"),
                ("chaos_quiet_ms", "1000"),
                ("chaos_settle_ms", "2000"),
            ],
        ]
        .concat(),
        &[1, 2],
        Duration::from_secs(6),
    );
}
