//! RFC 26 byte for byte: our CURVE client replays a recorded session with libzmq's CURVE
//! server (`tests/fixtures/curve-client-transcript.txt`, written by `curve_transcript.py` in
//! the same directory, which says how to regenerate it). Given the recorded keys and random
//! values, every byte it sends must equal the recorded client's (bytes libzmq 4.3 accepted:
//! the session completed), and it must accept every byte libzmq sent.

use common::curve::client::{Client, Event, Randomness};
use common::curve::keys::{KeyPair, PublicKey, SecretKey};
use common::curve::wire;

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

fn transcript() -> Transcript {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/curve-client-transcript.txt"
    );
    let text = std::fs::read_to_string(path).expect("the transcript fixture");
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
    let t = transcript();
    let secret: [u8; 32] = t.field("client_secret");
    let z85 = z85_of(&secret);
    let pair = KeyPair::from_secret(SecretKey::from_z85(&z85).unwrap());
    let server = PublicKey(t.field("server_public"));
    let mut metadata = Vec::new();
    wire::put_property(&mut metadata, "Socket-Type", b"REQ");
    let random = Randomness {
        transient: t.field("client_transient"),
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

/// The transcript's own secret key as Z85 (the only way in for a secret: files and flags).
fn z85_of(secret: &[u8; 32]) -> String {
    z85::encode(secret)
}

/// Hex text, so a mismatch shows where the bytes part.
fn hexed(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
