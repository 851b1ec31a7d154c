//! Must show: under steady load, workers killed with -9 mid-request (and at other moments)
//! lose nothing: every request is answered, none abandoned while a worker is alive.

use crate::util::{finish, lpclient, queue, registered, worker, Net, PATIENCE};
use common::testkit::Proc;

/// Kills `w` with -9, starts it again (a fresh identity) and waits until the queue has it.
fn kill_and_replace(q: &mut Proc, w: &mut Proc) {
    w.kill9();
    w.restart();
    registered(q, w);
}

#[test]
fn every_request_is_answered_while_workers_are_killed_mid_request() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let (mut w1, _) = worker("worker1", &net, &mut q, &[]);
    let (mut w2, _) = worker("worker2", &net, &mut q, &[]);
    let mut c1 = lpclient("client1", &net, 60, 1500);
    let mut c2 = lpclient("client2", &net, 60, 1500);

    // 1. worker1 in the middle of a request.
    w1.mark();
    w1.wait_for("working on a request", PATIENCE);
    kill_and_replace(&mut q, &mut w1);
    // 2. worker2 in the middle of a request.
    w2.mark();
    w2.wait_for("working on a request", PATIENCE);
    kill_and_replace(&mut q, &mut w2);
    // 3. worker1 just after a reply (idle, or just handed its next request).
    w1.mark();
    w1.wait_for("normal reply", PATIENCE);
    kill_and_replace(&mut q, &mut w1);
    // 4. worker2 right after it registered (the queue may already be routing to it).
    kill_and_replace(&mut q, &mut w2);
    // 5. worker1 mid-request once more, and not replaced: worker2 carries on alone.
    w1.mark();
    w1.wait_for("working on a request", PATIENCE);
    w1.kill9();

    for client in [&mut c1, &mut c2] {
        let (summary, ok) = finish(client, PATIENCE * 3);
        eprintln!("{}: {summary}", client.name());
        assert_eq!(summary.sent, 60, "{summary}");
        assert_eq!(summary.answered, 60, "{summary}");
        assert_eq!(summary.failed, 0, "{summary}");
        assert!(ok);
        assert_eq!(client.count("abandoning"), 0);
    }
    assert!(q.count("purged") >= 5, "each killed worker was purged");
}

#[test]
fn a_worker_that_crashes_by_itself_loses_nothing() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let (mut crashing, _) = worker("crashing", &net, &mut q, &["--crash-after", "3"]);
    let (_steady, _) = worker("steady", &net, &mut q, &[]);
    let mut client = lpclient("lpclient", &net, 20, 1500);
    let (summary, ok) = finish(&mut client, PATIENCE * 2);
    assert_eq!(
        (summary.sent, summary.answered, summary.failed),
        (20, 20, 0),
        "{summary}"
    );
    assert!(ok);
    crashing.wait_for("simulating a crash", PATIENCE);
    let status = crashing
        .wait_exit(PATIENCE)
        .expect("the crashing worker exits");
    assert!(
        !status.success(),
        "a simulated crash exits with a failure status"
    );
    assert_eq!(crashing.count("normal reply"), 3);
}
