//! Model 3's brain: the server table and its timers, with no sockets and no clock.
//!
//! It follows [`common::contract::Core`]. The agent task feeds it what happened
//! (`handle_connect`, `handle_link_up`, `handle_link_lost`, `handle_message` for a server's
//! message, `handle_request` from the application) and `handle_timeout` with the current time,
//! then drains `poll_transmit` (messages to send, links to replace) and `poll_event` (state
//! changes to log, the outcome of the request); `poll_timeout` tells it how long it may sleep.
//!
//! # Rules
//! * Every server is pinged every `ping_interval` (and at once when its connection comes up).
//! * Any well-formed message from a server keeps it alive for `server_ttl`; a server that was
//!   not alive becomes alive on it (its first PONG).
//! * A request goes to the first live server in connect order (so a restarted primary is used
//!   again as soon as it answers a PING) and fails when `global_timeout` passes without a reply.
//! * **The fix over the reference:** a server that does not answer a request within
//!   `attempt_timeout`, or whose connection drops, counts as dead at once and the request moves
//!   to the next live server. The reference waited for the server's TTL (6 s), longer than the
//!   request's global timeout (3 s), so it gave up while other servers were alive.
//! * **A dead server gets a fresh link.** When a live server is declared dead for silence or
//!   a missed request, the table asks for [`Transmit::Relink`]: the agent drops that server's
//!   socket and connects a new one. A silent network partition is never reported, so the old
//!   connection would carry our PINGs into TCP's retransmission back-off (seconds to minutes
//!   after a heal); a fresh connect gets through as soon as the network does, and the table
//!   pings at once when it is up. While the server stays dead and its link is up but silent,
//!   the relink is repeated every `server_ttl`. (A dropped connection needs no relink: the link
//!   starts over by itself.)

use crate::protocol::{flp_ping, flp_request, FlpReply, ProtocolError};
use common::contract::{self, Core, Outbox};
use common::Message;
use std::fmt;
use std::time::{Duration, Instant};

/// Guide (flcliapi): give up on a request after this long.
pub const GLOBAL_TIMEOUT: Duration = Duration::from_millis(3000);
/// Guide (flcliapi): ping every server this often.
pub const PING_INTERVAL: Duration = Duration::from_millis(2000);
/// Guide (flcliapi): a server silent this long is dead (three missed pings).
pub const SERVER_TTL: Duration = Duration::from_millis(6000);
/// Ours: one server gets this long to answer a request before it counts as dead and the
/// request moves on; a third of the global timeout, so three servers can be tried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The timers of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often each server is pinged.
    pub ping_interval: Duration,
    /// How long a silent server stays alive.
    pub server_ttl: Duration,
    /// How long a request may take in all, over every server tried.
    pub global_timeout: Duration,
    /// How long one server gets to answer a request.
    pub attempt_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            ping_interval: PING_INTERVAL,
            server_ttl: SERVER_TTL,
            global_timeout: GLOBAL_TIMEOUT,
            attempt_timeout: ATTEMPT_TIMEOUT,
        }
    }
}

/// What the table believes about one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Never heard from yet.
    Unknown,
    /// Answered within its TTL; requests may go to it.
    Alive,
    /// Silent, struck by a request timeout, or disconnected; back on its next message.
    Dead,
}

/// Why a server was declared dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadReason {
    /// Nothing heard within the server TTL.
    Silent(Duration),
    /// A request sent to it got no answer within the attempt timeout (a strike).
    NoReply {
        /// The request that went unanswered.
        sequence: u64,
        /// The attempt timeout.
        after: Duration,
    },
    /// Its connection dropped (the process died or closed its socket).
    Disconnected,
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silent(ttl) => write!(f, "silent for {} ms", ttl.as_millis()),
            Self::NoReply { sequence, after } => write!(
                f,
                "no reply to request {sequence} within {} ms",
                after.as_millis()
            ),
            Self::Disconnected => f.write_str("connection lost"),
        }
    }
}

/// A request that got its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// The request number.
    pub sequence: u64,
    /// The endpoint of the server that answered.
    pub server: String,
    /// The reply frames after the control frame.
    pub body: Message,
    /// Servers the request was sent to (1 if the first one answered).
    pub attempts: u32,
}

/// A request no server answered within the global timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request {sequence} FAILED: no server answered within {} ms ({attempts} attempts)", waited.as_millis())]
pub struct Failure {
    /// The request number.
    pub sequence: u64,
    /// Servers the request was sent to (0 if none was alive).
    pub attempts: u32,
    /// The global timeout that ran out.
    pub waited: Duration,
}

/// Something the agent must send, or a link it must replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send `message` to the server at `server` (the link adds the routing id).
    Send {
        /// The server's endpoint.
        server: String,
        /// The frames, without routing id.
        message: Message,
    },
    /// Drop the connection to this dead server and connect a fresh one.
    Relink {
        /// The server's endpoint.
        server: String,
    },
}

/// Something the agent must log, or hand to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A server was added: the agent opens its link.
    Added {
        /// The server's endpoint.
        server: String,
    },
    /// A server answered after being unknown or dead.
    Alive {
        /// The server's endpoint.
        server: String,
    },
    /// A live server is now considered dead.
    Dead {
        /// The server's endpoint.
        server: String,
        /// Why.
        reason: DeadReason,
    },
    /// The request in progress was sent again, to another (or a revived) server.
    Failover {
        /// The request number.
        sequence: u64,
        /// The server that did not answer.
        from: String,
        /// The server it goes to now.
        to: String,
    },
    /// The request in progress got its reply.
    Answered(ServerReply),
    /// The request in progress failed.
    Failed(Failure),
    /// A request was accepted as number `sequence` (it is now the request in progress).
    Started {
        /// The request number.
        sequence: u64,
    },
    /// A request arrived while another was in progress: refused (one at a time).
    Busy,
    /// Input from or about `server` the table cannot take (not FLP, or a server never added):
    /// dropped, it changes nothing.
    Malformed {
        /// The server's endpoint.
        server: String,
        /// Why.
        error: TableError,
    },
}

/// Input the table cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The endpoint was never added.
    #[error("unknown server {0}")]
    UnknownServer(String),
    /// A server sent something that is not FLP.
    #[error(transparent)]
    Frame(#[from] ProtocolError),
    /// The API allows one request at a time.
    #[error("a request is already in progress")]
    Busy,
}

#[derive(Debug)]
struct Server {
    endpoint: String,
    state: ServerState,
    ping_at: Instant,
    expires: Instant,
    /// While dead: when to ask for another fresh link if nothing was heard.
    relink_at: Option<Instant>,
}

#[derive(Debug)]
struct Attempt {
    server: usize,
    deadline: Instant,
}

#[derive(Debug)]
struct Pending {
    sequence: u64,
    body: Message,
    deadline: Instant,
    attempt: Option<Attempt>,
    attempts: u32,
    last_server: Option<usize>,
}

/// The servers a model-3 client knows, their liveness, and the request in progress.
#[derive(Debug)]
pub struct ServerTable {
    timing: Timing,
    servers: Vec<Server>,
    sequence: u64,
    pending: Option<Pending>,
    outbox: Outbox<Transmit, Event>,
}

impl ServerTable {
    /// An empty table.
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            servers: Vec::new(),
            sequence: 0,
            pending: None,
            outbox: Outbox::default(),
        }
    }

    /// Adds a server (the API's `connect`): [`Event::Added`], and the shell opens its link. A
    /// server already known changes nothing.
    pub fn handle_connect(&mut self, endpoint: &str, now: Instant) {
        if self.index(endpoint).is_ok() {
            return;
        }
        self.servers.push(Server {
            endpoint: endpoint.to_owned(),
            state: ServerState::Unknown,
            ping_at: contract::saturating_add(now, self.timing.ping_interval),
            expires: contract::saturating_add(now, self.timing.server_ttl),
            relink_at: None,
        });
        self.outbox.event(Event::Added {
            server: endpoint.to_owned(),
        });
    }

    /// The connection to `endpoint` is (again) established: ping it at once.
    pub fn handle_link_up(&mut self, endpoint: &str, now: Instant) {
        let Some(index) = self.known(endpoint) else {
            return;
        };
        let ttl = self.timing.server_ttl;
        let server = &mut self.servers[index];
        server.ping_at = now;
        // A fresh link gets a whole TTL to bring an answer before it is replaced.
        if let Some(relink_at) = &mut server.relink_at {
            *relink_at = contract::saturating_add(now, ttl);
        }
    }

    /// The connection to `endpoint` dropped: it is dead until it answers again.
    pub fn handle_link_lost(&mut self, endpoint: &str, now: Instant) {
        let Some(index) = self.known(endpoint) else {
            return;
        };
        self.declare_dead(index, DeadReason::Disconnected, now);
        self.drive_request(now);
    }

    /// A message from the server at `endpoint` (routing id removed).
    ///
    /// A malformed message is an [`Event::Malformed`] and changes nothing.
    pub fn handle_message(&mut self, endpoint: &str, message: Message, now: Instant) {
        let Some(index) = self.known(endpoint) else {
            return;
        };
        let reply = match FlpReply::parse(message) {
            Ok(reply) => reply,
            Err(e) => {
                return self.outbox.event(Event::Malformed {
                    server: endpoint.to_owned(),
                    error: e.into(),
                })
            }
        };
        let timing = self.timing;
        let server = &mut self.servers[index];
        server.expires = contract::saturating_add(now, timing.server_ttl);
        server.ping_at = contract::saturating_add(now, timing.ping_interval);
        server.relink_at = None;
        if server.state != ServerState::Alive {
            server.state = ServerState::Alive;
            self.outbox.event(Event::Alive {
                server: server.endpoint.clone(),
            });
        }
        if let FlpReply::Reply { sequence, body } = reply {
            // A late reply to an earlier request is dropped; any server's reply to the
            // current one is taken, even from a server we had already given up on.
            if let Some(pending) = self.pending.take_if(|p| p.sequence == sequence) {
                self.outbox.event(Event::Answered(ServerReply {
                    sequence,
                    server: endpoint.to_owned(),
                    body,
                    attempts: pending.attempts,
                }));
            }
        }
        self.drive_request(now);
    }

    /// Starts a request, [`Event::Started`] with its number (sent at once if a server is
    /// alive), or [`Event::Busy`] while another is in progress.
    pub fn handle_request(&mut self, body: Message, now: Instant) {
        if self.pending.is_some() {
            return self.outbox.event(Event::Busy);
        }
        self.sequence += 1;
        self.pending = Some(Pending {
            sequence: self.sequence,
            body,
            deadline: contract::saturating_add(now, self.timing.global_timeout),
            attempt: None,
            attempts: 0,
            last_server: None,
        });
        self.outbox.event(Event::Started {
            sequence: self.sequence,
        });
        self.drive_request(now);
    }

    /// The index of `endpoint`; an [`Event::Malformed`] if it was never added.
    fn known(&mut self, endpoint: &str) -> Option<usize> {
        match self.index(endpoint) {
            Ok(index) => Some(index),
            Err(error) => {
                self.outbox.event(Event::Malformed {
                    server: endpoint.to_owned(),
                    error,
                });
                None
            }
        }
    }

    /// What the table believes about `endpoint`.
    pub fn state(&self, endpoint: &str) -> Option<ServerState> {
        self.index(endpoint).ok().map(|i| self.servers[i].state)
    }

    /// True while a request is in progress.
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    fn index(&self, endpoint: &str) -> Result<usize, TableError> {
        self.servers
            .iter()
            .position(|s| s.endpoint == endpoint)
            .ok_or_else(|| TableError::UnknownServer(endpoint.to_owned()))
    }

    /// Marks a live server dead (logged once), asks for a fresh link unless the old one is
    /// already gone, and takes the request in progress off it.
    fn declare_dead(&mut self, index: usize, reason: DeadReason, now: Instant) {
        let ttl = self.timing.server_ttl;
        let server = &mut self.servers[index];
        if server.state == ServerState::Alive {
            server.state = ServerState::Dead;
            let relink = reason != DeadReason::Disconnected;
            self.outbox.event(Event::Dead {
                server: server.endpoint.clone(),
                reason,
            });
            if relink {
                self.outbox.transmit(Transmit::Relink {
                    server: server.endpoint.clone(),
                });
            }
        }
        if server.state == ServerState::Dead {
            server.relink_at = Some(contract::saturating_add(now, ttl));
        }
        if let Some(pending) = &mut self.pending {
            pending.attempt.take_if(|a| a.server == index);
        }
    }

    fn drive_request(&mut self, now: Instant) {
        let Some(pending) = &mut self.pending else {
            return;
        };
        if now >= pending.deadline {
            let failure = Failure {
                sequence: pending.sequence,
                attempts: pending.attempts,
                waited: self.timing.global_timeout,
            };
            self.pending = None;
            self.outbox.event(Event::Failed(failure));
            return;
        }
        if let Some(attempt) = pending.attempt.take_if(|a| now >= a.deadline) {
            let reason = DeadReason::NoReply {
                sequence: pending.sequence,
                after: self.timing.attempt_timeout,
            };
            self.declare_dead(attempt.server, reason, now);
            // Ask the struck server at once whether it is still there.
            self.servers[attempt.server].ping_at = now;
        }
        let Some(pending) = &mut self.pending else {
            return;
        };
        if pending.attempt.is_some() {
            return;
        }
        let Some(index) = self
            .servers
            .iter()
            .position(|s| s.state == ServerState::Alive)
        else {
            return; // Wait for a server to come alive, until the global timeout.
        };
        let to = self.servers[index].endpoint.clone();
        if let Some(previous) = pending.last_server {
            self.outbox.event(Event::Failover {
                sequence: pending.sequence,
                from: self.servers[previous].endpoint.clone(),
                to: to.clone(),
            });
        }
        pending.attempts += 1;
        pending.last_server = Some(index);
        pending.attempt = Some(Attempt {
            server: index,
            deadline: contract::saturating_add(now, self.timing.attempt_timeout)
                .min(pending.deadline),
        });
        self.outbox.transmit(Transmit::Send {
            server: to,
            message: flp_request(pending.sequence, &pending.body),
        });
    }
}

impl Core for ServerTable {
    type Transmit = Transmit;
    type Event = Event;

    /// Runs the timers: expires silent servers, strikes a server that let a request time out,
    /// sends the request to the first live server, fails it at the global timeout, and pings.
    fn handle_timeout(&mut self, now: Instant) {
        for index in 0..self.servers.len() {
            let server = &self.servers[index];
            if server.state == ServerState::Alive && now >= server.expires {
                self.declare_dead(index, DeadReason::Silent(self.timing.server_ttl), now);
            }
        }
        let ttl = self.timing.server_ttl;
        for server in &mut self.servers {
            if let Some(relink_at) = server.relink_at.as_mut().filter(|at| now >= **at) {
                *relink_at = contract::saturating_add(now, ttl);
                self.outbox.transmit(Transmit::Relink {
                    server: server.endpoint.clone(),
                });
            }
        }
        self.drive_request(now);
        let interval = self.timing.ping_interval;
        for server in &mut self.servers {
            if now >= server.ping_at {
                server.ping_at = contract::saturating_add(now, interval);
                self.outbox.transmit(Transmit::Send {
                    server: server.endpoint.clone(),
                    message: flp_ping(),
                });
            }
        }
    }

    /// The next ping, expiry, relink or request timeout.
    fn poll_timeout(&self) -> Option<Instant> {
        let servers = self.servers.iter().flat_map(|s| {
            let expiry = (s.state == ServerState::Alive).then_some(s.expires);
            std::iter::once(s.ping_at).chain(expiry).chain(s.relink_at)
        });
        let request = self.pending.iter().flat_map(|p| {
            std::iter::once(p.deadline).chain(p.attempt.as_ref().map(|a| a.deadline))
        });
        servers.chain(request).min()
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PING, PONG};

    const MS: Duration = Duration::from_millis(1);
    const A: &str = "tcp://a:1";
    const B: &str = "tcp://b:2";
    const C: &str = "tcp://c:3";

    /// What the table asked for: an event, or a message to send or link to replace.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Output {
        E(Event),
        T(Transmit),
    }

    /// Everything queued, events first (as the agent takes them).
    fn drain(table: &mut ServerTable) -> Vec<Output> {
        let mut out: Vec<_> = std::iter::from_fn(|| table.poll_event())
            .map(Output::E)
            .collect();
        out.extend(std::iter::from_fn(|| table.poll_transmit()).map(Output::T));
        out
    }

    /// Takes out the events an input queued about itself (its start, a refusal, malformed
    /// input), leaving the rest queued in order: what the input returned before they were events.
    fn result_of(table: &mut ServerTable) -> Result<Option<u64>, TableError> {
        let mut result = Ok(None);
        let events: Vec<_> = std::iter::from_fn(|| table.poll_event()).collect();
        for event in events {
            match event {
                Event::Started { sequence } => result = Ok(Some(sequence)),
                Event::Busy => result = Err(TableError::Busy),
                Event::Malformed { error, .. } => result = Err(error),
                other => table.outbox.event(other),
            }
        }
        result
    }

    /// Adds a server; true if it was new.
    fn connect(table: &mut ServerTable, server: &str, now: Instant) -> bool {
        table.handle_connect(server, now);
        let mut added = false;
        let events: Vec<_> = std::iter::from_fn(|| table.poll_event()).collect();
        for event in events {
            match event {
                Event::Added { server: s } if s == server => added = true,
                other => table.outbox.event(other),
            }
        }
        added
    }

    fn link_up(table: &mut ServerTable, server: &str, now: Instant) -> Result<(), TableError> {
        table.handle_link_up(server, now);
        result_of(table).map(drop)
    }

    fn link_lost(table: &mut ServerTable, server: &str, now: Instant) -> Result<(), TableError> {
        table.handle_link_lost(server, now);
        result_of(table).map(drop)
    }

    fn from_server(
        table: &mut ServerTable,
        server: &str,
        message: Message,
        now: Instant,
    ) -> Result<(), TableError> {
        table.handle_message(server, message, now);
        result_of(table).map(drop)
    }

    /// Starts a request; its number.
    fn start(table: &mut ServerTable, body: Message, now: Instant) -> Result<u64, TableError> {
        table.handle_request(body, now);
        result_of(table).map(|started| started.expect("a request starts or is refused"))
    }

    fn body() -> Message {
        Message::new().with("random name")
    }

    fn pong() -> Message {
        Message::new().with(PONG)
    }

    fn ok(sequence: u64) -> Message {
        Message::new().with(sequence.to_string()).with("OK")
    }

    fn sent_to(outputs: &[Output]) -> Vec<(String, Message)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::T(Transmit::Send { server, message }) => {
                    Some((server.clone(), message.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn requests_to(outputs: &[Output]) -> Vec<String> {
        sent_to(outputs)
            .into_iter()
            .filter(|(_, m)| m.first().map(|f| f.as_ref()) != Some(PING))
            .map(|(s, _)| s)
            .collect()
    }

    /// Three servers, all connected and alive at `t0`.
    fn three_alive(t0: Instant) -> ServerTable {
        let mut table = ServerTable::new(Timing::default());
        for server in [A, B, C] {
            connect(&mut table, server, t0);
            link_up(&mut table, server, t0).unwrap();
        }
        table.handle_timeout(t0);
        for server in [A, B, C] {
            from_server(&mut table, server, pong(), t0).unwrap();
        }
        drain(&mut table);
        table
    }

    fn relinks(outputs: &[Output]) -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::T(Transmit::Relink { server }) => Some(server.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn durations_of_u64_max_milliseconds_never_panic() {
        let huge = Duration::from_millis(u64::MAX);
        let t0 = Instant::now();
        let mut table = ServerTable::new(Timing {
            ping_interval: huge,
            server_ttl: huge,
            global_timeout: huge,
            attempt_timeout: huge,
        });
        connect(&mut table, A, t0);
        link_up(&mut table, A, t0).unwrap();
        table.handle_timeout(t0);
        from_server(&mut table, A, pong(), t0).unwrap();
        drain(&mut table);
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        assert_eq!(requests_to(&drain(&mut table)), [A]);
        // An hour later nothing has expired: every deadline is far away.
        table.handle_timeout(t0 + 3_600_000 * MS);
        assert!(drain(&mut table).is_empty());
        assert!(table.busy());
        assert!(table
            .poll_timeout()
            .is_some_and(|at| at > t0 + 3_600_000 * MS));
        link_lost(&mut table, A, t0 + MS).unwrap();
        table.handle_timeout(t0 + 2 * MS);
        drain(&mut table);
    }

    #[test]
    fn a_server_that_misses_a_request_gets_a_fresh_link_at_once() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        drain(&mut table);
        table.handle_timeout(t0 + 1000 * MS);
        let out = drain(&mut table);
        assert_eq!(relinks(&out), [A]);
        assert_eq!(requests_to(&out), [B]);
    }

    #[test]
    fn a_silent_server_gets_a_fresh_link_and_another_every_ttl_until_it_answers() {
        let t0 = Instant::now();
        let mut table = ServerTable::new(Timing::default());
        connect(&mut table, A, t0);
        link_up(&mut table, A, t0).unwrap();
        table.handle_timeout(t0);
        from_server(&mut table, A, pong(), t0).unwrap();
        drain(&mut table);
        table.handle_timeout(t0 + 6000 * MS);
        assert_eq!(relinks(&drain(&mut table)), [A]);
        // The fresh link connects (through a partition, say) but nothing comes back.
        link_up(&mut table, A, t0 + 6500 * MS).unwrap();
        table.handle_timeout(t0 + 6500 * MS);
        assert_eq!(sent_to(&drain(&mut table)).len(), 1, "pinged at once");
        assert!(table.poll_timeout().unwrap() <= t0 + 12500 * MS);
        table.handle_timeout(t0 + 12499 * MS);
        assert!(relinks(&drain(&mut table)).is_empty());
        table.handle_timeout(t0 + 12500 * MS);
        assert_eq!(relinks(&drain(&mut table)), [A]);
        // Its PONG ends it.
        from_server(&mut table, A, pong(), t0 + 13000 * MS).unwrap();
        assert_eq!(table.state(A), Some(ServerState::Alive));
        table.handle_timeout(t0 + 18_999 * MS);
        assert!(relinks(&drain(&mut table)).is_empty());
    }

    #[test]
    fn a_dropped_connection_needs_no_relink() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        link_lost(&mut table, A, t0).unwrap();
        table.handle_timeout(t0);
        assert!(relinks(&drain(&mut table)).is_empty());
    }

    #[test]
    fn link_up_pings_at_once_then_every_interval() {
        let t0 = Instant::now();
        let mut table = ServerTable::new(Timing::default());
        connect(&mut table, A, t0);
        assert!(!connect(&mut table, A, t0), "a second connect is ignored");
        assert_eq!(table.poll_timeout(), Some(t0 + 2000 * MS));
        link_up(&mut table, A, t0 + 5 * MS).unwrap();
        table.handle_timeout(t0 + 5 * MS);
        assert_eq!(
            sent_to(&drain(&mut table)),
            [(A.to_owned(), Message::new().with(PING))]
        );
        assert_eq!(table.poll_timeout(), Some(t0 + 2005 * MS));
        table.handle_timeout(t0 + 2004 * MS);
        assert!(drain(&mut table).is_empty());
        table.handle_timeout(t0 + 2005 * MS);
        assert_eq!(sent_to(&drain(&mut table)).len(), 1);
    }

    #[test]
    fn first_pong_makes_a_server_alive_and_silence_kills_it_after_the_ttl() {
        let t0 = Instant::now();
        let mut table = ServerTable::new(Timing::default());
        connect(&mut table, A, t0);
        assert_eq!(table.state(A), Some(ServerState::Unknown));
        from_server(&mut table, A, pong(), t0 + 10 * MS).unwrap();
        assert_eq!(
            drain(&mut table),
            [Output::E(Event::Alive { server: A.into() })]
        );
        // Pings go out at 2010 and 4010 ms and are never answered.
        table.handle_timeout(t0 + 6009 * MS);
        assert_eq!(table.state(A), Some(ServerState::Alive));
        table.handle_timeout(t0 + 6010 * MS);
        assert_eq!(table.state(A), Some(ServerState::Dead));
        assert!(drain(&mut table).contains(&Output::E(Event::Dead {
            server: A.into(),
            reason: DeadReason::Silent(6000 * MS)
        })));
        // Its next PONG brings it back.
        from_server(&mut table, A, pong(), t0 + 9000 * MS).unwrap();
        assert_eq!(
            drain(&mut table),
            [Output::E(Event::Alive { server: A.into() })]
        );
    }

    #[test]
    fn requests_go_to_the_first_live_server_in_connect_order() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        let seq = start(&mut table, body(), t0).unwrap();
        assert_eq!(seq, 1);
        table.handle_timeout(t0);
        let out = drain(&mut table);
        assert_eq!(
            sent_to(&out),
            [(A.to_owned(), Message::new().with("1").with("random name"))]
        );
        from_server(&mut table, A, ok(1), t0 + MS).unwrap();
        assert_eq!(
            drain(&mut table),
            [Output::E(Event::Answered(ServerReply {
                sequence: 1,
                server: A.into(),
                body: Message::new().with("OK"),
                attempts: 1
            }))]
        );
        assert!(!table.busy());
        assert_eq!(start(&mut table, body(), t0 + MS), Ok(2));
        assert_eq!(start(&mut table, body(), t0 + MS), Err(TableError::Busy));
    }

    /// The reference's defect: the server in use dies silently (no disconnect seen), two of
    /// three are alive, and the request must still be answered within the global timeout.
    #[test]
    fn a_silent_server_is_struck_and_the_request_fails_over_within_the_global_timeout() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        assert_eq!(requests_to(&drain(&mut table)), [A]);
        // A never answers; its TTL (6 s) would only run out after the global timeout (3 s).
        assert_eq!(table.poll_timeout(), Some(t0 + 1000 * MS));
        table.handle_timeout(t0 + 999 * MS);
        assert!(requests_to(&drain(&mut table)).is_empty());
        table.handle_timeout(t0 + 1000 * MS);
        let out = drain(&mut table);
        assert!(out.contains(&Output::E(Event::Dead {
            server: A.into(),
            reason: DeadReason::NoReply {
                sequence: 1,
                after: 1000 * MS
            }
        })));
        assert!(out.contains(&Output::E(Event::Failover {
            sequence: 1,
            from: A.into(),
            to: B.into()
        })));
        assert_eq!(requests_to(&out), [B]);
        // The struck server is pinged at once, to learn early if it is still there.
        assert!(sent_to(&out).contains(&(A.to_owned(), Message::new().with(PING))));
        from_server(&mut table, B, ok(1), t0 + 1001 * MS).unwrap();
        let out = drain(&mut table);
        assert!(matches!(
            &out[..],
            [Output::E(Event::Answered(ServerReply { server, attempts: 2, .. }))] if server == B
        ));
        // The next request avoids the dead server.
        start(&mut table, body(), t0 + 1002 * MS).unwrap();
        table.handle_timeout(t0 + 1002 * MS);
        assert_eq!(requests_to(&drain(&mut table)), [B]);
    }

    #[test]
    fn a_dropped_connection_fails_over_at_once() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        drain(&mut table);
        link_lost(&mut table, A, t0 + 3 * MS).unwrap();
        table.handle_timeout(t0 + 3 * MS);
        let out = drain(&mut table);
        assert_eq!(
            out[0],
            Output::E(Event::Dead {
                server: A.into(),
                reason: DeadReason::Disconnected
            })
        );
        assert_eq!(requests_to(&out), [B]);
    }

    #[test]
    fn with_every_server_dead_the_request_fails_exactly_at_the_global_timeout() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        for server in [A, B, C] {
            link_lost(&mut table, server, t0).unwrap();
        }
        drain(&mut table);
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        assert!(requests_to(&drain(&mut table)).is_empty());
        table.handle_timeout(t0 + 2999 * MS);
        assert!(!drain(&mut table)
            .iter()
            .any(|o| matches!(o, Output::E(Event::Failed(_)))));
        table.handle_timeout(t0 + 3000 * MS);
        assert!(
            drain(&mut table).contains(&Output::E(Event::Failed(Failure {
                sequence: 1,
                attempts: 0,
                waited: 3000 * MS
            })))
        );
        assert!(!table.busy());
    }

    #[test]
    fn a_request_waiting_for_a_live_server_goes_out_on_the_first_pong() {
        let t0 = Instant::now();
        let mut table = ServerTable::new(Timing::default());
        connect(&mut table, A, t0);
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        assert!(requests_to(&drain(&mut table)).is_empty());
        from_server(&mut table, A, pong(), t0 + 50 * MS).unwrap();
        table.handle_timeout(t0 + 50 * MS);
        assert_eq!(requests_to(&drain(&mut table)), [A]);
    }

    #[test]
    fn a_restarted_server_is_used_again_after_its_first_pong() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        link_lost(&mut table, A, t0 + 10 * MS).unwrap();
        start(&mut table, body(), t0 + 10 * MS).unwrap();
        table.handle_timeout(t0 + 10 * MS);
        assert_eq!(requests_to(&drain(&mut table)), [B]);
        from_server(&mut table, B, ok(1), t0 + 11 * MS).unwrap();
        drain(&mut table);
        // A comes back: the link reconnects and A is pinged at once...
        link_up(&mut table, A, t0 + 500 * MS).unwrap();
        table.handle_timeout(t0 + 500 * MS);
        assert!(sent_to(&drain(&mut table)).contains(&(A.to_owned(), Message::new().with(PING))));
        // ...but it is not used before it answers.
        start(&mut table, body(), t0 + 501 * MS).unwrap();
        table.handle_timeout(t0 + 501 * MS);
        assert_eq!(requests_to(&drain(&mut table)), [B]);
        from_server(&mut table, B, ok(2), t0 + 502 * MS).unwrap();
        from_server(&mut table, A, pong(), t0 + 503 * MS).unwrap();
        assert!(drain(&mut table).contains(&Output::E(Event::Alive { server: A.into() })));
        start(&mut table, body(), t0 + 504 * MS).unwrap();
        table.handle_timeout(t0 + 504 * MS);
        assert_eq!(requests_to(&drain(&mut table)), [A]);
    }

    #[test]
    fn late_replies_are_dropped_but_a_struck_servers_reply_to_the_current_request_counts() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        table.handle_timeout(t0 + 1000 * MS); // A struck, request resent to B
        drain(&mut table);
        from_server(&mut table, A, ok(1), t0 + 1200 * MS).unwrap();
        let out = drain(&mut table);
        assert!(out.contains(&Output::E(Event::Alive { server: A.into() })));
        assert!(out.iter().any(
            |o| matches!(o, Output::E(Event::Answered(a)) if a.server == A && a.attempts == 2)
        ));
        // B's answer to request 1 arrives after it was answered: ignored.
        from_server(&mut table, B, ok(1), t0 + 1300 * MS).unwrap();
        assert!(drain(&mut table).is_empty());
    }

    #[test]
    fn malformed_messages_change_nothing() {
        let t0 = Instant::now();
        let mut table = ServerTable::new(Timing::default());
        connect(&mut table, A, t0);
        let err =
            from_server(&mut table, A, Message::new().with("seven").with("OK"), t0).unwrap_err();
        assert!(matches!(
            err,
            TableError::Frame(ProtocolError::BadSequence(_))
        ));
        assert_eq!(table.state(A), Some(ServerState::Unknown));
        assert_eq!(
            from_server(&mut table, C, pong(), t0),
            Err(TableError::UnknownServer(C.into()))
        );
    }

    #[test]
    fn the_attempt_deadline_never_passes_the_global_one() {
        let t0 = Instant::now();
        let timing = Timing {
            attempt_timeout: 5000 * MS,
            ..Timing::default()
        };
        let mut table = ServerTable::new(timing);
        connect(&mut table, A, t0);
        from_server(&mut table, A, pong(), t0).unwrap();
        start(&mut table, body(), t0).unwrap();
        table.handle_timeout(t0);
        drain(&mut table);
        assert_eq!(table.poll_timeout(), Some(t0 + 2000 * MS)); // next ping
        from_server(&mut table, A, pong(), t0 + 2000 * MS).unwrap();
        table.handle_timeout(t0 + 2000 * MS);
        drain(&mut table);
        assert_eq!(table.poll_timeout(), Some(t0 + 3000 * MS));
        table.handle_timeout(t0 + 3000 * MS);
        assert!(drain(&mut table)
            .iter()
            .any(|o| matches!(o, Output::E(Event::Failed(f)) if f.attempts == 1)));
    }

    /// Every server struck in turn: three attempts fit in the global timeout, then FAILED.
    #[test]
    fn each_server_gets_one_attempt_before_the_request_fails() {
        let t0 = Instant::now();
        let mut table = three_alive(t0);
        start(&mut table, body(), t0).unwrap();
        let mut tried = Vec::new();
        for ms in [0, 1000, 2000] {
            table.handle_timeout(t0 + ms * MS);
            tried.extend(requests_to(&drain(&mut table)));
        }
        assert_eq!(tried, [A, B, C]);
        table.handle_timeout(t0 + 3000 * MS);
        assert!(drain(&mut table)
            .iter()
            .any(|o| matches!(o, Output::E(Event::Failed(f)) if f.attempts == 3)));
    }
}
