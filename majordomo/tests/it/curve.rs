//! Majordomo with CURVE end to end: mdbroker (`--curve-secret`, `--curve-allow`), mdworker
//! and mdclient (`--curve-server-key`, `--curve-key`) all with keys, a worker killed mid-run,
//! nothing lost; mdclient against libzmq's CURVE (a pyzmq ROUTER answering like a broker);
//! a wrong server key is an `E:` line and no answer.

use crate::util::{broker, worker, SOON};
use common::curve::keys::KeyPair;
use common::hostile::{pyzmq_curve_echo, CurveKeys};
use common::testkit::{tcp_endpoint, Proc};
use std::time::Duration;

fn strings(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn mdclient(args: Vec<String>) -> Proc {
    Proc::spawn("mdclient", env!("CARGO_BIN_EXE_mdclient"), args)
}

#[test]
fn broker_workers_and_client_all_with_curve_keys_lose_nothing_when_a_worker_is_killed() {
    let keys = CurveKeys::new();
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &strings(&keys.server_args()));
    // Each worker has its own key pair, admitted by the broker's --curve-allow.
    let worker_args = |name: &str| {
        let pair = KeyPair::generate();
        keys.admit(name, &pair);
        let secret = keys.write_secret(name, &pair);
        vec![
            "--curve-server-key".to_owned(),
            keys.server.public.to_z85(),
            "--curve-key".to_owned(),
            secret.display().to_string(),
        ]
    };
    let one_args = worker_args("worker1");
    let two_args = worker_args("worker2");
    let mut one = worker("worker1", &mut broker, &ep, &strings(&one_args));
    let _two = worker("worker2", &mut broker, &ep, &strings(&two_args));
    let mut args = keys.client_args();
    args.extend(
        [
            "--broker",
            &ep,
            "--requests",
            "100",
            "--interval-ms",
            "20",
            "--log-requests",
            "--timeout-ms",
            "1500",
            "--retries",
            "10",
        ]
        .map(String::from),
    );
    let mut client = mdclient(args);
    // Kill one worker once the run is under way; the broker hands its work to the other.
    client.wait_for("I: request", SOON);
    one.kill9();
    assert_eq!(client.wait_exit(SOON * 2).map(|s| s.code()), Some(Some(0)));
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (100, 100, 0), "{s:?}");
    assert_eq!(client.count("E: "), 0, "{:?}", client.lines());
    assert_eq!(broker.count("not allowed"), 0);
}

#[test]
fn mdclient_with_a_wrong_server_key_gets_nothing_and_the_broker_says_why() {
    let keys = CurveKeys::new();
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &strings(&keys.server_args()));
    let wrong = KeyPair::generate().public.to_z85();
    let mut client = mdclient(
        [
            "--broker",
            &ep,
            "--requests",
            "1",
            "--timeout-ms",
            "500",
            "--retries",
            "2",
            "--curve-server-key",
            &wrong,
        ]
        .map(String::from)
        .to_vec(),
    );
    client.wait_exit(SOON).expect("mdclient gives up");
    let line = client.wait_for("E: curve ", Duration::ZERO);
    assert!(
        line.contains(&format!("expected server key {wrong}")),
        "{line}"
    );
    assert!(
        client.summary().is_none_or(|s| s.answered == 0),
        "{:?}",
        client.lines()
    );
    broker.wait_for("CURVE HELLO does not open", SOON);
}

#[test]
fn mdclient_with_curve_is_answered_by_a_libzmq_curve_router() {
    let Some(_) = common::hostile::require_pyzmq_curve() else {
        return;
    };
    let server = KeyPair::generate();
    // A ROUTER that sends every request back: for MDP/0.1 the client's REQUEST
    // ("", MDPC01, service, body…) is exactly the frames of the broker's REPLY.
    let (router, endpoint) = pyzmq_curve_echo("ROUTER", &server);
    let mut client = mdclient(
        [
            "--broker",
            &endpoint,
            "--requests",
            "5",
            "--timeout-ms",
            "5000",
            "--curve-server-key",
            &server.public.to_z85(),
        ]
        .map(String::from)
        .to_vec(),
    );
    assert_eq!(client.wait_exit(SOON).map(|s| s.code()), Some(Some(0)));
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (5, 5, 0), "{s:?}");
    // libzmq decrypted MDP frames: the client header "MDPC01" (hex) in each request.
    assert_eq!(router.wait_count("4d44504330", 5, SOON), 5);
}
