//! The library API in-process: `LazyPirateClient::request` against an in-process REP server.

use common::fault::FaultPlan;
use common::Message;
use lazy_pirate::server_loop::{serve, SEND_TIMEOUT};
use lazy_pirate::{EchoCore, LazyPirateClient, ReplyCheck, RetryPolicy};
use std::time::{Duration, Instant};

fn policy(timeout_ms: u64, retries: u32) -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_millis(timeout_ms),
        retries,
        check: ReplyCheck::Echo,
    }
}

#[tokio::test]
async fn request_to_nobody_is_abandoned_after_every_try() {
    let endpoint = common::testkit::tcp_endpoint();
    let mut client = LazyPirateClient::new(endpoint, policy(150, 2));
    let started = Instant::now();
    let err = client
        .request(Message::from_frames(["hello"]))
        .await
        .expect_err("nobody answers");
    assert_eq!(err.tries, 2);
    assert_eq!(err.request, Message::from_frames(["hello"]));
    assert!(started.elapsed() >= Duration::from_millis(300));
    let s = client.summary();
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 0, 1, 1));
}

#[tokio::test]
async fn requests_are_answered_by_the_echo_server() {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Port 0 would be simpler, but serve() logs rather than returns its endpoint.
    let endpoint = common::testkit::tcp_endpoint();
    let server = tokio::spawn({
        let endpoint = endpoint.clone();
        async move {
            let core = EchoCore::new(FaultPlan::none(), Duration::ZERO);
            serve(&endpoint, core, SEND_TIMEOUT, async {
                let _ = stop_rx.await;
            })
            .await
        }
    });
    let mut client = LazyPirateClient::new(endpoint, policy(5000, 3));
    for n in 1..=20 {
        let body = Message::from_frames([format!("{n}"), "two frames".into()]);
        let reply = client.request(body.clone()).await.expect("answered");
        assert_eq!(reply, body);
    }
    let s = client.summary();
    assert_eq!((s.sent, s.answered, s.failed), (20, 20, 0));
    stop_tx.send(()).unwrap();
    server.await.unwrap().expect("server started");
}
