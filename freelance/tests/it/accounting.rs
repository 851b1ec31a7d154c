//! The accounting rule (contract 3) and `--log-requests` (contract 2) on `flclient1..3`:
//! Ctrl-C with a request in flight counts it failed and exits non-zero, and the per-request
//! lines add up to the summary line.

use crate::util::{client, server, BOUND};
use common::report::RequestLine;

#[test]
fn every_model_counts_the_request_in_flight_at_ctrl_c_as_failed() {
    for model in 1..=3u8 {
        let (srv, ep) = server(model);
        // Back to back (no --interval-ms): a request is always in flight.
        let mut c = client(
            model,
            std::slice::from_ref(&ep),
            &[
                "--requests",
                "1000000",
                "--timeout-ms",
                "60000",
                "--quiet",
                "--log-requests",
            ],
        );
        c.wait_for("request seq=3 outcome=answered", BOUND);
        srv.stop(); // the next request gets no answer
        let s = c.interrupt_in_flight(BOUND);
        srv.cont();
        assert_eq!(s.failed, 1, "flclient{model}: {s}");
        let last = *c.request_lines().last().unwrap();
        assert_eq!(last.seq, s.sent, "flclient{model}");
        assert_eq!(c.count("W: interrupted"), 1, "flclient{model}");
    }
}

#[test]
fn every_model_logs_one_line_per_request_of_a_complete_run() {
    for model in 1..=3u8 {
        let (_srv, ep) = server(model);
        let mut c = client(
            model,
            std::slice::from_ref(&ep),
            &["--requests", "10", "--quiet", "--log-requests"],
        );
        let status = c.wait_exit(BOUND).expect("the client ends");
        assert!(status.success(), "flclient{model}: {:?}", c.lines());
        let s = c.summary().expect("a summary line");
        let lines = c.request_lines();
        assert_eq!(
            (s.sent, s.answered, s.failed),
            (10, 10, 0),
            "flclient{model}"
        );
        assert_eq!(RequestLine::tally(&lines), s, "flclient{model}");
        assert_eq!(
            lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>(),
            "flclient{model}"
        );
    }
}

#[test]
fn help_documents_log_requests() {
    const NEEDLES: &[&str] = &[
        "--log-requests",
        "I: request",
        "the tour's report reads these",
    ];
    common::testkit::assert_help_mentions(crate::util::bin("flclient1"), NEEDLES);
    common::testkit::assert_help_mentions(crate::util::bin("flclient2"), NEEDLES);
    common::testkit::assert_help_mentions(crate::util::bin("flclient3"), NEEDLES);
}
