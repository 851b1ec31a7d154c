//! Faults: kill -9 a worker mid-request, kill -9 and restart the broker, forbidden services,
//! malformed floods, worker churn.

use crate::util::*;
use bytes::Bytes;
use common::testkit::{tcp_endpoint, Proc};
use common::Message;
use majordomo::broker::{MMI_BROKER, MMI_SERVICES, MMI_WORKERS};
use majordomo::mmi::{parse_broker, ServiceRow, WorkerRow};
use std::time::Duration;
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

fn frames(parts: &[&[u8]]) -> ZmqMessage {
    let parts: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
    ZmqMessage::try_from(parts).unwrap()
}

async fn dealer(ep: &str) -> DealerSocket {
    let mut socket = DealerSocket::new();
    common::sock::connect(&mut socket, ep, SOON).await.unwrap();
    socket
}

fn broker_stat(ep: &str, name: &str) -> u64 {
    let reply = runtime().block_on(mmi(ep, MMI_BROKER, &[]));
    parse_broker(&reply)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap()
}

#[test]
fn a_worker_killed_mid_request_hands_its_request_to_the_other_before_any_retry() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    // Registered first, so it gets the first request; it would take a minute to answer.
    let mut slow = worker("slow", &mut broker, &ep, &["--work-ms", "60000"]);
    let _fast = worker("fast", &mut broker, &ep, &[]);
    let mut client = Proc::spawn(
        "mdclient",
        env!("CARGO_BIN_EXE_mdclient"),
        [
            "--broker",
            &ep,
            "--requests",
            "1",
            "--timeout-ms",
            "1500",
            "--retries",
            "3",
        ],
    );
    wait_until("the slow worker holds the request", SOON, || {
        let reply = runtime().block_on(mmi(&ep, MMI_WORKERS, &[]));
        WorkerRow::parse_all(&reply).unwrap().iter().any(|w| w.busy)
    });
    slow.kill9();
    // The broker sees the connection close, purges the worker at once (not after its
    // heartbeats run out) and hands the request to the fast worker: the client's first try
    // (1500 ms) is answered, no retry.
    broker.wait_for(
        "disconnected, purged (its request goes to the next worker)",
        SOON,
    );
    assert_eq!(client.wait_exit(SOON).map(|s| s.code()), Some(Some(0)));
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed, s.retries), (1, 1, 0, 0));
    assert_eq!(broker_stat(&ep, "requeued"), 1);
    assert_eq!(broker_stat(&ep, "lost_with_worker"), 0);
}

#[test]
fn after_a_broker_restart_workers_re_register_by_themselves() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let mut w1 = worker("worker1", &mut broker, &ep, &[]);
    let mut w2 = worker("worker2", &mut broker, &ep, &[]);
    let mut client = Proc::spawn(
        "mdclient",
        env!("CARGO_BIN_EXE_mdclient"),
        [
            "--broker",
            &ep,
            "--requests",
            "60",
            "--interval-ms",
            "30",
            "--timeout-ms",
            "1000",
            "--retries",
            "10",
        ],
    );
    // Let the client get going, then pull the broker out from under everyone.
    wait_until("the client is being served", SOON, || {
        let reply = runtime().block_on(mmi(&ep, MMI_SERVICES, &[]));
        ServiceRow::parse_all(&reply)
            .unwrap()
            .iter()
            .any(|s| s.served >= 5)
    });
    w1.mark();
    w2.mark();
    broker.restart();
    broker.wait_for("mdbroker ready on", SOON);
    // No manual step: liveness runs out, back-off, fresh socket, READY.
    w1.wait_for("worker ready as", SOON);
    w2.wait_for("worker ready as", SOON);
    broker.wait_for("ready for service echo", SOON);
    broker.wait_for("ready for service echo", SOON);
    let code = runtime().block_on(mmi(&ep, "mmi.service", &["echo"]));
    assert_eq!(first(&code), "200");
    assert_eq!(client.wait_exit(SOON * 2).map(|s| s.code()), Some(Some(0)));
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (60, 60, 0));
}

#[test]
fn a_worker_offering_mmi_echo_is_disconnected() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    runtime().block_on(async {
        let mut w = dealer(&ep).await;
        w.send(frames(&[b"", b"MDPW01", &[1], b"mmi.echo"]))
            .await
            .unwrap();
        let reply = tokio::time::timeout(SOON, w.recv()).await.unwrap().unwrap();
        assert_eq!(
            Message::from(reply),
            Message::from(frames(&[b"", b"MDPW01", &[5]]))
        );
        let code = mmi(&ep, "mmi.service", &["mmi.echo"]).await;
        assert_eq!(first(&code), "404");
    });
    broker.wait_for(
        "may not offer reserved service mmi.echo, disconnected",
        SOON,
    );
    // The binary refuses the name outright.
    let mut w = Proc::spawn(
        "mdworker",
        env!("CARGO_BIN_EXE_mdworker"),
        ["--broker", &ep, "--service", "mmi.echo"],
    );
    assert!(!w.wait_exit(SOON).unwrap().success());
    w.wait_for("reserved", SOON);
}

#[test]
fn ten_thousand_malformed_messages_leave_the_broker_serving() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let _w = worker("worker", &mut broker, &ep, &[]);
    let garbage: Vec<ZmqMessage> = vec![
        frames(&[b"no delimiter"]),
        frames(&[b""]),
        frames(&[b"", b""]),
        frames(&[b"", b"MDPC01"]),
        frames(&[b"", b"MDPC01", b""]),
        frames(&[b"", b"MDPC02", b"echo", b"x"]),
        frames(&[b"", b"MDPW01"]),
        frames(&[b"", b"MDPW01", &[9]]),
        frames(&[b"", b"MDPW01", &[1, 1]]),
        frames(&[b"", b"MDPW01", &[1]]),
        frames(&[b"", b"MDPW01", &[1], b"echo", b"extra"]),
        frames(&[b"", b"MDPW01", &[3], b"C1"]),
        frames(&[b"", b"MDPW01", &[3], b"", b"x"]),
        frames(&[b"", b"MDPW01", &[4], b"extra"]),
        frames(&[b"", b"MDPW01", &[5], b""]),
        frames(&[b"", &[0xff; 300]]),
    ];
    let connections = 4;
    let per_connection = 2500;
    runtime().block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..connections {
            sockets.push(dealer(&ep).await);
        }
        for (c, socket) in sockets.iter_mut().enumerate() {
            for i in 0..per_connection {
                let m = garbage[(i + c) % garbage.len()].clone();
                socket.send(m).await.unwrap();
            }
        }
        // Keep the sockets until the broker has read everything.
        let total = (connections * per_connection) as u64;
        let started = std::time::Instant::now();
        while broker_stat_async(&ep).await < total {
            assert!(
                started.elapsed() < SOON * 2,
                "the broker did not count every message"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let reply = client(&ep)
            .send("echo", Message::from_frames(["still here"]))
            .await
            .unwrap();
        assert_eq!(reply, Message::from_frames(["still here"]));
    });
    assert_eq!(broker_stat(&ep, "malformed"), 10_000);
    assert!(broker.pid().is_some() && broker.count("panicked") == 0);
    assert!(
        broker.count("malformed message dropped") <= 200,
        "log lines are throttled"
    );
}

async fn broker_stat_async(ep: &str) -> u64 {
    let reply = mmi(ep, MMI_BROKER, &[]).await;
    parse_broker(&reply)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == "malformed")
        .map(|(_, v)| v)
        .unwrap()
}

/// Workers the broker let go by DISCONNECT (`I: worker <id> disconnected`) or expiry: each
/// registered worker that said DISCONNECT ends in exactly one of these lines.
fn workers_ended(broker: &Proc) -> usize {
    broker
        .lines()
        .iter()
        .filter(|l| {
            l.starts_with("I: worker ") && l.ends_with(" disconnected")
                || l.starts_with("W: worker ") && l.ends_with(" expired, purged")
        })
        .count()
}

#[test]
fn churn_of_ten_thousand_workers_leaves_nothing_behind() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let _w = worker("worker", &mut broker, &ep, &[]);
    let pid = broker.pid().unwrap();
    // Warm up allocator and runtime with a first small churn, then take the baseline.
    let rt = runtime();
    let churn = |cycles_per_connection: usize, fresh: usize| {
        let before = broker.count("ready for service churn-");
        let ended_before = workers_ended(&broker);
        rt.block_on(async {
            // Pipelined cycles: READY, DISCONNECT, READY, … over a few connections.
            let mut sockets = Vec::new();
            for _ in 0..8 {
                sockets.push(dealer(&ep).await);
            }
            for (c, socket) in sockets.iter_mut().enumerate() {
                for i in 0..cycles_per_connection {
                    let service = format!("churn-{}", (c * cycles_per_connection + i) % 97);
                    socket
                        .send(frames(&[b"", b"MDPW01", &[1], service.as_bytes()]))
                        .await
                        .unwrap();
                    socket.send(frames(&[b"", b"MDPW01", &[5]])).await.unwrap();
                }
            }
            // Fresh connections, one worker each: half say DISCONNECT, half just vanish.
            for i in 0..fresh {
                let mut socket = dealer(&ep).await;
                socket
                    .send(frames(&[b"", b"MDPW01", &[1], b"churn-fresh"]))
                    .await
                    .unwrap();
                if i % 2 == 0 {
                    socket.send(frames(&[b"", b"MDPW01", &[5]])).await.unwrap();
                }
                sockets.push(socket);
            }
            // No LINGER in the zeromq crate: close the sockets only once the broker has read
            // every READY and every DISCONNECT (then the vanished half is left to the broker's
            // purge). A worker that expired before its DISCONNECT was read ends there instead.
            let expected = before + 8 * cycles_per_connection + fresh;
            let ended = ended_before + 8 * cycles_per_connection + fresh.div_ceil(2);
            let started = std::time::Instant::now();
            while broker.count("ready for service churn-") < expected
                || workers_ended(&broker) < ended
            {
                assert!(
                    started.elapsed() < SOON * 2,
                    "the broker did not see every READY and DISCONNECT"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            drop(sockets);
            let started = std::time::Instant::now();
            loop {
                let rows = WorkerRow::parse_all(&mmi(&ep, MMI_WORKERS, &[]).await).unwrap();
                let services = ServiceRow::parse_all(&mmi(&ep, MMI_SERVICES, &[]).await).unwrap();
                if rows.len() == 1 && services.len() == 1 {
                    assert_eq!(rows[0].service, "echo");
                    assert_eq!(services[0].name, "echo");
                    break;
                }
                assert!(
                    started.elapsed() < SOON * 2,
                    "left behind: {rows:?} {services:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    churn(50, 20);
    let start_kib = rss_kib(pid);
    churn(1225, 200); // 8 × 1225 + 200 = 10 000 cycles
    let end_kib = rss_kib(pid);
    assert!(broker.count("ready for service churn-") >= 10_400);
    eprintln!("broker RSS: {start_kib} KiB before the churn, {end_kib} KiB after");
    assert!(
        end_kib < start_kib + 16 * 1024,
        "RSS grew from {start_kib} KiB to {end_kib} KiB"
    );
    // Still serving.
    let reply = rt.block_on(async {
        client(&ep)
            .send("echo", Message::from_frames(["after churn"]))
            .await
            .unwrap()
    });
    assert_eq!(reply, Message::from_frames(["after churn"]));
}

/// Found by `tour --chaos` (majordomo-partition, seeds 12 and 13): with a proxy in front of a
/// dead broker every connection is reset at once, and the client used to spend all its
/// attempts within milliseconds. Each attempt must still last its timeout.
#[test]
fn an_attempt_that_fails_at_once_still_lasts_its_timeout() {
    use majordomo::{Client, ClientOptions};
    runtime().block_on(async {
        // A fault proxy whose upstream is a port nobody listens on: it accepts, then resets.
        let dead = common::testkit::free_port();
        let proxy = common::netfault::Proxy::start(
            ([127, 0, 0, 1], 0).into(),
            ([127, 0, 0, 1], dead).into(),
        )
        .await
        .unwrap();
        let timeout = Duration::from_millis(300);
        let mut client = Client::new(
            &format!("tcp://{}", proxy.local_addr()),
            ClientOptions {
                timeout,
                retries: 3,
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        let result = client.send("echo", Message::from_frames(["hello"])).await;
        let took = started.elapsed();
        assert!(result.is_err(), "{result:?}");
        // Three attempts of 300 ms, less a little for timer rounding.
        assert!(took >= timeout * 3 - Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    });
}
