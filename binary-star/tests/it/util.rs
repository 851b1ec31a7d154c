//! Shared helpers: endpoints for a pair, spawning the binaries with short timings.

use common::report::Summary;
use common::testkit::{IpcDir, Proc};
use std::time::Duration;

/// Heartbeat used by the process tests (the Guide's is 1000 ms).
pub const HB_MS: u64 = 250;
/// Client request timeout used by the tests.
pub const TIMEOUT_MS: u64 = 600;
/// Client settle delay used by the tests.
pub const SETTLE_MS: u64 = 1200;
/// Client vote interval used by the tests.
pub const VOTE_MS: u64 = 100;

/// A generous wait for anything that should take a few heartbeats.
pub const WAIT: Duration = Duration::from_secs(15);

/// The bound on the failover a client sees: the peer's expiry (2 × heartbeat), then the
/// client's timeout and settle delay.
pub fn failover_bound() -> Duration {
    Duration::from_millis(2 * HB_MS + TIMEOUT_MS + SETTLE_MS)
}

/// The four endpoints of a pair: `ipc://` files in a private directory, so parallel tests
/// (and other crates' tests) can never pick the same endpoint, and a killed server's endpoint
/// stays reserved for its restart.
pub struct Endpoints {
    pub primary_frontend: String,
    pub backup_frontend: String,
    pub primary_pub: String,
    pub backup_pub: String,
    _dir: IpcDir,
}

impl Endpoints {
    pub fn new() -> Endpoints {
        let dir = IpcDir::new();
        Endpoints {
            primary_frontend: dir.endpoint("primary-frontend"),
            backup_frontend: dir.endpoint("backup-frontend"),
            primary_pub: dir.endpoint("primary-state"),
            backup_pub: dir.endpoint("backup-state"),
            _dir: dir,
        }
    }

    pub fn primary_args(&self) -> Vec<String> {
        server_args(
            "--primary",
            &self.primary_frontend,
            &self.primary_pub,
            &self.backup_pub,
        )
    }

    pub fn backup_args(&self) -> Vec<String> {
        server_args(
            "--backup",
            &self.backup_frontend,
            &self.backup_pub,
            &self.primary_pub,
        )
    }
}

/// Arguments of a `bstarsrv` with the test heartbeat.
pub fn server_args(role: &str, frontend: &str, state_pub: &str, state_sub: &str) -> Vec<String> {
    [
        role,
        "--frontend",
        frontend,
        "--state-pub",
        state_pub,
        "--state-sub",
        state_sub,
        "--heartbeat-ms",
        &HB_MS.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

pub fn bstarsrv() -> &'static str {
    env!("CARGO_BIN_EXE_bstarsrv")
}

pub fn primary(ep: &Endpoints) -> Proc {
    Proc::spawn("primary", bstarsrv(), ep.primary_args())
}

pub fn backup(ep: &Endpoints) -> Proc {
    Proc::spawn("backup", bstarsrv(), ep.backup_args())
}

/// Starts both servers and waits until the primary is ACTIVE and the backup PASSIVE.
pub fn settled_pair(ep: &Endpoints) -> (Proc, Proc) {
    let mut p = primary(ep);
    let mut b = backup(ep);
    p.wait_for("I: state ACTIVE", WAIT);
    b.wait_for("I: state PASSIVE", WAIT);
    (p, b)
}

/// A `bstarcli` sending `requests` requests `interval_ms` apart, with the test timings.
pub fn client(ep: &Endpoints, requests: u64, interval_ms: u64) -> Proc {
    let args = [
        "--primary",
        &ep.primary_frontend,
        "--backup",
        &ep.backup_frontend,
        "--requests",
        &requests.to_string(),
        "--interval-ms",
        &interval_ms.to_string(),
        "--timeout-ms",
        &TIMEOUT_MS.to_string(),
        "--settle-ms",
        &SETTLE_MS.to_string(),
        "--vote-ms",
        &VOTE_MS.to_string(),
    ]
    .map(String::from);
    Proc::spawn("client", env!("CARGO_BIN_EXE_bstarcli"), args)
}

/// Waits for the client's summary line and parses it.
pub fn summary(client: &mut Proc, timeout: Duration) -> Summary {
    client.wait_for("I: summary ", timeout);
    client.summary().expect("a summary line")
}

/// The `<ms>` of `I: failover to <ep> after <ms> ms`.
pub fn failover_ms(line: &str) -> Duration {
    let ms = line
        .split(" after ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no failover time in {line:?}"));
    Duration::from_millis(ms)
}

/// Asserts every request was answered.
pub fn assert_all_answered(summary: &Summary, requests: u64) {
    assert_eq!(summary.sent, requests, "{summary}");
    assert_eq!(summary.answered, requests, "{summary}");
    assert_eq!(summary.failed, 0, "{summary}");
    assert_eq!(summary.lost(), 0, "{summary}");
}
