//! A Titanic client, Guide-sized (the Guide's ticlient): read this first.
//!
//! Hands an "echo" request to Titanic (`titanic.request`), polls for its reply
//! (`titanic.reply`) until there is one, then closes it (`titanic.close`). Between its calls
//! Titanic keeps the request on disk, so the client, the service and Titanic itself may come
//! and go. The client API is the Majordomo examples' (`majordomo/examples/mdapi`).
//!
//! Usage: `ticlient [endpoint] [-v]` (default `tcp://localhost:5555`).

#[path = "../../majordomo/examples/mdapi/mdcliapi.rs"]
mod mdcliapi;

use common::Message;
use mdcliapi::MdClient;
use std::process::exit;
use std::time::Duration;
use tokio::time::sleep;

/// Calls a Titanic service: the reply after its `200`, or `None` for "not yet" (`300`, or no
/// answer at all this time). Exits on `400` (our mistake) and `500` (Titanic's).
async fn service_call(session: &mut MdClient, service: &str, request: Message) -> Option<Message> {
    let mut reply = session.send(service, request).await?;
    match reply.pop_front().as_deref() {
        Some(b"200") => Some(reply),
        Some(b"400") => {
            println!("E: client fatal error, aborting");
            exit(1)
        }
        Some(b"500") => {
            println!("E: server fatal error, aborting");
            exit(1)
        }
        _ => None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "-v").collect();
    let verbose = std::env::args().any(|a| a == "-v");
    let broker = args.first().map_or("tcp://localhost:5555", |a| a.as_str());
    let mut session = MdClient::new(broker, verbose);
    let run = async {
        // 1. Hand the request to Titanic, until it has stored it.
        let request = Message::from_frames(["echo", "Hello world"]);
        let uuid = loop {
            let stored = service_call(&mut session, "titanic.request", request.clone()).await;
            if let Some(uuid) = stored.as_ref().and_then(Message::first) {
                break uuid.clone();
            }
            sleep(Duration::from_secs(1)).await;
        };
        println!("I: request UUID {}", String::from_utf8_lossy(&uuid));
        // 2. Poll for the reply; 3. close the request.
        loop {
            sleep(Duration::from_millis(100)).await;
            let asked = Message::from_frames([uuid.clone()]);
            if let Some(reply) = service_call(&mut session, "titanic.reply", asked).await {
                let text = reply
                    .iter()
                    .last()
                    .map(|f| String::from_utf8_lossy(f).into_owned());
                println!("Reply: {}", text.unwrap_or_default());
                let closing = Message::from_frames([uuid.clone()]);
                while service_call(&mut session, "titanic.close", closing.clone())
                    .await
                    .is_none()
                {}
                return;
            }
            println!("I: no reply yet, trying again...");
            sleep(Duration::from_secs(5)).await; // try again in 5 seconds
        }
    };
    tokio::select! {
        () = run => {}
        _ = tokio::signal::ctrl_c() => println!("W: interrupted"),
    }
}
