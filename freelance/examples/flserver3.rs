//! Freelance server, model 3, the Guide's `flserver3.c` in Rust: a ROUTER whose routing identity
//! is the endpoint clients connect to (10/FLP). Answers PING with PONG and `[control, body…]`
//! with `[control, "OK"]`. The hardened `src/bin/flserver3.rs` checks every request (malformed
//! ones are logged and dropped), bounds its sends and guards its port.
//!
//! Usage: `flserver3 [endpoint] [-v]` (tcp://*:5555; its identity then is
//! tcp://localhost:5555); `-v` dumps every message.

use bytes::Bytes;
use zeromq::{RouterSocket, Socket, SocketOptions, SocketRecv, SocketSend, ZmqMessage, ZmqResult};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ZmqResult<()> {
    let mut args = std::env::args().skip(1);
    let bind_endpoint = args.next().unwrap_or("tcp://*:5555".into());
    let verbose = args.next().as_deref() == Some("-v");

    // Prepare the server socket with a predictable identity: the endpoint clients use.
    let connect_endpoint = bind_endpoint.replace("tcp://*:", "tcp://localhost:");
    let mut options = SocketOptions::default();
    options.peer_identity(connect_endpoint.parse()?);
    let mut server = RouterSocket::with_options(options);
    // zeromq cannot bind the Guide's `*`: all interfaces is 0.0.0.0.
    server
        .bind(&bind_endpoint.replace("tcp://*:", "tcp://0.0.0.0:"))
        .await?;
    println!("I: service is ready at {bind_endpoint}");

    loop {
        let request = server.recv().await?;
        if verbose {
            println!("{request:?}");
        }
        // Frame 0: identity of the client; frame 1: PING, or the client's control frame;
        // then the request body.
        let reply: Vec<Bytes> = match request.into_vec().as_slice() {
            [identity, control, ..] if control == "PING" => vec![identity.clone(), "PONG".into()],
            [identity, control, ..] => vec![identity.clone(), control.clone(), "OK".into()],
            _ => {
                println!("E: malformed request, dropped");
                continue;
            }
        };
        if verbose {
            println!("{reply:?}");
        }
        let reply = ZmqMessage::try_from(reply).expect("three frames");
        if let Err(e) = server.send(reply).await {
            println!("W: reply lost, the client is gone: {e}");
        }
    }
}
