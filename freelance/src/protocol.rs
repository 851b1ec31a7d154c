//! Typed frames of the three Freelance models: parse a [`Message`] into a command, build one
//! back. No sockets, no clock; every malformed input is a [`ProtocolError`], never a panic.
//!
//! # Formats
//!
//! | model | client sends | server answers |
//! |---|---|---|
//! | 1 (REQ → echo) | envelope, `""`, body… | envelope, `""`, the same body… |
//! | 2 (DEALER → sequence) | `""`, sequence, body… | `""`, sequence, `"OK"` |
//! | 3 (ROUTER → ROUTER, 10/FLP) | `"PING"` | `"PONG"` |
//! | 3 | control, body… | control, `"OK"` |
//!
//! Servers receive through a ROUTER, so every server-side message starts with the peer's
//! routing id; a model-3 client's link strips the server's routing id before parsing.

use bytes::Bytes;
use common::envelope::{self, Envelope};
use common::Message;

/// The FLP heartbeat request.
pub const PING: &[u8] = b"PING";
/// The FLP heartbeat answer.
pub const PONG: &[u8] = b"PONG";
/// The body every model-2 and model-3 server answers with.
pub const OK: &[u8] = b"OK";

/// Why a message was not understood: a shape error every protocol shares, or Freelance's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// No frames, no delimiter, a bad envelope or nothing after it.
    #[error(transparent)]
    Shape(#[from] envelope::FrameError),
    /// A lone frame where a control frame and a body were expected.
    #[error("missing control frame: expected [control, body…], got a single frame")]
    MissingControl,
    /// A reply with a control frame and nothing after it.
    #[error("reply has a control frame but no body")]
    MissingBody,
    /// A control frame that should be our decimal sequence number but is not.
    #[error("control frame {0:?} is not a sequence number")]
    BadSequence(String),
}

/// The control frame for request number `sequence`: its decimal text, as the Guide sends it.
pub fn sequence_frame(sequence: u64) -> Bytes {
    Bytes::from(sequence.to_string())
}

/// Reads a control frame written by [`sequence_frame`].
pub fn parse_sequence(frame: &[u8]) -> Result<u64, ProtocolError> {
    std::str::from_utf8(frame)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProtocolError::BadSequence(common::msg::frame_text(frame)))
}

/// Splits a request as a REP-style server sees it through its ROUTER into the envelope
/// (routing id, any address stack) and the non-empty body.
fn enveloped(message: Message) -> Result<(Envelope, Message), ProtocolError> {
    let (envelope, body) = Envelope::split(message)?;
    if body.is_empty() {
        return Err(envelope::FrameError::NoBody.into());
    }
    Ok((envelope, body))
}

/// Model 1 server: the echo of a REQ request, or why it is malformed.
pub fn echo_reply(message: Message) -> Result<Message, ProtocolError> {
    let (envelope, body) = enveloped(message)?;
    Ok(envelope.wrap(body))
}

/// Model 2 server: `[sequence, body…]` inside a REQ/DEALER envelope is answered with
/// `[sequence, "OK"]`; the sequence frame is returned unchanged, whatever it holds.
pub fn sequence_reply(message: Message) -> Result<Message, ProtocolError> {
    let (envelope, mut body) = enveloped(message)?;
    if body.len() < 2 {
        return Err(ProtocolError::MissingControl);
    }
    let control = body.pop_front().ok_or(ProtocolError::MissingControl)?;
    Ok(envelope.wrap(Message::new().with(control).with(OK)))
}

/// Model 2 client: the request a DEALER sends, `["", sequence, body…]`.
pub fn shotgun_request(sequence: u64, body: &Message) -> Message {
    let mut request = body.clone();
    request.push_front(sequence_frame(sequence));
    request.push_front(Bytes::new());
    request
}

/// Model 2 client: a reply as the DEALER receives it, `["", sequence, body…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedReply {
    /// The request number the server echoed.
    pub sequence: u64,
    /// The frames after the sequence (the Guide's servers send `"OK"`).
    pub body: Message,
}

impl SequencedReply {
    /// Parses `["", sequence, body…]`.
    pub fn parse(mut message: Message) -> Result<Self, ProtocolError> {
        match message.pop_front() {
            None => return Err(envelope::FrameError::Empty.into()),
            Some(delimiter) if !delimiter.is_empty() => {
                return Err(envelope::FrameError::MissingDelimiter.into())
            }
            Some(_) => {}
        }
        let control = message.pop_front().ok_or(ProtocolError::MissingControl)?;
        let sequence = parse_sequence(&control)?;
        if message.is_empty() {
            return Err(ProtocolError::MissingBody);
        }
        Ok(Self {
            sequence,
            body: message,
        })
    }
}

/// Model 3 (FLP) server side: what a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlpRequest {
    /// `[client, "PING"]`: answer `PONG`.
    Ping {
        /// The client's routing id.
        client: Bytes,
    },
    /// `[client, control, body…]`: answer `[control, "OK"]`.
    Request {
        /// The client's routing id.
        client: Bytes,
        /// The client's control frame, returned unchanged.
        control: Bytes,
        /// The request frames (at least one).
        body: Message,
    },
}

impl FlpRequest {
    /// Parses a message received on the server's ROUTER (routing id first).
    ///
    /// As in the reference server, any message whose control frame is `PING` is a ping.
    pub fn parse(mut message: Message) -> Result<Self, ProtocolError> {
        let client = message.pop_front().ok_or(envelope::FrameError::Empty)?;
        let control = message.pop_front().ok_or(ProtocolError::MissingControl)?;
        if control.as_ref() == PING {
            return Ok(Self::Ping { client });
        }
        if message.is_empty() {
            return Err(ProtocolError::MissingControl);
        }
        Ok(Self::Request {
            client,
            control,
            body: message,
        })
    }

    /// The answer, addressed to the client through the server's ROUTER.
    pub fn reply(self) -> Message {
        match self {
            Self::Ping { client } => Message::new().with(client).with(PONG),
            Self::Request {
                client, control, ..
            } => Message::new().with(client).with(control).with(OK),
        }
    }
}

/// Model 3 server: the answer to one FLP message, or why it is malformed.
pub fn flp_reply(message: Message) -> Result<Message, ProtocolError> {
    FlpRequest::parse(message).map(FlpRequest::reply)
}

/// Model 3 client side: what a server sent (its routing id already removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlpReply {
    /// `["PONG"]`.
    Pong,
    /// `[sequence, body…]`.
    Reply {
        /// The request number from our control frame.
        sequence: u64,
        /// The reply frames (at least one).
        body: Message,
    },
}

impl FlpReply {
    /// Parses a server's message.
    pub fn parse(mut message: Message) -> Result<Self, ProtocolError> {
        let control = message.pop_front().ok_or(envelope::FrameError::Empty)?;
        if control.as_ref() == PONG {
            return Ok(Self::Pong);
        }
        let sequence = parse_sequence(&control)?;
        if message.is_empty() {
            return Err(ProtocolError::MissingBody);
        }
        Ok(Self::Reply {
            sequence,
            body: message,
        })
    }
}

/// Model 3 client: the heartbeat, `["PING"]` (the link adds the server's routing id).
pub fn flp_ping() -> Message {
    Message::new().with(PING)
}

/// Model 3 client: request number `sequence`, `[sequence, body…]`.
pub fn flp_request(sequence: u64, body: &Message) -> Message {
    let mut request = body.clone();
    request.push_front(sequence_frame(sequence));
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use envelope::FrameError as Shape;

    fn msg(frames: &[&str]) -> Message {
        Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f.as_bytes())))
    }

    #[test]
    fn echo_returns_the_body_along_the_envelope() {
        let reply = echo_reply(msg(&["peer", "", "hello", "world"])).unwrap();
        assert_eq!(reply, msg(&["peer", "", "hello", "world"]));
        let proxied = echo_reply(msg(&["peer", "hop", "", "x"])).unwrap();
        assert_eq!(proxied, msg(&["peer", "hop", "", "x"]));
    }

    #[test]
    fn echo_rejects_missing_delimiter_and_empty_body() {
        assert_eq!(
            echo_reply(msg(&["peer", "hello"])),
            Err(Shape::MissingDelimiter.into())
        );
        assert_eq!(echo_reply(msg(&["peer", ""])), Err(Shape::NoBody.into()));
        assert_eq!(echo_reply(Message::new()), Err(Shape::Empty.into()));
    }

    #[test]
    fn sequence_server_answers_ok_with_the_same_control_frame() {
        let reply = sequence_reply(msg(&["peer", "", "17", "random name"])).unwrap();
        assert_eq!(reply, msg(&["peer", "", "17", "OK"]));
        assert_eq!(
            sequence_reply(msg(&["peer", "", "random name"])),
            Err(ProtocolError::MissingControl)
        );
        assert_eq!(
            sequence_reply(msg(&["peer", "17", "x"])),
            Err(Shape::MissingDelimiter.into())
        );
    }

    #[test]
    fn shotgun_request_and_reply_round_trip() {
        let request = shotgun_request(42, &msg(&["name"]));
        assert_eq!(request, msg(&["", "42", "name"]));
        let reply = SequencedReply::parse(msg(&["", "42", "OK"])).unwrap();
        assert_eq!(reply.sequence, 42);
        assert_eq!(reply.body, msg(&["OK"]));
        assert_eq!(
            SequencedReply::parse(msg(&["42", "OK"])),
            Err(Shape::MissingDelimiter.into())
        );
        assert_eq!(
            SequencedReply::parse(msg(&["", "x", "OK"])),
            Err(ProtocolError::BadSequence("x".into()))
        );
        assert_eq!(
            SequencedReply::parse(msg(&["", "1"])),
            Err(ProtocolError::MissingBody)
        );
        assert_eq!(
            SequencedReply::parse(msg(&[""])),
            Err(ProtocolError::MissingControl)
        );
    }

    #[test]
    fn flp_server_answers_ping_and_requests() {
        assert_eq!(flp_reply(msg(&["c", "PING"])).unwrap(), msg(&["c", "PONG"]));
        assert_eq!(
            flp_reply(msg(&["c", "7", "name"])).unwrap(),
            msg(&["c", "7", "OK"])
        );
        // An empty control frame is opaque to the server: it comes back unchanged.
        assert_eq!(
            flp_reply(msg(&["c", "", "x"])).unwrap(),
            msg(&["c", "", "OK"])
        );
    }

    #[test]
    fn flp_server_rejects_a_request_without_control_frame() {
        assert_eq!(
            FlpRequest::parse(msg(&["c", "name"])),
            Err(ProtocolError::MissingControl)
        );
        assert_eq!(
            FlpRequest::parse(msg(&["c"])),
            Err(ProtocolError::MissingControl)
        );
        assert_eq!(FlpRequest::parse(Message::new()), Err(Shape::Empty.into()));
    }

    #[test]
    fn flp_client_parses_pong_and_replies() {
        assert_eq!(FlpReply::parse(msg(&["PONG"])), Ok(FlpReply::Pong));
        assert_eq!(
            FlpReply::parse(msg(&["9", "OK"])),
            Ok(FlpReply::Reply {
                sequence: 9,
                body: msg(&["OK"])
            })
        );
        assert_eq!(
            FlpReply::parse(msg(&["9"])),
            Err(ProtocolError::MissingBody)
        );
        assert!(matches!(
            FlpReply::parse(msg(&["nine", "OK"])),
            Err(ProtocolError::BadSequence(_))
        ));
        assert_eq!(flp_request(3, &msg(&["n"])), msg(&["3", "n"]));
        assert_eq!(flp_ping(), msg(&["PING"]));
    }

    #[test]
    fn binary_control_frames_are_reported_in_hex() {
        let err = parse_sequence(&[0xff, 0x01]).unwrap_err();
        assert_eq!(err, ProtocolError::BadSequence("FF01".into()));
    }
}
