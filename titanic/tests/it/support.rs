//! Shared test pieces: starting the processes with short intervals, and an MDP client built
//! on libzmq (the `zmq` crate), so Titanic is checked by an independent implementation.

use common::testkit::{bin_path, Proc};
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound for anything that should take well under a second.
pub const WAIT: Duration = Duration::from_secs(20);
/// Heartbeat interval of every process in the tests.
pub const HEARTBEAT_MS: &str = "200";

/// An `mdbroker` on `endpoint`, ready.
pub fn broker(endpoint: &str) -> Proc {
    let mut p = Proc::spawn(
        "mdbroker",
        bin_path("mdbroker"),
        [
            "--bind",
            endpoint,
            "--heartbeat-ms",
            HEARTBEAT_MS,
            "--request-timeout-ms",
            "3000",
        ],
    );
    p.wait_for("mdbroker ready", WAIT);
    p
}

/// An `mdworker` echo worker, registered.
pub fn echo_worker(endpoint: &str) -> Proc {
    let mut p = Proc::spawn(
        "mdworker",
        bin_path("mdworker"),
        [
            "--broker",
            endpoint,
            "--heartbeat-ms",
            HEARTBEAT_MS,
            "--reconnect-ms",
            HEARTBEAT_MS,
            "--reconnect-max-ms",
            "1000",
        ],
    );
    p.wait_for("(echo) worker ready", WAIT);
    p
}

/// A `titanic` on `journal`, started (its workers register in the background).
pub fn titanic(endpoint: &str, journal: &Path, extra: &[&str]) -> Proc {
    let mut args: Vec<String> = [
        "--broker",
        endpoint,
        "--journal",
        journal.to_str().expect("utf-8 temp path"),
        "--heartbeat-ms",
        HEARTBEAT_MS,
        "--reconnect-ms",
        HEARTBEAT_MS,
        "--timeout-ms",
        "1500",
        "--retries",
        "2",
        "--retry-ms",
        "100",
        "--retry-max-ms",
        "500",
        "--fresh-ms",
        "1000",
        "--workers",
        "4",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut p = Proc::spawn("titanic", env!("CARGO_BIN_EXE_titanic"), args);
    p.wait_for("titanic ready", WAIT);
    p
}

/// Waits until `done()` holds, checking every 20 ms; panics with `what` after `within`.
pub fn eventually(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Majordomo client on a libzmq REQ socket, retried Lazy-Pirate style (fresh socket after a
/// timeout).
pub struct ZmqMdp {
    ctx: zmq::Context,
    endpoint: String,
    socket: Option<zmq::Socket>,
    timeout_ms: i32,
}

impl ZmqMdp {
    pub fn new(endpoint: &str) -> Self {
        Self {
            ctx: zmq::Context::new(),
            endpoint: endpoint.to_owned(),
            socket: None,
            timeout_ms: 1000,
        }
    }

    /// One attempt: the reply body, or `None` on timeout.
    pub fn try_call(&mut self, service: &str, body: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
        if self.socket.is_none() {
            let s = self.ctx.socket(zmq::REQ).unwrap();
            s.set_linger(0).unwrap();
            s.set_rcvtimeo(self.timeout_ms).unwrap();
            s.connect(&self.endpoint).unwrap();
            self.socket = Some(s);
        }
        let socket = self.socket.as_ref().unwrap();
        let mut frames: Vec<&[u8]> = vec![b"MDPC01", service.as_bytes()];
        frames.extend_from_slice(body);
        socket.send_multipart(frames, 0).unwrap();
        match socket.recv_multipart(0) {
            Ok(reply) => {
                assert!(reply.len() >= 2, "short MDP reply {reply:?}");
                assert_eq!(reply[0], b"MDPC01");
                assert_eq!(reply[1], service.as_bytes());
                Some(reply[2..].to_vec())
            }
            Err(zmq::Error::EAGAIN) => {
                self.socket = None;
                None
            }
            Err(e) => panic!("zmq recv: {e}"),
        }
    }

    /// Calls until answered (at most [`WAIT`]).
    pub fn call(&mut self, service: &str, body: &[&[u8]]) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(reply) = self.try_call(service, body) {
                return reply;
            }
            assert!(Instant::now() < deadline, "no answer from {service}");
        }
    }

    /// A TSP call: the status frame as text and the frames after it.
    pub fn tsp(&mut self, service: &str, body: &[&[u8]]) -> (String, Vec<Vec<u8>>) {
        let mut reply = self.call(service, body);
        assert!(!reply.is_empty(), "{service} answered no status frame");
        let status = String::from_utf8(reply.remove(0)).expect("text status");
        (status, reply)
    }

    /// `titanic.reply` for `uuid` until it answers something else than `300`.
    pub fn wait_reply(&mut self, uuid: &str) -> (String, Vec<Vec<u8>>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = self.tsp("titanic.reply", &[uuid.as_bytes()]);
            if answer.0 != "300" {
                return answer;
            }
            assert!(Instant::now() < deadline, "{uuid} still pending");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The UUIDs `ticlient` reported stored (`I: request UUID <uuid>`), in order.
pub fn acknowledged(client: &Proc) -> Vec<String> {
    client
        .lines()
        .iter()
        .filter_map(|l| {
            l.split_once("request UUID ")
                .map(|(_, id)| id.trim().to_owned())
        })
        .collect()
}

/// How many `I: reply to <uuid>: …` lines `ticlient` printed for `uuid`.
pub fn replies_seen(client: &Proc, uuid: &str) -> usize {
    client.count(&format!("reply to {uuid}:"))
}
