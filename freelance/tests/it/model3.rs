//! Model 3: ROUTER to ROUTER (10/FLP), pings, failover, reconnection.

use crate::util::{client, exit_code, nobody, replies_from, servers, BOUND};
use std::time::{Duration, Instant};

#[test]
fn every_request_is_answered_when_the_server_in_use_is_killed() {
    let (mut procs, eps) = servers(3, 3);
    let mut c = client(3, &eps, &["--requests", "40", "--interval-ms", "25"]);
    c.wait_for(&format!("reply 10 from {}:", eps[0]), BOUND);
    procs[0].kill9();
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (40, 40, 0));
    assert_eq!(c.count(&format!("server {} dead", eps[0])), 1);
    // The next server in order took over.
    assert!(c.count(&format!("reply 40 from {}:", eps[1])) == 1);
}

/// The reference client's defect: the server in use hangs (no disconnect to notice), its TTL
/// is longer than the request timeout, and the reference gave up with two servers alive.
#[test]
fn a_request_to_a_hung_server_fails_over_inside_the_global_timeout() {
    let (procs, eps) = servers(3, 3);
    let mut c = client(
        3,
        &eps,
        &[
            "--requests",
            "30",
            "--interval-ms",
            "20",
            "--attempt-timeout-ms",
            "300",
        ],
    );
    c.wait_for(&format!("reply 5 from {}:", eps[0]), BOUND);
    procs[0].stop();
    let line = c.wait_for("failover: request", BOUND);
    assert!(
        line.contains(&format!("from {} to {}", eps[0], eps[1])),
        "{line}"
    );
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (30, 30, 0));
    assert!(s.retries >= 1);
    assert_eq!(
        c.count(&format!("server {} dead (no reply to request", eps[0])),
        1
    );
    procs[0].cont();
}

#[test]
fn with_every_server_down_the_request_fails_at_the_global_timeout_and_exits_non_zero() {
    let (_dir, eps) = nobody(3);
    let started = Instant::now();
    let mut c = client(3, &eps, &["--requests", "3", "--timeout-ms", "1000"]);
    assert_eq!(exit_code(&mut c, BOUND), 1);
    let elapsed = started.elapsed();
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1));
    assert_eq!(
        c.count("request 1 FAILED: no server answered within 1000 ms"),
        1
    );
    assert!(elapsed >= Duration::from_millis(1000), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(3 * 1000 + 3000),
        "{elapsed:?}"
    );
}

#[test]
fn when_every_server_is_killed_mid_run_the_client_reports_failure_within_its_timeout() {
    let (mut procs, eps) = servers(3, 3);
    let mut c = client(
        3,
        &eps,
        &[
            "--requests",
            "100000",
            "--interval-ms",
            "20",
            "--timeout-ms",
            "1000",
        ],
    );
    c.wait_for("reply 5 from", BOUND);
    for p in &mut procs {
        p.kill9();
    }
    let killed = Instant::now();
    assert_eq!(exit_code(&mut c, BOUND), 1);
    let elapsed = killed.elapsed();
    let s = c.summary().expect("a summary line");
    assert_eq!(s.failed, 1);
    assert!(s.answered >= 5);
    assert_eq!(s.lost(), 0);
    assert!(
        elapsed < Duration::from_millis(3 * 1000 + 3000),
        "{elapsed:?}"
    );
}

#[test]
fn a_restarted_server_is_used_again_after_its_first_pong() {
    let (mut procs, eps) = servers(3, 2);
    let (a, b) = (&eps[0], &eps[1]);
    let mut c = client(
        3,
        &eps,
        &[
            "--requests",
            "100000",
            "--interval-ms",
            "20",
            "--connect-timeout-ms",
            "300",
        ],
    );
    c.wait_for(&format!("reply 3 from {a}:"), BOUND);
    procs[0].kill9();
    c.wait_for(&format!("server {a} dead"), BOUND);
    c.wait_for(&format!("from {b}:"), BOUND);
    procs[0].restart();
    procs[0].wait_for("ready on", BOUND);
    c.wait_for(&format!("connected to {a}"), BOUND);
    c.wait_for(&format!("server {a} alive"), BOUND);
    // From its first PONG on, the preferred server gets the requests again.
    c.wait_for(&format!("from {a}:"), BOUND);
    c.mark();
    c.wait_for(&format!("from {a}:"), BOUND);
    let (status, _) = c.interrupt_and_wait(BOUND);
    let s = c.summary().expect("a summary line");
    // Only a request in flight at Ctrl-C may have failed; it then sets the exit code.
    assert!(s.failed <= 1 && s.balanced(), "{s}");
    assert_eq!(status.success(), s.failed == 0, "{s}");
    assert!(replies_from(&c, b) >= 1);
    assert!(c.count("W: interrupted") == 1);
}
