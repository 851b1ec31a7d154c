//! RFC 26 byte for byte, both sides, against sessions recorded with libzmq 4.3.5 (pyzmq) by
//! `tests/fixtures/curve_transcript.py` (which says how to regenerate them):
//! - our client core replays `curve-client-transcript.txt` (a session with libzmq's CURVE
//!   server): given the recorded keys and random values, every byte it sends must equal the
//!   recorded client's (bytes libzmq accepted: the session completed), and it must accept
//!   every byte libzmq sent;
//! - our server core replays `curve-server-transcript.txt` (libzmq's CURVE client against a
//!   server with fixed keys, cookie key and nonces): fed libzmq's bytes, it must send exactly
//!   the recorded server's bytes, and hand zeromq the request libzmq sent.

use common::curve::client::{Client, Event, Randomness};
use common::curve::keys::{KeyPair, PublicKey, SecretKey};
use common::curve::protocol;
use common::curve::server::{Connection, ServerKeys, ServerRandomness};
use std::sync::Arc;
use std::time::Instant;

struct Transcript {
    fields: Vec<(String, Vec<u8>)>,
    /// (direction, step name, bytes), in the order they crossed the wire.
    steps: Vec<(String, String, Vec<u8>)>,
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn transcript(name: &str) -> Transcript {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the transcript fixture");
    let mut t = Transcript {
        fields: Vec::new(),
        steps: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            [direction, step, bytes] => t.steps.push((direction.into(), step.into(), hex(bytes))),
            [name, bytes] => t.fields.push((name.into(), hex(bytes))),
            _ => panic!("bad transcript line {line:?}"),
        }
    }
    t
}

impl Transcript {
    fn field<const N: usize>(&self, name: &str) -> [u8; N] {
        let (_, bytes) = self
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in the transcript"));
        bytes.as_slice().try_into().expect("field length")
    }

    fn step(&self, i: usize, direction: &str, name: &str) -> &[u8] {
        let (d, n, bytes) = &self.steps[i];
        assert_eq!((d.as_str(), n.as_str()), (direction, name), "step {i}");
        bytes
    }
}

#[test]
fn our_client_sends_exactly_the_recorded_bytes_and_accepts_libzmqs() {
    let t = transcript("curve-client-transcript.txt");
    let pair = pair_of(&t.field("client_secret"));
    let server = PublicKey(t.field("server_public"));
    let mut metadata = Vec::new();
    protocol::put_property(&mut metadata, "Socket-Type", b"REQ");
    let random = Randomness {
        transient: t.field("client_transient").into(),
        vouch_nonce: t.field("vouch_nonce"),
    };
    let mut client = Client::with_metadata(pair, server, metadata, random);

    assert_eq!(
        hexed(&client.start()),
        hexed(t.step(0, "c2s", "greeting+HELLO"))
    );
    let (initiate, events) = client
        .handle(t.step(1, "s2c", "greeting+WELCOME"))
        .expect("libzmq's WELCOME opens");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(hexed(&initiate), hexed(t.step(2, "c2s", "INITIATE")));
    let (out, events) = client
        .handle(t.step(3, "s2c", "READY"))
        .expect("libzmq's READY opens");
    assert!(out.is_empty());
    assert_eq!(
        events,
        vec![Event::Ready(vec![("Socket-Type".into(), b"REP".to_vec())])]
    );
    assert_eq!(
        hexed(&client.message(&[b"", b"hello"])),
        hexed(t.step(4, "c2s", "MESSAGE+MESSAGE"))
    );
    let (_, events) = client
        .handle(t.step(5, "s2c", "MESSAGE+MESSAGE"))
        .expect("libzmq's reply opens");
    let frame = |body: &[u8], more| Event::Frame {
        body: body.to_vec(),
        more,
        command: false,
    };
    assert_eq!(events, vec![frame(b"", true), frame(b"hello", false)]);
}

/// The key pair of a recorded secret key (as Z85: the only way in for a secret, as in files).
fn pair_of(secret: &[u8; 32]) -> KeyPair {
    KeyPair::from_secret(SecretKey::from_z85(&z85::encode(secret)).unwrap())
}

#[test]
fn our_server_sends_exactly_the_recorded_bytes_to_libzmqs_client() {
    let t = transcript("curve-server-transcript.txt");
    let keys = ServerKeys::new(pair_of(&t.field("server_secret")), Box::new(|_| true))
        .with_cookie_key(t.field("cookie_key"));
    let random = ServerRandomness {
        transient: t.field("server_transient").into(),
        cookie_nonce: t.field("cookie_nonce"),
        welcome_nonce: t.field("welcome_nonce"),
    };
    let mut server = Connection::new(Arc::new(keys), 1 << 20).with_randomness(random);
    let now = Instant::now();
    // The zeromq REP socket behind the guard greets it first.
    let mut zeromq = protocol::greeting(b"NULL", false).to_vec();
    let mut props = Vec::new();
    protocol::put_property(&mut props, "Socket-Type", b"REP");
    protocol::put_frame(
        &mut zeromq,
        protocol::FLAG_COMMAND,
        &[protocol::READY, &props],
    );
    server.feed_server(&zeromq).unwrap();

    assert_eq!(
        hexed(&server.take_to_peer()),
        hexed(t.step(0, "s2c", "greeting"))
    );
    let step = |server: &mut Connection, i, name| {
        server
            .feed_peer(t.step(i, "c2s", name), now)
            .unwrap_or_else(|r| panic!("libzmq's {name} refused: {r}"));
        hexed(&server.take_to_peer())
    };
    assert_eq!(
        step(&mut server, 1, "greeting+HELLO"),
        hexed(t.step(2, "s2c", "WELCOME"))
    );
    assert_eq!(
        step(&mut server, 3, "INITIATE"),
        hexed(t.step(4, "s2c", "READY"))
    );
    assert!(server.handshake_done());
    assert_eq!(step(&mut server, 5, "MESSAGE+MESSAGE"), "");
    // zeromq got libzmq's REQ request: its READY (Socket-Type REQ), then "", "hello".
    let plain = server.take_to_server();
    let mut request = Vec::new();
    protocol::put_frame(&mut request, protocol::FLAG_MORE, &[b""]);
    protocol::put_frame(&mut request, 0, &[b"hello"]);
    assert!(plain.ends_with(&request), "{}", hexed(&plain));
    assert!(plain.windows(3).any(|w| w == b"REQ"), "{}", hexed(&plain));
    server.feed_server(&request).unwrap();
    assert_eq!(
        hexed(&server.take_to_peer()),
        hexed(t.step(6, "s2c", "MESSAGE+MESSAGE"))
    );
}

/// Hex text, so a mismatch shows where the bytes part.
fn hexed(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
