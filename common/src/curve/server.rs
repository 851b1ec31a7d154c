//! The pure CURVE server of one connection: fed the remote peer's bytes and the zeromq
//! socket's bytes (the private NULL hop), it emits the bytes for each, or a [`Refusal`].
//!
//! ```text
//! peer ⇄ [greeting CURVE, HELLO/WELCOME/INITIATE/READY, MESSAGE…] ⇄ Connection
//!      ⇄ [greeting NULL, READY (the peer's Socket-Type, Identity), plain frames…] ⇄ zeromq
//! ```
//!
//! It reads no clock (`now` is passed in, for the cookie key's rotation) and owns no socket.
//! Random bytes (transient keys, long nonces, cookie keys) come from the OS source. Every
//! plain frame it hands to zeromq also goes through the guard's [`Checker`], so the guard's
//! size limits apply to the decrypted stream exactly as to a NULL one.

use super::keys::{KeyPair, PublicKey};
use super::protocol::{self, prefix};
use crate::guard::zmtp::{Checker, Violation, GREETING_LEN, MAX_COMMAND_BYTES};
use crypto_box::SalsaBox;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long a cookie key seals cookies; a cookie opens with this key or the one before it.
pub const COOKIE_KEY_LIFETIME: Duration = Duration::from_secs(60);

/// Why a CURVE connection was refused (the guard logs it after `closed <peer>: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A framing or size rule of the plain guard (greeting, flags, limits).
    Zmtp(Violation),
    /// The peer greeted with another mechanism.
    NotCurve(String),
    /// The peer's greeting claims to be a server.
    PeerIsServer,
    /// A command of the wrong name, length or place.
    Malformed(&'static str),
    /// HELLO's signature box did not open: the client has another server key.
    HelloBox,
    /// INITIATE's cookie did not open (expired cookie key, or forged) or names another C'.
    Cookie,
    /// INITIATE's box did not open.
    InitiateBox,
    /// The vouch did not open or does not vouch for this connection's keys.
    Vouch,
    /// The client's long-term key is not in `--curve-allow`.
    NotAllowed(PublicKey),
    /// A short nonce not above the last one (a replay, or reordering).
    Replay {
        /// The nonce received.
        got: u64,
        /// The last nonce accepted.
        last: u64,
    },
    /// A MESSAGE box did not open (tampered, or another key).
    MessageBox,
    /// The zeromq socket behind the guard spoke something unexpected (a bug, not the peer).
    Server(&'static str),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zmtp(v) => v.fmt(f),
            Self::NotCurve(m) => write!(
                f,
                "bad greeting: mechanism {m:?} (--curve-secret needs CURVE)"
            ),
            Self::PeerIsServer => write!(f, "bad greeting: a CURVE server greeting from a client"),
            Self::Malformed(what) => write!(f, "CURVE {what}"),
            Self::HelloBox => write!(
                f,
                "CURVE HELLO does not open (client has another server key?)"
            ),
            Self::Cookie => write!(f, "CURVE INITIATE cookie does not open (expired or forged)"),
            Self::InitiateBox => write!(f, "CURVE INITIATE box does not open"),
            Self::Vouch => write!(f, "CURVE INITIATE vouch does not open or does not match"),
            Self::NotAllowed(key) => write!(f, "CURVE client key {key} not allowed"),
            Self::Replay { got, last } => {
                write!(
                    f,
                    "CURVE nonce {got} not above {last} (replayed or reordered)"
                )
            }
            Self::MessageBox => write!(f, "CURVE MESSAGE does not open (tampered?)"),
            Self::Server(what) => write!(f, "zeromq behind the guard: {what}"),
        }
    }
}

impl From<Violation> for Refusal {
    fn from(v: Violation) -> Self {
        Self::Zmtp(v)
    }
}

/// The cookie keys of one guard: a fresh one every [`COOKIE_KEY_LIFETIME`], the previous one
/// still opening cookies, both zeroised when replaced.
struct CookieKeys {
    current: Zeroizing<[u8; 32]>,
    since: Option<Instant>,
    previous: Option<Zeroizing<[u8; 32]>>,
}

impl CookieKeys {
    fn rotate(&mut self, now: Instant) {
        let since = *self.since.get_or_insert(now);
        let age = now.saturating_duration_since(since);
        if age >= COOKIE_KEY_LIFETIME * 2 {
            self.previous = None;
        }
        if age >= COOKIE_KEY_LIFETIME {
            let old = std::mem::replace(&mut self.current, Zeroizing::new(protocol::random()));
            if age < COOKIE_KEY_LIFETIME * 2 {
                self.previous = Some(old);
            }
            self.since = Some(now);
        }
    }
}

/// Decides whether a client's long-term key is admitted (`--curve-allow`).
pub type AllowFn = Box<dyn Fn(&PublicKey) -> bool + Send + Sync>;

/// What every connection of one CURVE guard shares: the long-term key pair, the cookie keys,
/// the client allow-list.
pub struct ServerKeys {
    pair: KeyPair,
    cookies: Mutex<CookieKeys>,
    allow: AllowFn,
}

impl fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKeys({})", self.pair.public)
    }
}

impl ServerKeys {
    /// Keys for a server whose long-term pair is `pair`, admitting the clients `allow` admits.
    pub fn new(pair: KeyPair, allow: AllowFn) -> Self {
        Self {
            pair,
            cookies: Mutex::new(CookieKeys {
                current: Zeroizing::new(protocol::random()),
                since: None,
                previous: None,
            }),
            allow,
        }
    }

    /// Keys whose first cookie key is `key` (the transcript test replays a recorded session;
    /// servers keep the random one [`Self::new`] draws).
    pub fn with_cookie_key(self, key: [u8; 32]) -> Self {
        self.cookies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current = Zeroizing::new(key);
        self
    }

    /// The server's public key (what clients must be given).
    pub fn public(&self) -> PublicKey {
        self.pair.public
    }

    fn seal_cookie(&self, now: Instant, tail: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut keys = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
        keys.rotate(now);
        protocol::cookie_seal(&keys.current, tail, plain)
    }

    fn open_cookie(&self, now: Instant, tail: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let mut keys = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
        keys.rotate(now);
        protocol::cookie_open(&keys.current, tail, sealed).or_else(|| {
            keys.previous
                .as_ref()
                .and_then(|k| protocol::cookie_open(k, tail, sealed))
        })
    }
}

/// The random values of one server handshake: the transient key S', the cookie's and the
/// WELCOME's long nonces. From the OS source in use; fixed only by the transcript test.
pub struct ServerRandomness {
    /// The server's transient secret key s' (zeroised on drop).
    pub transient: Zeroizing<[u8; 32]>,
    /// The cookie box's 16-byte nonce tail.
    pub cookie_nonce: [u8; 16],
    /// The WELCOME box's 16-byte nonce tail.
    pub welcome_nonce: [u8; 16],
}

impl ServerRandomness {
    /// Fresh values from the OS random source.
    pub fn fresh() -> Self {
        Self {
            transient: Zeroizing::new(protocol::random()),
            cookie_nonce: protocol::random(),
            welcome_nonce: protocol::random(),
        }
    }
}

/// Where the peer's side of the handshake is.
#[derive(Debug)]
enum Phase {
    Greeting,
    Hello,
    Initiate {
        client_transient: PublicKey,
        server_transient: crypto_box::SecretKey,
    },
    /// INITIATE accepted; READY waits for zeromq's Socket-Type.
    AwaitServerReady,
    /// READY sent: MESSAGEs both ways.
    Ready,
}

/// One CURVE connection (server side). Feed it with [`Self::feed_peer`] and
/// [`Self::feed_server`]; send what [`Self::take_to_peer`] and [`Self::take_to_server`] give.
pub struct Connection {
    keys: std::sync::Arc<ServerKeys>,
    limit: u64,
    phase: Phase,
    peer_in: Vec<u8>,
    server_in: Vec<u8>,
    to_peer: Vec<u8>,
    to_server: Vec<u8>,
    checker: Checker,
    /// zeromq's greeting consumed, then its READY's Socket-Type.
    server_greeted: bool,
    server_socket_type: Option<Vec<u8>>,
    /// The session box (C' ⇄ S'), once INITIATE opened.
    session: Option<SalsaBox>,
    client: Option<PublicKey>,
    last_peer_nonce: u64,
    next_nonce: u64,
    /// Bytes held back on one side until READY went out (then handled at once).
    peer_waiting: bool,
    server_waiting: bool,
    /// The last `now` the peer side was handled at (for frames handled late).
    last_now: Option<Instant>,
    /// Fixed random values for the handshake (tests); drawn fresh at HELLO otherwise.
    random: Option<ServerRandomness>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection({:?}, client {:?})", self.phase, self.client)
    }
}

impl Connection {
    /// A fresh connection refusing frames and messages over `max_msg_bytes`; our CURVE
    /// greeting and the NULL greeting for zeromq are queued at once.
    pub fn new(keys: std::sync::Arc<ServerKeys>, max_msg_bytes: u64) -> Self {
        let mut conn = Self {
            keys,
            limit: max_msg_bytes,
            phase: Phase::Greeting,
            peer_in: Vec::new(),
            server_in: Vec::new(),
            to_peer: protocol::greeting(b"CURVE", true).to_vec(),
            to_server: Vec::new(),
            checker: Checker::new(max_msg_bytes),
            server_greeted: false,
            server_socket_type: None,
            session: None,
            client: None,
            last_peer_nonce: 0,
            next_nonce: 1,
            peer_waiting: false,
            server_waiting: false,
            last_now: None,
            random: None,
        };
        // Our own NULL greeting passes the checker (it cannot fail: it is well formed).
        let _ = conn.push_server(&protocol::greeting(b"NULL", false));
        conn
    }

    /// The same connection with the handshake's random values given (the transcript test).
    pub fn with_randomness(mut self, random: ServerRandomness) -> Self {
        self.random = Some(random);
        self
    }

    /// True once INITIATE was accepted and READY sent: the handshake deadline stops applying.
    pub fn handshake_done(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// The client's authenticated long-term key, once INITIATE opened.
    pub fn client_key(&self) -> Option<PublicKey> {
        self.client
    }

    /// Bytes to write to the peer (taken: the next call returns only newer ones).
    pub fn take_to_peer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.to_peer)
    }

    /// Bytes to write to the zeromq socket.
    pub fn take_to_server(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.to_server)
    }

    /// Handles bytes from the peer. After an `Err` the connection must be closed, once what
    /// [`Self::take_to_peer`] holds (an ERROR command, when one is due) was sent.
    pub fn feed_peer(&mut self, bytes: &[u8], now: Instant) -> Result<(), Refusal> {
        self.last_now = Some(now);
        self.peer_in.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            match self.peer_step(at, now) {
                Ok(Some(used)) => at += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.peer_in.drain(..at);
        shrink_if_idle(&mut self.peer_in);
        result?;
        if self.server_waiting && matches!(self.phase, Phase::Ready) {
            self.server_waiting = false;
            self.feed_server(&[])?;
        }
        Ok(())
    }

    /// One greeting or frame from `peer_in[at..]`: the bytes used, or `None` if incomplete.
    fn peer_step(&mut self, at: usize, now: Instant) -> Result<Option<usize>, Refusal> {
        let buf = &self.peer_in[at..];
        match self.phase {
            Phase::Greeting => return self.peer_greeting(at),
            Phase::AwaitServerReady if !buf.is_empty() => {
                // Frames wait until READY went out (zeromq's READY is still on its way), but
                // no more than one largest frame of them: a libzmq client sends nothing here.
                if buf.len() as u64 > self.limit.saturating_add(MAX_COMMAND_BYTES) {
                    return Err(Refusal::Malformed("flood of bytes before READY"));
                }
                self.peer_waiting = true;
                return Ok(None);
            }
            _ => {}
        }
        let Some((flags, len, header)) = protocol::frame_header(buf) else {
            return Ok(None);
        };
        if flags & !(protocol::FLAG_MORE | protocol::FLAG_LONG | protocol::FLAG_COMMAND) != 0 {
            return Err(Violation::ReservedFlags(flags).into());
        }
        let max = if matches!(self.phase, Phase::Ready) {
            self.limit.saturating_add(protocol::MESSAGE_OVERHEAD as u64)
        } else {
            MAX_COMMAND_BYTES
        };
        if len > max {
            return Err(if matches!(self.phase, Phase::Ready) {
                Violation::FrameTooLarge {
                    size: len,
                    limit: self.limit,
                }
            } else {
                Violation::CommandTooLarge(len)
            }
            .into());
        }
        if flags & protocol::FLAG_MORE != 0 {
            return Err(Refusal::Malformed(
                "frame with MORE set (CURVE sends one frame per box)",
            ));
        }
        let end = header + len as usize;
        if buf.len() < end {
            return Ok(None);
        }
        let body = buf[header..end].to_vec();
        self.peer_frame(flags, &body, now)?;
        Ok(Some(end))
    }

    fn peer_greeting(&mut self, at: usize) -> Result<Option<usize>, Refusal> {
        let buf = &self.peer_in[at..];
        // The signature and version are checked as they arrive, so garbage is refused early.
        if buf.first().is_some_and(|&b| b != 0xFF) || buf.get(9).is_some_and(|&b| b != 0x7F) {
            return Err(Violation::BadSignature.into());
        }
        if let Some(&major) = buf.get(10).filter(|&&b| b < 3) {
            return Err(Violation::BadVersion(major, 0).into());
        }
        if buf.len() < GREETING_LEN {
            return Ok(None);
        }
        let mechanism = &buf[12..32];
        let name_len = mechanism.iter().position(|&b| b == 0).unwrap_or(20);
        if &mechanism[..name_len] != b"CURVE" || mechanism[name_len..].iter().any(|&b| b != 0) {
            return Err(Refusal::NotCurve(
                String::from_utf8_lossy(&mechanism[..name_len]).into_owned(),
            ));
        }
        match buf[32] {
            0 => {}
            1 => return Err(Refusal::PeerIsServer),
            b => return Err(Violation::BadAsServer(b).into()),
        }
        self.phase = Phase::Hello;
        Ok(Some(GREETING_LEN))
    }

    fn peer_frame(&mut self, flags: u8, body: &[u8], now: Instant) -> Result<(), Refusal> {
        match std::mem::replace(&mut self.phase, Phase::AwaitServerReady) {
            Phase::Greeting => unreachable_phase(),
            Phase::Hello => {
                self.phase = Phase::Hello;
                if flags & protocol::FLAG_COMMAND == 0 {
                    return Err(Violation::MessageBeforeReady.into());
                }
                self.hello(body, now)
            }
            Phase::Initiate {
                client_transient,
                server_transient,
            } => {
                if flags & protocol::FLAG_COMMAND == 0 {
                    return Err(Violation::MessageBeforeReady.into());
                }
                self.initiate(body, now, client_transient, server_transient)
            }
            Phase::AwaitServerReady => Err(Refusal::Malformed("frame before READY")),
            Phase::Ready => {
                self.phase = Phase::Ready;
                self.message(body)
            }
        }
    }

    fn hello(&mut self, body: &[u8], now: Instant) -> Result<(), Refusal> {
        if !body.starts_with(protocol::HELLO) {
            return Err(Refusal::Malformed(
                "command other than HELLO after the greeting",
            ));
        }
        if body.len() != protocol::HELLO_LEN {
            return Err(Refusal::Malformed("HELLO of the wrong length"));
        }
        let at = protocol::HELLO.len();
        if body[at..at + 2] != [1, 0] {
            return Err(Refusal::Malformed("HELLO version is not 1.0"));
        }
        let at = at + 2 + 72;
        let client_transient = PublicKey(body[at..at + 32].try_into().unwrap_or([0; 32]));
        let nonce = &body[at + 32..at + 40];
        let signature = &body[at + 40..];
        self.check_nonce(nonce)?;
        let boxed = SalsaBox::new(&client_transient.to_box(), &self.keys.pair.secret.to_box());
        match protocol::open(&boxed, prefix::HELLO, nonce, signature) {
            Some(zeros) if zeros.iter().all(|&b| b == 0) && zeros.len() == 64 => {}
            _ => return Err(Refusal::HelloBox),
        }
        // WELCOME: a fresh transient pair, and a cookie only this server can open.
        let random = self.random.take().unwrap_or_else(ServerRandomness::fresh);
        let server_transient = crypto_box::SecretKey::from_bytes(*random.transient);
        let cookie_nonce = random.cookie_nonce;
        let mut cookie_plain = Zeroizing::new(Vec::with_capacity(64));
        cookie_plain.extend_from_slice(&client_transient.0);
        cookie_plain.extend_from_slice(&server_transient.to_bytes());
        let mut cookie = cookie_nonce.to_vec();
        cookie.extend_from_slice(&self.keys.seal_cookie(now, &cookie_nonce, &cookie_plain));
        let mut plain = server_transient.public_key().to_bytes().to_vec();
        plain.extend_from_slice(&cookie);
        let welcome_nonce = random.welcome_nonce;
        let sealed = protocol::seal(&boxed, prefix::WELCOME, &welcome_nonce, &plain);
        protocol::put_frame(
            &mut self.to_peer,
            protocol::FLAG_COMMAND,
            &[protocol::WELCOME, &welcome_nonce, &sealed],
        );
        self.phase = Phase::Initiate {
            client_transient,
            server_transient,
        };
        Ok(())
    }

    fn initiate(
        &mut self,
        body: &[u8],
        now: Instant,
        client_transient: PublicKey,
        server_transient: crypto_box::SecretKey,
    ) -> Result<(), Refusal> {
        if !body.starts_with(protocol::INITIATE) {
            return Err(Refusal::Malformed(
                "command other than INITIATE after WELCOME",
            ));
        }
        if body.len() < protocol::INITIATE_MIN {
            return Err(Refusal::Malformed("INITIATE too short"));
        }
        let mut at = protocol::INITIATE.len();
        let cookie = &body[at..at + protocol::COOKIE_LEN];
        at += protocol::COOKIE_LEN;
        let nonce = &body[at..at + protocol::SHORT_NONCE];
        at += protocol::SHORT_NONCE;
        let sealed = &body[at..];
        // The cookie proves this INITIATE answers our WELCOME: it holds C' and s'.
        let (cookie_nonce, cookie_box) = cookie.split_at(protocol::LONG_NONCE);
        let opened = Zeroizing::new(
            self.keys
                .open_cookie(now, cookie_nonce, cookie_box)
                .ok_or(Refusal::Cookie)?,
        );
        if opened[..32] != client_transient.0 || opened[32..64] != server_transient.to_bytes() {
            return Err(Refusal::Cookie);
        }
        self.check_nonce(nonce)?;
        let session = SalsaBox::new(&client_transient.to_box(), &server_transient);
        let plain = Zeroizing::new(
            protocol::open(&session, prefix::INITIATE, nonce, sealed)
                .ok_or(Refusal::InitiateBox)?,
        );
        let client = PublicKey(plain[..32].try_into().unwrap_or([0; 32]));
        let vouch = &plain[32..32 + protocol::VOUCH_LEN];
        let metadata = &plain[32 + protocol::VOUCH_LEN..];
        let (vouch_nonce, vouch_box) = vouch.split_at(protocol::LONG_NONCE);
        let vouch_key = SalsaBox::new(&client.to_box(), &server_transient);
        let vouched = protocol::open(&vouch_key, prefix::VOUCH, vouch_nonce, vouch_box)
            .ok_or(Refusal::Vouch)?;
        if vouched.len() != 64
            || vouched[..32] != client_transient.0
            || vouched[32..] != self.keys.pair.public.0
        {
            return Err(Refusal::Vouch);
        }
        if !(self.keys.allow)(&client) {
            protocol::put_frame(
                &mut self.to_peer,
                protocol::FLAG_COMMAND,
                &[protocol::ERROR, &[14], b"not authorised"],
            );
            return Err(Refusal::NotAllowed(client));
        }
        let props = protocol::properties(metadata)
            .ok_or(Refusal::Malformed("INITIATE metadata malformed"))?;
        let socket_type = protocol::property(&props, "Socket-Type")
            .ok_or(Refusal::Malformed("INITIATE metadata without Socket-Type"))?;
        let mut ready = Vec::new();
        protocol::put_property(&mut ready, "Socket-Type", socket_type);
        if let Some(identity) = protocol::property(&props, "Identity") {
            if identity.len() > 255 {
                return Err(Refusal::Malformed("INITIATE identity over 255 bytes"));
            }
            protocol::put_property(&mut ready, "Identity", identity);
        }
        self.client = Some(client);
        self.session = Some(session);
        self.push_server_frame(protocol::FLAG_COMMAND, &[protocol::READY, &ready])?;
        self.phase = Phase::AwaitServerReady;
        self.send_ready_if_possible()?;
        Ok(())
    }

    /// Sends READY to the peer once INITIATE was accepted and zeromq told its Socket-Type.
    fn send_ready_if_possible(&mut self) -> Result<(), Refusal> {
        if !matches!(self.phase, Phase::AwaitServerReady) {
            return Ok(());
        }
        let (Some(session), Some(socket_type)) = (&self.session, &self.server_socket_type) else {
            return Ok(());
        };
        let mut metadata = Vec::new();
        protocol::put_property(&mut metadata, "Socket-Type", socket_type);
        let nonce = self.next_nonce.to_be_bytes();
        self.next_nonce += 1;
        let sealed = protocol::seal(session, prefix::READY, &nonce, &metadata);
        protocol::put_frame(
            &mut self.to_peer,
            protocol::FLAG_COMMAND,
            &[protocol::READY, &nonce, &sealed],
        );
        self.phase = Phase::Ready;
        Ok(())
    }

    fn message(&mut self, body: &[u8]) -> Result<(), Refusal> {
        if !body.starts_with(protocol::MESSAGE) {
            return Err(Refusal::Malformed("frame other than MESSAGE after READY"));
        }
        if body.len() < protocol::MESSAGE_OVERHEAD {
            return Err(Refusal::Malformed("MESSAGE too short"));
        }
        let at = protocol::MESSAGE.len();
        let nonce = &body[at..at + protocol::SHORT_NONCE];
        let sealed = &body[at + protocol::SHORT_NONCE..];
        let session = self.session.as_ref().ok_or(Refusal::MessageBox)?;
        let plain =
            protocol::open(session, prefix::MESSAGE_C, nonce, sealed).ok_or(Refusal::MessageBox)?;
        // The nonce counts only once the box proved it authentic: a forged nonce cannot
        // push the window forward.
        self.check_nonce(nonce)?;
        let flags = plain[0];
        let mut zmtp = 0;
        if flags & protocol::MSG_MORE != 0 {
            zmtp |= protocol::FLAG_MORE;
        }
        if flags & protocol::MSG_COMMAND != 0 {
            zmtp |= protocol::FLAG_COMMAND;
        }
        self.push_server_frame(zmtp, &[&plain[1..]])
    }

    /// Short nonces from the peer must strictly increase (HELLO, INITIATE, MESSAGE…).
    fn check_nonce(&mut self, nonce: &[u8]) -> Result<(), Refusal> {
        let got = u64::from_be_bytes(nonce.try_into().unwrap_or([0; 8]));
        if got <= self.last_peer_nonce {
            return Err(Refusal::Replay {
                got,
                last: self.last_peer_nonce,
            });
        }
        self.last_peer_nonce = got;
        Ok(())
    }

    fn push_server_frame(&mut self, flags: u8, body: &[&[u8]]) -> Result<(), Refusal> {
        let mut frame = Vec::new();
        protocol::put_frame(&mut frame, flags, body);
        self.push_server(&frame)
    }

    /// Queues bytes for zeromq, through the guard's checker (limits on the plain stream).
    fn push_server(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        self.checker.feed(bytes)?;
        self.to_server.extend_from_slice(bytes);
        Ok(())
    }

    /// Handles bytes from the zeromq socket: its greeting and READY are ours to answer; each
    /// frame after them goes to the peer in a MESSAGE (once READY was sent).
    pub fn feed_server(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        self.server_in.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            match self.server_step(at) {
                Ok(Some(used)) => at += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.server_in.drain(..at);
        shrink_if_idle(&mut self.server_in);
        result?;
        if self.peer_waiting && matches!(self.phase, Phase::Ready) {
            self.peer_waiting = false;
            if let Some(now) = self.last_now {
                self.feed_peer(&[], now)?;
            }
        }
        Ok(())
    }

    fn server_step(&mut self, at: usize) -> Result<Option<usize>, Refusal> {
        let buf = &self.server_in[at..];
        if !self.server_greeted {
            if buf.len() < GREETING_LEN {
                return Ok(None);
            }
            if buf[0] != 0xFF || buf[9] != 0x7F || !buf[12..32].starts_with(b"NULL\0") {
                return Err(Refusal::Server("greeting is not ZMTP 3 NULL"));
            }
            self.server_greeted = true;
            return Ok(Some(GREETING_LEN));
        }
        if self.server_socket_type.is_none() {
            let Some((flags, len, header)) = protocol::frame_header(buf) else {
                return Ok(None);
            };
            if len > MAX_COMMAND_BYTES || flags & protocol::FLAG_COMMAND == 0 {
                return Err(Refusal::Server("first frame is not READY"));
            }
            let end = header + len as usize;
            if buf.len() < end {
                return Ok(None);
            }
            let body = &buf[header..end];
            let props = body
                .strip_prefix(protocol::READY)
                .and_then(protocol::properties)
                .ok_or(Refusal::Server("READY malformed"))?;
            let socket_type = protocol::property(&props, "Socket-Type")
                .ok_or(Refusal::Server("READY without Socket-Type"))?;
            self.server_socket_type = Some(socket_type.to_vec());
            self.send_ready_if_possible()?;
            return Ok(Some(end));
        }
        if !matches!(self.phase, Phase::Ready) {
            if !buf.is_empty() {
                self.server_waiting = true; // frames wait for our READY to the peer
            }
            return Ok(None);
        }
        let Some((flags, len, header)) = protocol::frame_header(buf) else {
            return Ok(None);
        };
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(header))
        else {
            return Err(Refusal::Server("frame length overflows"));
        };
        if buf.len() < end {
            return Ok(None);
        }
        let mut plain = Vec::with_capacity(1 + end - header);
        let mut box_flags = 0;
        if flags & protocol::FLAG_MORE != 0 {
            box_flags |= protocol::MSG_MORE;
        }
        if flags & protocol::FLAG_COMMAND != 0 {
            box_flags |= protocol::MSG_COMMAND;
        }
        plain.push(box_flags);
        plain.extend_from_slice(&buf[header..end]);
        let nonce = self.next_nonce.to_be_bytes();
        self.next_nonce += 1;
        let session = self
            .session
            .as_ref()
            .ok_or(Refusal::Server("READY without a session"))?;
        let sealed = protocol::seal(session, prefix::MESSAGE_S, &nonce, &plain);
        protocol::put_frame(&mut self.to_peer, 0, &[protocol::MESSAGE, &nonce, &sealed]);
        Ok(Some(end))
    }
}

/// Bytes an idle input buffer keeps: after one large message, an idle connection must not hold
/// its size for ever (a broker has hundreds of mostly idle peers).
const IDLE_BUFFER: usize = 8 * 1024;

fn shrink_if_idle(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > IDLE_BUFFER {
        buf.shrink_to(IDLE_BUFFER);
    }
}

fn unreachable_phase() -> Result<(), Refusal> {
    Err(Refusal::Malformed("frame before the greeting"))
}

#[cfg(test)]
mod tests {
    use super::super::client::{Client, Event};
    use super::*;
    use crate::rng::Rng;
    use std::sync::Arc;

    const LIMIT: u64 = 4096;

    fn server_keys(allow: AllowFn) -> (Arc<ServerKeys>, PublicKey) {
        let pair = KeyPair::generate();
        let public = pair.public;
        (Arc::new(ServerKeys::new(pair, allow)), public)
    }

    /// What the zeromq ROUTER behind the guard sends first: its NULL greeting and READY.
    fn zeromq_hello() -> Vec<u8> {
        let mut out = protocol::greeting(b"NULL", true).to_vec();
        let mut props = Vec::new();
        protocol::put_property(&mut props, "Socket-Type", b"ROUTER");
        protocol::put_frame(&mut out, protocol::FLAG_COMMAND, &[protocol::READY, &props]);
        out
    }

    struct Pair {
        server: Connection,
        client: Client,
        events: Vec<Event>,
        to_zeromq: Vec<u8>,
        now: Instant,
    }

    impl Pair {
        fn new(allow: AllowFn) -> Self {
            let (keys, public) = server_keys(allow);
            let client = Client::new(KeyPair::generate(), public, "DEALER", Some(b"me"));
            Self::with(keys, client)
        }

        fn with(keys: Arc<ServerKeys>, client: Client) -> Self {
            Self {
                server: Connection::new(keys, LIMIT),
                client,
                events: Vec::new(),
                to_zeromq: Vec::new(),
                now: Instant::now(),
            }
        }

        /// Feeds `bytes` to the server in chunks of `chunk`, then moves its output along.
        fn send_to_server(&mut self, bytes: &[u8], chunk: usize) -> Result<(), Refusal> {
            for piece in bytes.chunks(chunk.max(1)) {
                self.server.feed_peer(piece, self.now)?;
            }
            self.to_zeromq.extend(self.server.take_to_server());
            Ok(())
        }

        /// Delivers the server's bytes to the client; returns the client's answer.
        fn send_to_client(&mut self) -> Vec<u8> {
            let bytes = self.server.take_to_peer();
            let (out, events) = self
                .client
                .handle(&bytes)
                .expect("client accepts the server");
            self.events.extend(events);
            out
        }

        fn handshake(&mut self, chunk: usize) -> Result<(), Refusal> {
            self.server.feed_server(&zeromq_hello())?;
            let hello = self.client.start();
            self.send_to_server(&hello, chunk)?;
            let initiate = self.send_to_client();
            self.send_to_server(&initiate, chunk)?;
            self.send_to_client();
            Ok(())
        }
    }

    fn allow_all() -> AllowFn {
        Box::new(|_| true)
    }

    /// The NULL stream zeromq gets: greeting, then READY with the client's metadata.
    fn expected_null_handshake() -> Vec<u8> {
        let mut out = protocol::greeting(b"NULL", false).to_vec();
        let mut props = Vec::new();
        protocol::put_property(&mut props, "Socket-Type", b"DEALER");
        protocol::put_property(&mut props, "Identity", b"me");
        protocol::put_frame(&mut out, protocol::FLAG_COMMAND, &[protocol::READY, &props]);
        out
    }

    #[test]
    fn a_client_completes_the_handshake_and_messages_cross_both_ways() {
        for chunk in [1, 7, 200, 100_000] {
            let mut pair = Pair::new(allow_all());
            pair.handshake(chunk).expect("handshake");
            assert!(pair.server.handshake_done() && pair.client.is_ready());
            assert_eq!(
                pair.events,
                vec![Event::Ready(vec![(
                    "Socket-Type".into(),
                    b"ROUTER".to_vec()
                )])]
            );
            assert_eq!(pair.to_zeromq, expected_null_handshake(), "chunk {chunk}");
            // Client → zeromq: two frames, the first with MORE; one over 255 bytes (LONG).
            pair.to_zeromq.clear();
            let big = vec![9u8; 300];
            let sealed = pair.client.message(&[b"", &big]);
            pair.send_to_server(&sealed, chunk).expect("messages");
            let mut plain = Vec::new();
            protocol::put_frame(&mut plain, protocol::FLAG_MORE, &[b""]);
            protocol::put_frame(&mut plain, 0, &[&big]);
            assert_eq!(pair.to_zeromq, plain);
            // zeromq → client.
            pair.events.clear();
            let mut reply = Vec::new();
            protocol::put_frame(&mut reply, protocol::FLAG_MORE, &[b"id"]);
            protocol::put_frame(&mut reply, 0, &[b"World"]);
            for piece in reply.chunks(chunk) {
                pair.server.feed_server(piece).unwrap();
            }
            pair.send_to_client();
            assert_eq!(
                pair.events,
                vec![
                    Event::Frame {
                        body: b"id".to_vec(),
                        more: true,
                        command: false,
                    },
                    Event::Frame {
                        body: b"World".to_vec(),
                        more: false,
                        command: false,
                    },
                ]
            );
        }
    }

    #[test]
    fn the_client_key_is_known_after_initiate_and_checked_against_the_allow_list() {
        let client_pair = KeyPair::generate();
        let admitted = client_pair.public;
        let (keys, public) = server_keys(Box::new(move |k| *k == admitted));
        let mut pair = Pair::with(
            Arc::clone(&keys),
            Client::new(client_pair, public, "REQ", None),
        );
        pair.handshake(64).expect("admitted");
        assert_eq!(pair.server.client_key(), Some(admitted));

        let stranger = KeyPair::generate();
        let key = stranger.public;
        let mut pair = Pair::with(keys, Client::new(stranger, public, "REQ", None));
        let refused = pair.handshake(64).expect_err("stranger admitted");
        assert_eq!(refused, Refusal::NotAllowed(key));
        assert!(refused
            .to_string()
            .contains(&format!("CURVE client key {key} not allowed")));
        assert!(
            pair.to_zeromq.len() <= 64,
            "nothing but the greeting reached zeromq"
        );
        pair.send_to_client();
        assert_eq!(pair.events, vec![Event::Error(b"not authorised".to_vec())]);
    }

    #[test]
    fn a_client_with_another_server_key_is_refused_at_hello() {
        let (keys, _) = server_keys(allow_all());
        let wrong = KeyPair::generate().public;
        let mut pair = Pair::with(keys, Client::new(KeyPair::generate(), wrong, "REQ", None));
        assert_eq!(pair.handshake(1000), Err(Refusal::HelloBox));
    }

    #[test]
    fn tampered_replayed_and_reordered_messages_are_refused() {
        let mut pair = Pair::new(allow_all());
        pair.handshake(1000).unwrap();
        let mut tampered = pair.client.message(&[b"Hello"]);
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            pair.send_to_server(&tampered, 1000),
            Err(Refusal::MessageBox)
        );

        let mut pair = Pair::new(allow_all());
        pair.handshake(1000).unwrap();
        let once = pair.client.message(&[b"Hello"]);
        pair.send_to_server(&once, 1000).unwrap();
        assert!(matches!(
            pair.send_to_server(&once, 1000),
            Err(Refusal::Replay { .. })
        ));

        let mut pair = Pair::new(allow_all());
        pair.handshake(1000).unwrap();
        let later = pair
            .client
            .message_with_nonce(b"b", false, 10u64.to_be_bytes());
        let earlier = pair
            .client
            .message_with_nonce(b"a", false, 9u64.to_be_bytes());
        pair.send_to_server(&later, 1000).unwrap();
        assert_eq!(
            pair.send_to_server(&earlier, 1000),
            Err(Refusal::Replay { got: 9, last: 10 })
        );
    }

    #[test]
    fn the_guard_limits_apply_to_the_decrypted_frames() {
        let mut pair = Pair::new(allow_all());
        pair.handshake(1000).unwrap();
        let big = vec![0u8; LIMIT as usize + 1];
        let sealed = pair.client.message(&[&big]);
        assert!(matches!(
            pair.send_to_server(&sealed, 100_000),
            Err(Refusal::Zmtp(Violation::FrameTooLarge { .. }))
        ));
        // Many frames each under the limit, together over it.
        let mut pair = Pair::new(allow_all());
        pair.handshake(1000).unwrap();
        let part = vec![0u8; 1000];
        let frames: Vec<&[u8]> = (0..10).map(|_| part.as_slice()).collect();
        let sealed = pair.client.message(&frames);
        assert!(matches!(
            pair.send_to_server(&sealed, 100_000),
            Err(Refusal::Zmtp(Violation::MessageTooLarge { .. }))
        ));
        // A header announcing 2^62 bytes is refused before anything is buffered.
        let mut pair = Pair::new(allow_all());
        pair.handshake(1000).unwrap();
        let huge = [&[protocol::FLAG_LONG][..], &(1u64 << 62).to_be_bytes()].concat();
        assert!(matches!(
            pair.send_to_server(&huge, 1),
            Err(Refusal::Zmtp(Violation::FrameTooLarge { .. }))
        ));
    }

    #[test]
    fn a_cookie_from_an_expired_key_is_refused() {
        let mut pair = Pair::new(allow_all());
        pair.server.feed_server(&zeromq_hello()).unwrap();
        let hello = pair.client.start();
        pair.send_to_server(&hello, 1000).unwrap();
        let initiate = pair.send_to_client();
        pair.now += COOKIE_KEY_LIFETIME * 3;
        assert_eq!(pair.send_to_server(&initiate, 1000), Err(Refusal::Cookie));
        // Within one rotation the previous key still opens it.
        let mut pair = Pair::new(allow_all());
        pair.server.feed_server(&zeromq_hello()).unwrap();
        let hello = pair.client.start();
        pair.send_to_server(&hello, 1000).unwrap();
        let initiate = pair.send_to_client();
        pair.now += COOKIE_KEY_LIFETIME + Duration::from_secs(1);
        pair.send_to_server(&initiate, 1000)
            .expect("previous cookie key");
    }

    #[test]
    fn ready_waits_for_zeromq_and_early_messages_wait_for_ready() {
        let mut pair = Pair::new(allow_all());
        let hello = pair.client.start();
        pair.send_to_server(&hello, 1000).unwrap();
        let initiate = pair.send_to_client();
        pair.send_to_server(&initiate, 1000).unwrap();
        assert!(!pair.server.handshake_done());
        assert!(pair.send_to_client().is_empty() && !pair.client.is_ready());
        pair.server.feed_server(&zeromq_hello()).unwrap();
        pair.send_to_client();
        assert!(pair.client.is_ready() && pair.server.handshake_done());
    }

    #[test]
    fn bytes_held_before_ready_are_bounded() {
        let mut pair = Pair::new(allow_all());
        let hello = pair.client.start();
        pair.send_to_server(&hello, 1000).unwrap();
        let initiate = pair.send_to_client();
        pair.send_to_server(&initiate, 1000).unwrap();
        // zeromq's READY has not come: a little waits, a flood is refused.
        pair.send_to_server(&[0u8; 100], 1000).unwrap();
        let flood = vec![0u8; (LIMIT + MAX_COMMAND_BYTES) as usize];
        assert!(matches!(
            pair.send_to_server(&flood, 1 << 20),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn other_mechanisms_garbage_and_misplaced_commands_are_refused() {
        let (keys, _) = server_keys(allow_all());
        let mut conn = Connection::new(Arc::clone(&keys), LIMIT);
        let now = Instant::now();
        assert_eq!(
            conn.feed_peer(&protocol::greeting(b"NULL", false), now),
            Err(Refusal::NotCurve("NULL".into()))
        );
        let mut conn = Connection::new(Arc::clone(&keys), LIMIT);
        assert_eq!(
            conn.feed_peer(b"GET / HTTP/1.1\r\n", now),
            Err(Refusal::Zmtp(Violation::BadSignature))
        );
        let mut conn = Connection::new(Arc::clone(&keys), LIMIT);
        let mut stream = protocol::greeting(b"CURVE", false).to_vec();
        protocol::put_frame(&mut stream, 0, &[b"data"]);
        assert_eq!(
            conn.feed_peer(&stream, now),
            Err(Refusal::Zmtp(Violation::MessageBeforeReady))
        );
        let mut conn = Connection::new(keys, LIMIT);
        let mut stream = protocol::greeting(b"CURVE", false).to_vec();
        protocol::put_frame(
            &mut stream,
            protocol::FLAG_COMMAND,
            &[protocol::HELLO, &[0u8; 10]],
        );
        assert!(matches!(
            conn.feed_peer(&stream, now),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn random_input_never_panics() {
        let (keys, _) = server_keys(allow_all());
        let mut rng = Rng::seeded(26);
        let now = Instant::now();
        for round in 0..300 {
            let mut conn = Connection::new(Arc::clone(&keys), LIMIT);
            let mut stream = if round % 2 == 0 {
                protocol::greeting(b"CURVE", false).to_vec()
            } else {
                Vec::new()
            };
            if round % 3 == 0 {
                // A well-framed HELLO of random bytes.
                let body: Vec<u8> = (0..protocol::HELLO_LEN - 6)
                    .map(|_| rng.below(256) as u8)
                    .collect();
                protocol::put_frame(
                    &mut stream,
                    protocol::FLAG_COMMAND,
                    &[protocol::HELLO, &body],
                );
            }
            for _ in 0..rng.below(300) {
                stream.push(rng.below(256) as u8);
            }
            let _ = conn.feed_peer(&stream, now);
            let junk: Vec<u8> = (0..rng.below(100)).map(|_| rng.below(256) as u8).collect();
            let _ = conn.feed_server(&junk);
        }
    }
}
