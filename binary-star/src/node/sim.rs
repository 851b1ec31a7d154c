//! Two [`Node`]s, their state links and a client, driven in virtual time: partitions, heals,
//! restarts and flapping links, checked for the one thing a pair must end with, exactly one
//! ACTIVE server and no fatal error (and, under the Guide's rule, the abort it prescribes).
//!
//! The links behave like TCP through the fault proxy: while partitioned, messages are held in
//! order and delivered on heal (so the peer reads state messages queued during the partition);
//! a message to a dead process is dropped; a killed process's queued messages still arrive.

use super::*;
use crate::protocol::StateMessage;
use common::rng::Rng;
use std::collections::VecDeque;

const TICK: Duration = Duration::from_millis(10);
const HB: Duration = Duration::from_millis(1000);
/// The client's request interval, reply timeout and vote interval (bstarcli's eager mode).
const INTERVAL: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(600);
const VOTE: Duration = Duration::from_millis(100);

const PRIMARY: usize = 0;
const BACKUP: usize = 1;

#[derive(Default)]
struct Link {
    /// Held while partitioned.
    cut: bool,
    queue: VecDeque<StateMessage>,
}

/// A client like bstarcli: one request at a time to its current server, resends every VOTE,
/// switches servers after TIMEOUT without an answer.
struct Client {
    current: usize,
    waiting_since: Option<Instant>,
    last_send: Instant,
    next_request: Instant,
}

struct Sim {
    now: Instant,
    nodes: [Node; 2],
    on_conflict: OnConflict,
    alive: [bool; 2],
    /// `links[i]` carries node i's state messages to the other node.
    links: [Link; 2],
    /// Whether the client reaches server i.
    reach: [bool; 2],
    client: Client,
    /// (when, which server) for every answered request.
    served: Vec<(Instant, usize)>,
    fatal: Vec<(usize, Fatal)>,
    stale: usize,
}

impl Sim {
    fn new(on_conflict: OnConflict) -> Sim {
        let now = Instant::now();
        let timing = Timing {
            heartbeat: HB,
            liveness: 2,
        };
        Sim {
            now,
            nodes: [
                Node::new(Role::Primary, timing, now).with_on_conflict(on_conflict),
                Node::new(Role::Backup, timing, now).with_on_conflict(on_conflict),
            ],
            on_conflict,
            alive: [true, true],
            links: Default::default(),
            reach: [true, true],
            client: Client {
                current: PRIMARY,
                waiting_since: None,
                last_send: now,
                next_request: now,
            },
            served: Vec::new(),
            fatal: Vec::new(),
            stale: 0,
        }
    }

    /// Cuts (or restores) every link of server `i`: its state links both ways and the client's.
    fn isolate(&mut self, i: usize, cut: bool) {
        self.links[PRIMARY].cut = cut;
        self.links[BACKUP].cut = cut;
        self.reach[i] = !cut;
    }

    fn restart(&mut self, i: usize) {
        let role = self.nodes[i].role();
        let timing = self.nodes[i].timing();
        self.nodes[i] = Node::new(role, timing, self.now).with_on_conflict(self.on_conflict);
        self.alive[i] = true;
    }

    fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.now += TICK;
            self.tick();
        }
    }

    fn tick(&mut self) {
        let now = self.now;
        for i in [PRIMARY, BACKUP] {
            if !self.alive[i] {
                continue;
            }
            let node = &mut self.nodes[i];
            node.handle_timeout(now);
            while let Some(event) = node.poll_event() {
                if let Event::Stale { .. } = event {
                    self.stale += 1;
                }
            }
            while let Some(Publish(state, epoch)) = node.poll_transmit() {
                self.links[i].queue.push_back(StateMessage {
                    state,
                    epoch: Some(epoch),
                });
            }
        }
        for from in [PRIMARY, BACKUP] {
            let to = 1 - from;
            if self.links[from].cut {
                continue;
            }
            while let Some(message) = self.links[from].queue.pop_front() {
                if !self.alive[to] {
                    continue;
                }
                if let Err(fatal) = self.nodes[to].peer(message, now) {
                    self.fatal.push((to, fatal));
                    self.alive[to] = false;
                }
            }
        }
        self.client_tick();
    }

    fn client_tick(&mut self) {
        let now = self.now;
        let c = &mut self.client;
        let send = match c.waiting_since {
            None if now >= c.next_request => {
                c.waiting_since = Some(now);
                true
            }
            None => false,
            Some(since) if now - since >= TIMEOUT => {
                // bstarcli: no answer in time, switch to the other server and resend at once.
                c.current = 1 - c.current;
                c.waiting_since = Some(now);
                true
            }
            Some(_) => now - c.last_send >= VOTE,
        };
        if !send {
            return;
        }
        c.last_send = now;
        let i = c.current;
        if !(self.reach[i] && self.alive[i]) {
            return;
        }
        if self.nodes[i].client_request_verdict(now) == Verdict::Serve {
            self.served.push((now, i));
            self.client.waiting_since = None;
            self.client.next_request = now + INTERVAL;
        }
    }

    fn actives(&self) -> usize {
        (0..2)
            .filter(|&i| self.alive[i] && self.nodes[i].state() == State::Active)
            .count()
    }

    /// Asserts the pair ended settled: one ACTIVE, one PASSIVE, both alive, no fatal error,
    /// and only one server answered the client during the last `window`.
    fn assert_settled(&self, window: Duration) {
        assert!(self.fatal.is_empty(), "fatal: {:?}", self.fatal);
        assert_eq!(self.alive, [true, true]);
        assert_eq!(self.actives(), 1, "states {:?}", self.states());
        let passive = (0..2)
            .filter(|&i| self.nodes[i].state() == State::Passive)
            .count();
        assert_eq!(passive, 1, "states {:?}", self.states());
        let since = self.now - window;
        let recent: Vec<usize> = self
            .served
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, i)| *i)
            .collect();
        assert!(
            !recent.is_empty(),
            "nobody served during the last {window:?}"
        );
        let active = (0..2)
            .find(|&i| self.nodes[i].state() == State::Active)
            .unwrap();
        assert!(
            recent.iter().all(|&i| i == active),
            "both servers answered during the last {window:?}"
        );
    }

    fn states(&self) -> [(State, u64); 2] {
        [0, 1].map(|i| (self.nodes[i].state(), self.nodes[i].epoch()))
    }
}

/// A freshly started pair after it paired: primary ACTIVE, backup PASSIVE.
fn settled(on_conflict: OnConflict) -> Sim {
    let mut sim = Sim::new(on_conflict);
    sim.run_for(3 * HB);
    assert_eq!(
        sim.states(),
        [(State::Active, 1), (State::Passive, 1)],
        "paired"
    );
    sim
}

/// After a heal: a few heartbeats to settle, then a window with only one server answering.
const SETTLE: Duration = Duration::from_millis(5000);
const WINDOW: Duration = Duration::from_millis(5000);

#[test]
fn primary_isolated_3_s_and_10_s_ends_with_the_backup_active() {
    for span in [3, 10] {
        let mut sim = settled(OnConflict::Resolve);
        sim.isolate(PRIMARY, true);
        sim.run_for(Duration::from_secs(span));
        // The client voted at the backup once the primary had been silent for the expiry.
        assert_eq!(sim.nodes[BACKUP].state(), State::Active, "{span} s");
        assert_eq!(
            sim.nodes[PRIMARY].state(),
            State::Active,
            "{span} s: it cannot know"
        );
        sim.isolate(PRIMARY, false);
        sim.run_for(SETTLE + WINDOW);
        sim.assert_settled(WINDOW);
        // The backup's takeover is the newer epoch: the primary stepped down.
        assert_eq!(
            sim.states(),
            [(State::Passive, 2), (State::Active, 2)],
            "{span} s"
        );
        // The primary's ACTIVE messages queued during the partition were stale at the backup.
        assert!(sim.stale > 0, "{span} s");
    }
}

#[test]
fn primary_isolated_under_the_guides_rule_aborts() {
    let mut sim = settled(OnConflict::Abort);
    sim.isolate(PRIMARY, true);
    sim.run_for(Duration::from_secs(10));
    sim.isolate(PRIMARY, false);
    sim.run_for(SETTLE);
    assert!(
        sim.fatal.contains(&(BACKUP, Fatal::DualActive)),
        "{:?}",
        sim.fatal
    );
}

#[test]
fn backup_isolated_changes_nothing() {
    let mut sim = settled(OnConflict::Resolve);
    let served_before = sim.served.len();
    sim.isolate(BACKUP, true);
    sim.run_for(Duration::from_secs(10));
    // The client never needed the backup: it never voted, the primary served throughout.
    assert!(sim.served[served_before..]
        .iter()
        .all(|&(_, i)| i == PRIMARY));
    assert!(sim.served.len() - served_before >= 40);
    sim.isolate(BACKUP, false);
    sim.run_for(SETTLE + WINDOW);
    sim.assert_settled(WINDOW);
    assert_eq!(sim.states(), [(State::Active, 1), (State::Passive, 1)]);
}

#[test]
fn state_link_only_partitioned_both_keep_their_roles() {
    // The client still reaches the primary, so nobody votes at the backup.
    let mut sim = settled(OnConflict::Resolve);
    sim.links[PRIMARY].cut = true;
    sim.links[BACKUP].cut = true;
    sim.run_for(Duration::from_secs(10));
    sim.links[PRIMARY].cut = false;
    sim.links[BACKUP].cut = false;
    sim.run_for(SETTLE + WINDOW);
    sim.assert_settled(WINDOW);
    assert_eq!(sim.states(), [(State::Active, 1), (State::Passive, 1)]);
}

#[test]
fn both_flapping_ends_with_one_active() {
    for seed in 1..=20 {
        let mut sim = settled(OnConflict::Resolve);
        let mut rng = Rng::seeded(seed);
        for _ in 0..30 {
            // Cut one server's links, or only the state links, for 0.1 to 6 s, then heal for
            // 0.1 to 3 s: shorter and longer than the expiry, in any order.
            match rng.below(3) {
                0 => sim.isolate(PRIMARY, true),
                1 => sim.isolate(BACKUP, true),
                _ => {
                    sim.links[PRIMARY].cut = true;
                    sim.links[BACKUP].cut = true;
                }
            }
            sim.run_for(Duration::from_millis(100 + rng.below(5900)));
            sim.isolate(PRIMARY, false);
            sim.isolate(BACKUP, false);
            sim.run_for(Duration::from_millis(100 + rng.below(2900)));
            assert!(sim.fatal.is_empty(), "seed {seed}: {:?}", sim.fatal);
        }
        sim.run_for(SETTLE + WINDOW);
        sim.assert_settled(WINDOW);
    }
}

#[test]
fn heal_with_stale_queued_messages_in_both_directions() {
    let mut sim = settled(OnConflict::Resolve);
    sim.isolate(PRIMARY, true);
    sim.run_for(Duration::from_secs(10));
    // Ten seconds of heartbeats are held each way: ~10 ACTIVE:1 from the primary, PASSIVE:1
    // then ACTIVE:2 from the backup.
    assert!(sim.links[PRIMARY].queue.len() >= 9);
    assert!(sim.links[BACKUP].queue.len() >= 9);
    assert!(sim.links[BACKUP]
        .queue
        .iter()
        .any(|m| m.state == State::Passive && m.epoch == Some(1)));
    sim.isolate(PRIMARY, false);
    sim.run_for(Duration::from_millis(20));
    // Right after the heal everything queued was read and the pair is already settled.
    assert_eq!(sim.states(), [(State::Passive, 2), (State::Active, 2)]);
    assert_eq!(sim.stale, 1, "the stale run is reported once");
    sim.run_for(SETTLE + WINDOW);
    sim.assert_settled(WINDOW);
}

#[test]
fn primary_restarted_during_a_partition_comes_back_passive() {
    let mut sim = settled(OnConflict::Resolve);
    sim.isolate(PRIMARY, true);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.nodes[BACKUP].state(), State::Active);
    // kill -9 and restart the primary while still cut off; its old queued messages stay held.
    sim.alive[PRIMARY] = false;
    sim.run_for(Duration::from_secs(1));
    sim.restart(PRIMARY);
    sim.run_for(Duration::from_secs(4));
    assert_eq!(sim.nodes[PRIMARY].state(), State::Primary);
    sim.isolate(PRIMARY, false);
    sim.run_for(SETTLE + WINDOW);
    sim.assert_settled(WINDOW);
    assert_eq!(sim.states(), [(State::Passive, 2), (State::Active, 2)]);
}

#[test]
fn primary_restarted_and_voted_active_while_the_state_link_is_cut() {
    // The backup took over (epoch 2); the primary restarts with epoch 0 and, hearing nobody,
    // takes over by client vote as well (epoch 1). On heal the older epoch steps down.
    let mut sim = settled(OnConflict::Resolve);
    sim.isolate(PRIMARY, true);
    sim.run_for(Duration::from_secs(5));
    sim.alive[PRIMARY] = false;
    sim.restart(PRIMARY);
    sim.reach[PRIMARY] = true;
    sim.reach[BACKUP] = false;
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.states(), [(State::Active, 1), (State::Active, 2)]);
    sim.isolate(PRIMARY, false);
    sim.reach[BACKUP] = true;
    sim.run_for(SETTLE + WINDOW);
    sim.assert_settled(WINDOW);
    assert_eq!(sim.states(), [(State::Passive, 2), (State::Active, 2)]);
}

#[test]
fn backup_restarted_during_a_partition_comes_back_passive() {
    let mut sim = settled(OnConflict::Resolve);
    sim.isolate(BACKUP, true);
    sim.run_for(Duration::from_secs(3));
    sim.alive[BACKUP] = false;
    sim.restart(BACKUP);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.nodes[BACKUP].state(), State::Backup);
    sim.isolate(BACKUP, false);
    sim.run_for(SETTLE + WINDOW);
    sim.assert_settled(WINDOW);
    assert_eq!(sim.states(), [(State::Active, 1), (State::Passive, 1)]);
}

#[test]
fn dual_passives_settle_within_a_heartbeat() {
    // However two servers both ended PASSIVE, exchanging their heartbeats makes exactly one
    // of them ACTIVE: a tie goes to the primary at once; otherwise the junior's message is
    // stale at the senior, the junior adopts the senior's epoch, and the next heartbeat is a
    // tie.
    for (primary_epoch, backup_epoch) in [(3, 3), (3, 4), (5, 4), (0, 9)] {
        let t0 = Instant::now();
        let timing = Timing::default();
        let mut nodes = [
            Node::new(Role::Primary, timing, t0),
            Node::new(Role::Backup, timing, t0),
        ];
        let epochs = [primary_epoch, backup_epoch];
        for i in 0..2 {
            let active = StateMessage {
                state: State::Active,
                epoch: Some(epochs[i]),
            };
            nodes[i].peer(active, t0).unwrap();
            assert_eq!(nodes[i].state(), State::Passive);
        }
        for round in 1..=4u32 {
            let now = t0 + HB * round;
            let sent = [0, 1].map(|i| StateMessage {
                state: nodes[i].state(),
                epoch: Some(nodes[i].epoch()),
            });
            for i in 0..2 {
                nodes[i].peer(sent[1 - i], now).unwrap();
            }
            if round >= 2 {
                let states = nodes.clone().map(|n| n.state());
                assert!(
                    states == [State::Active, State::Passive]
                        || states == [State::Passive, State::Active],
                    "{primary_epoch}/{backup_epoch} round {round}: {states:?}"
                );
            }
        }
    }
}
