//! Every server logs a malformed request (`E:`) and drops it, then goes on serving.
//! The peers are libzmq DEALERs, which send exactly the frames given.

use crate::util::{server, BOUND};
use common::testkit::Proc;

/// Sends each malformed message then a good one; the first reply must be the good one's.
fn check(
    server: &mut Proc,
    endpoint: &str,
    malformed: &[&[&[u8]]],
    good: &[&[u8]],
    expected: &[&[u8]],
) {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::DEALER).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(10_000).unwrap();
    socket.connect(endpoint).unwrap();
    for message in malformed {
        socket.send_multipart(message.iter(), 0).unwrap();
    }
    socket.send_multipart(good.iter(), 0).unwrap();
    let reply = socket.recv_multipart(0).unwrap();
    let expected: Vec<Vec<u8>> = expected.iter().map(|f| f.to_vec()).collect();
    assert_eq!(reply, expected, "the malformed requests got no answer");
    for _ in malformed {
        server.wait_for("E: malformed request from", BOUND);
    }
}

#[test]
fn flserver1_drops_requests_without_delimiter_or_body() {
    let (mut s, ep) = server(1);
    check(
        &mut s,
        &ep,
        &[&[b"no delimiter"], &[b""]],
        &[b"", b"hello"],
        &[b"", b"hello"],
    );
    assert_eq!(s.count("no empty delimiter"), 1);
    assert_eq!(s.count("empty body"), 1);
}

#[test]
fn flserver2_drops_requests_without_control_frame_or_delimiter() {
    let (mut s, ep) = server(2);
    check(
        &mut s,
        &ep,
        &[&[b"", b"random name"], &[b"7", b"random name"]],
        &[b"", b"8", b"random name"],
        &[b"", b"8", b"OK"],
    );
    assert_eq!(s.count("missing control frame"), 1);
    assert_eq!(s.count("no empty delimiter"), 1);
}

#[test]
fn flserver3_drops_a_request_without_control_frame() {
    let (mut s, ep) = server(3);
    check(
        &mut s,
        &ep,
        &[&[b"random name"]],
        &[b"9", b"random name"],
        &[b"9", b"OK"],
    );
    assert_eq!(s.count("missing control frame"), 1);
}
