//! The failover gap a client sees: its longest wait between two answers around a step.
//!
//! A step's `gap = [{ label, process }]` measures, for a client, the stretch from its last
//! answer before the fault to its first answer after it: what a user of a failover pattern
//! waits, whatever part detection, the vote and the resend each take. A line-to-line `measure`
//! cannot show it (it starts at the step, not at the last answer, and the client prints no line
//! when it resumes). The answers are the client's `--log-requests` lines (one per request, at
//! its outcome), which the tour asks for from every client that a gap reads. Pure: times in,
//! the stretch out.

use std::time::Duration;

/// A stretch without an answer: from one answer (or the step, if none came before it) to the
/// next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    /// The last answer before the stretch (the step's time if there was none).
    pub from: Duration,
    /// The answer that ended it.
    pub to: Duration,
}

impl Silence {
    /// How long it lasted.
    pub fn length(&self) -> Duration {
        self.to.saturating_sub(self.from)
    }
}

/// The longest stretch without an answer that overlaps `[step, until)`: it ends after the step
/// and begins before `until` (the next step). The stretch under way at the step begins at the
/// last answer at or before it. `answers` are arrival times in any order. `None` when no answer
/// came after the step.
///
/// Why "longest" rather than "the one around the step": a reply already on its way when the
/// step struck (sent by the old server a moment before its death) may arrive just after it, so
/// the first stretch after the step can be a tiny one; the failover is the long one that
/// follows. Stretches that begin at or after `until` belong to the next step.
pub fn longest_silence(answers: &[Duration], step: Duration, until: Duration) -> Option<Silence> {
    let mut sorted = answers.to_vec();
    sorted.sort_unstable();
    let mut from = sorted
        .iter()
        .rev()
        .find(|&&a| a <= step)
        .copied()
        .unwrap_or(step);
    let mut best: Option<Silence> = None;
    for &to in sorted.iter().filter(|&&a| a > step) {
        if from >= until {
            break;
        }
        let s = Silence { from, to };
        if best.is_none_or(|b| s.length() > b.length()) {
            best = Some(s);
        }
        from = to;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|&n| Duration::from_millis(n)).collect()
    }

    fn gap(answers: &[u64], step: u64, until: u64) -> Option<(u64, u64)> {
        longest_silence(
            &ms(answers),
            Duration::from_millis(step),
            Duration::from_millis(until),
        )
        .map(|s| (s.from.as_millis() as u64, s.to.as_millis() as u64))
    }

    #[test]
    fn the_gap_runs_from_the_last_answer_before_the_step_to_the_first_after_the_failover() {
        // Answers every 100 ms, a kill at 1050, the first answer from the other server at 4200.
        let answers = [800, 900, 1000, 4200, 4300, 4400];
        assert_eq!(gap(&answers, 1050, 9000), Some((1000, 4200)));
        // In any order.
        let shuffled = [4300, 1000, 800, 4200, 900, 4400];
        assert_eq!(gap(&shuffled, 1050, 9000), Some((1000, 4200)));
    }

    #[test]
    fn a_reply_that_arrives_just_after_the_step_does_not_hide_the_failover() {
        let answers = [900, 1000, 1052, 4200, 4300];
        assert_eq!(gap(&answers, 1050, 9000), Some((1052, 4200)));
    }

    #[test]
    fn a_gap_that_outlasts_the_next_step_still_counts_but_later_ones_do_not() {
        // The failover (1000 → 6000) ends after the next step at 5000; the stretch 6000 → 12000
        // begins after it and is the next step's business.
        let answers = [1000, 6000, 12_000];
        assert_eq!(gap(&answers, 1050, 5000), Some((1000, 6000)));
    }

    #[test]
    fn a_longer_stretch_later_in_the_window_wins() {
        // A slow request after the failover took longer than the failover itself.
        let answers = [1000, 2000, 2100, 5000, 5100];
        assert_eq!(gap(&answers, 1050, 9000), Some((2100, 5000)));
        // Equal stretches: the first.
        let answers = [1000, 2000, 3000];
        assert_eq!(gap(&answers, 1050, 9000), Some((1000, 2000)));
    }

    #[test]
    fn without_an_answer_before_the_step_the_gap_starts_at_the_step() {
        assert_eq!(gap(&[3000, 3100], 1000, 9000), Some((1000, 3000)));
        // An answer exactly at the step came before it.
        assert_eq!(gap(&[1000, 3000], 1000, 9000), Some((1000, 3000)));
    }

    #[test]
    fn no_answer_after_the_step_is_no_gap() {
        assert_eq!(gap(&[], 1000, 9000), None);
        assert_eq!(gap(&[500, 900], 1000, 9000), None);
    }
}
