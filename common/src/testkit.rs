//! Process-test kit: run the real binaries, watch their log lines, inject faults.
//!
//! * [`Proc`] spawns a binary, collects every stdout/stderr line, waits for a line, sends
//!   `kill -9`, SIGSTOP/SIGCONT or SIGINT, restarts with the same arguments, and kills the child
//!   when dropped (also when a test panics), so no test leaves processes behind. It also reads
//!   the client's [`Summary`] line and times the exit after Ctrl-C.
//! * [`free_port`], [`tcp_endpoint`] and [`IpcDir`] give each test its own endpoints, so tests
//!   run in parallel.
//! * [`bin_path`] and [`workspace_bins`] find workspace binaries in the target directory of the
//!   running test, building those that are missing or older than the sources.
//! * [`prerequisite`] is what a test does when something it cannot produce (a browser) is
//!   missing: skip with the reason, or fail under CI ([`on_ci`]).
//! * [`Background`] runs a helper thread (a libzmq peer) until dropped.
//! * [`assert_help_mentions`] checks that `--help` documents every flag.
//! * [`Proc::interrupt_in_flight`] checks contract 3 on a client interrupted mid-request.
//!
//! Synchronous on purpose: it works the same from `#[test]` and `#[tokio::test]`.

pub use crate::endpoint::free_port;
use crate::report::{RequestLine, Summary};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines seen from a process (all its runs), shared with the reader threads.
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    added: Condvar,
}

impl Lines {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
        self.added.notify_all();
    }
}

/// A child process under test. Killed (SIGKILL) and reaped on drop.
pub struct Proc {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    lines: Arc<Lines>,
    /// Threads copying the current run's stdout and stderr into `lines`.
    pumps: Vec<JoinHandle<()>>,
    /// Index of the first line [`Proc::wait_for`] looks at.
    cursor: usize,
}

impl Proc {
    /// Starts `program` with `args`; `name` prefixes its lines in failure output.
    pub fn spawn<I, S>(name: &str, program: impl AsRef<Path>, args: I) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut proc = Proc {
            name: name.to_owned(),
            program: program.as_ref().to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            child: None,
            lines: Arc::default(),
            pumps: Vec::new(),
            cursor: 0,
        };
        proc.start();
        proc
    }

    fn start(&mut self) {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.pumps = vec![
            self.pump(child.stdout.take().expect("piped stdout")),
            self.pump(child.stderr.take().expect("piped stderr")),
        ];
        self.child = Some(child);
    }

    fn pump(&self, stream: impl Read + Send + 'static) -> JoinHandle<()> {
        let lines = Arc::clone(&self.lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.push(line);
            }
        })
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OS process id of the current run.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Every line seen so far (all runs).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lines.lock().unwrap().clone()
    }

    /// Number of lines (all runs) containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until at least `n` lines (all runs) contain `needle` and returns the count then, or
    /// the count reached when `timeout` runs out. For lines a process prints *after* the effect a
    /// test has already seen (a worker logs "normal reply" once the reply is on its way, so the
    /// client can have it first).
    pub fn wait_count(&self, needle: &str, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut lines = self.lines.lines.lock().unwrap();
        loop {
            let seen = lines.iter().filter(|l| l.contains(needle)).count();
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return seen;
            };
            if seen >= n {
                return seen;
            }
            lines = self.lines.added.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Future [`wait_for`](Self::wait_for) calls only look at lines printed after now.
    pub fn mark(&mut self) {
        self.cursor = self.lines.lines.lock().unwrap().len();
    }

    /// Waits for a line containing `needle`, printed after the last match or [`mark`](Self::mark),
    /// and returns it. Panics with the process's output if it does not come within `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        match self.try_wait_for(needle, timeout) {
            Some(line) => line,
            None => panic!(
                "{}: no line containing {needle:?} within {timeout:?}; output:\n{}",
                self.name,
                self.lines().join("\n")
            ),
        }
    }

    /// Like [`wait_for`](Self::wait_for) but returns `None` on timeout.
    pub fn try_wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.lines.lines.lock().unwrap();
        loop {
            if let Some(offset) = lines[self.cursor..].iter().position(|l| l.contains(needle)) {
                let found = lines[self.cursor + offset].clone();
                self.cursor += offset + 1;
                return Some(found);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.lines.added.wait_timeout(lines, left).unwrap().0;
        }
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// `kill -9`, and reap the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process hangs (no heartbeats, no answers) but keeps its sockets open.
    pub fn stop(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// SIGCONT: a stopped process resumes.
    pub fn cont(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// SIGINT, as Ctrl-C in a terminal.
    pub fn interrupt(&self) {
        self.signal(Signal::SIGINT);
    }

    /// Starts the same program with the same arguments again (after [`kill9`](Self::kill9)).
    /// Lines of the new run follow the old ones; the wait cursor moves to the end.
    pub fn restart(&mut self) {
        self.kill9();
        self.mark();
        self.start();
    }

    /// The last `I: summary …` line this process printed (any run), parsed; `None` if there is
    /// none yet. Wait for the process to exit, or for the line, first: a client prints it last.
    pub fn summary(&self) -> Option<Summary> {
        Summary::last_in(self.lines.lines.lock().unwrap().iter())
    }

    /// Ctrl-C and its aftermath: sends SIGINT, waits up to `bound` for the process to exit and
    /// returns its status and how long the exit took. Prints the time to stderr
    /// (`<name>: exited <code> <elapsed> after SIGINT`, shown with `--nocapture`), so tests can
    /// assert a generous bound and still show the real figure. Panics, with the process's output,
    /// if it is not running or still runs after `bound`.
    pub fn interrupt_and_wait(&mut self, bound: Duration) -> (ExitStatus, Duration) {
        assert!(
            self.child.is_some(),
            "{}: not running, cannot interrupt",
            self.name
        );
        let sent = Instant::now();
        self.interrupt();
        let Some(status) = self.wait_exit(bound) else {
            panic!(
                "{}: still running {bound:?} after SIGINT; output:\n{}",
                self.name,
                self.lines().join("\n")
            );
        };
        let elapsed = sent.elapsed();
        let code = status
            .code()
            .map_or_else(|| status.to_string(), |c| c.to_string());
        eprintln!("{}: exited {code} {elapsed:?} after SIGINT", self.name);
        (status, elapsed)
    }

    /// Every `I: request seq=…` line this process printed (`--log-requests`), parsed.
    pub fn request_lines(&self) -> Vec<RequestLine> {
        RequestLine::all_in(self.lines.lines.lock().unwrap().iter())
    }

    /// Ctrl-C to a client that has requests in flight (run with `--log-requests`), then checks
    /// the accounting rule every client shares: it exits within `bound`, non-zero; its summary
    /// line has `sent = answered + failed` with at least one failed; its request lines add up
    /// to that summary. Returns the summary for further checks.
    pub fn interrupt_in_flight(&mut self, bound: Duration) -> Summary {
        let (status, _) = self.interrupt_and_wait(bound);
        let lines = self.lines().join("\n");
        let summary = self
            .summary()
            .unwrap_or_else(|| panic!("{}: no summary line; output:\n{lines}", self.name));
        assert!(
            summary.balanced(),
            "{}: sent != answered + failed in {summary}; output:\n{lines}",
            self.name
        );
        assert!(
            summary.failed >= 1,
            "{}: the request in flight at Ctrl-C must count failed: {summary}; output:\n{lines}",
            self.name
        );
        assert!(
            !status.success(),
            "{}: a run with a failed request must exit non-zero ({status}); output:\n{lines}",
            self.name
        );
        let requests = self.request_lines();
        assert_eq!(
            RequestLine::tally(&requests),
            summary,
            "{}: the request lines do not add up to the summary; output:\n{lines}",
            self.name
        );
        summary
    }

    /// Waits up to `timeout` for the process to exit by itself; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                // Let the reader threads drain the last lines (they end at EOF; a grandchild
                // holding the pipe open must not hang the test, hence the bound).
                let drained = Instant::now() + Duration::from_millis(500);
                while !self.pumps.iter().all(|p| p.is_finished()) && Instant::now() < drained {
                    std::thread::sleep(Duration::from_millis(1));
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("----- output of {} -----", self.name);
            for line in self.lines() {
                eprintln!("[{}] {line}", self.name);
            }
        }
    }
}

/// A helper thread that runs until dropped, such as a libzmq peer in an interop test.
///
/// The body gets a stop flag to poll (between receives with a short timeout, so it sees the flag
/// soon); dropping the `Background` sets the flag and joins the thread, so no test leaves a peer
/// running into the next one.
pub struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Runs `body` on a new thread, handing it the stop flag.
    pub fn spawn(body: impl FnOnce(&AtomicBool) + Send + 'static) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || body(&stop)
        });
        Background {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `program --help` and asserts that it succeeds and mentions every one of `needles`
/// (flags, `[default: …]` values): every knob of a binary is documented. Returns the text for
/// further checks.
pub fn assert_help_mentions(program: impl AsRef<Path>, needles: &[&str]) -> String {
    let program = program.as_ref();
    let out = Command::new(program)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} --help: {e}", program.display()));
    assert!(out.status.success(), "{} --help failed", program.display());
    let help = String::from_utf8(out.stdout).expect("--help prints UTF-8");
    for needle in needles {
        assert!(
            help.contains(needle),
            "{} --help lacks {needle}:\n{help}",
            program.display()
        );
    }
    help
}

/// A process's resident set size and its peak (`VmRSS`, `VmHWM` from `/proc/<pid>/status`),
/// in KiB: how memory tests measure what a server keeps and what it needed at most.
pub fn rss_and_peak_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `tcp://127.0.0.1:PORT` on a fresh OS-assigned port.
pub fn tcp_endpoint() -> String {
    format!("tcp://127.0.0.1:{}", free_port())
}

/// A private temporary directory for `ipc://` endpoints, removed on drop.
pub struct IpcDir(tempfile::TempDir);

impl IpcDir {
    /// Creates the directory.
    pub fn new() -> IpcDir {
        IpcDir(tempfile::tempdir().expect("cannot create a temporary directory"))
    }

    /// `ipc://<dir>/<name>.ipc`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("ipc://{}/{name}.ipc", self.0.path().display())
    }

    /// The directory itself (for other per-test files).
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Default for IpcDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether this is a CI run: the `CI` environment variable is `true` (`.ci/run` sets it, as
/// most CI services do). There a test whose prerequisite is missing fails instead of skipping.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What a test does about a prerequisite it cannot produce itself (a headless browser):
/// `found` if it is there. If not, outside CI it prints `SKIPPED: <why>` and returns `None`, so
/// the test returns; under CI ([`on_ci`]) it panics with the reason, so CI never counts a test
/// that did not run as passed. One place for the rule, rather than a copy per test.
pub fn prerequisite<T>(found: Option<T>, why: impl FnOnce() -> String) -> Option<T> {
    if found.is_some() {
        return found;
    }
    let why = why();
    assert!(!on_ci(), "missing prerequisite under CI=true: {why}");
    println!("SKIPPED: {why} (under CI=true this fails)");
    None
}

/// `target/<profile>/`: the directory of the running test executable, `deps/` stripped, where
/// cargo puts every binary of the workspace.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a directory")
        .to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The workspace root: `common` is one of its members.
fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("common/ lies in the workspace")
        .to_owned()
}

/// The latest modification time of what the workspace's binaries are built from: every
/// member's `src/` and `Cargo.toml`, the root `Cargo.toml` and `Cargo.lock`.
fn newest_source() -> std::time::SystemTime {
    let root = workspace_dir();
    let members = std::fs::read_dir(&root).into_iter().flatten().flatten();
    let mut newest_seen = newest(&root.join("Cargo.toml")).max(newest(&root.join("Cargo.lock")));
    for member in members.map(|e| e.path()) {
        if member.join("Cargo.toml").is_file() {
            newest_seen = newest_seen
                .max(newest(&member.join("Cargo.toml")))
                .max(newest(&member.join("src")));
        }
    }
    newest_seen
}

/// The directory of the workspace's binaries (`target/<profile>/`, next to the running test),
/// with every one of `names` there and up to date: any that is missing or older than the
/// workspace's sources is built first, with the running cargo (`CARGO`) and profile
/// (`cargo build --workspace --bin <name> …`). Panics if that build fails.
///
/// `cargo test --workspace` builds every binary itself, but `cargo test -p <crate>` or
/// `--test it` builds only the crate's own: a test needing another crate's binary would run an
/// old one, or none. Only the binaries named are built (each at most once per test process),
/// never the rest: relinking a binary that a parallel test is running pulls it from under it.
pub fn workspace_bins(names: &[&str]) -> PathBuf {
    static TRIED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = profile_dir();
    // Held during the build, so parallel tests wait for it instead of starting a second one.
    let mut tried = TRIED.lock().unwrap_or_else(|e| e.into_inner());
    let sources = newest_source();
    let wanted: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !tried.iter().any(|t| t == name))
        .filter(|name| newest(&dir.join(name)) < sources)
        .collect();
    if !wanted.is_empty() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(&cargo);
        build
            .args(["build", "-q", "--workspace", "--manifest-path"])
            .arg(workspace_dir().join("Cargo.toml"));
        for name in &wanted {
            build.args(["--bin", name]);
        }
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status();
        tried.extend(wanted.iter().map(|n| n.to_string()));
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "{cargo} build --workspace --bin {} failed: {status:?}",
            wanted.join(" --bin ")
        );
    }
    for name in names {
        assert!(
            dir.join(name).is_file(),
            "{} not found, even after building it",
            dir.join(name).display()
        );
    }
    dir
}

/// Path of a workspace binary next to the running test executable (`target/<profile>/<name>`),
/// built first if missing or out of date (see [`workspace_bins`]).
///
/// Inside a binary's own package prefer `env!("CARGO_BIN_EXE_<name>")`; this finds binaries of
/// other packages.
pub fn bin_path(name: &str) -> PathBuf {
    workspace_bins(&[name]).join(name)
}

/// Path of an example program of the calling crate (`target/<profile>/examples/<name>`), built
/// first when any file under its `examples/` is newer than the binary. `cargo test` builds
/// examples itself; `cargo test --test it` does not, hence the build here (once per package
/// and test process).
#[macro_export]
macro_rules! example {
    ($name:expr) => {
        $crate::testkit::example_path(env!("CARGO_MANIFEST_DIR"), env!("CARGO_PKG_NAME"), $name)
    };
}

/// What [`example!`](crate::example) expands to: `manifest_dir` and `package` are the calling
/// crate's.
pub fn example_path(manifest_dir: &str, package: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    let sources = newest(&Path::new(manifest_dir).join("examples"));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if newest(&path) < sources && !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", package, "--examples"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let ok = build.status().is_ok_and(|s| s.success());
        assert!(ok, "cargo build -p {package} --examples failed");
        built.push(package.to_owned());
    }
    path
}

/// The latest modification time of `path` and everything under it (the epoch if missing).
fn newest(path: &Path) -> std::time::SystemTime {
    let own = std::fs::metadata(path).and_then(|m| m.modified());
    let children = std::fs::read_dir(path).into_iter().flatten().flatten();
    children.map(|entry| newest(&entry.path())).fold(
        own.unwrap_or(std::time::SystemTime::UNIX_EPOCH),
        std::cmp::max,
    )
}
