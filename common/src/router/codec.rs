//! The pure ZMTP 3.x codec of the native ROUTER: the peer's bytes in, typed [`Decoded`] items
//! out; messages in, bytes for one vectored write out. No socket, no clock.
//!
//! Every byte the peer sends goes through the guard's [`Checker`] before it is parsed (greeting,
//! reserved flags, frame and message size from the header), so a frame is refused before its
//! body is buffered, and the read buffer only grows with bytes actually received. What the
//! checker leaves to "the decoder" is decided here: the first command must be READY naming a
//! socket type a ROUTER talks to, its Identity at most 255 bytes.

use crate::curve::protocol;
use crate::guard::zmtp::{Checker, Violation, GREETING_LEN};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;

/// Bytes a connection reads at least at once (and holds when idle).
pub const FIRST_READ: usize = 4 * 1024;
/// Bytes a read may ask for beyond what the buffer already holds, while a large frame arrives:
/// the buffer grows with what the peer really sent, not with what its header announced.
pub const READ_AHEAD: usize = 64 * 1024;
/// Frames at least this long are handed out as slices of the read buffer (no copy); shorter
/// ones are copied, so a small request kept in a queue does not pin a whole read buffer.
pub const ZERO_COPY_MIN: usize = 4 * 1024;
/// Socket types a ROUTER accepts as peers (as libzmq's ROUTER does).
pub const PEER_TYPES: [&str; 3] = ["DEALER", "REQ", "ROUTER"];
/// Largest Identity property (ZMTP: a routing id is 1 to 255 bytes).
pub const MAX_IDENTITY: usize = 255;

const FLAG_MORE: u8 = protocol::FLAG_MORE;
const FLAG_COMMAND: u8 = protocol::FLAG_COMMAND;

/// What the peer's READY said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReady {
    /// `Socket-Type`, one of [`PEER_TYPES`].
    pub socket_type: String,
    /// `Identity`, when the peer sent a non-empty one.
    pub identity: Option<Bytes>,
}

/// One complete item of the peer's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The handshake's READY (always the first item).
    Ready(PeerReady),
    /// A ZMTP 3.1 PING: answer with [`pong`] carrying `context`.
    Ping {
        /// Up to 16 bytes to echo in the PONG.
        context: Bytes,
    },
    /// A command a ROUTER has no use for (PONG, SUBSCRIBE, …): ignored.
    Ignored(String),
    /// A whole multipart message (at least one frame).
    Message(Vec<Bytes>),
}

/// Decodes one connection's inbound stream. Read into [`Decoder::read_buffer`], then call
/// [`Decoder::received`] and [`Decoder::decode`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Decoder {
    /// `None` when the stream was already checked (the plain side of a CURVE connection).
    checker: Option<Checker>,
    buf: BytesMut,
    /// Bytes of `buf` the checker has seen.
    seen: usize,
    greeted: bool,
    ready: bool,
    /// Frames of the message being received.
    partial: Vec<Bytes>,
    /// Bytes still missing to complete the frame at the head of `buf` (a read hint).
    missing: usize,
}

impl Decoder {
    /// A decoder that checks every byte against `max_msg_bytes` and the guard's ZMTP rules.
    pub fn new(max_msg_bytes: u64) -> Self {
        Self::with(Some(Checker::new(max_msg_bytes)))
    }

    /// A decoder for a stream already checked (what [`crate::curve::server::Connection`]
    /// emits: its own checker applied the limits to the decrypted frames).
    pub fn prechecked() -> Self {
        Self::with(None)
    }

    fn with(checker: Option<Checker>) -> Self {
        Self {
            checker,
            buf: BytesMut::new(),
            seen: 0,
            greeted: false,
            ready: false,
            partial: Vec::new(),
            missing: 0,
        }
    }

    /// True once the peer's READY was decoded.
    pub fn handshake_done(&self) -> bool {
        self.ready
    }

    /// The buffer to read into, with room reserved: at least [`FIRST_READ`], and for a large
    /// frame what it still lacks, but never more than [`READ_AHEAD`] beyond what is held.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        let room = self
            .missing
            .clamp(FIRST_READ, READ_AHEAD.max(self.buf.len()));
        self.buf.reserve(room);
        &mut self.buf
    }

    /// Appends bytes (for streams that do not come from a read, like CURVE's plain side).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Checks the bytes added since the last call. After an `Err` the connection must close.
    pub fn received(&mut self) -> Result<(), Violation> {
        if let Some(checker) = &mut self.checker {
            checker.feed(&self.buf[self.seen..])?;
        }
        self.seen = self.buf.len();
        Ok(())
    }

    /// The next complete item, `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<Decoded>, Violation> {
        let item = self.step();
        self.seen = self.buf.len();
        if self.buf.is_empty() && self.buf.capacity() > READ_AHEAD {
            // An idle connection after a large message keeps a small buffer only.
            self.buf = BytesMut::new();
        }
        item
    }

    fn step(&mut self) -> Result<Option<Decoded>, Violation> {
        loop {
            if !self.greeted {
                if self.buf.len() < GREETING_LEN {
                    self.missing = GREETING_LEN - self.buf.len();
                    return Ok(None);
                }
                self.buf.advance(GREETING_LEN);
                self.greeted = true;
            }
            let Some((flags, len, header)) = protocol::frame_header(&self.buf) else {
                self.missing = 9usize.saturating_sub(self.buf.len());
                return Ok(None);
            };
            // The checker refused anything over the limit; a prechecked stream was bounded
            // by its producer. `usize` holds any length that passed.
            let len = usize::try_from(len).map_err(|_| Violation::FrameTooLarge {
                size: len,
                limit: usize::MAX as u64,
            })?;
            let end = header.saturating_add(len);
            if self.buf.len() < end {
                self.missing = end - self.buf.len();
                return Ok(None);
            }
            self.missing = 0;
            self.buf.advance(header);
            let body = if len >= ZERO_COPY_MIN {
                self.buf.split_to(len).freeze()
            } else {
                let body = Bytes::copy_from_slice(&self.buf[..len]);
                self.buf.advance(len);
                body
            };
            if flags & FLAG_COMMAND != 0 {
                match self.command(&body)? {
                    Some(item) => return Ok(Some(item)),
                    None => continue,
                }
            }
            if !self.ready {
                return Err(Violation::MessageBeforeReady);
            }
            self.partial.push(body);
            if flags & FLAG_MORE == 0 {
                return Ok(Some(Decoded::Message(std::mem::take(&mut self.partial))));
            }
        }
    }

    fn command(&mut self, body: &[u8]) -> Result<Option<Decoded>, Violation> {
        let name_len = usize::from(*body.first().unwrap_or(&0));
        let name = body
            .get(1..1 + name_len)
            .filter(|_| name_len > 0)
            .ok_or(Violation::BadCommand("command without a name"))?;
        let data = &body[1 + name_len..];
        if !self.ready {
            if name != b"READY" {
                return Err(Violation::BadCommand("first command is not READY"));
            }
            let ready = peer_ready(data)?;
            self.ready = true;
            return Ok(Some(Decoded::Ready(ready)));
        }
        Ok(Some(match name {
            b"READY" => return Err(Violation::BadCommand("second READY")),
            b"PING" => {
                // TTL (2 bytes), then a context of at most 16 bytes.
                if data.len() < 2 || data.len() > 2 + 16 {
                    return Err(Violation::BadCommand("PING malformed"));
                }
                Decoded::Ping {
                    context: Bytes::copy_from_slice(&data[2..]),
                }
            }
            other => Decoded::Ignored(String::from_utf8_lossy(other).into_owned()),
        }))
    }
}

/// Parses READY's properties: a socket type a ROUTER talks to, an identity of at most 255 bytes.
fn peer_ready(properties: &[u8]) -> Result<PeerReady, Violation> {
    let props = protocol::properties(properties).ok_or(Violation::BadCommand("READY malformed"))?;
    let socket_type = protocol::property(&props, "Socket-Type")
        .ok_or(Violation::BadCommand("READY without Socket-Type"))?;
    let socket_type = String::from_utf8_lossy(socket_type).into_owned();
    if !PEER_TYPES.contains(&socket_type.as_str()) {
        return Err(Violation::PeerType(socket_type));
    }
    let identity = match protocol::property(&props, "Identity") {
        Some(id) if id.len() > MAX_IDENTITY => {
            return Err(Violation::BadCommand("Identity over 255 bytes"))
        }
        Some(id) if !id.is_empty() => Some(Bytes::copy_from_slice(id)),
        _ => None,
    };
    Ok(PeerReady {
        socket_type,
        identity,
    })
}

/// Where encoded bytes go: small pieces are copied, large frame bodies may be kept as they are.
pub trait Sink {
    /// Copies `bytes` in.
    fn put(&mut self, bytes: &[u8]);
    /// Takes a frame body; a sink may keep it without copying.
    fn put_body(&mut self, body: Bytes) {
        self.put(&body);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The server's side of the handshake: a NULL greeting (ZMTP 3.1) and READY as a ROUTER.
pub fn handshake(out: &mut (impl Sink + ?Sized)) {
    let mut greeting = protocol::greeting(b"NULL", false);
    greeting[11] = 1;
    out.put(&greeting);
    let mut ready = Vec::with_capacity(32);
    protocol::put_property(&mut ready, "Socket-Type", b"ROUTER");
    command(out, protocol::READY, &ready);
}

/// The answer to a PING.
pub fn pong(out: &mut (impl Sink + ?Sized), context: &[u8]) {
    command(out, b"\x04PONG", context);
}

fn command(out: &mut (impl Sink + ?Sized), name: &[u8], data: &[u8]) {
    header(out, FLAG_COMMAND, name.len() + data.len());
    out.put(name);
    out.put(data);
}

fn header(out: &mut (impl Sink + ?Sized), flags: u8, len: usize) {
    if len > 255 {
        let mut h = [0u8; 9];
        h[0] = flags | protocol::FLAG_LONG;
        h[1..].copy_from_slice(&(len as u64).to_be_bytes());
        out.put(&h);
    } else {
        out.put(&[flags, len as u8]);
    }
}

/// Encodes the frames of one message (the routing id already removed), MORE on all but the last.
pub fn encode(out: &mut (impl Sink + ?Sized), frames: impl ExactSizeIterator<Item = Bytes>) {
    let last = frames.len().saturating_sub(1);
    for (i, frame) in frames.enumerate() {
        let flags = if i < last { FLAG_MORE } else { 0 };
        header(out, flags, frame.len());
        out.put_body(frame);
    }
}

/// A connection's outbound bytes, written with one vectored write: headers and small bodies
/// are coalesced into one buffer, large bodies are kept as the `Bytes` the broker passed (the
/// frame is never copied on its way out).
#[derive(Debug, Default)]
pub struct WriteQueue {
    /// Segments in order; the last may still be growing in `tail`.
    parts: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

/// Most segments one write hands the kernel (well under `IOV_MAX`).
const MAX_SLICES: usize = 64;

impl Sink for WriteQueue {
    fn put(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    fn put_body(&mut self, body: Bytes) {
        if body.len() < ZERO_COPY_MIN {
            return self.put(&body);
        }
        if !self.tail.is_empty() {
            self.parts.push_back(self.tail.split().freeze());
        }
        self.len += body.len();
        self.parts.push_back(body);
    }
}

impl WriteQueue {
    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends bytes produced elsewhere (CURVE's encrypted output) without copying them.
    pub fn push(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            if !self.tail.is_empty() {
                self.parts.push_back(self.tail.split().freeze());
            }
            self.len += bytes.len();
            self.parts.push_back(bytes);
        }
    }

    /// The waiting bytes as slices for one `write_vectored`.
    pub fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut slices: Vec<IoSlice<'_>> = self
            .parts
            .iter()
            .take(MAX_SLICES - 1)
            .map(|p| IoSlice::new(p))
            .collect();
        if slices.len() == self.parts.len() && !self.tail.is_empty() {
            slices.push(IoSlice::new(&self.tail));
        }
        slices
    }

    /// Drops the first `n` bytes (what a write took).
    pub fn consume(&mut self, mut n: usize) {
        self.len -= n.min(self.len);
        while n > 0 {
            match self.parts.front_mut() {
                Some(part) if part.len() <= n => {
                    n -= part.len();
                    self.parts.pop_front();
                }
                Some(part) => {
                    part.advance(n);
                    return;
                }
                None => {
                    self.tail.advance(n.min(self.tail.len()));
                    return;
                }
            }
        }
        if self.tail.is_empty() && self.tail.capacity() > READ_AHEAD {
            self.tail = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const LIMIT: u64 = 64 * 1024;

    /// What a libzmq DEALER sends: greeting, READY with `identity`.
    fn peer_handshake(socket_type: &str, identity: &[u8]) -> Vec<u8> {
        let mut out = protocol::greeting(b"NULL", false).to_vec();
        let mut props = Vec::new();
        protocol::put_property(&mut props, "Socket-Type", socket_type.as_bytes());
        protocol::put_property(&mut props, "Identity", identity);
        command(&mut out, protocol::READY, &props);
        out
    }

    fn message(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(
            &mut out,
            frames
                .iter()
                .map(|f| Bytes::copy_from_slice(f))
                .collect::<Vec<_>>()
                .into_iter(),
        );
        out
    }

    /// Feeds `stream` in chunks of `chunk` bytes; returns every item, or the first violation.
    fn decode_all(stream: &[u8], chunk: usize) -> Result<Vec<Decoded>, Violation> {
        let mut d = Decoder::new(LIMIT);
        let mut items = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            d.read_buffer().extend_from_slice(piece);
            d.received()?;
            while let Some(item) = d.decode()? {
                items.push(item);
            }
        }
        Ok(items)
    }

    fn frames(parts: &[&[u8]]) -> Decoded {
        Decoded::Message(parts.iter().map(|p| Bytes::copy_from_slice(p)).collect())
    }

    #[test]
    fn a_dealer_stream_decodes_the_same_in_every_chunking() {
        let big = vec![7u8; 10_000];
        let stream = [
            peer_handshake("DEALER", b"worker-1"),
            message(&[b"", b"MDPW01", b"\x01", b"echo"]),
            message(&[b""]),
            message(&[b"a", &big, b""]),
        ]
        .concat();
        let expected = vec![
            Decoded::Ready(PeerReady {
                socket_type: "DEALER".into(),
                identity: Some(Bytes::from_static(b"worker-1")),
            }),
            frames(&[b"", b"MDPW01", b"\x01", b"echo"]),
            frames(&[b""]),
            frames(&[b"a", &big, b""]),
        ];
        for chunk in [1, 2, 7, 64, 65, 1000, stream.len()] {
            assert_eq!(
                decode_all(&stream, chunk).unwrap(),
                expected,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn an_empty_identity_is_none_and_req_and_router_peers_are_accepted() {
        for peer in ["REQ", "ROUTER"] {
            let items = decode_all(&peer_handshake(peer, b""), 100).unwrap();
            assert_eq!(
                items,
                vec![Decoded::Ready(PeerReady {
                    socket_type: peer.into(),
                    identity: None
                })]
            );
        }
    }

    #[test]
    fn other_socket_types_and_bad_handshakes_are_refused() {
        assert_eq!(
            decode_all(&peer_handshake("PUB", b""), 100),
            Err(Violation::PeerType("PUB".into()))
        );
        let mut not_ready = protocol::greeting(b"NULL", false).to_vec();
        command(&mut not_ready, b"\x04PING", b"\0\0");
        assert_eq!(
            decode_all(&not_ready, 100),
            Err(Violation::BadCommand("first command is not READY"))
        );
        let mut no_type = protocol::greeting(b"NULL", false).to_vec();
        command(&mut no_type, protocol::READY, b"");
        assert_eq!(
            decode_all(&no_type, 100),
            Err(Violation::BadCommand("READY without Socket-Type"))
        );
        let mut long_id = protocol::greeting(b"NULL", false).to_vec();
        let mut props = Vec::new();
        protocol::put_property(&mut props, "Socket-Type", b"DEALER");
        protocol::put_property(&mut props, "Identity", &[1u8; 256]);
        command(&mut long_id, protocol::READY, &props);
        assert_eq!(
            decode_all(&long_id, 100),
            Err(Violation::BadCommand("Identity over 255 bytes"))
        );
        let twice = [
            peer_handshake("DEALER", b""),
            peer_handshake("DEALER", b"")[64..].to_vec(),
        ]
        .concat();
        assert_eq!(
            decode_all(&twice, 100),
            Err(Violation::BadCommand("second READY"))
        );
    }

    #[test]
    fn ping_is_decoded_for_a_pong_and_unknown_commands_are_ignored() {
        let mut stream = peer_handshake("DEALER", b"");
        command(&mut stream, b"\x04PING", b"\x00\x0actx");
        command(&mut stream, b"\x09SUBSCRIBE", b"x");
        let items = decode_all(&stream, 3).unwrap();
        assert_eq!(
            items[1..],
            [
                Decoded::Ping {
                    context: Bytes::from_static(b"ctx")
                },
                Decoded::Ignored("SUBSCRIBE".into())
            ]
        );
        let mut out = Vec::new();
        pong(&mut out, b"ctx");
        assert_eq!(out, b"\x04\x08\x04PONGctx");
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_from_its_header_before_any_body_is_buffered() {
        let mut stream = peer_handshake("DEALER", b"");
        stream.push(protocol::FLAG_LONG);
        stream.extend_from_slice(&(LIMIT + 1).to_be_bytes());
        let mut d = Decoder::new(LIMIT);
        d.read_buffer().extend_from_slice(&stream);
        assert_eq!(
            d.received(),
            Err(Violation::FrameTooLarge {
                size: LIMIT + 1,
                limit: LIMIT
            })
        );
        // A frame at the limit is accepted, and the buffer grows only with what arrives.
        let mut d = Decoder::new(LIMIT);
        d.read_buffer()
            .extend_from_slice(&peer_handshake("DEALER", b""));
        d.received().unwrap();
        assert!(matches!(d.decode(), Ok(Some(Decoded::Ready(_)))));
        let body = LIMIT - crate::guard::zmtp::FRAME_COST;
        let mut header = vec![protocol::FLAG_LONG];
        header.extend_from_slice(&body.to_be_bytes());
        d.read_buffer().extend_from_slice(&header);
        d.received().unwrap();
        assert_eq!(d.decode(), Ok(None));
        let room = d.read_buffer().capacity();
        assert!(room <= 2 * READ_AHEAD + FIRST_READ, "reserved {room}");
        let rest = vec![1u8; body as usize];
        for piece in rest.chunks(5000) {
            d.read_buffer().extend_from_slice(piece);
            d.received().unwrap();
        }
        match d.decode() {
            Ok(Some(Decoded::Message(f))) => assert_eq!(f, vec![Bytes::from(rest)]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encoded_messages_decode_back_through_a_write_queue() {
        let big = Bytes::from(vec![3u8; 70_000]);
        let mut q = WriteQueue::default();
        handshake(&mut q);
        encode(
            &mut q,
            vec![Bytes::new(), big.clone(), Bytes::from_static(b"tail")].into_iter(),
        );
        encode(&mut q, vec![Bytes::from_static(b"x")].into_iter());
        // Drain it the way partial writes do: a few bytes at a time.
        let mut wire_bytes = Vec::new();
        let mut rng = Rng::seeded(3);
        while !q.is_empty() {
            let slices = q.slices();
            let all: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
            let n = (rng.below(all.len() as u64) as usize + 1).min(all.len());
            wire_bytes.extend_from_slice(&all[..n]);
            q.consume(n);
        }
        // Our handshake is a ROUTER's, and a ROUTER may talk to a ROUTER.
        let mut d = Decoder::prechecked();
        d.extend(&wire_bytes);
        d.received().unwrap();
        assert_eq!(
            d.decode(),
            Ok(Some(Decoded::Ready(PeerReady {
                socket_type: "ROUTER".into(),
                identity: None,
            })))
        );
        assert_eq!(
            d.decode(),
            Ok(Some(Decoded::Message(vec![
                Bytes::new(),
                big,
                Bytes::from_static(b"tail")
            ])))
        );
        assert_eq!(d.decode(), Ok(Some(frames(&[b"x"]))));
    }

    #[test]
    fn random_streams_never_panic() {
        let mut rng = Rng::seeded(11);
        for round in 0..500 {
            let mut stream = if round % 2 == 0 {
                peer_handshake("DEALER", b"x")
            } else {
                vec![]
            };
            for _ in 0..rng.below(300) {
                stream.push(rng.below(256) as u8);
            }
            let chunk = rng.below(50) as usize + 1;
            let _ = decode_all(&stream, chunk);
        }
    }
}
