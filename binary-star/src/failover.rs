//! The failover client's decisions, with no sockets and no clock.
//!
//! A Binary Star client knows both servers and asks one at a time. [`Plan`] says which server to
//! ask, when, and for how long to wait for the answer: it is the [`Schedule`] of the
//! workspace's one retrying client ([`common::retry`]), which the I/O shell
//! ([`crate::client_loop`]) drives.
//!
//! # Strategies
//!
//! * [`Strategy::Guide`] is the Guide's `bstarcli`: wait `timeout` for a reply; on silence
//!   switch to the other server, sleep the `settle` delay (time for the passive server to see
//!   its peer expire), and resend once. Every failure costs `timeout + settle`.
//! * [`Strategy::Eager`] (the default) switches at once and *votes* during the settle time: it
//!   resends to the new server every `vote` interval until `settle` has passed, then waits one
//!   full `timeout`, then switches back the same way. The passive server drops every request
//!   that comes before its peer expired and takes over on the first one after, so the answer
//!   comes within one vote interval of the server being allowed to serve, instead of after a
//!   fixed sleep. It needs no protocol change and is as safe as the Guide's client: only the
//!   servers decide when a takeover is allowed (the peer has been silent for the whole expiry),
//!   the client only decides how often to ask. The price is a few dropped requests at the
//!   passive server during a failover, and a duplicate if an active server takes longer than
//!   the vote interval to answer (so keep `vote` above the service's normal latency).
//!
//! An answer from the other server than the previous answer ends a failover: the retry core
//! reports it (`Event::Answered { switched, waited, .. }`), and `bstarcli` logs the wait.

use common::contract;
use common::retry::{Schedule, Try};
use std::time::{Duration, Instant};

/// Guide default: how long to wait for a reply before giving up on a server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// Guide default: how long the other server may need to notice its peer is gone.
pub const SETTLE_DELAY: Duration = Duration::from_millis(2000);
/// How often the eager strategy resends while the new server settles.
pub const VOTE_INTERVAL: Duration = Duration::from_millis(250);

/// How the client fails over; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Switch at once and resend every vote interval while the new server settles.
    #[default]
    Eager,
    /// The Guide's client: wait out the timeout, sleep the settle delay, resend once.
    Guide,
}

/// Client timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How the client fails over.
    pub strategy: Strategy,
    /// How long to wait for a reply from a server that should be serving.
    pub timeout: Duration,
    /// How long the other server may need before it takes over.
    pub settle: Duration,
    /// Resend interval while the new server settles (eager strategy only).
    pub vote: Duration,
    /// Report a request failed after this long without an answer (`None`: keep trying, as the
    /// Guide's client does).
    pub give_up: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            strategy: Strategy::default(),
            timeout: REQUEST_TIMEOUT,
            settle: SETTLE_DELAY,
            vote: VOTE_INTERVAL,
            give_up: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Voting {
    since: Instant,
    last_chance: bool,
}

/// Per-client failover decisions over two servers.
#[derive(Debug, Clone)]
pub struct Plan {
    policy: Policy,
    /// The server that answered last (where new requests go first).
    settled: usize,
    /// The server asked by the current attempt.
    current: usize,
    started: Instant,
    attempt: Option<(Instant, Instant)>,
    voting: Option<Voting>,
}

impl Plan {
    /// A plan that starts with server 0 (the primary).
    pub fn new(policy: Policy, now: Instant) -> Plan {
        Plan {
            policy,
            settled: 0,
            current: 0,
            started: now,
            attempt: None,
            voting: None,
        }
    }

    /// The timing in use.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The server that answered last (0 or 1).
    pub fn settled(&self) -> usize {
        self.settled
    }

    fn gave_up(&self, now: Instant) -> bool {
        self.policy
            .give_up
            .is_some_and(|limit| now >= contract::saturating_add(self.started, limit))
    }

    fn send(&mut self, server: usize, at: Instant, until: Instant) -> Try {
        self.current = server;
        self.attempt = Some((at, until));
        Try {
            endpoint: server,
            at,
            until,
        }
    }
}

impl Schedule for Plan {
    /// A new request: ask the server that answered last, wait up to the timeout.
    fn begin(&mut self, now: Instant) -> Try {
        self.started = now;
        self.current = self.settled;
        self.voting = None;
        let until = contract::saturating_add(now, self.policy.timeout);
        self.send(self.current, now, until)
    }

    /// The attempt got no answer (timed out, or the connection failed): the next one, or
    /// `None` to give up.
    fn next(&mut self, now: Instant) -> Option<Try> {
        let (at, until) = self.attempt.unwrap_or((now, now));
        if self.policy.strategy == Strategy::Guide {
            // The reference client only ever notices silence, at the end of the timeout.
            let now = now.max(until);
            if self.gave_up(now) {
                return None;
            }
            let other = 1 - self.current;
            let at = contract::saturating_add(now, self.policy.settle);
            let until = contract::saturating_add(at, self.policy.timeout);
            return Some(self.send(other, at, until));
        }
        if self.gave_up(now) {
            return None;
        }
        let vote = self.policy.vote.min(self.policy.timeout);
        Some(match self.voting {
            Some(Voting {
                since,
                last_chance: false,
            }) => {
                let next = now.max(contract::saturating_add(at, vote));
                if next >= contract::saturating_add(since, self.policy.settle) {
                    self.voting = Some(Voting {
                        since,
                        last_chance: true,
                    });
                    self.send(
                        self.current,
                        next,
                        contract::saturating_add(next, self.policy.timeout),
                    )
                } else {
                    self.send(self.current, next, contract::saturating_add(next, vote))
                }
            }
            // The server we trusted, or the last chance of the other one: switch now.
            None
            | Some(Voting {
                last_chance: true, ..
            }) => {
                self.voting = Some(Voting {
                    since: now,
                    last_chance: false,
                });
                let other = 1 - self.current;
                self.send(other, now, contract::saturating_add(now, vote))
            }
        })
    }

    /// The attempt was answered: new requests go to this server first.
    fn answered(&mut self, _now: Instant) {
        self.settled = self.current;
        self.voting = None;
        self.attempt = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::contract::Core;
    use common::retry::{Event, OnFailure, ReplyCheck, Requester, TryError};
    use common::sock::SockError;
    use common::Message;

    const MS: Duration = Duration::from_millis(1);

    fn send(step: impl Into<Option<Try>>) -> (usize, Instant, Instant) {
        match step.into() {
            Some(Try {
                endpoint: server,
                at,
                until,
            }) => (server, at, until),
            None => panic!("gave up"),
        }
    }

    /// The plan inside the retry core, which counts the resends and sees the failovers.
    fn core(policy: Policy, t0: Instant) -> Requester<Plan> {
        Requester::new(Plan::new(policy, t0), ReplyCheck::Any, OnFailure::Next)
    }

    /// The next transmit's (server, until), sent at `now`.
    fn sent(core: &mut Requester<Plan>, now: Instant) -> (usize, Instant) {
        core.handle_timeout(now);
        let t = core.poll_transmit().expect("a try is due");
        (t.endpoint, t.until)
    }

    /// Answers the current try at `now`: (server, switched, waited).
    fn answer(core: &mut Requester<Plan>, now: Instant) -> (usize, bool, Duration) {
        core.handle_reply(Message::from_frames(["ok"]), now);
        let events: Vec<_> = std::iter::from_fn(|| core.poll_event()).collect();
        match events.last() {
            Some(&Event::Answered {
                endpoint,
                switched,
                waited,
                ..
            }) => (endpoint, switched, waited),
            other => panic!("not answered: {other:?}"),
        }
    }

    #[test]
    fn durations_of_u64_max_milliseconds_never_panic() {
        let huge = Duration::from_millis(u64::MAX);
        for strategy in [Strategy::Eager, Strategy::Guide] {
            let t0 = Instant::now();
            let policy = Policy {
                strategy,
                timeout: huge,
                settle: huge,
                vote: huge,
                give_up: Some(huge),
            };
            let mut core = core(policy, t0);
            core.handle_request(Message::from_frames(["1"]), t0);
            let (server, until) = sent(&mut core, t0);
            assert_eq!(server, 0);
            assert!(until > t0 + Duration::from_secs(3600 * 24 * 365));
            // The connection fails at once: nothing overflows on the way to the next step.
            let refused = SockError::Timeout("connect", MS);
            core.handle_error(TryError::Connect(refused), t0 + MS);
            core.handle_timeout(t0 + 2 * MS);
            if strategy == Strategy::Eager {
                // Switched to the backup at once, which gets the (far) timeout.
                assert_eq!(sent(&mut core, t0 + 2 * MS).0, 1);
            }
        }
    }

    #[test]
    fn answered_requests_stay_on_the_same_server() {
        let t0 = Instant::now();
        let mut core = core(Policy::default(), t0);
        for i in 0..3u32 {
            let now = t0 + 100 * MS * i;
            core.handle_request(Message::from_frames(["1"]), now);
            assert_eq!(sent(&mut core, now), (0, now + 1000 * MS));
            assert!(!answer(&mut core, now + MS).1, "no failover");
        }
        assert_eq!(core.summary().retries, 0);
    }

    #[test]
    fn guide_strategy_waits_timeout_then_settle_then_resends_once_per_switch() {
        let t0 = Instant::now();
        let policy = Policy {
            strategy: Strategy::Guide,
            ..Policy::default()
        };
        let mut core = core(policy, t0);
        core.handle_request(Message::from_frames(["1"]), t0);
        sent(&mut core, t0);
        // Even a connection error at once counts at the end of the timeout, like the C client.
        let refused = SockError::Timeout("connect", MS);
        core.handle_error(TryError::Connect(refused), t0 + 5 * MS);
        assert_eq!(
            core.poll_timeout(),
            Some(t0 + 3000 * MS),
            "sent after the settle delay"
        );
        assert_eq!(sent(&mut core, t0 + 3000 * MS), (1, t0 + 4000 * MS));
        // No answer from the backup either: back to the primary after another settle delay.
        core.handle_timeout(t0 + 4000 * MS);
        assert_eq!(core.poll_timeout(), Some(t0 + 6000 * MS));
        assert_eq!(sent(&mut core, t0 + 6000 * MS).0, 0);
        assert_eq!(core.summary().retries, 2);
        let (_, switched, _) = answer(&mut core, t0 + 6001 * MS);
        assert!(!switched, "answered by the server that answered before");
    }

    #[test]
    fn eager_strategy_switches_at_once_and_votes_until_the_backup_takes_over() {
        let t0 = Instant::now();
        let mut core = core(Policy::default(), t0);
        core.handle_request(Message::from_frames(["1"]), t0);
        sent(&mut core, t0);
        // The primary's connection fails at once (killed): ask the backup immediately.
        let failed_at = t0 + 3 * MS;
        let killed = SockError::Timeout("receive", MS);
        core.handle_error(TryError::Recv(killed), failed_at);
        let (server, until) = sent(&mut core, failed_at);
        assert_eq!((server, until), (1, failed_at + 250 * MS));
        // The backup drops requests until its peer expires: resend every vote interval.
        core.handle_timeout(until);
        let (server, until) = sent(&mut core, failed_at + 250 * MS);
        assert_eq!((server, until), (1, failed_at + 500 * MS));
        core.handle_timeout(until);
        let at = failed_at + 500 * MS;
        assert_eq!(sent(&mut core, at).0, 1);
        // This one is answered: the caller waited about 0.5 s instead of 3 s.
        let (to, switched, waited) = answer(&mut core, at + 2 * MS);
        assert!(switched, "a failover from the primary");
        assert_eq!(to, 1);
        assert_eq!(waited, 505 * MS);
        assert_eq!(core.schedule().settled(), 1);
        // The next request goes straight to the backup.
        core.handle_request(Message::from_frames(["2"]), t0 + 1000 * MS);
        assert_eq!(sent(&mut core, t0 + 1000 * MS).0, 1);
        assert_eq!(core.summary().retries, 3);
    }

    #[test]
    fn eager_votes_for_the_settle_delay_then_waits_a_full_timeout_then_switches_back() {
        let t0 = Instant::now();
        let mut plan = Plan::new(Policy::default(), t0);
        plan.begin(t0);
        // The primary times out (hung, not dead).
        let switch = t0 + 1000 * MS;
        let mut step = plan.next(switch);
        let mut sends = vec![send(step)];
        // The backup never answers (its peer is alive).
        loop {
            let (server, _, until) = send(step);
            step = plan.next(until);
            let next = send(step);
            sends.push(next);
            if next.0 != server {
                break;
            }
        }
        // 8 votes of 250 ms during the 2 s settle time, then one with the full timeout.
        let on_backup: Vec<_> = sends.iter().filter(|s| s.0 == 1).collect();
        assert_eq!(on_backup.len(), 9, "{sends:?}");
        for (i, (_, at, until)) in on_backup.iter().enumerate().take(8) {
            assert_eq!(*at, switch + 250 * MS * i as u32);
            assert_eq!(*until - *at, 250 * MS);
        }
        let (_, at, until) = on_backup[8];
        assert_eq!(*at, switch + 2000 * MS);
        assert_eq!(*until, switch + 3000 * MS);
        // Then the primary again, voting the same way.
        let (server, at, until) = *sends.last().unwrap();
        assert_eq!(
            (server, at, until),
            (0, switch + 3000 * MS, switch + 3250 * MS)
        );
    }

    #[test]
    fn a_server_that_refuses_at_once_is_not_hammered() {
        let t0 = Instant::now();
        let mut plan = Plan::new(Policy::default(), t0);
        plan.begin(t0);
        let (_, first, _) = send(plan.next(t0));
        // The backup refuses the connection at once: the next try waits for the next slot.
        let (server, at, _) = send(plan.next(first + MS));
        assert_eq!((server, at), (1, first + 250 * MS));
    }

    #[test]
    fn give_up_reports_the_request_failed() {
        let t0 = Instant::now();
        let policy = Policy {
            give_up: Some(Duration::from_millis(1500)),
            ..Policy::default()
        };
        let mut plan = Plan::new(policy, t0);
        plan.begin(t0);
        let mut now = t0 + 1000 * MS;
        let mut step = plan.next(now);
        while let Some(Try { until, .. }) = step {
            now = until;
            step = plan.next(now);
        }
        assert!(
            now >= t0 + 1500 * MS && now < t0 + 1500 * MS + 250 * MS,
            "{:?}",
            now - t0
        );
        // The next request starts afresh on the server it was trying.
        assert!(matches!(plan.begin(now), Try { .. }));
    }

    #[test]
    fn a_vote_interval_longer_than_the_timeout_is_capped() {
        let t0 = Instant::now();
        let policy = Policy {
            timeout: 300 * MS,
            vote: 1000 * MS,
            ..Policy::default()
        };
        let mut plan = Plan::new(policy, t0);
        plan.begin(t0);
        let (_, at, until) = send(plan.next(t0 + 300 * MS));
        assert_eq!(until - at, 300 * MS);
    }
}
