//! The state message exchanged on PUB/SUB, wire-compatible with the Guide's `bstarsrv`.
//!
//! # Format
//!
//! One frame holding one ASCII digit: the sender's state, `1` PRIMARY, `2` BACKUP, `3` ACTIVE,
//! `4` PASSIVE (what the Guide's `zstr_send (statepub, "%d", state)` puts on the wire, without a
//! terminating NUL). Anything else is an error the receiver logs and ignores; in particular the
//! Guide's `atoi` would turn garbage into event 0, which we refuse to guess about.

use crate::fsm::State;
use common::msg::frame_text;
use common::Message;

/// Why a state message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A state message has exactly one frame.
    #[error("expected 1 frame, got {0}")]
    FrameCount(usize),
    /// The frame is not a single digit from 1 to 4.
    #[error("expected one ASCII digit 1-4, got {0:?}")]
    NotAState(String),
}

/// Parses a message received on the state SUB socket.
pub fn parse_state(message: &Message) -> Result<State, WireError> {
    if message.len() != 1 {
        return Err(WireError::FrameCount(message.len()));
    }
    let frame = message.first().map(|f| &f[..]).unwrap_or_default();
    match frame {
        [digit] => State::from_digit(*digit),
        _ => None,
    }
    .ok_or_else(|| WireError::NotAState(frame_text(frame)))
}

/// The message a server publishes to announce `state`.
pub fn state_message(state: State) -> Message {
    Message::from_frames([vec![state.digit()]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips() {
        for state in State::ALL {
            let message = state_message(state);
            assert_eq!(message.len(), 1);
            assert_eq!(message.first().unwrap().len(), 1);
            assert_eq!(parse_state(&message), Ok(state));
        }
        assert_eq!(&state_message(State::Active).first().unwrap()[..], b"3");
    }

    #[test]
    fn anything_but_one_digit_from_1_to_4_is_refused() {
        for bad in [
            &b""[..],
            b"0",
            b"5",
            b"9",
            b"x",
            b"33",
            b"3\0",
            b" 3",
            b"\xff",
        ] {
            let message = Message::from_frames([bad.to_vec()]);
            assert!(
                matches!(parse_state(&message), Err(WireError::NotAState(_))),
                "{bad:?}"
            );
        }
        let two = Message::from_frames(["3", "3"]);
        assert_eq!(parse_state(&two), Err(WireError::FrameCount(2)));
        assert_eq!(parse_state(&Message::new()), Err(WireError::FrameCount(0)));
        assert_eq!(
            parse_state(&Message::from_frames(["7"]))
                .unwrap_err()
                .to_string(),
            "expected one ASCII digit 1-4, got \"7\""
        );
    }
}
