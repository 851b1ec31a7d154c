//! `mdclient`: sends N requests one at a time through the synchronous Majordomo client.
//!
//! Each request is retried on a fresh socket after `--timeout-ms` of silence, `--retries`
//! attempts in all. Logs `I: request <i> answered after <k> attempts` when retries were needed,
//! `W: no reply from <service> within <ms> ms, retrying (k/n)` and
//! `E: request <i> failed: <reason>`; with `--log-requests` one
//! `I: request seq=… outcome=… tries=… latency_ms=…` per request. Ends with the rate,
//! `I: <answered> replies in <s> s: <rate> requests/s`, then the summary line
//! `I: summary sent=N answered=A failed=F retries=R` (a request in flight at Ctrl-C counts
//! failed). Exits non-zero exactly when a request failed.
//!
//! Each request carries a request id (Guide 4.11, `majordomo::rid`), the same on every retry,
//! so the broker runs it once however often it is retried; `--no-request-ids` sends none.
//!
//! With `--broker` given twice (a broker pair, primary first) requests fail over between the
//! two (`majordomo::client`, "A broker pair"): `--retries` then counts turns, `--settle-ms` is
//! the time the other broker may need to take over, request ids are always on
//! (`--no-request-ids` is refused), and each switch logs `W: no reply from <endpoint> within
//! <ms> ms, failing over to <other>` (or `W: request to <endpoint> failed (<why>), failing over
//! to <other>`), then `I: answered by <endpoint> after failover (<ms> ms)`.
//!
//! A reply counts as answered when its last frame is the echo (a 0.1 client of a streaming
//! worker gets the parts in front of it: the broker's bridging rule).
//!
//! `--stream` takes each reply part by part (`majordomo::StreamClient`; one broker): every
//! PARTIAL logs `I: request <i> part <k>: <frames>`, the FINAL `I: request <i> streamed <n>
//! part(s)` before it is checked; the timeout is per part. Parts of `mdworker --partials N`'s
//! form (`part <k>/<N>`) must be exactly `1/N` … `N/N` in order, or the request fails with
//! `incomplete stream` (a lost, repeated or reordered part). `--dialect rfc18` or `majortomo`
//! speaks MDP/0.2 and implies `--stream`.

use anyhow::Context;
use clap::Parser;
use common::cli::{self, RequestLog, Verbosity};
use common::report::{rate_line, Ledger};
use common::{contract, Message};
use majordomo::protocol::Dialect;
use majordomo::{ClientArgs, Part, StreamClient};
use std::process::ExitCode;
use std::time::Duration;

/// Majordomo synchronous client: N echo requests, one after the other.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
    /// Service to ask.
    #[arg(long, default_value = "echo")]
    service: String,
    /// Number of requests (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = cli::count::<u64>())]
    requests: u64,
    /// Pause between requests, in milliseconds, 0 for none (0 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = cli::ms_or_zero())]
    interval_ms: u64,
    /// Stop at the first request that gets no reply (the Guide's behaviour).
    #[arg(long)]
    stop_on_failure: bool,
    /// Send no request ids (by default every request carries one, kept across its retries, so
    /// the broker runs it once: see the README's "Request ids"). Refused with two brokers.
    #[arg(long)]
    no_request_ids: bool,
    /// Take each reply as a stream of parts (MDP/0.2 PARTIALs, then the FINAL), the timeout
    /// starting again with each part; one broker only.
    #[arg(long)]
    stream: bool,
    /// Protocol: `0.1` (7/MDP), `rfc18` (MDP/0.2 as RFC 18 writes it; also `0.2`) or
    /// `majortomo` (MDP/0.2 as the majortomo Python package frames it). 0.2 implies --stream.
    #[arg(long, value_name = "DIALECT", default_value = "0.1")]
    dialect: Dialect,
    #[command(flatten)]
    log: RequestLog,
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(flatten)]
    curve: common::cli::CurveClientArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    args.verbosity.init_logging();
    args.curve.install();
    if args.no_request_ids && args.client.brokers.pair()?.is_some() {
        anyhow::bail!(
            "--no-request-ids cannot be used with two brokers: a failover without request ids \
             could run a request twice"
        );
    }
    if args.stream || args.dialect.streams() {
        return streaming(args).await;
    }
    let shutdown = common::shutdown::signal();
    tokio::pin!(shutdown);
    let mut client = args
        .client
        .connect()
        .context("starting mdclient")?
        .with_request_ids(!args.no_request_ids);
    let mut ledger = args.log.ledger();
    let started = contract::now();
    for i in 0..args.requests {
        if !pause(i, args.interval_ms, shutdown.as_mut()).await {
            break;
        }
        let body = format!("Hello world {i}");
        let seq = ledger.start(contract::now());
        let resends = client.resends();
        let result = tokio::select! {
            biased;
            () = &mut shutdown => {
                ledger.set_tries(seq, client.resends() - resends + 1);
                tracing::info!("mdclient interrupted");
                break;
            }
            result = client.send(&args.service, Message::from_frames([body.clone()])) => result,
        };
        let attempts = client.resends() - resends + 1;
        ledger.set_tries(seq, attempts);
        if matches!(&result, Ok(reply) if is_echo(reply, &body)) && attempts > 1 {
            tracing::info!("request {i} answered after {attempts} attempts");
        }
        if !book(&mut ledger, seq, i, result, &body, args.stop_on_failure) {
            break;
        }
    }
    tracing::info!(
        "{}",
        rate_line(ledger.summary().answered, contract::now() - started)
    );
    Ok(ledger.finish(contract::now()).exit_code())
}

/// `--stream`: each request's reply part by part.
async fn streaming(args: Args) -> anyhow::Result<ExitCode> {
    let [broker] = &args.client.brokers.broker[..] else {
        anyhow::bail!("--stream takes one --broker");
    };
    let mut client = StreamClient::new(broker, args.client.options(), args.dialect)
        .context("starting mdclient")?;
    if args.no_request_ids {
        client = client.without_request_ids();
    }
    let shutdown = common::shutdown::signal();
    tokio::pin!(shutdown);
    let mut ledger = args.log.ledger();
    let started = contract::now();
    for i in 0..args.requests {
        if !pause(i, args.interval_ms, shutdown.as_mut()).await {
            break;
        }
        let body = format!("Hello world {i}");
        let seq = ledger.start(contract::now());
        let run = async {
            let mut reply = client
                .request(&args.service, Message::from_frames([body.clone()]))
                .await?;
            let mut parts = Vec::new();
            while let Some(part) = reply.next().await {
                match part? {
                    Part::Partial(frames) => {
                        let text = show(&frames);
                        tracing::info!("request {i} part {}: {text}", parts.len() + 1);
                        parts.push(text);
                    }
                    Part::Final(frames) => {
                        tracing::info!("request {i} streamed {} part(s)", parts.len());
                        check_stream(&parts).map_err(anyhow::Error::msg)?;
                        return Ok(frames);
                    }
                }
            }
            anyhow::bail!("the stream ended without a final part")
        };
        let result = tokio::select! {
            biased;
            () = &mut shutdown => {
                tracing::info!("mdclient interrupted");
                break;
            }
            result = run => result,
        };
        if !book(&mut ledger, seq, i, result, &body, args.stop_on_failure) {
            break;
        }
    }
    tracing::info!(
        "{}",
        rate_line(ledger.summary().answered, contract::now() - started)
    );
    Ok(ledger.finish(contract::now()).exit_code())
}

/// A part's frames as text, space-separated.
fn show(frames: &Message) -> String {
    let texts: Vec<String> = frames.iter().map(|f| common::msg::frame_text(f)).collect();
    texts.join(" ")
}

/// True if `reply` answers the echo request `body`: the echo itself, or (the broker's bridging
/// rule for a 0.1 client of a streaming worker) the stream's parts followed by the echo.
/// Waits `--interval-ms` before every request but the first; `false` if Ctrl-C came first.
async fn pause(
    i: u64,
    interval_ms: u64,
    shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> bool {
    if i == 0 || interval_ms == 0 {
        return true;
    }
    tokio::select! {
        biased;
        () = shutdown => false,
        () = tokio::time::sleep(Duration::from_millis(interval_ms)) => true,
    }
}

/// Books one request's outcome (answered only by its own echo); `false` when a failure ends
/// the run (`--stop-on-failure`).
fn book(
    ledger: &mut Ledger,
    seq: u64,
    i: u64,
    result: Result<Message, impl std::fmt::Display>,
    body: &str,
    stop_on_failure: bool,
) -> bool {
    match result {
        Ok(reply) if is_echo(&reply, body) => {
            ledger.answered(seq, contract::now());
        }
        Ok(reply) => {
            ledger.failed(seq, contract::now());
            tracing::error!("request {i} failed: wrong reply {reply:?}");
        }
        Err(error) => {
            ledger.failed(seq, contract::now());
            tracing::error!("request {i} failed: {error}");
            return !stop_on_failure;
        }
    }
    true
}

fn is_echo(reply: &Message, body: &str) -> bool {
    reply
        .iter()
        .last()
        .is_some_and(|last| last == body.as_bytes())
}

/// Checks that parts of the form `part <k>/<n>` (mdworker --partials) are exactly 1 … n in
/// order; other parts are not checked.
fn check_stream(parts: &[String]) -> Result<(), String> {
    let numbered: Vec<(usize, usize)> = parts
        .iter()
        .filter_map(|p| {
            let (k, n) = p.strip_prefix("part ")?.split_once('/')?;
            Some((k.parse().ok()?, n.parse().ok()?))
        })
        .collect();
    if numbered.is_empty() {
        return Ok(());
    }
    let n = numbered[0].1;
    let expected: Vec<(usize, usize)> = (1..=n).map(|k| (k, n)).collect();
    if numbered.len() == parts.len() && numbered == expected {
        Ok(())
    } else {
        Err(format!("incomplete stream: {parts:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::check_stream;

    #[test]
    fn a_stream_must_be_whole_and_in_order() {
        let parts = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_stream(&parts(&["part 1/3", "part 2/3", "part 3/3"])).is_ok());
        assert!(check_stream(&parts(&[])).is_ok());
        assert!(check_stream(&parts(&["anything"])).is_ok());
        for bad in [
            &["part 1/3", "part 3/3"][..],
            &["part 1/3", "part 2/3", "part 2/3", "part 3/3"],
            &["part 2/3", "part 1/3", "part 3/3"],
            &["part 1/2", "part 2/2", "part 1/2", "part 2/2"],
        ] {
            assert!(check_stream(&parts(bad)).is_err(), "{bad:?}");
        }
    }
}
