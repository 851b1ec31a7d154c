//! The Majordomo client API (the Guide's mdcliapi), shared by the examples that ask services.
//!
//! `send(service, body)` wraps the body in the client's MDP frames and waits for the reply; with
//! none after `timeout` it reconnects on a fresh socket and sends again, `retries` attempts in
//! all, then gives up.

use bytes::Bytes;
use common::Message;
use std::time::Duration;
use tokio::time::timeout;
use zeromq::{ReqSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

const MDPC_CLIENT: &[u8] = b"MDPC01";
pub struct MdClient {
    broker: String,
    verbose: bool,
    /// How long one attempt waits for its reply (2500 ms).
    pub timeout: Duration,
    /// Attempts before we abandon (3).
    pub retries: u32,
    /// `None` until connected, and again after an attempt got no reply.
    socket: Option<ReqSocket>,
}

impl MdClient {
    pub fn new(broker: &str, verbose: bool) -> Self {
        let broker = broker.to_owned();
        let (timeout, retries) = (Duration::from_millis(2500), 3);
        MdClient {
            broker,
            verbose,
            timeout,
            retries,
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

    /// Sends `body` to `service` and returns the reply body, or `None` after `retries` attempts.
    pub async fn send(&mut self, service: &str, mut body: Message) -> Option<Message> {
        body.push_front(Bytes::copy_from_slice(service.as_bytes()));
        body.push_front(MDPC_CLIENT);
        if self.verbose {
            println!("I: send request to '{service}' service:\n{}", body.dump());
        }
        let request = ZmqMessage::try_from(body).ok()?;
        for attempt in 1..=self.retries {
            if let Ok(Some(mut reply)) = timeout(self.timeout, self.attempt(request.clone())).await
            {
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
            if attempt < self.retries {
                println!("W: no reply, reconnecting...");
            }
        }
        println!("W: permanent error, abandoning");
        None
    }
}
