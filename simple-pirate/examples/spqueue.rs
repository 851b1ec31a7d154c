//! Simple Pirate queue, the Guide's `spqueue.c` in Rust: read this first. A load balancer with
//! no reliability of its own (the client retries, Lazy Pirate style). The hardened
//! `src/bin/spqueue.rs` adds a pure routing core, typed envelope checks, bounded sends and
//! re-routing of a request whose worker vanished.
//!
//! Usage: `spqueue [frontend] [backend]` (tcp://*:5555 for clients, tcp://*:5556 for workers).

use bytes::Bytes;
use std::collections::VecDeque;
use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage, ZmqResult};

const WORKER_READY: &[u8] = b"\x01"; // signals worker is ready

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
    println!("I: spqueue ready (frontend {frontend_at}, backend {backend_at})");

    // Identities of the workers ready for a request, least recently used first.
    let mut workers: VecDeque<Bytes> = VecDeque::new();
    loop {
        tokio::select! {
            // Worker activity on the backend: READY, or a reply for a client.
            message = backend.recv() => {
                // A REQ worker's message: [worker, "", READY] or [worker, "", client, "", body…].
                match message?.into_vec().as_slice() {
                    [worker, empty, rest @ ..] if empty.is_empty() && !rest.is_empty() => {
                        workers.push_back(worker.clone());
                        if rest == [WORKER_READY] {
                            println!("I: worker {} ready", String::from_utf8_lossy(worker));
                        } else if let Err(e) = frontend.send(frames(rest)).await {
                            println!("W: reply lost, the client is gone: {e}");
                        }
                    }
                    _ => println!("E: malformed message from a worker, dropped"),
                }
            }
            // A client request, only while a worker is ready: route it to the oldest one.
            message = frontend.recv(), if !workers.is_empty() => {
                let mut request = message?; // [client, "", body…]
                let worker = workers.pop_front().expect("polled only with a worker ready");
                request.push_front(Bytes::new());
                request.push_front(worker);
                if let Err(e) = backend.send(request).await {
                    println!("W: worker gone, request dropped (the client retries): {e}");
                }
            }
        }
    }
}

/// A message of the given (non-empty) list of frames.
fn frames(frames: &[Bytes]) -> ZmqMessage {
    ZmqMessage::try_from(frames.to_vec()).expect("at least one frame")
}
