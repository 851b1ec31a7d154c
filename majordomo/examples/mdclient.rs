//! A Majordomo client with its small client API inline (the Guide's mdcliapi + mdclient).
//!
//! `send(service, body)` wraps the body in the client's MDP frames and waits for the reply; with
//! none after `TIMEOUT` it reconnects on a fresh socket and sends again, `RETRIES` attempts in
//! all, then gives up. Sends `requests` "Hello world" requests one after the other.
//!
//! Usage: `mdclient [endpoint] [requests] [-v]` (defaults `tcp://localhost:5555`, 100000).

use bytes::Bytes;
use common::Message;
use std::time::Duration;
use tokio::time::timeout;
use zeromq::{ReqSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

const MDPC_CLIENT: &[u8] = b"MDPC01";
const TIMEOUT: Duration = Duration::from_millis(2500);
const RETRIES: u32 = 3; // before we abandon

struct MdClient {
    broker: String,
    verbose: bool,
    /// `None` until connected, and again after an attempt got no reply.
    socket: Option<ReqSocket>,
}

impl MdClient {
    fn new(broker: &str, verbose: bool) -> Self {
        let broker = broker.to_owned();
        MdClient {
            broker,
            verbose,
            socket: None,
        }
    }

    /// One attempt, connecting first if needed.
    async fn attempt(&mut self, request: ZmqMessage) -> Option<Message> {
        if self.socket.is_none() {
            let mut socket = ReqSocket::new();
            socket.connect(&self.broker).await.ok()?;
            self.socket = Some(socket);
        }
        let socket = self.socket.as_mut()?;
        socket.send(request).await.ok()?;
        socket.recv().await.ok().map(Message::from)
    }

    /// Sends `body` to `service` and returns the reply body, or `None` after `RETRIES` attempts.
    async fn send(&mut self, service: &str, mut body: Message) -> Option<Message> {
        body.push_front(Bytes::copy_from_slice(service.as_bytes()));
        body.push_front(MDPC_CLIENT);
        if self.verbose {
            println!("I: send request to '{service}' service:\n{}", body.dump());
        }
        let request = ZmqMessage::try_from(body).ok()?;
        for attempt in 1..=RETRIES {
            if let Ok(Some(mut reply)) = timeout(TIMEOUT, self.attempt(request.clone())).await {
                if self.verbose {
                    println!("I: received reply:\n{}", reply.dump());
                }
                let header = reply.pop_front();
                let from = reply.pop_front();
                if header.as_deref() == Some(MDPC_CLIENT)
                    && from.as_deref() == Some(service.as_bytes())
                {
                    return Some(reply);
                }
                println!("E: malformed reply dropped");
            }
            // A REQ that missed its reply cannot send again, and zeromq (Rust) never
            // reconnects it by itself: the next attempt gets a fresh socket.
            self.socket = None;
            if attempt < RETRIES {
                println!("W: no reply, reconnecting...");
            }
        }
        println!("W: permanent error, abandoning");
        None
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "-v").collect();
    let verbose = std::env::args().any(|a| a == "-v");
    let broker = args.first().map_or("tcp://localhost:5555", |a| a.as_str());
    let requests: u64 = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let mut session = MdClient::new(broker, verbose);
    let mut count = 0;
    let run = async {
        while count < requests {
            let request = Message::from_frames(["Hello world"]);
            match session.send("echo", request.clone()).await {
                Some(reply) if reply == request => count += 1,
                _ => break, // no reply, or a wrong one
            }
        }
    };
    tokio::select! {
        () = run => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("{count} requests/replies processed");
    std::process::exit(if count == requests { 0 } else { 1 });
}
