//! The `tour` command itself, on fixture scenarios.

use crate::util::{bin_dir, fixtures};
use std::process::{Command, Output};

fn tour(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tour"))
        .arg("--scenarios")
        .arg(fixtures())
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(args)
        .env_remove("CARGO")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_passing_scenario_shows_the_timeline_and_the_tables() {
    let out = tour(&["substitution", "--no-color"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains('\x1b'), "colour despite --no-color");
    // Interleaved lines with a time stamp and the process name.
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("server") && l.contains("| accepted")),
        "{text}"
    );
    assert!(text.contains("** start client"), "{text}");
    assert!(text.contains("== substitution (ok in"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("substitution") && last.contains("ok"),
        "{text}"
    );
}

#[test]
fn lost_requests_make_the_tour_fail() {
    let out = tour(&["--quiet", "timeout"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        !text.contains("| working"),
        "--quiet prints no process lines\n{text}"
    );
    assert!(text.contains("killed at timeout"), "{text}");
    assert!(text.contains("FAILED"), "{text}");
}

#[test]
fn list_shows_names_titles_and_guide_sections() {
    let out = tour(&["--list"]);
    let text = stdout(&out);
    assert!(out.status.success());
    assert!(
        text.contains("faults") && text.contains("SIGSTOP, SIGCONT, restart"),
        "{text}"
    );
}

#[test]
fn an_unknown_name_is_an_error() {
    let out = tour(&["nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no scenario \"nope\""));
}

#[test]
fn ctrl_c_ends_the_tour_and_every_process_at_once() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let mut tour = Command::new(env!("CARGO_BIN_EXE_tour"))
        .arg("--scenarios")
        .arg(fixtures())
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(["--no-color", "hold"])
        .env_remove("CARGO")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = tour.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen
        .iter()
        .any(|l: &String| l.contains("stop (SIGSTOP) server"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("the tour never stopped the server:\n{}", seen.join("\n")),
        }
    }
    let pids: Vec<i32> = seen
        .iter()
        .filter_map(|l| l.split("| pid ").nth(1))
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{}", seen.join("\n"));
    // SIGINT to the tour alone (not its process group): it must end the processes itself.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tour.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let interrupted = Instant::now();
    let status = loop {
        if let Some(status) = tour.try_wait().unwrap() {
            break status;
        }
        if interrupted.elapsed() > Duration::from_secs(10) {
            let _ = tour.kill();
            panic!("the tour did not end after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    for pid in pids {
        assert!(!crate::util::alive(pid), "process {pid} outlived the tour");
    }
}
