//! Interop with libzmq (the `zmq` crate): a libzmq REQ client through spqueue to spworker, and
//! spworker served by a libzmq ROUTER standing in for the queue.

use crate::util::{spqueue, READY};
use common::testkit::{tcp_endpoint, Proc};

#[test]
fn libzmq_req_client_is_served_through_spqueue() {
    let mut queue = spqueue();
    let (_worker, _) = queue.worker("worker", &["--work-ms", "0"]);
    let ctx = zmq::Context::new();
    let req = ctx.socket(zmq::REQ).unwrap();
    req.set_linger(0).unwrap();
    req.set_rcvtimeo(20_000).unwrap();
    req.connect(&queue.frontend).unwrap();
    for n in 0..20 {
        let body = [
            format!("hello {n}").into_bytes(),
            b"".to_vec(),
            vec![0u8, 0xFF],
        ];
        req.send_multipart(body.iter(), 0).unwrap();
        let reply = req.recv_multipart(0).expect("reply within 20 s");
        assert_eq!(reply, body, "echoed body, empty and binary frames included");
    }
}

#[test]
fn spworker_speaks_to_a_libzmq_router() {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.set_linger(0).unwrap();
    router.set_rcvtimeo(20_000).unwrap();
    let endpoint = tcp_endpoint();
    router.bind(&endpoint).unwrap();
    let mut worker = Proc::spawn(
        "worker",
        env!("CARGO_BIN_EXE_spworker"),
        ["--queue", &endpoint, "--work-ms", "0"],
    );
    let ready = router.recv_multipart(0).expect("READY");
    assert_eq!(ready[1..], [b"".to_vec(), vec![0x01]]);
    let id = ready[0].clone();
    worker.wait_for(
        &format!("({}) worker ready", String::from_utf8_lossy(&id)),
        READY,
    );

    // A request without a client envelope: rejected, and the worker says READY again.
    router
        .send_multipart([id.clone(), vec![], b"no envelope".to_vec()], 0)
        .unwrap();
    let again = router.recv_multipart(0).expect("READY again");
    assert_eq!(again, [id.clone(), vec![], vec![0x01]]);
    worker.wait_for("E: (", READY);

    let request = [id.clone(), vec![], b"C1".to_vec(), vec![], b"42".to_vec()];
    router.send_multipart(request.iter(), 0).unwrap();
    let reply = router.recv_multipart(0).expect("reply");
    assert_eq!(reply, request);
    worker.wait_for("normal reply", READY);
}
