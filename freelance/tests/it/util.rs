//! Shared helpers: start servers on fresh ports, read a client's summary line.

use common::testkit::{tcp_endpoint, IpcDir, Proc};
use std::time::Duration;

/// Generous bound for anything that should take well under a second.
pub const BOUND: Duration = Duration::from_secs(20);

/// Path of one of this package's binaries.
pub fn bin(name: &str) -> &'static str {
    match name {
        "flserver1" => env!("CARGO_BIN_EXE_flserver1"),
        "flserver2" => env!("CARGO_BIN_EXE_flserver2"),
        "flserver3" => env!("CARGO_BIN_EXE_flserver3"),
        "flclient1" => env!("CARGO_BIN_EXE_flclient1"),
        "flclient2" => env!("CARGO_BIN_EXE_flclient2"),
        "flclient3" => env!("CARGO_BIN_EXE_flclient3"),
        other => panic!("no binary {other}"),
    }
}

/// A server of `model` (1, 2 or 3) on a fresh endpoint, ready.
pub fn server(model: u8) -> (Proc, String) {
    let endpoint = tcp_endpoint();
    let name = format!("flserver{model}");
    let args = if model == 3 {
        vec![
            "--bind".to_owned(),
            endpoint.clone(),
            "--endpoint".to_owned(),
            endpoint.clone(),
        ]
    } else {
        vec![endpoint.clone()]
    };
    let mut proc = Proc::spawn(&name, bin(&name), args);
    proc.wait_for("ready on", BOUND);
    (proc, endpoint)
}

/// `n` servers of `model`, and their endpoints in order.
pub fn servers(model: u8, n: usize) -> (Vec<Proc>, Vec<String>) {
    (0..n).map(|_| server(model)).unzip()
}

/// A client of `model` with the endpoints first, then `args`.
pub fn client(model: u8, endpoints: &[String], args: &[&str]) -> Proc {
    let name = format!("flclient{model}");
    let all: Vec<String> = endpoints
        .iter()
        .cloned()
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    Proc::spawn(&name, bin(&name), all)
}

/// Waits for the client to exit and returns its exit code (panics with its output if not).
pub fn exit_code(client: &mut Proc, within: Duration) -> i32 {
    match client.wait_exit(within) {
        Some(status) => status.code().expect("exited, not killed by a signal"),
        None => panic!(
            "{} still running after {within:?}:\n{}",
            client.name(),
            client.lines().join("\n")
        ),
    }
}

/// The replies of the client that came from `endpoint`.
pub fn replies_from(client: &Proc, endpoint: &str) -> usize {
    client.count(&format!("from {endpoint}:"))
}

/// `n` endpoints nobody listens on: `ipc://` paths in a private directory (kept alive by the
/// returned guard), so no other test's server can take them the way it could a freed port.
pub fn nobody(n: usize) -> (IpcDir, Vec<String>) {
    let dir = IpcDir::new();
    let endpoints = (0..n).map(|i| dir.endpoint(&format!("down{i}"))).collect();
    (dir, endpoints)
}
