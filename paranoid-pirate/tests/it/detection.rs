//! Figures, not pass/fail: how long `ppqueue` takes to purge a dead worker, at the Guide's
//! interval (1000 ms) and a short one (200 ms), for a killed worker (kill -9: its connection
//! closes) and a hung one (SIGSTOP: only heartbeats can tell).
//!
//! ```text
//! cargo build -p paranoid-pirate --release
//! cargo test -p paranoid-pirate --release --test it -- --ignored --nocapture detection_times
//! ```

use crate::liveness::wait_purged;
use crate::util::{registered, spawn_worker, Net, PATIENCE};
use common::testkit::Proc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn silent_ms(line: &str) -> u128 {
    line.split("silent ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One queue, then `RUNS` times: start a worker, let it settle, fault it, time the purge.
fn measure(interval_ms: u64, hang: bool) -> (Vec<u128>, Vec<u128>) {
    let net = Net::new();
    let hb = interval_ms.to_string();
    let mut q = Proc::spawn(
        "ppqueue",
        env!("CARGO_BIN_EXE_ppqueue"),
        [
            "--frontend",
            &net.frontend,
            "--backend",
            &net.backend,
            "--heartbeat-ms",
            &hb,
        ],
    );
    q.wait_for("ppqueue ready", PATIENCE);
    let (mut took, mut silent) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let mut w = spawn_worker(&format!("worker{run}"), &net, &["--heartbeat-ms", &hb]);
        let id = registered(&mut q, &mut w);
        // Let a few heartbeats flow, and fault it at a different phase of the interval each run.
        std::thread::sleep(Duration::from_millis(
            interval_ms * 2 + interval_ms * run as u64 / RUNS as u64,
        ));
        let t = Instant::now();
        if hang {
            w.stop();
        } else {
            w.kill9();
        }
        let line = wait_purged(&mut q, &id);
        took.push(t.elapsed().as_millis());
        silent.push(silent_ms(&line));
        w.kill9();
    }
    (took, silent)
}

#[test]
#[ignore = "benchmark: prints figures, run with --ignored --nocapture"]
fn detection_times() {
    println!("dead-worker detection in ppqueue, liveness 3, {RUNS} runs each, median (all runs)");
    for interval in [1000, 200] {
        for (fault, hang) in [("kill -9", false), ("SIGSTOP", true)] {
            let (took, silent) = measure(interval, hang);
            let typical = median(took.clone());
            println!(
                "interval {interval:>4} ms  {fault:<8} purged after {:>5} ms {:?}  \
                 (queue: silent {:>5} ms {:?}; {:.2} intervals)",
                typical,
                took,
                median(silent.clone()),
                silent,
                typical as f64 / interval as f64,
            );
        }
    }
}
