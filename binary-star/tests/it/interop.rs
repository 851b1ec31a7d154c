//! Interop with libzmq (the `zmq` crate, as the Guide's C programs would use it): a libzmq PUB
//! plays the backup's state publisher with the Guide's bare digits, a libzmq SUB reads our
//! primary's state messages (digit first, so `atoi` reads them), and a libzmq REQ client is
//! served by our primary.

use crate::util::*;
use common::testkit::{tcp_endpoint, Proc};
use std::time::{Duration, Instant};

#[test]
fn a_libzmq_peer_and_client_speak_with_bstarsrv() {
    let ctx = zmq::Context::new();
    let peer_pub = tcp_endpoint();
    let statepub = ctx.socket(zmq::PUB).unwrap();
    statepub.bind(&peer_pub).unwrap();

    let frontend = tcp_endpoint();
    let our_pub = tcp_endpoint();
    let mut p = Proc::spawn(
        "primary",
        bstarsrv(),
        server_args("--primary", &frontend, &our_pub, &peer_pub),
    );
    p.wait_for("primary ready", WAIT);

    // The libzmq side publishes "2" (BACKUP) every heartbeat, like the Guide's bstarsrv -b.
    let started = Instant::now();
    while p.count("I: state ACTIVE") == 0 {
        assert!(started.elapsed() < WAIT, "{:?}", p.lines());
        statepub.send("2", 0).unwrap();
        std::thread::sleep(Duration::from_millis(HB_MS / 2));
    }
    assert!(p.count("peer is BACKUP") > 0);

    // A libzmq SUB hears our state as the digit, then our epoch: "3:1", which the Guide's C
    // receiver reads with atoi as 3 (ACTIVE).
    let statesub = ctx.socket(zmq::SUB).unwrap();
    statesub.set_subscribe(b"").unwrap();
    statesub.set_rcvtimeo(200).unwrap();
    statesub.connect(&our_pub).unwrap();
    let mut heard = None;
    while heard.is_none() && started.elapsed() < WAIT {
        statepub.send("2", 0).unwrap();
        if let Ok(frames) = statesub.recv_multipart(0) {
            heard = Some(frames);
        }
    }
    assert_eq!(heard, Some(vec![b"3:1".to_vec()]));
    let frame = &heard.unwrap()[0];
    let atoi: String = frame
        .iter()
        .map(|&b| b as char)
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(atoi, "3");

    // A libzmq REQ client (the Guide's bstarcli) gets its echo.
    let client = ctx.socket(zmq::REQ).unwrap();
    client.set_rcvtimeo(5000).unwrap();
    client.connect(&frontend).unwrap();
    client.send("1", 0).unwrap();
    assert_eq!(client.recv_multipart(0).unwrap(), vec![b"1".to_vec()]);
}
