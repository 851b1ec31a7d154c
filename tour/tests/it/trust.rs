//! The guard has no side door: a guarded server listens on its public ports and, behind each,
//! on one private Unix socket in a directory only its own user can enter (even under umask
//! 000) — except mdbroker, whose public port is the native guarded ROUTER (`common::router`):
//! it listens on its public port and nothing else. Another user of the host reaches the public ports only, and the header that aborts an
//! unguarded zeromq socket, sent by that user to every socket the server listens on (as the
//! kernel lists them), leaves the server alive.
//!
//! The other user needs root to become (the test switches to uid/gid 65534 for its probe); run
//! as anyone else, the listing checks still run and the probe is skipped with a printed reason.

use common::hostile::{listening_sockets, Listening};
use common::testkit::{free_port, Proc};
use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

/// The user the probe runs as (`nobody` on Debian; any unused uid works for the kernel).
const OTHER_USER: u32 = 65534;
const READY: Duration = Duration::from_secs(30);
/// What the guard logs when it closes the probe's connection.
const REFUSED_HEADER: &str = "command frame of 4611686018427387904 bytes";

/// One guarded server: its arguments given its public ports.
struct Server {
    program: &'static str,
    public_ports: usize,
    /// The public ports are native guarded ROUTERs: no private socket behind them.
    native: bool,
    args: fn(&[u16]) -> Vec<String>,
}

fn tcp(port: u16) -> String {
    format!("tcp://127.0.0.1:{port}")
}

/// The queues' two endpoints.
fn frontend_backend(p: &[u16]) -> Vec<String> {
    vec![
        "--frontend".into(),
        tcp(p[0]),
        "--backend".into(),
        tcp(p[1]),
    ]
}

const SERVERS: &[Server] = &[
    Server {
        program: "lpserver",
        public_ports: 1,
        native: false,
        args: |p| vec!["--bind".into(), tcp(p[0])],
    },
    Server {
        program: "spqueue",
        public_ports: 2,
        native: false,
        args: frontend_backend,
    },
    Server {
        program: "ppqueue",
        public_ports: 2,
        native: false,
        args: frontend_backend,
    },
    Server {
        program: "mdbroker",
        public_ports: 1,
        native: true,
        args: |p| vec!["--bind".into(), tcp(p[0])],
    },
    Server {
        program: "bstarsrv",
        public_ports: 2,
        native: false,
        args: |p| {
            vec![
                "--primary".into(),
                "--frontend".into(),
                tcp(p[0]),
                "--state-pub".into(),
                tcp(p[1]),
                "--state-sub".into(),
                tcp(free_port()),
            ]
        },
    },
    Server {
        program: "flserver1",
        public_ports: 1,
        native: false,
        args: |p| vec![tcp(p[0])],
    },
    Server {
        program: "flserver2",
        public_ports: 1,
        native: false,
        args: |p| vec![tcp(p[0])],
    },
    Server {
        program: "flserver3",
        public_ports: 1,
        native: false,
        args: |p| vec!["--bind".into(), tcp(p[0])],
    },
];

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Starts `server` under umask 000 (the private directory must not depend on the umask) and
/// waits until it is ready.
fn start(bin: &Path, server: &Server, ports: &[u16]) -> Proc {
    let mut args = vec![
        "-c".to_owned(),
        r#"umask 000 && exec "$0" "$@""#.to_owned(),
        bin.join(server.program).display().to_string(),
    ];
    args.extend((server.args)(ports));
    let mut p = Proc::spawn(server.program, "sh", args);
    p.wait_for("ready", READY);
    p
}

/// `tour-fixture`, copied where the other user may run it (the build directory may sit in a
/// home directory only root can enter).
struct Prober {
    dir: tempfile::TempDir,
}

impl Prober {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let fixture = Path::new(env!("CARGO_BIN_EXE_tour-fixture"));
        std::fs::copy(fixture, dir.path().join("probe")).unwrap();
        Self { dir }
    }

    /// Probes every target as [`OTHER_USER`]; returns the fixture's `probe …` lines.
    fn run(&self, targets: &[Listening]) -> Vec<String> {
        let out = std::process::Command::new(self.dir.path().join("probe"))
            .args(targets.iter().map(|t| format!("probe={t}")))
            .uid(OTHER_USER)
            .gid(OTHER_USER)
            .current_dir("/")
            .output()
            .expect("run the probe as another user");
        assert!(
            out.status.success(),
            "probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn another_user_reaches_only_the_public_ports_and_cannot_abort_a_server() {
    let programs: Vec<&str> = SERVERS.iter().map(|s| s.program).collect();
    let bin = common::testkit::workspace_bins(&programs);
    let prober = if is_root() {
        Some(Prober::new())
    } else {
        println!(
            "SKIPPED (the other-user probe only): becoming uid {OTHER_USER} needs root; \
             the listing checks still run"
        );
        None
    };
    for server in SERVERS {
        let ports: Vec<u16> = (0..server.public_ports).map(|_| free_port()).collect();
        let mut p = start(&bin, server, &ports);
        let pid = p.pid().expect("running");
        let sockets = listening_sockets(pid).unwrap();
        let name = server.program;

        // The only TCP listeners are the public ports; behind each, one private Unix socket
        // (none behind a native ROUTER).
        let public: BTreeSet<Listening> = ports
            .iter()
            .map(|&port| Listening::Tcp(([127, 0, 0, 1], port).into()))
            .collect();
        let tcp: BTreeSet<Listening> = sockets
            .iter()
            .filter(|s| matches!(s, Listening::Tcp(_)))
            .cloned()
            .collect();
        assert_eq!(tcp, public, "{name}: TCP listeners");
        let private: Vec<&str> = sockets
            .iter()
            .filter_map(|s| match s {
                Listening::Unix(path) => Some(path.as_str()),
                Listening::Tcp(_) => None,
            })
            .collect();
        let behind = if server.native { 0 } else { ports.len() };
        assert_eq!(private.len(), behind, "{name}: {sockets:?}");
        for path in &private {
            assert!(!path.starts_with('@'), "{name}: abstract socket {path}");
            let dir = Path::new(path).parent().unwrap();
            let meta = std::fs::symlink_metadata(dir).unwrap();
            assert_eq!(meta.mode() & 0o777, 0o700, "{name}: {}", dir.display());
            assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
        }

        let Some(prober) = &prober else { continue };
        p.mark();
        let lines = prober.run(&sockets);
        for target in &sockets {
            let expected = match target {
                Listening::Tcp(_) => format!("probe {target} reached"),
                Listening::Unix(_) => format!("probe {target} refused PermissionDenied"),
            };
            assert!(
                lines.contains(&expected),
                "{name}: expected {expected:?} in {lines:?}"
            );
        }
        // The guard closed each public connection with its reason; the server lives on.
        let closed = p.wait_count(REFUSED_HEADER, ports.len(), READY);
        assert_eq!(closed, ports.len(), "{name}:\n{}", p.lines().join("\n"));
        assert!(
            p.wait_exit(Duration::ZERO).is_none(),
            "{name} exited after the probe:\n{}",
            p.lines().join("\n")
        );
        assert_eq!(
            listening_sockets(pid).unwrap(),
            sockets,
            "{name}: still listening"
        );
        println!(
            "{name}: {} sockets, probe as uid {OTHER_USER}: {lines:?}",
            sockets.len()
        );
    }
}
