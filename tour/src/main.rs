//! `tour`: runs the patterns' fault scenarios and prints what survived.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use tour::{bins, page, results, style, RunOptions, Scenario};

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
    /// outcome, with its latency), each measured recovery, and the roles the processes' lines
    /// tell (Binary Star states with their epochs, a broker's view of its workers, a worker's
    /// busy time, a Freelance client's view of its servers, Titanic requests) with the moments
    /// a promise was at risk (two ACTIVE servers, a request run twice, a client with no
    /// server). Written even when a scenario fails or is interrupted; with --chaos, it draws
    /// the seeded schedule and lists the broken invariants. Default: no report.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Chaos mode: replace each scenario's timeline (after its setup) by a random schedule of
    /// the faults its `[chaos]` table allows, drawn from --seed, with the clients running
    /// throughout; then Ctrl-C everything and check that nothing was lost, no reply went to
    /// the wrong request, no process exited unless the schedule ended it, and every process
    /// exited within 1 s. Scenarios without a `[chaos]` table are skipped.
    #[arg(long)]
    chaos: bool,
    /// Seed of the chaos schedule (default: from the clock; printed, so the run can be
    /// replayed) (0 to 18446744073709551615).
    #[arg(long, value_name = "S", requires = "chaos", value_parser = common::cli::seed())]
    seed: Option<u64>,
    /// How long the chaos schedule lasts, e.g. `60s`, `1500ms`, `2m`; a bare number is seconds
    /// (1 to 3600 seconds).
    #[arg(long, value_name = "TIME", default_value = "60s", value_parser = duration, requires = "chaos")]
    duration: Duration,
}

/// The shortest and longest chaos schedule: under a second leaves no room for a fault; an hour
/// is more than anyone watches, and the schedule is drawn and printed up front (a day of it
/// took seconds to print, in which Ctrl-C waited).
const CHAOS_DURATION: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);

/// `--duration`: a number with an optional unit (`ms`, `s`, `m`; seconds by default), within
/// [`CHAOS_DURATION`].
fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as 60s, 1500ms or 2m, got {text:?}"))?;
    let length = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    length
        .filter(|d| CHAOS_DURATION.contains(d))
        .ok_or_else(|| format!("{text} is not in 1s..=3600s (1 s to an hour)"))
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
        let pending: Vec<&str> = skipped.iter().map(|s| s.name()).collect();
        anyhow::bail!(
            "no scenarios to run in {}{}",
            args.scenarios.display(),
            if pending.is_empty() {
                String::new()
            } else {
                format!(
                    " (pending ones run only when named: {})",
                    pending.join(", ")
                )
            }
        );
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
    if args.chaos {
        return chaos(&args, scenarios, &opts);
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
            pages.push(page::Row::from_result(scenario.name(), &result));
        }
        rows.push((
            scenario.name().to_owned(),
            result.map_err(|f| format!("{:#}", f.error)),
        ));
    }
    print!("{}", results::overview(&rows, opts.color));
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
        write_report(dir, &pages)?;
    }
    if tour::interrupted() {
        // 128 + SIGINT, as a shell reports a program ended by Ctrl-C.
        std::process::exit(130);
    }
    let ok = rows.iter().all(|(_, r)| r.as_ref().is_ok_and(|r| r.ok()));
    std::process::exit(if ok { 0 } else { 1 });
}

/// `tour --chaos`: each scenario with a `[chaos]` table, on a schedule drawn from the seed.
fn chaos(args: &Args, scenarios: Vec<Scenario>, opts: &RunOptions) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let mut failed = Vec::new();
    let mut pages = Vec::new();
    for mut scenario in scenarios {
        if tour::interrupted() {
            break;
        }
        if !scenario.has_chaos() {
            println!("chaos: {} has no [chaos] table, skipped", scenario.name());
            continue;
        }
        for (k, v) in &args.vars {
            scenario.set_var(k, v);
        }
        let mut run = scenario.chaos(seed, args.duration)?;
        for (k, v) in &args.vars {
            run.scenario.set_var(k, v);
        }
        print!("{}", run.describe());
        let name = scenario.name().to_owned();
        let (result, broken) = run.run_keeping(opts);
        if args.report.is_some() {
            let mut row = page::Row::from_result(&format!("{name} (chaos seed {seed})"), &result);
            row.violations = broken.clone();
            pages.push(row);
        }
        match result.map_err(|f| f.error) {
            Ok(report) => {
                if opts.echo {
                    println!();
                }
                report.print_table(opts.color);
                if broken.is_empty() {
                    println!(
                        "{} {name}: every invariant held (seed {seed})",
                        style::paint("chaos ok", style::GREEN, opts.color)
                    );
                } else {
                    println!(
                        "{} {name} with seed {seed} (replay: tour --chaos --seed {seed} --duration {}ms {name}):",
                        style::paint("chaos FAILED", style::RED, opts.color),
                        args.duration.as_millis()
                    );
                    for b in &broken {
                        println!("  - {b}");
                    }
                    print!("{}", run.describe());
                    failed.push(name);
                }
            }
            Err(e) => {
                println!(
                    "{} {e:#}\n{}",
                    style::paint("== ERROR", style::RED, opts.color),
                    run.describe()
                );
                failed.push(name);
            }
        }
        println!();
    }
    if let Some(dir) = &args.report {
        write_report(dir, &pages)?;
    }
    if tour::interrupted() {
        std::process::exit(130);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        println!("chaos failed (seed {seed}): {}", failed.join(", "));
        std::process::exit(1);
    }
}

/// Writes the timeline page of the rows and says where, how big and how long it took.
fn write_report(dir: &std::path::Path, rows: &[page::Row]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let path = page::write_index(dir, rows)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "I: report written to {} ({} KB in {})",
        path.display(),
        size.div_ceil(1024),
        style::human(started.elapsed())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_durations_parse_with_units_and_stay_in_range() {
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1"), Ok(Duration::from_secs(1)));
        assert_eq!(duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("60m"), Ok(Duration::from_secs(3600)));
        for text in [
            "0",
            "999ms",
            "3601",
            "61m",
            "18446744073709551615m",
            "18446744073709551615",
        ] {
            let error = duration(text).expect_err(text);
            assert!(error.contains("not in 1s..=3600s"), "{text}: {error}");
        }
        assert!(duration("5h").unwrap_err().contains("unknown unit"));
        assert!(duration("soon")
            .unwrap_err()
            .contains("expected a duration"));
    }
}
