//! The accounting rule (contract 3) and `--log-requests` (contract 2) on `lpclient`.

use crate::util::{lpclient, lpserver, replies, READY};
use common::testkit::tcp_endpoint;
use std::time::Duration;

const EXIT_BOUND: Duration = Duration::from_secs(5);

#[test]
fn ctrl_c_with_a_request_in_flight_counts_it_failed_and_the_lines_add_up() {
    let endpoint = tcp_endpoint();
    let server = lpserver(&endpoint, &["--work-ms", "0"]);
    // No pause between requests: from here on a request is always in flight.
    let mut client = lpclient(&endpoint, &["--timeout-ms", "60000", "--log-requests"]);
    client.wait_for("server replied OK (3)", READY);
    server.stop(); // the next request hangs
    let s = client.interrupt_in_flight(EXIT_BOUND);
    server.cont();
    assert_eq!(s.failed, 1, "{s}");
    assert_eq!(s.answered, replies(&client).len() as u64);
    let last = *client.request_lines().last().unwrap();
    assert_eq!((last.seq, last.tries), (s.sent, 1));
}

#[test]
fn request_lines_count_the_tries_of_a_retried_request() {
    let endpoint = tcp_endpoint();
    let server = lpserver(&endpoint, &["--work-ms", "0"]);
    let mut client = lpclient(
        &endpoint,
        &[
            "--requests",
            "2",
            "--interval-ms",
            "2000",
            "--timeout-ms",
            "500",
            "--retries",
            "20",
            "--log-requests",
        ],
    );
    client.wait_for("server replied OK (1)", READY);
    // The client pauses 2 s: stop the server so that request 2 needs a retry.
    server.stop();
    client.wait_for("no response from server, retrying", READY);
    server.cont();
    let status = client.wait_exit(READY).expect("lpclient ends");
    assert!(status.success(), "{:?}", client.lines());
    let s = client.summary().unwrap();
    let lines = client.request_lines();
    assert_eq!(common::report::RequestLine::tally(&lines), s);
    assert_eq!((s.sent, s.answered, s.failed), (2, 2, 0));
    assert_eq!(lines[0].tries, 1);
    assert!(lines[1].tries >= 2, "{lines:?}");
    assert_eq!(s.retries, lines[1].tries - 1);
    assert!(lines[1].latency_ms >= 500, "{lines:?}");
}

#[test]
fn help_documents_log_requests() {
    const NEEDLES: &[&str] = &[
        "--log-requests",
        "I: request",
        "the tour's report reads these",
    ];
    common::testkit::assert_help_mentions(env!("CARGO_BIN_EXE_lpclient"), NEEDLES);
}
