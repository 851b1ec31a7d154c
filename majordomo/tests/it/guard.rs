//! The ingress guard in front of mdbroker: hostile bytes close one connection, never the
//! broker (the limits in the README's "Security"); the connection limit refuses one more; libzmq
//! MDP clients get through.

use crate::util::{broker, worker};
use common::hostile::{assert_connection_limit, assert_survives_hostile_input};
use common::testkit::tcp_endpoint;

/// One MDP/0.1 echo request from a libzmq REQ socket; returns the reply frames.
fn libzmq_echo(endpoint: &str, body: &str) -> Vec<Vec<u8>> {
    let ctx = zmq::Context::new();
    let req = ctx.socket(zmq::REQ).unwrap();
    req.set_linger(0).unwrap();
    req.set_rcvtimeo(10_000).unwrap();
    req.connect(endpoint).unwrap();
    req.send_multipart(["MDPC01", "echo", body], 0).unwrap();
    req.recv_multipart(0).expect("a reply through the guard")
}

fn expected(body: &str) -> Vec<Vec<u8>> {
    vec![
        b"MDPC01".to_vec(),
        b"echo".to_vec(),
        body.as_bytes().to_vec(),
    ]
}

#[test]
fn mdbroker_survives_hostile_input() {
    let endpoint = tcp_endpoint();
    let mut b = broker(&endpoint, &["--handshake-ms", "1000"]);
    let _w = worker("worker", &mut b, &endpoint, &["--work-ms", "0"]);
    assert_survives_hostile_input(&mut b, &endpoint, "DEALER", || {
        assert_eq!(libzmq_echo(&endpoint, "hi"), expected("hi"));
    });
}

#[test]
fn mdbroker_refuses_one_connection_over_the_limit_and_keeps_serving() {
    let endpoint = tcp_endpoint();
    let mut b = broker(&endpoint, &["--max-connections", "3"]);
    let _w = worker("worker", &mut b, &endpoint, &["--work-ms", "0"]);
    // The worker holds one slot.
    let open = assert_connection_limit(&mut b, &endpoint, "DEALER", 2);
    drop(open);
    assert_eq!(libzmq_echo(&endpoint, "again"), expected("again"));
}

#[test]
fn mdbroker_allowlist_refuses_other_sources() {
    let endpoint = tcp_endpoint();
    let mut b = broker(&endpoint, &["--allow", "10.0.0.0/8"]);
    b.mark();
    let addr = common::hostile::tcp_addr(&endpoint);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    common::hostile::assert_closed(&mut s, common::hostile::CLOSE_WITHIN, "not allowed");
    let line = b.wait_for("W: guard", common::hostile::CLOSE_WITHIN);
    assert!(line.contains("not in --allow"), "{line}");
}

#[test]
fn mdbroker_help_shows_the_guard_flags() {
    common::testkit::assert_help_mentions(
        env!("CARGO_BIN_EXE_mdbroker"),
        &common::hostile::HELP_NEEDLES,
    );
}

/// pyzmq MDP/0.1 echo worker with CURVE: argv = endpoint, server key, public, secret. Prints
/// `ready` once READY was sent, heartbeats every 100 ms, echoes every request.
const PYZMQ_CURVE_WORKER: &str = r#"
import sys, time, zmq
endpoint, server, public, secret = sys.argv[1:5]
s = zmq.Context().socket(zmq.DEALER)
s.linger = 0
s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server.encode(), public.encode(), secret.encode()
s.connect(endpoint)
s.send_multipart([b"", b"MDPW01", b"\x01", b"echo"])
print("ready", flush=True)
beat = time.time()
while True:
    if s.poll(50):
        msg = s.recv_multipart()
        if msg[2] == b"\x02":
            s.send_multipart([b"", b"MDPW01", b"\x03", msg[3], b""] + msg[5:])
    if time.time() - beat > 0.1:
        s.send_multipart([b"", b"MDPW01", b"\x04"])
        beat = time.time()
"#;

/// Kills the child when dropped (by its own handle).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// [`PYZMQ_CURVE_WORKER`] at `endpoint`, trusting `server`, with key pair `pair`.
fn pyzmq_curve_worker(
    endpoint: &str,
    server: &common::curve::keys::PublicKey,
    pair: &common::curve::keys::KeyPair,
    stdout: std::process::Stdio,
) -> Child {
    Child(
        std::process::Command::new("python3")
            .arg("-c")
            .arg(PYZMQ_CURVE_WORKER)
            .args([
                endpoint,
                &server.to_z85(),
                &pair.public.to_z85(),
                pair.secret.to_z85().as_str(),
            ])
            .stdout(stdout)
            .spawn()
            .expect("python3"),
    )
}

/// mdbroker with CURVE (`--curve-secret`, `--curve-allow`): a libzmq CURVE worker registers
/// and a libzmq CURVE client is answered through it; every refused CURVE peer is closed with
/// one line while the broker keeps serving. (mdbroker binds one endpoint, so its workers must
/// speak CURVE too: libzmq ones, until the workspace's clients can.)
#[test]
fn mdbroker_serves_libzmq_curve_clients_and_workers() {
    use common::curve::keys::KeyPair;
    use common::hostile::{assert_survives_curve_attacks, pyzmq_curve_request, CurveKeys};
    use std::io::BufRead;
    let Some(_) = common::hostile::require_pyzmq_curve() else {
        return;
    };
    let keys = CurveKeys::new();
    let worker_pair = KeyPair::generate();
    keys.admit("worker", &worker_pair);
    let endpoint = tcp_endpoint();
    let mut args = keys.server_args();
    args.extend(["--handshake-ms".to_owned(), "1000".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut b = broker(&endpoint, &args);
    let mut w = pyzmq_curve_worker(
        &endpoint,
        &keys.server.public,
        &worker_pair,
        std::process::Stdio::piped(),
    );
    let mut ready = String::new();
    std::io::BufReader::new(w.0.stdout.take().expect("worker stdout"))
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let echo = |body: &str| {
        pyzmq_curve_request(
            &endpoint,
            "REQ",
            &keys.server.public,
            &keys.client,
            &["MDPC01", "echo", body],
            std::time::Duration::from_secs(10),
        )
    };
    assert_eq!(echo("hi"), Ok(expected("hi")));
    assert_survives_curve_attacks(
        &mut b,
        &endpoint,
        keys.server.public,
        &keys.client,
        "DEALER",
        || assert_eq!(echo("again"), Ok(expected("again"))),
    );
}

/// `--worker-keys echo=DIR`: a CURVE worker whose key the guard admits but DIR does not list is
/// sent DISCONNECT with one line naming its key; a worker whose key DIR lists registers and
/// answers; after SIGHUP, DIR as edited in place decides.
#[test]
fn mdbroker_lets_only_the_worker_keys_of_a_service_register_for_it() {
    use common::curve::keys::KeyPair;
    use common::hostile::{pyzmq_curve_request, CurveKeys};
    use std::time::Duration;
    let Some(_) = common::hostile::require_pyzmq_curve() else {
        return;
    };
    let keys = CurveKeys::new();
    let (listed, other) = (KeyPair::generate(), KeyPair::generate());
    keys.admit("listed", &listed);
    keys.admit("other", &other);
    let echo_workers = common::testkit::IpcDir::new();
    std::fs::write(
        echo_workers.path().join("listed"),
        listed.public_file("listed"),
    )
    .unwrap();
    let endpoint = tcp_endpoint();
    let mut args = keys.server_args();
    args.extend([
        "--worker-keys".to_owned(),
        format!("echo={}", echo_workers.path().display()),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut b = broker(&endpoint, &args);
    let worker = |pair: &KeyPair| {
        pyzmq_curve_worker(
            &endpoint,
            &keys.server.public,
            pair,
            std::process::Stdio::null(),
        )
    };
    let within = Duration::from_secs(15);
    let _other = worker(&other);
    let line = b.wait_for("not in --worker-keys", within);
    assert!(line.contains(&other.public.to_z85()), "{line}");
    assert!(line.contains("may not offer service echo"), "{line}");
    let _listed = worker(&listed);
    b.wait_for("ready for service echo", within);
    let reply = pyzmq_curve_request(
        &endpoint,
        "REQ",
        &keys.server.public,
        &keys.client,
        &["MDPC01", "echo", "hi"],
        Duration::from_secs(10),
    );
    assert_eq!(reply, Ok(expected("hi")));

    // A key file edited in place (DIR's mtime does not move) counts after SIGHUP, which no
    // longer ends the broker.
    std::fs::write(
        echo_workers.path().join("listed"),
        other.public_file("other"),
    )
    .unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &b.pid().expect("running").to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    b.wait_for(
        &format!("client keys allowed from {}", echo_workers.path().display()),
        within,
    );
    let _other_again = worker(&other);
    b.wait_for("ready for service echo", within);
}
