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
