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

/// CURVE on the frontend (`--curve-secret`): a libzmq CURVE client (pyzmq) is served through
/// ppqueue by a ppworker on an `ipc://` backend (unguarded, so plain: the workspace's own
/// workers cannot speak CURVE yet).
#[test]
fn ppqueue_serves_a_libzmq_curve_client_on_its_frontend() {
    use common::hostile::{pyzmq_curve_request, CurveKeys};
    let Some(_) = common::hostile::require_pyzmq_curve() else {
        return;
    };
    let keys = CurveKeys::new();
    let ipc = common::testkit::IpcDir::new();
    let net = Net {
        frontend: common::testkit::tcp_endpoint(),
        backend: ipc.endpoint("backend"),
    };
    let args = keys.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut q = queue(&net, &args);
    let (_w, _) = worker("worker", &net, &mut q, &["--work-ms", "0"]);
    for n in ["1", "2"] {
        let reply = pyzmq_curve_request(
            &net.frontend,
            "REQ",
            &keys.server.public,
            &keys.client,
            &[n],
            std::time::Duration::from_secs(10),
        );
        assert_eq!(reply, Ok(vec![n.as_bytes().to_vec()]));
    }
}
