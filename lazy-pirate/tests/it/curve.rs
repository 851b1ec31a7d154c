//! lpclient with CURVE (`--curve-server-key`, `--curve-key`): against libzmq's own CURVE REP
//! (pyzmq) and against our guarded lpserver; a wrong server key is an `E:` line and no
//! answer, never a fallback to NULL.

use crate::util::{lpclient, lpserver, READY};
use common::curve::keys::KeyPair;
use common::hostile::{pyzmq_curve_echo, CurveKeys};
use common::testkit::tcp_endpoint;
use std::time::Duration;

fn strings(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn lpclient_with_curve_is_answered_by_a_libzmq_curve_rep_server() {
    let Some(_) = common::hostile::require_pyzmq_curve() else {
        return;
    };
    let server = KeyPair::generate();
    let (mut rep, endpoint) = pyzmq_curve_echo("REP", &server);
    let key = server.public.to_z85();
    let mut client = lpclient(
        &endpoint,
        &[
            "--requests",
            "5",
            "--timeout-ms",
            "5000",
            "--curve-server-key",
            &key,
        ],
    );
    client.wait_exit(READY).expect("lpclient finishes");
    let summary = client.summary().expect("summary line");
    assert_eq!((summary.sent, summary.answered), (5, 5), "{summary:?}");
    assert_eq!(rep.wait_count("request ", 5, READY), 5);
    // libzmq saw our sequence numbers in clear inside its CURVE session.
    rep.wait_for("request 31", READY);
}

#[test]
fn lpclient_with_a_wrong_server_key_says_so_and_gets_no_answer() {
    let Some(_) = common::hostile::require_pyzmq_curve() else {
        return;
    };
    let server = KeyPair::generate();
    let (rep, endpoint) = pyzmq_curve_echo("REP", &server);
    let wrong = KeyPair::generate().public.to_z85();
    let mut client = lpclient(
        &endpoint,
        &[
            "--requests",
            "1",
            "--timeout-ms",
            "1000",
            "--retries",
            "2",
            "--curve-server-key",
            &wrong,
        ],
    );
    client.wait_exit(READY).expect("lpclient gives up");
    let line = client.wait_for("E: curve ", Duration::ZERO);
    assert!(
        line.contains(&endpoint) && line.contains(&format!("expected server key {wrong}")),
        "{line}"
    );
    let summary = client.summary().expect("summary line");
    assert_eq!((summary.answered, summary.failed), (0, 1), "{summary:?}");
    assert_eq!(rep.count("request "), 0, "a request reached the server");
}

#[test]
fn lpclient_and_lpserver_both_with_keys_and_the_server_refusing_others() {
    let keys = CurveKeys::new();
    let endpoint = tcp_endpoint();
    let mut server_args = keys.server_args();
    server_args.extend(["--work-ms".to_owned(), "0".to_owned()]);
    let mut server = lpserver(&endpoint, &strings(&server_args));
    let mut args = keys.client_args();
    args.extend(["--requests".to_owned(), "20".to_owned()]);
    let mut client = lpclient(&endpoint, &strings(&args));
    client.wait_exit(READY).expect("lpclient finishes");
    let summary = client.summary().expect("summary line");
    assert_eq!((summary.sent, summary.answered), (20, 20), "{summary:?}");
    // A key the server's --curve-allow does not hold: refused with the server's ERROR.
    let stranger = keys.write_secret("stranger", &KeyPair::generate());
    let key = keys.server.public.to_z85();
    let mut client = lpclient(
        &endpoint,
        &[
            "--requests",
            "1",
            "--timeout-ms",
            "1000",
            "--retries",
            "1",
            "--curve-server-key",
            &key,
            "--curve-key",
            stranger.to_str().unwrap(),
        ],
    );
    client.wait_exit(READY).expect("lpclient gives up");
    client.wait_for("E: curve ", Duration::ZERO);
    assert!(client.count("not authorised") >= 1, "{:?}", client.lines());
    server.wait_for("not allowed", READY);
    // A NULL client gets nothing from a CURVE server either.
    let mut plain = lpclient(
        &endpoint,
        &["--requests", "1", "--timeout-ms", "1000", "--retries", "1"],
    );
    plain.wait_exit(READY).expect("lpclient gives up");
    assert_eq!(plain.summary().expect("summary").answered, 0);
}

/// A hostile CURVE server (`common::hostile::ServerAttack`): a truncated or tampered WELCOME,
/// a tampered READY, an ERROR, a NULL greeting. lpclient refuses each with one `E: curve` line
/// naming the endpoint and the reason, gets no answer, and never falls back to NULL.
#[test]
fn lpclient_refuses_each_hostile_curve_server_with_a_log_line() {
    use common::hostile::{hostile_curve_server, ServerAttack};
    let pair = KeyPair::generate();
    let key = pair.public.to_z85();
    for attack in ServerAttack::ALL {
        let endpoint = hostile_curve_server(attack, &pair);
        let mut client = lpclient(
            &endpoint,
            &[
                "--requests",
                "1",
                "--timeout-ms",
                "1500",
                "--retries",
                "1",
                "--curve-server-key",
                &key,
            ],
        );
        client.wait_exit(READY).expect("lpclient gives up");
        let line = client
            .try_wait_for("E: curve ", Duration::ZERO)
            .unwrap_or_else(|| panic!("{attack:?}: no E: line in {:?}", client.lines()));
        assert!(
            line.contains(&endpoint) && line.contains(attack.reason()),
            "{attack:?}: {line}"
        );
        let summary = client.summary().expect("summary line");
        assert_eq!((summary.answered, summary.failed), (0, 1), "{attack:?}");
    }
}
