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
    // Interrupted mid-run: once it has started the server process of its first setup.
    let pid = bench.pid().expect("running");
    let started = std::time::Instant::now();
    let servers = loop {
        let servers = children_of(pid);
        if !servers.is_empty() {
            break servers;
        }
        assert!(
            started.elapsed() < READY,
            "spbench started no server process"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let (status, _) = bench.interrupt_and_wait(EXIT_BOUND);
    assert_eq!(status.code(), Some(130));
    // And it took its server processes with it.
    for server in servers {
        assert!(
            !std::path::Path::new(&format!("/proc/{server}")).exists(),
            "spbench left its server process {server} running"
        );
    }
}

/// The processes whose parent is `pid` (Linux: the fourth field of `/proc/<pid>/stat`).
fn children_of(pid: u32) -> Vec<u32> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    entries
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some(child)
        })
        .collect()
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
