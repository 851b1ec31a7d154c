//! Worker credit (`majordomo::credit`) with real processes and sockets: the credit is honoured,
//! replies out of order reach their clients, a worker killed with requests out loses none and
//! runs none twice, and a libzmq worker that does not ask still gets one request at a time.

use crate::util::*;
use common::testkit::{tcp_endpoint, Proc};
use common::Message;
use majordomo::mmi::WorkerRow;
use majordomo::rid::Rid;
use majordomo::{AsyncClient, ClientOptions};
use majordomo::{Worker, WorkerOptions};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn patient() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(20),
        retries: 1,
    }
}

/// The `mmi.workers` rows of the broker at `ep`.
async fn workers(ep: &str) -> Vec<WorkerRow> {
    WorkerRow::parse_all(&mmi(ep, "mmi.workers", &[]).await).unwrap()
}

/// `clients` async clients with ids each send `per_client` requests to `service`; returns
/// every (client, request body, reply body, request id, reply id).
async fn round(
    ep: &str,
    service: &str,
    clients: usize,
    per_client: usize,
) -> Vec<(usize, String, String, Option<Rid>, Option<Rid>)> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (ep, service) = (ep.to_owned(), service.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut client = AsyncClient::connect(&ep, patient())
                .await
                .unwrap()
                .with_request_ids(true);
            let mut sent = HashMap::new();
            for i in 0..per_client {
                let body = format!("client {c} request {i}");
                let rid = client
                    .send(&service, Message::from_frames([body.clone()]))
                    .await
                    .unwrap();
                sent.insert(body, rid);
            }
            let mut got = Vec::new();
            for _ in 0..per_client {
                let (_, rid, reply) = client
                    .recv_with_rid(Duration::from_secs(20))
                    .await
                    .unwrap()
                    .expect("a reply within 20 s");
                let text = first(&reply);
                let asked = sent.get(&text).cloned().flatten();
                got.push((c, text, first(&reply), asked, rid));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// An in-process worker of credit 4 whose handler counts the requests it holds at once (the
/// most it ever held is the test's proof) and answers them in reverse order of arrival within
/// each batch of four (the later, the sooner), so replies overtake each other.
#[test]
fn the_credit_is_honoured_and_out_of_order_replies_reach_their_own_clients() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let rt = runtime();
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let arrived = Arc::new(AtomicUsize::new(0));
    let options = WorkerOptions {
        heartbeat: Duration::from_millis(100),
        credit: 4,
        ..WorkerOptions::default()
    };
    let (n, m, a) = (now.clone(), most.clone(), arrived.clone());
    let at = ep.clone();
    let worker = rt.spawn(async move {
        let mut worker = Worker::new(&at, "counted", options).unwrap();
        worker
            .run(move |body| {
                let (n, m, a) = (n.clone(), m.clone(), a.clone());
                async move {
                    let held = n.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(held, Ordering::SeqCst);
                    let k = a.fetch_add(1, Ordering::SeqCst) % 4;
                    tokio::time::sleep(Duration::from_millis(50 * (4 - k as u64))).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    body
                }
            })
            .await
    });
    broker.wait_for("ready for service counted", SOON);
    let rows = rt.block_on(workers(&ep));
    assert_eq!((rows[0].credit, rows[0].in_flight), (4, 0), "{rows:?}");

    let replies = rt.block_on(round(&ep, "counted", 3, 8));
    assert_eq!(replies.len(), 24);
    for (c, asked, answered, sent_rid, got_rid) in &replies {
        assert_eq!(asked, answered, "client {c}: its own reply");
        assert!(
            sent_rid.is_some() && sent_rid == got_rid,
            "client {c}: its own id"
        );
    }
    let distinct: HashSet<&String> = replies.iter().map(|r| &r.1).collect();
    assert_eq!(distinct.len(), 24, "each request answered once");
    assert_eq!(
        most.load(Ordering::SeqCst),
        4,
        "never more than the credit, and all of it"
    );
    // Every request was answered and nothing is out any more.
    let rows = rt.block_on(workers(&ep));
    assert_eq!(rows[0].in_flight, 0);
    worker.abort();
}

/// The `executed request id=` lines of `proc`, counted per id.
fn executions(procs: &[&Proc]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for proc in procs {
        for line in proc.lines() {
            if let Some(rest) = line.split("executed request id=").nth(1) {
                let id = rest.split_whitespace().next().unwrap_or_default();
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn a_worker_killed_with_requests_out_loses_none_and_runs_none_twice() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    // Ten seconds of work each: nothing finishes before the kill.
    let mut doomed = worker(
        "doomed",
        &mut broker,
        &ep,
        &[
            "--concurrency",
            "4",
            "--work-ms",
            "10000",
            "--log-executions",
        ],
    );
    let rt = runtime();
    let (ep2, requests) = (ep.clone(), 4usize);
    let client = rt.spawn(async move { round(&ep2, "echo", 1, requests).await });
    // All four are out at the worker (the broker says so), none done.
    wait_until("four requests out at the worker", SOON, || {
        rt.block_on(workers(&ep))
            .first()
            .is_some_and(|w| w.in_flight == 4)
    });
    doomed.kill9();
    broker.wait_for("(its 4 requests go to the next workers)", SOON);
    let rescuer = worker(
        "rescuer",
        &mut broker,
        &ep,
        &["--concurrency", "4", "--work-ms", "50", "--log-executions"],
    );
    let replies = rt.block_on(client).unwrap();
    assert_eq!(replies.len(), requests, "none lost");
    for (_, asked, answered, sent, got) in &replies {
        assert_eq!(asked, answered);
        assert_eq!(sent, got);
    }
    assert!(
        executions(&[&doomed]).is_empty(),
        "killed before any finished"
    );
    let counts = executions(&[&doomed, &rescuer]);
    let ids: HashSet<String> = replies
        .iter()
        .filter_map(|r| r.3.as_ref().map(Rid::to_string))
        .collect();
    assert_eq!(counts.len(), requests, "{counts:?}");
    for id in &ids {
        assert_eq!(counts.get(id), Some(&1), "{id} ran once: {counts:?}");
    }
}

const READY: &[u8] = &[1];
const REQUEST: &[u8] = &[2];
const REPLY: &[u8] = &[3];
const HEARTBEAT: &[u8] = &[4];

/// A libzmq DEALER worker (the Guide's, in effect) for `service`, whose READY carries `extra`
/// frames: it serves `serve` requests, and after each REQUEST checks that no second one comes
/// before it replies (200 ms: the broker sends at once, on loopback, or not at all).
fn libzmq_worker(
    ep: String,
    service: &'static str,
    extra: &'static [&'static [u8]],
    serve: usize,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let ctx = zmq::Context::new();
        let w = ctx.socket(zmq::DEALER).unwrap();
        w.set_linger(0).unwrap();
        w.connect(&ep).unwrap();
        let mut ready = vec![b"".to_vec(), b"MDPW01".to_vec(), READY.to_vec()];
        ready.push(service.as_bytes().to_vec());
        ready.extend(extra.iter().map(|f| f.to_vec()));
        w.send_multipart(ready, 0).unwrap();
        let recv = |ms: i32| {
            w.set_rcvtimeo(ms).unwrap();
            match w.recv_multipart(0) {
                Ok(m) => Some(m),
                Err(zmq::Error::EAGAIN) => None,
                Err(e) => panic!("libzmq recv: {e}"),
            }
        };
        let (mut served, mut overlaps) = (0, 0);
        let deadline = Instant::now() + SOON * 2;
        while served < serve {
            assert!(Instant::now() < deadline, "served {served} of {serve}");
            w.send_multipart([&b""[..], b"MDPW01", HEARTBEAT], 0)
                .unwrap();
            let Some(m) = recv(100) else { continue };
            if m[2] != REQUEST {
                continue;
            }
            // Hold it: a second REQUEST now would break the one-at-a-time promise. Heartbeats go
            // on meanwhile (the broker purges a worker silent for 300 ms).
            let deadline = Instant::now() + Duration::from_millis(200);
            while Instant::now() < deadline {
                w.send_multipart([&b""[..], b"MDPW01", HEARTBEAT], 0)
                    .unwrap();
                if let Some(other) = recv(50) {
                    if other[2] == REQUEST {
                        overlaps += 1;
                    }
                }
            }
            let mut reply = vec![b"".to_vec(), b"MDPW01".to_vec(), REPLY.to_vec()];
            reply.extend(m[3..].iter().cloned());
            w.send_multipart(reply, 0).unwrap();
            served += 1;
        }
        w.send_multipart([&b""[..], b"MDPW01", &[5u8][..]], 0)
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        overlaps
    })
}

#[test]
fn a_libzmq_worker_without_the_capability_still_gets_one_request_at_a_time() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let rt = runtime();
    // The Guide's READY, then one that asks for credit without asking for ids (refused).
    let plain = libzmq_worker(ep.clone(), "plain", &[], 4);
    broker.wait_for("ready for service plain", SOON);
    let no_ids = libzmq_worker(ep.clone(), "noids", &[b"\0MDPCRD1:8"], 4);
    broker.wait_for("asked for credit 8 without request ids", SOON);
    let rows = rt.block_on(workers(&ep));
    assert!(rows.iter().all(|r| r.credit == 1), "{rows:?}");
    for service in ["plain", "noids"] {
        let replies = rt.block_on(round(&ep, service, 2, 2));
        assert_eq!(replies.len(), 4, "{service}");
        for (_, asked, answered, sent, got) in &replies {
            assert_eq!((asked, sent), (answered, got), "{service}");
        }
    }
    assert_eq!(plain.join().unwrap(), 0, "plain worker: one at a time");
    assert_eq!(
        no_ids.join().unwrap(),
        0,
        "credit without ids: one at a time"
    );
}

/// A broker of a pair on `ep`, its state published on `publish`, the peer's read at `peer`.
fn paired(name: &str, role: &str, ep: &str, publish: &str, peer: &str) -> Proc {
    let args = [
        role,
        "--bind",
        ep,
        "--heartbeat-ms",
        HEARTBEAT_MS,
        "--state-pub",
        publish,
        "--state-sub",
        peer,
        "--pair-heartbeat-ms",
        "200",
    ];
    let mut proc = Proc::spawn(name, mdbroker(), args);
    proc.wait_for("mdbroker ready on", SOON);
    proc
}

/// A pair worker of credit 4 and a pair client under load; the primary is killed while all
/// four requests it dispatched run. The backup takes over; the retries of the running ones
/// join them (the worker told the backup it runs them) and get the replies it sends as news;
/// the rest run at the backup. Every request is answered and, counted by `--log-executions`,
/// each runs once.
#[test]
fn a_pair_worker_with_credit_runs_nothing_twice_across_a_failover() {
    let (p, b) = (tcp_endpoint(), tcp_endpoint());
    let (p_state, b_state) = (tcp_endpoint(), tcp_endpoint());
    let mut primary = paired("primary", "--primary", &p, &p_state, &b_state);
    let mut backup = paired("backup", "--backup", &b, &b_state, &p_state);
    primary.wait_for("state ACTIVE", SOON);
    backup.wait_for("state PASSIVE", SOON);
    let mut worker = Proc::spawn(
        "worker",
        env!("CARGO_BIN_EXE_mdworker"),
        [
            "--broker",
            &p,
            "--broker",
            &b,
            "--heartbeat-ms",
            HEARTBEAT_MS,
            "--reconnect-ms",
            "200",
            "--reconnect-max-ms",
            "500",
            "--concurrency",
            "4",
            "--work-ms",
            "1000",
            "--log-executions",
            "-v",
        ],
    );
    // Registered with both, and both showed it their standing (so it sends its news).
    worker.wait_for("is ACTIVE", SOON);
    worker.wait_for("is PASSIVE", SOON);
    let requests = 8;
    let mut client = Proc::spawn(
        "mdclient2",
        env!("CARGO_BIN_EXE_mdclient2"),
        [
            "--broker",
            &p,
            "--broker",
            &b,
            "--requests",
            "8",
            "--timeout-ms",
            "2500",
            "--settle-ms",
            "1000",
            "--retries",
            "5",
            "--log-requests",
        ],
    );
    // Four out at once (the credit): the primary dies while they run.
    assert_eq!(worker.wait_count("executing request id=", 4, SOON), 4);
    primary.kill9();
    let status = client.wait_exit(SOON * 2).expect("the client finishes");
    let output = client.lines().join("\n");
    assert!(status.success(), "{output}");
    let summary = client.summary().expect("a summary line");
    assert_eq!(
        (summary.answered, summary.failed),
        (requests, 0),
        "{output}"
    );
    let counts = executions(&[&worker]);
    assert_eq!(counts.len(), requests as usize, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "run twice: {counts:?}");
    assert_eq!(worker.count("count=2"), 0, "{:?}", worker.lines());
    assert_eq!(
        backup.count("failover successful"),
        1,
        "{:?}",
        backup.lines()
    );
}
