//! MDP/0.2 on the broker core: the three dialects side by side, streamed replies, the
//! bridging rule, reruns and retries of streams. Frames are written out byte by byte as the
//! peers send them (see `protocol`'s tables), not built with our own encoders.

use super::*;

const C02: &[u8] = b"MDPC02";
const W02: &[u8] = b"MDPW02";

/// A message as the ROUTER receives it from `peer`.
fn raw(peer: &str, frames: &[&[u8]]) -> Message {
    let mut m = Message::from_frames([peer.to_owned()]);
    frames
        .iter()
        .for_each(|f| m.push_back(Bytes::copy_from_slice(f)));
    m
}

fn texts(m: &Message) -> Vec<String> {
    m.iter().map(|f| text(f)).collect()
}

/// The frames of `out` as text, for exact comparisons.
fn all(out: &[Message]) -> Vec<Vec<String>> {
    out.iter().map(texts).collect()
}

fn v(frames: &[&str]) -> Vec<String> {
    frames.iter().map(|s| s.to_string()).collect()
}

/// An RFC 18 worker `id` registered for `service`, its frames drained.
fn rfc_worker(b: &mut Broker, id: &str, service: &str, now: Instant) {
    b.handle_message(raw(id, &[W02, &[0x01], service.as_bytes()]), now);
    drain(b);
}

fn rfc_part(id: &str, cmd: u8, client: &str, body: &str) -> Message {
    raw(id, &[W02, &[cmd], client.as_bytes(), b"", body.as_bytes()])
}

#[test]
fn an_rfc18_request_streams_three_partials_and_a_final_in_order_to_its_client() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    rfc_worker(&mut b, "W1", "report", t0);
    b.handle_message(raw("C1", &[C02, &[0x01], b"report", b"q1"]), t0);
    b.handle_message(raw("C2", &[C02, &[0x01], b"report", b"q2"]), t0);
    // The worker gets C1's request in its own framing: no empty frame in front.
    assert_eq!(
        all(&drain(&mut b)),
        [v(&["W1", "MDPW02", "02", "C1", "", "q1"])]
    );
    for (cmd, body) in [(0x03, "p1"), (0x03, "p2"), (0x03, "p3"), (0x04, "done")] {
        b.handle_message(rfc_part("W1", cmd, "C1", body), t0 + MS);
    }
    let out = drain(&mut b);
    assert_eq!(
        all(&out[..4]),
        [
            v(&["C1", "MDPC02", "02", "report", "p1"]),
            v(&["C1", "MDPC02", "02", "report", "p2"]),
            v(&["C1", "MDPC02", "02", "report", "p3"]),
            v(&["C1", "MDPC02", "03", "report", "done"]),
        ]
    );
    // Only after the FINAL is the worker free for C2.
    assert_eq!(all(&out[4..]), [v(&["W1", "MDPW02", "02", "C2", "", "q2"])]);
    assert_eq!(b.stats().replies, 1);
}

#[test]
fn majortomo_peers_are_answered_in_their_own_framing() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(raw("W1", &[b"", W02, &[0x01], b"echo"]), t0);
    b.handle_message(raw("C1", &[b"", C02, &[0x02], b"echo", b"a", b"b"]), t0);
    assert_eq!(
        all(&drain(&mut b)),
        [v(&["W1", "", "MDPW02", "02", "C1", "", "a", "b"])]
    );
    b.handle_message(raw("W1", &[b"", W02, &[0x03], b"C1", b"", b"part"]), t0);
    b.handle_message(raw("W1", &[b"", W02, &[0x04], b"C1", b"", b"end"]), t0);
    // majortomo's replies: an empty frame, PARTIAL 0x03 / FINAL 0x04, no service frame.
    assert_eq!(
        all(&drain(&mut b)),
        [
            v(&["C1", "", "MDPC02", "03", "part"]),
            v(&["C1", "", "MDPC02", "04", "end"]),
        ]
    );
    // Heartbeats go to it in its framing too.
    b.handle_timeout(t0 + 100 * MS);
    assert_eq!(all(&drain(&mut b)), [v(&["W1", "", "MDPW02", "05"])]);
}

#[test]
fn mmi_answers_streaming_clients_with_a_final() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    rfc_worker(&mut b, "W1", "echo", t0);
    b.handle_message(raw("C1", &[C02, &[0x01], b"mmi.service", b"echo"]), t0);
    b.handle_message(raw("C2", &[b"", C02, &[0x02], b"mmi.service", b"nope"]), t0);
    b.handle_message(raw("C3", &[C02, &[0x01], b"mmi.nothing"]), t0);
    assert_eq!(
        all(&drain(&mut b)),
        [
            v(&["C1", "MDPC02", "03", "mmi.service", "200"]),
            v(&["C2", "", "MDPC02", "04", "404"]),
            v(&["C3", "MDPC02", "03", "mmi.nothing", "501"]),
        ]
    );
}

#[test]
fn a_01_client_gets_a_stream_as_one_concatenated_reply() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    rfc_worker(&mut b, "W1", "report", t0);
    b.handle_message(request("C1", "report", &["q"]), t0);
    drain(&mut b);
    b.handle_message(rfc_part("W1", 0x03, "C1", "p1"), t0);
    b.handle_message(rfc_part("W1", 0x03, "C1", "p2"), t0);
    assert!(drain(&mut b).is_empty(), "a 0.1 client gets no partials");
    b.handle_message(rfc_part("W1", 0x04, "C1", "end"), t0);
    assert_eq!(
        all(&drain(&mut b)),
        [v(&["C1", "", "MDPC01", "report", "p1", "p2", "end"])]
    );

    // Beyond the bound (1000 bytes in the test config) the parts are dropped: FINAL only.
    b.handle_message(request("C1", "report", &["q"]), t0);
    drain(&mut b);
    let big = "x".repeat(600);
    b.handle_message(rfc_part("W1", 0x03, "C1", &big), t0);
    b.handle_message(rfc_part("W1", 0x03, "C1", &big), t0);
    b.handle_message(rfc_part("W1", 0x04, "C1", "end"), t0);
    assert_eq!(
        all(&drain(&mut b)),
        [v(&["C1", "", "MDPC01", "report", "end"])]
    );
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(events.contains(&Event::StreamTruncated {
        service: Bytes::from_static(b"report"),
        parts: 2
    }));
}

#[test]
fn a_streaming_client_gets_a_01_workers_reply_as_its_final() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(ready("W1", "echo"), t0);
    b.handle_message(raw("C1", &[C02, &[0x01], b"echo", b"hi"]), t0);
    assert_eq!(
        all(&drain(&mut b)),
        [v(&["W1", "", "MDPW01", "02", "C1", "", "hi"])]
    );
    b.handle_message(reply("W1", "C1", "hi"), t0);
    assert_eq!(
        all(&drain(&mut b)),
        [v(&["C1", "MDPC02", "03", "echo", "hi"])]
    );
}

#[test]
fn a_streaming_worker_is_alive_while_it_streams_and_purged_when_silent() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    rfc_worker(&mut b, "W1", "report", t0);
    b.handle_message(raw("C1", &[C02, &[0x01], b"report", b"q"]), t0);
    drain(&mut b);
    // Liveness is 3 × 100 ms; it streams a part every 50 ms for a second.
    let mut t = t0;
    for k in 1..=20 {
        t = t0 + 50 * k * MS;
        b.handle_timeout(t);
        b.handle_message(rfc_part("W1", 0x03, "C1", "p"), t);
    }
    assert_eq!(b.worker_count(), 1, "streaming proves it alive");
    // Heartbeats to it are RFC 18 ones.
    let out = drain(&mut b);
    assert!(out.iter().any(|m| texts(m) == v(&["W1", "MDPW02", "05"])));
    // Then it falls silent: purged after liveness.
    for k in 1..=4 {
        b.handle_timeout(t + 100 * k * MS);
    }
    assert_eq!(b.worker_count(), 0);
    assert_eq!(b.stats().purged, 1);
}

#[test]
fn a_stream_rerun_after_its_worker_died_delivers_each_part_once() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    rfc_worker(&mut b, "W1", "report", t0);
    rfc_worker(&mut b, "W2", "report", t0);
    b.handle_message(raw("C1", &[C02, &[0x01], b"report", b"q"]), t0);
    let first = to_worker_rfc(drain(&mut b).remove(0));
    b.handle_message(rfc_part(&first, 0x03, "C1", "p1"), t0);
    b.handle_message(rfc_part(&first, 0x03, "C1", "p2"), t0);
    assert_eq!(drain(&mut b).len(), 2);
    // Killed mid-stream: its connection closes, the request goes to the other worker.
    b.handle_peer_lost(&Bytes::from(first.clone()), Lost::Closed, t0 + MS);
    let out = drain(&mut b);
    let second = to_worker_rfc(out[0].clone());
    assert_ne!(first, second);
    for (cmd, body) in [(3, "p1"), (3, "p2"), (3, "p3"), (4, "end")] {
        b.handle_message(rfc_part(&second, cmd, "C1", body), t0 + 2 * MS);
    }
    assert_eq!(
        all(&drain(&mut b)),
        [
            v(&["C1", "MDPC02", "02", "report", "p3"]),
            v(&["C1", "MDPC02", "03", "report", "end"]),
        ]
    );
}

/// The worker id an RFC 18 REQUEST goes to.
fn to_worker_rfc(m: Message) -> String {
    let t = texts(&m);
    assert_eq!(&t[1..3], ["MDPW02", "02"], "{t:?}");
    t[0].clone()
}

#[test]
fn a_retry_of_a_stream_joins_it_and_later_ones_get_it_whole_from_memory() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    rfc_worker(&mut b, "W1", "report", t0);
    let rid = crate::rid::Rid::new(&b"r-1"[..]).unwrap().to_frame();
    b.handle_message(raw("C1", &[C02, &[0x01], b"report", &rid, b"q"]), t0);
    drain(&mut b);
    b.handle_message(rfc_part("W1", 0x03, "C1", "p1"), t0);
    // A retry from a fresh socket joins the running stream.
    b.handle_message(raw("C2", &[C02, &[0x01], b"report", &rid, b"q"]), t0);
    b.handle_message(rfc_part("W1", 0x03, "C1", "p2"), t0);
    b.handle_message(rfc_part("W1", 0x04, "C1", "end"), t0);
    let r = text(&rid);
    let part = |to: &str, cmd: &str, body: &str| v(&[to, "MDPC02", cmd, "report", &r, body]);
    assert_eq!(
        all(&drain(&mut b)),
        [
            part("C1", "02", "p1"),
            part("C1", "02", "p2"),
            part("C1", "03", "end"),
            // The joined retry gets the whole stream at its end.
            part("C2", "02", "p1"),
            part("C2", "02", "p2"),
            part("C2", "03", "end"),
        ]
    );
    // A later retry is answered from memory, whole; a 0.1 retry gets it concatenated.
    b.handle_message(raw("C3", &[C02, &[0x01], b"report", &rid, b"q"]), t0);
    b.handle_message(raw("C4", &[b"", b"MDPC01", b"report", &rid, b"q"]), t0);
    assert_eq!(
        all(&drain(&mut b)),
        [
            part("C3", "02", "p1"),
            part("C3", "02", "p2"),
            part("C3", "03", "end"),
            v(&["C4", "", "MDPC01", "report", &r, "p1", "p2", "end"]),
        ]
    );
    assert_eq!(b.stats().replies, 1, "it ran once");
}

#[test]
fn bad_02_frames_are_dropped_and_reported() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    let bad: [&[&[u8]]; 8] = [
        &[C02, &[0x02], b"echo", b"x"], // RFC framing with majortomo's REQUEST byte
        &[b"", C02, &[0x01], b"echo", b"x"], // majortomo framing with RFC's byte
        &[C02, &[0x01]],                // no service
        &[C02, b"\x01\x01", b"echo"],   // a two-byte command
        &[W02, &[0x01], b"echo", b"\0MDPRID1:"], // a 0.1 extension in a 0.2 READY
        &[W02, &[0x09]],                // unknown command
        &[W02, &[0x05], b"x"],          // HEARTBEAT with a frame
        &[W02, &[0x03], b"C1", b"body"], // PARTIAL without the empty frame
    ];
    for frames in bad {
        b.handle_message(raw("P", frames), t0);
    }
    // A majortomo peer behind a proxy: 0.2 peers connect directly.
    b.handle_message(
        Message::from_frames(["proxy", "P", "", "MDPC02", "02", "echo", "x"]),
        t0,
    );
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.stats().malformed, 9);
    assert_eq!(b.worker_count() + b.service_count(), 0);
}

#[test]
fn a_partial_from_an_idle_or_unknown_worker_gets_disconnect_in_its_dialect() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    b.handle_message(rfc_part("W9", 0x03, "C1", "p"), t0);
    assert_eq!(all(&drain(&mut b)), [v(&["W9", "MDPW02", "06"])]);
    b.handle_message(raw("W1", &[b"", W02, &[0x01], b"echo"]), t0);
    b.handle_message(raw("W1", &[b"", W02, &[0x03], b"C1", b"", b"p"]), t0);
    assert_eq!(all(&drain(&mut b)), [v(&["W1", "", "MDPW02", "06"])]);
    assert_eq!(b.worker_count(), 0);
}

#[test]
fn a_stream_too_long_to_keep_is_not_remembered_and_its_retry_runs_again() {
    let t0 = Instant::now();
    let mut b = Broker::new(config(), t0);
    rfc_worker(&mut b, "W1", "report", t0);
    let rid = crate::rid::Rid::new(&b"r-2"[..]).unwrap().to_frame();
    b.handle_message(raw("C1", &[C02, &[0x01], b"report", &rid, b"q"]), t0);
    drain(&mut b);
    let big = "x".repeat(600);
    b.handle_message(rfc_part("W1", 0x03, "C1", &big), t0);
    // A retry joins while the stream runs; then the parts outgrow the bound (1000 bytes).
    b.handle_message(raw("C2", &[C02, &[0x01], b"report", &rid, b"q"]), t0);
    b.handle_message(rfc_part("W1", 0x03, "C1", &big), t0);
    b.handle_message(rfc_part("W1", 0x04, "C1", "end"), t0);
    let out = drain(&mut b);
    // C1 got everything live; the joined C2 gets nothing (a FINAL alone would be a hole).
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        all(&out)
            .iter()
            .map(|m| m[..3].to_vec())
            .collect::<Vec<_>>()
    );
    assert!(out.iter().all(|m| texts(m)[0] == "C1"));
    // The id is forgotten: the next retry runs the request again.
    b.handle_message(raw("C2", &[C02, &[0x01], b"report", &rid, b"q"]), t0);
    assert_eq!(to_worker_rfc(drain(&mut b).remove(0)), "W1");
}
