//! Freelance model 3 with CURVE: flserver3s with one key pair (`--curve-secret`), flclient3
//! with their public key; its requests and its pings go through CURVE relays, and the server
//! in use killed mid-run is replaced as without keys. A client expecting another key gets
//! nothing from them.

use crate::util::{bin, exit_code, BOUND};
use common::curve::keys::KeyPair;
use common::testkit::{tcp_endpoint, IpcDir, Proc};
use std::time::Duration;

/// A model-3 server on a fresh endpoint with `secret` as its CURVE key file, ready.
fn curve_server(secret: &str) -> (Proc, String) {
    let endpoint = tcp_endpoint();
    let args = [
        "--bind",
        &endpoint,
        "--endpoint",
        &endpoint,
        "--curve-secret",
        secret,
    ];
    let mut proc = Proc::spawn("flserver3", bin("flserver3"), args);
    proc.wait_for("ready on", BOUND);
    (proc, endpoint)
}

#[test]
fn flclient3_with_curve_pings_and_fails_over_between_curve_servers() {
    let dir = IpcDir::new();
    let pair = KeyPair::generate();
    let (_, secret) = pair.write_files(dir.path(), "servers").unwrap();
    let secret = secret.to_str().unwrap();
    let (mut first, one) = curve_server(secret);
    let (_second, two) = curve_server(secret);
    let key = pair.public.to_z85();
    let args = [
        one.as_str(),
        two.as_str(),
        "--requests",
        "40",
        "--interval-ms",
        "25",
        "--curve-server-key",
        &key,
    ];
    let mut c = Proc::spawn("flclient3", bin("flclient3"), args);
    c.wait_for(&format!("reply 10 from {one}:"), BOUND);
    first.kill9();
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (40, 40, 0));
    assert_eq!(c.count(&format!("server {one} dead")), 1);
    assert_eq!(c.count("E: "), 0, "{:?}", c.lines());

    // Another key: every connect is refused with an E: line, no server is ever alive.
    let wrong = KeyPair::generate().public.to_z85();
    let args = [
        two.as_str(),
        "--requests",
        "1",
        "--timeout-ms",
        "2000",
        "--curve-server-key",
        &wrong,
    ];
    let mut c = Proc::spawn("flclient3", bin("flclient3"), args);
    assert_ne!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let line = c.wait_for("E: curve ", Duration::ZERO);
    assert!(
        line.contains(&format!("expected server key {wrong}")),
        "{line}"
    );
    assert_eq!(c.count(" alive"), 0, "{:?}", c.lines());
}
