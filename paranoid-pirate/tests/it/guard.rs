//! The ingress guard in front of both ppqueue ports: hostile bytes close one connection, never
//! the queue (the limits in the README's "Security"); libzmq clients still get through.

use crate::util::{queue, worker, Net};
use common::hostile::{assert_connection_limit, assert_survives_hostile_input, libzmq_request};

#[test]
fn ppqueue_survives_hostile_input_on_both_ports() {
    let net = Net::new();
    let mut q = queue(&net, &["--handshake-ms", "1000"]);
    let (_w, _) = worker("worker", &net, &mut q, &["--work-ms", "0"]);
    let normal = || {
        assert_eq!(
            libzmq_request(&net.frontend, zmq::REQ, &["4"]),
            vec![b"4".to_vec()]
        )
    };
    assert_survives_hostile_input(&mut q, &net.frontend, "REQ", normal);
    assert_survives_hostile_input(&mut q, &net.backend, "DEALER", normal);
}

#[test]
fn ppqueue_refuses_one_connection_over_the_limit_and_keeps_serving() {
    let net = Net::new();
    let mut q = queue(&net, &["--max-connections", "2"]);
    let (_w, _) = worker("worker", &net, &mut q, &["--work-ms", "0"]);
    let open = assert_connection_limit(&mut q, &net.frontend, "REQ", 2);
    drop(open);
    assert_eq!(
        libzmq_request(&net.frontend, zmq::REQ, &["5"]),
        vec![b"5".to_vec()]
    );
}

#[test]
fn ppqueue_help_shows_the_guard_flags() {
    common::testkit::assert_help_mentions(
        env!("CARGO_BIN_EXE_ppqueue"),
        &common::hostile::HELP_NEEDLES,
    );
}
