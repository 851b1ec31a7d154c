//! The ROUTER envelope, validated once for every pattern, and the one vocabulary of frame errors.
//!
//! A ROUTER socket hands over `[hop…, "", body…]`: the peer's routing id, any address frames
//! proxies in between pushed, an empty delimiter, then the body. [`Envelope::split`] checks that
//! routing prefix against the one set of limits ([`MAX_HOPS`], [`MAX_IDENTITY`]) and
//! [`Envelope::wrap`] puts it back in front of a reply. Both move [`Bytes`], never copy them.
//!
//! Every protocol reports a malformed message with a [`FrameError`]; a protocol adds its own
//! error enum only for cases that exist nowhere else (Majordomo's missing service name, …).

use crate::Message;
use bytes::Bytes;

/// The one-byte commands of 6/PPP (Paranoid Pirate; Simple Pirate's READY is the same byte),
/// apart from Majordomo's commands of the same names.
pub mod ppp {
    /// READY: a worker's first message on a fresh connection.
    pub const READY: u8 = 0x01;
    /// HEARTBEAT: "still alive", sent both ways every interval.
    pub const HEARTBEAT: u8 = 0x02;
}

/// Most address frames an envelope may carry: real paths through brokers are a few hops.
pub const MAX_HOPS: usize = 16;
/// Longest address frame: ZMTP limits a routing id to 255 bytes, so longer is garbage.
pub const MAX_IDENTITY: usize = 255;

/// Why a message was not understood. The caller logs it (`E:`) and drops the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No frames at all where some were expected.
    #[error("empty message")]
    Empty,
    /// Fewer frames than the shape needs.
    #[error("{got} frame(s), at least {want} expected")]
    TooFewFrames {
        /// Frames received.
        got: usize,
        /// Frames the shape needs at least.
        want: usize,
    },
    /// No empty delimiter frame where the shape needs one.
    #[error("no empty delimiter frame after the address")]
    MissingDelimiter,
    /// The delimiter comes first: there is no address to reply to.
    #[error("empty address stack")]
    NoAddress,
    /// More address frames than [`MAX_HOPS`].
    #[error("address stack of {0} frames (at most {MAX_HOPS})")]
    TooManyHops(usize),
    /// An address frame longer than [`MAX_IDENTITY`].
    #[error("address frame of {0} bytes exceeds the {MAX_IDENTITY}-byte limit")]
    IdentityTooLong(usize),
    /// Nothing after the envelope where a body is needed.
    #[error("empty body after the envelope")]
    NoBody,
    /// More body frames than the protocol accepts.
    #[error("body of {got} frames (at most {max})")]
    TooManyFrames {
        /// Body frames received.
        got: usize,
        /// The protocol's limit.
        max: usize,
    },
    /// A one-byte command the protocol does not define.
    #[error("unknown command byte 0x{0:02X}")]
    UnknownCommand(u8),
    /// A command frame that is not exactly one byte long.
    #[error("command frame of {0} bytes (expected 1)")]
    BadCommandLength(usize),
    /// A valid command in the wrong direction (e.g. READY sent to a worker).
    #[error("{0} is not expected in this direction")]
    WrongDirection(&'static str),
    /// A protocol header frame that is not the one expected (shown cut to 32 bytes).
    #[error("unknown protocol header {0:?}")]
    WrongHeader(String),
}

impl FrameError {
    /// [`FrameError::WrongHeader`] for `frame`, as text (hex if binary), cut after 32 bytes.
    pub fn wrong_header(frame: &[u8]) -> Self {
        let mut text = crate::msg::frame_text(&frame[..frame.len().min(32)]);
        if frame.len() > 32 {
            text.push('…');
        }
        Self::WrongHeader(text)
    }
}

/// The validated routing prefix of a message: 1 to [`MAX_HOPS`] address frames of 1 to
/// [`MAX_IDENTITY`] bytes, the sender's routing id first. The delimiter is implied.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    hops: Vec<Bytes>,
}

impl Envelope {
    /// Splits `[hop…, "", body…]` into the envelope and the body (which may be empty: whether
    /// that is allowed is the protocol's call, [`FrameError::NoBody`] if not).
    pub fn split(message: Message) -> Result<(Envelope, Message), FrameError> {
        if message.is_empty() {
            return Err(FrameError::Empty);
        }
        let mut frames = message.into_frames();
        let delimiter = frames
            .iter()
            .position(Bytes::is_empty)
            .ok_or(FrameError::MissingDelimiter)?;
        if delimiter == 0 {
            return Err(FrameError::NoAddress);
        }
        if delimiter > MAX_HOPS {
            return Err(FrameError::TooManyHops(delimiter));
        }
        let mut hops: Vec<Bytes> = frames.drain(..=delimiter).collect();
        hops.pop(); // the delimiter
        if let Some(long) = hops.iter().find(|hop| hop.len() > MAX_IDENTITY) {
            return Err(FrameError::IdentityTooLong(long.len()));
        }
        Ok((Envelope { hops }, Message::from_frames(frames)))
    }

    /// `[hop…, "", body…]`: `body` addressed back along this envelope.
    pub fn wrap(&self, body: Message) -> Message {
        let mut message = Message::from_frames(self.hops.iter().cloned());
        message.push_back(Bytes::new());
        message.append(body);
        message
    }

    /// The address frames without the delimiter, the sender's routing id first.
    pub fn frames(&self) -> &[Bytes] {
        &self.hops
    }

    /// The first address frame: the peer the ROUTER received the message from.
    pub fn sender(&self) -> &Bytes {
        &self.hops[0]
    }

    /// The address frames as a message, without the delimiter.
    pub fn into_frames(self) -> Message {
        Message::from_frames(self.hops)
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hops.iter().map(|hop| crate::msg::frame_text(hop)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(frames: &[&[u8]]) -> Message {
        Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)))
    }

    #[test]
    fn split_then_wrap_restores_the_message() {
        let wire = m(&[b"client", b"proxy", b"", b"body", b"", b"more"]);
        let (envelope, body) = Envelope::split(wire.clone()).unwrap();
        assert_eq!(envelope.frames(), [&b"client"[..], b"proxy"]);
        assert_eq!(envelope.sender(), &b"client"[..]);
        assert_eq!(body, m(&[b"body", b"", b"more"]));
        assert_eq!(envelope.wrap(body), wire);
        assert_eq!(envelope.into_frames(), m(&[b"client", b"proxy"]));
    }

    #[test]
    fn split_moves_the_frames_without_copying() {
        let body = Bytes::from(vec![7u8; 64]);
        let wire = Message::from_frames([Bytes::from_static(b"c"), Bytes::new(), body.clone()]);
        let (_, got) = Envelope::split(wire).unwrap();
        assert_eq!(got.first().unwrap().as_ptr(), body.as_ptr());
    }

    #[test]
    fn an_empty_body_is_the_protocols_call() {
        let (envelope, body) = Envelope::split(m(&[b"c", b""])).unwrap();
        assert_eq!(envelope.frames().len(), 1);
        assert!(body.is_empty());
    }

    #[test]
    fn every_malformed_shape_is_a_typed_error() {
        let cases: [(Message, FrameError); 5] = [
            (Message::new(), FrameError::Empty),
            (m(&[b"c", b"body"]), FrameError::MissingDelimiter),
            (m(&[b"", b"body"]), FrameError::NoAddress),
            (m(&[b""]), FrameError::NoAddress),
            (
                m(&[b"c", &[b'x'; 300], b"", b"1"]),
                FrameError::IdentityTooLong(300),
            ),
        ];
        for (message, error) in cases {
            assert_eq!(Envelope::split(message.clone()), Err(error), "{message:?}");
        }
    }

    #[test]
    fn limits_hold_at_the_boundary() {
        let hops = |n: usize| {
            let mut frames: Vec<&[u8]> = vec![b"h"; n];
            frames.extend([&b""[..], b"1"]);
            m(&frames)
        };
        assert!(Envelope::split(hops(MAX_HOPS)).is_ok());
        assert_eq!(
            Envelope::split(hops(MAX_HOPS + 1)),
            Err(FrameError::TooManyHops(MAX_HOPS + 1))
        );
        let id = |n: usize| m(&[&vec![b'x'; n], b"", b"1"]);
        assert!(Envelope::split(id(MAX_IDENTITY)).is_ok());
        assert_eq!(
            Envelope::split(id(MAX_IDENTITY + 1)),
            Err(FrameError::IdentityTooLong(MAX_IDENTITY + 1))
        );
    }

    #[test]
    fn errors_read_as_the_log_lines_expect() {
        assert_eq!(
            FrameError::IdentityTooLong(300).to_string(),
            "address frame of 300 bytes exceeds the 255-byte limit"
        );
        assert_eq!(
            FrameError::UnknownCommand(7).to_string(),
            "unknown command byte 0x07"
        );
        assert_eq!(
            FrameError::wrong_header(&[0xff; 40]),
            FrameError::WrongHeader(format!("{}…", "FF".repeat(32)))
        );
    }
}
