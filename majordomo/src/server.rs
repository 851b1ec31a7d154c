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
//! `Disconnected` event ([`Broker::handle_disconnected`]: a killed worker is purged and its
//! request handed on, without waiting for its heartbeats to run out), and a send that fails
//! because the ROUTER no longer knows the identity ([`Broker::handle_send_failed`], the
//! backstop when a monitor event was missed: the monitor channel drops events when it is full).
//!
//! The core's [`Event`]s become the log lines `mdbroker` documents (one `match`). Lines caused by
//! peer input are throttled: at most [`LOG_BURST`] a second, then one line saying how many were
//! suppressed (at the next window or heartbeat tick), so a flood cannot become a log flood.

use crate::broker::{Broker, BrokerConfig, Event, Offence};
use bytes::Bytes;
use common::contract::{self, Core};
use common::msg::frame_text as text;
use common::sock::{self, SockError};
use common::throttle::{Throttle, Verdict};
use common::Message;
use futures::StreamExt;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};
use zeromq::{RouterSocket, Socket, SocketEvent, SocketRecv, ZmqMessage, ZmqResult};

/// Longest wait for a peer's send queue to take a message.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(20);
/// After a send timed out, messages to that peer are dropped without waiting for this long.
pub const STUCK_PAUSE: Duration = Duration::from_secs(1);
/// Messages handled per wake-up before the replies they caused are sent.
pub const BATCH: usize = 64;
/// Log lines caused by peer input allowed per second before they are counted instead.
pub const LOG_BURST: u32 = 20;

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
        info!("mdbroker ready on {endpoint}");
        let mut shell = Shell {
            broker: Broker::new(config, contract::now()),
            stuck: HashMap::new(),
            throttle: PeerLines(Throttle::new(LOG_BURST)),
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    shell.broker.handle_shutdown();
                    shell.flush(&mut socket).await;
                    // No LINGER: give the writers a moment to put the DISCONNECTs on the wire.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    info!("mdbroker interrupted, shutting down");
                    return;
                }
                received = socket.recv() => {
                    let now = contract::now();
                    handle(&mut shell.broker, received, now);
                    let mut handled = 1;
                    while handled < BATCH {
                        match try_recv(&mut socket).await {
                            Some(received) => handle(&mut shell.broker, received, now),
                            None => break,
                        }
                        handled += 1;
                    }
                    if shell.broker.poll_timeout().is_some_and(|at| at <= now) {
                        shell.broker.handle_timeout(now);
                    }
                    shell.log_events(now);
                    shell.flush(&mut socket).await;
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
                        let now = contract::now();
                        shell.broker.handle_disconnected(&Bytes::from(peer), now);
                        shell.log_events(now);
                    }
                    Some(_) => {}
                    None => monitoring = false,
                },
                () = contract::sleep_until(shell.broker.poll_timeout()) => {
                    let now = contract::now();
                    shell.broker.handle_timeout(now);
                    shell.log_events(now);
                }
            }
            shell.flush(&mut socket).await;
        }
    }
}

fn handle(broker: &mut Broker, received: ZmqResult<ZmqMessage>, now: Instant) {
    match received {
        Ok(frames) => {
            let frames = Message::from(frames);
            debug!("received\n{}", frames.dump());
            broker.handle_message(frames, now);
        }
        Err(error) => error!("receive failed: {error}"),
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

/// The core, the peers that do not read, and the log throttle.
struct Shell {
    broker: Broker,
    stuck: HashMap<Bytes, Instant>,
    throttle: PeerLines,
}

impl Shell {
    /// Logs the core's events as the lines `mdbroker` documents; `now` is the time the core was
    /// given. Lines caused by peer input pass the throttle (`if p.allow(now)`) first.
    fn log_events(&mut self, now: Instant) {
        let p = &mut self.throttle;
        let next = |busy| match busy {
            true => " (its request goes to the next worker)",
            false => "",
        };
        while let Some(event) = self.broker.poll_event() {
            match event {
                Event::Malformed(e) if p.allow(now) => error!("malformed message dropped: {e}"),
                Event::BadEnvelope(n) if p.allow(now) => {
                    error!("worker message with a {n}-frame envelope dropped")
                }
                Event::WorkerReady { id, service } => {
                    info!("worker {} ready for service {}", text(&id), text(&service))
                }
                Event::WorkerLeft { id, busy } => {
                    info!("worker {} disconnected{}", text(&id), next(busy))
                }
                Event::UnknownLeft(id) => {
                    debug!("DISCONNECT from unknown worker {} ignored", text(&id))
                }
                Event::WorkerGone {
                    id,
                    unreachable,
                    busy,
                } if p.allow(now) => {
                    let why = if unreachable {
                        "unreachable"
                    } else {
                        "disconnected"
                    };
                    warn!("worker {} {why}, purged{}", text(&id), next(busy))
                }
                Event::WorkerExpired { id, busy } => {
                    let lost = if busy { " (its request is lost)" } else { "" };
                    warn!("worker {} expired, purged{lost}", text(&id))
                }
                Event::Disconnected { id, why } if p.allow(now) => {
                    let id = text(&id);
                    let what = match why {
                        Offence::SecondReady => format!("worker {id} sent a second READY"),
                        Offence::ReservedService(s) => {
                            format!("worker {id} may not offer reserved service {}", text(&s))
                        }
                        Offence::ReplyWhileIdle => format!("REPLY from idle worker {id}"),
                        Offence::ReplyFromUnknown => format!("REPLY from unknown worker {id}"),
                        Offence::UnknownHeartbeat => format!("HEARTBEAT from unknown worker {id}"),
                        Offence::RequestToBroker => format!("REQUEST sent to the broker by {id}"),
                    };
                    warn!("{what}, disconnected")
                }
                Event::ClientGone {
                    client,
                    kept,
                    dropped,
                } => {
                    let client = text(&client);
                    if kept > 0 && p.allow(now) {
                        info!("client {client} disconnected, {kept} of its waiting requests kept for a retry from another address");
                    }
                    if dropped > 0 && p.allow(now) {
                        warn!(
                            "client {client} disconnected, its {dropped} waiting requests dropped"
                        );
                    }
                }
                Event::QueueFull {
                    service,
                    waiting,
                    bytes,
                    client,
                    evicted,
                } if p.allow(now) => {
                    let (service, client) = (text(&service), text(&client));
                    let full = format!(
                        "queue of service {service} full ({waiting} waiting, {bytes} bytes)"
                    );
                    match evicted {
                        None => warn!("{full}, request from {client} dropped"),
                        Some(n) => warn!("{full}, {n} newest requests of its biggest client dropped for {client}"),
                    }
                }
                Event::Expired {
                    service,
                    count,
                    after,
                    at_dispatch,
                } if p.allow(now) => {
                    let (service, ms) = (text(&service), after.as_millis());
                    match at_dispatch {
                        true => warn!("request for {service} expired after {ms} ms in queue, dropped"),
                        false => warn!("{count} request(s) for {service} expired after {ms} ms in queue, dropped"),
                    }
                }
                Event::RetryJoined { rid, service } if p.allow(now) => {
                    let service = text(&service);
                    info!("retry of request {rid} for {service} joined the running one")
                }
                Event::RetryReplayed { rid, service } if p.allow(now) => {
                    let service = text(&service);
                    info!("retry of request {rid} for {service} answered from memory")
                }
                Event::DedupForgot {
                    forgotten: f,
                    ttl,
                    max_entries,
                } => {
                    let (aged, evicted, ttl) = (f.aged, f.evicted, ttl.as_millis());
                    if aged > 0 {
                        info!("dedup forgot {aged} request ids older than {ttl} ms");
                    }
                    if evicted > 0 {
                        let young = f.evicted_age.unwrap_or_default().as_millis();
                        warn!("dedup store full ({max_entries} ids): forgot {evicted} request ids early, the youngest {young} ms old");
                    }
                }
                Event::Tick => p.report(),
                _ => {} // throttled
            }
        }
    }

    /// Sends the core's output, never waiting long for one peer.
    async fn flush(&mut self, socket: &mut RouterSocket) {
        while let Some(message) = self.broker.poll_transmit() {
            let Some(peer) = message.first().cloned() else {
                continue;
            };
            if !self.stuck.is_empty() {
                let now = contract::now();
                self.stuck.retain(|_, until| *until > now);
                if self.stuck.contains_key(&peer) {
                    // Dropped. A worker would be left busy with a request it never got.
                    self.send_failed(&peer, now);
                    continue;
                }
            }
            debug!("sending\n{}", message.dump());
            match sock::send(socket, message, SEND_TIMEOUT).await {
                Ok(()) => {}
                Err(SockError::Timeout(..)) => {
                    warn!(
                        "peer {} is not reading; dropping messages to it for {} ms",
                        text(&peer),
                        STUCK_PAUSE.as_millis()
                    );
                    let now = contract::now();
                    self.stuck.insert(peer.clone(), now + STUCK_PAUSE);
                    // A worker that does not read is no use: purged, its request handed on.
                    self.send_failed(&peer, now);
                }
                // The ROUTER no longer knows the peer: it has gone away. A worker's request goes
                // to the next worker (this loop sends it on).
                Err(error) => {
                    debug!("send to {} failed: {error}", text(&peer));
                    self.send_failed(&peer, contract::now());
                }
            }
        }
    }

    fn send_failed(&mut self, peer: &Bytes, now: Instant) {
        self.broker.handle_send_failed(peer, now);
        self.log_events(now);
    }
}

/// The throttle on log lines caused by peer input, so floods are summarised, not printed.
struct PeerLines(Throttle);

impl PeerLines {
    /// Whether to print a line now; first reports the lines suppressed in the last window.
    fn allow(&mut self, now: Instant) -> bool {
        match self.0.allow(now) {
            Verdict::Log { suppressed } => {
                report_suppressed(suppressed);
                true
            }
            Verdict::Suppress => false,
        }
    }

    /// Reports the lines suppressed so far (on the heartbeat tick).
    fn report(&mut self) {
        report_suppressed(self.0.take_suppressed());
    }
}

fn report_suppressed(count: u64) {
    if count > 0 {
        warn!("{count} more warnings about peer input suppressed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_input_lines_are_throttled_per_second() {
        let t0 = Instant::now();
        let mut lines = PeerLines(Throttle::new(LOG_BURST));
        let allowed = (0..100).filter(|_| lines.allow(t0)).count();
        assert_eq!(allowed, LOG_BURST as usize);
        assert_eq!(lines.0.take_suppressed(), 100 - u64::from(LOG_BURST));
        // The next window allows a burst again, with nothing left to report.
        assert!(lines.allow(t0 + Duration::from_secs(1)));
        assert_eq!(lines.0.take_suppressed(), 0);
    }
}
