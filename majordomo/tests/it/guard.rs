//! The ingress guard in front of mdbroker: hostile bytes close one connection, never the
//! broker (the limits in the README's "Security"); the connection limit refuses one more; libzmq
//! MDP clients get through.

use crate::util::{broker, worker};
use common::hostile::{assert_connection_limit, assert_survives_hostile_input};
use common::testkit::tcp_endpoint;

/// One MDP/0.1 echo request from a libzmq REQ socket; returns the reply frames.
fn libzmq_echo(endpoint: &str, body: &str) -> Vec<Vec<u8>> {
    let ctx = zmq::Context::new();
    let req = ctx.socket(zmq::REQ).unwrap();
    req.set_linger(0).unwrap();
    req.set_rcvtimeo(10_000).unwrap();
    req.connect(endpoint).unwrap();
    req.send_multipart(["MDPC01", "echo", body], 0).unwrap();
    req.recv_multipart(0).expect("a reply through the guard")
}

fn expected(body: &str) -> Vec<Vec<u8>> {
    vec![
        b"MDPC01".to_vec(),
        b"echo".to_vec(),
        body.as_bytes().to_vec(),
    ]
}

#[test]
fn mdbroker_survives_hostile_input() {
    let endpoint = tcp_endpoint();
    let mut b = broker(&endpoint, &["--handshake-ms", "1000"]);
    let _w = worker("worker", &mut b, &endpoint, &["--work-ms", "0"]);
    assert_survives_hostile_input(&mut b, &endpoint, "DEALER", || {
        assert_eq!(libzmq_echo(&endpoint, "hi"), expected("hi"));
    });
}

#[test]
fn mdbroker_refuses_one_connection_over_the_limit_and_keeps_serving() {
    let endpoint = tcp_endpoint();
    let mut b = broker(&endpoint, &["--max-connections", "3"]);
    let _w = worker("worker", &mut b, &endpoint, &["--work-ms", "0"]);
    // The worker holds one slot.
    let open = assert_connection_limit(&mut b, &endpoint, "DEALER", 2);
    drop(open);
    assert_eq!(libzmq_echo(&endpoint, "again"), expected("again"));
}

#[test]
fn mdbroker_allowlist_refuses_other_sources() {
    let endpoint = tcp_endpoint();
    let mut b = broker(&endpoint, &["--allow", "10.0.0.0/8"]);
    b.mark();
    let addr = common::hostile::tcp_addr(&endpoint);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    common::hostile::assert_closed(&mut s, common::hostile::CLOSE_WITHIN, "not allowed");
    let line = b.wait_for("W: guard", common::hostile::CLOSE_WITHIN);
    assert!(line.contains("not in --allow"), "{line}");
}

#[test]
fn mdbroker_help_shows_the_guard_flags() {
    common::testkit::assert_help_mentions(
        env!("CARGO_BIN_EXE_mdbroker"),
        &common::hostile::HELP_NEEDLES,
    );
}
