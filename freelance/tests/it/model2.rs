//! Model 2: a DEALER fires each request at every server.

use crate::util::{client, exit_code, nobody, servers, BOUND};
use std::time::{Duration, Instant};

#[test]
fn every_request_is_answered_when_one_of_three_servers_is_killed() {
    let (mut procs, eps) = servers(2, 3);
    let mut c = client(2, &eps, &["--requests", "40", "--interval-ms", "25"]);
    c.wait_for("reply 10:", BOUND);
    procs[0].kill9();
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (40, 40, 0));
    assert_eq!(c.count(&format!("server {} disconnected", eps[0])), 1);
}

#[test]
fn a_restarted_server_rejoins() {
    let (mut procs, eps) = servers(2, 2);
    let mut c = client(
        2,
        &eps,
        &[
            "--requests",
            "100000",
            "--interval-ms",
            "10",
            "--connect-timeout-ms",
            "300",
        ],
    );
    c.wait_for(&format!("connected to {}", eps[0]), BOUND);
    c.wait_for("reply 5:", BOUND);
    procs[0].kill9();
    c.wait_for(&format!("server {} disconnected", eps[0]), BOUND);
    procs[0].restart();
    procs[0].wait_for("ready on", BOUND);
    c.wait_for(&format!("connected to {}", eps[0]), BOUND);
    // Now the other server dies: the rejoined one alone answers from here on.
    procs[1].kill9();
    c.wait_for(&format!("server {} disconnected", eps[1]), BOUND);
    c.mark();
    c.wait_for("reply", BOUND);
    c.wait_for("reply", BOUND);
    let (status, _) = c.interrupt_and_wait(BOUND);
    let s = c.summary().expect("a summary line");
    // Only a request in flight at Ctrl-C may have failed; it then sets the exit code.
    assert!(s.failed <= 1 && s.balanced(), "{s}");
    assert_eq!(status.success(), s.failed == 0, "{s}");
    assert!(s.answered >= 5);
}

#[test]
fn with_every_server_down_the_request_fails_within_the_timeout_and_exits_non_zero() {
    let (_dir, eps) = nobody(3);
    let started = Instant::now();
    let mut c = client(
        2,
        &eps,
        &[
            "--requests",
            "3",
            "--timeout-ms",
            "500",
            "--connect-timeout-ms",
            "300",
        ],
    );
    assert_eq!(exit_code(&mut c, BOUND), 1);
    let elapsed = started.elapsed();
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1));
    assert_eq!(c.count("request 1 FAILED"), 1);
    // 300 ms waiting for servers at start, then the 500 ms request timeout.
    assert!(
        elapsed < Duration::from_millis(3 * 800 + 3000),
        "{elapsed:?}"
    );
}
