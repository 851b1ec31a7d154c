//! Every binary exits promptly on Ctrl-C (SIGINT) and documents every flag in `--help`.

use crate::util::{lpclient, spqueue, READY};
use common::testkit::{assert_help_mentions, tcp_endpoint, Proc};
use std::process::Command;
use std::time::Duration;

/// The requirement is 1 s; the assert is generous for a loaded CI box, the real time is printed.
const EXIT_BOUND: Duration = Duration::from_secs(3);

#[test]
fn spqueue_and_a_busy_spworker_exit_on_sigint() {
    let mut queue = spqueue();
    let (mut worker, _) = queue.worker("worker", &["--work-ms", "60000"]);
    let _client = lpclient(
        &queue.frontend,
        &["--requests", "1", "--timeout-ms", "60000"],
    );
    worker.wait_for("normal reply", READY);
    assert!(worker.interrupt_and_wait(EXIT_BOUND).0.success());
    assert!(queue.proc.interrupt_and_wait(EXIT_BOUND).0.success());
}

#[test]
fn spworker_exits_on_sigint_while_no_queue_is_there() {
    let mut worker = Proc::spawn(
        "lonely worker",
        env!("CARGO_BIN_EXE_spworker"),
        [
            "--queue",
            &tcp_endpoint(),
            "--connect-timeout-ms",
            "60000",
            "-v",
        ],
    );
    worker.wait_for("connecting to the queue", READY);
    assert!(worker.interrupt_and_wait(EXIT_BOUND).0.success());
}

#[test]
fn spbench_runs_and_exits_on_sigint() {
    let out = Command::new(env!("CARGO_BIN_EXE_spbench"))
        .args(["--requests", "200", "--warmup", "20", "--rounds", "1"])
        .output()
        .expect("spbench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ratio queued/direct:"), "{stdout}");

    let mut bench = Proc::spawn(
        "spbench",
        env!("CARGO_BIN_EXE_spbench"),
        ["--requests", "100000000", "--rounds", "1"],
    );
    bench.wait_for("measuring", READY);
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = bench.interrupt_and_wait(EXIT_BOUND);
    assert_eq!(status.code(), Some(130));
}

#[test]
fn help_documents_every_flag() {
    assert_help_mentions(
        env!("CARGO_BIN_EXE_spqueue"),
        &[
            "--frontend",
            "--backend",
            "--send-timeout-ms",
            "--verbose",
            "[default: tcp://*:5555]",
            "[default: tcp://*:5556]",
        ],
    );
    assert_help_mentions(
        env!("CARGO_BIN_EXE_spworker"),
        &[
            "--queue",
            "--connect-timeout-ms",
            "--send-timeout-ms",
            "--work-ms",
            "--crash-after",
            "--overload-after",
            "--overload-ms",
            "--random-faults",
            "--seed",
            "--verbose",
            "[default: tcp://localhost:5556]",
        ],
    );
    assert_help_mentions(
        env!("CARGO_BIN_EXE_spbench"),
        &["--requests", "--warmup", "--rounds", "--timeout-ms"],
    );
}
