//! The tour's Majordomo scenario, with short intervals: nothing may be lost.

use std::time::Duration;

/// Runs scenario `name` with `vars` (its short intervals) under a 90 s bound.
fn run_short(name: &str, vars: &[(&str, &str)]) -> tour::RunResults {
    let mut scenario = tour::Scenario::load_with(name, vars).unwrap();
    scenario.set_timeout(Duration::from_secs(90));
    scenario.run(&tour::RunOptions::default()).unwrap()
}

#[test]
fn the_majordomo_scenario_loses_nothing() {
    let report = run_short(
        "majordomo",
        &[
            ("heartbeat_ms", "100"),
            ("reconnect_ms", "200"),
            ("work_ms", "20"),
            ("requests", "300"),
            ("client_timeout_ms", "1000"),
            ("client_retries", "10"),
        ],
    );
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

/// The `majordomo-curve` scenario with short intervals: broker, workers and client all with
/// CURVE keys, a worker with the wrong key refused for `echo` (`--worker-keys`), a worker
/// killed and back; nothing may be lost.
#[test]
fn the_majordomo_curve_scenario_loses_nothing() {
    // A longer heartbeat than the plain scenario's test: under a loaded CI machine a 300 ms
    // expiry let both workers expire (and re-register) before the kill, which then had no
    // registered worker to purge.
    let report = run_short(
        "majordomo-curve",
        &[
            ("heartbeat_ms", "250"),
            ("reconnect_ms", "250"),
            ("work_ms", "20"),
            ("requests", "300"),
            ("client_timeout_ms", "1000"),
            ("client_retries", "10"),
        ],
    );
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    let client = report.client("client").unwrap();
    assert_eq!(client.exit_code, Some(0), "{dump}");
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (300, 300, 0), "{dump}");
    for label in [
        "dead worker purged",
        "worker1 back over CURVE",
        "intruder refused",
    ] {
        assert!(report.measure(label).is_some(), "{label}: {dump}");
    }
}

/// The `majordomo-partition` scenario with short intervals: silent partitions of a worker's
/// host, then of the broker's host; nothing may be lost.
#[test]
fn the_majordomo_partition_scenario_loses_nothing() {
    let report = run_short(
        "majordomo-partition",
        &[
            ("heartbeat_ms", "100"),
            ("reconnect_ms", "200"),
            ("client_timeout_ms", "600"),
            ("interval_ms", "20"),
            ("lead_ms", "500"),
            ("partition_ms", "1500"),
            // Enough requests that the client is still sending at the last heal.
            ("requests", "250"),
        ],
    );
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

/// The `majordomo-ha` scenario's timings, shortened: the pair's peer expires after 1 s, the
/// slow worker's 1.2 s outlast it, and a client's try (2 s) outlasts the slow worker. Not
/// shorter: on a loaded 2-core machine every process here may stall for a second at once, and
/// heartbeats must not take that for deaths.
const HA_SHORT: [(&str, &str); 14] = [
    ("heartbeat_ms", "500"),
    ("reconnect_ms", "500"),
    ("pair_heartbeat_ms", "500"),
    ("settle_ms", "1000"),
    ("work_ms", "10"),
    ("slow_work_ms", "1200"),
    ("client_timeout_ms", "2000"),
    ("interval_ms", "50"),
    ("poll_ms", "250"),
    ("lead_ms", "2500"),
    ("partition_ms", "4000"),
    // Enough requests that every client is still sending at the last heal.
    ("requests", "150"),
    ("async_requests", "1000"),
    ("ti_requests", "60"),
];

/// Titanic's binaries, which `cargo test -p majordomo` does not build by itself.
fn titanic_bins() {
    common::testkit::workspace_bins(&["titanic", "ticlient"]);
}

/// The state each broker of the pair reported last (`I: state ACTIVE|PASSIVE - …`), sorted.
fn last_states(report: &tour::RunResults) -> Vec<String> {
    let mut states: Vec<String> = ["primary", "backup"]
        .into_iter()
        .filter_map(|broker| {
            report.lines_of(broker).iter().rev().find_map(|l| {
                let rest = l.split("I: state ").nth(1)?;
                rest.split_whitespace().next().map(str::to_owned)
            })
        })
        .collect();
    states.sort();
    states
}

/// The broker pair under load, at short timings: the active broker killed -9 (restarted, back
/// PASSIVE), the new active killed -9 (restarted), then the active one's host partitioned and
/// healed. Nothing lost, no request run twice, every Titanic request answered once, one ACTIVE
/// broker at the end, and every client-seen failover gap measured.
#[test]
fn the_majordomo_ha_scenario_loses_nothing_and_runs_each_request_once() {
    titanic_bins();
    let report = run_short("majordomo-ha", &HA_SHORT);
    let dump = report.dump();
    eprintln!("{}", report.table(false));
    assert_eq!(report.lost, 0, "{dump}");
    assert!(report.ok(), "{dump}");
    for client in ["client", "client2", "ticlient"] {
        let outcome = report.client(client).unwrap();
        assert_eq!(outcome.exit_code, Some(0), "{client}: {dump}");
        let s = outcome.summary.unwrap();
        assert_eq!((s.answered, s.failed), (s.sent, 0), "{client}: {dump}");
    }
    // Every request ran once: one id per answered request (Titanic forwards each stored
    // request under one id), none executed twice.
    let runs = report.executions();
    assert_eq!(runs.repeated, 0, "{runs:?}\n{dump}");
    assert_eq!(runs.ids, report.summary.answered, "{runs:?}\n{dump}");
    assert_eq!(runs.total, runs.ids, "{runs:?}\n{dump}");
    let titanic = tour::promise::violations(
        &report,
        &[tour::promise::Promise::AnsweredOnce],
        &tour::promise::Terms::default(),
    );
    assert!(titanic.is_empty(), "{titanic:?}\n{dump}");
    // A single ACTIVE broker after the heal (the deposed primary steps down when it hears
    // the backup's senior epoch, or when a worker refuses its request for it).
    assert_eq!(last_states(&report), ["ACTIVE", "PASSIVE"], "{dump}");
    report.assert_measured_within(
        &[
            "mdclient failover gap, primary killed",
            "mdclient2 failover gap, primary killed",
            "mdclient failover gap, backup killed",
            "mdclient2 failover gap, backup killed",
            "mdclient failover gap, primary partitioned",
            "mdclient2 failover gap, primary partitioned",
            "primary restarted: back as PASSIVE",
            "backup restarted: back as PASSIVE",
            "heal to a single active broker (the primary steps down)",
        ],
        Duration::from_secs(10),
    );
}

/// Chaos mode in CI: two short seeded schedules of kill -9, stop and partition of either broker,
/// the workers, titanic and the clients' host; the pair's promises (executed once unless a
/// worker that ran it or both brokers at once were hit, Titanic's answered once, one broker
/// answering after the settle time) and the general invariants must hold.
#[test]
fn majordomo_ha_survives_short_chaos_runs() {
    titanic_bins();
    let mut vars = HA_SHORT.to_vec();
    vars.extend([
        ("chaos_fault_ms", "3000"),
        ("chaos_quiet_ms", "3000"),
        ("chaos_settle_ms", "2000"),
    ]);
    tour::assert_chaos_holds("majordomo-ha", &vars, &[1, 2], Duration::from_secs(10));
}

/// The `majordomo-stream` scenario (MDP/0.2) with short intervals: a streaming worker killed
/// mid-stream; the client checks every stream is whole and in order, nothing lost.
#[test]
fn the_majordomo_stream_scenario_delivers_every_stream_whole() {
    let report = run_short(
        "majordomo-stream",
        &[
            ("heartbeat_ms", "100"),
            ("reconnect_ms", "200"),
            ("partials", "8"),
            ("part_ms", "50"),
            ("kill_after_ms", "200"),
            ("requests", "10"),
            ("client_timeout_ms", "2000"),
        ],
    );
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (10, 10, 0), "{dump}");
    assert!(report.ok(), "{dump}");
    assert!(
        report.measure("streaming worker purged").is_some(),
        "{dump}"
    );
    assert!(
        report.measure("interrupted stream completed").is_some(),
        "{dump}"
    );
}
