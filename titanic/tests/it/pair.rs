//! Titanic on a broker pair (`--broker` twice): stored requests are forwarded through whichever
//! broker is ACTIVE, also while the primary, the first broker named, is down.

use crate::support::{HEARTBEAT_MS, WAIT};
use common::testkit::{bin_path, tcp_endpoint, Proc};
use std::time::Duration;

/// One broker of a pair, ready.
fn broker(role: &str, bind: &str, state_pub: &str, state_sub: &str) -> Proc {
    let mut p = Proc::spawn(
        role,
        bin_path("mdbroker"),
        [
            &format!("--{role}"),
            "--bind",
            bind,
            "--state-pub",
            state_pub,
            "--state-sub",
            state_sub,
            "--heartbeat-ms",
            HEARTBEAT_MS,
            "--pair-heartbeat-ms",
            HEARTBEAT_MS,
        ],
    );
    p.wait_for("mdbroker ready", WAIT);
    p
}

/// The primary killed and the backup ACTIVE (a pair client voted), then titanic and ticlient
/// started with both brokers: the request is stored through the backup, and it must also be
/// forwarded through it. Titanic's service probe used to ask the first broker only, so with the
/// primary down nothing stored was ever forwarded (`service echo not available (no answer from
/// the broker)`, the back-off growing to its maximum).
#[test]
fn titanic_forwards_through_the_backup_while_the_primary_is_down() {
    let [primary, backup, primary_state, backup_state] = [(); 4].map(|_| tcp_endpoint());
    let mut first = broker("primary", &primary, &primary_state, &backup_state);
    let mut second = broker("backup", &backup, &backup_state, &primary_state);
    second.wait_for("I: state PASSIVE", WAIT);
    let pair = ["--broker", &primary, "--broker", &backup];
    let worker_args = [
        &pair[..],
        &["--heartbeat-ms", HEARTBEAT_MS, "--log-executions"],
    ]
    .concat();
    let mut worker = Proc::spawn("mdworker", bin_path("mdworker"), worker_args);
    worker.wait_for("(echo) worker ready", WAIT);
    first.kill9();
    // A pair client's vote makes the backup take over once the primary has expired.
    let vote_args = [&pair[..], &["--requests", "1", "--timeout-ms", "1000"]].concat();
    let mut vote = Proc::spawn("mdclient", bin_path("mdclient"), vote_args);
    assert!(
        vote.wait_exit(WAIT).is_some_and(|s| s.success()),
        "{}",
        vote.lines().join("\n")
    );
    second.wait_for("I: state ACTIVE", WAIT);

    let journal = tempfile::tempdir().unwrap();
    let journal = journal.path().join("journal");
    let titanic_args = [
        &pair[..],
        &[
            "--settle-ms",
            "1000",
            "--journal",
            journal.to_str().unwrap(),
            "--heartbeat-ms",
            HEARTBEAT_MS,
            "--timeout-ms",
            "1000",
            "--retry-ms",
            "100",
            "--retry-max-ms",
            "500",
            "--workers",
            "2",
        ],
    ]
    .concat();
    let mut titanic = Proc::spawn("titanic", env!("CARGO_BIN_EXE_titanic"), titanic_args);
    titanic.wait_for("titanic ready", WAIT);
    let client_args = [
        &pair[..],
        &[
            "--settle-ms",
            "1000",
            "--timeout-ms",
            "1000",
            "--poll-ms",
            "200",
            "--count",
            "2",
            "--verify",
        ],
    ]
    .concat();
    let mut client = Proc::spawn("ticlient", env!("CARGO_BIN_EXE_ticlient"), client_args);
    let status = client.wait_exit(Duration::from_secs(30));
    let out = format!(
        "{}\n--- titanic:\n{}",
        client.lines().join("\n"),
        titanic.lines().join("\n")
    );
    assert!(status.is_some_and(|s| s.success()), "{out}");
    let summary = client.summary().expect("a summary line");
    assert_eq!((summary.answered, summary.failed), (2, 0), "{out}");
    // Each stored request ran once, forwarded under its `titanic-<uuid>` id.
    assert_eq!(worker.count("executed request id=titanic-"), 2, "{out}");
}
