//! MDP/0.2 (18/MDP) against our broker: libzmq peers written here from RFC 18, our own 0.2
//! client and worker, the bridging to and from 0.1 peers, and a streaming worker killed
//! mid-stream. (majortomo's own Python peers are in `majortomo.rs`.)

use crate::util::*;
use common::testkit::{tcp_endpoint, Proc};
use common::Message;
use majordomo::protocol::Dialect;
use majordomo::{ClientOptions, Part, StreamClient};
use std::time::{Duration, Instant};

type Frames = Vec<Vec<u8>>;

const C02: &[u8] = b"MDPC02";
const W02: &[u8] = b"MDPW02";
// RFC 18's command bytes.
const C_REQUEST: &[u8] = &[0x01];
const C_PARTIAL: &[u8] = &[0x02];
const C_FINAL: &[u8] = &[0x03];
const W_READY: &[u8] = &[0x01];
const W_REQUEST: &[u8] = &[0x02];
const W_PARTIAL: &[u8] = &[0x03];
const W_FINAL: &[u8] = &[0x04];
const W_HEARTBEAT: &[u8] = &[0x05];

fn f(parts: &[&[u8]]) -> Frames {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn socket(ctx: &zmq::Context, kind: zmq::SocketType, id: &[u8]) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    if !id.is_empty() {
        s.set_identity(id).unwrap();
    }
    s
}

fn recv(s: &zmq::Socket, ms: i32) -> Option<Frames> {
    s.set_rcvtimeo(ms).unwrap();
    match s.recv_multipart(0) {
        Ok(frames) => Some(frames),
        Err(zmq::Error::EAGAIN) => None,
        Err(e) => panic!("libzmq recv: {e}"),
    }
}

fn send(s: &zmq::Socket, frames: Frames) {
    s.send_multipart(frames, 0).unwrap();
}

/// The next message that is not a HEARTBEAT, within `SOON`.
fn recv_command(s: &zmq::Socket) -> Frames {
    let deadline = Instant::now() + SOON;
    loop {
        assert!(Instant::now() < deadline, "no command within {SOON:?}");
        let Some(m) = recv(s, 100) else { continue };
        if m.get(1).map(Vec::as_slice) != Some(W_HEARTBEAT) {
            return m;
        }
    }
}

/// An RFC 18 worker on libzmq: READY, then for each REQUEST three PARTIALs (`<body>-1` …)
/// and a FINAL (`<body>-final`), every frame checked. Heartbeats as it waits.
fn rfc18_streaming_worker(
    ctx: &zmq::Context,
    ep: &str,
    requests: usize,
) -> std::thread::JoinHandle<()> {
    let w = socket(ctx, zmq::DEALER, b"rfc-worker");
    w.connect(ep).unwrap();
    std::thread::spawn(move || {
        send(&w, f(&[W02, W_READY, b"report"]));
        for _ in 0..requests {
            let m = recv_command(&w);
            // RFC 18: "MDPW02", 0x02, client, "", body…; no empty frame in front.
            assert_eq!(&m[..2], &f(&[W02, W_REQUEST])[..], "{m:?}");
            assert!(m.len() == 5 && !m[2].is_empty() && m[3].is_empty(), "{m:?}");
            let (client, body) = (m[2].clone(), m[4].clone());
            for k in 1..=3 {
                let part = [&body[..], format!("-{k}").as_bytes()].concat();
                send(&w, f(&[W02, W_PARTIAL, &client, b"", &part]));
                send(&w, f(&[W02, W_HEARTBEAT]));
            }
            let last = [&body[..], b"-final"].concat();
            send(&w, f(&[W02, W_FINAL, &client, b"", &last]));
        }
        // Keep the connection until the test is done with the broker.
        let _ = recv(&w, 2000);
    })
}

/// An RFC 18 client on libzmq (a DEALER, no empty frames): the parts of one reply.
fn rfc18_request(s: &zmq::Socket, service: &[u8], body: &[u8]) -> Vec<Frames> {
    send(s, f(&[C02, C_REQUEST, service, body]));
    let mut parts = Vec::new();
    loop {
        let m = recv(s, 10_000).expect("a reply part");
        assert_eq!(&m[0], C02, "{m:?}");
        assert_eq!(&m[2], service, "RFC 18 replies name the service: {m:?}");
        let last = m[1] == C_FINAL;
        assert!(last || m[1] == C_PARTIAL, "{m:?}");
        parts.push(m);
        if last {
            return parts;
        }
    }
}

#[test]
fn rfc18_clients_get_three_partials_then_the_final_in_order_and_mmi_answers() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let ctx = zmq::Context::new();
    let worker = rfc18_streaming_worker(&ctx, &ep, 2);
    broker.wait_for("worker rfc-worker ready for service report", SOON);

    let c1 = socket(&ctx, zmq::DEALER, b"C1");
    let c2 = socket(&ctx, zmq::DEALER, b"C2");
    c1.connect(&ep).unwrap();
    c2.connect(&ep).unwrap();
    let mmi = rfc18_request(&c1, b"mmi.service", b"report");
    assert_eq!(mmi, [f(&[C02, C_FINAL, b"mmi.service", b"200"])]);
    let mmi = rfc18_request(&c2, b"mmi.service", b"nothing");
    assert_eq!(mmi, [f(&[C02, C_FINAL, b"mmi.service", b"404"])]);

    // Both clients' requests wait at the one worker; each gets its own stream, in order.
    send(&c2, f(&[C02, C_REQUEST, b"report", b"two"]));
    let one = rfc18_request(&c1, b"report", b"one");
    let expect = |who: &str| {
        let p = |s: &str| format!("{who}{s}").into_bytes();
        vec![
            f(&[C02, C_PARTIAL, b"report", &p("-1")]),
            f(&[C02, C_PARTIAL, b"report", &p("-2")]),
            f(&[C02, C_PARTIAL, b"report", &p("-3")]),
            f(&[C02, C_FINAL, b"report", &p("-final")]),
        ]
    };
    let mut two = Vec::new();
    while two.last().is_none_or(|m: &Frames| m[1] != C_FINAL) {
        two.push(recv(&c2, 10_000).expect("C2's parts"));
    }
    assert_eq!(one, expect("one"));
    assert_eq!(two, expect("two"));
    worker.join().unwrap();
}

#[test]
fn a_killed_rfc18_worker_is_purged_and_bad_02_frames_are_dropped_with_a_log_line() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let mut w = worker(
        "mdworker-rfc18",
        &mut broker,
        &ep,
        &["--dialect", "rfc18", "--service", "report"],
    );
    let ctx = zmq::Context::new();
    let c = socket(&ctx, zmq::DEALER, b"C1");
    c.connect(&ep).unwrap();
    let up = rfc18_request(&c, b"mmi.service", b"report");
    assert_eq!(up, [f(&[C02, C_FINAL, b"mmi.service", b"200"])]);

    w.kill9();
    broker.wait_for("purged", SOON);
    let down = rfc18_request(&c, b"mmi.service", b"report");
    assert_eq!(down, [f(&[C02, C_FINAL, b"mmi.service", b"404"])]);

    // Bad 0.2 frames: each logged and dropped; the broker goes on serving.
    let bad = socket(&ctx, zmq::DEALER, b"BAD");
    bad.connect(&ep).unwrap();
    broker.mark();
    for frames in [
        f(&[C02, &[0x02], b"echo", b"x"]), // RFC framing, majortomo's REQUEST byte
        f(&[C02, C_REQUEST]),              // no service
        f(&[W02, &[0x09]]),                // unknown command
        f(&[W02, W_READY, b"x", b"\0MDPRID1:"]), // a 0.1 extension in a 0.2 READY
        f(&[W02, W_PARTIAL, b"C1", b"body"]), // no empty frame after the client
    ] {
        send(&bad, frames);
    }
    broker.wait_for("malformed message dropped", SOON);
    let still = rfc18_request(&c, b"mmi.service", b"report");
    assert_eq!(still, [f(&[C02, C_FINAL, b"mmi.service", b"404"])]);
    assert!(broker.count("panicked") == 0);
}

/// Our 0.2 streaming client, one request: every part.
fn stream(ep: &str, dialect: Dialect, service: &str, body: &str) -> Vec<Part> {
    let options = ClientOptions {
        timeout: Duration::from_millis(2000),
        retries: 3,
    };
    runtime().block_on(async {
        let mut client = StreamClient::new(ep, options, dialect).unwrap();
        let reply = client
            .request(service, Message::from_frames([body.to_owned()]))
            .await
            .unwrap();
        reply.collect().await.unwrap()
    })
}

fn partial(s: &str) -> Part {
    Part::Partial(Message::from_frames([s.to_owned()]))
}

fn last(s: &str) -> Part {
    Part::Final(Message::from_frames([s.to_owned()]))
}

#[test]
fn mixed_a_guide_01_client_gets_a_stream_concatenated_and_a_02_client_a_01_reply_as_final() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let _streaming = worker(
        "mdworker-rfc18",
        &mut broker,
        &ep,
        &[
            "--dialect",
            "rfc18",
            "--service",
            "report",
            "--partials",
            "3",
        ],
    );
    let _plain = worker("mdworker-0.1", &mut broker, &ep, &["--service", "echo"]);
    let ctx = zmq::Context::new();

    // The Guide's C client (mdcliapi) on libzmq: a REQ socket, 7/MDP frames.
    let req = socket(&ctx, zmq::REQ, b"");
    req.connect(&ep).unwrap();
    send(&req, f(&[b"MDPC01", b"report", b"hello"]));
    let reply = recv(&req, 10_000).expect("a REPLY");
    assert_eq!(
        reply,
        f(&[
            b"MDPC01",
            b"report",
            b"part 1/3",
            b"part 2/3",
            b"part 3/3",
            b"hello"
        ])
    );

    // A 0.2 client (libzmq, RFC 18) of the 0.1 worker: its REPLY as the FINAL, no partials.
    let dealer = socket(&ctx, zmq::DEALER, b"C02");
    dealer.connect(&ep).unwrap();
    let parts = rfc18_request(&dealer, b"echo", b"hi");
    assert_eq!(parts, [f(&[C02, C_FINAL, b"echo", b"hi"])]);

    // Our own clients in both 0.2 dialects, of the streaming worker: every part in order.
    for dialect in [Dialect::Rfc18, Dialect::Majortomo] {
        let parts = stream(&ep, dialect, "report", "q");
        assert_eq!(
            parts,
            [
                partial("part 1/3"),
                partial("part 2/3"),
                partial("part 3/3"),
                last("q")
            ],
            "{dialect}"
        );
    }
    // And our 0.1 client (the stream client in 0.1): one part, the concatenation.
    let parts = stream(&ep, Dialect::V01, "report", "q");
    assert_eq!(
        parts,
        [Part::Final(Message::from_frames([
            "part 1/3", "part 2/3", "part 3/3", "q"
        ]))]
    );
}

/// The `I: (<service>) executing request` worker of two: the one that took the request.
fn busy<'a>(a: &'a mut Proc, b: &'a mut Proc) -> &'a mut Proc {
    let deadline = Instant::now() + SOON;
    loop {
        assert!(Instant::now() < deadline, "neither worker took the request");
        if a.count("executing request") > 0 {
            return a;
        }
        if b.count("executing request") > 0 {
            return b;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_streaming_worker_killed_mid_stream_the_client_gets_every_part_once() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let args = [
        "--dialect",
        "rfc18",
        "--service",
        "report",
        "--partials",
        "6",
        "--part-ms",
        "150",
        "--log-executions",
    ];
    let mut w1 = worker("mdworker-a", &mut broker, &ep, &args);
    let mut w2 = worker("mdworker-b", &mut broker, &ep, &args);
    let options = ClientOptions {
        timeout: Duration::from_millis(3000),
        retries: 3,
    };
    let parts = runtime().block_on(async {
        let mut client = StreamClient::new(&ep, options, Dialect::Rfc18).unwrap();
        let mut reply = client
            .request("report", Message::from_frames(["q"]))
            .await
            .unwrap();
        let mut parts = Vec::new();
        while let Some(part) = reply.next().await {
            let part = part.unwrap();
            parts.push(part);
            if parts.len() == 2 {
                // Two parts in: the worker streaming them dies.
                busy(&mut w1, &mut w2).kill9();
            }
        }
        parts
    });
    let expected: Vec<Part> = (1..=6)
        .map(|k| partial(&format!("part {k}/6")))
        .chain([last("q")])
        .collect();
    assert_eq!(parts, expected, "every part once, in order");
    broker.wait_for("purged (its request goes to the next worker)", SOON);
    // It really ran twice: the second worker streamed it again from its first part.
    let runs = w1.count("executing request") + w2.count("executing request");
    assert_eq!(runs, 2, "one run cut short, one rerun");
}

#[test]
fn the_async_stream_client_gets_every_part_tagged_with_its_request() {
    use majordomo::AsyncStreamClient;
    use std::collections::HashMap;
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let streaming = [
        "--dialect",
        "rfc18",
        "--service",
        "report",
        "--partials",
        "3",
    ];
    let _w1 = worker("mdworker-a", &mut broker, &ep, &streaming);
    let _w2 = worker("mdworker-b", &mut broker, &ep, &streaming);
    let options = ClientOptions {
        timeout: Duration::from_millis(5000),
        retries: 1,
    };
    let (sent, got) = runtime().block_on(async {
        let mut client = AsyncStreamClient::connect(&ep, options, Dialect::Rfc18)
            .await
            .unwrap();
        let mut sent = HashMap::new();
        for k in 0..6 {
            let body = format!("q{k}");
            let rid = client
                .send("report", Message::from_frames([body.clone()]))
                .await
                .unwrap();
            sent.insert(rid, body);
        }
        let mut got: HashMap<_, Vec<Part>> = HashMap::new();
        let mut finals = 0;
        while finals < 6 {
            let (rid, part) = client.recv().await.unwrap().expect("a part within 5 s");
            finals += usize::from(part.is_final());
            got.entry(rid).or_default().push(part);
        }
        (sent, got)
    });
    assert_eq!(got.len(), 6);
    for (rid, body) in sent {
        let parts = &got[&rid];
        let expected = [
            partial("part 1/3"),
            partial("part 2/3"),
            partial("part 3/3"),
            last(&body),
        ];
        assert_eq!(parts, &expected, "{rid}");
    }
}
