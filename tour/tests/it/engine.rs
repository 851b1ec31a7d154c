//! Timelines that play to the end: substitution, ordering, faults, timeout, loss arithmetic.

use crate::util::{alive, load, pids, run};
use std::time::Duration;

#[test]
fn endpoints_and_variables_expand_to_working_values() {
    let mut scenario = load("substitution");
    scenario.set_var("greeting", "bonjour");
    let report = run(&scenario);
    let server = report.lines_of("server");
    let port: u16 = server
        .iter()
        .find_map(|l| l.strip_prefix("port "))
        .expect("port line")
        .parse()
        .unwrap();
    let other: u16 = server
        .iter()
        .find_map(|l| l.strip_prefix("other "))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(port, other, "two endpoints share a port");
    assert!(
        server.contains(&format!("addr tcp://127.0.0.1:{port}")),
        "{}",
        report.dump()
    );
    assert!(
        server.contains(&format!("listening {port}")),
        "{}",
        report.dump()
    );
    assert!(
        server.contains(&"say bonjour".to_owned()),
        "{}",
        report.dump()
    );
    assert!(
        server.contains(&"braces {literal}".to_owned()),
        "{}",
        report.dump()
    );
    assert_eq!(report.count("server", "accepted"), 1);
    assert_eq!(report.count("client", "connected"), 1);
    let client = report.client("client").unwrap();
    assert_eq!(client.exit_code, Some(0));
    assert_eq!(report.summary.sent, 1);
    assert_eq!(report.lost, 0);
    assert!(report.ok());
}

#[test]
fn each_run_gets_fresh_ports() {
    let scenario = load("substitution");
    let port = |r: &tour::RunResults| {
        r.lines_of("server")
            .iter()
            .find(|l| l.starts_with("port "))
            .cloned()
    };
    let (a, b) = (run(&scenario), run(&scenario));
    assert_ne!(port(&a), port(&b));
}

#[test]
fn steps_keep_their_time_and_wait_for_the_step_before() {
    let report = run(&load("ordering"));
    let waited = report.event_at("second step").expect("note shown");
    // at_ms = 100, but the first step's wait for "late" took ~400 ms.
    assert!(waited >= Duration::from_millis(400), "{}", report.dump());
    let later = report.event_at("start later").unwrap();
    assert!(later >= Duration::from_millis(700), "{}", report.dump());
    let order: Vec<&str> = report
        .events
        .iter()
        .map(|e| e.text.as_str())
        .filter(|t| t.starts_with("** start") || t.contains("second step"))
        .collect();
    assert_eq!(order.len(), 3, "{}", report.dump());
    assert!(order[0].starts_with("** start slow: tour-fixture out=ready sleep=400"));
    assert_eq!(order[1], "** second step");
    assert_eq!(order[2], "** start later: tour-fixture out=up hang");
    assert!(report.measure("later up").is_some(), "{}", report.dump());
    // No client: the scenario ends with the timeline.
    assert!(report.elapsed < Duration::from_secs(10));
}

#[test]
fn stop_cont_restart_and_kill_act_on_the_process() {
    let report = run(&load("faults"));
    let dump = report.dump();
    // Two runs, each announced its pid and ready line.
    let pids = pids(&report, "ticker");
    assert_eq!(pids.len(), 2, "{dump}");
    assert_ne!(pids[0], pids[1]);
    assert_eq!(report.count("ticker", "ready"), 2, "{dump}");
    // SIGSTOP from 200 to 600 ms: the first run's own clock shows a gap between two ticks.
    let first_run: Vec<u64> = report
        .lines_of("ticker")
        .iter()
        .skip(1)
        .take_while(|l| !l.starts_with("pid "))
        .filter_map(|l| l.strip_prefix("tick "))
        .map(|t| t.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let gap = first_run
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap();
    let stopped = report.event_at("cont (SIGCONT) ticker").unwrap()
        - report.event_at("stop (SIGSTOP) ticker").unwrap();
    assert!(
        gap as f64 >= 0.75 * stopped.as_millis() as f64,
        "largest gap between ticks {gap} ms, stopped for {stopped:?}\n{dump}"
    );
    assert!(report.measure("first tick after cont").unwrap() < Duration::from_secs(5));
    assert!(report.measure("restarted").is_some(), "{dump}");
    // Killed at 1000 ms.
    let killed = report.event_at("kill -9 ticker").unwrap();
    assert!(killed >= Duration::from_millis(1000));
    for pid in pids {
        assert!(!alive(pid), "ticker {pid} still running");
    }
    let client = report.client("client").unwrap();
    assert_eq!(client.summary.unwrap().retries, 1);
    assert_eq!(client.exit_code, Some(0));
    assert!(report.ok(), "{dump}");
}

#[test]
fn the_timeout_kills_clients_and_counts_what_they_lost() {
    let started = std::time::Instant::now();
    let report = run(&load("timeout"));
    let dump = report.dump();
    assert!(started.elapsed() < Duration::from_secs(10), "{dump}");
    let stuck = report.client("stuck").unwrap();
    assert!(stuck.timed_out);
    assert_eq!(stuck.exit_code, None);
    assert_eq!(stuck.summary, None);
    let partial = report.client("partial").unwrap();
    assert!(!partial.timed_out);
    assert_eq!(partial.exit_code, Some(2));
    assert_eq!(partial.lost(), 1); // 5 sent − 3 answered − 1 failed
    let silent = report.client("silent").unwrap();
    assert_eq!(silent.exit_code, Some(0));
    assert_eq!(silent.summary, None);
    // 1 in flight (stuck) + 1 unanswered (partial) + 1 without a summary (silent).
    assert_eq!(report.lost, 3, "{dump}");
    assert_eq!(report.summary.sent, 5);
    assert_eq!(report.summary.retries, 2);
    assert!(!report.ok());
    // The server was left stopped (SIGSTOP): it is gone all the same, as is the stuck client.
    for pid in pids(&report, "server")
        .into_iter()
        .chain(pids(&report, "stuck"))
    {
        assert!(!alive(pid), "{pid} left behind");
    }
}

#[test]
fn interrupt_sends_sigint() {
    let report = run(&load("interrupt"));
    let client = report.client("client").unwrap();
    assert!(!client.timed_out);
    assert_eq!(
        client.exit_code, None,
        "ended by a signal, not an exit code"
    );
    assert!(
        report.dump().contains("ended by SIGINT"),
        "{}",
        report.dump()
    );
    assert_eq!(report.lost, 1, "no summary line");
}

#[test]
fn a_measure_that_never_happens_fails_the_report() {
    let report = run(&load("never-measured"));
    assert_eq!(report.lost, 0);
    assert_eq!(report.measures.len(), 1);
    assert_eq!(report.measures[0].elapsed, None);
    assert!(!report.ok());
}

#[test]
fn network_steps_hold_and_release_bytes_and_are_recorded_typed() {
    use tour::net::NetAction;
    let report = run(&load("network"));
    let dump = report.dump();
    assert_eq!(report.lost, 0, "{dump}");
    // The line sent during the partition reached the server only once the link healed.
    let held = report
        .measure("held until heal")
        .expect("held line arrived");
    let delivered = report.measure("delivered after heal").expect("delivered");
    assert!(held >= Duration::from_millis(800), "{held:?}: {dump}");
    assert!(delivered < Duration::from_secs(2), "{delivered:?}: {dump}");
    let actions: Vec<(NetAction, Vec<String>, Vec<String>)> = report
        .net_events()
        .map(|(_, e)| (e.action, e.hosts.clone(), e.links.clone()))
        .collect();
    let link = vec!["svc.via.client".to_string()];
    let host = |h: &str| vec![h.to_string()];
    assert_eq!(
        actions,
        [
            (NetAction::Partition, host("server_host"), link.clone()),
            (NetAction::Heal, host("server_host"), link.clone()),
            (
                NetAction::Delay(Duration::from_millis(50)),
                vec![],
                link.clone()
            ),
            (NetAction::Throttle(100_000), host("client"), link.clone()),
            (NetAction::PartitionIn, host("server_host"), link.clone()),
            (
                NetAction::Heal,
                vec!["server_host".to_string(), "client".to_string()],
                link.clone()
            ),
            (NetAction::Reset, host("server_host"), link.clone()),
        ],
        "{dump}"
    );
    // The tour shows the proxy as a command line and each change as the line to type into it.
    assert!(
        report
            .events
            .iter()
            .any(|e| e.text.contains("** link svc.via.client (host client → host server_host): netfault --listen tcp://127.0.0.1:")),
        "{dump}"
    );
    for typed in [
        "netfault> partition    (on svc.via.client)",
        "netfault> heal",
        "netfault> delay 50",
        "netfault> throttle 100000",
        // Nothing reaches the server's host: the client→server direction of its link.
        "netfault> partition up",
        "netfault> reset",
    ] {
        assert!(
            report.events.iter().any(|e| e.text.contains(typed)),
            "{typed}: {dump}"
        );
    }
    assert_eq!(
        report.hosts,
        [
            ("server_host".to_string(), vec!["server".to_string()]),
            ("client".to_string(), vec!["client".to_string()])
        ]
    );
}

#[test]
fn chaos_mode_plays_the_seeded_schedule_and_checks_the_invariants() {
    let scenario = load("chaos");
    let run = scenario.chaos(5, Duration::from_secs(2)).unwrap();
    // Same seed, same schedule; the file's own timeline after the setup is gone.
    assert_eq!(
        run.describe(),
        scenario
            .chaos(5, Duration::from_secs(2))
            .unwrap()
            .describe()
    );
    assert!(run.plan.len() >= 3, "{}", run.describe());
    let (report, broken) = run.run(&crate::util::opts()).unwrap();
    let dump = report.dump();
    assert!(report.measures.is_empty(), "{dump}");
    assert!(report.event_at("the file's own fault").is_none(), "{dump}");
    assert_eq!(
        report.count_events("** chaos: the fault is undone"),
        run.plan.len(),
        "{dump}"
    );
    // The stand-in client prints no summary: the only broken invariants say so.
    assert_eq!(
        broken,
        ["1 requests lost", "client client printed no summary"],
        "{dump}"
    );
    // Both processes were interrupted at the end and exited at once (default SIGINT).
    let shutdown = report.shutdown.expect("final Ctrl-C");
    let mut names: Vec<&str> = shutdown.exits.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["client", "server"], "{dump}");
    assert!(shutdown.exits.iter().all(|(_, d)| d.is_some()), "{dump}");
}

#[test]
fn a_gap_runs_from_a_clients_last_answer_before_its_switch_to_its_first_answer_after() {
    let report = run(&load("gap"));
    let dump = report.dump();
    assert!(report.ok(), "{dump}");
    let [gap] = &report.measures[..] else {
        panic!("one measure: {dump}");
    };
    assert_eq!(gap.kind, tour::MeasureKind::Gap);
    assert_eq!(gap.process, "client");
    // From request 2's line to request 3's: the fixture slept 800 ms between them (and 1500 ms
    // before request 5, which is not a failover).
    let took = gap.elapsed.expect("measured");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(1500),
        "{took:?}: {dump}"
    );
    let step = report.event_at("the server dies here").unwrap();
    assert!(
        gap.at <= step,
        "the gap begins at the last answer before the step: {dump}"
    );
    assert!(report.table(false).contains("client's gap: "), "{dump}");
    // Only the client a gap reads was asked for its request lines.
    assert_eq!(report.count("client", "request seq="), 5, "{dump}");
    assert_eq!(report.count("other", "request seq="), 0, "{dump}");
}
