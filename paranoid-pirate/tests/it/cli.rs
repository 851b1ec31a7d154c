//! Must show: both binaries exit within 1 s of SIGINT in every state, and `--help` documents
//! every flag.

use crate::util::{queue, spawn_worker, worker, Net, PATIENCE};
use common::testkit::Proc;
use std::process::Command;
use std::time::{Duration, Instant};

/// SIGINT, then the time until the process exited (asserted generously, printed exactly).
fn interrupt_and_time(p: &mut Proc, what: &str) -> Duration {
    let sent = Instant::now();
    p.interrupt();
    let status = p
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{what} still running 5 s after SIGINT"));
    let took = sent.elapsed();
    eprintln!(
        "{what}: exited {} ms after SIGINT ({status})",
        took.as_millis()
    );
    assert!(status.success(), "{what}: clean exit, got {status}");
    // The contract is 1 s; allow for a loaded machine.
    assert!(took < Duration::from_secs(3), "{what}: took {took:?}");
    took
}

#[test]
fn both_binaries_exit_promptly_on_sigint_in_every_state() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    // An idle, registered worker.
    let (mut idle, _) = worker("idle", &net, &mut q, &[]);
    // A worker in the middle of a long request.
    let (mut busy, _) = worker("busy", &net, &mut q, &["--work-ms", "30000"]);
    let mut client = crate::util::lpclient("lpclient", &net, 2, 60_000);
    // LRU: the first request goes to "idle", the second one to "busy" (30 s of work).
    busy.wait_for("working on a request", PATIENCE);
    interrupt_and_time(&mut busy, "ppworker (busy)");
    interrupt_and_time(&mut idle, "ppworker (idle)");
    interrupt_and_time(&mut q, "ppqueue (with clients and workers)");
    client.kill9();

    // A worker whose queue is gone: connecting or backing off.
    let mut orphan = spawn_worker("orphan", &net, &[]);
    orphan.wait_for("reconnecting in", PATIENCE);
    interrupt_and_time(&mut orphan, "ppworker (no queue)");
}

fn help(bin: &str) -> String {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_documents_every_flag() {
    let text = help(env!("CARGO_BIN_EXE_ppqueue"));
    for flag in [
        "--frontend",
        "--backend",
        "--heartbeat-ms",
        "--liveness",
        "--send-timeout-ms",
        "--max-pending",
        "--verbose",
        "[default: tcp://*:5555]",
        "[default: tcp://*:5556]",
        "[default: 1000]",
        "[default: 3]",
    ] {
        assert!(text.contains(flag), "ppqueue --help lacks {flag}:\n{text}");
    }
    let text = help(env!("CARGO_BIN_EXE_ppworker"));
    for flag in [
        "--queue",
        "--heartbeat-ms",
        "--liveness",
        "--reconnect-ms",
        "--reconnect-max-ms",
        "--work-ms",
        "--crash-after",
        "--overload-after",
        "--overload-ms",
        "--random-faults",
        "--seed",
        "--verbose",
        "[default: tcp://localhost:5556]",
        "[default: 32000]",
    ] {
        assert!(text.contains(flag), "ppworker --help lacks {flag}:\n{text}");
    }
    // Every flag line carries a description.
    for line in text.lines().filter(|l| l.trim_start().starts_with("--")) {
        assert!(
            line.split("  ").filter(|s| !s.trim().is_empty()).count() >= 2,
            "{line}"
        );
    }
}
