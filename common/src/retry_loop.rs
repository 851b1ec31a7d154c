//! The shell of [`Requester`]: [`RetryClient`] owns the socket of the current try, connects,
//! sends and receives within the try's deadline, and hands every [`Event`] to the caller to log.
//! Which socket to keep and which to open afresh is the core's decision
//! ([`Requester::socket`], [`Transmit::fresh`]); this loop only carries it out.

use crate::contract::{self, Core};
use crate::retry::{Event, Requester, Schedule, Transmit, Tries, TryError};
use crate::sock;
use crate::Message;
use std::time::Duration;
use zeromq::{DealerSocket, ReqSocket, Socket, SocketRecv, SocketSend};

/// A socket a [`RetryClient`] can try with.
pub trait TrySocket: Socket + SocketSend + SocketRecv {
    /// True for REQ: one reply per request, after which only a resend can help.
    const ONE_REPLY: bool;
}

impl TrySocket for ReqSocket {
    const ONE_REPLY: bool = true;
}

impl TrySocket for DealerSocket {
    const ONE_REPLY: bool = false;
}

/// The request was tried as often as the schedule allows and never answered.
#[derive(Debug, thiserror::Error)]
#[error("no reply after {tries} tries")]
pub struct Abandoned {
    /// The request that went unanswered.
    pub request: Message,
    /// How many times it was sent.
    pub tries: u32,
}

/// The shell of a [`Requester`]: sockets, the clock, and the caller's log lines.
pub struct RetryClient<S: TrySocket, P = Tries> {
    endpoints: Vec<String>,
    core: Requester<P>,
    /// The socket of the current (or last answered) try, to the core's
    /// [`socket`](Requester::socket) endpoint, and whether it may still receive.
    socket: Option<(S, bool)>,
}

impl<S: TrySocket, P: Schedule> RetryClient<S, P> {
    /// A client of `endpoints` (indexes of the schedule's tries); connects on the first request.
    pub fn new(endpoints: Vec<String>, core: Requester<P>) -> Self {
        Self {
            endpoints,
            core,
            socket: None,
        }
    }

    /// The core (counts, schedule).
    pub fn core(&self) -> &Requester<P> {
        &self.core
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Gives up on the request in flight (its `request` future was dropped); it is counted
    /// failed. Returns it, if there was one.
    pub fn interrupt(&mut self) -> Option<Message> {
        let request = self.core.interrupt();
        self.follow_core();
        request
    }

    /// Sends `request` and waits for the answer, resending as the schedule says; `on_event`
    /// sees every event (to log it).
    pub async fn request(
        &mut self,
        request: Message,
        on_event: impl FnMut(&Event),
    ) -> Result<Message, Abandoned> {
        self.request_with(request, Some, on_event).await
    }

    /// Like [`request`](Self::request); `filter` sees
    /// each reply first (`None` drops it: the caller logs why).
    pub async fn request_with(
        &mut self,
        request: Message,
        mut filter: impl FnMut(Message) -> Option<Message>,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Message, Abandoned> {
        if self.core.in_flight().is_some() {
            // A previous call was cancelled mid-flight: its socket may still get that reply.
            self.interrupt();
        }
        self.core.handle_request(request, contract::now());
        loop {
            // Events first: a failed try's socket must go before the next try opens its own.
            self.follow_core();
            while let Some(event) = self.core.poll_event() {
                on_event(&event);
                match event {
                    Event::Answered { reply, .. } => return Ok(reply),
                    Event::Abandoned { request, tries } => {
                        return Err(Abandoned { request, tries })
                    }
                    _ => {}
                }
            }
            if let Some(transmit) = self.core.poll_transmit() {
                self.transmit(transmit).await;
                continue;
            }
            let deadline = self.core.poll_timeout();
            let received = match &mut self.socket {
                Some((socket, awaiting @ true)) => tokio::select! {
                    received = socket.recv() => {
                        *awaiting = !S::ONE_REPLY;
                        Some(received)
                    }
                    () = contract::sleep_until(deadline) => None,
                },
                _ => {
                    contract::sleep_until(deadline).await;
                    None
                }
            };
            let now = contract::now();
            match received {
                Some(Ok(reply)) => {
                    let reply = Message::from(reply);
                    tracing::debug!("received reply:\n{}", reply.dump());
                    if let Some(reply) = filter(reply) {
                        self.core.handle_reply(reply, now);
                    }
                }
                Some(Err(e)) => self.core.handle_error(TryError::Recv(e.into()), now),
                None => self.core.handle_timeout(now),
            }
        }
    }

    /// Drops the socket once the core no longer keeps one (a try failed or was given up).
    fn follow_core(&mut self) {
        if self.core.socket().is_none() {
            self.socket = None;
        }
    }

    /// Connects (when the core asks for a fresh socket) and sends, by `until`.
    async fn transmit(&mut self, t: Transmit) {
        let left = || t.until.saturating_duration_since(contract::now());
        if t.fresh || self.socket.is_none() {
            self.socket = None;
            // Connecting gets the try's whole length (a log line then says "after 1s"); the
            // crate's own connect timeout is set longer, so one error is reported, always ours.
            let length = t.until.saturating_duration_since(t.at);
            let mut socket = S::with_options(sock::options(length.saturating_mul(2), None));
            let endpoint = &self.endpoints[t.endpoint];
            if let Err(e) = sock::connect(&mut socket, endpoint, length).await {
                self.core
                    .handle_error(TryError::Connect(e), contract::now());
                return;
            }
            self.socket = Some((socket, false));
        }
        let Some((socket, awaiting)) = self.socket.as_mut() else {
            return;
        };
        tracing::debug!("sending request:\n{}", t.request.dump());
        let send = sock::send(socket, t.request, left().max(Duration::from_millis(1)));
        match send.await {
            Ok(()) => *awaiting = true,
            Err(e) => self.core.handle_error(TryError::Send(e), contract::now()),
        }
    }
}

#[cfg(test)]
mod tests;
