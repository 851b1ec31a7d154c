//! The fault proxy in-process: real TCP sockets on 127.0.0.1 with OS-assigned ports, a real
//! server behind the proxy, and every fault checked by what each end actually sees.

use common::netfault::{Command, Direction, Fault, Options, Proxy};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Bound for anything that should happen "at once" on a loaded machine.
const SOON: Duration = Duration::from_secs(10);
/// How long an end listens to check that nothing (no byte, no FIN, no RST) reaches it.
const QUIET: Duration = Duration::from_millis(400);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A server the test accepts on by hand, and a proxy in front of it.
async fn proxied_listener() -> (TcpListener, Proxy) {
    let server = TcpListener::bind(any_port()).await.unwrap();
    let proxy = Proxy::start(any_port(), server.local_addr().unwrap())
        .await
        .unwrap();
    (server, proxy)
}

/// An echo server (every connection sends back what it reads, FIN for FIN), and a proxy in front.
async fn proxied_echo() -> Proxy {
    let server = TcpListener::bind(any_port()).await.unwrap();
    let upstream = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = server.accept().await {
            tokio::spawn(async move {
                let (mut from, mut to) = stream.split();
                if tokio::io::copy(&mut from, &mut to).await.is_ok() {
                    let _ = to.shutdown().await;
                }
            });
        }
    });
    Proxy::start(any_port(), upstream).await.unwrap()
}

/// A client connection through the proxy and the server's side of it.
async fn connect_pair(server: &TcpListener, proxy: &Proxy) -> (TcpStream, TcpStream) {
    let client = timeout(SOON, TcpStream::connect(proxy.local_addr()))
        .await
        .expect("connect to the proxy in time")
        .unwrap();
    let (served, _) = timeout(SOON, server.accept())
        .await
        .expect("the proxy connects upstream in time")
        .unwrap();
    (client, served)
}

/// Asserts that nothing at all reaches `stream` for [`QUIET`]: no byte, no EOF, no error.
async fn assert_silent(stream: &mut (impl AsyncRead + Unpin), who: &str) {
    let mut byte = [0u8; 1];
    match timeout(QUIET, stream.read(&mut byte)).await {
        Err(_) => {}
        Ok(Ok(0)) => panic!("{who}: saw EOF (a FIN) through a partition"),
        Ok(Ok(_)) => panic!("{who}: received a byte through a partition"),
        Ok(Err(e)) => panic!("{who}: saw an error through a partition: {e}"),
    }
}

/// Reads exactly `len` bytes within [`SOON`].
async fn read_n(stream: &mut (impl AsyncRead + Unpin), len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    timeout(SOON, stream.read_exact(&mut buf))
        .await
        .expect("bytes arrive in time")
        .expect("read");
    buf
}

/// Waits until the proxy relays exactly `n` connections (accepted from its backlog, or closed).
async fn wait_connections(proxy: &Proxy, n: usize) {
    let deadline = Instant::now() + SOON;
    while proxy.connections() != n {
        assert!(
            Instant::now() < deadline,
            "the proxy relays {} connections, not {n}",
            proxy.connections()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A reproducible byte stream (xorshift), different per seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_relays_many_connections_unchanged_and_in_order_both_ways() {
    const CONNECTIONS: u64 = 16;
    const BYTES: usize = 1024 * 1024;
    let proxy = proxied_echo().await;
    let mut runs = Vec::new();
    for seed in 0..CONNECTIONS {
        let addr = proxy.local_addr();
        runs.push(tokio::spawn(async move {
            let data = pattern(seed, BYTES);
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut from, mut to) = stream.into_split();
            // Write in uneven pieces while the echo comes back concurrently.
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                let mut rest = &sent[..];
                let mut piece = 1 + (seed as usize * 7919) % 50_000;
                while !rest.is_empty() {
                    let n = piece.min(rest.len());
                    to.write_all(&rest[..n]).await.unwrap();
                    rest = &rest[n..];
                    piece = 1 + (piece * 31 + 17) % 65_000;
                }
                to.shutdown().await.unwrap();
            });
            let mut echoed = Vec::with_capacity(BYTES);
            from.read_to_end(&mut echoed).await.unwrap();
            writer.await.unwrap();
            assert!(echoed == data, "connection {seed}: echo differs");
        }));
    }
    for run in runs {
        timeout(Duration::from_secs(120), run)
            .await
            .expect("16 MiB each way in two minutes")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_holds_both_directions_silently_and_heal_delivers_what_was_held() {
    let (server, proxy) = proxied_listener().await;
    let (mut client, mut served) = connect_pair(&server, &proxy).await;
    client.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut served, 4).await, b"ping");

    proxy.apply(Command::Set(Fault::Partition));
    assert_eq!(proxy.fault(), Fault::Partition);
    client.write_all(b"held up").await.unwrap();
    served.write_all(b"held down").await.unwrap();
    // Even a FIN from the client is held: the server must not see the connection close.
    client.shutdown().await.unwrap();
    assert_silent(&mut served, "server").await;
    assert_silent(&mut client, "client").await;

    // A connection made during the partition is accepted (by the kernel) and hangs: the server
    // sees no connection at all.
    let mut late = timeout(SOON, TcpStream::connect(proxy.local_addr()))
        .await
        .expect("the kernel accepts during a partition")
        .unwrap();
    late.write_all(b"late").await.unwrap();
    assert!(
        timeout(QUIET, server.accept()).await.is_err(),
        "the upstream saw a connection made during a partition"
    );
    assert_silent(&mut late, "late client").await;

    proxy.apply(Command::Heal);
    assert_eq!(proxy.fault(), Fault::Pass);
    let mut upstream_got = Vec::new();
    timeout(SOON, served.read_to_end(&mut upstream_got))
        .await
        .expect("held bytes and FIN arrive after heal")
        .unwrap();
    assert_eq!(
        upstream_got, b"held up",
        "exactly what was held, then the FIN"
    );
    assert_eq!(read_n(&mut client, 9).await, b"held down");
    let (mut late_served, _) = timeout(SOON, server.accept())
        .await
        .expect("the late connection reaches the server after heal")
        .unwrap();
    assert_eq!(read_n(&mut late_served, 4).await, b"late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_partition_holds_only_its_direction() {
    let (server, proxy) = proxied_listener().await;
    let (mut client, mut served) = connect_pair(&server, &proxy).await;

    proxy.apply(Command::Set(Fault::OneWay(Direction::Upstream)));
    client.write_all(b"u1").await.unwrap();
    served.write_all(b"d1").await.unwrap();
    assert_eq!(
        read_n(&mut client, 2).await,
        b"d1",
        "downstream still flows"
    );
    assert_silent(&mut served, "server").await;

    proxy.apply("partition down".parse().unwrap());
    assert_eq!(
        read_n(&mut served, 2).await,
        b"u1",
        "what upstream held flows"
    );
    served.write_all(b"d2").await.unwrap();
    assert_silent(&mut client, "client").await;

    proxy.apply(Command::Heal);
    assert_eq!(read_n(&mut client, 2).await, b"d2");
}

/// Reads until an error and returns its kind, failing on EOF or on nothing within [`SOON`].
async fn read_error(stream: &mut TcpStream, who: &str) -> ErrorKind {
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!("{who}: no reset within {SOON:?}"),
            Ok(Ok(0)) => panic!("{who}: saw a clean EOF instead of a reset"),
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => return e.kind(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_aborts_both_ends_and_keeps_accepting() {
    let (server, proxy) = proxied_listener().await;
    let (mut client, mut served) = connect_pair(&server, &proxy).await;
    client.write_all(b"x").await.unwrap();
    assert_eq!(read_n(&mut served, 1).await, b"x");

    proxy.apply(Command::Reset);
    assert_eq!(
        read_error(&mut client, "client").await,
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        read_error(&mut served, "server").await,
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        proxy.fault(),
        Fault::Pass,
        "reset leaves the fault as it was"
    );
    wait_connections(&proxy, 0).await;

    let (mut client, mut served) = connect_pair(&server, &proxy).await;
    client.write_all(b"again").await.unwrap();
    assert_eq!(read_n(&mut served, 5).await, b"again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_during_a_partition_aborts_the_connections_that_hang() {
    let (server, proxy) = proxied_listener().await;
    let (mut client, mut served) = connect_pair(&server, &proxy).await;
    proxy.apply(Command::Set(Fault::Partition));
    let mut hanging = TcpStream::connect(proxy.local_addr()).await.unwrap();
    // A reset aborts the connections the proxy has taken from its backlog.
    wait_connections(&proxy, 2).await;
    proxy.apply(Command::Reset);
    assert_eq!(
        read_error(&mut client, "client").await,
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        read_error(&mut served, "server").await,
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        read_error(&mut hanging, "hanging client").await,
        ErrorKind::ConnectionReset
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_adds_its_latency_each_way_and_keeps_order() {
    let proxy = proxied_echo().await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.set_nodelay(true).unwrap();
    let started = Instant::now();
    client.write_all(b"?").await.unwrap();
    read_n(&mut client, 1).await;
    let direct = started.elapsed();

    proxy.apply("delay 200".parse().unwrap());
    let started = Instant::now();
    client.write_all(b"?").await.unwrap();
    read_n(&mut client, 1).await;
    let delayed = started.elapsed();
    eprintln!("round trip: {direct:?} in pass, {delayed:?} with delay 200 each way");
    assert!(
        delayed >= Duration::from_millis(400),
        "round trip {delayed:?}"
    );
    assert!(
        delayed < Duration::from_millis(400) + SOON,
        "round trip {delayed:?}"
    );

    // Many small writes, each its own chunk, come back complete and in order.
    let data = pattern(99, 50 * 100);
    for piece in data.chunks(100) {
        client.write_all(piece).await.unwrap();
        // Deliberate: a pause between writes, so the proxy reads each as a chunk of its own.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(read_n(&mut client, data.len()).await == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_limits_the_rate() {
    const RATE: u64 = 100_000;
    const BYTES: usize = 200_000;
    let (server, proxy) = proxied_listener().await;
    proxy.apply(Command::Set(Fault::Throttle(RATE)));
    let (mut client, mut served) = connect_pair(&server, &proxy).await;
    let data = pattern(5, BYTES);
    let started = Instant::now();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        client.write_all(&sent).await.unwrap();
        client
    });
    let received = read_n(&mut served, BYTES).await;
    let took = started.elapsed();
    let _client = writer.await.unwrap();
    assert!(received == data);
    let rate = BYTES as f64 / took.as_secs_f64();
    eprintln!("throttle {RATE} B/s: {BYTES} bytes in {took:?} ({rate:.0} B/s)");
    // One burst (a tenth of a second's worth) leaves at once; the rest at the rate: 1.9 s.
    assert!(
        took >= Duration::from_millis(1_500),
        "{BYTES} bytes in {took:?}"
    );
    assert!(took < Duration::from_secs(20), "{BYTES} bytes in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_resets_the_client() {
    // An upstream port with nothing listening: the accepted client is aborted.
    let nothing = TcpListener::bind(any_port()).await.unwrap();
    let dead = nothing.local_addr().unwrap();
    drop(nothing);
    let proxy = Proxy::start(any_port(), dead).await.unwrap();
    // The RST may even beat the end of the client's connect call.
    match TcpStream::connect(proxy.local_addr()).await {
        Ok(mut client) => {
            assert_eq!(
                read_error(&mut client, "client").await,
                ErrorKind::ConnectionReset
            )
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_dropped_handle_stops_the_proxy() {
    let proxy = proxied_echo().await;
    let addr = proxy.local_addr();
    let copy = proxy.clone();
    drop(proxy);
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"still here").await.unwrap();
    assert_eq!(
        read_n(&mut client, 10).await,
        b"still here",
        "a clone keeps it running"
    );
    drop(copy);
    let deadline = Instant::now() + SOON;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "still listening after the last drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_partition_blocks_the_sender_instead_of_buffering_without_bound() {
    // More than the proxy holds plus the most the kernel's socket buffers may take on both sides
    // of the proxy's client connection (the sysctl maxima), so the writer must block.
    let kernel_max = |path: &str| -> usize {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|v| v.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(16 * 1024 * 1024)
    };
    let buffers =
        kernel_max("/proc/sys/net/ipv4/tcp_rmem") + kernel_max("/proc/sys/net/ipv4/tcp_wmem");
    let bytes = buffers + common::netfault::MAX_HELD + 4 * 1024 * 1024;
    let (server, proxy) = proxied_listener().await;
    let (mut client, mut served) = connect_pair(&server, &proxy).await;
    proxy.apply(Command::Set(Fault::Partition));
    let data = pattern(7, bytes);
    let sent = data.clone();
    let mut writer = tokio::spawn(async move { client.write_all(&sent).await.map(|()| client) });
    assert!(
        timeout(Duration::from_secs(2), &mut writer).await.is_err(),
        "{bytes} bytes were taken during a partition: the proxy buffers without bound"
    );
    proxy.apply(Command::Heal);
    let received = read_n(&mut served, bytes).await;
    assert!(
        received == data,
        "bytes held under backpressure arrive intact and in order"
    );
    timeout(SOON, writer)
        .await
        .expect("the writer unblocks")
        .unwrap()
        .unwrap();
}

/// A proxy with [`Options::tcp_backoff`] in front of a server the test accepts on by hand.
async fn proxied_listener_with_backoff() -> (TcpListener, Proxy) {
    let server = TcpListener::bind(any_port()).await.unwrap();
    let options = Options { tcp_backoff: true };
    let proxy = Proxy::start_with(any_port(), server.local_addr().unwrap(), options)
        .await
        .unwrap();
    (server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tcp_backoff_held_bytes_arrive_at_the_next_retransmission_after_heal() {
    let (server, proxy) = proxied_listener_with_backoff().await;
    let (mut client, mut served) = connect_pair(&server, &proxy).await;
    proxy.apply(Command::Set(Fault::Partition));
    let sent = Instant::now();
    client.write_all(b"into the partition").await.unwrap();
    // Deliberate: a 1.2 s partition, between the retransmissions at 0.6 and 1.4 s.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let healed = Instant::now();
    proxy.apply(Command::Heal);
    assert_eq!(read_n(&mut served, 18).await, b"into the partition");
    let (after_send, after_heal) = (sent.elapsed(), healed.elapsed());
    eprintln!("held 1.2 s: delivered {after_send:?} after the send, {after_heal:?} after the heal");
    // Retransmissions 0.2, 0.6 and 1.4 s after the send: the first after the heal delivers, not
    // the heal itself (1.2 s, or later on a loaded machine, which only moves it further).
    assert!(after_send >= Duration::from_millis(1_390), "{after_send:?}");
    assert!(after_heal < SOON, "{after_heal:?}");
    // Once delivered, bytes flow at once again.
    let started = Instant::now();
    client.write_all(b"!").await.unwrap();
    read_n(&mut served, 1).await;
    assert!(started.elapsed() < Duration::from_millis(1_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tcp_backoff_a_connect_held_by_a_partition_goes_through_at_its_next_syn_retry() {
    let (server, proxy) = proxied_listener_with_backoff().await;
    proxy.apply(Command::Set(Fault::Partition));
    let connected = Instant::now();
    let _client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    // The first SYN retry (1 s after the proxy took the connection) must fall in the partition.
    wait_connections(&proxy, 1).await;
    // Deliberate: a 1.5 s partition, past the first SYN retry.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    proxy.apply(Command::Heal);
    let healed = Instant::now();
    timeout(SOON, server.accept())
        .await
        .expect("the held connect reaches the server")
        .unwrap();
    let (after_connect, after_heal) = (connected.elapsed(), healed.elapsed());
    eprintln!("connect held 1.5 s: upstream accepted {after_connect:?} after the connect, {after_heal:?} after the heal");
    // SYN retries 1 and 3 s after the connect: the one at 3 s goes through.
    assert!(
        after_connect >= Duration::from_millis(2_990),
        "{after_connect:?}"
    );
}
