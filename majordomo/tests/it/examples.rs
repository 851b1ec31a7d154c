//! The Guide-sized examples (`examples/md*.rs`) against the hardened binaries, both ways, each
//! through a fault Majordomo survives, so the examples cannot drift from the protocol.

use crate::util::{first, mmi, runtime, SOON};
use common::example;
use common::testkit::{tcp_endpoint, Proc};
use std::time::Duration;

/// The hardened broker at the Guide's heartbeat (2500 ms), which the examples use.
fn mdbroker(ep: &str) -> Proc {
    let mut broker = Proc::spawn("mdbroker", env!("CARGO_BIN_EXE_mdbroker"), ["--bind", ep]);
    broker.wait_for("mdbroker ready on", SOON);
    broker
}

#[test]
fn example_client_and_workers_through_mdbroker_survive_a_worker_kill() {
    let ep = tcp_endpoint();
    let mut broker = mdbroker(&ep);
    let mut doomed = Proc::spawn("mdworker example 1", example!("mdworker"), [ep.as_str()]);
    let mut survivor = Proc::spawn("mdworker example 2", example!("mdworker"), [ep.as_str()]);
    assert_eq!(broker.wait_count("ready for service echo", 2, SOON), 2);

    let mut client = Proc::spawn("mdclient example", example!("mdclient"), [&ep, "200", "-v"]);
    client.wait_count("I: send request", 20, SOON);
    doomed.kill9();
    let status = client
        .wait_exit(SOON * 4)
        .expect("the example client finishes");
    assert!(status.success(), "{:?}", client.lines());
    assert_eq!(client.count("200 requests/replies processed"), 1);
    broker.wait_for("purged", SOON);
    assert!(
        survivor.interrupt_and_wait(SOON).0.success(),
        "Ctrl-C stops the example worker"
    );
}

#[test]
fn hardened_client_and_worker_through_the_example_broker_survive_a_broker_restart() {
    let ep = tcp_endpoint();
    let mut broker = Proc::spawn("mdbroker example", example!("mdbroker"), [ep.as_str()]);
    broker.wait_for("is active at", SOON);
    let worker_args = [
        "--broker",
        &ep,
        "--reconnect-ms",
        "200",
        "--reconnect-max-ms",
        "500",
    ];
    let _worker = Proc::spawn("mdworker", env!("CARGO_BIN_EXE_mdworker"), worker_args);
    broker.wait_for("ready for service echo", SOON);

    // MMI, answered by the example broker itself.
    runtime().block_on(async {
        assert_eq!(first(&mmi(&ep, "mmi.service", &["echo"]).await), "200");
        assert_eq!(first(&mmi(&ep, "mmi.service", &["nope"]).await), "404");
        assert_eq!(first(&mmi(&ep, "mmi.nope", &["echo"]).await), "501");
    });

    let client_args = [
        "--broker",
        &ep,
        "--requests",
        "300",
        "--interval-ms",
        "5",
        "--timeout-ms",
        "1000",
        "--retries",
        "10",
        "--log-requests",
    ];
    let mut client = Proc::spawn("mdclient", env!("CARGO_BIN_EXE_mdclient"), client_args);
    client.wait_count("I: request seq=", 30, SOON);
    broker.restart();
    broker.wait_for("ready for service echo", SOON);
    let status = client.wait_exit(SOON * 4).expect("the client finishes");
    let summary = client.summary().expect("a summary line");
    assert_eq!(
        (summary.sent, summary.answered, summary.failed),
        (300, 300, 0)
    );
    assert!(status.success());
    assert!(client.wait_count("I: request seq=", 300, Duration::ZERO) >= 300);
    assert!(
        broker.interrupt_and_wait(SOON).0.success(),
        "Ctrl-C stops the example broker"
    );
}
