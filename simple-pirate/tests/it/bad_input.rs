//! Malformed frames from either side are logged with `E:` and dropped; the queue keeps serving.

use crate::util::{assert_all_answered, lpclient, spqueue, READY};

#[test]
fn malformed_messages_are_dropped_and_the_queue_keeps_serving() {
    let mut queue = spqueue();
    let (_worker, _) = queue.worker("worker", &["--work-ms", "0"]);
    let ctx = zmq::Context::new();

    // Client side: a DEALER that skips the empty delimiter, and one that sends nothing after it.
    let client = ctx.socket(zmq::DEALER).unwrap();
    client.set_linger(0).unwrap();
    client.connect(&queue.frontend).unwrap();
    client.send_multipart(["17", "18"], 0).unwrap();
    queue
        .proc
        .wait_for("E: malformed request from client", READY);
    client.send("", 0).unwrap();
    let line = queue
        .proc
        .wait_for("E: malformed request from client", READY);
    assert!(line.contains("frame(s)"), "{line}");

    // Worker side: unknown command, wrong frame count, missing delimiter, oversized address.
    let fake = ctx.socket(zmq::DEALER).unwrap();
    fake.set_linger(0).unwrap();
    fake.set_identity(b"FAKE-WORKER").unwrap();
    fake.connect(&queue.backend).unwrap();
    let oversized = vec![b'x'; 300];
    let bad: [(Vec<Vec<u8>>, &str); 4] = [
        (vec![vec![], vec![0x07]], "unknown command byte 0x07"),
        (vec![b"17".to_vec()], "2 frame(s)"),
        (
            vec![vec![], b"C1".to_vec(), b"17".to_vec()],
            "no empty delimiter",
        ),
        (
            vec![vec![], oversized, vec![], b"17".to_vec()],
            "300 bytes exceeds",
        ),
    ];
    for (frames, reason) in bad {
        fake.send_multipart(frames, 0).unwrap();
        let line = queue
            .proc
            .wait_for("E: malformed message from worker FAKE-WORKER", READY);
        assert!(line.contains(reason), "{line} should say {reason}");
    }

    // Still serving.
    let mut client = lpclient(
        &queue.frontend,
        &["--requests", "5", "--timeout-ms", "5000"],
    );
    assert_all_answered(&mut client, 5);
    assert_eq!(queue.proc.count("E:"), 6);
}
