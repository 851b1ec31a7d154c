//! The accounting rule (contract 3) and `--log-requests` (contract 2) on `mdclient` and
//! `mdclient2`: Ctrl-C with requests in flight counts them failed, the exit code says so, and the
//! per-request lines add up to the summary line.

use crate::util::{broker, worker, SOON};
use common::report::RequestLine;
use common::testkit::{tcp_endpoint, Proc};
use std::time::Duration;

const EXIT_BOUND: Duration = Duration::from_secs(5);

/// Runs `client` (many requests, no pause, patient timeout) until it has 3 answers, hangs the
/// worker so the requests in flight stay in flight, and interrupts the client.
fn interrupted_mid_run(client: &str, extra: &[&str]) -> (Proc, common::report::Summary) {
    let ep = tcp_endpoint();
    let mut b = broker(&ep, &[]);
    let w = worker("mdworker", &mut b, &ep, &[]);
    let mut args = vec![
        "--broker",
        ep.as_str(),
        "--requests",
        "1000000",
        "--timeout-ms",
        "60000",
        "--log-requests",
    ];
    args.extend_from_slice(extra);
    let program = match client {
        "mdclient" => env!("CARGO_BIN_EXE_mdclient"),
        _ => env!("CARGO_BIN_EXE_mdclient2"),
    };
    let mut c = Proc::spawn(client, program, args);
    c.wait_for("request seq=3 outcome=answered", SOON);
    w.stop();
    let summary = c.interrupt_in_flight(EXIT_BOUND);
    w.cont();
    (c, summary)
}

#[test]
fn mdclient_counts_the_request_in_flight_at_ctrl_c_as_failed() {
    let (c, s) = interrupted_mid_run("mdclient", &["--retries", "1"]);
    assert_eq!(s.failed, 1, "{s}");
    let last = *c.request_lines().last().unwrap();
    assert_eq!((last.seq, last.outcome.as_str()), (s.sent, "failed"));
    c.lines()
        .iter()
        .find(|l| l.contains("replies in") && l.ends_with("requests/s"))
        .expect("a rate line");
}

#[test]
fn mdclient2_counts_every_request_in_flight_at_ctrl_c_as_failed() {
    let (c, s) = interrupted_mid_run("mdclient2", &["--window", "10"]);
    assert!((1..=10).contains(&s.failed), "{s}");
    let failed: Vec<_> = c
        .request_lines()
        .into_iter()
        .filter(|l| l.outcome.as_str() == "failed")
        .collect();
    assert_eq!(failed.len() as u64, s.failed);
    c.lines()
        .iter()
        .find(|l| l.contains("replies in") && l.ends_with("requests/s"))
        .expect("a rate line");
}

#[test]
fn a_complete_run_logs_one_line_per_request_and_its_rate() {
    let ep = tcp_endpoint();
    let mut b = broker(&ep, &[]);
    let _w = worker("mdworker", &mut b, &ep, &[]);
    for (name, program) in [
        ("mdclient", env!("CARGO_BIN_EXE_mdclient")),
        ("mdclient2", env!("CARGO_BIN_EXE_mdclient2")),
    ] {
        let mut c = Proc::spawn(
            name,
            program,
            ["--broker", &ep, "--requests", "20", "--log-requests"],
        );
        let status = c.wait_exit(SOON).expect("the client ends");
        assert!(status.success(), "{name}: {:?}", c.lines());
        let s = c.summary().expect("a summary line");
        let lines = c.request_lines();
        assert_eq!((s.sent, s.answered, s.failed), (20, 20, 0), "{name}");
        assert_eq!(RequestLine::tally(&lines), s, "{name}");
        let mut seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "{name}");
        let rate = c
            .lines()
            .into_iter()
            .find(|l| l.starts_with("I: 20 replies in "))
            .unwrap_or_else(|| panic!("{name}: no rate line"));
        assert!(rate.ends_with("requests/s"), "{rate}");
        let summary_at = c.lines().iter().rposition(|l| l.contains("summary sent="));
        assert_eq!(
            summary_at,
            Some(c.lines().len() - 1),
            "{name}: summary last"
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
    common::testkit::assert_help_mentions(env!("CARGO_BIN_EXE_mdclient"), NEEDLES);
    common::testkit::assert_help_mentions(env!("CARGO_BIN_EXE_mdclient2"), NEEDLES);
}
