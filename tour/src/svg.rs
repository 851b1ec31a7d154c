//! Draws a [`Timeline`] as one self-contained SVG picture: a pure function of the model, no
//! scripts, no external references, hover text in `<title>` elements.
//!
//! Layout, top to bottom: the time axis with one numbered badge per step; the lanes (one per
//! process, a latency strip under each client), crossed by a line per step and shaded by spans;
//! the measure brackets. Element classes are a contract with the tests and the page's legend:
//! `lane` (one per process, `data-process`), `step` (one per step, `data-step`), `req answered|
//! retried|failed` (one per request, `data-seq`), `measure`, `span`, `seg running|stopped`, `end`;
//! the roles (module `roles`): `role <class>` (one per band, `data-from-ms`/`data-to-ms`,
//! `data-role`), `view` (a row of another process's view), `risk <kind>`, `legend`.

use crate::timeline::{MarkOutcome, MarkerKind, SegmentState, Timeline};
use std::fmt::Write as _;
use std::time::Duration;

mod roles;

const WIDTH: f64 = 1000.0;
/// Where the plot starts (process names are right-aligned before it).
const X0: f64 = 150.0;
const X1: f64 = 985.0;
const HEADER: f64 = 48.0;
const HOST_ROW: f64 = 18.0;
const LANE: f64 = 24.0;
const BAR: f64 = 10.0;
const STRIP: f64 = 34.0;
const BRACKET: f64 = 20.0;
const BADGE_R: f64 = 8.0;

const STYLE: &str = "
text { font: 11px system-ui, sans-serif; fill: #333; }
.name { font-weight: 600; text-anchor: end; }
.host { font-style: italic; fill: #666; }
.tick line { stroke: #eee; } .tick text { fill: #888; text-anchor: middle; }
.off { stroke: #ccc; stroke-width: 1; }
.seg.running { fill: #5cb85c; } .seg.stopped { fill: #f0ad4e; }
.restart { stroke: #222; stroke-width: 2; }
.end { stroke-width: 2.2; fill: none; } .end.killed { stroke: #c9302c; } .end.exited { stroke: #777; }
.strip-bg { fill: #f7f7f7; } .strip-label { fill: #999; font-size: 9px; text-anchor: end; }
.req { fill-opacity: .8; } .req.answered { fill: #2e8b57; } .req.retried { fill: #1f6fd1; } .req.failed { fill: #d62728; }
.step line { stroke-width: 1; stroke-dasharray: 3 3; }
.step.fault line { stroke: #c9302c; } .step.start line { stroke: #6a8caf; } .step.note line { stroke: #aaa; }
.step circle { stroke: none; } .step.fault circle { fill: #c9302c; } .step.start circle { fill: #6a8caf; }
.step.note circle { fill: #aaa; } .step text { fill: #fff; font-size: 9px; text-anchor: middle; font-weight: 700; }
.span rect { fill-opacity: .18; } .span.partition rect { fill: #8e44ad; }
.span.oneway rect { fill: #b07cc6; } .span.delay rect { fill: #e67e22; } .span.throttle rect { fill: #d4ac0d; }
.step.network line { stroke: #8e44ad; } .step.network circle { fill: #8e44ad; }
.measure path { stroke: #333; fill: none; stroke-width: 1.2; } .measure.never path { stroke: #c9302c; stroke-dasharray: 4 3; }
.measure.never text { fill: #c9302c; font-weight: 600; }
";

/// Maps a time to an x coordinate.
struct Scale {
    end: f64,
}

impl Scale {
    fn x(&self, t: Duration) -> f64 {
        let f = if self.end > 0.0 {
            (t.as_secs_f64() / self.end).clamp(0.0, 1.0)
        } else {
            0.0
        };
        X0 + f * (X1 - X0)
    }
}

/// A step between ticks of 1, 2 or 5 × 10^k seconds giving about 8–12 ticks.
fn tick_step(end: f64) -> f64 {
    let rough = (end / 10.0).max(1e-3);
    let magnitude = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The SVG of one timeline.
pub(crate) fn render(t: &Timeline) -> String {
    let scale = Scale {
        end: t.end.as_secs_f64(),
    };
    // Vertical layout of the lanes first (see `Row`).
    let mut y = HEADER;
    let mut hosts = Vec::new();
    let mut rows = Vec::new();
    let mut last_host: Option<&str> = None;
    for (i, lane) in t.lanes.iter().enumerate() {
        if let Some(h) = lane.host.as_deref() {
            if last_host != Some(h) {
                hosts.push((h, y + HOST_ROW - 5.0));
                y += HOST_ROW;
            }
        }
        let host_above = lane.host.is_some() && last_host != lane.host.as_deref();
        last_host = lane.host.as_deref();
        let top = y;
        let (own, views) = roles::rows_of(t, i);
        if own {
            y += roles::OWN_ROW;
        }
        let centre = y + LANE / 2.0;
        y += LANE;
        let views_top = y;
        y += views;
        let strip = lane.client.then(|| {
            let top = y;
            y += STRIP;
            top
        });
        rows.push(Row {
            lane: i,
            host_above,
            top,
            centre,
            views_top,
            strip,
            bottom: y,
        });
    }
    let lanes_bottom = y;
    let legend_top = lanes_bottom + 8.0 + BRACKET * t.brackets.len() as f64;
    let legend = roles::legend_height(t);
    let height = legend_top + legend + 8.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" \
         data-scenario=\"{}\" viewBox=\"0 0 {WIDTH} {height:.0}\" width=\"{WIDTH}\" \
         height=\"{height:.0}\" role=\"img\"><title>{} timeline, {}</title><style>{STYLE}{}</style>",
        esc(&t.scenario),
        esc(&t.scenario),
        secs(t.end),
        roles::STYLE
    );
    // Time axis.
    let step = tick_step(scale.end);
    let mut k = 0u32;
    while f64::from(k) * step <= scale.end + 1e-9 {
        let at = Duration::from_secs_f64(f64::from(k) * step);
        let x = scale.x(at);
        let label = if step < 1.0 {
            format!("{:.1} s", at.as_secs_f64())
        } else {
            format!("{:.0} s", at.as_secs_f64())
        };
        let _ = write!(
            out,
            "<g class=\"tick\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"16\" y2=\"{lanes_bottom:.1}\"/>\
             <text x=\"{x:.1}\" y=\"12\">{label}</text></g>"
        );
        k += 1;
    }
    // Spans under everything else: one shaded band over the lanes each covers.
    for s in &t.spans {
        let x = scale.x(s.from);
        let x2 = scale.x(s.to.unwrap_or(t.end));
        let _ = write!(
            out,
            "<g class=\"span {}\"><title>{} from {} to {}</title>",
            s.kind.class(),
            esc(&s.label),
            secs(s.from),
            s.to.map_or("the end (never healed)".to_owned(), secs)
        );
        for row in rows.iter().filter(|r| s.lanes.contains(&r.lane)) {
            let (top, bottom) = (row.top, row.bottom);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                (x2 - x).max(1.0),
                bottom - top
            );
        }
        out.push_str("</g>");
    }
    for (h, hy) in hosts {
        let _ = write!(
            out,
            "<text class=\"host\" x=\"6\" y=\"{hy:.1}\">host {}</text>",
            esc(h)
        );
    }
    for row in &rows {
        lane(&mut out, t, &scale, row);
    }
    roles::risks(&mut out, t, &scale, &rows);
    steps(&mut out, t, &scale, lanes_bottom);
    for (n, b) in t.brackets.iter().enumerate() {
        let by = lanes_bottom + 8.0 + BRACKET * n as f64 + BRACKET / 2.0;
        let x = scale.x(b.from);
        let (x2, class, text) = match b.to {
            Some(to) => (
                scale.x(to),
                "measure",
                format!(
                    "{} {}",
                    b.label,
                    crate::style::human(to.saturating_sub(b.from))
                ),
            ),
            None => (X1, "measure never", format!("{}: never happened", b.label)),
        };
        let lane = t.lanes.get(b.lane).map_or("", |l| l.name.as_str());
        // Label right of the bracket, or left of it when it would run off the picture.
        let (tx, anchor) = if x2 + 8.0 + 6.0 * text.len() as f64 > WIDTH {
            (x - 4.0, "end")
        } else {
            (x2 + 4.0, "start")
        };
        let _ = write!(
            out,
            "<g class=\"{class}\"><path d=\"M{x:.1} {:.1}V{by:.1}H{x2:.1}V{:.1}\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>\
             <title>{} (from {} to a line of {}{})</title></g>",
            by - 5.0,
            by - 5.0,
            by + 4.0,
            esc(&text),
            esc(&text),
            secs(b.from),
            esc(lane),
            b.to.map_or(String::new(), |to| format!(" at {}", secs(to)))
        );
    }
    roles::legend(&mut out, t, legend_top);
    out.push_str("</svg>");
    out
}

/// Where one lane sits: from `top` (its role row, if it has one) over the process bar at
/// `centre`, the rows of the views of others from `views_top`, the client's latency strip, to
/// `bottom`.
struct Row {
    lane: usize,
    /// A host's name row is right above it (free space right of the name).
    host_above: bool,
    top: f64,
    centre: f64,
    views_top: f64,
    strip: Option<f64>,
    bottom: f64,
}

fn lane(out: &mut String, t: &Timeline, scale: &Scale, row: &Row) {
    let (i, centre, strip) = (row.lane, row.centre, row.strip);
    let lane = &t.lanes[i];
    let _ = write!(
        out,
        "<g class=\"lane\" data-process=\"{}\"><text class=\"name\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\
         <line class=\"off\" x1=\"{X0}\" x2=\"{X1}\" y1=\"{centre:.1}\" y2=\"{centre:.1}\"/>",
        esc(&lane.name),
        X0 - 8.0,
        centre + 4.0,
        esc(&lane.name)
    );
    let top = centre - BAR / 2.0;
    let mut previous_run = 0;
    for s in &lane.segments {
        let x = scale.x(s.from);
        let w = (scale.x(s.to) - x).max(1.0);
        let (class, what) = match s.state {
            SegmentState::Running => ("running", "running"),
            SegmentState::Stopped => ("stopped", "hung (SIGSTOP)"),
        };
        let _ = write!(
            out,
            "<rect class=\"seg {class}\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" \
             height=\"{BAR}\"><title>{} run {}: {what} {}–{}</title></rect>",
            esc(&lane.name),
            s.run,
            secs(s.from),
            secs(s.to)
        );
        if s.run > 1 && s.run != previous_run {
            let _ = write!(
                out,
                "<line class=\"restart\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\">\
                 <title>{} restarted (run {}) at {}</title></line>",
                top - 3.0,
                top + BAR + 3.0,
                esc(&lane.name),
                s.run,
                secs(s.from)
            );
        }
        previous_run = s.run;
    }
    roles::lane(out, t, scale, row);
    for e in &lane.ends {
        let x = scale.x(e.at);
        let class = if e.killed { "killed" } else { "exited" };
        let _ = write!(
            out,
            "<path class=\"end {class}\" d=\"M{:.1} {:.1}l8 8m0 -8l-8 8\"><title>{} {} at {}</title></path>",
            x - 4.0,
            centre - 4.0,
            esc(&lane.name),
            esc(&e.how),
            secs(e.at)
        );
    }
    if let Some(strip_top) = strip {
        let max = lane
            .requests
            .iter()
            .map(|r| r.latency)
            .max()
            .unwrap_or_default()
            .max(Duration::from_millis(1));
        let floor = strip_top + STRIP - 3.0;
        let room = STRIP - 8.0;
        let _ = write!(
            out,
            "<g class=\"strip\"><rect class=\"strip-bg\" x=\"{X0}\" y=\"{:.1}\" width=\"{:.1}\" \
             height=\"{:.1}\"/><text class=\"strip-label\" x=\"{:.1}\" y=\"{:.1}\">latency</text>\
             <text class=\"strip-label\" x=\"{:.1}\" y=\"{:.1}\">max {}</text>",
            strip_top + 2.0,
            X1 - X0,
            STRIP - 4.0,
            X0 - 8.0,
            strip_top + 13.0,
            X0 - 8.0,
            strip_top + 25.0,
            crate::style::human(max)
        );
        for r in &lane.requests {
            let x = scale.x(r.sent);
            let h = (r.latency.as_secs_f64() / max.as_secs_f64() * room).max(3.0);
            let class = r.outcome.class();
            let how = match r.outcome {
                MarkOutcome::Answered => "answered".to_owned(),
                MarkOutcome::Retried => format!("answered after {} tries", r.tries),
                MarkOutcome::Failed => format!("failed after {} tries", r.tries),
            };
            // From the send to the outcome, so a long wait reads as a block, not a gap.
            let w = (scale.x(r.sent + r.latency) - x).max(2.0);
            let _ = write!(
                out,
                "<rect class=\"req {class}\" data-seq=\"{}\" x=\"{:.1}\" y=\"{:.1}\" \
                 width=\"{w:.1}\" height=\"{h:.1}\"><title>{} request {}: {how}, {} ms, sent at {}\
                 </title></rect>",
                r.seq,
                x - 1.0,
                floor - h,
                esc(&lane.name),
                r.seq,
                r.latency.as_millis(),
                secs(r.sent)
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</g>");
}

fn steps(out: &mut String, t: &Timeline, scale: &Scale, lanes_bottom: f64) {
    let badge_y = 30.0;
    let mut last_badge = f64::NEG_INFINITY;
    for m in &t.markers {
        let x = scale.x(m.at);
        // Badges of steps close in time sit side by side, joined to their line.
        let bx = x.max(last_badge + 2.0 * BADGE_R + 1.0);
        last_badge = bx;
        let class = match m.kind {
            MarkerKind::Start => "start",
            MarkerKind::Fault => "fault",
            MarkerKind::Network => "network",
            MarkerKind::Note => "note",
        };
        let note = match &m.note {
            Some(n) if m.kind != MarkerKind::Note => format!(" — {n}"),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<g class=\"step {class}\" data-step=\"{}\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" \
             y1=\"{:.1}\" y2=\"{lanes_bottom:.1}\"/><line x1=\"{x:.1}\" x2=\"{bx:.1}\" \
             y1=\"{:.1}\" y2=\"{badge_y:.1}\"/><circle cx=\"{bx:.1}\" cy=\"{badge_y:.1}\" r=\"{BADGE_R}\"/>\
             <text x=\"{bx:.1}\" y=\"{:.1}\">{}</text><title>step {} at {}: {}{}</title></g>",
            m.step,
            HEADER - 4.0,
            HEADER - 4.0,
            badge_y + 3.0,
            m.step,
            m.step,
            secs(m.at),
            esc(&m.label),
            esc(&note)
        );
    }
}

/// Escapes text for HTML/XML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Not allowed in XML 1.0 (the page is also well-formed XML).
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Span, SpanKind, Timeline};

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(10.0), 1.0);
        assert_eq!(tick_step(45.0), 5.0);
        assert_eq!(tick_step(2.0), 0.2);
        assert_eq!(tick_step(120.0), 20.0);
    }

    #[test]
    fn one_element_per_lane_step_request_and_measure() {
        let t = Timeline::from_report(&crate::timeline::tests::sample());
        let svg = render(&t);
        assert_eq!(count(&svg, "<g class=\"lane\""), 2);
        assert_eq!(count(&svg, "<g class=\"step "), 5);
        assert_eq!(count(&svg, "class=\"req answered\""), 1);
        assert_eq!(count(&svg, "class=\"req retried\""), 1);
        assert_eq!(count(&svg, "class=\"req failed\""), 1);
        assert_eq!(count(&svg, "<g class=\"measure\""), 1);
        assert_eq!(count(&svg, "<g class=\"measure never\""), 1);
        assert_eq!(count(&svg, "class=\"seg stopped\""), 1);
        assert_eq!(count(&svg, "class=\"restart\""), 1);
        assert_eq!(count(&svg, "class=\"end killed\""), 1);
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("href"));
    }

    #[test]
    fn spans_and_hosts_are_drawn_when_present() {
        let mut t = Timeline::from_report(&crate::timeline::tests::sample());
        t.lanes[0].host = Some("host1".into());
        t.lanes[1].host = Some("host2".into());
        t.spans.push(Span {
            from: Duration::from_millis(200),
            to: None,
            kind: SpanKind::Partition,
            label: "partition host1".into(),
            lanes: vec![0, 1],
        });
        let svg = render(&t);
        assert_eq!(count(&svg, "class=\"span partition\""), 1);
        assert_eq!(
            svg.split("class=\"span partition\"")
                .nth(1)
                .unwrap()
                .split("</g>")
                .next()
                .unwrap()
                .matches("<rect")
                .count(),
            2
        );
        assert_eq!(count(&svg, "class=\"host\""), 2);
    }

    #[test]
    fn an_empty_timeline_still_renders() {
        let t = Timeline {
            scenario: "empty".into(),
            end: Duration::ZERO,
            lanes: Vec::new(),
            markers: Vec::new(),
            spans: Vec::new(),
            brackets: Vec::new(),
            roles: Default::default(),
        };
        let svg = render(&t);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
