//! The flag walk: every numeric flag of every binary, tried with 0, 1, `u64::MAX`, and the
//! maximum its `--help` states and one past it.
//!
//! For each binary the test reads `--help`, picks the flags whose value is a number (by value
//! name: `N`, `MS`, `BYTES`, `S`, `TIME`), checks them against [`BINS`] (so a new flag is
//! noticed) and checks that each one's help states its range as `(MIN to MAX)`. Then it runs
//! the binary with a base command line that lets it run (ports nobody listens on, a private
//! temporary directory) plus `--flag value`, each run in a process group of its own, and
//! judges what happened:
//! * a value outside the stated range must be refused at start-up: a non-zero exit whose
//!   output names the flag (clap's `invalid value '0' for '--heartbeat-ms <MS>'`);
//! * a value inside it must not be refused: the program exits 0 by itself, exits non-zero only
//!   for a reason its documentation gives ([`Bin::documented`]), or is still running once it
//!   has started; then it gets SIGINT and must exit within [`EXIT_BOUND`], not by a signal;
//! * while it runs it must not spin: more than [`BUSY`] of one core over the run is a busy loop
//!   (benchmarks are exempt: measuring flat out is their job);
//! * it never prints `panicked`, and no process of its group outlives it.
//!
//! The table of outcomes is printed (`--nocapture` shows it); the test fails listing every bad
//! case.

use common::testkit::tcp_endpoint;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A binary, how to run it, and the numeric flags its `--help` must show.
struct Bin {
    name: &'static str,
    /// Arguments that let it run: `{tcp1}`..`{tcp3}` become fresh endpoints nobody listens on,
    /// `{dir}` a private temporary directory, `{bins}` the binaries' directory and `{fixtures}`
    /// the tour's test fixtures; all fresh for every run.
    base: &'static [&'static str],
    /// Its numeric flags, as `--help` lists them (in groups: the shared ones are constants).
    flags: &'static [&'static [&'static str]],
    /// Lines that make a non-zero exit the documented outcome rather than a failure (a client
    /// that gives up on a server nobody runs).
    documented: &'static [&'static str],
    /// A benchmark: runs flat out by design, so the busy-loop check does not apply.
    bench: bool,
}

const GUARD: [&str; 3] = ["--max-msg-bytes", "--max-connections", "--handshake-ms"];
const FAULTS: [&str; 5] = [
    "--work-ms",
    "--crash-after",
    "--overload-after",
    "--overload-ms",
    "--seed",
];

/// Every binary of the workspace.
const BINS: &[Bin] = &[
    Bin {
        name: "lpclient",
        base: &["--server", "{tcp1}"],
        flags: &[&["--requests", "--timeout-ms", "--retries", "--interval-ms"]],
        documented: &["E: server seems to be offline, abandoning"],
        bench: false,
    },
    Bin {
        name: "lpserver",
        base: &["--bind", "{tcp1}"],
        flags: &[&["--send-timeout-ms"], &FAULTS, &GUARD],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "spqueue",
        base: &["--frontend", "{tcp1}", "--backend", "{tcp2}"],
        flags: &[&["--send-timeout-ms"], &GUARD],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "spworker",
        base: &["--queue", "{tcp1}"],
        flags: &[&["--connect-timeout-ms", "--send-timeout-ms"], &FAULTS],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "spbench",
        base: &[],
        flags: &[&["--requests", "--warmup", "--rounds", "--timeout-ms"]],
        documented: &["within --timeout-ms"],
        bench: true,
    },
    Bin {
        name: "ppqueue",
        base: &["--frontend", "{tcp1}", "--backend", "{tcp2}"],
        flags: &[
            &[
                "--heartbeat-ms",
                "--liveness",
                "--send-timeout-ms",
                "--max-pending",
            ],
            &GUARD,
        ],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "ppworker",
        base: &["--queue", "{tcp1}"],
        flags: &[
            &[
                "--heartbeat-ms",
                "--liveness",
                "--reconnect-ms",
                "--reconnect-max-ms",
            ],
            &FAULTS,
        ],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "mdbroker",
        base: &["--bind", "{tcp1}"],
        flags: &[
            &[
                "--heartbeat-ms",
                "--liveness",
                "--request-timeout-ms",
                "--max-queue-bytes",
                "--dedup-max",
                "--dedup-ttl-ms",
                "--spin-us",
                "--pair-heartbeat-ms",
                "--pair-liveness",
            ],
            &GUARD,
        ],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "mdworker",
        base: &["--broker", "{tcp1}"],
        flags: &[
            &[
                "--heartbeat-ms",
                "--liveness",
                "--reconnect-ms",
                "--reconnect-max-ms",
                "--concurrency",
                "--partials",
                "--part-ms",
            ],
            &FAULTS,
        ],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "mdclient",
        base: &["--broker", "{tcp1}"],
        flags: &[&[
            "--timeout-ms",
            "--retries",
            "--settle-ms",
            "--requests",
            "--interval-ms",
        ]],
        documented: &["failed: no reply from service"],
        bench: false,
    },
    Bin {
        name: "mdclient2",
        base: &["--broker", "{tcp1}"],
        flags: &[&[
            "--requests",
            "--window",
            "--timeout-ms",
            "--retries",
            "--settle-ms",
        ]],
        documented: &["connecting mdclient2"],
        bench: false,
    },
    Bin {
        name: "mmiecho",
        base: &["--broker", "{tcp1}"],
        flags: &[&["--timeout-ms", "--retries", "--settle-ms"]],
        documented: &["asking the broker"],
        bench: false,
    },
    Bin {
        name: "mdadmin",
        base: &["--broker", "{tcp1}"],
        flags: &[&["--timeout-ms", "--retries", "--settle-ms"]],
        documented: &["asking the broker"],
        bench: false,
    },
    Bin {
        name: "mdbench",
        base: &[],
        flags: &[&[
            "--requests",
            "--sync-requests",
            "--rounds",
            "--window",
            "--partials",
        ]],
        documented: &[],
        bench: true,
    },
    Bin {
        name: "titanic",
        base: &["--broker", "{tcp1}", "--journal", "{dir}/journal"],
        flags: &[&[
            "--compact-min-bytes",
            "--workers",
            "--window",
            "--heartbeat-ms",
            "--liveness",
            "--reconnect-ms",
            "--timeout-ms",
            "--retries",
            "--retry-ms",
            "--retry-max-ms",
            "--fresh-ms",
            "--settle-ms",
        ]],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "ticlient",
        base: &["--broker", "{tcp1}"],
        flags: &[&[
            "--count",
            "--concurrency",
            "--poll-ms",
            "--first-poll-ms",
            "--timeout-ms",
            "--retries",
            "--settle-ms",
        ]],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "tibench",
        base: &["--dir", "{dir}"],
        flags: &[&["--seconds", "--latency-requests"]],
        documented: &[],
        bench: true,
    },
    Bin {
        name: "bstarsrv",
        base: &[
            "-p",
            "--frontend",
            "{tcp1}",
            "--state-pub",
            "{tcp2}",
            "--state-sub",
            "{tcp3}",
        ],
        flags: &[&["--heartbeat-ms", "--liveness"], &GUARD],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "bstarcli",
        base: &["--primary", "{tcp1}", "--backup", "{tcp2}"],
        flags: &[&[
            "--requests",
            "--interval-ms",
            "--timeout-ms",
            "--settle-ms",
            "--vote-ms",
            "--give-up-ms",
        ]],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "bstarbench",
        base: &[],
        flags: &[&[
            "--runs",
            "--heartbeats",
            "--interval-ms",
            "--timeout-ms",
            "--settle-ms",
            "--vote-ms",
            "--steady-ms",
            "--seed",
        ]],
        documented: &[],
        bench: true,
    },
    Bin {
        name: "flserver1",
        base: &["{tcp1}"],
        flags: &[&GUARD],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "flserver2",
        base: &["{tcp1}"],
        flags: &[&GUARD],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "flserver3",
        base: &["--bind", "{tcp1}"],
        flags: &[&GUARD],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "flclient1",
        base: &["{tcp1}"],
        flags: &[&["--requests", "--timeout-ms", "--retries", "--interval-ms"]],
        documented: &["E: no server answered, aborting"],
        bench: false,
    },
    Bin {
        name: "flclient2",
        base: &["{tcp1}"],
        flags: &[&[
            "--requests",
            "--timeout-ms",
            "--connect-timeout-ms",
            "--interval-ms",
        ]],
        documented: &["E: no server answered, aborting"],
        bench: false,
    },
    Bin {
        name: "flclient3",
        base: &["{tcp1}"],
        flags: &[&[
            "--requests",
            "--timeout-ms",
            "--attempt-timeout-ms",
            "--ping-ms",
            "--ttl-ms",
            "--connect-timeout-ms",
            "--interval-ms",
        ]],
        documented: &["E: no server answered, aborting"],
        bench: false,
    },
    Bin {
        name: "flbench",
        base: &[],
        flags: &[&["--requests", "--model1-requests", "--rounds", "--samples"]],
        documented: &[],
        bench: true,
    },
    Bin {
        name: "zkeygen",
        base: &["--dir", "{dir}"],
        flags: &[],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "netfault",
        base: &["--listen", "{tcp1}", "--to", "{tcp2}"],
        flags: &[],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "tour",
        base: &[
            "--chaos",
            "--no-color",
            "--bin-dir",
            "{bins}",
            "--scenarios",
            "{fixtures}",
            "chaos-clean",
        ],
        flags: &[&["--seed", "--duration"]],
        documented: &[],
        bench: false,
    },
    Bin {
        name: "tour-fixture",
        base: &[],
        flags: &[],
        documented: &[],
        bench: false,
    },
];

/// Value names of flags that take a number.
const NUMERIC: &[&str] = &["N", "MS", "BYTES", "S", "TIME"];
/// Value names of flags that take something else.
const OTHER: &[&str] = &[
    "ENDPOINT",
    "DIR",
    "FILE",
    "NAME",
    "PATH",
    "CIDR",
    "COMMAND",
    "RULE",
    "KEY=VALUE",
    // `mdbroker --worker-keys`: a service name and a directory of zcert public keys.
    "SERVICE=DIR",
    "KEY",
    "SERVICE",
    "BODY",
    "MMI",
    "FSYNC",
    "STRATEGY",
    "STRATEGIES",
    // A process id (`mdbench --broker-pid`, with --broker): it must name a live process, which
    // mdbench checks at start; the walk cannot make one up.
    "PID",
    // The Majordomo protocol dialect (`0.1`, `rfc18`, `majortomo`).
    "DIALECT",
];

/// Time a program gets to start before it is judged running: until its first line of output
/// but at least this long (so the CPU it used means something) …
const MIN_RUN: Duration = Duration::from_millis(1000);
/// … of which the CPU use counts only from here: starting up (a titanic with 3,000 workers
/// spawning and making their first connects) is work, not a loop.
const CPU_FROM: Duration = Duration::from_millis(500);
/// … and at most this long when it prints nothing.
const MAX_SETTLE: Duration = Duration::from_millis(1500);
/// A program must exit this soon after SIGINT.
const EXIT_BOUND: Duration = Duration::from_secs(1);
/// CPU time over wall time above which a running program counts as a busy loop. Idle programs
/// measured at most about 20 % in a debug build (bstarsrv with a 1 ms heartbeat); a loop that
/// never sleeps takes all the core it can get. Only the program's own CPU time counts, so load
/// from elsewhere can only lower the figure: it never fails a program that does not spin.
const BUSY: f64 = 0.5;
/// Runs at once.
const PARALLEL: usize = 6;

/// A numeric flag as `--help` shows it.
#[derive(Debug, Clone)]
struct HelpFlag {
    name: String,
    /// The stated range, `(MIN to MAX)`, if any.
    range: Option<(f64, u64)>,
}

/// Flags that take a value, with their value names and help text, from `--help`.
fn help_flags(help: &str) -> Vec<(String, String, String)> {
    let mut flags: Vec<(String, String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        // `--long …` or `-s, --long …`, at the options' indentation.
        let flag = Some(trimmed)
            .filter(|_| indent <= 6 && trimmed.starts_with('-'))
            .map(|t| match t.as_bytes() {
                [b'-', short, b',', b' ', ..] if short.is_ascii_alphanumeric() => &t[4..],
                _ => t,
            });
        match flag {
            Some(text) if text.starts_with("--") => {
                let (name, rest) = text.split_once(' ').unwrap_or((text, ""));
                let rest = rest.trim_start();
                if let Some(after) = rest.strip_prefix('<') {
                    let (value, help) = after.split_once('>').unwrap_or((after, ""));
                    flags.push((name.to_owned(), value.to_owned(), help.trim().to_owned()));
                } else {
                    flags.push((name.to_owned(), String::new(), rest.to_owned()));
                }
            }
            _ if indent > 6 && !trimmed.is_empty() => {
                if let Some(last) = flags.last_mut() {
                    last.2.push(' ');
                    last.2.push_str(trimmed);
                }
            }
            _ => {}
        }
    }
    flags.retain(|(_, value, _)| !value.is_empty());
    flags
}

/// The `(MIN to MAX)` a help text states (the last one, as the range ends the text).
fn stated_range(help: &str) -> Option<(f64, u64)> {
    help.rmatch_indices('(').find_map(|(at, _)| {
        let inner = &help[at + 1..];
        let (min, rest) = inner.split_once(" to ")?;
        let max: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let min: f64 = min.parse().ok()?;
        Some((min, max.parse().ok()?))
    })
}

/// What one run should show.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Outside the stated range.
    Refused,
    /// Inside it.
    Accepted,
    /// No range stated (already a failure): only panics, hangs and busy loops are judged.
    Unstated,
}

/// One run: a binary with one flag set to one value.
struct Case {
    bin: &'static Bin,
    flag: String,
    value: String,
    expect: Expect,
}

/// What became of a run.
struct Row {
    bin: &'static str,
    flag: String,
    value: String,
    outcome: String,
    problems: Vec<String>,
}

/// Every process in process group `pgid` that has not died (zombies are dead).
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, fields)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = fields.split_whitespace().collect();
            fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
        })
        .collect()
}

/// CPU time the processes of group `pgid` have used, summed over their threads.
fn group_cpu(pgid: i32) -> Duration {
    let mut nanos = 0u64;
    for pid in group_members(pgid) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(nanos)
}

/// A run in its own process group; the whole group is killed on drop.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pumps: Vec<JoinHandle<()>>,
}

impl Running {
    fn spawn(program: &Path, args: &[String]) -> std::io::Result<Running> {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // Only what finding programs and temporary files needs: under cargo, `CARGO` would make
        // the tour rebuild the workspace, and `RUST_LOG`-like settings would change the output.
        for keep in ["PATH", "HOME", "TMPDIR"] {
            if let Some(value) = std::env::var_os(keep) {
                command.env(keep, value);
            }
        }
        let mut child = command.spawn()?;
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let pump = |stream: Box<dyn Read + Send>| {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let pumps = vec![
            pump(Box::new(child.stdout.take().expect("piped stdout"))),
            pump(Box::new(child.stderr.take().expect("piped stderr"))),
        ];
        Ok(Running {
            child,
            lines,
            pumps,
        })
    }

    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    fn printed(&self) -> bool {
        !self.lines.lock().unwrap().is_empty()
    }

    /// The exit status once it has exited, waiting at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every line it printed, once its pipes closed (bounded: a leftover child may hold them).
    fn output(&mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.pumps.iter().all(|p| p.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pgid()), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Replaces the placeholders of a base command line, with fresh endpoints and directories.
fn command_line(case: &Case, bins: &Path, dir: &Path) -> Vec<String> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tcp: Vec<String> = (0..3).map(|_| tcp_endpoint()).collect();
    let mut args: Vec<String> = case
        .bin
        .base
        .iter()
        .map(|a| {
            a.replace("{tcp1}", &tcp[0])
                .replace("{tcp2}", &tcp[1])
                .replace("{tcp3}", &tcp[2])
                .replace("{dir}", &dir.display().to_string())
                .replace("{bins}", &bins.display().to_string())
                .replace("{fixtures}", &fixtures.display().to_string())
        })
        .collect();
    args.push(case.flag.clone());
    args.push(case.value.clone());
    args
}

/// An exit status as its code, or the signal that ended it.
fn code(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

fn first_line(lines: &[String]) -> String {
    lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .map_or_else(|| "(no output)".to_owned(), |l| l.trim().to_owned())
}

/// Runs one case and judges it.
fn run_case(case: &Case, bins: &Path) -> Row {
    let mut problems = Vec::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = command_line(case, bins, dir.path());
    let started = Instant::now();
    let mut run = match Running::spawn(&bins.join(case.bin.name), &args) {
        Ok(run) => run,
        Err(e) => {
            return Row {
                bin: case.bin.name,
                flag: case.flag.clone(),
                value: case.value.clone(),
                outcome: format!("cannot start: {e}"),
                problems: vec![format!("cannot start: {e}")],
            }
        }
    };
    let pgid = run.pgid();
    // Let it start: until its first line (at least MIN_RUN), or MAX_SETTLE if it prints none.
    let mut exited = None;
    let mut cpu_from = None;
    loop {
        if let Ok(Some(status)) = run.child.try_wait() {
            exited = Some(status);
            break;
        }
        let elapsed = started.elapsed();
        if cpu_from.is_none() && elapsed >= CPU_FROM {
            cpu_from = Some((group_cpu(pgid), Instant::now()));
        }
        if (run.printed() && elapsed >= MIN_RUN) || elapsed >= MAX_SETTLE {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let outcome = if let Some(status) = exited {
        let lines = run.output();
        let text = lines.join("\n");
        let named = text.contains(&format!("'{} ", case.flag))
            || text.contains(&format!("'{}'", case.flag));
        if let Some(signal) = status.signal() {
            problems.push(format!("killed by signal {signal}"));
            format!("killed by signal {signal}")
        } else if status.success() {
            if case.expect == Expect::Refused {
                problems.push("accepted a value outside its stated range".to_owned());
            }
            if lines.is_empty() {
                problems.push("exited 0 without a word (a silent no-op)".to_owned());
            }
            "exited 0".to_owned()
        } else if named && status.code() == Some(2) {
            if case.expect == Expect::Accepted {
                problems.push("refused a value inside its stated range".to_owned());
            }
            let why = lines
                .iter()
                .find(|l| l.starts_with("error:"))
                .cloned()
                .unwrap_or_else(|| first_line(&lines));
            format!("refused: {why}")
        } else if let Some(reason) = case
            .bin
            .documented
            .iter()
            .find(|reason| text.contains(*reason))
        {
            if case.expect == Expect::Refused {
                problems.push("accepted a value outside its stated range".to_owned());
            }
            format!("exited {} as documented ({reason})", code(status))
        } else {
            problems.push(format!(
                "exited {} for no documented reason: {}",
                code(status),
                lines.last().map_or("(no output)", String::as_str)
            ));
            format!("exited {}: {}", code(status), first_line(&lines))
        }
    } else {
        let (cpu_before, since) = cpu_from.unwrap_or((Duration::ZERO, started));
        let wall = since.elapsed();
        let cpu = group_cpu(pgid).saturating_sub(cpu_before);
        let load = cpu.as_secs_f64() / wall.as_secs_f64();
        if case.expect == Expect::Refused {
            problems.push("runs with a value outside its stated range".to_owned());
        }
        if !case.bin.bench && load > BUSY {
            problems.push(format!(
                "busy loop: {:.0} % of a core over {} ms",
                load * 100.0,
                wall.as_millis()
            ));
        }
        let signalled = Instant::now();
        let _ = kill(Pid::from_raw(pgid), Signal::SIGINT);
        match run.wait(EXIT_BOUND) {
            Some(status) => {
                let took = signalled.elapsed();
                if let Some(signal) = status.signal() {
                    problems.push(format!("Ctrl-C: ended by signal {signal}"));
                }
                format!(
                    "ran ({:.0} % CPU), Ctrl-C: exit {} in {} ms",
                    load * 100.0,
                    code(status),
                    took.as_millis()
                )
            }
            None => {
                problems.push(format!("still running {EXIT_BOUND:?} after Ctrl-C"));
                "hangs on Ctrl-C".to_owned()
            }
        }
    };
    let lines = run.output();
    if let Some(line) = lines.iter().find(|l| l.contains("panicked")) {
        problems.push(format!("panic: {line}"));
    }
    // Whatever it started must be gone with it.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut left = group_members(pgid);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = group_members(pgid);
    }
    if !left.is_empty() {
        problems.push(format!("left processes behind: {left:?}"));
    }
    if !problems.is_empty() {
        let tail: Vec<&String> = lines.iter().rev().take(6).collect();
        problems.push(format!(
            "command: {} {}; last lines: {tail:?}",
            case.bin.name,
            args.join(" ")
        ));
    }
    Row {
        bin: case.bin.name,
        flag: case.flag.clone(),
        value: case.value.clone(),
        outcome,
        problems,
    }
}

/// The numeric flags a binary's `--help` shows, and what is wrong with its help.
fn numeric_flags(bin: &Bin, program: &Path) -> (Vec<HelpFlag>, Vec<String>) {
    let out = match Command::new(program).arg("--help").env_clear().output() {
        Ok(out) => out,
        Err(e) => {
            return (
                Vec::new(),
                vec![format!("{}: cannot run --help: {e}", bin.name)],
            )
        }
    };
    let help = String::from_utf8_lossy(&out.stdout);
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for (name, value, text) in help_flags(&help) {
        if NUMERIC.contains(&value.as_str()) {
            let range = stated_range(&text);
            if range.is_none() {
                problems.push(format!(
                    "{} {name} <{value}>: its help states no range `(MIN to MAX)`: {text}",
                    bin.name
                ));
            }
            found.push(HelpFlag { name, range });
        } else if !OTHER.contains(&value.as_str()) {
            problems.push(format!(
                "{} {name} <{value}>: a value name this test does not know; if it is a \
                 number, name it N, MS, BYTES or S, else add it to OTHER",
                bin.name
            ));
        }
    }
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    for name in &names {
        if !bin.flags.iter().any(|group| group.contains(name)) {
            problems.push(format!(
                "{} {name}: a numeric flag missing from this test's table",
                bin.name
            ));
        }
    }
    for name in bin.flags.iter().flat_map(|group| group.iter()) {
        if !names.contains(name) {
            problems.push(format!(
                "{} {name}: in this test's table but not in --help",
                bin.name
            ));
        }
    }
    (found, problems)
}

/// The values tried for a flag, and whether each lies inside its stated range.
fn values(range: Option<(f64, u64)>) -> Vec<(String, Expect)> {
    let Some((min, max)) = range else {
        return ["0".to_owned(), "1".to_owned(), u64::MAX.to_string()]
            .map(|v| (v, Expect::Unstated))
            .to_vec();
    };
    let inside = |v: f64| {
        if v >= min && v <= max as f64 {
            Expect::Accepted
        } else {
            Expect::Refused
        }
    };
    let mut values = vec![
        ("0".to_owned(), inside(0.0)),
        ("1".to_owned(), inside(1.0)),
        (u64::MAX.to_string(), inside(u64::MAX as f64)),
    ];
    if max < u64::MAX && max > 1 {
        // The largest value a user may give must run as well as the smallest.
        values.push((max.to_string(), Expect::Accepted));
        values.push(((max as u128 + 1).to_string(), Expect::Refused));
    }
    values
}

#[test]
fn every_numeric_flag_of_every_binary_is_bounded_and_safe() {
    let names: Vec<&str> = BINS.iter().map(|b| b.name).collect();
    let bins = common::testkit::workspace_bins(&names);

    let mut problems = Vec::new();
    let mut cases = VecDeque::new();
    for bin in BINS {
        let (flags, mut wrong) = numeric_flags(bin, &bins.join(bin.name));
        problems.append(&mut wrong);
        for flag in flags {
            for (value, expect) in values(flag.range) {
                let case = Case {
                    bin,
                    flag: flag.name.clone(),
                    value,
                    expect,
                };
                // Benchmarks that run take longest: start them first.
                if expect != Expect::Refused && bin.bench {
                    cases.push_front(case);
                } else {
                    cases.push_back(case);
                }
            }
        }
    }
    let total = cases.len();
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(cases));
    let rows = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (queue, rows, bins) = (Arc::clone(&queue), Arc::clone(&rows), bins.clone());
            std::thread::spawn(move || loop {
                let Some(case) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let row = run_case(&case, &bins);
                rows.lock().unwrap().push(row);
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a walk thread panicked");
    }
    let mut rows = std::mem::take(&mut *rows.lock().unwrap());
    let order = |name: &str| BINS.iter().position(|b| b.name == name);
    rows.sort_by(|a, b| {
        (order(a.bin), &a.flag, a.value.len(), &a.value).cmp(&(
            order(b.bin),
            &b.flag,
            b.value.len(),
            &b.value,
        ))
    });
    println!(
        "flag walk: {total} runs of {} binaries in {:.1} s",
        BINS.len(),
        started.elapsed().as_secs_f64()
    );
    for row in &rows {
        println!(
            "{:<12} {:<22} {:>20} -> {}{}",
            row.bin,
            row.flag,
            row.value,
            row.outcome,
            if row.problems.is_empty() {
                ""
            } else {
                "  [BAD]"
            }
        );
        for p in &row.problems {
            problems.push(format!("{} {} {}: {p}", row.bin, row.flag, row.value));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn help_parsing_finds_flags_values_and_ranges() {
    let help = "Options:\n      --heartbeat-ms <MS>  Milliseconds between beats (1 to 86400000) \
                [default: 1000]\n  -v, --verbose  Log frames\n      --seed <S>  Seed (0 to \
                18446744073709551615)\n      --long <N>\n          Wrapped help (0 to 5)\n";
    let flags = help_flags(help);
    let names: Vec<(&str, &str)> = flags
        .iter()
        .map(|(n, v, _)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        names,
        [("--heartbeat-ms", "MS"), ("--seed", "S"), ("--long", "N")]
    );
    assert_eq!(stated_range(&flags[0].2), Some((1.0, 86_400_000)));
    assert_eq!(stated_range(&flags[1].2), Some((0.0, u64::MAX)));
    assert_eq!(stated_range(&flags[2].2), Some((0.0, 5)));
    assert_eq!(
        stated_range("Seconds per cell (0.1 to 86400)"),
        Some((0.1, 86_400))
    );
    assert_eq!(stated_range("no range (see above)"), None);
}
