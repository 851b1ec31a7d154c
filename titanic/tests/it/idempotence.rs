//! Request ids through Titanic (Guide 4.11): a `titanic.request` stored, but whose `200` never
//! reached the client because Titanic was killed, is not stored twice when the client retries.

use crate::support::{acknowledged, broker, echo_worker, eventually, titanic, WAIT};
use common::netfault::{Command, Direction, Fault, Proxy};
use common::report::Summary;
use common::testkit::{tcp_endpoint, Proc};
use std::path::Path;
use titanic::journal::{self, Record};

/// The request records in the journal at `path` (0 if it does not exist yet).
fn requests_in(path: &Path) -> usize {
    let Ok(image) = std::fs::read(path) else {
        return 0;
    };
    let Ok(scan) = journal::scan(&image) else {
        return 0;
    };
    scan.records
        .iter()
        .filter(|f| matches!(f.record, Record::Request { .. }))
        .count()
}

#[test]
fn kill_9_between_storing_a_request_and_its_200_the_retry_gets_the_same_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let endpoint = tcp_endpoint();
    let broker = broker(&endpoint);
    let _worker = echo_worker(&endpoint);
    // Titanic reaches the broker through a fault proxy, so what it sends can be held.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let upstream = endpoint.trim_start_matches("tcp://").parse().unwrap();
    let proxy = rt
        .block_on(Proxy::start("127.0.0.1:0".parse().unwrap(), upstream))
        .unwrap();
    let via = format!("tcp://{}", proxy.local_addr());
    let mut first = titanic(&via, &path, &[]);
    eventually(WAIT, "titanic's four titanic.request workers", || {
        broker.count("ready for service titanic.request") >= 4
    });
    // Requests still reach Titanic; nothing it sends (its `200`s) reaches the broker.
    proxy.apply(Command::Set(Fault::OneWay(Direction::Upstream)));

    let mut client = Proc::spawn(
        "ticlient",
        env!("CARGO_BIN_EXE_ticlient"),
        [
            "--broker",
            &endpoint,
            "--body",
            "debit 10",
            "--first-poll-ms",
            "10",
            "--poll-ms",
            "100",
            "--timeout-ms",
            "1000",
            "--retries",
            "20",
        ],
    );
    // Stored (durably: the 200 is only sent after that) and not acknowledged.
    eventually(WAIT, "the request in the journal", || {
        requests_in(&path) == 1
    });
    first.kill9();
    // The held `200` dies with the proxy's connections (a `reset` then `heal` could race with
    // the held bytes); the new Titanic reaches the broker directly.
    drop(proxy);
    drop(rt);
    assert!(
        acknowledged(&client).is_empty(),
        "the 200 got through before the kill"
    );
    let mut titanic = crate::support::titanic(&endpoint, &path, &[]);

    let status = client.wait_exit(WAIT * 2).expect("ticlient finishes");
    let summary: Summary = client.wait_for("summary", WAIT).parse().unwrap();
    assert!(status.success(), "{summary}\n{}", client.lines().join("\n"));
    assert_eq!((summary.sent, summary.answered, summary.failed), (1, 1, 0));
    let acked = acknowledged(&client);
    assert_eq!(acked.len(), 1, "one UUID: {acked:?}");
    let Some(line) = titanic.try_wait_for("already stored as", WAIT) else {
        panic!(
            "no retry found its UUID\nclient:\n{}\nbroker:\n{}\ntitanic:\n{}",
            client.lines().join("\n"),
            broker.lines().join("\n"),
            titanic.lines().join("\n")
        );
    };
    assert!(line.ends_with(&acked[0]), "{line} vs {acked:?}");
    titanic.interrupt_and_wait(WAIT);
    assert_eq!(requests_in(&path), 1, "the journal holds one request");
}

#[test]
fn ticlient_without_ids_behaves_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let endpoint = tcp_endpoint();
    let _broker = broker(&endpoint);
    let _worker = echo_worker(&endpoint);
    let mut titanic = titanic(&endpoint, &path, &[]);
    let mut client = Proc::spawn(
        "ticlient",
        env!("CARGO_BIN_EXE_ticlient"),
        [
            "--broker",
            &endpoint,
            "--count",
            "3",
            "--first-poll-ms",
            "10",
            "--poll-ms",
            "100",
            "--verify",
            "--no-request-ids",
        ],
    );
    let status = client.wait_exit(WAIT * 2).expect("ticlient finishes");
    assert!(status.success(), "{}", client.lines().join("\n"));
    assert_eq!(acknowledged(&client).len(), 3);
    titanic.interrupt_and_wait(WAIT);
    assert_eq!(requests_in(&path), 3);
}

#[test]
fn ticlient_documents_its_request_id_flag() {
    common::testkit::assert_help_mentions(env!("CARGO_BIN_EXE_ticlient"), &["--no-request-ids"]);
}
