//! The broker's I/O loop: one ROUTER socket around the pure [`crate::broker::Broker`].
//!
//! The loop `select!`s over the socket, the core's next deadline and the shutdown future, and
//! makes no decisions. Two things keep it from ever being blocked by a peer:
//!
//! * every send is bounded by [`SEND_TIMEOUT`]: the `zeromq` crate's ROUTER *blocks* once a
//!   peer's queue holds 100 000 messages (libzmq would drop at its high-water mark). A peer that
//!   timed out is treated as stuck for [`STUCK_PAUSE`] and messages to it are dropped at once,
//!   like a libzmq ROUTER drops at the high-water mark, so a client that never reads its replies
//!   costs the broker at most one short wait per pause;
//! * messages already received are handled in batches (up to [`BATCH`] before sending), which
//!   keeps the per-message overhead of `select!` and the timer off the fast path;
//! * after each full batch the loop yields to the runtime. The socket's writer tasks share the
//!   broker's thread, and a `recv` that is always ready (a client flooding requests) never
//!   returns `Pending` by itself (the crate's futures do not take part in tokio's cooperative
//!   budget): without the yield, no reply to anyone would be written until the flood was
//!   read to its end (measured: 1.3–2 s stalls for a light client beside a 50,000-request
//!   flood).
//!
//! Peers that go away are reported to the core at once, two ways: the socket monitor's
//! `Disconnected` event ([`Broker::peer_disconnected`]: a killed worker is purged and its
//! request handed on, without waiting for its heartbeats to run out), and a send that fails
//! because the ROUTER no longer knows the identity ([`Broker::send_failed`], the backstop when
//! a monitor event was missed: the monitor channel drops events when it is full).

use crate::broker::{Broker, BrokerConfig};
use bytes::Bytes;
use common::sock::{self, SockError};
use common::Message;
use futures::StreamExt;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use zeromq::{RouterSocket, Socket, SocketEvent, SocketRecv, ZmqMessage, ZmqResult};

/// Longest wait for a peer's send queue to take a message.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(20);
/// After a send timed out, messages to that peer are dropped without waiting for this long.
pub const STUCK_PAUSE: Duration = Duration::from_secs(1);
/// Messages handled per wake-up before the replies they caused are sent.
pub const BATCH: usize = 64;

/// What can stop the broker.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The endpoint could not be bound.
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        /// The endpoint asked for.
        endpoint: String,
        /// Why.
        source: SockError,
    },
}

/// A bound broker, ready to [`run`](Server::run).
pub struct Server {
    socket: RouterSocket,
    endpoint: String,
    config: BrokerConfig,
}

impl Server {
    /// Binds `endpoint` (the Guide's `tcp://*:5555` notation is accepted).
    pub async fn bind(endpoint: &str, config: BrokerConfig) -> Result<Self, ServerError> {
        let mut socket = RouterSocket::new();
        let bound =
            sock::bind(&mut socket, endpoint)
                .await
                .map_err(|source| ServerError::Bind {
                    endpoint: endpoint.to_owned(),
                    source,
                })?;
        Ok(Self {
            socket,
            endpoint: bound,
            config,
        })
    }

    /// The endpoint actually bound (port resolved when `:0` was asked).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Serves until `shutdown` resolves; then sends DISCONNECT to every worker and returns.
    ///
    /// Logs `I: mdbroker ready on <endpoint>` first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            mut socket,
            endpoint,
            config,
        } = self;
        let mut events = socket.monitor();
        let mut monitoring = true;
        tracing::info!("mdbroker ready on {endpoint}");
        let mut broker = Broker::new(config, Instant::now().into_std());
        let mut sender = Sender::default();
        tokio::pin!(shutdown);
        loop {
            let deadline = Instant::from_std(broker.poll_timeout());
            tokio::select! {
                () = &mut shutdown => {
                    broker.shutdown();
                    sender.flush(&mut socket, &mut broker).await;
                    // No LINGER: give the writers a moment to put the DISCONNECTs on the wire.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    tracing::info!("mdbroker interrupted, shutting down");
                    return;
                }
                received = socket.recv() => {
                    let now = Instant::now().into_std();
                    handle(&mut broker, received, now);
                    let mut handled = 1;
                    while handled < BATCH {
                        match try_recv(&mut socket).await {
                            Some(received) => handle(&mut broker, received, now),
                            None => break,
                        }
                        handled += 1;
                    }
                    if broker.poll_timeout() <= now {
                        broker.handle_timeout(now);
                    }
                    sender.flush(&mut socket, &mut broker).await;
                    // A full batch: more is waiting and `recv` would never return `Pending`.
                    // Otherwise the next `select!` waits, and the writers run then (later, so
                    // they write more messages per system call).
                    if handled == BATCH {
                        tokio::task::yield_now().await;
                    }
                    continue;
                }
                event = events.next(), if monitoring => match event {
                    Some(SocketEvent::Disconnected(peer)) => {
                        broker.peer_disconnected(&Bytes::from(peer), Instant::now().into_std());
                    }
                    Some(_) => {}
                    None => monitoring = false,
                },
                () = tokio::time::sleep_until(deadline) => {
                    broker.handle_timeout(Instant::now().into_std());
                }
            }
            sender.flush(&mut socket, &mut broker).await;
        }
    }
}

fn handle(broker: &mut Broker, received: ZmqResult<ZmqMessage>, now: std::time::Instant) {
    match received {
        Ok(frames) => {
            let frames = Message::from(frames);
            tracing::debug!("received\n{}", frames.dump());
            broker.handle(frames, now);
        }
        Err(error) => tracing::error!("receive failed: {error}"),
    }
}

/// Polls `recv` once: a message already queued, or `None` without waiting.
async fn try_recv(socket: &mut RouterSocket) -> Option<ZmqResult<ZmqMessage>> {
    let mut receiving = socket.recv();
    poll_fn(|cx| match receiving.as_mut().poll(cx) {
        Poll::Ready(received) => Poll::Ready(Some(received)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Sends the core's output, never waiting long for one peer.
#[derive(Default)]
struct Sender {
    stuck: HashMap<Bytes, Instant>,
}

impl Sender {
    async fn flush(&mut self, socket: &mut RouterSocket, broker: &mut Broker) {
        while let Some(message) = broker.poll_outgoing() {
            let Some(peer) = message.first().cloned() else {
                continue;
            };
            if !self.stuck.is_empty() {
                let now = Instant::now();
                self.stuck.retain(|_, until| *until > now);
                if self.stuck.contains_key(&peer) {
                    // Dropped. A worker would be left busy with a request it never got.
                    broker.send_failed(&peer, now.into_std());
                    continue;
                }
            }
            tracing::debug!("sending\n{}", message.dump());
            match sock::send(socket, message, SEND_TIMEOUT).await {
                Ok(()) => {}
                Err(SockError::Timeout(..)) => {
                    tracing::warn!(
                        "peer {} is not reading; dropping messages to it for {} ms",
                        common::msg::frame_text(&peer),
                        STUCK_PAUSE.as_millis()
                    );
                    self.stuck
                        .insert(peer.clone(), Instant::now() + STUCK_PAUSE);
                    // A worker that does not read is no use: purged, its request handed on.
                    broker.send_failed(&peer, Instant::now().into_std());
                }
                // The ROUTER no longer knows the peer: it has gone away. A worker's request goes
                // to the next worker (this loop sends it on).
                Err(error) => {
                    tracing::debug!("send to {} failed: {error}", common::msg::frame_text(&peer));
                    broker.send_failed(&peer, Instant::now().into_std());
                }
            }
        }
    }
}
