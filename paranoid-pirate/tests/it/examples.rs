//! The Guide-sized examples (`examples/`) against the hardened binaries, both ways, with the
//! faults Paranoid Pirate exists for: a worker killed (the queue forgets it, requests are still
//! answered) and the queue killed and restarted (workers notice the silence and reconnect).
//! The examples keep the Guide's 1 s heartbeat, so the hardened peers run with it too.

use crate::util::{all_answered, Net, PATIENCE};
use common::example;
use common::testkit::Proc;

/// Waits until `queue` has logged `n` worker registrations in all (both queues log
/// `I: worker <id> ready`).
fn registrations(queue: &Proc, n: usize) {
    let seen = queue.wait_count("I: worker ", n, PATIENCE);
    assert!(
        seen >= n,
        "{seen} of {n} registrations:\n{}",
        queue.lines().join("\n")
    );
}

#[test]
fn example_workers_reconnect_to_a_restarted_real_queue() {
    let net = Net::new();
    let args = ["--frontend", &net.frontend, "--backend", &net.backend];
    let mut queue = Proc::spawn("ppqueue", env!("CARGO_BIN_EXE_ppqueue"), args);
    queue.wait_for("ppqueue ready", PATIENCE);
    let worker = |name| Proc::spawn(name, example!("ppworker"), [net.backend.as_str(), "off"]);
    let mut workers = [worker("ppworker-a"), worker("ppworker-b")];
    registrations(&queue, 2);
    all_answered(&net, 3, false);

    queue.restart(); // kill -9, then the same command again
    queue.wait_for("ppqueue ready", PATIENCE);
    for w in &mut workers {
        w.wait_for("W: heartbeat failure, can't reach queue", PATIENCE);
        w.wait_for("W: reconnecting in 1000 msec", PATIENCE);
        w.wait_for("I: worker ready", PATIENCE);
    }
    registrations(&queue, 4);
    all_answered(&net, 3, false);
}

#[test]
fn real_workers_behind_the_example_queue_survive_a_killed_worker() {
    let net = Net::new();
    let mut queue = Proc::spawn(
        "ppqueue-example",
        example!("ppqueue"),
        [&net.frontend, &net.backend],
    );
    queue.wait_for("ppqueue ready", PATIENCE);
    let worker = |name| {
        let args = ["--queue", &net.backend, "--work-ms", "100"];
        Proc::spawn(name, env!("CARGO_BIN_EXE_ppworker"), args)
    };
    let (mut doomed, _survivor) = (worker("ppworker-a"), worker("ppworker-b"));
    registrations(&queue, 2);
    let mut client = crate::util::lpclient("lpclient", &net, 10, 2000);
    client.wait_for("I: server replied OK (3)", PATIENCE);
    doomed.kill9();
    let (summary, ok) = crate::util::finish(&mut client, PATIENCE * 2);
    assert_eq!(
        (summary.sent, summary.answered, summary.failed),
        (10, 10, 0),
        "{summary}"
    );
    assert!(ok, "lpclient exit status");
}
