//! What every benchmark binary needs around its measurement (`mdbench`, `spbench`, `flbench`,
//! `tibench`, `bstarbench`): a port to put a server on, child processes that never outlive the
//! benchmark, the median of its rounds and a process's memory.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

/// `tcp://127.0.0.1:PORT` on a port the OS just handed out (bound, then released for a server
/// the benchmark starts).
pub fn free_endpoint() -> io::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("tcp://127.0.0.1:{port}"))
}

/// A child process killed (`kill -9`) and reaped when dropped, so an early error or Ctrl-C
/// leaves no server running behind the benchmark.
#[derive(Debug)]
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        command.spawn().map(Self)
    }

    /// Starts `program` with `args`, its input and output discarded, and hands every line of its
    /// standard error (where our programs log) to `on_line`, as [`forward_stderr`] does: how a
    /// benchmark watches a server it started.
    ///
    /// [`forward_stderr`]: Self::forward_stderr
    pub fn spawn_watched<S: AsRef<OsStr>>(
        program: &Path,
        args: &[S],
        on_line: impl FnMut(String) + Send + 'static,
    ) -> io::Result<Self> {
        let mut child = Self::spawn(
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )?;
        child.forward_stderr(on_line)?;
        Ok(child)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The child's standard error, if it was piped and not taken yet.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.0.stderr.take()
    }

    /// Hands every line the child writes to its (piped) standard error to `on_line`, on a thread
    /// of its own, until the child closes it: the pipe never fills, whatever the caller reads.
    pub fn forward_stderr(
        &mut self,
        mut on_line: impl FnMut(String) + Send + 'static,
    ) -> io::Result<()> {
        let stderr = self
            .take_stderr()
            .ok_or_else(|| io::Error::other("the child's stderr is not piped"))?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                on_line(line);
            }
        });
        Ok(())
    }

    /// Kills the child and waits for it (again: harmless).
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A figure a median is taken of: ordered, and with a midpoint for an even count.
pub trait Figure: Copy {
    /// Total order (floats by [`f64::total_cmp`]).
    fn order(&self, other: &Self) -> Ordering;
    /// Halfway between `self` and `other`.
    fn midpoint(self, other: Self) -> Self;
}

impl Figure for f64 {
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
    fn midpoint(self, other: Self) -> Self {
        (self + other) / 2.0
    }
}

impl Figure for Duration {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
    fn midpoint(self, other: Self) -> Self {
        (self + other) / 2
    }
}

/// The median of `values` (with an even number, the midpoint of the middle two); `None` if
/// there are none. Benchmarks report it beside the best round: it says what is typical.
pub fn median<T: Figure>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_by(T::order);
    let half = values.len() / 2;
    match values.len() {
        0 => None,
        n if n.is_multiple_of(2) => Some(values[half - 1].midpoint(values[half])),
        _ => Some(values[half]),
    }
}

/// A process's resident set size in KiB (`VmRSS` of `/proc/<pid>/status`); 0 when it cannot be
/// read (the process is gone, or not Linux).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median::<f64>(vec![]), None);
    }

    #[test]
    fn median_of_durations() {
        let ms = Duration::from_millis;
        assert_eq!(median([ms(30), ms(10), ms(20), ms(40)]), Some(ms(25)));
        assert_eq!(median([ms(7)]), Some(ms(7)));
    }

    #[test]
    fn a_dropped_guard_kills_and_reaps_its_child() {
        let guard = ChildGuard::spawn(Command::new("sleep").arg("60")).unwrap();
        let proc_dir = format!("/proc/{}", guard.id());
        assert!(std::path::Path::new(&proc_dir).exists());
        drop(guard);
        assert!(!std::path::Path::new(&proc_dir).exists(), "no zombie left");
    }

    #[test]
    fn free_endpoint_is_a_loopback_tcp_endpoint() {
        let endpoint = free_endpoint().unwrap();
        let port = endpoint.strip_prefix("tcp://127.0.0.1:").unwrap();
        assert!(port.parse::<u16>().unwrap() > 0);
    }
}
