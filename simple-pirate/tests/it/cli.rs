//! Every binary exits promptly on Ctrl-C (SIGINT) and documents every flag in `--help`.

use crate::util::{lpclient, spqueue, READY};
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
fn spqueue_and_a_busy_spworker_exit_on_sigint() {
    let mut queue = spqueue();
    let (mut worker, _) = queue.worker("worker", &["--work-ms", "60000"]);
    let _client = lpclient(
        &queue.frontend,
        &["--requests", "1", "--timeout-ms", "60000"],
    );
    worker.wait_for("normal reply", READY);
    assert!(interrupt_and_time(&mut worker).success());
    assert!(interrupt_and_time(&mut queue.proc).success());
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
    assert!(interrupt_and_time(&mut worker).success());
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
    let status = interrupt_and_time(&mut bench);
    assert_eq!(status.code(), Some(130));
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
    help_mentions(
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
    help_mentions(
        env!("CARGO_BIN_EXE_spbench"),
        &["--requests", "--warmup", "--rounds", "--timeout-ms"],
    );
}
