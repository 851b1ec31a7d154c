//! The fault vocabulary: [`Fault`] (what the link does now), [`Command`] (what a user types) and
//! their one-line text form, shared by the library, the `netfault` binary and scenario files.
//!
//! # Format
//! One command per line, words separated by spaces:
//!
//! | text | command |
//! |---|---|
//! | `pass` | `Set(Pass)`: move bytes freely |
//! | `heal` | `Heal`: same as `pass`, named for the end of a partition |
//! | `partition` | `Set(Partition)`: hold both directions, close nothing |
//! | `partition up` | `Set(OneWay(Upstream))`: hold client → server bytes only |
//! | `partition down` | `Set(OneWay(Downstream))`: hold server → client bytes only |
//! | `delay MS` | `Set(Delay(MS ms))`: every chunk arrives MS milliseconds later (0 to 86400000, a day) |
//! | `throttle BYTES_PER_S` | `Set(Throttle(n))`: at most n bytes per second each way |
//! | `reset` | `Reset`: abort every current connection with RST |
//!
//! `Display` writes exactly this text, so a command survives a round trip through a log line or
//! a scenario file.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A direction of a relayed TCP connection, named from the client's side of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Bytes from the client (who connected to the proxy) to the server (behind it): `up`.
    Upstream,
    /// Bytes from the server back to the client: `down`.
    Downstream,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Upstream => "up",
            Direction::Downstream => "down",
        })
    }
}

/// What the proxy does to the bytes it relays, until the next command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Move bytes freely (also what `heal` returns to).
    #[default]
    Pass,
    /// Hold both directions, as after a cable pull: no FIN, no RST; new connections are accepted
    /// (by the kernel) but nothing is relayed, so they hang. On `Pass` everything held flows, in
    /// order.
    Partition,
    /// Hold only this direction.
    OneWay(Direction),
    /// Added latency per chunk, both directions; order kept.
    Delay(Duration),
    /// At most this many bytes per second, each direction.
    Throttle(u64),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Pass => f.write_str("pass"),
            Fault::Partition => f.write_str("partition"),
            Fault::OneWay(direction) => write!(f, "partition {direction}"),
            Fault::Delay(delay) => write!(f, "delay {}", delay.as_millis()),
            Fault::Throttle(rate) => write!(f, "throttle {rate}"),
        }
    }
}

/// A command to a running proxy (see the module doc for the text form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Switch to this fault.
    Set(Fault),
    /// Back to [`Fault::Pass`]: whatever was held flows again.
    Heal,
    /// Abort every current connection with RST (both ends see ECONNRESET); keep accepting. The
    /// current fault stays as it is.
    Reset,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Set(fault) => fault.fmt(f),
            Command::Heal => f.write_str("heal"),
            Command::Reset => f.write_str("reset"),
        }
    }
}

/// A line that is not a command; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseCommandError(String);

/// The commands, as listed in error messages.
const USAGE: &str =
    "expected pass | heal | partition [up|down] | delay MS | throttle BYTES_PER_S | reset";

impl FromStr for Command {
    type Err = ParseCommandError;

    fn from_str(line: &str) -> Result<Command, ParseCommandError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| ParseCommandError(format!("{:?}: {why}", line.trim()));
        let number = |word: &str, what: &str| {
            word.parse::<u64>()
                .map_err(|_| bad(&format!("{what} must be a whole number, not {word:?}")))
        };
        match words.as_slice() {
            ["pass"] => Ok(Command::Set(Fault::Pass)),
            ["heal"] => Ok(Command::Heal),
            ["reset"] => Ok(Command::Reset),
            ["partition"] => Ok(Command::Set(Fault::Partition)),
            ["partition", "up"] => Ok(Command::Set(Fault::OneWay(Direction::Upstream))),
            ["partition", "down"] => Ok(Command::Set(Fault::OneWay(Direction::Downstream))),
            ["partition", other] => Err(bad(&format!("partition takes up or down, not {other:?}"))),
            ["delay", ms] => match number(ms, "delay MS")? {
                ms if ms > crate::ranges::MS_MAX => Err(bad(&format!(
                    "delay MS must be 0 to {}, a day",
                    crate::ranges::MS_MAX
                ))),
                ms => Ok(Command::Set(Fault::Delay(Duration::from_millis(ms)))),
            },
            ["throttle", rate] => match number(rate, "throttle BYTES_PER_S")? {
                // A rate of zero would be a partition under another name; say so.
                0 => Err(bad("throttle 0 holds everything: use partition")),
                rate => Ok(Command::Set(Fault::Throttle(rate))),
            },
            [] => Err(bad(&format!("empty line: {USAGE}"))),
            _ => Err(bad(USAGE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_text() {
        let commands = [
            Command::Set(Fault::Pass),
            Command::Heal,
            Command::Reset,
            Command::Set(Fault::Partition),
            Command::Set(Fault::OneWay(Direction::Upstream)),
            Command::Set(Fault::OneWay(Direction::Downstream)),
            Command::Set(Fault::Delay(Duration::from_millis(250))),
            Command::Set(Fault::Throttle(100_000)),
        ];
        for command in commands {
            let text = command.to_string();
            assert_eq!(text.parse::<Command>(), Ok(command), "{text}");
        }
    }

    #[test]
    fn the_documented_texts_parse() {
        assert_eq!("pass".parse(), Ok(Command::Set(Fault::Pass)));
        assert_eq!("  heal  ".parse(), Ok(Command::Heal));
        assert_eq!(
            "partition   up".parse(),
            Ok(Command::Set(Fault::OneWay(Direction::Upstream)))
        );
        assert_eq!(
            "delay 200".parse(),
            Ok(Command::Set(Fault::Delay(Duration::from_millis(200))))
        );
        assert_eq!(
            "throttle 1000".parse(),
            Ok(Command::Set(Fault::Throttle(1000)))
        );
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason() {
        for (line, reason) in [
            ("", "empty line"),
            ("partition sideways", "up or down"),
            ("delay", "expected"),
            ("delay soon", "whole number"),
            ("delay -5", "whole number"),
            ("delay 86400001", "0 to 86400000"),
            ("delay 18446744073709551615", "0 to 86400000"),
            ("delay 18446744073709551616", "whole number"),
            ("throttle 0", "use partition"),
            ("pass now", "expected"),
            ("PASS", "expected"),
        ] {
            let err = line.parse::<Command>().expect_err(line);
            assert!(err.to_string().contains(reason), "{line:?}: {err}");
        }
    }
}
