//! A Majordomo echo worker (the Guide's mdworker): the worker API in `mdapi/mdwrkapi.rs` hides
//! the protocol, so the worker itself is a loop of `recv(reply)`.
//!
//! Usage: `mdworker [endpoint] [service] [-v]` (defaults `tcp://localhost:5555`, `echo`).

#[path = "mdapi/mdwrkapi.rs"]
mod mdwrkapi;

use mdwrkapi::MdWorker;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "-v").collect();
    let verbose = std::env::args().any(|a| a == "-v");
    let broker = args.first().map_or("tcp://localhost:5555", |a| a.as_str());
    let service = args.get(1).map_or("echo", |a| a.as_str());
    let serve = async {
        let mut session = MdWorker::new(broker, service, verbose).await;
        let mut reply = None;
        loop {
            let request = session.recv(reply.take()).await;
            reply = Some(request); // the echo service: the body goes back unchanged
        }
    };
    tokio::select! {
        () = serve => {}
        _ = tokio::signal::ctrl_c() => println!("W: interrupted"),
    }
}
