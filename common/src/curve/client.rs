//! A pure CURVE client, built from the same primitives as the server: the round-trip partner
//! of [`super::server`]'s tests and of the hostile-input tests (which need to tamper with a
//! real MESSAGE). The workspace's own clients do not use it yet (see the README's Security).

use super::keys::{KeyPair, PublicKey};
use super::wire::{self, prefix};
use crypto_box::SalsaBox;

/// What the server sent, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; the server's metadata (its Socket-Type, …).
    Ready(Vec<(String, Vec<u8>)>),
    /// One frame of a message; `more` if another frame of the same message follows.
    Frame {
        /// The frame's bytes.
        body: Vec<u8>,
        /// Another frame of the same message follows.
        more: bool,
    },
    /// The server refused us with an ERROR command.
    Error(Vec<u8>),
}

/// One client connection's CURVE state.
pub struct Client {
    pair: KeyPair,
    server: PublicKey,
    transient: crypto_box::SecretKey,
    /// C' ⇄ S (HELLO, WELCOME), then C' ⇄ S' once WELCOME opened.
    boxed: SalsaBox,
    metadata: Vec<u8>,
    greeted: bool,
    ready: bool,
    input: Vec<u8>,
    next_nonce: u64,
    last_peer_nonce: u64,
}

impl Client {
    /// A client with long-term `pair` for the server whose public key is `server`, announcing
    /// `socket_type` (and `identity`, if any) in INITIATE.
    pub fn new(
        pair: KeyPair,
        server: PublicKey,
        socket_type: &str,
        identity: Option<&[u8]>,
    ) -> Self {
        let transient = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let boxed = SalsaBox::new(&server.to_box(), &transient);
        let mut metadata = Vec::new();
        wire::put_property(&mut metadata, "Socket-Type", socket_type.as_bytes());
        if let Some(id) = identity {
            wire::put_property(&mut metadata, "Identity", id);
        }
        Self {
            pair,
            server,
            transient,
            boxed,
            metadata,
            greeted: false,
            ready: false,
            input: Vec::new(),
            next_nonce: 1,
            last_peer_nonce: 0,
        }
    }

    /// The greeting and HELLO, to send first.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = wire::greeting(b"CURVE", false).to_vec();
        let nonce = self.take_nonce();
        let signature = wire::seal(&self.boxed, prefix::HELLO, &nonce, &[0u8; 64]);
        let public = self.transient.public_key().to_bytes();
        wire::put_frame(
            &mut out,
            wire::FLAG_COMMAND,
            &[
                wire::HELLO,
                &[1, 0],
                &[0u8; 72],
                &public,
                &nonce,
                &signature,
            ],
        );
        out
    }

    /// True once the server's READY arrived.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Handles bytes from the server; returns what to send back (INITIATE after WELCOME) and
    /// the events decoded.
    pub fn handle(&mut self, bytes: &[u8]) -> Result<(Vec<u8>, Vec<Event>), &'static str> {
        self.input.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut events = Vec::new();
        loop {
            if !self.greeted {
                if self.input.len() < 64 {
                    break;
                }
                // Only the mechanism: libzmq's CURVE servers send as-server 0 (seen here).
                if &self.input[12..18] != b"CURVE\0" {
                    return Err("server greeting is not CURVE");
                }
                self.input.drain(..64);
                self.greeted = true;
                continue;
            }
            let Some((_flags, len, header)) = wire::frame_header(&self.input) else {
                break;
            };
            let end = header + len as usize;
            if self.input.len() < end {
                break;
            }
            let body: Vec<u8> = self.input[header..end].to_vec();
            self.input.drain(..end);
            if body.starts_with(wire::WELCOME) {
                out.extend_from_slice(&self.welcome(&body)?);
            } else if body.starts_with(wire::READY) {
                let at = wire::READY.len();
                let (nonce, sealed) = split_nonce(&body, at)?;
                self.check_nonce(nonce)?;
                let plain = wire::open(&self.boxed, prefix::READY, nonce, sealed)
                    .ok_or("READY does not open")?;
                self.ready = true;
                events.push(Event::Ready(
                    wire::properties(&plain).ok_or("READY metadata")?,
                ));
            } else if body.starts_with(wire::MESSAGE) {
                let (nonce, sealed) = split_nonce(&body, wire::MESSAGE.len())?;
                let plain = wire::open(&self.boxed, prefix::MESSAGE_S, nonce, sealed)
                    .filter(|p| !p.is_empty())
                    .ok_or("MESSAGE does not open")?;
                self.check_nonce(nonce)?;
                events.push(Event::Frame {
                    body: plain[1..].to_vec(),
                    more: plain[0] & wire::MSG_MORE != 0,
                });
            } else if let Some(reason) = body.strip_prefix(wire::ERROR) {
                events.push(Event::Error(reason.get(1..).unwrap_or_default().to_vec()));
            } else {
                return Err("unexpected command");
            }
        }
        Ok((out, events))
    }

    fn welcome(&mut self, body: &[u8]) -> Result<Vec<u8>, &'static str> {
        let at = wire::WELCOME.len();
        let nonce = body.get(at..at + 16).ok_or("WELCOME too short")?;
        let plain = wire::open(&self.boxed, prefix::WELCOME, nonce, &body[at + 16..])
            .ok_or("WELCOME does not open (wrong server key)")?;
        if plain.len() != 32 + wire::COOKIE_LEN {
            return Err("WELCOME of the wrong length");
        }
        let server_transient = PublicKey(plain[..32].try_into().unwrap_or([0; 32]));
        let cookie = &plain[32..];
        let vouch_nonce: [u8; 16] = wire::random();
        let mut vouch_plain = self.transient.public_key().to_bytes().to_vec();
        vouch_plain.extend_from_slice(&self.server.0);
        let vouch_box = SalsaBox::new(&server_transient.to_box(), &self.pair.secret.to_box());
        let mut vouch = vouch_nonce.to_vec();
        vouch.extend_from_slice(&wire::seal(
            &vouch_box,
            prefix::VOUCH,
            &vouch_nonce,
            &vouch_plain,
        ));
        self.boxed = SalsaBox::new(&server_transient.to_box(), &self.transient);
        let mut plain = self.pair.public.0.to_vec();
        plain.extend_from_slice(&vouch);
        plain.extend_from_slice(&self.metadata);
        let nonce = self.take_nonce();
        let sealed = wire::seal(&self.boxed, prefix::INITIATE, &nonce, &plain);
        let mut out = Vec::new();
        wire::put_frame(
            &mut out,
            wire::FLAG_COMMAND,
            &[wire::INITIATE, cookie, &nonce, &sealed],
        );
        Ok(out)
    }

    /// One message (its frames) as MESSAGE commands, with the next nonces.
    pub fn message(&mut self, frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let nonce = self.take_nonce();
            out.extend_from_slice(&self.message_with_nonce(frame, i + 1 < frames.len(), nonce));
        }
        out
    }

    /// One MESSAGE frame with the given short nonce (tests replay and reorder with it).
    pub fn message_with_nonce(&self, body: &[u8], more: bool, nonce: [u8; 8]) -> Vec<u8> {
        let mut plain = vec![if more { wire::MSG_MORE } else { 0 }];
        plain.extend_from_slice(body);
        let sealed = wire::seal(&self.boxed, prefix::MESSAGE_C, &nonce, &plain);
        let mut out = Vec::new();
        wire::put_frame(&mut out, 0, &[wire::MESSAGE, &nonce, &sealed]);
        out
    }

    fn take_nonce(&mut self) -> [u8; 8] {
        let n = self.next_nonce;
        self.next_nonce += 1;
        n.to_be_bytes()
    }

    fn check_nonce(&mut self, nonce: &[u8]) -> Result<(), &'static str> {
        let got = u64::from_be_bytes(nonce.try_into().map_err(|_| "short nonce")?);
        if got <= self.last_peer_nonce {
            return Err("server nonce not increasing");
        }
        self.last_peer_nonce = got;
        Ok(())
    }
}

/// The 8-byte short nonce at `at` and the box after it.
fn split_nonce(body: &[u8], at: usize) -> Result<(&[u8], &[u8]), &'static str> {
    let nonce = body.get(at..at + 8).ok_or("command too short")?;
    Ok((nonce, &body[at + 8..]))
}
