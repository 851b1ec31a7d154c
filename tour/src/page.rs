//! The tour's HTML page: the overview table of a tour's runs, then one section per scenario
//! with its timeline picture, its steps and its problems.
//!
//! It reads the model ([`Timeline`], built from a run's report) and has the `svg` module draw
//! it; neither the model nor the picture knows about the page. [`write_index`] writes it.

use crate::results::{Measure, RunResults};
use crate::style::human;
use crate::svg::{self, esc};
use crate::timeline::{MarkerKind, Timeline};
use crate::RunFailure;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One scenario of a tour as the page shows it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The scenario's name.
    pub name: String,
    /// What happened (in full, or up to the failure).
    pub report: Option<RunResults>,
    /// Why the run could not be played to the end, if it could not.
    pub error: Option<String>,
    /// Invariants a chaos run broke (`tour --chaos`); empty for a plain run.
    pub violations: Vec<String>,
}

impl Row {
    /// The row of one run's result.
    pub fn from_result(name: &str, result: &Result<RunResults, RunFailure>) -> Row {
        match result {
            Ok(r) => Row {
                name: name.to_owned(),
                report: Some(r.clone()),
                error: None,
                violations: Vec::new(),
            },
            Err(f) => Row {
                name: name.to_owned(),
                report: f.partial.as_deref().cloned(),
                error: Some(format!("{:#}", f.error)),
                violations: Vec::new(),
            },
        }
    }

    /// Passed: played to the end, nothing lost, every measure happened.
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.violations.is_empty()
            && self.report.as_ref().is_some_and(RunResults::ok)
    }

    /// Why it failed, one sentence each; empty when it passed.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(format!("the timeline could not be played to the end: {e}"));
        }
        for v in &self.violations {
            out.push(format!("chaos invariant broken: {v}"));
        }
        if let Some(r) = &self.report {
            if r.lost > 0 {
                out.push(format!("{} request(s) lost", r.lost));
            }
            for m in r.measures.iter().filter(|m| m.elapsed.is_none()) {
                out.push(format!("measure \"{}\" never happened", m.label));
            }
            for c in r.clients.iter().filter(|c| c.timed_out) {
                out.push(format!("client {} still running at timeout_ms", c.name));
            }
        } else if self.error.is_none() {
            out.push("no report".to_owned());
        }
        out
    }
}

/// Writes `dir/index.html` (creating `dir`): the overview and one section per row.
/// Returns the file's path.
pub fn write_index(dir: &Path, rows: &[Row]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("index.html");
    std::fs::write(&path, page(rows))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

const CSS: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1100px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
.verdict { padding: .6em 1em; border-radius: 4px; font-weight: bold; }
.verdict.ok { background: #e3f4e3; color: #1d5e1d; }
.verdict.failed { background: #fbe3e3; color: #8a1414; }
table { border-collapse: collapse; } td, th { padding: .2em .7em; text-align: right; }
th { border-bottom: 1px solid #999; } td.name, th.name, td.text { text-align: left; }
tr.failed td.result { color: #b00; font-weight: bold; } tr.ok td.result { color: #2a7a2a; }
ol.steps { color: #444; font-size: 13px; } ul.problems { color: #8a1414; }
pre.error { white-space: pre-wrap; background: #f6f6f6; padding: .5em; font-size: 12px; }
svg.timeline { width: 100%; height: auto; border: 1px solid #ddd; background: #fff; }
";

/// The whole page.
pub fn page(rows: &[Row]) -> String {
    let mut out = String::new();
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.ok()).collect();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <title>tour report</title><style>{CSS}</style></head><body>\n\
         <h1>Tour report: {} scenario(s)</h1>\n",
        rows.len()
    );
    if failed.is_empty() {
        out.push_str("<p class=\"verdict ok\">All scenarios passed: nothing lost, every measured recovery happened.</p>\n");
    } else {
        let names: Vec<String> = failed.iter().map(|r| esc(&r.name)).collect();
        let _ = writeln!(
            out,
            "<p class=\"verdict failed\">FAILED: {} of {} scenario(s) failed ({}).</p>",
            failed.len(),
            rows.len(),
            names.join(", ")
        );
    }
    out.push_str(
        "<table class=\"overview\"><thead><tr><th class=\"name\">scenario</th><th>sent</th>\
         <th>answered</th><th>failed</th><th>lost</th><th>retries</th><th>result</th>\
         <th class=\"name\">measures</th></tr></thead><tbody>\n",
    );
    for row in rows {
        let class = if row.ok() { "ok" } else { "failed" };
        let result = match (&row.error, row.ok()) {
            (None, false) if !row.violations.is_empty() => "FAILED",
            (Some(_), _) => "ERROR",
            (None, true) => "ok",
            (None, false) => "FAILED",
        };
        let (nums, measures) = match &row.report {
            Some(r) => {
                let s = r.summary;
                let m: Vec<String> = r.measures.iter().map(Measure::text).collect();
                (
                    format!(
                        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                        s.sent, s.answered, s.failed, r.lost, s.retries
                    ),
                    m.join("; "),
                )
            }
            None => ("<td>-</td>".repeat(5), String::new()),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td class=\"name\"><a href=\"#{id}\">{name}</a></td>{nums}\
             <td class=\"result\">{result}</td><td class=\"text\">{measures}</td></tr>",
            id = esc(&anchor(&row.name)),
            name = esc(&row.name),
            measures = esc(&measures),
        );
    }
    out.push_str("</tbody></table>\n");
    out.push_str(
        "<p>Each timeline: one lane per process (green: running, amber: hung by SIGSTOP, thin \
         grey: not running; a red × is a kill, a grey × an exit by itself, a black tick a \
         restart), one numbered line per step, and under each client a strip with one mark per \
         request from the time it was sent to its outcome (height: latency; green answered, blue \
         answered after a retry, red failed). Brackets below are the measured recoveries. \
         Roles, read from the programs' own lines: above a Binary Star server's lane (bstarsrv, \
         or mdbroker as one of a pair), its state with its epoch (pale yellow: waiting for the \
         peer, as PRIMARY or BACKUP; dark blue: ACTIVE; light blue: PASSIVE); under a \
         Majordomo worker's lane, its own busy time first (orange: from a request's start line \
         to its end line, with at least one running; pauses under 1 % of the axis joined, the \
         hover text counting the requests), then one thin row per broker with that broker's \
         view of it (green registered, red purged, grey left); under a Freelance server's lane, one row per client \
         with that client's view of it (green alive, red dead); under a Titanic client's lane, \
         its requests (purple: stored, its reply not yet fetched; green: answered, not yet \
         closed; a row per request under way at once). Red dashed boxes mark where the \
         pattern's promise was at risk: two servers ACTIVE at once, a client with no live \
         server; a red diamond a request executed a second time. The key under each picture \
         lists those it has. Hover over anything for details: a band shows its exact times and \
         the lines that began and ended it.</p>\n",
    );
    for row in rows {
        section(&mut out, row);
    }
    out.push_str("</body></html>\n");
    out
}

fn anchor(name: &str) -> String {
    format!(
        "scenario-{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    )
}

fn section(out: &mut String, row: &Row) {
    let verdict = if row.ok() { "ok" } else { "FAILED" };
    let _ = writeln!(
        out,
        "<section class=\"scenario\" id=\"{}\"><h2>{} ({verdict})</h2>",
        esc(&anchor(&row.name)),
        esc(&row.name)
    );
    let problems = row.problems();
    if !problems.is_empty() {
        out.push_str("<ul class=\"problems\">");
        for p in problems
            .iter()
            .map(|p| p.lines().next().unwrap_or_default())
        {
            let _ = write!(out, "<li>{}</li>", esc(p));
        }
        out.push_str("</ul>\n");
    }
    if let Some(e) = &row.error {
        let _ = writeln!(out, "<pre class=\"error\">{}</pre>", esc(e));
    }
    if let Some(r) = &row.report {
        let t = Timeline::from_report(r);
        let (answered, retried, failed) = t.request_counts();
        let _ = writeln!(
            out,
            "<p>{} in {}; request marks: {answered} answered ({retried} after a retry), \
             {failed} failed; clients' summaries: sent {}, answered {}, failed {}.</p>",
            esc(&r.scenario),
            human(r.elapsed),
            r.summary.sent,
            r.summary.answered,
            r.summary.failed
        );
        out.push_str(&svg::render(&t));
        out.push('\n');
        if !t.markers.is_empty() {
            out.push_str("<ol class=\"steps\">");
            for m in &t.markers {
                let text = match &m.note {
                    Some(n) if m.kind != MarkerKind::Note => format!("{}: {n}", m.label),
                    _ => m.label.clone(),
                };
                let _ = write!(
                    out,
                    "<li value=\"{}\">{:.3} s: {}</li>",
                    m.step,
                    m.at.as_secs_f64(),
                    esc(&text)
                );
            }
            out.push_str("</ol>\n");
        }
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::tests::sample;

    #[test]
    fn the_page_says_failed_at_the_top_and_escapes_text() {
        let mut r = sample();
        r.scenario = "a<b&c".into();
        let failed = Row {
            name: "a<b&c".into(),
            report: Some(r),
            error: Some("step 3: never printed \"x\" <here>".into()),
            violations: vec!["no process exited unless the schedule ended it".into()],
        };
        let html = page(std::slice::from_ref(&failed));
        let top = html.find("FAILED: 1 of 1").expect("verdict");
        assert!(top < html.find("<svg").unwrap());
        assert!(html.contains("a&lt;b&amp;c"));
        assert!(!html.contains("<here>"));
        assert!(failed
            .problems()
            .iter()
            .any(|p| p.contains("measure \"never\" never happened")));
        assert!(html.contains("chaos invariant broken: no process exited"));
        let mut passing = sample();
        passing.measures.truncate(1);
        let ok = Row {
            name: "fine".into(),
            report: Some(passing),
            error: None,
            violations: Vec::new(),
        };
        assert!(page(&[ok]).contains("All scenarios passed"));
    }
}
