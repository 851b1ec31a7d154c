//! Must show: both binaries exit within 1 s of SIGINT in every state, and `--help` documents
//! every flag.

use crate::util::{queue, spawn_worker, worker, Net, PATIENCE};
use common::testkit::{assert_help_mentions, Proc};
use std::time::Duration;

/// SIGINT, then a clean exit within the 1 s contract (asserted generously for a loaded machine;
/// the real time is printed).
fn assert_prompt_clean_exit(p: &mut Proc, what: &str) {
    let (status, took) = p.interrupt_and_wait(Duration::from_secs(5));
    assert!(status.success(), "{what}: clean exit, got {status}");
    assert!(took < Duration::from_secs(3), "{what}: took {took:?}");
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
    assert_prompt_clean_exit(&mut busy, "ppworker (busy)");
    assert_prompt_clean_exit(&mut idle, "ppworker (idle)");
    assert_prompt_clean_exit(&mut q, "ppqueue (with clients and workers)");
    client.kill9();

    // A worker whose queue is gone: connecting or backing off.
    let mut orphan = spawn_worker("orphan", &net, &[]);
    orphan.wait_for("reconnecting in", PATIENCE);
    assert_prompt_clean_exit(&mut orphan, "ppworker (no queue)");
}

#[test]
fn help_documents_every_flag() {
    assert_help_mentions(
        env!("CARGO_BIN_EXE_ppqueue"),
        &[
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
        ],
    );
    let text = assert_help_mentions(
        env!("CARGO_BIN_EXE_ppworker"),
        &[
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
        ],
    );
    // Every flag line carries a description.
    for line in text.lines().filter(|l| l.trim_start().starts_with("--")) {
        assert!(
            line.split("  ").filter(|s| !s.trim().is_empty()).count() >= 2,
            "{line}"
        );
    }
}
