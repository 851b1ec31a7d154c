//! Paranoid Pirate queue, the Guide's `ppqueue.c` in Rust: read this first. A load balancer that
//! heartbeats its idle workers (6/PPP) and forgets a worker silent for `HEARTBEAT_LIVENESS`
//! intervals, so no request goes to a dead one. The hardened `src/bin/ppqueue.rs` adds a pure,
//! unit-tested core, typed frames, a bounded pending queue, bounded sends, the socket monitor
//! (a closed connection purges at once) and an ingress guard.
//!
//! Usage: `ppqueue [frontend] [backend]` (tcp://*:5555 for clients, tcp://*:5556 for workers).

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{interval, Instant};
use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage, ZmqResult};

const HEARTBEAT_LIVENESS: u32 = 3; // 3-5 is reasonable
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1000);

// Paranoid Pirate Protocol constants.
const PPP_READY: &[u8] = b"\x01"; // signals worker is ready
const PPP_HEARTBEAT: &[u8] = b"\x02"; // signals worker heartbeat

/// A worker ready for a request: its identity and when it is considered dead.
struct Worker {
    identity: Bytes,
    expiry: Instant,
}

/// The ready workers, least recently used first.
#[derive(Default)]
struct Workers(VecDeque<Worker>);

impl Workers {
    /// Puts a worker at the end of the ready list (an older entry for it goes).
    fn ready(&mut self, identity: Bytes) {
        self.0.retain(|w| w.identity != identity);
        let expiry = Instant::now() + HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS;
        self.0.push_back(Worker { identity, expiry });
    }

    /// A heartbeat keeps a ready worker alive. (The Guide's queue makes any sign of life mean
    /// "ready", which hands a second request to a worker that heartbeats while it works.)
    fn alive(&mut self, identity: &Bytes) {
        if let Some(w) = self.0.iter_mut().find(|w| w.identity == identity) {
            w.expiry = Instant::now() + HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS;
        }
    }

    /// The least recently used ready worker.
    fn next(&mut self) -> Option<Bytes> {
        self.0.pop_front().map(|w| w.identity)
    }

    /// Forgets the workers that have been silent too long.
    fn purge(&mut self) {
        let now = Instant::now();
        self.0.retain(|w| w.expiry > now);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ZmqResult<()> {
    let mut args = std::env::args().skip(1);
    let frontend_at = args.next().unwrap_or("tcp://*:5555".into());
    let backend_at = args.next().unwrap_or("tcp://*:5556".into());
    // zeromq cannot bind the Guide's `*`: all interfaces is 0.0.0.0.
    let bindable = |at: &str| at.replace("tcp://*:", "tcp://0.0.0.0:");
    let mut frontend = RouterSocket::new(); // for clients
    frontend.bind(&bindable(&frontend_at)).await?;
    let mut backend = RouterSocket::new(); // for workers
    backend.bind(&bindable(&backend_at)).await?;
    println!("I: ppqueue ready (frontend {frontend_at}, backend {backend_at})");

    let mut workers = Workers::default();
    let mut heartbeat = interval(HEARTBEAT_INTERVAL); // send heartbeats at regular intervals
    loop {
        workers.purge();
        tokio::select! {
            // Worker activity on the backend: READY, HEARTBEAT, or a reply for a client.
            message = backend.recv() => {
                // From a DEALER: [worker, READY|HEARTBEAT] or [worker, client, "", body…].
                let mut frames = message?.into_vec();
                let worker = frames.remove(0);
                match frames.as_slice() {
                    [command] if command == PPP_READY => {
                        println!("I: worker {} ready", String::from_utf8_lossy(&worker));
                        workers.ready(worker);
                    }
                    [command] if command == PPP_HEARTBEAT => workers.alive(&worker),
                    [_client, empty, _body, ..] if empty.is_empty() => {
                        workers.ready(worker);
                        let reply = ZmqMessage::try_from(frames).expect("matched three frames");
                        if let Err(e) = frontend.send(reply).await {
                            println!("W: reply lost, the client is gone: {e}");
                        }
                    }
                    _ => println!("E: invalid message from {}", String::from_utf8_lossy(&worker)),
                }
            }
            // A client request, only while a worker is ready: route it to the oldest one.
            message = frontend.recv(), if !workers.0.is_empty() => {
                let mut request = message?; // [client, "", body…]
                let worker = workers.next().expect("polled only with a worker ready");
                request.push_front(worker);
                if let Err(e) = backend.send(request).await {
                    println!("W: worker gone, request dropped (the client retries): {e}");
                }
            }
            // Time to heartbeat every ready worker.
            _ = heartbeat.tick() => {
                for worker in &workers.0 {
                    let frames = vec![worker.identity.clone(), Bytes::from_static(PPP_HEARTBEAT)];
                    let heartbeat = ZmqMessage::try_from(frames).expect("two frames");
                    let _ = backend.send(heartbeat).await;
                }
            }
        }
    }
}
