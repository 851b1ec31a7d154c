//! The ingress guard in front of bstarsrv: its frontend and its state PUB survive hostile
//! bytes (the limits in the README's "Security"); libzmq clients still get through.

use crate::util::{bstarsrv, server_args, WAIT};
use common::hostile::{assert_connection_limit, assert_survives_hostile_input, libzmq_request};
use common::testkit::{tcp_endpoint, Proc};

/// A lone primary on TCP endpoints (its peer never comes), ready to serve: frontend, state PUB.
fn lone_primary(extra: &[&str]) -> (Proc, String, String) {
    let (frontend, state_pub, state_sub) = (tcp_endpoint(), tcp_endpoint(), tcp_endpoint());
    let mut args = server_args("--primary", &frontend, &state_pub, &state_sub);
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut proc = Proc::spawn("primary", bstarsrv(), args);
    proc.wait_for("primary ready", WAIT);
    // Alone, the primary serves clients once its peer counts as gone.
    proc.wait_for("peer silent", WAIT);
    (proc, frontend, state_pub)
}

#[test]
fn bstarsrv_frontend_and_state_pub_survive_hostile_input() {
    let (mut proc, frontend, state_pub) = lone_primary(&["--handshake-ms", "1000"]);
    let normal = || {
        assert_eq!(
            libzmq_request(&frontend, zmq::REQ, &["hi"]),
            vec![b"hi".to_vec()]
        )
    };
    assert_survives_hostile_input(&mut proc, &frontend, "REQ", normal);
    assert_survives_hostile_input(&mut proc, &state_pub, "SUB", normal);
}

#[test]
fn bstarsrv_refuses_one_connection_over_the_limit_and_keeps_serving() {
    let (mut proc, frontend, _) = lone_primary(&["--max-connections", "2"]);
    let open = assert_connection_limit(&mut proc, &frontend, "REQ", 2);
    drop(open);
    assert_eq!(
        libzmq_request(&frontend, zmq::REQ, &["x"]),
        vec![b"x".to_vec()]
    );
}

#[test]
fn bstarsrv_help_shows_the_guard_flags() {
    common::testkit::assert_help_mentions(
        env!("CARGO_BIN_EXE_bstarsrv"),
        &common::hostile::HELP_NEEDLES,
    );
}
