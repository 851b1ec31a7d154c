//! Shared helpers: start the binaries under test, read the summary and reply lines.

use common::testkit::Proc;
use std::process::ExitStatus;
use std::time::Duration;

/// Generous bound for a process to print its ready line on a loaded machine.
pub const READY: Duration = Duration::from_secs(20);

pub fn lpserver(bind: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--bind".to_owned(), bind.to_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut server = Proc::spawn("lpserver", env!("CARGO_BIN_EXE_lpserver"), args);
    server.wait_for("lpserver ready on", READY);
    server
}

pub fn lpclient(server: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["--server".to_owned(), server.to_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn("lpclient", env!("CARGO_BIN_EXE_lpclient"), args)
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

/// Restarts `server` each time it simulates a crash, until `client` exits; returns the client's
/// exit status and the number of restarts (at most 3, or the test fails).
pub fn restart_crashes_until_exit(client: &mut Proc, server: &mut Proc) -> (ExitStatus, u32) {
    let mut restarts = 0;
    loop {
        if let Some(status) = client.wait_exit(Duration::from_millis(20)) {
            return (status, restarts);
        }
        if server
            .try_wait_for("W: simulating a crash", Duration::from_millis(20))
            .is_some()
        {
            server.wait_exit(READY).expect("crashed server exits");
            server.restart();
            server.wait_for("lpserver ready on", READY);
            restarts += 1;
            assert!(restarts <= 3, "more crashes than planned");
        }
    }
}
