//! The Guide-sized examples (`examples/`) against the hardened binaries, both ways, with the
//! fault Simple Pirate exists for: a worker dies mid-run, the client's retry reaches another.

use crate::util::{assert_all_answered, lpclient, spqueue, READY};
use common::example;
use common::testkit::{tcp_endpoint, Proc};
use std::path::PathBuf;

/// Starts a worker and waits until `queue` has registered it (both print its identity).
fn registered(queue: &mut Proc, name: &str, program: PathBuf, args: &[&str]) -> Proc {
    let mut worker = Proc::spawn(name, program, args.iter().copied());
    let line = worker.wait_for(") worker ready", READY);
    let id = line
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .expect("id")
        .0;
    queue.wait_for(&format!("worker {id} ready"), READY);
    worker
}

#[test]
fn example_workers_behind_the_real_queue_survive_a_killed_worker() {
    let mut queue = spqueue();
    let backend = queue.backend.clone();
    let args = [backend.as_str(), "off"];
    let mut doomed = registered(&mut queue.proc, "spworker-a", example!("spworker"), &args);
    let _survivor = registered(&mut queue.proc, "spworker-b", example!("spworker"), &args);
    let mut client = lpclient(
        &queue.frontend,
        &["--requests", "6", "--timeout-ms", "2000"],
    );
    client.wait_for("I: server replied OK (2)", READY);
    doomed.kill9();
    assert_all_answered(&mut client, 6);
}

#[test]
fn real_workers_behind_the_example_queue_survive_a_crashing_worker() {
    let (frontend, backend) = (tcp_endpoint(), tcp_endpoint());
    let mut queue = Proc::spawn(
        "spqueue-example",
        example!("spqueue"),
        [&frontend, &backend],
    );
    queue.wait_for("spqueue ready", READY);
    let spworker = PathBuf::from(env!("CARGO_BIN_EXE_spworker"));
    let crash = [
        "--queue",
        &backend,
        "--work-ms",
        "100",
        "--crash-after",
        "2",
    ];
    let mut doomed = registered(&mut queue, "spworker-crash", spworker.clone(), &crash);
    let steady = ["--queue", &backend, "--work-ms", "100"];
    let _survivor = registered(&mut queue, "spworker", spworker, &steady);
    let mut client = lpclient(&frontend, &["--requests", "10", "--timeout-ms", "1000"]);
    assert_all_answered(&mut client, 10);
    doomed.wait_for("simulating a crash", READY);
    assert_eq!(doomed.wait_exit(READY).and_then(|s| s.code()), Some(2));
}
