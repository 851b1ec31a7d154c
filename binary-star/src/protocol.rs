//! The state message exchanged on PUB/SUB, wire-compatible with the Guide's `bstarsrv`.
//!
//! # Format
//!
//! One frame, ASCII: the sender's state as one digit, `1` PRIMARY, `2` BACKUP, `3` ACTIVE,
//! `4` PASSIVE, optionally followed by `:` and the sender's epoch in decimal (`3:17`).
//!
//! * The Guide's `bstarsrv` sends the bare digit (`zstr_send (statepub, "%d", state)`, no NUL);
//!   we accept it and treat the sender as one that knows no epochs.
//! * We send `<digit>:<epoch>`. The Guide's receiver reads the frame with `atoi`, which stops at
//!   the first non-digit, so `"3:17"` is still event 3 to a C peer.
//!
//! Anything else is an error the receiver logs and ignores; in particular the Guide's `atoi`
//! would turn garbage into event 0, which we refuse to guess about. The epoch (see
//! [`crate::node`]) is at most 20 digits and must fit a `u64`.

use crate::fsm::State;
use common::msg::frame_text;
use common::Message;

/// One state message: the peer's state and, if it sent one, its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateMessage {
    /// The sender's state.
    pub state: State,
    /// The sender's epoch; `None` from a peer that sends the Guide's bare digit.
    pub epoch: Option<u64>,
}

/// Why a state message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A state message has exactly one frame.
    #[error("expected 1 frame, got {0}")]
    FrameCount(usize),
    /// The frame is not a digit from 1 to 4, optionally followed by `:` and an epoch.
    #[error("expected one ASCII digit 1-4 (optionally \":<epoch>\"), got {0:?}")]
    NotAState(String),
}

/// Parses a message received on the state SUB socket.
pub fn parse_state(message: &Message) -> Result<StateMessage, WireError> {
    if message.len() != 1 {
        return Err(WireError::FrameCount(message.len()));
    }
    let frame = message.first().map(|f| &f[..]).unwrap_or_default();
    parse_frame(frame).ok_or_else(|| WireError::NotAState(frame_text(frame)))
}

fn parse_frame(frame: &[u8]) -> Option<StateMessage> {
    let (&digit, rest) = frame.split_first()?;
    let state = State::from_digit(digit)?;
    let epoch = match rest {
        [] => None,
        [b':', digits @ ..]
            if !digits.is_empty()
                && digits.len() <= 20
                && digits.iter().all(u8::is_ascii_digit) =>
        {
            Some(std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?)
        }
        _ => return None,
    };
    Some(StateMessage { state, epoch })
}

/// The message a server publishes to announce `state` in `epoch`.
pub fn state_message(state: State, epoch: u64) -> Message {
    Message::from_frames([format!("{}:{epoch}", state.digit() as char).into_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Guide's C receiver does with a frame: `atoi`.
    fn c_atoi(frame: &[u8]) -> i64 {
        let digits: Vec<u8> = frame
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        std::str::from_utf8(&digits).unwrap().parse().unwrap_or(0)
    }

    #[test]
    fn every_state_round_trips_with_its_epoch() {
        for state in State::ALL {
            for epoch in [0, 1, 17, u64::MAX] {
                let message = state_message(state, epoch);
                assert_eq!(message.len(), 1);
                assert_eq!(
                    parse_state(&message),
                    Ok(StateMessage {
                        state,
                        epoch: Some(epoch)
                    })
                );
            }
        }
        assert_eq!(
            &state_message(State::Active, 17).first().unwrap()[..],
            b"3:17"
        );
    }

    #[test]
    fn the_guides_c_receiver_reads_our_state_digit() {
        for state in State::ALL {
            let message = state_message(state, 12345);
            let frame = message.first().unwrap();
            assert_eq!(c_atoi(frame), i64::from(state as u8));
        }
    }

    #[test]
    fn the_guides_bare_digit_is_a_state_without_an_epoch() {
        for state in State::ALL {
            let message = Message::from_frames([vec![state.digit()]]);
            assert_eq!(
                parse_state(&message),
                Ok(StateMessage { state, epoch: None })
            );
        }
    }

    #[test]
    fn anything_else_is_refused() {
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
            b"3:",
            b"3:x",
            b"3:-1",
            b"3:+1",
            b"3:1:2",
            b"3;1",
            b"3:18446744073709551616",
            b"3:000000000000000000001",
            b"0:1",
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
            "expected one ASCII digit 1-4 (optionally \":<epoch>\"), got \"7\""
        );
    }
}
