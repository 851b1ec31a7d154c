//! Worker credit ([`crate::credit`]) in the broker core, with virtual time.

use super::*;
use crate::credit::Limit;
use crate::pair::{PairFrames, Standing};
use binary_star::Role;

/// READY asking for `credit`, with the rid marker if `ids`, the pair marker if `pair`.
fn ready_credit(id: &str, credit: u32, ids: bool, pair: bool) -> Message {
    from_worker(
        id,
        WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: ids,
            pair,
            credit,
        },
    )
}

/// The tests' config with room for many waiting requests.
fn roomy() -> BrokerConfig {
    BrokerConfig {
        max_queue_bytes: 1 << 20,
        ..config()
    }
}

fn rid(n: u32) -> Rid {
    Rid::new(format!("c-{n}")).unwrap()
}

/// A credit worker's REPLY: the rid frame of request `n` (if any) in front of `body`.
fn reply_rid(worker: &str, client: &str, n: Option<u32>, body: &str) -> Message {
    let mut body = Message::from_frames([body.to_owned()]);
    if let Some(n) = n {
        rid(n).put(&mut body);
    }
    from_worker(
        worker,
        WorkerCommand::Reply {
            client: Message::from_frames([client.to_owned()]),
            body,
        },
    )
}

/// (worker, rid text or "-", body) of each REQUEST sent to a worker, in order.
fn sent(out: &[Message]) -> Vec<(String, String, String)> {
    out.iter()
        .filter(|m| m.get(2).is_some_and(|h| &h[..] == b"MDPW01"))
        .filter_map(|m| match to_worker(m.clone()) {
            (worker, WorkerCommand::Request { mut body, .. }) => {
                Standing::take(&mut body); // a paired broker's standing first
                let rid = Rid::take(&mut body).map_or("-".to_owned(), |r| r.to_string());
                Some((worker, rid, text(body.iter().last().unwrap())))
            }
            _ => None,
        })
        .collect()
}

/// The in-flight count and credit `mmi.workers` shows for each worker, by shown id.
fn in_flight(b: &mut Broker, now: Instant) -> Vec<(String, u64, u64, bool)> {
    WorkerRow::parse_all(&mmi(b, "mmi.workers", &[], now))
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.in_flight, r.credit, r.busy))
        .collect()
}

#[test]
fn a_worker_gets_up_to_its_credit_and_never_more() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 3, true, false), t0);
    for n in 1..=5 {
        b.handle_message(request_id("C1", "echo", n, &format!("{n}")), t0);
    }
    let out = drain(&mut b);
    let bodies: Vec<String> = sent(&out).into_iter().map(|(_, _, body)| body).collect();
    assert_eq!(bodies, ["1", "2", "3"], "three out, two wait");
    assert_eq!(in_flight(&mut b, t0), [("W1".to_owned(), 3, 3, true)]);
    let rows = ServiceRow::parse_all(&mmi(&mut b, "mmi.services", &[], t0)).unwrap();
    assert_eq!((rows[0].idle, rows[0].busy, rows[0].waiting), (0, 1, 2));
    // Each reply makes room for one more, never more than three out.
    b.handle_message(reply_rid("W1", "C1", Some(2), "r2"), t0);
    let out = drain(&mut b);
    assert_eq!(clients_answered(out.clone()), ["C1"]);
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(in_flight(&mut b, t0)[0].1, 3);
}

#[test]
fn replies_in_any_order_reach_their_own_clients_with_their_own_ids() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 4, true, false), t0);
    b.handle_message(request_id("C1", "echo", 1, "a"), t0);
    b.handle_message(request_id("C2", "echo", 2, "b"), t0);
    b.handle_message(request_id("C3", "echo", 3, "c"), t0);
    assert_eq!(sent(&drain(&mut b)).len(), 3);
    for (client, n) in [("C3", 3), ("C1", 1), ("C2", 2)] {
        b.handle_message(reply_rid("W1", client, Some(n), &format!("r{n}")), t0);
        let out = drain(&mut b);
        assert_eq!(out.len(), 1);
        let (peer, _, mut body) = to_client(out[0].clone());
        assert_eq!(peer, client);
        assert_eq!(Rid::take(&mut body), Some(rid(n)), "the client's id back");
        assert_eq!(body, Message::from_frames([format!("r{n}")]));
    }
    assert_eq!(in_flight(&mut b, t0), [("W1".to_owned(), 0, 4, false)]);
    assert_eq!(b.stats().replies, 3);
    // A reply naming no request out at the worker: DISCONNECT, as any reply out of turn.
    b.handle_message(request_id("C1", "echo", 4, "d"), t0);
    drain(&mut b);
    b.handle_message(reply_rid("W1", "C1", Some(9), "?"), t0);
    assert_eq!(
        drain(&mut b),
        vec![frames([b"W1", b"", b"MDPW01", &[5]])],
        "DISCONNECT"
    );
}

#[test]
fn credit_is_bounded_and_needs_request_ids() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 8, false, false), t0);
    b.handle_message(ready_credit("W2", 5000, true, false), t0);
    b.handle_message(ready_credit("W3", 0, true, false), t0);
    let limits: Vec<Event> = events(&mut b)
        .into_iter()
        .filter(|e| matches!(e, Event::CreditLimited { .. }))
        .collect();
    assert_eq!(
        limits,
        [
            Event::CreditLimited {
                id: id("W1"),
                asked: 8,
                granted: 1,
                why: Limit::NoRequestIds
            },
            Event::CreditLimited {
                id: id("W2"),
                asked: 5000,
                granted: crate::credit::MAX,
                why: Limit::Max
            },
            Event::CreditLimited {
                id: id("W3"),
                asked: 0,
                granted: 1,
                why: Limit::Zero
            },
        ]
    );
    let credits: Vec<u64> = in_flight(&mut b, t0).iter().map(|r| r.2).collect();
    assert_eq!(credits, [1, u64::from(crate::credit::MAX), 1]);
    // W1 (credit 1, no ids) is the Guide's worker: its reply body is left alone.
    b.handle_message(request_id("C1", "echo", 1, "x"), t0);
    let out = drain(&mut b);
    assert_eq!(sent(&out)[0].0, "W1");
    b.handle_message(reply_rid("W1", "C1", None, "plain"), t0);
    let (_, _, body) = to_client(drain(&mut b).remove(0));
    assert_eq!(body, frames([b"\0MDPRID1:c-1", b"plain"]));
}

#[test]
fn requests_spread_over_workers_with_credit_in_turn() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 2, true, false), t0);
    b.handle_message(ready_credit("W2", 2, true, false), t0);
    b.handle_message(ready("W3", "echo"), t0);
    for n in 1..=6 {
        b.handle_message(request_id("C1", "echo", n, &n.to_string()), t0);
    }
    let workers: Vec<String> = sent(&drain(&mut b)).into_iter().map(|s| s.0).collect();
    assert_eq!(
        workers,
        ["W1", "W2", "W3", "W1", "W2"],
        "in turn, up to each credit"
    );
    let rows = ServiceRow::parse_all(&mmi(&mut b, "mmi.services", &[], t0)).unwrap();
    assert_eq!((rows[0].idle, rows[0].busy, rows[0].waiting), (0, 3, 1));
}

#[test]
fn clients_are_served_in_turn_through_a_worker_with_credit() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    // A flooding client first, then a light one; the worker comes later with credit 4: the
    // light client's request is the second out, not the eleventh.
    for n in 1..=10 {
        b.handle_message(request_id("Flood", "echo", n, &format!("f{n}")), t0);
    }
    b.handle_message(request_id("Light", "echo", 100, "l"), t0);
    b.handle_message(ready_credit("W1", 4, true, false), t0);
    let bodies: Vec<String> = sent(&drain(&mut b)).into_iter().map(|s| s.2).collect();
    assert_eq!(bodies, ["f1", "l", "f2", "f3"]);
}

#[test]
fn requests_without_an_id_go_one_at_a_time_to_a_worker_with_credit() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 4, true, false), t0);
    b.handle_message(request("A", "echo", &["a1"]), t0);
    b.handle_message(request("A", "echo", &["a2"]), t0);
    b.handle_message(request_id("B", "echo", 1, "b1"), t0);
    // a1 goes; a2 cannot (its reply could not be told from a1's) and keeps A's turn, so b1
    // waits behind it: a client's requests keep their order across the turn.
    let out = sent(&drain(&mut b));
    assert_eq!(out, [("W1".to_owned(), "-".to_owned(), "a1".to_owned())]);
    // A second worker with credit takes a2, then b1.
    b.handle_message(ready_credit("W2", 4, true, false), t0);
    let out = sent(&drain(&mut b));
    let got: Vec<(&str, &str)> = out.iter().map(|s| (s.0.as_str(), s.2.as_str())).collect();
    assert_eq!(got, [("W2", "a2"), ("W1", "b1")]);
    // The reply without a rid frame answers W1's one request without an id.
    b.handle_message(reply_rid("W1", "A", None, "ra1"), t0);
    let out = drain(&mut b);
    assert_eq!(clients_answered(out), ["A"]);
    assert_eq!(in_flight(&mut b, t0)[0].1, 1, "b1 still out at W1");
    b.handle_message(reply_rid("W1", "B", Some(1), "rb1"), t0);
    let (peer, _, mut body) = to_client(drain(&mut b).remove(0));
    assert_eq!(peer, "B");
    assert_eq!(Rid::take(&mut body), Some(rid(1)));
}

#[test]
fn a_worker_that_leaves_hands_every_request_back_and_retries_join_them() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 4, true, false), t0);
    for n in 1..=3 {
        b.handle_message(request_id("C1", "echo", n, &n.to_string()), t0);
    }
    b.handle_message(request("C2", "echo", &["plain"]), t0);
    assert_eq!(sent(&drain(&mut b)).len(), 4);
    // Its connection closes (kill -9): all four back at the head, in order, ids and all.
    b.handle_peer_lost(&id("W1"), Lost::Closed, t0 + 10 * MS);
    assert!(events(&mut b).contains(&Event::WorkerGone {
        id: id("W1"),
        unreachable: false,
        in_flight: 4
    }));
    assert_eq!(b.stats().requeued, 4);
    // Retries join the requeued requests instead of running them again.
    b.handle_message(request_id("C1b", "echo", 2, "2"), t0 + 20 * MS);
    assert!(drain(&mut b).is_empty(), "joined");
    b.handle_message(ready_credit("W2", 8, true, false), t0 + 30 * MS);
    let out = sent(&drain(&mut b));
    let got: Vec<(&str, &str)> = out.iter().map(|s| (s.1.as_str(), s.2.as_str())).collect();
    // C1 first (its requests were put back first), then C2: each client keeps its order.
    assert_eq!(
        got,
        [("c-1", "1"), ("-", "plain"), ("c-2", "2"), ("c-3", "3")]
    );
    b.handle_message(reply_rid("W2", "C1", Some(2), "r2"), t0 + 40 * MS);
    assert_eq!(
        clients_answered(drain(&mut b)),
        ["C1", "C1b"],
        "one run, both answered"
    );
}

#[test]
fn a_silent_worker_loses_every_request_and_their_ids_run_again_when_retried() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 4, true, false), t0);
    b.handle_message(request_id("C1", "echo", 1, "1"), t0);
    b.handle_message(request_id("C1", "echo", 2, "2"), t0);
    drain(&mut b);
    let mut now = t0;
    while b.worker_count() > 0 {
        now = b.poll_timeout().unwrap();
        b.handle_timeout(now);
    }
    assert!(events(&mut b).contains(&Event::WorkerExpired {
        id: id("W1"),
        in_flight: 2
    }));
    assert_eq!(b.stats().lost_with_worker, 2);
    b.handle_message(ready_credit("W2", 4, true, false), now);
    b.handle_message(request_id("C1", "echo", 2, "2"), now);
    assert_eq!(
        sent(&drain(&mut b)).len(),
        1,
        "the retry runs: its id was forgotten"
    );
}

fn active() -> Standing {
    Standing {
        state: State::Active,
        epoch: 1,
        role: Role::Primary,
    }
}

fn news(worker: &str, frames: PairFrames) -> Message {
    from_worker(worker, WorkerCommand::Pair(frames))
}

#[test]
fn in_a_pair_requests_run_elsewhere_take_credit_and_refusals_give_it_back() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.set_standing(active(), t0);
    b.handle_message(ready_credit("W1", 3, true, true), t0);
    drain(&mut b);
    // It runs two requests for the other broker: one credit left here.
    b.handle_message(news("W1", PairFrames::Running(rid(71))), t0);
    b.handle_message(news("W1", PairFrames::Running(rid(72))), t0);
    b.handle_message(news("W1", PairFrames::Running(rid(72))), t0); // announced again
    assert_eq!(in_flight(&mut b, t0), [("W1".to_owned(), 2, 3, true)]);
    b.handle_message(request_id("C1", "echo", 1, "1"), t0);
    b.handle_message(request_id("C1", "echo", 2, "2"), t0);
    assert_eq!(
        sent(&drain(&mut b)).len(),
        1,
        "credit 3: two elsewhere, one ours"
    );
    // A retry here of a request running elsewhere joins it.
    b.handle_message(request_id("C9", "echo", 71, "x"), t0);
    assert!(drain(&mut b).is_empty());
    // Full: a report beyond its credit is stale and ignored.
    b.handle_message(news("W1", PairFrames::Running(rid(73))), t0);
    assert_eq!(in_flight(&mut b, t0)[0].1, 3);
    // Answered elsewhere: the joined client gets it, and the credit goes to request 2.
    b.handle_message(
        news("W1", PairFrames::Answered(rid(71), frames([b"r71"]))),
        t0,
    );
    let out = drain(&mut b);
    assert_eq!(clients_answered(out.clone()), ["C9"]);
    assert_eq!(sent(&out)[0].1, "c-2");
    // Refused: request 1 goes back to the head of the queue, its credit freed.
    let senior = Standing {
        epoch: 2,
        role: Role::Backup,
        ..active()
    };
    b.handle_message(news("W1", PairFrames::Refused(rid(1), senior)), t0);
    assert!(events(&mut b)
        .iter()
        .any(|e| matches!(e, Event::Fenced { rid: r, .. } if *r == rid(1))));
    // Not dispatched again here: the pair makes this broker stand down.
    assert_eq!(in_flight(&mut b, t0)[0].1, 2, "72 elsewhere, 2 ours");
    // The worker goes: the request running elsewhere is abandoned, ours is requeued.
    b.handle_peer_lost(&id("W1"), Lost::Closed, t0);
    assert_eq!(b.stats().requeued, 1);
    b.handle_message(request_id("C9", "echo", 72, "x"), t0);
    b.handle_message(ready_credit("W2", 8, true, true), t0);
    let out = drain(&mut b);
    let mut rids: Vec<String> = sent(&out).into_iter().map(|s| s.1).collect();
    rids.sort();
    assert_eq!(
        rids,
        ["c-1", "c-2", "c-72"],
        "72 runs again here: at least once"
    );
}

#[test]
fn a_worker_that_does_not_read_hands_every_request_back() {
    let t0 = Instant::now();
    let mut b = Broker::new(roomy(), t0);
    b.handle_message(ready_credit("W1", 3, true, false), t0);
    for n in 1..=3 {
        b.handle_message(request_id("C1", "echo", n, &n.to_string()), t0);
    }
    drain(&mut b);
    // The shell's send to it timed out (a slow consumer) or failed: purged, all requeued.
    b.handle_peer_lost(&id("W1"), Lost::Unreachable, t0);
    assert!(events(&mut b).contains(&Event::WorkerGone {
        id: id("W1"),
        unreachable: true,
        in_flight: 3
    }));
    assert_eq!((b.stats().requeued, b.worker_count()), (3, 0));
    b.handle_message(ready_credit("W2", 3, true, false), t0);
    let rids: Vec<String> = sent(&drain(&mut b)).into_iter().map(|s| s.1).collect();
    assert_eq!(rids, ["c-1", "c-2", "c-3"], "in their order, each once");
}
