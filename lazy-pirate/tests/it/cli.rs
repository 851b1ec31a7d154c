//! Every binary exits promptly on Ctrl-C (SIGINT) and documents every flag in `--help`.

use crate::util::{lpclient, lpserver, READY};
use common::testkit::{assert_help_mentions, tcp_endpoint};
use std::time::Duration;

/// The requirement is 1 s; the assert is generous for a loaded CI box, the real time is printed.
const EXIT_BOUND: Duration = Duration::from_secs(3);

#[test]
fn lpserver_exits_on_sigint_even_mid_request() {
    let endpoint = tcp_endpoint();
    let mut server = lpserver(&endpoint, &["--work-ms", "60000"]);
    let _client = lpclient(&endpoint, &["--requests", "1"]);
    server.wait_for("normal request (1)", READY);
    assert!(server.interrupt_and_wait(EXIT_BOUND).0.success());
}

#[test]
fn lpclient_exits_on_sigint_mid_request_with_its_summary() {
    let endpoint = tcp_endpoint();
    let mut server = lpserver(&endpoint, &["--work-ms", "60000"]);
    let mut client = lpclient(&endpoint, &["--timeout-ms", "60000"]);
    server.wait_for("normal request (1)", READY);
    let (status, _) = client.interrupt_and_wait(EXIT_BOUND);
    assert!(!status.success(), "a request given up is a failure");
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1));
}

#[test]
fn lpclient_exits_on_sigint_while_connecting() {
    // Nobody listens: the client is inside its bounded connect.
    let mut client = lpclient(&tcp_endpoint(), &["--timeout-ms", "60000"]);
    client.wait_for("connecting to server", READY);
    client.interrupt_and_wait(EXIT_BOUND);
    client.summary().expect("a summary line");
}

#[test]
fn help_documents_every_flag() {
    assert_help_mentions(
        env!("CARGO_BIN_EXE_lpclient"),
        &[
            "--server",
            "--requests",
            "--timeout-ms",
            "--retries",
            "--interval-ms",
            "--verbose",
            "[default: tcp://localhost:5555]",
            "[default: 2500]",
            "[default: 3]",
        ],
    );
    assert_help_mentions(
        env!("CARGO_BIN_EXE_lpserver"),
        &[
            "--bind",
            "--send-timeout-ms",
            "--work-ms",
            "--crash-after",
            "--overload-after",
            "--overload-ms",
            "--random-faults",
            "--seed",
            "--verbose",
            "[default: tcp://*:5555]",
        ],
    );
}
