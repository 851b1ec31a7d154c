//! The failover client's decisions, with no sockets and no clock.
//!
//! A Binary Star client knows both servers and asks one at a time. [`Plan`] says which server to
//! ask, when, and for how long to wait for the answer: it is the [`Schedule`] of the
//! workspace's one retrying client ([`common::retry`]), which the I/O shell
//! ([`crate::client`]) drives.
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
//! An answer to the first request after a switch ends the failover: [`Plan::answered`] returns
//! how long the caller waited, the figure `bstarcli` logs.

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

/// The client switched servers and got its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// The server that stopped answering.
    pub from: usize,
    /// The server that answered.
    pub to: usize,
    /// From the request's first send to its answer: the wait the caller saw.
    pub waited: Duration,
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
    retries: u64,
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
            retries: 0,
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

    /// Resends so far, over all requests.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// A new request: ask the server that answered last, wait up to the timeout.
    pub fn begin(&mut self, now: Instant) -> Try {
        self.started = now;
        self.current = self.settled;
        self.voting = None;
        self.send(self.current, now, now + self.policy.timeout, false)
    }

    /// The attempt got no answer (timed out, or the connection failed): the next one, or
    /// `None` to give up.
    pub fn failed(&mut self, now: Instant) -> Option<Try> {
        let (at, until) = self.attempt.unwrap_or((now, now));
        if self.policy.strategy == Strategy::Guide {
            // The reference client only ever notices silence, at the end of the timeout.
            let now = now.max(until);
            if self.gave_up(now) {
                return None;
            }
            let other = 1 - self.current;
            let at = now + self.policy.settle;
            return Some(self.send(other, at, at + self.policy.timeout, true));
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
                let next = now.max(at + vote);
                if next >= since + self.policy.settle {
                    self.voting = Some(Voting {
                        since,
                        last_chance: true,
                    });
                    self.send(self.current, next, next + self.policy.timeout, true)
                } else {
                    self.send(self.current, next, next + vote, true)
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
                self.send(other, now, now + vote, true)
            }
        })
    }

    /// The attempt was answered. Returns the failover, if this answer came from the other
    /// server than the previous answer.
    pub fn answered(&mut self, now: Instant) -> Option<Failover> {
        let from = self.settled;
        self.settled = self.current;
        self.voting = None;
        self.attempt = None;
        (from != self.current).then(|| Failover {
            from,
            to: self.current,
            waited: now - self.started,
        })
    }

    fn gave_up(&self, now: Instant) -> bool {
        self.policy
            .give_up
            .is_some_and(|limit| now >= self.started + limit)
    }

    fn send(&mut self, server: usize, at: Instant, until: Instant, retry: bool) -> Try {
        self.current = server;
        self.attempt = Some((at, until));
        if retry {
            self.retries += 1;
        }
        Try {
            endpoint: server,
            at,
            until,
        }
    }
}

impl Schedule for Plan {
    fn begin(&mut self, now: Instant) -> Try {
        Plan::begin(self, now)
    }

    fn next(&mut self, now: Instant) -> Option<Try> {
        self.failed(now)
    }

    fn answered(&mut self, now: Instant) {
        Plan::answered(self, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn answered_requests_stay_on_the_same_server() {
        let t0 = Instant::now();
        let mut plan = Plan::new(Policy::default(), t0);
        for i in 0..3u32 {
            let now = t0 + 100 * MS * i;
            assert_eq!(send(plan.begin(now)), (0, now, now + 1000 * MS));
            assert_eq!(plan.answered(now + MS), None);
        }
        assert_eq!(plan.retries(), 0);
    }

    #[test]
    fn guide_strategy_waits_timeout_then_settle_then_resends_once_per_switch() {
        let t0 = Instant::now();
        let policy = Policy {
            strategy: Strategy::Guide,
            ..Policy::default()
        };
        let mut plan = Plan::new(policy, t0);
        plan.begin(t0);
        // Even a connection error at once counts at the end of the timeout, like the C client.
        let (server, at, until) = send(plan.failed(t0 + 5 * MS));
        assert_eq!((server, at, until), (1, t0 + 3000 * MS, t0 + 4000 * MS));
        // No answer from the backup either: back to the primary after another settle delay.
        let (server, at, _) = send(plan.failed(until));
        assert_eq!((server, at), (0, t0 + 6000 * MS));
        assert_eq!(plan.retries(), 2);
        let failover = plan.answered(t0 + 6001 * MS);
        assert_eq!(
            failover, None,
            "answered by the server that answered before"
        );
    }

    #[test]
    fn eager_strategy_switches_at_once_and_votes_until_the_backup_takes_over() {
        let t0 = Instant::now();
        let mut plan = Plan::new(Policy::default(), t0);
        plan.begin(t0);
        // The primary's connection fails at once (killed): ask the backup immediately.
        let failed_at = t0 + 3 * MS;
        let (server, at, until) = send(plan.failed(failed_at));
        assert_eq!((server, at, until), (1, failed_at, failed_at + 250 * MS));
        // The backup drops requests until its peer expires: resend every vote interval.
        let (server, at, until) = send(plan.failed(until));
        assert_eq!(
            (server, at, until),
            (1, failed_at + 250 * MS, failed_at + 500 * MS)
        );
        let (_, at, _) = send(plan.failed(until));
        assert_eq!(at, failed_at + 500 * MS);
        // This one is answered: the caller waited about 0.5 s instead of 3 s.
        let failover = plan.answered(at + 2 * MS).unwrap();
        assert_eq!(failover.from, 0);
        assert_eq!(failover.to, 1);
        assert_eq!(failover.waited, 505 * MS);
        assert_eq!(plan.settled(), 1);
        // The next request goes straight to the backup.
        assert_eq!(send(plan.begin(t0 + 1000 * MS)).0, 1);
        assert_eq!(plan.retries(), 3);
    }

    #[test]
    fn eager_votes_for_the_settle_delay_then_waits_a_full_timeout_then_switches_back() {
        let t0 = Instant::now();
        let mut plan = Plan::new(Policy::default(), t0);
        plan.begin(t0);
        // The primary times out (hung, not dead).
        let switch = t0 + 1000 * MS;
        let mut step = plan.failed(switch);
        let mut sends = vec![send(step)];
        // The backup never answers (its peer is alive).
        loop {
            let (server, _, until) = send(step);
            step = plan.failed(until);
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
        let (_, first, _) = send(plan.failed(t0));
        // The backup refuses the connection at once: the next try waits for the next slot.
        let (server, at, _) = send(plan.failed(first + MS));
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
        let mut step = plan.failed(now);
        while let Some(Try { until, .. }) = step {
            now = until;
            step = plan.failed(now);
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
        let (_, at, until) = send(plan.failed(t0 + 300 * MS));
        assert_eq!(until - at, 300 * MS);
    }
}
