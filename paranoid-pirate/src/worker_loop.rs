//! `ppworker`'s I/O loop: a [`Session`] (a DEALER with a fresh identity per connection, watched
//! by its monitor), a [`WorkerCore`] that makes every decision, and the (simulated) work run as
//! a separate task so heartbeats keep flowing while it runs.
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

use crate::protocol::FromWorker;
use crate::worker::{Event, Job, Transmit, WorkerConfig, WorkerCore};
use common::contract::{now, sleep_until, Core};
use common::fault::{Fault, FaultPlan};
use common::session::{Session, SessionEvent, SessionOptions};
use common::Message;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

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

/// Serves the queue until `shutdown` resolves or a simulated crash.
pub async fn run(options: WorkerOptions, shutdown: impl Future<Output = ()>) -> Exit {
    let mut core = WorkerCore::new(options.config.clone(), options.faults.clone());
    let mut session = Session::new(SessionOptions {
        endpoint: options.queue.clone(),
        connect_timeout: options.config.silence_limit(),
        send_timeout: options.config.heartbeat,
        identity_prefix: "",
        // The connection closing is the fastest sign of a dead queue (a hung one needs liveness).
        watch_disconnect: true,
    });
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Job, Message)>();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while let Some(transmit) = core.poll_transmit() {
            match transmit {
                Transmit::Reconnect { after } => session.reconnect(after),
                Transmit::Send(command) => send(&mut session, &mut core, command).await,
            }
        }
        while let Some(event) = core.poll_event() {
            let id = session.identity();
            match event {
                Event::Job(job) => {
                    if let Some(exit) = start(job, id, options.work, &done_tx) {
                        return exit;
                    }
                }
                Event::QueueSilent => warn!("({id}) heartbeat failure, can't reach queue"),
                Event::Reconnecting(after) => {
                    warn!("({id}) reconnecting in {} ms", after.as_millis())
                }
                Event::Malformed(e) => error!("({id}) invalid message from queue: {e}; dropped"),
                Event::StaleReply => {
                    warn!("({id}) reply to a request from a previous connection dropped")
                }
            }
        }
        let id = session.identity().to_owned();
        tokio::select! {
            () = &mut shutdown => return Exit::Interrupted,
            event = session.next() => match event {
                SessionEvent::Connected => core.handle_connected(now()),
                SessionEvent::ConnectFailed(e) => {
                    warn!("({id}) cannot reach queue at {}: {e}", options.queue);
                    core.handle_queue_lost(now());
                }
                SessionEvent::Message(message) => {
                    debug!("({id}) from queue:\n{}", message.dump());
                    core.handle_message(message, now());
                }
                SessionEvent::Closed => {
                    warn!("({id}) connection closed, can't reach queue");
                    core.handle_queue_lost(now());
                }
                SessionEvent::Failed(e) => {
                    warn!("({id}) socket error, starting afresh: {e}");
                    core.handle_queue_lost(now());
                }
            },
            Some((job, body)) = done_rx.recv() => core.handle_work_done(&job, body, now()),
            () = sleep_until(core.poll_timeout()) => core.handle_timeout(now()),
        }
    }
}

/// Sends one command, logs the outcome as the log-line contract says, and tells the core of a
/// failure.
async fn send(session: &mut Session, core: &mut WorkerCore, command: FromWorker) {
    let id = session.identity().to_owned();
    let message = command.to_message();
    if command != FromWorker::Heartbeat {
        debug!("({id}) to queue:\n{}", message.dump());
    }
    let e = match session.send(message).await {
        Ok(()) => {
            match command {
                FromWorker::Ready => info!("({id}) worker ready"),
                FromWorker::Reply(_) => info!("({id}) normal reply"),
                FromWorker::Heartbeat => {}
            }
            return;
        }
        Err(e) => e,
    };
    match command {
        FromWorker::Heartbeat => debug!("({id}) HEARTBEAT not sent: {e}"),
        FromWorker::Ready => warn!("({id}) READY not sent: {e}"),
        FromWorker::Reply(_) => warn!("({id}) reply not sent: {e}"),
    }
    core.handle_unsent(&command, now());
}

/// Starts a job as its own task (or crashes, if the fault plan says so). The task reports
/// back through the channel; the loop never waits for it.
fn start(
    job: Job,
    id: &str,
    work: Duration,
    done_tx: &mpsc::UnboundedSender<(Job, Message)>,
) -> Option<Exit> {
    let delay = match job.fault {
        Fault::Crash => {
            warn!("({id}) simulating a crash");
            return Some(Exit::Crashed);
        }
        Fault::Overload(extra) => {
            warn!("({id}) simulating CPU overload");
            work + extra
        }
        Fault::None => work,
    };
    info!("({id}) working on a request");
    // The reply echoes the request, as the Guide's workers do.
    let body = job.request.body.clone();
    if delay.is_zero() {
        // No work to simulate: answer at once. Even a zero sleep waits for the timer's next
        // tick (about 1 ms), which capped `--work-ms 0` at well under 1,000 requests/s.
        let _ = done_tx.send((job, body));
        return None;
    }
    let done_tx = done_tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = done_tx.send((job, body));
    });
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeromq::{RouterSocket, Socket, SocketRecv};

    const MS: Duration = Duration::from_millis(1);

    /// A queue that accepts the worker and never says a word: after `liveness × heartbeat` of
    /// silence the worker drops it and comes back on a fresh socket, each time after twice the
    /// back-off. Paused time runs the minutes of waiting at once; Unix-socket I/O completes
    /// inside the kernel call, so the virtual clock never outruns it.
    #[tokio::test(start_paused = true)]
    async fn a_silent_queue_is_dropped_after_liveness_intervals_and_the_backoff_doubles() {
        let path = std::env::temp_dir().join(format!("ppworker-silent-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let endpoint = format!("ipc://{}", path.display());
        let mut queue = RouterSocket::new();
        queue.bind(&endpoint).await.unwrap();
        let options = WorkerOptions {
            queue: endpoint,
            config: WorkerConfig {
                heartbeat: 1000 * MS,
                liveness: 3,
                reconnect_initial: 1000 * MS,
                reconnect_max: 32000 * MS,
            },
            work: Duration::ZERO,
            faults: FaultPlan::none(),
        };
        let worker = tokio::spawn(run(options, std::future::pending()));
        let ready = FromWorker::Ready.to_message();
        let mut readies = Vec::new();
        while readies.len() < 4 {
            let mut message = Message::from(queue.recv().await.unwrap());
            let identity = message.pop_front().unwrap();
            if message == ready {
                readies.push((now(), identity));
            }
        }
        worker.abort();
        let _ = std::fs::remove_file(&path);
        let gaps: Vec<u128> = readies
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).as_millis())
            .collect();
        // 3 s of silence, then 1 s, 2 s, 4 s of back-off (nothing heard resets it).
        for (gap, expected) in gaps.iter().zip([4000, 5000, 7000]) {
            assert!(
                (expected..expected + 50).contains(gap),
                "gaps between READYs {gaps:?}"
            );
        }
        let identities: std::collections::HashSet<_> = readies.iter().map(|r| &r.1).collect();
        assert_eq!(identities.len(), 4, "a fresh identity per connection");
    }
}
