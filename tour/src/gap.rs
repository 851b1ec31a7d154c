//! The failover gap a client sees: from its last answer by the old server to its first answer
//! by the new one.
//!
//! A step's `gap = [{ label, process, line }]` measures it for one client: what a user of a
//! failover pattern waits, whatever part detection, the vote and the resend each take. A
//! line-to-line `measure` cannot show it: it starts at the step, not at the last answer. The
//! answers are the client's `--log-requests` lines (one per request, at its outcome; the tour
//! asks for them from every client a gap reads), and `line` is the one the client prints when
//! an answer first comes from the other server (`answered by <ep> after failover`): every answer
//! printed before it came from the old server, the next one is the new server's first. Pure:
//! lines in, the stretch out.

use std::time::Duration;

/// What a client's line means to a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// An answered request (its request line).
    Answer,
    /// The line that marks the first answer from the other server.
    Switch,
}

/// A stretch without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    /// The last answer by the old server (the step's time if there was none before it).
    pub from: Duration,
    /// The first answer by the new server.
    pub to: Duration,
}

impl Silence {
    /// How long it lasted.
    pub fn length(&self) -> Duration {
        self.to.saturating_sub(self.from)
    }
}

/// The client's gap around the step at `step`, from its lines in the order it printed them
/// (each with its arrival time): the first [`Seen::Switch`] at or after the step, the last
/// answer printed before that switch (the old server's last, even one that arrived a moment
/// after the step) and the first answer printed after it. `None` if the client never switched
/// after the step, or was never answered after its switch.
///
/// Why the switch line and not simply the longest wait after the step: a request that ran on a
/// slow worker after the failover can keep a client waiting longer than the failover did.
pub fn failover_gap(lines: &[(Duration, Seen)], step: Duration) -> Option<Silence> {
    let switch = lines
        .iter()
        .position(|&(at, seen)| seen == Seen::Switch && at >= step)?;
    let from = lines[..switch]
        .iter()
        .rev()
        .find(|(_, seen)| *seen == Seen::Answer)
        .map_or(step, |(at, _)| *at);
    let to = lines[switch..]
        .iter()
        .find(|(_, seen)| *seen == Seen::Answer)
        .map(|(at, _)| *at)?;
    Some(Silence { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a` for an answer, `s` for the switch line, at each time in ms.
    fn lines(spec: &[(u64, char)]) -> Vec<(Duration, Seen)> {
        spec.iter()
            .map(|&(ms, c)| {
                let seen = if c == 's' { Seen::Switch } else { Seen::Answer };
                (Duration::from_millis(ms), seen)
            })
            .collect()
    }

    fn gap(spec: &[(u64, char)], step: u64) -> Option<(u64, u64)> {
        failover_gap(&lines(spec), Duration::from_millis(step))
            .map(|s| (s.from.as_millis() as u64, s.to.as_millis() as u64))
    }

    #[test]
    fn the_gap_runs_from_the_old_servers_last_answer_to_the_new_servers_first() {
        // Answers every 100 ms, a kill at 1050, the other server's first answer at 4200.
        let spec = [
            (800, 'a'),
            (900, 'a'),
            (1000, 'a'),
            (4200, 's'),
            (4200, 'a'),
            (4300, 'a'),
        ];
        assert_eq!(gap(&spec, 1050), Some((1000, 4200)));
    }

    #[test]
    fn a_reply_of_the_old_server_that_arrives_just_after_the_step_is_its_last_answer() {
        let spec = [(1000, 'a'), (1052, 'a'), (4200, 's'), (4200, 'a')];
        assert_eq!(gap(&spec, 1050), Some((1052, 4200)));
    }

    #[test]
    fn a_slow_request_after_the_failover_is_not_the_gap() {
        // The failover took 1.3 s; a request on a slow worker 2.5 s a little later.
        let spec = [
            (1000, 'a'),
            (2300, 's'),
            (2300, 'a'),
            (2400, 'a'),
            (4900, 'a'),
        ];
        assert_eq!(gap(&spec, 1050), Some((1000, 2300)));
    }

    #[test]
    fn only_a_switch_after_the_step_counts() {
        // An earlier failover (before the step) is not this step's.
        let spec = [
            (100, 's'),
            (100, 'a'),
            (1000, 'a'),
            (3000, 's'),
            (3000, 'a'),
        ];
        assert_eq!(gap(&spec, 1050), Some((1000, 3000)));
    }

    #[test]
    fn without_an_answer_before_the_switch_the_gap_starts_at_the_step() {
        assert_eq!(gap(&[(3000, 's'), (3000, 'a')], 1000), Some((1000, 3000)));
    }

    #[test]
    fn no_switch_or_no_answer_after_it_is_no_gap() {
        assert_eq!(gap(&[], 1000), None);
        assert_eq!(gap(&[(900, 'a'), (1200, 'a')], 1000), None);
        assert_eq!(gap(&[(900, 'a'), (1200, 's')], 1000), None);
    }
}
