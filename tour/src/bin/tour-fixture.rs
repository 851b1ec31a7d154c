//! A scriptable stand-in process for the tour's own tests: it prints lines, sleeps, ticks,
//! listens or connects on TCP, prints a client summary line and exits with a chosen code, all as
//! told by its arguments, so the engine is tested without any pattern binary.

use anyhow::{bail, Context};
use clap::Parser;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Runs the given commands in order.
///
/// Commands: `out=TEXT` (line on stdout), `err=TEXT` (line on stderr), `sleep=MS`,
/// `ticks=N/MS` (`tick I T` for I = 1..N every MS ms on stdout, T = ms since start; N = 0:
/// forever),
/// `summary=SENT/ANSWERED/FAILED/RETRIES` (`I: summary …` on stderr), `pid` (`pid N`),
/// `listen=tcp://HOST:PORT` (bind, print `listening PORT`, accept in the background and print
/// `accepted`, then `got LINE` for every line a connection sends), `connect=tcp://HOST:PORT`
/// (print `connected` within 5 s or fail), `send=TEXT` (write the line on the last connection),
/// `exit=CODE`, `hang` (sleep forever), `request=SEQ/answered|failed/TRIES/LATENCY_MS` (the
/// per-request line of a client, `I: request …` on stderr, printed only with `--log-requests`),
/// `probe=tcp://IP:PORT|unix:PATH` (connect and send the 2^62-byte header that aborts an
/// unguarded zeromq socket; print `probe TARGET reached` or `probe TARGET refused KIND`).
#[derive(Parser)]
#[command(name = "tour-fixture")]
struct Args {
    /// Print the `request=` lines, as a client does with this flag (the tour passes it to
    /// clients when it writes a report). Default: off.
    #[arg(long)]
    log_requests: bool,
    /// The commands, run left to right.
    commands: Vec<String>,
}

fn tcp_addr(endpoint: &str) -> anyhow::Result<&str> {
    endpoint
        .strip_prefix("tcp://")
        .with_context(|| format!("not a tcp:// endpoint: {endpoint}"))
}

fn numbers(text: &str) -> anyhow::Result<Vec<u64>> {
    text.split('/')
        .map(|n| n.parse().with_context(|| format!("bad number {n:?}")))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut listeners = Vec::new();
    let mut streams: Vec<TcpStream> = Vec::new();
    for command in &args.commands {
        let (cmd, value) = command.split_once('=').unwrap_or((command, ""));
        match cmd {
            "out" => println!("{value}"),
            "err" => eprintln!("{value}"),
            "sleep" => std::thread::sleep(Duration::from_millis(value.parse()?)),
            "ticks" => {
                let [n, ms] = numbers(value)?[..] else {
                    bail!("ticks=N/MS");
                };
                let mut i = 0;
                while n == 0 || i < n {
                    i += 1;
                    println!("tick {i} {}", started.elapsed().as_millis());
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
            "summary" => {
                let [sent, answered, failed, retries] = numbers(value)?[..] else {
                    bail!("summary=SENT/ANSWERED/FAILED/RETRIES");
                };
                eprintln!(
                    "I: summary sent={sent} answered={answered} failed={failed} retries={retries}"
                );
            }
            "request" => {
                let [seq, outcome, tries, latency] = value.split('/').collect::<Vec<_>>()[..]
                else {
                    bail!("request=SEQ/OUTCOME/TRIES/LATENCY_MS");
                };
                if args.log_requests {
                    eprintln!(
                        "I: request seq={seq} outcome={outcome} tries={tries} latency_ms={latency}"
                    );
                }
            }
            "pid" => println!("pid {}", std::process::id()),
            "probe" => {
                let target: common::hostile::Listening =
                    value.parse().map_err(anyhow::Error::msg)?;
                match common::hostile::probe(&target) {
                    common::hostile::Probed::Reached => println!("probe {target} reached"),
                    common::hostile::Probed::Refused(kind) => {
                        println!("probe {target} refused {kind:?}")
                    }
                }
            }
            "listen" => {
                let listener = TcpListener::bind(tcp_addr(value)?)
                    .with_context(|| format!("cannot listen on {value}"))?;
                println!("listening {}", listener.local_addr()?.port());
                let accepting = listener.try_clone()?;
                std::thread::spawn(move || {
                    while let Ok((stream, _)) = accepting.accept() {
                        println!("accepted");
                        std::thread::spawn(move || {
                            use std::io::BufRead;
                            for line in std::io::BufReader::new(stream).lines() {
                                let Ok(line) = line else { break };
                                println!("got {line}");
                            }
                        });
                    }
                });
                listeners.push(listener);
            }
            "connect" => {
                let addr = tcp_addr(value)?;
                let deadline = Instant::now() + Duration::from_secs(5);
                let stream = loop {
                    match TcpStream::connect(addr) {
                        Ok(stream) => break stream,
                        Err(_) if Instant::now() <= deadline => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        Err(_) => bail!("cannot connect to {value}"),
                    }
                };
                println!("connected");
                streams.push(stream);
            }
            "send" => {
                let stream = streams.last_mut().context("send= before any connect=")?;
                writeln!(stream, "{value}")?;
                println!("sent {value}");
            }
            "exit" => {
                std::io::stdout().flush()?;
                std::process::exit(value.parse()?);
            }
            "hang" => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            _ => bail!("unknown command {command:?}"),
        }
    }
    Ok(())
}
