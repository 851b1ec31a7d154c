//! Freelance client, model 3, the Guide's `flclient3.c` and `flcliapi.c` in Rust: read
//! `flcliapi` below first. The application's half sends commands over a channel to an agent
//! task, which pings every server (10/FLP), sends the request to the first live one, and
//! fails it when no server answered within `GLOBAL_TIMEOUT`. The hardened `src/agent.rs`,
//! `src/agent_loop.rs` and `src/bin/flclient3.rs` add a pure, unit-tested server table, a per-attempt timeout (so a hung
//! server is left before the request fails), one link per server with the socket monitor (a dead
//! server gets a fresh connection), request accounting and flags for every timing.
//!
//! Usage: `flclient3 [endpoint…]` (tcp://localhost:5555, 5556 and 5557): sends 10,000 name
//! resolution requests and prints the average round trip.

use std::process::ExitCode;
use tokio::time::Instant;

const REQUESTS: u32 = 10_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut endpoints: Vec<String> = std::env::args().skip(1).collect();
    if endpoints.is_empty() {
        endpoints = (5555..=5557)
            .map(|port| format!("tcp://localhost:{port}"))
            .collect();
    }
    let client = flcliapi::Client::new();
    for endpoint in &endpoints {
        client.connect(endpoint).await;
    }
    let start = Instant::now();
    for n in 1..=REQUESTS {
        if client.request(vec!["random name".into()]).await.is_none() {
            println!("E: name service not available, aborting");
            return ExitCode::FAILURE;
        }
        if n % 1000 == 0 {
            println!("I: {n} replies");
        }
    }
    let cost = start.elapsed().as_micros() / u128::from(REQUESTS);
    println!("Average round trip cost: {cost} usec");
    ExitCode::SUCCESS
}

mod flcliapi {
    //! The Freelance client API: a front half the application calls, and an agent task that
    //! talks to the servers over one ROUTER socket, addressing each by its endpoint.

    use bytes::Bytes;
    use std::time::Duration;
    use tokio::sync::{mpsc, oneshot};
    use tokio::time::{sleep, sleep_until, timeout, Instant};
    use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

    const GLOBAL_TIMEOUT: Duration = Duration::from_millis(3000); // no reply by then: give up
    const PING_INTERVAL: Duration = Duration::from_millis(2000); // ping servers this often
    const SERVER_TTL: Duration = Duration::from_millis(6000); // silent this long: dead
    const CONNECT_TIMEOUT: Duration = Duration::from_millis(100); // zeromq waits for the server

    /// What the front half asks of the agent.
    enum Command {
        Connect(String),
        Request(Vec<Bytes>, oneshot::Sender<Vec<Bytes>>),
    }

    /// The front half: what the application holds.
    pub struct Client {
        pipe: mpsc::UnboundedSender<Command>,
    }

    impl Client {
        /// Starts the agent.
        pub fn new() -> Client {
            let (pipe, commands) = mpsc::unbounded_channel();
            tokio::spawn(agent(commands));
            Client { pipe }
        }

        /// Adds a server. Waits 100 ms for the connection to come up, which isn't pretty, but
        /// saves sending every request to the first server at start-up.
        pub async fn connect(&self, endpoint: &str) {
            let _ = self.pipe.send(Command::Connect(endpoint.to_owned()));
            sleep(Duration::from_millis(100)).await;
        }

        /// Sends a request and waits for the reply body; `None` if no server answered in time.
        pub async fn request(&self, body: Vec<Bytes>) -> Option<Vec<Bytes>> {
            let (reply_to, reply) = oneshot::channel();
            self.pipe.send(Command::Request(body, reply_to)).ok()?;
            reply.await.ok()
        }
    }

    /// One server: alive while it answered within `SERVER_TTL`.
    struct Server {
        endpoint: String,
        ping_at: Instant,
        expires: Instant,
    }

    impl Server {
        /// A server just connected or heard from: alive for `SERVER_TTL`, pinged in
        /// `PING_INTERVAL`.
        fn new(endpoint: String) -> Server {
            let now = Instant::now();
            let (ping_at, expires) = (now + PING_INTERVAL, now + SERVER_TTL);
            Server {
                endpoint,
                ping_at,
                expires,
            }
        }
    }

    /// The request in progress.
    struct Request {
        sequence: Bytes,
        body: Vec<Bytes>,
        reply_to: oneshot::Sender<Vec<Bytes>>,
        expires: Instant,
    }

    async fn agent(mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut router = RouterSocket::new();
        let mut servers: Vec<Server> = Vec::new(); // in order of preference
        let mut sequence = 0u64; // number of requests ever sent
        let mut request: Option<Request> = None;
        loop {
            // Sleep until the next ping is due or the request expires.
            let pings = servers.iter().map(|s| s.ping_at);
            let tickless = pings.chain(request.as_ref().map(|r| r.expires)).min();
            let tickless = tickless.unwrap_or(Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                command = commands.recv() => match command {
                    None => return, // the application is gone
                    Some(Command::Connect(endpoint)) => {
                        println!("I: connecting to {endpoint}…");
                        let _ = timeout(CONNECT_TIMEOUT, router.connect(&endpoint)).await;
                        servers.push(Server::new(endpoint));
                    }
                    Some(Command::Request(body, reply_to)) => {
                        sequence += 1;
                        let expires = Instant::now() + GLOBAL_TIMEOUT;
                        let sequence = sequence.to_string().into();
                        request = Some(Request { sequence, body, reply_to, expires });
                    }
                },
                // From a server: [endpoint, "PONG"] or [endpoint, sequence, reply…].
                Ok(message) = router.recv() => {
                    let mut frames = message.into_vec();
                    let from = |s: &&mut Server| s.endpoint.as_bytes() == frames[0];
                    let Some(server) = servers.iter_mut().find(from) else {
                        continue; // not one of ours
                    };
                    *server = Server::new(server.endpoint.clone()); // alive: its timers restart
                    if request.as_ref().is_some_and(|r| frames.get(1) == Some(&r.sequence)) {
                        let done = request.take().expect("matched above");
                        let _ = done.reply_to.send(frames.split_off(2));
                    } // else a PONG, or a late reply to an older request
                }
                () = sleep_until(tickless) => {}
            }
            let now = Instant::now();
            // A request in progress goes (again) to the first live server, on every wake-up
            // as in the Guide: so one lost with its server is resent to the next.
            if let Some(r) = request.take() {
                if now >= r.expires {
                    continue; // expired: dropping `reply_to` tells the application
                }
                for server in servers.iter_mut().filter(|s| s.expires > now) {
                    let mut frames = vec![server.endpoint.clone().into(), r.sequence.clone()];
                    frames.extend(r.body.iter().cloned());
                    match router.send(message(frames)).await {
                        Ok(()) => break,
                        Err(_) => server.expires = now, // its connection is gone: dead
                    }
                }
                request = Some(r);
            }
            // Ping the servers that are due; a ROUTER never reconnects, so connect to dead ones
            // again (a restarted server comes back this way).
            for server in servers.iter_mut().filter(|s| now >= s.ping_at) {
                if now >= server.expires {
                    let _ = timeout(CONNECT_TIMEOUT, router.connect(&server.endpoint)).await;
                }
                let ping = vec![server.endpoint.clone().into(), Bytes::from("PING")];
                let _ = router.send(message(ping)).await;
                server.ping_at = now + PING_INTERVAL;
            }
        }
    }

    /// A message of these frames (never none: the server's endpoint comes first).
    fn message(frames: Vec<Bytes>) -> ZmqMessage {
        ZmqMessage::try_from(frames).expect("at least one frame")
    }
}
