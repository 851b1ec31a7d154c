//! The must-show behaviour: a worker killed with -9 costs nothing but a client retry.

use crate::util::{assert_all_answered, lpclient, spqueue, READY};

#[test]
fn every_request_is_answered_when_a_busy_worker_is_killed() {
    let mut queue = spqueue();
    let (mut w1, _) = queue.worker("worker1", &["--work-ms", "40"]);
    let (mut w2, _) = queue.worker("worker2", &["--work-ms", "40"]);
    let mut client = lpclient(
        &queue.frontend,
        &["--requests", "40", "--timeout-ms", "1000", "--retries", "3"],
    );
    client.wait_for("server replied OK (8)", READY);
    // The line is logged before the simulated work: worker1 dies holding a request.
    w1.mark();
    w1.wait_for("normal reply", READY);
    w1.kill9();
    w2.mark();
    assert_all_answered(&mut client, 40);
    assert!(w2.count("normal reply") > 0);
    w2.wait_for("normal reply", READY);
    assert!(
        client.summary().expect("a summary line").retries <= 3,
        "one lost request, not more"
    );
}

#[test]
fn every_request_is_answered_when_an_idle_worker_is_killed() {
    let mut queue = spqueue();
    let (mut w1, _) = queue.worker("worker1", &["--work-ms", "40"]);
    let (mut w2, _) = queue.worker("worker2", &["--work-ms", "40"]);
    let mut client = lpclient(
        &queue.frontend,
        &["--requests", "30", "--timeout-ms", "1000", "--retries", "3"],
    );
    client.wait_for("server replied OK (5)", READY);
    // While worker2 works, worker1 waits on the queue's ready list: kill it there.
    w2.mark();
    w2.wait_for("normal reply", READY);
    w1.kill9();
    assert_all_answered(&mut client, 30);
}

#[test]
fn a_restarted_worker_rejoins_and_serves() {
    let mut queue = spqueue();
    let (mut w1, id1) = queue.worker("worker1", &["--work-ms", "20", "--crash-after", "5"]);
    let mut client = lpclient(
        &queue.frontend,
        &["--requests", "12", "--timeout-ms", "1000", "--retries", "5"],
    );
    w1.wait_for("simulating a crash", READY);
    w1.wait_exit(READY).expect("crashed worker exits");
    w1.restart();
    let line = w1.wait_for(") worker ready", READY);
    assert!(
        !line.contains(&id1),
        "a restarted worker takes a fresh identity"
    );
    // Crashes again after 5 more: a third run finishes the job.
    w1.wait_for("simulating a crash", READY);
    w1.wait_exit(READY).expect("crashed worker exits");
    w1.restart();
    assert_all_answered(&mut client, 12);
    assert_eq!(queue.proc.count("E:"), 0, "{:?}", queue.proc.lines());
}
