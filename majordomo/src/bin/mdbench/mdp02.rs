//! `mdbench --mdp02`: MDP/0.2 against 0.1 on our broker, and against majortomo's broker, with
//! the same clients.
//!
//! Every phase uses this crate's stream clients ([`StreamClient`] one request at a time,
//! [`AsyncStreamClient`] with `--window` in flight), request ids on, the Guide's "Hello world"
//! body, and `mdworker` echo workers of the phase's dialect (`--work-ms 0`), so the phases
//! differ only in the dialect on the wire and in the broker:
//!
//! * `mdbroker 0.1`, `mdbroker rfc18`, `mdbroker majortomo`: one guarded `mdbroker`, one worker
//!   per dialect (each its own service);
//! * `majortomo`: with `--majortomo ENDPOINT`, majortomo's broker (Python) already running
//!   there, our `mdworker --dialect majortomo` registered with it. It knows no request ids: it
//!   passes the id frame on to the worker, whose echo brings it back, so the same clients work;
//! * streaming: one `mdworker --partials N` per broker, a reply of N PARTIALs then the FINAL,
//!   `sync_requests / 100` requests: parts per second.
//!
//! Phases alternate over `--rounds` (order reversed every other round); the table shows each
//! phase's median and best rate, its median p50 latency, and its rate over the 0.1 phase of the
//! same load. Figures, never a verdict.

use super::{
    free_endpoint, latencies, median, spawn, spawn_watched, wait_for_line, Args, ChildGuard,
};
use anyhow::{bail, Context};
use common::Message;
use majordomo::protocol::Dialect;
use majordomo::{AsyncStreamClient, ClientOptions, Part, StreamClient};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A broker the phases go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Ours,
    Majortomo,
}

/// How a phase sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Sync,
    Async,
    Stream,
}

#[derive(Debug, Clone, Copy)]
struct Spec {
    via: Via,
    dialect: Dialect,
    load: Load,
}

impl Spec {
    fn name(&self) -> String {
        let via = match self.via {
            Via::Ours => "mdbroker",
            Via::Majortomo => "majortomo broker",
        };
        let load = match self.load {
            Load::Sync => "sync",
            Load::Async => "async",
            Load::Stream => "stream",
        };
        format!("{via} {} {load}", self.dialect)
    }

    /// The service its workers offer.
    fn service(&self) -> String {
        let kind = if self.load == Load::Stream {
            "stream"
        } else {
            "echo"
        };
        format!("{kind}-{}", self.dialect)
    }
}

/// One phase's figures in one round.
struct Figures {
    rate: f64,
    p50: Duration,
    /// Parts per second (streaming phases).
    parts: Option<f64>,
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 1,
    }
}

fn body(seq: u64) -> Message {
    Message::from_frames([format!("Hello world {seq}")])
}

/// Starts `mdworker` for `spec` at `ep`.
fn worker(bin_dir: &Path, ep: &str, spec: &Spec, partials: u32) -> anyhow::Result<ChildGuard> {
    let mut args = vec![
        "--broker".to_owned(),
        ep.to_owned(),
        "--service".into(),
        spec.service(),
        "--dialect".into(),
        spec.dialect.name().into(),
    ];
    if spec.load == Load::Stream {
        args.extend(["--partials".into(), partials.to_string()]);
    }
    if !spec.dialect.streams() {
        // The 0.2 workers get no ids; keep the 0.1 one alike.
        args.push("--no-request-ids".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(&bin_dir.join("mdworker"), &args)
}

/// Waits until a request to `spec`'s service makes the round trip (its worker registered).
async fn ready(ep: &str, spec: &Spec) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let quick = ClientOptions {
        timeout: Duration::from_millis(500),
        retries: 1,
    };
    loop {
        let mut client = StreamClient::new(ep, quick.clone(), spec.dialect)?;
        let outcome = async {
            let reply = client.request(&spec.service(), body(0)).await?;
            reply.collect().await
        }
        .await;
        if outcome.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{}: no round trip within 20 s", spec.name());
        }
    }
}

async fn sync(ep: &str, spec: &Spec, requests: u64) -> anyhow::Result<Figures> {
    let mut client = StreamClient::new(ep, options(), spec.dialect)?;
    let service = spec.service();
    let mut rtts = latencies(requests);
    let (mut parts, started) = (0u64, Instant::now());
    for seq in 0..requests {
        let sent = Instant::now();
        let reply = client.request(&service, body(seq)).await?;
        let got = reply.collect().await?;
        match got.last() {
            Some(Part::Final(last)) if *last == body(seq) => {}
            other => bail!("{}: wrong reply {other:?}", spec.name()),
        }
        parts += got.len() as u64 - 1;
        rtts.push(sent.elapsed());
    }
    let elapsed = started.elapsed();
    rtts.sort_unstable();
    Ok(Figures {
        rate: requests as f64 / elapsed.as_secs_f64(),
        p50: rtts.get(rtts.len() / 2).copied().unwrap_or_default(),
        parts: (spec.load == Load::Stream).then(|| parts as f64 / elapsed.as_secs_f64()),
    })
}

async fn pipelined(ep: &str, spec: &Spec, requests: u64, window: u64) -> anyhow::Result<Figures> {
    let mut client = AsyncStreamClient::connect(ep, options(), spec.dialect).await?;
    let service = spec.service();
    let mut sent_at = HashMap::with_capacity(window as usize);
    let mut rtts = latencies(requests);
    let (mut sent, mut received) = (0u64, 0u64);
    let started = Instant::now();
    while received < requests {
        while sent < requests && sent - received < window {
            let rid = client.send(&service, body(sent)).await?;
            sent_at.insert(rid, Instant::now());
            sent += 1;
        }
        let (rid, part) = client
            .recv()
            .await?
            .context("async: no reply within 10 s")?;
        if part.is_final() {
            let at = sent_at.remove(&rid).context("async: unexpected reply")?;
            rtts.push(at.elapsed());
            received += 1;
        }
    }
    let elapsed = started.elapsed();
    rtts.sort_unstable();
    Ok(Figures {
        rate: requests as f64 / elapsed.as_secs_f64(),
        p50: rtts.get(rtts.len() / 2).copied().unwrap_or_default(),
        parts: None,
    })
}

/// The `--mdp02` benchmark. See the [module docs](self).
pub async fn run(args: &Args, bin_dir: &Path) -> anyhow::Result<()> {
    let ours = free_endpoint()?;
    let (_broker, mut lines) = spawn_watched(
        &bin_dir.join("mdbroker"),
        &["--bind", &ours, "--max-queue-bytes", "1073741824"],
    )?;
    wait_for_line(&mut lines, "mdbroker ready", Duration::from_secs(20)).await?;
    let mut specs = Vec::new();
    let mut vias = vec![(Via::Ours, ours.clone())];
    if let Some(ep) = &args.majortomo {
        vias.push((Via::Majortomo, ep.clone()));
    }
    for (via, _) in &vias {
        let dialects: &[Dialect] = match via {
            Via::Ours => &[Dialect::V01, Dialect::Rfc18, Dialect::Majortomo],
            Via::Majortomo => &[Dialect::Majortomo],
        };
        for &dialect in dialects {
            for load in [Load::Sync, Load::Async] {
                specs.push(Spec {
                    via: *via,
                    dialect,
                    load,
                });
            }
        }
        let dialect = if *via == Via::Ours {
            Dialect::Rfc18
        } else {
            Dialect::Majortomo
        };
        specs.push(Spec {
            via: *via,
            dialect,
            load: Load::Stream,
        });
    }
    let endpoint = |via: Via| {
        vias.iter()
            .find(|(v, _)| *v == via)
            .map(|(_, ep)| ep.clone())
    };
    let mut workers = Vec::new();
    let mut started = std::collections::HashSet::new();
    for spec in &specs {
        let ep = endpoint(spec.via).context("endpoint")?;
        if started.insert((spec.via as u8, spec.service())) {
            workers.push(worker(bin_dir, &ep, spec, args.partials)?);
            ready(&ep, spec).await?;
        }
    }
    let stream_requests = (args.sync_requests / 100).max(1);
    let mut results: Vec<Vec<Figures>> = specs.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..specs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for k in order {
            let spec = &specs[k];
            let ep = endpoint(spec.via).context("endpoint")?;
            let figures = match spec.load {
                Load::Sync => sync(&ep, spec, args.sync_requests).await,
                Load::Stream => sync(&ep, spec, stream_requests).await,
                Load::Async => pipelined(&ep, spec, args.requests, args.window).await,
            }
            .with_context(|| spec.name())?;
            eprintln!(
                "I: round {} {}: {:.0} requests/s{}",
                round + 1,
                spec.name(),
                figures.rate,
                figures
                    .parts
                    .map_or(String::new(), |p| format!(", {p:.0} parts/s"))
            );
            results[k].push(figures);
        }
    }
    println!(
        "\nMDP/0.2 vs 0.1 ({} rounds; sync {} requests, async {} with {} in flight, streams of {} parts)",
        args.rounds, args.sync_requests, args.requests, args.window, args.partials
    );
    println!(
        "{:<34} {:>12} {:>12} {:>10} {:>9}",
        "phase", "median /s", "best /s", "p50", "/0.1"
    );
    let median_of = |k: usize| median(results[k].iter().map(|f| f.rate));
    for (k, spec) in specs.iter().enumerate() {
        let best = results[k].iter().map(|f| f.rate).fold(0.0, f64::max);
        let p50 = median(results[k].iter().map(|f| f.p50.as_secs_f64() * 1e3));
        let base = specs
            .iter()
            .position(|s| s.via == Via::Ours && s.dialect == Dialect::V01 && s.load == spec.load);
        let ratio = match (base.and_then(median_of), median_of(k)) {
            (Some(b), Some(m)) if spec.load != Load::Stream => format!("{:.2}", m / b),
            _ => "-".to_owned(),
        };
        println!(
            "{:<34} {:>12.0} {:>12.0} {:>8.2}ms {:>9}",
            spec.name(),
            median_of(k).unwrap_or(0.0),
            best,
            p50.unwrap_or(0.0),
            ratio
        );
        if spec.load == Load::Stream {
            let parts = median(results[k].iter().filter_map(|f| f.parts));
            println!("{:<34} {:>12.0} parts/s (median)", "", parts.unwrap_or(0.0));
        }
    }
    drop(workers);
    Ok(())
}
