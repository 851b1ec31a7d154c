//! The native guarded ROUTER (`common::router`, the broker's public endpoint) against real
//! peers: libzmq DEALER and REQ sockets (the `zmq` crate) and raw TCP for what no library
//! sends (a frame over the limit, a peer vanishing mid-message, PING).

use bytes::Bytes;
use common::guard::GuardConfig;
use common::router::{Event, Router, SendError};
use common::Message;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A small limit, so "a frame at the limit" is quick to send.
const LIMIT: u64 = 1 << 20;
/// What the checker charges per frame on top of its body.
const FRAME_COST: u64 = common::guard::zmtp::FRAME_COST;
/// Generous: the machine is shared.
const WITHIN: Duration = Duration::from_secs(10);

async fn router(max_connections: usize) -> Router {
    let config = GuardConfig {
        max_msg_bytes: LIMIT,
        max_connections,
        handshake: Duration::from_secs(5),
        ..GuardConfig::default()
    };
    Router::bind("127.0.0.1:0", config).await.expect("bind")
}

async fn next(router: &mut Router) -> Event {
    tokio::time::timeout(WITHIN, router.recv())
        .await
        .expect("an event in time")
}

fn message(parts: &[&[u8]]) -> Message {
    Message::from_frames(parts.iter().map(|p| Bytes::copy_from_slice(p)))
}

fn libzmq(
    kind: zmq::SocketType,
    identity: Option<&[u8]>,
    addr: std::net::SocketAddr,
) -> zmq::Socket {
    let ctx = zmq::Context::new();
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    if let Some(id) = identity {
        s.set_identity(id).unwrap();
    }
    s.connect(&format!("tcp://{addr}")).unwrap();
    s
}

/// Our greeting as a DEALER with `identity`, the way libzmq sends it.
fn handshake(identity: &[u8]) -> Vec<u8> {
    let mut props = Vec::new();
    for (name, value) in [("Socket-Type", &b"DEALER"[..]), ("Identity", identity)] {
        props.push(name.len() as u8);
        props.extend_from_slice(name.as_bytes());
        props.extend_from_slice(&(value.len() as u32).to_be_bytes());
        props.extend_from_slice(value);
    }
    let mut body = b"\x05READY".to_vec();
    body.extend_from_slice(&props);
    let mut out = common::hostile::greeting();
    out.extend_from_slice(&[0x04, body.len() as u8]);
    out.extend_from_slice(&body);
    out
}

/// Reads until the server's greeting and READY (64 + 2 + 28 bytes) arrived.
async fn read_server_handshake(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 64 + 2 + 28];
    tokio::time::timeout(WITHIN, stream.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("the server's greeting and READY");
    assert_eq!(&buf[12..16], b"NULL");
    assert_eq!(&buf[66..72], b"\x05READY");
    assert!(buf.ends_with(b"ROUTER"), "{buf:?}");
}

/// Waits until the server closes `stream` (EOF or reset), discarding what it sends.
async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(WITHIN, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server did not close the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_dealer_and_req_round_trip_through_the_native_router() {
    let mut router = router(16).await;
    let addr = router.local_addr();

    // DEALER with an identity: empty frames, multi-frame, one frame at the limit.
    let at_limit = vec![7u8; (LIMIT - FRAME_COST) as usize];
    let big = at_limit.clone();
    let dealer = tokio::task::spawn_blocking(move || {
        let s = libzmq(zmq::DEALER, Some(b"dealer-1"), addr);
        s.send_multipart([&b""[..], b"a", b""], 0).unwrap();
        s.send(&big[..], 0).unwrap();
        let first = s.recv_multipart(0).unwrap();
        let second = s.recv_multipart(0).unwrap();
        (first, second)
    });
    let id = match next(&mut router).await {
        Event::Connected { id, client_key, .. } => {
            assert_eq!(client_key, None);
            id
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(id, Bytes::from_static(b"dealer-1"), "the Identity property");
    assert_eq!(
        next(&mut router).await,
        Event::Message(message(&[b"dealer-1", b"", b"a", b""]))
    );
    assert_eq!(
        next(&mut router).await,
        Event::Message(message(&[b"dealer-1", &at_limit]))
    );
    router
        .send(message(&[b"dealer-1", b"", b"x"]), WITHIN)
        .await
        .unwrap();
    router
        .send(message(&[b"dealer-1", &at_limit, b""]), WITHIN)
        .await
        .unwrap();
    let (first, second) = dealer.await.unwrap();
    assert_eq!(first, vec![b"".to_vec(), b"x".to_vec()]);
    assert_eq!(second, vec![at_limit.clone(), Vec::new()]);

    // REQ without an identity: a generated routing id, the empty delimiter added by REQ.
    let req = tokio::task::spawn_blocking(move || {
        let s = libzmq(zmq::REQ, None, addr);
        s.send("hello", 0).unwrap();
        s.recv_multipart(0).unwrap()
    });
    let id = loop {
        match next(&mut router).await {
            Event::Connected { id, .. } => break id,
            Event::Disconnected(gone) => assert_eq!(gone, Bytes::from_static(b"dealer-1")),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(id.len(), 5, "a generated id, as libzmq makes them");
    assert_eq!(id[0], 0);
    let request = loop {
        match next(&mut router).await {
            Event::Message(m) => break m,
            Event::Disconnected(_) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(request, message(&[&id, b"", b"hello"]));
    router
        .send(message(&[&id, b"", b"world"]), WITHIN)
        .await
        .unwrap();
    assert_eq!(req.await.unwrap(), vec![b"world".to_vec()]);
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_from_its_header_and_the_disconnect_reported() {
    let mut router = router(16).await;
    let mut stream = TcpStream::connect(router.local_addr()).await.unwrap();
    stream.write_all(&handshake(b"big")).await.unwrap();
    read_server_handshake(&mut stream).await;
    assert!(matches!(next(&mut router).await, Event::Connected { .. }));
    // One byte over: the header alone closes the connection; no body is ever sent.
    let mut header = vec![0x02];
    header.extend_from_slice(&(LIMIT + 1).to_be_bytes());
    stream.write_all(&header).await.unwrap();
    assert_closed(&mut stream).await;
    assert_eq!(
        next(&mut router).await,
        Event::Disconnected(Bytes::from_static(b"big"))
    );
    assert_eq!(
        router.send(message(&[b"big", b"x"]), WITHIN).await,
        Err(SendError::Unknown),
        "a send to a peer that has gone fails, as zeromq's ROUTER does"
    );
}

#[tokio::test]
async fn a_peer_vanishing_mid_message_is_disconnected_and_its_half_message_dropped() {
    let mut router = router(16).await;
    let mut stream = TcpStream::connect(router.local_addr()).await.unwrap();
    stream.write_all(&handshake(b"half")).await.unwrap();
    read_server_handshake(&mut stream).await;
    // One whole message, then a frame with MORE and half of the next frame's body.
    let mut bytes = vec![0x00, 4];
    bytes.extend_from_slice(b"full");
    bytes.extend_from_slice(&[0x01, 1, b'a', 0x00, 200]);
    bytes.extend_from_slice(&[b'x'; 100]);
    stream.write_all(&bytes).await.unwrap();
    drop(stream);
    assert!(matches!(next(&mut router).await, Event::Connected { .. }));
    assert_eq!(
        next(&mut router).await,
        Event::Message(message(&[b"half", b"full"]))
    );
    assert_eq!(
        next(&mut router).await,
        Event::Disconnected(Bytes::from_static(b"half"))
    );
}

#[tokio::test]
async fn a_routing_id_in_use_is_not_given_to_a_second_peer() {
    let mut router = router(16).await;
    let mut first = TcpStream::connect(router.local_addr()).await.unwrap();
    first.write_all(&handshake(b"dup")).await.unwrap();
    read_server_handshake(&mut first).await;
    assert!(matches!(next(&mut router).await, Event::Connected { id, .. } if id == "dup"));
    let mut second = TcpStream::connect(router.local_addr()).await.unwrap();
    second.write_all(&handshake(b"dup")).await.unwrap();
    read_server_handshake(&mut second).await;
    let other = match next(&mut router).await {
        Event::Connected { id, .. } => id,
        other => panic!("{other:?}"),
    };
    assert_ne!(other, Bytes::from_static(b"dup"));
    // A message to "dup" reaches the first peer only; the second has its own id.
    router
        .send(message(&[b"dup", b"one"]), WITHIN)
        .await
        .unwrap();
    router
        .send(message(&[&other, b"two"]), WITHIN)
        .await
        .unwrap();
    let mut buf = [0u8; 5];
    first.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"\x00\x03one");
    second.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"\x00\x03two");
    // Once the first is gone, the id is free again.
    drop(first);
    assert_eq!(
        next(&mut router).await,
        Event::Disconnected(Bytes::from_static(b"dup"))
    );
    let mut third = TcpStream::connect(router.local_addr()).await.unwrap();
    third.write_all(&handshake(b"dup")).await.unwrap();
    assert!(matches!(next(&mut router).await, Event::Connected { id, .. } if id == "dup"));
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let mut router = router(16).await;
    let mut stream = TcpStream::connect(router.local_addr()).await.unwrap();
    stream.write_all(&handshake(b"p")).await.unwrap();
    read_server_handshake(&mut stream).await;
    assert!(matches!(next(&mut router).await, Event::Connected { .. }));
    stream
        .write_all(b"\x04\x09\x04PING\x00\x0aab")
        .await
        .unwrap();
    let mut pong = [0u8; 9];
    tokio::time::timeout(WITHIN, stream.read_exact(&mut pong))
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(&pong, b"\x04\x07\x04PONGab");
}

/// More connects and disconnects than zeromq's monitor channel holds (1,024), all while the
/// broker is not reading: every disconnect still arrives, after its connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_disconnect_is_delivered_even_when_the_broker_falls_behind() {
    const PEERS: usize = 600;
    common::guard::raise_descriptor_limit();
    let mut router = router(PEERS + 10).await;
    let addr = router.local_addr();
    let mut streams = Vec::new();
    for i in 0..PEERS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&handshake(format!("peer-{i}").as_bytes()))
            .await
            .unwrap();
        streams.push(s);
    }
    for s in &mut streams {
        read_server_handshake(s).await;
    }
    drop(streams);
    let mut connected = std::collections::HashSet::new();
    let mut disconnected = 0;
    while disconnected < PEERS {
        match next(&mut router).await {
            Event::Connected { id, .. } => assert!(connected.insert(id)),
            Event::Disconnected(id) => {
                assert!(connected.contains(&id), "disconnect before connect");
                disconnected += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(connected.len(), PEERS);
    assert_eq!(router.peers(), 0);
}
