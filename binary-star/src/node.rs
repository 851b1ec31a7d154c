//! One Binary Star server's decisions, with no sockets and no clock.
//!
//! [`Node`] wraps the [`fsm`] table with the timing around it: when to publish the
//! state (every heartbeat, at once after a change, at once when our state SUB connects, and at
//! once to a peer that just appeared or came back, so a restarted server pairs without waiting
//! a heartbeat), when the peer expires (`liveness`
//! heartbeats after its last state message), and what to do after this process itself was
//! frozen. It follows [`common::contract::Core`]: inputs are [`Node::handle_peer`],
//! [`Node::handle_link_up`], [`Node::handle_request`] and `handle_timeout`, all with `now`; state
//! messages to publish come out of `poll_transmit`, [`Event`]s to log out of `poll_event`, and
//! the client requests to serve out of [`Node::poll_request`]. The node keeps the requests that
//! arrive while it is quiet after a stall (at most [`MAX_HELD`]) and decides them again when the
//! quiet time ends. The reactor around it ([`crate::node_loop`]) only moves bytes. (A shell that
//! keeps requests itself, as the Majordomo broker pair does, asks
//! [`Node::client_request_verdict`] for a [`Verdict`] instead.)
//!
//! # The stall rule (our addition to the Guide)
//!
//! A server that was stopped (SIGSTOP, a VM pause, a long GC-like hiccup) wakes up with an
//! out-of-date view of the world: its peer may have declared it dead and taken over, and the
//! peer's state messages telling so are still queued in its socket. If it published ACTIVE
//! before reading them, the healthy peer would hit "dual actives" and stop too, leaving nobody
//! to serve. So when the node notices it is more than half a heartbeat late for its own
//! heartbeat, it goes *quiet* for one and a half heartbeats: it reads peer states (which can end
//! in the dual-active error for *this* server), holds client requests, and publishes nothing.
//! Only then does it publish and serve again. The healthy peer keeps serving throughout.
//!
//! # Epochs: settling dual actives and dual passives (our addition to the Guide)
//!
//! A network partition is not a crash: both servers live on, the backup takes over by client
//! vote, and when the link heals each hears the other ACTIVE (the state messages queued during
//! the partition arrive first). The Guide aborts there, and loses both servers. So every node
//! keeps an *epoch* (a term, as in Raft), carried in each state message (`3:17`, see
//! [`crate::protocol`]):
//!
//! * a node that becomes ACTIVE increments its epoch: the newest takeover has the highest one;
//! * a node adopts any higher epoch it hears, so a passive node knows the current term and its
//!   next takeover outranks it; an active node that hears a higher epoch from a passive peer
//!   adopts it too (it stays active in a term nobody contests);
//! * an ACTIVE or PASSIVE message whose epoch is lower than ours is *stale* (sent before a
//!   takeover we already know of, e.g. queued during a partition): it proves the peer is alive
//!   but does not drive the state machine. PRIMARY and BACKUP messages are never stale: they
//!   come from a process that just started, whose epoch begins at 0;
//! * on ACTIVE + PEER_ACTIVE the *junior* steps down to PASSIVE, on PASSIVE + PEER_PASSIVE the
//!   *senior* takes over. Senior = the higher epoch, a tie goes to the primary. Both servers see
//!   the same two (epoch, role) pairs and reach the same answer without another round trip
//!   (for dual passives with different epochs the junior's message is stale at the senior, so
//!   it settles one heartbeat later, once the junior has adopted the senior's epoch: a stale
//!   message never makes a server take over).
//!
//! A peer that sends the Guide's bare digit has no epoch: its messages are never stale, and in
//! a conflict its epoch counts as 0. With [`OnConflict::Abort`] none of this applies: dual
//! states are [`Fatal`], as in the Guide.

use crate::fsm::{self, Conflict, Decision, Fatal, Reason, Rejection, Role, State};
use crate::protocol::StateMessage;
use common::contract::{self, Core, Outbox};
use common::Message;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Guide default: a state message every second.
pub const HEARTBEAT: Duration = Duration::from_millis(1000);
/// Guide default: the peer is gone after 2 heartbeats without a state message.
pub const LIVENESS: u32 = 2;
/// Requests held during a quiet time beyond this many are dropped (the clients retry).
pub const MAX_HELD: usize = 10_000;

/// Heartbeat timing; both servers of a pair must use the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Interval between state messages.
    pub heartbeat: Duration,
    /// Heartbeats without a state message after which the peer counts as gone.
    pub liveness: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat: HEARTBEAT,
            liveness: LIVENESS,
        }
    }
}

impl Timing {
    /// How long the peer may stay silent before it expires (`liveness × heartbeat`,
    /// saturating).
    pub fn peer_ttl(&self) -> Duration {
        self.heartbeat.saturating_mul(self.liveness.max(1))
    }

    /// Lateness of our own heartbeat that counts as a stall.
    fn stall_threshold(&self) -> Duration {
        self.heartbeat / 2
    }

    /// How long to listen without publishing or serving after a stall.
    fn quiet(&self) -> Duration {
        self.heartbeat.saturating_add(self.heartbeat / 2)
    }
}

/// What to do when both servers are ACTIVE, or both PASSIVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Settle it by epoch: the junior ACTIVE steps down, the senior PASSIVE takes over.
    #[default]
    Resolve,
    /// The Guide's behaviour: stop with a [`Fatal`] error (for teaching).
    Abort,
}

impl std::str::FromStr for OnConflict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "resolve" => Ok(OnConflict::Resolve),
            "abort" => Ok(OnConflict::Abort),
            other => Err(format!("expected resolve or abort, got {other:?}")),
        }
    }
}

impl std::fmt::Display for OnConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnConflict::Resolve => "resolve",
            OnConflict::Abort => "abort",
        })
    }
}

/// A state message to publish on the state PUB socket: this state, in this epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish(pub State, pub u64);

/// Something the reactor must log (or act on: a state change, the end of a stall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The server changed state; tell the application.
    Changed {
        /// The state before.
        from: State,
        /// The state now.
        to: State,
        /// Why.
        reason: Reason,
        /// Our epoch after the change.
        epoch: u64,
    },
    /// First news from the peer, a new peer state, or the peer back after it had expired.
    PeerState {
        /// What the peer says it is.
        peer: State,
        /// How long it had been silent, if it had expired.
        after_silence: Option<Duration>,
    },
    /// The peer has been silent for the whole expiry time.
    PeerExpired {
        /// Time since its last state message (or since start, if never heard).
        silent: Duration,
    },
    /// The peer claims the same role as this server: both were started `-p` (or both `-b`).
    SameRole(State),
    /// This process was frozen: it now listens for a while before publishing or serving.
    Stalled {
        /// How late our own heartbeat was.
        late: Duration,
    },
    /// The quiet time after a stall is over: serve the held requests, publish again. (A node
    /// that holds the requests itself, through [`Node::handle_request`], has decided them
    /// already; [`Node::released`] says how many there were.)
    Resumed,
    /// A client request given to [`Node::handle_request`] was dropped unanswered (the client
    /// will time out and try the other server).
    Rejected {
        /// The state that refused it.
        state: State,
        /// Why.
        why: Rejection,
        /// The first rejection since the last change of state (the one worth a warning).
        first: bool,
    },
    /// A client request arrived while [`MAX_HELD`] were held already: dropped.
    HeldFull,
    /// Both servers are ACTIVE, or both PASSIVE, under [`OnConflict::Abort`]: this server must
    /// stop (the shell logs it and exits).
    Fatal(Fatal),
    /// A state message older than our epoch was ignored (the first of a run of them).
    Stale {
        /// What it said.
        peer: State,
        /// Its epoch.
        epoch: u64,
        /// Ours.
        ours: u64,
    },
    /// Dual actives and we are senior: we stay ACTIVE (the peer steps down).
    Senior {
        /// The peer's epoch (0 for a peer without epochs).
        peer_epoch: u64,
        /// Ours.
        ours: u64,
    },
}

/// What to do with one client request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it to the application and send the reply.
    Serve,
    /// Drop it unanswered (the client will time out and try the other server).
    Reject(Rejection),
    /// Keep it until [`Event::Resumed`], then ask again.
    Hold,
}

/// A client request as the frontend ROUTER received it, split for the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The routing frames to put back in front of the reply (the id, and the delimiter a REQ
    /// client adds).
    pub envelope: Message,
    /// What the service gets.
    pub body: Message,
}

/// The decisions of one server of a Binary Star pair.
#[derive(Debug, Clone)]
pub struct Node {
    role: Role,
    state: State,
    timing: Timing,
    on_conflict: OnConflict,
    epoch: u64,
    stale_run: u64,
    started: Instant,
    peer_expiry: Instant,
    last_heard: Option<Instant>,
    last_peer_state: Option<State>,
    peer_expired: bool,
    warned_same_role: bool,
    next_publish: Instant,
    quiet_until: Option<Instant>,
    /// The split-brain error the last peer message ended in.
    fatal: Option<Fatal>,
    /// Requests from [`Node::handle_request`] kept while quiet, in arrival order.
    held: VecDeque<Request>,
    /// How many were held when the last quiet time ended.
    released: usize,
    /// Requests rejected since the last change of state.
    rejections: u64,
    /// Requests to serve, each with the number of events queued before it was decided: it
    /// leaves [`Node::poll_request`] only once those are polled, so a shell that asks for
    /// requests before events still logs and serves in the order things were decided.
    to_serve: VecDeque<(u64, Request)>,
    events_queued: u64,
    events_polled: u64,
    outbox: Outbox<Publish, Event>,
}

impl Node {
    /// A server of `role` starting at `now`. It publishes its state at once, and (like the
    /// Guide's `bstar_start`) gives the peer one expiry time to show up.
    pub fn new(role: Role, timing: Timing, now: Instant) -> Node {
        Node {
            role,
            state: role.initial_state(),
            timing,
            on_conflict: OnConflict::Resolve,
            epoch: 0,
            stale_run: 0,
            started: now,
            peer_expiry: contract::saturating_add(now, timing.peer_ttl()),
            last_heard: None,
            last_peer_state: None,
            peer_expired: false,
            warned_same_role: false,
            next_publish: now,
            quiet_until: None,
            fatal: None,
            held: VecDeque::new(),
            released: 0,
            rejections: 0,
            to_serve: VecDeque::new(),
            events_queued: 0,
            events_polled: 0,
            outbox: Outbox::default(),
        }
    }

    /// The same node with another conflict rule (the default is [`OnConflict::Resolve`]).
    pub fn with_on_conflict(mut self, on_conflict: OnConflict) -> Node {
        self.on_conflict = on_conflict;
        self
    }

    /// The current epoch: incremented on every move to ACTIVE, raised to any higher one heard.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// This server's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The timing this node runs with.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// When the peer counts as gone unless it publishes again.
    pub fn peer_expiry(&self) -> Instant {
        self.peer_expiry
    }

    /// True while listening after a stall.
    pub fn is_quiet(&self) -> bool {
        self.quiet_until.is_some()
    }

    /// The split-brain error the last peer message ended in, if any (the same as its
    /// [`Event::Fatal`], for a shell that stops at once without logging what came before).
    pub fn fatal(&self) -> Option<Fatal> {
        self.fatal
    }

    /// Requests held now (quiet after a stall), from [`Node::handle_request`].
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Requests that were held when the last quiet time ended (what [`Event::Resumed`] is
    /// logged with).
    pub fn released(&self) -> usize {
        self.released
    }

    fn event(&mut self, event: Event) {
        self.events_queued += 1;
        self.outbox.event(event);
    }

    /// The peer published `peer` as a bare digit (the Guide's format, no epoch); see
    /// [`handle_peer`](Self::handle_peer).
    pub fn handle_peer_state(&mut self, peer: State, now: Instant) {
        self.handle_peer(
            StateMessage {
                state: peer,
                epoch: None,
            },
            now,
        )
    }

    /// The peer published a state message. Under [`OnConflict::Abort`] a dual-active or
    /// dual-passive pair is an [`Event::Fatal`] (also kept in [`Node::fatal`]): the server must
    /// stop. Under [`OnConflict::Resolve`] it never happens.
    pub fn handle_peer(&mut self, message: StateMessage, now: Instant) {
        self.fatal = None;
        let peer = message.state;
        self.check_stall(now);
        let after_silence = self
            .peer_expired
            .then(|| now - self.last_heard.unwrap_or(self.started));
        let newcomer = after_silence.is_some() || self.last_heard.is_none();
        self.last_heard = Some(now);
        self.peer_expired = false;
        self.peer_expiry = contract::saturating_add(now, self.timing.peer_ttl());
        let resolve = self.on_conflict == OnConflict::Resolve;
        if let (true, Some(epoch), State::Active | State::Passive) = (resolve, message.epoch, peer)
        {
            if epoch < self.epoch {
                // Sent before a takeover we know of: the peer is alive, nothing more.
                self.stale_run += 1;
                if self.stale_run == 1 {
                    self.event(Event::Stale {
                        peer,
                        epoch,
                        ours: self.epoch,
                    });
                }
                if newcomer && !self.is_quiet() {
                    self.publish_now(now);
                }
                return;
            }
        }
        self.stale_run = 0;
        if after_silence.is_some() || self.last_peer_state != Some(peer) {
            self.event(Event::PeerState {
                peer,
                after_silence,
            });
        }
        self.last_peer_state = Some(peer);
        if peer == self.role.initial_state() && !self.warned_same_role {
            self.warned_same_role = true;
            self.event(Event::SameRole(peer));
        }
        let peer_epoch = message.epoch.unwrap_or(0);
        let conflict = if !resolve {
            Conflict::Abort
        } else if (peer_epoch, self.role == Role::Backup) > (self.epoch, self.role == Role::Primary)
        {
            // Higher epoch first; on a tie the primary (whose peer is the backup) is senior.
            Conflict::PeerSenior
        } else {
            Conflict::WeAreSenior
        };
        let ours = self.epoch;
        self.epoch = self.epoch.max(peer_epoch);
        let decision = match fsm::step(
            self.state,
            fsm::Event::Peer(peer),
            now,
            self.peer_expiry,
            conflict,
        ) {
            Ok(decision) => decision,
            Err(fatal) => {
                self.fatal = Some(fatal);
                return self.event(Event::Fatal(fatal));
            }
        };
        match decision {
            Decision::Become(to, reason) => self.change(to, reason, now),
            Decision::Reassert => {
                self.event(Event::Senior { peer_epoch, ours });
                if !self.is_quiet() {
                    self.publish_now(now);
                }
            }
            // A peer that just (re)appeared learns our state now, not a heartbeat later: a
            // restarted primary hears at once that the backup is ACTIVE.
            _ if newcomer && !self.is_quiet() => self.publish_now(now),
            // Peer events never serve or reject; nothing else to do.
            Decision::Stay | Decision::Serve | Decision::TakeOver(_) | Decision::Reject(_) => {}
        }
    }

    /// A third party that hears both servers (a worker registered with both, say) reports the
    /// peer ACTIVE in `peer_epoch`, while the peer's own state messages may not have reached us
    /// yet (after a partition heals, connections come back in any order). If that makes the
    /// peer senior (the same rule as for dual actives), an ACTIVE node steps down to PASSIVE at
    /// once; any node adopts a higher epoch. A senior report also counts as a sign of life: the
    /// peer's expiry starts again from `now`, so the next client request is not a vote that
    /// takes over again at once (measured under chaos: a deposed primary, fenced at the heal
    /// of a partition before the peer's state messages came back, retook ACTIVE on the
    /// clients' held requests, outranked the backup that had been serving, and a request ran
    /// on both sides). If the peer really is gone, the takeover waits one more expiry. Under
    /// [`OnConflict::Abort`] it is ignored: the Guide's pair has no epochs.
    pub fn handle_fence(&mut self, peer_epoch: u64, now: Instant) {
        if self.on_conflict == OnConflict::Abort {
            return;
        }
        let peer_senior =
            (peer_epoch, self.role == Role::Backup) > (self.epoch, self.role == Role::Primary);
        self.epoch = self.epoch.max(peer_epoch);
        if !peer_senior {
            return;
        }
        self.peer_expiry = self
            .peer_expiry
            .max(contract::saturating_add(now, self.timing.peer_ttl()));
        if self.state == State::Active {
            self.change(State::Passive, Reason::SeniorReported, now);
        }
    }

    fn publish_now(&mut self, now: Instant) {
        self.outbox.transmit(Publish(self.state, self.epoch));
        self.next_publish = contract::saturating_add(now, self.timing.heartbeat);
    }

    /// Our state SUB just (re)connected to the peer's PUB. Publish our state at once: if the
    /// peer's SUB was connected first, its start-up state went out before we listened, and the
    /// pair would otherwise wait a heartbeat to learn about each other.
    pub fn handle_link_up(&mut self, now: Instant) {
        self.check_stall(now);
        if !self.is_quiet() {
            self.publish_now(now);
        }
    }

    /// A client request arrived: serve it, drop it, or hold it while quiet after a stall.
    pub fn client_request_verdict(&mut self, now: Instant) -> Verdict {
        self.check_stall(now);
        if self.is_quiet() {
            return Verdict::Hold;
        }
        // Client requests never meet a conflict cell.
        match fsm::step(
            self.state,
            fsm::Event::ClientRequest,
            now,
            self.peer_expiry,
            Conflict::Abort,
        ) {
            Ok(Decision::Serve) => Verdict::Serve,
            Ok(Decision::TakeOver(reason)) => {
                self.change(State::Active, reason, now);
                Verdict::Serve
            }
            Ok(Decision::Reject(why)) => Verdict::Reject(why),
            // The table has no other outcome for a client request.
            Ok(Decision::Stay | Decision::Become(..) | Decision::Reassert) | Err(_) => {
                Verdict::Reject(Rejection::PeerAlive)
            }
        }
    }

    /// A client request arrived, the whole of it: the node serves it (it comes out of
    /// [`Node::poll_request`]), rejects it ([`Event::Rejected`]), or keeps it while quiet after
    /// a stall and decides it again when the quiet time ends (at most [`MAX_HELD`]; more are
    /// dropped, [`Event::HeldFull`]). [`Node::client_request_verdict`] is the same decision for
    /// a shell that keeps the requests itself.
    pub fn handle_request(&mut self, request: Request, now: Instant) {
        let mark = self.events_queued;
        self.decide(request, mark, now);
    }

    fn decide(&mut self, request: Request, mark: u64, now: Instant) {
        match self.client_request_verdict(now) {
            Verdict::Serve => self.to_serve.push_back((mark, request)),
            Verdict::Reject(why) => {
                self.rejections += 1;
                self.event(Event::Rejected {
                    state: self.state,
                    why,
                    first: self.rejections == 1,
                });
            }
            Verdict::Hold if self.held.len() >= MAX_HELD => self.event(Event::HeldFull),
            Verdict::Hold => self.held.push_back(request),
        }
    }

    /// The next request to pass to the service, once the events decided before it are polled.
    pub fn poll_request(&mut self) -> Option<Request> {
        match self.to_serve.front() {
            Some((mark, _)) if *mark <= self.events_polled => {
                self.to_serve.pop_front().map(|(_, request)| request)
            }
            _ => None,
        }
    }

    fn check_expiry(&mut self, now: Instant) {
        if !self.peer_expired && now >= self.peer_expiry {
            self.peer_expired = true;
            let silent = now - self.last_heard.unwrap_or(self.started);
            self.event(Event::PeerExpired { silent });
        }
    }

    fn change(&mut self, to: State, reason: Reason, now: Instant) {
        let from = self.state;
        self.state = to;
        self.rejections = 0;
        if to == State::Active {
            // A takeover starts a new term, senior to every one this node has heard of.
            // Saturating: the epoch comes from the network, a peer may send u64::MAX.
            self.epoch = self.epoch.saturating_add(1);
        }
        self.event(Event::Changed {
            from,
            to,
            reason,
            epoch: self.epoch,
        });
        if !self.is_quiet() {
            // Tell the peer at once rather than at the next heartbeat.
            self.publish_now(now);
        }
    }

    fn check_stall(&mut self, now: Instant) {
        if self.is_quiet() {
            return;
        }
        let late = now.saturating_duration_since(self.next_publish);
        if late >= self.timing.stall_threshold() {
            self.quiet_until = Some(contract::saturating_add(now, self.timing.quiet()));
            self.event(Event::Stalled { late });
        }
    }
}

impl Core for Node {
    type Transmit = Publish;
    type Event = Event;

    /// Runs the timers: the stall check, the end of a quiet time, the heartbeat, the peer's
    /// expiry.
    fn handle_timeout(&mut self, now: Instant) {
        self.check_stall(now);
        if let Some(until) = self.quiet_until {
            if now < until {
                return self.check_expiry(now);
            }
            self.quiet_until = None;
            self.next_publish = now;
            self.event(Event::Resumed);
            // Every held request is decided now, as of the end of the quiet time.
            let held = std::mem::take(&mut self.held);
            self.released = held.len();
            let mark = self.events_queued;
            for request in held {
                self.decide(request, mark, now);
            }
        }
        if now >= self.next_publish {
            self.publish_now(now);
        }
        self.check_expiry(now);
    }

    /// The next heartbeat (or the end of a quiet time), or the peer's expiry if sooner.
    fn poll_timeout(&self) -> Option<Instant> {
        let own = self.quiet_until.unwrap_or(self.next_publish);
        Some(if self.peer_expired {
            own
        } else {
            own.min(self.peer_expiry)
        })
    }

    fn poll_transmit(&mut self) -> Option<Publish> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        let event = self.outbox.poll_event();
        self.events_polled += u64::from(event.is_some());
        event
    }
}

/// The peer inputs as they returned before the split-brain error became an event, for tests.
#[cfg(test)]
impl Node {
    fn peer(&mut self, message: StateMessage, now: Instant) -> Result<(), Fatal> {
        self.handle_peer(message, now);
        self.fatal.map_or(Ok(()), Err)
    }

    fn peer_state(&mut self, peer: State, now: Instant) -> Result<(), Fatal> {
        self.handle_peer_state(peer, now);
        self.fatal.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const HB: Duration = Duration::from_millis(1000);

    fn timing() -> Timing {
        Timing::default()
    }

    /// What the node asked for: an event to log or a state message to publish.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Notice {
        E(Event),
        Publish(State, u64),
    }

    /// Runs the timers at `now` and takes everything out, events first (as the reactor does).
    fn drain(node: &mut Node, now: Instant) -> Vec<Notice> {
        node.handle_timeout(now);
        let mut out: Vec<_> = std::iter::from_fn(|| node.poll_event())
            .map(Notice::E)
            .collect();
        out.extend(
            std::iter::from_fn(|| node.poll_transmit()).map(|Publish(s, e)| Notice::Publish(s, e)),
        );
        out
    }

    /// Polls at every deadline from `from` up to and including `to`, like the reactor would.
    fn run(node: &mut Node, from: Instant, to: Instant) -> Vec<Notice> {
        let mut now = from;
        let mut out = Vec::new();
        loop {
            let due = node.poll_timeout().unwrap().max(now);
            if due > to {
                break;
            }
            now = due;
            out.extend(drain(node, now));
        }
        out.extend(drain(node, to));
        out
    }

    fn publishes(notices: &[Notice]) -> Vec<State> {
        notices
            .iter()
            .filter_map(|n| match n {
                Notice::Publish(s, _) => Some(*s),
                _ => None,
            })
            .collect()
    }

    fn msg(state: State, epoch: u64) -> StateMessage {
        StateMessage {
            state,
            epoch: Some(epoch),
        }
    }

    /// A primary that has paired with a backup and is ACTIVE, heartbeat published at `t0`.
    fn active_primary(t0: Instant) -> Node {
        let mut node = Node::new(Role::Primary, timing(), t0);
        node.peer_state(State::Backup, t0).unwrap();
        drain(&mut node, t0);
        assert_eq!(node.state(), State::Active);
        node
    }

    #[test]
    fn durations_of_u64_max_milliseconds_never_panic() {
        let huge = Timing {
            heartbeat: Duration::from_millis(u64::MAX),
            liveness: u32::MAX,
        };
        assert_eq!(huge.peer_ttl(), Duration::MAX);
        let t0 = Instant::now();
        let mut node = Node::new(Role::Primary, huge, t0);
        assert_eq!(drain(&mut node, t0), [Notice::Publish(State::Primary, 0)]);
        node.peer_state(State::Backup, t0 + MS).unwrap();
        drain(&mut node, t0 + MS);
        assert_eq!(node.state(), State::Active);
        let next = node.poll_timeout().unwrap();
        assert!(next > t0 + Duration::from_secs(3600 * 24 * 365), "far away");
        // Hours late: a stall by any measure, handled without overflow.
        assert!(drain(&mut node, t0 + Duration::from_secs(3600)).is_empty());
    }

    #[test]
    fn publishes_at_start_then_every_heartbeat() {
        let t0 = Instant::now();
        let mut node = Node::new(Role::Backup, timing(), t0);
        assert_eq!(node.poll_timeout().unwrap(), t0);
        assert_eq!(drain(&mut node, t0), [Notice::Publish(State::Backup, 0)]);
        assert_eq!(node.poll_timeout().unwrap(), t0 + HB);
        assert!(drain(&mut node, t0 + HB - MS).is_empty());
        assert_eq!(
            drain(&mut node, t0 + HB),
            [Notice::Publish(State::Backup, 0)]
        );
        assert_eq!(node.poll_timeout().unwrap(), t0 + 2 * HB);
    }

    #[test]
    fn pairing_publishes_the_new_state_at_once() {
        let t0 = Instant::now();
        let mut primary = Node::new(Role::Primary, timing(), t0);
        drain(&mut primary, t0);
        let t = t0 + 300 * MS;
        primary.peer_state(State::Backup, t).unwrap();
        assert_eq!(
            drain(&mut primary, t),
            [
                Notice::E(Event::PeerState {
                    peer: State::Backup,
                    after_silence: None
                }),
                Notice::E(Event::Changed {
                    from: State::Primary,
                    to: State::Active,
                    reason: Reason::BackupIsWaiting,
                    epoch: 1,
                }),
                Notice::Publish(State::Active, 1),
            ]
        );
        // The heartbeat schedule restarts from the change.
        assert!(drain(&mut primary, t + HB - MS).is_empty());
        assert_eq!(
            drain(&mut primary, t + HB),
            [Notice::Publish(State::Active, 1)]
        );
    }

    #[test]
    fn a_peer_that_appears_or_comes_back_gets_our_state_at_once() {
        let t0 = Instant::now();
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer_state(State::Active, t0).unwrap();
        drain(&mut backup, t0);
        // The primary dies, the backup takes over…
        let expiry = t0 + 2 * HB;
        run(&mut backup, t0, expiry);
        assert_eq!(backup.client_request_verdict(expiry), Verdict::Serve);
        run(&mut backup, expiry, expiry + 2 * HB);
        // …and the restarted primary's first state message is answered at once.
        let back = expiry + 2 * HB + 300 * MS;
        run(&mut backup, expiry + 2 * HB, back - MS);
        backup.peer_state(State::Primary, back).unwrap();
        assert_eq!(publishes(&drain(&mut backup, back)), [State::Active]);
        // The next state message from the same peer is not: only the heartbeat.
        backup.peer_state(State::Passive, back + MS).unwrap();
        assert!(publishes(&drain(&mut backup, back + MS)).is_empty());
    }

    #[test]
    fn a_new_state_link_publishes_our_state_at_once() {
        let t0 = Instant::now();
        let mut node = Node::new(Role::Primary, timing(), t0);
        drain(&mut node, t0);
        let up = t0 + 30 * MS;
        node.handle_link_up(up);
        assert_eq!(drain(&mut node, up), [Notice::Publish(State::Primary, 0)]);
        // The heartbeat schedule restarts from there.
        assert_eq!(
            node.poll_timeout().unwrap(),
            (up + HB).min(node.peer_expiry())
        );
        assert_eq!(
            drain(&mut node, up + HB),
            [Notice::Publish(State::Primary, 0)]
        );
    }

    #[test]
    fn the_same_peer_state_is_reported_once() {
        let t0 = Instant::now();
        let mut node = active_primary(t0);
        node.peer_state(State::Passive, t0 + 100 * MS).unwrap();
        node.peer_state(State::Passive, t0 + 900 * MS).unwrap();
        let notices = drain(&mut node, t0 + 900 * MS);
        let peer_lines = notices
            .iter()
            .filter(|n| matches!(n, Notice::E(Event::PeerState { .. })))
            .count();
        assert_eq!(peer_lines, 1);
    }

    #[test]
    fn passive_takes_over_on_the_first_request_after_the_peer_expires() {
        let t0 = Instant::now();
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer_state(State::Active, t0).unwrap();
        drain(&mut backup, t0);
        assert_eq!(backup.state(), State::Passive);
        // The primary keeps publishing until t0 + 1 s, then dies.
        let mut t = t0;
        while t < t0 + HB {
            t += HB;
            drain(&mut backup, t);
            backup.peer_state(State::Active, t).unwrap();
        }
        let last_heard = t;
        assert_eq!(backup.peer_expiry(), last_heard + 2 * HB);
        let early = last_heard + 2 * HB - MS;
        run(&mut backup, t, early);
        assert_eq!(
            backup.client_request_verdict(early),
            Verdict::Reject(Rejection::PeerAlive)
        );
        // At the expiry the node says so (once), and the next request takes over.
        let expiry = last_heard + 2 * HB;
        assert_eq!(backup.poll_timeout().unwrap(), expiry);
        let notices = run(&mut backup, early, expiry);
        assert!(notices.contains(&Notice::E(Event::PeerExpired { silent: 2 * HB })));
        assert!(!drain(&mut backup, expiry)
            .iter()
            .any(|n| matches!(n, Notice::E(Event::PeerExpired { .. }))));
        let vote = expiry + 10 * MS;
        assert_eq!(backup.client_request_verdict(vote), Verdict::Serve);
        assert_eq!(backup.state(), State::Active);
        assert_eq!(
            drain(&mut backup, vote),
            [
                Notice::E(Event::Changed {
                    from: State::Passive,
                    to: State::Active,
                    reason: Reason::PeerExpired,
                    epoch: 1,
                }),
                Notice::Publish(State::Active, 1)
            ]
        );
    }

    #[test]
    fn a_restarted_primary_hears_the_active_backup_and_goes_passive() {
        let t0 = Instant::now();
        let mut primary = Node::new(Role::Primary, timing(), t0);
        drain(&mut primary, t0);
        // A client that still knows this address asks before the backup was heard: rejected.
        assert_eq!(
            primary.client_request_verdict(t0 + 100 * MS),
            Verdict::Reject(Rejection::PeerAlive)
        );
        primary.peer_state(State::Active, t0 + 400 * MS).unwrap();
        assert_eq!(primary.state(), State::Passive);
        let notices = drain(&mut primary, t0 + 400 * MS);
        assert!(notices.contains(&Notice::Publish(State::Passive, 0)));
    }

    #[test]
    fn a_lonely_primary_serves_after_one_expiry() {
        let t0 = Instant::now();
        let mut primary = Node::new(Role::Primary, timing(), t0);
        let mut t = t0;
        while t < t0 + 2 * HB {
            drain(&mut primary, t);
            t = primary.poll_timeout().unwrap();
        }
        assert_eq!(t, t0 + 2 * HB);
        let notices = drain(&mut primary, t);
        assert!(notices.contains(&Notice::E(Event::PeerExpired { silent: 2 * HB })));
        assert_eq!(primary.client_request_verdict(t), Verdict::Serve);
        assert_eq!(primary.state(), State::Active);
    }

    #[test]
    fn a_peer_back_after_expiry_is_reported_with_its_silence() {
        let t0 = Instant::now();
        let mut node = active_primary(t0);
        let mut t = t0;
        while t < t0 + 5 * HB {
            t += HB;
            drain(&mut node, t);
        }
        node.peer_state(State::Backup, t).unwrap();
        let notices = drain(&mut node, t);
        assert!(notices.contains(&Notice::E(Event::PeerState {
            peer: State::Backup,
            after_silence: Some(5 * HB)
        })));
        assert_eq!(node.state(), State::Active);
    }

    #[test]
    fn dual_states_are_fatal_under_the_guides_rule() {
        let t0 = Instant::now();
        let mut node = active_primary(t0).with_on_conflict(OnConflict::Abort);
        assert_eq!(node.peer_state(State::Active, t0), Err(Fatal::DualActive));
        // Epochs change nothing under the Guide's rule.
        let mut node = active_primary(t0).with_on_conflict(OnConflict::Abort);
        assert_eq!(node.peer(msg(State::Active, 0), t0), Err(Fatal::DualActive));
        let mut backup = Node::new(Role::Backup, timing(), t0).with_on_conflict(OnConflict::Abort);
        backup.peer_state(State::Active, t0).unwrap();
        assert_eq!(
            backup.peer_state(State::Passive, t0),
            Err(Fatal::DualPassive)
        );
    }

    #[test]
    fn dual_actives_in_the_same_epoch_the_primary_stays_and_reasserts_the_backup_steps_down() {
        let t0 = Instant::now();
        let mut primary = active_primary(t0);
        let t = t0 + 10 * MS;
        primary.peer(msg(State::Active, 1), t).unwrap();
        assert_eq!(primary.state(), State::Active);
        let notices = drain(&mut primary, t);
        assert!(notices.contains(&Notice::E(Event::Senior {
            peer_epoch: 1,
            ours: 1
        })));
        assert_eq!(publishes(&notices), [State::Active], "re-announced at once");

        // A backup that became ACTIVE in epoch 1 (it never heard the primary) hears it.
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer(msg(State::Active, 0), t0).unwrap();
        let expiry = t0 + 2 * HB;
        run(&mut backup, t0, expiry);
        assert_eq!(backup.client_request_verdict(expiry), Verdict::Serve);
        assert_eq!((backup.state(), backup.epoch()), (State::Active, 1));
        backup.peer(msg(State::Active, 1), expiry + MS).unwrap();
        assert_eq!(backup.state(), State::Passive);
        let notices = drain(&mut backup, expiry + MS);
        assert!(notices.contains(&Notice::E(Event::Changed {
            from: State::Active,
            to: State::Passive,
            reason: Reason::DualActivePeerSenior,
            epoch: 1
        })));
    }

    #[test]
    fn a_peer_with_bare_digits_is_never_stale_and_counts_as_epoch_0() {
        let t0 = Instant::now();
        let mut primary = active_primary(t0);
        // The Guide's C backup, after taking over, says "3": we are senior and stay ACTIVE
        // (the C peer applies its own table to our "3:1").
        primary.peer_state(State::Active, t0 + MS).unwrap();
        assert_eq!(primary.state(), State::Active);
        // A passive node hears bare "1" from a restarted C primary: the Guide's cell applies.
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer(msg(State::Active, 7), t0).unwrap();
        assert_eq!((backup.state(), backup.epoch()), (State::Passive, 7));
        backup.peer_state(State::Primary, t0 + MS).unwrap();
        assert_eq!((backup.state(), backup.epoch()), (State::Active, 8));
    }

    #[test]
    fn a_stale_message_keeps_the_peer_alive_but_changes_nothing() {
        let t0 = Instant::now();
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer(msg(State::Active, 1), t0).unwrap();
        let expiry = t0 + 2 * HB;
        run(&mut backup, t0, expiry);
        assert_eq!(backup.client_request_verdict(expiry), Verdict::Serve);
        assert_eq!(backup.epoch(), 2);
        drain(&mut backup, expiry);
        // The old primary's ACTIVE messages from epoch 1 arrive after a heal.
        for i in 1..=5u32 {
            let t = expiry + 100 * MS * i;
            backup.peer(msg(State::Active, 1), t).unwrap();
            assert_eq!(backup.state(), State::Active);
            assert!(t < backup.peer_expiry(), "the peer counts as alive");
        }
        let stale = drain(&mut backup, expiry + 500 * MS)
            .into_iter()
            .filter(|n| matches!(n, Notice::E(Event::Stale { .. })))
            .count();
        assert_eq!(stale, 1, "reported once per run");
    }

    #[test]
    fn the_largest_epoch_on_the_wire_does_not_overflow() {
        let t0 = Instant::now();
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer(msg(State::Active, u64::MAX), t0).unwrap();
        assert_eq!((backup.state(), backup.epoch()), (State::Passive, u64::MAX));
        backup.peer(msg(State::Primary, 0), t0 + 2 * MS).unwrap();
        assert_eq!((backup.state(), backup.epoch()), (State::Active, u64::MAX));
    }

    #[test]
    fn two_primaries_are_reported_once_and_neither_serves() {
        let t0 = Instant::now();
        let mut node = Node::new(Role::Primary, timing(), t0);
        drain(&mut node, t0);
        let mut same = 0;
        for i in 1..=5u32 {
            let t = t0 + HB * i;
            node.peer_state(State::Primary, t).unwrap();
            same += drain(&mut node, t)
                .iter()
                .filter(|n| matches!(n, Notice::E(Event::SameRole(State::Primary))))
                .count();
            assert_eq!(
                node.client_request_verdict(t),
                Verdict::Reject(Rejection::PeerAlive)
            );
        }
        assert_eq!(same, 1);
        assert_eq!(node.state(), State::Primary);
    }

    #[test]
    fn after_a_stall_the_node_listens_before_it_publishes_or_serves() {
        let t0 = Instant::now();
        let mut primary = active_primary(t0);
        // Frozen for 5 s (SIGSTOP). The first thing seen on waking is a client request.
        let wake = t0 + 5 * HB;
        assert_eq!(primary.client_request_verdict(wake), Verdict::Hold);
        let notices = drain(&mut primary, wake);
        assert_eq!(notices[0], Notice::E(Event::Stalled { late: 4 * HB }));
        assert!(publishes(&notices).is_empty(), "{notices:?}");
        // The queued peer messages: PASSIVE from before the takeover, then ACTIVE in the
        // backup's new epoch: the frozen primary steps down, still without publishing.
        primary.peer(msg(State::Passive, 1), wake).unwrap();
        primary.peer(msg(State::Active, 2), wake + MS).unwrap();
        assert_eq!(primary.state(), State::Passive);
        assert_eq!(primary.epoch(), 2);
        let notices = drain(&mut primary, wake + MS);
        assert!(publishes(&notices).is_empty(), "{notices:?}");
        // When the quiet time ends it announces PASSIVE in the backup's epoch.
        let end = wake + 3 * HB / 2;
        let notices = drain(&mut primary, end);
        assert_eq!(
            notices,
            [
                Notice::E(Event::Resumed),
                Notice::Publish(State::Passive, 2)
            ]
        );
    }

    #[test]
    fn after_a_stall_the_guides_rule_aborts_the_frozen_server() {
        let t0 = Instant::now();
        let mut primary = active_primary(t0).with_on_conflict(OnConflict::Abort);
        let wake = t0 + 5 * HB;
        assert_eq!(primary.client_request_verdict(wake), Verdict::Hold);
        primary.peer(msg(State::Passive, 1), wake).unwrap();
        assert_eq!(
            primary.peer(msg(State::Active, 2), wake + MS),
            Err(Fatal::DualActive)
        );
    }

    #[test]
    fn a_stall_with_no_takeover_ends_in_serving_the_held_requests() {
        let t0 = Instant::now();
        let mut primary = active_primary(t0);
        let wake = t0 + 3 * HB;
        drain(&mut primary, wake);
        assert!(primary.is_quiet());
        assert_eq!(
            primary.client_request_verdict(wake + 10 * MS),
            Verdict::Hold
        );
        // The backup is still passive.
        primary.peer_state(State::Passive, wake + 200 * MS).unwrap();
        let heard = drain(&mut primary, wake + 200 * MS);
        assert!(publishes(&heard).is_empty(), "{heard:?}");
        let quiet_end = wake + 3 * HB / 2;
        assert_eq!(primary.poll_timeout().unwrap(), quiet_end);
        let before = drain(&mut primary, quiet_end - MS);
        assert!(publishes(&before).is_empty(), "{before:?}");
        let notices = drain(&mut primary, quiet_end);
        assert_eq!(
            notices,
            [Notice::E(Event::Resumed), Notice::Publish(State::Active, 1)]
        );
        assert_eq!(primary.client_request_verdict(quiet_end), Verdict::Serve);
    }

    #[test]
    fn a_small_hiccup_is_not_a_stall() {
        let t0 = Instant::now();
        let mut node = active_primary(t0);
        let t = t0 + HB + HB / 2 - MS;
        let notices = drain(&mut node, t);
        assert_eq!(notices, [Notice::Publish(State::Active, 1)]);
        assert_eq!(node.client_request_verdict(t), Verdict::Serve);
    }

    #[test]
    fn a_passive_server_does_not_vote_on_a_stale_view_after_a_stall() {
        let t0 = Instant::now();
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer_state(State::Active, t0).unwrap();
        drain(&mut backup, t0);
        // Frozen past the peer expiry; a client request is the first event on waking.
        let wake = t0 + 4 * HB;
        assert_eq!(backup.client_request_verdict(wake), Verdict::Hold);
        // The primary is alive: its queued state arrives.
        backup.peer_state(State::Active, wake + MS).unwrap();
        let end = wake + 3 * HB / 2;
        drain(&mut backup, end);
        assert_eq!(
            backup.client_request_verdict(end),
            Verdict::Reject(Rejection::PeerAlive)
        );
        assert_eq!(backup.state(), State::Passive);
    }

    fn request(body: &str) -> Request {
        Request {
            envelope: Message::from_frames(["client", ""]),
            body: Message::from_frames([body.to_owned()]),
        }
    }

    /// Everything the reactor would take out, in its order: requests to serve first (each once
    /// the events decided before it are out), then events, then state messages.
    fn take(node: &mut Node) -> Vec<Result<Request, Notice>> {
        let mut out = Vec::new();
        loop {
            if let Some(request) = node.poll_request() {
                out.push(Ok(request));
            } else if let Some(event) = node.poll_event() {
                out.push(Err(Notice::E(event)));
            } else if let Some(Publish(s, e)) = node.poll_transmit() {
                out.push(Err(Notice::Publish(s, e)));
            } else {
                return out;
            }
        }
    }

    #[test]
    fn requests_held_while_quiet_are_served_in_order_after_the_resumed_event() {
        let t0 = Instant::now();
        let mut primary = active_primary(t0);
        take(&mut primary);
        // Frozen for 3 s: the first request on waking starts the quiet time and is held.
        let wake = t0 + 3 * HB;
        primary.handle_request(request("1"), wake);
        primary.handle_request(request("2"), wake + MS);
        assert_eq!(
            take(&mut primary),
            [Err(Notice::E(Event::Stalled { late: 2 * HB }))]
        );
        assert_eq!((primary.held(), primary.released()), (2, 0));
        let quiet_end = wake + 3 * HB / 2;
        primary.handle_timeout(quiet_end - MS);
        // (The peer expires meanwhile; no request is passed on.)
        let quiet = take(&mut primary);
        assert!(quiet.iter().all(Result::is_err), "{quiet:?}");
        assert_eq!(primary.held(), 2);
        // The quiet time ends: Resumed first, then the held requests in arrival order.
        primary.handle_timeout(quiet_end);
        assert_eq!(
            take(&mut primary),
            [
                Err(Notice::E(Event::Resumed)),
                Ok(request("1")),
                Ok(request("2")),
                Err(Notice::Publish(State::Active, 1)),
            ]
        );
        assert_eq!((primary.held(), primary.released()), (0, 2));
        // Serving again: a new request is passed on at once.
        primary.handle_request(request("3"), quiet_end);
        assert_eq!(take(&mut primary), [Ok(request("3"))]);
    }

    #[test]
    fn a_request_that_takes_over_is_served_before_the_change_is_logged() {
        let t0 = Instant::now();
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer_state(State::Active, t0).unwrap();
        let t = t0 + 3 * HB;
        run(&mut backup, t0, t);
        take(&mut backup);
        assert_eq!(backup.state(), State::Passive);
        // The primary expired: the request is the client vote, and the backup serves it.
        backup.handle_request(request("1"), t);
        let out = take(&mut backup);
        assert_eq!(out[0], Ok(request("1")));
        assert!(
            matches!(
                out[1],
                Err(Notice::E(Event::Changed {
                    to: State::Active,
                    ..
                }))
            ),
            "{out:?}"
        );
        assert_eq!(out[2], Err(Notice::Publish(State::Active, 1)));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn the_first_rejection_per_state_is_marked_and_the_hold_is_bounded() {
        let t0 = Instant::now();
        let mut primary = Node::new(Role::Primary, timing(), t0);
        take(&mut primary);
        let rejected = |state, first| {
            Err(Notice::E(Event::Rejected {
                state,
                why: Rejection::PeerAlive,
                first,
            }))
        };
        // The peer may be serving: a primary that has not heard from it rejects.
        primary.handle_request(request("1"), t0);
        primary.handle_request(request("2"), t0);
        assert_eq!(
            take(&mut primary),
            [
                rejected(State::Primary, true),
                rejected(State::Primary, false)
            ]
        );
        // A change of state starts the count again.
        primary.peer_state(State::Active, t0 + MS).unwrap();
        take(&mut primary);
        assert_eq!(primary.state(), State::Passive);
        primary.handle_request(request("3"), t0 + MS);
        assert_eq!(take(&mut primary), [rejected(State::Passive, true)]);
        // While quiet, at most MAX_HELD requests are kept; the next is dropped.
        let wake = t0 + 5 * HB;
        for _ in 0..MAX_HELD {
            primary.handle_request(request("held"), wake);
        }
        take(&mut primary);
        assert_eq!(primary.held(), MAX_HELD);
        primary.handle_request(request("one too many"), wake);
        assert_eq!(take(&mut primary), [Err(Notice::E(Event::HeldFull))]);
        assert_eq!(primary.held(), MAX_HELD);
    }

    #[test]
    fn timing_defaults_are_the_guides() {
        let t = Timing::default();
        assert_eq!(t.heartbeat, Duration::from_millis(1000));
        assert_eq!(t.peer_ttl(), Duration::from_millis(2000));
        let short = Timing {
            heartbeat: 200 * MS,
            liveness: 3,
        };
        assert_eq!(short.peer_ttl(), 600 * MS);
    }

    #[test]
    fn a_reported_senior_active_makes_an_active_node_step_down_and_not_take_over_again_at_once() {
        let t0 = Instant::now();
        let mut node = active_primary(t0);
        assert_eq!(node.epoch(), 1);
        let expiry = node.peer_expiry();
        // Not senior: the same epoch (a tie goes to the primary, us) or an older one.
        node.handle_fence(1, t0 + MS);
        node.handle_fence(0, t0 + MS);
        assert_eq!(node.state(), State::Active);
        assert_eq!(node.peer_expiry(), expiry, "a junior report says nothing");
        // The backup took over in epoch 2 while we could not hear it.
        node.handle_fence(2, t0 + 2 * MS);
        assert_eq!(node.state(), State::Passive);
        assert_eq!(node.epoch(), 2);
        assert_eq!(
            node.peer_expiry(),
            t0 + 2 * MS + timing().peer_ttl(),
            "the report is a sign of the peer's life"
        );
        let notices = drain(&mut node, t0 + 2 * MS);
        assert!(notices.contains(&Notice::E(Event::Changed {
            from: State::Active,
            to: State::Passive,
            reason: Reason::SeniorReported,
            epoch: 2,
        })));
        assert!(notices.contains(&Notice::Publish(State::Passive, 2)));
        // Passive: a report only raises the epoch, so our next takeover outranks it.
        node.handle_fence(7, t0 + 3 * MS);
        assert_eq!((node.state(), node.epoch()), (State::Passive, 7));
    }

    #[test]
    fn a_node_fenced_after_its_peer_expired_waits_a_whole_expiry_before_a_vote_counts() {
        let t0 = Instant::now();
        let mut node = active_primary(t0);
        // A partition: the peer has been silent past its expiry; we are still ACTIVE.
        let healed = t0 + timing().peer_ttl() + 10 * MS;
        run(&mut node, t0, healed);
        assert_eq!(node.state(), State::Active);
        // At the heal a worker reports the backup ACTIVE in epoch 2 before its state does.
        node.handle_fence(2, healed);
        assert_eq!((node.state(), node.epoch()), (State::Passive, 2));
        drain(&mut node, healed);
        // A client request held by the partition arrives next: not a vote, the peer lives.
        assert_eq!(
            node.client_request_verdict(healed + MS),
            Verdict::Reject(Rejection::PeerAlive)
        );
        // Silent for a whole expiry after the report: now a request is a vote, in epoch 3.
        let later = healed + timing().peer_ttl() + MS;
        run(&mut node, healed, later);
        assert_eq!(node.client_request_verdict(later), Verdict::Serve);
        assert_eq!((node.state(), node.epoch()), (State::Active, 3));
    }

    #[test]
    fn a_backup_steps_down_for_a_primary_in_the_same_epoch_and_abort_ignores_reports() {
        let t0 = Instant::now();
        let mut backup = Node::new(Role::Backup, timing(), t0);
        backup.peer_state(State::Active, t0).unwrap();
        // The primary falls silent: the backup takes over by client vote (epoch 1).
        let later = t0 + timing().peer_ttl() + MS;
        run(&mut backup, t0, later);
        assert_eq!(backup.client_request_verdict(later), Verdict::Serve);
        assert_eq!((backup.state(), backup.epoch()), (State::Active, 1));
        backup.handle_fence(1, later + MS);
        assert_eq!(backup.state(), State::Passive, "a tie goes to the primary");

        let mut guide = active_primary(t0).with_on_conflict(OnConflict::Abort);
        guide.handle_fence(9, t0 + MS);
        assert_eq!((guide.state(), guide.epoch()), (State::Active, 1));
    }
}
