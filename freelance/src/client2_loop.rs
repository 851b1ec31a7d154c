//! Model 2 client: one DEALER connected to every server, each request fired at all of them.
//!
//! Decisions (sequence numbers, copies, which reply wins, the deadline) live in
//! [`crate::client2`]; this shell moves messages. Two things the `zeromq` crate makes it do
//! that libzmq would do by itself:
//! * `connect()` waits until the server is up, and a DEALER cannot connect while it is waiting
//!   for replies. So a small *probe* task per missing server connects a throwaway DEALER until
//!   the server answers the handshake; only then does the client connect its own DEALER
//!   (which is then quick). A server that is down never stalls a request.
//! * The DEALER never reconnects. The socket monitor reports a dropped server at once; the
//!   client stops counting it (fewer copies) and probes it until it is back.
//!
//! # Log lines
//! * `I: connecting to <endpoint>` at start, `I: connected to <endpoint>` once it is up
//! * `W: server <endpoint> disconnected` when its connection drops
//! * `E: malformed reply: <why>`

use crate::client2::{Event, Shotgun};
use crate::driver::{Failed, ModelClient, Reply};
use bytes::Bytes;
use common::contract::{self, now, Core};
use common::sock;
use common::Message;
use futures::channel::mpsc as fmpsc;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use zeromq::{DealerSocket, Socket, SocketEvent, SocketRecv, SocketSend, ZmqMessage};

/// Pause between two connect attempts of a probe whose attempt ended in an error.
const PROBE_PAUSE: Duration = Duration::from_millis(100);

/// Model 2 settings.
#[derive(Debug, Clone)]
pub struct Model2Config {
    /// A request fails when no server answered within this (Guide: 2500 ms).
    pub timeout: Duration,
    /// Bounds one connect attempt, and how long the client waits for servers at start.
    pub connect_timeout: Duration,
}

impl Default for Model2Config {
    fn default() -> Self {
        Self {
            timeout: crate::client2::GLOBAL_TIMEOUT,
            connect_timeout: Duration::from_millis(1000),
        }
    }
}

/// A model-2 client.
pub struct Model2Client {
    endpoints: Vec<String>,
    config: Model2Config,
    socket: DealerSocket,
    monitor: fmpsc::Receiver<SocketEvent>,
    /// Routing id the DEALER gave each connection → endpoint index.
    peers: HashMap<Bytes, usize>,
    gun: Shotgun,
    /// The request's outcome, when the core reported it while the shell handled something
    /// else (a lost server).
    outcome: Option<Event>,
    probing: Vec<bool>,
    up_tx: mpsc::Sender<usize>,
    up_rx: mpsc::Receiver<usize>,
}

impl Model2Client {
    /// Starts connecting to every server; returns once all are connected or the connect
    /// timeout has passed (servers still down join later, when they come up).
    pub async fn connect(endpoints: Vec<String>, config: Model2Config) -> Self {
        let mut socket = DealerSocket::with_options(sock::options(config.connect_timeout, None));
        let monitor = socket.monitor();
        let (up_tx, up_rx) = mpsc::channel(endpoints.len().max(1));
        let mut client = Self {
            gun: Shotgun::new(endpoints.len(), config.timeout),
            outcome: None,
            probing: vec![false; endpoints.len()],
            endpoints,
            config,
            socket,
            monitor,
            peers: HashMap::new(),
            up_tx,
            up_rx,
        };
        for index in 0..client.endpoints.len() {
            tracing::info!("connecting to {}", client.endpoints[index]);
            client.probe(index);
        }
        let until = contract::saturating_add(now(), client.config.connect_timeout).into();
        while client.gun.live() < client.endpoints.len() {
            match tokio::time::timeout_at(until, client.up_rx.recv()).await {
                Ok(Some(index)) => {
                    client.join(index).await;
                }
                _ => break,
            }
        }
        client
    }

    /// Number of servers connected now.
    pub fn connected(&self) -> usize {
        self.gun.live()
    }

    /// Fires `body` at every connected server and returns the first matching reply.
    pub async fn send(&mut self, body: &Message) -> Result<Reply, Failed> {
        self.absorb();
        self.gun.handle_request(body, now());
        // The first shot, and one more each time a server joins during the request.
        let mut attempts = 0;
        loop {
            while let Some(shot) = self.gun.poll_transmit() {
                attempts += 1;
                for _ in 0..shot.copies {
                    self.fire(shot.message.clone()).await;
                }
            }
            match self.take_events() {
                Some(Event::Answered(reply)) => {
                    return Ok(Reply {
                        server: None,
                        body: reply.body,
                        attempts,
                    })
                }
                Some(Event::Failed { sequence }) => {
                    return Err(Failed {
                        attempts,
                        reason: format!(
                            "no reply to request {sequence} within {} ms",
                            self.config.timeout.as_millis()
                        ),
                    })
                }
                Some(Event::ServerLost { .. } | Event::Malformed(_)) | None => {}
            }
            tokio::select! {
                received = self.socket.recv() => match received {
                    // A duplicate or a stale reply changes nothing.
                    Ok(message) => self.gun.handle_reply(Message::from(message), now()),
                    Err(e) => tracing::debug!("receive: {e}"),
                },
                Some(event) = self.monitor.next() => self.on_event(event),
                Some(index) = self.up_rx.recv() => self.join(index).await,
                () = contract::sleep_until(self.gun.poll_timeout()) => {
                    self.gun.handle_timeout(now());
                }
            }
        }
    }

    /// Takes in what happened between requests: dropped servers, servers back up.
    fn absorb(&mut self) {
        while let Ok(event) = self.monitor.try_recv() {
            self.on_event(event);
        }
        // Servers that came back are joined in `send`'s loop (connect needs an await).
    }

    async fn fire(&mut self, message: Message) {
        let Ok(message) = ZmqMessage::try_from(message) else {
            return;
        };
        // Round-robin: each copy goes to the next connected server.
        if let Err(e) = self.socket.send(message).await {
            tracing::debug!("copy not sent: {e}");
        }
    }

    fn on_event(&mut self, event: SocketEvent) {
        if let SocketEvent::Disconnected(peer) = event {
            if let Some(index) = self.peers.remove(&Bytes::from(peer)) {
                self.gun.handle_server_lost(index, now());
                // Logged and probed at once, in the order the monitor reported.
                if let Some(outcome) = self.take_events() {
                    self.outcome = Some(outcome);
                }
            }
        }
    }

    /// Connects the DEALER to a server a probe found up (the request in progress, if any, is
    /// then fired again).
    async fn join(&mut self, index: usize) {
        self.probing[index] = false;
        let endpoint = self.endpoints[index].clone();
        if let Err(e) =
            sock::connect(&mut self.socket, &endpoint, self.config.connect_timeout).await
        {
            tracing::debug!("connect to {endpoint}: {e}");
            self.probe(index);
            return;
        }
        // connect() posts its Connected event before returning.
        while let Ok(event) = self.monitor.try_recv() {
            match event {
                SocketEvent::Connected(_, peer) => {
                    self.peers.insert(Bytes::from(peer), index);
                }
                other => self.on_event(other),
            }
        }
        tracing::info!("connected to {endpoint}");
        self.gun.handle_connected(index, now());
    }

    /// Logs what the core reported and probes lost servers, until the request's outcome
    /// (answered or failed), which it returns; an outcome taken earlier comes first.
    fn take_events(&mut self) -> Option<Event> {
        if let Some(outcome) = self.outcome.take() {
            return Some(outcome);
        }
        while let Some(event) = self.gun.poll_event() {
            match event {
                Event::ServerLost { index } => {
                    tracing::warn!("server {} disconnected", self.endpoints[index]);
                    self.probe(index);
                }
                Event::Malformed(e) => tracing::error!("malformed reply: {e}"),
                outcome @ (Event::Answered(_) | Event::Failed { .. }) => return Some(outcome),
            }
        }
        None
    }

    /// Starts a probe task for server `index` unless one is running.
    fn probe(&mut self, index: usize) {
        if std::mem::replace(&mut self.probing[index], true) {
            return;
        }
        let endpoint = self.endpoints[index].clone();
        let timeout = self.config.connect_timeout;
        let up = self.up_tx.clone();
        tokio::spawn(async move {
            loop {
                let mut socket = DealerSocket::with_options(sock::options(timeout, None));
                match sock::connect(&mut socket, &endpoint, timeout).await {
                    Ok(()) => {
                        drop(socket);
                        let _ = up.send(index).await;
                        return;
                    }
                    Err(e) => tracing::debug!("probe {endpoint}: {e}"),
                }
                tokio::time::sleep(PROBE_PAUSE).await;
                if up.is_closed() {
                    return;
                }
            }
        });
    }
}

impl ModelClient for Model2Client {
    async fn request(&mut self, _number: u64) -> Result<Reply, Failed> {
        self.send(&Message::new().with("random name")).await
    }
}
