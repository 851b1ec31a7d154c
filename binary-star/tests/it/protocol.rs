//! The wire rules: a bad state message is logged and ignored; a passive (or lonely backup)
//! server does not answer requests.

use crate::util::*;
use common::testkit::Proc;
use common::{sock, Message};
use std::time::Duration;
use zeromq::{PubSocket, ReqSocket, Socket};

/// Sends one request on a fresh REQ socket; `None` if no reply came within `wait`.
async fn ask(endpoint: &str, body: &str, wait: Duration) -> Option<Message> {
    let mut req = ReqSocket::new();
    sock::connect(&mut req, endpoint, WAIT)
        .await
        .expect("connect");
    sock::send(&mut req, Message::from_frames([body.to_owned()]), WAIT)
        .await
        .expect("send");
    sock::recv(&mut req, wait).await.expect("recv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_state_message_is_logged_and_ignored() {
    let ep = Endpoints::new();
    let peer_pub = ep.backup_pub.clone();
    let mut fake_peer = PubSocket::new();
    sock::bind(&mut fake_peer, &peer_pub).await.unwrap();
    let frontend = ep.primary_frontend.clone();
    let args = server_args("--primary", &frontend, &ep.primary_pub, &peer_pub);
    let mut p = Proc::spawn("primary", bstarsrv(), args);
    p.wait_for("subscribed to the peer state", WAIT);

    let bad: [&[&[u8]]; 5] = [&[b"x"], &[b"7"], &[b"33"], &[b"0"], &[b"3", b"3"]];
    // The subscription may reach our PUB a moment after the connect: repeat until heard.
    let started = std::time::Instant::now();
    while p.count("bad state message") < 10 {
        assert!(started.elapsed() < WAIT, "{:?}", p.lines());
        for frames in bad {
            let message = Message::from_frames(frames.iter().map(|f| f.to_vec()));
            sock::send(&mut fake_peer, message, WAIT).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = p.lines();
    assert!(lines
        .iter()
        .any(|l| l.starts_with("E: bad state message") && l.contains("\"x\"")));
    assert!(lines.iter().any(|l| l.contains("expected 1 frame, got 2")));
    // Ignored: none of it counted as a peer state, nothing changed.
    assert_eq!(p.count("peer is"), 0, "{lines:?}");
    assert_eq!(p.count("I: state "), 0, "{lines:?}");

    // A valid BACKUP from the same peer pairs as usual.
    while p.count("I: state ACTIVE") == 0 {
        assert!(started.elapsed() < 2 * WAIT, "{:?}", p.lines());
        sock::send(&mut fake_peer, Message::from_frames(["2"]), WAIT)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = ask(&frontend, "after garbage", WAIT).await;
    assert_eq!(reply, Some(Message::from_frames(["after garbage"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_the_passive_server_is_not_answered() {
    let ep = Endpoints::new();
    let (_p, mut b) = settled_pair(&ep);
    // Three peer expiries: long enough for any answer to have come.
    let wait = Duration::from_millis(6 * HB_MS);
    assert_eq!(ask(&ep.backup_frontend, "hello", wait).await, None);
    b.wait_for("W: request dropped in state PASSIVE: peer is alive", WAIT);
    assert_eq!(b.count("I: state ACTIVE"), 0);
    // The active primary answers the same request.
    let reply = ask(&ep.primary_frontend, "hello", WAIT).await;
    assert_eq!(reply, Some(Message::from_frames(["hello"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_alone_never_serves() {
    let ep = Endpoints::new();
    let mut b = backup(&ep);
    b.wait_for("peer silent", WAIT);
    let wait = Duration::from_millis(4 * HB_MS);
    assert_eq!(ask(&ep.backup_frontend, "anyone?", wait).await, None);
    b.wait_for("W: request dropped in state BACKUP", WAIT);
    assert_eq!(b.count("I: state "), 0);
}
