//! The Titanic server's decisions (the core of the `titanic` process; its shell is
//! [`crate::server_loop`]): the three TSP services in [`service`], and here the dispatcher's:
//! which stored request to forward when, and what to do when a service, its workers or the
//! broker are not there. Pure: no sockets, no clock.
//!
//! It follows [`common::contract::Core`]. The shell feeds it every request waiting for a reply
//! ([`Dispatcher::handle_pending`]), carries out the [`Action`]s `poll_transmit` yields (ask
//! the broker's `mmi.service`, or forward a request and journal its reply), reports how they
//! went ([`Dispatcher::handle_probe`], [`Dispatcher::handle_forwarded`]), logs the [`Event`]s
//! and calls `handle_timeout` when `poll_timeout` is due.
//!
//! Per service:
//!
//! ```text
//!  Unknown ──probe──▶ Probing ──200──▶ Up ──forward ok──▶ Up (trusted for `fresh` longer)
//!                       │  ▲            │ no reply / `fresh` expired with nothing to show
//!                404 or │  │ retry      ▼
//!           no broker   ▼  │ due      Down (back-off doubles from `retry` to `retry_max`)
//!                      Down ─┘
//! ```
//!
//! A request is forwarded only while its service is Up, at most [`DispatchConfig::window`]
//! at a time, oldest first within a service. A forward that gets no reply puts the request back
//! in its place and the service Down. A request whose reply was journaled is dropped for good:
//! it is never forwarded again (after a restart, the journal does not list it as pending).

pub mod service;

use crate::protocol::RequestId;
use bytes::Bytes;
use common::contract::{self, Core, Outbox};
use common::heartbeat::Backoff;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Dispatcher settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Most requests forwarded at once (each waits for its reply on its own connection).
    pub window: usize,
    /// First delay before asking again about a service that was down.
    pub retry: Duration,
    /// The delay doubles up to this.
    pub retry_max: Duration,
    /// How long an `mmi.service` 200 (or a reply) is trusted before asking the broker again.
    pub fresh: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            window: 8,
            retry: Duration::from_millis(1000),
            retry_max: Duration::from_millis(16000),
            fresh: Duration::from_millis(5000),
        }
    }
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask the broker's `mmi.service` whether `service` has workers; report with
    /// [`Dispatcher::handle_probe`].
    Probe {
        /// The service.
        service: Bytes,
    },
    /// Forward request `id` to `service`, journal the reply; report with
    /// [`Dispatcher::handle_forwarded`].
    Forward {
        /// The request.
        id: RequestId,
        /// Its service.
        service: Bytes,
    },
}

/// What the dispatcher reports for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `service` has no worker (or, if `no_broker`, the broker did not answer): asked again
    /// after `retry_in`.
    ServiceDown {
        /// The service.
        service: Bytes,
        /// No answer from the broker at all.
        no_broker: bool,
        /// The back-off.
        retry_in: Duration,
    },
    /// Forwarding `id` to `service` failed (no reply, or it could not be journaled): the
    /// service is asked about again after `retry_in`.
    ForwardFailed {
        /// The request.
        id: RequestId,
        /// Its service.
        service: Bytes,
        /// The back-off.
        retry_in: Duration,
    },
}

/// What `mmi.service` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `200`: at least one worker.
    Up,
    /// `404` (or anything else): no worker.
    Down,
    /// No answer: the broker is down or unreachable.
    NoBroker,
}

/// How a forward ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// The reply is journaled. Done for good.
    Stored,
    /// The request was closed (or answered) meanwhile: nothing to do.
    Gone,
    /// No reply after every attempt: the service, its worker or the broker is down.
    NoReply,
    /// The reply came but could not be journaled: try again later.
    StoreFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Unknown,
    Probing,
    Up { until: Instant },
    Down { until: Instant },
}

#[derive(Debug)]
struct Service {
    /// Requests waiting to be forwarded, by arrival order.
    queue: BTreeMap<u64, RequestId>,
    health: Health,
    backoff: Backoff,
    in_flight: usize,
}

/// The dispatcher's state. See the [module docs](self).
#[derive(Debug)]
pub struct Dispatcher {
    config: DispatchConfig,
    services: HashMap<Bytes, Service>,
    /// Requests being forwarded: their arrival number and service.
    in_flight: HashMap<RequestId, (u64, Bytes)>,
    outbox: Outbox<Action, Event>,
    /// The time of the latest input, while its decisions are not made yet. They are made when
    /// the shell polls, so that they see every input handed in since the last poll at once.
    undecided: Option<Instant>,
}

impl Dispatcher {
    /// A dispatcher with nothing to do yet.
    pub fn new(config: DispatchConfig) -> Self {
        Self {
            config: DispatchConfig {
                window: config.window.max(1),
                ..config
            },
            services: HashMap::new(),
            in_flight: HashMap::new(),
            outbox: Outbox::default(),
            undecided: None,
        }
    }

    /// A request waiting for its reply (`seq`: its arrival number). Adding one twice is harmless.
    pub fn handle_pending(&mut self, seq: u64, id: RequestId, service: Bytes, now: Instant) {
        self.undecided = Some(now);
        if self.in_flight.contains_key(&id) {
            return;
        }
        let config = self.config;
        self.services
            .entry(service)
            .or_insert_with(|| Service {
                queue: BTreeMap::new(),
                health: Health::Unknown,
                backoff: Backoff::new(config.retry, config.retry_max),
                in_flight: 0,
            })
            .queue
            .insert(seq, id);
    }

    /// Queues what to do at `now`.
    fn decide(&mut self, now: Instant) {
        let mut free = self.config.window.saturating_sub(self.in_flight.len());
        // Services with nothing queued or under way are forgotten, so the table does not grow
        // with every service name ever asked for.
        self.services
            .retain(|_, s| !s.queue.is_empty() || s.in_flight > 0 || s.health == Health::Probing);
        // Oldest waiting request first, across services.
        let mut order: Vec<(&Bytes, &mut Service)> = self.services.iter_mut().collect();
        order.sort_by_key(|(_, s)| s.queue.keys().next().copied().unwrap_or(u64::MAX));
        for (name, service) in order {
            if service.queue.is_empty() {
                continue;
            }
            let probe = match service.health {
                Health::Unknown => true,
                Health::Probing => false,
                Health::Down { until } => now >= until,
                // Trusted only for a while: a service idle for long is asked about again
                // rather than sent a request that would wait in the broker for a worker.
                Health::Up { until } => now >= until && service.in_flight == 0,
            };
            if probe {
                service.health = Health::Probing;
                self.outbox.transmit(Action::Probe {
                    service: name.clone(),
                });
                continue;
            }
            if !matches!(service.health, Health::Up { .. }) {
                continue;
            }
            while free > 0 {
                let Some((seq, id)) = service.queue.pop_first() else {
                    break;
                };
                free -= 1;
                service.in_flight += 1;
                self.in_flight.insert(id, (seq, name.clone()));
                self.outbox.transmit(Action::Forward {
                    id,
                    service: name.clone(),
                });
            }
        }
    }

    /// What `mmi.service` said about `service`. A service that is down is asked about again
    /// after a back-off ([`Event::ServiceDown`]).
    pub fn handle_probe(&mut self, service: &Bytes, probe: Probe, now: Instant) {
        self.undecided = Some(now);
        let fresh = self.config.fresh;
        let Some(s) = self.services.get_mut(service) else {
            return;
        };
        match probe {
            Probe::Up => {
                s.backoff.reset();
                s.health = Health::Up {
                    until: contract::saturating_add(now, fresh),
                };
            }
            Probe::Down | Probe::NoBroker => {
                let delay = s.backoff.next_delay();
                s.health = Health::Down {
                    until: contract::saturating_add(now, delay),
                };
                self.outbox.event(Event::ServiceDown {
                    service: service.clone(),
                    no_broker: probe == Probe::NoBroker,
                    retry_in: delay,
                });
            }
        }
    }

    /// How forwarding `id` went. A failure puts the request back and its service down, asked
    /// about again after a back-off ([`Event::ForwardFailed`]).
    pub fn handle_forwarded(&mut self, id: RequestId, result: Forwarded, now: Instant) {
        self.undecided = Some(now);
        let Some((seq, name)) = self.in_flight.remove(&id) else {
            return;
        };
        let fresh = self.config.fresh;
        let Some(s) = self.services.get_mut(&name) else {
            return;
        };
        s.in_flight -= 1;
        match result {
            Forwarded::Stored | Forwarded::Gone => {
                if matches!(s.health, Health::Up { .. }) {
                    s.health = Health::Up {
                        until: contract::saturating_add(now, fresh),
                    };
                }
            }
            Forwarded::NoReply | Forwarded::StoreFailed => {
                s.queue.insert(seq, id);
                // Several forwards under way may fail together: back off once, not per failure.
                if matches!(s.health, Health::Down { until } if until > now) {
                    return;
                }
                let delay = s.backoff.next_delay();
                s.health = Health::Down {
                    until: contract::saturating_add(now, delay),
                };
                self.outbox.event(Event::ForwardFailed {
                    id,
                    service: name,
                    retry_in: delay,
                });
            }
        }
    }

    /// Requests waiting to be forwarded (not counting those under way).
    pub fn queued(&self) -> usize {
        self.services.values().map(|s| s.queue.len()).sum()
    }

    /// Requests being forwarded now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

impl Core for Dispatcher {
    type Transmit = Action;
    type Event = Event;

    /// A back-off or a service's trust ran out: decides again.
    fn handle_timeout(&mut self, now: Instant) {
        self.undecided = Some(now);
    }

    /// When there is something new to do without any other input: the earliest back-off or
    /// trust expiry of a service with requests waiting.
    fn poll_timeout(&self) -> Option<Instant> {
        self.services
            .values()
            .filter(|s| !s.queue.is_empty())
            .filter_map(|s| match s.health {
                Health::Down { until } => Some(until),
                Health::Up { until } if s.in_flight == 0 => Some(until),
                _ => None,
            })
            .min()
    }

    /// The next action, decided from every input handed in so far.
    fn poll_transmit(&mut self) -> Option<Action> {
        if let Some(now) = self.undecided.take() {
            self.decide(now);
        }
        self.outbox.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn id(n: u8) -> RequestId {
        RequestId::from_bytes([n; 16])
    }

    fn echo() -> Bytes {
        Bytes::from("echo")
    }

    fn config(window: usize) -> DispatchConfig {
        DispatchConfig {
            window,
            retry: 100 * MS,
            retry_max: 400 * MS,
            fresh: 1000 * MS,
        }
    }

    /// The old one-call shape, for short tests: the time passes to `now`, then what to do.
    fn poll(d: &mut Dispatcher, now: Instant) -> Vec<Action> {
        d.handle_timeout(now);
        std::iter::from_fn(|| d.poll_transmit()).collect()
    }

    /// The back-off reported by the last input, if any.
    fn retry_in(d: &mut Dispatcher) -> Option<Duration> {
        std::iter::from_fn(|| d.poll_event())
            .map(|event| match event {
                Event::ServiceDown { retry_in, .. } | Event::ForwardFailed { retry_in, .. } => {
                    retry_in
                }
            })
            .last()
    }

    fn probed(d: &mut Dispatcher, service: &Bytes, probe: Probe, now: Instant) -> Option<Duration> {
        d.handle_probe(service, probe, now);
        retry_in(d)
    }

    fn forwarded(
        d: &mut Dispatcher,
        id: RequestId,
        result: Forwarded,
        now: Instant,
    ) -> Option<Duration> {
        d.handle_forwarded(id, result, now);
        retry_in(d)
    }

    fn forwards(actions: &[Action]) -> Vec<RequestId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Forward { id, .. } => Some(*id),
                Action::Probe { .. } => None,
            })
            .collect()
    }

    #[test]
    fn asks_the_broker_before_forwarding_then_forwards_oldest_first() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(2));
        d.handle_pending(7, id(7), echo(), t0);
        d.handle_pending(3, id(3), echo(), t0);
        d.handle_pending(5, id(5), echo(), t0);
        assert_eq!(poll(&mut d, t0), vec![Action::Probe { service: echo() }]);
        assert_eq!(poll(&mut d, t0), vec![], "one question at a time");
        assert_eq!(probed(&mut d, &echo(), Probe::Up, t0), None);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(3), id(5)]);
        assert_eq!(poll(&mut d, t0), vec![], "window full");
        assert_eq!(forwarded(&mut d, id(3), Forwarded::Stored, t0), None);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(7)]);
        assert_eq!((d.queued(), d.in_flight()), (0, 2));
    }

    #[test]
    fn durations_of_u64_max_milliseconds_never_panic() {
        let huge = Duration::from_millis(u64::MAX);
        let t0 = Instant::now();
        let mut d = Dispatcher::new(DispatchConfig {
            window: 1,
            retry: huge,
            retry_max: huge,
            fresh: huge,
        });
        d.handle_pending(0, id(0), echo(), t0);
        d.handle_pending(1, id(1), echo(), t0);
        poll(&mut d, t0);
        assert_eq!(probed(&mut d, &echo(), Probe::Down, t0), Some(huge));
        assert!(d.poll_timeout().is_some_and(|at| at > t0 + 1000 * MS));
        assert_eq!(probed(&mut d, &echo(), Probe::Up, t0), None);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(0)]);
        assert_eq!(forwarded(&mut d, id(0), Forwarded::Stored, t0), None);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(1)], "still fresh");
        assert_eq!(forwarded(&mut d, id(1), Forwarded::NoReply, t0), Some(huge));
    }

    #[test]
    fn a_down_service_is_asked_again_with_doubling_back_off() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        d.handle_pending(0, id(0), echo(), t0);
        poll(&mut d, t0);
        assert_eq!(probed(&mut d, &echo(), Probe::Down, t0), Some(100 * MS));
        assert_eq!(d.poll_timeout(), Some(t0 + 100 * MS));
        assert_eq!(poll(&mut d, t0 + 99 * MS), vec![]);
        let t1 = t0 + 100 * MS;
        assert_eq!(poll(&mut d, t1), vec![Action::Probe { service: echo() }]);
        assert_eq!(probed(&mut d, &echo(), Probe::NoBroker, t1), Some(200 * MS));
        let t2 = t1 + 200 * MS;
        poll(&mut d, t2);
        assert_eq!(probed(&mut d, &echo(), Probe::Down, t2), Some(400 * MS));
        let t3 = t2 + 400 * MS;
        poll(&mut d, t3);
        assert_eq!(
            probed(&mut d, &echo(), Probe::Down, t3),
            Some(400 * MS),
            "capped"
        );
        let t4 = t3 + 400 * MS;
        poll(&mut d, t4);
        probed(&mut d, &echo(), Probe::Up, t4);
        assert_eq!(forwards(&poll(&mut d, t4)), vec![id(0)]);
    }

    #[test]
    fn a_forward_without_reply_goes_back_in_its_place_and_backs_off_once() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(3));
        for n in 0..4 {
            d.handle_pending(u64::from(n), id(n), echo(), t0);
        }
        poll(&mut d, t0);
        probed(&mut d, &echo(), Probe::Up, t0);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(0), id(1), id(2)]);
        let t1 = t0 + 50 * MS;
        assert_eq!(
            forwarded(&mut d, id(1), Forwarded::NoReply, t1),
            Some(100 * MS)
        );
        assert_eq!(forwarded(&mut d, id(0), Forwarded::NoReply, t1), None);
        assert_eq!(forwarded(&mut d, id(2), Forwarded::Stored, t1), None);
        assert_eq!(poll(&mut d, t1), vec![]);
        let t2 = t1 + 100 * MS;
        assert_eq!(poll(&mut d, t2), vec![Action::Probe { service: echo() }]);
        probed(&mut d, &echo(), Probe::Up, t2);
        assert_eq!(forwards(&poll(&mut d, t2)), vec![id(0), id(1), id(3)]);
    }

    #[test]
    fn a_stored_reply_is_never_forwarded_again() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(1));
        d.handle_pending(0, id(0), echo(), t0);
        poll(&mut d, t0);
        probed(&mut d, &echo(), Probe::Up, t0);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(0)]);
        d.handle_pending(0, id(0), echo(), t0); // a late duplicate notification while in flight
        assert_eq!(forwarded(&mut d, id(0), Forwarded::Stored, t0), None);
        assert_eq!(poll(&mut d, t0 + 10_000 * MS), vec![]);
        assert_eq!((d.queued(), d.in_flight()), (0, 0));
        assert_eq!(d.poll_timeout(), None);
        // Unknown reports are ignored.
        assert_eq!(forwarded(&mut d, id(9), Forwarded::NoReply, t0), None);
        assert_eq!(probed(&mut d, &Bytes::from("nope"), Probe::Up, t0), None);
    }

    #[test]
    fn one_down_service_does_not_hold_up_another() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        d.handle_pending(0, id(0), Bytes::from("coffee"), t0);
        d.handle_pending(1, id(1), echo(), t0);
        let probes = poll(&mut d, t0);
        assert_eq!(probes.len(), 2);
        probed(&mut d, &Bytes::from("coffee"), Probe::Down, t0);
        probed(&mut d, &echo(), Probe::Up, t0);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(1)]);
    }

    #[test]
    fn trust_in_a_service_expires_when_idle() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        d.handle_pending(0, id(0), echo(), t0);
        poll(&mut d, t0);
        probed(&mut d, &echo(), Probe::Up, t0);
        poll(&mut d, t0);
        forwarded(&mut d, id(0), Forwarded::Stored, t0 + 10 * MS);
        // Within `fresh` of the last reply: straight to forwarding.
        d.handle_pending(1, id(1), echo(), t0);
        assert_eq!(forwards(&poll(&mut d, t0 + 500 * MS)), vec![id(1)]);
        forwarded(&mut d, id(1), Forwarded::Gone, t0 + 500 * MS);
        // Long idle: ask first.
        d.handle_pending(2, id(2), echo(), t0);
        assert_eq!(d.poll_timeout(), Some(t0 + 1500 * MS));
        assert_eq!(
            poll(&mut d, t0 + 1500 * MS),
            vec![Action::Probe { service: echo() }]
        );
    }

    #[test]
    fn forgotten_services_do_not_pile_up() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        for n in 0..50 {
            d.handle_pending(u64::from(n), id(n), Bytes::from(format!("svc{n}")), t0);
        }
        assert_eq!(poll(&mut d, t0).len(), 50);
        for n in 0..50 {
            probed(&mut d, &Bytes::from(format!("svc{n}")), Probe::Up, t0);
        }
        let sent = forwards(&poll(&mut d, t0));
        assert_eq!(sent.len(), 4);
        for id in sent {
            forwarded(&mut d, id, Forwarded::Gone, t0);
        }
        assert_eq!(d.queued(), 46);
        assert!(d.services.len() <= 50);
        while d.queued() + d.in_flight() > 0 {
            let now = t0 + 2000 * MS;
            for a in poll(&mut d, now) {
                match a {
                    Action::Probe { service } => {
                        probed(&mut d, &service, Probe::Up, now);
                    }
                    Action::Forward { id, .. } => {
                        forwarded(&mut d, id, Forwarded::Stored, now);
                    }
                }
            }
        }
        poll(&mut d, t0);
        assert!(d.services.is_empty());
    }

    #[test]
    fn failures_are_reported_as_events_for_the_log() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        d.handle_pending(0, id(0), echo(), t0);
        poll(&mut d, t0);
        d.handle_probe(&echo(), Probe::NoBroker, t0);
        let down = Event::ServiceDown {
            service: echo(),
            no_broker: true,
            retry_in: 100 * MS,
        };
        assert_eq!(d.poll_event(), Some(down));
        let t1 = t0 + 100 * MS;
        poll(&mut d, t1);
        d.handle_probe(&echo(), Probe::Up, t1);
        assert_eq!(d.poll_event(), None, "nothing to report");
        assert_eq!(forwards(&poll(&mut d, t1)), vec![id(0)]);
        d.handle_forwarded(id(0), Forwarded::StoreFailed, t1);
        let failed = Event::ForwardFailed {
            id: id(0),
            service: echo(),
            retry_in: 100 * MS,
        };
        assert_eq!(d.poll_event(), Some(failed));
    }

    #[test]
    fn decisions_see_every_input_handed_in_since_the_last_poll() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(2));
        let coffee = Bytes::from("coffee");
        d.handle_pending(5, id(5), echo(), t0);
        d.handle_pending(7, id(7), coffee.clone(), t0);
        poll(&mut d, t0);
        d.handle_probe(&echo(), Probe::Up, t0);
        d.handle_probe(&coffee, Probe::Up, t0);
        // A newer request for echo arrives before the shell polls: the window still goes
        // oldest service first (echo's 5, its 9), as one decision over all the inputs.
        d.handle_pending(9, id(9), echo(), t0);
        assert_eq!(forwards(&poll(&mut d, t0)), vec![id(5), id(9)]);
    }
}
