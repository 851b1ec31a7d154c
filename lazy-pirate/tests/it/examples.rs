//! The Guide-sized examples (`examples/`) against the hardened binaries, both ways, with the
//! fault Lazy Pirate exists for: the server dies mid-run and comes back.

use crate::util::{lpclient, lpserver, replies, restart_crashes_until_exit, READY};
use common::example;
use common::testkit::{tcp_endpoint, Proc};
use std::time::Duration;

#[test]
fn example_client_survives_real_server_crashes() {
    let endpoint = tcp_endpoint();
    // Crashes on the 4th request of every run: with 8 requests it is restarted twice.
    let mut server = lpserver(&endpoint, &["--work-ms", "0", "--crash-after", "3"]);
    let mut client = Proc::spawn("lpclient-example", example!("lpclient"), [&endpoint, "8"]);
    let (status, restarts) = restart_crashes_until_exit(&mut client, &mut server);
    assert!(status.success(), "every request answered means exit 0");
    assert_eq!(restarts, 2);
    assert_eq!(replies(&client), (1..=8).collect::<Vec<_>>());
    assert_eq!(client.count("malformed reply"), 0);
    assert!(client.count("W: no response from server, retrying…") >= 2);
}

#[test]
fn real_client_survives_example_server_killed_and_restarted() {
    let endpoint = tcp_endpoint();
    let mut server = Proc::spawn("lpserver-example", example!("lpserver"), [&endpoint, "off"]);
    server.wait_for("lpserver ready on", READY);
    let mut client = lpclient(&endpoint, &["--requests", "5", "--timeout-ms", "2000"]);
    client.wait_for("I: server replied OK (2)", READY);
    server.kill9(); // request 3 is lost with it
    server.restart();
    server.wait_for("lpserver ready on", READY);
    let status = client
        .wait_exit(Duration::from_secs(60))
        .expect("client finishes");
    assert!(
        status.success(),
        "client failed:\n{}",
        client.lines().join("\n")
    );
    assert_eq!(replies(&client), [1, 2, 3, 4, 5]);
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (5, 5, 0));
    assert!(s.retries >= 1, "the kill costs a retry: {s:?}");
}
