//! Shared helpers: start the binaries under test, read the summary and reply lines.

use common::testkit::Proc;
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
