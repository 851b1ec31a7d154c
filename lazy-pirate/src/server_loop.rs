//! The Lazy Pirate server: a REP socket that echoes, crashing or stalling on request.
//!
//! [`EchoCore`] decides what to do with each request (answer after the simulated work, answer
//! late, or crash) from a [`common::fault::FaultPlan`]; [`serve`] is the socket loop around it.

use crate::client_loop::text;
use common::contract::{self, Core};
use common::fault::{Answer, FaultyServer, Served};
use common::{sock, Message};
use std::future::Future;
use std::time::Duration;
use zeromq::{RepSocket, Socket, SocketRecv};

/// Default bound on sending one reply: a client that stopped reading never stalls the server.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

/// The server's decisions: echo each request, with the faults of the plan.
pub type EchoCore = FaultyServer<Message>;

/// Why [`serve`] returned normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEnd {
    /// `shutdown` resolved (Ctrl-C).
    Interrupted,
    /// The fault plan called for a crash; the caller should exit with a failure code.
    Crashed,
}

/// The server could not start: its endpoint and why (one type for every server).
pub use common::sock::BindError;

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
        core.handle_request(request.clone(), contract::now());
        while let Some(served) = core.poll_event() {
            match served {
                Served::Normal => tracing::info!("normal request ({})", text(&request)),
                Served::Overloaded => tracing::warn!("simulating CPU overload"),
                Served::Crash => {
                    tracing::warn!("simulating a crash");
                    return Ok(ServerEnd::Crashed);
                }
            }
        }
        while let Some(Answer { reply, delay }) = core.poll_transmit() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use common::fault::FaultPlan;

    fn msg(s: &str) -> Message {
        Message::from_frames([s.to_owned()])
    }

    /// The shell holds one timing job, the simulated work. In virtual time: the reply comes
    /// after exactly the work, and Ctrl-C during the work ends the server at once.
    #[tokio::test(start_paused = true)]
    async fn the_reply_waits_for_the_work_and_ctrl_c_cuts_it_short() {
        use zeromq::{ReqSocket, SocketSend};
        let endpoint = common::testkit::tcp_endpoint();
        let work = Duration::from_secs(30);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let core = EchoCore::new(FaultPlan::none(), work);
        let server = tokio::spawn({
            let endpoint = endpoint.clone();
            async move {
                serve(&endpoint, core, SEND_TIMEOUT, async {
                    stopped.await.unwrap_or(())
                })
                .await
            }
        });
        let mut client = ReqSocket::new();
        sock::connect(&mut client, &endpoint, Duration::from_secs(60))
            .await
            .unwrap();
        let sent_at = contract::now();
        client.send(msg("1").try_into().unwrap()).await.unwrap();
        let reply = Message::from(client.recv().await.unwrap());
        assert_eq!((reply, contract::now() - sent_at), (msg("1"), work));
        // A second request, and Ctrl-C a second into its work.
        client.send(msg("2").try_into().unwrap()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(()).unwrap();
        let stopping = contract::now();
        assert_eq!(server.await.unwrap().unwrap(), ServerEnd::Interrupted);
        assert_eq!(contract::now(), stopping);
    }
}
