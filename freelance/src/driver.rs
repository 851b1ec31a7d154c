//! The client programs' common loop: send N requests through one model, print each reply or
//! failure, the rate, and the summary line.
//!
//! # Log lines (a stable contract, shared by `flclient1..3`)
//! * `I: sending <n> requests` at the start
//! * `I: reply <n> from <endpoint>: <frames>` (model 2: `I: reply <n>: <frames>`), unless
//!   `--quiet`; ` (after <k> attempts)` is appended when the request had to be resent
//! * `E: request <n> FAILED: <why>` when no server answered in time
//! * `E: no server answered, aborting` after a failure, unless `--keep-going`
//! * `W: interrupted` on SIGINT/SIGTERM (a request in flight then counts failed)
//! * `I: request seq=… outcome=… tries=… latency_ms=…` per request, with `--log-requests`
//! * `I: <answered> replies in <seconds> s: <rate> requests/s`
//! * `I: summary sent=… answered=… failed=… retries=…` (retries = resends to another server)
//!
//! The counting is `common::report::Ledger`'s: `sent = answered + failed` at the end.

use common::contract::now;
use common::msg::frame_text;
use common::report::{rate_line, Ledger, Summary};
use common::Message;
use std::future::Future;
use std::time::Duration;

/// A reply, as every model reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The server that answered, when the model knows it.
    pub server: Option<String>,
    /// The reply frames (without envelope or control frame).
    pub body: Message,
    /// How many times the request was sent (1 if it went through at once).
    pub attempts: u32,
}

/// A request no server answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Failed {
    /// How many times the request was sent.
    pub attempts: u32,
    /// Why it failed, for the log.
    pub reason: String,
}

/// One model's client, as the driver uses it.
pub trait ModelClient {
    /// Sends request number `number` (1, 2, …) and waits for its reply or failure.
    fn request(&mut self, number: u64) -> impl Future<Output = Result<Reply, Failed>>;
}

/// How many requests to send and how to report them.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// Number of requests.
    pub requests: u64,
    /// Pause between two requests (zero: back to back).
    pub interval: Duration,
    /// Do not log each reply.
    pub quiet: bool,
    /// Go on after a failed request instead of stopping.
    pub keep_going: bool,
    /// Log one `I: request seq=…` line per request.
    pub log_requests: bool,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriveResult {
    /// The counts printed on the summary line.
    pub summary: Summary,
    /// Time from the first request to the last outcome.
    pub elapsed: Duration,
    /// True if SIGINT/SIGTERM (or the given shutdown future) cut the run short.
    pub interrupted: bool,
}

impl DriveResult {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        self.summary.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Renders reply frames on one line, the way the log shows them.
pub fn frames_text(body: &Message) -> String {
    body.iter()
        .map(|f| frame_text(f))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Sends the requests, logs each outcome, the rate and the summary line.
pub async fn drive<R: ModelClient>(
    requester: &mut R,
    options: &DriveOptions,
    shutdown: impl Future<Output = ()>,
) -> DriveResult {
    tokio::pin!(shutdown);
    let mut ledger = Ledger::new(options.log_requests);
    let mut interrupted = false;
    tracing::info!("sending {} requests", options.requests);
    let started = now();
    for number in 1..=options.requests {
        if number > 1 && !options.interval.is_zero() {
            tokio::select! {
                biased;
                () = &mut shutdown => { interrupted = true; break; }
                () = tokio::time::sleep(options.interval) => {}
            }
        }
        let seq = ledger.start(now());
        debug_assert_eq!(seq, number);
        // Shutdown first: Ctrl-C must win over a request that is ready at the same time.
        let result = tokio::select! {
            biased;
            () = &mut shutdown => { interrupted = true; break; }
            result = requester.request(number) => result,
        };
        match result {
            Ok(reply) => {
                ledger.set_tries(seq, u64::from(reply.attempts));
                ledger.answered(seq, now());
                if !options.quiet {
                    let from = reply
                        .server
                        .as_deref()
                        .map(|s| format!(" from {s}"))
                        .unwrap_or_default();
                    let resent = if reply.attempts > 1 {
                        format!(" (after {} attempts)", reply.attempts)
                    } else {
                        String::new()
                    };
                    tracing::info!("reply {number}{from}: {}{resent}", frames_text(&reply.body));
                }
            }
            Err(failed) => {
                ledger.set_tries(seq, u64::from(failed.attempts));
                ledger.failed(seq, now());
                tracing::error!("request {number} FAILED: {failed}");
                if !options.keep_going {
                    tracing::error!("no server answered, aborting");
                    break;
                }
            }
        }
    }
    if interrupted {
        tracing::warn!("interrupted");
    }
    let elapsed = now() - started;
    tracing::info!("{}", rate_line(ledger.summary().answered, elapsed));
    DriveResult {
        summary: ledger.finish(now()),
        elapsed,
        interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every request except those listed, which fail after two attempts.
    struct Scripted {
        fail: Vec<u64>,
        asked: Vec<u64>,
    }

    impl ModelClient for Scripted {
        async fn request(&mut self, number: u64) -> Result<Reply, Failed> {
            self.asked.push(number);
            if self.fail.contains(&number) {
                Err(Failed {
                    attempts: 2,
                    reason: "nobody home".into(),
                })
            } else {
                Ok(Reply {
                    server: Some("tcp://a:1".into()),
                    body: Message::new().with("OK"),
                    attempts: if number == 2 { 3 } else { 1 },
                })
            }
        }
    }

    fn options(requests: u64, keep_going: bool) -> DriveOptions {
        DriveOptions {
            requests,
            interval: Duration::ZERO,
            quiet: true,
            keep_going,
            log_requests: false,
        }
    }

    #[tokio::test]
    async fn counts_answers_and_retries() {
        let mut r = Scripted {
            fail: vec![],
            asked: vec![],
        };
        let out = drive(&mut r, &options(4, false), std::future::pending()).await;
        assert_eq!(r.asked, [1, 2, 3, 4]);
        assert_eq!(
            out.summary,
            Summary {
                sent: 4,
                answered: 4,
                failed: 0,
                retries: 2
            }
        );
        assert!(!out.interrupted);
    }

    #[tokio::test]
    async fn stops_at_the_first_failure_unless_told_to_keep_going() {
        let mut r = Scripted {
            fail: vec![3],
            asked: vec![],
        };
        let out = drive(&mut r, &options(5, false), std::future::pending()).await;
        assert_eq!(r.asked, [1, 2, 3]);
        assert_eq!((out.summary.answered, out.summary.failed), (2, 1));
        assert_eq!(out.summary.retries, 3);

        let mut r = Scripted {
            fail: vec![3],
            asked: vec![],
        };
        let out = drive(&mut r, &options(5, true), std::future::pending()).await;
        assert_eq!(r.asked.len(), 5);
        assert_eq!((out.summary.answered, out.summary.failed), (4, 1));
    }

    #[tokio::test]
    async fn shutdown_stops_the_run() {
        let mut r = Scripted {
            fail: vec![],
            asked: vec![],
        };
        let out = drive(&mut r, &options(3, false), std::future::ready(())).await;
        assert!(out.interrupted);
        // The request under way when the shutdown came counts failed.
        assert_eq!(
            out.summary,
            Summary {
                sent: 1,
                answered: 0,
                failed: 1,
                retries: 0
            }
        );
    }

    /// In virtual time: requests go out `interval` apart, and the run takes what they took.
    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_by_the_interval() {
        let mut r = Scripted {
            fail: vec![],
            asked: vec![],
        };
        let paced = DriveOptions {
            interval: Duration::from_secs(1),
            ..options(3, false)
        };
        let out = drive(&mut r, &paced, std::future::pending()).await;
        assert_eq!(out.summary.answered, 3);
        let ms = Duration::from_millis(1);
        assert!(
            out.elapsed >= 2000 * ms && out.elapsed < 2010 * ms,
            "{:?}",
            out.elapsed
        );
    }

    #[test]
    fn frames_are_shown_on_one_line() {
        assert_eq!(frames_text(&Message::new().with("7").with("OK")), "7 | OK");
    }
}
