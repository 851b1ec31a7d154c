//! The worker's core between the two broker cores of a real pair ([`PairedBroker`]), every
//! message carried by hand, virtual time: [`crate::pair`]'s promises end to end.

use super::super::*;
use crate::broker::BrokerConfig;
use crate::ha::{self, PairedBroker};
use crate::protocol::{self, ClientCommand, Inbound};
use binary_star::node::{Publish, Timing};
use binary_star::protocol::StateMessage;
use binary_star::{Role, State};
use bytes::Bytes;
use common::msg::frame_text;
use std::time::Duration;

const HB: Duration = Duration::from_millis(100);
const STEP: Duration = Duration::from_millis(10);
const P: usize = 0;
const B: usize = 1;

fn timing() -> Timing {
    Timing {
        heartbeat: HB,
        liveness: 2,
    }
}

fn rid(n: u32) -> Rid {
    Rid::new(format!("r-{n}")).unwrap()
}

/// Two brokers, one worker of both, clients made of frames.
struct Net {
    brokers: [PairedBroker; 2],
    worker: Brokers,
    /// The worker's identity at each broker (a new one per session).
    ids: [String; 2],
    sessions: u32,
    /// The worker's sessions that wait for their broker to be up to connect.
    connecting: [bool; 2],
    /// Broker k's process runs.
    alive: [bool; 2],
    /// The brokers hear each other's state messages.
    linked: bool,
    /// Every request handed to the handler, in order (ids).
    executed: Vec<Rid>,
    /// The requests in the handler's hands, oldest first (at most `credit`).
    in_hand: Vec<Request>,
    credit: usize,
    /// (broker, client, body) of every reply to a client.
    replies: Vec<(usize, String, Message)>,
    now: Instant,
}

impl Net {
    /// A pair that has met (primary ACTIVE, backup PASSIVE) and a worker registered with both
    /// that has seen both standings.
    fn new(t0: Instant) -> Self {
        Self::with_credit(t0, 1)
    }

    /// [`Net::new`] with a worker of credit `credit` ([`crate::credit`]).
    fn with_credit(t0: Instant, credit: u32) -> Self {
        let config = || BrokerConfig {
            heartbeat: HB,
            liveness: 3,
            ..BrokerConfig::default()
        };
        let options = WorkerOptions {
            heartbeat: HB,
            liveness: 3,
            reconnect: HB,
            reconnect_max: 4 * HB,
            request_ids: false,
            credit,
            dialect: Default::default(),
        };
        let mut net = Net {
            brokers: [
                PairedBroker::new(Role::Primary, timing(), config(), t0),
                PairedBroker::new(Role::Backup, timing(), config(), t0),
            ],
            worker: Brokers::new(2, "echo", options),
            ids: [String::new(), String::new()],
            sessions: 0,
            connecting: [false; 2],
            alive: [true; 2],
            linked: true,
            executed: Vec::new(),
            in_hand: Vec::new(),
            credit: credit as usize,
            replies: Vec::new(),
            now: t0,
        };
        net.pump();
        net.run_for(3 * HB);
        assert_eq!(net.brokers[P].node().state(), State::Active);
        assert_eq!(net.brokers[B].node().state(), State::Passive);
        for k in [P, B] {
            assert!(net.worker.link(k).standing().is_some(), "{k} paired");
        }
        net
    }

    /// Moves every message until nothing moves.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some((k, transmit)) = self.worker.poll_transmit() {
                moved = true;
                match transmit {
                    link::Transmit::Send(command) if self.alive[k] => {
                        let from = Message::from_frames([self.ids[k].clone()]);
                        let frames = protocol::to_router(from, command.into_frames());
                        self.brokers[k].handle_message(frames, now);
                    }
                    link::Transmit::Send(_) | link::Transmit::Close => {}
                    // The back-off is not modelled: the next step connects if the broker is up.
                    link::Transmit::Reconnect { .. } => self.connecting[k] = true,
                }
            }
            for k in [P, B] {
                while let Some(transmit) = self.brokers[k].poll_transmit() {
                    moved = true;
                    match transmit {
                        _ if !self.alive[k] => {}
                        ha::Transmit::Router(message) => self.deliver(k, message),
                        ha::Transmit::State(Publish(state, epoch)) => {
                            let peer = 1 - k;
                            if self.linked && self.alive[peer] {
                                let message = StateMessage {
                                    state,
                                    epoch: Some(epoch),
                                };
                                self.brokers[peer].handle_peer(message, now);
                            }
                        }
                    }
                }
                while self.brokers[k].poll_event().is_some() {}
            }
            while let Some(event) = self.worker.poll_event() {
                moved = true;
                if let Event::Request(request) = event {
                    assert!(self.in_hand.len() < self.credit, "more than the credit");
                    self.executed.push(request.rid.clone().expect("an id"));
                    self.in_hand.push(request);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// A message from broker `k`'s ROUTER: to the worker's current session, or to a client.
    fn deliver(&mut self, k: usize, message: Message) {
        match Inbound::parse(message).expect("the broker speaks MDP") {
            (peer, Inbound::Worker(command)) => {
                if peer.first().map(|id| &id[..]) == Some(self.ids[k].as_bytes()) {
                    let frames = protocol::for_dealer(command.into_frames());
                    self.worker.handle_message(k, frames, self.now);
                }
            }
            (peer, Inbound::Client(ClientCommand::Request { body, .. })) => {
                let client = frame_text(peer.first().expect("a client"));
                self.replies.push((k, client, body));
            }
            (_, other) => panic!("unexpected {other:?}"),
        }
    }

    /// Time passes in small steps: timers fire, sessions connect, messages move.
    fn run_for(&mut self, span: Duration) {
        let until = self.now + span;
        while self.now < until {
            self.now += STEP;
            let now = self.now;
            for k in [P, B] {
                if self.connecting[k] && self.alive[k] {
                    self.connecting[k] = false;
                    self.sessions += 1;
                    self.ids[k] = format!("W{}", self.sessions);
                    self.worker.handle_connected(k, now);
                }
                if self.alive[k] {
                    self.brokers[k].handle_timeout(now);
                }
            }
            self.worker.handle_timeout(now);
            self.pump();
        }
    }

    /// Client `client` sends request `rid` to broker `k`.
    fn request(&mut self, k: usize, client: &str, rid: &Rid) {
        let mut body = Message::from_frames(["hello"]);
        rid.put(&mut body);
        let request = ClientCommand::Request {
            service: Bytes::from_static(b"echo"),
            body,
        };
        let from = Message::from_frames([client.to_owned()]);
        let frames = protocol::to_router(from, request.into_frames());
        self.brokers[k].handle_message(frames, self.now);
        self.pump();
    }

    /// The handler answers the oldest request in hand.
    fn answer(&mut self) {
        assert!(!self.in_hand.is_empty(), "a request in hand");
        let request = self.in_hand.remove(0);
        self.reply(request);
    }

    /// The handler answers the request `rid` in hand (out of order, with credit).
    fn answer_rid(&mut self, rid: &Rid) {
        let at = self
            .in_hand
            .iter()
            .position(|r| r.rid.as_ref() == Some(rid));
        let request = self.in_hand.remove(at.expect("that request in hand"));
        self.reply(request);
    }

    fn reply(&mut self, request: Request) {
        let body = Message::from_frames([format!("reply to {}", request.rid.unwrap())]);
        self.worker.handle_reply(request.reply_to, body, self.now);
        self.pump();
    }

    /// The replies client `client` got: (broker, rid, body).
    fn replies_to(&self, client: &str) -> Vec<(usize, Option<Rid>, Message)> {
        self.replies
            .iter()
            .filter(|(_, c, _)| c == client)
            .map(|(k, _, body)| {
                let mut body = body.clone();
                (*k, Rid::take(&mut body), body)
            })
            .collect()
    }
}

#[test]
fn the_reply_of_a_request_whose_broker_died_reaches_its_retry_at_the_new_active_broker() {
    let mut net = Net::new(Instant::now());
    net.request(P, "C1", &rid(1));
    assert_eq!(net.executed, [rid(1)]);
    // The primary dies while its request runs; the worker loses its connection.
    net.alive[P] = false;
    net.worker
        .handle_broker_lost(P, "connection closed".into(), net.now);
    net.pump();
    net.run_for(timing().peer_ttl() + 5 * STEP);
    // The client's retry at the backup is the vote: it takes over, and the retry joins the
    // request the worker still runs instead of running it again.
    net.request(B, "C1b", &rid(1));
    assert_eq!(net.brokers[B].node().state(), State::Active);
    assert_eq!(net.executed, [rid(1)], "not run twice");
    assert!(net.replies_to("C1b").is_empty());
    net.answer();
    let reply = Message::from_frames(["reply to r-1"]);
    assert_eq!(net.replies_to("C1b"), [(B, Some(rid(1)), reply.clone())]);
    // Later retries are answered from memory.
    net.request(B, "C1c", &rid(1));
    assert_eq!(net.replies_to("C1c"), [(B, Some(rid(1)), reply)]);
    assert_eq!(net.executed, [rid(1)]);
    // The worker is free for the new active broker's next request.
    net.request(B, "C2", &rid(2));
    assert_eq!(net.executed, [rid(1), rid(2)]);
}

#[test]
fn a_deposed_broker_is_fenced_by_the_worker_and_stands_down_while_its_client_is_served_by_the_other(
) {
    let mut net = Net::new(Instant::now());
    // The brokers lose sight of each other; the worker hears both. The primary stays ACTIVE
    // (epoch 1); a client's request at the backup is its vote: ACTIVE in epoch 2.
    net.linked = false;
    net.run_for(timing().peer_ttl() + 5 * STEP);
    net.request(B, "C1", &rid(1));
    let backup = net.brokers[B].node();
    assert_eq!((backup.state(), backup.epoch()), (State::Active, 2));
    assert_eq!(net.brokers[P].node().state(), State::Active, "dual actives");
    assert_eq!(net.executed, [rid(1)], "the senior's request runs");
    net.answer();
    assert_eq!(net.replies_to("C1").len(), 1);
    // The primary, unaware, dispatches a request: the worker refuses it (it heard the backup's
    // senior standing), and the primary steps down at once.
    net.request(P, "C2", &rid(2));
    assert_eq!(net.executed, [rid(1)], "refused, not run");
    let primary = net.brokers[P].node();
    assert_eq!((primary.state(), primary.epoch()), (State::Passive, 2));
    assert!(net.replies_to("C2").is_empty());
    // The client's retry at the active broker is served, once.
    net.request(B, "C2", &rid(2));
    assert_eq!(net.executed, [rid(1), rid(2)]);
    net.answer();
    let reply = Message::from_frames(["reply to r-2"]);
    assert_eq!(net.replies_to("C2"), [(B, Some(rid(2)), reply)]);
}

#[test]
fn a_worker_with_credit_runs_nothing_twice_across_a_failover() {
    let mut net = Net::with_credit(Instant::now(), 3);
    for n in 1..=4 {
        net.request(P, &format!("C{n}"), &rid(n));
    }
    assert_eq!(
        net.executed,
        [rid(1), rid(2), rid(3)],
        "credit 3: the fourth waits"
    );
    // Out of order: the second is answered first, and the fourth starts.
    net.answer_rid(&rid(2));
    assert_eq!(net.replies_to("C2").len(), 1);
    assert_eq!(net.executed, [rid(1), rid(2), rid(3), rid(4)]);
    // The primary dies with three requests running; the worker loses its connection.
    net.alive[P] = false;
    net.worker
        .handle_broker_lost(P, "connection closed".into(), net.now);
    net.pump();
    net.run_for(timing().peer_ttl() + 5 * STEP);
    // Every client retries at the backup (the first is the vote): the answered one gets the
    // remembered reply, the running ones join, nothing runs again.
    for n in 1..=4 {
        net.request(B, &format!("C{n}b"), &rid(n));
    }
    assert_eq!(net.brokers[B].node().state(), State::Active);
    let reply = |n: u32| Message::from_frames([format!("reply to r-{n}")]);
    assert_eq!(net.replies_to("C2b"), [(B, Some(rid(2)), reply(2))]);
    assert_eq!(net.executed.len(), 4, "not run twice: {:?}", net.executed);
    // The three running take the worker's whole credit at the backup: a new request waits.
    net.request(B, "C5", &rid(5));
    assert_eq!(net.executed.len(), 4);
    for n in [3, 1, 4] {
        net.answer_rid(&rid(n));
        assert_eq!(
            net.replies_to(&format!("C{n}b")),
            [(B, Some(rid(n)), reply(n))]
        );
    }
    // The credit came back: the new request ran, once.
    assert_eq!(net.executed, [rid(1), rid(2), rid(3), rid(4), rid(5)]);
    net.answer();
    assert_eq!(net.replies_to("C5"), [(B, Some(rid(5)), reply(5))]);
}
