//! The ingress guard in front of both spqueue ports: hostile bytes close one connection, never
//! the queue (the limits in the README's "Security"); libzmq clients still get through.

use crate::util::spqueue;
use common::hostile::{assert_connection_limit, assert_survives_hostile_input, libzmq_request};
use common::testkit::{tcp_endpoint, Proc};

#[test]
fn spqueue_survives_hostile_input_on_both_ports() {
    let mut queue = spqueue();
    let (_worker, _) = queue.worker("worker", &["--work-ms", "0"]);
    let frontend = queue.frontend.clone();
    let normal = || {
        assert_eq!(
            libzmq_request(&frontend, zmq::REQ, &["9"]),
            vec![b"9".to_vec()]
        )
    };
    assert_survives_hostile_input(&mut queue.proc, &queue.frontend, "REQ", normal);
    let backend = queue.backend.clone();
    assert_survives_hostile_input(&mut queue.proc, &backend, "REQ", normal);
}

#[test]
fn spqueue_refuses_one_connection_over_the_limit_and_keeps_serving() {
    let (frontend, backend) = (tcp_endpoint(), tcp_endpoint());
    let args = ["--frontend", &frontend, "--backend", &backend];
    let mut proc = Proc::spawn(
        "spqueue",
        env!("CARGO_BIN_EXE_spqueue"),
        [
            &args[..],
            &["--max-connections", "2", "--handshake-ms", "60000"],
        ]
        .concat(),
    );
    proc.wait_for("spqueue ready (frontend", crate::util::READY);
    let mut worker = Proc::spawn(
        "worker",
        env!("CARGO_BIN_EXE_spworker"),
        ["--queue", &backend, "--work-ms", "0"],
    );
    worker.wait_for(") worker ready", crate::util::READY);
    let open = assert_connection_limit(&mut proc, &frontend, "REQ", 2);
    drop(open);
    assert_eq!(
        libzmq_request(&frontend, zmq::REQ, &["3"]),
        vec![b"3".to_vec()]
    );
}

#[test]
fn spqueue_help_shows_the_guard_flags() {
    common::testkit::assert_help_mentions(
        env!("CARGO_BIN_EXE_spqueue"),
        &common::hostile::HELP_NEEDLES,
    );
}
