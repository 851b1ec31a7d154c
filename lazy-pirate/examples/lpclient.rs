//! Lazy Pirate client, the Guide's `lpclient.c` in Rust: read this first. The hardened
//! `src/bin/lpclient.rs` adds flags, request accounting and a pure, unit-tested core.
//!
//! Sends numbered requests to a REP server and waits `REQUEST_TIMEOUT` for each echo. On
//! silence it closes the socket, opens a fresh one (a REQ that missed its reply cannot send
//! again) and resends; after `REQUEST_RETRIES` tries it abandons.
//!
//! Usage: `lpclient [endpoint] [requests]` (tcp://localhost:5555; until abandoned).

use std::process::ExitCode;
use std::time::Duration;
use tokio::time::timeout;
use zeromq::{ReqSocket, Socket, SocketRecv, SocketSend, ZmqResult};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(2500); // > 1000: the server works 1 s
const REQUEST_RETRIES: u32 = 3; // tries before we abandon

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or("tcp://localhost:5555".into());
    let requests = args
        .next()
        .map_or(u64::MAX, |n| n.parse().expect("requests: a number"));

    println!("I: connecting to server…");
    let mut client = None; // no socket: open a fresh one on the next try
    for sequence in 1..=requests {
        let request = sequence.to_string();
        let mut retries_left = REQUEST_RETRIES;
        loop {
            // zeromq's connect waits for the server, so it counts against the timeout too.
            match timeout(
                REQUEST_TIMEOUT,
                try_request(&mut client, &endpoint, &request),
            )
            .await
            {
                Ok(Ok(reply)) if reply == request => {
                    println!("I: server replied OK ({reply})");
                    break;
                }
                Ok(Ok(reply)) => println!("E: malformed reply from server: {reply}"),
                Ok(Err(e)) => println!("E: {e}"),
                Err(_) => {}
            }
            // No (good) reply: drop the socket and resend on a fresh one, or give up.
            client = None;
            retries_left -= 1;
            if retries_left == 0 {
                println!("E: server seems to be offline, abandoning");
                return ExitCode::FAILURE;
            }
            println!("W: no response from server, retrying…");
            println!("W: reconnecting to server…");
        }
    }
    ExitCode::SUCCESS
}

/// One try: connect if there is no socket, send the request, wait for the reply.
async fn try_request(
    client: &mut Option<ReqSocket>,
    endpoint: &str,
    request: &str,
) -> ZmqResult<String> {
    if client.is_none() {
        let mut socket = ReqSocket::new();
        socket.connect(endpoint).await?;
        *client = Some(socket);
    }
    let socket = client.as_mut().expect("connected above");
    socket.send(request.into()).await?;
    let reply = socket.recv().await?;
    Ok(reply
        .get(0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default())
}
