//! Shared helpers: start the queue, workers and clients; read summaries and replies.

use common::testkit::{bin_path, tcp_endpoint, Proc};
use std::time::Duration;

/// Generous bound for a process to print an expected line on a loaded machine.
pub const READY: Duration = Duration::from_secs(20);

/// A running queue and its two endpoints.
pub struct Queue {
    pub proc: Proc,
    pub frontend: String,
    pub backend: String,
}

pub fn spqueue() -> Queue {
    let (frontend, backend) = (tcp_endpoint(), tcp_endpoint());
    let mut proc = Proc::spawn(
        "spqueue",
        env!("CARGO_BIN_EXE_spqueue"),
        ["--frontend", &frontend, "--backend", &backend],
    );
    proc.wait_for("spqueue ready (frontend", READY);
    Queue {
        proc,
        frontend,
        backend,
    }
}

impl Queue {
    /// Starts a worker and waits until the queue has registered it; returns it and its id.
    pub fn worker(&mut self, name: &str, extra: &[&str]) -> (Proc, String) {
        let mut args = vec!["--queue".to_owned(), self.backend.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut worker = Proc::spawn(name, env!("CARGO_BIN_EXE_spworker"), args);
        let line = worker.wait_for(") worker ready", READY);
        let id = line
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(id, _)| id.to_owned())
            .expect("worker ready line carries the id");
        self.proc.wait_for(&format!("worker {id} ready"), READY);
        (worker, id)
    }
}

pub fn lpclient(server: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--server".to_owned(), server.to_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn("lpclient", bin_path("lpclient"), args)
}

/// The sequence numbers of the accepted replies, in order.
pub fn replies(client: &Proc) -> Vec<u64> {
    client
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix("I: server replied OK ("))
        .map(|rest| rest.trim_end_matches(')').parse().expect("numeric reply"))
        .collect()
}

/// Asserts the client answered every one of its `n` requests, in order, none abandoned.
pub fn assert_all_answered(client: &mut Proc, n: u64) {
    let status = client
        .wait_exit(Duration::from_secs(60))
        .expect("client finishes");
    let s = client.summary().expect("a summary line");
    assert!(
        status.success(),
        "client failed: {s:?}\n{}",
        client.lines().join("\n")
    );
    assert_eq!((s.sent, s.answered, s.failed), (n, n, 0), "{s:?}");
    assert_eq!(replies(client), (1..=n).collect::<Vec<_>>());
    assert_eq!(client.count("malformed reply"), 0);
}
