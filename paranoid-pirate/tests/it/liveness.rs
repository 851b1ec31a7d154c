//! Must show: the queue purges a killed or hung worker within (liveness + 1) × interval and
//! routes only to the living; a hung worker that resumes re-registers and serves; workers find
//! a restarted queue by themselves.

use crate::util::{all_answered, queue, registered, worker, Net, HEARTBEAT_MS, LIVENESS, PATIENCE};
use common::testkit::Proc;
use std::time::{Duration, Instant};

/// How soon a dead worker must be purged: (liveness + 1) × interval (one interval for the
/// phase at which it died).
fn bound() -> Duration {
    Duration::from_millis((LIVENESS + 1) * HEARTBEAT_MS)
}

/// Waits for the queue's purge line about `id`; returns it.
pub fn wait_purged(q: &mut Proc, id: &str) -> String {
    loop {
        let line = q.wait_for("purged", PATIENCE);
        if line.contains(id) {
            return line;
        }
    }
}

#[test]
fn killed_worker_is_purged_in_time_and_only_the_other_serves() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let (mut w1, id1) = worker("worker1", &net, &mut q, &[]);
    let (w2, _) = worker("worker2", &net, &mut q, &[]);

    let killed = Instant::now();
    w1.kill9();
    let line = wait_purged(&mut q, &id1);
    let took = killed.elapsed();
    eprintln!(
        "kill -9 → purged after {} ms (bound {} ms): {line}",
        took.as_millis(),
        bound().as_millis()
    );
    // Generous: a loaded 2-core machine can delay any process by a good fraction of a second.
    assert!(took < bound() * 4, "purged after {took:?}");

    // Nothing goes to the dead worker: no retries needed, worker2 answers everything.
    all_answered(&net, 10, false);
    assert_eq!(w2.wait_count("normal reply", 10, PATIENCE), 10);
}

#[test]
fn hung_worker_is_purged_and_rejoins_after_sigcont() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let (mut w1, id1) = worker("worker1", &net, &mut q, &[]);
    let (w2, _) = worker("worker2", &net, &mut q, &[]);

    let stopped = Instant::now();
    w1.stop();
    let line = wait_purged(&mut q, &id1);
    let took = stopped.elapsed();
    eprintln!(
        "SIGSTOP → purged after {} ms (bound {} ms): {line}",
        took.as_millis(),
        bound().as_millis()
    );
    assert!(
        line.contains("expired"),
        "a hung worker keeps its connection: {line}"
    );
    assert!(took < bound() * 4, "purged after {took:?}");

    all_answered(&net, 10, false);
    assert_eq!(w2.wait_count("normal reply", 10, PATIENCE), 10);

    // SIGCONT: the worker notices the queue stopped heartbeating it and registers afresh.
    w1.mark();
    let resumed = Instant::now();
    w1.cont();
    let new_id = registered(&mut q, &mut w1);
    eprintln!(
        "SIGCONT → registered again as {new_id} after {} ms",
        resumed.elapsed().as_millis()
    );
    assert_ne!(new_id, id1, "a fresh identity on every reconnect");
    assert!(w1.count("heartbeat failure") >= 1);

    // It serves again: with two idle workers the queue alternates between them.
    let before = w1.count("normal reply");
    all_answered(&net, 10, false);
    assert!(
        w1.count("normal reply") - before >= 3,
        "worker1 served {} of 10",
        w1.count("normal reply") - before
    );
}

#[test]
fn workers_reconnect_to_a_restarted_queue_by_themselves() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let (mut w1, id1) = worker("worker1", &net, &mut q, &[]);
    let (mut w2, id2) = worker("worker2", &net, &mut q, &[]);
    all_answered(&net, 5, false);

    w1.mark();
    w2.mark();
    let killed = Instant::now();
    q.restart(); // kill -9, then the same command line again
    q.wait_for("ppqueue ready", PATIENCE);
    let new1 = registered(&mut q, &mut w1);
    let new2 = registered(&mut q, &mut w2);
    eprintln!(
        "queue kill -9 + restart → both workers registered again after {} ms",
        killed.elapsed().as_millis()
    );
    assert_ne!(new1, id1);
    assert_ne!(new2, id2);
    for w in [&w1, &w2] {
        assert!(w.count("can't reach queue") >= 1);
        assert!(w.count("reconnecting in") >= 1);
    }

    let served_before = w1.count("normal reply") + w2.count("normal reply");
    all_answered(&net, 10, false);
    let served = w1.count("normal reply") + w2.count("normal reply") - served_before;
    assert_eq!(served, 10);
}
