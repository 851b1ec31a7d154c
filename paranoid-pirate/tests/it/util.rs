//! Spawning the queue, workers and clients with short test timings.

use common::report::Summary;
use common::testkit::{bin_path, tcp_endpoint, Proc};
use std::time::{Duration, Instant};

/// Heartbeat interval used by the tests (the Guide's is 1000 ms).
pub const HEARTBEAT_MS: u64 = 250;
/// Liveness used by the tests (the Guide's value).
pub const LIVENESS: u64 = 3;
/// Generous bound for anything that should take a second or two on an idle machine.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The queue's two endpoints, fresh per test.
pub struct Net {
    pub frontend: String,
    pub backend: String,
}

impl Net {
    pub fn new() -> Net {
        let frontend = tcp_endpoint();
        let mut backend = tcp_endpoint();
        while backend == frontend {
            backend = tcp_endpoint();
        }
        Net { frontend, backend }
    }
}

fn hb() -> String {
    HEARTBEAT_MS.to_string()
}

/// `ppqueue` on `net`, waited for until it is bound.
pub fn queue(net: &Net, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--frontend".to_owned(),
        net.frontend.clone(),
        "--backend".to_owned(),
        net.backend.clone(),
        "--heartbeat-ms".to_owned(),
        hb(),
        "--liveness".to_owned(),
        LIVENESS.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut q = Proc::spawn("ppqueue", env!("CARGO_BIN_EXE_ppqueue"), args);
    q.wait_for("ppqueue ready", PATIENCE);
    q
}

/// A `ppworker` process (not waited for). Flags in `extra` replace the test defaults.
pub fn spawn_worker(name: &str, net: &Net, extra: &[&str]) -> Proc {
    let hb = hb();
    let liveness = LIVENESS.to_string();
    let defaults = [
        ("--queue", net.backend.as_str()),
        ("--heartbeat-ms", hb.as_str()),
        ("--liveness", liveness.as_str()),
        ("--reconnect-ms", "200"),
        ("--reconnect-max-ms", "1000"),
        ("--work-ms", "100"),
    ];
    let mut args: Vec<String> = defaults
        .iter()
        .filter(|(flag, _)| !extra.contains(flag))
        .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn(name, env!("CARGO_BIN_EXE_ppworker"), args)
}

/// The identity in a worker line such as `I: (<32 hex digits>) worker ready`.
pub fn worker_id(line: &str) -> String {
    let start = line.find('(').expect("( in worker line") + 1;
    let end = line[start..].find(')').expect(") in worker line") + start;
    line[start..end].to_owned()
}

/// Waits until `worker` logs ready and `queue` has registered it; returns its identity.
///
/// The queue's line is searched among all its lines, not after a cursor: when two workers
/// register at once their lines come in either order.
pub fn registered(queue: &mut Proc, worker: &mut Proc) -> String {
    let id = worker_id(&worker.wait_for("worker ready", PATIENCE));
    let needle = format!("worker {id} ready");
    let deadline = Instant::now() + PATIENCE;
    while queue.count(&needle) == 0 {
        assert!(
            Instant::now() < deadline,
            "ppqueue never registered {id}:\n{}",
            queue.lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    id
}

/// A started and registered worker with its identity.
pub fn worker(name: &str, net: &Net, queue: &mut Proc, extra: &[&str]) -> (Proc, String) {
    let mut w = spawn_worker(name, net, extra);
    let id = registered(queue, &mut w);
    (w, id)
}

/// `lpclient` sending `requests` numbered requests through the queue.
pub fn lpclient(name: &str, net: &Net, requests: u64, timeout_ms: u64) -> Proc {
    Proc::spawn(
        name,
        bin_path("lpclient"),
        [
            "--server".to_owned(),
            net.frontend.clone(),
            "--requests".to_owned(),
            requests.to_string(),
            "--timeout-ms".to_owned(),
            timeout_ms.to_string(),
            "--retries".to_owned(),
            "3".to_owned(),
            "--interval-ms".to_owned(),
            "0".to_owned(),
        ],
    )
}

/// Waits for the client's summary line and its exit; returns the summary and exit success.
pub fn finish(client: &mut Proc, timeout: Duration) -> (Summary, bool) {
    let line = client.wait_for("summary sent=", timeout);
    let summary: Summary = line.parse().expect("a summary line");
    let status = client
        .wait_exit(PATIENCE)
        .unwrap_or_else(|| panic!("{} did not exit after its summary", client.name()));
    (summary, status.success())
}

/// Runs `lpclient` to the end and asserts every request was answered, none retried or failed
/// unless `retries_ok`.
pub fn all_answered(net: &Net, requests: u64, retries_ok: bool) -> Summary {
    let mut client = lpclient("lpclient", net, requests, 2000);
    let (summary, ok) = finish(&mut client, PATIENCE * 2);
    assert_eq!(summary.sent, requests, "{summary}");
    assert_eq!(summary.answered, requests, "{summary}");
    assert_eq!(summary.failed, 0, "{summary}");
    assert!(ok, "lpclient exit status");
    if !retries_ok {
        assert_eq!(
            summary.retries, 0,
            "no request should have needed a retry: {summary}"
        );
    }
    summary
}
