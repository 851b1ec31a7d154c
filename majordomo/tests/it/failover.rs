//! Clients of a broker pair (`--broker A --broker B`), with two plain `mdbroker`s standing in
//! for the pair, an echo worker on each: `kill -9` of the first broker under load.
//!
//! The stand-ins do not share what they know about request ids, so a request running on the
//! first broker when it dies runs again on the second: these tests check that nothing is lost,
//! each request is answered once at the client, each failover is logged once, and the resends
//! carry the original ids (read from the workers' `executed request id=` lines), not that each
//! request runs once (the broker pair's job).
//!
//! Client timeouts are several times a worker's work, so that a loaded machine never fails
//! over before the kill; every wait is on a log line or an exit, with a deadline.

use crate::util::*;
use common::testkit::{tcp_endpoint, Proc};
use std::collections::HashSet;

/// Two brokers with one echo worker each; the first worker also logs when work starts (`-v`).
struct Pair {
    endpoints: [String; 2],
    brokers: [Proc; 2],
    workers: [Proc; 2],
}

fn pair(work_ms: &str) -> Pair {
    let endpoints = [tcp_endpoint(), tcp_endpoint()];
    let mut brokers = [broker(&endpoints[0], &[]), broker(&endpoints[1], &[])];
    let logged = ["--log-executions", "--work-ms", work_ms];
    let verbose = ["--log-executions", "-v", "--work-ms", work_ms];
    let first = worker("worker1", &mut brokers[0], &endpoints[0], &verbose);
    let second = worker("worker2", &mut brokers[1], &endpoints[1], &logged);
    Pair {
        endpoints,
        brokers,
        workers: [first, second],
    }
}

/// The ids in `proc`'s lines after `needle` (`executed request id=`, `executing request id=`).
fn ids(proc: &Proc, needle: &str) -> HashSet<String> {
    proc.lines()
        .iter()
        .filter_map(|line| line.split(needle).nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

const EXECUTED: &str = "executed request id=";

fn client(program: &str, name: &str, endpoints: &[&str], extra: &[&str]) -> Proc {
    let mut args: Vec<&str> = endpoints.iter().flat_map(|ep| ["--broker", ep]).collect();
    args.extend_from_slice(extra);
    Proc::spawn(name, program, args)
}

/// Waits until the first worker has started its `n`th request and returns that request's id.
fn nth_started(worker: &mut Proc, n: usize) -> String {
    let mut line = String::new();
    for _ in 0..n {
        line = worker.wait_for("executing request id=", SOON);
    }
    line.split("id=").nth(1).unwrap().trim().to_owned()
}

/// Kills the first broker while its worker runs a request, lets `client` finish, and checks
/// what both clients promise: every one of `requests` answered exactly once, one failover
/// (logged once, to the second broker, and its first answer logged once), and the request
/// that was running resent under its id, as were all others (the workers saw `requests` ids).
fn kill_the_first_broker_under_load(mut p: Pair, mut client: Proc, requests: usize) -> Proc {
    // The work takes 300 ms: the third request is still running when its broker dies.
    let running = nth_started(&mut p.workers[0], 3);
    p.brokers[0].kill9();
    let status = client.wait_exit(SOON * 2).expect("the client finishes");
    let output = client.lines().join("\n");
    assert!(status.success(), "{output}");
    let summary = client.summary().expect("a summary line");
    let n = requests as u64;
    assert_eq!(
        (summary.sent, summary.answered, summary.failed),
        (n, n, 0),
        "{output}"
    );
    let lines = client.request_lines();
    let seqs: HashSet<u64> = lines.iter().map(|l| l.seq).collect();
    assert_eq!((lines.len(), seqs.len()), (requests, requests), "{output}");
    let [first, second] = &p.endpoints;
    let failovers: Vec<String> = client
        .lines()
        .into_iter()
        .filter(|l| l.contains("failing over to"))
        .collect();
    assert_eq!(failovers.len(), 1, "{output}");
    // `no reply from <first> within <ms> ms, failing over to <second>` (or, had the
    // connection reported the death, `request to <first> failed (…), failing over to …`).
    let (from, to) = failovers[0].split_once("failing over to").unwrap();
    assert!(
        from.contains(first.as_str()) && to.contains(second.as_str()),
        "{output}"
    );
    assert_eq!(
        client.count(&format!("answered by {second} after failover")),
        1,
        "{output}"
    );
    // The running request was resent to the second broker under its id (the first worker
    // finishes it into the void).
    p.workers[0].wait_count(&format!("{EXECUTED}{running}"), 1, SOON);
    p.workers[1].wait_count(&format!("{EXECUTED}{running}"), 1, SOON);
    let (before, after) = (ids(&p.workers[0], EXECUTED), ids(&p.workers[1], EXECUTED));
    assert!(after.contains(&running), "{running} not resent: {after:?}");
    // No resend got a fresh id: the two workers saw exactly one id per request.
    assert_eq!(
        before.union(&after).count(),
        requests,
        "{before:?} {after:?}"
    );
    client
}

#[test]
fn mdclient_fails_over_to_the_second_broker_when_the_first_is_killed() {
    let p = pair("300");
    let [first, second] = p.endpoints.clone();
    let client = client(
        env!("CARGO_BIN_EXE_mdclient"),
        "mdclient",
        &[&first, &second],
        &[
            "--requests",
            "8",
            "--timeout-ms",
            "2000",
            "--settle-ms",
            "500",
            "--log-requests",
        ],
    );
    let client = kill_the_first_broker_under_load(p, client, 8);
    // One request was resent (the running one), by votes at most until the backup answered.
    let summary = client.summary().unwrap();
    assert!(summary.retries >= 1, "{summary}");
}

#[test]
fn mdclient2_resends_every_outstanding_request_by_id_to_the_second_broker() {
    let p = pair("300");
    let [first, second] = p.endpoints.clone();
    let client = client(
        env!("CARGO_BIN_EXE_mdclient2"),
        "mdclient2",
        &[&first, &second],
        &[
            "--requests",
            "10",
            "--window",
            "10",
            "--timeout-ms",
            "2000",
            "--settle-ms",
            "500",
            "--log-requests",
        ],
    );
    let client = kill_the_first_broker_under_load(p, client, 10);
    // All ten were sent at once: every one not answered before the failover crossed over, and
    // was sent at least once more.
    let lines = client.lines();
    let switch = lines
        .iter()
        .position(|l| l.contains("failing over to"))
        .unwrap();
    let answered_before = lines[..switch]
        .iter()
        .filter(|l| l.contains("request seq="))
        .count();
    assert!(answered_before >= 1, "{lines:?}");
    let carried = 10 - answered_before;
    assert!(
        lines[switch].ends_with(&format!("resending {carried} requests")),
        "{}",
        lines[switch]
    );
    assert!(client.summary().unwrap().retries >= carried as u64);
}

#[test]
fn mdclient2_reports_each_request_once_when_both_brokers_are_gone() {
    let p = pair("100");
    let [first, _] = p.endpoints.clone();
    // Nobody listens at the second endpoint.
    let nowhere = tcp_endpoint();
    let mut p = p;
    let mut client = client(
        env!("CARGO_BIN_EXE_mdclient2"),
        "mdclient2",
        &[&first, &nowhere],
        &[
            "--requests",
            "20",
            "--window",
            "20",
            "--timeout-ms",
            "1000",
            "--settle-ms",
            "300",
            "--retries",
            "2",
            "--log-requests",
        ],
    );
    nth_started(&mut p.workers[0], 3);
    p.brokers[0].kill9();
    let status = client
        .wait_exit(SOON)
        .expect("the client gives up by itself");
    let output = client.lines().join("\n");
    assert!(!status.success(), "{output}");
    let summary = client.summary().expect("a summary line");
    assert!(summary.balanced(), "{summary}\n{output}");
    // The first reply left the broker a request before the kill.
    assert!(summary.answered >= 1 && summary.failed >= 1, "{summary}");
    let lines = client.request_lines();
    let seqs: HashSet<u64> = lines.iter().map(|l| l.seq).collect();
    assert_eq!((lines.len(), seqs.len()), (20, 20), "each once: {output}");
    assert_eq!(
        common::report::RequestLine::tally(&lines),
        summary,
        "{output}"
    );
    // Out to the dead second broker and back, then no turns left.
    assert_eq!(client.count("failing over to"), 2, "{output}");
    assert_eq!(
        client.count("failed: no turns left"),
        1,
        "the second failover gives them up: {output}"
    );
    assert_eq!(
        client.count("failed: no reply from either broker") as u64,
        summary.failed,
        "{output}"
    );
    assert_eq!(client.count("after failover"), 0, "{output}");
}

#[test]
fn mdadmin_shows_each_broker_of_a_pair_and_mmiecho_asks_the_one_that_answers() {
    let endpoints = [tcp_endpoint(), tcp_endpoint()];
    let mut brokers = [broker(&endpoints[0], &[]), broker(&endpoints[1], &[])];
    let _alpha = worker(
        "alpha",
        &mut brokers[0],
        &endpoints[0],
        &["--service", "alpha"],
    );
    let _beta = worker(
        "beta",
        &mut brokers[1],
        &endpoints[1],
        &["--service", "beta"],
    );
    let [first, second] = &endpoints;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mdadmin"))
        .args(["--broker", first, "--broker", second])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let at = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {stdout}"))
    };
    let (a, b) = (
        at(&format!("broker {first}")),
        at(&format!("broker {second}")),
    );
    assert!(
        a < at("alpha") && at("alpha") < b && b < at("beta"),
        "{stdout}"
    );
    // The first broker dies: mdadmin still shows the second, and says which did not answer.
    brokers[0].kill9();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mdadmin"))
        .args(["--broker", first, "--broker", second])
        .args(["--timeout-ms", "300", "--retries", "1"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("beta"), "{stdout}");
    assert!(
        stderr.contains(&format!("E: {first}: asking the broker")),
        "{stderr}"
    );
    // mmiecho asks the pair: the dead first broker is left for the second.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmiecho"))
        .args(["--broker", first, "--broker", second, "--service", "beta"])
        .args(["--timeout-ms", "1000", "--settle-ms", "300"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.trim(), "Lookup beta service: 200");
}

#[test]
fn three_brokers_and_a_pair_without_request_ids_are_refused() {
    let [a, b, c] = [
        "tcp://127.0.0.1:1",
        "tcp://127.0.0.1:2",
        "tcp://127.0.0.1:3",
    ];
    for program in [
        env!("CARGO_BIN_EXE_mdclient"),
        env!("CARGO_BIN_EXE_mdclient2"),
        env!("CARGO_BIN_EXE_mmiecho"),
        env!("CARGO_BIN_EXE_mdadmin"),
    ] {
        let out = std::process::Command::new(program)
            .args(["--broker", a, "--broker", b, "--broker", c])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{program}: {stderr}");
        assert!(
            stderr.contains("one broker or a pair (two --broker), not 3"),
            "{program}: {stderr}"
        );
    }
    for program in [
        env!("CARGO_BIN_EXE_mdclient"),
        env!("CARGO_BIN_EXE_mdclient2"),
    ] {
        let out = std::process::Command::new(program)
            .args(["--broker", a, "--broker", b, "--no-request-ids"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{program}: {stderr}");
        assert!(
            stderr.contains("--no-request-ids cannot be used with two brokers"),
            "{program}: {stderr}"
        );
    }
}
