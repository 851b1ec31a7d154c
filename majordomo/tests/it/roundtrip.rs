//! Round trips through `mdbroker` with our binaries and APIs; MMI answers; clean exits.

use crate::util::*;
use common::testkit::{tcp_endpoint, Proc};
use common::Message;
use majordomo::broker::{MMI_BROKER, MMI_SERVICES, MMI_WORKERS};
use majordomo::mmi::{parse_broker, ServiceRow, WorkerRow, SHOWN_ID_CHARS};
use majordomo::{AsyncClient, ClientOptions};
use std::time::Duration;

#[test]
fn sync_and_async_round_trips_through_mdbroker() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let _w1 = worker("worker1", &mut broker, &ep, &[]);
    let _w2 = worker("worker2", &mut broker, &ep, &[]);

    let mut client = Proc::spawn(
        "mdclient",
        env!("CARGO_BIN_EXE_mdclient"),
        ["--broker", &ep, "--requests", "200"],
    );
    assert_eq!(client.wait_exit(SOON * 2).map(|s| s.code()), Some(Some(0)));
    let s = client.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (200, 200, 0));

    let mut client2 = Proc::spawn(
        "mdclient2",
        env!("CARGO_BIN_EXE_mdclient2"),
        ["--broker", &ep, "--requests", "3000", "--window", "200"],
    );
    assert_eq!(client2.wait_exit(SOON * 2).map(|s| s.code()), Some(Some(0)));
    let s = client2.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (3000, 3000, 0));

    // In-process: multi-frame bodies (empty frames included) come back intact, in both APIs.
    runtime().block_on(async {
        let body = Message::from_frames(["a", "", "c"]);
        let reply = crate::util::client(&ep)
            .send("echo", body.clone())
            .await
            .unwrap();
        assert_eq!(reply, body);

        let options = ClientOptions {
            timeout: Duration::from_secs(5),
            retries: 1,
        };
        let mut pipelined = AsyncClient::connect(&ep, options).await.unwrap();
        for i in 0..50 {
            pipelined
                .send("echo", Message::from_frames([format!("{i}")]))
                .await
                .unwrap();
        }
        let mut seen: Vec<u32> = Vec::new();
        for _ in 0..50 {
            let (service, body) = pipelined.recv().await.unwrap().expect("a reply");
            assert_eq!(service, "echo");
            seen.push(first(&body).parse().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());

        let services = ServiceRow::parse_all(&mmi(&ep, MMI_SERVICES, &[]).await).unwrap();
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].name, "echo");
        assert_eq!(services[0].idle, 2);
        assert!(services[0].served >= 3251, "{services:?}");
    });
}

#[test]
fn mmi_answers_200_404_and_501() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let lookup = |args: &[&str]| {
        let mut all = vec!["--broker", ep.as_str()];
        all.extend_from_slice(args);
        let mut p = Proc::spawn("mmiecho", env!("CARGO_BIN_EXE_mmiecho"), all);
        assert_eq!(p.wait_exit(SOON).map(|s| s.code()), Some(Some(0)));
        p.lines()
            .into_iter()
            .find(|l| l.starts_with("Lookup"))
            .unwrap()
    };
    assert_eq!(lookup(&["--service", "echo"]), "Lookup echo service: 404");
    let w = worker("worker", &mut broker, &ep, &[]);
    let ready = w.lines().into_iter().find(|l| l.contains("ready as"));
    let id = worker_id(&ready.expect("the worker's ready line"));
    assert_eq!(lookup(&["--service", "echo"]), "Lookup echo service: 200");
    assert_eq!(lookup(&["--service", "nope"]), "Lookup nope service: 404");
    assert_eq!(
        lookup(&["--service", "echo", "--mmi", "mmi.nope"]),
        "Lookup echo service: 501"
    );

    runtime().block_on(async {
        let workers = WorkerRow::parse_all(&mmi(&ep, MMI_WORKERS, &[]).await).unwrap();
        assert_eq!(workers.len(), 1);
        // Any client may ask: it learns the start of the identity, not enough to take it over.
        assert_eq!(
            workers[0].id,
            format!("{}..", &id[..SHOWN_ID_CHARS]),
            "{id}"
        );
        assert_eq!(workers[0].service, "echo");
        assert!(!workers[0].busy);
        let stats = parse_broker(&mmi(&ep, MMI_BROKER, &[]).await).unwrap();
        assert!(stats.contains(&("workers".to_owned(), 1)), "{stats:?}");
    });

    let mut admin = Proc::spawn(
        "mdadmin",
        env!("CARGO_BIN_EXE_mdadmin"),
        ["--broker", &ep, "--workers", "--stats"],
    );
    assert_eq!(admin.wait_exit(SOON).map(|s| s.code()), Some(Some(0)));
    let lines = admin.lines();
    assert!(lines[0].starts_with("service"), "{lines:?}");
    let echo: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(echo, ["echo", "1", "0", "0", "0"], "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("worker ")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("workers ")), "{lines:?}");
}

#[test]
fn long_requests_do_not_get_the_worker_purged() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    // 1.5 s of work against a 3 × 100 ms liveness: only background heartbeats keep it alive.
    let _w = worker("slow", &mut broker, &ep, &["--work-ms", "1500"]);
    let mut client = Proc::spawn(
        "mdclient",
        env!("CARGO_BIN_EXE_mdclient"),
        [
            "--broker",
            &ep,
            "--requests",
            "2",
            "--timeout-ms",
            "10000",
            "--retries",
            "1",
        ],
    );
    assert_eq!(client.wait_exit(SOON * 2).map(|s| s.code()), Some(Some(0)));
    assert_eq!(client.summary().expect("a summary line").answered, 2);
    assert_eq!(broker.count("expired"), 0, "{:?}", broker.lines());
}

#[test]
fn ctrl_c_sends_disconnect_and_every_program_exits_promptly() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let mut w = worker("worker", &mut broker, &ep, &[]);
    let id = worker_id(
        &w.lines()
            .into_iter()
            .find(|l| l.contains("ready as"))
            .unwrap(),
    );
    w.interrupt();
    broker.wait_for(&format!("worker {id} disconnected"), SOON);
    assert!(w.wait_exit(Duration::from_secs(3)).unwrap().success());
    w.wait_for("sent DISCONNECT", SOON);

    // A client waiting for a service with no workers leaves at once on Ctrl-C, with its summary.
    let mut client = Proc::spawn(
        "mdclient",
        env!("CARGO_BIN_EXE_mdclient"),
        ["--broker", &ep, "--requests", "1", "--timeout-ms", "60000"],
    );
    wait_until("the request waits in the broker", SOON, || {
        let reply = runtime().block_on(mmi(&ep, MMI_SERVICES, &[]));
        ServiceRow::parse_all(&reply)
            .unwrap()
            .iter()
            .any(|s| s.waiting == 1)
    });
    let (status, _) = client.interrupt_and_wait(Duration::from_secs(3));
    let s = client.summary().expect("a summary line");
    assert_eq!(
        (s.sent, s.answered, s.failed),
        (1, 0, 1),
        "in flight at Ctrl-C = failed"
    );
    assert!(!status.success());

    let (status, _) = broker.interrupt_and_wait(Duration::from_secs(3));
    assert!(status.success());
    broker.wait_for("shutting down", SOON);
}

#[test]
fn requests_for_a_service_without_workers_expire() {
    let ep = tcp_endpoint();
    let mut broker = broker(
        &ep,
        &["--request-timeout", "300", "--max-queue-bytes", "1000"],
    );
    let rt = runtime();
    // Kept open to the end: the zeromq crate has no LINGER, queued requests die with the socket.
    let _client = rt.block_on(async {
        let options = ClientOptions {
            timeout: Duration::from_secs(5),
            retries: 1,
        };
        let mut c = AsyncClient::connect(&ep, options).await.unwrap();
        for _ in 0..8 {
            c.send("nobody", Message::from_frames(["x"])).await.unwrap();
        }
        c
    });
    // About 200 bytes a request (frames + overhead): four or five fit in 1000 bytes.
    broker.wait_for("queue of service nobody full (", SOON);
    broker.wait_for("for nobody expired after 300 ms in queue, dropped", SOON);
    wait_until("every request is accounted for", SOON, || {
        let stats = rt.block_on(async { parse_broker(&mmi(&ep, MMI_BROKER, &[]).await) });
        let stats = stats.unwrap();
        let get = |k: &str| stats.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let (expired, full) = (
            get("expired").unwrap_or(0),
            get("dropped_full").unwrap_or(0),
        );
        expired >= 3 && full >= 2 && expired + full == 8 && get("services") == Some(0)
    });
}

/// `mdworker --broker A --broker B` registers with both (one connection and identity each) and
/// serves the clients of both; two lone brokers send no standings, so they get no pair frames
/// and never complain. A third broker, one endpoint twice, or a pair without request ids are
/// usage errors.
#[test]
fn mdworker_serves_two_brokers_and_refuses_three() {
    let mdworker = env!("CARGO_BIN_EXE_mdworker");
    let (a, b) = (tcp_endpoint(), tcp_endpoint());
    let c = tcp_endpoint();
    for bad in [
        vec!["--broker", &a, "--broker", &b, "--broker", &c],
        vec!["--broker", &a, "--broker", &a],
        vec!["--broker", &a, "--broker", &b, "--no-request-ids"],
    ] {
        let mut p = Proc::spawn("mdworker", mdworker, bad.clone());
        let status = p.wait_exit(SOON).expect("a usage error exits at once");
        assert_eq!(status.code(), Some(2), "{bad:?}");
        assert_eq!(p.count("worker ready"), 0);
    }

    let mut broker_a = broker(&a, &[]);
    let mut broker_b = broker(&b, &[]);
    let mut w = Proc::spawn(
        "worker",
        mdworker,
        [
            "--broker",
            &a,
            "--broker",
            &b,
            "--heartbeat-ms",
            HEARTBEAT_MS,
            "--log-executions",
        ],
    );
    assert_eq!(w.wait_count("worker ready as", 2, SOON), 2);
    let ready = |ep: &str| {
        let line = w
            .lines()
            .into_iter()
            .find(|l| l.contains("worker ready as") && l.ends_with(&format!(" on {ep}")))
            .unwrap_or_else(|| panic!("no READY to {ep}"));
        worker_id(&line)
    };
    let (id_a, id_b) = (ready(&a), ready(&b));
    assert_ne!(id_a, id_b, "one identity per broker");
    broker_a.wait_for(&format!("worker {id_a} ready for service echo"), SOON);
    broker_b.wait_for(&format!("worker {id_b} ready for service echo"), SOON);

    for ep in [&a, &b] {
        let mut client = Proc::spawn(
            "mdclient",
            env!("CARGO_BIN_EXE_mdclient"),
            ["--broker", ep, "--requests", "5"],
        );
        assert_eq!(client.wait_exit(SOON).map(|s| s.code()), Some(Some(0)));
        let s = client.summary().expect("a summary line");
        assert_eq!((s.sent, s.answered, s.failed), (5, 5, 0), "through {ep}");
    }
    assert_eq!(w.wait_count("executed request id=", 10, SOON), 10);
    let (status, _) = w.interrupt_and_wait(Duration::from_secs(3));
    assert!(status.success());
    assert_eq!(w.count("sent DISCONNECT, worker stopped"), 2);
    broker_a.wait_for(&format!("worker {id_a} disconnected"), SOON);
    broker_b.wait_for(&format!("worker {id_b} disconnected"), SOON);
    for broker in [&broker_a, &broker_b] {
        assert_eq!(broker.count("E:"), 0, "{}", broker.lines().join("\n"));
    }
}

/// CPU time (user + system) of a process so far, in clock ticks, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_busy_polling_broker_answers_everything_then_sleeps_when_idle() {
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &["--spin-us", "1000"]);
    let _w1 = worker("worker1", &mut broker, &ep, &[]);
    let _w2 = worker("worker2", &mut broker, &ep, &[]);
    for (bin, path, requests) in [
        ("mdclient", env!("CARGO_BIN_EXE_mdclient"), "200"),
        ("mdclient2", env!("CARGO_BIN_EXE_mdclient2"), "3000"),
    ] {
        let mut client = Proc::spawn(bin, path, ["--broker", &ep, "--requests", requests]);
        assert_eq!(client.wait_exit(SOON * 2).map(|s| s.code()), Some(Some(0)));
        let s = client.summary().expect("a summary line");
        let sent: u64 = requests.parse().unwrap();
        assert_eq!((s.sent, s.answered, s.failed), (sent, sent, 0));
    }
    // Idle but for the workers' heartbeats: each wakes the broker for at most 1 ms of polling,
    // so over two seconds it uses a small part of a core, not all of it.
    let pid = broker.pid().expect("the broker runs");
    // `/proc` counts in USER_HZ, 100 a second on Linux.
    let ticks_per_s = 100;
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(
        used < ticks_per_s / 2,
        "an idle polling broker used {used} ticks in 2 s ({ticks_per_s} a second)"
    );
}
