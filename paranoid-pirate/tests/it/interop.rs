//! Must show: libzmq peers (the `zmq` crate builds libzmq 4.3 from source) speak 6/PPP with
//! our binaries: a libzmq REQ client through `ppqueue`, and a libzmq PPP worker served by it.

use crate::util::{all_answered, queue, worker, Net, HEARTBEAT_MS, PATIENCE};
use common::testkit::Background;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn libzmq_req_client_through_ppqueue() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let (w, _) = worker("worker", &net, &mut q, &[]);

    let ctx = zmq::Context::new();
    let client = ctx.socket(zmq::REQ).unwrap();
    client.set_linger(0).unwrap();
    client.set_rcvtimeo(10_000).unwrap();
    client.connect(&net.frontend).unwrap();
    for n in 1..=5 {
        let body = format!("libzmq-{n}");
        client.send(body.as_bytes(), 0).unwrap();
        let reply = client.recv_multipart(0).expect("a reply within 10 s");
        assert_eq!(reply, vec![body.into_bytes()], "the worker echoes");
    }
    assert_eq!(w.wait_count("normal reply", 5, PATIENCE), 5);
}

/// A minimal 6/PPP worker written against libzmq: DEALER, READY, heartbeats every interval,
/// echoes requests. Stops heartbeating (but keeps its socket open) when `hang` is set.
struct LibzmqWorker {
    served: Arc<AtomicUsize>,
    heartbeats_from_queue: Arc<AtomicUsize>,
    hang: Arc<AtomicBool>,
    _thread: Background,
}

impl LibzmqWorker {
    fn start(backend: &str, identity: &'static str) -> Self {
        let served = Arc::new(AtomicUsize::new(0));
        let heartbeats_from_queue = Arc::new(AtomicUsize::new(0));
        let hang = Arc::new(AtomicBool::new(false));
        let backend = backend.to_owned();
        let (s, h, hg) = (served.clone(), heartbeats_from_queue.clone(), hang.clone());
        let thread = Background::spawn(move |stop| {
            let ctx = zmq::Context::new();
            let socket = ctx.socket(zmq::DEALER).unwrap();
            socket.set_linger(0).unwrap();
            socket.set_identity(identity.as_bytes()).unwrap();
            socket.connect(&backend).unwrap();
            socket.send(&[0x01u8][..], 0).unwrap(); // READY
            let interval = Duration::from_millis(HEARTBEAT_MS);
            let mut heartbeat_at = Instant::now() + interval;
            while !stop.load(Ordering::Relaxed) {
                if socket.poll(zmq::POLLIN, 20).unwrap() > 0 {
                    let frames = socket.recv_multipart(0).unwrap();
                    if hg.load(Ordering::Relaxed) {
                        continue;
                    }
                    if frames == [vec![0x02u8]] {
                        h.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // [client, "", body]: echo it back unchanged.
                        socket.send_multipart(frames, 0).unwrap();
                        s.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !hg.load(Ordering::Relaxed) && Instant::now() >= heartbeat_at {
                    socket.send(&[0x02u8][..], 0).unwrap();
                    heartbeat_at = Instant::now() + interval;
                }
            }
        });
        LibzmqWorker {
            served,
            heartbeats_from_queue,
            hang,
            _thread: thread,
        }
    }
}

#[test]
fn libzmq_ppp_worker_served_by_ppqueue() {
    let net = Net::new();
    let mut q = queue(&net, &[]);
    let w = LibzmqWorker::start(&net.backend, "libzmq-worker");
    q.wait_for("worker libzmq-worker ready", PATIENCE);

    all_answered(&net, 10, false);
    assert_eq!(w.served.load(Ordering::Relaxed), 10);

    // The queue heartbeats it, and it stays registered across several intervals.
    let deadline = Instant::now() + PATIENCE;
    while w.heartbeats_from_queue.load(Ordering::Relaxed) < 3 {
        assert!(Instant::now() < deadline, "no heartbeats from ppqueue");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        q.count("purged"),
        0,
        "a heartbeating worker is never purged"
    );

    // Silence (socket still open) gets it purged by liveness.
    w.hang.store(true, Ordering::Relaxed);
    let line = q.wait_for("purged", PATIENCE);
    assert!(line.contains("libzmq-worker expired"), "{line}");
}
