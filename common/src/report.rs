//! The summary line every client prints when it ends, read by the tour and the tests.
//!
//! Format (a stable contract): `I: summary sent=10 answered=9 failed=1 retries=3`.
//! `lost` is not printed: it is whatever was sent but neither answered nor reported failed.

use std::fmt;
use std::str::FromStr;

/// Outcome counts of one client run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Distinct requests sent (retries not counted).
    pub sent: u64,
    /// Requests that got their correct reply.
    pub answered: u64,
    /// Requests the client gave up on and reported failed.
    pub failed: u64,
    /// Resends after a timeout.
    pub retries: u64,
}

impl Summary {
    /// Requests with no outcome at all: neither answered nor reported failed.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.answered + self.failed)
    }

    /// Logs the summary line (`I: summary …`).
    pub fn log(&self) {
        tracing::info!("{self}");
    }

    /// The last summary line among a process's `lines`, parsed; `None` if there is none.
    ///
    /// The last one wins because a restarted client prints one per run. Lines that mention
    /// `summary sent=` but do not parse are passed over.
    pub fn last_in<I>(lines: I) -> Option<Summary>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        lines
            .into_iter()
            .filter(|l| l.as_ref().contains("summary sent="))
            .filter_map(|l| l.as_ref().parse().ok())
            .last()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary sent={} answered={} failed={} retries={}",
            self.sent, self.answered, self.failed, self.retries
        )
    }
}

impl FromStr for Summary {
    type Err = String;

    /// Parses a line containing `summary sent=… answered=… failed=… retries=…`.
    fn from_str(line: &str) -> Result<Self, String> {
        let rest = line
            .split_once("summary ")
            .map(|(_, r)| r)
            .ok_or_else(|| format!("not a summary line: {line:?}"))?;
        let mut s = Summary::default();
        for pair in rest.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or("expected key=value")?;
            let value: u64 = value.parse().map_err(|_| format!("bad number in {pair}"))?;
            match key {
                "sent" => s.sent = value,
                "answered" => s.answered = value,
                "failed" => s.failed = value,
                "retries" => s.retries = value,
                _ => {}
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trips_through_its_line() {
        let s = Summary {
            sent: 10,
            answered: 8,
            failed: 1,
            retries: 4,
        };
        let line = format!("I: {s}");
        assert_eq!(line.parse::<Summary>().unwrap(), s);
        assert_eq!(s.lost(), 1);
        assert!("I: hello".parse::<Summary>().is_err());
    }

    #[test]
    fn the_last_summary_line_wins() {
        let lines: Vec<String> = [
            "I: summary sent=1 answered=1 failed=0 retries=0",
            "I: reply ok",
            "I: summary sent=5 answered=4 failed=1 retries=2",
            "W: summary sent=garbled",
            "I: bye",
        ]
        .map(String::from)
        .into();
        let s = Summary::last_in(&lines).unwrap();
        assert_eq!((s.sent, s.answered, s.failed, s.retries), (5, 4, 1, 2));
        assert!(Summary::last_in(["I: nothing", "I: summary of the day"]).is_none());
        assert!(Summary::last_in(Vec::<String>::new()).is_none());
    }
}
