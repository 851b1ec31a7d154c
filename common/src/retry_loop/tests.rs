//! The shell against a real ROUTER, on tokio's paused clock.

use super::*;
use crate::retry::{OnFailure, ReplyCheck};
use zeromq::{RouterSocket, ZmqMessage};

const T: Duration = Duration::from_millis(100);

fn msg(s: &str) -> Message {
    Message::from_frames([s.to_owned()])
}

async fn router() -> (RouterSocket, String) {
    let mut socket = RouterSocket::new();
    let at = socket.bind("tcp://127.0.0.1:0").await.unwrap();
    (socket, at.to_string())
}

fn client(endpoint: String, tries: u32) -> RetryClient<ReqSocket> {
    let core = Requester::new(
        Tries::new(T, tries, 1),
        ReplyCheck::Echo,
        OnFailure::WaitOut,
    );
    RetryClient::new(vec![endpoint], core)
}

#[tokio::test(start_paused = true)]
async fn a_silent_try_is_retried_on_a_fresh_socket_after_exactly_the_timeout() {
    let (mut server, endpoint) = router().await;
    let serve = async move {
        // The first try is ignored; the second is answered.
        let first = server.recv().await.unwrap();
        let first_at = contract::now();
        let second = server.recv().await.unwrap();
        let waited = contract::now() - first_at;
        let reply = ZmqMessage::try_from(second.clone().into_vec()).unwrap();
        server.send(reply).await.unwrap();
        (
            first.get(0).cloned(),
            second.get(0).cloned(),
            waited,
            server,
        )
    };
    let mut client = client(endpoint, 3);
    let mut seen = Vec::new();
    let ask = client.request(msg("1"), |e| seen.push(format!("{e:?}")));
    let ((first_peer, second_peer, waited, _server), reply) = tokio::join!(serve, ask);
    assert_eq!(reply.unwrap(), msg("1"));
    assert_eq!(waited, T, "resent exactly one timeout after the first send");
    assert_ne!(
        first_peer, second_peer,
        "the resend comes from a fresh socket"
    );
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].starts_with("TimedOut") && seen[1].starts_with("Retrying"));
    assert!(seen[2].starts_with("Answered"));
    let s = client.core().summary();
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 1, 0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_request_nobody_answers_is_abandoned_after_every_try() {
    let (_server, endpoint) = router().await;
    let mut client = client(endpoint, 3);
    let started = contract::now();
    let mut retries = 0;
    let err = client
        .request(msg("hello"), |e| {
            retries += matches!(e, Event::Retrying { .. }) as u32
        })
        .await
        .expect_err("nobody answers");
    assert_eq!(contract::now() - started, T * 3, "three whole tries");
    assert_eq!((err.tries, retries), (3, 2));
    assert_eq!(err.request, msg("hello"));
    let s = client.core().summary();
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 0, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn answered_requests_keep_their_socket_and_an_interrupted_one_does_not() {
    let (mut server, endpoint) = router().await;
    let echo = async move {
        let mut peers = Vec::new();
        for _ in 0..3 {
            let request = server.recv().await.unwrap();
            peers.push(request.get(0).cloned());
            let reply = ZmqMessage::try_from(request.into_vec()).unwrap();
            server.send(reply).await.unwrap();
        }
        let interrupted = server.recv().await.unwrap();
        peers.push(interrupted.get(0).cloned());
        let request = server.recv().await.unwrap();
        peers.push(request.get(0).cloned());
        let reply = ZmqMessage::try_from(request.into_vec()).unwrap();
        server.send(reply).await.unwrap();
        peers
    };
    let mut client = client(endpoint, 1);
    let ask = async {
        for n in ["1", "2", "3"] {
            assert_eq!(client.request(msg(n), |_| {}).await.unwrap(), msg(n));
        }
        // Dropped mid-flight (Ctrl-C): counted failed, and the next request starts afresh.
        let cancelled = client.request(msg("4"), |_| {});
        let _ = tokio::time::timeout(T / 2, cancelled).await;
        assert_eq!(client.request(msg("5"), |_| {}).await.unwrap(), msg("5"));
    };
    let (peers, ()) = tokio::join!(echo, ask);
    assert!(peers[0] == peers[1] && peers[1] == peers[2] && peers[2] == peers[3]);
    assert_ne!(
        peers[3], peers[4],
        "a fresh socket after the interrupted request"
    );
    let s = client.core().summary();
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (5, 4, 1, 0));
}
