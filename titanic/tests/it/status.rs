//! The TSP status codes as a libzmq-based MDP client sees them.

use crate::support::{broker, echo_worker, eventually, titanic, ZmqMdp, WAIT};
use common::testkit::tcp_endpoint;
use std::time::Duration;

fn is_uuid(frame: &[u8]) -> bool {
    frame.len() == 32 && frame.iter().all(u8::is_ascii_hexdigit)
}

#[test]
fn status_codes_through_a_libzmq_client() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = tcp_endpoint();
    let _broker = broker(&endpoint);
    let mut titanic = titanic(&endpoint, &dir.path().join("journal"), &[]);
    let mut mdp = ZmqMdp::new(&endpoint);

    // titanic.request: 200 + a 32-hex UUID, while no echo worker exists.
    let (status, rest) = mdp.tsp("titanic.request", &[b"echo", b"Hello world"]);
    assert_eq!(status, "200");
    assert_eq!(rest.len(), 1);
    assert!(is_uuid(&rest[0]), "{:?}", String::from_utf8_lossy(&rest[0]));
    let uuid = String::from_utf8(rest[0].clone()).unwrap();

    // titanic.reply: 300 while pending, 400 for a UUID nobody stored.
    assert_eq!(mdp.tsp("titanic.reply", &[uuid.as_bytes()]).0, "300");
    let stranger = b"0123456789ABCDEF0123456789ABCDEF";
    assert_eq!(mdp.tsp("titanic.reply", &[stranger]).0, "400");
    // titanic.close: idempotent, 200 also for an unknown UUID.
    assert_eq!(mdp.tsp("titanic.close", &[stranger]).0, "200");

    // Bad requests: 400, and Titanic goes on.
    let bad: [(&str, &[&[u8]]); 6] = [
        ("titanic.request", &[]),
        ("titanic.request", &[b"echo"]),
        ("titanic.request", &[b"", b"body"]),
        ("titanic.reply", &[b"not a uuid"]),
        ("titanic.reply", &[]),
        ("titanic.close", &[stranger, b"extra"]),
    ];
    for (service, body) in bad {
        assert_eq!(mdp.tsp(service, body).0, "400", "{service} {body:?}");
    }
    assert!(titanic.wait_exit(Duration::ZERO).is_none(), "titanic died");
    eventually(WAIT, "six E: lines", || titanic.count("answered 400") == 6);

    // Once an echo worker is there, the reply shows up: 200 + body, as often as asked.
    let _worker = echo_worker(&endpoint);
    let (status, rest) = mdp.wait_reply(&uuid);
    assert_eq!(status, "200");
    assert_eq!(rest, vec![b"Hello world".to_vec()]);
    let (status, rest) = mdp.tsp("titanic.reply", &[uuid.as_bytes()]);
    assert_eq!(
        (status.as_str(), rest),
        ("200", vec![b"Hello world".to_vec()])
    );

    // Close twice (200 both times); afterwards the UUID is unknown.
    assert_eq!(mdp.tsp("titanic.close", &[uuid.as_bytes()]).0, "200");
    assert_eq!(mdp.tsp("titanic.close", &[uuid.as_bytes()]).0, "200");
    assert_eq!(mdp.tsp("titanic.reply", &[uuid.as_bytes()]).0, "400");

    // Ctrl-C: a prompt, clean exit.
    let (status, _) = titanic.interrupt_and_wait(Duration::from_secs(5));
    assert!(status.success());
    titanic.wait_for("titanic stopped", WAIT);
}

#[test]
fn ticlient_round_trip_and_400_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = tcp_endpoint();
    let _broker = broker(&endpoint);
    let _titanic = titanic(&endpoint, &dir.path().join("journal"), &[]);
    let _worker = echo_worker(&endpoint);
    let fast = [
        "--first-poll-ms",
        "10",
        "--poll-ms",
        "50",
        "--timeout-ms",
        "1500",
    ];

    let mut client = common::testkit::Proc::spawn(
        "ticlient",
        env!("CARGO_BIN_EXE_ticlient"),
        [
            "--broker",
            &endpoint,
            "--verify",
            "--count",
            "20",
            "--concurrency",
            "4",
        ]
        .into_iter()
        .chain(fast),
    );
    let status = client.wait_exit(WAIT * 3).expect("ticlient did not finish");
    assert!(status.success(), "{}", client.lines().join("\n"));
    let summary: common::report::Summary = client.wait_for("summary", WAIT).parse().unwrap();
    assert_eq!(
        (summary.sent, summary.answered, summary.failed),
        (20, 20, 0)
    );

    // An empty service name is refused with 400: ticlient fails, says so, exits non-zero.
    let mut client = common::testkit::Proc::spawn(
        "ticlient",
        env!("CARGO_BIN_EXE_ticlient"),
        ["--broker", &endpoint, "--service", ""]
            .into_iter()
            .chain(fast),
    );
    let status = client.wait_exit(WAIT * 3).expect("ticlient did not finish");
    assert!(!status.success());
    let summary: common::report::Summary = client.wait_for("summary", WAIT).parse().unwrap();
    assert_eq!((summary.sent, summary.failed), (1, 1));
    assert_eq!(client.count("titanic.request answered 400"), 1);
}
