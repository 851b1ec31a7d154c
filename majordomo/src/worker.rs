//! The Majordomo worker's brain: READY on every new connection, heartbeats, the broker's
//! liveness, reconnect with back-off, DISCONNECT both ways, and which replies still have a
//! broker to go to. No sockets, no clock; it follows [`common::contract`].
//!
//! # Life of a worker
//! 1. A new core asks for a connection ([`Transmit::Reconnect`] at once). Once it is up,
//!    [`WorkerCore::handle_connected`] starts a new *session*: READY goes out, the back-off
//!    resets, the broker's liveness starts full. A failed attempt backs off (doubling up to
//!    the cap) and tries again.
//! 2. Every message from the broker proves it alive. A REQUEST becomes an [`Event::Request`]
//!    tagged with its session; HEARTBEAT goes out every interval, also while a request is being
//!    handled.
//! 3. Silence for `liveness × heartbeat`, or a failed send or receive, drops the connection and
//!    reconnects after the back-off; DISCONNECT from the broker reconnects at once.
//! 4. A reply goes out only on the session its request came on: the broker on any other
//!    connection does not know the request (the client retries instead). With a credit above
//!    one ([`crate::credit`]: READY asks for it, and for ids), the reply carries its request's
//!    rid frame in front, so the broker knows which of the requests out it answers.
//! 5. [`WorkerCore::handle_shutdown`]: DISCONNECT, then the socket closes.
//!
//! A core made with [`WorkerCore::new_paired`] is one broker's session of a worker that serves
//! a broker pair ([`crate::pair`]): its READY carries the rid and pair markers, and it reads the
//! broker's standing off every standing HEARTBEAT and off the front of every REQUEST body. What
//! to do with standings (the fence, the news) is decided above it, in
//! [`brokers::Brokers`].

use crate::pair::{PairFrames, Standing};
use crate::protocol::{self, Dialect, ProtocolError, WorkerCommand};
use crate::rid::Rid;
use bytes::Bytes;
use common::contract::{Core, Outbox};
use common::heartbeat::{Backoff, Liveness, Ticker};
use common::Message;
use std::time::{Duration, Instant};

pub mod brokers;

/// Guide default (mdwrkapi): heartbeat interval.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(2500);
/// Guide default: the broker is dead after this many silent intervals (3–5 is reasonable).
pub const HEARTBEAT_LIVENESS: u32 = 3;
/// Guide default: wait this long before reconnecting to a broker found dead.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(2500);
/// Further failed attempts double the delay up to this.
pub const RECONNECT_MAX: Duration = Duration::from_millis(32000);
/// Most brokers one worker serves: one, or the two of a broker pair.
pub const MAX_BROKERS: usize = 2;

/// Worker settings; the defaults are the Guide's.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Heartbeat interval (the broker should use the same).
    pub heartbeat: Duration,
    /// Silent intervals after which the broker counts as dead.
    pub liveness: u32,
    /// First delay before reconnecting to a dead or unreachable broker.
    pub reconnect: Duration,
    /// Cap of the doubling reconnect delay.
    pub reconnect_max: Duration,
    /// Ask the broker for each request's id ([`crate::rid`]; READY carries the marker frame),
    /// handed over in [`Request::rid`]. Off by default: a broker that does not know the
    /// extension (the Guide's C broker ignores the frame) simply sends no ids. A worker of a
    /// broker pair always asks (the pair's news are keyed by ids), and so does a worker with a
    /// credit above one (its replies name their requests by id).
    pub request_ids: bool,
    /// Requests handled at once, 1 to [`crate::credit::MAX`] (1, the Guide's worker, by
    /// default). Above one, READY asks the broker for that many at once ([`crate::credit`]),
    /// for handlers that wait on I/O: [`Worker::run`](crate::Worker::run) runs that many side by side.
    pub credit: u32,
    /// The protocol spoken ([`Dialect::V01`] by default; the MDP/0.2 dialects stream replies,
    /// see the [`Worker`](crate::worker_loop#streamed-replies-mdp02) docs). A 0.2 worker has credit 1, serves
    /// one broker, and asks for no request ids.
    pub dialect: Dialect,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            heartbeat: HEARTBEAT_INTERVAL,
            liveness: HEARTBEAT_LIVENESS,
            reconnect: RECONNECT_DELAY,
            reconnect_max: RECONNECT_MAX,
            request_ids: false,
            credit: 1,
            dialect: Dialect::V01,
        }
    }
}

/// Where a reply goes: the client's address, and the broker and connection the request came on.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    pub(crate) client: Message,
    /// The request's id as the broker sent it (a worker with credit puts it back in front of
    /// its reply, so the broker knows which request it answers).
    pub(crate) rid: Option<Rid>,
    pub(crate) session: u64,
    /// The broker's number in the worker's list.
    pub(crate) broker: usize,
    /// Which request handed to the handler this is (0 before it is handed over).
    pub(crate) ticket: u64,
}

impl ReplyTo {
    /// A request from the first broker, session `session`, not yet handed over.
    pub(crate) fn new(client: Message, rid: Option<Rid>, session: u64) -> Self {
        Self {
            client,
            rid,
            session,
            broker: 0,
            ticket: 0,
        }
    }

    /// The client's address stack as the broker sent it.
    pub fn client(&self) -> &Message {
        &self.client
    }

    /// The number of the broker the request came from (0 with one broker; with a pair, its
    /// place in the list given to [`Worker::with_brokers`](crate::Worker::with_brokers)).
    pub fn broker(&self) -> usize {
        self.broker
    }
}

/// One request handed to the worker.
#[derive(Debug)]
pub struct Request {
    /// The request body as the client sent it.
    pub body: Message,
    /// The request's id, if the client sent one and [`WorkerOptions::request_ids`] is on (always
    /// on for a pair). A retry of the same logical request carries the same id (the broker
    /// normally answers retries itself, so a worker sees an id twice only after a lost worker
    /// or a forgotten id).
    pub rid: Option<Rid>,
    /// Pass this to [`Worker::reply`](crate::Worker::reply).
    pub reply_to: ReplyTo,
}

/// What the core asks the shell to do with the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send this command.
    Send(WorkerCommand),
    /// Drop the socket, wait `after`, connect a fresh one (fresh identity), then call
    /// [`WorkerCore::handle_connected`] or [`WorkerCore::handle_connect_failed`].
    Reconnect {
        /// The back-off delay (zero: at once).
        after: Duration,
    },
    /// The last command is out: close the socket (with the no-LINGER pause).
    Close,
}

/// Connect without a back-off (the first time, and after DISCONNECT).
const AT_ONCE: Transmit = Transmit::Reconnect {
    after: Duration::ZERO,
};

/// What the core reports.
#[derive(Debug)]
pub enum Event {
    /// A request for the handler.
    Request(Request),
    /// The broker's standing in its pair, new in this session or changed (paired cores only;
    /// reported before the request that carried it).
    Standing(Standing),
    /// A connect attempt failed (why); the next one comes after the back-off.
    Unreachable(String, Duration),
    /// The broker was silent for `liveness × heartbeat`; reconnecting after the back-off.
    Silent(Duration),
    /// A send or receive failed (why); reconnecting after the back-off.
    Lost(String, Duration),
    /// The broker sent DISCONNECT; reconnecting at once.
    Disconnected,
    /// A reply for a session that is gone was dropped.
    StaleReply,
    /// A command a broker never sends to a worker, ignored.
    Unexpected(&'static str),
    /// A message that is not MDP, ignored.
    Malformed(ProtocolError),
    /// DISCONNECT went out and the socket closed.
    Stopped,
}

/// The broker as seen from one session.
#[derive(Debug)]
struct Link {
    broker: Liveness,
    ticker: Ticker,
    /// The broker's last standing in this session (a paired core's broker of a pair).
    standing: Option<Standing>,
}

/// The worker's state across sessions. See the [module docs](self).
#[derive(Debug)]
pub struct WorkerCore {
    service: Bytes,
    options: WorkerOptions,
    backoff: Backoff,
    /// `None` while there is no session (backing off, connecting, stopped).
    link: Option<Link>,
    /// Incremented by every [`WorkerCore::handle_connected`].
    session: u64,
    /// READY says we serve a pair, and standings are read ([`WorkerCore::new_paired`]).
    pair: bool,
    stopped: bool,
    outbox: Outbox<Transmit, Event>,
}

impl WorkerCore {
    /// A worker for `service` that asks for its first connection at once. A credit above one
    /// asks for request ids too (its replies are named by them).
    pub fn new(service: &str, options: WorkerOptions) -> Self {
        // MDP/0.2 has no request-id extension: the broker sends a 0.2 worker no ids.
        let options = WorkerOptions {
            request_ids: (options.request_ids || options.credit > 1) && !options.dialect.streams(),
            ..options
        };
        let mut outbox = Outbox::default();
        outbox.transmit(AT_ONCE);
        Self {
            service: Bytes::copy_from_slice(service.as_bytes()),
            backoff: Backoff::new(options.reconnect, options.reconnect_max),
            options,
            link: None,
            session: 0,
            pair: false,
            stopped: false,
            outbox,
        }
    }

    /// One broker's session of a worker serving a broker pair: READY carries both markers (a
    /// pair worker always asks for request ids, as the pair's news are keyed by them), and the
    /// broker's standings are taken off its HEARTBEATs and REQUESTs ([`Event::Standing`]).
    pub fn new_paired(service: &str, options: WorkerOptions) -> Self {
        let options = WorkerOptions {
            request_ids: true,
            ..options
        };
        Self {
            pair: true,
            ..Self::new(service, options)
        }
    }

    /// True while a session is up (connected, READY sent, the broker not found dead).
    pub fn is_up(&self) -> bool {
        self.link.is_some()
    }

    /// The broker's last standing in the current session; `None` without a session, or if it
    /// sent none yet (a lone broker never does).
    pub fn standing(&self) -> Option<Standing> {
        self.link.as_ref().and_then(|l| l.standing)
    }

    /// The current session's number (0 before the first).
    pub fn session(&self) -> u64 {
        self.session
    }

    /// True once [`handle_shutdown`](Self::handle_shutdown) has run: the shell ends.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// A fresh socket is connected: a new session starts with READY.
    pub fn handle_connected(&mut self, now: Instant) {
        self.backoff.reset();
        self.session += 1;
        self.link = Some(Link {
            broker: Liveness::new(self.options.heartbeat, self.options.liveness, now),
            ticker: Ticker::new(self.options.heartbeat, now),
            standing: None,
        });
        self.outbox.transmit(Transmit::Send(WorkerCommand::Ready {
            service: self.service.clone(),
            request_ids: self.options.request_ids,
            pair: self.pair,
            credit: self.options.credit,
        }));
    }

    /// A connect attempt failed: try again after the back-off.
    pub fn handle_connect_failed(&mut self, error: String, _now: Instant) {
        let retry_in = self.reconnect();
        self.outbox.event(Event::Unreachable(error, retry_in));
    }

    /// A send or receive failed: the session is over; reconnect after the back-off.
    pub fn handle_broker_lost(&mut self, why: String, _now: Instant) {
        if self.link.is_some() {
            let retry_in = self.reconnect();
            self.outbox.event(Event::Lost(why, retry_in));
        }
    }

    /// A message from the broker.
    pub fn handle_message(&mut self, frames: Message, now: Instant) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.broker.heard(now);
        let dialect = self.options.dialect;
        let parsed = protocol::from_dealer_in(dialect, frames)
            .and_then(|frames| WorkerCommand::parse_in(dialect, frames));
        match parsed {
            Ok(WorkerCommand::Request { client, mut body }) => {
                // A paired broker puts its standing first, then the rid (pair.rs's wire form);
                // a lone broker's bodies are left alone.
                if self.pair {
                    if let Some(standing) = Standing::take(&mut body) {
                        self.note_standing(standing);
                    }
                }
                let rid = self
                    .options
                    .request_ids
                    .then(|| Rid::take(&mut body))
                    .flatten();
                let session = self.session;
                let reply_to = ReplyTo::new(client, rid.clone(), session);
                self.outbox.event(Event::Request(Request {
                    body,
                    rid,
                    reply_to,
                }));
            }
            Ok(WorkerCommand::Heartbeat) => {}
            Ok(WorkerCommand::Pair(PairFrames::Standing(standing))) if self.pair => {
                self.note_standing(standing);
            }
            // A standing for a worker that did not ask for it is still a heartbeat.
            Ok(WorkerCommand::Pair(PairFrames::Standing(_))) => {}
            // News go from workers to brokers, never back.
            Ok(WorkerCommand::Pair(news)) => self.outbox.event(Event::Unexpected(news.name())),
            Ok(WorkerCommand::Disconnect) => {
                self.link = None;
                self.outbox.event(Event::Disconnected);
                self.outbox.transmit(AT_ONCE);
            }
            Ok(other) => self.outbox.event(Event::Unexpected(other.name())),
            Err(error) => self.outbox.event(Event::Malformed(error)),
        }
    }

    /// The handler's reply: sent if its session is the current one, else dropped. With a
    /// credit above one it names its request: the rid frame goes back in front.
    pub fn handle_reply(&mut self, reply_to: ReplyTo, mut body: Message, _now: Instant) {
        if self.link.is_some() && reply_to.session == self.session {
            if let (true, Some(rid)) = (self.options.credit > 1, &reply_to.rid) {
                rid.put(&mut body);
            }
            let client = reply_to.client;
            self.outbox
                .transmit(Transmit::Send(WorkerCommand::Reply { client, body }));
        } else {
            self.outbox.event(Event::StaleReply);
        }
    }

    /// One part of the handler's reply (MDP/0.2): sent as a PARTIAL if its session is the
    /// current one, else dropped.
    pub fn handle_partial(&mut self, reply_to: &ReplyTo, body: Message, _now: Instant) {
        if self.link.is_some() && reply_to.session == self.session {
            let client = reply_to.client.clone();
            self.outbox
                .transmit(Transmit::Send(WorkerCommand::Partial { client, body }));
        } else {
            self.outbox.event(Event::StaleReply);
        }
    }

    /// The handle is gone: say DISCONNECT if there is a session, and stop.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        self.stopped = true;
        if self.link.take().is_some() {
            self.outbox
                .transmit(Transmit::Send(WorkerCommand::Disconnect));
            self.outbox.transmit(Transmit::Close);
            self.outbox.event(Event::Stopped);
        }
    }

    /// Remembers the broker's standing; reports it if it is new in this session.
    fn note_standing(&mut self, standing: Standing) {
        if let Some(link) = self.link.as_mut() {
            if link.standing.replace(standing) != Some(standing) {
                self.outbox.event(Event::Standing(standing));
            }
        }
    }

    /// Ends the session; returns the back-off before the next connect.
    fn reconnect(&mut self) -> Duration {
        self.link = None;
        let after = self.backoff.next_delay();
        self.outbox.transmit(Transmit::Reconnect { after });
        after
    }
}

impl Core for WorkerCore {
    type Transmit = Transmit;
    type Event = Event;

    /// Declares a silent broker dead, or heartbeats when due.
    fn handle_timeout(&mut self, now: Instant) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if link.broker.is_dead(now) {
            let retry_in = self.reconnect();
            self.outbox.event(Event::Silent(retry_in));
        } else if link.ticker.poll(now) {
            self.outbox
                .transmit(Transmit::Send(WorkerCommand::Heartbeat));
        }
    }

    /// `None` without a session.
    fn poll_timeout(&self) -> Option<Instant> {
        self.link
            .as_ref()
            .map(|l| l.ticker.deadline().min(l.broker.deadline()))
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::protocol::{DISCONNECT, HEARTBEAT, MDPW01, REQUEST};

    const MS: Duration = Duration::from_millis(1);

    /// Options for the worker cores' virtual-time tests (the pair's too): 1 s heartbeats.
    pub(in crate::worker) fn options() -> WorkerOptions {
        WorkerOptions {
            heartbeat: 1000 * MS,
            liveness: 3,
            reconnect: 1000 * MS,
            reconnect_max: 4000 * MS,
            request_ids: false,
            credit: 1,
            dialect: Default::default(),
        }
    }

    impl WorkerCore {
        fn transmits(&mut self) -> Vec<Transmit> {
            std::iter::from_fn(|| self.poll_transmit()).collect()
        }
        fn events(&mut self) -> Vec<Event> {
            std::iter::from_fn(|| self.poll_event()).collect()
        }
    }

    /// A new core, connected at `t0`, with READY taken off.
    fn connected(t0: Instant) -> WorkerCore {
        let mut w = WorkerCore::new("echo", options());
        assert_eq!(
            w.transmits(),
            [Transmit::Reconnect {
                after: Duration::ZERO
            }]
        );
        w.handle_connected(t0);
        let ready = WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: false,
            pair: false,
            credit: 1,
        };
        assert_eq!(w.transmits(), [Transmit::Send(ready)]);
        w
    }

    fn from_broker(command: u8, rest: &[&[u8]]) -> Message {
        let mut m = Message::from_frames([&b""[..], MDPW01]);
        m.push_back(Bytes::copy_from_slice(&[command]));
        for frame in rest {
            m.push_back(Bytes::copy_from_slice(frame));
        }
        m
    }

    fn request(w: &mut WorkerCore) -> Request {
        match w.events().pop() {
            Some(Event::Request(request)) => request,
            other => panic!("no request: {other:?}"),
        }
    }

    const HB: Transmit = Transmit::Send(WorkerCommand::Heartbeat);

    #[test]
    fn heartbeats_every_interval_also_while_a_request_is_in_hand() {
        let t0 = Instant::now();
        let mut w = connected(t0);
        w.handle_message(from_broker(REQUEST, &[b"C1", b"", b"hi"]), t0);
        let req = request(&mut w);
        assert_eq!(req.body, Message::from_frames(["hi"]));
        assert_eq!(req.reply_to.client(), &Message::from_frames(["C1"]));
        for k in 1..=5u32 {
            let t = t0 + k * 1000 * MS;
            assert_eq!(w.poll_timeout(), Some(t));
            w.handle_timeout(t);
            assert_eq!(w.transmits(), [HB]);
            w.handle_message(from_broker(HEARTBEAT, &[]), t);
        }
        w.handle_reply(req.reply_to, Message::from_frames(["hi"]), t0 + 5500 * MS);
        let reply = WorkerCommand::Reply {
            client: Message::from_frames(["C1"]),
            body: Message::from_frames(["hi"]),
        };
        assert_eq!(w.transmits(), [Transmit::Send(reply)]);
        assert!(w.events().is_empty());
    }

    #[test]
    fn a_silent_broker_is_left_after_liveness_intervals_and_connect_failures_back_off() {
        let t0 = Instant::now();
        let mut w = connected(t0);
        w.handle_timeout(t0 + 1000 * MS);
        w.handle_timeout(t0 + 2000 * MS);
        assert_eq!(w.transmits(), [HB, HB]);
        w.handle_timeout(t0 + 3000 * MS);
        assert_eq!(w.transmits(), [Transmit::Reconnect { after: 1000 * MS }]);
        assert!(matches!(
            w.events()[..],
            [Event::Silent(retry_in)] if retry_in == 1000 * MS
        ));
        assert_eq!(w.poll_timeout(), None);
        // Failed attempts double the delay up to the cap; a connection resets it.
        let mut delays = Vec::new();
        for _ in 0..4 {
            w.handle_connect_failed("refused".into(), t0);
            match &w.transmits()[..] {
                [Transmit::Reconnect { after }] => delays.push(after.as_millis()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, [2000, 4000, 4000, 4000]);
        assert!(matches!(
            w.events().last(),
            Some(Event::Unreachable(error, retry_in)) if error == "refused" && *retry_in == 4000 * MS
        ));
        w.handle_connected(t0 + 60_000 * MS);
        w.transmits();
        w.handle_broker_lost("send timed out".into(), t0 + 60_000 * MS);
        assert_eq!(w.transmits(), [Transmit::Reconnect { after: 1000 * MS }]);
        // A second failure of the same session changes nothing.
        w.handle_broker_lost("again".into(), t0 + 60_000 * MS);
        assert_eq!(w.transmits(), []);
        assert_eq!(w.events().len(), 1);
    }

    #[test]
    fn disconnect_from_the_broker_reconnects_at_once_and_stale_replies_are_dropped() {
        let t0 = Instant::now();
        let mut w = connected(t0);
        w.handle_message(from_broker(REQUEST, &[b"C1", b"", b"hi"]), t0);
        let old = request(&mut w);
        w.handle_message(from_broker(DISCONNECT, &[]), t0);
        assert_eq!(
            w.transmits(),
            [Transmit::Reconnect {
                after: Duration::ZERO
            }]
        );
        assert!(matches!(w.events()[..], [Event::Disconnected]));
        // The reply for the lost session goes nowhere, before and after the next session.
        w.handle_reply(old.reply_to.clone(), Message::from_frames(["x"]), t0);
        w.handle_connected(t0 + 10 * MS);
        assert_eq!(w.session(), 2);
        w.transmits();
        w.handle_reply(old.reply_to, Message::from_frames(["x"]), t0 + 10 * MS);
        assert_eq!(w.transmits(), []);
        assert!(matches!(
            w.events()[..],
            [Event::StaleReply, Event::StaleReply]
        ));
    }

    #[test]
    fn bad_input_is_reported_and_still_proves_the_broker_alive() {
        let t0 = Instant::now();
        let mut w = connected(t0);
        w.handle_message(Message::from_frames(["junk"]), t0 + 2500 * MS);
        let ready = [&b"echo"[..]];
        w.handle_message(from_broker(crate::protocol::READY, &ready), t0 + 2500 * MS);
        assert!(matches!(
            w.events()[..],
            [Event::Malformed(_), Event::Unexpected("READY")]
        ));
        // Heard at 2.5 s: alive until 5.5 s.
        w.handle_timeout(t0 + 3000 * MS);
        w.handle_timeout(t0 + 5499 * MS);
        assert!(!w
            .transmits()
            .contains(&Transmit::Reconnect { after: 1000 * MS }));
        w.handle_timeout(t0 + 5500 * MS);
        assert_eq!(w.transmits(), [Transmit::Reconnect { after: 1000 * MS }]);
    }

    #[test]
    fn request_ids_are_taken_off_the_body_when_asked_for() {
        let t0 = Instant::now();
        let mut w = WorkerCore::new(
            "echo",
            WorkerOptions {
                request_ids: true,
                ..options()
            },
        );
        w.handle_connected(t0);
        let rid = crate::rid::RidSource::new().next_rid();
        let mut body = Message::from_frames(["hi"]);
        rid.put(&mut body);
        let mut m = from_broker(REQUEST, &[b"C1", b""]);
        m.append(body);
        w.handle_message(m, t0);
        let req = request(&mut w);
        assert_eq!(req.rid, Some(rid));
        assert_eq!(req.body, Message::from_frames(["hi"]));
    }

    #[test]
    fn a_paired_core_reads_standings_off_heartbeats_and_requests_per_session() {
        use crate::pair::PairFrames;
        use binary_star::{Role, State};
        let t0 = Instant::now();
        let mut w = WorkerCore::new_paired("echo", options());
        w.transmits();
        w.handle_connected(t0);
        let ready = WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: true,
            pair: true,
            credit: 1,
        };
        assert_eq!(
            w.transmits(),
            [Transmit::Send(ready)],
            "ids asked for, always"
        );
        let active = Standing {
            state: State::Active,
            epoch: 4,
            role: Role::Backup,
        };
        let passive = Standing {
            state: State::Passive,
            ..active
        };
        let standing_hb = |s: Standing| {
            protocol::for_dealer(WorkerCommand::Pair(PairFrames::Standing(s)).into_frames())
        };
        w.handle_message(standing_hb(passive), t0);
        w.handle_message(standing_hb(passive), t0);
        assert!(
            matches!(w.events()[..], [Event::Standing(s)] if s == passive),
            "new only"
        );
        assert_eq!(w.standing(), Some(passive));
        // A REQUEST: the standing first, then the rid, then the body.
        let rid = crate::rid::RidSource::new().next_rid();
        let mut body = Message::from_frames(["hi"]);
        rid.put(&mut body);
        body.push_front(active.to_frame());
        let mut m = from_broker(REQUEST, &[b"C1", b""]);
        m.append(body);
        w.handle_message(m, t0);
        let events = w.events();
        assert!(
            matches!(&events[..], [Event::Standing(s), Event::Request(r)]
                if *s == active && r.rid == Some(rid.clone()) && r.body == Message::from_frames(["hi"])),
            "{events:?}"
        );
        // News are for brokers; a broker that sends them is ignored, still alive.
        let running = WorkerCommand::Pair(PairFrames::Running(rid)).into_frames();
        w.handle_message(protocol::for_dealer(running), t0);
        assert!(matches!(w.events()[..], [Event::Unexpected("running")]));
        // A new session starts without a standing.
        w.handle_message(from_broker(DISCONNECT, &[]), t0);
        assert_eq!(w.standing(), None);
        w.handle_connected(t0);
        assert!(w.is_up());
        assert_eq!(w.standing(), None);
        w.handle_message(standing_hb(active), t0);
        assert!(matches!(w.events()[..], [Event::Disconnected, Event::Standing(s)] if s == active));
    }

    #[test]
    fn stop_says_disconnect_only_with_a_session() {
        let t0 = Instant::now();
        let mut w = connected(t0);
        w.handle_shutdown(t0);
        assert_eq!(
            w.transmits(),
            [Transmit::Send(WorkerCommand::Disconnect), Transmit::Close]
        );
        assert!(matches!(w.events()[..], [Event::Stopped]));
        assert!(w.is_stopped());
        let mut idle = WorkerCore::new("echo", options());
        idle.transmits();
        idle.handle_shutdown(t0);
        assert!(idle.is_stopped());
        assert_eq!(idle.transmits(), []);
        assert!(idle.events().is_empty());
    }
}
