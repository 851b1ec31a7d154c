//! `--report`: the timeline page of a run, checked as a document (strict XML parse) and as a
//! page rendered by a headless Chromium (skipped where there is none, failed under `CI=true`).

use crate::util::{bin_dir, fixtures, load, opts};
use roxmltree::{Document, Node};
use std::path::Path;
use std::process::Command;
use tour::RunOptions;

fn has_class(n: &Node, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|w| w == class))
}

fn count(root: Node, class: &str) -> usize {
    root.descendants()
        .filter(|n| n.is_element() && has_class(n, class))
        .count()
}

fn read(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("index.html")).expect("index.html written")
}

/// Runs `scenario` with the fast test options, writing its page into `dir`.
fn run_with_report(scenario: &tour::Scenario, dir: &Path) -> tour::RunResults {
    let options = RunOptions {
        report: Some(dir.to_owned()),
        ..opts()
    };
    scenario.run(&options).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The page as strict XML (the doctype allowed); a page that does not parse fails the test.
fn parse(html: &str) -> Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    Document::parse_with_options(html, options)
        .unwrap_or_else(|e| panic!("index.html is not well-formed: {e}\n{html}"))
}

/// The single `<svg>` of the page's section for `scenario`.
fn svg_of<'a>(doc: &'a Document, scenario: &str) -> Node<'a, 'a> {
    let svgs: Vec<Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("svg") && n.attribute("data-scenario") == Some(scenario))
        .collect();
    assert_eq!(svgs.len(), 1, "one SVG for {scenario}");
    svgs[0]
}

#[test]
fn a_run_with_report_draws_every_lane_step_request_and_measure() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = load("report");
    let report = run_with_report(&scenario, dir.path());
    assert!(report.ok(), "{}", report.dump());
    let html = read(dir.path());
    let doc = parse(&html);
    assert!(html.contains("All scenarios passed"), "{html}");
    let svg = svg_of(&doc, "report");
    assert_eq!(count(svg, "lane"), 2, "one lane per process");
    assert_eq!(count(svg, "step"), 6, "one marker per step");
    let s = report.summary;
    assert_eq!((s.sent, s.answered, s.failed), (3, 2, 1));
    assert_eq!(
        count(svg, "req") as u64,
        s.sent,
        "one mark per request sent"
    );
    assert_eq!(
        (count(svg, "answered") + count(svg, "retried")) as u64,
        s.answered
    );
    assert_eq!(count(svg, "retried"), 1);
    assert_eq!(count(svg, "failed") as u64, s.failed);
    assert_eq!(count(svg, "measure"), 2);
    assert_eq!(count(svg, "stopped"), 1, "the hang is drawn");
    assert_eq!(count(svg, "restart"), 1, "the restart is drawn");
    assert_eq!(
        count(svg, "killed"),
        2,
        "restart and kill -9 each end a run"
    );
    assert!(!html.contains("<script"), "no scripts needed");
}

#[test]
fn a_failing_run_is_reported_and_says_so_at_the_top() {
    let dir = tempfile::tempdir().unwrap();
    // A measure that never happens.
    let never = load("never-measured");
    let report = run_with_report(&never, dir.path());
    assert!(!report.ok());
    let html = read(dir.path());
    let verdict = html.find("FAILED: 1 of 1").expect("verdict at the top");
    assert!(verdict < html.find("<svg").unwrap());
    assert!(
        html.contains("measure &quot;purged&quot; never happened"),
        "{html}"
    );

    // A timeline that cannot be played to the end: the part that was played is still drawn.
    let dir = tempfile::tempdir().unwrap();
    let failure = load("wait-timeout")
        .run_keeping(&RunOptions {
            report: Some(dir.path().to_owned()),
            ..opts()
        })
        .unwrap_err();
    let partial = failure.partial.expect("partial report");
    assert_eq!(partial.processes.len(), 1);
    let html = read(dir.path());
    assert!(html.contains("FAILED: 1 of 1"), "{html}");
    assert!(html.contains("could not be played to the end"), "{html}");
    assert_eq!(html.matches("<g class=\"lane\"").count(), 1, "{html}");
}

#[test]
fn the_tour_binary_writes_one_page_for_all_its_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tour"))
        .arg("--scenarios")
        .arg(fixtures())
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(["--quiet", "--report"])
        .arg(dir.path())
        .args(["report", "never-measured"])
        .env_remove("CARGO")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "never-measured fails the tour");
    assert!(stdout.contains("I: report written to"), "{stdout}");
    let html = read(dir.path());
    assert_eq!(html.matches("<svg").count(), 2, "one SVG per scenario");
    assert!(html.contains("FAILED: 1 of 2"), "{html}");
}

/// Headless Chromium, if this machine has it.
fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
}

/// The browser found by [`chromium`], or `None` (the test skips) where there is none.
fn browser() -> Option<String> {
    common::testkit::prerequisite(chromium(), || {
        "no chromium, chromium-browser or google-chrome on this machine (.ci/run installs \
         chromium with apt-get)"
            .to_owned()
    })
}

/// A screenshot of `dir/index.html` as the browser draws it: its pixels (RGB or RGBA, as
/// `channels` says). Fails on any console message.
fn screenshot(browser: &str, dir: &Path) -> (Vec<u8>, usize) {
    let page = dir.join("index.html");
    let shot = dir.join("shot.png");
    let mut out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,900",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("browser.log")).unwrap())
        .spawn()
        .unwrap();
    // A browser that hangs must not hang the test run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while out.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = out.kill();
            let _ = out.wait();
            panic!("{browser} still running after 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("browser.log")).unwrap_or_default();
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let file = std::fs::File::open(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {log}"));
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (buf, info.color_type.samples())
}

#[test]
fn the_page_renders_in_a_browser_without_console_errors() {
    let Some(browser) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    run_with_report(&load("report"), dir.path());
    let (pixels, channels) = screenshot(&browser, dir.path());
    let inked = pixels
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 200))
        .count();
    let total = pixels.len() / channels;
    assert!(
        inked * 100 > total,
        "screenshot nearly blank: {inked} of {total} pixels drawn"
    );
}

#[test]
fn network_faults_are_drawn_as_shaded_spans_on_their_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = load("network");
    scenario.set_var("hold_ms", "300");
    let report = run_with_report(&scenario, dir.path());
    let html = read(dir.path());
    let doc = parse(&html);
    let svg = svg_of(&doc, "network");
    let net_steps = report.net_events().count();
    assert_eq!(net_steps, 7);
    assert_eq!(
        count(svg, "network"),
        net_steps,
        "one network marker per step"
    );
    assert_eq!(count(svg, "step"), 8);
    // partition + heal, delay, throttle, partition_in: four spans, each healed by a step.
    assert_eq!(count(svg, "span"), 4);
    assert_eq!(count(svg, "partition"), 1);
    assert!(!html.contains("never healed"), "{html}");
    assert_eq!(count(svg, "host"), 2, "server_host and client");
}

#[test]
fn a_real_pattern_run_has_one_mark_per_request_its_client_counted() {
    let bin = common::testkit::workspace_bins(&["lpserver", "lpclient"]);
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = tour::Scenario::load("lazy-pirate").unwrap();
    scenario.set_var("timeout_ms", "300");
    scenario.set_var("work_ms", "10");
    let report = scenario
        .run(&RunOptions {
            bin_dir: Some(bin),
            report: Some(dir.path().to_owned()),
            ..RunOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(report.ok(), "{}", report.dump());
    let html = read(dir.path());
    let doc = parse(&html);
    let svg = svg_of(&doc, "lazy-pirate");
    let s = report.summary;
    assert!(
        s.sent > 0 && s.failed > 0,
        "the scenario ends with a failure"
    );
    assert_eq!(count(svg, "req") as u64, s.sent, "{}", report.dump());
    assert_eq!(
        (count(svg, "answered") + count(svg, "retried")) as u64,
        s.answered
    );
    assert_eq!(count(svg, "failed") as u64, s.failed);
    assert!(count(svg, "retried") >= 1, "the crash makes a retry");
}

#[test]
fn a_chaos_run_is_reported_with_its_seed_and_broken_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tour"))
        .arg("--scenarios")
        .arg(fixtures())
        .arg("--bin-dir")
        .arg(bin_dir())
        .args([
            "--quiet",
            "--chaos",
            "--seed",
            "5",
            "--duration",
            "2s",
            "--report",
        ])
        .arg(dir.path())
        .arg("chaos")
        .env_remove("CARGO")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("I: report written to"), "{stdout}");
    let html = read(dir.path());
    let doc = parse(&html);
    let svg = svg_of(&doc, "chaos");
    assert!(html.contains("chaos (chaos seed 5)"), "{html}");
    // The stand-in client prints no summary, which the chaos check reports.
    assert!(html.contains("FAILED: 1 of 1"), "{html}");
    assert!(
        html.contains("chaos invariant broken: client client printed no summary"),
        "{html}"
    );
    // The schedule's faults are drawn: kills, stops and network faults of the seed.
    let faults = count(svg, "fault") + count(svg, "network");
    assert!(faults >= 3, "{html}");
}

/// The role a Binary Star server's line starts, as the band's label reads it ("ACTIVE e2"), read
/// here from the line itself.
fn role_started_by(line: &str) -> Option<String> {
    if line.contains("I: primary ready") {
        return Some("PRIMARY".into());
    }
    if line.contains("I: backup ready") {
        return Some("BACKUP".into());
    }
    let state = line.split("I: state ").nth(1)?.split(' ').next()?;
    let epoch = line.rsplit("(epoch ").next()?.trim_end_matches(')');
    Some(format!("{state} e{epoch}"))
}

#[test]
fn binary_star_servers_carry_their_roles_as_the_lines_say_with_the_dual_active_moment() {
    let bin = common::testkit::workspace_bins(&["bstarsrv", "bstarcli"]);
    let dir = tempfile::tempdir().unwrap();
    // The short timings of binary-star's own process test of this scenario.
    let mut scenario = tour::Scenario::load_with(
        "binary-star-partition",
        &[
            ("heartbeat_ms", "250"),
            ("timeout_ms", "600"),
            ("settle_ms", "1200"),
            ("vote_ms", "100"),
            ("interval_ms", "50"),
            ("requests", "200"),
            ("lead_ms", "1000"),
            ("short_partition_ms", "1500"),
            ("long_partition_ms", "4000"),
        ],
    )
    .unwrap();
    scenario.set_timeout(std::time::Duration::from_secs(90));
    let report = scenario
        .run(&RunOptions {
            bin_dir: Some(bin),
            report: Some(dir.path().to_owned()),
            ..RunOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(report.ok(), "{}", report.dump());
    let html = read(dir.path());
    let doc = parse(&html);
    let svg = svg_of(&doc, "binary-star-partition");
    let line_ms = |process: &str, needle: &str| -> Vec<u128> {
        report
            .output
            .iter()
            .filter(|l| l.process == process && l.text.contains(needle))
            .map(|l| l.at.as_millis())
            .collect()
    };
    for server in ["primary", "backup"] {
        let lane = svg
            .descendants()
            .find(|n| has_class(n, "lane") && n.attribute("data-process") == Some(server))
            .unwrap_or_else(|| panic!("a lane for {server}"));
        let bands: Vec<(u128, u128, String, String)> = lane
            .descendants()
            .filter(|n| has_class(n, "role"))
            .map(|n| {
                let ms = |a| n.attribute(a).unwrap().parse::<u128>().unwrap();
                let title = n
                    .children()
                    .find(|c| c.has_tag_name("title"))
                    .and_then(|t| t.text())
                    .unwrap_or_default();
                (
                    ms("data-from-ms"),
                    ms("data-to-ms"),
                    n.attribute("data-role").unwrap().to_owned(),
                    title.to_owned(),
                )
            })
            .collect();
        // One band per line that changes the role, from that line, labelled as it says.
        let expected: Vec<(u128, String, &str)> = report
            .output
            .iter()
            .filter(|l| l.process == server)
            .filter_map(|l| Some((l.at.as_millis(), role_started_by(&l.text)?, l.text.as_str())))
            .collect();
        assert_eq!(
            bands.iter().map(|b| (b.0, b.2.clone())).collect::<Vec<_>>(),
            expected
                .iter()
                .map(|e| (e.0, e.1.clone()))
                .collect::<Vec<_>>(),
            "{server}: {}",
            report.dump()
        );
        for (band, (_, _, text)) in bands.iter().zip(&expected) {
            assert!(
                band.3.contains(text),
                "the hover cites the line: {}",
                band.3
            );
        }
        // Neither server exits: each band ends where the next begins, the last at the end.
        for pair in bands.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{server}: {bands:?}");
        }
        assert!(bands.iter().any(|b| b.2.starts_with("ACTIVE")), "{bands:?}");
    }
    // The backup takes over during the partition in a new epoch; the primary steps down after.
    let takeover = line_ms("backup", "I: state ACTIVE - failover successful");
    let step_down = line_ms("primary", "I: state PASSIVE - dual actives resolved");
    assert!(
        !takeover.is_empty() && !step_down.is_empty(),
        "{}",
        report.dump()
    );
    let risks: Vec<(u128, u128)> = svg
        .descendants()
        .filter(|n| has_class(n, "risk") && n.attribute("data-from-ms").is_some())
        .filter(|n| has_class(n, "dual-active"))
        .map(|n| {
            let ms = |a| n.attribute(a).unwrap().parse::<u128>().unwrap();
            (ms("data-from-ms"), ms("data-to-ms"))
        })
        .collect();
    assert!(
        risks.contains(&(takeover[0], step_down[0])),
        "both ACTIVE from the backup's takeover to the primary's step-down: {risks:?} {}",
        report.dump()
    );
    let legend = svg
        .descendants()
        .find(|n| has_class(n, "legend"))
        .expect("a legend");
    let legend_text: String = legend.descendants().filter_map(|n| n.text()).collect();
    assert!(legend_text.contains("two ACTIVE"), "{legend_text}");

    // And the browser draws it: no console message, and the ACTIVE band's blue on screen.
    let Some(browser) = browser() else { return };
    let (pixels, channels) = screenshot(&browser, dir.path());
    let near = |p: &[u8], rgb: [u8; 3]| p.iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) < 8);
    let active_blue = pixels
        .chunks(channels)
        .filter(|p| near(p, [0x1f, 0x5f, 0xa8]))
        .count();
    assert!(
        active_blue > 100,
        "ACTIVE bands on screen: {active_blue} pixels"
    );
}
