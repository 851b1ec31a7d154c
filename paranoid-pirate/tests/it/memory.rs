//! What large messages cost the queue: 100 messages of 1 MiB through `ppqueue`.

use crate::util::{queue, spawn_worker, Net, PATIENCE};
use bytes::Bytes;
use common::testkit::rss_and_peak_kib;
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// Sends `body` `n` times through a DEALER, one at a time, and checks each echo.
async fn echo_round_trips(client: &mut DealerSocket, body: &Bytes, n: usize) {
    for _ in 0..n {
        let request = ZmqMessage::try_from(vec![Bytes::new(), body.clone()]).unwrap();
        client.send(request).await.unwrap();
        let reply = tokio::time::timeout(PATIENCE, client.recv())
            .await
            .expect("a reply")
            .unwrap();
        assert_eq!(reply.get(1), Some(body));
    }
}

#[test]
fn a_hundred_one_mib_messages_cost_the_queue_little_memory() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let mut worker = spawn_worker("worker", &net, &["--work-ms", "0"]);
    worker.wait_for("worker ready", PATIENCE);
    q.wait_for("I: worker", PATIENCE);
    let pid = q.pid().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = Bytes::from(vec![7u8; 1 << 20]);
    rt.block_on(async {
        let mut client = DealerSocket::new();
        common::sock::connect(&mut client, &net.frontend, PATIENCE)
            .await
            .unwrap();
        // One first, so buffers every connection keeps are counted in "before".
        echo_round_trips(&mut client, &body, 1).await;
        let (before, _) = rss_and_peak_kib(pid);
        echo_round_trips(&mut client, &body, 100).await;
        let (after, peak) = rss_and_peak_kib(pid);
        eprintln!(
            "ppqueue, 100 × 1 MiB: RSS {before} KiB before, {after} KiB after, peak {peak} KiB"
        );
        // Bound: 16 MiB of growth; a copy kept per message would be 100 MiB.
        assert!(
            after < before + 16 * 1024,
            "RSS grew from {before} KiB to {after} KiB"
        );
    });
}
