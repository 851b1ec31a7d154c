//! The guard's private hop: the Unix socket the zeromq socket listens on behind its guard.
//!
//! Whoever reaches this socket talks to zeromq unchecked, so it must be reachable by nobody but
//! the server itself. Abstract Unix sockets do not qualify (they have no permissions: any user
//! of the host can connect), nor does a loopback port. So each guarded bind gets:
//!
//! ```text
//! <base>/zguide-guard-<pid>-<32 random hex digits>/   mode 0700, created fresh (never reused)
//!                                                 s    the socket zeromq listens on
//! ```
//!
//! - The directory is made with mode 0700 by `mkdir`, which fails rather than follow a name
//!   someone else created first, so only this user (and root) can enter it, whatever the umask.
//!   The random part (from the operating system) keeps others from creating the name first.
//! - `<base>` is `$XDG_RUNTIME_DIR` when it is set (a per-user, mode 0700 directory on tmpfs),
//!   else the temporary directory, else `/tmp` when that path would be too long for a Unix
//!   socket address (108 bytes).
//! - The directory is removed when the guard in front of it is gone: its accept loop ended
//!   because the zeromq socket closed, or the runtime was dropped as the program exited. A
//!   process killed with `-9` cannot clean up; the next guarded process of the same user removes
//!   such leftovers (directories of this user whose pid no longer runs).

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The prefix of every private directory, as `ls` shows it.
pub const PREFIX: &str = "zguide-guard-";
/// The socket's file name inside the directory.
const SOCKET: &str = "s";
/// Longest socket path the kernel accepts (`sun_path` is 108 bytes with its NUL).
const MAX_PATH: usize = 107;

/// A private socket path, its directory removed on drop.
#[derive(Debug)]
pub struct PrivateSocket {
    dir: PathBuf,
    path: PathBuf,
}

impl PrivateSocket {
    /// Creates a fresh private directory and binds a listener in it. Leftovers of killed
    /// processes of this user are removed first (once per process).
    pub fn bind() -> io::Result<(Self, UnixListener)> {
        let base = base_dir();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| sweep_stale(&base));
        let dir = create_private_dir(&base)?;
        let socket = Self {
            path: dir.join(SOCKET),
            dir,
        };
        let listener = UnixListener::bind(&socket.path)?;
        Ok((socket, listener))
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where private directories go: the first candidate whose socket paths fit in `sun_path`.
fn base_dir() -> PathBuf {
    let longest_name = PREFIX.len() + 10 + 1 + 32 + 1 + SOCKET.len();
    let fits = |base: &Path| base.as_os_str().len() + 1 + longest_name <= MAX_PATH;
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| is_own_private_dir(dir));
    runtime
        .into_iter()
        .chain([std::env::temp_dir()])
        .find(|base| base.is_absolute() && fits(base))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// True for a real directory (not a link) owned by this user that only it can enter.
fn is_own_private_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o077 == 0
    })
}

/// Makes `<base>/zguide-guard-<pid>-<random>` with mode 0700, and checks it is what we made.
fn create_private_dir(base: &Path) -> io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    let mut last = None;
    // A clash of 128 random bits means something is wrong with the random source; a few tries
    // only cover a directory left by an earlier process with the same pid *and* name.
    for _ in 0..4 {
        let dir = base.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            crate::ids::token()
        ));
        match builder.create(&dir) {
            Ok(()) => {
                // The umask can only remove bits from 0700; make sure nothing else changed it.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                if !is_own_private_dir(&dir) {
                    return Err(io::Error::other(format!(
                        "{} is not a private directory after creating it",
                        dir.display()
                    )));
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", dir.display()),
                ))
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a private directory")))
}

/// Removes private directories of this user in `base` whose process no longer runs.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(leftover_pid) else {
            continue;
        };
        let dir = entry.path();
        if is_own_private_dir(&dir) && !process_runs(pid) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::debug!("guard: removed {} (process {pid} is gone)", dir.display())
                }
                Err(e) => tracing::debug!("guard: cannot remove {}: {e}", dir.display()),
            }
        }
    }
}

/// The pid in a private directory's name, `None` for any other name.
fn leftover_pid(name: &str) -> Option<i32> {
    let (pid, random) = name.strip_prefix(PREFIX)?.split_once('-')?;
    let hex = random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| pid.parse().ok()).flatten()
}

/// True unless the process is known to be gone (a process of another user still runs).
fn process_runs(pid: i32) -> bool {
    use nix::errno::Errno;
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_private_fresh_and_gone_on_drop() {
        let (first, _listener) = PrivateSocket::bind().unwrap();
        let (second, _listener2) = PrivateSocket::bind().unwrap();
        assert_ne!(first.path(), second.path());
        let dir = first.path().parent().unwrap().to_owned();
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
        assert!(first.path().as_os_str().len() <= MAX_PATH);
        std::os::unix::net::UnixStream::connect(first.path()).expect("the owner connects");
        drop(first);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn leftovers_of_dead_processes_are_swept_and_live_ones_kept() {
        let base = tempfile_dir();
        let dead = base.join(format!("{PREFIX}{}-{}", i32::MAX, "a".repeat(32)));
        let live = base.join(format!("{PREFIX}{}-{}", std::process::id(), "b".repeat(32)));
        let other = base.join("zguide-guard-notes");
        for dir in [&dead, &live, &other] {
            std::fs::DirBuilder::new().mode(0o700).create(dir).unwrap();
        }
        sweep_stale(&base);
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists(), "a name not ours is left alone");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn only_our_names_parse() {
        assert_eq!(
            leftover_pid(&format!("{PREFIX}42-{}", "0f".repeat(16))),
            Some(42)
        );
        for name in [
            "zguide-guard-42",
            "zguide-guard-x-00",
            "other-42-00",
            "zguide-guard-42-zz",
        ] {
            assert_eq!(leftover_pid(name), None, "{name}");
        }
    }

    /// A scratch directory for the sweep test (not the shared base, where other tests run).
    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("guard-sweep-test-{}", crate::ids::token()));
        std::fs::create_dir(&dir).unwrap();
        dir
    }
}
