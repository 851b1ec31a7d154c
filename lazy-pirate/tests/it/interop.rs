//! Interop: our lpclient against a libzmq (zmq crate) REP server.

use crate::util::{lpclient, replies};
use common::testkit::Background;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A libzmq REP echo server in a thread until dropped; answers `"999"` to the first `wrong`
/// requests.
fn libzmq_rep(endpoint: &str, wrong: usize) -> Background {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REP).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(50).unwrap();
    socket.bind(endpoint).unwrap();
    Background::spawn(move |stop| {
        let mut seen = 0;
        while !stop.load(Ordering::Relaxed) {
            let Ok(request) = socket.recv_multipart(0) else {
                continue;
            };
            seen += 1;
            if seen <= wrong {
                socket.send("999", 0).unwrap();
            } else {
                socket.send_multipart(request, 0).unwrap();
            }
        }
    })
}

#[test]
fn lpclient_is_answered_by_a_libzmq_rep_server() {
    let endpoint = common::testkit::tcp_endpoint();
    let _server = libzmq_rep(&endpoint, 0);
    let mut client = lpclient(&endpoint, &["--requests", "10", "--timeout-ms", "5000"]);
    let status = client
        .wait_exit(Duration::from_secs(30))
        .expect("client ends");
    assert!(status.success(), "{:?}", client.lines());
    assert_eq!(replies(&client), (1..=10).collect::<Vec<_>>());
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (10, 10, 0, 0));
}

#[test]
fn lpclient_rejects_a_wrong_sequence_number_and_retries() {
    let endpoint = common::testkit::tcp_endpoint();
    let _server = libzmq_rep(&endpoint, 1);
    let mut client = lpclient(
        &endpoint,
        &["--requests", "3", "--timeout-ms", "500", "--retries", "3"],
    );
    let status = client
        .wait_exit(Duration::from_secs(30))
        .expect("client ends");
    assert!(status.success(), "{:?}", client.lines());
    assert_eq!(client.count("E: malformed reply from server: 999"), 1);
    assert_eq!(replies(&client), [1, 2, 3]);
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (3, 3, 0, 1));
}
