//! Freelance server, model 1, the Guide's `flserver1.c` in Rust: a trivial REP echo service. The
//! hardened `src/bin/flserver1.rs` is a ROUTER underneath, so a malformed request is logged and
//! dropped, and its port is guarded against hostile input.
//!
//! Usage: `flserver1 <endpoint>` (e.g. tcp://*:5555).

use zeromq::{RepSocket, Socket, SocketRecv, SocketSend, ZmqResult};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ZmqResult<()> {
    let Some(endpoint) = std::env::args().nth(1) else {
        println!("I: syntax: flserver1 <endpoint>");
        return Ok(());
    };
    let mut server = RepSocket::new();
    // zeromq cannot bind the Guide's `*`: all interfaces is 0.0.0.0.
    server
        .bind(&endpoint.replace("tcp://*:", "tcp://0.0.0.0:"))
        .await?;
    println!("I: echo service is ready at {endpoint}");
    loop {
        let request = server.recv().await?;
        server.send(request).await?;
    }
}
