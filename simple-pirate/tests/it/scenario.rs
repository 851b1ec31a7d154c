//! The tour's `simple-pirate` scenario, with shorter timings: what the tour shows is what CI
//! checks.

use std::time::Duration;

#[test]
fn simple_pirate_scenario_loses_nothing_when_a_worker_dies() {
    let mut scenario = tour::Scenario::load("simple-pirate").expect("scenario file loads");
    scenario.set_var("client_timeout_ms", "1000");
    scenario.set_var("work_ms", "30");
    scenario.set_var("requests", "40");
    scenario.set_timeout(Duration::from_secs(60));
    let report = scenario
        .run(&tour::RunOptions::default())
        .expect("timeline plays");
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (40, 40, 0), "{dump}");
    assert_eq!(
        report.client("client").and_then(|c| c.exit_code),
        Some(0),
        "{dump}"
    );
    assert!(
        report
            .measure("client recovers from the killed worker")
            .is_some(),
        "{dump}"
    );
    assert_eq!(report.count("client", "malformed reply"), 0, "{dump}");
    assert!(report.count("worker2", "normal reply") > 0, "{dump}");
}
