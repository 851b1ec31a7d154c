//! The pipelined client's decisions over a broker pair ([`PairCore`]), with no sockets and no
//! clock.
//!
//! [`AsyncClient`](crate::AsyncClient) with two brokers keeps every request it sent until it is
//! answered, so that when the broker in use falls silent it can carry them all to the other one
//! under their original ids (the Guide leaves this open for mdcliapi2). The shell opens sockets
//! and sends; this core decides:
//!
//! * **when to fail over**: after [`Policy::timeout`] without any reply while requests are
//!   outstanding (the silence counts from the last reply, or from the send that made the table
//!   non-empty);
//! * **how to switch**, as Binary Star's eager client does ([`binary_star::failover`]): a fresh
//!   socket to the other broker and, while it may still be passive ([`Policy::settle`], the
//!   pair's peer expiry), only the oldest outstanding request, every [`Policy::vote`]: a passive
//!   broker drops it, and the first one after its peer expired is the vote that makes it take
//!   over and serve it;
//! * **what to resend**: as soon as the new broker answers (or `settle` has passed), every
//!   outstanding request, once, under its original id (a broker with request ids joins one that
//!   already runs, or answers it from memory);
//! * **when to give up**: a request gets [`Policy::turns`] turns, one broker's each: its first
//!   send, then one per failover. At a failover, a request that has had them all is reported
//!   failed ([`Event::GaveUp`]) instead of carried over;
//! * **what to deliver**: a reply whose id is not outstanding (already answered: a duplicate
//!   after a resend) is dropped ([`Event::Duplicate`]), so no request is answered twice.
//!
//! # Memory
//! The table holds each unanswered request whole (id, service, body: the frames are shared,
//! not copied), about 150 bytes plus its body. It is bounded by the caller, who decides how many
//! requests are in flight (`mdclient2 --window`): nothing leaves it but an answer or a give-up.

use crate::rid::Rid;
use common::contract::{self, Core, Outbox};
use common::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The timing of a [`PairCore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Silence with requests outstanding after which the broker in use is given up.
    pub timeout: Duration,
    /// How long the other broker may need before it serves (the pair's peer expiry).
    pub settle: Duration,
    /// While the other broker settles, the oldest request is resent this often (capped at
    /// `timeout`).
    pub vote: Duration,
    /// Turns per request (at least 1): its first send, then one per failover.
    pub turns: u32,
}

/// What the core asks the shell to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Drop the socket and open a fresh one to broker `broker` (0 or 1), giving up at `until`
    /// ([`PairCore::handle_broker_lost`]). The sends after it go on the new socket.
    Open {
        /// Index of the broker.
        broker: usize,
        /// The connect ends by this instant.
        until: Instant,
    },
    /// Send a request on the socket to `broker` (dropped by the shell if that socket is not
    /// open: the request stays outstanding and goes out again later).
    Send {
        /// Index of the broker.
        broker: usize,
        /// The request's id, the same on every send.
        rid: Rid,
        /// The service asked.
        service: String,
        /// The request body (without the rid frame).
        body: Message,
    },
}

/// What happened, for the shell to log or hand to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The broker in use was silent for `silent` with requests outstanding: switched to `to`.
    FailedOver {
        /// The silent broker.
        from: usize,
        /// The broker asked from now on.
        to: usize,
        /// How long nothing came.
        silent: Duration,
        /// Requests carried over (resent once `to` answers or has settled).
        carried: usize,
        /// Requests that had used all their turns: reported failed ([`Event::GaveUp`]).
        gave_up: usize,
    },
    /// A request had all its turns without an answer: it failed, for the caller to report.
    GaveUp {
        /// Its id.
        rid: Rid,
        /// The service asked.
        service: String,
        /// The request body.
        body: Message,
        /// How often it was sent in all (a send on a socket that could not be opened counts,
        /// as a try whose connect failed does for the synchronous client).
        sends: u32,
    },
    /// The oldest outstanding request went to the settling broker (a vote).
    Voted {
        /// The broker asked.
        broker: usize,
        /// The request sent.
        rid: Rid,
    },
    /// Every outstanding request was resent to `broker` under its id.
    Resent {
        /// The broker asked.
        broker: usize,
        /// How many.
        count: usize,
    },
    /// The first answer after a failover: `broker` serves, `waited` after the silence began.
    Recovered {
        /// The broker that answered.
        broker: usize,
        /// From the start of the silence that caused the (first) failover to this answer.
        waited: Duration,
    },
    /// A reply to a request no longer outstanding (answered already): dropped.
    Duplicate {
        /// Its id.
        rid: Rid,
    },
}

/// The answer to an outstanding request, from [`PairCore::handle_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The service asked.
    pub service: String,
    /// How often the request was sent in all (1: never resent), counted as in
    /// [`Event::GaveUp`].
    pub sends: u32,
}

#[derive(Debug, Clone)]
struct Entry {
    rid: Rid,
    service: String,
    body: Message,
    turns: u32,
    sends: u32,
}

/// Whether the socket to the broker in use can take sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// None opened yet on this turn: the next send opens it.
    Closed,
    /// Opened (the shell says if that failed).
    Open,
    /// The open failed: sends wait for the next vote, the end of the settle time, or a failover.
    Unreachable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The broker in use should serve: fail over after `timeout` of silence.
    Serving,
    /// Switched at `since`: vote until the broker answers or `settle` has passed.
    Settling { since: Instant, next_vote: Instant },
}

/// The pipelined pair client's core: the outstanding table, failover, resends, give-ups.
#[derive(Debug)]
pub struct PairCore {
    policy: Policy,
    current: usize,
    link: Link,
    phase: Phase,
    /// Oldest first (the key is the order of first sends).
    outstanding: BTreeMap<u64, Entry>,
    by_rid: HashMap<Rid, u64>,
    next_key: u64,
    /// Start of the current silence (`None`: nothing to wait for).
    silent_since: Option<Instant>,
    /// Start of the silence that caused the failover(s) not yet ended by an answer.
    recovering: Option<Instant>,
    /// Requests answered, oldest first, for [`PairCore::poll_answered`].
    answered: VecDeque<Answered>,
    out: Outbox<Transmit, Event>,
}

impl PairCore {
    /// A core with nothing outstanding that starts with broker 0 (the primary).
    pub fn new(policy: Policy) -> Self {
        Self {
            policy: Policy {
                turns: policy.turns.max(1),
                vote: policy.vote.min(policy.timeout),
                ..policy
            },
            current: 0,
            link: Link::Closed,
            phase: Phase::Serving,
            outstanding: BTreeMap::new(),
            by_rid: HashMap::new(),
            next_key: 0,
            silent_since: None,
            recovering: None,
            answered: VecDeque::new(),
            out: Outbox::default(),
        }
    }

    /// The broker in use (0 or 1).
    pub fn current(&self) -> usize {
        self.current
    }

    /// Requests sent and neither answered nor given up.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The caller sends a request at `now`. An id already outstanding is sent again (its turns
    /// and first send unchanged).
    pub fn handle_send(&mut self, rid: Rid, service: String, body: Message, now: Instant) {
        let key = match self.by_rid.get(&rid) {
            Some(&key) => key,
            None => {
                if self.outstanding.is_empty() {
                    self.silent_since = Some(now);
                }
                let key = self.next_key;
                self.next_key += 1;
                self.by_rid.insert(rid.clone(), key);
                let entry = Entry {
                    rid,
                    service,
                    body,
                    turns: 1,
                    sends: 0,
                };
                self.outstanding.insert(key, entry);
                key
            }
        };
        if self.link == Link::Closed {
            self.open(contract::saturating_add(now, self.policy.timeout));
        }
        self.transmit(key);
    }

    /// A reply with id `rid` came at `now` from the broker in use. The answered request comes
    /// out of [`PairCore::poll_answered`]; a duplicate is dropped ([`Event::Duplicate`]).
    pub fn handle_reply(&mut self, rid: &Rid, now: Instant) {
        let answered = self.by_rid.remove(rid).and_then(|key| {
            let entry = self.outstanding.remove(&key)?;
            Some(Answered {
                service: entry.service,
                sends: entry.sends,
            })
        });
        if answered.is_none() {
            self.out.event(Event::Duplicate { rid: rid.clone() });
        }
        // Any reply shows that this broker serves.
        if let Some(since) = self.recovering.take() {
            self.out.event(Event::Recovered {
                broker: self.current,
                waited: now.saturating_duration_since(since),
            });
        }
        if let Phase::Settling { .. } = self.phase {
            // It may have dropped what came before its takeover: everything once more.
            self.phase = Phase::Serving;
            self.resend_all();
        }
        self.silent_since = (!self.outstanding.is_empty()).then_some(now);
        self.answered.extend(answered);
    }

    /// The next request answered by [`PairCore::handle_reply`], oldest first.
    pub fn poll_answered(&mut self) -> Option<Answered> {
        self.answered.pop_front()
    }

    /// The shell could not open the socket (or it failed): sends wait for the next chance.
    pub fn handle_broker_lost(&mut self, _now: Instant) {
        self.link = Link::Unreachable;
    }

    /// The caller wants a fresh socket to the broker in use: opened at once, everything
    /// outstanding resent.
    pub fn handle_reconnect(&mut self, now: Instant) {
        self.open(contract::saturating_add(now, self.policy.timeout));
        self.resend_all();
    }

    fn open(&mut self, until: Instant) {
        self.link = Link::Open;
        self.out.transmit(Transmit::Open {
            broker: self.current,
            until,
        });
    }

    fn transmit(&mut self, key: u64) {
        if self.link != Link::Open {
            return;
        }
        let Some(entry) = self.outstanding.get_mut(&key) else {
            return;
        };
        entry.sends += 1;
        self.out.transmit(Transmit::Send {
            broker: self.current,
            rid: entry.rid.clone(),
            service: entry.service.clone(),
            body: entry.body.clone(),
        });
    }

    fn resend_all(&mut self) {
        let keys: Vec<u64> = self.outstanding.keys().copied().collect();
        if keys.is_empty() || self.link != Link::Open {
            return;
        }
        for &key in &keys {
            self.transmit(key);
        }
        self.out.event(Event::Resent {
            broker: self.current,
            count: keys.len(),
        });
    }

    fn vote(&mut self, now: Instant) {
        let Some((&key, entry)) = self.outstanding.iter().next() else {
            return;
        };
        let rid = entry.rid.clone();
        if self.link == Link::Unreachable {
            self.open(contract::saturating_add(now, self.policy.vote));
        }
        self.transmit(key);
        self.out.event(Event::Voted {
            broker: self.current,
            rid,
        });
    }

    fn fail_over(&mut self, now: Instant) {
        let silence = self.silent_since.unwrap_or(now);
        let (from, to) = (self.current, 1 - self.current);
        let done: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, e)| e.turns >= self.policy.turns)
            .map(|(&k, _)| k)
            .collect();
        for entry in self.outstanding.values_mut() {
            entry.turns += 1;
        }
        self.out.event(Event::FailedOver {
            from,
            to,
            silent: now.saturating_duration_since(silence),
            carried: self.outstanding.len() - done.len(),
            gave_up: done.len(),
        });
        for key in done {
            if let Some(entry) = self.outstanding.remove(&key) {
                self.by_rid.remove(&entry.rid);
                self.out.event(Event::GaveUp {
                    rid: entry.rid,
                    service: entry.service,
                    body: entry.body,
                    sends: entry.sends,
                });
            }
        }
        self.current = to;
        self.recovering.get_or_insert(silence);
        self.silent_since = None;
        self.phase = Phase::Settling {
            since: now,
            next_vote: now,
        };
        self.open(contract::saturating_add(now, self.policy.vote));
        self.handle_timeout(now);
    }
}

impl Core for PairCore {
    type Transmit = Transmit;
    type Event = Event;

    fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Serving => {
                let silent = self.silent_since.filter(|_| !self.outstanding.is_empty());
                if silent.is_some_and(|s| now >= contract::saturating_add(s, self.policy.timeout)) {
                    self.fail_over(now);
                }
            }
            Phase::Settling { since, next_vote } => {
                if now >= contract::saturating_add(since, self.policy.settle) {
                    // Settled: its last chance, a full timeout with everything sent.
                    self.phase = Phase::Serving;
                    self.silent_since = Some(now);
                    if self.link != Link::Open {
                        self.open(contract::saturating_add(now, self.policy.timeout));
                    }
                    self.resend_all();
                } else if now >= next_vote {
                    self.vote(now);
                    self.phase = Phase::Settling {
                        since,
                        next_vote: contract::saturating_add(now, self.policy.vote),
                    };
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Serving => self
                .silent_since
                .filter(|_| !self.outstanding.is_empty())
                .map(|s| contract::saturating_add(s, self.policy.timeout)),
            Phase::Settling { since, next_vote } => {
                Some(next_vote.min(contract::saturating_add(since, self.policy.settle)))
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.out.poll_event()
    }
}

#[cfg(test)]
mod tests;
