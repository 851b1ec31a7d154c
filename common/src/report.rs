//! How every client accounts for its requests: one rule, one summary line, one line per request.
//!
//! # The rule (contract 3)
//!
//! A client opens an entry in its [`Ledger`] when it first sends a request and closes it when the
//! outcome is final: *answered* (the right reply came) or *failed* (abandoned, timed out, or still
//! in flight when the run ended — Ctrl-C included). [`Ledger::finish`] closes every entry still
//! open as failed, so at exit `sent = answered + failed` always holds, and
//! [`Summary::exit_code`] is non-zero exactly when `failed > 0`. No client keeps its own counters:
//! they cannot drift from the rule.
//!
//! # The summary line (a stable contract)
//!
//! `I: summary sent=10 answered=9 failed=1 retries=3`, always the client's last line;
//! [`Summary::last_in`] finds and parses it. `retries` counts resends: the sum of `tries - 1`
//! over all requests.
//!
//! # The per-request line (contract 2, with `--log-requests`)
//!
//! `I: request seq=17 outcome=answered tries=2 latency_ms=35`, printed once per request when its
//! outcome is final: `seq` is the client's own 1-based counter, `outcome` is `answered` or
//! `failed`, `tries` the sends of that request (1 = no retry), `latency_ms` the time from its
//! first send to its outcome. The lines of one run add up to its summary line
//! ([`RequestLine::tally`]). [`RequestLine::all_in`] parses them back.
//!
//! The ledger reads no clock: every call that needs the time takes `now`.

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Outcome counts of one client run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Distinct requests sent (retries not counted).
    pub sent: u64,
    /// Requests that got their correct reply.
    pub answered: u64,
    /// Requests the client gave up on, or that were in flight when the run ended.
    pub failed: u64,
    /// Resends: the sum of `tries - 1` over all requests.
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

    /// True when every request sent has an outcome (`sent = answered + failed`).
    pub fn balanced(&self) -> bool {
        self.sent == self.answered + self.failed
    }

    /// The exit status of a client run: failure exactly when some request failed.
    pub fn exit_code(&self) -> ExitCode {
        if self.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
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

/// The final outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The right reply came.
    Answered,
    /// Abandoned, timed out, or still in flight when the run ended.
    Failed,
}

impl Outcome {
    /// The word on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Failed => "failed",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "answered" => Ok(Outcome::Answered),
            "failed" => Ok(Outcome::Failed),
            other => Err(format!("unknown outcome {other:?}")),
        }
    }
}

/// One request's final record: `request seq=17 outcome=answered tries=2 latency_ms=35`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine {
    /// The client's own 1-based request counter.
    pub seq: u64,
    /// How the request ended.
    pub outcome: Outcome,
    /// Sends of this request (1 = no retry).
    pub tries: u64,
    /// From its first send to its outcome, in whole milliseconds.
    pub latency_ms: u64,
}

impl RequestLine {
    /// Every request line among `lines`, parsed, in order. Lines that mention `request seq=` but
    /// do not parse are passed over (other `request …` log lines never contain `seq=`).
    pub fn all_in<I>(lines: I) -> Vec<RequestLine>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        lines
            .into_iter()
            .filter(|l| l.as_ref().contains("request seq="))
            .filter_map(|l| l.as_ref().parse().ok())
            .collect()
    }

    /// The summary these request lines add up to (what the run's summary line must say).
    pub fn tally<'a>(lines: impl IntoIterator<Item = &'a RequestLine>) -> Summary {
        let mut s = Summary::default();
        for line in lines {
            s.sent += 1;
            match line.outcome {
                Outcome::Answered => s.answered += 1,
                Outcome::Failed => s.failed += 1,
            }
            s.retries += line.tries.saturating_sub(1);
        }
        s
    }
}

impl fmt::Display for RequestLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request seq={} outcome={} tries={} latency_ms={}",
            self.seq,
            self.outcome.as_str(),
            self.tries,
            self.latency_ms
        )
    }
}

impl FromStr for RequestLine {
    type Err = String;

    /// Parses a line containing `request seq=… outcome=… tries=… latency_ms=…`; every field is
    /// required.
    fn from_str(line: &str) -> Result<Self, String> {
        let rest = line
            .split_once("request seq=")
            .map(|(_, r)| r)
            .ok_or_else(|| format!("not a request line: {line:?}"))?;
        let (mut seq, mut outcome, mut tries, mut latency) = (None, None, None, None);
        for pair in format!("seq={rest}").split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or("expected key=value")?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad number in {pair}"))
            };
            match key {
                "seq" => seq = Some(number()?),
                "outcome" => outcome = Some(value.parse()?),
                "tries" => tries = Some(number()?),
                "latency_ms" => latency = Some(number()?),
                _ => {}
            }
        }
        let missing = |name: &str| format!("{name} missing in {line:?}");
        Ok(RequestLine {
            seq: seq.ok_or_else(|| missing("seq"))?,
            outcome: outcome.ok_or_else(|| missing("outcome"))?,
            tries: tries.ok_or_else(|| missing("tries"))?,
            latency_ms: latency.ok_or_else(|| missing("latency_ms"))?,
        })
    }
}

/// A request whose outcome is not known yet.
#[derive(Debug, Clone, Copy)]
struct Open {
    first_sent: Instant,
    tries: u64,
}

/// The one place a client counts its requests (see the module docs for the rule).
///
/// ```
/// use common::report::Ledger;
/// use std::time::Instant;
///
/// let mut ledger = Ledger::new(false);
/// let t0 = Instant::now();
/// let a = ledger.start(t0);
/// ledger.resent(a);
/// ledger.answered(a, t0);
/// let _b = ledger.start(t0); // still in flight at Ctrl-C
/// let summary = ledger.finish(t0);
/// assert_eq!((summary.sent, summary.answered, summary.failed, summary.retries), (2, 1, 1, 1));
/// assert!(summary.balanced());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    log_requests: bool,
    summary: Summary,
    open: BTreeMap<u64, Open>,
    last_seq: u64,
}

impl Ledger {
    /// An empty ledger; with `log_requests` it logs a [`RequestLine`] for every outcome.
    pub fn new(log_requests: bool) -> Ledger {
        Ledger {
            log_requests,
            ..Ledger::default()
        }
    }

    /// A request is sent for the first time at `now`: returns its sequence number (1, 2, …).
    pub fn start(&mut self, now: Instant) -> u64 {
        self.last_seq += 1;
        self.summary.sent += 1;
        self.open.insert(
            self.last_seq,
            Open {
                first_sent: now,
                tries: 1,
            },
        );
        self.last_seq
    }

    /// Request `seq` was sent once more (a retry). Unknown or closed `seq`: ignored.
    pub fn resent(&mut self, seq: u64) {
        if let Some(open) = self.open.get_mut(&seq) {
            open.tries += 1;
            self.summary.retries += 1;
        }
    }

    /// Request `seq` has been sent `tries` times in all, as counted by a client library that
    /// retries on its own. Counts never go down: a smaller number is ignored.
    pub fn set_tries(&mut self, seq: u64, tries: u64) {
        if let Some(open) = self.open.get_mut(&seq) {
            if tries > open.tries {
                self.summary.retries += tries - open.tries;
                open.tries = tries;
            }
        }
    }

    /// Request `seq` got its answer at `now`. Returns its line (also logged with
    /// `--log-requests`); `None` if `seq` is unknown or already closed (a duplicate reply).
    pub fn answered(&mut self, seq: u64, now: Instant) -> Option<RequestLine> {
        self.close(seq, Outcome::Answered, now)
    }

    /// Request `seq` failed for good at `now` (given up, timed out). Like
    /// [`answered`](Self::answered) otherwise.
    pub fn failed(&mut self, seq: u64, now: Instant) -> Option<RequestLine> {
        self.close(seq, Outcome::Failed, now)
    }

    fn close(&mut self, seq: u64, outcome: Outcome, now: Instant) -> Option<RequestLine> {
        let open = self.open.remove(&seq)?;
        match outcome {
            Outcome::Answered => self.summary.answered += 1,
            Outcome::Failed => self.summary.failed += 1,
        }
        let latency = now.saturating_duration_since(open.first_sent);
        let line = RequestLine {
            seq,
            outcome,
            tries: open.tries,
            latency_ms: millis(latency),
        };
        if self.log_requests {
            tracing::info!("{line}");
        }
        Some(line)
    }

    /// Requests sent whose outcome is not known yet.
    pub fn in_flight(&self) -> usize {
        self.open.len()
    }

    /// The sequence numbers of the requests in flight, oldest first.
    pub fn open_seqs(&self) -> Vec<u64> {
        self.open.keys().copied().collect()
    }

    /// Counts so far (requests in flight are in `sent` only).
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Ends the run at `now`: every request still in flight is failed (and its line logged),
    /// then the summary line is logged and returned. Call it exactly once, last.
    pub fn finish(&mut self, now: Instant) -> Summary {
        for seq in self.open_seqs() {
            self.failed(seq, now);
        }
        debug_assert!(self.summary.balanced());
        self.summary.log();
        self.summary
    }
}

/// The rate line a client prints before its summary:
/// `<answered> replies in <seconds> s: <rate> requests/s`.
pub fn rate_line(answered: u64, elapsed: Duration) -> String {
    let rate = answered as f64 / elapsed.as_secs_f64().max(1e-9);
    format!(
        "{answered} replies in {:.3} s: {rate:.0} requests/s",
        elapsed.as_secs_f64()
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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

    #[test]
    fn rate_line_shows_answers_time_and_rate() {
        assert_eq!(
            rate_line(500, Duration::from_millis(250)),
            "500 replies in 0.250 s: 2000 requests/s"
        );
        assert!(rate_line(0, Duration::ZERO).ends_with(": 0 requests/s"));
    }

    #[test]
    fn exit_code_follows_failed_only() {
        let ok = Summary {
            sent: 3,
            answered: 3,
            ..Summary::default()
        };
        let bad = Summary {
            sent: 3,
            answered: 2,
            failed: 1,
            retries: 0,
        };
        assert_eq!(ok.exit_code(), ExitCode::SUCCESS);
        assert_eq!(bad.exit_code(), ExitCode::FAILURE);
        assert!(ok.balanced() && bad.balanced());
        assert!(!Summary { sent: 2, ..ok }.balanced());
    }

    #[test]
    fn a_request_in_flight_at_the_end_counts_failed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut ledger = Ledger::new(false);
        let a = ledger.start(t0);
        let b = ledger.start(t0 + ms(5));
        assert_eq!((a, b), (1, 2));
        assert_eq!(ledger.in_flight(), 2);
        let line = ledger.answered(a, t0 + ms(30)).unwrap();
        assert_eq!(
            line.to_string(),
            "request seq=1 outcome=answered tries=1 latency_ms=30"
        );
        assert_eq!(
            ledger.answered(a, t0 + ms(40)),
            None,
            "a duplicate is ignored"
        );
        assert_eq!(ledger.summary().answered, 1);
        ledger.resent(b);
        ledger.resent(b);
        let s = ledger.finish(t0 + ms(105));
        assert_eq!(
            s,
            Summary {
                sent: 2,
                answered: 1,
                failed: 1,
                retries: 2
            }
        );
        assert_eq!(ledger.in_flight(), 0);
    }

    #[test]
    fn tries_reported_by_a_library_never_go_down() {
        let t0 = Instant::now();
        let mut ledger = Ledger::new(false);
        let a = ledger.start(t0);
        ledger.set_tries(a, 3);
        ledger.set_tries(a, 2);
        ledger.set_tries(99, 7);
        ledger.resent(99);
        let line = ledger.failed(a, t0).unwrap();
        assert_eq!((line.tries, line.outcome), (3, Outcome::Failed));
        assert_eq!(ledger.summary().retries, 2);
    }

    #[test]
    fn request_lines_round_trip_and_add_up_to_the_summary() {
        let t0 = Instant::now();
        let mut ledger = Ledger::new(false);
        let mut lines = Vec::new();
        for i in 0..5u64 {
            let seq = ledger.start(t0);
            ledger.set_tries(seq, 1 + i % 3);
            let line = if i == 3 {
                ledger.failed(seq, t0 + Duration::from_millis(i))
            } else {
                ledger.answered(seq, t0 + Duration::from_millis(i))
            };
            lines.push(format!("I: {}", line.unwrap()));
        }
        lines.push("I: request 4 answered after 2 attempts".into());
        lines.push("I: request UUID 0123".into());
        lines.push("W: request seq=9 outcome=maybe tries=1 latency_ms=1".into());
        let summary = ledger.finish(t0);
        let parsed = RequestLine::all_in(&lines);
        assert_eq!(parsed.len(), 5);
        assert_eq!(parsed[3].outcome, Outcome::Failed);
        assert_eq!(parsed[4].latency_ms, 4);
        assert_eq!(RequestLine::tally(&parsed), summary);
        assert!("I: request seq=1 outcome=failed tries=1"
            .parse::<RequestLine>()
            .is_err());
    }
}
