//! `tour`: runs the patterns' fault scenarios and prints what survived.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use tour::{bins, report, style, timeline, RunOptions, Scenario};

/// Runs each pattern's fault scenario (processes, kill -9, hang, restart) on private ports,
/// shows every process's output interleaved, and sums up requests sent, answered, failed and
/// lost, with the measured recovery times. Exits non-zero if any request was lost, a measured
/// event never happened or a scenario could not run.
#[derive(Parser)]
#[command(name = "tour", version)]
struct Args {
    /// Scenarios to run (default: all, in the Guide's order, then the network-partition
    /// variants; a scenario marked `pending` in its file runs only when named).
    names: Vec<String>,
    /// List the scenarios with their title and Guide section, run nothing.
    #[arg(long)]
    list: bool,
    /// No ANSI colours (also off when standard output is not a terminal or NO_COLOR is set).
    #[arg(long)]
    no_color: bool,
    /// Print only the summary tables, not the processes' output.
    #[arg(long, short)]
    quiet: bool,
    /// Directory holding the pattern binaries (default: next to this executable; under
    /// `cargo run` they are built there first).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Directory holding the scenario files.
    #[arg(long, value_name = "DIR", default_value_os_t = tour::scenario::scenarios_dir())]
    scenarios: PathBuf,
    /// Override a scenario variable, e.g. `--set heartbeat_ms=100` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    vars: Vec<(String, String)>,
    /// Also write a timeline report, DIR/index.html: the overview table and, per scenario, an
    /// SVG picture of every process's life, each fault, each client request (coloured by
    /// outcome, with its latency) and each measured recovery. Written even when a scenario
    /// fails or is interrupted. Default: no report.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut skipped = Vec::new();
    let mut scenarios = if args.names.is_empty() {
        // A scenario waiting for a fix runs only when named.
        let (pending, ready): (Vec<_>, Vec<_>) = Scenario::all_in(&args.scenarios)?
            .into_iter()
            .partition(|s| s.pending().is_some() && !args.list);
        skipped = pending;
        ready
    } else {
        args.names
            .iter()
            .map(|n| Scenario::load_from(&args.scenarios, n))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    if args.list {
        let width = scenarios.iter().map(|s| s.name().len()).max().unwrap_or(0);
        for s in &scenarios {
            println!("{:<width$}  {}", s.name(), s.title());
            if !s.guide().is_empty() {
                println!("{:<width$}  Guide: {}", "", s.guide());
            }
            if let Some(why) = s.pending() {
                println!("{:<width$}  pending (runs only when named): {why}", "");
            }
        }
        return Ok(());
    }
    if scenarios.is_empty() {
        anyhow::bail!("no scenarios in {}", args.scenarios.display());
    }
    if args.bin_dir.is_none() {
        bins::build_under_cargo(args.quiet).context("building the pattern binaries")?;
    }
    let opts = RunOptions {
        echo: !args.quiet,
        color: !args.no_color && style::stdout_wants_color(),
        bin_dir: args.bin_dir.clone(),
        // The clients' per-request lines feed the report's request marks.
        log_requests: args.report.is_some(),
        // The tour writes one page for every scenario below, not one per run.
        report: None,
    };
    // Ctrl-C handlers are installed here, before any process starts; a small thread waits.
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        let signal = {
            let _in_runtime = rt.enter();
            common::shutdown::signal()
        };
        std::thread::spawn(move || {
            rt.block_on(signal);
            tour::interrupt();
        });
    }
    let mut rows = Vec::new();
    let mut pages = Vec::new();
    for scenario in &mut scenarios {
        if tour::interrupted() {
            break;
        }
        for (k, v) in &args.vars {
            scenario.set_var(k, v);
        }
        let result = scenario.run_keeping(&opts);
        match &result {
            Ok(report) => {
                if opts.echo {
                    println!();
                }
                report.print_table(opts.color);
            }
            Err(f) => println!(
                "{} {:#}",
                style::paint("== ERROR", style::RED, opts.color),
                f.error
            ),
        }
        println!();
        if args.report.is_some() {
            pages.push(timeline::Row::from_result(scenario.name(), &result));
        }
        rows.push((
            scenario.name().to_owned(),
            result.map_err(|f| format!("{:#}", f.error)),
        ));
    }
    print!("{}", report::overview(&rows, opts.color));
    for s in &skipped {
        println!(
            "{} {} (run it by name: tour {}): {}",
            style::paint("skipped", style::DIM, opts.color),
            s.name(),
            s.name(),
            s.pending().unwrap_or_default()
        );
    }
    if let Some(dir) = &args.report {
        let started = std::time::Instant::now();
        let path = timeline::write_index(dir, &pages)?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "I: report written to {} ({} KB in {})",
            path.display(),
            size.div_ceil(1024),
            style::human(started.elapsed())
        );
    }
    if tour::interrupted() {
        // 128 + SIGINT, as a shell reports a program ended by Ctrl-C.
        std::process::exit(130);
    }
    let ok = rows.iter().all(|(_, r)| r.as_ref().is_ok_and(|r| r.ok()));
    std::process::exit(if ok { 0 } else { 1 });
}
