//! Must show: malformed frames sent to `ppqueue` from either side are logged with `E:` and
//! dropped, and the queue keeps serving.

use crate::util::{all_answered, queue, worker, Net, PATIENCE};

fn garbage_peer(ctx: &zmq::Context, endpoint: &str, identity: &str) -> zmq::Socket {
    let socket = ctx.socket(zmq::DEALER).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_identity(identity.as_bytes()).unwrap();
    socket.connect(endpoint).unwrap();
    socket
}

#[test]
fn malformed_frames_from_workers_and_clients_are_logged_and_dropped() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let (w, _) = worker("worker", &net, &mut q, &[]);
    let ctx = zmq::Context::new();
    let big = vec![b'x'; 300];

    // From the worker side.
    let bogus_worker = garbage_peer(&ctx, &net.backend, "bogus-worker");
    let from_worker: Vec<Vec<&[u8]>> = vec![
        vec![&[0x07]],         // unknown command byte
        vec![&[0x01, 0x01]],   // command frame of two bytes
        vec![&[0x01], b"x"],   // wrong frame count: READY with an extra frame
        vec![b""],             // empty command frame
        vec![b"", b"body"],    // reply without an address
        vec![&big, b"", b"1"], // oversized address in a reply
        vec![b"client", b""],  // reply without a body
    ];
    for frames in &from_worker {
        bogus_worker.send_multipart(frames, 0).unwrap();
    }
    for _ in &from_worker {
        let line = q.wait_for("invalid message from worker", PATIENCE);
        assert!(line.starts_with("E: "), "{line}");
    }
    assert_eq!(q.count("worker bogus-worker ready"), 0);

    // From the client side (a DEALER, so no REQ envelope rules protect the queue).
    let bogus_client = garbage_peer(&ctx, &net.frontend, "bogus-client");
    let hops: Vec<&[u8]> = std::iter::repeat_n(&b"hop"[..], 17)
        .chain([&b""[..], b"x"])
        .collect();
    let from_client: Vec<Vec<&[u8]>> = vec![
        vec![b"no delimiter"], // no envelope at all
        vec![&big, b"", b"x"], // oversized address frame
        vec![b""],             // envelope but no body
        hops,                  // absurdly deep address stack
    ];
    for frames in &from_client {
        bogus_client.send_multipart(frames, 0).unwrap();
    }
    for _ in &from_client {
        let line = q.wait_for("invalid message from client", PATIENCE);
        assert!(line.starts_with("E: "), "{line}");
    }

    // Still serving, and the garbage reached no worker.
    all_answered(&net, 5, false);
    assert_eq!(w.count("normal reply"), 5);
    assert_eq!(w.count("E: "), 0);
}
