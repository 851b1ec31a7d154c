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
