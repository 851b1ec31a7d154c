//! A Binary Star client, Guide-sized (the Guide's bstarcli): read this first.
//!
//! Sends numbered requests, one a second, to one server of the pair. With no reply after
//! `REQUEST_TIMEOUT` it fails over: it drops the socket, waits `SETTLE_DELAY` so the other
//! server sees its peer gone, and resends the same request there.
//!
//! Usage: `bstarcli [primary] [backup] [requests]` (defaults `tcp://localhost:5001`,
//! `tcp://localhost:5002`, no limit).

use std::time::Duration;
use tokio::time::{sleep, timeout};
use zeromq::{ReqSocket, Socket, SocketRecv, SocketSend};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
const SETTLE_DELAY: Duration = Duration::from_millis(2000); // before failing over

/// Sends `request` on `socket`, connecting it to `server` first if needed; the reply as text.
async fn ask(socket: &mut Option<ReqSocket>, server: &str, request: &str) -> Option<String> {
    if socket.is_none() {
        let mut fresh = ReqSocket::new();
        fresh.connect(server).await.ok()?;
        *socket = Some(fresh);
    }
    let req = socket.as_mut()?;
    req.send(request.into()).await.ok()?;
    String::try_from(req.recv().await.ok()?).ok()
}

async fn run(servers: [&str; 2], requests: u64) {
    let mut server_nbr = 0;
    let mut socket = None;
    println!("I: connecting to server at {}...", servers[server_nbr]);
    for sequence in 1..=requests {
        let request = sequence.to_string();
        loop {
            match timeout(
                REQUEST_TIMEOUT,
                ask(&mut socket, servers[server_nbr], &request),
            )
            .await
            {
                Ok(Some(reply)) if reply == request => {
                    println!("I: server replied OK ({reply})");
                    break;
                }
                Ok(Some(reply)) => println!("E: bad reply from server: {reply}"),
                _ => println!("W: no response from server, failing over"),
            }
            // A REQ that missed its reply cannot send again: a fresh one, on the other server.
            socket = None;
            server_nbr = (server_nbr + 1) % 2;
            sleep(SETTLE_DELAY).await;
            println!("I: connecting to server at {}...", servers[server_nbr]);
        }
        sleep(Duration::from_secs(1)).await; // one request per second
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let primary = args.first().map_or("tcp://localhost:5001", |a| a.as_str());
    let backup = args.get(1).map_or("tcp://localhost:5002", |a| a.as_str());
    let requests = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
    tokio::select! {
        () = run([primary, backup], requests) => {}
        _ = tokio::signal::ctrl_c() => println!("W: interrupted"),
    }
}
