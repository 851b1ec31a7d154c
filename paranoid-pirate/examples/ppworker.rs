//! Paranoid Pirate worker, the Guide's `ppworker.c` in Rust: a DEALER that says READY, echoes
//! requests, heartbeats the queue (6/PPP), and when the queue has been silent for
//! `HEARTBEAT_LIVENESS` intervals drops its socket and reconnects after a back-off that doubles
//! up to `INTERVAL_MAX`. After a few requests it now and then crashes or stalls. The hardened
//! `src/bin/ppworker.rs` adds a pure, unit-tested core, fault flags, the socket monitor (a closed
//! connection is noticed at once), fresh identities and work that does not stop heartbeats.
//!
//! Usage: `ppworker [endpoint] [faults]` (tcp://localhost:5556; faults `on` like the Guide, or
//! `off`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::{sleep, timeout, Instant};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend};

const HEARTBEAT_LIVENESS: u32 = 3; // 3-5 is reasonable
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1000);
const INTERVAL_INIT: Duration = Duration::from_millis(1000); // initial reconnect
const INTERVAL_MAX: Duration = Duration::from_millis(32000); // after exponential back-off

// Paranoid Pirate Protocol constants.
const PPP_READY: &[u8] = b"\x01"; // signals worker is ready
const PPP_HEARTBEAT: &[u8] = b"\x02"; // signals worker heartbeat

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or("tcp://localhost:5556".into());
    let faults = args.next().as_deref() != Some("off");

    let mut interval = INTERVAL_INIT;
    let mut cycles = 0;
    loop {
        // zeromq's connect waits for the queue: a queue not up in time counts as a silent one.
        let connect = timeout(
            HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS,
            worker_socket(&endpoint),
        );
        if let Ok(Some(mut worker)) = connect.await {
            serve(&mut worker, &mut interval, &mut cycles, faults).await;
            println!("W: heartbeat failure, can't reach queue");
        }
        println!("W: reconnecting in {} msec…", interval.as_millis());
        sleep(interval).await;
        interval = (interval * 2).min(INTERVAL_MAX);
    }
}

/// A fresh socket connected to the queue, READY sent.
async fn worker_socket(endpoint: &str) -> Option<DealerSocket> {
    let mut worker = DealerSocket::new();
    worker.connect(endpoint).await.ok()?;
    worker.send(PPP_READY.to_vec().into()).await.ok()?;
    println!("I: worker ready");
    Some(worker)
}

/// Serves requests and heartbeats until the queue has been silent for too long.
async fn serve(worker: &mut DealerSocket, interval: &mut Duration, cycles: &mut u32, faults: bool) {
    let mut liveness = HEARTBEAT_LIVENESS; // at zero the queue is considered dead
    let mut heartbeat_at = Instant::now() + HEARTBEAT_INTERVAL;
    while liveness > 0 {
        match timeout(HEARTBEAT_INTERVAL, worker.recv()).await {
            Ok(Ok(message)) => {
                // A request is [client, "", body…], echoed; anything else must be HEARTBEAT.
                if message.len() >= 3 {
                    // Simulate various problems, after a few cycles.
                    *cycles += 1;
                    if faults && *cycles > 3 && randof(5) == 0 {
                        println!("W: simulating a crash");
                        std::process::exit(2);
                    } else if faults && *cycles > 3 && randof(5) == 0 {
                        println!("W: simulating CPU overload");
                        sleep(Duration::from_secs(3)).await;
                    }
                    sleep(Duration::from_secs(1)).await; // do some heavy work
                    println!("I: normal reply");
                    let _ = worker.send(message).await;
                } else if message.len() != 1
                    || message.get(0).map(|f| &f[..]) != Some(PPP_HEARTBEAT)
                {
                    println!("E: invalid message: {message:?}");
                }
                // Any message from the queue shows it is alive.
                liveness = HEARTBEAT_LIVENESS;
                *interval = INTERVAL_INIT;
            }
            Ok(Err(_)) | Err(_) => liveness -= 1, // socket error or a silent interval
        }
        if Instant::now() > heartbeat_at {
            heartbeat_at = Instant::now() + HEARTBEAT_INTERVAL;
            let _ = worker.send(PPP_HEARTBEAT.to_vec().into()).await; // fails if the queue is gone
        }
    }
}

/// A number below `n`, random enough for a demo (the clock's nanoseconds).
fn randof(n: u32) -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
        % n
}
