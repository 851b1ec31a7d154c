//! A worker's brokers, one or the two of a broker pair ([`crate::pair`]), and the requests in
//! hand. Pure: no sockets, no clock; it follows [`common::contract`].
//!
//! Each broker has a session of its own, a [`WorkerCore`] (fresh identity, READY, heartbeats,
//! the broker's liveness, back-off). This core sits above them and decides what only a worker
//! of several brokers has to:
//!
//! * **Up to the credit at a time** ([`WorkerOptions::credit`], one unless asked for more; see
//!   [`crate::credit`]). The handler gets a request only while fewer than that are in its
//!   hands unanswered; a request that arrives meanwhile (from the other broker) waits, first in
//!   first out, at most [`WAITING`] (or the credit, if more) of them. One whose session ends
//!   before its turn is dropped: that connection's broker no longer knows it (the client
//!   retries).
//! * **The fence.** A request with an id from broker k is refused, not run, when another broker
//!   whose session is up shows a standing that outranks k's ([`pair::fence`]): k gets
//!   `Refused(rid, senior)` and steps down. Checked when the request arrives and again when its
//!   turn comes. A request without an id is never refused: no news can name it, so it is at
//!   least once anyway, as every request of a lone broker is.
//! * **The news.** When a request with an id starts, every *other* paired session hears
//!   `Running(rid)`; when its reply comes, the REPLY goes to the session the request came on (if
//!   that session still stands) and `Answered(rid, body)` to every other paired session, also
//!   when the dispatching one is gone: that is how the reply of a request whose broker died
//!   reaches its client through the broker that took over.
//! * **The replay.** The last [`pair::REPLAY`] replies are kept (see [`REPLAY_BYTES`] for the
//!   memory); when a broker shows its first standing in a new session, it hears the running
//!   requests and those replies again, so a broker that restarted learns them.
//!
//! A *paired* session is one up whose broker has shown a standing in it (with a HEARTBEAT, or
//! in front of a REQUEST). A standing counts only in the session it came in: a broker that
//! restarted is not judged by what it was, and until its first HEARTBEAT after READY it hears
//! nothing (the re-announcement waits for it). "Other" means any paired session but the one
//! that dispatched the request, so a broker whose session was renewed also hears the news of
//! its old requests. A broker that never shows a standing (a lone broker, the Guide's C broker)
//! gets no news and no pair frames but READY's marker; with one broker, this core is the plain
//! worker of [`WorkerCore`] (no markers beyond its options, nothing kept).

use super::{self as link, WorkerCore};
use super::{ReplyTo, Request, WorkerOptions};
use crate::pair::{self, PairFrames, Standing};
use crate::protocol::WorkerCommand;
use crate::rid::Rid;
use common::contract::{Core, Outbox};
use common::Message;
use std::collections::VecDeque;
use std::time::Instant;

/// Requests that may wait while the handler's hands are full (or the credit, if more). A
/// broker hands a worker no more than its credit, so requests wait only in a race between the
/// brokers of a pair; beyond this they are dropped (the clients retry).
pub const WAITING: usize = 8;

/// Most bytes of reply bodies (and their ids) kept for the replay. Bodies are copied into
/// buffers of their own, so this bounds the memory held (plus about 100 bytes per reply); a
/// reply larger than all of it is not kept. A titanic with thousands of workers pays it per
/// worker only if its replies are that large.
pub const REPLAY_BYTES: usize = 1 << 20;

/// What the shell must do: a [`link::Transmit`] for the session of broker number `.0`.
pub type Transmit = (usize, link::Transmit);

/// What the core reports; brokers are numbered as given to [`Brokers::new`].
#[derive(Debug)]
pub enum Event {
    /// A request for the handler: it starts now.
    Request(Request),
    /// What broker `.0`'s session reported (never its `Request` or `Standing`: those are
    /// turned into the other variants).
    Link(usize, link::Event),
    /// Broker `broker` showed `standing`, new in its session or changed.
    Standing {
        /// The broker's number.
        broker: usize,
        /// Its standing.
        standing: Standing,
    },
    /// Request `rid` from `broker` (standing `standing`) was refused: broker `senior_broker`'s
    /// standing `senior` outranks it. `first` unless the same two standings caused the last
    /// refusal of this broker too (the shell logs the first loudly).
    Refused {
        /// The broker the request came from.
        broker: usize,
        /// The request's id.
        rid: Rid,
        /// That broker's standing.
        standing: Standing,
        /// The broker that outranks it.
        senior_broker: usize,
        /// Its standing.
        senior: Standing,
        /// The first refusal of `broker` for these two standings.
        first: bool,
    },
    /// A waiting request from this broker was dropped: its session ended before its turn.
    StaleRequest(usize),
    /// A request from this broker was dropped: [`WAITING`] requests already wait.
    Overflow(usize),
    /// A reply to a request that is not in hand was dropped (answered twice); it came from
    /// this broker.
    UnknownReply(usize),
}

/// A request in the handler's hands.
#[derive(Debug)]
struct InHand {
    broker: usize,
    session: u64,
    rid: Option<Rid>,
    ticket: u64,
    /// Parts of its reply kept for the REPLY (MDP/0.1 cannot send them before).
    parts: Message,
}

/// The last replies, for the re-announcement; bounded by count and bytes.
#[derive(Debug, Default)]
struct Replay {
    replies: VecDeque<(Rid, Message)>,
    bytes: usize,
}

impl Replay {
    fn size(rid: &Rid, body: &Message) -> usize {
        rid.as_bytes().len() + body.iter().map(|f| f.len()).sum::<usize>()
    }

    /// Keeps a copy of `body` under `rid`, forgetting the oldest replies past the bounds.
    fn push(&mut self, rid: &Rid, body: &Message) {
        let size = Self::size(rid, body);
        if size > REPLAY_BYTES {
            return;
        }
        while self.replies.len() >= pair::REPLAY || self.bytes + size > REPLAY_BYTES {
            let Some((old, old_body)) = self.replies.pop_front() else {
                break;
            };
            self.bytes -= Self::size(&old, &old_body);
        }
        // Own buffers: a received frame's buffer is not kept alive by a slice of it.
        let copy = body.iter().map(|f| f.to_vec()).collect();
        self.replies.push_back((rid.detached(), copy));
        self.bytes += size;
    }
}

/// A worker's sessions to its brokers and the requests in hand. See the [module docs](self).
#[derive(Debug)]
pub struct Brokers {
    links: Vec<WorkerCore>,
    waiting: VecDeque<Request>,
    /// The requests handed over and not answered yet, oldest first: at most `credit`.
    in_hand: Vec<InHand>,
    credit: usize,
    /// The protocol spoken: a 0.1 worker keeps the parts of a reply for its REPLY.
    dialect: crate::protocol::Dialect,
    tickets: u64,
    replay: Replay,
    /// Per broker: the session it last heard the re-announcement in (0: none yet).
    announced: Vec<u64>,
    /// Per broker: the two standings of its last refusal (to report the first one only).
    refusals: Vec<Option<(Standing, Standing)>>,
    stopped: bool,
    outbox: Outbox<Transmit, Event>,
}

impl Brokers {
    /// A worker for `service` at `brokers` brokers: one is a plain worker; two (or more) serve a
    /// pair, each session asking for request ids and standings ([`WorkerCore::new_paired`]).
    /// Every broker is asked for at once.
    pub fn new(brokers: usize, service: &str, options: WorkerOptions) -> Self {
        let credit = options.credit.max(1) as usize;
        let dialect = options.dialect;
        let links = (0..brokers)
            .map(|_| match brokers {
                1 => WorkerCore::new(service, options.clone()),
                _ => WorkerCore::new_paired(service, options.clone()),
            })
            .collect();
        let mut this = Self {
            links,
            waiting: VecDeque::new(),
            in_hand: Vec::new(),
            credit,
            dialect,
            tickets: 0,
            replay: Replay::default(),
            announced: vec![0; brokers],
            refusals: vec![None; brokers],
            stopped: false,
            outbox: Outbox::default(),
        };
        for k in 0..brokers {
            this.drain(k);
        }
        this
    }

    /// Broker `k`'s session core (its session number, standing, whether it is up).
    pub fn link(&self, k: usize) -> &WorkerCore {
        &self.links[k]
    }

    /// True once [`handle_shutdown`](Self::handle_shutdown) has run: the shell ends.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Broker `k`'s fresh socket is connected: a new session starts with READY.
    pub fn handle_connected(&mut self, k: usize, now: Instant) {
        self.with(k, |link| link.handle_connected(now));
    }

    /// A connect attempt to broker `k` failed.
    pub fn handle_connect_failed(&mut self, k: usize, error: String, now: Instant) {
        self.with(k, |link| link.handle_connect_failed(error, now));
    }

    /// A send to or receive from broker `k` failed: its session is over.
    pub fn handle_broker_lost(&mut self, k: usize, why: String, now: Instant) {
        self.with(k, |link| link.handle_broker_lost(why, now));
    }

    /// A message from broker `k`.
    pub fn handle_message(&mut self, k: usize, frames: Message, now: Instant) {
        self.with(k, |link| link.handle_message(frames, now));
    }

    /// Requests in the handler's hands, not answered yet.
    pub fn in_hand(&self) -> usize {
        self.in_hand.len()
    }

    /// The handler's reply to a request in hand: REPLY to its session (if that still
    /// stands), `Answered` to the other paired sessions; then the next request starts.
    pub fn handle_reply(&mut self, reply_to: ReplyTo, mut body: Message, now: Instant) {
        let k = reply_to.broker;
        let Some(at) = self
            .in_hand
            .iter()
            .position(|hand| hand.ticket == reply_to.ticket && hand.broker == k)
        else {
            self.outbox.event(Event::UnknownReply(k));
            return;
        };
        let mut hand = self.in_hand.remove(at);
        if !hand.parts.is_empty() {
            // MDP/0.1: the parts kept go in front of the reply's frames (the bridging rule).
            let mut whole = std::mem::take(&mut hand.parts);
            whole.append(body);
            body = whole;
        }
        // The news go out before the next request starts: a broker that hears `Running` of
        // the next while it still counts us busy with this one takes it for a stale report.
        let answered = hand.rid.map(|rid| (self.others(k, hand.session), rid));
        let reply = match &answered {
            Some(_) => body.clone(),
            None => std::mem::take(&mut body),
        };
        if let Some(link) = self.links.get_mut(k) {
            link.handle_reply(reply_to, reply, now);
            self.drain(k);
        }
        if let Some((others, rid)) = answered {
            for j in others {
                let news = PairFrames::Answered(rid.clone(), body.clone());
                self.send(j, WorkerCommand::Pair(news));
            }
            if self.links.len() > 1 {
                self.replay.push(&rid, &body);
            }
        }
        self.settle();
    }

    /// One part of the reply to `reply_to` (before its [`handle_reply`](Self::handle_reply)):
    /// an MDP/0.2 worker sends it as a PARTIAL now; a 0.1 worker keeps it for the REPLY.
    pub fn handle_partial(&mut self, reply_to: &ReplyTo, body: Message, now: Instant) {
        let k = reply_to.broker;
        let Some(hand) = self
            .in_hand
            .iter_mut()
            .find(|hand| hand.ticket == reply_to.ticket && hand.broker == k)
        else {
            self.outbox.event(Event::UnknownReply(k));
            return;
        };
        if !self.dialect.streams() {
            hand.parts.append(body);
            return;
        }
        if let Some(link) = self.links.get_mut(k) {
            link.handle_partial(reply_to, body, now);
            self.drain(k);
        }
    }

    /// The request handed over as `reply_to` never reached the handler (the shell could not
    /// pass it on): nothing is sent for it; the next request starts. A pair's other broker,
    /// told it runs, counts it against this worker's credit until it registers again.
    pub fn handle_dropped(&mut self, reply_to: &ReplyTo, _now: Instant) {
        self.in_hand.retain(|hand| hand.ticket != reply_to.ticket);
        self.settle();
    }

    /// The handle is gone: DISCONNECT to every broker with a session, and stop.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.stopped = true;
        self.waiting.clear();
        self.in_hand.clear();
        for k in 0..self.links.len() {
            self.with(k, |link| link.handle_shutdown(now));
        }
    }

    /// Runs `input` on broker `k`'s core and takes what it decided.
    fn with(&mut self, k: usize, input: impl FnOnce(&mut WorkerCore)) {
        let Some(link) = self.links.get_mut(k) else {
            return;
        };
        input(link);
        self.drain(k);
        self.settle();
    }

    /// Takes broker `k`'s transmits as they are, and its events: requests arrive, standings
    /// are remembered (and trigger the re-announcement), the rest is passed on.
    fn drain(&mut self, k: usize) {
        while let Some(transmit) = self.links[k].poll_transmit() {
            self.outbox.transmit((k, transmit));
        }
        while let Some(event) = self.links[k].poll_event() {
            match event {
                link::Event::Request(mut request) => {
                    request.reply_to.broker = k;
                    self.arrive(request);
                }
                link::Event::Standing(standing) => {
                    self.outbox.event(Event::Standing {
                        broker: k,
                        standing,
                    });
                    let session = self.links[k].session();
                    if self.announced[k] != session {
                        self.announced[k] = session;
                        self.announce(k);
                    }
                }
                other => self.outbox.event(Event::Link(k, other)),
            }
        }
    }

    /// A request from a broker: refused at once if fenced, else it waits for its turn.
    fn arrive(&mut self, request: Request) {
        let k = request.reply_to.broker;
        if let Some(rid) = &request.rid {
            if let Some(fence) = self.fenced(k) {
                self.refuse(k, rid.clone(), fence);
                return;
            }
        }
        if self.waiting.len() >= WAITING.max(self.credit) {
            self.outbox.event(Event::Overflow(k));
            return;
        }
        self.waiting.push_back(request);
    }

    /// Drops waiting requests whose session ended, and starts the next ones while the
    /// handler has room.
    fn settle(&mut self) {
        if self.stopped {
            return;
        }
        let links = &self.links;
        let mut stale = Vec::new();
        self.waiting.retain(|request| {
            let current = is_current(links, &request.reply_to);
            if !current {
                stale.push(request.reply_to.broker);
            }
            current
        });
        for k in stale {
            self.outbox.event(Event::StaleRequest(k));
        }
        while self.in_hand.len() < self.credit {
            let Some(mut request) = self.waiting.pop_front() else {
                return;
            };
            let (k, session) = (request.reply_to.broker, request.reply_to.session);
            if let Some(rid) = &request.rid {
                if let Some(fence) = self.fenced(k) {
                    self.refuse(k, rid.clone(), fence);
                    continue;
                }
                for j in self.others(k, session) {
                    self.send(j, WorkerCommand::Pair(PairFrames::Running(rid.clone())));
                }
            }
            self.tickets += 1;
            request.reply_to.ticket = self.tickets;
            self.in_hand.push(InHand {
                broker: k,
                session,
                rid: request.rid.clone(),
                ticket: self.tickets,
                parts: Message::new(),
            });
            self.outbox.event(Event::Request(request));
        }
    }

    /// Broker `k`'s standing, the broker that outranks it and its standing, if one does
    /// among the other brokers whose sessions are up.
    fn fenced(&self, k: usize) -> Option<(Standing, usize, Standing)> {
        let from = self.links[k].standing()?;
        let others: Vec<(usize, Standing)> = (0..self.links.len())
            .filter(|&j| j != k)
            .filter_map(|j| Some((j, self.links[j].standing()?)))
            .collect();
        let senior = pair::fence(&from, others.iter().map(|(_, s)| s))?;
        let (j, _) = others.iter().find(|(_, s)| *s == senior)?;
        Some((from, *j, senior))
    }

    fn refuse(&mut self, k: usize, rid: Rid, (standing, j, senior): (Standing, usize, Standing)) {
        self.send(
            k,
            WorkerCommand::Pair(PairFrames::Refused(rid.clone(), senior)),
        );
        let first = self.refusals[k] != Some((standing, senior));
        self.refusals[k] = Some((standing, senior));
        self.outbox.event(Event::Refused {
            broker: k,
            rid,
            standing,
            senior_broker: j,
            senior,
            first,
        });
    }

    /// The paired sessions other than broker `k`'s session `session`.
    fn others(&self, k: usize, session: u64) -> Vec<usize> {
        (0..self.links.len())
            .filter(|&j| {
                let link = &self.links[j];
                link.standing().is_some() && !(j == k && link.session() == session)
            })
            .collect()
    }

    /// Tells broker `k`, in its new session, the requests being run and the last replies.
    fn announce(&mut self, k: usize) {
        let session = self.links[k].session();
        let running: Vec<Rid> = self
            .in_hand
            .iter()
            .filter(|hand| (hand.broker, hand.session) != (k, session))
            .filter_map(|hand| hand.rid.clone())
            .collect();
        for rid in running {
            self.send(k, WorkerCommand::Pair(PairFrames::Running(rid)));
        }
        let replies: Vec<_> = self.replay.replies.iter().cloned().collect();
        for (rid, body) in replies {
            self.send(k, WorkerCommand::Pair(PairFrames::Answered(rid, body)));
        }
    }

    fn send(&mut self, k: usize, command: WorkerCommand) {
        self.outbox.transmit((k, link::Transmit::Send(command)));
    }
}

/// True if the request's session is the current one of its broker, and up.
fn is_current(links: &[WorkerCore], reply_to: &ReplyTo) -> bool {
    links
        .get(reply_to.broker)
        .is_some_and(|link| link.is_up() && link.session() == reply_to.session)
}

impl Core for Brokers {
    type Transmit = Transmit;
    type Event = Event;

    /// Every session's heartbeat and liveness timers.
    fn handle_timeout(&mut self, now: Instant) {
        for k in 0..self.links.len() {
            self.with(k, |link| link.handle_timeout(now));
        }
    }

    /// The earliest of the sessions' deadlines; `None` while no session is up.
    fn poll_timeout(&self) -> Option<Instant> {
        self.links.iter().filter_map(WorkerCore::poll_timeout).min()
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests;
