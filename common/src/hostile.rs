//! Hostile peers for process tests (feature `hostile`; the assertions that drive a server's
//! process need `testkit` too): the byte sequences that used to abort every server (the
//! `zeromq` decoder defect of the README's "Security" section), sent over raw TCP to a guarded
//! endpoint; and [`listening_sockets`] / [`probe`], which check that nothing else a server
//! listens on can be reached.
//!
//! `assert_survives_hostile_input` (feature `testkit`) is the table every server's test suite
//! runs: each [`Attack`] on its own connection, then the connection must be closed by the
//! server, the server must log one `W: guard …` line with the reason, and a normal request must
//! still be answered. Start the server with `--handshake-ms` short (e.g. 1000) so the
//! silent-greeting attack does not wait for the 5 s default.

#[cfg(feature = "testkit")]
use crate::testkit::Proc;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a test waits for the server to close a hostile connection or log about it.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(15);

/// One kind of hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// The greeting, then a command header announcing 2^62 bytes (before the handshake ends).
    HugeHeaderBeforeHandshake,
    /// Greeting and READY, then a message header announcing 2^62 bytes.
    HugeHeaderAfterHandshake,
    /// Greeting and READY, then a frame announcing 1 GiB (and a little of its body).
    GibFrame,
    /// Greeting and READY, then 100,000 frames of 200 bytes chained by MORE (over 16 MiB).
    ManySmallFrames,
    /// An HTTP request where the greeting should be.
    GarbageGreeting,
    /// The first 10 bytes of a greeting, then silence.
    SilentGreeting,
}

impl Attack {
    /// Every attack, in the order the table runs them.
    pub const ALL: [Attack; 6] = [
        Attack::HugeHeaderBeforeHandshake,
        Attack::HugeHeaderAfterHandshake,
        Attack::GibFrame,
        Attack::ManySmallFrames,
        Attack::GarbageGreeting,
        Attack::SilentGreeting,
    ];

    /// The bytes this attack sends; `peer_type` is the READY socket type (e.g. `DEALER`).
    pub fn bytes(self, peer_type: &str) -> Vec<u8> {
        let handshake = [greeting(), ready(peer_type)].concat();
        match self {
            Attack::HugeHeaderBeforeHandshake => [greeting(), long_header(0x06, 1 << 62)].concat(),
            Attack::HugeHeaderAfterHandshake => [handshake, long_header(0x02, 1 << 62)].concat(),
            Attack::GibFrame => [handshake, long_header(0x02, 1 << 30), vec![0; 4096]].concat(),
            Attack::ManySmallFrames => {
                let mut bytes = handshake;
                bytes.reserve(100_000 * 202);
                for _ in 0..100_000 {
                    bytes.extend_from_slice(&[0x01, 200]);
                    bytes.extend_from_slice(&[b'x'; 200]);
                }
                bytes
            }
            Attack::GarbageGreeting => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Attack::SilentGreeting => greeting()[..10].to_vec(),
        }
    }

    /// A piece of the `W:` line the guard logs for this attack.
    pub fn reason(self) -> &'static str {
        match self {
            Attack::HugeHeaderBeforeHandshake => "command frame of 4611686018427387904 bytes",
            Attack::HugeHeaderAfterHandshake => "frame of 4611686018427387904 bytes",
            Attack::GibFrame => "frame of 1073741824 bytes",
            Attack::ManySmallFrames => "over --max-msg-bytes",
            Attack::GarbageGreeting => "bad greeting",
            Attack::SilentGreeting => "handshake not completed",
        }
    }
}

/// A ZMTP 3.0 greeting with the NULL mechanism, as a client sends it.
pub fn greeting() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// A READY command frame announcing `socket_type`.
pub fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5u8];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut frame = vec![0x04, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

/// A long frame header with `flags` (LONG added) announcing `len` bytes.
pub fn long_header(flags: u8, len: u64) -> Vec<u8> {
    let mut h = vec![flags | 0x02];
    h.extend_from_slice(&len.to_be_bytes());
    h
}

/// `tcp://host:port` → the socket address.
pub fn tcp_addr(endpoint: &str) -> SocketAddr {
    let hostport = endpoint
        .strip_prefix("tcp://")
        .unwrap_or_else(|| panic!("{endpoint} is not a tcp:// endpoint"));
    let hostport = hostport.replace('*', "127.0.0.1");
    hostport
        .parse()
        .unwrap_or_else(|_| panic!("{endpoint}: not host:port"))
}

/// Reads and discards until the peer closes (EOF or reset). Panics if it stays open `within`.
pub fn assert_closed(stream: &mut TcpStream, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("{what}: connection still open after {within:?}"));
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: connection still open after {within:?}")
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return, // reset: closed too
        }
    }
}

/// Sends `attack` on a fresh connection and asserts the server closes it.
pub fn send_attack(addr: SocketAddr, attack: Attack, peer_type: &str) {
    // Built before connecting: building 20 MB in a debug test build can outlast a short
    // handshake deadline.
    let bytes = attack.bytes(peer_type);
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_write_timeout(Some(CLOSE_WITHIN)).unwrap();
    // The server may close before everything is written (that is the point): ignore errors.
    let _ = stream.write_all(&bytes);
    assert_closed(&mut stream, CLOSE_WITHIN, &format!("{attack:?}"));
}

#[cfg(feature = "testkit")]
/// Runs every [`Attack`] against `endpoint` (served by `proc`), each on its own connection:
/// asserts the connection is closed, one `W: guard` line names the reason, the process stays
/// up, and `normal_request` (which must assert a real answer) succeeds right after.
pub fn assert_survives_hostile_input(
    proc: &mut Proc,
    endpoint: &str,
    peer_type: &str,
    normal_request: impl FnMut(),
) {
    let addr = tcp_addr(endpoint);
    survives_each(
        proc,
        Attack::ALL,
        Attack::reason,
        |attack| send_attack(addr, attack, peer_type),
        normal_request,
    );
}

#[cfg(feature = "testkit")]
/// For each attack in turn: `send` it (on a connection of its own, asserting it closed), then
/// check the one `W: guard` line names the peer and the attack's reason, the process is up,
/// and `normal_request` is answered.
fn survives_each<A: Copy + std::fmt::Debug>(
    proc: &mut Proc,
    attacks: impl IntoIterator<Item = A>,
    reason: impl Fn(A) -> &'static str,
    mut send: impl FnMut(A),
    mut normal_request: impl FnMut(),
) {
    for attack in attacks {
        proc.mark();
        send(attack);
        let line = proc.wait_for("W: guard", CLOSE_WITHIN);
        assert!(
            line.contains(reason(attack)) && line.contains("closed 127.0.0.1:"),
            "{attack:?}: the guard's line {line:?} should name the peer and say {:?}",
            reason(attack)
        );
        assert!(
            proc.wait_exit(Duration::ZERO).is_none(),
            "{}: exited after {attack:?}",
            proc.name()
        );
        normal_request();
    }
}

#[cfg(feature = "testkit")]
/// Opens `limit` connections that complete a handshake and stay idle, then one more: asserts
/// the extra one is refused (closed at once, a `W: guard … --max-connections` line) while the
/// others stay open. Returns the open ones; drop them to free the slots.
pub fn assert_connection_limit(
    proc: &mut Proc,
    endpoint: &str,
    peer_type: &str,
    limit: usize,
) -> Vec<TcpStream> {
    let addr = tcp_addr(endpoint);
    let handshake = [greeting(), ready(peer_type)].concat();
    proc.mark();
    let open: Vec<TcpStream> = (0..limit)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&handshake).unwrap();
            s
        })
        .collect();
    let mut extra = TcpStream::connect(addr).unwrap();
    assert_closed(
        &mut extra,
        CLOSE_WITHIN,
        "connection over --max-connections",
    );
    let line = proc.wait_for("W: guard", CLOSE_WITHIN);
    assert!(
        line.contains("refused 127.0.0.1:") && line.contains("--max-connections"),
        "{line}"
    );
    for mut s in &open {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 256];
        if let Ok(0) = s.read(&mut buf) {
            panic!("a connection within the limit was closed");
        }
    }
    open
}

/// A socket a process listens on, as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Listening {
    /// A TCP port.
    Tcp(SocketAddr),
    /// A Unix socket: a path, or `@name` for an abstract one.
    Unix(String),
}

impl std::fmt::Display for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listening::Tcp(addr) => write!(f, "tcp://{addr}"),
            Listening::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

impl std::str::FromStr for Listening {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(addr) = s.strip_prefix("tcp://") {
            addr.parse()
                .map(Listening::Tcp)
                .map_err(|_| format!("{s}: not tcp://IP:PORT"))
        } else if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            Ok(Listening::Unix(path.to_owned()))
        } else {
            Err(format!("{s}: expected tcp://IP:PORT or unix:PATH"))
        }
    }
}

/// Every TCP and Unix socket `pid` listens on: its descriptors matched, by inode, against
/// `/proc/net/{tcp,tcp6,unix}` (what `ss -lp` shows).
pub fn listening_sockets(pid: u32) -> std::io::Result<Vec<Listening>> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = std::fs::read_link(fd?.path()) else {
            continue; // closed meanwhile
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))?;
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode; st 0A is LISTEN.
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                if let Some(addr) = proc_net_addr(cols[1]) {
                    found.push(Listening::Tcp(addr));
                }
            }
        }
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/unix"))?;
    for row in text.lines().skip(1) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 is a listening socket.
        let listening = cols
            .get(3)
            .and_then(|f| u32::from_str_radix(f, 16).ok())
            .is_some_and(|flags| flags & 0x10000 != 0);
        if cols.len() > 7 && listening && inodes.contains(cols[6]) {
            found.push(Listening::Unix(cols[7..].join(" ")));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6, in 4-byte host-order words) → the address.
fn proc_net_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok())
        .collect::<Option<_>>()?;
    let ip: std::net::IpAddr = match words[..] {
        [v4] => std::net::Ipv4Addr::from(v4.to_le_bytes()).into(),
        [a, b, c, d] => {
            let bytes: Vec<u8> = [a, b, c, d].iter().flat_map(|w| w.to_le_bytes()).collect();
            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// What [`probe`] got from one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// Connected; the greeting and a 2^62-byte header were sent.
    Reached,
    /// The connect failed (e.g. `PermissionDenied` for a directory the prober cannot enter).
    Refused(ErrorKind),
}

/// Connects to `target` and, if that works, sends the attack that aborts an unguarded zeromq
/// socket: a greeting and a command header announcing 2^62 bytes. Waits until the other side
/// closes (or 5 s) so that whatever the bytes do has happened when it returns.
pub fn probe(target: &Listening) -> Probed {
    let bytes = Attack::HugeHeaderBeforeHandshake.bytes("DEALER");
    let give_up = Duration::from_secs(5);
    let finish = |stream: &mut dyn Read, written: std::io::Result<()>| {
        if written.is_ok() {
            let mut buf = [0u8; 256];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        }
        Probed::Reached
    };
    match target {
        Listening::Tcp(addr) => match TcpStream::connect_timeout(addr, give_up) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(give_up));
                let written = s.write_all(&bytes);
                finish(&mut s, written)
            }
            Err(e) => Probed::Refused(e.kind()),
        },
        Listening::Unix(path) => {
            use std::os::unix::net::UnixStream;
            let connected = match path.strip_prefix('@') {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    std::os::unix::net::SocketAddr::from_abstract_name(name)
                        .and_then(|a| UnixStream::connect_addr(&a))
                }
                None => UnixStream::connect(path),
            };
            match connected {
                Ok(mut s) => {
                    let _ = s.set_read_timeout(Some(give_up));
                    let written = s.write_all(&bytes);
                    finish(&mut s, written)
                }
                Err(e) => Probed::Refused(e.kind()),
            }
        }
    }
}

/// The guard's flags and defaults every server's `--help` must show.
pub const HELP_NEEDLES: [&str; 10] = [
    "--max-msg-bytes",
    "16777216",
    "--max-connections",
    "256",
    "--handshake-ms",
    "5000",
    "--allow <CIDR>",
    "--no-guard",
    "--curve-secret <FILE>",
    "--curve-allow <DIR>",
];

/// One request from a libzmq socket of `kind` (REQ, DEALER, …) with a 10 s receive bound;
/// returns the reply frames. The interop check each server's guard test makes after every
/// hostile input.
#[cfg(feature = "libzmq")]
pub fn libzmq_request(endpoint: &str, kind: zmq::SocketType, frames: &[&str]) -> Vec<Vec<u8>> {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(kind).expect("a libzmq socket");
    socket.set_linger(0).expect("linger");
    socket.set_rcvtimeo(10_000).expect("receive timeout");
    socket.connect(endpoint).expect("libzmq connect");
    socket.send_multipart(frames, 0).expect("libzmq send");
    socket.recv_multipart(0).expect("a reply through the guard")
}

/// Hostile or refused CURVE peers, sent to a server started with `--curve-secret` and
/// `--curve-allow` (see `assert_survives_curve_attacks`, feature `testkit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveAttack {
    /// A plain NULL greeting and READY, as any non-CURVE peer sends.
    NullGreeting,
    /// A HELLO sealed for another server key (a client configured with the wrong key).
    WrongServerKey,
    /// A HELLO for the right key whose signature box has one bit flipped.
    BadHelloSignature,
    /// A complete handshake from a client key that has no file in `--curve-allow`.
    UnknownClientKey,
    /// A handshake, then a MESSAGE with one bit of its box flipped.
    TamperedMessage,
    /// A handshake, then the same MESSAGE twice (a replay).
    ReplayedMessage,
    /// The greeting and half a HELLO, then silence.
    TruncatedHandshake,
}

impl CurveAttack {
    /// Every CURVE attack, in the order the table runs them.
    pub const ALL: [CurveAttack; 7] = [
        CurveAttack::NullGreeting,
        CurveAttack::WrongServerKey,
        CurveAttack::BadHelloSignature,
        CurveAttack::UnknownClientKey,
        CurveAttack::TamperedMessage,
        CurveAttack::ReplayedMessage,
        CurveAttack::TruncatedHandshake,
    ];

    /// A piece of the `W:` line the guard logs for this attack.
    pub fn reason(self) -> &'static str {
        match self {
            CurveAttack::NullGreeting => "mechanism \"NULL\"",
            CurveAttack::WrongServerKey | CurveAttack::BadHelloSignature => {
                "CURVE HELLO does not open"
            }
            CurveAttack::UnknownClientKey => "not allowed",
            CurveAttack::TamperedMessage => "CURVE MESSAGE does not open",
            CurveAttack::ReplayedMessage => "replayed",
            CurveAttack::TruncatedHandshake => "handshake not completed",
        }
    }
}

use crate::curve::client::Client as CurveClient;
use crate::curve::keys::{KeyPair, PublicKey};

/// Runs the CURVE handshake of `client` on `stream`; `Err` if the server closed or refused.
pub fn curve_handshake(stream: &mut TcpStream, client: &mut CurveClient) -> Result<(), String> {
    stream
        .write_all(&client.start())
        .map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(CLOSE_WITHIN)).unwrap();
    let mut buf = [0u8; 4096];
    while !client.is_ready() {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed by the server".into());
        }
        let (out, events) = client.handle(&buf[..n]).map_err(|e| e.to_string())?;
        if events
            .iter()
            .any(|e| matches!(e, crate::curve::client::Event::Error(_)))
        {
            return Err("ERROR from the server".into());
        }
        stream.write_all(&out).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Sends `attack` on a fresh connection to a CURVE server (public key `server`) that admits
/// `admitted`; asserts the server closes it.
pub fn send_curve_attack(
    addr: SocketAddr,
    attack: CurveAttack,
    server: PublicKey,
    admitted: &KeyPair,
    peer_type: &str,
) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_write_timeout(Some(CLOSE_WITHIN)).unwrap();
    let what = format!("{attack:?}");
    let mut client = CurveClient::new(admitted.clone(), server, peer_type, None);
    match attack {
        CurveAttack::NullGreeting => {
            let _ = stream.write_all(&[greeting(), ready(peer_type)].concat());
        }
        CurveAttack::WrongServerKey => {
            let wrong = KeyPair::generate().public;
            let mut client = CurveClient::new(admitted.clone(), wrong, peer_type, None);
            let _ = stream.write_all(&client.start());
        }
        CurveAttack::BadHelloSignature => {
            let mut hello = client.start();
            let last = hello.len() - 1;
            hello[last] ^= 0x01;
            let _ = stream.write_all(&hello);
        }
        CurveAttack::UnknownClientKey => {
            let mut stranger = CurveClient::new(KeyPair::generate(), server, peer_type, None);
            assert!(
                curve_handshake(&mut stream, &mut stranger).is_err(),
                "{what}: admitted"
            );
        }
        CurveAttack::TamperedMessage => {
            curve_handshake(&mut stream, &mut client).expect("handshake of an admitted key");
            let mut message = client.message(&[b"", b"hostile"]);
            let last = message.len() - 1;
            message[last] ^= 0x40;
            let _ = stream.write_all(&message);
        }
        CurveAttack::ReplayedMessage => {
            curve_handshake(&mut stream, &mut client).expect("handshake of an admitted key");
            let message = client.message(&[b"", b"hostile"]);
            let _ = stream.write_all(&[message.clone(), message].concat());
        }
        CurveAttack::TruncatedHandshake => {
            let start = client.start();
            let _ = stream.write_all(&start[..64 + 100]);
        }
    }
    assert_closed(&mut stream, CLOSE_WITHIN, &what);
}

#[cfg(feature = "testkit")]
/// Runs every [`CurveAttack`] against a server started with `--curve-secret` (public key
/// `server`) and `--curve-allow` (admitting `admitted`), as [`assert_survives_hostile_input`]
/// does for plain attacks: each closed, one `W: guard` line with the reason, the process up,
/// and `normal_request` answered after each.
pub fn assert_survives_curve_attacks(
    proc: &mut Proc,
    endpoint: &str,
    server: PublicKey,
    admitted: &KeyPair,
    peer_type: &str,
    normal_request: impl FnMut(),
) {
    let addr = tcp_addr(endpoint);
    survives_each(
        proc,
        CurveAttack::ALL,
        CurveAttack::reason,
        |attack| send_curve_attack(addr, attack, server, admitted, peer_type),
        normal_request,
    );
}

/// The libzmq CURVE peer of the interop tests: the `zmq` crate builds libzmq without CURVE
/// (zmq-sys passes no libsodium), so these tests drive pyzmq, whose wheels bundle libzmq with
/// libsodium (`.ci/run` installs it). `None` if `python3 -c "import zmq"` has no CURVE.
pub fn pyzmq_curve() -> Option<&'static str> {
    let ok = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zmq; sys.exit(0 if zmq.has('curve') else 1)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some("python3")
}

/// [`pyzmq_curve`] as a test's prerequisite ([`crate::testkit::prerequisite`]): `None` skips
/// the test outside CI with the reason printed, and under `CI=true` the test fails instead.
#[cfg(feature = "testkit")]
pub fn require_pyzmq_curve() -> Option<&'static str> {
    crate::testkit::prerequisite(pyzmq_curve(), || {
        "python3 with pyzmq built with CURVE (pip install pyzmq)".into()
    })
}

/// pyzmq client: argv = endpoint, socket type, server key, client public, client secret,
/// timeout ms, frames…; prints each reply frame in hex on its own line, exits 2 on timeout.
const PYZMQ_CURVE_CLIENT: &str = r#"
import sys, zmq
endpoint, kind, server, public, secret, timeout = sys.argv[1:7]
ctx = zmq.Context()
s = ctx.socket(getattr(zmq, kind))
s.linger = 0
s.curve_serverkey = server.encode()
s.curve_publickey = public.encode()
s.curve_secretkey = secret.encode()
s.rcvtimeo = int(timeout)
s.connect(endpoint)
s.send_multipart([f.encode() for f in sys.argv[7:]])
try:
    for frame in s.recv_multipart():
        print(frame.hex())
except zmq.Again:
    sys.exit(2)
"#;

/// One request from a libzmq CURVE socket (`kind`: `REQ`, `DEALER`, …) through pyzmq, with
/// `client` as its key pair and `server` as the server key it expects; the reply frames, or
/// `Err` if none came within `timeout` (as with a wrong server key, where libzmq only retries).
pub fn pyzmq_curve_request(
    endpoint: &str,
    kind: &str,
    server: &PublicKey,
    client: &KeyPair,
    frames: &[&str],
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, String> {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(PYZMQ_CURVE_CLIENT)
        .args([
            endpoint,
            kind,
            &server.to_z85(),
            &client.public.to_z85(),
            client.secret.to_z85().as_str(),
            &timeout.as_millis().to_string(),
        ])
        .args(frames)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pyzmq client exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|hex| {
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
                .collect()
        })
        .collect())
}

/// A libzmq CURVE server (pyzmq) of socket type `kind` that sends back every message it
/// receives until killed: for a REP, an echo server; for a ROUTER, a stub that answers any
/// request with the request's own frames (enough for a Majordomo client: its REQUEST and the
/// broker's REPLY have the same frames). argv = kind, the server's secret key (Z85); prints the
/// endpoint it bound.
#[cfg(feature = "testkit")]
const PYZMQ_CURVE_ECHO: &str = r#"
import sys, zmq
s = zmq.Context().socket(getattr(zmq, sys.argv[1]))
s.linger = 0
s.curve_server = True
s.curve_secretkey = sys.argv[2].encode()
s.bind("tcp://127.0.0.1:0")
print("bound " + s.last_endpoint.decode(), flush=True)
while True:
    frames = s.recv_multipart()
    print("request " + " ".join(f.hex() for f in frames), flush=True)
    s.send_multipart(frames)
"#;

#[cfg(feature = "testkit")]
/// Starts [`PYZMQ_CURVE_ECHO`] as a `kind` (`REP`, `ROUTER`) server with `server`'s key pair;
/// returns the process (killed on drop; one `request <hex frames>` line per request) and the
/// endpoint it bound.
pub fn pyzmq_curve_echo(kind: &str, server: &KeyPair) -> (Proc, String) {
    let mut proc = Proc::spawn(
        &format!("pyzmq {kind}"),
        "python3",
        [
            "-c".to_owned(),
            PYZMQ_CURVE_ECHO.to_owned(),
            kind.to_owned(),
            server.secret.to_z85().to_string(),
        ],
    );
    let line = proc.wait_for("bound tcp://", Duration::from_secs(20));
    let endpoint = line.trim_start_matches("bound ").trim().to_owned();
    (proc, endpoint)
}

/// A hostile CURVE *server*, for the client side: what [`hostile_curve_server`] sends a
/// connecting CURVE client instead of a sound handshake. Each must be refused by the client
/// with one `E: curve <endpoint>: …` line containing [`ServerAttack::reason`], nothing sent
/// in clear, and no fallback to NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAttack {
    /// A WELCOME frame cut short by 30 bytes (its length says so).
    TruncatedWelcome,
    /// A WELCOME of the right length whose box was tampered with (one byte flipped).
    TamperedWelcome,
    /// A real handshake up to READY, whose box was tampered with.
    TamperedReady,
    /// An ERROR command instead of WELCOME.
    Error,
    /// A NULL greeting: the server is not a CURVE server.
    NullGreeting,
}

impl ServerAttack {
    /// Every client-side attack, in the order the table runs them.
    pub const ALL: [ServerAttack; 5] = [
        ServerAttack::TruncatedWelcome,
        ServerAttack::TamperedWelcome,
        ServerAttack::TamperedReady,
        ServerAttack::Error,
        ServerAttack::NullGreeting,
    ];

    /// A piece of the client's `E:` line for this attack.
    pub fn reason(self) -> &'static str {
        match self {
            ServerAttack::TruncatedWelcome => "WELCOME of the wrong length",
            ServerAttack::TamperedWelcome => "WELCOME does not open",
            ServerAttack::TamperedReady => "READY does not open",
            ServerAttack::Error => "ERROR \"go away\"",
            ServerAttack::NullGreeting => "not CURVE",
        }
    }
}

/// A CURVE server (our pure server core, with `pair`, behind a REP) that answers every
/// connection with `attack`; runs on a thread until the process ends. Returns its endpoint.
pub fn hostile_curve_server(attack: ServerAttack, pair: &KeyPair) -> String {
    use crate::curve::protocol;
    use crate::curve::server::{Connection, ServerKeys};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let keys = std::sync::Arc::new(ServerKeys::new(pair.clone(), Box::new(|_| true)));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(CLOSE_WITHIN));
            if attack == ServerAttack::NullGreeting {
                let _ = stream.write_all(&[greeting(), ready("REP")].concat());
                let _ = stream.read(&mut [0u8; 256]);
                continue;
            }
            let mut conn = Connection::new(std::sync::Arc::clone(&keys), 1 << 20);
            let _ = conn.feed_server(&[greeting(), ready("REP")].concat());
            let mut buf = [0u8; 4096];
            // Greeting first, then each answer of the core, tampered as the attack says.
            let mut out = conn.take_to_peer();
            loop {
                if !out.is_empty() && stream.write_all(&out).is_err() {
                    break;
                }
                let n = match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if conn.feed_peer(&buf[..n], Instant::now()).is_err() {
                    break;
                }
                out = conn.take_to_peer();
                let at_welcome = out.len() > 9 && out[2..].starts_with(protocol::WELCOME);
                let at_ready = out.len() > 9 && out[2..].starts_with(protocol::READY);
                match attack {
                    ServerAttack::TruncatedWelcome if at_welcome => {
                        out[1] -= 30;
                        out.truncate(out.len() - 30);
                    }
                    ServerAttack::TamperedWelcome if at_welcome => {
                        let last = out.len() - 1;
                        out[last] ^= 0x01;
                    }
                    ServerAttack::TamperedReady if at_ready => {
                        let last = out.len() - 1;
                        out[last] ^= 0x01;
                    }
                    ServerAttack::Error if at_welcome => {
                        out.clear();
                        protocol::put_frame(
                            &mut out,
                            protocol::FLAG_COMMAND,
                            &[protocol::ERROR, &[7], b"go away"],
                        );
                    }
                    _ => {}
                }
            }
        }
    });
    format!("tcp://{addr}")
}

#[cfg(feature = "testkit")]
/// Keys for a CURVE process test: a server pair (its secret file for `--curve-secret`) and a
/// client pair admitted by an allow directory (for `--curve-allow`), in a private temporary
/// directory removed on drop.
pub struct CurveKeys {
    /// The server's pair.
    pub server: KeyPair,
    /// An admitted client's pair.
    pub client: KeyPair,
    secret: std::path::PathBuf,
    allow: std::path::PathBuf,
    _dir: crate::testkit::IpcDir,
}

#[cfg(feature = "testkit")]
impl Default for CurveKeys {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "testkit")]
impl CurveKeys {
    /// Fresh pairs and their files.
    pub fn new() -> Self {
        let dir = crate::testkit::IpcDir::new();
        let allow = dir.path().join("allow");
        std::fs::create_dir(&allow).expect("allow directory");
        let server = KeyPair::generate();
        let (_, secret) = server
            .write_files(dir.path(), "server")
            .expect("server key files");
        let client = KeyPair::generate();
        client
            .write_files(&allow, "client")
            .expect("client key files");
        Self {
            server,
            client,
            secret,
            allow,
            _dir: dir,
        }
    }

    /// Admits one more client key (writes its public file into the allow directory).
    pub fn admit(&self, name: &str, pair: &KeyPair) {
        std::fs::write(self.allow.join(name), pair.public_file(name)).expect("public key file");
    }

    /// Writes `pair`'s secret file as `name` outside the allow directory; its path.
    pub fn write_secret(&self, name: &str, pair: &KeyPair) -> std::path::PathBuf {
        let dir = self._dir.path().join("clients");
        std::fs::create_dir_all(&dir).expect("clients directory");
        pair.write_files(&dir, name).expect("client key files").1
    }

    /// `--curve-server-key KEY --curve-key FILE` for the admitted client.
    pub fn client_args(&self) -> Vec<String> {
        let secret = self.write_secret(&format!("client-{}", crate::ids::token()), &self.client);
        vec![
            "--curve-server-key".into(),
            self.server.public.to_z85(),
            "--curve-key".into(),
            secret.display().to_string(),
        ]
    }

    /// `--curve-secret FILE --curve-allow DIR`.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--curve-secret".into(),
            self.secret.display().to_string(),
            "--curve-allow".into(),
            self.allow.display().to_string(),
        ]
    }
}
