//! Shared helpers: start the real binaries with short heartbeats, ask the broker over MMI.

use common::testkit::Proc;
use common::Message;
use majordomo::{Client, ClientOptions};
use std::time::{Duration, Instant};

/// Heartbeat used by every process test: short, so failures show quickly.
pub const HEARTBEAT_MS: &str = "100";
/// Generous bound for anything that should take well under a second.
pub const SOON: Duration = Duration::from_secs(15);

pub fn mdbroker() -> String {
    env!("CARGO_BIN_EXE_mdbroker").to_owned()
}

/// Starts `mdbroker` on `endpoint` with short heartbeats (plus `extra` flags); waits until ready.
pub fn broker(endpoint: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--bind", endpoint, "--heartbeat-ms", HEARTBEAT_MS];
    args.extend_from_slice(extra);
    let mut proc = Proc::spawn("mdbroker", mdbroker(), args);
    proc.wait_for("mdbroker ready on", SOON);
    proc
}

/// Starts an echo `mdworker` and waits until the broker has registered it.
pub fn worker(name: &str, broker: &mut Proc, endpoint: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--broker",
        endpoint,
        "--heartbeat-ms",
        HEARTBEAT_MS,
        "--reconnect-ms",
        "200",
        "--reconnect-max-ms",
        "500",
    ];
    args.extend_from_slice(extra);
    let mut proc = Proc::spawn(name, env!("CARGO_BIN_EXE_mdworker"), args);
    let line = proc.wait_for("worker ready as", SOON);
    let id = worker_id(&line);
    broker.wait_for(&format!("worker {id} ready for service"), SOON);
    proc
}

/// The identity in a worker's `I: (svc) worker ready as <id> on <ep>` line.
pub fn worker_id(line: &str) -> String {
    line.split("ready as ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no identity in {line:?}"))
        .to_owned()
}

/// A small tokio runtime for a test's in-process sockets.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A synchronous client with a patient timeout.
pub fn client(endpoint: &str) -> Client {
    let options = ClientOptions {
        timeout: Duration::from_millis(2000),
        retries: 5,
    };
    Client::new(endpoint, options).unwrap()
}

/// Sends one MMI request and returns the reply body.
pub async fn mmi(endpoint: &str, service: &str, body: &[&str]) -> Message {
    let body = body.iter().map(|s| s.to_string()).collect();
    client(endpoint).send(service, body).await.unwrap()
}

/// The first frame of a reply as text.
pub fn first(reply: &Message) -> String {
    String::from_utf8_lossy(reply.first().expect("a frame")).into_owned()
}

/// Polls `check` every 50 ms until it returns true; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Resident set size of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}
