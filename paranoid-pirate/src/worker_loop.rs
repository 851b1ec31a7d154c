//! `ppworker`'s I/O loop: a DEALER socket, a [`WorkerCore`] that makes every decision, and the
//! (simulated) work run as a separate task so heartbeats keep flowing while it runs.
//!
//! Every (re)connect uses a new DEALER with a fresh random printable identity: the `zeromq`
//! crate's DEALER never reconnects by itself, and a peer that comes back at once under its old
//! identity can lose replies.
//!
//! # Log lines (a contract: tests and the tour wait for them)
//! * `I: (<id>) worker ready` after READY went out on a fresh connection
//! * `I: (<id>) working on a request` when a request starts
//! * `I: (<id>) normal reply` after a reply went out
//! * `W: (<id>) heartbeat failure, can't reach queue` when the queue has been silent too long
//! * `W: (<id>) connection closed, can't reach queue` when the queue's connection closes (it died)
//! * `W: (<id>) reconnecting in <ms> ms` before each back-off wait
//! * `W: (<id>) simulating a crash` (then the process exits with status 1)
//! * `W: (<id>) simulating CPU overload`
//! * `E: …` for every malformed message from the queue, which is dropped

use crate::worker::{Job, Timeout, WorkerConfig, WorkerCore};
use common::fault::{Fault, FaultPlan};
use common::rng::Rng;
use common::sock;
use common::Message;
use futures::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};
use zeromq::{DealerSocket, Socket, SocketEvent, SocketRecv};

/// Everything `ppworker` needs to run.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The queue's backend (Guide: `tcp://localhost:5556`).
    pub queue: String,
    /// Heartbeat, liveness and reconnect back-off.
    pub config: WorkerConfig,
    /// Simulated work per request (the reply echoes the request body).
    pub work: Duration,
    /// Simulated crashes and overloads.
    pub faults: FaultPlan,
}

/// How the worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGINT/SIGTERM (or the caller's shutdown future).
    Interrupted,
    /// The fault plan asked for a crash.
    Crashed,
}

/// Why the inner loop gave up on the current socket.
enum Reconnect {
    After(Duration),
    Stop(Exit),
}

/// Serves the queue until `shutdown` resolves or a simulated crash.
pub async fn run(options: WorkerOptions, shutdown: impl Future<Output = ()>) -> Exit {
    let mut core = WorkerCore::new(options.config.clone(), options.faults.clone());
    let mut identities = Rng::from_entropy();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Job, Message)>();
    let mut shutdown = std::pin::pin!(shutdown);
    let limit = core.config().silence_limit();
    loop {
        let identity = identities.identity();
        let mut socket = DealerSocket::with_options(sock::options(limit, Some(&identity)));
        let connect = tokio::select! {
            () = &mut shutdown => return Exit::Interrupted,
            result = sock::connect(&mut socket, &options.queue, limit) => result,
        };
        let next = match connect {
            Err(e) => {
                warn!("({identity}) cannot reach queue at {}: {e}", options.queue);
                Reconnect::After(core.lost_queue())
            }
            Ok(()) => {
                let mut session = Session {
                    identity: &identity,
                    socket: &mut socket,
                    core: &mut core,
                    work: options.work,
                    done_tx: &done_tx,
                    send_timeout: options.config.heartbeat,
                };
                session.serve(&mut done_rx, shutdown.as_mut()).await
            }
        };
        drop(socket);
        match next {
            Reconnect::Stop(exit) => return exit,
            Reconnect::After(delay) => {
                warn!("({identity}) reconnecting in {} ms", delay.as_millis());
                tokio::select! {
                    () = &mut shutdown => return Exit::Interrupted,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// One connection's worth of serving.
struct Session<'a> {
    identity: &'a str,
    socket: &'a mut DealerSocket,
    core: &'a mut WorkerCore,
    work: Duration,
    done_tx: &'a mpsc::UnboundedSender<(Job, Message)>,
    send_timeout: Duration,
}

impl Session<'_> {
    async fn serve(
        &mut self,
        done_rx: &mut mpsc::UnboundedReceiver<(Job, Message)>,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Reconnect {
        // The connection closing is the fastest sign of a dead queue (a hung one needs liveness).
        let mut events = self.socket.monitor();
        let mut monitoring = true;
        let ready = self.core.connected(Instant::now());
        if !self.send(ready.to_message(), "READY").await {
            return Reconnect::After(self.core.lost_queue());
        }
        info!("({}) worker ready", self.identity);
        loop {
            let Some(deadline) = self.core.next_deadline() else {
                return Reconnect::After(self.core.lost_queue());
            };
            tokio::select! {
                () = shutdown.as_mut() => return Reconnect::Stop(Exit::Interrupted),
                received = self.socket.recv() => match received {
                    Ok(message) => {
                        let message = Message::from(message);
                        debug!("({}) from queue:\n{}", self.identity, message.dump());
                        match self.core.on_message(message, Instant::now()) {
                            Ok(Some(job)) => {
                                if let Some(exit) = self.start(job) {
                                    return Reconnect::Stop(exit);
                                }
                            }
                            Ok(None) => {}
                            Err(e) => error!("({}) invalid message from queue: {e}; dropped", self.identity),
                        }
                    }
                    Err(e) => {
                        warn!("({}) socket error, starting afresh: {e}", self.identity);
                        return Reconnect::After(self.core.lost_queue());
                    }
                },
                Some((job, body)) = done_rx.recv() => {
                    let finished = self.core.work_done(&job, body);
                    match finished.reply {
                        Some(reply) => {
                            if self.send(reply.to_message(), "reply").await {
                                info!("({}) normal reply", self.identity);
                            }
                        }
                        None => warn!(
                            "({}) reply to a request from a previous connection dropped",
                            self.identity
                        ),
                    }
                    if let Some(next) = finished.next {
                        if let Some(exit) = self.start(next) {
                            return Reconnect::Stop(exit);
                        }
                    }
                },
                event = events.next(), if monitoring => match event {
                    Some(SocketEvent::Disconnected(_)) => {
                        warn!("({}) connection closed, can't reach queue", self.identity);
                        return Reconnect::After(self.core.lost_queue());
                    }
                    Some(_) => {}
                    None => monitoring = false,
                },
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    match self.core.on_timeout(Instant::now()) {
                        Timeout::Nothing => {}
                        Timeout::Heartbeat(heartbeat) => {
                            // A failure here shows up as a dead queue soon enough.
                            let message = heartbeat.to_message();
                            if let Err(e) = sock::send(self.socket, message, self.send_timeout).await {
                                debug!("({}) HEARTBEAT not sent: {e}", self.identity);
                            }
                        }
                        Timeout::QueueDead { reconnect_in } => {
                            warn!("({}) heartbeat failure, can't reach queue", self.identity);
                            return Reconnect::After(reconnect_in);
                        }
                    }
                }
            }
        }
    }

    /// Starts a job as its own task (or crashes, if the fault plan says so). The task reports
    /// back through the channel; the loop never waits for it.
    fn start(&self, job: Job) -> Option<Exit> {
        let delay = match job.fault {
            Fault::Crash => {
                warn!("({}) simulating a crash", self.identity);
                return Some(Exit::Crashed);
            }
            Fault::Overload(extra) => {
                warn!("({}) simulating CPU overload", self.identity);
                self.work + extra
            }
            Fault::None => self.work,
        };
        info!("({}) working on a request", self.identity);
        if delay.is_zero() {
            // No work to simulate: answer at once. Even a zero sleep waits for the timer's next
            // tick (about 1 ms), which capped `--work-ms 0` at well under 1,000 requests/s.
            let body = job.request.body.clone();
            let _ = self.done_tx.send((job, body));
            return None;
        }
        let done_tx = self.done_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // The reply echoes the request, as the Guide's workers do.
            let body = job.request.body.clone();
            let _ = done_tx.send((job, body));
        });
        None
    }

    /// Sends within the time limit; returns whether it went out.
    async fn send(&mut self, message: Message, what: &str) -> bool {
        debug!("({}) to queue:\n{}", self.identity, message.dump());
        match sock::send(self.socket, message, self.send_timeout).await {
            Ok(()) => true,
            Err(e) => {
                warn!("({}) {what} not sent: {e}", self.identity);
                false
            }
        }
    }
}
