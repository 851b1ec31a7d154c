//! `mdclient2`: sends N requests pipelined through the asynchronous Majordomo client.
//!
//! Keeps up to `--window` requests in flight. A reply that does not come within
//! `--timeout-ms` of the previous one fails every request still in flight (the asynchronous
//! client does not retry). With `--log-requests` logs one
//! `I: request seq=… outcome=… tries=1 latency_ms=…` per request. Ends with the rate,
//! `I: <answered> replies in <s> s: <rate> requests/s`, then
//! `I: summary sent=N answered=A failed=F retries=0` (requests in flight at Ctrl-C count
//! failed), and exits non-zero exactly when a request failed (or on a fatal socket error).
//! Each request carries a request id (Guide 4.11, `majordomo::rid`) unless `--no-request-ids`
//! is given.
//!
//! With `--broker` given twice (a broker pair, primary first) the client keeps every request in
//! flight until it is answered and fails over (`majordomo::client`, "A broker pair"): after
//! `--timeout-ms` without a reply it switches to the other broker, logging `W: no reply from
//! <endpoint> within <ms> ms, failing over to <other>: resending <n> requests`, and resends them
//! all under their ids once that broker answers (it votes for up to `--settle-ms` first), then
//! `I: answered by <endpoint> after failover (<ms> ms)`. A reply to a request answered already is
//! dropped. A request gets `--retries` turns (its first send, then one per failover); after its
//! last it is reported failed (`E: request <n> failed: …`). Request ids are always on
//! (`--no-request-ids` is refused), and `tries=` counts every send of a request.

use anyhow::Context;
use clap::Parser;
use common::cli::{self, RequestLog, Verbosity};
use common::report::rate_line;
use common::{contract, Message};
use majordomo::{client, Answer, AsyncClient, BrokerArgs, ClientOptions};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

/// Majordomo asynchronous client: N echo requests, many in flight.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    brokers: BrokerArgs,
    /// Service to ask.
    #[arg(long, default_value = "echo")]
    service: String,
    /// Number of requests (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = cli::count::<u64>())]
    requests: u64,
    /// Most requests in flight at once (the Guide's mdclient2 sends all before reading: set it
    /// to --requests) (1 to 1000000).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = cli::in_flight::<u64>())]
    window: u64,
    /// How long to wait for the next reply before failing the requests in flight (with two
    /// brokers: before failing over), in ms (1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = client::REQUEST_TIMEOUT.as_millis() as u64,
          value_parser = cli::ms())]
    timeout_ms: u64,
    /// With two brokers: turns per request, its first send and then one per failover, before
    /// it is reported failed (one broker: no resends) (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = client::REQUEST_RETRIES,
          value_parser = cli::tries())]
    retries: u32,
    /// Send no request ids (by default every request carries one, kept across its retries, so
    /// the broker runs it once: see the README's "Request ids"). Refused with two brokers.
    #[arg(long)]
    no_request_ids: bool,
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
    let pair = args.brokers.pair()?;
    if args.no_request_ids && pair.is_some() {
        anyhow::bail!(
            "--no-request-ids cannot be used with two brokers: a failover without request ids \
             could run a request twice"
        );
    }
    let shutdown = common::shutdown::signal();
    let options = ClientOptions {
        timeout: Duration::from_millis(args.timeout_ms),
        retries: args.retries,
    };
    let mut ledger = args.log.ledger();
    let started = contract::now();
    let run = async {
        let client = match pair {
            None => AsyncClient::connect(&args.brokers.broker[0], options).await,
            Some(pair) => AsyncClient::new_pair(pair, options, args.brokers.pair_options()),
        };
        let mut client = client
            .context("connecting mdclient2")?
            .with_request_ids(!args.no_request_ids);
        // Request body -> its sequence number in the ledger.
        let mut in_flight = HashMap::new();
        loop {
            let done = ledger.summary();
            if done.answered + done.failed >= args.requests {
                break;
            }
            while ledger.summary().sent < args.requests && (in_flight.len() as u64) < args.window {
                let body = format!("Hello world {}", ledger.summary().sent);
                client
                    .send(&args.service, Message::from_frames([body.clone()]))
                    .await?;
                in_flight.insert(body, ledger.start(contract::now()));
            }
            match client.recv_outcome().await? {
                Some(Answer::Reply {
                    body: reply, sends, ..
                }) => {
                    let body = reply
                        .first()
                        .map(|f| String::from_utf8_lossy(f).into_owned());
                    match body
                        .filter(|_| reply.len() == 1)
                        .and_then(|b| in_flight.remove(&b))
                    {
                        Some(seq) => {
                            ledger.set_tries(seq, sends.into());
                            ledger.answered(seq, contract::now());
                        }
                        None => tracing::error!("unexpected reply {reply:?}"),
                    }
                }
                Some(Answer::Failed {
                    rid, body, sends, ..
                }) => {
                    let body = body
                        .first()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .unwrap_or_default();
                    if let Some(seq) = in_flight.remove(&body) {
                        ledger.set_tries(seq, sends.into());
                        ledger.failed(seq, contract::now());
                        tracing::error!(
                            "request {seq} failed: no reply from either broker after {sends} \
                             sends (id {rid})"
                        );
                    }
                }
                None => {
                    tracing::error!(
                        "no reply within {} ms, {} requests in flight failed",
                        args.timeout_ms,
                        in_flight.len()
                    );
                    let now = contract::now();
                    let mut seqs: Vec<u64> = in_flight.drain().map(|(_, seq)| seq).collect();
                    seqs.sort_unstable();
                    for seq in seqs {
                        ledger.failed(seq, now);
                    }
                }
            }
        }
        anyhow::Ok(())
    };
    let outcome = tokio::select! {
        result = run => result,
        () = shutdown => { tracing::info!("mdclient2 interrupted"); Ok(()) }
    };
    tracing::info!(
        "{}",
        rate_line(ledger.summary().answered, contract::now() - started)
    );
    let summary = ledger.finish(contract::now());
    outcome?;
    Ok(summary.exit_code())
}
