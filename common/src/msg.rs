//! Multipart messages and address envelopes.
//!
//! A ZeroMQ message is a list of frames. The reliable patterns move messages between sockets
//! while pushing and popping *envelopes*: one or more address frames followed by an empty
//! delimiter frame. [`Message`] holds the frames; [`crate::envelope`] validates envelopes.
//!
//! Unlike `zeromq::ZmqMessage`, a [`Message`] may be empty, which is convenient while building
//! one; converting an empty message into a `ZmqMessage` is an error rather than a panic.

use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt::{self, Write as _};

/// A multipart message: an ordered list of frames.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    frames: VecDeque<Bytes>,
}

/// Returned when an empty [`Message`] is handed to a socket: ZeroMQ has no zero-frame messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a message must have at least one frame")]
pub struct EmptyMessage;

impl Message {
    /// An empty message, to be filled with [`push_back`](Self::push_back).
    pub fn new() -> Self {
        Self::default()
    }

    /// A message made of the given frames, in order.
    pub fn from_frames<I, F>(frames: I) -> Self
    where
        I: IntoIterator<Item = F>,
        F: Into<Bytes>,
    {
        Self {
            frames: frames.into_iter().map(Into::into).collect(),
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True if the message has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frame at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&Bytes> {
        self.frames.get(index)
    }

    /// The first frame, if any.
    pub fn first(&self) -> Option<&Bytes> {
        self.frames.front()
    }

    /// Iterates over the frames in order.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.frames.iter()
    }

    /// Adds a frame at the front.
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.frames.push_front(frame.into());
    }

    /// Adds a frame at the back.
    pub fn push_back(&mut self, frame: impl Into<Bytes>) {
        self.frames.push_back(frame.into());
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        self.frames.pop_front()
    }

    /// Removes and returns the last frame.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.frames.pop_back()
    }

    /// Builder-style [`push_back`](Self::push_back).
    pub fn with(mut self, frame: impl Into<Bytes>) -> Self {
        self.push_back(frame);
        self
    }

    /// Puts `address` and an empty delimiter in front: `[address, "", …]` (the Guide's
    /// `zmsg_wrap`, which the Guide-sized examples use; the hardened code uses
    /// [`Envelope`](crate::envelope::Envelope), which validates).
    pub fn wrap(&mut self, address: impl Into<Bytes>) {
        self.frames.push_front(Bytes::new());
        self.frames.push_front(address.into());
    }

    /// Removes the first frame (an address) and, if present, the empty delimiter after it (the
    /// Guide's `zmsg_unwrap`).
    pub fn unwrap_address(&mut self) -> Option<Bytes> {
        let address = self.frames.pop_front()?;
        if self.frames.front().is_some_and(|f| f.is_empty()) {
            self.frames.pop_front();
        }
        Some(address)
    }

    /// Splits off the envelope: every frame up to and including the first empty frame.
    ///
    /// Returns `None` (and leaves the message untouched) when there is no empty delimiter.
    /// The returned envelope keeps its delimiter, so `body.prepend(envelope)` restores the
    /// original message.
    pub fn split_envelope(&mut self) -> Option<Message> {
        let delimiter = self.frames.iter().position(|f| f.is_empty())?;
        let body = self.frames.split_off(delimiter + 1);
        let envelope = std::mem::replace(&mut self.frames, body);
        Some(Message { frames: envelope })
    }

    /// Puts all frames of `front` before this message's frames.
    pub fn prepend(&mut self, front: Message) {
        let mut frames = front.frames;
        frames.append(&mut self.frames);
        self.frames = frames;
    }

    /// Appends all frames of `back` after this message's frames.
    pub fn append(&mut self, back: Message) {
        self.frames.extend(back.frames);
    }

    /// Consumes the message, returning its frames.
    pub fn into_frames(self) -> VecDeque<Bytes> {
        self.frames
    }

    /// A multi-line dump in the Guide's `s_dump` style: `[005] hello`, binary frames in hex.
    pub fn dump(&self) -> String {
        let mut out = String::from("----------------------------------------");
        for frame in &self.frames {
            out.push('\n');
            let _ = write!(out, "[{:03}] {}", frame.len(), frame_text(frame));
        }
        out
    }
}

/// A frame as text if it is printable ASCII, otherwise as upper-case hex.
pub fn frame_text(frame: &[u8]) -> String {
    if frame.iter().all(|b| (0x20..0x7f).contains(b)) {
        String::from_utf8_lossy(frame).into_owned()
    } else {
        frame.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.frames.iter().map(|frame| frame_text(frame)))
            .finish()
    }
}

impl From<zeromq::ZmqMessage> for Message {
    fn from(message: zeromq::ZmqMessage) -> Self {
        Self {
            frames: message.into_vecdeque(),
        }
    }
}

impl TryFrom<Message> for zeromq::ZmqMessage {
    type Error = EmptyMessage;

    fn try_from(message: Message) -> Result<Self, EmptyMessage> {
        zeromq::ZmqMessage::try_from(message.frames).map_err(|_| EmptyMessage)
    }
}

impl<F: Into<Bytes>> FromIterator<F> for Message {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        Self::from_frames(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_then_unwrap_restores_the_body() {
        let mut m = Message::from_frames(["hello"]);
        m.wrap("worker-1");
        assert_eq!(m, Message::from_frames(["worker-1", "", "hello"]));
        assert_eq!(m.unwrap_address().as_deref(), Some(&b"worker-1"[..]));
        assert_eq!(m, Message::from_frames(["hello"]));
    }

    #[test]
    fn unwrap_without_delimiter_only_pops_the_address() {
        let mut m = Message::from_frames(["a", "b"]);
        assert_eq!(m.unwrap_address().as_deref(), Some(&b"a"[..]));
        assert_eq!(m, Message::from_frames(["b"]));
        assert_eq!(Message::new().unwrap_address(), None);
    }

    #[test]
    fn split_envelope_keeps_a_multi_hop_address_stack() {
        let mut m = Message::from_frames(["c1", "q1", "", "body1", "body2"]);
        let env = m.split_envelope().unwrap();
        assert_eq!(env, Message::from_frames(["c1", "q1", ""]));
        assert_eq!(m, Message::from_frames(["body1", "body2"]));
        m.prepend(env);
        assert_eq!(m, Message::from_frames(["c1", "q1", "", "body1", "body2"]));
    }

    #[test]
    fn split_envelope_without_delimiter_is_none_and_untouched() {
        let mut m = Message::from_frames(["x", "y"]);
        assert!(m.split_envelope().is_none());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn dump_shows_text_and_hex() {
        let m = Message::from_frames([Bytes::from_static(b"hi"), Bytes::from_static(&[0, 0x41])]);
        assert_eq!(
            m.dump(),
            "----------------------------------------\n[002] hi\n[002] 0041"
        );
    }

    #[test]
    fn empty_message_does_not_convert_to_zmq() {
        assert_eq!(
            zeromq::ZmqMessage::try_from(Message::new()).unwrap_err(),
            EmptyMessage
        );
        let z = zeromq::ZmqMessage::try_from(Message::from_frames(["a", ""])).unwrap();
        assert_eq!(Message::from(z), Message::from_frames(["a", ""]));
    }
}
