//! Freelance client, model 1, the Guide's `flclient1.c` in Rust: read this first. Sends one
//! request over a fresh REQ socket per attempt: with one server it retries it (Lazy Pirate),
//! with several it tries each once, in order. The hardened `src/bin/flclient1.rs` adds many
//! requests, request accounting, exit codes and flags for every timing.
//!
//! Usage: `flclient1 <endpoint>…`; exits 1 if no server answered.

use std::process::ExitCode;
use std::time::Duration;
use tokio::time::timeout;
use zeromq::{ReqSocket, Socket, SocketRecv, SocketSend};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_RETRIES: u32 = 3; // before we abandon

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let endpoints: Vec<String> = std::env::args().skip(1).collect();
    let request = "Hello world";
    let mut reply = None;
    if let [endpoint] = endpoints.as_slice() {
        // One server: a Lazy Pirate client, up to MAX_RETRIES attempts.
        for _ in 0..MAX_RETRIES {
            reply = try_request(endpoint, request).await;
            if reply.is_some() {
                break;
            }
            println!("W: no response from {endpoint}, retrying…");
        }
    } else {
        // Several servers: try each at most once.
        for endpoint in &endpoints {
            reply = try_request(endpoint, request).await;
            if reply.is_some() {
                break;
            }
            println!("W: no response from {endpoint}");
        }
    }
    match reply {
        Some(_) => {
            println!("Service is running OK");
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

/// One attempt on its own socket, closed afterwards; the echo, or `None` after the timeout.
async fn try_request(endpoint: &str, request: &str) -> Option<String> {
    println!("I: trying echo service at {endpoint}…");
    let attempt = async {
        let mut client = ReqSocket::new();
        client.connect(endpoint).await?; // waits for the server: inside the timeout too
        client.send(request.into()).await?;
        client.recv().await
    };
    let reply = timeout(REQUEST_TIMEOUT, attempt).await.ok()?.ok()?;
    let reply = String::from_utf8_lossy(reply.get(0)?).into_owned();
    (reply == request).then_some(reply)
}
