//! Model 3 through the fault proxy (`common::netfault`): the server in use is cut off for
//! 15 s (no FIN, no RST: its connection just stops moving) and then healed.
//!
//! What the client must do (the `freelance-partition` row of the README's scenario table): fail
//! the request over inside the 3 s global timeout (nothing FAILED), give the dead server a
//! fresh link, and use it again within one ping interval plus 1 s of the heal.

use crate::util::{bin, BOUND};
use common::netfault::{Command, Fault, Proxy};
use common::testkit::{free_port, Proc};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PING_MS: u64 = 1000;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A model 3 server behind a proxy; it calls itself by the proxy's endpoint, which is the one
/// clients connect to.
fn server_behind(rt: &tokio::runtime::Runtime) -> (Proc, Proxy, String) {
    let port = free_port();
    let proxy = rt
        .block_on(Proxy::start(loopback(0), loopback(port)))
        .expect("proxy");
    let public = format!("tcp://{}", proxy.local_addr());
    let args = [
        "--bind".to_owned(),
        format!("tcp://{}", loopback(port)),
        "--endpoint".to_owned(),
        public.clone(),
    ];
    let mut proc = Proc::spawn("flserver3", bin("flserver3"), args);
    proc.wait_for("ready on", BOUND);
    (proc, proxy, public)
}

#[test]
fn the_server_in_use_partitioned_15_s_fails_over_and_is_used_again_soon_after_the_heal() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_a, proxy_a, a) = server_behind(&rt);
    let (_b, _proxy_b, b) = server_behind(&rt);
    let args = [
        a.clone(),
        b.clone(),
        "--requests".into(),
        "1000000".into(),
        "--interval-ms".into(),
        "100".into(),
        "--ping-ms".into(),
        PING_MS.to_string(),
        "--ttl-ms".into(),
        "3000".into(),
        "--attempt-timeout-ms".into(),
        "1000".into(),
        "--timeout-ms".into(),
        "3000".into(),
        "--keep-going".into(),
    ];
    let mut c = Proc::spawn("flclient3", bin("flclient3"), args);
    c.wait_for(&format!("reply 5 from {a}:"), BOUND);

    let cut = Instant::now();
    proxy_a.apply(Command::Set(Fault::Partition));
    let line = c.wait_for("failover: request", BOUND);
    assert!(line.contains(&format!("from {a} to {b}")), "{line}");
    c.wait_for(&format!("from {b}:"), BOUND);
    let failover = cut.elapsed();
    eprintln!("partition: first answer from the other server {failover:?} after the cut");
    // Deliberate: the partition lasts the 15 s this test is about (five TTLs).
    std::thread::sleep(Duration::from_secs(15).saturating_sub(cut.elapsed()));
    // The dead server got a fresh link at once (and again every TTL while it stayed silent).
    assert!(c.count(&format!("relinking {a}")) >= 1, "{:?}", c.lines());

    proxy_a.apply(Command::Heal);
    let healed = Instant::now();
    c.mark();
    c.wait_for(&format!("server {a} alive"), BOUND);
    let alive = healed.elapsed();
    c.wait_for(&format!("from {a}:"), BOUND);
    let in_use = healed.elapsed();
    eprintln!("heal: {a} alive after {alive:?}, answering again after {in_use:?}");
    let bound = Duration::from_millis(PING_MS + 1000);
    assert!(in_use <= bound, "in use again only after {in_use:?}");

    let (_, _) = c.interrupt_and_wait(BOUND);
    let s = c.summary().expect("a summary line");
    assert_eq!(s.lost(), 0, "{s}");
    assert_eq!(
        s.failed, 0,
        "nothing FAILED: the failover was inside the global timeout: {s}"
    );
    assert!(s.answered >= 100, "{s}");
}
