//! The pair core in virtual time: failover, votes, resends by id, give-ups, duplicates.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn policy() -> Policy {
    Policy {
        timeout: 1000 * MS,
        settle: 2000 * MS,
        vote: 250 * MS,
        turns: 3,
    }
}

/// A reply with `rid` at `now`, and the request it answered (`None`: a duplicate).
fn reply(core: &mut PairCore, rid: &Rid, now: Instant) -> Option<Answered> {
    core.handle_reply(rid, now);
    core.poll_answered()
}

fn rid(n: u32) -> Rid {
    Rid::new(format!("r{n}")).unwrap()
}

fn send(core: &mut PairCore, n: u32, now: Instant) {
    let body = Message::from_frames([format!("body {n}")]);
    core.handle_send(rid(n), "echo".into(), body, now);
}

/// What the core asked for since the last call, in short: `open 1`, `send 1 r2`.
fn transmits(core: &mut PairCore) -> Vec<String> {
    std::iter::from_fn(|| core.poll_transmit())
        .map(|t| match t {
            Transmit::Open { broker, .. } => format!("open {broker}"),
            Transmit::Send { broker, rid, .. } => format!("send {broker} {rid}"),
        })
        .collect()
}

fn events(core: &mut PairCore) -> Vec<Event> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

#[test]
fn requests_go_to_the_primary_and_each_reply_is_delivered_once() {
    let t0 = Instant::now();
    let mut core = PairCore::new(policy());
    assert_eq!(
        core.poll_timeout(),
        None,
        "nothing outstanding, nothing to wait for"
    );
    send(&mut core, 1, t0);
    send(&mut core, 2, t0);
    assert_eq!(transmits(&mut core), ["open 0", "send 0 r1", "send 0 r2"]);
    assert_eq!(core.poll_timeout(), Some(t0 + 1000 * MS));
    let answered = reply(&mut core, &rid(2), t0 + 5 * MS).unwrap();
    assert_eq!((answered.service.as_str(), answered.sends), ("echo", 1));
    // A second copy of the same reply is not delivered again.
    assert_eq!(reply(&mut core, &rid(2), t0 + 6 * MS), None);
    assert_eq!(events(&mut core), [Event::Duplicate { rid: rid(2) }]);
    assert_eq!(core.outstanding(), 1);
    reply(&mut core, &rid(1), t0 + 7 * MS).unwrap();
    assert_eq!(core.poll_timeout(), None);
    assert!(
        transmits(&mut core).is_empty(),
        "no resend on the broker that serves"
    );
}

#[test]
fn a_reply_restarts_the_silence() {
    let t0 = Instant::now();
    let mut core = PairCore::new(policy());
    send(&mut core, 1, t0);
    send(&mut core, 2, t0);
    reply(&mut core, &rid(1), t0 + 900 * MS);
    core.handle_timeout(t0 + 1000 * MS);
    assert_eq!(core.current(), 0, "a reply came 100 ms ago");
    assert_eq!(core.poll_timeout(), Some(t0 + 1900 * MS));
    core.handle_timeout(t0 + 1900 * MS);
    assert_eq!(core.current(), 1);
}

#[test]
fn silence_fails_over_votes_with_the_oldest_then_resends_everything_once_answered() {
    let t0 = Instant::now();
    let mut core = PairCore::new(policy());
    for n in 1..=3 {
        send(&mut core, n, t0 + n * MS);
    }
    transmits(&mut core);
    core.handle_timeout(t0 + 1000 * MS);
    assert_eq!(core.current(), 0, "the silence counts from the first send");
    let switch = t0 + 1001 * MS;
    core.handle_timeout(switch);
    // A fresh socket to the backup, and only the oldest request, as a vote.
    assert_eq!(transmits(&mut core), ["open 1", "send 1 r1"]);
    assert_eq!(
        events(&mut core),
        [
            Event::FailedOver {
                from: 0,
                to: 1,
                silent: 1000 * MS,
                carried: 3,
                gave_up: 0,
            },
            Event::Voted {
                broker: 1,
                rid: rid(1)
            },
        ]
    );
    // The backup is still passive: the vote again every 250 ms.
    assert_eq!(core.poll_timeout(), Some(switch + 250 * MS));
    core.handle_timeout(switch + 250 * MS);
    assert_eq!(transmits(&mut core), ["send 1 r1"]);
    // It took over and answered the vote: everything else goes out once, under its id.
    let answered = reply(&mut core, &rid(1), switch + 300 * MS).unwrap();
    assert_eq!(answered.sends, 3, "to the primary, then two votes");
    assert_eq!(transmits(&mut core), ["send 1 r2", "send 1 r3"]);
    assert_eq!(
        events(&mut core),
        [
            Event::Voted {
                broker: 1,
                rid: rid(1)
            },
            Event::Recovered {
                broker: 1,
                waited: 1300 * MS
            },
            Event::Resent {
                broker: 1,
                count: 2
            },
        ]
    );
    // Back to normal: the silence rule on the backup, no more votes.
    assert_eq!(core.poll_timeout(), Some(switch + 1300 * MS));
    assert_eq!(
        reply(&mut core, &rid(2), switch + 301 * MS).unwrap().sends,
        2
    );
    assert!(transmits(&mut core).is_empty());
}

#[test]
fn new_requests_stay_with_the_broker_that_answered() {
    let t0 = Instant::now();
    let mut core = PairCore::new(policy());
    send(&mut core, 1, t0);
    core.handle_timeout(t0 + 1000 * MS);
    reply(&mut core, &rid(1), t0 + 1010 * MS);
    transmits(&mut core);
    send(&mut core, 2, t0 + 2000 * MS);
    assert_eq!(
        transmits(&mut core),
        ["send 1 r2"],
        "same socket, no new open"
    );
}

#[test]
fn a_backup_that_never_answers_gets_everything_at_settle_then_a_full_timeout() {
    let t0 = Instant::now();
    let mut core = PairCore::new(policy());
    send(&mut core, 1, t0);
    send(&mut core, 2, t0);
    let switch = t0 + 1000 * MS;
    core.handle_timeout(switch);
    // 8 votes in the 2 s settle time, one every 250 ms, each the oldest request only.
    let count = |t: Vec<String>| t.iter().filter(|t| *t == "send 1 r1").count();
    let mut votes = count(transmits(&mut core));
    let mut now = switch;
    while let Some(at) = core.poll_timeout().filter(|&at| at < switch + 2000 * MS) {
        now = at;
        core.handle_timeout(now);
        votes += count(transmits(&mut core));
    }
    assert_eq!(votes, 8, "{:?}", now - switch);
    // Settled: everything once, then the full timeout before switching back.
    core.handle_timeout(switch + 2000 * MS);
    assert_eq!(transmits(&mut core), ["send 1 r1", "send 1 r2"]);
    assert_eq!(core.poll_timeout(), Some(switch + 3000 * MS));
    core.handle_timeout(switch + 3000 * MS);
    assert_eq!(core.current(), 0, "back to the primary");
    assert_eq!(transmits(&mut core), ["open 0", "send 0 r1"]);
}

#[test]
fn a_request_gets_its_turns_then_is_reported_failed_once() {
    let t0 = Instant::now();
    let mut core = PairCore::new(Policy {
        turns: 2,
        ..policy()
    });
    send(&mut core, 1, t0);
    core.handle_timeout(t0 + 1000 * MS);
    // A later request has had one turn when the second failover comes.
    send(&mut core, 2, t0 + 1100 * MS);
    let settled = t0 + 3000 * MS;
    let mut now = t0 + 1000 * MS;
    while now < settled + 1000 * MS {
        now = core.poll_timeout().unwrap();
        core.handle_timeout(now);
    }
    assert_eq!(now, settled + 1000 * MS);
    let events = events(&mut core);
    let failovers: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::FailedOver { .. }))
        .collect();
    assert_eq!(
        failovers,
        [
            &Event::FailedOver {
                from: 0,
                to: 1,
                silent: 1000 * MS,
                carried: 1,
                gave_up: 0
            },
            &Event::FailedOver {
                from: 1,
                to: 0,
                silent: 1000 * MS,
                carried: 1,
                gave_up: 1
            },
        ]
    );
    let gave_up: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::GaveUp { rid, sends, .. } => Some((rid.to_string(), *sends)),
            _ => None,
        })
        .collect();
    // r1: the primary, 8 votes, the resend at the end of the settle time. r2, first sent
    // during the settle time, has had one turn only: it goes back to the primary.
    assert_eq!(gave_up, [("r1".to_owned(), 10)]);
    assert_eq!(core.outstanding(), 1);
    assert_eq!(core.poll_timeout(), Some(now + 250 * MS), "settling on 0");
    // A late reply to a given-up request is a duplicate, not an answer.
    assert_eq!(reply(&mut core, &rid(1), now + MS), None);
}

#[test]
fn one_turn_fails_everything_at_the_first_silence_and_new_requests_use_the_other_broker() {
    let t0 = Instant::now();
    let mut core = PairCore::new(Policy {
        turns: 1,
        ..policy()
    });
    send(&mut core, 1, t0);
    transmits(&mut core);
    core.handle_timeout(t0 + 1000 * MS);
    assert!(events(&mut core)
        .iter()
        .any(|e| matches!(e, Event::GaveUp { rid: r, sends: 1, .. } if *r == rid(1))));
    assert_eq!(
        transmits(&mut core),
        ["open 1"],
        "nothing left to vote with"
    );
    send(&mut core, 2, t0 + 1100 * MS);
    assert_eq!(transmits(&mut core), ["send 1 r2"]);
}

#[test]
fn an_unreachable_broker_holds_sends_until_the_next_chance() {
    let t0 = Instant::now();
    let mut core = PairCore::new(policy());
    send(&mut core, 1, t0);
    assert_eq!(transmits(&mut core), ["open 0", "send 0 r1"]);
    // The primary is down: the connect took the whole timeout and failed.
    core.handle_broker_lost(t0 + 1000 * MS);
    send(&mut core, 2, t0 + 1000 * MS);
    assert!(
        transmits(&mut core).is_empty(),
        "held, not sent into nothing"
    );
    core.handle_timeout(t0 + 1000 * MS);
    assert_eq!(core.current(), 1);
    assert_eq!(transmits(&mut core), ["open 1", "send 1 r1"]);
    // The backup refuses too: the next vote opens again.
    core.handle_broker_lost(t0 + 1001 * MS);
    core.handle_timeout(t0 + 1250 * MS);
    assert_eq!(transmits(&mut core), ["open 1", "send 1 r1"]);
    reply(&mut core, &rid(1), t0 + 1260 * MS);
    assert_eq!(transmits(&mut core), ["send 1 r2"]);
}

#[test]
fn a_resent_request_keeps_its_first_send_and_turns() {
    let t0 = Instant::now();
    let mut core = PairCore::new(policy());
    send(&mut core, 1, t0);
    send(&mut core, 1, t0 + 500 * MS);
    assert_eq!(core.outstanding(), 1);
    assert_eq!(transmits(&mut core), ["open 0", "send 0 r1", "send 0 r1"]);
    assert_eq!(core.poll_timeout(), Some(t0 + 1000 * MS));
    core.handle_reconnect(t0 + 600 * MS);
    assert_eq!(transmits(&mut core), ["open 0", "send 0 r1"]);
    assert_eq!(reply(&mut core, &rid(1), t0 + 700 * MS).unwrap().sends, 3);
}

#[test]
fn durations_of_u64_max_milliseconds_never_panic() {
    let huge = Duration::from_millis(u64::MAX);
    let t0 = Instant::now();
    let mut core = PairCore::new(Policy {
        timeout: huge,
        settle: huge,
        vote: huge,
        turns: u32::MAX,
    });
    send(&mut core, 1, t0);
    let deadline = core.poll_timeout().unwrap();
    assert!(deadline > t0 + Duration::from_secs(3600 * 24 * 365));
    core.handle_timeout(deadline);
    assert_eq!(core.current(), 1);
    assert!(core.poll_timeout().is_some());
    core.handle_timeout(core.poll_timeout().unwrap());
}
