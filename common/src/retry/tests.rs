use super::*;

const T: Duration = Duration::from_millis(100);

fn requester(tries: u32) -> Requester {
    Requester::new(
        Tries::new(T, tries, 1),
        ReplyCheck::Echo,
        OnFailure::WaitOut,
    )
}

fn msg(s: &str) -> Message {
    Message::from_frames([s.to_owned()])
}

fn events<S: Schedule>(r: &mut Requester<S>) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn transmits<S: Schedule>(r: &mut Requester<S>) -> Vec<(usize, u32, Instant)> {
    std::iter::from_fn(|| r.poll_transmit())
        .map(|t| (t.endpoint, t.attempt, t.until))
        .collect()
}

/// Times out the current try at `now` and returns the events.
fn time_out(r: &mut Requester, now: Instant) -> Vec<Event> {
    r.handle_timeout(now);
    events(r)
}

#[test]
fn matching_reply_is_accepted_and_counted() {
    let now = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), now).unwrap();
    assert_eq!(transmits(&mut r), [(0, 1, now + T)]);
    assert_eq!(r.poll_timeout(), Some(now + T));
    r.handle_reply(msg("1"), now);
    assert!(
        matches!(&events(&mut r)[..], [Event::Answered { reply, tries: 1, .. }] if *reply == msg("1"))
    );
    assert_eq!(r.in_flight(), None);
    let s = r.summary();
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 1, 0, 0));
}

#[test]
fn wrong_sequence_is_rejected_and_keeps_the_request_in_flight() {
    let now = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("2"), now).unwrap();
    r.handle_reply(msg("1"), now);
    assert!(matches!(&events(&mut r)[..], [Event::Rejected { reply, .. }] if *reply == msg("1")));
    assert_eq!(r.in_flight(), Some(&msg("2")));
    assert_eq!(r.poll_timeout(), Some(now + T));
    r.handle_reply(msg("2"), now);
    assert!(matches!(&events(&mut r)[..], [Event::Answered { reply, .. }] if *reply == msg("2")));
}

#[test]
fn reply_with_nothing_in_flight_is_rejected() {
    let mut r = requester(3);
    r.handle_reply(msg("7"), Instant::now());
    assert!(matches!(&events(&mut r)[..], [Event::Rejected { reply, .. }] if *reply == msg("7")));
    assert_eq!(r.summary().answered, 0);
}

#[test]
fn any_check_accepts_whatever_comes_back() {
    let now = Instant::now();
    let mut r = Requester::new(Tries::new(T, 3, 1), ReplyCheck::Any, OnFailure::WaitOut);
    r.handle_request(msg("1"), now).unwrap();
    r.handle_reply(msg("world"), now);
    assert!(
        matches!(&events(&mut r)[..], [Event::Answered { reply, .. }] if *reply == msg("world"))
    );
}

#[test]
fn early_timeout_only_waits() {
    let now = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), now).unwrap();
    transmits(&mut r);
    assert!(time_out(&mut r, now + T / 2).is_empty());
    assert_eq!(r.poll_timeout(), Some(now + T));
    assert_eq!(r.poll_transmit(), None);
    assert_eq!(r.summary().retries, 0);
}

#[test]
fn retries_then_abandons_after_the_guides_three_tries() {
    let t0 = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("4"), t0).unwrap();
    transmits(&mut r);
    let t1 = t0 + T;
    assert!(matches!(
        &time_out(&mut r, t1)[..],
        [
            Event::TimedOut { endpoint: 0 },
            Event::Retrying {
                attempt: 2,
                from: 0,
                to: 0
            }
        ]
    ));
    assert_eq!(transmits(&mut r), [(0, 2, t1 + T)]);
    let t2 = t1 + T;
    assert!(matches!(
        &time_out(&mut r, t2)[..],
        [Event::TimedOut { .. }, Event::Retrying { attempt: 3, .. }]
    ));
    assert_eq!(transmits(&mut r), [(0, 3, t2 + T)]);
    assert!(matches!(
        &time_out(&mut r, t2 + T)[..],
        [Event::TimedOut { .. }, Event::Abandoned { request, tries: 3 }] if *request == msg("4")
    ));
    assert!(time_out(&mut r, t2 + T * 2).is_empty());
    assert_eq!(r.poll_timeout(), None);
    let s = r.summary();
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 0, 1, 2));
    assert_eq!(s.lost(), 0);
}

#[test]
fn a_reply_to_a_resend_is_accepted_and_the_next_request_starts_fresh() {
    let t0 = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), t0).unwrap();
    assert!(matches!(
        time_out(&mut r, t0 + T)[..],
        [_, Event::Retrying { .. }]
    ));
    r.handle_reply(msg("1"), t0 + T);
    assert!(matches!(
        events(&mut r)[..],
        [Event::Answered { tries: 2, .. }]
    ));
    // The next request gets all three tries again.
    let t1 = t0 + T * 2;
    r.handle_request(msg("2"), t1).unwrap();
    assert!(matches!(
        time_out(&mut r, t1 + T)[..],
        [_, Event::Retrying { attempt: 2, .. }]
    ));
    assert!(matches!(
        time_out(&mut r, t1 + T * 2)[..],
        [_, Event::Retrying { attempt: 3, .. }]
    ));
    assert!(matches!(
        time_out(&mut r, t1 + T * 3)[..],
        [_, Event::Abandoned { .. }]
    ));
    let s = r.summary();
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (2, 1, 1, 3));
}

#[test]
fn one_try_means_no_resend() {
    let t0 = Instant::now();
    let mut r = requester(0); // clamped to one try
    assert_eq!(r.schedule().total(), 1);
    r.handle_request(msg("1"), t0).unwrap();
    assert!(matches!(
        &time_out(&mut r, t0 + T)[..],
        [Event::TimedOut { .. }, Event::Abandoned { request, .. }] if *request == msg("1")
    ));
}

#[test]
fn only_one_request_in_flight() {
    let now = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), now).unwrap();
    assert_eq!(r.handle_request(msg("2"), now), Err(Busy));
    assert_eq!(r.summary().sent, 1);
}

#[test]
fn interrupt_reports_the_request_in_flight_failed() {
    let now = Instant::now();
    let mut r = requester(3);
    assert_eq!(r.interrupt(), None);
    r.handle_request(msg("1"), now).unwrap();
    assert_eq!(r.interrupt(), Some(msg("1")));
    let s = r.summary();
    assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1));
}

#[test]
fn wait_out_keeps_a_failed_try_until_its_deadline() {
    let t0 = Instant::now();
    let mut r = requester(2);
    r.handle_request(msg("1"), t0).unwrap();
    transmits(&mut r);
    let refused = TryError::Recv(SockError::Timeout("recv", T));
    r.handle_error(refused, t0 + T / 10);
    assert!(matches!(
        events(&mut r)[..],
        [Event::Failed { endpoint: 0, .. }]
    ));
    assert_eq!(r.poll_transmit(), None, "no resend before the deadline");
    assert_eq!(r.poll_timeout(), Some(t0 + T));
    // At the deadline: the next try, and no TimedOut on top of the failure.
    assert!(matches!(
        time_out(&mut r, t0 + T)[..],
        [Event::Retrying { attempt: 2, .. }]
    ));
    assert_eq!(transmits(&mut r), [(0, 2, t0 + T * 2)]);
}

#[test]
fn next_at_once_tries_each_server_in_turn() {
    let t0 = Instant::now();
    let mut r = Requester::new(Tries::new(T, 3, 3), ReplyCheck::Echo, OnFailure::Next);
    r.handle_request(msg("hello 1"), t0).unwrap();
    assert_eq!(transmits(&mut r), [(0, 1, t0 + T)]);
    // Server 0 refuses: server 1 at once.
    let t1 = t0 + T / 10;
    r.handle_error(TryError::Connect(SockError::Timeout("connect", T)), t1);
    assert!(matches!(
        events(&mut r)[..],
        [
            Event::Failed { endpoint: 0, .. },
            Event::Retrying {
                attempt: 2,
                from: 0,
                to: 1
            }
        ]
    ));
    assert_eq!(transmits(&mut r), [(1, 2, t1 + T)]);
    // Server 1 answers something else: server 2 at once.
    r.handle_reply(msg("hello 2"), t1);
    assert!(matches!(
        events(&mut r)[..],
        [
            Event::Rejected { endpoint: 1, .. },
            Event::Retrying { to: 2, .. }
        ]
    ));
    assert_eq!(transmits(&mut r), [(2, 3, t1 + T)]);
    r.handle_reply(msg("hello 1"), t1);
    assert!(matches!(
        events(&mut r)[..],
        [Event::Answered {
            endpoint: 2,
            tries: 3,
            switched: true,
            ..
        }]
    ));
}

#[test]
fn one_server_is_tried_three_times_and_several_each_once_in_order() {
    let t0 = Instant::now();
    let plan = |tries, endpoints| {
        let mut s = Tries::new(T, tries, endpoints);
        let first = s.begin(t0);
        std::iter::once(first)
            .chain(std::iter::from_fn(|| s.next(t0)))
            .map(|t| t.endpoint)
            .collect::<Vec<_>>()
    };
    assert_eq!(plan(3, 1), [0, 0, 0]);
    assert_eq!(plan(0, 1), [0], "always at least one try");
    assert_eq!(plan(3, 3), [0, 1, 2]);
    assert_eq!(plan(1, 4), [0, 1, 2, 3]);
}

/// A schedule whose second try waits: the core holds the transmit until then.
struct Later;

impl Schedule for Later {
    fn begin(&mut self, now: Instant) -> Try {
        Try {
            endpoint: 0,
            at: now,
            until: now + T,
        }
    }
    fn next(&mut self, now: Instant) -> Option<Try> {
        let at = now + T * 2;
        Some(Try {
            endpoint: 1,
            at,
            until: at + T,
        })
    }
}

#[test]
fn a_try_scheduled_later_is_sent_at_its_time() {
    let t0 = Instant::now();
    let mut r = Requester::new(Later, ReplyCheck::Any, OnFailure::Next);
    r.handle_request(msg("1"), t0).unwrap();
    transmits(&mut r);
    r.handle_timeout(t0 + T);
    assert!(matches!(
        events(&mut r)[..],
        [_, Event::Retrying { from: 0, to: 1, .. }]
    ));
    assert_eq!(r.poll_transmit(), None);
    assert_eq!(r.poll_timeout(), Some(t0 + T * 3));
    // A reply now is stale: nothing was sent to server 1 yet.
    r.handle_reply(msg("late"), t0 + T * 2);
    assert!(matches!(events(&mut r)[..], [Event::Rejected { .. }]));
    r.handle_timeout(t0 + T * 3);
    assert_eq!(transmits(&mut r), [(1, 2, t0 + T * 4)]);
}

mod shell {
    use super::*;
    use zeromq::{RouterSocket, ZmqMessage};

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
}
