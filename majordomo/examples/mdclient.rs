//! A Majordomo client (the Guide's mdclient): the client API in `mdapi/mdcliapi.rs` hides the
//! protocol and the retries. Sends `requests` "Hello world" requests one after the other.
//!
//! Usage: `mdclient [endpoint] [requests] [-v]` (defaults `tcp://localhost:5555`, 100000).

#[path = "mdapi/mdcliapi.rs"]
mod mdcliapi;

use common::Message;
use mdcliapi::MdClient;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "-v").collect();
    let verbose = std::env::args().any(|a| a == "-v");
    let broker = args.first().map_or("tcp://localhost:5555", |a| a.as_str());
    let requests: u64 = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let mut session = MdClient::new(broker, verbose);
    let mut count = 0;
    let run = async {
        while count < requests {
            let request = Message::from_frames(["Hello world"]);
            match session.send("echo", request.clone()).await {
                Some(reply) if reply == request => count += 1,
                _ => break, // no reply, or a wrong one
            }
        }
    };
    tokio::select! {
        () = run => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("{count} requests/replies processed");
    std::process::exit(if count == requests { 0 } else { 1 });
}
