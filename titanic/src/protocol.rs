//! 9/TSP, the Titanic Service Protocol: the frames of the three `titanic.*` services, typed.
//!
//! TSP rides inside Majordomo: a client sends an MDP request to one of three services and gets
//! an MDP reply. This module only deals with the *bodies* of those requests and replies.
//!
//! | service | request body | reply body |
//! |---|---|---|
//! | `titanic.request` | service name, body frames… | status, UUID |
//! | `titanic.reply` | UUID | status, reply frames… |
//! | `titanic.close` | UUID | status |
//!
//! A status frame is three digits, optionally followed by a space and text that clients ignore:
//! `200` OK, `300` pending (retry later), `400` unknown (do not retry), `500` error (retry
//! later). We always *send* the bare three digits, because the Guide's C client compares the
//! whole frame with `"200"`; we *accept* the longer form from other servers.

use bytes::Bytes;
use common::Message;
use std::fmt;
use std::str::FromStr;

/// Name of the service that stores a request and answers its UUID.
pub const REQUEST_SERVICE: &str = "titanic.request";
/// Name of the service that answers the reply to a stored request, if there is one yet.
pub const REPLY_SERVICE: &str = "titanic.reply";
/// Name of the service that forgets a request and its reply.
pub const CLOSE_SERVICE: &str = "titanic.close";

/// What went wrong reading a TSP body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TspError {
    /// A `titanic.request` body without a service name frame.
    #[error("missing service name")]
    MissingService,
    /// A `titanic.request` whose service name frame is empty.
    #[error("empty service name")]
    EmptyService,
    /// A `titanic.request` with a service name but no body frames to forward.
    #[error("missing request body")]
    MissingBody,
    /// A `titanic.reply`/`titanic.close` body without a UUID frame.
    #[error("missing UUID")]
    MissingUuid,
    /// A UUID frame that is not 32 hex characters.
    #[error("malformed UUID {0:?} (expected 32 hex characters)")]
    BadUuid(String),
    /// A `titanic.reply`/`titanic.close` body with frames after the UUID.
    #[error("{0} unexpected frame(s) after the UUID")]
    ExtraFrames(usize),
    /// A reply without a status frame.
    #[error("missing status frame")]
    MissingStatus,
    /// A status frame that is not three digits with a known class (2xx–5xx).
    #[error("malformed status {0:?}")]
    BadStatus(String),
}

/// A request's identity: a v4 UUID, 122 bits from the operating system's random source (whoever
/// presents it may fetch or close the request, so it must not be guessable), written as 32 hex
/// characters without dashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u128);

impl RequestId {
    /// A fresh random (version 4) identity; `uuid` reads it from `getrandom`.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().as_u128())
    }

    /// The identity with these 16 bytes (big-endian, as UUIDs are written).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    /// The 16 bytes of the identity.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The identity as a frame: 32 upper-case hex characters, as CZMQ's `zuuid_str` prints.
    pub fn to_frame(self) -> Bytes {
        Bytes::from(self.to_string())
    }

    /// Reads a UUID frame: exactly 32 hex characters, either case.
    pub fn from_frame(frame: &[u8]) -> Result<Self, TspError> {
        let bad = || TspError::BadUuid(common::msg::frame_text(frame));
        if frame.len() != 32 || !frame.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let text = std::str::from_utf8(frame).map_err(|_| bad())?;
        u128::from_str_radix(text, 16).map(Self).map_err(|_| bad())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032X}", self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

impl FromStr for RequestId {
    type Err = TspError;

    fn from_str(s: &str) -> Result<Self, TspError> {
        Self::from_frame(s.as_bytes())
    }
}

/// The identity is journaled as a 16-byte MessagePack binary string.
impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = RequestId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("16 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<RequestId, E> {
                <[u8; 16]>::try_from(v)
                    .map(RequestId::from_bytes)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        deserializer.deserialize_bytes(Visit)
    }
}

/// A TSP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `200`: done; the rest of the reply is the answer.
    Ok,
    /// `300`: the reply is not there yet; ask again later.
    Pending,
    /// `400`: unknown request (or a malformed one); asking again will not help.
    Unknown,
    /// `500`: the server failed; ask again later.
    Error,
}

impl Status {
    /// The three digits sent on the wire.
    pub fn code(self) -> &'static str {
        match self {
            Status::Ok => "200",
            Status::Pending => "300",
            Status::Unknown => "400",
            Status::Error => "500",
        }
    }

    /// Reads a status frame: three digits, optionally a space and text. The class (first digit)
    /// decides, so a `201` from another implementation still reads as OK.
    pub fn from_frame(frame: &[u8]) -> Result<Self, TspError> {
        let bad = || TspError::BadStatus(common::msg::frame_text(frame));
        let (digits, rest) = frame.split_at(frame.len().min(3));
        if digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        if !rest.is_empty() && rest[0] != b' ' {
            return Err(bad());
        }
        match digits[0] {
            b'2' => Ok(Status::Ok),
            b'3' => Ok(Status::Pending),
            b'4' => Ok(Status::Unknown),
            b'5' => Ok(Status::Error),
            _ => Err(bad()),
        }
    }

    /// A reply consisting of this status alone.
    pub fn reply(self) -> Message {
        Message::new().with(self.code())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A `titanic.request` body: the service to call later and the frames to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// The MDP service the request is for (e.g. `echo`).
    pub service: Bytes,
    /// The request frames to forward, at least one.
    pub body: Vec<Bytes>,
}

impl NewRequest {
    /// Reads a `titanic.request` body.
    pub fn parse(body: Message) -> Result<Self, TspError> {
        let mut frames = body.into_frames();
        let service = frames.pop_front().ok_or(TspError::MissingService)?;
        if service.is_empty() {
            return Err(TspError::EmptyService);
        }
        if frames.is_empty() {
            return Err(TspError::MissingBody);
        }
        Ok(Self {
            service,
            body: frames.into(),
        })
    }

    /// The `titanic.request` body a client sends.
    pub fn to_message(&self) -> Message {
        let mut m = Message::new().with(self.service.clone());
        for frame in &self.body {
            m.push_back(frame.clone());
        }
        m
    }
}

/// Reads the body of a `titanic.reply` or `titanic.close` request: exactly one UUID frame.
pub fn parse_uuid_body(body: &Message) -> Result<RequestId, TspError> {
    let id = RequestId::from_frame(body.first().ok_or(TspError::MissingUuid)?)?;
    match body.len() {
        1 => Ok(id),
        n => Err(TspError::ExtraFrames(n - 1)),
    }
}

/// The body of a `titanic.reply` or `titanic.close` request for `id`.
pub fn uuid_body(id: RequestId) -> Message {
    Message::new().with(id.to_frame())
}

/// The `titanic.request` answer once the request is stored: `200`, UUID.
pub fn accepted(id: RequestId) -> Message {
    Status::Ok.reply().with(id.to_frame())
}

/// The `titanic.reply` answer when the reply is there: `200`, reply frames.
pub fn reply_found(body: &[Bytes]) -> Message {
    let mut m = Status::Ok.reply();
    for frame in body {
        m.push_back(frame.clone());
    }
    m
}

/// A TSP answer as a client sees it: the status and the frames after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status frame.
    pub status: Status,
    /// Everything after the status frame.
    pub rest: Message,
}

impl Answer {
    /// Splits a reply body into its status and the rest.
    pub fn parse(mut reply: Message) -> Result<Self, TspError> {
        let status = Status::from_frame(&reply.pop_front().ok_or(TspError::MissingStatus)?)?;
        Ok(Self {
            status,
            rest: reply,
        })
    }

    /// The UUID of a `200` answer to `titanic.request`.
    pub fn uuid(&self) -> Result<RequestId, TspError> {
        RequestId::from_frame(self.rest.first().ok_or(TspError::MissingUuid)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_32_upper_hex_and_parses_either_case() {
        let id = RequestId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert_eq!(RequestId::from_frame(text.as_bytes()).unwrap(), id);
        assert_eq!(text.to_lowercase().parse::<RequestId>().unwrap(), id);
        assert_eq!(RequestId::from_bytes(id.to_bytes()), id);
    }

    #[test]
    fn malformed_uuids_are_rejected() {
        for bad in [
            &b""[..],
            b"0123",
            b"0123456789ABCDEF0123456789ABCDE",   // 31
            b"0123456789ABCDEF0123456789ABCDEF0", // 33
            b"0123456789ABCDEF0123456789ABCDEG",
            b"01234567-89AB-CDEF-0123-456789ABCDEF",
            b"+123456789ABCDEF0123456789ABCDEF",
        ] {
            assert!(
                matches!(RequestId::from_frame(bad), Err(TspError::BadUuid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn status_frames_read_by_class_and_allow_text() {
        assert_eq!(Status::from_frame(b"200").unwrap(), Status::Ok);
        assert_eq!(Status::from_frame(b"300").unwrap(), Status::Pending);
        assert_eq!(Status::from_frame(b"400 no such").unwrap(), Status::Unknown);
        assert_eq!(Status::from_frame(b"503").unwrap(), Status::Error);
        for bad in [&b""[..], b"20", b"2000", b"200x", b"abc", b"100", b"600"] {
            assert!(Status::from_frame(bad).is_err(), "{bad:?}");
        }
        for s in [Status::Ok, Status::Pending, Status::Unknown, Status::Error] {
            assert_eq!(Status::from_frame(s.code().as_bytes()).unwrap(), s);
        }
    }

    #[test]
    fn new_request_needs_a_service_and_a_body() {
        let r = NewRequest::parse(Message::from_frames(["echo", "a", "b"])).unwrap();
        assert_eq!(r.service, "echo");
        assert_eq!(r.body, vec![Bytes::from("a"), Bytes::from("b")]);
        assert_eq!(r.to_message(), Message::from_frames(["echo", "a", "b"]));
        assert_eq!(
            NewRequest::parse(Message::new()),
            Err(TspError::MissingService)
        );
        assert_eq!(
            NewRequest::parse(Message::from_frames(["", "x"])),
            Err(TspError::EmptyService)
        );
        assert_eq!(
            NewRequest::parse(Message::from_frames(["echo"])),
            Err(TspError::MissingBody)
        );
    }

    #[test]
    fn uuid_bodies_are_exactly_one_frame() {
        let id = RequestId::random();
        assert_eq!(parse_uuid_body(&uuid_body(id)), Ok(id));
        assert_eq!(parse_uuid_body(&Message::new()), Err(TspError::MissingUuid));
        assert_eq!(
            parse_uuid_body(&uuid_body(id).with("x")),
            Err(TspError::ExtraFrames(1))
        );
        assert!(matches!(
            parse_uuid_body(&Message::from_frames(["nope"])),
            Err(TspError::BadUuid(_))
        ));
    }

    #[test]
    fn answers_split_status_and_rest() {
        let id = RequestId::random();
        let a = Answer::parse(accepted(id)).unwrap();
        assert_eq!(a.status, Status::Ok);
        assert_eq!(a.uuid().unwrap(), id);
        let a = Answer::parse(reply_found(&[Bytes::from("hi")])).unwrap();
        assert_eq!(a.rest, Message::from_frames(["hi"]));
        assert_eq!(
            Answer::parse(Status::Pending.reply()).unwrap().status,
            Status::Pending
        );
        assert_eq!(Answer::parse(Message::new()), Err(TspError::MissingStatus));
    }
}
