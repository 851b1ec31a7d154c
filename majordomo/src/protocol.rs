//! MDP/0.1 (7/MDP) frames as typed commands, and 8/MMI constants.
//!
//! Every MDP message starts with a header frame: `MDPC01` for the client side, `MDPW01` for the
//! worker side. On the wire each message is preceded by an empty delimiter frame (a REQ socket
//! adds it by itself; a DEALER sends it explicitly), and on a ROUTER by the peer's address.
//!
//! The functions here deal only with the frames *from the header on*. The socket layer strips or
//! adds the address envelope and the delimiter ([`Envelope::split`], [`for_dealer`],
//! [`from_dealer`]), so the business logic never juggles frame indexes.
//!
//! # Client side (`MDPC01`)
//! ```text
//! REQUEST  client → broker   "MDPC01", service, body…
//! REPLY    broker → client   "MDPC01", service, body…
//! ```
//! # Worker side (`MDPW01`)
//! ```text
//! READY       worker → broker   "MDPW01", 0x01, service [, capability frames]
//! REQUEST     broker → worker   "MDPW01", 0x02, client address…, "", body…
//! REPLY       worker → broker   "MDPW01", 0x03, client address…, "", body…
//! HEARTBEAT   both ways         "MDPW01", 0x04
//! DISCONNECT  both ways         "MDPW01", 0x05
//! ```
//! The client address is the envelope the broker's ROUTER saw: usually one frame (the client's
//! routing id), more if the client sits behind proxies. It ends at the first empty frame.
//!
//! The optional frames after READY's service are this workspace's extensions, in any order,
//! each at most once: the request-id marker ([`crate::rid`]; the worker asks for each
//! request's id), the credit frame ([`crate::credit`]; the worker runs several requests at
//! once) and the broker-pair marker ([`crate::pair`]; the worker serves a pair, which also puts
//! the pair's frames after HEARTBEAT). Other frames there are still a protocol error.

use crate::pair::PairFrames;
use bytes::Bytes;
use common::envelope::{Envelope, FrameError};
use common::Message;

/// Header frame of every client-side message (client ↔ broker).
pub const MDPC01: &[u8] = b"MDPC01";
/// Header frame of every worker-side message (worker ↔ broker).
pub const MDPW01: &[u8] = b"MDPW01";

/// Worker command byte: the worker offers a service.
pub const READY: u8 = 0x01;
/// Worker command byte: the broker hands a request to a worker.
pub const REQUEST: u8 = 0x02;
/// Worker command byte: the worker answers a request.
pub const REPLY: u8 = 0x03;
/// Worker command byte: either side is still alive.
pub const HEARTBEAT: u8 = 0x04;
/// Worker command byte: either side ends the session.
pub const DISCONNECT: u8 = 0x05;

/// Service names with this prefix are answered by the broker itself (8/MMI).
pub const MMI_PREFIX: &[u8] = b"mmi.";
/// MMI: is a service available? Body: a service name; reply `200` or `404`.
pub const MMI_SERVICE: &str = "mmi.service";
/// MMI reply code: the service has at least one worker.
pub const MMI_OK: &str = "200";
/// MMI reply code: no worker offers the service.
pub const MMI_NOT_FOUND: &str = "404";
/// MMI reply code: the broker does not implement this `mmi.*` service.
pub const MMI_NOT_IMPLEMENTED: &str = "501";

/// True if `service` is in the reserved `mmi.` namespace.
pub fn is_mmi(service: &[u8]) -> bool {
    service.starts_with(MMI_PREFIX)
}

/// Why a message is not valid MDP/0.1: a shape error every protocol shares, or one of MDP's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The envelope, delimiter, header or command frame is malformed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A worker message had no command frame.
    #[error("missing the command frame")]
    MissingCommand,
    /// A client REQUEST/REPLY or a worker READY had no service name (or an empty one).
    #[error("missing the service name")]
    MissingService,
    /// A command that has a fixed number of frames came with more.
    #[error("{command} takes no further frames, got {extra} more")]
    TrailingFrames {
        /// The command's name.
        command: &'static str,
        /// How many frames were too many.
        extra: usize,
    },
    /// A frame of the broker-pair extension ([`crate::pair`]) is malformed.
    #[error("bad broker-pair frames: {0}")]
    Pair(&'static str),
    /// READY's credit frame ([`crate::credit`]) does not carry 1 to 10 decimal digits.
    #[error("bad credit frame in READY")]
    Credit,
}

/// Puts the empty delimiter frame in front, as a DEALER must send it.
pub fn for_dealer(mut frames: Message) -> Message {
    frames.push_front(Bytes::new());
    frames
}

/// Strips the empty delimiter frame a DEALER receives in front of every MDP message.
pub fn from_dealer(mut frames: Message) -> Result<Message, ProtocolError> {
    match frames.pop_front() {
        Some(first) if first.is_empty() => Ok(frames),
        Some(_) => Err(FrameError::MissingDelimiter.into()),
        None => Err(FrameError::Empty.into()),
    }
}

/// A client-side message: a request for a service or the reply from it.
///
/// Both directions have the same frames (`"MDPC01", service, body…`); the variant says which
/// way the message goes, so parse with [`ClientCommand::parse_request`] on the broker and
/// [`ClientCommand::parse_reply`] on the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// Client → broker: please have `service` answer `body`.
    Request {
        /// The service name (non-empty).
        service: Bytes,
        /// The request body (zero or more frames).
        body: Message,
    },
    /// Broker → client: `service` answered with `body`.
    Reply {
        /// The service that answered.
        service: Bytes,
        /// The reply body (zero or more frames).
        body: Message,
    },
}

impl ClientCommand {
    fn parse_parts(mut frames: Message) -> Result<(Bytes, Message), ProtocolError> {
        let header = frames.pop_front().ok_or(FrameError::Empty)?;
        if header != MDPC01 {
            return Err(FrameError::wrong_header(&header).into());
        }
        let service = frames.pop_front().filter(|s| !s.is_empty());
        let service = service.ok_or(ProtocolError::MissingService)?;
        Ok((service, frames))
    }

    /// Parses a REQUEST as the broker receives it (frames from `MDPC01` on).
    pub fn parse_request(frames: Message) -> Result<Self, ProtocolError> {
        let (service, body) = Self::parse_parts(frames)?;
        Ok(Self::Request { service, body })
    }

    /// Parses a REPLY as the client receives it (frames from `MDPC01` on).
    pub fn parse_reply(frames: Message) -> Result<Self, ProtocolError> {
        let (service, body) = Self::parse_parts(frames)?;
        Ok(Self::Reply { service, body })
    }

    /// The frames from `MDPC01` on.
    pub fn into_frames(self) -> Message {
        let (Self::Request { service, body } | Self::Reply { service, body }) = self;
        let mut frames = body;
        frames.push_front(service);
        frames.push_front(Bytes::from_static(MDPC01));
        frames
    }
}

/// A worker-side command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerCommand {
    /// Worker → broker: I offer `service`. Sent once per connection, first.
    Ready {
        /// The service name (non-empty).
        service: Bytes,
        /// The worker asks for request ids (the [`crate::rid::MARKER`] frame after the
        /// service; see [`crate::rid`]).
        request_ids: bool,
        /// The worker serves a broker pair (the [`crate::pair::MARKER`] frame; see
        /// [`crate::pair`]).
        pair: bool,
        /// Requests the worker can run at once, as asked for (the [`crate::credit`] frame; 1,
        /// no frame, without it). The broker bounds it ([`crate::credit::grant`]).
        credit: u32,
    },
    /// Broker → worker: answer `body` for `client`.
    Request {
        /// The client's address stack (one frame or more, never empty frames).
        client: Message,
        /// The request body (zero or more frames).
        body: Message,
    },
    /// Worker → broker: the answer for `client`.
    Reply {
        /// The client's address stack, copied from the request.
        client: Message,
        /// The reply body (zero or more frames).
        body: Message,
    },
    /// Either way: still alive. Any command but DISCONNECT also proves that.
    Heartbeat,
    /// Either way, between a broker pair and its workers: a HEARTBEAT that carries the
    /// extension's frames ([`crate::pair`]).
    Pair(PairFrames),
    /// Either way: this session is over. A worker that receives it reconnects and sends READY.
    Disconnect,
}

impl WorkerCommand {
    /// The command's name as the spec writes it, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ready { .. } => "READY",
            Self::Request { .. } => "REQUEST",
            Self::Reply { .. } => "REPLY",
            Self::Heartbeat | Self::Pair(_) => "HEARTBEAT",
            Self::Disconnect => "DISCONNECT",
        }
    }

    /// Parses the frames from `MDPW01` on.
    pub fn parse(mut frames: Message) -> Result<Self, ProtocolError> {
        let header = frames.pop_front().ok_or(FrameError::Empty)?;
        if header != MDPW01 {
            return Err(FrameError::wrong_header(&header).into());
        }
        let command = frames.pop_front().ok_or(ProtocolError::MissingCommand)?;
        let byte = match command[..] {
            [byte] => byte,
            _ => return Err(FrameError::BadCommandLength(command.len()).into()),
        };
        let no_more = |command: &'static str, frames: &Message| match frames.len() {
            0 => Ok(()),
            extra => Err(ProtocolError::TrailingFrames { command, extra }),
        };
        match byte {
            READY => {
                let service = frames.pop_front().filter(|s| !s.is_empty());
                let service = service.ok_or(ProtocolError::MissingService)?;
                // Capability frames, in any order, each at most once.
                let (mut request_ids, mut pair, mut credit) = (false, false, None);
                while let Some(frame) = frames.first() {
                    if !request_ids && frame == crate::rid::MARKER {
                        request_ids = true;
                    } else if !pair && frame == crate::pair::MARKER {
                        pair = true;
                    } else if credit.is_none() && crate::credit::is_credit(frame) {
                        credit =
                            Some(crate::credit::from_frame(frame).ok_or(ProtocolError::Credit)?);
                    } else {
                        return Err(ProtocolError::TrailingFrames {
                            command: "READY",
                            extra: frames.len(),
                        });
                    }
                    frames.pop_front();
                }
                Ok(Self::Ready {
                    service,
                    request_ids,
                    pair,
                    credit: credit.unwrap_or(1),
                })
            }
            REQUEST | REPLY => {
                let (client, body) = Envelope::split(frames)?;
                let client = client.into_frames();
                Ok(if byte == REQUEST {
                    Self::Request { client, body }
                } else {
                    Self::Reply { client, body }
                })
            }
            HEARTBEAT if PairFrames::is_pair(&frames) => PairFrames::parse(frames).map(Self::Pair),
            HEARTBEAT => no_more("HEARTBEAT", &frames).map(|()| Self::Heartbeat),
            DISCONNECT => no_more("DISCONNECT", &frames).map(|()| Self::Disconnect),
            _ => Err(FrameError::UnknownCommand(byte).into()),
        }
    }

    /// The frames from `MDPW01` on.
    pub fn into_frames(self) -> Message {
        let (byte, mut frames) = match self {
            Self::Ready {
                service,
                request_ids,
                pair,
                credit,
            } => {
                let mut frames = Message::from_frames([service]);
                if request_ids {
                    frames.push_back(Bytes::from_static(crate::rid::MARKER));
                }
                if credit != 1 {
                    frames.push_back(crate::credit::to_frame(credit));
                }
                if pair {
                    frames.push_back(Bytes::from_static(crate::pair::MARKER));
                }
                (READY, frames)
            }
            Self::Request { client, body } => (REQUEST, envelope_then(client, body)),
            Self::Reply { client, body } => (REPLY, envelope_then(client, body)),
            Self::Heartbeat => (HEARTBEAT, Message::new()),
            Self::Pair(frames) => (HEARTBEAT, frames.into_frames()),
            Self::Disconnect => (DISCONNECT, Message::new()),
        };
        frames.push_front(Bytes::from_static(command_frame(byte)));
        frames.push_front(Bytes::from_static(MDPW01));
        frames
    }
}

/// The static one-byte frame of a command byte.
fn command_frame(byte: u8) -> &'static [u8] {
    match byte {
        READY => &[READY],
        REQUEST => &[REQUEST],
        REPLY => &[REPLY],
        HEARTBEAT => &[HEARTBEAT],
        _ => &[DISCONNECT],
    }
}

/// `client…, "", body…`
fn envelope_then(mut client: Message, body: Message) -> Message {
    client.push_back(Bytes::new());
    client.append(body);
    client
}

/// Which side of the protocol a message to the broker belongs to, by its header frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A client REQUEST (`MDPC01`).
    Client(ClientCommand),
    /// A worker command (`MDPW01`).
    Worker(WorkerCommand),
}

impl Inbound {
    /// Parses a message as a broker's ROUTER receives it: `sender envelope…, "", header, …`.
    ///
    /// Returns the sender's envelope *without* its delimiter (one routing-id frame for a direct
    /// peer, more behind proxies) and the command.
    pub fn parse(frames: Message) -> Result<(Message, Inbound), ProtocolError> {
        let (sender, frames) = Envelope::split(frames)?;
        let sender = sender.into_frames();
        let header = frames.first().ok_or(FrameError::NoBody)?;
        let command = if header == MDPC01 {
            Inbound::Client(ClientCommand::parse_request(frames)?)
        } else if header == MDPW01 {
            Inbound::Worker(WorkerCommand::parse(frames)?)
        } else {
            return Err(FrameError::wrong_header(header).into());
        };
        Ok((sender, command))
    }
}

/// Builds a message for the broker's ROUTER: `address…, "", frames…`.
pub fn to_router(mut address: Message, frames: Message) -> Message {
    address.push_back(Bytes::new());
    address.append(frames);
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m<const N: usize>(frames: [&'static [u8]; N]) -> Message {
        Message::from_frames(frames.map(Bytes::from_static))
    }

    #[test]
    fn client_request_and_reply_round_trip() {
        let request = ClientCommand::Request {
            service: Bytes::from_static(b"echo"),
            body: m([b"hello", b"", b"world"]),
        };
        let frames = request.clone().into_frames();
        assert_eq!(frames, m([b"MDPC01", b"echo", b"hello", b"", b"world"]));
        assert_eq!(
            ClientCommand::parse_request(frames.clone()).unwrap(),
            request
        );
        let ClientCommand::Reply { service, body } = ClientCommand::parse_reply(frames).unwrap()
        else {
            panic!("not a reply")
        };
        assert_eq!(&service[..], b"echo");
        assert_eq!(body.len(), 3);
        // An empty body is allowed.
        let empty = ClientCommand::Reply {
            service: Bytes::from_static(b"x"),
            body: Message::new(),
        };
        assert_eq!(
            ClientCommand::parse_reply(empty.clone().into_frames()).unwrap(),
            empty
        );
    }

    #[test]
    fn every_worker_command_round_trips() {
        let commands = [
            WorkerCommand::Ready {
                service: Bytes::from_static(b"echo"),
                request_ids: false,
                pair: false,
                credit: 1,
            },
            WorkerCommand::Ready {
                service: Bytes::from_static(b"echo"),
                request_ids: true,
                pair: false,
                credit: 1,
            },
            WorkerCommand::Ready {
                service: Bytes::from_static(b"echo"),
                request_ids: true,
                pair: true,
                credit: 16,
            },
            WorkerCommand::Request {
                client: m([b"C1"]),
                body: m([b"a", b"", b"b"]),
            },
            WorkerCommand::Reply {
                client: m([b"proxy", b"C1"]),
                body: m([b"reply"]),
            },
            WorkerCommand::Request {
                client: m([b"C2"]),
                body: Message::new(),
            },
            WorkerCommand::Heartbeat,
            WorkerCommand::Disconnect,
        ];
        for command in commands {
            let frames = command.clone().into_frames();
            assert_eq!(WorkerCommand::parse(frames).unwrap(), command);
        }
    }

    #[test]
    fn worker_frames_match_the_spec() {
        let request = WorkerCommand::Request {
            client: m([b"C1"]),
            body: m([b"hi"]),
        };
        assert_eq!(
            request.into_frames(),
            m([b"MDPW01", &[REQUEST], b"C1", b"", b"hi"])
        );
        let ready = WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: false,
            pair: false,
            credit: 1,
        };
        assert_eq!(ready.into_frames(), m([b"MDPW01", &[READY], b"echo"]));
        let ready = WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: true,
            pair: false,
            credit: 1,
        };
        assert_eq!(
            ready.into_frames(),
            m([b"MDPW01", &[READY], b"echo", b"\0MDPRID1:"])
        );
        // Capability frames in any order, each once; we send rid, credit, pair.
        let all = WorkerCommand::Ready {
            service: Bytes::from_static(b"echo"),
            request_ids: true,
            pair: true,
            credit: 8,
        };
        assert_eq!(
            all.clone().into_frames(),
            m([
                b"MDPW01",
                &[READY],
                b"echo",
                b"\0MDPRID1:",
                b"\0MDPCRD1:8",
                b"\0MDPHA1:"
            ])
        );
        for order in [
            [&b"\0MDPHA1:"[..], b"\0MDPCRD1:8", b"\0MDPRID1:"],
            [b"\0MDPCRD1:8", b"\0MDPHA1:", b"\0MDPRID1:"],
            [b"\0MDPRID1:", b"\0MDPHA1:", b"\0MDPCRD1:8"],
        ] {
            let mut frames = m([b"MDPW01", &[READY], b"echo"]);
            order
                .iter()
                .for_each(|f| frames.push_back(Bytes::copy_from_slice(f)));
            assert_eq!(WorkerCommand::parse(frames), Ok(all.clone()), "{order:?}");
        }
        assert_eq!(
            WorkerCommand::Heartbeat.into_frames(),
            m([b"MDPW01", &[HEARTBEAT]])
        );
        assert_eq!(
            WorkerCommand::Disconnect.into_frames(),
            m([b"MDPW01", &[DISCONNECT]])
        );
    }

    #[test]
    fn malformed_worker_messages_get_typed_errors() {
        use FrameError as F;
        use ProtocolError::*;
        let cases: [(Message, ProtocolError); 15] = [
            (Message::new(), Frame(F::Empty)),
            (
                m([b"MDPW02", &[READY], b"x"]),
                Frame(F::WrongHeader("MDPW02".into())),
            ),
            (m([b"MDPW01"]), MissingCommand),
            (m([b"MDPW01", &[9]]), Frame(F::UnknownCommand(9))),
            (m([b"MDPW01", b"\x01\x01"]), Frame(F::BadCommandLength(2))),
            (m([b"MDPW01", &[READY]]), MissingService),
            (m([b"MDPW01", &[READY], b""]), MissingService),
            (
                m([b"MDPW01", &[READY], b"a", b"b"]),
                TrailingFrames {
                    command: "READY",
                    extra: 1,
                },
            ),
            (
                m([b"MDPW01", &[READY], b"a", b"\0MDPRID1:", b"b"]),
                TrailingFrames {
                    command: "READY",
                    extra: 1,
                },
            ),
            (
                m([b"MDPW01", &[READY], b"a", b"\0MDPCRD1:2", b"\0MDPCRD1:2"]),
                TrailingFrames {
                    command: "READY",
                    extra: 1,
                },
            ),
            (
                m([b"MDPW01", &[READY], b"a", b"\0MDPRID1:", b"\0MDPRID1:"]),
                TrailingFrames {
                    command: "READY",
                    extra: 1,
                },
            ),
            (m([b"MDPW01", &[READY], b"a", b"\0MDPCRD1:x"]), Credit),
            (m([b"MDPW01", &[REPLY], b"", b"x"]), Frame(F::NoAddress)),
            (
                m([b"MDPW01", &[REPLY], b"C1", b"x"]),
                Frame(F::MissingDelimiter),
            ),
            (
                m([b"MDPW01", &[HEARTBEAT], b"x"]),
                TrailingFrames {
                    command: "HEARTBEAT",
                    extra: 1,
                },
            ),
        ];
        for (frames, error) in cases {
            assert_eq!(
                WorkerCommand::parse(frames.clone()),
                Err(error),
                "{frames:?}"
            );
        }
        assert_eq!(
            WorkerCommand::parse(m([b"MDPW01", &[REQUEST]])),
            Err(Frame(F::Empty))
        );
        assert!(matches!(
            WorkerCommand::parse(m([b"MDPW01", &[DISCONNECT], b""])),
            Err(TrailingFrames { .. })
        ));
    }

    #[test]
    fn malformed_client_messages_get_typed_errors() {
        use ProtocolError::*;
        assert_eq!(
            ClientCommand::parse_request(Message::new()),
            Err(Frame(FrameError::Empty))
        );
        assert_eq!(
            ClientCommand::parse_request(m([b"MDPC02", b"echo"])),
            Err(Frame(FrameError::WrongHeader("MDPC02".into())))
        );
        assert_eq!(
            ClientCommand::parse_request(m([b"MDPC01"])),
            Err(MissingService)
        );
        assert_eq!(
            ClientCommand::parse_reply(m([b"MDPC01", b""])),
            Err(MissingService)
        );
    }

    #[test]
    fn router_side_parsing_splits_the_sender_envelope() {
        let (sender, command) = Inbound::parse(m([b"C1", b"", b"MDPC01", b"echo", b"hi"])).unwrap();
        assert_eq!(sender, m([b"C1"]));
        assert_eq!(
            command,
            Inbound::Client(ClientCommand::Request {
                service: Bytes::from_static(b"echo"),
                body: m([b"hi"])
            })
        );
        let (sender, command) =
            Inbound::parse(m([b"P", b"C1", b"", b"MDPW01", &[HEARTBEAT]])).unwrap();
        assert_eq!(sender, m([b"P", b"C1"]));
        assert_eq!(command, Inbound::Worker(WorkerCommand::Heartbeat));

        let err = |e: FrameError| Err(ProtocolError::Frame(e));
        assert_eq!(Inbound::parse(Message::new()), err(FrameError::Empty));
        assert_eq!(
            Inbound::parse(m([b"C1", b"MDPC01"])),
            err(FrameError::MissingDelimiter)
        );
        assert_eq!(
            Inbound::parse(m([b"", b"MDPC01"])),
            err(FrameError::NoAddress)
        );
        assert_eq!(Inbound::parse(m([b"C1", b""])), err(FrameError::NoBody));
        assert_eq!(
            Inbound::parse(m([b"C1", b"", b"HELLO"])),
            err(FrameError::WrongHeader("HELLO".into()))
        );
        assert_eq!(
            Inbound::parse(m([b"C1", b"", &[0xff; 40]])),
            err(FrameError::WrongHeader(format!("{}…", "FF".repeat(32))))
        );
    }

    #[test]
    fn dealer_delimiter_helpers() {
        let frames = for_dealer(WorkerCommand::Heartbeat.into_frames());
        assert_eq!(frames, m([b"", b"MDPW01", &[HEARTBEAT]]));
        assert_eq!(from_dealer(frames).unwrap(), m([b"MDPW01", &[HEARTBEAT]]));
        assert_eq!(
            from_dealer(m([b"MDPW01"])),
            Err(FrameError::MissingDelimiter.into())
        );
        assert_eq!(from_dealer(Message::new()), Err(FrameError::Empty.into()));
        assert_eq!(
            to_router(m([b"W1"]), m([b"MDPW01", &[HEARTBEAT]])),
            m([b"W1", b"", b"MDPW01", &[HEARTBEAT]])
        );
        assert!(is_mmi(b"mmi.service") && !is_mmi(b"echo") && !is_mmi(b"mmi"));
    }
}
