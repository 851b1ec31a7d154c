//! The Lazy Pirate server: a REP socket that echoes, crashing or stalling on request.
//!
//! [`EchoCore`] decides what to do with each request (answer after the simulated work, answer
//! late, or crash) from a [`FaultPlan`]; [`serve`] is the socket loop around it.

use crate::client::text;
use common::fault::{Fault, FaultPlan};
use common::{sock, Message};
use std::future::Future;
use std::time::Duration;
use zeromq::{RepSocket, Socket, SocketRecv};

/// Default bound on sending one reply: a client that stopped reading never stalls the server.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `reply` after `delay`.
    Reply {
        /// The echoed request.
        reply: Message,
        /// Simulated work (plus the overload delay when overloaded).
        delay: Duration,
        /// True when this answer simulates CPU overload.
        overloaded: bool,
    },
    /// Exit at once without answering.
    Crash,
}

/// The server's decisions: echo each request, with the faults of the plan.
#[derive(Debug, Clone)]
pub struct EchoCore {
    plan: FaultPlan,
    work: Duration,
}

impl EchoCore {
    /// Echoes after `work` per request, injecting the faults `plan` calls for.
    pub fn new(plan: FaultPlan, work: Duration) -> Self {
        Self { plan, work }
    }

    /// Decides what to do with `request`.
    pub fn on_request(&mut self, request: Message) -> Action {
        match self.plan.on_request() {
            Fault::Crash => Action::Crash,
            Fault::None => Action::Reply {
                reply: request,
                delay: self.work,
                overloaded: false,
            },
            Fault::Overload(extra) => Action::Reply {
                reply: request,
                delay: self.work + extra,
                overloaded: true,
            },
        }
    }
}

/// Why [`serve`] returned normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEnd {
    /// `shutdown` resolved (Ctrl-C).
    Interrupted,
    /// The fault plan called for a crash; the caller should exit with a failure code.
    Crashed,
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {endpoint}: {source}")]
pub struct BindError {
    /// The endpoint asked for.
    pub endpoint: String,
    /// What the socket library said.
    #[source]
    pub source: sock::SockError,
}

/// Binds a REP socket at `bind` and echoes until `shutdown` resolves or a crash is simulated.
///
/// Logs `I: lpserver ready on <endpoint>` once bound, then per request `I: normal request (…)`,
/// `W: simulating CPU overload` or `W: simulating a crash`.
pub async fn serve(
    bind: &str,
    mut core: EchoCore,
    send_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<ServerEnd, BindError> {
    tokio::pin!(shutdown);
    let mut socket = RepSocket::new();
    let endpoint = sock::bind(&mut socket, bind)
        .await
        .map_err(|source| BindError {
            endpoint: bind.to_owned(),
            source,
        })?;
    tracing::info!("lpserver ready on {endpoint}");
    loop {
        let received = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(ServerEnd::Interrupted),
            received = socket.recv() => received,
        };
        let request = match received {
            Ok(request) => Message::from(request),
            Err(e) => {
                tracing::error!("bad request dropped: {e}");
                continue;
            }
        };
        tracing::debug!("received request:\n{}", request.dump());
        match core.on_request(request) {
            Action::Crash => {
                tracing::warn!("simulating a crash");
                return Ok(ServerEnd::Crashed);
            }
            Action::Reply {
                reply,
                delay,
                overloaded,
            } => {
                if overloaded {
                    tracing::warn!("simulating CPU overload");
                } else {
                    tracing::info!("normal request ({})", text(&reply));
                }
                if !delay.is_zero() {
                    // Skipped when zero: even a zero sleep waits for the timer's next tick.
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return Ok(ServerEnd::Interrupted),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                if let Err(e) = sock::send(&mut socket, reply, send_timeout).await {
                    tracing::warn!("reply not delivered: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::from_frames([s.to_owned()])
    }

    #[test]
    fn echoes_after_the_work_then_crashes_as_planned() {
        let work = Duration::from_millis(5);
        let mut core = EchoCore::new(FaultPlan::none().crash_after(Some(2)), work);
        for n in ["1", "2"] {
            assert_eq!(
                core.on_request(msg(n)),
                Action::Reply {
                    reply: msg(n),
                    delay: work,
                    overloaded: false
                }
            );
        }
        assert_eq!(core.on_request(msg("3")), Action::Crash);
    }

    #[test]
    fn overload_adds_its_delay_to_the_work() {
        let work = Duration::from_millis(5);
        let extra = Duration::from_millis(50);
        let mut core = EchoCore::new(FaultPlan::none().overload_after(Some(1), extra), work);
        assert!(matches!(
            core.on_request(msg("1")),
            Action::Reply {
                overloaded: false,
                ..
            }
        ));
        assert_eq!(
            core.on_request(msg("2")),
            Action::Reply {
                reply: msg("2"),
                delay: work + extra,
                overloaded: true
            }
        );
    }
}
