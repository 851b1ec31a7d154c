//! Simple Pirate worker, the Guide's `spworker.c` in Rust: a REQ socket with a printable random
//! identity, says READY, then echoes each request after a second of work, and after a few
//! requests now and then crashes or stalls. The hardened `src/bin/spworker.rs` makes the faults
//! explicit flags and bounds its connect and sends.
//!
//! Usage: `spworker [endpoint] [faults]` (tcp://localhost:5556; faults `on` like the Guide, or
//! `off`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::sleep;
use zeromq::{ReqSocket, Socket, SocketOptions, SocketRecv, SocketSend, ZmqResult};

const WORKER_READY: &[u8] = b"\x01"; // signals worker is ready

#[tokio::main(flavor = "current_thread")]
async fn main() -> ZmqResult<()> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or("tcp://localhost:5556".into());
    let faults = args.next().as_deref() != Some("off");

    // A random identity makes tracing easier.
    let identity = format!(
        "{:04X}-{:04X}",
        std::process::id() & 0xFFFF,
        randof(0x10000)
    );
    let mut options = SocketOptions::default();
    options.peer_identity(identity.parse()?);
    let mut worker = ReqSocket::with_options(options);
    worker.connect(&endpoint).await?;

    // Tell the queue we are ready for work.
    worker.send(WORKER_READY.to_vec().into()).await?;
    println!("I: ({identity}) worker ready");

    let mut cycles = 0;
    loop {
        let request = worker.recv().await?; // [client, "", body…]

        // Simulate various problems, after a few cycles.
        cycles += 1;
        if faults && cycles > 3 && randof(5) == 0 {
            println!("W: ({identity}) simulating a crash");
            std::process::exit(2);
        } else if faults && cycles > 3 && randof(5) == 0 {
            println!("W: ({identity}) simulating CPU overload");
            sleep(Duration::from_secs(3)).await;
        }
        println!("I: ({identity}) normal reply");
        sleep(Duration::from_secs(1)).await; // do some heavy work
        worker.send(request).await?;
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
