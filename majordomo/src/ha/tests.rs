//! A broker pair driven with virtual time: two [`PairedBroker`]s whose state messages the test
//! carries by hand, pair workers made of frames, no sockets.

use super::*;
use crate::pair::PairFrames;
use crate::protocol::WorkerCommand;
use crate::rid::Rid;
use binary_star::fsm::Reason;
use common::msg::frame_text as text;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);
const HB: Duration = Duration::from_millis(100);

fn timing() -> Timing {
    Timing {
        heartbeat: HB,
        liveness: 2,
    }
}

fn config() -> BrokerConfig {
    BrokerConfig {
        heartbeat: HB,
        liveness: 3,
        ..BrokerConfig::default()
    }
}

/// Everything a broker asked for, taken out.
#[derive(Debug, Default)]
struct Out {
    router: Vec<Message>,
    published: Vec<Publish>,
    events: Vec<Event>,
}

fn take(b: &mut PairedBroker) -> Out {
    let mut out = Out::default();
    while let Some(t) = b.poll_transmit() {
        match t {
            Transmit::Router(m) => out.router.push(m),
            Transmit::State(p) => out.published.push(p),
        }
    }
    out.events = std::iter::from_fn(|| b.poll_event()).collect();
    out
}

/// The peer's state message arrives; the pair's rule finds no split brain in it.
fn hear(b: &mut PairedBroker, state: StateMessage, now: Instant) -> Out {
    b.handle_peer(state, now);
    let out = take(b);
    assert!(!out.events.iter().any(|e| matches!(e, Event::Fatal(_))));
    out
}

fn from_worker(id: &str, command: WorkerCommand) -> Message {
    protocol::to_router(Message::from_frames([id.to_owned()]), command.into_frames())
}

fn ready(id: &str) -> Message {
    from_worker(
        id,
        WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: true,
            pair: true,
            credit: 1,
        },
    )
}

fn news(id: &str, frames: PairFrames) -> Message {
    from_worker(id, WorkerCommand::Pair(frames))
}

fn rid(n: u32) -> Rid {
    Rid::new(format!("r-{n}")).unwrap()
}

fn request(client: &str, service: &str, rid: Option<&Rid>) -> Message {
    let mut body = Message::from_frames(["hello"]);
    if let Some(rid) = rid {
        rid.put(&mut body);
    }
    let command = ClientCommand::Request {
        service: Bytes::copy_from_slice(service.as_bytes()),
        body,
    };
    protocol::to_router(
        Message::from_frames([client.to_owned()]),
        command.into_frames(),
    )
}

/// (peer, command) of a message to a worker, or `None` for a client message.
fn to_worker(message: &Message) -> Option<(String, WorkerCommand)> {
    match Inbound::parse(message.clone()).ok()? {
        (peer, Inbound::Worker(command)) => Some((text(peer.first()?), command)),
        _ => None,
    }
}

/// (peer, body) of every client REPLY in `out`.
fn replies(out: &Out) -> Vec<(String, Message)> {
    out.router
        .iter()
        .filter_map(|m| match Inbound::parse(m.clone()).ok()? {
            (peer, Inbound::Client(ClientCommand::Request { body, .. })) => {
                Some((text(peer.first()?), body))
            }
            _ => None,
        })
        .collect()
}

fn requests_to_workers(out: &Out) -> Vec<(String, Message)> {
    out.router
        .iter()
        .filter_map(to_worker)
        .filter_map(|(peer, c)| match c {
            WorkerCommand::Request { body, .. } => Some((peer, body)),
            _ => None,
        })
        .collect()
}

fn changed_to(out: &Out) -> Vec<(State, Reason)> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Pair(node::Event::Changed { to, reason, .. }) => Some((*to, *reason)),
            _ => None,
        })
        .collect()
}

fn last_state(out: &Out) -> StateMessage {
    let Publish(state, epoch) = *out.published.last().expect("a state message");
    StateMessage {
        state,
        epoch: Some(epoch),
    }
}

/// A primary and a backup that have met at `t0`: the primary ACTIVE, the backup PASSIVE.
fn pair(t0: Instant) -> (PairedBroker, PairedBroker) {
    let mut p = PairedBroker::new(Role::Primary, timing(), config(), t0);
    let mut b = PairedBroker::new(Role::Backup, timing(), config(), t0);
    p.handle_timeout(t0);
    b.handle_timeout(t0);
    take(&mut p);
    let from_b = last_state(&take(&mut b));
    let from_p = last_state(&hear(&mut p, from_b, t0));
    let from_b = last_state(&hear(&mut b, from_p, t0));
    hear(&mut p, from_b, t0);
    assert_eq!(p.node().state(), State::Active);
    assert_eq!(b.node().state(), State::Passive);
    (p, b)
}

#[test]
fn only_the_active_broker_dispatches_and_the_passive_one_drops_client_requests() {
    let t0 = Instant::now();
    let (mut p, mut b) = pair(t0);
    for broker in [&mut p, &mut b] {
        broker.handle_message(ready("W1"), t0);
        take(broker);
    }
    p.handle_message(request("C1", "echo", Some(&rid(1))), t0 + MS);
    let sent = requests_to_workers(&take(&mut p));
    assert_eq!(sent.len(), 1);
    // The pair worker gets our standing in front of the rid frame.
    let mut body = sent[0].1.clone();
    assert_eq!(
        Standing::take(&mut body),
        Some(Standing {
            state: State::Active,
            epoch: 1,
            role: Role::Primary
        })
    );
    assert_eq!(Rid::take(&mut body), Some(rid(1)));

    b.handle_message(request("C2", "echo", Some(&rid(2))), t0 + MS);
    b.handle_message(request("C3", "echo", Some(&rid(3))), t0 + MS);
    let out = take(&mut b);
    assert!(requests_to_workers(&out).is_empty());
    let rejected: Vec<bool> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { first, .. } => Some(*first),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, [true, false], "the first is logged louder");
    // MMI is answered in any state.
    b.handle_message(request("admin", "mmi.pair", None), t0 + MS);
    let rows = replies(&take(&mut b));
    let rows: Vec<String> = rows[0].1.iter().map(|f| text(f)).collect();
    assert_eq!(
        rows[..9],
        ["200", "role", "backup", "state", "PASSIVE", "epoch", "1", "peer", "ACTIVE"]
    );
}

#[test]
fn after_a_failover_a_retry_joins_the_request_its_worker_still_runs_and_gets_its_reply() {
    let t0 = Instant::now();
    let (mut p, mut b) = pair(t0);
    for broker in [&mut p, &mut b] {
        broker.handle_message(ready("W1"), t0);
        broker.handle_message(ready("W2"), t0);
        take(broker);
    }
    // The primary dispatches r-1 to a worker, which tells the backup it runs it.
    p.handle_message(request("C1", "echo", Some(&rid(1))), t0 + MS);
    let (worker, _) = requests_to_workers(&take(&mut p)).remove(0);
    b.handle_message(news(&worker, PairFrames::Running(rid(1))), t0 + 2 * MS);
    take(&mut b);
    // The primary dies. Once it has been silent for its expiry, the client's retry (from a
    // fresh socket) is the vote: the backup takes over, and the retry joins the running
    // request instead of being dispatched to the other, idle worker.
    let later = t0 + 2 * MS + timing().peer_ttl() + MS;
    let mut now = t0 + 2 * MS;
    while now < later {
        now += 10 * MS;
        for w in ["W1", "W2"] {
            b.handle_message(from_worker(w, WorkerCommand::Heartbeat), now);
        }
        b.handle_timeout(now);
        take(&mut b);
    }
    b.handle_message(request("C1b", "echo", Some(&rid(1))), now);
    let out = take(&mut b);
    assert_eq!(changed_to(&out), [(State::Active, Reason::PeerExpired)]);
    assert!(
        requests_to_workers(&out).is_empty(),
        "r-1 must not run twice"
    );
    // A new request goes to the idle worker, not to the one still busy with r-1.
    b.handle_message(request("C2", "echo", Some(&rid(2))), now + MS);
    let sent = requests_to_workers(&take(&mut b));
    assert_eq!(sent.len(), 1);
    assert_ne!(sent[0].0, worker);
    // The worker finishes r-1: its reply reaches the client through the new active broker.
    b.handle_message(
        news(
            &worker,
            PairFrames::Answered(rid(1), Message::from_frames(["HELLO"])),
        ),
        now + 2 * MS,
    );
    let out = take(&mut b);
    let got = replies(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "C1b");
    let mut body = got[0].1.clone();
    assert_eq!(Rid::take(&mut body), Some(rid(1)));
    assert_eq!(body, Message::from_frames(["HELLO"]));
    // A later retry gets the remembered reply, and the worker is free again.
    b.handle_message(request("C1c", "echo", Some(&rid(1))), now + 3 * MS);
    assert_eq!(replies(&take(&mut b))[0].0, "C1c");
    b.handle_message(request("C3", "echo", Some(&rid(3))), now + 4 * MS);
    assert_eq!(requests_to_workers(&take(&mut b))[0].0, worker);
}

#[test]
fn a_worker_that_hears_a_senior_broker_fences_the_deposed_one_which_stands_down() {
    let t0 = Instant::now();
    let (mut p, _b) = pair(t0);
    p.handle_message(ready("W1"), t0);
    take(&mut p);
    // A request that reached the primary late (say, held by a partition that has healed).
    p.handle_message(request("C1", "echo", Some(&rid(1))), t0 + MS);
    p.handle_message(request("C2", "echo", Some(&rid(2))), t0 + MS);
    assert_eq!(requests_to_workers(&take(&mut p)).len(), 1);
    // Meanwhile the backup took over in epoch 2; the worker knows and refuses.
    let senior = Standing {
        state: State::Active,
        epoch: 2,
        role: Role::Backup,
    };
    p.handle_message(news("W1", PairFrames::Refused(rid(1), senior)), t0 + 2 * MS);
    let out = take(&mut p);
    assert_eq!(changed_to(&out), [(State::Passive, Reason::SeniorReported)]);
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, Event::Broker(broker::Event::StoodDown { dropped: 2 }))));
    assert!(requests_to_workers(&out).is_empty());
    assert_eq!(out.published.last(), Some(&Publish(State::Passive, 2)));
    assert_eq!(p.node().epoch(), 2);
    // The worker hears the new standing at once, not a heartbeat later.
    let told: Vec<(String, Standing)> = out
        .router
        .iter()
        .filter_map(to_worker)
        .filter_map(|(w, c)| match c {
            WorkerCommand::Pair(PairFrames::Standing(s)) => Some((w, s)),
            _ => None,
        })
        .collect();
    assert_eq!(told.len(), 1);
    assert_eq!(
        (told[0].0.as_str(), told[0].1.state),
        ("W1", State::Passive)
    );
    // Its heartbeats go on telling the worker it is passive.
    let beat = t0 + HB + 10 * MS;
    p.handle_timeout(beat);
    let standings: Vec<Standing> = take(&mut p)
        .router
        .iter()
        .filter_map(to_worker)
        .filter_map(|(_, c)| match c {
            WorkerCommand::Pair(PairFrames::Standing(s)) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(standings.last().map(|s| s.state), Some(State::Passive));
}

#[test]
fn a_reply_reported_before_the_retry_arrives_is_remembered_and_replayed() {
    let t0 = Instant::now();
    let (_p, mut b) = pair(t0);
    b.handle_message(ready("W1"), t0);
    take(&mut b);
    b.handle_message(news("W1", PairFrames::Running(rid(7))), t0 + MS);
    b.handle_message(
        news(
            "W1",
            PairFrames::Answered(rid(7), Message::from_frames(["seven"])),
        ),
        t0 + 2 * MS,
    );
    let out = take(&mut b);
    assert!(out.events.iter().any(|e| matches!(
        e,
        Event::Broker(broker::Event::AnsweredElsewhere { delivered: 0, .. })
    )));
    assert_eq!(b.broker().stats().answered_elsewhere, 1);
    // The primary dies before its client got the reply; the retry reaches the backup, which
    // takes over and answers from memory: nothing runs.
    let mut now = t0 + 2 * MS;
    while now < t0 + timing().peer_ttl() + 10 * MS {
        now += 10 * MS;
        b.handle_message(from_worker("W1", WorkerCommand::Heartbeat), now);
        b.handle_timeout(now);
        take(&mut b);
    }
    b.handle_message(request("C7", "echo", Some(&rid(7))), now);
    let out = take(&mut b);
    assert!(requests_to_workers(&out).is_empty());
    let got = replies(&out);
    assert_eq!(got[0].0, "C7");
    assert_eq!(
        got[0].1.iter().last().map(|f| text(f)),
        Some("seven".to_owned())
    );
}

/// The slow-consumer pause through the pair: the broker core drops a message to a paused peer
/// when the pair takes it to send, and its purge reaches the pair's events.
#[test]
fn a_paused_worker_of_the_active_broker_is_purged_when_its_request_is_dropped() {
    let t0 = Instant::now();
    let (mut p, _b) = pair(t0);
    p.handle_send_blocked(&Bytes::from("W1"), t0);
    // Within its pause W1 says READY (it sends, it does not read), then W2.
    p.handle_message(ready("W1"), t0 + MS);
    p.handle_message(ready("W2"), t0 + MS);
    let mut events = take(&mut p).events;
    p.handle_message(request("C1", "echo", Some(&rid(1))), t0 + 2 * MS);
    let out = take(&mut p);
    events.extend(out.events.iter().cloned());
    let sent = requests_to_workers(&out);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "W2");
    assert_eq!(p.broker().worker_count(), 1);
    assert!(
        events.iter().any(|e| matches!(e,
            Event::Broker(broker::Event::WorkerGone { id, unreachable: true, .. }) if id == "W1")),
        "{events:?}"
    );
}
