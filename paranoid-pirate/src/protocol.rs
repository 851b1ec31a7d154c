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
use common::envelope::ppp::{HEARTBEAT, READY};
use common::envelope::Envelope;
pub use common::envelope::FrameError;
use common::Message;

/// Most body frames accepted in one request or reply.
pub const MAX_BODY_FRAMES: usize = 64;

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
    pub fn parse(message: Message) -> Result<Self, FrameError> {
        let (envelope, body) = Envelope::split(message)?;
        match body.len() {
            0 => Err(FrameError::NoBody),
            got if got > MAX_BODY_FRAMES => Err(FrameError::TooManyFrames {
                got,
                max: MAX_BODY_FRAMES,
            }),
            _ => Ok(Self { envelope, body }),
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
        self.envelope.wrap(self.body.clone())
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
            Err(FrameError::MissingDelimiter)
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
            Err(FrameError::IdentityTooLong(256))
        );
        let deep: Vec<&[u8]> = std::iter::repeat_n(&b"a"[..], 17)
            .chain([&b""[..], b"1"])
            .collect();
        assert_eq!(
            FromWorker::parse(msg(&deep)),
            Err(FrameError::TooManyHops(17))
        );
        let wide: Vec<&[u8]> = [&b"c"[..], b""]
            .into_iter()
            .chain(std::iter::repeat_n(&b"b"[..], MAX_BODY_FRAMES + 1))
            .collect();
        assert_eq!(
            Routed::parse(msg(&wide)),
            Err(FrameError::TooManyFrames {
                got: MAX_BODY_FRAMES + 1,
                max: MAX_BODY_FRAMES
            })
        );
        assert_eq!(
            ToWorker::parse(msg(&[&[0x01]])),
            Err(FrameError::WrongDirection("READY"))
        );
    }

    #[test]
    fn an_address_of_exactly_255_bytes_is_fine() {
        let max = vec![b'x'; 255];
        assert!(Routed::parse(msg(&[&max, b"", b"1"])).is_ok());
    }
}
