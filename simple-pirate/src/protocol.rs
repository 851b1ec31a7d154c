//! Simple Pirate frames as typed values, in both directions.
//!
//! # Format
//! Frames as the queue's ROUTER sockets see them (the first frame is the routing id the ROUTER
//! adds; `""` is an empty delimiter frame):
//!
//! | from | frames | type |
//! |---|---|---|
//! | client (frontend) | client-id, [more addresses…], `""`, body… | [`Request`] |
//! | worker (backend) | worker-id, `""`, `0x01` | [`WorkerMessage::Ready`] |
//! | worker (backend) | worker-id, `""`, client-id, [more addresses…], `""`, body… | [`WorkerMessage::Reply`] |
//!
//! The queue sends a request to a worker as worker-id, `""`, client envelope, body; the worker's
//! REQ socket strips the leading `""`, and the reply comes back the same way. A reply goes to the
//! frontend as the client envelope followed by the body.

use bytes::Bytes;
use common::envelope::ppp::READY;
use common::envelope::Envelope;
pub use common::envelope::FrameError;
use common::msg::frame_text;
use common::Message;
use std::fmt;

/// A peer's routing id as a ROUTER socket reports it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PeerId(Bytes);

impl PeerId {
    /// Wraps a routing id.
    pub fn new(id: impl Into<Bytes>) -> Self {
        Self(id.into())
    }

    /// The raw id.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&frame_text(&self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// A client request: where it came from and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Client id (and any further addresses).
    pub envelope: Envelope,
    /// The request frames.
    pub body: Message,
}

impl Request {
    /// The client that sent it.
    pub fn client(&self) -> PeerId {
        PeerId::new(self.envelope.sender().clone())
    }

    /// Frames for the backend ROUTER: `worker`, `""`, envelope, `""`, body.
    pub fn to_worker(&self, worker: &PeerId) -> Message {
        let mut out = self.envelope.wrap(self.body.clone());
        out.push_front(Bytes::new());
        out.push_front(worker.as_bytes().clone());
        out
    }
}

/// A worker's reply on its way back to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The client's envelope, as the request carried it (client id first).
    pub envelope: Envelope,
    /// The reply frames.
    pub body: Message,
}

impl Reply {
    /// The client it is for.
    pub fn client(&self) -> PeerId {
        PeerId::new(self.envelope.sender().clone())
    }

    /// Frames for the frontend ROUTER: envelope (client id first), `""`, body.
    pub fn to_client(&self) -> Message {
        self.envelope.wrap(self.body.clone())
    }
}

/// What a worker can say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerMessage {
    /// The worker is up and waiting for a request.
    Ready,
    /// The answer to the request the worker was given; the worker is ready again.
    Reply(Reply),
}

impl WorkerMessage {
    /// Frames a worker's REQ socket sends for this message (REQ adds the delimiter).
    pub fn to_frames(&self) -> Message {
        match self {
            WorkerMessage::Ready => Message::from_frames([Bytes::from_static(&[READY])]),
            WorkerMessage::Reply(reply) => reply.to_client(),
        }
    }
}

/// A sender's routing id as text, for log lines about messages that failed to parse.
pub fn frame_label(id: &Bytes) -> String {
    if id.is_empty() {
        "?".to_owned()
    } else {
        frame_text(id)
    }
}

/// Splits `frames` into a valid envelope and a non-empty body.
fn envelope_and_body(frames: Message) -> Result<(Envelope, Message), FrameError> {
    let (envelope, body) = Envelope::split(frames)?;
    if body.is_empty() {
        return Err(FrameError::NoBody);
    }
    Ok((envelope, body))
}

/// Parses what the frontend ROUTER received from a client.
pub fn parse_request(message: Message) -> Result<Request, FrameError> {
    if message.len() < 3 {
        return Err(FrameError::TooFewFrames {
            got: message.len(),
            want: 3,
        });
    }
    let (envelope, body) = envelope_and_body(message)?;
    Ok(Request { envelope, body })
}

/// Parses what the backend ROUTER received from a worker: its id and the message.
pub fn parse_worker(mut message: Message) -> Result<(PeerId, WorkerMessage), FrameError> {
    let got = message.len();
    if got < 3 {
        return Err(FrameError::TooFewFrames { got, want: 3 });
    }
    let worker = PeerId::new(message.pop_front().unwrap_or_default());
    if message.pop_front().is_some_and(|f| !f.is_empty()) {
        return Err(FrameError::MissingDelimiter);
    }
    if message.len() == 1 {
        let frame = message.pop_front().unwrap_or_default();
        return match frame.as_ref() {
            [READY] => Ok((worker, WorkerMessage::Ready)),
            [other] => Err(FrameError::UnknownCommand(*other)),
            _ => Err(FrameError::BadCommandLength(frame.len())),
        };
    }
    let reply = parse_work(message)?;
    Ok((worker, WorkerMessage::Reply(reply)))
}

/// Parses a request as a worker's REQ socket hands it over: client envelope, body.
pub fn parse_work(message: Message) -> Result<Reply, FrameError> {
    let (envelope, body) = envelope_and_body(message)?;
    Ok(Reply { envelope, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(frames: &[&[u8]]) -> Message {
        Message::from_frames(frames.iter().map(|f| Bytes::copy_from_slice(f)))
    }

    #[test]
    fn request_from_a_req_client_round_trips_to_the_worker() {
        let req = parse_request(m(&[b"C1", b"", b"17"])).unwrap();
        assert_eq!(req.envelope.frames(), [&b"C1"[..]]);
        assert_eq!(req.body, m(&[b"17"]));
        assert_eq!(req.client(), PeerId::new("C1"));
        assert_eq!(
            req.to_worker(&PeerId::new("W1")),
            m(&[b"W1", b"", b"C1", b"", b"17"])
        );
    }

    #[test]
    fn request_keeps_a_multi_hop_envelope_and_multi_frame_body() {
        let req = parse_request(m(&[b"C1", b"P1", b"", b"a", b"b"])).unwrap();
        assert_eq!(req.envelope.frames(), [&b"C1"[..], b"P1"]);
        assert_eq!(req.body, m(&[b"a", b"b"]));
    }

    #[test]
    fn malformed_requests_are_typed_errors() {
        assert_eq!(
            parse_request(m(&[b"C1", b"17"])),
            Err(FrameError::TooFewFrames { got: 2, want: 3 })
        );
        assert_eq!(
            parse_request(m(&[b"C1", b"17", b"18"])),
            Err(FrameError::MissingDelimiter)
        );
        assert_eq!(
            parse_request(m(&[b"C1", b"x", b""])),
            Err(FrameError::NoBody)
        );
        assert_eq!(
            parse_request(m(&[b"", b"", b"x"])),
            Err(FrameError::NoAddress)
        );
    }

    #[test]
    fn worker_ready_and_reply_parse() {
        assert_eq!(
            parse_worker(m(&[b"W1", b"", &[READY]])),
            Ok((PeerId::new("W1"), WorkerMessage::Ready))
        );
        let (worker, msg) = parse_worker(m(&[b"W1", b"", b"C1", b"", b"17"])).unwrap();
        assert_eq!(worker, PeerId::new("W1"));
        let WorkerMessage::Reply(reply) = msg else {
            panic!("a reply")
        };
        assert_eq!(reply.client(), PeerId::new("C1"));
        assert_eq!(reply.to_client(), m(&[b"C1", b"", b"17"]));
    }

    #[test]
    fn malformed_worker_messages_are_typed_errors() {
        let cases: [(&[&[u8]], FrameError); 8] = [
            (&[b"W1", b""], FrameError::TooFewFrames { got: 2, want: 3 }),
            (&[b"W1", b"x", &[READY]], FrameError::MissingDelimiter),
            (&[b"W1", b"", &[0x07]], FrameError::UnknownCommand(0x07)),
            (&[b"W1", b"", b"hello"], FrameError::BadCommandLength(5)),
            (&[b"W1", b"", b"C1", b"17"], FrameError::MissingDelimiter),
            (&[b"W1", b"", b"C1", b""], FrameError::NoBody),
            (&[b"W1", b"", b"", b"17"], FrameError::NoAddress),
            (
                &[b"W1", b"", &[b'x'; 300], b"", b"17"],
                FrameError::IdentityTooLong(300),
            ),
        ];
        for (frames, want) in cases {
            assert_eq!(parse_worker(m(frames)), Err(want), "{frames:?}");
        }
    }

    #[test]
    fn work_as_the_worker_sees_it() {
        let work = parse_work(m(&[b"C1", b"", b"17"])).unwrap();
        assert_eq!(
            WorkerMessage::Reply(work).to_frames(),
            m(&[b"C1", b"", b"17"])
        );
        assert_eq!(parse_work(m(&[b"17"])), Err(FrameError::MissingDelimiter));
        assert_eq!(parse_work(m(&[b"", b"17"])), Err(FrameError::NoAddress));
        assert_eq!(WorkerMessage::Ready.to_frames(), m(&[&[READY]]));
    }
}
