//! Draws the roles of a [`Timeline`] (module [`crate::roles`]): a row of coloured, labelled
//! bands above a lane's process bar for its own role (a Binary Star server's state and epoch),
//! one thin row under the bar per view of it by another process (a broker's view of a worker)
//! or of another process by it (a Freelance client's view of a server), a thin row of a worker's
//! own busy time (first under its bar), the risk marks over the lanes, and the legend of
//! whatever of these the picture has.

use super::{esc, secs, Row, Scale, HEADER, X0, X1};
use crate::roles::{Band, Risk, RiskKind, Role, Track, View};
use crate::timeline::Timeline;
use std::fmt::Write as _;

/// Height of the own-role row above a lane's bar.
pub(super) const OWN_ROW: f64 = 14.0;
/// Height of one view row under a lane's bar.
const VIEW_ROW: f64 = 9.0;
/// Height of one row of Titanic requests.
const REQUEST_ROW: f64 = 4.0;
const OWN_BAND: f64 = 12.0;
const VIEW_BAND: f64 = 6.0;
const LEGEND_ROW: f64 = 20.0;

pub(super) const STYLE: &str = "
.role rect { stroke: #fff; stroke-width: .5; } .role text { font-size: 9px; pointer-events: none; }
.role.waiting rect { fill: #f3dc8c; } .role.waiting text { fill: #5a4a00; }
.role.active rect { fill: #1f5fa8; } .role.active text { fill: #fff; font-weight: 700; }
.role.passive rect { fill: #b8cce4; } .role.passive text { fill: #1b3350; }
.role.registered rect, .role.alive rect { fill: #3d9a5b; } .role.left rect { fill: #aaa; }
.role.purged rect, .role.dead rect { fill: #d9534f; }
.role.stored rect { fill: #8e6bbf; } .role.answered-ti rect { fill: #2e8b57; }
.role.busy rect { fill: #e8912d; }
.view-label { fill: #888; font-size: 8px; text-anchor: end; }
.risk rect { fill: #d62728; fill-opacity: .16; stroke: #d62728; stroke-width: 1.2; stroke-dasharray: 4 2; }
.risk text { fill: #b01c1c; font-size: 9px; font-weight: 700; }
.risk.run-twice path { fill: #d62728; stroke: #fff; stroke-width: .8; }
.legend text { fill: #555; font-size: 10px; }
";

/// Whether lane `i` has an own-role row, and the height of its view rows.
pub(super) fn rows_of(t: &Timeline, i: usize) -> (bool, f64) {
    let mine = t.roles.tracks.iter().filter(|tr| tr.lane == i);
    let own = mine.clone().any(|tr| tr.view == View::Own);
    (own, mine.map(|tr| row_of(&tr.view).0).sum())
}

/// A view row's height and its band's: Titanic's request rows, one per request under way at
/// once, are thinner (a load of 20 at a time makes 20 rows).
fn row_of(view: &View) -> (f64, f64) {
    match view {
        View::Own => (0.0, 0.0),
        View::Requests(_) => (REQUEST_ROW, REQUEST_ROW - 1.0),
        _ => (VIEW_ROW, VIEW_BAND),
    }
}

/// Whose view a track is, as the row label and hover text say it.
fn view_text(track: &Track) -> String {
    match &track.view {
        View::Own => "own state".to_owned(),
        View::SeenBy(p) => format!("as {p} sees it"),
        View::Sees(endpoint) => format!("server {endpoint} as this client sees it"),
        View::Requests(_) => "its Titanic requests".to_owned(),
        View::Executions => "its own executions".to_owned(),
    }
}

/// The short label of a view row, left of the plot.
fn view_label(track: &Track) -> String {
    match &track.view {
        View::Own => String::new(),
        View::SeenBy(p) => format!("by {p}"),
        // The port is what tells the servers of one host apart.
        View::Sees(endpoint) => format!(
            "srv {}",
            endpoint
                .rsplit_once(':')
                .map_or(endpoint.as_str(), |(_, port)| port)
        ),
        View::Requests(0) => "titanic".to_owned(),
        View::Requests(_) => String::new(),
        View::Executions => "busy".to_owned(),
    }
}

/// The bands of lane `row.lane`: its own role above the bar, the views under it.
pub(super) fn lane(out: &mut String, t: &Timeline, scale: &Scale, row: &Row) {
    let name = &t.lanes[row.lane].name;
    let mut view_y = row.views_top;
    for track in t.roles.tracks.iter().filter(|tr| tr.lane == row.lane) {
        let (y, h) = if track.view == View::Own {
            (row.top + (OWN_ROW - OWN_BAND) / 2.0 + 1.0, OWN_BAND)
        } else {
            let (row, band) = row_of(&track.view);
            let y = view_y + (row - band) / 2.0;
            let label = view_label(track);
            if !label.is_empty() {
                let _ = write!(
                    out,
                    "<text class=\"view-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    X0 - 8.0,
                    view_y + 7.0,
                    esc(&label)
                );
            }
            view_y += row;
            (y, band)
        };
        let _ = write!(
            out,
            "<g class=\"view\" data-view=\"{}\">",
            esc(&view_text(track))
        );
        for band in &track.bands {
            draw_band(out, scale, name, track, band, y, h);
        }
        out.push_str("</g>");
    }
}

fn draw_band(
    out: &mut String,
    scale: &Scale,
    name: &str,
    track: &Track,
    band: &Band,
    y: f64,
    h: f64,
) {
    let x = scale.x(band.from);
    let w = (scale.x(band.to) - x).max(1.0);
    let label = band.role.label();
    let _ = write!(
        out,
        "<g class=\"role {}\" data-role=\"{}\" data-from-ms=\"{}\" data-to-ms=\"{}\">\
         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"/>",
        band.role.class(),
        esc(&label),
        band.from.as_millis(),
        band.to.as_millis()
    );
    // The label only where it fits (about 5.5 px a character at 9 px).
    if h >= OWN_BAND && w > 5.5 * label.len() as f64 + 6.0 {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 3.0,
            y + h - 3.0,
            esc(&label)
        );
    }
    let _ = write!(
        out,
        "<title>{name}: {} ({}) from {} to {}\nbegan: {}\nended: {}</title></g>",
        esc(&band.role.describe()),
        esc(&view_text(track)),
        secs(band.from),
        secs(band.to),
        esc(&band.began.describe()),
        esc(&band.ended.describe()),
    );
}

fn what(risk: &Risk) -> &'static str {
    match risk.kind {
        RiskKind::DualActive => "two servers ACTIVE at once",
        RiskKind::RunTwice => "a request executed a second time",
        RiskKind::NoServer => "the client had no live server",
    }
}

/// The risk marks, over the lanes they concern.
pub(super) fn risks(out: &mut String, t: &Timeline, scale: &Scale, rows: &[Row]) {
    for risk in &t.roles.risks {
        let (first, then) = match risk.kind {
            RiskKind::RunTwice => ("first run", "run again"),
            _ => ("began", "ended"),
        };
        let names: Vec<&str> = risk
            .lanes
            .iter()
            .filter_map(|&l| t.lanes.get(l).map(|l| l.name.as_str()))
            .collect();
        let when = if risk.from == risk.to {
            format!("at {}", secs(risk.from))
        } else {
            format!("from {} to {}", secs(risk.from), secs(risk.to))
        };
        let title = format!(
            "{} ({}) {when}\n{first}: {}\n{then}: {}",
            what(risk),
            names.join(", "),
            risk.began.describe(),
            risk.ended.describe()
        );
        let _ = write!(
            out,
            "<g class=\"risk {}\" data-from-ms=\"{}\" data-to-ms=\"{}\">",
            risk.kind.class(),
            risk.from.as_millis(),
            risk.to.as_millis()
        );
        let x = scale.x(risk.from);
        let x2 = scale.x(risk.to);
        let concerned = || rows.iter().filter(|r| risk.lanes.contains(&r.lane));
        match risk.kind {
            RiskKind::RunTwice => {
                if let Some(row) = rows.iter().find(|r| Some(&r.lane) == risk.lanes.first()) {
                    let c = row.centre;
                    let _ = write!(out, "<path d=\"M{x:.1} {:.1}l5 6l-5 6l-5 -6z\"/>", c - 6.0);
                }
            }
            RiskKind::DualActive | RiskKind::NoServer => {
                for row in concerned() {
                    let bottom = row.centre + 7.0;
                    let _ = write!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                        row.top,
                        (x2 - x).max(2.0),
                        bottom - row.top
                    );
                }
                if let Some(row) = concerned().next() {
                    let label = match risk.kind {
                        RiskKind::DualActive => "2 ACTIVE",
                        _ => "no server",
                    };
                    // Just above the box where a host's name row leaves room, otherwise
                    // under the step badges at the top; right-aligned near the right edge.
                    let (tx, anchor) = if x + 50.0 > X1 {
                        (x2, "end")
                    } else {
                        (x, "start")
                    };
                    let ty = if row.host_above {
                        row.top - 2.0
                    } else {
                        HEADER - 1.0
                    };
                    let _ = write!(
                        out,
                        "<text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"{anchor}\">{label}</text>"
                    );
                }
            }
        }
        let _ = write!(out, "<title>{}</title></g>", esc(&title));
    }
}

/// The roles and risks the picture has, one legend entry each, in a fixed order.
fn entries(t: &Timeline) -> Vec<(String, &'static str, &'static str)> {
    let mut roles: Vec<(u8, Role)> = Vec::new();
    for band in t.roles.tracks.iter().flat_map(|tr| &tr.bands) {
        let order = match band.role {
            Role::Pair { state, .. } => state as u8,
            Role::Worker(s) => 10 + s as u8,
            Role::Server(s) => 20 + s as u8,
            Role::Titanic(s) => 30 + s as u8,
            Role::Busy { .. } => 40,
        };
        if !roles.iter().any(|(o, _)| *o == order) {
            roles.push((order, band.role));
        }
    }
    roles.sort_by_key(|(o, _)| *o);
    let mut out: Vec<(String, &'static str, &'static str)> = roles
        .into_iter()
        .map(|(_, role)| {
            let text = match role {
                Role::Pair { .. } => match role.class() {
                    "waiting" => "waiting for the peer (PRIMARY/BACKUP)",
                    "active" => "ACTIVE (eN: epoch)",
                    _ => "PASSIVE",
                },
                Role::Worker(_) => match role.class() {
                    "registered" => "worker registered (by broker)",
                    "purged" => "worker purged (by broker)",
                    _ => "worker left (DISCONNECT)",
                },
                Role::Server(_) => match role.class() {
                    "alive" => "server alive (to client)",
                    _ => "server dead (to client)",
                },
                Role::Titanic(_) => match role.class() {
                    "stored" => "Titanic request stored",
                    _ => "answered, not closed",
                },
                Role::Busy { .. } => "worker busy (its own lines)",
            };
            (text.to_owned(), "role", role.class())
        })
        .collect();
    for kind in [RiskKind::DualActive, RiskKind::RunTwice, RiskKind::NoServer] {
        if t.roles.risks.iter().any(|r| r.kind == kind) {
            let text = match kind {
                RiskKind::DualActive => "at risk: two ACTIVE",
                RiskKind::RunTwice => "at risk: run twice",
                RiskKind::NoServer => "at risk: no server",
            };
            out.push((text.to_owned(), "risk", kind.class()));
        }
    }
    out
}

/// Height of the legend (none without roles).
pub(super) fn legend_height(t: &Timeline) -> f64 {
    if entries(t).is_empty() {
        0.0
    } else {
        LEGEND_ROW
    }
}

/// The legend: one swatch per role class and risk kind present, left to right.
pub(super) fn legend(out: &mut String, t: &Timeline, top: f64) {
    let items = entries(t);
    if items.is_empty() {
        return;
    }
    let y = top + 4.0;
    let _ = write!(
        out,
        "<g class=\"legend\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">roles</text>",
        X0 - 8.0,
        y + 9.0
    );
    let mut x = X0;
    for (text, group, class) in items {
        let swatch = match (group, class) {
            ("risk", "run-twice") => format!(
                "<g class=\"risk {class}\"><path d=\"M{:.1} {y:.1}l5 6l-5 6l-5 -6z\"/></g>",
                x + 7.0
            ),
            ("risk", _) => format!(
                "<g class=\"risk {class}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"14\" height=\"11\"/></g>"
            ),
            _ => format!(
                "<g class=\"role {class}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"14\" height=\"11\"/></g>"
            ),
        };
        out.push_str(&swatch);
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 18.0,
            y + 9.0,
            esc(&text)
        );
        x += 18.0 + 5.6 * text.len() as f64 + 12.0;
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use crate::roles::tests::{binary_star_partition, busy_worker};
    use crate::timeline::Timeline;

    #[test]
    fn each_band_is_drawn_with_its_times_label_and_lines_and_the_risk_over_both_lanes() {
        let t = Timeline::from_report(&binary_star_partition());
        let svg = crate::svg::render(&t);
        // 3 bands per server (the legend's swatches carry no data-role).
        assert_eq!(svg.matches("data-role=").count(), 6);
        assert!(svg.contains(
            "<g class=\"role active\" data-role=\"ACTIVE e2\" data-from-ms=\"2700\" \
             data-to-ms=\"8000\">"
        ));
        assert!(
            svg.contains(">ACTIVE e1</text>"),
            "label drawn where it fits"
        );
        assert!(svg.contains("began: backup at 2.700 s: 22:00:02 I: state ACTIVE - failover"));
        assert!(svg.contains("ended: primary at 5.090 s: 22:00:05 I: state PASSIVE - dual"));
        let risk = svg
            .split("<g class=\"risk dual-active\" data-from-ms=\"2700\" data-to-ms=\"5090\">")
            .nth(1)
            .expect("the dual-active mark");
        let risk = &risk[..risk.find("</g>").unwrap()];
        assert_eq!(risk.matches("<rect").count(), 2, "over both servers");
        assert!(risk.contains("two servers ACTIVE at once (primary, backup)"));
        let legend = &svg[svg.find("<g class=\"legend\"").expect("legend")..];
        for entry in [
            "waiting for the peer",
            "ACTIVE (eN: epoch)",
            "PASSIVE",
            "two ACTIVE",
        ] {
            assert!(legend.contains(entry), "{entry}");
        }
    }

    #[test]
    fn a_workers_busy_time_is_a_thin_row_with_its_label_key_and_request_count() {
        let t = Timeline::from_report(&busy_worker());
        let svg = crate::svg::render(&t);
        assert!(svg.contains(">busy</text>"), "the row's label");
        assert!(svg.contains(
            "<g class=\"role busy\" data-role=\"busy\" data-from-ms=\"100\" data-to-ms=\"600\">"
        ));
        assert_eq!(svg.matches("<g class=\"role busy\" data-role=").count(), 5);
        assert!(svg.contains(
            "worker: worker busy with 3 requests (its own executions) from 0.100 s to 0.600 s\n\
             began: worker at 0.100 s: I: (echo) executing request id=a-1\n\
             ended: worker at 0.600 s: I: (echo) executed request id=a-3 count=1</title>"
        ));
        assert!(svg.contains("ended: worker at 3.500 s: killed (SIGKILL)"));
        assert!(svg.contains(".role.busy rect {"), "its own colour");
        let legend = &svg[svg.find("<g class=\"legend\"").expect("legend")..];
        assert!(legend.contains("<g class=\"role busy\"><rect"));
        assert!(legend.contains("worker busy (its own lines)"));
        assert!(legend.contains("worker registered (by broker)"));
    }

    #[test]
    fn a_timeline_without_roles_has_no_legend_and_keeps_its_height() {
        let t = Timeline::from_report(&crate::timeline::tests::sample());
        assert!(t.roles.tracks.is_empty());
        let svg = crate::svg::render(&t);
        assert!(!svg.contains("class=\"legend\""));
        assert!(!svg.contains("data-role="));
    }
}
