//! Network partitions through the fault proxy (`common::netfault`): every link of a server
//! (clients to its frontend, its state PUB to the peer, the peer's PUB to it) goes through a
//! proxy of its own, so "partition the primary's host" is "hold every byte on its three links".
//!
//! What a pair must do (the `binary-star-partition` row of the README's scenario table): after
//! the primary was cut off for 3 s or 10 s while the client sends, and healed, exactly one
//! server is ACTIVE within [`SETTLE_BOUND`], both processes still run, every request was
//! answered or reported failed, and after that a client asking both servers directly is
//! answered by one of them only. Cutting off the backup interrupts nothing.

use crate::util::*;
use common::netfault::{Command, Fault, Proxy};
use common::testkit::{free_port, Proc};
use common::{sock, Message};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use zeromq::{ReqSocket, Socket};

/// The bound we state for heal → exactly one ACTIVE server: the state SUB notices the silence
/// after the peer expiry (2 × 250 ms), reconnects (< 1 heartbeat) and hears the peer's next
/// heartbeat (< 1 heartbeat): about 1 s; 5 s leaves room for a loaded machine.
const SETTLE_BOUND: Duration = Duration::from_secs(5);

/// The pair with a proxy on each of the four links.
struct Net {
    rt: Runtime,
    /// clients → primary frontend
    primary_front: Proxy,
    /// primary state PUB → backup's SUB
    primary_state: Proxy,
    /// backup state PUB → primary's SUB
    backup_state: Proxy,
    /// clients → backup frontend
    backup_front: Proxy,
    /// The servers' own frontends, bypassing the proxies (for the probe).
    direct: [String; 2],
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn tcp(addr: SocketAddr) -> String {
    format!("tcp://{addr}")
}

impl Net {
    fn new() -> Net {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let proxy = |port| {
            rt.block_on(Proxy::start(loopback(0), loopback(port)))
                .expect("proxy")
        };
        Net {
            primary_front: proxy(ports[0]),
            primary_state: proxy(ports[1]),
            backup_front: proxy(ports[2]),
            backup_state: proxy(ports[3]),
            direct: [tcp(loopback(ports[0])), tcp(loopback(ports[2]))],
            rt,
        }
    }

    fn primary_args(&self) -> Vec<String> {
        server_args(
            "--primary",
            &self.direct[0],
            &tcp(self.primary_state.upstream()),
            &tcp(self.backup_state.local_addr()),
        )
    }

    fn backup_args(&self) -> Vec<String> {
        server_args(
            "--backup",
            &self.direct[1],
            &tcp(self.backup_state.upstream()),
            &tcp(self.primary_state.local_addr()),
        )
    }

    /// Every link to or from the primary's host.
    fn primary_links(&self) -> [&Proxy; 3] {
        [&self.primary_front, &self.primary_state, &self.backup_state]
    }

    /// Every link to or from the backup's host.
    fn backup_links(&self) -> [&Proxy; 3] {
        [&self.backup_front, &self.primary_state, &self.backup_state]
    }

    fn client(&self) -> Proc {
        let args = [
            "--primary".to_owned(),
            tcp(self.primary_front.local_addr()),
            "--backup".to_owned(),
            tcp(self.backup_front.local_addr()),
            "--requests".to_owned(),
            "1000000".to_owned(),
            "--interval-ms".to_owned(),
            "100".to_owned(),
            "--timeout-ms".to_owned(),
            TIMEOUT_MS.to_string(),
            "--settle-ms".to_owned(),
            SETTLE_MS.to_string(),
            "--vote-ms".to_owned(),
            VOTE_MS.to_string(),
        ];
        Proc::spawn("client", env!("CARGO_BIN_EXE_bstarcli"), args)
    }

    /// Asks server `i` directly, on a fresh REQ; true if it answered within `wait`.
    fn answers(&self, i: usize, wait: Duration) -> bool {
        self.rt.block_on(async {
            let mut req = ReqSocket::new();
            if sock::connect(&mut req, &self.direct[i], wait)
                .await
                .is_err()
            {
                return false;
            }
            let probe = Message::from_frames(["probe"]);
            if sock::send(&mut req, probe, wait).await.is_err() {
                return false;
            }
            matches!(sock::recv(&mut req, wait).await, Ok(Some(_)))
        })
    }

    /// For `span`, asks both servers in turn; returns how many answers each gave.
    fn probe_both(&self, span: Duration) -> [u32; 2] {
        let end = Instant::now() + span;
        let mut answered = [0, 0];
        while Instant::now() < end {
            for (i, count) in answered.iter_mut().enumerate() {
                if self.answers(i, Duration::from_millis(300)) {
                    *count += 1;
                }
            }
        }
        answered
    }
}

fn cut(links: [&Proxy; 3]) {
    for link in links {
        link.apply(Command::Set(Fault::Partition));
    }
}

fn heal(links: [&Proxy; 3]) {
    for link in links {
        link.apply(Command::Heal);
    }
}

fn pair(net: &Net) -> (Proc, Proc) {
    let mut p = Proc::spawn("primary", bstarsrv(), net.primary_args());
    let mut b = Proc::spawn("backup", bstarsrv(), net.backup_args());
    p.wait_for("I: state ACTIVE", WAIT);
    b.wait_for("I: state PASSIVE", WAIT);
    (p, b)
}

fn primary_partitioned(span: Duration) {
    let net = Net::new();
    let (mut p, mut b) = pair(&net);
    let mut c = net.client();
    c.wait_for("server replied OK (5)", WAIT);

    let started = Instant::now();
    cut(net.primary_links());
    // The client votes at the backup, which takes over in a new epoch.
    let line = b.wait_for("I: state ACTIVE", WAIT);
    assert!(line.contains("failover successful"), "{line}");
    assert!(line.ends_with("(epoch 2)"), "{line}");
    c.wait_for("failover to", WAIT);
    // Deliberate: the partition lasts `span`, the length this test is about.
    std::thread::sleep(span.saturating_sub(started.elapsed()));

    heal(net.primary_links());
    let healed = Instant::now();
    let line = p.wait_for("I: state PASSIVE", SETTLE_BOUND + WAIT);
    let settled = healed.elapsed();
    eprintln!("partition {span:?}: heal -> single active in {settled:?}");
    assert!(line.contains("dual actives resolved"), "{line}");
    assert!(settled <= SETTLE_BOUND, "settled after {settled:?}");

    // From now on only the backup answers, whoever asks.
    let answered = net.probe_both(Duration::from_secs(2));
    assert_eq!(answered[0], 0, "the passive primary answered: {answered:?}");
    assert!(answered[1] >= 2, "{answered:?}");
    c.mark();
    c.wait_for("server replied OK", WAIT);

    // Both servers still run; nothing fatal.
    assert!(p.wait_exit(Duration::ZERO).is_none(), "{:?}", p.lines());
    assert!(b.wait_exit(Duration::ZERO).is_none(), "{:?}", b.lines());
    assert_eq!(p.count("fatal") + b.count("fatal"), 0);
    assert_eq!(b.count("I: state "), 2, "{:?}", b.lines());

    let (_, _) = c.interrupt_and_wait(WAIT);
    let s = c.summary().expect("a summary line");
    assert_eq!(s.lost(), 0, "{s}");
    assert!(s.failed <= 1, "{s}");
    assert!(s.answered >= 20, "{s}");
}

#[test]
fn primary_partitioned_3_s_one_active_after_heal() {
    primary_partitioned(Duration::from_secs(3));
}

#[test]
fn primary_partitioned_10_s_one_active_after_heal() {
    primary_partitioned(Duration::from_secs(10));
}

#[test]
fn backup_partitioned_no_interruption() {
    let net = Net::new();
    let (p, mut b) = pair(&net);
    let mut c = net.client();
    c.wait_for("server replied OK (5)", WAIT);
    let before = c.count("server replied OK");
    cut(net.backup_links());
    b.wait_for("peer silent", WAIT);
    // Deliberate: the backup stays cut off for 5 s, many expiries, during which it must not
    // take over (no client votes reach it) and the primary must keep answering.
    std::thread::sleep(Duration::from_secs(5));
    // One request every 100 ms kept being answered by the primary.
    let during = c.count("server replied OK") - before;
    assert!(
        during >= 20,
        "only {during} answers while the backup was cut off"
    );
    heal(net.backup_links());
    b.wait_for("peer is back (ACTIVE)", SETTLE_BOUND + WAIT);
    let answered = net.probe_both(Duration::from_secs(1));
    assert_eq!(
        answered[1],
        0,
        "the passive backup answered: {answered:?}\n{:#?}",
        b.lines()
    );
    assert!(answered[0] >= 1, "{answered:?}");

    assert_eq!(c.count("failover to"), 0, "{:?}", c.lines());
    assert_eq!(p.count("I: state "), 1, "{:?}", p.lines());
    assert_eq!(b.count("I: state "), 1, "{:?}", b.lines());
    assert_eq!(p.count("fatal") + b.count("fatal"), 0);
    let (status, _) = c.interrupt_and_wait(WAIT);
    let s = c.summary().expect("a summary line");
    assert_eq!(s.lost(), 0, "{s}");
    // Only the request in flight at Ctrl-C may count failed (the accounting rule), and then
    // the exit code says so.
    assert!(s.failed <= 1, "{s}");
    assert_eq!(status.success(), s.failed == 0, "{s}");
}
