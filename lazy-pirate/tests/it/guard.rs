//! The ingress guard in front of lpserver: hostile bytes close one connection, never the
//! server (the limits in the README's "Security"); the connection limit refuses one more; libzmq
//! clients still get through.

use crate::util::lpserver;
use common::hostile::{assert_connection_limit, assert_survives_hostile_input, libzmq_request};
use common::testkit::tcp_endpoint;

#[test]
fn lpserver_survives_hostile_input() {
    let endpoint = tcp_endpoint();
    let mut server = lpserver(&endpoint, &["--work-ms", "0", "--handshake-ms", "1000"]);
    assert_survives_hostile_input(&mut server, &endpoint, "REQ", || {
        assert_eq!(
            libzmq_request(&endpoint, zmq::REQ, &["7"]),
            vec![b"7".to_vec()]
        );
    });
}

#[test]
fn lpserver_refuses_one_connection_over_the_limit_and_keeps_serving() {
    let endpoint = tcp_endpoint();
    let mut server = lpserver(&endpoint, &["--work-ms", "0", "--max-connections", "3"]);
    let open = assert_connection_limit(&mut server, &endpoint, "REQ", 3);
    drop(open);
    assert_eq!(
        libzmq_request(&endpoint, zmq::REQ, &["8"]),
        vec![b"8".to_vec()]
    );
}

#[test]
fn lpserver_help_shows_the_guard_flags() {
    common::testkit::assert_help_mentions(
        env!("CARGO_BIN_EXE_lpserver"),
        &common::hostile::HELP_NEEDLES,
    );
}
