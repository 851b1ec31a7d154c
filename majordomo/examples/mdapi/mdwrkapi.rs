//! The Majordomo worker API (the Guide's mdwrkapi), shared by the examples that run workers.
//!
//! `recv(reply)` sends the previous reply, then waits for the next request, heartbeating the
//! broker meanwhile. A broker silent for `HEARTBEAT_LIVENESS` intervals, or one that sends
//! DISCONNECT, gets a fresh socket and a new READY.

use bytes::Bytes;
use common::Message;
use std::time::Duration;
use tokio::time::{timeout, Instant};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

const MDPW_WORKER: &[u8] = b"MDPW01";
const READY: &[u8] = b"\x01";
const REQUEST: &[u8] = b"\x02";
const REPLY: &[u8] = b"\x03";
const HEARTBEAT: &[u8] = b"\x04";
const DISCONNECT: &[u8] = b"\x05";

const HEARTBEAT_LIVENESS: u32 = 3; // 3-5 is reasonable
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(2500);
const RECONNECT: Duration = Duration::from_millis(2500);

pub struct MdWorker {
    broker: String,
    service: String,
    verbose: bool,
    socket: DealerSocket,
    liveness: u32,
    heartbeat_at: Instant,
    /// The envelope of the request being worked on: its reply goes back to this client.
    reply_to: Option<Bytes>,
}

impl MdWorker {
    pub async fn new(broker: &str, service: &str, verbose: bool) -> Self {
        let mut worker = MdWorker {
            broker: broker.to_owned(),
            service: service.to_owned(),
            verbose,
            socket: DealerSocket::new(),
            liveness: HEARTBEAT_LIVENESS,
            heartbeat_at: Instant::now(),
            reply_to: None,
        };
        worker.connect_to_broker().await;
        worker
    }

    /// A fresh socket (so a fresh identity) and READY. zeromq (Rust) waits in `connect` until the
    /// broker is up and a DEALER never reconnects by itself, hence the loop and the new socket.
    async fn connect_to_broker(&mut self) {
        loop {
            self.socket = DealerSocket::new();
            match timeout(HEARTBEAT_INTERVAL, self.socket.connect(&self.broker)).await {
                Ok(Ok(())) => break,
                _ => println!("W: cannot reach broker at {}, retrying", self.broker),
            }
            tokio::time::sleep(RECONNECT).await;
        }
        let service = Message::from_frames([self.service.clone()]);
        self.send_to_broker(READY, service).await;
        println!("I: ({}) worker ready on {}", self.service, self.broker);
        self.liveness = HEARTBEAT_LIVENESS;
        self.heartbeat_at = Instant::now() + HEARTBEAT_INTERVAL;
    }

    /// `["", "MDPW01", command, body…]`
    async fn send_to_broker(&mut self, command: &'static [u8], mut msg: Message) {
        msg.push_front(command);
        msg.push_front(MDPW_WORKER);
        msg.push_front(Bytes::new());
        if self.verbose {
            println!("I: sending {:?} to broker\n{}", command[0], msg.dump());
        }
        if let Ok(msg) = ZmqMessage::try_from(msg) {
            if let Err(e) = self.socket.send(msg).await {
                println!("W: cannot send to broker: {e}");
            }
        }
    }

    /// Sends `reply` (if any) for the last request, then returns the next request's body.
    pub async fn recv(&mut self, reply: Option<Message>) -> Message {
        if let (Some(mut reply), Some(client)) = (reply, self.reply_to.take()) {
            reply.wrap(client);
            self.send_to_broker(REPLY, reply).await;
        }
        loop {
            let wait = self.heartbeat_at.saturating_duration_since(Instant::now());
            match timeout(wait, self.socket.recv()).await {
                Ok(Ok(msg)) => {
                    let mut msg = Message::from(msg);
                    if self.verbose {
                        println!("I: received message from broker:\n{}", msg.dump());
                    }
                    self.liveness = HEARTBEAT_LIVENESS;
                    let (Some(_), Some(header), Some(command)) =
                        (msg.pop_front(), msg.pop_front(), msg.pop_front())
                    else {
                        println!("E: invalid message from broker");
                        continue;
                    };
                    match &command[..] {
                        _ if header != MDPW_WORKER => println!("E: not an MDP worker message"),
                        REQUEST => match msg.unwrap_address() {
                            Some(client) => {
                                self.reply_to = Some(client);
                                return msg;
                            }
                            None => println!("E: REQUEST without a client address"),
                        },
                        HEARTBEAT => {}
                        DISCONNECT => self.connect_to_broker().await,
                        _ => println!("E: invalid input message:\n{}", msg.dump()),
                    }
                }
                Ok(Err(_)) | Err(_) => {
                    self.liveness -= 1;
                    if self.liveness == 0 {
                        println!("W: disconnected from broker - retrying...");
                        tokio::time::sleep(RECONNECT).await;
                        self.connect_to_broker().await;
                    }
                }
            }
            if Instant::now() >= self.heartbeat_at {
                self.send_to_broker(HEARTBEAT, Message::new()).await;
                self.heartbeat_at = Instant::now() + HEARTBEAT_INTERVAL;
            }
        }
    }
}
