//! The dispatcher's decisions: which stored request to forward when, and what to do when a
//! service, its workers or the broker are not there. Pure: no sockets, no clock.
//!
//! The shell feeds it every request waiting for a reply ([`Dispatcher::add`]), runs the
//! [`Action`]s that [`Dispatcher::poll`] returns (ask the broker's `mmi.service`, or forward a
//! request and journal its reply), reports how they went ([`Dispatcher::on_probe`],
//! [`Dispatcher::on_forward`]), and sleeps until [`Dispatcher::next_deadline`].
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

use crate::tsp::RequestId;
use bytes::Bytes;
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
    /// [`Dispatcher::on_probe`].
    Probe {
        /// The service.
        service: Bytes,
    },
    /// Forward request `id` to `service`, journal the reply; report with
    /// [`Dispatcher::on_forward`].
    Forward {
        /// The request.
        id: RequestId,
        /// Its service.
        service: Bytes,
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
        }
    }

    /// A request waiting for its reply (`seq`: its arrival number). Adding one twice is harmless.
    pub fn add(&mut self, seq: u64, id: RequestId, service: Bytes) {
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

    /// What to do now.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
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
                actions.push(Action::Probe {
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
                actions.push(Action::Forward {
                    id,
                    service: name.clone(),
                });
            }
        }
        actions
    }

    /// What `mmi.service` said about `service`. Returns the back-off before the next question
    /// if the service is down.
    pub fn on_probe(&mut self, service: &Bytes, probe: Probe, now: Instant) -> Option<Duration> {
        let fresh = self.config.fresh;
        let s = self.services.get_mut(service)?;
        match probe {
            Probe::Up => {
                s.backoff.reset();
                s.health = Health::Up { until: now + fresh };
                None
            }
            Probe::Down | Probe::NoBroker => {
                let delay = s.backoff.next_delay();
                s.health = Health::Down { until: now + delay };
                Some(delay)
            }
        }
    }

    /// How forwarding `id` went. Returns the back-off if its service is now considered down.
    pub fn on_forward(
        &mut self,
        id: RequestId,
        result: Forwarded,
        now: Instant,
    ) -> Option<Duration> {
        let (seq, name) = self.in_flight.remove(&id)?;
        let fresh = self.config.fresh;
        let s = self.services.get_mut(&name)?;
        s.in_flight -= 1;
        match result {
            Forwarded::Stored | Forwarded::Gone => {
                if matches!(s.health, Health::Up { .. }) {
                    s.health = Health::Up { until: now + fresh };
                }
                None
            }
            Forwarded::NoReply | Forwarded::StoreFailed => {
                s.queue.insert(seq, id);
                // Several forwards under way may fail together: back off once, not per failure.
                if let Health::Down { until } = s.health {
                    if until > now {
                        return None;
                    }
                }
                let delay = s.backoff.next_delay();
                s.health = Health::Down { until: now + delay };
                Some(delay)
            }
        }
    }

    /// When [`poll`](Self::poll) has something new to do without any other event: the earliest
    /// back-off or trust expiry of a service with requests waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
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

    /// Requests waiting to be forwarded (not counting those under way).
    pub fn queued(&self) -> usize {
        self.services.values().map(|s| s.queue.len()).sum()
    }

    /// Requests being forwarded now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
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
        d.add(7, id(7), echo());
        d.add(3, id(3), echo());
        d.add(5, id(5), echo());
        assert_eq!(d.poll(t0), vec![Action::Probe { service: echo() }]);
        assert_eq!(d.poll(t0), vec![], "one question at a time");
        assert_eq!(d.on_probe(&echo(), Probe::Up, t0), None);
        assert_eq!(forwards(&d.poll(t0)), vec![id(3), id(5)]);
        assert_eq!(d.poll(t0), vec![], "window full");
        assert_eq!(d.on_forward(id(3), Forwarded::Stored, t0), None);
        assert_eq!(forwards(&d.poll(t0)), vec![id(7)]);
        assert_eq!((d.queued(), d.in_flight()), (0, 2));
    }

    #[test]
    fn a_down_service_is_asked_again_with_doubling_back_off() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        d.add(0, id(0), echo());
        d.poll(t0);
        assert_eq!(d.on_probe(&echo(), Probe::Down, t0), Some(100 * MS));
        assert_eq!(d.next_deadline(), Some(t0 + 100 * MS));
        assert_eq!(d.poll(t0 + 99 * MS), vec![]);
        let t1 = t0 + 100 * MS;
        assert_eq!(d.poll(t1), vec![Action::Probe { service: echo() }]);
        assert_eq!(d.on_probe(&echo(), Probe::NoBroker, t1), Some(200 * MS));
        let t2 = t1 + 200 * MS;
        d.poll(t2);
        assert_eq!(d.on_probe(&echo(), Probe::Down, t2), Some(400 * MS));
        let t3 = t2 + 400 * MS;
        d.poll(t3);
        assert_eq!(
            d.on_probe(&echo(), Probe::Down, t3),
            Some(400 * MS),
            "capped"
        );
        let t4 = t3 + 400 * MS;
        d.poll(t4);
        d.on_probe(&echo(), Probe::Up, t4);
        assert_eq!(forwards(&d.poll(t4)), vec![id(0)]);
    }

    #[test]
    fn a_forward_without_reply_goes_back_in_its_place_and_backs_off_once() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(3));
        for n in 0..4 {
            d.add(u64::from(n), id(n), echo());
        }
        d.poll(t0);
        d.on_probe(&echo(), Probe::Up, t0);
        assert_eq!(forwards(&d.poll(t0)), vec![id(0), id(1), id(2)]);
        let t1 = t0 + 50 * MS;
        assert_eq!(d.on_forward(id(1), Forwarded::NoReply, t1), Some(100 * MS));
        assert_eq!(d.on_forward(id(0), Forwarded::NoReply, t1), None);
        assert_eq!(d.on_forward(id(2), Forwarded::Stored, t1), None);
        assert_eq!(d.poll(t1), vec![]);
        let t2 = t1 + 100 * MS;
        assert_eq!(d.poll(t2), vec![Action::Probe { service: echo() }]);
        d.on_probe(&echo(), Probe::Up, t2);
        assert_eq!(forwards(&d.poll(t2)), vec![id(0), id(1), id(3)]);
    }

    #[test]
    fn a_stored_reply_is_never_forwarded_again() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(1));
        d.add(0, id(0), echo());
        d.poll(t0);
        d.on_probe(&echo(), Probe::Up, t0);
        assert_eq!(forwards(&d.poll(t0)), vec![id(0)]);
        d.add(0, id(0), echo()); // a late duplicate notification while in flight
        assert_eq!(d.on_forward(id(0), Forwarded::Stored, t0), None);
        assert_eq!(d.poll(t0 + 10_000 * MS), vec![]);
        assert_eq!((d.queued(), d.in_flight()), (0, 0));
        assert_eq!(d.next_deadline(), None);
        // Unknown reports are ignored.
        assert_eq!(d.on_forward(id(9), Forwarded::NoReply, t0), None);
        assert_eq!(d.on_probe(&Bytes::from("nope"), Probe::Up, t0), None);
    }

    #[test]
    fn one_down_service_does_not_hold_up_another() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        d.add(0, id(0), Bytes::from("coffee"));
        d.add(1, id(1), echo());
        let probes = d.poll(t0);
        assert_eq!(probes.len(), 2);
        d.on_probe(&Bytes::from("coffee"), Probe::Down, t0);
        d.on_probe(&echo(), Probe::Up, t0);
        assert_eq!(forwards(&d.poll(t0)), vec![id(1)]);
    }

    #[test]
    fn trust_in_a_service_expires_when_idle() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        d.add(0, id(0), echo());
        d.poll(t0);
        d.on_probe(&echo(), Probe::Up, t0);
        d.poll(t0);
        d.on_forward(id(0), Forwarded::Stored, t0 + 10 * MS);
        // Within `fresh` of the last reply: straight to forwarding.
        d.add(1, id(1), echo());
        assert_eq!(forwards(&d.poll(t0 + 500 * MS)), vec![id(1)]);
        d.on_forward(id(1), Forwarded::Gone, t0 + 500 * MS);
        // Long idle: ask first.
        d.add(2, id(2), echo());
        assert_eq!(d.next_deadline(), Some(t0 + 1500 * MS));
        assert_eq!(
            d.poll(t0 + 1500 * MS),
            vec![Action::Probe { service: echo() }]
        );
    }

    #[test]
    fn forgotten_services_do_not_pile_up() {
        let t0 = Instant::now();
        let mut d = Dispatcher::new(config(4));
        for n in 0..50 {
            d.add(u64::from(n), id(n), Bytes::from(format!("svc{n}")));
        }
        assert_eq!(d.poll(t0).len(), 50);
        for n in 0..50 {
            d.on_probe(&Bytes::from(format!("svc{n}")), Probe::Up, t0);
        }
        let sent = forwards(&d.poll(t0));
        assert_eq!(sent.len(), 4);
        for id in sent {
            d.on_forward(id, Forwarded::Gone, t0);
        }
        assert_eq!(d.queued(), 46);
        assert!(d.services.len() <= 50);
        while d.queued() + d.in_flight() > 0 {
            let now = t0 + 2000 * MS;
            for a in d.poll(now) {
                match a {
                    Action::Probe { service } => {
                        d.on_probe(&service, Probe::Up, now);
                    }
                    Action::Forward { id, .. } => {
                        d.on_forward(id, Forwarded::Stored, now);
                    }
                }
            }
        }
        d.poll(t0);
        assert!(d.services.is_empty());
    }
}
