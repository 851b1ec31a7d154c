//! The fault proxy under a real ZMTP conversation (the `zeromq` crate, DEALER → ROUTER): a
//! partition is silent for zeromq too (no disconnect event, sends succeed, late delivery on
//! heal), while a reset is reported at once. The same as a real partition, checked once by hand
//! with network namespaces.
//!
//! The monitor shows the reset once the socket reads (every program's loop does): the zeromq crate
//! notices a reset connection only while the socket is read or written; a monitor alone, on an
//! idle socket, reports nothing.

use common::netfault::{Command, Fault, Proxy};
use common::{sock, Message};
use futures::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use zeromq::{DealerSocket, RouterSocket, Socket, SocketEvent};

const SOON: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(500);

/// Whether the monitor has reported a disconnect among the events waiting in it now.
async fn saw_disconnect(events: &mut futures::channel::mpsc::Receiver<SocketEvent>) -> bool {
    let mut seen = false;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(20), events.next()).await
    {
        seen |= matches!(event, SocketEvent::Disconnected(_));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeromq_sees_a_partition_as_silence_and_a_reset_as_a_disconnect() {
    let mut router = RouterSocket::new();
    let bound = sock::bind(&mut router, "tcp://127.0.0.1:0").await.unwrap();
    let mut events = router.monitor();
    let upstream: SocketAddr = bound.trim_start_matches("tcp://").parse().unwrap();
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream)
        .await
        .unwrap();
    let mut dealer = DealerSocket::new();
    let mut dealer_events = dealer.monitor();
    let via = format!("tcp://{}", proxy.local_addr());
    sock::connect(&mut dealer, &via, SOON).await.unwrap();

    sock::send(&mut dealer, Message::from_frames(["hello"]), SOON)
        .await
        .unwrap();
    let mut hello = sock::recv(&mut router, SOON).await.unwrap().expect("hello");
    let peer = hello.pop_front().expect("the dealer's identity");
    assert_eq!(hello.first().map(|f| &f[..]), Some(&b"hello"[..]));

    proxy.apply(Command::Set(Fault::Partition));
    // Both ends send into the partition without an error, and nothing arrives.
    sock::send(&mut dealer, Message::from_frames(["during"]), SOON)
        .await
        .unwrap();
    let reply = Message::from_frames([peer.clone(), "reply".into()]);
    sock::send(&mut router, reply, SOON).await.unwrap();
    assert!(sock::recv(&mut router, QUIET).await.unwrap().is_none());
    assert!(sock::recv(&mut dealer, QUIET).await.unwrap().is_none());
    assert!(
        !saw_disconnect(&mut events).await && !saw_disconnect(&mut dealer_events).await,
        "zeromq reported a disconnect during a partition"
    );

    proxy.apply(Command::Heal);
    let mut during = sock::recv(&mut router, SOON).await.unwrap().expect("held");
    assert_eq!(during.pop_front().as_ref(), Some(&peer));
    assert_eq!(during.first().map(|f| &f[..]), Some(&b"during"[..]));
    let reply = sock::recv(&mut dealer, SOON)
        .await
        .unwrap()
        .expect("held reply");
    assert_eq!(reply.first().map(|f| &f[..]), Some(&b"reply"[..]));
    assert!(!saw_disconnect(&mut events).await && !saw_disconnect(&mut dealer_events).await);

    proxy.apply(Command::Reset);
    // The DEALER notices while it reads, as every program's loop does.
    let disconnected = tokio::time::timeout(SOON, async {
        loop {
            let _ = sock::recv(&mut dealer, Duration::from_millis(100)).await;
            if saw_disconnect(&mut dealer_events).await {
                break;
            }
        }
    })
    .await;
    assert!(disconnected.is_ok(), "zeromq never reported the reset");
}
