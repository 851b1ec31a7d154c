//! Service idempotence (Guide 4.11) with the real binaries: a retried request runs once.
//!
//! The workers run with `--log-executions`; every test counts their `executed request id=`
//! lines per id, across all workers, and asserts each id ran exactly once.

use crate::util::*;
use common::netfault::{Command, Fault, Proxy};
use common::testkit::{tcp_endpoint, Proc};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

/// Executions per request id, summed over `workers` (from their `executed request` lines).
fn executions(workers: &[&Proc]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for worker in workers {
        for line in worker.lines() {
            if let Some(rest) = line.split("executed request id=").nth(1) {
                let id = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    counts
}

fn addr(endpoint: &str) -> SocketAddr {
    endpoint.trim_start_matches("tcp://").parse().unwrap()
}

fn mdclient(name: &str, endpoint: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--broker", endpoint];
    args.extend_from_slice(extra);
    Proc::spawn(name, env!("CARGO_BIN_EXE_mdclient"), args)
}

/// The reply is lost between broker and client after the worker ran the request (the link is
/// partitioned from the moment the work starts until the client's first timeout). The retry,
/// on a fresh socket, must get the original reply from the broker's memory: one execution.
fn reply_lost_after_execution(workers: usize) {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let mut procs: Vec<Proc> = (1..=workers)
        .map(|n| {
            let name = format!("worker{n}");
            worker(
                &name,
                &mut broker,
                &ep,
                // --log-executions: the `executing request` line the partition is timed by
                // (-v adds the worker's debug lines to a failure's output).
                &["--log-executions", "-v", "--work-ms", "400"],
            )
        })
        .collect();
    let rt = runtime();
    let proxy = rt
        .block_on(Proxy::start("127.0.0.1:0".parse().unwrap(), addr(&ep)))
        .unwrap();
    let via = format!("tcp://{}", proxy.local_addr());
    let mut client = mdclient(
        "client",
        &via,
        &["--requests", "3", "--timeout-ms", "3000", "--retries", "5"],
    );
    // The first request reached a worker: cut the link before its 400 ms of work end.
    let mut started = None;
    wait_until("a worker started the first request", SOON, || {
        started = procs
            .iter_mut()
            .find_map(|w| w.try_wait_for("executing request id=", Duration::from_millis(10)));
        started.is_some()
    });
    let started = started.unwrap();
    proxy.apply(Command::Set(Fault::Partition));
    let id = started.split("id=").nth(1).unwrap().trim().to_owned();
    // The worker ran it and replied; the reply is held in the partition.
    wait_until("the first request was executed", SOON, || {
        executions(&procs.iter().collect::<Vec<_>>()).contains_key(&id)
    });
    // The client gave up on its first attempt and retries on a fresh socket: heal now.
    client.wait_for("retrying (2/5)", SOON);
    proxy.apply(Command::Heal);
    let status = client.wait_exit(SOON * 2).expect("mdclient finishes");
    let summary = client.summary().expect("a summary line");
    assert!(
        status.success(),
        "{summary:?}\n{}",
        client.lines().join("\n")
    );
    assert_eq!((summary.sent, summary.answered, summary.failed), (3, 3, 0));
    assert!(summary.retries >= 1, "the first request was retried");
    broker.wait_for(
        &format!("retry of request {id} for echo answered from memory"),
        SOON,
    );
    let counts = executions(&procs.iter().collect::<Vec<_>>());
    assert_eq!(counts.len(), 3, "three ids executed: {counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "each exactly once: {counts:?}"
    );
}

#[test]
fn reply_lost_after_execution_one_worker_runs_it_once() {
    reply_lost_after_execution(1);
}

#[test]
fn reply_lost_after_execution_two_workers_run_it_once() {
    // The worker that answered goes to the back of the idle queue, so without the broker's
    // store the retry would be dispatched to the other worker.
    reply_lost_after_execution(2);
}

/// A broker and two echo workers that take `work_ms` per request and log every execution.
fn broker_with_slow_workers(work_ms: &str) -> (String, Proc, Proc, Proc) {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let args = ["--log-executions", "--work-ms", work_ms];
    let w1 = worker("worker1", &mut broker, &ep, &args);
    let w2 = worker("worker2", &mut broker, &ep, &args);
    (ep, broker, w1, w2)
}

#[test]
fn a_slow_worker_and_a_retrying_client_run_each_request_once() {
    let (ep, broker, w1, w2) = broker_with_slow_workers("1500");
    // Each attempt waits 500 ms: every request is retried twice or more while it runs.
    let mut client = mdclient(
        "client",
        &ep,
        &["--requests", "2", "--timeout-ms", "500", "--retries", "8"],
    );
    let status = client.wait_exit(SOON * 2).expect("mdclient finishes");
    let summary = client.summary().expect("a summary line");
    assert!(status.success(), "{}", client.lines().join("\n"));
    assert_eq!((summary.sent, summary.answered, summary.failed), (2, 2, 0));
    assert!(summary.retries >= 2, "{summary:?}");
    assert!(broker.count("joined the running one") >= 2);
    let counts = executions(&[&w1, &w2]);
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[test]
fn without_ids_the_slow_worker_runs_retries_again() {
    // The control experiment: the same run with --no-request-ids executes retries again
    // (at-least-once), which is what the ids are for.
    let (ep, _broker, w1, w2) = broker_with_slow_workers("1000");
    let mut client = mdclient(
        "client",
        &ep,
        &[
            "--requests",
            "1",
            "--timeout-ms",
            "400",
            "--retries",
            "8",
            "--no-request-ids",
        ],
    );
    client.wait_exit(SOON * 2).expect("mdclient finishes");
    // The retried copies finish after the client is done with them.
    wait_until("a retry ran the request again", SOON, || {
        executions(&[&w1, &w2]).values().sum::<u64>() >= 2
    });
    assert_eq!(executions(&[&w1, &w2]).keys().collect::<Vec<_>>(), ["-"]);
}

#[test]
fn two_clients_started_together_send_ids_with_nothing_in_common() {
    // Identical arguments, started back to back: nothing but the OS's random source tells their
    // ids apart. Every id has a random part of its own (a per-client random prefix and a
    // counter, as before, would show two).
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let w = worker("worker", &mut broker, &ep, &["--log-executions"]);
    let args = ["--requests", "50"];
    let mut clients = [
        mdclient("client1", &ep, &args),
        mdclient("client2", &ep, &args),
    ];
    for client in &mut clients {
        let status = client.wait_exit(SOON).expect("mdclient finishes");
        assert!(status.success(), "{}", client.lines().join("\n"));
    }
    w.wait_count("executed request id=", 100, SOON);
    let counts = executions(&[&w]);
    assert_eq!(counts.len(), 100, "100 ids, each executed once: {counts:?}");
    let tokens: HashSet<&str> = counts
        .keys()
        .map(|id| id.rsplit_once('-').expect("<token>-<n>").0)
        .collect();
    assert_eq!(tokens.len(), 100, "{tokens:?}");
    assert!(tokens
        .iter()
        .all(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())));
}

#[test]
fn the_request_id_flags_are_documented_with_their_defaults() {
    use common::testkit::assert_help_mentions;
    assert_help_mentions(
        env!("CARGO_BIN_EXE_mdbroker"),
        &[
            "--dedup-max",
            "[default: 100000]",
            "--dedup-ttl-ms",
            "[default: 60000]",
        ],
    );
    assert_help_mentions(
        env!("CARGO_BIN_EXE_mdworker"),
        &["--log-executions", "--no-request-ids"],
    );
    for client in [
        env!("CARGO_BIN_EXE_mdclient"),
        env!("CARGO_BIN_EXE_mdclient2"),
    ] {
        assert_help_mentions(client, &["--no-request-ids"]);
    }
}
