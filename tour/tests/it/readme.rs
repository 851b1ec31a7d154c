//! Every terminal recipe of the README runs as written, and its clients get everything answered.
//!
//! The commands come from the README's text itself: each ```sh block under a `###` or `####`
//! heading of its "Patterns" section (one block per heading, which is the recipe's title), one
//! terminal per line (`cmd args  # N: comment`, `a & b` being two processes). The binaries are
//! built first if missing or out of date ([`common::testkit::workspace_bins`]), so the recipes
//! run under `cargo test -p tour` too. The test only makes them private, as a person would not
//! need to:
//! - the Guide's ports (5555, 5556, 5557, 5001–5004) become free ports of this test, both where
//!   the text writes them and where a program uses them by default (the flags it then appends
//!   are in [`DEFAULT_ENDPOINTS`], checked against each program's `--help`);
//! - a path under `/tmp/` moves into a private directory.
//!
//! Then it does what the comments tell a person to do: servers start in order (each waited for
//! until it prints a line with `ready`), `start two` starts two, a server line that repeats an
//! earlier one is the restart of that server once it has died ("restart the server here"), and
//! a client whose comment says `kill -9 the primary` / `kill a server` has the first server
//! killed after its first few replies (lines saying so, or `outcome=answered` request lines).
//! Clients run one after another; each must exit with success and, if it prints a summary
//! line, have every request answered.

use common::report::Summary;
use common::testkit::Proc;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One program of a recipe line.
#[derive(Debug, Clone, PartialEq)]
struct Cmd {
    program: String,
    args: Vec<String>,
}

impl Cmd {
    fn text(&self) -> String {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One terminal of a recipe.
#[derive(Debug, Clone)]
struct Line {
    commands: Vec<Cmd>,
    comment: String,
}

#[derive(Debug, Clone)]
struct Recipe {
    title: String,
    lines: Vec<Line>,
}

/// The programs that do requests and end by themselves; everything else is a server.
const CLIENTS: &[&str] = &[
    "lpclient",
    "mdclient",
    "mdclient2",
    "mmiecho",
    "mdadmin",
    "ticlient",
    "bstarcli",
    "flclient1",
    "flclient2",
    "flclient3",
];

/// Programs that prepare something and exit (key files): run to completion, in order, before
/// the next line.
const SETUP: &[&str] = &["zkeygen"];

/// The Guide's ports, which the test replaces with private ones.
const GUIDE_PORTS: &[&str] = &["5555", "5556", "5557", "5001", "5002", "5003", "5004"];

/// Endpoints each program uses when the command line does not say (its `--help` defaults).
const DEFAULT_ENDPOINTS: &[(&str, &[(&str, &str)])] = &[
    ("lpserver", &[("--bind", "tcp://*:5555")]),
    ("lpclient", &[("--server", "tcp://localhost:5555")]),
    (
        "spqueue",
        &[
            ("--frontend", "tcp://*:5555"),
            ("--backend", "tcp://*:5556"),
        ],
    ),
    ("spworker", &[("--queue", "tcp://localhost:5556")]),
    (
        "ppqueue",
        &[
            ("--frontend", "tcp://*:5555"),
            ("--backend", "tcp://*:5556"),
        ],
    ),
    ("ppworker", &[("--queue", "tcp://localhost:5556")]),
    ("mdbroker", &[("--bind", "tcp://*:5555")]),
    ("mdworker", &[("--broker", "tcp://localhost:5555")]),
    ("mdclient", &[("--broker", "tcp://localhost:5555")]),
    ("mdclient2", &[("--broker", "tcp://localhost:5555")]),
    ("mmiecho", &[("--broker", "tcp://localhost:5555")]),
    ("mdadmin", &[("--broker", "tcp://localhost:5555")]),
    ("titanic", &[("--broker", "tcp://localhost:5555")]),
    ("ticlient", &[("--broker", "tcp://localhost:5555")]),
    (
        "bstarcli",
        &[
            ("--primary", "tcp://localhost:5001"),
            ("--backup", "tcp://localhost:5002"),
        ],
    ),
    ("flserver3", &[("--bind", "tcp://*:5555")]),
];

/// bstarsrv's defaults depend on its role.
const BSTAR_PRIMARY: &[(&str, &str)] = &[
    ("--frontend", "tcp://*:5001"),
    ("--state-pub", "tcp://*:5003"),
    ("--state-sub", "tcp://localhost:5004"),
];
const BSTAR_BACKUP: &[(&str, &str)] = &[
    ("--frontend", "tcp://*:5002"),
    ("--state-pub", "tcp://*:5004"),
    ("--state-sub", "tcp://localhost:5003"),
];

fn readme() -> String {
    let path = tour::bins::workspace_dir().join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ```sh blocks of the README's "Patterns" section, each titled by the `###` or `####`
/// heading above it. A second block under one heading is an error: the test names say which
/// recipe they run, so every recipe needs a title of its own.
fn recipes(text: &str) -> Vec<Recipe> {
    let mut out: Vec<Recipe> = Vec::new();
    let mut in_patterns = false;
    let mut heading = String::new();
    let mut block: Option<Vec<Line>> = None;
    for raw in text.lines() {
        if let Some(lines) = block.as_mut() {
            if raw.trim_start().starts_with("```") {
                assert!(
                    out.iter().all(|r| r.title != heading),
                    "a second recipe under the heading {heading:?}: give it a heading of its own"
                );
                out.push(Recipe {
                    title: heading.clone(),
                    lines: block.take().unwrap(),
                });
            } else if !raw.trim().is_empty() {
                lines.push(parse_line(raw));
            }
            continue;
        }
        if let Some(h) = raw.strip_prefix("## ") {
            in_patterns = h.trim() == "Patterns";
        } else if let Some(h) = raw
            .strip_prefix("### ")
            .or_else(|| raw.strip_prefix("#### "))
        {
            heading = h.trim().to_owned();
        } else if in_patterns && !heading.is_empty() && raw.trim() == "```sh" {
            block = Some(Vec::new());
        }
    }
    out
}

fn parse_line(raw: &str) -> Line {
    let (command, comment) = match raw.find(" #") {
        Some(i) => (&raw[..i], raw[i + 2..].trim()),
        None => (raw, ""),
    };
    assert!(
        !command.contains(['\'', '"', '|', ';', '>', '<', '$']),
        "a recipe line the test cannot run without a shell: {raw}"
    );
    let commands = command
        .split(" & ")
        .map(|c| {
            let mut words = c.split_whitespace().map(str::to_owned);
            Cmd {
                program: words.next().expect("a program"),
                args: words.collect(),
            }
        })
        .collect();
    Line {
        commands,
        comment: comment.to_owned(),
    }
}

/// The same command on private ports and paths.
fn private(cmd: &Cmd, ports: &mut BTreeMap<String, u16>, tmp: &Path) -> Cmd {
    let mut args = cmd.args.clone();
    let defaults: &[(&str, &str)] = match cmd.program.as_str() {
        "bstarsrv" if args.iter().any(|a| a == "-b" || a == "--backup") => BSTAR_BACKUP,
        "bstarsrv" => BSTAR_PRIMARY,
        p => DEFAULT_ENDPOINTS
            .iter()
            .find(|(name, _)| *name == p)
            .map_or(&[], |(_, d)| d),
    };
    for (flag, endpoint) in defaults {
        if !args.iter().any(|a| a == flag) {
            args.push(flag.to_string());
            args.push(endpoint.to_string());
        }
    }
    let args = args
        .into_iter()
        .map(|a| {
            let mut a = a;
            for port in GUIDE_PORTS {
                let needle = format!(":{port}");
                if a.ends_with(&needle) {
                    let private = *ports
                        .entry(port.to_string())
                        .or_insert_with(common::testkit::free_port);
                    a = format!("{}:{private}", &a[..a.len() - needle.len()]);
                }
            }
            match a.strip_prefix("/tmp/") {
                Some(rest) => tmp.join(rest).to_string_lossy().into_owned(),
                None => a,
            }
        })
        .collect();
    Cmd {
        program: cmd.program.clone(),
        args,
    }
}

fn is_client(cmd: &Cmd) -> bool {
    CLIENTS.contains(&cmd.program.as_str())
}

/// Every program a recipe may run: the ones with known defaults, the clients, the servers
/// whose endpoints are always on the command line.
fn programs() -> Vec<&'static str> {
    let mut all: Vec<&str> = DEFAULT_ENDPOINTS
        .iter()
        .map(|(p, _)| *p)
        .chain(CLIENTS.iter().copied())
        .chain(SETUP.iter().copied())
        .chain(["bstarsrv", "flserver1", "flserver2"])
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The directory of the pattern binaries, every one of [`programs`] built and up to date.
fn bin_dir() -> PathBuf {
    common::testkit::workspace_bins(&programs())
}

const READY: Duration = Duration::from_secs(30);
const CLIENT_LIMIT: Duration = Duration::from_secs(180);
/// Replies a client gets before a "kill" comment is carried out.
const REPLIES_BEFORE_KILL: usize = 3;

struct Server {
    line: usize,
    cmd: Cmd,
    proc: Proc,
}

fn start(bin: &Path, cmd: &Cmd, name: &str) -> Proc {
    let mut p = Proc::spawn(name, bin.join(&cmd.program), cmd.args.clone());
    p.wait_for("ready", READY);
    p
}

fn replies(p: &Proc) -> usize {
    p.lines()
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("replied")
                || l.contains("reply ")
                || l.contains("answered after")
                || l.contains("outcome=answered")
        })
        .count()
}

/// What a recipe run did besides starting things.
#[derive(Debug, Default)]
struct Done {
    /// Servers restarted after they died ("restart the server here").
    restarts: usize,
    /// Servers killed as a client's comment says.
    kills: usize,
}

/// Runs one recipe and checks every client.
fn run_recipe(title: &str) -> Done {
    let bin = bin_dir();
    let mut done = Done::default();
    let all = recipes(&readme());
    let recipe = all
        .iter()
        .find(|r| r.title == title)
        .unwrap_or_else(|| panic!("no recipe {title:?} in the README"));
    let tmp = tempfile::tempdir().unwrap();
    let mut ports = BTreeMap::new();
    let mut servers: Vec<Server> = Vec::new();
    // Server lines that repeat an earlier one: restarts, done when that one has died.
    let mut restarts: Vec<Cmd> = Vec::new();
    let mut report = Vec::new();
    // Made private once, so every line agrees on the ports.
    let lines: Vec<(usize, &Line, Vec<Cmd>)> = recipe
        .lines
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let cmds = line
                .commands
                .iter()
                .map(|c| private(c, &mut ports, tmp.path()))
                .collect();
            (n, line, cmds)
        })
        .collect();
    // A server line repeating an earlier server's program is its restart, if it says so.
    let first_line_of = |program: &str| {
        lines
            .iter()
            .find(|(_, _, cmds)| cmds.iter().any(|c| c.program == program))
            .map(|(n, _, _)| *n)
    };
    let is_restart = |n: usize, line: &Line, cmd: &Cmd| {
        !is_client(cmd) && line.comment.contains("restart") && first_line_of(&cmd.program) < Some(n)
    };
    for (n, line, cmds) in &lines {
        for cmd in cmds {
            if is_restart(*n, line, cmd) {
                restarts.push(cmd.clone());
            }
        }
    }
    for (n, line, cmds) in &lines {
        let n = *n;
        for cmd in cmds {
            let cmd = cmd.clone();
            let name = format!("{}:{}", n + 1, cmd.program);
            if SETUP.contains(&cmd.program.as_str()) {
                let mut setup = Proc::spawn(&name, bin.join(&cmd.program), cmd.args.clone());
                let status = setup.wait_exit(READY);
                assert!(
                    status.is_some_and(|s| s.success()),
                    "{title}: `{}` ended with {status:?}:\n{}",
                    cmd.text(),
                    setup.lines().join("\n")
                );
                continue;
            }
            if !is_client(&cmd) {
                if is_restart(n, line, &cmd) {
                    continue;
                }
                let copies = if line.comment.contains("start two") {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    servers.push(Server {
                        line: n,
                        proc: start(&bin, &cmd, &name),
                        cmd: cmd.clone(),
                    });
                }
                continue;
            }
            let mut client = Proc::spawn(&name, bin.join(&cmd.program), cmd.args.clone());
            let kill_first = line.comment.contains("kill -9 the primary")
                || line.comment.contains("kill a server");
            let mut killed = false;
            let began = Instant::now();
            let status = loop {
                if let Some(status) = client.wait_exit(Duration::from_millis(100)) {
                    break status;
                }
                assert!(
                    began.elapsed() < CLIENT_LIMIT,
                    "{title}: {} still running after {CLIENT_LIMIT:?}:\n{}",
                    cmd.text(),
                    client.lines().join("\n")
                );
                if kill_first && !killed && replies(&client) >= REPLIES_BEFORE_KILL {
                    servers[0].proc.kill9();
                    killed = true;
                    done.kills += 1;
                }
                // "restart the server here": as soon as the server it repeats has died.
                for again in std::mem::take(&mut restarts) {
                    let dead = servers.iter_mut().position(|s| {
                        s.cmd.program == again.program
                            && (s.proc.wait_exit(Duration::ZERO).is_some()
                                || s.proc.pid().is_none())
                    });
                    if let Some(first) = dead {
                        let line = servers[first].line;
                        servers.remove(first);
                        servers.push(Server {
                            line,
                            proc: start(&bin, &again, &format!("{name}-restarted")),
                            cmd: again,
                        });
                        done.restarts += 1;
                    } else {
                        restarts.push(again);
                    }
                }
            };
            let out = client.lines().join("\n");
            assert!(
                status.success(),
                "{title}: `{}` ended with {status}:\n{out}",
                cmd.text()
            );
            if kill_first {
                assert!(killed, "{title}: the client ended before the kill:\n{out}");
            }
            if let Some(s) = client.summary() {
                let Summary {
                    sent,
                    answered,
                    failed,
                    ..
                } = s;
                assert!(
                    sent > 0 && answered == sent && failed == 0,
                    "{title}: `{}`: {s}\n{out}",
                    cmd.text()
                );
            }
            report.push(format!(
                "{} → {}",
                cmd.text(),
                client.summary().map_or("ok".into(), |s| s.to_string())
            ));
        }
    }
    assert!(!report.is_empty(), "{title}: the recipe has no client");
    println!("{title}: {done:?}\n  {}", report.join("\n  "));
    done
}

#[test]
fn the_readme_has_a_recipe_per_pattern_and_the_test_knows_its_programs() {
    let all = recipes(&readme());
    let titles: Vec<&str> = all.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Lazy Pirate",
            "Simple Pirate",
            "Paranoid Pirate",
            "Majordomo",
            "MDP/0.2: streamed replies (18/MDP)",
            "A broker pair in three terminals",
            "Security: CURVE in three terminals",
            "Titanic",
            "Binary Star",
            "Freelance",
            "Freelance model 1",
            "Freelance model 2",
        ]
    );
    // Every program a recipe names is one the test builds (and knows to be a client or not).
    for recipe in &all {
        for line in &recipe.lines {
            for cmd in &line.commands {
                assert!(
                    programs().contains(&cmd.program.as_str()),
                    "{}: unknown program {}",
                    recipe.title,
                    cmd.program
                );
            }
        }
    }
    let bin = bin_dir();
    // The defaults the test substitutes are the programs' own.
    for (program, defaults) in DEFAULT_ENDPOINTS {
        let help = std::process::Command::new(bin.join(program))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        for (flag, endpoint) in *defaults {
            assert!(
                help.contains(flag) && help.contains(endpoint),
                "{program} --help does not show {flag} {endpoint}:\n{help}"
            );
        }
    }
}

#[test]
fn readme_lazy_pirate() {
    // The seed in the README makes the server crash mid-run, so terminal 3 is needed.
    let done = run_recipe("Lazy Pirate");
    assert_eq!(
        done.restarts, 1,
        "the server never crashed: pick another --seed"
    );
}

#[test]
fn readme_simple_pirate() {
    run_recipe("Simple Pirate");
}

#[test]
fn readme_paranoid_pirate() {
    run_recipe("Paranoid Pirate");
}

#[test]
fn readme_majordomo() {
    run_recipe("Majordomo");
}

/// MDP/0.2 on the same broker: a streaming worker, a streaming client and a 0.1 client.
#[test]
fn readme_majordomo_mdp02() {
    run_recipe("MDP/0.2: streamed replies (18/MDP)");
}

/// Majordomo on a broker pair: the primary killed under the client, the backup takes over.
#[test]
fn readme_majordomo_broker_pair() {
    let done = run_recipe("A broker pair in three terminals");
    assert_eq!(done.kills, 1);
}

/// Broker, worker and client each with a CURVE key pair (zkeygen first).
#[test]
fn readme_security_curve_in_three_terminals() {
    run_recipe("Security: CURVE in three terminals");
}

#[test]
fn readme_titanic() {
    run_recipe("Titanic");
}

#[test]
fn readme_binary_star() {
    let done = run_recipe("Binary Star");
    assert_eq!(done.kills, 1);
}

/// The main Freelance recipe: model 3 (flserver3, flclient3), with a server killed.
#[test]
fn readme_freelance() {
    let done = run_recipe("Freelance");
    assert_eq!(done.kills, 1);
}

#[test]
fn readme_freelance_model_1() {
    run_recipe("Freelance model 1");
}

#[test]
fn readme_freelance_model_2() {
    run_recipe("Freelance model 2");
}
