//! Interop with libzmq (the `zmq` crate builds libzmq 4.3 from source): libzmq peers against
//! our servers, our clients against libzmq servers written the Guide's way.

use crate::util::{client, exit_code, server, BOUND};
use common::testkit::{tcp_endpoint, Background};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A multipart message as libzmq hands it over.
type Frames = Vec<Vec<u8>>;
/// How a libzmq test server answers one message (`None`: no answer).
type Answer = fn(Frames) -> Option<Frames>;

/// Frames as byte vectors, for comparing with what libzmq returns.
fn frames(parts: &[&[u8]]) -> Frames {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// A libzmq server in a thread, answering with `answer` until dropped.
struct ZmqServer {
    served: Arc<AtomicU64>,
    _thread: Background,
}

impl ZmqServer {
    /// Binds `kind` at `endpoint` (with `identity` if given) and answers every message.
    fn start(
        kind: zmq::SocketType,
        endpoint: &str,
        identity: Option<&str>,
        answer: Answer,
    ) -> Self {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(kind).unwrap();
        socket.set_linger(0).unwrap();
        socket.set_rcvtimeo(50).unwrap();
        if let Some(id) = identity {
            socket.set_identity(id.as_bytes()).unwrap();
        }
        socket.bind(endpoint).unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let served2 = served.clone();
        let thread = Background::spawn(move |stop| {
            let _ctx = ctx;
            while !stop.load(Ordering::SeqCst) {
                match socket.recv_multipart(0) {
                    Ok(message) => {
                        if let Some(reply) = answer(message) {
                            socket.send_multipart(reply, 0).unwrap();
                            served2.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(zmq::Error::EAGAIN) => {}
                    Err(e) => panic!("libzmq server: {e}"),
                }
            }
        });
        Self {
            served,
            _thread: thread,
        }
    }

    fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

/// The Guide's flserver3 written against libzmq: PING → PONG, [control, …] → [control, OK].
fn flp_answer(mut m: Frames) -> Option<Frames> {
    if m.len() < 2 {
        return None;
    }
    let identity = m.remove(0);
    let control = m.remove(0);
    if control == b"PING" {
        Some(vec![identity, b"PONG".to_vec()])
    } else {
        Some(vec![identity, control, b"OK".to_vec()])
    }
}

#[test]
fn a_libzmq_router_client_talks_flp_to_flserver3() {
    let (_server, ep) = server(3);
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::ROUTER).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(10_000).unwrap();
    socket.set_router_mandatory(true).unwrap();
    socket.connect(&ep).unwrap();
    // Until the handshake is done the server's identity is unknown: EHOSTUNREACH, try again.
    let deadline = Instant::now() + BOUND;
    loop {
        match socket.send_multipart([ep.as_bytes(), b"PING"], 0) {
            Ok(()) => break,
            Err(zmq::Error::EHOSTUNREACH) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("PING not sent: {e}"),
        }
    }
    assert_eq!(
        socket.recv_multipart(0).unwrap(),
        frames(&[ep.as_bytes(), b"PONG"])
    );
    for seq in 1..=5u32 {
        let control = seq.to_string();
        socket
            .send_multipart([ep.as_bytes(), control.as_bytes(), b"random name"], 0)
            .unwrap();
        assert_eq!(
            socket.recv_multipart(0).unwrap(),
            frames(&[ep.as_bytes(), control.as_bytes(), b"OK"])
        );
    }
}

#[test]
fn flclient3_talks_flp_to_a_libzmq_server() {
    let ep = tcp_endpoint();
    let zserver = ZmqServer::start(zmq::ROUTER, &ep, Some(&ep), flp_answer);
    let mut c = client(3, std::slice::from_ref(&ep), &["--requests", "20"]);
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.answered, s.failed), (20, 0));
    assert_eq!(c.count(&format!("server {ep} alive")), 1);
    // 20 requests and at least the first PING.
    assert!(zserver.served() >= 21, "{}", zserver.served());
}

#[test]
fn a_libzmq_req_client_gets_its_echo_from_flserver1() {
    let (_server, ep) = server(1);
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REQ).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(10_000).unwrap();
    socket.connect(&ep).unwrap();
    for n in 0..3 {
        let body = format!("hello {n}");
        socket.send_multipart([body.as_bytes(), b"two"], 0).unwrap();
        assert_eq!(
            socket.recv_multipart(0).unwrap(),
            frames(&[body.as_bytes(), b"two"])
        );
    }
}

#[test]
fn flclient1_gets_echoes_from_a_libzmq_rep_server() {
    let ep = tcp_endpoint();
    let zserver = ZmqServer::start(zmq::REP, &ep, None, Some);
    let mut c = client(1, std::slice::from_ref(&ep), &["--requests", "5"]);
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    assert_eq!(c.summary().expect("a summary line").answered, 5);
    assert_eq!(zserver.served(), 5);
}

/// The Guide's flserver2 is a REP socket answering [sequence, "OK"].
#[test]
fn flclient2_fires_at_libzmq_rep_servers() {
    fn answer(m: Frames) -> Option<Frames> {
        let sequence = m.first()?.clone();
        Some(vec![sequence, b"OK".to_vec()])
    }
    let eps = [tcp_endpoint(), tcp_endpoint()];
    let servers: Vec<_> = eps
        .iter()
        .map(|ep| ZmqServer::start(zmq::REP, ep, None, answer))
        .collect();
    let mut c = client(2, &eps, &["--requests", "20"]);
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    assert_eq!(c.summary().expect("a summary line").answered, 20);
    // Both servers got a copy of every request. The slower server's copy of the last one may
    // still be on its way when the client exits after the first reply (there is no LINGER).
    let deadline = Instant::now() + Duration::from_secs(2);
    while servers.iter().any(|s| s.served() < 20) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for s in &servers {
        assert!(s.served() >= 19, "{}", s.served());
    }
}

#[test]
fn a_libzmq_dealer_gets_sequence_ok_from_flserver2() {
    let (_server, ep) = server(2);
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::DEALER).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(10_000).unwrap();
    socket.connect(&ep).unwrap();
    socket
        .send_multipart([&b""[..], b"42", b"random name"], 0)
        .unwrap();
    assert_eq!(
        socket.recv_multipart(0).unwrap(),
        frames(&[b"", b"42", b"OK"])
    );
}
