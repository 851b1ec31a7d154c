//! The `netfault` binary as a shell-script user drives it: commands on stdin, acknowledgements
//! on stdout, a real client and server on each side.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const SOON: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);

/// A running `netfault` with its stdin at hand; killed on drop.
struct Netfault {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    cursor: usize,
}

impl Netfault {
    fn spawn(args: &[&str]) -> Netfault {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netfault"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start netfault");
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.0.lock().unwrap().push(line);
                    lines.1.notify_all();
                }
            });
        }
        Netfault {
            stdin: child.stdin.take(),
            child,
            lines,
            cursor: 0,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the next line (after the previous match) that contains `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + SOON;
        let mut lines = self.lines.0.lock().unwrap();
        loop {
            if let Some(i) = lines[self.cursor..].iter().position(|l| l.contains(needle)) {
                self.cursor += i + 1;
                return lines[self.cursor - 1].clone();
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| {
                    panic!(
                        "netfault: no line with {needle:?}; output:\n{}",
                        lines.join("\n")
                    )
                });
            lines = self.lines.1.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// The address from the ready line.
    fn ready(&mut self) -> SocketAddr {
        let line = self.wait_for("I: netfault ready on ");
        let rest = line.trim_start_matches("I: netfault ready on ");
        rest.split(" → ")
            .next()
            .unwrap()
            .parse()
            .expect("address in the ready line")
    }

    /// SIGINT (Ctrl-C): the process must exit successfully, promptly.
    fn interrupt_and_wait(&mut self) {
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit after Ctrl-C: {status}");
                break;
            }
            assert!(sent.elapsed() < SOON, "still running after Ctrl-C");
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("netfault exited {:?} after SIGINT", sent.elapsed());
    }
}

impl Drop for Netfault {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn accept_within(listener: &TcpListener, within: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + within;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return Some(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    stream.set_read_timeout(Some(SOON)).unwrap();
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).expect("bytes arrive in time");
    buf
}

fn assert_silent(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(QUIET)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence through a partition, got {other:?}"),
    }
}

#[test]
fn stdin_commands_drive_the_proxy_and_each_is_acknowledged() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("tcp://{}", server.local_addr().unwrap());
    let mut proxy = Netfault::spawn(&["--listen", "tcp://127.0.0.1:0", "--to", &upstream]);
    let addr = proxy.ready();

    let mut client = TcpStream::connect(addr).unwrap();
    let mut served = accept_within(&server, SOON).expect("relayed connection");
    client.write_all(b"hi").unwrap();
    assert_eq!(read_exactly(&mut served, 2), b"hi");

    proxy.send("partition");
    proxy.wait_for("I: netfault partition");
    client.write_all(b"held").unwrap();
    assert_silent(&mut served);

    proxy.send("partition sideways");
    proxy.wait_for("E: netfault: \"partition sideways\"");
    proxy.send("");
    proxy.send("# a comment");
    proxy.send("heal");
    proxy.wait_for("I: netfault heal");
    assert_eq!(read_exactly(&mut served, 4), b"held");

    proxy.send("delay 50");
    proxy.wait_for("I: netfault delay 50");
    proxy.send("reset");
    proxy.wait_for("I: netfault reset");
    client.set_read_timeout(Some(SOON)).unwrap();
    let mut buf = [0u8; 8];
    let read = client.read(&mut buf);
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "client after reset: {read:?}"
    );

    // End of input: the proxy keeps running with the current fault.
    drop(proxy.stdin.take());
    proxy.wait_for("I: netfault stdin closed; running until Ctrl-C");
    let mut client = TcpStream::connect(addr).unwrap();
    let mut served = accept_within(&server, SOON).expect("relayed after stdin closed");
    client.write_all(b"on").unwrap();
    assert_eq!(read_exactly(&mut served, 2), b"on");

    // Ctrl-C stops it promptly and cleanly.
    proxy.interrupt_and_wait();
}

#[test]
fn a_starting_fault_applies_before_the_first_connection() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("tcp://{}", server.local_addr().unwrap());
    let mut proxy = Netfault::spawn(&[
        "--listen",
        "tcp://127.0.0.1:0",
        "--to",
        &upstream,
        "--fault",
        "partition",
    ]);
    let addr = proxy.ready();
    proxy.wait_for("I: netfault partition");
    let _client = TcpStream::connect(addr).unwrap();
    assert!(
        accept_within(&server, QUIET).is_none(),
        "a connection went through a partition"
    );
    proxy.send("pass");
    proxy.wait_for("I: netfault pass");
    assert!(accept_within(&server, SOON).is_some());
    // Ctrl-C while stdin is still open (a read pending, as in a terminal).
    proxy.interrupt_and_wait();
}

#[test]
fn help_documents_every_flag_and_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_netfault"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--listen",
        "[default: tcp://127.0.0.1:6555]",
        "--to",
        "[default: tcp://127.0.0.1:5555]",
        "--fault",
        "[default: pass]",
        "partition up",
        "partition down",
        "delay MS",
        "throttle BYTES_PER_S",
        "reset",
        "heal",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn a_bad_endpoint_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_netfault"))
        .args(["--listen", "ipc:///tmp/x.ipc"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("E: netfault: ipc:///tmp/x.ipc: netfault relays TCP only"),
        "{said}"
    );
}
