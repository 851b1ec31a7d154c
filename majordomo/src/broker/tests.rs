//! The broker core driven with virtual time: no sockets, no sleeping.

use super::*;
use crate::mmi::{parse_broker, ServiceRow, WorkerRow};
use common::msg::frame_text as text;

const MS: Duration = Duration::from_millis(1);

fn config() -> BrokerConfig {
    BrokerConfig {
        heartbeat: 100 * MS,
        liveness: 3,
        request_timeout: 1000 * MS,
        // Room for three small requests (see `small_cost`).
        max_queue_bytes: 3 * small_cost(),
        dedup: dedup::DedupConfig {
            max_entries: 100,
            ttl: 2000 * MS,
        },
        log_replies: false,
        worker_keys: WorkerKeys::default(),
        max_stream_bytes: 1000,
    }
}

/// What a request from a two-letter client with a one-frame body of 1 byte costs.
fn small_cost() -> usize {
    fair::Queued::new(
        Message::from_frames(["C0"]),
        Message::from_frames(["x"]),
        Instant::now(),
    )
    .cost()
}

fn frames<const N: usize>(f: [&[u8]; N]) -> Message {
    Message::from_frames(f.map(Bytes::copy_from_slice))
}

fn from_worker(id: &str, command: WorkerCommand) -> Message {
    protocol::to_router(Message::from_frames([id.to_owned()]), command.into_frames())
}

fn ready(id: &str, service: &str) -> Message {
    from_worker(
        id,
        WorkerCommand::Ready {
            service: Bytes::copy_from_slice(service.as_bytes()),
            request_ids: false,
            pair: false,
            credit: 1,
        },
    )
}

fn reply(id: &str, client: &str, body: &str) -> Message {
    from_worker(
        id,
        WorkerCommand::Reply {
            client: Message::from_frames([client.to_owned()]),
            body: Message::from_frames([body.to_owned()]),
        },
    )
}

fn request(client: &str, service: &str, body: &[&str]) -> Message {
    let command = ClientCommand::Request {
        service: Bytes::copy_from_slice(service.as_bytes()),
        body: body.iter().map(|b| b.to_string()).collect(),
    };
    protocol::to_router(
        Message::from_frames([client.to_owned()]),
        command.into_frames(),
    )
}

fn drain(broker: &mut Broker) -> Vec<Message> {
    std::iter::from_fn(|| broker.poll_transmit()).collect()
}

/// Splits an outgoing message into (peer, parsed worker command).
fn to_worker(message: Message) -> (String, WorkerCommand) {
    let (peer, command) = Inbound::parse(message).unwrap();
    let Inbound::Worker(command) = command else {
        panic!("not a worker command")
    };
    (text(peer.first().unwrap()), command)
}

/// Splits an outgoing message into (peer, service, body) of a client REPLY.
fn to_client(message: Message) -> (String, String, Message) {
    let (peer, command) = Inbound::parse(message).unwrap();
    let Inbound::Client(ClientCommand::Request { service, body }) = command else {
        panic!("not a client message")
    };
    (text(peer.first().unwrap()), text(&service), body)
}

fn mmi(broker: &mut Broker, service: &str, body: &[&str], now: Instant) -> Message {
    broker.handle_message(request("admin", service, body), now);
    let mut out = drain(broker);
    assert_eq!(out.len(), 1, "one MMI reply");
    let (peer, from, body) = to_client(out.remove(0));
    assert_eq!((peer.as_str(), from.as_str()), ("admin", service));
    body
}

fn code(broker: &mut Broker, service: &str, body: &[&str], now: Instant) -> String {
    text(mmi(broker, service, body, now).first().unwrap())
}

#[test]
fn a_request_waits_for_a_worker_then_the_reply_goes_back() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(request("C1", "echo", &["hello", "world"]), t0);
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.service_count(), 1);

    b.handle_message(ready("W1", "echo"), t0 + 10 * MS);
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    let (peer, command) = to_worker(out[0].clone());
    assert_eq!(peer, "W1");
    assert_eq!(
        command,
        WorkerCommand::Request {
            client: frames([b"C1"]),
            body: frames([b"hello", b"world"]),
        }
    );
    // Exact wire frames, as 7/MDP lists them.
    assert_eq!(
        out[0],
        frames([b"W1", b"", b"MDPW01", &[2], b"C1", b"", b"hello", b"world"])
    );

    b.handle_message(reply("W1", "C1", "hello world"), t0 + 20 * MS);
    let out = drain(&mut b);
    assert_eq!(
        out,
        vec![frames([b"C1", b"", b"MDPC01", b"echo", b"hello world"])]
    );
    let rows = ServiceRow::parse_all(&mmi(&mut b, "mmi.services", &[], t0)).unwrap();
    assert_eq!(
        rows,
        vec![ServiceRow {
            name: "echo".into(),
            idle: 1,
            busy: 0,
            waiting: 0,
            served: 1
        }]
    );
}

#[test]
fn requests_go_to_the_longest_idle_worker() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(request("C1", "echo", &["1"]), t0);
    b.handle_message(request("C2", "echo", &["2"]), t0);
    b.handle_message(request("C3", "echo", &["3"]), t0);
    let peers: Vec<String> = drain(&mut b).into_iter().map(|m| to_worker(m).0).collect();
    assert_eq!(peers, ["W1", "W2"]);
    // W2 answers first, so it gets the third request.
    b.handle_message(reply("W2", "C2", "2"), t0);
    let out = drain(&mut b);
    assert_eq!(out.len(), 2);
    assert_eq!(to_client(out[0].clone()).0, "C2");
    assert_eq!(to_worker(out[1].clone()).0, "W2");
    let rows = ServiceRow::parse_all(&mmi(&mut b, "mmi.services", &[], t0)).unwrap();
    assert_eq!((rows[0].idle, rows[0].busy, rows[0].waiting), (0, 2, 0));
}

#[test]
fn mmi_service_answers_200_404_and_unknown_mmi_501() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    assert_eq!(code(&mut b, "mmi.service", &["echo"], t0), "404");
    b.handle_message(ready("W1", "echo"), t0);
    assert_eq!(code(&mut b, "mmi.service", &["echo"], t0), "200");
    assert_eq!(code(&mut b, "mmi.service", &["other"], t0), "404");
    assert_eq!(code(&mut b, "mmi.service", &[], t0), "404");
    assert_eq!(code(&mut b, "mmi.echo", &["x"], t0), "501");
    assert_eq!(code(&mut b, "mmi.", &[], t0), "501");
    // A request waiting for a service does not make it available.
    b.handle_message(request("C1", "later", &["x"]), t0);
    assert_eq!(code(&mut b, "mmi.service", &["later"], t0), "404");
    // The MMI reply is exactly one code frame.
    assert_eq!(mmi(&mut b, "mmi.service", &["echo"], t0).len(), 1);
}

#[test]
fn mmi_workers_and_broker_views() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W3", "alpha"), t0);
    b.handle_message(ready("W0123456789ABCDEF", "beta"), t0);
    b.handle_message(request("C1", "alpha", &["x"]), t0 + 100 * MS);
    drain(&mut b);
    let rows = WorkerRow::parse_all(&mmi(&mut b, "mmi.workers", &[], t0 + 100 * MS)).unwrap();
    let view: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r.service.as_str(), r.id.as_str(), r.busy))
        .collect();
    assert_eq!(
        view,
        [
            ("alpha", "W3", true),
            ("beta", "W01234567..", false),
            ("echo", "W1", false),
            ("echo", "W2", false)
        ]
    );
    // Heard at t0 (READY), liveness 3 × 100 ms; sending it a request does not count.
    assert!(rows.iter().all(|r| r.expires_in_ms == 200));
    let stats = parse_broker(&mmi(&mut b, "mmi.broker", &[], t0)).unwrap();
    assert!(stats.contains(&("workers".to_owned(), 4)));
    assert!(stats.contains(&("services".to_owned(), 3)));
}

#[test]
fn a_worker_offering_an_mmi_service_is_disconnected() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "mmi.echo"), t0);
    let out = drain(&mut b);
    assert_eq!(out, vec![frames([b"W1", b"", b"MDPW01", &[5]])]);
    assert_eq!(b.worker_count(), 0);
    assert_eq!(b.service_count(), 0);
    // A worker whose identity starts with "mmi." is fine: the prefix is checked on the service.
    b.handle_message(ready("mmi.W2", "echo"), t0);
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.worker_count(), 1);
    assert_eq!(code(&mut b, "mmi.service", &["mmi.echo"], t0), "404");
}

#[test]
fn unexpected_valid_commands_get_disconnect() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    let disconnect = |id: &[u8]| frames([id, b"", b"MDPW01", &[5]]);

    // Unknown worker: HEARTBEAT, REPLY → DISCONNECT (how workers learn a broker restarted).
    b.handle_message(from_worker("W9", WorkerCommand::Heartbeat), t0);
    b.handle_message(reply("W8", "C1", "late"), t0);
    assert_eq!(drain(&mut b), vec![disconnect(b"W9"), disconnect(b"W8")]);
    // DISCONNECT from an unknown worker: nothing to do, nothing sent.
    b.handle_message(from_worker("W7", WorkerCommand::Disconnect), t0);
    assert!(drain(&mut b).is_empty());

    // A second READY: DISCONNECT and the worker is forgotten.
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W1", "echo"), t0);
    assert_eq!(drain(&mut b), vec![disconnect(b"W1")]);
    assert_eq!(b.worker_count(), 0);

    // A REPLY from an idle worker (no request out): DISCONNECT.
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(reply("W2", "C1", "unasked"), t0);
    assert_eq!(drain(&mut b), vec![disconnect(b"W2")]);

    // A REQUEST sent to the broker by a worker: DISCONNECT.
    b.handle_message(ready("W3", "echo"), t0);
    let wrong_way = WorkerCommand::Request {
        client: frames([b"C1"]),
        body: frames([b"x"]),
    };
    b.handle_message(from_worker("W3", wrong_way), t0);
    assert_eq!(drain(&mut b), vec![disconnect(b"W3")]);
    assert_eq!(b.worker_count(), 0);
    assert_eq!(b.service_count(), 0);
    assert_eq!(b.stats().disconnects_sent, 5);
}

#[test]
fn silent_workers_are_purged_idle_or_busy_and_live_ones_kept() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("idle", "echo"), t0);
    b.handle_message(ready("busy", "slow"), t0);
    b.handle_message(ready("alive", "echo"), t0);
    b.handle_message(request("C1", "slow", &["x"]), t0);
    drain(&mut b);

    let mut now = t0;
    while now < t0 + 450 * MS {
        now = b.poll_timeout().unwrap();
        // "alive" heartbeats every tick; the others are silent.
        b.handle_message(from_worker("alive", WorkerCommand::Heartbeat), now);
        b.handle_timeout(now);
        drain(&mut b);
    }
    assert_eq!(b.worker_count(), 1, "only the heartbeating worker is left");
    let rows = WorkerRow::parse_all(&mmi(&mut b, "mmi.workers", &[], now)).unwrap();
    assert_eq!(rows[0].id, "alive");
    assert_eq!(b.stats().purged, 2);
    assert_eq!(b.stats().lost_with_worker, 1);
    assert_eq!(b.service_count(), 1, "the emptied services are gone");
    assert_eq!(code(&mut b, "mmi.service", &["slow"], now), "404");
}

#[test]
fn every_worker_gets_heartbeats_idle_or_busy() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(request("C1", "echo", &["x"]), t0);
    drain(&mut b);
    assert_eq!(b.poll_timeout(), Some(t0 + 100 * MS));
    b.handle_timeout(t0 + 99 * MS);
    assert!(drain(&mut b).is_empty(), "not due yet");
    b.handle_timeout(t0 + 100 * MS);
    let mut peers: Vec<(String, WorkerCommand)> =
        drain(&mut b).into_iter().map(to_worker).collect();
    peers.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        peers,
        [
            ("W1".to_owned(), WorkerCommand::Heartbeat),
            ("W2".to_owned(), WorkerCommand::Heartbeat)
        ]
    );
}

#[test]
fn waiting_requests_expire_and_the_next_deadline_says_when() {
    let t0 = Instant::now();
    let mut b = Broker::new(
        BrokerConfig {
            heartbeat: 5000 * MS,
            ..config()
        },
        t0,
    );
    b.handle_message(request("C1", "nobody", &["1"]), t0);
    b.handle_message(request("C2", "nobody", &["2"]), t0 + 300 * MS);
    assert_eq!(
        b.poll_timeout(),
        Some(t0 + 1000 * MS),
        "expiry before the heartbeat tick"
    );
    b.handle_timeout(t0 + 1000 * MS);
    assert_eq!(b.stats().expired, 1);
    assert_eq!(b.poll_timeout(), Some(t0 + 1300 * MS));
    b.handle_timeout(t0 + 1300 * MS);
    assert_eq!(b.stats().expired, 2);
    assert_eq!(b.service_count(), 0, "nothing left for the service");
    assert_eq!(b.poll_timeout(), Some(t0 + 5000 * MS));
    assert!(drain(&mut b).is_empty());
}

#[test]
fn an_expired_request_is_never_dispatched() {
    let t0 = Instant::now();
    let mut b = Broker::new(
        BrokerConfig {
            heartbeat: 5000 * MS,
            ..config()
        },
        t0,
    );
    b.handle_message(request("C1", "echo", &["old"]), t0);
    b.handle_message(request("C2", "echo", &["new"]), t0 + 500 * MS);
    // The worker shows up after the first request's expiry but before any timer ran.
    b.handle_message(ready("W1", "echo"), t0 + 1200 * MS);
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    let (_, WorkerCommand::Request { client, .. }) = to_worker(out[0].clone()) else {
        panic!("not a request")
    };
    assert_eq!(client, frames([b"C2"]));
    assert_eq!(b.stats().expired, 1);
}

#[test]
fn each_service_queue_is_bounded() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    for i in 0..5 {
        b.handle_message(request(&format!("C{i}"), "echo", &["x"]), t0);
    }
    b.handle_message(request("D1", "other", &["x"]), t0);
    assert_eq!(b.stats().dropped_full, 2);
    let rows = ServiceRow::parse_all(&mmi(&mut b, "mmi.services", &[], t0)).unwrap();
    assert_eq!(rows.iter().map(|r| r.waiting).collect::<Vec<_>>(), [3, 1]);
    // The first three are served in order once a worker comes.
    b.handle_message(ready("W1", "echo"), t0);
    let mut out = drain(&mut b);
    for expected in ["C0", "C1", "C2"] {
        // Each batch: the previous reply (if any), then the next request.
        let (_, WorkerCommand::Request { client, .. }) = to_worker(out.pop().unwrap()) else {
            panic!("not a request")
        };
        assert_eq!(text(client.first().unwrap()), expected);
        b.handle_message(reply("W1", expected, "x"), t0);
        out = drain(&mut b);
        assert_eq!(to_client(out.remove(0)).0, expected);
    }
    assert!(out.is_empty());
}

#[test]
fn malformed_input_is_counted_and_answered_with_nothing() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    let garbage = [
        frames([b"X"]),
        frames([b"X", b""]),
        frames([b"X", b"", b"MDPC01"]),
        frames([b"X", b"", b"MDPW01"]),
        frames([b"X", b"", b"MDPW01", &[7]]),
        frames([b"X", b"", b"MDPW01", &[3], b"C1"]),
        frames([b"X", b"", b"junk", b"junk"]),
        frames([b"", b"MDPC01", b"echo"]),
        frames([b"P", b"X", b"", b"MDPW01", &[4]]),
        Message::new(),
    ];
    for m in garbage.iter().cycle().take(10_000) {
        b.handle_message(m.clone(), t0);
    }
    assert_eq!(b.stats().malformed, 10_000);
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.worker_count(), 1);
    b.handle_message(request("C1", "echo", &["still"]), t0);
    assert_eq!(drain(&mut b).len(), 1, "still serving");
}

#[test]
fn churn_leaves_no_entries_behind() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("keeper", "echo"), t0);
    for i in 0..10_000 {
        let id = format!("churn-{i}");
        let service = format!("svc-{}", i % 7);
        b.handle_message(ready(&id, &service), t0);
        if i % 3 == 0 {
            b.handle_message(request("C", &service, &["x"]), t0);
            b.handle_message(reply(&id, "C", "x"), t0);
        }
        b.handle_message(from_worker(&id, WorkerCommand::Disconnect), t0);
    }
    drain(&mut b);
    assert_eq!(b.worker_count(), 1);
    assert_eq!(b.service_count(), 1);
    let rows = ServiceRow::parse_all(&mmi(&mut b, "mmi.services", &[], t0)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "echo");
}

#[test]
fn a_busy_worker_that_says_disconnect_hands_its_request_to_the_next_worker() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(request("C1", "echo", &["x"]), t0);
    b.handle_message(request("C2", "echo", &["y"]), t0);
    drain(&mut b);
    b.handle_message(from_worker("W1", WorkerCommand::Disconnect), t0);
    assert_eq!(b.stats().lost_with_worker, 0);
    assert_eq!(b.stats().requeued, 1);
    b.handle_message(ready("W2", "echo"), t0);
    c1s_request_goes_to_w2(&mut b);
}

#[test]
fn a_worker_whose_connection_closes_is_purged_and_its_request_goes_to_the_next_worker() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(request("C1", "echo", &["x"]), t0);
    b.handle_message(request("C2", "echo", &["y"]), t0);
    b.handle_message(request("C3", "echo", &["z"]), t0);
    let sent: Vec<_> = drain(&mut b).into_iter().map(to_worker).collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].0, "W1");
    // W1's connection closes: C1's request is first in line again; W2 answers, takes it.
    b.handle_peer_lost(&Bytes::from("W1"), Lost::Closed, t0);
    assert_eq!(b.worker_count(), 1);
    assert!(drain(&mut b).is_empty(), "no idle worker yet");
    b.handle_message(reply("W2", "C2", "y"), t0);
    let out = drain(&mut b);
    assert_eq!(to_client(out[0].clone()).0, "C2");
    let (peer, command) = to_worker(out[1].clone());
    assert_eq!(peer, "W2");
    assert!(matches!(command, WorkerCommand::Request { client, .. } if client == frames([b"C1"])));
    let s = b.stats();
    assert_eq!((s.requeued, s.workers_gone, s.lost_with_worker), (1, 1, 0));
}

/// W1 and W2 ready for "echo", and C1's request out at W1 (the longest idle).
fn a_request_out_at_w1(t0: Instant) -> Broker {
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(request("C1", "echo", &["x"]), t0);
    let (peer, _) = to_worker(drain(&mut b).remove(0));
    assert_eq!(peer, "W1");
    b
}

/// The next message out is C1's request, at W2.
fn c1s_request_goes_to_w2(b: &mut Broker) {
    let (peer, command) = to_worker(drain(b).remove(0));
    assert_eq!(peer, "W2");
    assert!(matches!(command, WorkerCommand::Request { client, .. } if client == frames([b"C1"])));
}

#[test]
fn a_failed_send_to_an_idle_or_busy_worker_purges_it_without_losing_the_request() {
    let t0 = Instant::now();
    let mut b = a_request_out_at_w1(t0);
    // The REQUEST could not be sent to W1: it goes to W2 at once.
    b.handle_peer_lost(&Bytes::from("W1"), Lost::Unreachable, t0);
    c1s_request_goes_to_w2(&mut b);
    // A failed send to a client changes nothing for workers.
    b.handle_peer_lost(&Bytes::from("C1"), Lost::Unreachable, t0);
    assert_eq!(b.worker_count(), 1);
}

#[test]
fn worker_churn_without_disconnect_leaves_only_live_workers() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("keeper", "echo"), t0);
    for i in 0..5_000 {
        let id = format!("churn-{i}");
        b.handle_message(ready(&id, "echo"), t0);
        b.handle_peer_lost(&Bytes::from(id), Lost::Closed, t0);
    }
    assert_eq!(b.worker_count(), 1);
    for i in 0..100 {
        b.handle_message(request("C1", "echo", &["x"]), t0);
        let (peer, _) = to_worker(drain(&mut b).remove(0));
        assert_eq!(peer, "keeper", "request {i}");
        b.handle_message(reply("keeper", "C1", "x"), t0);
        drain(&mut b);
    }
    assert_eq!(b.stats().replies, 100);
}

#[test]
fn a_flooding_client_does_not_delay_another_by_more_than_one_request() {
    let t0 = Instant::now();
    let mut b = Broker::new(
        BrokerConfig {
            max_queue_bytes: MAX_QUEUE_BYTES,
            ..config()
        },
        t0,
    );
    b.handle_message(ready("W1", "echo"), t0);
    for _ in 0..50_000 {
        b.handle_message(request("flood", "echo", &["x"]), t0);
    }
    drain(&mut b);
    b.handle_message(request("light", "echo", &["y"]), t0);
    // Ahead of light: the flood request W1 has, and the one flood request whose turn came
    // before light arrived; then light's, not 49,998 more.
    let mut served = Vec::new();
    for _ in 0..3 {
        let who = served
            .last()
            .map_or("flood", |s: &String| s.as_str())
            .to_owned();
        b.handle_message(reply("W1", &who, "x"), t0);
        let out = drain(&mut b);
        let (_, WorkerCommand::Request { client, .. }) = to_worker(out.last().unwrap().clone())
        else {
            panic!("not a request")
        };
        served.push(text(client.first().unwrap()));
    }
    assert_eq!(served, ["flood", "light", "flood"]);
}

#[test]
fn a_client_that_leaves_has_its_waiting_requests_dropped() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(request("C1", "echo", &["x"]), t0);
    b.handle_message(request("C1", "echo", &["x"]), t0);
    b.handle_message(request("C2", "echo", &["y"]), t0);
    b.handle_peer_lost(&Bytes::from("C1"), Lost::Closed, t0);
    assert_eq!(b.stats().dropped_client_gone, 2);
    let rows = ServiceRow::parse_all(&mmi(&mut b, "mmi.services", &[], t0)).unwrap();
    assert_eq!(rows[0].waiting, 1);
    b.handle_peer_lost(&Bytes::from("C2"), Lost::Closed, t0);
    assert_eq!(
        b.service_count(),
        0,
        "nothing kept for a service nobody waits on"
    );
}

#[test]
fn shutdown_disconnects_every_worker() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W2", "other"), t0);
    b.handle_shutdown(t0);
    let out: Vec<_> = drain(&mut b).into_iter().map(to_worker).collect();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(_, c)| *c == WorkerCommand::Disconnect));
    assert_eq!(b.worker_count(), 0);
}

#[test]
fn requests_through_proxies_keep_their_address_stack() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(
        frames([b"PROXY", b"C1", b"", b"MDPC01", b"echo", b"hi"]),
        t0,
    );
    let (_, command) = to_worker(drain(&mut b).remove(0));
    assert_eq!(
        command,
        WorkerCommand::Request {
            client: frames([b"PROXY", b"C1"]),
            body: frames([b"hi"])
        }
    );
    b.handle_message(
        from_worker(
            "W1",
            WorkerCommand::Reply {
                client: frames([b"PROXY", b"C1"]),
                body: frames([b"hi"]),
            },
        ),
        t0,
    );
    assert_eq!(
        drain(&mut b),
        vec![frames([b"PROXY", b"C1", b"", b"MDPC01", b"echo", b"hi"])]
    );
}

// ---- Request ids (Guide 4.11): the broker's dedup hooks ----

const RID: &[u8] = b"\0MDPRID1:c-1";

fn request_rid(client: &str, service: &str, body: &str) -> Message {
    let command = ClientCommand::Request {
        service: Bytes::copy_from_slice(service.as_bytes()),
        body: frames([RID, body.as_bytes()]),
    };
    protocol::to_router(
        Message::from_frames([client.to_owned()]),
        command.into_frames(),
    )
}

fn ready_ids(id: &str, service: &str) -> Message {
    from_worker(
        id,
        WorkerCommand::Ready {
            service: Bytes::copy_from_slice(service.as_bytes()),
            request_ids: true,
            pair: false,
            credit: 1,
        },
    )
}

#[test]
fn a_retry_joins_the_running_request_and_runs_once() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(request_rid("C1", "echo", "debit"), t0);
    let out = drain(&mut b);
    // A worker that did not ask for ids gets the body without the rid frame.
    assert_eq!(
        out,
        vec![frames([b"W1", b"", b"MDPW01", &[2], b"C1", b"", b"debit"])]
    );
    // The client retries from a fresh socket: W2 is idle, but nothing is dispatched.
    b.handle_message(request_rid("C1b", "echo", "debit"), t0 + 100 * MS);
    assert!(drain(&mut b).is_empty());
    // The one reply goes to both addresses, with the rid frame in front.
    b.handle_message(reply("W1", "C1", "ok"), t0 + 200 * MS);
    let out = drain(&mut b);
    assert_eq!(
        out,
        vec![
            frames([b"C1", b"", b"MDPC01", b"echo", RID, b"ok"]),
            frames([b"C1b", b"", b"MDPC01", b"echo", RID, b"ok"]),
        ]
    );
    // A retry after the reply is answered from memory, not run again.
    b.handle_message(request_rid("C1c", "echo", "debit"), t0 + 300 * MS);
    let out = drain(&mut b);
    assert_eq!(
        out,
        vec![frames([b"C1c", b"", b"MDPC01", b"echo", RID, b"ok"])]
    );
    assert_eq!(b.dedup_stats().joined, 1);
    assert_eq!(b.dedup_stats().replayed, 1);
    assert_eq!(b.stats().replies, 1, "one execution");
}

/// A request with id `c-<id>` from `client`.
fn request_id(client: &str, service: &str, id: u32, body: &str) -> Message {
    let rid = format!("\0MDPRID1:c-{id}");
    let command = ClientCommand::Request {
        service: Bytes::copy_from_slice(service.as_bytes()),
        body: frames([rid.as_bytes(), body.as_bytes()]),
    };
    protocol::to_router(
        Message::from_frames([client.to_owned()]),
        command.into_frames(),
    )
}

/// (client, last body frame) of each REQUEST sent to a worker, in order.
fn dispatched(out: &[Message]) -> Vec<(String, String)> {
    out.iter()
        .filter(|m| m.get(2).is_some_and(|h| &h[..] == b"MDPW01"))
        .filter_map(|m| match to_worker(m.clone()).1 {
            WorkerCommand::Request { client, body } => Some((
                text(client.first().unwrap()),
                text(body.iter().last().unwrap()),
            )),
            _ => None,
        })
        .collect()
}

/// The clients the outgoing messages go to, in order (workers' messages left out).
fn clients_answered(out: Vec<Message>) -> Vec<String> {
    out.into_iter()
        .filter(|m| m.get(2).is_some_and(|h| &h[..] == b"MDPC01"))
        .map(|m| text(m.first().unwrap()))
        .collect()
}

#[test]
fn a_worker_that_asks_for_ids_gets_them_and_a_requeued_request_keeps_its_id() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready_ids("W1", "echo"), t0);
    b.handle_message(request_rid("C1", "echo", "x"), t0);
    assert_eq!(
        drain(&mut b),
        vec![frames([b"W1", b"", b"MDPW01", &[2], b"C1", b"", RID, b"x"])]
    );
    // W1 leaves with the request: it goes back to the queue, id and all, to the next worker.
    b.handle_message(from_worker("W1", WorkerCommand::Disconnect), t0 + 10 * MS);
    b.handle_message(ready_ids("W2", "echo"), t0 + 20 * MS);
    assert_eq!(
        drain(&mut b),
        vec![frames([b"W2", b"", b"MDPW01", &[2], b"C1", b"", RID, b"x"])]
    );
    // Still running under its id: the client's retry joins it and gets the one reply.
    b.handle_message(request_rid("C1b", "echo", "x"), t0 + 30 * MS);
    assert!(drain(&mut b).is_empty(), "joined, not run twice");
    b.handle_message(reply("W2", "C1", "ok"), t0 + 40 * MS);
    assert_eq!(clients_answered(drain(&mut b)), ["C1", "C1b"]);
    assert_eq!(b.stats().requeued, 1);
    assert_eq!(b.dedup_stats().abandoned, 0);
    assert_eq!(b.dedup_stats().joined, 1);
}

#[test]
fn a_request_lost_with_a_silent_worker_runs_again_when_retried() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready_ids("W1", "echo"), t0);
    b.handle_message(request_rid("C1", "echo", "x"), t0);
    drain(&mut b);
    // W1 goes silent and is purged with the request (it may be hung on it): not requeued.
    let mut now = t0;
    while b.worker_count() > 0 {
        now = b.poll_timeout().unwrap();
        b.handle_timeout(now);
    }
    drain(&mut b);
    assert_eq!(b.stats().lost_with_worker, 1);
    assert_eq!(b.dedup_stats().abandoned, 1);
    b.handle_message(ready_ids("W2", "echo"), now);
    b.handle_message(request_rid("C1b", "echo", "x"), now);
    assert_eq!(
        drain(&mut b),
        vec![frames([
            b"W2",
            b"",
            b"MDPW01",
            &[2],
            b"C1b",
            b"",
            RID,
            b"x"
        ])],
        "the retry runs, it does not join a request nobody runs"
    );
}

#[test]
fn requests_evicted_or_refused_by_a_full_queue_run_again_when_retried() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    // Two requests with ids fill the queue (see `config`); A's third is refused.
    b.handle_message(request_id("A", "echo", 1, "a1"), t0);
    b.handle_message(request_id("A", "echo", 2, "a2"), t0);
    b.handle_message(request_id("A", "echo", 3, "a3"), t0);
    assert_eq!(b.stats().dropped_full, 1);
    // B holds nothing: A's newest (id 2) is evicted to make room.
    b.handle_message(request_id("B", "echo", 9, "b"), t0);
    assert_eq!(b.stats().dropped_full, 2);
    assert_eq!(b.dedup_stats().abandoned, 2, "ids 2 and 3 forgotten");
    // A's retries of 2 and 3 from a fresh socket run (here: wait for a worker), they do not
    // join requests that are gone. The retry of 1, still waiting, joins it.
    b.handle_message(request_id("A2", "echo", 1, "a1"), t0 + MS);
    assert_eq!(b.dedup_stats().joined, 1);
    b.handle_message(ready("W", "echo"), t0 + 2 * MS);
    b.handle_message(request_id("A2", "echo", 2, "a2"), t0 + 3 * MS);
    b.handle_message(reply("W", "A", "r1"), t0 + 4 * MS);
    b.handle_message(reply("W", "B", "r9"), t0 + 5 * MS);
    b.handle_message(reply("W", "A2", "r2"), t0 + 6 * MS);
    let out = drain(&mut b);
    let bodies: Vec<String> = dispatched(&out).into_iter().map(|(_, b)| b).collect();
    assert_eq!(bodies, ["a1", "b", "a2"], "each ran once");
    assert_eq!(clients_answered(out), ["A", "A2", "B", "A2"]);
}

#[test]
fn requests_dropped_with_their_client_run_again_when_retried() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(request_id("C1", "echo", 1, "x"), t0);
    // The client's socket closes before any worker came: its request is dropped.
    b.handle_peer_lost(&Bytes::from("C1"), Lost::Closed, t0 + MS);
    assert_eq!(b.stats().dropped_client_gone, 1);
    assert_eq!(b.dedup_stats().abandoned, 1);
    b.handle_message(request_id("C1b", "echo", 1, "x"), t0 + 2 * MS);
    assert_eq!(b.dedup_stats().joined, 0, "a new request, not a join");
    b.handle_message(ready("W", "echo"), t0 + 3 * MS);
    assert_eq!(dispatched(&drain(&mut b)), [("C1b".into(), "x".into())]);
    b.handle_message(reply("W", "C1b", "ok"), t0 + 4 * MS);
    assert_eq!(clients_answered(drain(&mut b)), ["C1b"]);
}

#[test]
fn a_retry_joined_before_the_first_socket_closed_takes_the_request_over() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(request_id("C1", "echo", 1, "x"), t0);
    // The retry from a fresh socket arrives before the old socket's close is seen.
    b.handle_message(request_id("C1b", "echo", 1, "x"), t0 + MS);
    assert_eq!(b.dedup_stats().joined, 1);
    b.handle_peer_lost(&Bytes::from("C1"), Lost::Closed, t0 + 2 * MS);
    assert_eq!(b.stats().dropped_client_gone, 0);
    assert_eq!(b.dedup_stats().abandoned, 0);
    b.handle_message(ready("W", "echo"), t0 + 3 * MS);
    assert_eq!(
        dispatched(&drain(&mut b)),
        [("C1b".into(), "x".into())],
        "dispatched once, for the address still there"
    );
    b.handle_message(reply("W", "C1b", "ok"), t0 + 4 * MS);
    assert_eq!(clients_answered(drain(&mut b)), ["C1b"]);
    assert_eq!(b.stats().replies, 1);
}

#[test]
fn a_request_that_expired_before_dispatch_runs_when_retried() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(request_id("C1", "echo", 1, "x"), t0);
    // No expiry tick ran: the request is found expired when a worker comes.
    b.handle_message(ready("W", "echo"), t0 + 1500 * MS);
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.stats().expired, 1);
    assert_eq!(b.dedup_stats().abandoned, 1);
    b.handle_message(request_id("C1b", "echo", 1, "x"), t0 + 1600 * MS);
    assert_eq!(
        drain(&mut b).len(),
        1,
        "dispatched, not joined to the expired one"
    );
}

#[test]
fn a_request_that_expired_in_the_queue_runs_when_retried() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(request_rid("C1", "echo", "x"), t0);
    b.handle_timeout(t0 + 1000 * MS);
    assert_eq!(b.stats().expired, 1);
    b.handle_message(ready("W1", "echo"), t0 + 1100 * MS);
    b.handle_message(request_rid("C1b", "echo", "x"), t0 + 1200 * MS);
    assert_eq!(
        drain(&mut b).len(),
        1,
        "dispatched, not joined to the expired one"
    );
}

#[test]
fn ids_are_forgotten_after_the_ttl_and_mmi_keeps_the_rid_frame() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(request_rid("C1", "echo", "x"), t0);
    b.handle_message(reply("W1", "C1", "ok"), t0);
    drain(&mut b);
    assert_eq!(b.dedup_len(), 1);
    // TTL 2000 ms; expiry runs on heartbeat ticks (100 ms).
    for step in 1..=25 {
        b.handle_message(
            from_worker("W1", WorkerCommand::Heartbeat),
            t0 + step * 100 * MS,
        );
        b.handle_timeout(t0 + step * 100 * MS);
    }
    assert_eq!(b.dedup_len(), 0);
    drain(&mut b);
    b.handle_message(request_rid("C1", "echo", "x"), t0 + 2600 * MS);
    let out = drain(&mut b);
    assert_eq!(
        out,
        vec![frames([b"W1", b"", b"MDPW01", &[2], b"C1", b"", b"x"])],
        "run again"
    );
    // An MMI request with an id: answered, the rid frame echoed.
    b.handle_message(request_rid("A", "mmi.service", "echo"), t0 + 2700 * MS);
    let out = drain(&mut b);
    assert_eq!(
        out.last().unwrap(),
        &frames([b"A", b"", b"MDPC01", b"mmi.service", RID, b"200"])
    );
}

// ---- Events: what the shell turns into log lines ----

fn events(broker: &mut Broker) -> Vec<Event> {
    std::iter::from_fn(|| broker.poll_event()).collect()
}

fn id(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn workers_coming_going_and_misbehaving_are_reported() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(ready("W2", "mmi.x"), t0);
    b.handle_message(from_worker("W3", WorkerCommand::Heartbeat), t0);
    b.handle_message(reply("W4", "C1", "late"), t0);
    b.handle_message(from_worker("W5", WorkerCommand::Disconnect), t0);
    b.handle_message(frames([b"P", b"X", b"", b"MDPW01", &[4]]), t0);
    b.handle_message(frames([b"X", b"", b"junk"]), t0);
    let offence = |who: &str, why| Event::Disconnected { id: id(who), why };
    let got = events(&mut b);
    assert_eq!(
        got[..6],
        [
            Event::WorkerReady {
                id: id("W1"),
                service: id("echo")
            },
            offence("W1", Offence::SecondReady),
            offence("W2", Offence::ReservedService(id("mmi.x"))),
            offence("W3", Offence::UnknownHeartbeat),
            offence("W4", Offence::ReplyFromUnknown),
            Event::UnknownLeft(id("W5")),
        ]
    );
    assert_eq!(got[6], Event::BadEnvelope(2));
    assert!(matches!(got[7], Event::Malformed(_)));
    assert_eq!(got.len(), 8);

    // A busy worker that leaves, one whose connection closes, one that is silent.
    b.handle_message(ready("W6", "echo"), t0);
    b.handle_message(ready("W7", "echo"), t0);
    b.handle_message(ready("W8", "echo"), t0);
    b.handle_message(request("C1", "echo", &["x"]), t0);
    b.handle_message(from_worker("W6", WorkerCommand::Disconnect), t0);
    b.handle_peer_lost(&id("W7"), Lost::Unreachable, t0);
    events(&mut b);
    let mut now = t0;
    while b.worker_count() > 0 {
        now = b.poll_timeout().unwrap();
        b.handle_timeout(now);
    }
    let got = events(&mut b);
    assert!(got.contains(&Event::WorkerExpired {
        id: id("W8"),
        in_flight: 1
    }));
    assert!(got.contains(&Event::Tick), "heartbeat ticks are reported");
    b.handle_message(ready("W9", "echo"), now);
    b.handle_peer_lost(&id("W9"), Lost::Closed, now);
    assert_eq!(
        events(&mut b)[1],
        Event::WorkerGone {
            id: id("W9"),
            unreachable: false,
            in_flight: 0
        }
    );
}

#[test]
fn requests_dropped_or_deduplicated_are_reported() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    for i in 0..4 {
        b.handle_message(request("C1", "echo", &["x"]), t0 + i * MS);
    }
    // The queue holds three: the fourth is refused.
    assert_eq!(
        events(&mut b),
        [Event::QueueFull {
            service: id("echo"),
            waiting: 3,
            bytes: 3 * small_cost(),
            client: id("C1"),
            evicted: None
        }]
    );
    // A lighter client gets room: C1's newest request is evicted.
    b.handle_message(request("C2", "echo", &["y"]), t0);
    assert!(matches!(
        &events(&mut b)[..],
        [Event::QueueFull { client, evicted: Some(1), .. }] if client == &id("C2")
    ));
    b.handle_peer_lost(&id("C2"), Lost::Closed, t0);
    assert_eq!(
        events(&mut b),
        [Event::ClientGone {
            client: id("C2"),
            kept: 0,
            dropped: 1
        }]
    );
    b.handle_timeout(t0 + 1001 * MS);
    assert!(events(&mut b).contains(&Event::Expired {
        service: id("echo"),
        count: 2,
        after: 1000 * MS,
        at_dispatch: false
    }));

    // A retry joins the running request, a later one is answered from memory.
    let rid = Rid::from_frame(&Bytes::from_static(RID)).unwrap();
    b.handle_message(ready("W1", "echo"), t0 + 1001 * MS);
    b.handle_message(request_rid("C3", "echo", "x"), t0 + 1001 * MS);
    b.handle_message(request_rid("C3b", "echo", "x"), t0 + 1001 * MS);
    b.handle_message(reply("W1", "C3", "ok"), t0 + 1001 * MS);
    b.handle_message(request_rid("C3c", "echo", "x"), t0 + 1001 * MS);
    let service = id("echo");
    let got = events(&mut b);
    assert_eq!(
        got[1..],
        [
            Event::RetryJoined {
                rid: rid.clone(),
                service: service.clone()
            },
            Event::RetryReplayed { rid, service }
        ]
    );
    // The store forgets the id after its TTL (2 s), on a heartbeat tick.
    let mut now = t0 + 1001 * MS;
    let forgot = loop {
        b.handle_message(from_worker("W1", WorkerCommand::Heartbeat), now);
        now = b.poll_timeout().unwrap();
        b.handle_timeout(now);
        if let Some(Event::DedupForgot { forgotten, .. }) = events(&mut b)
            .into_iter()
            .find(|e| matches!(e, Event::DedupForgot { .. }))
        {
            break forgotten;
        }
    };
    assert_eq!((forgot.aged, forgot.evicted), (1, 0));
}

#[test]
fn durations_of_u64_max_milliseconds_never_panic() {
    let huge = Duration::from_millis(u64::MAX);
    let t0 = Instant::now();
    let mut b = Broker::new(
        BrokerConfig {
            heartbeat: huge,
            liveness: u32::MAX,
            request_timeout: huge,
            dedup: dedup::DedupConfig {
                max_entries: 10,
                ttl: huge,
            },
            ..config()
        },
        t0,
    );
    // A waiting request (its expiry), a worker (its liveness), a dispatch and a reply.
    b.handle_message(request("C1", "echo", &["1"]), t0);
    b.handle_message(ready("W1", "echo"), t0 + MS);
    assert_eq!(drain(&mut b).len(), 1);
    let deadline = b
        .poll_timeout()
        .expect("a heartbeat is always due some time");
    assert!(
        deadline > t0 + Duration::from_secs(3600 * 24 * 365),
        "far away"
    );
    b.handle_timeout(t0 + Duration::from_secs(3600));
    b.handle_message(reply("W1", "C1", "1"), t0 + 2 * MS);
    assert_eq!(to_client(drain(&mut b)[0].clone()).0, "C1");
    let rows = WorkerRow::parse_all(&mmi(&mut b, "mmi.workers", &[], t0)).unwrap();
    assert_eq!(rows.len(), 1, "the worker never expires");
}

#[test]
fn with_log_replies_every_service_reply_is_counted_and_mmi_is_not() {
    let t0 = Instant::now();
    let mut b = Broker::new(
        BrokerConfig {
            log_replies: true,
            ..config()
        },
        t0,
    );
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(request("C1", "echo", &["a"]), t0);
    b.handle_message(reply("W1", "C1", "a"), t0 + MS);
    b.handle_message(request("C1", "mmi.service", &["echo"]), t0 + MS);
    let answered: Vec<u64> = std::iter::from_fn(|| b.poll_event())
        .filter_map(|e| match e {
            Event::Answered { count } => Some(count),
            _ => None,
        })
        .collect();
    assert_eq!(answered, [1]);
}

mod credit;

#[test]
fn worker_keys_let_only_listed_keys_offer_their_service() {
    use common::curve::keys::KeyPair;
    let t0 = Instant::now();
    let good = KeyPair::generate().public;
    let bad = KeyPair::generate().public;
    let mut cfg = config();
    cfg.worker_keys
        .restrict("echo", std::sync::Arc::new(move |key| *key == good));
    let mut b = Broker::new(cfg, t0);
    let id = |s: &'static str| Bytes::from_static(s.as_bytes());
    b.handle_connected(&id("W1"), Some(good), t0);
    b.handle_connected(&id("W2"), Some(bad), t0);
    // W3 connected without CURVE: no key at all.
    b.handle_connected(&id("W3"), None, t0);
    b.handle_message(ready("W1", "echo"), t0);
    assert!(drain(&mut b).is_empty(), "the listed key registers");
    b.handle_message(ready("W2", "echo"), t0);
    b.handle_message(ready("W3", "echo"), t0);
    let disconnect = |w: &[u8]| frames([w, b"", b"MDPW01", &[5]]);
    assert_eq!(drain(&mut b), vec![disconnect(b"W2"), disconnect(b"W3")]);
    let refused: Vec<Event> = std::iter::from_fn(|| b.poll_event())
        .filter(|e| matches!(e, Event::Disconnected { .. }))
        .collect();
    assert_eq!(
        refused,
        vec![
            Event::Disconnected {
                id: id("W2"),
                why: Offence::KeyNotAllowed {
                    service: id("echo"),
                    key: Some(bad)
                }
            },
            Event::Disconnected {
                id: id("W3"),
                why: Offence::KeyNotAllowed {
                    service: id("echo"),
                    key: None
                }
            },
        ]
    );
    // A service not listed is open to any peer, with a key or without.
    b.handle_message(ready("W3", "other"), t0);
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.worker_count(), 2);
    // mmi.workers names each worker's key (who is connected as what).
    let rows = WorkerRow::parse_all(&mmi(&mut b, "mmi.workers", &[], t0)).unwrap();
    let keys: Vec<_> = rows
        .iter()
        .map(|r| (r.id.as_str(), r.key.clone()))
        .collect();
    assert_eq!(keys, [("W1", Some(good.to_z85())), ("W3", None)]);
    // The key goes with its connection: the same routing id later has none.
    b.handle_peer_lost(&id("W1"), Lost::Closed, t0);
    b.handle_message(ready("W1", "echo"), t0);
    assert_eq!(drain(&mut b), vec![disconnect(b"W1")]);
}
mod streams;

// The slow-consumer policy: a peer whose send blocked is paused for `STUCK_PAUSE`.

#[test]
fn a_peer_that_does_not_read_is_paused_and_its_messages_dropped_until_the_pause_ends() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_send_blocked(&Bytes::from("C1"), t0);
    assert_eq!(
        events(&mut b),
        [Event::NotReading {
            peer: Bytes::from("C1"),
            pause: STUCK_PAUSE
        }]
    );
    // Until the pause ends, C1's answers are dropped; C2's go out.
    let late = t0 + STUCK_PAUSE - MS;
    b.handle_message(request("C1", protocol::MMI_SERVICE, &["echo"]), late);
    b.handle_message(request("C2", protocol::MMI_SERVICE, &["echo"]), late);
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    assert_eq!(to_client(out[0].clone()).0, "C2");
    // From the pause's end C1 gets its answers again.
    b.handle_message(
        request("C1", protocol::MMI_SERVICE, &["echo"]),
        t0 + STUCK_PAUSE,
    );
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    assert_eq!(to_client(out[0].clone()).0, "C1");
}

#[test]
fn messages_queued_before_the_pause_are_dropped_when_their_turn_to_be_sent_comes() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    for _ in 0..3 {
        b.handle_message(request("C1", protocol::MMI_SERVICE, &["echo"]), t0);
    }
    // The first answer's send blocks; the two behind it are not tried.
    assert!(b.poll_transmit().is_some());
    b.handle_send_blocked(&Bytes::from("C1"), t0 + 20 * MS);
    assert!(drain(&mut b).is_empty());
}

#[test]
fn a_worker_that_does_not_read_is_purged_and_its_request_goes_to_the_next_worker() {
    let t0 = Instant::now();
    let mut b = a_request_out_at_w1(t0);
    events(&mut b);
    b.handle_send_blocked(&Bytes::from("W1"), t0 + 20 * MS);
    assert_eq!(
        events(&mut b),
        [
            Event::NotReading {
                peer: Bytes::from("W1"),
                pause: STUCK_PAUSE
            },
            Event::WorkerGone {
                id: Bytes::from("W1"),
                unreachable: true,
                in_flight: 1
            }
        ]
    );
    c1s_request_goes_to_w2(&mut b);
    assert_eq!(b.worker_count(), 1);
}

#[test]
fn a_paused_peer_that_registers_as_a_worker_is_purged_when_a_request_to_it_is_dropped() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_send_blocked(&Bytes::from("W1"), t0);
    // Within its pause W1 says READY (it sends, it does not read), then W2.
    b.handle_message(ready("W1", "echo"), t0 + MS);
    b.handle_message(ready("W2", "echo"), t0 + MS);
    assert_eq!(b.worker_count(), 2);
    events(&mut b);
    // The request goes to W1 first, is dropped on its way out, and W2 gets it.
    b.handle_message(request("C1", "echo", &["x"]), t0 + 2 * MS);
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    let (peer, command) = to_worker(out[0].clone());
    assert_eq!(peer, "W2");
    assert!(matches!(command, WorkerCommand::Request { client, .. } if client == frames([b"C1"])));
    assert_eq!(b.worker_count(), 1);
    assert!(events(&mut b).contains(&Event::WorkerGone {
        id: Bytes::from("W1"),
        unreachable: true,
        in_flight: 1
    }));
}
