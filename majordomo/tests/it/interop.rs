//! Interop with libzmq 4.3 peers (the `zmq` crate), written here from the 7/MDP spec:
//! libzmq clients and a libzmq worker through our broker; our client and worker against libzmq
//! ROUTER sockets that check every frame; `mdbench --broker` against a minimal libzmq 7/MDP
//! broker that, like the Guide's C one, stops on anything beyond plain 7/MDP.

use crate::util::*;
use common::testkit::{tcp_endpoint, Background, Proc};
use common::Message;
use majordomo::{AsyncClient, Client, ClientOptions};
use majordomo::{Worker, WorkerOptions};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

type Frames = Vec<Vec<u8>>;

const READY: &[u8] = &[1];
const REQUEST: &[u8] = &[2];
const REPLY: &[u8] = &[3];
const HEARTBEAT: &[u8] = &[4];
const DISCONNECT: &[u8] = &[5];

fn f(parts: &[&[u8]]) -> Frames {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s
}

/// Receives one message, or `None` after `ms`.
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

fn bound_router(ctx: &zmq::Context) -> (zmq::Socket, String) {
    let router = socket(ctx, zmq::ROUTER);
    router.bind("tcp://127.0.0.1:*").unwrap();
    let ep = router.get_last_endpoint().unwrap().unwrap();
    (router, ep)
}

#[test]
fn libzmq_client_and_worker_through_our_broker() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let _ours = worker("mdworker", &mut broker, &ep, &[]);
    let ctx = zmq::Context::new();

    // A libzmq worker for "zmq.echo", checking every frame the broker sends it.
    let worker_ctx = ctx.clone();
    let worker_ep = ep.clone();
    // Set once the broker has logged the worker's DISCONNECT, so the socket may close.
    let (bye_seen, wait_bye) = mpsc::channel::<()>();
    let libzmq_worker = std::thread::spawn(move || {
        let w = socket(&worker_ctx, zmq::DEALER);
        w.set_identity(b"zmq-worker").unwrap();
        w.connect(&worker_ep).unwrap();
        send(&w, f(&[b"", b"MDPW01", READY, b"zmq.echo"]));
        let (mut heartbeats, mut served) = (0, 0);
        let mut last_heartbeat = Instant::now();
        let deadline = Instant::now() + SOON * 2;
        while served < 3 || heartbeats < 2 {
            assert!(
                Instant::now() < deadline,
                "served {served}, heartbeats {heartbeats}"
            );
            if last_heartbeat.elapsed() >= Duration::from_millis(100) {
                send(&w, f(&[b"", b"MDPW01", HEARTBEAT]));
                last_heartbeat = Instant::now();
            }
            let Some(m) = recv(&w, 50) else { continue };
            assert!(m.len() >= 3, "{m:?}");
            assert_eq!(&m[..2], &f(&[b"", b"MDPW01"])[..]);
            match &m[2][..] {
                HEARTBEAT => {
                    assert_eq!(m.len(), 3, "HEARTBEAT has no more frames");
                    heartbeats += 1;
                }
                REQUEST => {
                    assert!(m.len() >= 5 && !m[3].is_empty() && m[4].is_empty(), "{m:?}");
                    let mut reply = f(&[b"", b"MDPW01", REPLY, &m[3], b""]);
                    reply.extend(m[5..].iter().cloned());
                    send(&w, reply);
                    served += 1;
                }
                other => panic!("unexpected command {other:?}"),
            }
        }
        send(&w, f(&[b"", b"MDPW01", DISCONNECT]));
        // No linger: the socket stays open until the broker has logged the DISCONNECT (or the
        // test gave up waiting for it), so the broker reads the command, not a closed connection.
        let _ = wait_bye.recv_timeout(SOON);
        served
    });
    broker.wait_for("ready for service zmq.echo", SOON);

    // libzmq REQ client: REQ adds the empty delimiter itself.
    let req = socket(&ctx, zmq::REQ);
    req.connect(&ep).unwrap();
    send(&req, f(&[b"MDPC01", b"zmq.echo", b"hello"]));
    assert_eq!(
        recv(&req, 10_000),
        Some(f(&[b"MDPC01", b"zmq.echo", b"hello"]))
    );
    // ... to our worker too.
    send(&req, f(&[b"MDPC01", b"echo", b"to rust"]));
    assert_eq!(
        recv(&req, 10_000),
        Some(f(&[b"MDPC01", b"echo", b"to rust"]))
    );
    // MMI from libzmq: 200 / 404 / 501, one code frame each.
    for (service, body, code) in [
        ("mmi.service", "zmq.echo", "200"),
        ("mmi.service", "echo", "200"),
        ("mmi.service", "nope", "404"),
        ("mmi.nope", "x", "501"),
    ] {
        send(&req, f(&[b"MDPC01", service.as_bytes(), body.as_bytes()]));
        let expected = f(&[b"MDPC01", service.as_bytes(), code.as_bytes()]);
        assert_eq!(recv(&req, 10_000), Some(expected));
    }

    // libzmq DEALER client: sends the delimiter itself; multi-frame body with an empty frame.
    let dealer = socket(&ctx, zmq::DEALER);
    dealer.connect(&ep).unwrap();
    send(&dealer, f(&[b"", b"MDPC01", b"zmq.echo", b"a", b"", b"b"]));
    let expected = f(&[b"", b"MDPC01", b"zmq.echo", b"a", b"", b"b"]);
    assert_eq!(recv(&dealer, 10_000), Some(expected));

    // Our client, with request ids on, to the libzmq worker (which did not ask for ids): the
    // broker strips the rid frame, so the worker sees (and echoes) only the body; were the
    // frame passed on, the echo would come back with two rid frames and fail the comparison.
    let reply = runtime().block_on(async {
        client(&ep)
            .with_request_ids(true)
            .send("zmq.echo", Message::from_frames(["from rust"]))
            .await
            .unwrap()
    });
    assert_eq!(reply, Message::from_frames(["from rust"]));

    // The broker read the DISCONNECT itself: "disconnected", not "disconnected, purged" (the
    // line for a connection that closed).
    let line = broker.wait_for("worker zmq-worker disconnected", SOON);
    assert!(!line.contains("purged"), "{line}");
    bye_seen.send(()).unwrap();
    assert_eq!(libzmq_worker.join().unwrap(), 3);
    let code = runtime().block_on(mmi(&ep, "mmi.service", &["zmq.echo"]));
    assert_eq!(first(&code), "404");
}

#[test]
fn our_clients_against_a_libzmq_router_that_checks_every_frame() {
    let ctx = zmq::Context::new();
    let (router, ep) = bound_router(&ctx);
    let (replies_got, replies_in) = mpsc::channel::<()>();
    let fake = std::thread::spawn(move || {
        let next = || recv(&router, 15_000).expect("a request within 15 s");
        // 1. One request, multi-frame body.
        let m = next();
        assert_eq!(&m[1..], &f(&[b"", b"MDPC01", b"echo", b"a", b"", b"b"])[..]);
        send(&router, f(&[&m[0], b"", b"MDPC01", b"echo", b"A"]));
        // 2. Ignore the first attempt; the retry comes on a fresh socket (new identity).
        let first = next();
        assert_eq!(&first[1..], &f(&[b"", b"MDPC01", b"echo", b"retry me"])[..]);
        let retry = next();
        assert_eq!(&retry[1..], &first[1..]);
        assert_ne!(retry[0], first[0], "a retry must use a fresh socket");
        send(&router, f(&[&retry[0], b"", b"MDPC01", b"echo", b"done"]));
        // 3. mmi.service as the spec shapes it.
        let m = next();
        assert_eq!(&m[1..], &f(&[b"", b"MDPC01", b"mmi.service", b"echo"])[..]);
        send(&router, f(&[&m[0], b"", b"MDPC01", b"mmi.service", b"200"]));
        // 4. Three pipelined requests from the async client, answered in reverse order.
        let batch: Vec<Frames> = (0..3).map(|_| next()).collect();
        for m in batch.iter().rev() {
            assert_eq!(m.len(), 5, "{m:?}");
            assert_eq!(&m[1..4], &f(&[b"", b"MDPC01", b"async"])[..]);
            let upper = m[4].to_ascii_uppercase();
            send(&router, f(&[&m[0], b"", b"MDPC01", b"async", &upper]));
        }
        // No linger: keep the socket until the client has its replies (or gave up).
        let _ = replies_in.recv_timeout(SOON * 2);
    });

    runtime().block_on(async {
        let options = ClientOptions {
            timeout: Duration::from_millis(1500),
            retries: 3,
        };
        let mut client = Client::new(&ep, options.clone()).unwrap();
        let reply = client
            .send("echo", Message::from_frames(["a", "", "b"]))
            .await
            .unwrap();
        assert_eq!(reply, Message::from_frames(["A"]));
        let reply = client
            .send("echo", Message::from_frames(["retry me"]))
            .await
            .unwrap();
        assert_eq!(reply, Message::from_frames(["done"]));
        assert_eq!(client.resends(), 1);
        assert!(client.service_available("echo").await.unwrap());

        let options = ClientOptions {
            timeout: Duration::from_secs(10),
            ..options
        };
        let mut pipelined = AsyncClient::connect(&ep, options).await.unwrap();
        for body in ["x", "y", "z"] {
            pipelined
                .send("async", Message::from_frames([body]))
                .await
                .unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            let (service, body) = pipelined.recv().await.unwrap().expect("a reply");
            assert_eq!(service, "async");
            got.push(first(&body));
        }
        assert_eq!(got, ["Z", "Y", "X"]);
    });
    replies_got.send(()).unwrap();
    fake.join().unwrap();
}

/// What the fake broker saw, for the assertions.
struct Seen {
    identities: Vec<Vec<u8>>,
    heartbeats_while_busy: usize,
}

#[test]
fn our_worker_against_a_libzmq_router_that_checks_every_frame() {
    let ctx = zmq::Context::new();
    let (router, ep) = bound_router(&ctx);
    let (phase_tx, phase_rx) = mpsc::channel::<()>();

    let fake = std::thread::spawn(move || {
        // Receives the next non-HEARTBEAT message, heartbeating `to` every 50 ms meanwhile.
        // Returns it with the number of HEARTBEATs the worker sent in the meantime.
        let next = |to: Option<&[u8]>, within: Duration| -> (Frames, usize) {
            let deadline = Instant::now() + within;
            let mut beats = 0;
            let mut last = Instant::now();
            loop {
                assert!(Instant::now() < deadline, "no message within {within:?}");
                if let Some(to) = to.filter(|_| last.elapsed() >= Duration::from_millis(50)) {
                    send(&router, f(&[to, b"", b"MDPW01", HEARTBEAT]));
                    last = Instant::now();
                }
                let Some(m) = recv(&router, 20) else { continue };
                assert!(m.len() >= 4, "{m:?}");
                assert_eq!(&m[1..3], &f(&[b"", b"MDPW01"])[..], "{m:?}");
                if m[3] == HEARTBEAT {
                    assert_eq!(m.len(), 4, "HEARTBEAT has no more frames");
                    beats += 1;
                    continue;
                }
                return (m, beats);
            }
        };
        let ready = |m: &Frames| {
            assert_eq!(&m[1..], &f(&[b"", b"MDPW01", READY, b"echo"])[..], "{m:?}");
            m[0].clone()
        };
        let long = SOON;

        // A. READY.
        let id1 = ready(&next(None, long).0);
        // B. A request; the handler takes 500 ms, heartbeats must keep coming meanwhile.
        send(
            &router,
            f(&[
                &id1, b"", b"MDPW01", REQUEST, b"C1", b"", b"hi", b"", b"there",
            ]),
        );
        let (reply, heartbeats_while_busy) = next(Some(&id1), long);
        assert_eq!(
            reply,
            f(&[&id1, b"", b"MDPW01", REPLY, b"C1", b"", b"hi", b"", b"there"])
        );
        // C. DISCONNECT: the worker reconnects with a fresh identity and sends READY again.
        send(&router, f(&[&id1, b"", b"MDPW01", DISCONNECT]));
        let id2 = ready(&next(Some(&id1), long).0);
        // While we heartbeat it, it stays: nothing but HEARTBEATs for a while.
        let quiet = Instant::now() + Duration::from_millis(600);
        let mut last = Instant::now();
        while Instant::now() < quiet {
            if last.elapsed() >= Duration::from_millis(50) {
                send(&router, f(&[&id2, b"", b"MDPW01", HEARTBEAT]));
                last = Instant::now();
            }
            if let Some(m) = recv(&router, 20) {
                assert_eq!(m, f(&[&id2, b"", b"MDPW01", HEARTBEAT]), "only heartbeats");
            }
        }
        // D. Silence: the worker declares us dead and comes back on a fresh socket.
        let id3 = ready(&next(None, long).0);
        phase_tx.send(()).unwrap();
        // E. Shut down: DISCONNECT from the current identity.
        let (bye, _) = next(Some(&id3), long);
        assert_eq!(bye, f(&[&id3, b"", b"MDPW01", DISCONNECT]));
        Seen {
            identities: vec![id1, id2, id3],
            heartbeats_while_busy,
        }
    });

    let rt = runtime();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(async move {
        let options = WorkerOptions {
            heartbeat: Duration::from_millis(100),
            liveness: 3,
            reconnect: Duration::from_millis(200),
            reconnect_max: Duration::from_millis(500),
            request_ids: false,
            credit: 1,
            dialect: Default::default(),
        };
        let mut worker = Worker::new(&ep, "echo", options).unwrap();
        // Deliberately slow work (B above): heartbeats must go on during it.
        let handler = |body| async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            body
        };
        tokio::select! {
            result = worker.run(handler) => panic!("worker stopped: {result:?}"),
            _ = stop_rx => {}
        }
        worker.shutdown().await;
    });
    phase_rx
        .recv_timeout(SOON * 3)
        .expect("the fake broker got through its phases");
    stop_tx.send(()).unwrap();
    rt.block_on(task).unwrap();
    let seen = fake.join().unwrap();
    assert!(
        seen.heartbeats_while_busy >= 2,
        "only {} heartbeats during a 500 ms request",
        seen.heartbeats_while_busy
    );
    let ids = &seen.identities;
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
}

#[test]
fn the_worker_api_refuses_reserved_and_invalid_names() {
    let rt = runtime();
    let _guard = rt.enter();
    let options = WorkerOptions::default;
    assert!(Worker::new("tcp://127.0.0.1:1", "mmi.echo", options()).is_err());
    assert!(Worker::new("tcp://127.0.0.1:1", "", options()).is_err());
    assert!(Worker::new("bogus", "echo", options()).is_err());
    assert!(Client::new("bogus", ClientOptions::default()).is_err());
}

/// One broker of a pair with short heartbeats, ready.
fn paired_broker(role: &str, bind: &str, state_pub: &str, state_sub: &str) -> Proc {
    let args = [
        &format!("--{role}"),
        "--bind",
        bind,
        "--state-pub",
        state_pub,
        "--state-sub",
        state_sub,
        "--heartbeat-ms",
        HEARTBEAT_MS,
        "--pair-heartbeat-ms",
        HEARTBEAT_MS,
    ];
    let mut proc = Proc::spawn(role, mdbroker(), args);
    proc.wait_for("mdbroker ready on", SOON);
    proc
}

/// The Guide's one-broker peers (here libzmq ones, as the C `mdworker` and `mdclient` speak)
/// against a broker pair, as the README says: a worker registered with the ACTIVE broker serves
/// its requests and never sees a frame of the pair extension; a client of the PASSIVE broker
/// gets no answer while the ACTIVE one lives (its request is not a vote).
#[test]
fn libzmq_one_broker_peers_against_a_broker_pair() {
    let [primary, backup, primary_state, backup_state] = [(); 4].map(|_| tcp_endpoint());
    let mut first = paired_broker("primary", &primary, &primary_state, &backup_state);
    let mut second = paired_broker("backup", &backup, &backup_state, &primary_state);
    first.wait_for("I: state ACTIVE", SOON);
    second.wait_for("I: state PASSIVE", SOON);
    let ctx = zmq::Context::new();

    let worker_ctx = ctx.clone();
    let worker_ep = primary.clone();
    let (done, stop) = mpsc::channel::<()>();
    let libzmq_worker = std::thread::spawn(move || {
        let w = socket(&worker_ctx, zmq::DEALER);
        w.connect(&worker_ep).unwrap();
        send(&w, f(&[b"", b"MDPW01", READY, b"zmq.echo"]));
        let (mut heartbeats, mut served) = (0, 0);
        let mut last_heartbeat = Instant::now();
        while stop.try_recv().is_err() {
            if last_heartbeat.elapsed() >= Duration::from_millis(100) {
                send(&w, f(&[b"", b"MDPW01", HEARTBEAT]));
                last_heartbeat = Instant::now();
            }
            let Some(m) = recv(&w, 50) else { continue };
            assert_eq!(&m[..2], &f(&[b"", b"MDPW01"])[..], "{m:?}");
            match &m[2][..] {
                HEARTBEAT => {
                    assert_eq!(m.len(), 3, "a plain HEARTBEAT: no standing frame");
                    heartbeats += 1;
                }
                REQUEST => {
                    // client, "", body: no standing and no rid frame in front of the body.
                    assert_eq!(m.len(), 6, "{m:?}");
                    assert!(m[4].is_empty(), "{m:?}");
                    let reply = f(&[b"", b"MDPW01", REPLY, &m[3], b"", &m[5]]);
                    send(&w, reply);
                    served += 1;
                }
                other => panic!("unexpected command {other:?}"),
            }
        }
        send(&w, f(&[b"", b"MDPW01", DISCONNECT]));
        (served, heartbeats)
    });
    first.wait_for("ready for service zmq.echo", SOON);

    // A client of the ACTIVE broker is served, in plain 7/MDP.
    let active = socket(&ctx, zmq::REQ);
    active.connect(&primary).unwrap();
    for body in [&b"one"[..], b"two"] {
        send(&active, f(&[b"MDPC01", b"zmq.echo", body]));
        assert_eq!(
            recv(&active, 10_000),
            Some(f(&[b"MDPC01", b"zmq.echo", body]))
        );
    }
    // A client of the PASSIVE broker is not answered: the ACTIVE one lives, so no vote.
    let passive = socket(&ctx, zmq::REQ);
    passive.connect(&backup).unwrap();
    send(&passive, f(&[b"MDPC01", b"zmq.echo", b"three"]));
    second.wait_for("request dropped in state PASSIVE", SOON);
    assert_eq!(recv(&passive, 500), None);
    // Still one ACTIVE broker, and it still serves.
    send(&active, f(&[b"MDPC01", b"zmq.echo", b"four"]));
    assert_eq!(
        recv(&active, 10_000),
        Some(f(&[b"MDPC01", b"zmq.echo", b"four"]))
    );
    assert_eq!(second.count("I: state ACTIVE"), 0, "{:?}", second.lines());

    done.send(()).unwrap();
    let (served, heartbeats) = libzmq_worker.join().unwrap();
    assert_eq!(served, 3);
    assert!(heartbeats >= 1, "the worker heard the broker's heartbeats");
}

/// Why the plain broker below stopped serving, if it did.
type Violation = Arc<Mutex<Option<String>>>;

/// A minimal 7/MDP broker on libzmq, written here from the spec (PROTOCOLS.md), as a stand-in
/// for a foreign broker such as the Guide's C one: one ROUTER for clients and workers, READY,
/// REQUEST, REPLY, HEARTBEAT and DISCONNECT, one idle-worker list and one request queue per
/// service, HEARTBEAT to every worker each 500 ms; no MMI and no extension. Anything beyond
/// plain 7/MDP is a violation that ends it, as the C broker's assertions end that one: a client
/// request without a body frame (the C broker asserts `zmsg_size (msg) >= 2`), a READY with a
/// frame after the service (our request-id marker), a request whose body starts with a rid
/// frame. It runs until `stop` is set.
fn plain_mdp_broker(router: zmq::Socket, stop: &AtomicBool, violation: &Violation) {
    let mut idle: HashMap<Vec<u8>, VecDeque<Vec<u8>>> = HashMap::new();
    let mut waiting: HashMap<Vec<u8>, VecDeque<(Vec<u8>, Frames)>> = HashMap::new();
    let mut workers: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut heartbeat_at = Instant::now();
    let fail = |why: String| *violation.lock().unwrap() = Some(why);
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= heartbeat_at {
            for worker in workers.keys() {
                send(&router, f(&[worker, b"", b"MDPW01", HEARTBEAT]));
            }
            heartbeat_at = Instant::now() + Duration::from_millis(500);
        }
        let Some(mut m) = recv(&router, 50) else {
            continue;
        };
        if m.len() < 3 || !m[1].is_empty() {
            return fail(format!("not MDP: {m:?}"));
        }
        let sender = m[0].clone();
        let rest = m.split_off(3);
        let mut service = None;
        match (&m[2][..], rest.split_first()) {
            (b"MDPC01", Some((name, body))) => {
                if body.is_empty() {
                    return fail(format!("a client request without a body: {name:?}"));
                }
                if body[0].starts_with(b"\0MDPRID1:") {
                    return fail(format!("a request id: {:?}", body[0]));
                }
                let queue = waiting.entry(name.clone()).or_default();
                queue.push_back((sender, body.to_vec()));
                service = Some(name.clone());
            }
            (b"MDPW01", Some((command, args))) => match &command[..] {
                READY => {
                    if args.len() != 1 || workers.contains_key(&sender) {
                        return fail(format!("not a plain first READY: {args:?}"));
                    }
                    workers.insert(sender.clone(), args[0].clone());
                    idle.entry(args[0].clone()).or_default().push_back(sender);
                    service = Some(args[0].clone());
                }
                REPLY => {
                    let Some(name) = workers.get(&sender).cloned() else {
                        send(&router, f(&[&sender, b"", b"MDPW01", DISCONNECT]));
                        continue;
                    };
                    if args.len() < 2 || !args[1].is_empty() {
                        return fail(format!("a REPLY without a client envelope: {args:?}"));
                    }
                    let mut reply = f(&[&args[0], b"", b"MDPC01", &name]);
                    reply.extend(args[2..].iter().cloned());
                    send(&router, reply);
                    idle.entry(name.clone()).or_default().push_back(sender);
                    service = Some(name);
                }
                HEARTBEAT => {}
                DISCONNECT => {
                    if let Some(name) = workers.remove(&sender) {
                        idle.entry(name).or_default().retain(|w| *w != sender);
                    }
                }
                other => return fail(format!("unknown worker command {other:?}")),
            },
            _ => return fail(format!("not MDP/0.1: {m:?} {rest:?}")),
        }
        // Dispatch what waits for the service just touched to its idle workers.
        let Some(name) = service else { continue };
        let (queue, free) = (
            waiting.entry(name.clone()).or_default(),
            idle.entry(name).or_default(),
        );
        while !queue.is_empty() && !free.is_empty() {
            let (client, body) = queue.pop_front().expect("not empty");
            let worker = free.pop_front().expect("not empty");
            let mut request = f(&[&worker, b"", b"MDPW01", REQUEST, &client, b""]);
            request.extend(body);
            send(&router, request);
        }
    }
}

#[test]
fn mdbench_measures_a_plain_libzmq_mdp_broker() {
    // --help says how to find the broker's pid.
    common::testkit::assert_help_mentions(
        env!("CARGO_BIN_EXE_mdbench"),
        &["--broker-pid", "ss -ltnp", "--only-broker"],
    );
    let ctx = zmq::Context::new();
    let (router, ep) = bound_router(&ctx);
    let violation = Violation::default();
    let _broker = Background::spawn({
        let violation = Arc::clone(&violation);
        move |stop| plain_mdp_broker(router, stop, &violation)
    });
    // The broker is a thread of this test process: its CPU time is the process's (other tests
    // included), so only its presence is checked, not its value.
    let pid = std::process::id().to_string();
    let mut bench = Proc::spawn(
        "mdbench",
        env!("CARGO_BIN_EXE_mdbench"),
        [
            "--broker",
            &ep,
            "--broker-pid",
            &pid,
            "--no-pair",
            "--no-credit",
            "--rounds",
            "1",
            "--sync-requests",
            "100",
            "--requests",
            "300",
            "--window",
            "50",
        ],
    );
    let status = bench.wait_exit(SOON * 8).expect("mdbench finished");
    let lines = bench.lines();
    assert_eq!(*violation.lock().unwrap(), None, "{lines:#?}");
    assert!(status.success(), "{status}: {lines:#?}");
    // A row per phase through the other broker: best and median rate, p50 and p99, '-' for
    // /floor's neighbour /other, and a CPU time per request (from --broker-pid).
    for load in ["sync, 1 worker", "async, 1 worker", "async, 4 workers"] {
        let row = format!("other {load} ");
        let line = lines
            .iter()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("no {row:?} row: {lines:#?}"));
        let figures: Vec<&str> = line[row.len()..].split_whitespace().collect();
        assert_eq!(figures.len(), 7, "{line}");
        let rate: f64 = figures[0].parse().unwrap();
        assert!(rate > 0.0, "{line}");
        let cpu: f64 = figures[6].parse().expect("a CPU time per request");
        assert!(cpu >= 0.0, "{line}");
    }
    for title in ["ours guarded vs the other", "ours --no-guard vs the other"] {
        assert!(
            lines.iter().any(|l| l.contains(title)),
            "{title}: {lines:#?}"
        );
    }
}
