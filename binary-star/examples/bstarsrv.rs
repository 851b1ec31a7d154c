//! A Binary Star server, Guide-sized (the Guide's bstarsrv): read this first.
//!
//! Two servers, primary and backup, publish their state to each other every `HEARTBEAT`. The
//! finite-state machine `Bstar::handle` decides who serves clients: only the ACTIVE one answers
//! (an echo service); the PASSIVE one takes over when the peer has been silent for two heartbeats
//! *and* a client asks it (the client's vote), so a lost state link alone never makes two actives.
//!
//! Usage: `bstarsrv -p|-b [frontend state-pub state-sub]`; defaults are the Guide's ports
//! (primary `tcp://*:5001`, `tcp://*:5003`, `tcp://localhost:5004`; backup 5002, 5004, 5003).

use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use zeromq::{PubSocket, RouterSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

const HEARTBEAT: Duration = Duration::from_millis(1000);

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Primary = 1, // waiting for the peer
    Backup = 2,  // waiting for the peer
    Active = 3,  // serving clients
    Passive = 4, // not serving clients
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Event {
    PeerPrimary = 1,
    PeerBackup = 2,
    PeerActive = 3,
    PeerPassive = 4,
    ClientRequest = 5,
}

impl Event {
    /// A peer's state message starts with its state as one digit (what may follow, such as the
    /// hardened server's `:<epoch>`, is not for us); as an event it is "PEER_<state>".
    fn from_peer(state: &[u8]) -> Option<Event> {
        match state.first() {
            Some(b'1') => Some(Event::PeerPrimary),
            Some(b'2') => Some(Event::PeerBackup),
            Some(b'3') => Some(Event::PeerActive),
            Some(b'4') => Some(Event::PeerPassive),
            _ => None,
        }
    }
}

struct Bstar {
    state: State,
    /// When the peer counts as gone unless it speaks again.
    peer_expiry: Instant,
}

impl Bstar {
    /// Applies `event`. `Err` rejects a client request, or is fatal for a peer event.
    fn handle(&mut self, event: Event, now: Instant) -> Result<(), &'static str> {
        use {Event::*, State::*};
        let peer_gone = now >= self.peer_expiry;
        let (next, note) = match (self.state, event) {
            (Primary, PeerBackup) => (Active, "connected to backup (passive), ready active"),
            (Primary, PeerActive) => (Passive, "connected to backup (active), ready passive"),
            (Primary, ClientRequest) if peer_gone => (Active, "request from client, ready active"),
            (Backup, PeerActive) => (Passive, "connected to primary (active), ready passive"),
            (Primary | Backup, ClientRequest) => return Err("not ready"),
            (Active, PeerActive) => return Err("fatal error - dual actives, aborting"),
            (Passive, PeerPrimary) => (Active, "primary (passive) is restarting, ready active"),
            (Passive, PeerBackup) => (Active, "backup (passive) is restarting, ready active"),
            (Passive, PeerPassive) => return Err("fatal error - dual passives, aborting"),
            (Passive, ClientRequest) if peer_gone => (Active, "failover successful, ready active"),
            (Passive, ClientRequest) => return Err("peer alive"),
            _ => return Ok(()),
        };
        println!("I: {note}");
        self.state = next;
        Ok(())
    }
}

/// Forwards the peer's state messages. zeromq (Rust) waits in `connect` until the peer is up,
/// so this runs beside the main loop; once connected, SUB reconnects by itself.
async fn listen_to_peer(endpoint: String, states: mpsc::Sender<ZmqMessage>) {
    let mut sub = SubSocket::new();
    if sub.subscribe("").await.is_err() {
        return;
    }
    while sub.connect(&endpoint).await.is_err() {
        tokio::time::sleep(HEARTBEAT).await;
    }
    while let Ok(state) = sub.recv().await {
        if states.send(state).await.is_err() {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), zeromq::ZmqError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (state, defaults) = match args.first().map(String::as_str) {
        Some("-p") => {
            println!("I: Primary active, waiting for backup (passive)");
            (
                State::Primary,
                ["tcp://*:5001", "tcp://*:5003", "tcp://localhost:5004"],
            )
        }
        Some("-b") => {
            println!("I: Backup passive, waiting for primary (active)");
            (
                State::Backup,
                ["tcp://*:5002", "tcp://*:5004", "tcp://localhost:5003"],
            )
        }
        _ => {
            println!("Usage: bstarsrv {{ -p | -b }} [frontend state-pub state-sub]");
            return Ok(());
        }
    };
    // zeromq (Rust) does not bind `*`: it means every interface, 0.0.0.0.
    let endpoint = |i: usize| {
        args.get(i + 1)
            .map_or(defaults[i], |a| a)
            .replace("://*:", "://0.0.0.0:")
    };
    let mut frontend = RouterSocket::new();
    frontend.bind(&endpoint(0)).await?;
    let mut statepub = PubSocket::new();
    statepub.bind(&endpoint(1)).await?;
    let (states_in, mut peer_states) = mpsc::channel(16);
    tokio::spawn(listen_to_peer(endpoint(2), states_in));

    let mut fsm = Bstar {
        state,
        peer_expiry: Instant::now() + 2 * HEARTBEAT,
    };
    let mut send_state_at = Instant::now() + HEARTBEAT;
    loop {
        tokio::select! {
            request = frontend.recv() => {
                // A request is echoed only if the FSM accepts it; otherwise it is dropped.
                let request = request?;
                if fsm.handle(Event::ClientRequest, Instant::now()).is_ok() {
                    if let Err(e) = frontend.send(request).await {
                        println!("W: cannot reply to client: {e}"); // it left meanwhile
                    }
                }
            }
            Some(state) = peer_states.recv() => {
                let Some(event) = state.get(0).and_then(|s| Event::from_peer(s)) else {
                    println!("E: bad state message from peer");
                    continue;
                };
                if let Err(fatal) = fsm.handle(event, Instant::now()) {
                    println!("E: {fatal}");
                    break;
                }
                fsm.peer_expiry = Instant::now() + 2 * HEARTBEAT;
            }
            () = sleep_until(send_state_at) => {
                statepub.send(format!("{}", fsm.state as u8).into()).await?;
                send_state_at = Instant::now() + HEARTBEAT;
            }
            _ = tokio::signal::ctrl_c() => {
                println!("W: interrupted");
                break;
            }
        }
    }
    Ok(())
}
