//! The Majordomo broker (7/MDP with 8/MMI's `mmi.service`), Guide-sized: read this first.
//!
//! One ROUTER socket for clients and workers. Each service has a queue of requests and a queue
//! of idle workers; `dispatch` pairs them. Workers that stay silent for `HEARTBEAT_EXPIRY` are
//! purged. The hardened `mdbroker` binary speaks the same protocol and adds what the README's
//! "Reading the patterns" lists (fair queues, bounded memory, request ids, guard, …).
//!
//! Usage: `mdbroker [endpoint] [-v]` (default `tcp://*:5555`).

use bytes::Bytes;
use common::Message;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;
use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

const MDPC_CLIENT: &[u8] = b"MDPC01";
const MDPW_WORKER: &[u8] = b"MDPW01";
const READY: &[u8] = b"\x01";
const REQUEST: &[u8] = b"\x02";
const REPLY: &[u8] = b"\x03";
const HEARTBEAT: &[u8] = b"\x04";
const DISCONNECT: &[u8] = b"\x05";

const HEARTBEAT_LIVENESS: u32 = 3; // 3-5 is reasonable
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(2500);
const HEARTBEAT_EXPIRY: Duration = Duration::from_millis(2500 * HEARTBEAT_LIVENESS as u64);
/// A request nobody served for this long is dropped: its client gave up long ago.
const REQUEST_EXPIRY: Duration = Duration::from_secs(30);

/// One service: requests waiting for a worker, and workers waiting for a request.
#[derive(Default)]
struct Service {
    requests: VecDeque<(Instant, Message)>,
    waiting: VecDeque<Bytes>,
    workers: usize,
}

/// One worker, idle or busy.
struct Worker {
    service: Option<String>,
    expiry: Instant,
}

struct Broker {
    socket: RouterSocket,
    verbose: bool,
    services: HashMap<String, Service>,
    workers: HashMap<Bytes, Worker>,
}

impl Broker {
    /// Routes one message from the socket: `[sender, "", header, …]`.
    async fn handle(&mut self, mut msg: Message) {
        if self.verbose {
            println!("I: received message:\n{}", msg.dump());
        }
        let (Some(sender), Some(_), Some(header)) =
            (msg.pop_front(), msg.pop_front(), msg.pop_front())
        else {
            return println!("E: invalid message:\n{}", msg.dump());
        };
        match &header[..] {
            MDPC_CLIENT => self.client_msg(sender, msg).await,
            MDPW_WORKER => self.worker_msg(sender, msg).await,
            _ => println!("E: invalid message:\n{}", msg.dump()),
        }
    }

    /// A worker command. Anything but READY from an unknown worker gets a DISCONNECT.
    async fn worker_msg(&mut self, sender: Bytes, mut msg: Message) {
        let command = msg.pop_front().unwrap_or_default();
        let known = self.workers.contains_key(&sender);
        let expiry = Instant::now() + HEARTBEAT_EXPIRY;
        let worker = self.workers.entry(sender.clone()).or_insert(Worker {
            service: None,
            expiry,
        });
        worker.expiry = expiry;
        let service = worker.service.clone();
        match &command[..] {
            READY if known => self.delete_worker(&sender, true).await, // second READY
            READY => {
                let name = text(&msg.pop_front().unwrap_or_default());
                // The service name, not the sender, decides what is reserved (the C broker's slip).
                if name.is_empty() || name.starts_with("mmi.") {
                    return self.delete_worker(&sender, true).await;
                }
                println!("I: worker {} ready for service {name}", hex(&sender));
                if let Some(worker) = self.workers.get_mut(&sender) {
                    worker.service = Some(name.clone());
                }
                self.services.entry(name.clone()).or_default().workers += 1;
                self.worker_waiting(sender, &name).await;
            }
            REPLY if known => {
                let (Some(name), Some(client)) = (service, msg.unwrap_address()) else {
                    return println!("E: invalid REPLY from worker {}", hex(&sender));
                };
                msg.push_front(name.clone());
                msg.push_front(MDPC_CLIENT);
                msg.wrap(client);
                self.send(msg).await;
                self.worker_waiting(sender, &name).await;
            }
            HEARTBEAT if known => {}
            DISCONNECT => self.delete_worker(&sender, false).await,
            REPLY | HEARTBEAT => self.delete_worker(&sender, true).await,
            _ => println!("E: invalid worker command:\n{}", msg.dump()),
        }
    }

    /// A client request `[service, body…]`: answered here for `mmi.*`, else queued.
    async fn client_msg(&mut self, sender: Bytes, mut msg: Message) {
        let Some(service) = msg.pop_front() else {
            return println!("E: client request without a service name");
        };
        let name = text(&service);
        if name.starts_with("mmi.") {
            let code = match name.as_str() {
                "mmi.service" => {
                    let asked = text(msg.first().unwrap_or(&Bytes::new()));
                    let found = self.services.get(&asked).is_some_and(|s| s.workers > 0);
                    if found {
                        "200"
                    } else {
                        "404"
                    }
                }
                _ => "501",
            };
            let mut reply = Message::from_frames([MDPC_CLIENT.into(), service, Bytes::from(code)]);
            reply.wrap(sender);
            return self.send(reply).await;
        }
        msg.wrap(sender);
        let queue = self.services.entry(name.clone()).or_default();
        queue.requests.push_back((Instant::now(), msg));
        self.dispatch(&name).await;
    }

    /// Hands queued requests of `name` to its idle workers, oldest first on both sides.
    async fn dispatch(&mut self, name: &str) {
        let Some(service) = self.services.get_mut(name) else {
            return;
        };
        let mut jobs = Vec::new();
        while !service.waiting.is_empty() && !service.requests.is_empty() {
            let worker = service.waiting.pop_front().expect("not empty");
            let (_, request) = service.requests.pop_front().expect("not empty");
            jobs.push((worker, request));
        }
        for (worker, request) in jobs {
            self.send_to_worker(&worker, REQUEST, request).await;
        }
    }

    /// The worker is idle again: it waits for the next request of its service.
    async fn worker_waiting(&mut self, identity: Bytes, name: &str) {
        if let Some(service) = self.services.get_mut(name) {
            service.waiting.push_back(identity);
        }
        self.dispatch(name).await;
    }

    /// Forgets a worker, telling it first when `disconnect` (it then reconnects and re-registers).
    async fn delete_worker(&mut self, identity: &Bytes, disconnect: bool) {
        if disconnect {
            self.send_to_worker(identity, DISCONNECT, Message::new())
                .await;
        }
        let Some(worker) = self.workers.remove(identity) else {
            return;
        };
        if let Some(service) = worker.service.and_then(|name| self.services.get_mut(&name)) {
            service.waiting.retain(|w| w != identity);
            service.workers -= 1;
        }
    }

    /// Purges silent workers and requests nobody served; heartbeats the idle workers.
    async fn purge_and_heartbeat(&mut self) {
        let now = Instant::now();
        let expired: Vec<Bytes> = self
            .workers
            .iter()
            .filter(|(_, w)| w.expiry < now)
            .map(|(id, _)| id.clone())
            .collect();
        for identity in expired {
            if self.verbose {
                println!("I: deleting expired worker: {}", hex(&identity));
            }
            self.delete_worker(&identity, false).await;
        }
        let mut idle = Vec::new();
        for service in self.services.values_mut() {
            service
                .requests
                .retain(|(queued, _)| now.duration_since(*queued) < REQUEST_EXPIRY);
            idle.extend(service.waiting.iter().cloned());
        }
        for identity in idle {
            self.send_to_worker(&identity, HEARTBEAT, Message::new())
                .await;
        }
    }

    /// `[identity, "", "MDPW01", command, body…]`
    async fn send_to_worker(&mut self, identity: &Bytes, command: &'static [u8], mut msg: Message) {
        msg.push_front(command);
        msg.push_front(MDPW_WORKER);
        msg.wrap(identity.clone());
        if self.verbose {
            println!("I: sending {:?} to worker\n{}", command[0], msg.dump());
        }
        self.send(msg).await;
    }

    /// A send fails only for a peer already gone: its request is lost and its client retries.
    async fn send(&mut self, msg: Message) {
        if let Ok(msg) = ZmqMessage::try_from(msg) {
            if let Err(e) = self.socket.send(msg).await {
                println!("W: cannot send: {e}");
            }
        }
    }
}

fn text(frame: &Bytes) -> String {
    String::from_utf8_lossy(frame).into_owned()
}

fn hex(identity: &[u8]) -> String {
    identity.iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), zeromq::ZmqError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let endpoint = args
        .iter()
        .find(|a| *a != "-v")
        .map_or("tcp://*:5555", |a| a.as_str());
    let mut broker = Broker {
        socket: RouterSocket::new(),
        verbose,
        services: HashMap::new(),
        workers: HashMap::new(),
    };
    // zeromq (Rust) does not bind `*`: it means every interface, 0.0.0.0.
    broker
        .socket
        .bind(&endpoint.replace("://*:", "://0.0.0.0:"))
        .await?;
    println!("I: MDP broker/0.2.0 is active at {endpoint}");
    let mut heartbeat_at = Instant::now() + HEARTBEAT_INTERVAL;
    loop {
        tokio::select! {
            msg = broker.socket.recv() => broker.handle(msg?.into()).await,
            () = tokio::time::sleep_until(heartbeat_at) => {
                broker.purge_and_heartbeat().await;
                heartbeat_at = Instant::now() + HEARTBEAT_INTERVAL;
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!("W: interrupted");
    Ok(())
}
