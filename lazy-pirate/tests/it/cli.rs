//! Every binary exits promptly on Ctrl-C (SIGINT) and documents every flag in `--help`.

use crate::util::{lpclient, lpserver, summary, READY};
use common::testkit::{tcp_endpoint, Proc};
use std::process::Command;
use std::time::{Duration, Instant};

/// The requirement is 1 s; the assert is generous for a loaded CI box, the real time is printed.
const EXIT_BOUND: Duration = Duration::from_secs(3);

fn interrupt_and_time(proc: &mut Proc) -> std::process::ExitStatus {
    let started = Instant::now();
    proc.interrupt();
    let status = proc
        .wait_exit(EXIT_BOUND)
        .unwrap_or_else(|| panic!("{} still running {EXIT_BOUND:?} after SIGINT", proc.name()));
    eprintln!(
        "{}: exited {:?} after SIGINT in {:?}",
        proc.name(),
        status.code(),
        started.elapsed()
    );
    status
}

#[test]
fn lpserver_exits_on_sigint_even_mid_request() {
    let endpoint = tcp_endpoint();
    let mut server = lpserver(&endpoint, &["--work-ms", "60000"]);
    let _client = lpclient(&endpoint, &["--requests", "1"]);
    server.wait_for("normal request (1)", READY);
    assert!(interrupt_and_time(&mut server).success());
}

#[test]
fn lpclient_exits_on_sigint_mid_request_with_its_summary() {
    let endpoint = tcp_endpoint();
    let mut server = lpserver(&endpoint, &["--work-ms", "60000"]);
    let mut client = lpclient(&endpoint, &["--timeout-ms", "60000"]);
    server.wait_for("normal request (1)", READY);
    let status = interrupt_and_time(&mut client);
    assert!(!status.success(), "a request given up is a failure");
    let s = summary(&client);
    assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1));
}

#[test]
fn lpclient_exits_on_sigint_while_connecting() {
    // Nobody listens: the client is inside its bounded connect.
    let mut client = lpclient(&tcp_endpoint(), &["--timeout-ms", "60000"]);
    client.wait_for("connecting to server", READY);
    interrupt_and_time(&mut client);
    summary(&client);
}

fn help_mentions(bin: &str, flags: &[&str]) {
    let out = Command::new(bin).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in flags {
        assert!(help.contains(flag), "{bin} --help lacks {flag}:\n{help}");
    }
}

#[test]
fn help_documents_every_flag() {
    help_mentions(
        env!("CARGO_BIN_EXE_lpclient"),
        &[
            "--server",
            "--requests",
            "--timeout-ms",
            "--retries",
            "--interval-ms",
            "--verbose",
            "[default: tcp://localhost:5555]",
            "[default: 2500]",
            "[default: 3]",
        ],
    );
    help_mentions(
        env!("CARGO_BIN_EXE_lpserver"),
        &[
            "--bind",
            "--send-timeout-ms",
            "--work-ms",
            "--crash-after",
            "--overload-after",
            "--overload-ms",
            "--random-faults",
            "--seed",
            "--verbose",
            "[default: tcp://*:5555]",
        ],
    );
}
