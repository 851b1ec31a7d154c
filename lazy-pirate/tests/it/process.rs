//! The must-show behaviour: a crashing server is abandoned; a restarted one is reached again.

use crate::util::{lpclient, lpserver, replies, restart_crashes_until_exit, READY};
use common::testkit::tcp_endpoint;
use std::time::Duration;

#[test]
fn client_abandons_a_crashed_server_and_exits_non_zero() {
    let endpoint = tcp_endpoint();
    let mut server = lpserver(&endpoint, &["--work-ms", "0", "--crash-after", "3"]);
    let mut client = lpclient(
        &endpoint,
        &["--requests", "10", "--timeout-ms", "500", "--retries", "3"],
    );
    let status = client
        .wait_exit(Duration::from_secs(30))
        .expect("client gives up by itself");
    assert!(!status.success(), "abandoning must exit non-zero");
    client.wait_for("E: server seems to be offline, abandoning", READY);
    assert_eq!(client.count("W: no response from server, retrying"), 2);
    assert_eq!(client.count("W: reconnecting to server"), 2);
    assert_eq!(replies(&client), [1, 2, 3]);
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (4, 3, 1, 2));
    server.wait_for("W: simulating a crash", READY);
    let code = server.wait_exit(READY).expect("crashed server exits");
    assert_eq!(code.code(), Some(2));
}

#[test]
fn client_finishes_every_request_across_server_restarts() {
    let endpoint = tcp_endpoint();
    // Crashes on the 4th request of every run: with 8 requests the server restarts twice.
    let mut server = lpserver(&endpoint, &["--work-ms", "0", "--crash-after", "3"]);
    let mut client = lpclient(
        &endpoint,
        &["--requests", "8", "--timeout-ms", "1000", "--retries", "3"],
    );
    let (status, restarts) = restart_crashes_until_exit(&mut client, &mut server);
    assert!(status.success(), "every request answered means exit 0");
    assert_eq!(restarts, 2);
    assert_eq!(replies(&client), (1..=8).collect::<Vec<_>>());
    assert_eq!(client.count("malformed reply"), 0);
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (8, 8, 0));
    assert!(s.retries >= 2, "each crash costs at least one retry: {s:?}");
}
