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

/// CURVE in the guard (`--curve-secret`, `--curve-allow`): a libzmq CURVE client (pyzmq) is
/// answered; every refused CURVE peer is closed with one line and the server keeps serving.
#[test]
fn lpserver_speaks_curve_with_libzmq_and_survives_refused_peers() {
    use common::curve::keys::KeyPair;
    use common::hostile::{assert_survives_curve_attacks, pyzmq_curve_request};
    use std::time::Duration;
    let Some(_) = common::hostile::require_pyzmq_curve() else {
        return;
    };
    let keys = common::testkit::IpcDir::new();
    let allow = keys.path().join("allow");
    std::fs::create_dir(&allow).unwrap();
    let server_pair = KeyPair::generate();
    let (_, secret) = server_pair.write_files(keys.path(), "server").unwrap();
    let client = KeyPair::generate();
    client.write_files(&allow, "client").unwrap();
    let endpoint = tcp_endpoint();
    let mut server = lpserver(
        &endpoint,
        &[
            "--work-ms",
            "0",
            "--handshake-ms",
            "1000",
            "--curve-secret",
            secret.to_str().unwrap(),
            "--curve-allow",
            allow.to_str().unwrap(),
        ],
    );
    let request = |n: &str| {
        pyzmq_curve_request(
            &endpoint,
            "REQ",
            &server_pair.public,
            &client,
            &[n],
            Duration::from_secs(10),
        )
    };
    assert_eq!(request("7"), Ok(vec![b"7".to_vec()]));
    assert_survives_curve_attacks(
        &mut server,
        &endpoint,
        server_pair.public,
        &client,
        "REQ",
        || assert_eq!(request("8"), Ok(vec![b"8".to_vec()])),
    );
    // libzmq with the wrong server key gets nothing (and retries); the server lives on.
    server.mark();
    let wrong = KeyPair::generate().public;
    let refused = pyzmq_curve_request(
        &endpoint,
        "REQ",
        &wrong,
        &client,
        &["9"],
        Duration::from_millis(1500),
    );
    assert!(refused.is_err(), "{refused:?}");
    server.wait_for("CURVE HELLO does not open", common::hostile::CLOSE_WITHIN);
    assert_eq!(request("10"), Ok(vec![b"10".to_vec()]));
    // A key admitted later: its file added, then SIGHUP (the server re-reads, and lives on).
    let late = KeyPair::generate();
    late.write_files(&allow, "late").unwrap();
    let pid = server.pid().expect("lpserver pid").to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status();
    assert!(hup.is_ok_and(|s| s.success()));
    server.wait_for("client keys allowed", common::hostile::CLOSE_WITHIN);
    let reply = pyzmq_curve_request(
        &endpoint,
        "REQ",
        &server_pair.public,
        &late,
        &["11"],
        Duration::from_secs(10),
    );
    assert_eq!(reply, Ok(vec![b"11".to_vec()]));
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "SIGHUP ended lpserver"
    );
}
