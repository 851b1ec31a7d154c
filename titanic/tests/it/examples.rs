//! The Guide-sized examples (`examples/titanic.rs`, `examples/ticlient.rs`) against the hardened
//! binaries, both ways, through the faults Titanic exists for: the service is down when the
//! request is made, and Titanic itself is killed and restarted while the request waits.

use crate::support::{broker, echo_worker, titanic, WAIT};
use common::example;
use common::testkit::{bin_path, tcp_endpoint, Proc};

#[test]
fn example_ticlient_through_hardened_titanic_survives_a_titanic_restart() {
    let ep = tcp_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let _broker = broker(&ep);
    let mut titanic = titanic(&ep, &dir.path().join("journal"), &[]);

    // No echo worker yet: Titanic stores the request and the client polls.
    let mut client = Proc::spawn("ticlient example", example!("ticlient"), [ep.as_str()]);
    client.wait_for("I: request UUID", WAIT);
    titanic.restart();
    titanic.wait_for("titanic ready", WAIT);
    let _worker = echo_worker(&ep);

    let status = client
        .wait_exit(WAIT * 2)
        .expect("the example client finishes");
    assert!(status.success(), "{:?}", client.lines());
    assert_eq!(
        client.count("Reply: Hello world"),
        1,
        "{:?}",
        client.lines()
    );
}

#[test]
fn hardened_ticlient_through_the_example_titanic_survives_its_restart() {
    let ep = tcp_endpoint();
    let dir = tempfile::tempdir().unwrap();
    // The Guide's heartbeat (2500 ms, the default), which the example's workers use.
    let mut broker = Proc::spawn("mdbroker", bin_path("mdbroker"), ["--bind", &ep]);
    broker.wait_for("mdbroker ready", WAIT);
    let titanic_args = [ep.clone(), dir.path().display().to_string()];
    let mut titanic = Proc::spawn("titanic example", example!("titanic"), titanic_args);
    assert_eq!(titanic.wait_count("worker ready on", 3, WAIT), 3);

    let client_args = [
        "--broker",
        &ep,
        "--poll-ms",
        "300",
        "--timeout-ms",
        "1000",
        "--retries",
        "3",
        "--verify",
    ];
    let mut client = Proc::spawn("ticlient", bin_path("ticlient"), client_args);
    client.wait_for("I: request UUID", WAIT);
    // The request is on disk: a restarted Titanic finds it and still owes its reply.
    titanic.restart();
    let line = titanic.wait_for("titanic is active", WAIT);
    assert!(line.contains("1 requests pending"), "{line}");
    let worker_args = ["--broker", &ep, "--reconnect-ms", "200", "--log-executions"];
    let worker = Proc::spawn("mdworker", bin_path("mdworker"), worker_args);

    let status = client.wait_exit(WAIT * 2).expect("the client finishes");
    let summary = client.summary().expect("a summary line");
    assert_eq!((summary.sent, summary.answered, summary.failed), (1, 1, 0));
    assert!(status.success());
    assert_eq!(worker.count("executed request"), 1, "{:?}", worker.lines());
    // Closed: nothing is left in the directory.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        titanic.interrupt_and_wait(WAIT).0.success(),
        "Ctrl-C stops the example titanic"
    );
}
