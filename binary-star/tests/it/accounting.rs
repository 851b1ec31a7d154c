//! The accounting rule (contract 3) and `--log-requests` (contract 2) on `bstarcli`.

use crate::util::*;
use common::report::RequestLine;
use common::testkit::Proc;

fn logging_client(ep: &Endpoints, requests: u64) -> Proc {
    let args = [
        "--primary",
        &ep.primary_frontend,
        "--backup",
        &ep.backup_frontend,
        "--requests",
        &requests.to_string(),
        "--interval-ms",
        "10",
        "--timeout-ms",
        &TIMEOUT_MS.to_string(),
        "--settle-ms",
        &SETTLE_MS.to_string(),
        "--vote-ms",
        &VOTE_MS.to_string(),
        "--log-requests",
    ]
    .map(String::from);
    Proc::spawn("client", env!("CARGO_BIN_EXE_bstarcli"), args)
}

#[test]
fn ctrl_c_with_a_request_in_flight_counts_it_failed() {
    let ep = Endpoints::new();
    let (p, b) = settled_pair(&ep);
    let mut c = logging_client(&ep, 1_000_000);
    c.wait_for("server replied OK (3)", WAIT);
    // Both servers hang: the next request fails over and keeps waiting (no --give-up-ms).
    p.stop();
    b.stop();
    c.wait_for("no response from", WAIT);
    let s = c.interrupt_in_flight(WAIT);
    p.cont();
    b.cont();
    assert_eq!(s.failed, 1, "{s}");
    let last = *c.request_lines().last().unwrap();
    assert_eq!(last.seq, s.sent);
    assert!(
        last.tries >= 2,
        "it was resent to the other server: {last:?}"
    );
}

#[test]
fn a_complete_run_logs_one_line_per_request() {
    let ep = Endpoints::new();
    let (_p, _b) = settled_pair(&ep);
    let mut c = logging_client(&ep, 5);
    let status = c.wait_exit(WAIT).expect("bstarcli ends");
    assert!(status.success(), "{:?}", c.lines());
    let s = summary(&mut c, WAIT);
    assert_all_answered(&s, 5);
    let lines = c.request_lines();
    assert_eq!(RequestLine::tally(&lines), s);
    assert_eq!(
        lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
}

#[test]
fn help_documents_log_requests() {
    const NEEDLES: &[&str] = &[
        "--log-requests",
        "I: request",
        "the tour's report reads these",
    ];
    common::testkit::assert_help_mentions(env!("CARGO_BIN_EXE_bstarcli"), NEEDLES);
}
