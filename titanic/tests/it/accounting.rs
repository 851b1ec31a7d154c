//! The accounting rule (contract 3) and `--log-requests` (contract 2) on `ticlient`: Ctrl-C with
//! requests under way counts them failed, exits non-zero, and the per-request lines add up to
//! the summary line.

use crate::support::{broker, echo_worker, titanic, WAIT};
use common::testkit::{tcp_endpoint, Proc};

#[test]
fn ticlient_counts_requests_under_way_at_ctrl_c_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = tcp_endpoint();
    let _broker = broker(&endpoint);
    let worker = echo_worker(&endpoint);
    let _titanic = titanic(&endpoint, &dir.path().join("journal"), &[]);
    let mut client = Proc::spawn(
        "ticlient",
        env!("CARGO_BIN_EXE_ticlient"),
        [
            "--broker",
            &endpoint,
            "--count",
            "1000000",
            "--concurrency",
            "2",
            "--first-poll-ms",
            "10",
            "--poll-ms",
            "50",
            "--timeout-ms",
            "1500",
            "--log-requests",
        ],
    );
    client.wait_for("request seq=3 outcome=answered", WAIT);
    // With the echo worker hung, every request from here on stays pending: both lanes are
    // always waiting for a reply.
    worker.stop();
    let s = client.interrupt_in_flight(WAIT);
    worker.cont();
    assert!((1..=2).contains(&s.failed), "{s}");
    assert!(s.answered >= 1, "{s}"); // seq 3 at least (with two lanes, 1 or 2 may be pending)
}

#[test]
fn help_documents_log_requests() {
    const NEEDLES: &[&str] = &[
        "--log-requests",
        "I: request",
        "the tour's report reads these",
    ];
    common::testkit::assert_help_mentions(env!("CARGO_BIN_EXE_ticlient"), NEEDLES);
}
