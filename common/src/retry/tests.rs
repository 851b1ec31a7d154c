//! The requester core in virtual time: tries, replies, outcomes and the socket it lets the shell
//! keep.

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

/// The transmits as (endpoint, fresh socket?).
fn sockets<S: Schedule>(r: &mut Requester<S>) -> Vec<(usize, bool)> {
    std::iter::from_fn(|| r.poll_transmit())
        .map(|t| (t.endpoint, t.fresh))
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
    r.handle_request(msg("1"), now);
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
    r.handle_request(msg("2"), now);
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
    r.handle_request(msg("1"), now);
    r.handle_reply(msg("world"), now);
    assert!(
        matches!(&events(&mut r)[..], [Event::Answered { reply, .. }] if *reply == msg("world"))
    );
}

#[test]
fn early_timeout_only_waits() {
    let now = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), now);
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
    r.handle_request(msg("4"), t0);
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
    r.handle_request(msg("1"), t0);
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
    r.handle_request(msg("2"), t1);
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
    r.handle_request(msg("1"), t0);
    assert!(matches!(
        &time_out(&mut r, t0 + T)[..],
        [Event::TimedOut { .. }, Event::Abandoned { request, .. }] if *request == msg("1")
    ));
}

#[test]
fn only_one_request_in_flight() {
    let now = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), now);
    events(&mut r);
    r.handle_request(msg("2"), now);
    assert!(matches!(&events(&mut r)[..], [Event::Busy { request }] if *request == msg("2")));
    assert_eq!(r.summary().sent, 1);
}

#[test]
fn interrupt_reports_the_request_in_flight_failed() {
    let now = Instant::now();
    let mut r = requester(3);
    assert_eq!(r.interrupt(), None);
    r.handle_request(msg("1"), now);
    assert_eq!(r.interrupt(), Some(msg("1")));
    let s = r.summary();
    assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1));
}

#[test]
fn wait_out_keeps_a_failed_try_until_its_deadline() {
    let t0 = Instant::now();
    let mut r = requester(2);
    r.handle_request(msg("1"), t0);
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
    r.handle_request(msg("hello 1"), t0);
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
    r.handle_request(msg("1"), t0);
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

#[test]
fn an_answered_try_keeps_its_socket_for_the_next_request() {
    let t0 = Instant::now();
    let mut r = requester(3);
    assert_eq!(r.socket(), None, "no socket before the first request");
    r.handle_request(msg("1"), t0);
    assert_eq!(sockets(&mut r), [(0, true)], "the first try connects");
    assert_eq!(r.socket(), Some(0));
    r.handle_reply(msg("1"), t0 + T / 2);
    events(&mut r);
    assert_eq!(r.socket(), Some(0), "kept after the answer");
    r.handle_request(msg("2"), t0 + T);
    assert_eq!(
        sockets(&mut r),
        [(0, false)],
        "and reused by the next request"
    );
}

#[test]
fn a_timed_out_try_costs_its_socket_and_the_resend_opens_a_fresh_one() {
    let t0 = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), t0);
    sockets(&mut r);
    r.handle_timeout(t0 + T);
    assert!(matches!(
        events(&mut r)[..],
        [Event::TimedOut { .. }, Event::Retrying { attempt: 2, .. }]
    ));
    // The retry goes out at once: on a new socket, not the one a REQ refuses to send on.
    assert_eq!(sockets(&mut r), [(0, true)]);
    assert_eq!(r.socket(), Some(0));
    // Every try used up: no socket is kept for the next request either.
    r.handle_timeout(t0 + T * 2);
    sockets(&mut r);
    r.handle_timeout(t0 + T * 3);
    assert!(matches!(
        events(&mut r)[..],
        [.., Event::Abandoned { tries: 3, .. }]
    ));
    assert_eq!(r.socket(), None);
    r.handle_request(msg("2"), t0 + T * 3);
    assert_eq!(sockets(&mut r), [(0, true)]);
}

#[test]
fn a_failed_socket_is_dropped_at_once_while_its_try_is_waited_out() {
    let t0 = Instant::now();
    let mut r = requester(2);
    r.handle_request(msg("1"), t0);
    sockets(&mut r);
    r.handle_error(TryError::Recv(SockError::Timeout("recv", T)), t0 + T / 10);
    // The shell closes it now (no receiving on a broken socket), though the resend waits.
    assert_eq!(r.socket(), None);
    assert_eq!(r.poll_transmit(), None);
    r.handle_timeout(t0 + T);
    assert_eq!(sockets(&mut r), [(0, true)]);
}

#[test]
fn a_wrong_reply_keeps_the_socket_until_the_try_is_over() {
    let t0 = Instant::now();
    let mut r = requester(2);
    r.handle_request(msg("1"), t0);
    sockets(&mut r);
    r.handle_reply(msg("stale"), t0 + T / 10);
    assert!(matches!(events(&mut r)[..], [Event::Rejected { .. }]));
    // The right reply may still come on it (a DEALER); the try's deadline ends it.
    assert_eq!(r.socket(), Some(0));
    r.handle_timeout(t0 + T);
    assert_eq!(r.socket(), Some(0), "the resend's socket");
    assert_eq!(sockets(&mut r), [(0, true)]);
}

#[test]
fn an_interrupted_request_leaves_no_socket_behind() {
    let t0 = Instant::now();
    let mut r = requester(3);
    r.handle_request(msg("1"), t0);
    r.handle_reply(msg("1"), t0);
    r.handle_request(msg("2"), t0);
    assert_eq!(sockets(&mut r), [(0, true), (0, false)]);
    // Its reply may still arrive on that socket and be taken for the next request's.
    r.interrupt();
    assert_eq!(r.socket(), None);
    r.handle_request(msg("3"), t0);
    assert_eq!(sockets(&mut r), [(0, true)]);
}

#[test]
fn a_socket_to_another_endpoint_is_never_reused() {
    let t0 = Instant::now();
    let mut r = Requester::new(Tries::new(T, 1, 2), ReplyCheck::Any, OnFailure::Next);
    r.handle_request(msg("1"), t0);
    r.handle_error(TryError::Connect(SockError::Timeout("connect", T)), t0);
    r.handle_reply(msg("1"), t0);
    assert_eq!(sockets(&mut r), [(0, true), (1, true)]);
    assert_eq!(r.socket(), Some(1), "server 1 answered");
    // The next request starts again with server 0: its own, fresh socket.
    r.handle_request(msg("2"), t0);
    assert_eq!(sockets(&mut r), [(0, true)]);
}
