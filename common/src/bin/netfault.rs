//! `netfault`: a TCP fault proxy driven from stdin. Put it between any client and server to pull
//! the cable, delay or throttle the link, or reset every connection, while both keep running.
//!
//! ```sh
//! netfault --listen tcp://127.0.0.1:6555 --to tcp://127.0.0.1:5555
//! partition        # typed on stdin; answered on stdout with `I: netfault partition`
//! heal
//! ```
//!
//! Stdout lines (a stable contract, one per event, flushed at once):
//! `I: netfault ready on <listen addr> → <upstream addr>` once listening,
//! `I: netfault <command>` for each command applied (in its canonical text, e.g. `delay 200`),
//! `E: netfault: <why>` for a line that is not a command (it is ignored),
//! `I: netfault stdin closed; running until Ctrl-C` at end of input.
//! Warnings of the proxy itself (an upstream that refuses a connection) go to stderr as `W:`.

use clap::Parser;
use common::netfault::{Command, Fault, Options, Proxy};
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::ExitCode;

/// TCP fault proxy: relays every connection from --listen to --to, and applies the commands read
/// from stdin, one per line, to every connection at once.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Commands (stdin, one per line; empty lines and lines starting with # are skipped):
  pass | heal              move bytes freely; whatever a partition held flows, in order
  partition                hold both directions: no FIN, no RST; new connections hang
  partition up             hold only client → server bytes
  partition down           hold only server → client bytes
  delay MS                 add MS milliseconds of latency per chunk, each way (0 to 86400000)
  throttle BYTES_PER_S     at most BYTES_PER_S bytes per second, each way
  reset                    abort every current connection (RST to both ends); keep accepting
Each command is acknowledged on stdout (`I: netfault partition`). At the end of stdin the proxy
keeps running with the current fault (so `netfault … &` works in a script); Ctrl-C stops it."
)]
struct Args {
    /// Endpoint to listen on; clients connect here instead of to the server (`*` = all
    /// interfaces, port 0 = any free port, printed in the ready line).
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://127.0.0.1:6555", value_parser = common::endpoint::parse)]
    listen: String,
    /// Endpoint of the server every connection is relayed to.
    #[arg(long, value_name = "ENDPOINT", default_value = "tcp://127.0.0.1:5555", value_parser = common::endpoint::parse)]
    to: String,
    /// Fault to start with, as a command (e.g. "delay 100"): handy when stdin is not used.
    #[arg(long, value_name = "COMMAND", default_value = "pass")]
    fault: Command,
    /// Heal as a real network does: held bytes arrive at the sender's next TCP retransmission
    /// (doubling from 200 ms: seconds after a long partition), held connects at the next SYN retry
    /// (1, 3, 7, 15 s …). Without it, everything held flows the moment the link heals.
    #[arg(long)]
    tcp_backoff: bool,
    /// Log each connection opened, closed or aborted (D: lines on stderr).
    #[arg(short, long)]
    verbose: bool,
}

/// Resolves `tcp://host:port` to one address, preferring IPv4: `localhost` may resolve to `::1`
/// first, where a server bound to `0.0.0.0` is not listening.
async fn resolve(endpoint: &str) -> Result<SocketAddr, String> {
    let Some(host_port) = endpoint.strip_prefix("tcp://") else {
        return Err(format!(
            "{endpoint}: netfault relays TCP only (tcp://HOST:PORT)"
        ));
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{endpoint}: no address"))
}

/// Reads stdin on a plain thread: tokio's stdin would keep the runtime from shutting down on
/// Ctrl-C while a read is pending. `None` at end of input.
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (lines, receiver) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

// One thread: the proxy's work is a few syscalls per chunk; a thread pool only adds wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    common::logging::init(args.verbose);
    let interrupted = common::shutdown::signal();
    let listen = common::endpoint::bindable(&args.listen);
    let to = common::endpoint::connectable(&args.to);
    let addrs = match (resolve(&listen).await, resolve(&to).await) {
        (Ok(listen), Ok(to)) => (listen, to),
        (Err(e), _) | (_, Err(e)) => {
            println!("E: netfault: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        tcp_backoff: args.tcp_backoff,
    };
    let proxy = match Proxy::start_with(addrs.0, addrs.1, options).await {
        Ok(proxy) => proxy,
        Err(e) => {
            println!("E: netfault: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "I: netfault ready on {} → {}",
        proxy.local_addr(),
        proxy.upstream()
    );
    if !matches!(args.fault, Command::Heal | Command::Set(Fault::Pass)) {
        proxy.apply(args.fault);
        println!("I: netfault {}", args.fault);
    }

    let mut lines = stdin_lines();
    let mut reading = true;
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return ExitCode::SUCCESS,
            line = lines.recv(), if reading => match line {
                Some(line) => {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    match line.parse::<Command>() {
                        Ok(command) => {
                            proxy.apply(command);
                            println!("I: netfault {command}");
                        }
                        Err(e) => println!("E: netfault: {e}"),
                    }
                }
                None => {
                    reading = false;
                    println!("I: netfault stdin closed; running until Ctrl-C");
                }
            },
        }
    }
}
