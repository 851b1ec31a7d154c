//! Interop with majortomo (PyPI), a third-party MDP/0.2 implementation in Python: its own
//! client and worker through our broker, and our 0.2 client and worker through its broker.
//!
//! The peers run from `target/majortomo-venv` (made by `.ci/majortomo-venv`, which `.ci/run`
//! calls; this test calls it too if the environment is missing). Without Python the tests are
//! skipped with the reason (under `CI=true` they fail instead).

use crate::util::*;
use common::testkit::{prerequisite, tcp_endpoint, Proc};
use common::Message;
use majordomo::protocol::Dialect;
use majordomo::{ClientOptions, Part, StreamClient};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtual environment's python with majortomo, made if missing; `None` if it cannot be.
fn majortomo_python() -> Option<PathBuf> {
    let python = workspace().join("target/majortomo-venv/bin/python");
    let setup = workspace().join(".ci/majortomo-venv");
    let ok = Command::new(&setup).status().is_ok_and(|s| s.success());
    (ok && python.exists()).then_some(python)
}

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/majortomo_peer.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// One of majortomo's peers (see the fixture), started and ready.
fn peer(python: &PathBuf, name: &str, args: &[&str]) -> Proc {
    let mut all = vec![fixture()];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut proc = Proc::spawn(name, python, all);
    proc.wait_for("ready", SOON);
    proc
}

fn stream_options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(3000),
        retries: 2,
    }
}

fn partial(s: &str) -> Part {
    Part::Partial(Message::from_frames([s.to_owned()]))
}

fn last(s: &str) -> Part {
    Part::Final(Message::from_frames([s.to_owned()]))
}

#[test]
fn majortomos_client_and_worker_through_our_broker() {
    let Some(python) = prerequisite(majortomo_python(), || {
        "no python3 with venv and pip to install majortomo (.ci/majortomo-venv)".into()
    }) else {
        return;
    };
    let ep = tcp_endpoint();
    let mut broker = broker(&ep, &[]);
    let _worker = peer(
        &python,
        "majortomo-worker",
        &["worker", &ep, "mt.report", "3"],
    );
    broker.wait_for("ready for service mt.report", SOON);

    // majortomo's client: its REQUEST (0x02, an empty frame first) and our replies in its
    // framing (no service frame), every part in order, then the end.
    let mut client = Proc::spawn(
        "majortomo-client",
        &python,
        [
            fixture(),
            "client".into(),
            ep.clone(),
            "mt.report".into(),
            "q".into(),
        ],
    );
    client.wait_for("DONE", SOON);
    let parts: Vec<String> = client
        .lines()
        .into_iter()
        .filter_map(|l| l.strip_prefix("PART ").map(str::to_owned))
        .collect();
    assert_eq!(parts, ["q-1", "q-2", "q-3", "q-final"]);

    // Our own clients of majortomo's worker, in both 0.2 dialects.
    for dialect in [Dialect::Majortomo, Dialect::Rfc18] {
        let got = runtime().block_on(async {
            let mut c = StreamClient::new(&ep, stream_options(), dialect).unwrap();
            let reply = c.request("mt.report", Message::from_frames(["r"])).await;
            reply.unwrap().collect().await.unwrap()
        });
        assert_eq!(
            got,
            [
                partial("r-1"),
                partial("r-2"),
                partial("r-3"),
                last("r-final")
            ],
            "{dialect}"
        );
    }
    // majortomo's client asks MMI nothing (it has none); ours does, in its dialect.
    let mmi = runtime().block_on(async {
        let mut c = StreamClient::new(&ep, stream_options(), Dialect::Majortomo).unwrap();
        let reply = c
            .request("mmi.service", Message::from_frames(["mt.report"]))
            .await;
        reply.unwrap().collect().await.unwrap()
    });
    assert_eq!(mmi, [last("200")]);
    assert_eq!(broker.count("malformed"), 0, "{:?}", broker.lines());
}

#[test]
fn our_02_client_and_worker_through_majortomos_broker() {
    let Some(python) = prerequisite(majortomo_python(), || {
        "no python3 with venv and pip to install majortomo (.ci/majortomo-venv)".into()
    }) else {
        return;
    };
    let ep = tcp_endpoint();
    let _broker = peer(&python, "majortomo-broker", &["broker", &ep]);
    let mut worker = Proc::spawn(
        "mdworker-majortomo",
        env!("CARGO_BIN_EXE_mdworker"),
        [
            "--broker",
            &ep,
            "--dialect",
            "majortomo",
            "--service",
            "report",
            "--partials",
            "3",
            "--heartbeat-ms",
            "500",
        ],
    );
    worker.wait_for("worker ready as", SOON);
    // majortomo's broker knows no request ids: it would hand the id frame to the worker.
    let got = runtime().block_on(async {
        let mut c = StreamClient::new(&ep, stream_options(), Dialect::Majortomo)
            .unwrap()
            .without_request_ids();
        let mut all = Vec::new();
        for body in ["a", "b"] {
            let reply = c.request("report", Message::from_frames([body])).await;
            all.push(reply.unwrap().collect().await.unwrap());
        }
        all
    });
    for (parts, body) in got.iter().zip(["a", "b"]) {
        assert_eq!(
            parts,
            &[
                partial("part 1/3"),
                partial("part 2/3"),
                partial("part 3/3"),
                last(body)
            ]
        );
    }
    // Heartbeats both ways keep our worker registered there (majortomo's broker expires a
    // worker after 2 s without one; ours sends one every 500 ms).
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(worker.count("worker ready as"), 1, "{:?}", worker.lines());
    assert_eq!(worker.count("disconnected by broker"), 0);
    let again = runtime().block_on(async {
        let mut c = StreamClient::new(&ep, stream_options(), Dialect::Majortomo)
            .unwrap()
            .without_request_ids();
        let reply = c.request("report", Message::from_frames(["c"])).await;
        reply.unwrap().collect().await.unwrap()
    });
    assert_eq!(again.last(), Some(&last("c")));
}
