//! Lazy Pirate server, the Guide's `lpserver.c` in Rust: a REP echo server that, after a few
//! requests, now and then crashes or stalls. The hardened `src/bin/lpserver.rs` makes the faults
//! explicit flags, bounds its sends and guards its port against hostile input.
//!
//! Usage: `lpserver [endpoint] [faults]` (tcp://*:5555; faults `on` like the Guide, or `off`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::sleep;
use zeromq::{RepSocket, Socket, SocketRecv, SocketSend, ZmqResult};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ZmqResult<()> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or("tcp://*:5555".into());
    let faults = args.next().as_deref() != Some("off");

    let mut server = RepSocket::new();
    // zeromq cannot bind the Guide's `*`: all interfaces is 0.0.0.0.
    server
        .bind(&endpoint.replace("tcp://*:", "tcp://0.0.0.0:"))
        .await?;
    println!("I: lpserver ready on {endpoint}");

    let mut cycles = 0;
    loop {
        let request = server.recv().await?;
        cycles += 1;

        // Simulate various problems, after a few cycles.
        if faults && cycles > 3 && randof(3) == 0 {
            println!("W: simulating a crash");
            std::process::exit(2);
        } else if faults && cycles > 3 && randof(3) == 0 {
            println!("W: simulating CPU overload");
            sleep(Duration::from_secs(2)).await;
        }
        let body = request
            .get(0)
            .map(|f| String::from_utf8_lossy(f).into_owned());
        println!("I: normal request ({})", body.unwrap_or_default());
        sleep(Duration::from_secs(1)).await; // do some heavy work
        server.send(request).await?;
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
