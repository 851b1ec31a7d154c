//! Majordomo frames as typed commands, in three dialects ([`Dialect`]), and 8/MMI constants.
//!
//! The broker speaks MDP/0.1 (7/MDP) and MDP/0.2 (18/MDP, streamed replies) on one socket; the
//! [MDP/0.2 section](#mdp02-two-dialects-found-in-the-wild) below says how a message's dialect
//! is recognised and lists its frames. The sections up to it are MDP/0.1's.
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
//!
//! # MDP/0.2: two dialects found in the wild
//! 18/MDP replaces a REPLY by zero or more PARTIALs and one FINAL. Its peers disagree on the
//! framing, so the broker recognises the dialect of every message from its frames (as its
//! ROUTER receives them, after the sender's routing id) and answers each peer in its own:
//!
//! | frames after the routing id | dialect |
//! |---|---|
//! | `"MDPC02"` or `"MDPW02"` at once | [`Dialect::Rfc18`] (the RFC text; rustydomo) |
//! | `""`, then `"MDPC02"` or `"MDPW02"` | [`Dialect::Majortomo`] (majortomo 0.2, PyPI) |
//! | `""`, then `"MDPC01"` or `"MDPW01"` | [`Dialect::V01`] (7/MDP, the Guide) |
//!
//! A 0.2 peer connects directly: its envelope is its one routing id (no proxies between).
//! The command byte must be one of its dialect's; anything else is a malformed message.
//!
//! | command | [`Dialect::Rfc18`] | [`Dialect::Majortomo`] |
//! |---|---|---|
//! | client REQUEST | `"MDPC02", 0x01, service, body…` | `"", "MDPC02", 0x02, service, body…` |
//! | broker → client PARTIAL | `"MDPC02", 0x02, service, body…` | `"", "MDPC02", 0x03, body…` |
//! | broker → client FINAL | `"MDPC02", 0x03, service, body…` | `"", "MDPC02", 0x04, body…` |
//! | worker READY | `"MDPW02", 0x01, service` | `"", "MDPW02", 0x01, service` |
//! | broker → worker REQUEST | `"MDPW02", 0x02, client, "", body…` | `"", "MDPW02", 0x02, client, "", body…` |
//! | worker PARTIAL | `"MDPW02", 0x03, client, "", body…` | `"", "MDPW02", 0x03, client, "", body…` |
//! | worker FINAL | `"MDPW02", 0x04, client, "", body…` | `"", "MDPW02", 0x04, client, "", body…` |
//! | HEARTBEAT (both ways) | `"MDPW02", 0x05` | `"", "MDPW02", 0x05` |
//! | DISCONNECT (both ways) | `"MDPW02", 0x06` | `"", "MDPW02", 0x06` |
//!
//! majortomo's replies to clients carry no service frame (its client ignores it); such a reply
//! parses with an empty service. Its broker also wants at least one body frame in a REQUEST.
//! A FINAL is typed as [`ClientCommand::Reply`] / [`WorkerCommand::Reply`], a PARTIAL as the
//! `Partial` variants (MDP/0.1 has none). The 0.1 extension frames (request-id marker, credit,
//! broker pair) are not part of 0.2: a 0.2 READY takes no frame after the service, and 0.2
//! HEARTBEATs carry none. A request-id frame at the head of a client's body
//! ([`crate::rid`]) works in every dialect, being body.

use crate::pair::PairFrames;
use bytes::Bytes;
use common::envelope::{Envelope, FrameError};
use common::Message;

/// Header frame of every client-side message (client ↔ broker).
pub const MDPC01: &[u8] = b"MDPC01";
/// Header frame of every worker-side message (worker ↔ broker).
pub const MDPW01: &[u8] = b"MDPW01";

/// MDP/0.2 header frame of every client-side message.
pub const MDPC02: &[u8] = b"MDPC02";
/// MDP/0.2 header frame of every worker-side message.
pub const MDPW02: &[u8] = b"MDPW02";

/// MDP/0.2 worker command bytes (both 0.2 dialects use these).
pub mod v02 {
    /// The worker offers a service.
    pub const READY: u8 = 0x01;
    /// The broker hands a request to a worker (also majortomo's client REQUEST).
    pub const REQUEST: u8 = 0x02;
    /// The worker sends one part of the reply; more follow.
    pub const PARTIAL: u8 = 0x03;
    /// The worker sends the last part of the reply.
    pub const FINAL: u8 = 0x04;
    /// Either side is still alive.
    pub const HEARTBEAT: u8 = 0x05;
    /// Either side ends the session.
    pub const DISCONNECT: u8 = 0x06;
    /// RFC 18 client command bytes: REQUEST, then the broker's PARTIAL and FINAL.
    pub const RFC_CLIENT: [u8; 3] = [0x01, 0x02, 0x03];
    /// majortomo's client command bytes: REQUEST, PARTIAL, FINAL (the worker's bytes).
    pub const MAJORTOMO_CLIENT: [u8; 3] = [REQUEST, PARTIAL, FINAL];
}

/// The framing a peer speaks; the broker keeps it per peer and answers in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// 7/MDP (MDP/0.1), the Guide's: one reply per request.
    #[default]
    V01,
    /// 18/MDP as the RFC writes it: no empty delimiter frames, client REQUEST `0x01`,
    /// replies PARTIAL `0x02` / FINAL `0x03` with the service frame.
    Rfc18,
    /// majortomo's MDP/0.2: an empty frame first, client REQUEST `0x02`, replies PARTIAL
    /// `0x03` / FINAL `0x04` without the service frame.
    Majortomo,
}

impl Dialect {
    /// The name used in logs and on the command line (`0.1`, `rfc18`, `majortomo`).
    pub fn name(self) -> &'static str {
        match self {
            Self::V01 => "0.1",
            Self::Rfc18 => "rfc18",
            Self::Majortomo => "majortomo",
        }
    }

    /// True for the MDP/0.2 dialects (streamed replies).
    pub fn streams(self) -> bool {
        self != Self::V01
    }

    /// True if every message starts with an empty frame (after a ROUTER's routing id).
    pub fn has_delimiter(self) -> bool {
        self != Self::Rfc18
    }

    /// The client-side header frame.
    fn client_header(self) -> &'static [u8] {
        if self.streams() {
            MDPC02
        } else {
            MDPC01
        }
    }

    /// The client command bytes (REQUEST, PARTIAL, FINAL) of a 0.2 dialect.
    fn client_bytes(self) -> [u8; 3] {
        match self {
            Self::Majortomo => v02::MAJORTOMO_CLIENT,
            _ => v02::RFC_CLIENT,
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0.1" | "v01" | "mdp01" => Ok(Self::V01),
            "rfc18" | "0.2" | "mdp02" => Ok(Self::Rfc18),
            "majortomo" => Ok(Self::Majortomo),
            other => Err(format!(
                "unknown dialect {other:?}: one of 0.1, rfc18 (also 0.2), majortomo"
            )),
        }
    }
}

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

/// Frames from the header on, as a DEALER of `dialect` sends them (with the empty frame in
/// front unless the dialect has none).
pub fn for_dealer_in(dialect: Dialect, frames: Message) -> Message {
    if dialect.has_delimiter() {
        for_dealer(frames)
    } else {
        frames
    }
}

/// What a DEALER of `dialect` receives, from the header on (the empty frame checked and
/// stripped where the dialect has one).
pub fn from_dealer_in(dialect: Dialect, frames: Message) -> Result<Message, ProtocolError> {
    if dialect.has_delimiter() {
        from_dealer(frames)
    } else {
        Ok(frames)
    }
}

/// A client-side message: a request for a service or (part of) the reply from it.
///
/// In MDP/0.1 both directions have the same frames (`"MDPC01", service, body…`); the variant
/// says which way the message goes, so parse with [`ClientCommand::parse_request`] on the
/// broker and [`ClientCommand::parse_reply`] on the client (or their `_in` forms for a
/// [`Dialect`]). In MDP/0.2 a reply is zero or more `Partial`s, then one `Reply` (FINAL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// Client → broker: please have `service` answer `body`.
    Request {
        /// The service name (non-empty).
        service: Bytes,
        /// The request body (zero or more frames).
        body: Message,
    },
    /// Broker → client: `service` answered with `body` (MDP/0.2: the FINAL part).
    Reply {
        /// The service that answered (empty from a majortomo broker, which sends none).
        service: Bytes,
        /// The reply body (zero or more frames).
        body: Message,
    },
    /// Broker → client, MDP/0.2 only: one part of the reply; more follow, then a `Reply`.
    Partial {
        /// The service that answers (empty from a majortomo broker).
        service: Bytes,
        /// This part's frames.
        body: Message,
    },
}

/// Takes the one-byte command frame.
fn command_byte(frames: &mut Message) -> Result<u8, ProtocolError> {
    let command = frames.pop_front().ok_or(ProtocolError::MissingCommand)?;
    match command[..] {
        [byte] => Ok(byte),
        _ => Err(FrameError::BadCommandLength(command.len()).into()),
    }
}

/// Takes the header frame; it must be `want`.
fn header(frames: &mut Message, want: &[u8]) -> Result<(), ProtocolError> {
    let header = frames.pop_front().ok_or(FrameError::Empty)?;
    if header != want {
        return Err(FrameError::wrong_header(&header).into());
    }
    Ok(())
}

/// Takes the (non-empty) service frame.
fn service(frames: &mut Message) -> Result<Bytes, ProtocolError> {
    let service = frames.pop_front().filter(|s| !s.is_empty());
    service.ok_or(ProtocolError::MissingService)
}

impl ClientCommand {
    /// Parses a REQUEST as the broker receives it (frames from `MDPC01` on).
    pub fn parse_request(frames: Message) -> Result<Self, ProtocolError> {
        Self::parse_request_in(Dialect::V01, frames)
    }

    /// Parses a REPLY as the client receives it (frames from `MDPC01` on).
    pub fn parse_reply(frames: Message) -> Result<Self, ProtocolError> {
        Self::parse_reply_in(Dialect::V01, frames)
    }

    /// Parses a REQUEST of `dialect` (frames from the header on).
    pub fn parse_request_in(dialect: Dialect, mut frames: Message) -> Result<Self, ProtocolError> {
        header(&mut frames, dialect.client_header())?;
        if dialect.streams() {
            let byte = command_byte(&mut frames)?;
            if byte != dialect.client_bytes()[0] {
                return Err(FrameError::UnknownCommand(byte).into());
            }
        }
        let service = service(&mut frames)?;
        Ok(Self::Request {
            service,
            body: frames,
        })
    }

    /// Parses a reply of `dialect` as a client receives it (frames from the header on): a
    /// `Reply`, or in MDP/0.2 a `Partial` or a `Reply` (FINAL).
    pub fn parse_reply_in(dialect: Dialect, mut frames: Message) -> Result<Self, ProtocolError> {
        header(&mut frames, dialect.client_header())?;
        let partial = if dialect.streams() {
            let [_, partial, last] = dialect.client_bytes();
            match command_byte(&mut frames)? {
                byte if byte == partial => true,
                byte if byte == last => false,
                byte => return Err(FrameError::UnknownCommand(byte).into()),
            }
        } else {
            false
        };
        let service = if dialect == Dialect::Majortomo {
            Bytes::new()
        } else {
            service(&mut frames)?
        };
        let body = frames;
        Ok(if partial {
            Self::Partial { service, body }
        } else {
            Self::Reply { service, body }
        })
    }

    /// The frames from `MDPC01` on (MDP/0.1; a `Partial` has no 0.1 form and is sent as a
    /// REPLY: callers bridge streams before, see [`crate::broker`]).
    pub fn into_frames(self) -> Message {
        self.encode(Dialect::V01)
    }

    /// The frames from the header on, in `dialect`.
    pub fn encode(self, dialect: Dialect) -> Message {
        let (which, service, mut frames) = match self {
            Self::Request { service, body } => (0, service, body),
            Self::Partial { service, body } => (1, service, body),
            Self::Reply { service, body } => (2, service, body),
        };
        if dialect != Dialect::Majortomo || which == 0 {
            frames.push_front(service);
        }
        if dialect.streams() {
            frames.push_front(Bytes::copy_from_slice(&[dialect.client_bytes()[which]]));
        }
        frames.push_front(Bytes::from_static(dialect.client_header()));
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
    /// Worker → broker, MDP/0.2 only: one part of the answer for `client`; more follow, then
    /// a `Reply` (FINAL).
    Partial {
        /// The client's address stack, copied from the request.
        client: Message,
        /// This part's frames.
        body: Message,
    },
    /// Worker → broker: the answer for `client` (MDP/0.2: the FINAL part).
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
            Self::Partial { .. } => "PARTIAL",
            Self::Reply { .. } => "REPLY",
            Self::Heartbeat | Self::Pair(_) => "HEARTBEAT",
            Self::Disconnect => "DISCONNECT",
        }
    }

    /// Parses the frames of `dialect` from the header on.
    pub fn parse_in(dialect: Dialect, mut frames: Message) -> Result<Self, ProtocolError> {
        if !dialect.streams() {
            return Self::parse(frames);
        }
        header(&mut frames, MDPW02)?;
        let byte = command_byte(&mut frames)?;
        let no_more = |command: &'static str, frames: &Message| match frames.len() {
            0 => Ok(()),
            extra => Err(ProtocolError::TrailingFrames { command, extra }),
        };
        match byte {
            v02::READY => {
                let service = service(&mut frames)?;
                no_more("READY", &frames)?;
                Ok(Self::Ready {
                    service,
                    request_ids: false,
                    pair: false,
                    credit: 1,
                })
            }
            v02::REQUEST | v02::PARTIAL | v02::FINAL => {
                let (client, body) = Envelope::split(frames)?;
                let client = client.into_frames();
                Ok(match byte {
                    v02::REQUEST => Self::Request { client, body },
                    v02::PARTIAL => Self::Partial { client, body },
                    _ => Self::Reply { client, body },
                })
            }
            v02::HEARTBEAT => no_more("HEARTBEAT", &frames).map(|()| Self::Heartbeat),
            v02::DISCONNECT => no_more("DISCONNECT", &frames).map(|()| Self::Disconnect),
            _ => Err(FrameError::UnknownCommand(byte).into()),
        }
    }

    /// The frames from the header on, in `dialect`. In MDP/0.2 READY carries no extension
    /// frames and a pair HEARTBEAT is a plain one; a `Partial` has no 0.1 form (it is sent as
    /// a REPLY: callers bridge streams before).
    pub fn encode(self, dialect: Dialect) -> Message {
        if !dialect.streams() {
            return self.into_frames();
        }
        let (byte, mut frames) = match self {
            Self::Ready { service, .. } => (v02::READY, Message::from_frames([service])),
            Self::Request { client, body } => (v02::REQUEST, envelope_then(client, body)),
            Self::Partial { client, body } => (v02::PARTIAL, envelope_then(client, body)),
            Self::Reply { client, body } => (v02::FINAL, envelope_then(client, body)),
            Self::Heartbeat | Self::Pair(_) => (v02::HEARTBEAT, Message::new()),
            Self::Disconnect => (v02::DISCONNECT, Message::new()),
        };
        frames.push_front(Bytes::copy_from_slice(&[byte]));
        frames.push_front(Bytes::from_static(MDPW02));
        frames
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
            Self::Reply { client, body } | Self::Partial { client, body } => {
                (REPLY, envelope_then(client, body))
            }
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
    /// A client REQUEST (`MDPC01`, `MDPC02`).
    Client(ClientCommand),
    /// A worker command (`MDPW01`, `MDPW02`).
    Worker(WorkerCommand),
}

/// A message as the broker's ROUTER received it, parsed: who sent it, in which dialect, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The sender's envelope without its delimiter (one routing-id frame for a direct peer,
    /// more behind proxies; always one for MDP/0.2).
    pub sender: Message,
    /// The sender's dialect, recognised from the frames (see the [module docs](self)).
    pub dialect: Dialect,
    /// The command.
    pub command: Inbound,
}

impl Inbound {
    /// Parses a message as a broker's ROUTER receives it, in any dialect
    /// ([`Received::parse`]), and returns the sender's envelope *without* its delimiter (one
    /// routing-id frame for a direct peer, more behind proxies) and the command.
    pub fn parse(frames: Message) -> Result<(Message, Inbound), ProtocolError> {
        Received::parse(frames).map(|r| (r.sender, r.command))
    }
}

impl Received {
    /// Parses a message as a broker's ROUTER receives it: `sender envelope…, "", header, …`
    /// (MDP/0.1 and majortomo) or `routing id, header, …` (RFC 18); the dialect is recognised
    /// by the table in the [module docs](self).
    pub fn parse(frames: Message) -> Result<Received, ProtocolError> {
        // RFC 18: the header right after the routing id (no delimiter). Its REQUEST/PARTIAL/
        // FINAL carry an empty frame further on, so this is decided before splitting.
        if let Some(second) = frames.get(1) {
            if second == MDPC02 || second == MDPW02 {
                let mut frames = frames;
                let id = frames.pop_front().unwrap_or_default();
                if id.len() > common::envelope::MAX_IDENTITY {
                    return Err(FrameError::IdentityTooLong(id.len()).into());
                }
                return Self::parse_in(Dialect::Rfc18, Message::from_frames([id]), frames);
            }
        }
        let (sender, frames) = Envelope::split(frames)?;
        let sender = sender.into_frames();
        let header = frames.first().ok_or(FrameError::NoBody)?;
        let dialect = if header == MDPC01 || header == MDPW01 {
            Dialect::V01
        } else if header == MDPC02 || header == MDPW02 {
            if sender.len() != 1 {
                // 0.2 peers connect directly; a stack would be answered wrongly.
                return Err(FrameError::TooManyHops(sender.len()).into());
            }
            Dialect::Majortomo
        } else {
            return Err(FrameError::wrong_header(header).into());
        };
        Self::parse_in(dialect, sender, frames)
    }

    fn parse_in(
        dialect: Dialect,
        sender: Message,
        frames: Message,
    ) -> Result<Received, ProtocolError> {
        let header = frames.first().ok_or(FrameError::NoBody)?;
        let command = if header == dialect.client_header() {
            Inbound::Client(ClientCommand::parse_request_in(dialect, frames)?)
        } else {
            Inbound::Worker(WorkerCommand::parse_in(dialect, frames)?)
        };
        Ok(Received {
            sender,
            dialect,
            command,
        })
    }
}

/// Builds a message for the broker's ROUTER: `address…, "", frames…`.
pub fn to_router(mut address: Message, frames: Message) -> Message {
    address.push_back(Bytes::new());
    address.append(frames);
    address
}

/// Builds a message for the broker's ROUTER in `dialect`: `address…, "", frames…`, or for
/// RFC 18 `address…, frames…`.
pub fn to_router_in(dialect: Dialect, mut address: Message, frames: Message) -> Message {
    if dialect.has_delimiter() {
        return to_router(address, frames);
    }
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

    #[test]
    fn mdp02_commands_round_trip_in_both_dialects() {
        for dialect in [Dialect::Rfc18, Dialect::Majortomo] {
            let worker = [
                WorkerCommand::Ready {
                    service: Bytes::from_static(b"echo"),
                    request_ids: false,
                    pair: false,
                    credit: 1,
                },
                WorkerCommand::Request {
                    client: m([b"C1"]),
                    body: m([b"a", b""]),
                },
                WorkerCommand::Partial {
                    client: m([b"C1"]),
                    body: m([b"p"]),
                },
                WorkerCommand::Reply {
                    client: m([b"C1"]),
                    body: Message::new(),
                },
                WorkerCommand::Heartbeat,
                WorkerCommand::Disconnect,
            ];
            for command in worker {
                let frames = command.clone().encode(dialect);
                assert_eq!(&frames.first().unwrap()[..], MDPW02);
                assert_eq!(WorkerCommand::parse_in(dialect, frames), Ok(command));
            }
            let request = ClientCommand::Request {
                service: Bytes::from_static(b"echo"),
                body: m([b"x"]),
            };
            let frames = request.clone().encode(dialect);
            assert_eq!(
                ClientCommand::parse_request_in(dialect, frames),
                Ok(request)
            );
        }
        // The bytes each dialect puts on the wire.
        let partial = |service: &'static [u8]| ClientCommand::Partial {
            service: Bytes::from_static(service),
            body: m([b"p"]),
        };
        assert_eq!(
            partial(b"svc").encode(Dialect::Rfc18),
            m([b"MDPC02", &[0x02], b"svc", b"p"])
        );
        assert_eq!(
            partial(b"svc").encode(Dialect::Majortomo),
            m([b"MDPC02", &[0x03], b"p"])
        );
        assert_eq!(
            ClientCommand::parse_reply_in(Dialect::Majortomo, m([b"MDPC02", &[0x03], b"p"])),
            Ok(partial(b""))
        );
        assert_eq!(
            ClientCommand::parse_reply_in(Dialect::Rfc18, m([b"MDPC02", &[0x03], b"svc", b"f"])),
            Ok(ClientCommand::Reply {
                service: Bytes::from_static(b"svc"),
                body: m([b"f"])
            })
        );
        assert_eq!(
            for_dealer_in(Dialect::Rfc18, m([b"MDPW02", &[0x05]])),
            m([b"MDPW02", &[0x05]])
        );
        assert_eq!(
            for_dealer_in(Dialect::Majortomo, m([b"MDPW02", &[0x05]])),
            m([b"", b"MDPW02", &[0x05]])
        );
    }

    #[test]
    fn the_dialect_is_recognised_from_the_frames() {
        let cases: [(Message, Dialect); 4] = [
            (m([b"C", b"", b"MDPC01", b"s"]), Dialect::V01),
            (m([b"C", b"MDPC02", &[0x01], b"s"]), Dialect::Rfc18),
            (m([b"C", b"", b"MDPC02", &[0x02], b"s"]), Dialect::Majortomo),
            (
                m([b"W", b"MDPW02", &[0x03], b"C", b"", b"p"]),
                Dialect::Rfc18,
            ),
        ];
        for (frames, dialect) in cases {
            let received = Received::parse(frames.clone()).unwrap();
            assert_eq!(received.dialect, dialect, "{frames:?}");
            assert_eq!(
                received.sender,
                Message::from_frames([frames.first().unwrap().clone()])
            );
        }
        assert_eq!("majortomo".parse(), Ok(Dialect::Majortomo));
        assert_eq!("0.2".parse(), Ok(Dialect::Rfc18));
        assert!("0.3".parse::<Dialect>().is_err());
    }
}
