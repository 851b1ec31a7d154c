//! The `titanic` tour scenario with short intervals.

use common::report::Summary;

#[test]
fn titanic_scenario_answers_every_acknowledged_request_once() {
    let mut scenario = tour::Scenario::load("titanic").expect("scenario file loads");
    scenario.set_var("heartbeat_ms", "250");
    scenario.set_var("timeout_ms", "1000");
    scenario.set_var("poll_ms", "100");
    let report = scenario
        .run(&tour::RunOptions::default())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let client = report.client("client").expect("client outcome");
    assert_eq!(report.lost, 0, "{}", report.dump());
    assert_eq!(client.exit_code, Some(0), "{}", report.dump());
    let summary: Summary = client.summary.expect("summary line");
    assert!(summary.sent > 0);
    assert_eq!(summary.answered, summary.sent, "{}", report.dump());
    assert_eq!(summary.failed, 0);
    // Exactly once: one reply line per acknowledged UUID.
    let lines = report.lines_of("client");
    let acked: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once("request UUID ").map(|(_, id)| id.trim()))
        .collect();
    assert!(acked.len() as u64 >= summary.sent);
    let answered = acked
        .iter()
        .filter(|id| {
            lines
                .iter()
                .filter(|l| l.contains(&format!("reply to {id}:")))
                .count()
                == 1
        })
        .count();
    assert_eq!(answered as u64, summary.sent, "{}", report.dump());
    assert!(
        report.count("titanic", "opened:") >= 2,
        "titanic was not restarted"
    );
    // Request ids: each request stored once (so forwarded under one id) and executed once.
    let runs = report.executions();
    assert_eq!(runs.ids, summary.sent, "{runs:?}\n{}", report.dump());
    assert_eq!(runs.repeated, 0, "{runs:?}\n{}", report.dump());
}

/// Chaos mode in CI: two short seeded schedules of kill -9 / restart and stop / cont of the
/// broker, titanic and the worker, the client sending throughout; the general invariants and
/// Titanic's own promise (every acknowledged request answered exactly once, none stored twice,
/// executed again only across a fault) must hold.
#[test]
fn titanic_survives_short_chaos_runs() {
    tour::assert_chaos_holds(
        "titanic",
        &[
            ("heartbeat_ms", "250"),
            ("timeout_ms", "1000"),
            ("poll_ms", "100"),
            ("chaos_fault_ms", "1500"),
            ("chaos_quiet_ms", "1000"),
        ],
        &[1, 2],
        std::time::Duration::from_secs(6),
    );
}
