//! Model 1: REQ per attempt, one server after another.

use crate::util::{client, exit_code, nobody, replies_from, servers, BOUND};
use std::time::{Duration, Instant};

#[test]
fn every_request_is_answered_when_the_server_in_use_is_killed() {
    let (mut procs, eps) = servers(1, 3);
    let mut c = client(
        1,
        &eps,
        &[
            "--requests",
            "10",
            "--interval-ms",
            "100",
            "--timeout-ms",
            "500",
        ],
    );
    c.wait_for(&format!("reply 3 from {}:", eps[0]), BOUND);
    procs[0].kill9();
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (10, 10, 0));
    // Later requests still try the dead first server, then get their echo from the second.
    assert!(s.retries >= 1, "{s:?}");
    assert!(c.count(&format!("no response from {}", eps[0])) >= 1);
    assert!(replies_from(&c, &eps[1]) >= 1);
    assert_eq!(c.count("reply 10 from"), 1);
}

#[test]
fn with_every_server_down_the_request_fails_after_one_timeout_each_and_exits_non_zero() {
    let (_dir, eps) = nobody(3);
    let started = Instant::now();
    let mut c = client(1, &eps, &["--requests", "3", "--timeout-ms", "300"]);
    assert_eq!(exit_code(&mut c, BOUND), 1);
    let elapsed = started.elapsed();
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 0, 1, 2));
    assert_eq!(c.count("request 1 FAILED"), 1);
    for ep in &eps {
        assert_eq!(c.count(&format!("no response from {ep}")), 1);
    }
    // Three attempts of 300 ms; allow for a slow start on a busy machine.
    assert!(
        elapsed < Duration::from_millis(3 * 900 + 3000),
        "{elapsed:?}"
    );
}

#[test]
fn a_single_server_is_tried_retries_times() {
    let (_dir, eps) = nobody(1);
    let ep = eps[0].clone();
    let mut c = client(
        1,
        std::slice::from_ref(&ep),
        &["--timeout-ms", "200", "--retries", "3"],
    );
    assert_eq!(exit_code(&mut c, BOUND), 1);
    assert_eq!(c.count(&format!("no response from {ep}")), 3);
    assert_eq!(c.summary().expect("a summary line").retries, 2);
}
