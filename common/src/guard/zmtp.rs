//! The pure ZMTP ingress checker: fed the bytes a peer sends, in whatever chunks they arrive,
//! it says whether they may reach the `zeromq` decoder.
//!
//! It parses only what the decoder trusts — the 64-byte greeting and each frame header (flags,
//! 1- or 8-byte length) — and skips bodies by counting, so its cost does not grow with the
//! payload. It reads no clock and owns no socket: the relay in [`super`] feeds it and acts on
//! its verdict.
//!
//! # What is checked
//! - Greeting (ZMTP 3.x): signature `FF` … `7F`, major version 3 or later (what the decoder
//!   negotiates), mechanism `NULL` (the only one the `zeromq` crate speaks), as-server 0 or 1.
//! - Every frame: reserved flag bits clear; a command frame is not part of a multipart message,
//!   is at most [`MAX_COMMAND_BYTES`] (the decoder parses its properties into a map); the first
//!   frame after the greeting is a command (READY), and no message frame comes before it.
//! - Size: a frame body, and a whole message (the frames chained by MORE), at most the limit.
//!   Each frame is charged [`FRAME_COST`] bytes on top of its body, for what the decoder keeps
//!   per frame, so 100,000 empty frames cost memory in proportion to the limit too.

use std::fmt;

/// Bytes of a ZMTP 3 greeting.
pub const GREETING_LEN: usize = 64;
/// Largest command frame accepted (READY carries a socket type, an identity of at most 255
/// bytes and a few properties; the decoder builds a map from it, so it must stay small).
pub const MAX_COMMAND_BYTES: u64 = 64 * 1024;
/// Bytes charged per frame on top of its body when a message is measured: the decoder keeps a
/// `Bytes` handle and a queue slot per frame (about this much), whatever the body size.
pub const FRAME_COST: u64 = 64;

const FLAG_MORE: u8 = 0b001;
const FLAG_LONG: u8 = 0b010;
const FLAG_COMMAND: u8 = 0b100;
const FLAGS_RESERVED: u8 = !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND);

/// Why a connection's input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The greeting's signature bytes are wrong (not a ZMTP 3 peer: HTTP, garbage, ZMTP 1/2).
    BadSignature,
    /// A ZMTP version the decoder cannot speak.
    BadVersion(u8, u8),
    /// A security mechanism other than NULL (the `zeromq` crate has no PLAIN or CURVE).
    BadMechanism(String),
    /// The greeting's as-server byte is neither 0 nor 1.
    BadAsServer(u8),
    /// A frame with reserved flag bits set.
    ReservedFlags(u8),
    /// A command frame with the MORE bit set.
    CommandWithMore,
    /// A message frame before the peer's READY command.
    MessageBeforeReady,
    /// A command frame larger than [`MAX_COMMAND_BYTES`].
    CommandTooLarge(u64),
    /// One frame larger than the limit.
    FrameTooLarge {
        /// Announced body length.
        size: u64,
        /// The limit (`--max-msg-bytes`).
        limit: u64,
    },
    /// A command the native ROUTER cannot accept (READY missing, malformed or repeated).
    BadCommand(&'static str),
    /// The peer's READY names a socket type a ROUTER does not talk to.
    PeerType(String),
    /// A multipart message whose frames together exceed the limit.
    MessageTooLarge {
        /// Frames seen so far in the message, including the one that crossed the limit.
        frames: u64,
        /// Bytes charged so far (bodies plus [`FRAME_COST`] per frame).
        size: u64,
        /// The limit (`--max-msg-bytes`).
        limit: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSignature => write!(f, "bad greeting: not a ZMTP 3 signature"),
            Self::BadVersion(major, minor) => {
                write!(f, "bad greeting: ZMTP version {major}.{minor} (need 3.x)")
            }
            Self::BadMechanism(m) => {
                write!(f, "bad greeting: mechanism {m:?} (only NULL is supported)")
            }
            Self::BadAsServer(b) => write!(f, "bad greeting: as-server byte {b:#04x}"),
            Self::ReservedFlags(flags) => write!(f, "frame flags {flags:#04x} use reserved bits"),
            Self::CommandWithMore => write!(f, "command frame with MORE set"),
            Self::MessageBeforeReady => write!(f, "message frame before the READY command"),
            Self::CommandTooLarge(size) => write!(
                f,
                "command frame of {size} bytes (over the {MAX_COMMAND_BYTES}-byte command limit)"
            ),
            Self::FrameTooLarge { size, limit } => {
                write!(f, "frame of {size} bytes over --max-msg-bytes {limit}")
            }
            Self::BadCommand(what) => write!(f, "bad handshake: {what}"),
            Self::PeerType(t) => write!(
                f,
                "bad handshake: socket type {t:?} cannot talk to a ROUTER"
            ),
            Self::MessageTooLarge {
                frames,
                size,
                limit,
            } => write!(
                f,
                "message of {frames}+ frames, {size}+ bytes, over --max-msg-bytes {limit}"
            ),
        }
    }
}

/// Where the checker is in the peer's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside the greeting, `at` bytes seen.
    Greeting { at: usize },
    /// Expecting a frame's flags byte.
    Flags,
    /// Expecting the 1-byte length of a short frame.
    ShortLen { flags: u8 },
    /// Inside the 8-byte length of a long frame, `at` bytes seen, value so far in `len`.
    LongLen { flags: u8, at: u8, len: u64 },
    /// Skipping a frame body: `left` bytes to go.
    Body { left: u64 },
    /// A violation was found; everything after it is refused.
    Refused,
}

/// Checks one connection's inbound bytes. Feed it every chunk in order with [`Checker::feed`].
#[derive(Debug, Clone)]
pub struct Checker {
    state: State,
    limit: u64,
    /// The mechanism field of the greeting (bytes 12..32), collected as it arrives.
    mechanism: [u8; 20],
    version: (u8, u8),
    ready_seen: bool,
    handshake_done: bool,
    /// The violation that closed this stream, repeated for any later input.
    refused: Option<Violation>,
    /// Bytes charged to the current multipart message (0 between messages).
    message_bytes: u64,
    /// Frames in the current multipart message.
    message_frames: u64,
}

impl Checker {
    /// A checker for a fresh connection that refuses frames and messages over `max_msg_bytes`.
    pub fn new(max_msg_bytes: u64) -> Self {
        Self {
            state: State::Greeting { at: 0 },
            limit: max_msg_bytes,
            mechanism: [0; 20],
            version: (0, 0),
            ready_seen: false,
            handshake_done: false,
            refused: None,
            message_bytes: 0,
            message_frames: 0,
        }
    }

    /// True once the greeting and the peer's first command (READY) have fully arrived: the
    /// handshake deadline stops applying.
    pub fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    /// Checks the next chunk of the peer's bytes. `Ok` means all of it may be relayed; after an
    /// `Err` the connection must be closed (the checker refuses everything from then on).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Violation> {
        while !bytes.is_empty() {
            match self.state {
                State::Refused => {
                    return Err(self.refused.clone().unwrap_or(Violation::BadSignature))
                }
                State::Greeting { at } => {
                    let take = (GREETING_LEN - at).min(bytes.len());
                    for (i, &b) in bytes[..take].iter().enumerate() {
                        self.greeting_byte(at + i, b)?;
                    }
                    bytes = &bytes[take..];
                    self.state = if at + take == GREETING_LEN {
                        self.greeting_done()?;
                        State::Flags
                    } else {
                        State::Greeting { at: at + take }
                    };
                }
                State::Flags => {
                    let flags = bytes[0];
                    bytes = &bytes[1..];
                    if flags & FLAGS_RESERVED != 0 {
                        return self.refuse(Violation::ReservedFlags(flags));
                    }
                    if flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0 {
                        return self.refuse(Violation::CommandWithMore);
                    }
                    if flags & FLAG_COMMAND != 0 && self.message_frames > 0 {
                        // A command in the middle of a multipart message: the decoder would
                        // interleave it; no ZMTP peer does that.
                        return self.refuse(Violation::CommandWithMore);
                    }
                    if flags & FLAG_COMMAND == 0 && !self.ready_seen {
                        return self.refuse(Violation::MessageBeforeReady);
                    }
                    self.state = if flags & FLAG_LONG != 0 {
                        State::LongLen {
                            flags,
                            at: 0,
                            len: 0,
                        }
                    } else {
                        State::ShortLen { flags }
                    };
                }
                State::ShortLen { flags } => {
                    let len = u64::from(bytes[0]);
                    bytes = &bytes[1..];
                    self.frame(flags, len)?;
                }
                State::LongLen { flags, at, len } => {
                    let take = (8 - usize::from(at)).min(bytes.len());
                    let len = bytes[..take]
                        .iter()
                        .fold(len, |acc, &b| (acc << 8) | u64::from(b));
                    bytes = &bytes[take..];
                    let at = at + take as u8;
                    if at == 8 {
                        self.frame(flags, len)?;
                    } else {
                        self.state = State::LongLen { flags, at, len };
                    }
                }
                State::Body { left } => {
                    let take = left.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    if take == left {
                        self.frame_done();
                    } else {
                        self.state = State::Body { left: left - take };
                    }
                }
            }
        }
        Ok(())
    }

    /// Early checks on one greeting byte, so garbage is refused at its first wrong byte.
    fn greeting_byte(&mut self, at: usize, b: u8) -> Result<(), Violation> {
        match at {
            0 if b != 0xFF => self.refuse(Violation::BadSignature),
            9 if b != 0x7F => self.refuse(Violation::BadSignature),
            10 => {
                self.version.0 = b;
                if b < 3 {
                    self.refuse(Violation::BadVersion(b, 0))
                } else {
                    Ok(())
                }
            }
            11 => {
                self.version.1 = b;
                Ok(())
            }
            12..=31 => {
                self.mechanism[at - 12] = b;
                Ok(())
            }
            32 if b > 1 => self.refuse(Violation::BadAsServer(b)),
            _ => Ok(()),
        }
    }

    /// Checks the complete greeting's mechanism.
    fn greeting_done(&mut self) -> Result<(), Violation> {
        let name_len = self.mechanism.iter().position(|&b| b == 0).unwrap_or(20);
        let (name, pad) = self.mechanism.split_at(name_len);
        if name != b"NULL" || pad.iter().any(|&b| b != 0) {
            let shown = String::from_utf8_lossy(name).into_owned();
            return self.refuse(Violation::BadMechanism(shown));
        }
        Ok(())
    }

    /// A complete frame header: check its size, then skip its body.
    fn frame(&mut self, flags: u8, len: u64) -> Result<(), Violation> {
        if flags & FLAG_COMMAND != 0 {
            if len > MAX_COMMAND_BYTES.min(self.limit) {
                return self.refuse(Violation::CommandTooLarge(len));
            }
            // The first command is the handshake's READY; what it says is the decoder's job.
            self.ready_seen = true;
        } else {
            if len > self.limit {
                return self.refuse(Violation::FrameTooLarge {
                    size: len,
                    limit: self.limit,
                });
            }
            self.message_frames += 1;
            self.message_bytes = self
                .message_bytes
                .saturating_add(len.saturating_add(FRAME_COST));
            if self.message_bytes > self.limit {
                return self.refuse(Violation::MessageTooLarge {
                    frames: self.message_frames,
                    size: self.message_bytes,
                    limit: self.limit,
                });
            }
            if flags & FLAG_MORE == 0 {
                self.message_bytes = 0;
                self.message_frames = 0;
            }
        }
        if len == 0 {
            self.frame_done();
        } else {
            self.state = State::Body { left: len };
        }
        Ok(())
    }

    /// A frame ended: the next byte is a flags byte; the handshake is done once READY ended.
    fn frame_done(&mut self) {
        self.state = State::Flags;
        self.handshake_done |= self.ready_seen;
    }

    fn refuse(&mut self, violation: Violation) -> Result<(), Violation> {
        self.state = State::Refused;
        self.refused = Some(violation.clone());
        Err(violation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const LIMIT: u64 = 1000;

    fn greeting() -> Vec<u8> {
        let mut g = vec![0u8; GREETING_LEN];
        g[0] = 0xFF;
        g[9] = 0x7F;
        g[10] = 3;
        g[11] = 1;
        g[12..16].copy_from_slice(b"NULL");
        g
    }

    fn ready() -> Vec<u8> {
        let mut body = vec![5u8];
        body.extend_from_slice(b"READY");
        body.push(11);
        body.extend_from_slice(b"Socket-Type");
        body.extend_from_slice(&6u32.to_be_bytes());
        body.extend_from_slice(b"DEALER");
        frame(FLAG_COMMAND, &body)
    }

    fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = if body.len() > 255 {
            let mut h = vec![flags | FLAG_LONG];
            h.extend_from_slice(&(body.len() as u64).to_be_bytes());
            h
        } else {
            vec![flags, body.len() as u8]
        };
        f.extend_from_slice(body);
        f
    }

    fn long_header(flags: u8, len: u64) -> Vec<u8> {
        let mut h = vec![flags | FLAG_LONG];
        h.extend_from_slice(&len.to_be_bytes());
        h
    }

    fn handshake() -> Vec<u8> {
        [greeting(), ready()].concat()
    }

    /// A valid stream: greeting, READY, a 3-frame message (one long frame), a 1-frame message.
    fn valid_stream() -> Vec<u8> {
        [
            handshake(),
            frame(FLAG_MORE, b"id"),
            frame(FLAG_MORE, &[7u8; 300]),
            frame(0, b""),
            frame(0, b"Hello"),
        ]
        .concat()
    }

    /// Feeds `stream` cut at `cuts`; returns the first error and the byte offset it was in.
    fn feed_cut(stream: &[u8], cuts: &[usize]) -> Result<Checker, (Violation, usize)> {
        let mut checker = Checker::new(LIMIT);
        let mut from = 0;
        for &to in cuts.iter().chain([stream.len()].iter()) {
            let to = to.clamp(from, stream.len());
            checker.feed(&stream[from..to]).map_err(|v| (v, from))?;
            from = to;
        }
        Ok(checker)
    }

    #[test]
    fn a_valid_stream_passes_in_one_chunk_and_byte_by_byte() {
        let stream = valid_stream();
        let whole = feed_cut(&stream, &[]).expect("valid stream refused");
        assert!(whole.handshake_done());
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert!(feed_cut(&stream, &cuts).is_ok());
    }

    #[test]
    fn a_valid_stream_passes_cut_anywhere_in_two_or_three() {
        let stream = valid_stream();
        for a in 0..stream.len() {
            assert!(feed_cut(&stream, &[a]).is_ok(), "cut at {a}");
        }
        let mut rng = Rng::seeded(11);
        for _ in 0..2000 {
            let mut cuts = vec![
                rng.below(stream.len() as u64) as usize,
                rng.below(stream.len() as u64) as usize,
            ];
            cuts.sort_unstable();
            assert!(feed_cut(&stream, &cuts).is_ok(), "cuts {cuts:?}");
        }
    }

    #[test]
    fn handshake_is_done_only_after_the_whole_ready_command() {
        let stream = handshake();
        let mut checker = Checker::new(LIMIT);
        checker.feed(&stream[..stream.len() - 1]).unwrap();
        assert!(!checker.handshake_done());
        checker.feed(&stream[stream.len() - 1..]).unwrap();
        assert!(checker.handshake_done());
    }

    /// Every hostile stream is refused, whatever the chunking, and never before its bad part.
    fn refused_in_every_chunking(stream: &[u8], bad_from: usize, expect: fn(&Violation) -> bool) {
        for a in 0..=stream.len() {
            match feed_cut(stream, &[a]) {
                Ok(_) => panic!("accepted with a cut at {a}"),
                Err((v, _)) => assert!(expect(&v), "cut at {a}: unexpected {v:?}"),
            }
        }
        // Byte by byte: the refusal comes at a byte of the bad part, not before.
        let cuts: Vec<usize> = (1..stream.len()).collect();
        let (_, at) = feed_cut(stream, &cuts).expect_err("accepted byte by byte");
        assert!(
            at >= bad_from,
            "refused at {at}, before the bad part at {bad_from}"
        );
    }

    #[test]
    fn a_2_pow_62_header_is_refused_before_and_after_the_handshake() {
        let huge = 1u64 << 62;
        let before = [greeting(), long_header(FLAG_COMMAND, huge)].concat();
        refused_in_every_chunking(
            &before,
            GREETING_LEN,
            |v| matches!(v, Violation::CommandTooLarge(n) if *n == 1 << 62),
        );
        let data_before = [greeting(), long_header(0, huge)].concat();
        refused_in_every_chunking(&data_before, GREETING_LEN, |v| {
            *v == Violation::MessageBeforeReady
        });
        let after = [handshake(), long_header(0, huge)].concat();
        refused_in_every_chunking(
            &after,
            handshake().len(),
            |v| matches!(v, Violation::FrameTooLarge { size, .. } if *size == 1 << 62),
        );
        let max = [handshake(), long_header(FLAG_MORE, u64::MAX)].concat();
        refused_in_every_chunking(
            &max,
            handshake().len(),
            |v| matches!(v, Violation::FrameTooLarge { size, .. } if *size == u64::MAX),
        );
    }

    #[test]
    fn a_frame_at_the_limit_passes_and_one_byte_more_is_refused() {
        let at = [handshake(), long_header(0, LIMIT - FRAME_COST)].concat();
        assert!(feed_cut(&at, &[]).is_ok());
        let over = [handshake(), long_header(0, LIMIT + 1)].concat();
        refused_in_every_chunking(&over, handshake().len(), |v| {
            matches!(v, Violation::FrameTooLarge { .. })
        });
    }

    #[test]
    fn many_small_frames_are_refused_once_the_message_is_over_the_limit() {
        // 100,000 empty frames chained by MORE: tiny on the wire, but the decoder would keep a
        // handle per frame; the per-frame charge stops it after LIMIT / FRAME_COST frames.
        let mut stream = handshake();
        for _ in 0..100_000 {
            stream.extend_from_slice(&frame(FLAG_MORE, b"x"));
        }
        let mut checker = Checker::new(LIMIT);
        let v = checker
            .feed(&stream)
            .expect_err("100,000-frame message accepted");
        let expected_frames = LIMIT / (1 + FRAME_COST) + 1;
        assert_eq!(
            v,
            Violation::MessageTooLarge {
                frames: expected_frames,
                size: expected_frames * (1 + FRAME_COST),
                limit: LIMIT
            }
        );
        // The same frames as separate messages are fine: the count restarts after each one.
        let mut ok = handshake();
        for _ in 0..100_000 {
            ok.extend_from_slice(&frame(0, b"x"));
        }
        assert!(Checker::new(LIMIT).feed(&ok).is_ok());
    }

    #[test]
    fn garbage_greetings_are_refused_at_the_first_wrong_byte() {
        let mut checker = Checker::new(LIMIT);
        assert_eq!(
            checker.feed(b"GET / HTTP/1.1\r\n"),
            Err(Violation::BadSignature)
        );
        // Once refused, always refused.
        assert_eq!(checker.feed(&greeting()), Err(Violation::BadSignature));

        let mut bad_end = greeting();
        bad_end[9] = 0;
        refused_in_every_chunking(&bad_end, 9, |v| *v == Violation::BadSignature);

        let mut zmtp2 = greeting();
        zmtp2[10] = 2;
        refused_in_every_chunking(&zmtp2, 10, |v| matches!(v, Violation::BadVersion(2, _)));

        let mut curve = greeting();
        curve[12..17].copy_from_slice(b"CURVE");
        refused_in_every_chunking(&curve, 12, |v| {
            *v == Violation::BadMechanism("CURVE".into())
        });

        let mut as_server = greeting();
        as_server[32] = 7;
        refused_in_every_chunking(&as_server, 32, |v| *v == Violation::BadAsServer(7));
    }

    #[test]
    fn later_versions_are_accepted() {
        let mut v4 = greeting();
        v4[10] = 4;
        v4.extend_from_slice(&ready());
        assert!(feed_cut(&v4, &[]).is_ok());
    }

    #[test]
    fn bad_flags_and_misplaced_commands_are_refused() {
        let reserved = [handshake(), vec![0x08, 0]].concat();
        refused_in_every_chunking(&reserved, handshake().len(), |v| {
            *v == Violation::ReservedFlags(0x08)
        });
        let command_more = [handshake(), frame(FLAG_COMMAND | FLAG_MORE, b"x")].concat();
        refused_in_every_chunking(&command_more, handshake().len(), |v| {
            *v == Violation::CommandWithMore
        });
        let mid_message = [
            handshake(),
            frame(FLAG_MORE, b"a"),
            frame(FLAG_COMMAND, b"x"),
        ]
        .concat();
        refused_in_every_chunking(&mid_message, handshake().len() + 3, |v| {
            *v == Violation::CommandWithMore
        });
        let big_command = [
            handshake(),
            long_header(FLAG_COMMAND, MAX_COMMAND_BYTES + 1),
        ]
        .concat();
        let mut checker = Checker::new(u64::MAX);
        assert_eq!(
            checker.feed(&big_command),
            Err(Violation::CommandTooLarge(MAX_COMMAND_BYTES + 1))
        );
    }

    #[test]
    fn random_streams_never_panic() {
        let mut rng = Rng::seeded(7);
        for round in 0..500 {
            let mut stream = if round % 2 == 0 { handshake() } else { vec![] };
            for _ in 0..rng.below(200) {
                stream.push(rng.below(256) as u8);
            }
            let mut checker = Checker::new(LIMIT);
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let n = (rng.below(rest.len() as u64) as usize).max(1);
                let _ = checker.feed(&rest[..n]);
                rest = &rest[n..];
            }
        }
    }
}
