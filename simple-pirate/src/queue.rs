//! The queue's decisions: the LRU list of ready workers and where each message goes.
//!
//! No sockets, no clock, no timer: a [`common::contract::Core`] whose `poll_timeout` is `None`.
//! The shell ([`crate::queue_loop`]) hands in each message as received through `handle_*` (the
//! core parses it; a malformed one is an [`Event::Malformed`]), sends the
//! [`Route`]s from [`Queue::poll_transmit`] and logs the [`Event`]s from [`Queue::poll_event`];
//! when a send to a worker fails it says so through [`Queue::handle_worker_lost`], and the
//! request goes to the next ready worker.
//!
//! Flow control, as in the Guide: the shell reads the frontend only while
//! [`Queue::wants_requests`] is true, i.e. while a worker is ready and nothing is held, so
//! requests wait in the clients' connections instead of in the queue. The only buffering is
//! [`Queue::held`]: requests whose worker turned out to be gone while no other worker was
//! ready (at most one per worker that went away, since the frontend is not read meanwhile).
//! They go out, oldest first, with the next READY or reply.
//!
//! The queue remembers the request each worker is working on, so a worker whose connection
//! closes ([`Queue::handle_worker_lost`], from the socket monitor) is forgotten at once and its
//! request goes to the next ready worker instead of waiting for the client's retry.

use crate::protocol::{self, FrameError, PeerId, Reply, Request, WorkerMessage};
use bytes::Bytes;
use common::contract::{Core, Outbox};
use common::Message;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// A message the shell must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Send `request` to `worker` on the backend (frames: [`Request::to_worker`]).
    ToWorker {
        /// The least recently used ready worker.
        worker: PeerId,
        /// The request it gets.
        request: Request,
    },
    /// Send the reply to its client on the frontend (frames: [`Reply::to_client`]).
    ToClient(Reply),
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A READY from a worker not on the list: it is now.
    WorkerReady(PeerId),
    /// A READY from a worker already on the list: ignored, no duplicate entry.
    DuplicateReady(PeerId),
    /// A worker's connection closed and it was forgotten; `busy`: its request goes to the next
    /// ready worker (or is held first in line).
    WorkerGone {
        /// The worker.
        worker: PeerId,
        /// It was working on a request.
        busy: bool,
    },
    /// A message that does not parse: dropped. `sender` is its first frame (the peer's routing
    /// id, when there is one), for the log line.
    Malformed {
        /// Which socket it came from.
        from: Side,
        /// Its first frame.
        sender: Bytes,
        /// Why it was dropped.
        error: FrameError,
    },
    /// A request arrived while one was already held (the shell read the frontend although
    /// [`Queue::wants_requests`] was false): dropped; the client will retry.
    Dropped(Request),
}

/// Which of the queue's two sockets a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The frontend: clients.
    Client,
    /// The backend: workers.
    Worker,
}

/// How a worker was found gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Its connection closed (the socket monitor said so).
    Disconnected,
    /// A send to it failed: the request just routed to it goes to the next worker.
    Unreachable,
}

/// The Simple Pirate queue: ready workers in least-recently-used order.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    ready: VecDeque<PeerId>,
    /// Requests waiting for a worker, next first.
    held: VecDeque<Request>,
    /// The request each busy worker is working on (a cheap clone: frames are shared).
    busy: HashMap<PeerId, Request>,
    outbox: Outbox<Route, Event>,
}

impl Queue {
    /// A queue with no workers.
    pub fn new() -> Self {
        Self::default()
    }

    /// True while the frontend should be read: a worker is ready and nothing is held.
    pub fn wants_requests(&self) -> bool {
        !self.ready.is_empty() && self.held.is_empty()
    }

    /// Ready workers, least recently used first.
    pub fn ready_workers(&self) -> impl Iterator<Item = &PeerId> {
        self.ready.iter()
    }

    /// The next request waiting for a worker, if any.
    pub fn held(&self) -> Option<&Request> {
        self.held.front()
    }

    /// Workers with a request out.
    pub fn busy_workers(&self) -> usize {
        self.busy.len()
    }

    /// A message from a client, as the frontend ROUTER received it: a request (see
    /// [`protocol::parse_request`]), or an [`Event::Malformed`]. (`now`, as in every core's
    /// input; this one has no timer.)
    pub fn handle_client(&mut self, message: Message, now: Instant) {
        let sender = message.first().cloned().unwrap_or_default();
        match protocol::parse_request(message) {
            Ok(request) => self.on_request(request, now),
            Err(error) => self.outbox.event(Event::Malformed {
                from: Side::Client,
                sender,
                error,
            }),
        }
    }

    /// A message from a worker, as the backend ROUTER received it: READY or a reply (see
    /// [`protocol::parse_worker`]), or an [`Event::Malformed`].
    pub fn handle_worker(&mut self, message: Message, now: Instant) {
        let sender = message.first().cloned().unwrap_or_default();
        match protocol::parse_worker(message) {
            Ok((worker, message)) => self.on_worker(worker, message, now),
            Err(error) => self.outbox.event(Event::Malformed {
                from: Side::Worker,
                sender,
                error,
            }),
        }
    }

    /// A client request: it goes to the least recently used ready worker, or is held when none
    /// is ready.
    fn on_request(&mut self, request: Request, _now: Instant) {
        if let Some(worker) = self.ready.pop_front() {
            self.route(worker, request);
        } else if !self.held.is_empty() {
            self.outbox.event(Event::Dropped(request));
        } else {
            self.held.push_back(request);
        }
    }

    fn route(&mut self, worker: PeerId, request: Request) {
        self.busy.insert(worker.clone(), request.clone());
        self.outbox.transmit(Route::ToWorker { worker, request });
    }

    /// A worker spoke: READY lists it, a reply goes to its client (first) and lists it again.
    fn on_worker(&mut self, worker: PeerId, message: WorkerMessage, _now: Instant) {
        match message {
            WorkerMessage::Ready if self.ready.contains(&worker) => {
                self.outbox.event(Event::DuplicateReady(worker));
            }
            WorkerMessage::Ready => {
                self.ready.push_back(worker.clone());
                self.outbox.event(Event::WorkerReady(worker));
            }
            WorkerMessage::Reply(reply) => {
                self.busy.remove(&worker);
                self.outbox.transmit(Route::ToClient(reply));
                if !self.ready.contains(&worker) {
                    self.ready.push_back(worker);
                }
            }
        }
        self.dispatch_held();
    }

    /// `worker` is gone: forget it; the request it was working on, if any, goes to the next
    /// ready worker or is held first in line. [`Lost::Disconnected`] (its connection closed) is
    /// logged through [`Event::WorkerGone`]; [`Lost::Unreachable`] (a send to it failed) is
    /// logged by the shell, which knows the error.
    pub fn handle_worker_lost(&mut self, worker: &PeerId, cause: Lost, _now: Instant) {
        let was_ready = self.ready.iter().any(|w| w == worker);
        self.ready.retain(|w| w != worker);
        let busy = match self.busy.remove(worker) {
            Some(request) => {
                self.held.push_front(request);
                true
            }
            None if was_ready => false,
            None => return,
        };
        if cause == Lost::Disconnected {
            self.outbox.event(Event::WorkerGone {
                worker: worker.clone(),
                busy,
            });
        }
        self.dispatch_held();
    }

    fn dispatch_held(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        if let Some(request) = self.held.pop_front() {
            let worker = self.ready.pop_front().expect("checked non-empty");
            self.route(worker, request);
        }
    }
}

impl Core for Queue {
    type Transmit = Route;
    type Event = Event;

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_transmit(&mut self) -> Option<Route> {
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Message;

    fn w(id: &str) -> PeerId {
        PeerId::new(id.to_owned())
    }

    fn req(client: &str, body: &str) -> Request {
        let frames = [client.to_owned(), String::new(), body.to_owned()];
        crate::protocol::parse_request(Message::from_frames(frames)).unwrap()
    }

    fn reply_to(request: &Request) -> WorkerMessage {
        WorkerMessage::Reply(Reply {
            envelope: request.envelope.clone(),
            body: request.body.clone(),
        })
    }

    fn to_worker(worker: &str, request: &Request) -> Route {
        Route::ToWorker {
            worker: w(worker),
            request: request.clone(),
        }
    }

    /// Everything the broker asked for since the last call: its events and its routes.
    fn drain(b: &mut Queue) -> (Vec<Event>, Vec<Route>) {
        let events = std::iter::from_fn(|| b.poll_event()).collect();
        (events, std::iter::from_fn(|| b.poll_transmit()).collect())
    }

    fn routes(b: &mut Queue) -> Vec<Route> {
        drain(b).1
    }

    #[test]
    fn no_requests_are_read_until_a_worker_is_ready() {
        let (t, mut b) = (Instant::now(), Queue::new());
        assert!(!b.wants_requests());
        assert_eq!(b.poll_timeout(), None);
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        assert_eq!(drain(&mut b), (vec![Event::WorkerReady(w("W1"))], vec![]));
        assert!(b.wants_requests());
    }

    #[test]
    fn requests_go_to_the_least_recently_used_worker() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        b.on_worker(w("W2"), WorkerMessage::Ready, t);
        drain(&mut b);
        let (r1, r2, r3) = (req("C1", "1"), req("C2", "1"), req("C1", "2"));
        b.on_request(r1.clone(), t);
        assert_eq!(routes(&mut b), [to_worker("W1", &r1)]);
        b.on_request(r2.clone(), t);
        assert_eq!(routes(&mut b), [to_worker("W2", &r2)]);
        assert!(!b.wants_requests(), "both workers busy");
        // W2 answers first, so it is the least recently used ready worker now.
        b.on_worker(w("W2"), reply_to(&r2), t);
        assert_eq!(
            drain(&mut b),
            (
                vec![],
                vec![Route::ToClient(Reply {
                    envelope: r2.envelope.clone(),
                    body: r2.body.clone()
                })]
            )
        );
        b.on_worker(w("W1"), reply_to(&r1), t);
        assert_eq!(
            b.ready_workers().cloned().collect::<Vec<_>>(),
            [w("W2"), w("W1")]
        );
        drain(&mut b);
        b.on_request(r3.clone(), t);
        assert_eq!(routes(&mut b), [to_worker("W2", &r3)]);
    }

    #[test]
    fn duplicate_ready_does_not_list_a_worker_twice() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        drain(&mut b);
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        assert_eq!(drain(&mut b).0, [Event::DuplicateReady(w("W1"))]);
        assert_eq!(b.ready_workers().count(), 1);
    }

    #[test]
    fn unreachable_worker_is_forgotten_and_the_request_rerouted() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        b.on_worker(w("W2"), WorkerMessage::Ready, t);
        let r = req("C1", "5");
        b.on_request(r.clone(), t);
        assert_eq!(routes(&mut b), [to_worker("W1", &r)]);
        b.handle_worker_lost(&w("W1"), Lost::Unreachable, t);
        assert_eq!(routes(&mut b), [to_worker("W2", &r)]);
        assert_eq!(b.ready_workers().count(), 0);
    }

    #[test]
    fn a_request_with_no_worker_left_is_held_and_sent_on_the_next_ready() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        let r = req("C1", "5");
        b.on_request(r.clone(), t);
        drain(&mut b);
        b.handle_worker_lost(&w("W1"), Lost::Unreachable, t);
        assert_eq!(routes(&mut b), []);
        assert_eq!(b.held(), Some(&r));
        assert!(!b.wants_requests());
        b.on_worker(w("W3"), WorkerMessage::Ready, t);
        assert_eq!(
            drain(&mut b),
            (vec![Event::WorkerReady(w("W3"))], vec![to_worker("W3", &r)])
        );
        assert_eq!(b.held(), None);
    }

    #[test]
    fn a_worker_that_disconnects_while_busy_hands_its_request_to_the_next() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        b.on_worker(w("W2"), WorkerMessage::Ready, t);
        let (r1, r2) = (req("C1", "1"), req("C2", "1"));
        b.on_request(r1.clone(), t);
        b.on_request(r2.clone(), t);
        assert_eq!(b.busy_workers(), 2);
        drain(&mut b);
        // W1 dies: nobody is ready, its request waits first in line.
        b.handle_worker_lost(&w("W1"), Lost::Disconnected, t);
        let gone = |id, busy| Event::WorkerGone {
            worker: w(id),
            busy,
        };
        assert_eq!(drain(&mut b), (vec![gone("W1", true)], vec![]));
        assert_eq!(b.held(), Some(&r1));
        assert!(!b.wants_requests());
        // W2 answers and gets W1's request at once.
        b.on_worker(w("W2"), reply_to(&r2), t);
        assert_eq!(routes(&mut b)[1], to_worker("W2", &r1));
        // An idle worker that disconnects is just forgotten; an unknown one changes nothing.
        b.on_worker(w("W3"), WorkerMessage::Ready, t);
        drain(&mut b);
        b.handle_worker_lost(&w("W3"), Lost::Disconnected, t);
        assert_eq!(drain(&mut b), (vec![gone("W3", false)], vec![]));
        b.handle_worker_lost(&w("nobody"), Lost::Disconnected, t);
        assert_eq!(drain(&mut b), (vec![], vec![]));
        assert_eq!(b.ready_workers().count(), 0);
        assert_eq!(b.held(), None);
    }

    #[test]
    fn the_hold_is_bounded_to_one_request() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.on_request(req("C1", "1"), t);
        assert_eq!(drain(&mut b), (vec![], vec![]));
        assert!(b.held().is_some());
        let extra = req("C2", "1");
        b.on_request(extra.clone(), t);
        assert_eq!(drain(&mut b), (vec![Event::Dropped(extra)], vec![]));
        assert!(!b.wants_requests());
    }

    #[test]
    fn a_reply_frees_the_worker_for_the_held_request_after_the_reply() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.on_worker(w("W1"), WorkerMessage::Ready, t);
        let (r1, r2) = (req("C1", "1"), req("C2", "1"));
        b.on_request(r1.clone(), t);
        drain(&mut b);
        b.on_request(r2.clone(), t);
        assert_eq!(drain(&mut b), (vec![], vec![]), "held");
        assert_eq!(b.held(), Some(&r2));
        b.on_worker(w("W1"), reply_to(&r1), t);
        let routes = routes(&mut b);
        assert_eq!(routes.len(), 2);
        assert!(matches!(routes[0], Route::ToClient(_)));
        assert_eq!(routes[1], to_worker("W1", &r2));
    }

    #[test]
    fn malformed_messages_from_either_side_are_events_and_change_nothing() {
        let (t, mut b) = (Instant::now(), Queue::new());
        b.handle_worker(Message::from_frames(["W1", "", "\x07"]), t);
        b.handle_worker(Message::from_frames(["W1", "", "\x01"]), t);
        b.handle_client(Message::from_frames(["C1", "no delimiter"]), t);
        b.handle_client(Message::from_frames(["C1", "", "1"]), t);
        let (events, routes) = drain(&mut b);
        assert_eq!(
            events,
            [
                Event::Malformed {
                    from: Side::Worker,
                    sender: Bytes::from_static(b"W1"),
                    error: FrameError::UnknownCommand(7),
                },
                Event::WorkerReady(w("W1")),
                Event::Malformed {
                    from: Side::Client,
                    sender: Bytes::from_static(b"C1"),
                    error: FrameError::TooFewFrames { got: 2, want: 3 },
                },
            ]
        );
        assert_eq!(routes, [to_worker("W1", &req("C1", "1"))]);
    }
}
