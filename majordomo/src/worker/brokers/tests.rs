//! The worker of a broker pair with virtual time: two brokers made of frames, no sockets.

use super::*;
use crate::protocol;
use crate::worker::tests::options;
use binary_star::{Role, State};
use bytes::Bytes;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const A: usize = 0;
const B: usize = 1;

fn standing(state: State, epoch: u64, role: Role) -> Standing {
    Standing { state, epoch, role }
}

/// The pair before a failover, and the backup after it.
fn primary_active() -> Standing {
    standing(State::Active, 1, Role::Primary)
}
fn backup_passive() -> Standing {
    standing(State::Passive, 1, Role::Backup)
}
fn backup_active() -> Standing {
    standing(State::Active, 2, Role::Backup)
}

fn rid(n: u32) -> Rid {
    Rid::new(format!("r-{n}")).unwrap()
}

impl Brokers {
    fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.poll_transmit()).collect()
    }
    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.poll_event()).collect()
    }
    /// The requests handed to the handler among the events (the rest is dropped).
    fn handed(&mut self) -> Vec<Request> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Request(r) => Some(r),
                _ => None,
            })
            .collect()
    }
}

fn from_broker(command: WorkerCommand) -> Message {
    protocol::for_dealer(command.into_frames())
}

/// A HEARTBEAT with the broker's standing.
fn heartbeat(s: Standing) -> Message {
    from_broker(WorkerCommand::Pair(PairFrames::Standing(s)))
}

/// A REQUEST from client `client` as a paired broker sends it: standing, rid, body.
fn request(client: &str, s: Option<Standing>, rid: Option<&Rid>) -> Message {
    let mut body = Message::from_frames([format!("body of {client}")]);
    if let Some(rid) = rid {
        rid.put(&mut body);
    }
    if let Some(s) = s {
        body.push_front(s.to_frame());
    }
    let client = Message::from_frames([client.to_owned()]);
    from_broker(WorkerCommand::Request { client, body })
}

fn news(k: usize, frames: PairFrames) -> Transmit {
    (k, link::Transmit::Send(WorkerCommand::Pair(frames)))
}

fn reply_cmd(k: usize, client: &str, body: &Message) -> Transmit {
    let client = Message::from_frames([client.to_owned()]);
    let body = body.clone();
    (
        k,
        link::Transmit::Send(WorkerCommand::Reply { client, body }),
    )
}

fn ready(k: usize, ids: bool, pair: bool) -> Transmit {
    let service = Bytes::from_static(b"echo");
    let ready = WorkerCommand::Ready {
        service,
        request_ids: ids,
        pair,
        credit: 1,
    };
    (k, link::Transmit::Send(ready))
}

fn reply_body(n: u32) -> Message {
    Message::from_frames([format!("reply {n}")])
}

/// A worker of a pair, both sessions up at `t0` with READY taken off; `a` and `b` are the
/// standings the brokers show with their first HEARTBEAT (`None`: not yet).
fn pair(t0: Instant, a: Option<Standing>, b: Option<Standing>) -> Brokers {
    let mut w = Brokers::new(2, "echo", options());
    let at_once = link::Transmit::Reconnect {
        after: Duration::ZERO,
    };
    assert_eq!(w.transmits(), [(A, at_once.clone()), (B, at_once)]);
    w.handle_connected(A, t0);
    w.handle_connected(B, t0);
    assert_eq!(
        w.transmits(),
        [ready(A, true, true), ready(B, true, true)],
        "both markers to both brokers, although the options ask for no ids"
    );
    for (k, s) in [(A, a), (B, b)] {
        if let Some(s) = s {
            w.handle_message(k, heartbeat(s), t0);
        }
    }
    assert_eq!(w.transmits(), [], "nothing to announce yet");
    w.events();
    w
}

#[test]
fn one_broker_is_a_plain_worker_without_markers_or_news() {
    let t0 = Instant::now();
    let mut w = Brokers::new(1, "echo", options());
    w.transmits();
    w.handle_connected(A, t0);
    assert_eq!(w.transmits(), [ready(A, false, false)]);
    // A standing sent to a worker that did not ask for one is a mere heartbeat.
    w.handle_message(A, heartbeat(primary_active()), t0);
    assert!(w.events().is_empty());
    assert_eq!(w.link(A).standing(), None);
    // Its bodies are left alone, standing-like first frame and all.
    w.handle_message(A, request("C1", Some(primary_active()), None), t0);
    let [req] = &w.handed()[..] else {
        panic!("one request")
    };
    assert_eq!(req.body.len(), 2, "the frame is the client's");
    assert_eq!(req.rid, None);
    w.handle_reply(req.reply_to.clone(), reply_body(1), t0);
    assert_eq!(w.transmits(), [reply_cmd(A, "C1", &reply_body(1))]);
    // With ids asked for, still no news and nothing kept.
    let mut w = Brokers::new(
        1,
        "echo",
        WorkerOptions {
            request_ids: true,
            ..options()
        },
    );
    w.transmits();
    w.handle_connected(A, t0);
    assert_eq!(w.transmits(), [ready(A, true, false)]);
    w.handle_message(A, request("C1", None, Some(&rid(1))), t0);
    let req = w.handed().pop().unwrap();
    assert_eq!(req.rid, Some(rid(1)));
    w.handle_reply(req.reply_to, reply_body(1), t0);
    assert_eq!(w.transmits(), [reply_cmd(A, "C1", &reply_body(1))]);
    assert!(w.replay.replies.is_empty());
}

#[test]
fn running_and_answered_go_to_the_other_paired_broker_the_reply_to_the_dispatcher() {
    let t0 = Instant::now();
    let mut w = pair(t0, Some(primary_active()), Some(backup_passive()));
    w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
    assert_eq!(w.transmits(), [news(B, PairFrames::Running(rid(1)))]);
    let req = w.handed().pop().expect("handed over");
    assert_eq!(
        req.body,
        Message::from_frames(["body of C1"]),
        "standing and rid off"
    );
    assert_eq!(req.rid, Some(rid(1)));
    assert_eq!(req.reply_to.broker(), A);
    w.handle_reply(req.reply_to, reply_body(1), t0);
    assert_eq!(
        w.transmits(),
        [
            reply_cmd(A, "C1", &reply_body(1)),
            news(B, PairFrames::Answered(rid(1), reply_body(1))),
        ]
    );
    // Without an id there is nothing to tell.
    w.handle_message(A, request("C2", Some(primary_active()), None), t0);
    let req = w.handed().pop().expect("handed over");
    w.handle_reply(req.reply_to, reply_body(2), t0);
    assert_eq!(w.transmits(), [reply_cmd(A, "C2", &reply_body(2))]);
    // A broker whose session is down, or up but without a standing yet, hears nothing.
    w.handle_broker_lost(B, "send timed out".into(), t0);
    let backoff = link::Transmit::Reconnect { after: 1000 * MS };
    assert_eq!(w.transmits(), [(B, backoff)]);
    w.handle_message(A, request("C3", Some(primary_active()), Some(&rid(3))), t0);
    assert_eq!(w.transmits(), []);
    let req = w.handed().pop().expect("handed over");
    w.handle_connected(B, t0 + 1000 * MS);
    assert_eq!(w.transmits(), [ready(B, true, true)]);
    w.handle_reply(req.reply_to, reply_body(3), t0 + 1000 * MS);
    assert_eq!(w.transmits(), [reply_cmd(A, "C3", &reply_body(3))]);
}

#[test]
fn a_request_is_refused_when_a_live_broker_outranks_its_own() {
    let t0 = Instant::now();
    // The backup took over (epoch 2); the primary does not know yet and dispatches.
    let mut w = pair(t0, Some(primary_active()), Some(backup_active()));
    w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
    assert_eq!(
        w.transmits(),
        [news(A, PairFrames::Refused(rid(1), backup_active()))]
    );
    let events = w.events();
    assert!(
        matches!(&events[..], [Event::Refused { broker: A, rid: r, standing: s, senior_broker: B, senior, first: true }]
            if *r == rid(1) && *s == primary_active() && *senior == backup_active()),
        "{events:?}"
    );
    // The same two standings again: refused, reported as not the first.
    w.handle_message(A, request("C2", Some(primary_active()), Some(&rid(2))), t0);
    assert_eq!(
        w.transmits(),
        [news(A, PairFrames::Refused(rid(2), backup_active()))]
    );
    assert!(matches!(
        w.events()[..],
        [Event::Refused { first: false, .. }]
    ));
    // A request without an id is never refused (it is at least once anyway).
    w.handle_message(A, request("C3", Some(primary_active()), None), t0);
    let req = w.handed().pop().expect("served");
    w.handle_reply(req.reply_to, reply_body(3), t0);
    w.transmits();
    // The senior's requests run.
    w.handle_message(B, request("C4", Some(backup_active()), Some(&rid(4))), t0);
    assert_eq!(w.transmits(), [news(A, PairFrames::Running(rid(4)))]);
    let req = w.handed().pop().expect("served");
    w.handle_reply(req.reply_to, reply_body(4), t0);
    w.transmits();
    // A new senior standing is a new first refusal.
    let newer = standing(State::Active, 3, Role::Backup);
    w.handle_message(B, heartbeat(newer), t0);
    w.handle_message(A, request("C5", Some(primary_active()), Some(&rid(5))), t0);
    assert_eq!(w.transmits(), [news(A, PairFrames::Refused(rid(5), newer))]);
    assert!(matches!(
        w.events()[..],
        [
            Event::Standing { broker: B, .. },
            Event::Refused { first: true, .. }
        ]
    ));
    // The senior's session gone, nobody outranks the primary: it is served.
    w.handle_broker_lost(B, "receive failed".into(), t0);
    w.transmits();
    w.handle_message(A, request("C6", Some(primary_active()), Some(&rid(6))), t0);
    assert_eq!(w.transmits(), []);
    assert_eq!(w.handed().pop().unwrap().rid, Some(rid(6)));
}

#[test]
fn a_passive_or_unpaired_broker_fences_nobody_and_a_lone_one_is_never_fenced() {
    let t0 = Instant::now();
    // B passive: A's requests run; B has shown no standing: the same.
    for b in [Some(backup_passive()), None] {
        let mut w = pair(t0, Some(primary_active()), b);
        w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
        assert_eq!(w.handed().pop().unwrap().rid, Some(rid(1)));
    }
    // A broker that shows no standing (a lone broker) cannot be judged: never refused.
    let mut w = pair(t0, None, Some(backup_active()));
    w.handle_message(A, request("C1", None, Some(&rid(1))), t0);
    assert_eq!(w.handed().pop().unwrap().rid, Some(rid(1)));
    assert_eq!(
        w.transmits(),
        [news(B, PairFrames::Running(rid(1)))],
        "the paired one hears it"
    );
}

#[test]
fn a_request_from_the_other_broker_waits_and_starts_with_its_news() {
    let t0 = Instant::now();
    let mut w = pair(t0, Some(primary_active()), Some(backup_passive()));
    w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
    assert_eq!(w.transmits(), [news(B, PairFrames::Running(rid(1)))]);
    let first = w.handed().pop().unwrap();
    // The pair fails over: the backup, now active, dispatches a request to us (it does not
    // know yet that we are busy). It waits; nobody hears of it yet.
    w.handle_message(B, heartbeat(backup_active()), t0 + 10 * MS);
    w.handle_message(
        B,
        request("C2", Some(backup_active()), Some(&rid(2))),
        t0 + 10 * MS,
    );
    assert_eq!(w.transmits(), []);
    assert!(w.handed().is_empty(), "one request at a time");
    // The first one's reply, then its news, then the second starts and A hears of it.
    w.handle_reply(first.reply_to, reply_body(1), t0 + 20 * MS);
    assert_eq!(
        w.transmits(),
        [
            reply_cmd(A, "C1", &reply_body(1)),
            news(B, PairFrames::Answered(rid(1), reply_body(1))),
            news(A, PairFrames::Running(rid(2))),
        ]
    );
    let second = w.handed().pop().unwrap();
    assert_eq!(
        (second.rid.clone(), second.reply_to.broker()),
        (Some(rid(2)), B)
    );
    w.handle_reply(second.reply_to, reply_body(2), t0 + 30 * MS);
    assert_eq!(
        w.transmits(),
        [
            reply_cmd(B, "C2", &reply_body(2)),
            news(A, PairFrames::Answered(rid(2), reply_body(2))),
        ]
    );
}

#[test]
fn a_waiting_request_is_fenced_again_when_its_turn_comes() {
    let t0 = Instant::now();
    let mut w = pair(t0, Some(primary_active()), Some(backup_passive()));
    w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
    w.handle_message(A, request("C2", Some(primary_active()), Some(&rid(2))), t0);
    let first = w.handed().pop().unwrap();
    w.transmits();
    // While the first runs, the backup takes over.
    w.handle_message(B, heartbeat(backup_active()), t0);
    w.handle_reply(first.reply_to, reply_body(1), t0);
    assert_eq!(
        w.transmits(),
        [
            reply_cmd(A, "C1", &reply_body(1)),
            news(B, PairFrames::Answered(rid(1), reply_body(1))),
            news(A, PairFrames::Refused(rid(2), backup_active())),
        ]
    );
    assert!(w.handed().is_empty());
}

#[test]
fn the_reply_of_a_request_whose_broker_is_gone_reaches_the_other_broker() {
    let t0 = Instant::now();
    let mut w = pair(t0, Some(primary_active()), Some(backup_passive()));
    w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
    w.handle_message(A, request("C2", Some(primary_active()), Some(&rid(2))), t0);
    let first = w.handed().pop().unwrap();
    w.transmits();
    // The primary dies (silent for liveness × heartbeat) while its request runs.
    w.handle_message(B, heartbeat(backup_passive()), t0 + 2000 * MS);
    w.handle_timeout(t0 + 3000 * MS);
    let tx = w.transmits();
    assert!(
        tx.contains(&(A, link::Transmit::Reconnect { after: 1000 * MS })),
        "{tx:?}"
    );
    let events = w.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::StaleRequest(A))),
        "the waiting request of the lost session is dropped: {events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Request(_))));
    // Its reply has no session to go to, but the other broker (about to take over) gets it.
    w.handle_reply(first.reply_to, reply_body(1), t0 + 3100 * MS);
    assert_eq!(
        w.transmits(),
        [news(B, PairFrames::Answered(rid(1), reply_body(1)))]
    );
    assert!(matches!(
        w.events()[..],
        [Event::Link(A, link::Event::StaleReply)]
    ));
}

#[test]
fn a_broker_in_a_new_session_hears_the_running_request_and_the_last_replies() {
    let t0 = Instant::now();
    let mut w = pair(t0, Some(primary_active()), Some(backup_passive()));
    for n in 1..=2 {
        w.handle_message(A, request("C", Some(primary_active()), Some(&rid(n))), t0);
        let req = w.handed().pop().unwrap();
        w.handle_reply(req.reply_to, reply_body(n), t0);
    }
    w.handle_message(A, request("C", Some(primary_active()), Some(&rid(3))), t0);
    let running = w.handed().pop().unwrap();
    w.transmits();
    // The backup restarts: its session is renewed.
    w.handle_message(B, from_broker(WorkerCommand::Disconnect), t0);
    w.handle_connected(B, t0 + 5 * MS);
    assert_eq!(
        w.transmits(),
        [
            (
                B,
                link::Transmit::Reconnect {
                    after: Duration::ZERO
                }
            ),
            ready(B, true, true),
        ],
        "nothing before the broker shows its standing"
    );
    w.handle_message(B, heartbeat(backup_passive()), t0 + 10 * MS);
    assert_eq!(
        w.transmits(),
        [
            news(B, PairFrames::Running(rid(3))),
            news(B, PairFrames::Answered(rid(1), reply_body(1))),
            news(B, PairFrames::Answered(rid(2), reply_body(2))),
        ]
    );
    // Once per session.
    w.handle_message(B, heartbeat(backup_passive()), t0 + 20 * MS);
    let changed = standing(State::Passive, 2, Role::Backup);
    w.handle_message(B, heartbeat(changed), t0 + 30 * MS);
    assert_eq!(w.transmits(), []);
    // The dispatcher's own session renewed: it hears of its old request too (a restarted
    // broker learns it runs), and its reply comes as news to both.
    w.handle_message(A, from_broker(WorkerCommand::Disconnect), t0 + 40 * MS);
    w.handle_connected(A, t0 + 45 * MS);
    w.transmits();
    w.handle_message(
        A,
        request("D", Some(primary_active()), Some(&rid(9))),
        t0 + 50 * MS,
    );
    let tx = w.transmits();
    assert_eq!(tx[0], news(A, PairFrames::Running(rid(3))), "{tx:?}");
    assert_eq!(tx.len(), 3, "Running and two replies: {tx:?}");
    w.handle_reply(running.reply_to, reply_body(3), t0 + 60 * MS);
    let tx = w.transmits();
    assert_eq!(
        tx[..2],
        [
            news(A, PairFrames::Answered(rid(3), reply_body(3))),
            news(B, PairFrames::Answered(rid(3), reply_body(3))),
        ]
    );
}

#[test]
fn the_replay_keeps_the_last_replies_within_its_count_and_bytes() {
    let mut replay = Replay::default();
    for n in 0..(pair::REPLAY as u32 + 5) {
        replay.push(&rid(n), &reply_body(n));
    }
    assert_eq!(replay.replies.len(), pair::REPLAY);
    assert_eq!(replay.replies.front().unwrap().0, rid(5), "the oldest went");
    let big = |n: usize| Message::from_frames([vec![b'x'; n]]);
    replay.push(&rid(1000), &big(REPLAY_BYTES));
    assert_eq!(
        replay.replies.back().unwrap().0,
        rid(pair::REPLAY as u32 + 4)
    );
    // Bodies that fill the budget push out the oldest until they fit.
    for n in 0..3 {
        replay.push(&rid(2000 + n), &big(REPLAY_BYTES / 3));
    }
    assert!(replay.bytes <= REPLAY_BYTES, "{}", replay.bytes);
    assert_eq!(replay.replies.front().unwrap().0, rid(2001));
    assert_eq!(replay.replies.len(), 2);
    // The copies own their bytes: a slice of a large buffer does not keep it alive.
    let buffer = Bytes::from(vec![b'y'; 4096]);
    replay.push(&rid(3000), &Message::from_frames([buffer.slice(0..4)]));
    let kept = &replay.replies.back().unwrap().1;
    assert_eq!(kept.first().unwrap().len(), 4);
    assert!(!std::ptr::eq(
        kept.first().unwrap().as_ptr(),
        buffer.as_ptr()
    ));
}

#[test]
fn a_request_the_handle_never_got_lets_the_next_start_and_a_second_reply_is_dropped() {
    let t0 = Instant::now();
    let mut w = pair(t0, Some(primary_active()), Some(backup_passive()));
    w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
    w.handle_message(A, request("C2", Some(primary_active()), Some(&rid(2))), t0);
    let first = w.handed().pop().unwrap();
    w.transmits();
    w.handle_dropped(&first.reply_to, t0);
    assert_eq!(w.transmits(), [news(B, PairFrames::Running(rid(2)))]);
    let second = w.handed().pop().unwrap();
    // A reply for the request the handle never got, then the second's twice: one goes out.
    w.handle_reply(first.reply_to, reply_body(1), t0);
    w.handle_reply(second.reply_to.clone(), reply_body(2), t0);
    w.handle_reply(second.reply_to, reply_body(2), t0);
    assert_eq!(
        w.transmits(),
        [
            reply_cmd(A, "C2", &reply_body(2)),
            news(B, PairFrames::Answered(rid(2), reply_body(2))),
        ]
    );
    let events = w.events();
    assert!(
        matches!(events[..], [Event::UnknownReply(A), Event::UnknownReply(A)]),
        "{events:?}"
    );
}

#[test]
fn waiting_requests_are_bounded() {
    let t0 = Instant::now();
    let mut w = pair(t0, None, None);
    for n in 0..=(WAITING as u32 + 1) {
        w.handle_message(A, request("C", None, Some(&rid(n))), t0);
    }
    let events = w.events();
    let handed = events
        .iter()
        .filter(|e| matches!(e, Event::Request(_)))
        .count();
    let dropped = events
        .iter()
        .filter(|e| matches!(e, Event::Overflow(A)))
        .count();
    assert_eq!((handed, dropped), (1, 1), "one runs, {WAITING} wait");
}

#[test]
fn stop_says_disconnect_to_every_broker_with_a_session() {
    let t0 = Instant::now();
    let mut w = pair(t0, Some(primary_active()), Some(backup_passive()));
    w.handle_broker_lost(B, "gone".into(), t0);
    w.transmits();
    w.handle_message(A, request("C1", Some(primary_active()), Some(&rid(1))), t0);
    let req = w.handed().pop().unwrap();
    w.handle_shutdown(t0);
    assert!(w.is_stopped());
    assert_eq!(
        w.transmits(),
        [
            (A, link::Transmit::Send(WorkerCommand::Disconnect)),
            (A, link::Transmit::Close),
        ]
    );
    // A reply after the stop goes nowhere.
    w.handle_reply(req.reply_to, reply_body(1), t0);
    assert_eq!(w.transmits(), []);
    assert_eq!(w.poll_timeout(), None);
}

mod with_the_pair_brokers;

// ---- Credit (crate::credit): several requests in hand ----

fn with_credit(credit: u32) -> WorkerOptions {
    WorkerOptions {
        credit,
        ..options()
    }
}

fn ready_credit(k: usize, pair: bool, credit: u32) -> Transmit {
    let ready = WorkerCommand::Ready {
        service: Bytes::from_static(b"echo"),
        request_ids: true,
        pair,
        credit,
    };
    (k, link::Transmit::Send(ready))
}

/// A REPLY as a worker with credit sends it: the request's rid frame in front.
fn named_reply(k: usize, client: &str, n: u32, body: &Message) -> Transmit {
    let mut body = body.clone();
    rid(n).put(&mut body);
    reply_cmd(k, client, &body)
}

#[test]
fn with_credit_up_to_that_many_are_in_hand_and_replies_name_their_requests() {
    let t0 = Instant::now();
    let mut w = Brokers::new(1, "echo", with_credit(3));
    w.transmits();
    w.handle_connected(A, t0);
    assert_eq!(
        w.transmits(),
        [ready_credit(A, false, 3)],
        "credit asks for ids"
    );
    for n in 1..=4 {
        w.handle_message(A, request(&format!("C{n}"), None, Some(&rid(n))), t0);
    }
    let mut handed = w.handed();
    assert_eq!(handed.len(), 3, "never more than the credit in hand");
    assert_eq!(w.in_hand(), 3);
    // Answered out of order: each reply carries its own rid; the fourth starts.
    let second = handed.remove(1);
    w.handle_reply(second.reply_to, reply_body(2), t0);
    assert_eq!(w.transmits(), [named_reply(A, "C2", 2, &reply_body(2))]);
    let fourth = w.handed().pop().expect("room for the fourth");
    assert_eq!(fourth.rid, Some(rid(4)));
    for (req, n) in handed.into_iter().zip([1, 3]).rev() {
        w.handle_reply(req.reply_to, reply_body(n), t0);
        assert_eq!(
            w.transmits(),
            [named_reply(A, &format!("C{n}"), n, &reply_body(n))]
        );
    }
    assert_eq!(w.in_hand(), 1);
    // A request without an id (from a client without ids) is answered without a rid frame.
    w.handle_message(A, request("C5", None, None), t0);
    let plain = w.handed().pop().unwrap();
    w.handle_reply(plain.reply_to, reply_body(5), t0);
    assert_eq!(w.transmits(), [reply_cmd(A, "C5", &reply_body(5))]);
}

#[test]
fn a_pair_worker_with_credit_tells_the_other_broker_each_request_it_runs() {
    let t0 = Instant::now();
    let mut w = Brokers::new(2, "echo", with_credit(2));
    w.transmits();
    w.handle_connected(A, t0);
    w.handle_connected(B, t0);
    assert_eq!(
        w.transmits(),
        [ready_credit(A, true, 2), ready_credit(B, true, 2)]
    );
    w.handle_message(A, heartbeat(primary_active()), t0);
    w.handle_message(B, heartbeat(backup_passive()), t0);
    w.events();
    for n in 1..=3 {
        w.handle_message(A, request("C", Some(primary_active()), Some(&rid(n))), t0);
    }
    assert_eq!(
        w.transmits(),
        [
            news(B, PairFrames::Running(rid(1))),
            news(B, PairFrames::Running(rid(2))),
        ],
        "two start, the third waits"
    );
    let mut handed = w.handed();
    assert_eq!(handed.len(), 2);
    // The backup restarts: it hears both running requests again.
    w.handle_message(B, from_broker(WorkerCommand::Disconnect), t0);
    w.handle_connected(B, t0);
    w.transmits();
    w.handle_message(B, heartbeat(backup_passive()), t0);
    assert_eq!(
        w.transmits(),
        [
            news(B, PairFrames::Running(rid(1))),
            news(B, PairFrames::Running(rid(2))),
        ]
    );
    // The second answers first: its reply and news go out, then the third starts.
    let second = handed.pop().unwrap();
    w.handle_reply(second.reply_to, reply_body(2), t0);
    assert_eq!(
        w.transmits(),
        [
            named_reply(A, "C", 2, &reply_body(2)),
            news(B, PairFrames::Answered(rid(2), reply_body(2))),
            news(B, PairFrames::Running(rid(3))),
        ]
    );
}
