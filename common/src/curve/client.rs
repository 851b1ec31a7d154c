//! The pure CURVE client: [`Client`], the handshake and MESSAGE boxes of one connection to a
//! CURVE server, and [`Relay`], which puts it between a local zeromq socket (NULL) and that
//! server (CURVE), as [`super::server::Connection`] does in the other direction.
//!
//! ```text
//! zeromq ⇄ [greeting NULL, READY (its Socket-Type, Identity), plain frames…] ⇄ Relay
//!        ⇄ [greeting CURVE, HELLO/WELCOME/INITIATE/READY, MESSAGE…] ⇄ server
//! ```
//!
//! Nothing here reads a clock or owns a socket; the I/O shell is [`super::connect`]. Every
//! byte from the server is untrusted: frame sizes are bounded before anything is buffered
//! (commands by [`MAX_COMMAND_BYTES`], MESSAGEs by the message limit), every box must open, and
//! short nonces must increase, or the connection is refused with a [`ClientRefusal`].

use super::keys::{KeyPair, PublicKey};
use super::protocol::{self, prefix};
use crate::guard::zmtp::{Checker, Violation, GREETING_LEN, MAX_COMMAND_BYTES};
use crypto_box::SalsaBox;
use std::fmt;

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
        /// The frame is a ZMTP command (libzmq boxes its PING/PONG and SUBSCRIBE like this).
        command: bool,
    },
    /// The server refused us with an ERROR command.
    Error(Vec<u8>),
}

/// Why a connection to a CURVE server was refused (logged after `E: curve <endpoint>: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRefusal {
    /// The server's greeting is not ZMTP 3 (or its signature is broken).
    Greeting(&'static str),
    /// The server greeted with another mechanism (it was not started with CURVE).
    NotCurve(String),
    /// A command frame over [`MAX_COMMAND_BYTES`], or a MESSAGE over the message limit.
    TooLarge(u64),
    /// A command of the wrong name, length or place.
    Malformed(&'static str),
    /// WELCOME did not open: the server does not hold the secret of the key we expect.
    WrongServerKey,
    /// READY did not open (tampered).
    ReadyBox,
    /// A MESSAGE box did not open (tampered, or another session).
    MessageBox,
    /// A short nonce not above the last one (replayed or reordered).
    Replay {
        /// The nonce received.
        got: u64,
        /// The last nonce accepted.
        last: u64,
    },
    /// The server sent an ERROR command (e.g. our key is not in its allow list).
    Error(String),
    /// A size rule on the decrypted stream zeromq would get.
    Zmtp(Violation),
    /// The local zeromq socket spoke something unexpected (a bug, not the server).
    Local(&'static str),
}

impl fmt::Display for ClientRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Greeting(what) => write!(f, "bad server greeting: {what}"),
            Self::NotCurve(m) => write!(
                f,
                "the server speaks {m:?}, not CURVE (was it started with a CURVE secret key?)"
            ),
            Self::TooLarge(len) => write!(f, "the server sent a frame of {len} bytes (too large)"),
            Self::Malformed(what) => write!(f, "CURVE {what}"),
            Self::WrongServerKey => write!(
                f,
                "CURVE WELCOME does not open: the server does not have the key we expect"
            ),
            Self::ReadyBox => write!(f, "CURVE READY does not open (tampered?)"),
            Self::MessageBox => write!(f, "CURVE MESSAGE does not open (tampered?)"),
            Self::Replay { got, last } => write!(
                f,
                "CURVE nonce {got} not above {last} (replayed or reordered)"
            ),
            Self::Error(reason) => write!(f, "the server refused us: ERROR {reason:?}"),
            Self::Zmtp(v) => v.fmt(f),
            Self::Local(what) => write!(f, "local zeromq socket: {what}"),
        }
    }
}

impl From<Violation> for ClientRefusal {
    fn from(v: Violation) -> Self {
        Self::Zmtp(v)
    }
}

/// The random values of one handshake: the transient key C' and the vouch's long nonce. From
/// the OS source in use; fixed only by the transcript test, which replays a recorded session.
pub struct Randomness {
    /// The client's transient secret key c' (zeroised on drop).
    pub transient: zeroize::Zeroizing<[u8; 32]>,
    /// The vouch box's 16-byte nonce tail.
    pub vouch_nonce: [u8; 16],
}

impl Randomness {
    /// Fresh values from the OS random source.
    pub fn fresh() -> Self {
        Self {
            transient: zeroize::Zeroizing::new(protocol::random()),
            vouch_nonce: protocol::random(),
        }
    }
}

/// One client connection's CURVE state.
pub struct Client {
    pair: KeyPair,
    server: PublicKey,
    transient: crypto_box::SecretKey,
    vouch_nonce: [u8; 16],
    /// C' ⇄ S (HELLO, WELCOME), then C' ⇄ S' once WELCOME opened.
    boxed: SalsaBox,
    metadata: Vec<u8>,
    limit: u64,
    greeted: bool,
    welcomed: bool,
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
        let mut metadata = Vec::new();
        protocol::put_property(&mut metadata, "Socket-Type", socket_type.as_bytes());
        if let Some(id) = identity {
            protocol::put_property(&mut metadata, "Identity", id);
        }
        Self::with_metadata(pair, server, metadata, Randomness::fresh())
    }

    /// A client announcing `metadata` (encoded properties) with the given random values.
    pub fn with_metadata(
        pair: KeyPair,
        server: PublicKey,
        metadata: Vec<u8>,
        random: Randomness,
    ) -> Self {
        let transient = crypto_box::SecretKey::from_bytes(*random.transient);
        let boxed = SalsaBox::new(&server.to_box(), &transient);
        Self {
            pair,
            server,
            transient,
            vouch_nonce: random.vouch_nonce,
            boxed,
            metadata,
            limit: crate::guard::DEFAULT_MAX_MSG_BYTES,
            greeted: false,
            welcomed: false,
            ready: false,
            input: Vec::new(),
            next_nonce: 1,
            last_peer_nonce: 0,
        }
    }

    /// Refuses MESSAGEs over `max_msg_bytes` (default [`crate::guard::DEFAULT_MAX_MSG_BYTES`]).
    pub fn with_limit(mut self, max_msg_bytes: u64) -> Self {
        self.limit = max_msg_bytes;
        self
    }

    /// The greeting and HELLO, to send first.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = protocol::greeting(b"CURVE", false).to_vec();
        let nonce = self.take_nonce();
        let signature = protocol::seal(&self.boxed, prefix::HELLO, &nonce, &[0u8; 64]);
        let public = self.transient.public_key().to_bytes();
        protocol::put_frame(
            &mut out,
            protocol::FLAG_COMMAND,
            &[
                protocol::HELLO,
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
    /// the events decoded. After an `Err` or an [`Event::Error`] the connection must be closed.
    pub fn handle(&mut self, bytes: &[u8]) -> Result<(Vec<u8>, Vec<Event>), ClientRefusal> {
        self.input.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut at = 0;
        let result = loop {
            match self.step(at, &mut out, &mut events) {
                Ok(Some(used)) => at += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.input.drain(..at);
        if self.input.is_empty() && self.input.capacity() > 8 * 1024 {
            self.input.shrink_to(8 * 1024);
        }
        result.map(|()| (out, events))
    }

    /// One greeting or frame from `input[at..]`: the bytes used, or `None` if incomplete.
    fn step(
        &mut self,
        at: usize,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<Option<usize>, ClientRefusal> {
        let buf = &self.input[at..];
        if !self.greeted {
            if buf.first().is_some_and(|&b| b != 0xFF) || buf.get(9).is_some_and(|&b| b != 0x7F) {
                return Err(ClientRefusal::Greeting("not a ZMTP signature"));
            }
            if buf.get(10).is_some_and(|&major| major < 3) {
                return Err(ClientRefusal::Greeting("ZMTP version below 3"));
            }
            if buf.len() < GREETING_LEN {
                return Ok(None);
            }
            // Only the mechanism matters; the as-server byte is not checked (libzmq's CURVE
            // servers were seen sending 0 here).
            let mechanism = &buf[12..32];
            let name_len = mechanism.iter().position(|&b| b == 0).unwrap_or(20);
            if &mechanism[..name_len] != b"CURVE" {
                return Err(ClientRefusal::NotCurve(
                    String::from_utf8_lossy(&mechanism[..name_len]).into_owned(),
                ));
            }
            self.greeted = true;
            return Ok(Some(GREETING_LEN));
        }
        let Some((flags, len, header)) = protocol::frame_header(buf) else {
            return Ok(None);
        };
        let max = if self.ready {
            self.limit.saturating_add(protocol::MESSAGE_OVERHEAD as u64)
        } else {
            MAX_COMMAND_BYTES
        };
        if len > max {
            return Err(ClientRefusal::TooLarge(len));
        }
        if flags & !(protocol::FLAG_MORE | protocol::FLAG_LONG | protocol::FLAG_COMMAND) != 0 {
            return Err(Violation::ReservedFlags(flags).into());
        }
        if flags & protocol::FLAG_MORE != 0 {
            return Err(ClientRefusal::Malformed(
                "frame with MORE set (CURVE sends one frame per box)",
            ));
        }
        let end = header + len as usize;
        if buf.len() < end {
            return Ok(None);
        }
        let body = buf[header..end].to_vec();
        if let Some(reason) = body.strip_prefix(protocol::ERROR) {
            // Reported as an event: the caller closes (the relay turns it into a refusal).
            events.push(Event::Error(reason.get(1..).unwrap_or_default().to_vec()));
            return Ok(Some(end));
        }
        if !self.welcomed {
            out.extend_from_slice(&self.welcome(&body)?);
        } else if !self.ready {
            events.push(self.open_ready(&body)?);
        } else {
            events.push(self.open_message(&body)?);
        }
        Ok(Some(end))
    }

    fn welcome(&mut self, body: &[u8]) -> Result<Vec<u8>, ClientRefusal> {
        if !body.starts_with(protocol::WELCOME) {
            return Err(ClientRefusal::Malformed(
                "command other than WELCOME after HELLO",
            ));
        }
        if body.len() != protocol::WELCOME_LEN {
            return Err(ClientRefusal::Malformed("WELCOME of the wrong length"));
        }
        let at = protocol::WELCOME.len();
        let nonce = &body[at..at + protocol::LONG_NONCE];
        let plain = protocol::open(
            &self.boxed,
            prefix::WELCOME,
            nonce,
            &body[at + protocol::LONG_NONCE..],
        )
        .ok_or(ClientRefusal::WrongServerKey)?;
        let server_transient = PublicKey(plain[..32].try_into().unwrap_or([0; 32]));
        let cookie = &plain[32..];
        let mut vouch_plain = self.transient.public_key().to_bytes().to_vec();
        vouch_plain.extend_from_slice(&self.server.0);
        let vouch_box = SalsaBox::new(&server_transient.to_box(), &self.pair.secret.to_box());
        let mut vouch = self.vouch_nonce.to_vec();
        vouch.extend_from_slice(&protocol::seal(
            &vouch_box,
            prefix::VOUCH,
            &self.vouch_nonce,
            &vouch_plain,
        ));
        self.boxed = SalsaBox::new(&server_transient.to_box(), &self.transient);
        let mut plain = self.pair.public.0.to_vec();
        plain.extend_from_slice(&vouch);
        plain.extend_from_slice(&self.metadata);
        let nonce = self.take_nonce();
        let sealed = protocol::seal(&self.boxed, prefix::INITIATE, &nonce, &plain);
        let mut out = Vec::new();
        protocol::put_frame(
            &mut out,
            protocol::FLAG_COMMAND,
            &[protocol::INITIATE, cookie, &nonce, &sealed],
        );
        self.welcomed = true;
        Ok(out)
    }

    fn open_ready(&mut self, body: &[u8]) -> Result<Event, ClientRefusal> {
        if !body.starts_with(protocol::READY) {
            return Err(ClientRefusal::Malformed(
                "command other than READY after INITIATE",
            ));
        }
        let (nonce, sealed) = split_nonce(body, protocol::READY.len())?;
        let plain = protocol::open(&self.boxed, prefix::READY, nonce, sealed)
            .ok_or(ClientRefusal::ReadyBox)?;
        self.check_nonce(nonce)?;
        let props = protocol::properties(&plain)
            .ok_or(ClientRefusal::Malformed("READY metadata malformed"))?;
        self.ready = true;
        Ok(Event::Ready(props))
    }

    fn open_message(&mut self, body: &[u8]) -> Result<Event, ClientRefusal> {
        if !body.starts_with(protocol::MESSAGE) {
            return Err(ClientRefusal::Malformed(
                "frame other than MESSAGE after READY",
            ));
        }
        if body.len() < protocol::MESSAGE_OVERHEAD {
            return Err(ClientRefusal::Malformed("MESSAGE too short"));
        }
        let (nonce, sealed) = split_nonce(body, protocol::MESSAGE.len())?;
        let plain = protocol::open(&self.boxed, prefix::MESSAGE_S, nonce, sealed)
            .filter(|p| !p.is_empty())
            .ok_or(ClientRefusal::MessageBox)?;
        // Counted only once the box proved it authentic (a forged nonce cannot move it).
        self.check_nonce(nonce)?;
        Ok(Event::Frame {
            body: plain[1..].to_vec(),
            more: plain[0] & protocol::MSG_MORE != 0,
            command: plain[0] & protocol::MSG_COMMAND != 0,
        })
    }

    /// One message (its frames) as MESSAGE commands, with the next nonces.
    pub fn message(&mut self, frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let more = i + 1 < frames.len();
            out.extend_from_slice(&self.frame(frame, more, false));
        }
        out
    }

    /// One frame (of a message, or a ZMTP command) as a MESSAGE command with the next nonce.
    pub fn frame(&mut self, body: &[u8], more: bool, command: bool) -> Vec<u8> {
        let nonce = self.take_nonce();
        let mut flags = if more { protocol::MSG_MORE } else { 0 };
        if command {
            flags |= protocol::MSG_COMMAND;
        }
        self.sealed_frame(body, flags, nonce)
    }

    /// One MESSAGE frame with the given short nonce (tests replay and reorder with it).
    pub fn message_with_nonce(&self, body: &[u8], more: bool, nonce: [u8; 8]) -> Vec<u8> {
        self.sealed_frame(body, if more { protocol::MSG_MORE } else { 0 }, nonce)
    }

    fn sealed_frame(&self, body: &[u8], flags: u8, nonce: [u8; 8]) -> Vec<u8> {
        let mut plain = Vec::with_capacity(1 + body.len());
        plain.push(flags);
        plain.extend_from_slice(body);
        let sealed = protocol::seal(&self.boxed, prefix::MESSAGE_C, &nonce, &plain);
        let mut out = Vec::with_capacity(sealed.len() + 32);
        protocol::put_frame(&mut out, 0, &[protocol::MESSAGE, &nonce, &sealed]);
        out
    }

    fn take_nonce(&mut self) -> [u8; 8] {
        let n = self.next_nonce;
        self.next_nonce += 1;
        n.to_be_bytes()
    }

    fn check_nonce(&mut self, nonce: &[u8]) -> Result<(), ClientRefusal> {
        let got = u64::from_be_bytes(nonce.try_into().unwrap_or([0; 8]));
        if got <= self.last_peer_nonce {
            return Err(ClientRefusal::Replay {
                got,
                last: self.last_peer_nonce,
            });
        }
        self.last_peer_nonce = got;
        Ok(())
    }
}

/// The 8-byte short nonce at `at` and the box after it.
fn split_nonce(body: &[u8], at: usize) -> Result<(&[u8], &[u8]), ClientRefusal> {
    let nonce = body
        .get(at..at + protocol::SHORT_NONCE)
        .ok_or(ClientRefusal::Malformed("command too short"))?;
    Ok((nonce, &body[at + protocol::SHORT_NONCE..]))
}

/// Where the local zeromq socket's side of the NULL handshake is.
enum Local {
    /// Waiting for zeromq's greeting.
    Greeting,
    /// Waiting for zeromq's READY (its Socket-Type and Identity go into INITIATE).
    Ready,
    /// READY read: frames follow.
    Frames,
}

/// The client side of one relayed connection: speaks NULL to the local zeromq socket on the
/// server's behalf and CURVE to the server. Feed it with [`Self::feed_local`] and
/// [`Self::feed_remote`]; send what [`Self::take_to_local`] and [`Self::take_to_remote`]
/// give. The HELLO is queued once zeromq's READY told us what to announce in INITIATE
/// ([`Self::wants_remote`]); READY goes to zeromq, with the server's Socket-Type, only once the
/// server's READY opened, so zeromq's `connect()` returns only on a real CURVE session.
pub struct Relay {
    pair: KeyPair,
    server: PublicKey,
    limit: u64,
    random: Option<Randomness>,
    local: Local,
    local_in: Vec<u8>,
    to_local: Vec<u8>,
    to_remote: Vec<u8>,
    /// Limits on the plain stream zeromq gets, as the guard applies them to servers.
    checker: Checker,
    client: Option<Client>,
    /// Server bytes that came before zeromq's READY (the server greets at once).
    early_remote: Vec<u8>,
    ready: bool,
}

impl Relay {
    /// A relay to the server whose public key is `server`, as `pair`, refusing messages over
    /// `max_msg_bytes`. Our NULL greeting for zeromq is queued at once.
    pub fn new(pair: KeyPair, server: PublicKey, max_msg_bytes: u64) -> Self {
        Self::with_randomness(pair, server, max_msg_bytes, Randomness::fresh())
    }

    /// As [`Self::new`], with the handshake's random values given (transcript tests).
    pub fn with_randomness(
        pair: KeyPair,
        server: PublicKey,
        max_msg_bytes: u64,
        random: Randomness,
    ) -> Self {
        let mut relay = Self {
            pair,
            server,
            limit: max_msg_bytes,
            random: Some(random),
            local: Local::Greeting,
            local_in: Vec::new(),
            to_local: Vec::new(),
            to_remote: Vec::new(),
            checker: Checker::new(max_msg_bytes),
            client: None,
            early_remote: Vec::new(),
            ready: false,
        };
        // Our own greeting is well formed: the checker accepts it.
        let _ = relay.push_local(&protocol::greeting(b"NULL", false));
        relay
    }

    /// True once the HELLO is queued: the shell should have the server connection by now.
    pub fn wants_remote(&self) -> bool {
        self.client.is_some()
    }

    /// True once the server's READY opened (and ours went to zeromq).
    pub fn handshake_done(&self) -> bool {
        self.ready
    }

    /// What a server closing the connection now most likely means, for the `E:` line.
    pub fn close_reason(&self) -> &'static str {
        match &self.client {
            None => "the server closed the connection before our HELLO",
            Some(c) if !c.welcomed => {
                "the server closed the connection after our HELLO without a WELCOME \
                 (it cannot open our HELLO: it has another key than the one we expect)"
            }
            Some(c) if !c.ready => {
                "the server closed the connection after our INITIATE without a READY \
                 (our --curve-key is not admitted there?)"
            }
            Some(_) => "the server closed the connection",
        }
    }

    /// Bytes to write to the local zeromq socket (taken).
    pub fn take_to_local(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.to_local)
    }

    /// Bytes to write to the server (taken).
    pub fn take_to_remote(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.to_remote)
    }

    /// Handles bytes from the server. After an `Err` the connection must be closed.
    pub fn feed_remote(&mut self, bytes: &[u8]) -> Result<(), ClientRefusal> {
        let Some(client) = self.client.as_mut() else {
            // A server greets as soon as TCP is up; hold that (at most a greeting and one
            // command) until zeromq's READY lets us say HELLO.
            if (self.early_remote.len() + bytes.len()) as u64
                > GREETING_LEN as u64 + MAX_COMMAND_BYTES
            {
                return Err(ClientRefusal::Malformed("flood of bytes before our HELLO"));
            }
            self.early_remote.extend_from_slice(bytes);
            return Ok(());
        };
        let (out, events) = client.handle(bytes)?;
        self.to_remote.extend_from_slice(&out);
        for event in events {
            match event {
                Event::Ready(props) => {
                    let socket_type = protocol::property(&props, "Socket-Type")
                        .ok_or(ClientRefusal::Malformed("READY without Socket-Type"))?;
                    let mut ready = Vec::new();
                    protocol::put_property(&mut ready, "Socket-Type", socket_type);
                    self.push_local_frame(protocol::FLAG_COMMAND, &[protocol::READY, &ready])?;
                    self.ready = true;
                }
                Event::Frame {
                    body,
                    more,
                    command,
                } => {
                    let mut flags = if more { protocol::FLAG_MORE } else { 0 };
                    if command {
                        flags |= protocol::FLAG_COMMAND;
                    }
                    self.push_local_frame(flags, &[&body])?;
                }
                Event::Error(reason) => {
                    return Err(ClientRefusal::Error(
                        String::from_utf8_lossy(&reason).into_owned(),
                    ))
                }
            }
        }
        if self.ready && !self.local_in.is_empty() {
            self.feed_local(&[])?;
        }
        Ok(())
    }

    /// Handles bytes from the local zeromq socket: its greeting and READY are ours to answer;
    /// each frame after them goes to the server in a MESSAGE (once the session is up).
    pub fn feed_local(&mut self, bytes: &[u8]) -> Result<(), ClientRefusal> {
        self.local_in.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            match self.local_step(at) {
                Ok(Some(used)) => at += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.local_in.drain(..at);
        if self.local_in.is_empty() && self.local_in.capacity() > 8 * 1024 {
            self.local_in.shrink_to(8 * 1024);
        }
        result
    }

    fn local_step(&mut self, at: usize) -> Result<Option<usize>, ClientRefusal> {
        let buf = &self.local_in[at..];
        match self.local {
            Local::Greeting => {
                if buf.len() < GREETING_LEN {
                    return Ok(None);
                }
                if buf[0] != 0xFF || buf[9] != 0x7F || !buf[12..32].starts_with(b"NULL\0") {
                    return Err(ClientRefusal::Local("greeting is not ZMTP 3 NULL"));
                }
                self.local = Local::Ready;
                Ok(Some(GREETING_LEN))
            }
            Local::Ready => {
                let Some((flags, len, header)) = protocol::frame_header(buf) else {
                    return Ok(None);
                };
                if len > MAX_COMMAND_BYTES || flags & protocol::FLAG_COMMAND == 0 {
                    return Err(ClientRefusal::Local("first frame is not READY"));
                }
                let end = header + len as usize;
                if buf.len() < end {
                    return Ok(None);
                }
                let props = buf[header..end]
                    .strip_prefix(protocol::READY)
                    .and_then(protocol::properties)
                    .ok_or(ClientRefusal::Local("READY malformed"))?;
                // INITIATE announces what zeromq announced: its type and routing identity.
                let mut metadata = Vec::new();
                for name in ["Socket-Type", "Identity"] {
                    if let Some(value) = protocol::property(&props, name) {
                        protocol::put_property(&mut metadata, name, value);
                    }
                }
                let random = self.random.take().unwrap_or_else(Randomness::fresh);
                let mut client =
                    Client::with_metadata(self.pair.clone(), self.server, metadata, random)
                        .with_limit(self.limit);
                self.to_remote.extend_from_slice(&client.start());
                self.client = Some(client);
                self.local = Local::Frames;
                let early = std::mem::take(&mut self.early_remote);
                if !early.is_empty() {
                    self.feed_remote(&early)?;
                }
                Ok(Some(end))
            }
            Local::Frames => {
                // Frames wait for the session (zeromq sends none before our READY anyway).
                let Some(client) = self.client.as_mut().filter(|_| self.ready) else {
                    return Ok(None);
                };
                let Some((flags, len, header)) = protocol::frame_header(buf) else {
                    return Ok(None);
                };
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| l.checked_add(header))
                    .ok_or(ClientRefusal::Local("frame length overflows"))?;
                if buf.len() < end {
                    return Ok(None);
                }
                let more = flags & protocol::FLAG_MORE != 0;
                let command = flags & protocol::FLAG_COMMAND != 0;
                let sealed = client.frame(&buf[header..end], more, command);
                self.to_remote.extend_from_slice(&sealed);
                Ok(Some(end))
            }
        }
    }

    fn push_local_frame(&mut self, flags: u8, body: &[&[u8]]) -> Result<(), ClientRefusal> {
        let mut frame = Vec::new();
        protocol::put_frame(&mut frame, flags, body);
        self.push_local(&frame)
    }

    /// Queues bytes for zeromq through the checker: the server's decrypted frames meet the
    /// same size limits a guarded server's peers meet (zeromq trusts announced lengths).
    fn push_local(&mut self, bytes: &[u8]) -> Result<(), ClientRefusal> {
        self.checker.feed(bytes)?;
        self.to_local.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::server::{AllowFn, Connection, Refusal, ServerKeys};
    use super::*;
    use crate::rng::Rng;
    use std::sync::Arc;
    use std::time::Instant;

    const LIMIT: u64 = 4096;

    /// What a local zeromq socket sends first: greeting, READY with its type and identity.
    fn zeromq_hello(socket_type: &[u8], identity: Option<&[u8]>) -> Vec<u8> {
        let mut out = protocol::greeting(b"NULL", false).to_vec();
        let mut props = Vec::new();
        protocol::put_property(&mut props, "Socket-Type", socket_type);
        if let Some(id) = identity {
            protocol::put_property(&mut props, "Identity", id);
        }
        protocol::put_frame(&mut out, protocol::FLAG_COMMAND, &[protocol::READY, &props]);
        out
    }

    /// Our relay (with zeromq's bytes on one side) against the guard's pure server (with
    /// its zeromq's bytes on the other).
    struct Wire {
        relay: Relay,
        server: Connection,
        /// What the local zeromq socket received, and what the server's zeromq received.
        local: Vec<u8>,
        behind_server: Vec<u8>,
        now: Instant,
    }

    impl Wire {
        fn new(server_key: PublicKey, keys: Arc<ServerKeys>) -> Self {
            Self {
                relay: Relay::new(KeyPair::generate(), server_key, LIMIT),
                server: Connection::new(keys, LIMIT),
                local: Vec::new(),
                behind_server: Vec::new(),
                now: Instant::now(),
            }
        }

        /// Moves bytes between the two cores, `chunk` at a time, until neither has any;
        /// `tamper` may change what the server sends before the relay sees it.
        fn run(
            &mut self,
            chunk: usize,
            tamper: &mut dyn FnMut(&mut Vec<u8>),
        ) -> Result<(), ClientRefusal> {
            loop {
                self.local.extend(self.relay.take_to_local());
                self.behind_server.extend(self.server.take_to_server());
                let up = self.relay.take_to_remote();
                let mut down = self.server.take_to_peer();
                if up.is_empty() && down.is_empty() {
                    return Ok(());
                }
                for piece in up.chunks(chunk) {
                    self.server
                        .feed_peer(piece, self.now)
                        .map_err(|r| ClientRefusal::Local(leak(r)))?;
                }
                tamper(&mut down);
                for piece in down.chunks(chunk) {
                    self.relay.feed_remote(piece)?;
                }
            }
        }
    }

    /// A server refusal, as text the test can carry in a `ClientRefusal::Local`.
    fn leak(r: Refusal) -> &'static str {
        Box::leak(r.to_string().into_boxed_str())
    }

    fn server(allow: AllowFn) -> (Arc<ServerKeys>, PublicKey) {
        let keys = Arc::new(ServerKeys::new(KeyPair::generate(), allow));
        let public = keys.public();
        (keys, public)
    }

    fn null_ready(socket_type: &[u8]) -> Vec<u8> {
        let mut props = Vec::new();
        protocol::put_property(&mut props, "Socket-Type", socket_type);
        let mut out = Vec::new();
        protocol::put_frame(&mut out, protocol::FLAG_COMMAND, &[protocol::READY, &props]);
        out
    }

    #[test]
    fn zeromq_behind_our_relay_talks_to_zeromq_behind_the_guard() {
        for chunk in [1, 5, 300, 100_000] {
            let (keys, public) = server(Box::new(|_| true));
            let mut w = Wire::new(public, keys);
            // The server side's zeromq (a ROUTER) greets the guard first.
            let mut router = protocol::greeting(b"NULL", false).to_vec();
            router.extend(null_ready(b"ROUTER"));
            w.server.feed_server(&router).unwrap();
            // Our zeromq (a DEALER with an identity) greets the relay: HELLO goes out.
            w.relay
                .feed_local(&zeromq_hello(b"DEALER", Some(b"worker-1")))
                .unwrap();
            assert!(w.relay.wants_remote() && !w.relay.handshake_done());
            w.run(chunk, &mut |_| {}).unwrap();
            assert!(w.relay.handshake_done() && w.server.handshake_done());
            // Each zeromq got a greeting and READY naming the far socket (and its identity).
            let mut expected = protocol::greeting(b"NULL", false).to_vec();
            expected.extend(null_ready(b"ROUTER"));
            assert_eq!(std::mem::take(&mut w.local), expected);
            assert_eq!(
                std::mem::take(&mut w.behind_server),
                zeromq_hello(b"DEALER", Some(b"worker-1"))
            );
            // A two-frame message each way, fed in pieces.
            let mut request = Vec::new();
            protocol::put_frame(&mut request, protocol::FLAG_MORE, &[b""]);
            protocol::put_frame(&mut request, 0, &[&[7u8; 600][..]]);
            for piece in request.chunks(chunk) {
                w.relay.feed_local(piece).unwrap();
            }
            w.run(chunk, &mut |_| {}).unwrap();
            assert_eq!(std::mem::take(&mut w.behind_server), request);
            let mut reply = Vec::new();
            protocol::put_frame(&mut reply, protocol::FLAG_MORE, &[b""]);
            protocol::put_frame(&mut reply, 0, &[b"World"]);
            w.server.feed_server(&reply).unwrap();
            w.run(chunk, &mut |_| {}).unwrap();
            assert_eq!(w.local, reply);
        }
    }

    #[test]
    fn a_server_greeting_before_zeromqs_ready_waits_for_the_hello() {
        let (keys, public) = server(Box::new(|_| true));
        let mut w = Wire::new(public, keys);
        let mut rep = protocol::greeting(b"NULL", false).to_vec();
        rep.extend(null_ready(b"REP"));
        w.server.feed_server(&rep).unwrap();
        // The server's CURVE greeting is already there when TCP comes up.
        let greeting = w.server.take_to_peer();
        w.relay.feed_remote(&greeting).unwrap();
        assert!(!w.relay.wants_remote());
        w.relay.feed_local(&zeromq_hello(b"REQ", None)).unwrap();
        w.run(7, &mut |_| {}).unwrap();
        assert!(w.relay.handshake_done());
        // A flood before zeromq's READY is refused rather than held.
        let mut w = Wire::new(
            public,
            Arc::new(ServerKeys::new(KeyPair::generate(), Box::new(|_| true))),
        );
        let flood = vec![0u8; 70 * 1024];
        assert!(w.relay.feed_remote(&flood).is_err());
    }

    /// A relay whose zeromq greeted and whose HELLO is out, against a server with `keys`.
    fn started(server_key: PublicKey, keys: Arc<ServerKeys>) -> Wire {
        let mut w = Wire::new(server_key, keys);
        let mut rep = protocol::greeting(b"NULL", false).to_vec();
        rep.extend(null_ready(b"REP"));
        w.server.feed_server(&rep).unwrap();
        w.relay.feed_local(&zeromq_hello(b"REQ", None)).unwrap();
        w
    }

    /// Asserts zeromq got our greeting and nothing else: its `connect()` never completes.
    fn assert_no_ready_reached_zeromq(w: &mut Wire) {
        w.local.extend(w.relay.take_to_local());
        assert_eq!(w.local, protocol::greeting(b"NULL", false).to_vec());
        assert!(!w.relay.handshake_done());
    }

    #[test]
    fn a_server_with_another_key_is_refused_at_welcome_and_zeromq_gets_no_ready() {
        let (keys, _) = server(Box::new(|_| true));
        // The server cannot open our HELLO (it is for another key): it closes, no WELCOME.
        let mut w = started(KeyPair::generate().public, Arc::clone(&keys));
        let refused = w.run(64, &mut |_| {}).expect_err("HELLO accepted");
        assert!(matches!(refused, ClientRefusal::Local(r) if r.contains("HELLO does not open")));
        // A server that answers with a WELCOME sealed under another key (an impostor that
        // knows our HELLO's format): WELCOME does not open.
        let (impostor, impostor_public) = server(Box::new(|_| true));
        let mut w = started(impostor_public, impostor);
        let mut wrong_key_welcome = |down: &mut Vec<u8>| {
            if let Some(at) = find(down, protocol::WELCOME) {
                down[at + 20] ^= 0x01;
            }
        };
        let refused = w.run(64, &mut wrong_key_welcome).expect_err("tampered");
        assert_eq!(refused, ClientRefusal::WrongServerKey);
        assert!(refused.to_string().contains("WELCOME does not open"));
        assert_no_ready_reached_zeromq(&mut w);
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn truncated_or_tampered_welcome_and_ready_are_refused() {
        type Tamper = fn(&mut Vec<u8>);
        let cases: [(Tamper, ClientRefusal); 3] = [
            // WELCOME's frame one byte short (length byte and body cut together).
            (
                |down| {
                    if let Some(at) = find(down, protocol::WELCOME) {
                        // A short frame: the length byte sits just before the body.
                        down[at - 1] -= 1;
                        down.remove(at + 30);
                    }
                },
                ClientRefusal::Malformed("WELCOME of the wrong length"),
            ),
            (
                |down| {
                    if let Some(at) = find(down, protocol::READY) {
                        let last = down.len() - 1;
                        assert!(last > at);
                        down[last] ^= 0x80;
                    }
                },
                ClientRefusal::ReadyBox,
            ),
            // A READY whose short nonce is 0: never above the last (a replay).
            (
                |down| {
                    if let Some(at) = find(down, protocol::READY) {
                        let nonce = at + protocol::READY.len();
                        down[nonce..nonce + 8].copy_from_slice(&[0; 8]);
                    }
                },
                ClientRefusal::ReadyBox,
            ),
        ];
        for (tamper, expected) in cases {
            let (keys, public) = server(Box::new(|_| true));
            let mut w = started(public, keys);
            let mut tamper = tamper;
            let refused = w.run(1000, &mut tamper).expect_err("tampered accepted");
            assert_eq!(refused, expected);
            assert_no_ready_reached_zeromq(&mut w);
        }
    }

    #[test]
    fn an_error_from_the_server_is_a_refusal_with_its_reason() {
        let (keys, public) = server(Box::new(|_| false));
        let mut w = started(public, keys);
        let refused = w.run(1000, &mut |_| {}).expect_err("not admitted");
        // The guard refuses INITIATE: the ERROR comes before its close.
        assert!(
            matches!(&refused, ClientRefusal::Error(r) if r == "not authorised")
                || matches!(&refused, ClientRefusal::Local(r) if r.contains("not allowed")),
            "{refused:?}"
        );
        // Any server's ERROR in place of WELCOME.
        let (keys, public) = server(Box::new(|_| true));
        let mut w = started(public, keys);
        let mut bytes = protocol::greeting(b"CURVE", true).to_vec();
        protocol::put_frame(
            &mut bytes,
            protocol::FLAG_COMMAND,
            &[protocol::ERROR, &[7], b"go away"],
        );
        assert_eq!(
            w.relay.feed_remote(&bytes),
            Err(ClientRefusal::Error("go away".into()))
        );
    }

    #[test]
    fn oversized_frames_and_other_mechanisms_are_refused_before_buffering() {
        let (keys, public) = server(Box::new(|_| true));
        let mut w = started(public, keys);
        let mut bytes = protocol::greeting(b"CURVE", true).to_vec();
        bytes.push(protocol::FLAG_COMMAND | protocol::FLAG_LONG);
        bytes.extend((1u64 << 62).to_be_bytes());
        assert_eq!(
            w.relay.feed_remote(&bytes),
            Err(ClientRefusal::TooLarge(1 << 62))
        );
        let (keys, public) = server(Box::new(|_| true));
        let mut w = started(public, keys);
        assert_eq!(
            w.relay.feed_remote(&protocol::greeting(b"NULL", true)),
            Err(ClientRefusal::NotCurve("NULL".into()))
        );
        let (keys, public) = server(Box::new(|_| true));
        let mut w = started(public, keys);
        assert_eq!(
            w.relay.feed_remote(b"GET / HTTP/1.1\r\n"),
            Err(ClientRefusal::Greeting("not a ZMTP signature"))
        );
    }

    #[test]
    fn a_message_over_the_limit_from_the_server_is_refused() {
        let (keys, public) = server(Box::new(|_| true));
        let mut w = started(public, keys);
        w.run(1000, &mut |_| {}).unwrap();
        let mut reply = Vec::new();
        protocol::put_frame(&mut reply, 0, &[&vec![1u8; LIMIT as usize + 1]]);
        w.server.feed_server(&reply).unwrap();
        let refused = w.run(1000, &mut |_| {}).expect_err("oversized accepted");
        assert!(matches!(refused, ClientRefusal::TooLarge(_)), "{refused:?}");
    }

    #[test]
    fn random_input_from_the_server_never_panics() {
        let mut rng = Rng::seeded(21);
        let (keys, public) = server(Box::new(|_| true));
        for _ in 0..300 {
            let mut w = started(public, Arc::clone(&keys));
            let mut bytes = protocol::greeting(b"CURVE", true).to_vec();
            let n = rng.below(400) as usize;
            bytes.extend((0..n).map(|_| rng.below(256) as u8));
            let _ = w.relay.feed_remote(&bytes);
        }
    }
}
