//! Titanic (9/TSP), Guide-sized (the Guide's titanic): read this first.
//!
//! Three Majordomo services and a dispatcher, all keeping their state in files of one directory:
//! * `titanic.request` stores `[service, body…]` as `<uuid>.req` and answers `200 <uuid>`;
//! * `titanic.reply` answers `200` and the reply from `<uuid>.rep`, `300` while the request is
//!   pending, `400` for a UUID it never saw;
//! * `titanic.close` deletes both files and answers `200`;
//! * the dispatcher asks each pending request's service (if `mmi.service` says it is up) and
//!   stores the reply. After a restart it finds the pending requests again in the directory.
//!
//! The worker and client APIs are the Majordomo examples' (`majordomo/examples/mdapi`).
//!
//! Usage: `titanic [endpoint] [directory] [-v]` (defaults `tcp://localhost:5555`, `.titanic`).

#[path = "../../majordomo/examples/mdapi/mdcliapi.rs"]
mod mdcliapi;
#[path = "../../majordomo/examples/mdapi/mdwrkapi.rs"]
mod mdwrkapi;

use bytes::Bytes;
use common::Message;
use mdcliapi::MdClient;
use mdwrkapi::MdWorker;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// The file of `uuid` with `extension` (`req` or `rep`), or `None` for a UUID that is not 32 hex
/// digits (so a client cannot name other files).
fn file(dir: &Path, uuid: &[u8], extension: &str) -> Option<PathBuf> {
    let uuid = std::str::from_utf8(uuid).ok()?;
    let hex = uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| dir.join(format!("{uuid}.{extension}")))
}

/// Saves a message as frames, each a 4-byte big-endian length and its bytes. Written to a
/// temporary file and renamed, so a crash leaves the old file or the new one, never half.
fn save(path: &Path, msg: &Message) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    for frame in msg.iter() {
        bytes.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        bytes.extend_from_slice(frame);
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(temporary, path)
}

fn load(path: &Path) -> Option<Message> {
    let mut bytes = Bytes::from(std::fs::read(path).ok()?);
    let mut msg = Message::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes(bytes[..4].try_into().ok()?) as usize;
        let frame = bytes.slice(4..);
        msg.push_back(frame.get(..len).map(|_| frame.slice(..len))?);
        bytes = frame.slice(len..);
    }
    Some(msg)
}

/// Runs one Titanic service: `answer` turns each request into its reply.
async fn service(broker: String, name: &str, mut answer: impl FnMut(Message) -> Message) {
    let mut worker = MdWorker::new(&broker, name, false).await;
    let mut reply = None;
    loop {
        let request = worker.recv(reply.take()).await;
        reply = Some(answer(request));
    }
}

fn titanic_request(dir: &Path, request: Message, queue: &mpsc::UnboundedSender<String>) -> Message {
    if request.is_empty() {
        return Message::from_frames(["400"]); // no service name
    }
    let uuid = format!("{:032X}", uuid::Uuid::new_v4().as_u128());
    let saved = file(dir, uuid.as_bytes(), "req").map(|path| save(&path, &request));
    if !matches!(saved, Some(Ok(()))) {
        return Message::from_frames(["500"]);
    }
    let _ = queue.send(uuid.clone());
    Message::from_frames(["200".to_owned(), uuid])
}

fn titanic_reply(dir: &Path, request: Message) -> Message {
    let uuid = request.first().cloned().unwrap_or_default();
    let (Some(req), Some(rep)) = (file(dir, &uuid, "req"), file(dir, &uuid, "rep")) else {
        return Message::from_frames(["400"]);
    };
    if let Some(mut reply) = load(&rep) {
        reply.push_front("200");
        reply
    } else if req.exists() {
        Message::from_frames(["300"]) // pending
    } else {
        Message::from_frames(["400"]) // unknown
    }
}

fn titanic_close(dir: &Path, request: Message) -> Message {
    let uuid = request.first().cloned().unwrap_or_default();
    for extension in ["req", "rep"] {
        if let Some(path) = file(dir, &uuid, extension) {
            let _ = std::fs::remove_file(path);
        }
    }
    Message::from_frames(["200"])
}

/// Sends a stored request to its service if it has workers; true once the reply is stored (or
/// the request is gone: closed by its client).
async fn service_success(client: &mut MdClient, dir: &Path, uuid: &str) -> bool {
    let (Some(req), Some(rep)) = (
        file(dir, uuid.as_bytes(), "req"),
        file(dir, uuid.as_bytes(), "rep"),
    ) else {
        return true;
    };
    let Some(mut request) = load(&req) else {
        return true;
    };
    let Some(name) = request.pop_front() else {
        return true;
    };
    let asked = Message::from_frames([name.clone()]);
    let up = client.send("mmi.service", asked).await;
    if up.as_ref().and_then(Message::first).map(|code| &code[..]) != Some(b"200") {
        return false;
    }
    let Some(reply) = client.send(&String::from_utf8_lossy(&name), request).await else {
        return false;
    };
    save(&rep, &reply).is_ok()
}

/// Pending requests: those with a `.req` file and no `.rep` file yet.
fn pending(dir: &Path) -> BTreeSet<String> {
    let names = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    let requests = names.filter(|p| p.extension().is_some_and(|e| e == "req"));
    let waiting = requests.filter(|p| !p.with_extension("rep").exists());
    waiting
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "-v").collect();
    let verbose = std::env::args().any(|a| a == "-v");
    let broker = args
        .first()
        .map_or("tcp://localhost:5555", |a| a.as_str())
        .to_owned();
    let dir = PathBuf::from(args.get(1).map_or(".titanic", |a| a.as_str()));
    std::fs::create_dir_all(&dir)?;

    let (queue, mut queued) = mpsc::unbounded_channel();
    let d = dir.clone();
    tokio::spawn(service(broker.clone(), "titanic.request", move |r| {
        titanic_request(&d, r, &queue)
    }));
    let d = dir.clone();
    tokio::spawn(service(broker.clone(), "titanic.reply", move |r| {
        titanic_reply(&d, r)
    }));
    let d = dir.clone();
    tokio::spawn(service(broker.clone(), "titanic.close", move |r| {
        titanic_close(&d, r)
    }));

    // The dispatcher: every second, or when a request comes in, try what is pending.
    let mut client = MdClient::new(&broker, false);
    client.timeout = Duration::from_millis(1000);
    client.retries = 1;
    let mut waiting = pending(&dir);
    println!("I: titanic is active, {} requests pending", waiting.len());
    let dispatch = async {
        loop {
            tokio::select! {
                Some(uuid) = queued.recv() => { waiting.insert(uuid); }
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            for uuid in waiting.clone() {
                if verbose {
                    println!("I: processing request {uuid}");
                }
                if service_success(&mut client, &dir, &uuid).await {
                    waiting.remove(&uuid);
                }
            }
        }
    };
    tokio::select! {
        () = dispatch => {}
        _ = tokio::signal::ctrl_c() => println!("W: interrupted"),
    }
    Ok(())
}
