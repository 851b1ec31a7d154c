//! The ingress guard in front of flserver1–3: hostile bytes close one connection, never the
//! server (the limits in the README's "Security"); libzmq clients still get through.

use crate::util::server;
use common::hostile::{assert_connection_limit, assert_survives_hostile_input, libzmq_request};

fn frames(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|f| f.as_bytes().to_vec()).collect()
}

#[test]
fn every_freelance_server_survives_hostile_input() {
    for model in 1..=3u8 {
        let (mut proc, endpoint) = server_with(model, &["--handshake-ms", "1000"]);
        let normal = || match model {
            1 => assert_eq!(
                libzmq_request(&endpoint, zmq::REQ, &["hello"]),
                frames(&["hello"])
            ),
            2 => assert_eq!(
                libzmq_request(&endpoint, zmq::REQ, &["5", "hello"]),
                frames(&["5", "OK"])
            ),
            _ => assert_eq!(
                libzmq_request(&endpoint, zmq::DEALER, &["5", "hello"]),
                frames(&["5", "OK"])
            ),
        };
        let peer = if model == 3 { "DEALER" } else { "REQ" };
        assert_survives_hostile_input(&mut proc, &endpoint, peer, normal);
    }
}

#[test]
fn flserver1_refuses_one_connection_over_the_limit_and_keeps_serving() {
    let (mut proc, endpoint) = server_with(1, &["--max-connections", "2"]);
    let open = assert_connection_limit(&mut proc, &endpoint, "REQ", 2);
    drop(open);
    assert_eq!(
        libzmq_request(&endpoint, zmq::REQ, &["again"]),
        frames(&["again"])
    );
}

/// A server of `model` with extra flags.
fn server_with(model: u8, extra: &[&str]) -> (common::testkit::Proc, String) {
    let (proc, endpoint) = server(model);
    drop(proc);
    let name = format!("flserver{model}");
    let mut args = if model == 3 {
        vec!["--bind", &endpoint, "--endpoint", &endpoint]
    } else {
        vec![endpoint.as_str()]
    };
    args.extend_from_slice(extra);
    let mut proc = common::testkit::Proc::spawn(&name, crate::util::bin(&name), args);
    proc.wait_for("ready on", crate::util::BOUND);
    (proc, endpoint)
}

#[test]
fn flservers_help_shows_the_guard_flags() {
    for bin in [
        env!("CARGO_BIN_EXE_flserver1"),
        env!("CARGO_BIN_EXE_flserver2"),
        env!("CARGO_BIN_EXE_flserver3"),
    ] {
        common::testkit::assert_help_mentions(bin, &common::hostile::HELP_NEEDLES);
    }
}
