//! The Binary Star finite state machine, as one pure function.
//!
//! [`step`] takes the server's state, one event, the current instant, the peer's expiry
//! deadline and how a conflict is to be settled, and says what happens. It reads no clock and
//! keeps no memory: the caller ([`crate::node::Node`]) owns the state, the deadline and the
//! epochs. The table, from the Guide's `bstarsrv` / `bstar` (chapter 4, "High-Availability
//! Pair"; Binary Star has no RFC), with our two conflict cells in bold:
//!
//! | state | PEER_PRIMARY | PEER_BACKUP | PEER_ACTIVE | PEER_PASSIVE | CLIENT_REQUEST |
//! |---|---|---|---|---|---|
//! | PRIMARY | – | → ACTIVE | → PASSIVE | – | serve → ACTIVE if the peer expired, else reject |
//! | BACKUP | – | – | → PASSIVE | – | reject |
//! | ACTIVE | – | – | **dual actives**: → PASSIVE if the peer is senior, else stay and re-announce | – | serve |
//! | PASSIVE | → ACTIVE | → ACTIVE | – | **dual passives**: → ACTIVE if we are senior, else stay | serve → ACTIVE if the peer expired (client vote), else reject |
//!
//! `–` means "no change". The PRIMARY + CLIENT_REQUEST cell is the Guide's later, race-free
//! rule: a primary that has not yet heard its peer serves only once the peer has been silent
//! for the whole expiry, so a restarted primary never competes with a backup that took over.
//!
//! # The conflict cells
//!
//! The Guide makes ACTIVE + PEER_ACTIVE and PASSIVE + PEER_PASSIVE fatal: the server aborts.
//! After a network partition that turns a blip into an outage (the backup takes over by client
//! vote, then on heal both see the other ACTIVE and both stop). With [`Conflict::Abort`] the
//! cells keep the Guide's behaviour (`bstarsrv --on-conflict abort`, for teaching); otherwise
//! the caller says which server is *senior* and the pair settles without another round trip:
//! the junior of two ACTIVE servers steps down, the senior of two PASSIVE servers takes over.
//! Seniority comes from the epochs in the state messages (see [`crate::node`]): the higher
//! epoch wins, a tie goes to the primary; both servers compute the same answer from the same
//! two (epoch, role) pairs.

use std::fmt;
use std::time::Instant;

/// Which server of the pair this is; fixed for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The server that is normally active.
    Primary,
    /// The server that takes over when the primary is gone.
    Backup,
}

impl Role {
    /// The state a server of this role starts in.
    pub fn initial_state(self) -> State {
        match self {
            Role::Primary => State::Primary,
            Role::Backup => State::Backup,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Backup => "backup",
        })
    }
}

/// A server's state; the number is the ASCII digit sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Primary, waiting to hear from the backup (or for a client once the backup is silent).
    Primary = 1,
    /// Backup, waiting for the primary to become active.
    Backup = 2,
    /// Serving clients.
    Active = 3,
    /// Standing by; takes over on a client request once the peer has expired.
    Passive = 4,
}

impl State {
    /// Every state, in wire order (for exhaustive tests and tables).
    pub const ALL: [State; 4] = [State::Primary, State::Backup, State::Active, State::Passive];

    /// The wire digit: `b'1'` to `b'4'`.
    pub fn digit(self) -> u8 {
        b'0' + self as u8
    }

    /// The state a wire digit stands for, if any.
    pub fn from_digit(digit: u8) -> Option<State> {
        State::ALL.into_iter().find(|s| s.digit() == digit)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Primary => "PRIMARY",
            State::Backup => "BACKUP",
            State::Active => "ACTIVE",
            State::Passive => "PASSIVE",
        })
    }
}

/// What can happen to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The peer published its state (PEER_PRIMARY … PEER_PASSIVE, events 1 to 4).
    Peer(State),
    /// A client request arrived on the frontend (event 5).
    ClientRequest,
}

impl Event {
    /// Every event, in the Guide's numbering.
    pub const ALL: [Event; 5] = [
        Event::Peer(State::Primary),
        Event::Peer(State::Backup),
        Event::Peer(State::Active),
        Event::Peer(State::Passive),
        Event::ClientRequest,
    ];
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Peer(state) => write!(f, "PEER_{state}"),
            Event::ClientRequest => f.write_str("CLIENT_REQUEST"),
        }
    }
}

/// Why a server changed state (the text of its log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// PRIMARY heard a backup that is waiting: the primary serves.
    BackupIsWaiting,
    /// PRIMARY or BACKUP heard an active peer: stand by.
    PeerIsActive,
    /// PASSIVE heard the peer start over (it published PRIMARY or BACKUP): serve.
    PeerRestarted(State),
    /// PASSIVE: a client request arrived after the peer expired (the client vote, failover).
    PeerExpired,
    /// PRIMARY: a client request arrived and the backup has not been heard for the whole expiry.
    BackupAbsent,
    /// ACTIVE heard a senior ACTIVE peer (after a partition, say): stand by.
    DualActivePeerSenior,
    /// PASSIVE heard a junior PASSIVE peer: somebody must serve, and we are senior.
    DualPassiveWeAreSenior,
    /// ACTIVE was told by a third party (a client or worker of both servers) that the peer is
    /// ACTIVE in a senior epoch: stand by (see [`crate::node::Node::handle_fence`]).
    SeniorReported,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BackupIsWaiting => {
                f.write_str("connected to backup (passive), ready as active")
            }
            Reason::PeerIsActive => f.write_str("connected to peer (active), ready as passive"),
            Reason::PeerRestarted(state) => {
                write!(f, "peer restarted ({state}), ready as active")
            }
            Reason::PeerExpired => {
                f.write_str("failover successful: client request after the peer expired")
            }
            Reason::BackupAbsent => {
                f.write_str("request from client while the backup is silent, ready as active")
            }
            Reason::DualActivePeerSenior => {
                f.write_str("dual actives resolved: the peer is senior, ready as passive")
            }
            Reason::DualPassiveWeAreSenior => {
                f.write_str("dual passives resolved: we are senior, ready as active")
            }
            Reason::SeniorReported => {
                f.write_str("the peer is reported active in a senior epoch, ready as passive")
            }
        }
    }
}

/// Why a client request was dropped unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A backup never serves before the primary has been active.
    Backup,
    /// PRIMARY or PASSIVE while the peer is still alive: the peer may be serving.
    PeerAlive,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Backup => "backup waits for the primary",
            Rejection::PeerAlive => "peer is alive",
        })
    }
}

/// The split-brain errors: the pair cannot go on and the server must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fatal {
    /// Both servers are ACTIVE: both would serve clients.
    #[error("dual actives")]
    DualActive,
    /// Both servers are PASSIVE: nobody would serve clients.
    #[error("dual passives")]
    DualPassive,
}

/// How a dual-active or dual-passive pair is settled, as the caller decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conflict {
    /// The Guide's rule: a dual state is a [`Fatal`] error and the server stops.
    Abort,
    /// Settle it; the peer is senior (it stays ACTIVE, or becomes ACTIVE).
    PeerSenior,
    /// Settle it; this server is senior.
    WeAreSenior,
}

/// The result of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing changes (a peer event that does not concern this state).
    Stay,
    /// A peer event moves the server to a new state.
    Become(State, Reason),
    /// Serve the client request; the state does not change (already ACTIVE).
    Serve,
    /// Serve the client request and become ACTIVE (the client vote).
    TakeOver(Reason),
    /// Drop the client request unanswered.
    Reject(Rejection),
    /// Dual actives and we are senior: stay ACTIVE and announce it at once, so the junior
    /// peer steps down without waiting for our next heartbeat.
    Reassert,
}

impl Decision {
    /// The state after this outcome, starting from `state`.
    pub fn next_state(self, state: State) -> State {
        match self {
            Decision::Become(next, _) => next,
            Decision::TakeOver(_) => State::Active,
            Decision::Stay | Decision::Serve | Decision::Reject(_) | Decision::Reassert => state,
        }
    }

    /// True if a client request is to be answered.
    pub fn serves(self) -> bool {
        matches!(self, Decision::Serve | Decision::TakeOver(_))
    }
}

/// Applies one event to a server in `state`. `peer_expiry` is the instant at which the peer
/// counts as gone (its last state message plus the expiry time); it only matters for client
/// requests in PRIMARY and PASSIVE. `conflict` only matters for the two dual cells.
pub fn step(
    state: State,
    event: Event,
    now: Instant,
    peer_expiry: Instant,
    conflict: Conflict,
) -> Result<Decision, Fatal> {
    use Event::{ClientRequest, Peer};
    use State::{Active, Backup, Passive, Primary};
    let peer_expired = now >= peer_expiry;
    let vote = |reason| {
        if peer_expired {
            Decision::TakeOver(reason)
        } else {
            Decision::Reject(Rejection::PeerAlive)
        }
    };
    Ok(match (state, event) {
        (Primary, Peer(Backup)) => Decision::Become(Active, Reason::BackupIsWaiting),
        (Primary, Peer(Active)) => Decision::Become(Passive, Reason::PeerIsActive),
        (Primary, Peer(Primary | Passive)) => Decision::Stay,
        (Primary, ClientRequest) => vote(Reason::BackupAbsent),

        (Backup, Peer(Active)) => Decision::Become(Passive, Reason::PeerIsActive),
        (Backup, Peer(Primary | Backup | Passive)) => Decision::Stay,
        (Backup, ClientRequest) => Decision::Reject(Rejection::Backup),

        (Active, Peer(Active)) => match conflict {
            Conflict::Abort => return Err(Fatal::DualActive),
            Conflict::PeerSenior => Decision::Become(Passive, Reason::DualActivePeerSenior),
            Conflict::WeAreSenior => Decision::Reassert,
        },
        (Active, Peer(Primary | Backup | Passive)) => Decision::Stay,
        (Active, ClientRequest) => Decision::Serve,

        (Passive, Peer(peer @ (Primary | Backup))) => {
            Decision::Become(Active, Reason::PeerRestarted(peer))
        }
        (Passive, Peer(Active)) => Decision::Stay,
        (Passive, Peer(Passive)) => match conflict {
            Conflict::Abort => return Err(Fatal::DualPassive),
            Conflict::PeerSenior => Decision::Stay,
            Conflict::WeAreSenior => Decision::Become(Active, Reason::DualPassiveWeAreSenior),
        },
        (Passive, ClientRequest) => vote(Reason::PeerExpired),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use Event::{ClientRequest, Peer};
    use State::{Active, Backup, Passive, Primary};

    /// Expected outcome for every state × event, once with the peer alive and once expired.
    #[allow(clippy::type_complexity)]
    const TABLE: &[(
        State,
        Event,
        Result<Decision, Fatal>,
        Result<Decision, Fatal>,
    )] = &[
        // (state, event, peer alive, peer expired)
        (
            Primary,
            Peer(Primary),
            Ok(Decision::Stay),
            Ok(Decision::Stay),
        ),
        (
            Primary,
            Peer(Backup),
            Ok(Decision::Become(Active, Reason::BackupIsWaiting)),
            Ok(Decision::Become(Active, Reason::BackupIsWaiting)),
        ),
        (
            Primary,
            Peer(Active),
            Ok(Decision::Become(Passive, Reason::PeerIsActive)),
            Ok(Decision::Become(Passive, Reason::PeerIsActive)),
        ),
        (
            Primary,
            Peer(Passive),
            Ok(Decision::Stay),
            Ok(Decision::Stay),
        ),
        (
            Primary,
            ClientRequest,
            Ok(Decision::Reject(Rejection::PeerAlive)),
            Ok(Decision::TakeOver(Reason::BackupAbsent)),
        ),
        (
            Backup,
            Peer(Primary),
            Ok(Decision::Stay),
            Ok(Decision::Stay),
        ),
        (Backup, Peer(Backup), Ok(Decision::Stay), Ok(Decision::Stay)),
        (
            Backup,
            Peer(Active),
            Ok(Decision::Become(Passive, Reason::PeerIsActive)),
            Ok(Decision::Become(Passive, Reason::PeerIsActive)),
        ),
        (
            Backup,
            Peer(Passive),
            Ok(Decision::Stay),
            Ok(Decision::Stay),
        ),
        (
            Backup,
            ClientRequest,
            Ok(Decision::Reject(Rejection::Backup)),
            Ok(Decision::Reject(Rejection::Backup)),
        ),
        (
            Active,
            Peer(Primary),
            Ok(Decision::Stay),
            Ok(Decision::Stay),
        ),
        (Active, Peer(Backup), Ok(Decision::Stay), Ok(Decision::Stay)),
        (
            Active,
            Peer(Active),
            Err(Fatal::DualActive),
            Err(Fatal::DualActive),
        ),
        (
            Active,
            Peer(Passive),
            Ok(Decision::Stay),
            Ok(Decision::Stay),
        ),
        (
            Active,
            ClientRequest,
            Ok(Decision::Serve),
            Ok(Decision::Serve),
        ),
        (
            Passive,
            Peer(Primary),
            Ok(Decision::Become(Active, Reason::PeerRestarted(Primary))),
            Ok(Decision::Become(Active, Reason::PeerRestarted(Primary))),
        ),
        (
            Passive,
            Peer(Backup),
            Ok(Decision::Become(Active, Reason::PeerRestarted(Backup))),
            Ok(Decision::Become(Active, Reason::PeerRestarted(Backup))),
        ),
        (
            Passive,
            Peer(Active),
            Ok(Decision::Stay),
            Ok(Decision::Stay),
        ),
        (
            Passive,
            Peer(Passive),
            Err(Fatal::DualPassive),
            Err(Fatal::DualPassive),
        ),
        (
            Passive,
            ClientRequest,
            Ok(Decision::Reject(Rejection::PeerAlive)),
            Ok(Decision::TakeOver(Reason::PeerExpired)),
        ),
    ];

    #[test]
    fn every_state_and_event_is_in_the_table_exactly_once() {
        for state in State::ALL {
            for event in Event::ALL {
                let rows = TABLE
                    .iter()
                    .filter(|(s, e, _, _)| *s == state && *e == event)
                    .count();
                assert_eq!(rows, 1, "{state} × {event}");
            }
        }
        assert_eq!(TABLE.len(), State::ALL.len() * Event::ALL.len());
    }

    #[test]
    fn every_state_and_event_gives_the_table_outcome() {
        let t0 = Instant::now();
        let expiry = t0 + Duration::from_millis(2000);
        for &(state, event, alive, expired) in TABLE {
            let before = expiry - Duration::from_millis(1);
            assert_eq!(
                step(state, event, before, expiry, Conflict::Abort),
                alive,
                "{state} × {event}, peer alive"
            );
            assert_eq!(
                step(state, event, expiry, expiry, Conflict::Abort),
                expired,
                "{state} × {event}, at expiry"
            );
            let after = expiry + Duration::from_secs(60);
            assert_eq!(
                step(state, event, after, expiry, Conflict::Abort),
                expired,
                "{state} × {event}, long expired"
            );
        }
    }

    #[test]
    fn client_vote_is_the_only_way_a_passive_server_takes_over_without_the_peer_saying_so() {
        let t0 = Instant::now();
        let expiry = t0 + Duration::from_millis(2000);
        // One millisecond before the peer's deadline the request is dropped…
        let early = step(
            Passive,
            ClientRequest,
            expiry - Duration::from_millis(1),
            expiry,
            Conflict::Abort,
        );
        assert_eq!(early, Ok(Decision::Reject(Rejection::PeerAlive)));
        assert!(!early.unwrap().serves());
        // …from the deadline on, it is served and the server is ACTIVE.
        let vote = step(Passive, ClientRequest, expiry, expiry, Conflict::Abort).unwrap();
        assert!(vote.serves());
        assert_eq!(vote.next_state(Passive), Active);
    }

    #[test]
    fn a_primary_that_never_heard_its_peer_serves_only_after_the_expiry() {
        // The race-free rule: a restarted primary must not serve while the backup may be active.
        let t0 = Instant::now();
        let expiry = t0 + Duration::from_millis(2000);
        assert_eq!(
            step(Primary, ClientRequest, t0, expiry, Conflict::Abort),
            Ok(Decision::Reject(Rejection::PeerAlive))
        );
        let late = step(Primary, ClientRequest, expiry, expiry, Conflict::Abort).unwrap();
        assert_eq!(late, Decision::TakeOver(Reason::BackupAbsent));
        assert_eq!(late.next_state(Primary), Active);
    }

    #[test]
    fn a_backup_never_serves_before_it_saw_an_active_primary() {
        let t0 = Instant::now();
        // Even with the peer silent for an hour.
        let outcome = step(
            Backup,
            ClientRequest,
            t0 + Duration::from_secs(3600),
            t0,
            Conflict::Abort,
        )
        .unwrap();
        assert_eq!(outcome, Decision::Reject(Rejection::Backup));
        assert_eq!(outcome.next_state(Backup), Backup);
    }

    #[test]
    fn next_state_follows_the_outcome() {
        assert_eq!(Decision::Stay.next_state(Passive), Passive);
        assert_eq!(Decision::Serve.next_state(Active), Active);
        assert_eq!(
            Decision::Become(Passive, Reason::PeerIsActive).next_state(Primary),
            Passive
        );
        assert_eq!(
            Decision::Reject(Rejection::PeerAlive).next_state(Primary),
            Primary
        );
    }

    #[test]
    fn only_the_two_dual_cells_depend_on_the_conflict_rule() {
        let t0 = Instant::now();
        let expiry = t0 + Duration::from_millis(2000);
        for &(state, event, alive, _) in TABLE {
            if matches!(
                (state, event),
                (Active, Peer(Active)) | (Passive, Peer(Passive))
            ) {
                continue;
            }
            for conflict in [Conflict::PeerSenior, Conflict::WeAreSenior] {
                assert_eq!(
                    step(state, event, t0, expiry, conflict),
                    alive,
                    "{state} × {event}, {conflict:?}"
                );
            }
        }
    }

    #[test]
    fn dual_actives_the_junior_steps_down_and_the_senior_reasserts() {
        let t0 = Instant::now();
        let junior = step(Active, Peer(Active), t0, t0, Conflict::PeerSenior).unwrap();
        assert_eq!(
            junior,
            Decision::Become(Passive, Reason::DualActivePeerSenior)
        );
        assert!(!junior.serves());
        let senior = step(Active, Peer(Active), t0, t0, Conflict::WeAreSenior).unwrap();
        assert_eq!(senior, Decision::Reassert);
        assert_eq!(senior.next_state(Active), Active);
    }

    #[test]
    fn dual_passives_the_senior_takes_over_and_the_junior_waits() {
        let t0 = Instant::now();
        let senior = step(Passive, Peer(Passive), t0, t0, Conflict::WeAreSenior).unwrap();
        assert_eq!(
            senior,
            Decision::Become(Active, Reason::DualPassiveWeAreSenior)
        );
        let junior = step(Passive, Peer(Passive), t0, t0, Conflict::PeerSenior).unwrap();
        assert_eq!(junior, Decision::Stay);
    }

    #[test]
    fn wire_digits_are_the_guides() {
        let digits: Vec<u8> = State::ALL.iter().map(|s| s.digit()).collect();
        assert_eq!(digits, b"1234");
        for state in State::ALL {
            assert_eq!(State::from_digit(state.digit()), Some(state));
        }
        assert_eq!(State::from_digit(b'0'), None);
        assert_eq!(State::from_digit(b'5'), None);
        assert_eq!(Role::Primary.initial_state(), Primary);
        assert_eq!(Role::Backup.initial_state(), Backup);
    }
}
