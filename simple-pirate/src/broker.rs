//! The queue's decisions: the LRU list of ready workers and where each message goes.
//!
//! No sockets, no clock. The shell ([`crate::queue`]) hands in parsed messages and carries out
//! the returned [`Route`]s; when a send to a worker fails it hands the request back through
//! [`Broker::on_worker_unreachable`], and the request goes to the next ready worker.
//!
//! Flow control, as in the Guide: the shell reads the frontend only while
//! [`Broker::wants_requests`] is true, i.e. while a worker is ready and nothing is held, so
//! requests wait in the clients' connections instead of in the queue. The only buffering is
//! [`Broker::held`]: requests whose worker turned out to be gone while no other worker was
//! ready (at most one per worker that went away, since the frontend is not read meanwhile).
//! They go out, oldest first, with the next READY or reply.
//!
//! The queue remembers the request each worker is working on, so a worker whose connection
//! closes ([`Broker::on_worker_gone`], from the socket monitor) is forgotten at once and its
//! request goes to the next ready worker instead of waiting for the client's retry.

use crate::protocol::{PeerId, Reply, Request, WorkerMessage};
use std::collections::{HashMap, VecDeque};

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

/// How a worker message changed the ready list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// A READY from a worker not on the list: it is now (log `worker <id> ready`).
    Registered,
    /// A READY from a worker already on the list: ignored, no duplicate entry.
    Duplicate,
    /// A reply: the worker is back at the end of the list.
    Returned,
}

/// The outcome of one worker message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStep {
    /// What happened to the worker.
    pub readiness: Readiness,
    /// What to send, in order (the reply first, then a held request, if any).
    pub routes: Vec<Route>,
}

/// What [`Broker::on_worker_gone`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    /// Not a worker the queue knew (or already forgotten).
    Unknown,
    /// A ready worker: forgotten.
    Idle,
    /// A busy worker: forgotten; its request goes out by this route, or is held when no worker
    /// is ready.
    Busy(Option<Route>),
}

/// The outcome of one client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// Send this.
    Route(Route),
    /// No worker is ready; the request is held until one is.
    Held,
    /// A request was already held (the shell read the frontend although
    /// [`Broker::wants_requests`] was false): this one is dropped; the client will retry.
    Dropped(Request),
}

/// The Simple Pirate queue: ready workers in least-recently-used order.
#[derive(Debug, Clone, Default)]
pub struct Broker {
    ready: VecDeque<PeerId>,
    /// Requests waiting for a worker, next first.
    held: VecDeque<Request>,
    /// The request each busy worker is working on (a cheap clone: frames are shared).
    busy: HashMap<PeerId, Request>,
}

impl Broker {
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

    /// A client request arrived.
    pub fn on_request(&mut self, request: Request) -> Dispatch {
        if let Some(worker) = self.ready.pop_front() {
            return Dispatch::Route(self.route(worker, request));
        }
        if !self.held.is_empty() {
            return Dispatch::Dropped(request);
        }
        self.held.push_back(request);
        Dispatch::Held
    }

    fn route(&mut self, worker: PeerId, request: Request) -> Route {
        self.busy.insert(worker.clone(), request.clone());
        Route::ToWorker { worker, request }
    }

    /// A worker spoke.
    pub fn on_worker(&mut self, worker: PeerId, message: WorkerMessage) -> WorkerStep {
        let mut routes = Vec::new();
        let readiness = match message {
            WorkerMessage::Ready if self.ready.contains(&worker) => Readiness::Duplicate,
            WorkerMessage::Ready => {
                self.ready.push_back(worker);
                Readiness::Registered
            }
            WorkerMessage::Reply(reply) => {
                self.busy.remove(&worker);
                routes.push(Route::ToClient(reply));
                if !self.ready.contains(&worker) {
                    self.ready.push_back(worker);
                }
                Readiness::Returned
            }
        };
        routes.extend(self.dispatch_held());
        WorkerStep { readiness, routes }
    }

    /// Sending `request` to `worker` failed (the worker is gone): forget the worker and route
    /// the request to the next ready worker, or hold it first in line.
    pub fn on_worker_unreachable(&mut self, worker: &PeerId, request: Request) -> Option<Route> {
        self.ready.retain(|w| w != worker);
        self.busy.remove(worker);
        self.held.push_front(request);
        self.dispatch_held()
    }

    /// The worker's connection closed: forget it; the request it was working on, if any, goes
    /// to the next ready worker or is held first in line.
    pub fn on_worker_gone(&mut self, worker: &PeerId) -> Gone {
        let was_ready = self.ready.iter().any(|w| w == worker);
        self.ready.retain(|w| w != worker);
        match self.busy.remove(worker) {
            Some(request) => {
                self.held.push_front(request);
                Gone::Busy(self.dispatch_held())
            }
            None if was_ready => Gone::Idle,
            None => Gone::Unknown,
        }
    }

    fn dispatch_held(&mut self) -> Option<Route> {
        if self.ready.is_empty() {
            return None;
        }
        let request = self.held.pop_front()?;
        let worker = self.ready.pop_front()?;
        Some(self.route(worker, request))
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

    #[test]
    fn no_requests_are_read_until_a_worker_is_ready() {
        let mut b = Broker::new();
        assert!(!b.wants_requests());
        let step = b.on_worker(w("W1"), WorkerMessage::Ready);
        assert_eq!(step.readiness, Readiness::Registered);
        assert!(step.routes.is_empty());
        assert!(b.wants_requests());
    }

    #[test]
    fn requests_go_to_the_least_recently_used_worker() {
        let mut b = Broker::new();
        b.on_worker(w("W1"), WorkerMessage::Ready);
        b.on_worker(w("W2"), WorkerMessage::Ready);
        let (r1, r2, r3) = (req("C1", "1"), req("C2", "1"), req("C1", "2"));
        assert_eq!(
            b.on_request(r1.clone()),
            Dispatch::Route(to_worker("W1", &r1))
        );
        assert_eq!(
            b.on_request(r2.clone()),
            Dispatch::Route(to_worker("W2", &r2))
        );
        assert!(!b.wants_requests(), "both workers busy");
        // W2 answers first, so it is the least recently used ready worker now.
        let step = b.on_worker(w("W2"), reply_to(&r2));
        assert_eq!(step.readiness, Readiness::Returned);
        assert_eq!(
            step.routes,
            [Route::ToClient(Reply {
                envelope: r2.envelope.clone(),
                body: r2.body.clone()
            })]
        );
        b.on_worker(w("W1"), reply_to(&r1));
        assert_eq!(
            b.ready_workers().cloned().collect::<Vec<_>>(),
            [w("W2"), w("W1")]
        );
        assert_eq!(
            b.on_request(r3.clone()),
            Dispatch::Route(to_worker("W2", &r3))
        );
    }

    #[test]
    fn duplicate_ready_does_not_list_a_worker_twice() {
        let mut b = Broker::new();
        b.on_worker(w("W1"), WorkerMessage::Ready);
        let step = b.on_worker(w("W1"), WorkerMessage::Ready);
        assert_eq!(step.readiness, Readiness::Duplicate);
        assert_eq!(b.ready_workers().count(), 1);
    }

    #[test]
    fn unreachable_worker_is_forgotten_and_the_request_rerouted() {
        let mut b = Broker::new();
        b.on_worker(w("W1"), WorkerMessage::Ready);
        b.on_worker(w("W2"), WorkerMessage::Ready);
        let r = req("C1", "5");
        assert_eq!(
            b.on_request(r.clone()),
            Dispatch::Route(to_worker("W1", &r))
        );
        assert_eq!(
            b.on_worker_unreachable(&w("W1"), r.clone()),
            Some(to_worker("W2", &r))
        );
        assert_eq!(b.ready_workers().count(), 0);
    }

    #[test]
    fn a_request_with_no_worker_left_is_held_and_sent_on_the_next_ready() {
        let mut b = Broker::new();
        b.on_worker(w("W1"), WorkerMessage::Ready);
        let r = req("C1", "5");
        b.on_request(r.clone());
        assert_eq!(b.on_worker_unreachable(&w("W1"), r.clone()), None);
        assert_eq!(b.held(), Some(&r));
        assert!(!b.wants_requests());
        let step = b.on_worker(w("W3"), WorkerMessage::Ready);
        assert_eq!(step.readiness, Readiness::Registered);
        assert_eq!(step.routes, [to_worker("W3", &r)]);
        assert_eq!(b.held(), None);
    }

    #[test]
    fn a_worker_that_disconnects_while_busy_hands_its_request_to_the_next() {
        let mut b = Broker::new();
        b.on_worker(w("W1"), WorkerMessage::Ready);
        b.on_worker(w("W2"), WorkerMessage::Ready);
        let (r1, r2) = (req("C1", "1"), req("C2", "1"));
        b.on_request(r1.clone());
        b.on_request(r2.clone());
        assert_eq!(b.busy_workers(), 2);
        // W1 dies: nobody is ready, its request waits first in line.
        assert_eq!(b.on_worker_gone(&w("W1")), Gone::Busy(None));
        assert_eq!(b.held(), Some(&r1));
        assert!(!b.wants_requests());
        // W2 answers and gets W1's request at once.
        let step = b.on_worker(w("W2"), reply_to(&r2));
        assert_eq!(step.routes[1], to_worker("W2", &r1));
        // An idle worker that disconnects is just forgotten; an unknown one changes nothing.
        b.on_worker(w("W3"), WorkerMessage::Ready);
        assert_eq!(b.on_worker_gone(&w("W3")), Gone::Idle);
        assert_eq!(b.on_worker_gone(&w("nobody")), Gone::Unknown);
        assert_eq!(b.ready_workers().count(), 0);
        assert_eq!(b.held(), None);
    }

    #[test]
    fn the_hold_is_bounded_to_one_request() {
        let mut b = Broker::new();
        assert_eq!(b.on_request(req("C1", "1")), Dispatch::Held);
        let extra = req("C2", "1");
        assert_eq!(b.on_request(extra.clone()), Dispatch::Dropped(extra));
        assert!(!b.wants_requests());
    }

    #[test]
    fn a_reply_frees_the_worker_for_the_held_request_after_the_reply() {
        let mut b = Broker::new();
        b.on_worker(w("W1"), WorkerMessage::Ready);
        let (r1, r2) = (req("C1", "1"), req("C2", "1"));
        b.on_request(r1.clone());
        assert_eq!(b.on_request(r2.clone()), Dispatch::Held);
        let step = b.on_worker(w("W1"), reply_to(&r1));
        assert_eq!(step.routes.len(), 2);
        assert!(matches!(step.routes[0], Route::ToClient(_)));
        assert_eq!(step.routes[1], to_worker("W1", &r2));
    }
}
