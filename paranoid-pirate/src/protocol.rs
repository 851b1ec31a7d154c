//! 6/PPP frames as types: what a worker says to the queue, what the queue says to a worker,
//! and the client envelope both carry.
//!
//! # Format
//!
//! | command | frames (after the ROUTER's routing-id frame, if any) |
//! |---|---|
//! | READY (worker → queue) | `0x01` |
//! | HEARTBEAT (both ways) | `0x02` |
//! | request (queue → worker), reply (worker → queue) | address stack, `""`, body frames |
//!
//! Everything that arrives from the network goes through [`FromWorker::parse`],
//! [`ToWorker::parse`] or [`Routed::parse`]; anything that does not fit is a [`FrameError`]
//! which the caller logs and drops. Business logic only ever sees these types.

use bytes::Bytes;
use common::msg::frame_text;
use common::Message;
use std::fmt;

/// READY: the first message of a worker on a fresh connection.
pub const READY: u8 = 0x01;
/// HEARTBEAT: "I am alive", sent both ways every interval.
pub const HEARTBEAT: u8 = 0x02;
/// ZMTP limits a routing identity to 255 bytes; a longer address frame is garbage.
pub const MAX_ADDRESS_LEN: usize = 255;
/// Deepest address stack accepted; real paths through brokers are a few hops.
pub const MAX_HOPS: usize = 16;
/// Most body frames accepted in one request or reply.
pub const MAX_BODY_FRAMES: usize = 64;

/// Why a message is not valid 6/PPP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A message with no frames at all (or only the routing id).
    #[error("empty message")]
    Empty,
    /// A one-frame message whose single byte is not a known command.
    #[error("unknown command byte 0x{0:02X}")]
    UnknownCommand(u8),
    /// A one-frame message that is not exactly one byte long.
    #[error("command frame of {0} bytes (expected 1)")]
    BadCommandLength(usize),
    /// A command that is valid 6/PPP but not in this direction (e.g. READY from the queue).
    #[error("{0} is not expected in this direction")]
    WrongDirection(&'static str),
    /// A multi-frame message without the empty delimiter that ends the address stack.
    #[error("no empty delimiter after the address stack")]
    NoDelimiter,
    /// The message starts with the empty delimiter: there is no address to reply to.
    #[error("empty address stack")]
    NoAddress,
    /// An address frame is empty or longer than a routing identity can be.
    #[error("address frame of {0} bytes (allowed 1 to 255)")]
    BadAddress(usize),
    /// More address frames than [`MAX_HOPS`].
    #[error("address stack of {0} frames (at most {MAX_HOPS})")]
    TooManyHops(usize),
    /// Nothing after the delimiter.
    #[error("no body after the envelope")]
    NoBody,
    /// More body frames than [`MAX_BODY_FRAMES`].
    #[error("body of {0} frames (at most {MAX_BODY_FRAMES})")]
    TooManyFrames(usize),
}

/// The address stack of a client request, without its empty delimiter.
///
/// Validated: 1 to [`MAX_HOPS`] frames, each 1 to 255 bytes. The first frame is the identity
/// the queue's frontend ROUTER gave the client; further frames come from brokers in between.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    frames: Vec<Bytes>,
}

impl Envelope {
    /// An envelope of the given address frames, checked.
    pub fn new<I, F>(frames: I) -> Result<Self, FrameError>
    where
        I: IntoIterator<Item = F>,
        F: Into<Bytes>,
    {
        let frames: Vec<Bytes> = frames.into_iter().map(Into::into).collect();
        if frames.is_empty() {
            return Err(FrameError::NoAddress);
        }
        if frames.len() > MAX_HOPS {
            return Err(FrameError::TooManyHops(frames.len()));
        }
        if let Some(bad) = frames
            .iter()
            .find(|f| f.is_empty() || f.len() > MAX_ADDRESS_LEN)
        {
            return Err(FrameError::BadAddress(bad.len()));
        }
        Ok(Self { frames })
    }

    /// The address frames, outermost (the client's identity at the queue) first.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.frames.iter().map(|a| frame_text(a)))
            .finish()
    }
}

/// A request or a reply: the client's envelope and the body frames.
///
/// The queue passes it through unchanged: a request travels client → queue → worker with its
/// envelope, the worker answers with the same envelope, so the queue knows which client to
/// return the reply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Where the reply goes.
    pub envelope: Envelope,
    /// The application payload (at least one frame).
    pub body: Message,
}

impl Routed {
    /// Parses `[address…, "", body…]`.
    pub fn parse(mut message: Message) -> Result<Self, FrameError> {
        if message.is_empty() {
            return Err(FrameError::Empty);
        }
        let envelope = message.split_envelope().ok_or(FrameError::NoDelimiter)?;
        let mut addresses = envelope.into_frames();
        addresses.pop_back(); // the delimiter itself
        let envelope = Envelope::new(addresses)?;
        match message.len() {
            0 => Err(FrameError::NoBody),
            n if n > MAX_BODY_FRAMES => Err(FrameError::TooManyFrames(n)),
            _ => Ok(Self {
                envelope,
                body: message,
            }),
        }
    }

    /// The same envelope with a different body: what a worker sends back.
    pub fn reply(&self, body: Message) -> Self {
        Self {
            envelope: self.envelope.clone(),
            body,
        }
    }

    /// `[address…, "", body…]`.
    pub fn to_message(&self) -> Message {
        let mut message = Message::from_frames(self.envelope.frames.iter().cloned());
        message.push_back(Bytes::new());
        message.append(self.body.clone());
        message
    }
}

/// Splits the single-byte command frames from the multi-frame request/reply shape.
enum Shape {
    Command(u8),
    Routed(Routed),
}

fn shape(message: Message) -> Result<Shape, FrameError> {
    match message.len() {
        0 => Err(FrameError::Empty),
        1 => {
            let frame = message.first().expect("one frame");
            match frame[..] {
                [byte] => Ok(Shape::Command(byte)),
                _ => Err(FrameError::BadCommandLength(frame.len())),
            }
        }
        _ => Routed::parse(message).map(Shape::Routed),
    }
}

/// What a worker sends to the queue (after the queue's ROUTER strips the worker identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromWorker {
    /// "I am new here, give me work."
    Ready,
    /// "Still alive."
    Heartbeat,
    /// The answer to a request, with the request's envelope.
    Reply(Routed),
}

impl FromWorker {
    /// Parses a worker's message (without the routing-id frame).
    pub fn parse(message: Message) -> Result<Self, FrameError> {
        match shape(message)? {
            Shape::Command(READY) => Ok(Self::Ready),
            Shape::Command(HEARTBEAT) => Ok(Self::Heartbeat),
            Shape::Command(other) => Err(FrameError::UnknownCommand(other)),
            Shape::Routed(reply) => Ok(Self::Reply(reply)),
        }
    }

    /// The frames a worker sends.
    pub fn to_message(&self) -> Message {
        match self {
            Self::Ready => Message::from_frames([Bytes::from_static(&[READY])]),
            Self::Heartbeat => Message::from_frames([Bytes::from_static(&[HEARTBEAT])]),
            Self::Reply(reply) => reply.to_message(),
        }
    }
}

/// What the queue sends to a worker (before the queue's ROUTER routing-id frame is added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToWorker {
    /// "Still alive."
    Heartbeat,
    /// Work to do; the reply must carry the same envelope.
    Request(Routed),
}

impl ToWorker {
    /// Parses a message a worker received from the queue.
    pub fn parse(message: Message) -> Result<Self, FrameError> {
        match shape(message)? {
            Shape::Command(HEARTBEAT) => Ok(Self::Heartbeat),
            Shape::Command(READY) => Err(FrameError::WrongDirection("READY")),
            Shape::Command(other) => Err(FrameError::UnknownCommand(other)),
            Shape::Routed(request) => Ok(Self::Request(request)),
        }
    }

    /// The frames the queue sends (without the routing id).
    pub fn to_message(&self) -> Message {
        match self {
            Self::Heartbeat => Message::from_frames([Bytes::from_static(&[HEARTBEAT])]),
            Self::Request(request) => request.to_message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(frames: &[&[u8]]) -> Message {
        Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)))
    }

    #[test]
    fn commands_round_trip() {
        for cmd in [FromWorker::Ready, FromWorker::Heartbeat] {
            assert_eq!(FromWorker::parse(cmd.to_message()), Ok(cmd));
        }
        assert_eq!(FromWorker::Ready.to_message(), msg(&[&[0x01]]));
        assert_eq!(ToWorker::Heartbeat.to_message(), msg(&[&[0x02]]));
        assert_eq!(ToWorker::parse(msg(&[&[0x02]])), Ok(ToWorker::Heartbeat));
    }

    #[test]
    fn request_and_reply_keep_the_whole_envelope() {
        let wire = msg(&[b"client", b"hop2", b"", b"17", b"extra"]);
        let routed = Routed::parse(wire.clone()).unwrap();
        assert_eq!(routed.envelope.frames().len(), 2);
        assert_eq!(routed.body, msg(&[b"17", b"extra"]));
        assert_eq!(routed.to_message(), wire);
        let reply = routed.reply(msg(&[b"ok"]));
        assert_eq!(reply.to_message(), msg(&[b"client", b"hop2", b"", b"ok"]));
        assert_eq!(
            FromWorker::parse(reply.to_message()),
            Ok(FromWorker::Reply(reply))
        );
        assert!(matches!(
            ToWorker::parse(wire),
            Ok(ToWorker::Request(r)) if r == routed
        ));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(FromWorker::parse(Message::new()), Err(FrameError::Empty));
        assert_eq!(
            FromWorker::parse(msg(&[&[0x07]])),
            Err(FrameError::UnknownCommand(7))
        );
        assert_eq!(
            FromWorker::parse(msg(&[&[0x01, 0x01]])),
            Err(FrameError::BadCommandLength(2))
        );
        assert_eq!(
            FromWorker::parse(msg(&[b""])),
            Err(FrameError::BadCommandLength(0))
        );
        assert_eq!(
            FromWorker::parse(msg(&[&[0x01], b"x"])),
            Err(FrameError::NoDelimiter)
        );
        assert_eq!(
            FromWorker::parse(msg(&[b"", b"body"])),
            Err(FrameError::NoAddress)
        );
        assert_eq!(
            FromWorker::parse(msg(&[b"client", b""])),
            Err(FrameError::NoBody)
        );
        let huge = vec![b'x'; 256];
        assert_eq!(
            FromWorker::parse(msg(&[&huge, b"", b"1"])),
            Err(FrameError::BadAddress(256))
        );
        let deep: Vec<&[u8]> = std::iter::repeat_n(&b"a"[..], MAX_HOPS + 1)
            .chain([&b""[..], b"1"])
            .collect();
        assert_eq!(
            FromWorker::parse(msg(&deep)),
            Err(FrameError::TooManyHops(MAX_HOPS + 1))
        );
        let wide: Vec<&[u8]> = [&b"c"[..], b""]
            .into_iter()
            .chain(std::iter::repeat_n(&b"b"[..], MAX_BODY_FRAMES + 1))
            .collect();
        assert_eq!(
            Routed::parse(msg(&wide)),
            Err(FrameError::TooManyFrames(MAX_BODY_FRAMES + 1))
        );
        assert_eq!(
            ToWorker::parse(msg(&[&[0x01]])),
            Err(FrameError::WrongDirection("READY"))
        );
    }

    #[test]
    fn an_address_of_exactly_255_bytes_is_fine() {
        let max = vec![b'x'; MAX_ADDRESS_LEN];
        assert!(Routed::parse(msg(&[&max, b"", b"1"])).is_ok());
    }
}
