//! flbench: requests/s of Freelance models 1, 2 and 3 against three servers each, in one run,
//! and what a failover costs a model-3 request.
//!
//! Starts the server binaries found next to itself (build with
//! `cargo build --release -p freelance`), on 127.0.0.1 ports the OS hands out. Prints figures
//! and ratios; never passes or fails on time.

use anyhow::{bail, Context};
use clap::Parser;
use common::bench::{free_endpoint, ChildGuard};
use common::Message;
use common::{cli, sock};
use freelance::agent::Timing;
use freelance::{AgentConfig, FreelanceClient};
use freelance::{Model1Client, Model1Config};
use freelance::{Model2Client, Model2Config};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use zeromq::{ReqSocket, Socket};

/// Measures the three Freelance models against three local servers each.
#[derive(Debug, Parser)]
#[command(name = "flbench")]
struct Args {
    /// Requests per run for models 2 and 3 and the raw REQ floor (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 10000, value_parser = cli::count::<u64>())]
    requests: u64,
    /// Requests for model 1 (each one opens a TCP connection) (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = cli::count::<u64>())]
    model1_requests: u64,
    /// Rounds of the rate runs, interleaved; the best and the median of each are shown (the
    /// best is the least disturbed by other processes on a shared machine)
    /// (1 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = cli::count::<u32>())]
    rounds: u32,
    /// Failover samples per fault (kill -9; SIGSTOP gets at most 3); 0 measures no failover
    /// (0 to 1000000000).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = cli::count_or_zero::<u32>())]
    samples: u32,
    /// Skip the reference-behaviour run (3 s: a hung server with no attempt timeout).
    #[arg(long)]
    skip_reference: bool,
}

/// A server process; killed on drop.
struct ServerProc {
    program: PathBuf,
    args: Vec<String>,
    endpoint: String,
    child: Option<ChildGuard>,
}

impl ServerProc {
    fn start(
        dir: &Path,
        program: &str,
        args: Vec<String>,
        endpoint: String,
    ) -> anyhow::Result<Self> {
        let mut server = Self {
            program: dir.join(program),
            args,
            endpoint,
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// Starts the process and waits for its ready line.
    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = ChildGuard::spawn(
            Command::new(&self.program)
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .with_context(|| format!("starting {}", self.program.display()))?;
        let mut lines = BufReader::new(child.take_stderr().context("stderr")?).lines();
        let mut said = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("ready on") => break,
                Some(Ok(line)) => said.push(line),
                _ => {
                    child.kill();
                    bail!(
                        "{} exited before it was ready: {}",
                        self.program.display(),
                        said.join(" / ")
                    )
                }
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([format!("-{name}"), child.id().to_string()])
                .status();
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill9();
    }
}

fn three(dir: &Path, model: u8) -> anyhow::Result<Vec<ServerProc>> {
    (0..3).map(|_| one(dir, model)).collect()
}

/// One server on a port just released by the OS. Another process may take that port before
/// the server binds it (tests run many programs at once): then a fresh port, a few times.
fn one(dir: &Path, model: u8) -> anyhow::Result<ServerProc> {
    let mut tries = 1;
    loop {
        match start_one(dir, model) {
            Err(e) if tries < 5 => {
                eprintln!("W: {e:#}; again on another port");
                tries += 1;
            }
            started => return started,
        }
    }
}

fn start_one(dir: &Path, model: u8) -> anyhow::Result<ServerProc> {
    let endpoint = free_endpoint()?;
    let program = format!("flserver{model}");
    let args = if model == 3 {
        vec![
            "--bind".into(),
            endpoint.clone(),
            "--endpoint".into(),
            endpoint.clone(),
        ]
    } else {
        vec![endpoint.clone()]
    };
    ServerProc::start(dir, &program, args, endpoint)
}

fn endpoints(servers: &[ServerProc]) -> Vec<String> {
    servers.iter().map(|s| s.endpoint.clone()).collect()
}

/// The floor: one persistent REQ socket doing echo round trips.
async fn raw_floor(endpoint: &str, requests: u64) -> anyhow::Result<f64> {
    let mut socket = ReqSocket::new();
    sock::connect(&mut socket, endpoint, Duration::from_secs(5)).await?;
    let body = Message::new().with("random name");
    let started = Instant::now();
    for _ in 0..requests {
        sock::send(&mut socket, body.clone(), Duration::from_secs(5)).await?;
        sock::recv(&mut socket, Duration::from_secs(5))
            .await?
            .context("no echo")?;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

async fn model1(endpoints: Vec<String>, requests: u64) -> anyhow::Result<f64> {
    let client = Model1Client::new(endpoints, Model1Config::default());
    let started = Instant::now();
    for n in 0..requests {
        client
            .send(&Message::new().with(format!("hello {n}")))
            .await
            .map_err(|e| anyhow::anyhow!("model 1 request {n}: {e}"))?;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

async fn model2(endpoints: Vec<String>, requests: u64) -> anyhow::Result<f64> {
    let mut client = Model2Client::connect(endpoints, Model2Config::default()).await;
    if client.connected() < 3 {
        bail!(
            "model 2: only {} of 3 servers connected",
            client.connected()
        );
    }
    let body = Message::new().with("random name");
    let started = Instant::now();
    for n in 0..requests {
        client
            .send(&body)
            .await
            .map_err(|e| anyhow::anyhow!("model 2 request {n}: {e}"))?;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

async fn model3_client(endpoints: &[String], timing: Timing) -> anyhow::Result<FreelanceClient> {
    let mut client = FreelanceClient::new(AgentConfig {
        timing,
        ..AgentConfig::default()
    });
    for endpoint in endpoints {
        client.connect(endpoint).await?;
    }
    // Wait until the preferred server answers, so the run measures steady state.
    wait_for_server(&mut client, &endpoints[0], Duration::from_secs(10)).await?;
    Ok(client)
}

/// Sends requests until one is answered by `server`; returns how long that took.
async fn wait_for_server(
    client: &mut FreelanceClient,
    server: &str,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(answer) = client.request(Message::new().with("random name")).await {
            if answer.server == server {
                return Ok(started.elapsed());
            }
        }
    }
    bail!("{server} was not used again within {limit:?}")
}

async fn model3(client: &mut FreelanceClient, requests: u64) -> anyhow::Result<f64> {
    let body = Message::new().with("random name");
    let started = Instant::now();
    for n in 0..requests {
        client
            .request(body.clone())
            .await
            .map_err(|e| anyhow::anyhow!("model 3 request {n}: {e}"))?;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

/// One failover sample: requests back to back while `fault` hits the server in use after
/// 150 ms. Returns (slowest request, median request, requests resent to another server).
async fn failover_sample(
    client: &mut FreelanceClient,
    fault: impl FnOnce() + Send + 'static,
    window: Duration,
) -> anyhow::Result<(Duration, Duration, u32)> {
    let faulter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        fault();
    });
    let body = Message::new().with("random name");
    let mut latencies = Vec::new();
    let mut resent = 0;
    let started = Instant::now();
    while started.elapsed() < window {
        let sent = Instant::now();
        let answer = client
            .request(body.clone())
            .await
            .map_err(|e| anyhow::anyhow!("request failed during failover: {e}"))?;
        latencies.push(sent.elapsed());
        if answer.attempts > 1 {
            resent += 1;
        }
    }
    let _ = faulter.join();
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let slowest = *latencies.last().unwrap_or(&Duration::ZERO);
    Ok((slowest, median, resent))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // Ctrl-C drops the benchmark, and with it the servers it started (`ServerProc` kills them).
    Ok(
        match common::shutdown::unless_interrupted(bench(args)).await {
            Some(result) => result.map(|()| ExitCode::SUCCESS)?,
            None => ExitCode::from(common::shutdown::INTERRUPTED),
        },
    )
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let dir = std::env::current_exe()?
        .parent()
        .context("executable directory")?
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("flbench: three local servers per model, {cores} cores, release build expected");

    let s1 = three(&dir, 1)?;
    let s2 = three(&dir, 2)?;
    let mut s3 = three(&dir, 3)?;
    let eps3 = endpoints(&s3);
    let mut client = model3_client(&eps3, Timing::default()).await?;
    // rates[model] over the rounds; model 0 is the raw floor.
    let mut rates: [Vec<f64>; 4] = Default::default();
    for _ in 0..args.rounds {
        rates[0].push(raw_floor(&s1[0].endpoint, args.requests).await?);
        rates[1].push(model1(endpoints(&s1), args.model1_requests).await?);
        rates[2].push(model2(endpoints(&s2), args.requests).await?);
        rates[3].push(model3(&mut client, args.requests).await?);
    }
    let best = |v: &Vec<f64>| v.iter().cloned().fold(0.0, f64::max);
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let floor = best(&rates[0]);
    println!();
    println!(
        "requests/s against three servers ({} interleaved rounds, best and median):",
        args.rounds
    );
    for (i, name) in [
        "raw REQ→echo round trip, one socket ",
        "model 1 (fresh REQ per request)     ",
        "model 2 (DEALER, 3 copies each)     ",
        "model 3 (ROUTER, first live server) ",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "  {name}  best {:>7.0}  median {:>7.0}   {:.2} × floor (best/best)",
            best(&rates[i]),
            median(&rates[i]),
            best(&rates[i]) / floor
        );
    }
    println!(
        "  best model 3 / model 2 = {:.2}, model 3 / model 1 = {:.2}",
        best(&rates[3]) / best(&rates[2]),
        best(&rates[3]) / best(&rates[1])
    );

    println!();
    println!("model 3 failover, requests back to back, fault on the server in use after 150 ms:");
    for sample in 1..=args.samples {
        let pid = s3[0]
            .child
            .as_ref()
            .map(ChildGuard::id)
            .context("server 1 running")?;
        let (slowest, median, resent) = failover_sample(
            &mut client,
            move || {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            },
            Duration::from_millis(400),
        )
        .await?;
        s3[0].kill9(); // reap
        s3[0].spawn()?;
        let back = wait_for_server(&mut client, &eps3[0], Duration::from_secs(10)).await?;
        println!(
            "  kill -9  #{sample}: slowest request {}, median {}, resent {resent}; \
             restarted server in use again {} after its restart",
            ms(slowest),
            ms(median),
            ms(back)
        );
    }
    for sample in 1..=args.samples.min(3) {
        let pid = s3[0]
            .child
            .as_ref()
            .map(ChildGuard::id)
            .context("server 1 running")?;
        let (slowest, median, resent) = failover_sample(
            &mut client,
            move || {
                let _ = Command::new("kill")
                    .args(["-STOP", &pid.to_string()])
                    .status();
            },
            Duration::from_millis(1500),
        )
        .await?;
        s3[0].signal("CONT");
        let back = wait_for_server(&mut client, &eps3[0], Duration::from_secs(10)).await?;
        println!(
            "  SIGSTOP  #{sample}: slowest request {} (attempt timeout {}), median {}, \
             resent {resent}; in use again {} after SIGCONT",
            ms(slowest),
            ms(Timing::default().attempt_timeout),
            ms(median),
            ms(back)
        );
    }
    client.close().await;

    if !args.skip_reference {
        // The reference: no attempt timeout, only the 6 s TTL, 3 s global timeout.
        let reference = Timing {
            attempt_timeout: Timing::default().global_timeout,
            ..Timing::default()
        };
        let mut client = model3_client(&eps3, reference).await?;
        let pid = s3[0]
            .child
            .as_ref()
            .map(ChildGuard::id)
            .context("server 1 running")?;
        let _ = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status();
        let started = Instant::now();
        let outcome = client.request(Message::new().with("random name")).await;
        s3[0].signal("CONT");
        println!(
            "  reference rule (no attempt timeout), server in use hung, 2 of 3 alive: {} after {}",
            match outcome {
                Ok(a) => format!("answered by {}", a.server),
                Err(e) => format!("{e}"),
            },
            ms(started.elapsed())
        );
        client.close().await;
    }
    drop((s1, s2, s3));
    Ok(())
}
