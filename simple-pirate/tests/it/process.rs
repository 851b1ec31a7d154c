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

#[test]
fn a_killed_busy_worker_hands_its_request_to_the_other_before_the_client_retries() {
    let mut queue = spqueue();
    // Registered first, so it gets the first request; it would take a minute to answer.
    let (mut slow, slow_id) = queue.worker("slow", &["--work-ms", "60000"]);
    let (_fast, _) = queue.worker("fast", &["--work-ms", "0"]);
    let mut client = lpclient(
        &queue.frontend,
        &["--requests", "1", "--timeout-ms", "5000", "--retries", "3"],
    );
    slow.wait_for("normal reply", READY);
    slow.kill9();
    // The queue sees the connection close and sends the request to the fast worker: the
    // client's first try (5 s) is answered, no retry.
    queue.proc.wait_for(
        &format!("worker {slow_id} disconnected, purged (its request goes to the next worker)"),
        READY,
    );
    assert_all_answered(&mut client, 1);
    assert_eq!(client.summary().expect("a summary line").retries, 0);
}

/// Sends `body` `n` times through a DEALER, one at a time, and checks each echo.
async fn echo_round_trips(client: &mut zeromq::DealerSocket, body: &bytes::Bytes, n: usize) {
    use zeromq::{SocketRecv, SocketSend, ZmqMessage};
    for _ in 0..n {
        let request = ZmqMessage::try_from(vec![bytes::Bytes::new(), body.clone()]).unwrap();
        client.send(request).await.unwrap();
        let reply = tokio::time::timeout(READY, client.recv())
            .await
            .expect("a reply")
            .unwrap();
        assert_eq!(reply.get(1), Some(body));
    }
}

#[test]
fn a_hundred_one_mib_messages_cost_the_queue_little_memory() {
    let mut queue = spqueue();
    let (_worker, _) = queue.worker("worker", &["--work-ms", "0"]);
    let pid = queue.proc.pid().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = bytes::Bytes::from(vec![7u8; 1 << 20]);
    rt.block_on(async {
        let mut client = <zeromq::DealerSocket as zeromq::Socket>::new();
        common::sock::connect(&mut client, &queue.frontend, READY)
            .await
            .unwrap();
        // One first, so buffers every connection keeps are counted in "before".
        echo_round_trips(&mut client, &body, 1).await;
        let (before, _) = common::testkit::rss_and_peak_kib(pid);
        echo_round_trips(&mut client, &body, 100).await;
        let (after, peak) = common::testkit::rss_and_peak_kib(pid);
        eprintln!(
            "spqueue, 100 × 1 MiB: RSS {before} KiB before, {after} KiB after, peak {peak} KiB"
        );
        // Bound: 16 MiB of growth; a copy kept per message would be 100 MiB.
        assert!(
            after < before + 16 * 1024,
            "RSS grew from {before} KiB to {after} KiB"
        );
    });
}
