//! `replay history --report FILE.html`: one self-contained HTML page of a history replay, for an
//! operator to look at rather than read: the totals, a timeline of what each route did, the counts
//! per route and, when two rule sets were compared, what the second does differently.
//!
//! The page loads nothing (no scripts, fonts or style sheets from anywhere; its
//! Content-Security-Policy forbids it) and draws its charts as inline SVG. Every text that comes
//! from the history or the command line is escaped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use crate::history::{Counts, Difference, LineError, Summary, Suppressed, Transition};

/// A replay under one rule set.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The rules, as the operator named them (a file, or the default).
    pub rules: &'a str,
    pub summary: &'a Summary,
}

/// What one report shows.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The history file, as given.
    pub history: &'a str,
    pub generated_at: DateTime<Utc>,
    pub a: Run<'a>,
    /// With `--compare`: the second rule set's replay and the transitions the two treat differently.
    pub compared: Option<(Run<'a>, &'a [Difference])>,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("ReportNotWritten: cannot write the report to {}: {source}", path.display())]
    NotWritten { path: PathBuf, source: std::io::Error },
}

/// Refuses, before anything runs, a report path whose folder does not exist.
pub fn check_destination(path: &Path) -> Result<(), ReportError> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if folder.is_dir() {
        return Ok(());
    }
    let source = std::io::Error::new(std::io::ErrorKind::NotFound, format!("no folder {}", folder.display()));
    Err(ReportError::NotWritten { path: path.to_owned(), source })
}

/// Writes `html` to `path`.
pub fn write(path: &Path, html: &str) -> Result<(), ReportError> {
    std::fs::write(path, html).map_err(|source| ReportError::NotWritten { path: path.to_owned(), source })
}

/// Text made safe for HTML and SVG, in element content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The most rows a table of transitions lists; all of them are in the JSON on stdout.
const MAX_ROWS: usize = 1000;

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let title = match report.compared {
        Some(_) => format!("Replay of {}: two rule sets compared", report.history),
        None => format!("Replay of {}", report.history),
    };
    page.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"replay history --report\">\n<title>{}</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n",
        escape(&title)
    ));
    page.push_str(&header(report));
    page.push_str("<main>\n");
    match report.compared {
        None => page.push_str(&section("totals", "Totals", &cards(report.a.summary))),
        Some((b, _)) => {
            let body = format!("{}{}", totals_side_by_side(&report.a, &b), comparison_chart(&report.a, &b));
            page.push_str(&section("totals", "Totals, A and B", &body));
        }
    }
    let timelines = match report.compared {
        None => timeline(report.a.summary, None),
        Some((b, _)) => format!(
            "{}{}",
            timeline(report.a.summary, Some(&format!("A: {}", report.a.rules))),
            timeline(b.summary, Some(&format!("B: {}", b.rules)))
        ),
    };
    page.push_str(&section("timeline", "Timeline", &timelines));
    if report.compared.is_none() {
        page.push_str(&section("paged", "What paged", &paged_table(report.a.summary)));
    }
    let routes = match report.compared {
        None => route_table(report.a.summary),
        Some((b, _)) => format!(
            "<h3>A: {}</h3>\n{}<h3>B: {}</h3>\n{}",
            escape(report.a.rules),
            route_table(report.a.summary),
            escape(b.rules),
            route_table(b.summary)
        ),
    };
    page.push_str(&section("routes", "By route", &routes));
    if let Some((_, differences)) = report.compared {
        let heading = match differences.len() {
            1 => "1 transition differs".to_owned(),
            n => format!("{n} transitions differ"),
        };
        page.push_str(&section("differences", &heading, &differences_table(differences)));
    }
    let runs: Vec<(&str, &Summary)> = match report.compared {
        None => vec![("", report.a.summary)],
        Some((b, _)) => vec![("A: ", report.a.summary), ("B: ", b.summary)],
    };
    let problems = problems(&runs);
    if !problems.is_empty() {
        page.push_str(&section("errors", "Lines not handled as alarms", &problems));
    }
    page.push_str(
        "</main>\n<footer>Written by <code>replay history --report</code>. Times are UTC. Counts come from \
         the summary <code>replay history</code> prints; the timeline places what each transition led to at the \
         transition's time.</footer>\n</body>\n</html>\n",
    );
    page
}

const STYLE: &str = r#"
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --panel: #f5f7fa; --a: #3b5bdb; --b: #e8590c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif; color: var(--ink); background: #fff; }
header { padding: 24px 40px 18px; background: #102a43; color: #f0f4f8; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 650; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 14px 0 0; font-size: 14px; }
header dt { color: #9fb3c8; }
header dd { margin: 0; }
header code { color: #f0f4f8; }
.tag { display: inline-block; min-width: 20px; padding: 0 6px; margin-right: 6px; border-radius: 4px; font-weight: 700; font-size: 12px; text-align: center; color: #fff; }
.tag.a { background: var(--a); } .tag.b { background: var(--b); }
main { padding: 8px 40px 24px; }
section { margin: 22px 0 30px; }
h2 { font-size: 19px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; color: var(--muted); font-weight: 600; }
code { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 0.92em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(132px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-top: 4px solid var(--accent, #9fb3c8); border-radius: 6px; padding: 10px 14px 12px; background: #fff; }
.card .label { font-size: 13px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.card .value { font-size: 30px; font-weight: 700; line-height: 1.2; font-variant-numeric: tabular-nums; }
.card .detail { font-size: 13px; color: var(--muted); }
.reasons { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin-top: 12px; font-size: 14px; }
.reasons .why { color: var(--muted); margin-right: 4px; }
.reason { border: 1px solid var(--line); border-left: 4px solid #868e96; border-radius: 4px; padding: 3px 12px; background: var(--panel); }
.reason b { font-size: 17px; margin-right: 6px; font-variant-numeric: tabular-nums; }
.reason.none { border-left-color: var(--line); color: #9aa5b1; background: #fff; }
.card.alert { background: #fff5f5; }
table.grid { border-collapse: collapse; font-size: 14px; font-variant-numeric: tabular-nums; }
table.grid th, table.grid td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
table.grid th { font-size: 12px; text-transform: uppercase; letter-spacing: 0.03em; color: var(--muted); font-weight: 600; background: var(--panel); }
table.grid th:first-child, table.grid td:first-child, table.grid th.text { text-align: left; }
table.grid td.zero { color: #bcccdc; }
table.grid td.text { text-align: left; white-space: normal; }
table.grid tr.changed td { background: #fff9db; }
table.grid td.up, table.grid td.down { font-weight: 700; }
.side-by-side { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.chart { max-width: 100%; }
svg.timeline { width: 100%; }
svg { display: block; max-width: 100%; height: auto; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif; }
.pill { display: inline-block; padding: 0 7px; margin: 1px 2px 1px 0; border-radius: 9px; font-size: 12px; line-height: 18px; background: #e4e7eb; color: var(--ink); }
.pill.page { background: #c2255c; color: #fff; } .pill.restart { background: #1c7ed6; color: #fff; }
.pill.notify { background: #f59f00; color: #1f2933; } .pill.recovery { background: #1098ad; color: #fff; }
.pill.quiet { background: #868e96; color: #fff; } .pill.ignored { background: #e9ecef; color: #616e7c; }
.pill.error { background: #6b1e2f; color: #fff; }
.state { font-weight: 700; font-size: 12px; } .state.ALARM { color: #e03131; } .state.OK { color: #2f9e44; }
.route { color: var(--muted); }
.note { color: var(--muted); font-size: 14px; margin: 6px 0 10px; }
footer { padding: 14px 40px 30px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); }
"#;

fn section(id: &str, heading: &str, body: &str) -> String {
    format!("<section id=\"{id}\">\n<h2>{}</h2>\n{body}</section>\n", escape(heading))
}

fn header(report: &Report) -> String {
    let summary = report.a.summary;
    let rules = match report.compared {
        None => format!("<code>{}</code>", escape(report.a.rules)),
        Some((b, _)) => format!(
            "<span class=\"tag a\">A</span><code>{}</code> &nbsp; <span class=\"tag b\">B</span><code>{}</code>",
            escape(report.a.rules),
            escape(b.rules)
        ),
    };
    let range = match (summary.from, summary.to) {
        (Some(from), Some(to)) => {
            let end = if from.date_naive() == to.date_naive() {
                to.format("%H:%M:%S").to_string()
            } else {
                to.format("%Y-%m-%d %H:%M:%S").to_string()
            };
            format!("{} – {end} UTC ({})", from.format("%Y-%m-%d %H:%M:%S"), span_words(to - from))
        }
        _ => "no transition times in the file".to_owned(),
    };
    format!(
        "<header>\n<h1>Alarm history replay: {}</h1>\n<dl>\n\
         <dt>History</dt><dd><code>{}</code>, {} event(s)</dd>\n<dt>Rules</dt><dd>{rules}</dd>\n\
         <dt>Time range</dt><dd>{range}</dd>\n<dt>Generated</dt><dd>{} UTC</dd>\n</dl>\n</header>\n",
        escape(file_name(report.history)),
        escape(report.history),
        summary.totals.events,
        report.generated_at.format("%Y-%m-%d %H:%M:%S")
    )
}

/// The last part of a path, for the title.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).find(|part| !part.is_empty()).unwrap_or(path)
}

/// A duration in the words an operator uses: "27 min", "2 h 28 min", "3 d 4 h".
fn span_words(span: Duration) -> String {
    let exact = span.num_seconds().max(0);
    // To the nearest minute from a minute on: 26 min 59 s is "27 min".
    let seconds = if exact < 60 { exact } else { (exact + 30) / 60 * 60 };
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// The colours of what a transition led to, shared by the cards, the timeline and the pills.
const COLOUR_ALARM: &str = "#e03131";
const COLOUR_OK: &str = "#2f9e44";
const COLOUR_RESTART: &str = "#1c7ed6";
const COLOUR_PAGE: &str = "#c2255c";
const COLOUR_NOTIFY: &str = "#f59f00";
const COLOUR_RECOVERY: &str = "#1098ad";
const COLOUR_QUIET: &str = "#868e96";
const COLOUR_IGNORED: &str = "#ced4da";
const COLOUR_ERROR: &str = "#6b1e2f";

fn kept_quiet(counts: &Counts) -> u64 {
    let s = &counts.suppressed;
    s.grouped + s.silenced + s.maintenance + s.inhibited + s.flapping
}

fn states(summary: &Summary) -> (usize, usize) {
    let count = |state: &str| summary.transitions.iter().filter(|t| t.state == state).count();
    (count("ALARM"), count("OK"))
}

fn card(label: &str, value: u64, detail: &str, accent: &str) -> String {
    format!(
        "<div class=\"card\" style=\"--accent: {accent}\"><div class=\"label\">{label}</div>\
         <div class=\"value\">{value}</div><div class=\"detail\">{detail}</div></div>\n"
    )
}

fn cards(summary: &Summary) -> String {
    let t = &summary.totals;
    let (alarms, oks) = states(summary);
    let s = &t.suppressed;
    let mut out = String::from("<div class=\"cards\">\n");
    out.push_str(&card("Events", t.events, &format!("{alarms} ALARM · {oks} OK"), "#486581"));
    out.push_str(&card("Executions", t.executions, "first-response runs", "#627d98"));
    out.push_str(&card("Restarts", t.restarts, &format!("{} verified", t.verified), COLOUR_RESTART));
    out.push_str(&card(
        "Pages",
        t.pages,
        &format!("{} incidents · {} war rooms", t.incidents, t.war_rooms),
        COLOUR_PAGE,
    ));
    out.push_str(&card("Notifications", t.notifications, "for information", COLOUR_NOTIFY));
    out.push_str(&card("Recoveries", t.recoveries, "recovery notices", COLOUR_RECOVERY));
    out.push_str(&card("Kept quiet", kept_quiet(t), "pages held back, by the reasons below", COLOUR_QUIET));
    out.push_str(&card("Ignored", t.ignored, "routed to ignore, or no change", COLOUR_IGNORED));
    let unhandled = summary.unhandled.len();
    let errors = format!(
        "<div class=\"card{}\" style=\"--accent: {COLOUR_ERROR}\"><div class=\"label\">Errors</div>\
         <div class=\"value\">{}</div><div class=\"detail\">{unhandled} unhandled</div></div>\n",
        if unhandled > 0 { " alert" } else { "" },
        summary.errors.len() + unhandled
    );
    out.push_str(&errors);
    out.push_str("</div>\n<div class=\"reasons\" id=\"kept-quiet\"><span class=\"why\">Kept quiet by</span>");
    for (reason, n) in reasons(s) {
        let class = if n == 0 { "reason none" } else { "reason" };
        out.push_str(&format!("<span class=\"{class}\"><b>{n}</b>{reason}</span>"));
    }
    out.push_str("</div>\n");
    out
}

/// The reasons a page was kept quiet, with their counts.
fn reasons(s: &Suppressed) -> [(&'static str, u64); 5] {
    [
        ("grouped", s.grouped),
        ("silenced", s.silenced),
        ("maintenance", s.maintenance),
        ("inhibited", s.inhibited),
        ("flapping", s.flapping),
    ]
}

/// The rows both rule sets' totals are compared on.
fn total_rows(summary: &Summary) -> Vec<(&'static str, u64)> {
    let t = &summary.totals;
    let s = &t.suppressed;
    vec![
        ("events", t.events),
        ("executions", t.executions),
        ("restarts", t.restarts),
        ("restarts verified", t.verified),
        ("pages", t.pages),
        ("notifications", t.notifications),
        ("incidents", t.incidents),
        ("war rooms", t.war_rooms),
        ("recoveries", t.recoveries),
        ("ignored", t.ignored),
        ("kept quiet: grouped", s.grouped),
        ("kept quiet: silenced", s.silenced),
        ("kept quiet: maintenance", s.maintenance),
        ("kept quiet: inhibited", s.inhibited),
        ("kept quiet: flapping", s.flapping),
        ("errors", summary.errors.len() as u64),
        ("unhandled", summary.unhandled.len() as u64),
    ]
}

fn totals_side_by_side(a: &Run, b: &Run) -> String {
    let mut out = String::from(
        "<div class=\"side-by-side\">\n<table class=\"grid\"><thead><tr><th></th>\
         <th><span class=\"tag a\">A</span></th><th><span class=\"tag b\">B</span></th><th>B − A</th></tr></thead><tbody>\n",
    );
    for ((name, x), (_, y)) in total_rows(a.summary).into_iter().zip(total_rows(b.summary)) {
        let (class, change) = match y.cmp(&x) {
            std::cmp::Ordering::Equal => ("", String::new()),
            std::cmp::Ordering::Greater => (" class=\"changed\"", format!("<td class=\"up\">+{}</td>", y - x)),
            std::cmp::Ordering::Less => (" class=\"changed\"", format!("<td class=\"down\">−{}</td>", x - y)),
        };
        let change = if change.is_empty() { "<td class=\"zero\">·</td>".to_owned() } else { change };
        out.push_str(&format!("<tr{class}><td>{name}</td>{}{}{change}</tr>\n", number_cell(x), number_cell(y)));
    }
    out.push_str("</tbody></table>\n");
    out
}

fn number_cell(n: u64) -> String {
    if n == 0 { "<td class=\"zero\">0</td>".to_owned() } else { format!("<td>{n}</td>") }
}

/// Horizontal bars of A and B for what people notice; each measure has its own scale.
fn comparison_chart(a: &Run, b: &Run) -> String {
    let (x, y) = (&a.summary.totals, &b.summary.totals);
    let measures = [
        ("pages", x.pages, y.pages),
        ("restarts", x.restarts, y.restarts),
        ("notifications", x.notifications, y.notifications),
        ("kept quiet", kept_quiet(x), kept_quiet(y)),
    ];
    let (label_width, bar_width, bar_height, gap) = (130.0, 420.0, 22.0, 26.0);
    let group = bar_height * 2.0 + 6.0 + gap;
    let height = 60.0 + group * measures.len() as f64;
    let width = label_width + bar_width + 70.0;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"comparison-chart\" role=\"img\" aria-label=\"A and B compared\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>Pages, restarts, notifications and kept quiet under A and B</title>\n"
    );
    svg.push_str(&format!(
        "<rect x=\"{label_width}\" y=\"6\" width=\"14\" height=\"14\" rx=\"2\" fill=\"#3b5bdb\"/>\
         <text x=\"{}\" y=\"18\" font-size=\"13\">A</text>\
         <rect x=\"{}\" y=\"6\" width=\"14\" height=\"14\" rx=\"2\" fill=\"#e8590c\"/>\
         <text x=\"{}\" y=\"18\" font-size=\"13\">B</text>\n",
        label_width + 20.0,
        label_width + 50.0,
        label_width + 70.0
    ));
    for (i, (name, a_value, b_value)) in measures.iter().enumerate() {
        let top = 36.0 + group * i as f64;
        let most = (*a_value).max(*b_value).max(1) as f64;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"14\" text-anchor=\"end\" fill=\"#1f2933\">{name}</text>\n",
            label_width - 12.0,
            top + bar_height + 7.0
        ));
        for (j, (side, value, colour)) in [("A", a_value, "#3b5bdb"), ("B", b_value, "#e8590c")].iter().enumerate() {
            let y = top + j as f64 * (bar_height + 6.0);
            let w = (**value as f64 / most * bar_width).max(if **value > 0 { 3.0 } else { 0.0 });
            svg.push_str(&format!(
                "<g><title>{name} under {side}: {value}</title>\
                 <rect x=\"{label_width}\" y=\"{y}\" width=\"{bar_width}\" height=\"{bar_height}\" fill=\"#f1f3f5\"/>\
                 <rect x=\"{label_width}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar_height}\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"600\" fill=\"#1f2933\">{value}</text></g>\n",
                label_width + w + 6.0,
                y + bar_height - 6.0
            ));
        }
    }
    svg.push_str(&format!(
        "<text x=\"{label_width}\" y=\"{:.1}\" font-size=\"12\" fill=\"#616e7c\">Each measure on its own scale: \
         the longer bar is the larger of A and B.</text>\n</svg>\n</div>\n",
        height - 8.0
    ));
    svg
}

fn route_table(summary: &Summary) -> String {
    if summary.by_route.is_empty() {
        return "<p class=\"note\">No event reached a route.</p>\n".to_owned();
    }
    let mut out = String::from(
        "<table class=\"grid\" id=\"by-route\"><thead><tr><th>route</th><th>events</th><th>executions</th>\
         <th>restarts</th><th>verified</th><th>pages</th><th>notifications</th><th>recoveries</th>\
         <th>war rooms</th><th>incidents</th><th>ignored</th><th>kept quiet</th><th>why kept quiet</th></tr></thead><tbody>\n",
    );
    for (route, c) in &summary.by_route {
        let why: Vec<String> =
            reasons(&c.suppressed).iter().filter(|(_, n)| *n > 0).map(|(reason, n)| format!("{n} {reason}")).collect();
        let cells: String = [
            c.events,
            c.executions,
            c.restarts,
            c.verified,
            c.pages,
            c.notifications,
            c.recoveries,
            c.war_rooms,
            c.incidents,
            c.ignored,
            kept_quiet(c),
        ]
        .into_iter()
        .map(number_cell)
        .collect();
        out.push_str(&format!(
            "<tr><td><strong>{}</strong></td>{cells}<td class=\"text\">{}</td></tr>\n",
            escape(route),
            why.join(", ")
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

/// What a transition led to, as pills: the words of [`Transition::did`].
fn pills(did: &str) -> String {
    did.split(',')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let class = match Mark::of_word(word) {
                Some(Mark::Page) => "page",
                Some(Mark::Restart) => "restart",
                Some(Mark::Notified) => "notify",
                Some(Mark::Recovery) => "recovery",
                Some(Mark::KeptQuiet) => "quiet",
                Some(Mark::Ignored) => "ignored",
                Some(Mark::Refused) => "error",
                _ => "",
            };
            format!("<span class=\"pill {class}\">{}</span>", escape(word))
        })
        .collect()
}

/// "route: did" of a [`Difference`] side, as route and pills.
fn outcome_cell(side: &str) -> String {
    match side.split_once(": ") {
        Some((route, did)) => {
            let route = if route.is_empty() { "(not routed)" } else { route };
            format!("<span class=\"route\">{}</span> {}", escape(route), pills(did))
        }
        None => escape(side),
    }
}

/// How to show times in a table of these: with the day when they span more than one.
fn time_format(times: impl Iterator<Item = DateTime<Utc>>) -> &'static str {
    let days: std::collections::BTreeSet<_> = times.map(|t| t.date_naive()).collect();
    if days.len() > 1 { "%m-%d %H:%M:%S" } else { "%H:%M:%S" }
}

/// The transitions that paged someone, or that the router refused: the lines read first.
fn paged_table(summary: &Summary) -> String {
    let paged: Vec<&Transition> = summary
        .transitions
        .iter()
        .filter(|t| Mark::of(t).iter().any(|mark| matches!(mark, Mark::Page | Mark::Refused)))
        .collect();
    if paged.is_empty() {
        return "<p class=\"note\">Nothing paged anyone, and the router refused no event.</p>\n".to_owned();
    }
    let format = time_format(paged.iter().filter_map(|t| t.at));
    let mut out = String::from(
        "<table class=\"grid\" id=\"paged-table\"><thead><tr><th>time</th><th>line</th><th class=\"text\">alarm</th>\
         <th>state</th><th class=\"text\">route: did</th></tr></thead><tbody>\n",
    );
    for t in paged.iter().take(MAX_ROWS) {
        let at = t.at.map(|at| at.format(format).to_string()).unwrap_or_default();
        out.push_str(&format!(
            "<tr><td>{at}</td><td>{}</td><td class=\"text\">{}</td><td><span class=\"state {}\">{}</span></td>\
             <td class=\"text\">{}</td></tr>\n",
            t.line,
            escape(&t.alarm),
            state_class(&t.state),
            escape(&t.state),
            outcome_cell(&format!("{}: {}", t.route, t.did))
        ));
    }
    out.push_str("</tbody></table>\n");
    if paged.len() > MAX_ROWS {
        out.push_str(&format!("<p class=\"note\">… and {} more.</p>\n", paged.len() - MAX_ROWS));
    }
    out
}

fn differences_table(differences: &[Difference]) -> String {
    if differences.is_empty() {
        return "<p class=\"note\">Both rule sets treat every transition the same way.</p>\n".to_owned();
    }
    let time_format = time_format(differences.iter().filter_map(|d| d.at));
    let mut out = String::from(
        "<table class=\"grid\" id=\"differences-table\"><thead><tr><th>time</th><th>line</th><th class=\"text\">alarm</th>\
         <th>state</th><th class=\"text\"><span class=\"tag a\">A</span> route: did</th>\
         <th class=\"text\"><span class=\"tag b\">B</span> route: did</th>\
         </tr></thead><tbody>\n",
    );
    for d in differences.iter().take(MAX_ROWS) {
        let at = d.at.map(|t| t.format(time_format).to_string()).unwrap_or_default();
        out.push_str(&format!(
            "<tr><td>{at}</td><td>{}</td><td class=\"text\">{}</td><td><span class=\"state {}\">{}</span></td>\
             <td class=\"text\">{}</td><td class=\"text\">{}</td></tr>\n",
            d.line,
            escape(&d.alarm),
            state_class(&d.state),
            escape(&d.state),
            outcome_cell(&d.a),
            outcome_cell(&d.b)
        ));
    }
    out.push_str("</tbody></table>\n");
    if differences.len() > MAX_ROWS {
        out.push_str(&format!(
            "<p class=\"note\">… and {} more: every difference is in the JSON line on stdout.</p>\n",
            differences.len() - MAX_ROWS
        ));
    }
    out
}

/// A CSS class for a state, only ever one of the known ones.
fn state_class(state: &str) -> &'static str {
    match state {
        "ALARM" => "ALARM",
        "OK" => "OK",
        _ => "other",
    }
}

fn problems(runs: &[(&str, &Summary)]) -> String {
    let rows: Vec<(&str, &str, &LineError)> = runs
        .iter()
        .flat_map(|(side, summary)| {
            let refused = summary.errors.iter().map(move |e| (*side, "refused", e));
            refused.chain(summary.unhandled.iter().map(move |e| (*side, "unhandled", e)))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<table class=\"grid\" id=\"errors-table\"><thead><tr><th>line</th><th class=\"text\">kind</th><th class=\"text\">error</th><th class=\"text\">message</th></tr></thead><tbody>\n",
    );
    for (side, kind, e) in rows {
        out.push_str(&format!(
            "<tr><td>{side}{}</td><td>{kind}</td><td><span class=\"pill error\">{}</span></td><td class=\"text\">{}</td></tr>\n",
            e.line,
            escape(&e.error),
            escape(&e.message)
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

/// What a transition led to, as the timeline draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Mark {
    Alarm,
    Ok,
    OtherState,
    Refused,
    Restart,
    Page,
    Notified,
    Recovery,
    KeptQuiet,
    Ignored,
}

impl Mark {
    const ALL: [Mark; 10] = [
        Mark::Alarm,
        Mark::Ok,
        Mark::OtherState,
        Mark::Refused,
        Mark::Restart,
        Mark::Page,
        Mark::Notified,
        Mark::Recovery,
        Mark::KeptQuiet,
        Mark::Ignored,
    ];

    /// The mark of one word of [`Transition::did`]; an unknown word is an error's name.
    fn of_word(word: &str) -> Option<Mark> {
        match word {
            "paged" | "incident" | "warRoom" => Some(Mark::Page),
            "notified" => Some(Mark::Notified),
            "restarted" => Some(Mark::Restart),
            "recovery" => Some(Mark::Recovery),
            "grouped" | "silenced" | "maintenance" | "inhibited" | "flapping" => Some(Mark::KeptQuiet),
            "ignored" => Some(Mark::Ignored),
            "nothing" | "" => None,
            _ => Some(Mark::Refused),
        }
    }

    /// The marks of a transition: its state, then what it led to (each once).
    fn of(transition: &Transition) -> Vec<Mark> {
        let led_to: Vec<Mark> = transition.did.split(',').filter_map(Mark::of_word).collect();
        let state = if led_to.contains(&Mark::Refused) || transition.route.is_empty() {
            Mark::Refused
        } else {
            match transition.state.as_str() {
                "ALARM" => Mark::Alarm,
                "OK" => Mark::Ok,
                _ => Mark::OtherState,
            }
        };
        let mut marks = vec![state];
        // Ignoring is doing nothing: the transition's own mark says it happened.
        for mark in led_to {
            if ![Mark::Refused, Mark::Ignored].contains(&mark) && !marks.contains(&mark) {
                marks.push(mark);
            }
        }
        marks
    }

    fn row(self) -> usize {
        match self {
            Mark::Alarm | Mark::Ok | Mark::OtherState | Mark::Refused => 0,
            Mark::Restart => 1,
            Mark::Page | Mark::Notified | Mark::Recovery => 2,
            Mark::KeptQuiet | Mark::Ignored => 3,
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Mark::Alarm => COLOUR_ALARM,
            Mark::Ok => COLOUR_OK,
            Mark::OtherState => "#adb5bd",
            Mark::Refused => COLOUR_ERROR,
            Mark::Restart => COLOUR_RESTART,
            Mark::Page => COLOUR_PAGE,
            Mark::Notified => COLOUR_NOTIFY,
            Mark::Recovery => COLOUR_RECOVERY,
            Mark::KeptQuiet => COLOUR_QUIET,
            Mark::Ignored => COLOUR_IGNORED,
        }
    }

    fn name(self, count: usize) -> &'static str {
        let one = count == 1;
        match self {
            Mark::Alarm => "ALARM",
            Mark::Ok => "OK",
            Mark::OtherState => "other state",
            Mark::Refused if one => "refused event",
            Mark::Refused => "refused events",
            Mark::Restart if one => "restart",
            Mark::Restart => "restarts",
            Mark::Page if one => "page",
            Mark::Page => "pages",
            Mark::Notified if one => "notification",
            Mark::Notified => "notifications",
            Mark::Recovery if one => "recovery notice",
            Mark::Recovery => "recovery notices",
            Mark::KeptQuiet => "kept quiet",
            Mark::Ignored => "ignored",
        }
    }
}

/// The timeline's rows in each route's lane.
const ROWS: [&str; 4] = ["transitions", "restarts", "to people", "kept quiet"];
const WIDTH: f64 = 1240.0;
const GUTTER: f64 = 220.0;
const PLOT: f64 = 990.0;
/// Marks closer than this many pixels share a bin, drawn as one bar as tall as their count.
const BIN: f64 = 6.0;
const ROW: f64 = 40.0;
const BAR: f64 = 22.0;
const LANE_GAP: f64 = 14.0;
/// The line above a lane's rows that names its route.
const LANE_HEAD: f64 = 26.0;
const TOP: f64 = 58.0;

/// Where on the plot a time falls.
struct TimeScale {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl TimeScale {
    /// The range of the summary, widened a little so the first and last marks are not on the edge.
    fn of(summary: &Summary) -> Option<Self> {
        let (from, to) = (summary.from?, summary.to?);
        let margin = ((to - from) / 40).max(Duration::seconds(30));
        Some(Self { from: from - margin, to: to + margin })
    }

    fn x(&self, at: DateTime<Utc>) -> f64 {
        let span = (self.to - self.from).num_milliseconds().max(1) as f64;
        let offset = (at - self.from).num_milliseconds() as f64;
        GUTTER + (offset / span).clamp(0.0, 1.0) * PLOT
    }

    fn bins(&self) -> usize {
        (PLOT / BIN).ceil() as usize
    }

    fn bin(&self, at: DateTime<Utc>) -> usize {
        let x = self.x(at) - GUTTER;
        ((x / BIN).floor().max(0.0) as usize).min(self.bins() - 1)
    }

    /// The time `bin` starts at.
    fn bin_start(&self, bin: usize) -> DateTime<Utc> {
        let span = (self.to - self.from).num_milliseconds() as f64;
        self.from + Duration::milliseconds((bin as f64 * BIN / PLOT * span) as i64)
    }

    /// Tick times and labels: a round step giving at most about ten ticks.
    fn ticks(&self) -> Vec<(DateTime<Utc>, String, Option<String>)> {
        const STEPS: [i64; 20] = [
            1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800,
            604_800,
        ];
        let span = (self.to - self.from).num_seconds().max(1);
        let step = STEPS.iter().copied().find(|step| span / step <= 10).unwrap_or(604_800);
        let label_format = match step {
            s if s < 60 => "%H:%M:%S",
            s if s < 86_400 => "%H:%M",
            _ => "%b %d",
        };
        let first = (self.from.timestamp() + step - 1).div_euclid(step) * step;
        let mut ticks = Vec::new();
        let mut previous_day = None;
        let mut at = first;
        while at <= self.to.timestamp() {
            if let Some(time) = DateTime::<Utc>::from_timestamp(at, 0) {
                let day = time.date_naive();
                let date = (step < 86_400 && previous_day != Some(day)).then(|| time.format("%Y-%m-%d").to_string());
                previous_day = Some(day);
                ticks.push((time, time.format(label_format).to_string(), date));
            }
            at += step;
        }
        ticks
    }
}

/// The transitions in one bin of one row of a lane.
#[derive(Default)]
struct Bin<'a> {
    counts: BTreeMap<Mark, usize>,
    transitions: Vec<&'a Transition>,
}

impl Bin<'_> {
    fn total(&self) -> usize {
        self.counts.values().sum()
    }
}

/// One route's lane: for each row, its bins by index.
struct Lane<'a> {
    route: String,
    counts: Option<&'a Counts>,
    rows: [BTreeMap<usize, Bin<'a>>; 4],
}

fn lanes<'a>(summary: &'a Summary, scale: &TimeScale) -> Vec<Lane<'a>> {
    let mut lanes: Vec<Lane> = summary
        .by_route
        .iter()
        .map(|(route, counts)| Lane { route: route.clone(), counts: Some(counts), rows: Default::default() })
        .collect();
    let mut last_time = summary.from;
    for transition in &summary.transitions {
        // A line without a time of its own happened when the one before it did, as in the replay.
        let at = transition.at.or(last_time);
        last_time = at;
        let Some(at) = at else { continue };
        let index = match lanes.iter().position(|lane| lane.route == transition.route) {
            Some(index) => index,
            None => {
                let route = if transition.route.is_empty() { "" } else { transition.route.as_str() };
                lanes.push(Lane { route: route.to_owned(), counts: None, rows: Default::default() });
                lanes.len() - 1
            }
        };
        let Some(lane) = lanes.get_mut(index) else { continue };
        let bin = scale.bin(at);
        for mark in Mark::of(transition) {
            let Some(row) = lane.rows.get_mut(mark.row()) else { continue };
            let slot = row.entry(bin).or_default();
            *slot.counts.entry(mark).or_default() += 1;
            if slot.transitions.last().is_none_or(|last| !std::ptr::eq(*last, transition)) {
                slot.transitions.push(transition);
            }
        }
    }
    lanes.retain(|lane| lane.rows.iter().any(|row| !row.is_empty()) || lane.counts.is_some_and(|c| c.events > 0));
    lanes
}

/// A lane's total for a row, from the summary's counts when the lane is a route.
fn row_total(lane: &Lane, row: usize) -> u64 {
    match lane.counts {
        Some(c) => match row {
            0 => c.events,
            1 => c.restarts,
            2 => c.pages + c.notifications + c.recoveries,
            _ => kept_quiet(c),
        },
        None => {
            let marks = lane.rows.get(row).map(|bins| bins.values().map(Bin::total).sum::<usize>()).unwrap_or(0);
            marks as u64
        }
    }
}

/// The bar height for `count` marks, where the busiest bin holds `most`: a single mark stays
/// visible, and a burst of hundreds does not flatten everything else.
fn bar_height(count: usize, most: usize) -> f64 {
    if most <= 1 {
        return BAR * 0.7;
    }
    let share = (count as f64).ln() / (most as f64).ln();
    BAR * (0.5 + 0.5 * share.clamp(0.0, 1.0))
}

fn tooltip(scale: &TimeScale, bin_index: usize, bin: &Bin, route: &str) -> String {
    let mut lines = Vec::new();
    if let [only] = bin.transitions.as_slice() {
        let at = only.at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
        lines.push(format!("{at} · line {}", only.line));
        lines.push(format!("{} {}", only.alarm, only.state));
        lines.push(format!("→ {}: {}", if route.is_empty() { "(not routed)" } else { route }, only.did));
    } else {
        let start = scale.bin_start(bin_index);
        let end = scale.bin_start(bin_index + 1);
        lines.push(format!("{} – {} UTC · {}", start.format("%H:%M:%S"), end.format("%H:%M:%S"), route));
        let counts: Vec<String> = bin.counts.iter().map(|(mark, n)| format!("{n} {}", mark.name(*n))).collect();
        lines.push(counts.join(", "));
        for t in bin.transitions.iter().take(6) {
            lines.push(format!("line {}: {} {} → {}", t.line, t.alarm, t.state, t.did));
        }
        if bin.transitions.len() > 6 {
            lines.push(format!("… and {} more", bin.transitions.len() - 6));
        }
    }
    escape(&lines.join("\n"))
}

fn legend(present: &[Mark], bin_span: Duration) -> String {
    let mut out = String::from("<g class=\"legend\">\n");
    let mut x = GUTTER;
    for mark in Mark::ALL.iter().filter(|m| present.contains(m)) {
        let label = match mark {
            Mark::Alarm => "ALARM",
            Mark::Ok => "OK",
            Mark::OtherState => "other state",
            Mark::Refused => "refused by the router",
            Mark::Restart => "restart",
            Mark::Page => "page",
            Mark::Notified => "notification",
            Mark::Recovery => "recovery notice",
            Mark::KeptQuiet => "page kept quiet",
            Mark::Ignored => "ignored",
        };
        out.push_str(&format!(
            "<rect x=\"{x}\" y=\"10\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"21\" font-size=\"13\" fill=\"#1f2933\">{label}</text>\n",
            mark.colour(),
            x + 17.0
        ));
        x += 17.0 + text_width(label, 13.0) + 20.0;
    }
    out.push_str(&format!(
        "<text x=\"{GUTTER}\" y=\"42\" font-size=\"12\" fill=\"#616e7c\">Each bar: the transitions within {} \
         (taller = more; hover for the alarms). Numbers: transitions in a burst.</text>\n</g>\n",
        span_words_short(bin_span)
    ));
    out
}

/// The timeline of one replay: lanes per route, rows per kind of mark, a time axis.
fn timeline(summary: &Summary, caption: Option<&str>) -> String {
    let caption = caption.map(|c| format!("<h3>{}</h3>\n", escape(c))).unwrap_or_default();
    let Some(scale) = TimeScale::of(summary) else {
        return format!("{caption}<p class=\"note\">No transition in this history has a time: nothing to draw.</p>\n");
    };
    let lanes = lanes(summary, &scale);
    if lanes.is_empty() {
        return format!("{caption}<p class=\"note\">No transitions to draw.</p>\n");
    }
    let most = lanes.iter().flat_map(|l| l.rows.iter()).flat_map(|r| r.values()).map(Bin::total).max().unwrap_or(1);
    let mut present: Vec<Mark> = Vec::new();
    for bin in lanes.iter().flat_map(|l| l.rows.iter()).flat_map(|r| r.values()) {
        for mark in bin.counts.keys() {
            if !present.contains(mark) {
                present.push(*mark);
            }
        }
    }
    let lane_height = LANE_HEAD + ROW * ROWS.len() as f64 + LANE_GAP;
    let plot_bottom = TOP + lane_height * lanes.len() as f64 - LANE_GAP / 2.0;
    let height = plot_bottom + 44.0;
    let bin_span = (scale.to - scale.from) / (scale.bins() as i32).max(1);
    let mut svg = format!(
        "{caption}<svg class=\"timeline\" role=\"img\" aria-label=\"timeline of the replay\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>What each route did over the history's time range</title>\n"
    );
    svg.push_str(&legend(&present, bin_span));
    // Lanes' backgrounds and the time grid first, so the marks sit on top.
    for (i, lane) in lanes.iter().enumerate() {
        let top = TOP + lane_height * i as f64;
        svg.push_str(&format!(
            "<rect x=\"0\" y=\"{top}\" width=\"{WIDTH}\" height=\"{}\" rx=\"4\" fill=\"#f5f7fa\"/>\n",
            lane_height - LANE_GAP
        ));
        let name = if lane.route.is_empty() { "(not routed)".to_owned() } else { lane.route.clone() };
        let shown = if name.chars().count() > 100 {
            format!("{}…", name.chars().take(99).collect::<String>())
        } else {
            name.clone()
        };
        svg.push_str(&format!(
            "<text x=\"14\" y=\"{}\" font-size=\"15\" font-weight=\"700\" fill=\"#102a43\"><title>route {}</title>{}</text>\n",
            top + 20.0,
            escape(&name),
            escape(&shown)
        ));
        for (r, row_name) in ROWS.iter().enumerate() {
            let baseline = row_baseline(top, r);
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#616e7c\" text-anchor=\"end\">{row_name} \
                 <tspan font-weight=\"700\" fill=\"#1f2933\">{}</tspan></text>\n\
                 <line x1=\"{GUTTER}\" x2=\"{}\" y1=\"{baseline}\" y2=\"{baseline}\" stroke=\"#d9e2ec\"/>\n",
                GUTTER - 12.0,
                baseline - 3.0,
                row_total(lane, r),
                GUTTER + PLOT
            ));
        }
    }
    for (at, label, date) in scale.ticks() {
        let x = scale.x(at);
        svg.push_str(&format!(
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#e4e7eb\" stroke-dasharray=\"3 3\"/>\n\
             <line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{plot_bottom}\" y2=\"{}\" stroke=\"#829ab1\"/>\n\
             <text x=\"{x:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#334e68\">{label}</text>\n",
            plot_bottom,
            plot_bottom + 5.0,
            plot_bottom + 19.0
        ));
        if let Some(date) = date {
            svg.push_str(&format!(
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#829ab1\">{date}</text>\n",
                plot_bottom + 33.0
            ));
        }
    }
    svg.push_str(&format!(
        "<line x1=\"{GUTTER}\" x2=\"{}\" y1=\"{plot_bottom}\" y2=\"{plot_bottom}\" stroke=\"#829ab1\"/>\n\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#829ab1\">UTC</text>\n",
        GUTTER + PLOT,
        GUTTER - 12.0,
        plot_bottom + 19.0
    ));
    for (i, lane) in lanes.iter().enumerate() {
        let top = TOP + lane_height * i as f64;
        for (r, bins) in lane.rows.iter().enumerate() {
            let baseline = row_baseline(top, r);
            svg.push_str(&row_marks(&scale, lane, bins, baseline, most));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The line a lane's row `row` draws its bars up from, for a lane starting at `top`.
fn row_baseline(top: f64, row: usize) -> f64 {
    top + LANE_HEAD + ROW * (row as f64 + 1.0) - 8.0
}

/// About how wide `text` is drawn at `size` pixels in a sans-serif font, to place labels apart.
fn text_width(text: &str, size: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            ' ' => 0.32,
            c if c.is_ascii_uppercase() => 0.70,
            c if c.is_ascii_digit() => 0.64,
            'i' | 'j' | 'l' | 't' | 'f' | 'r' => 0.36,
            _ => 0.6,
        })
        .sum();
    em * size
}

/// A bin's span in few characters: "10 s", "2 min", "1 h".
fn span_words_short(span: Duration) -> String {
    let seconds = span.num_seconds();
    match seconds {
        s if s < 1 => format!("{} ms", span.num_milliseconds().max(1)),
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// One row's bars (stacked by kind) and the counts of its bursts, labels never overlapping.
fn row_marks(scale: &TimeScale, lane: &Lane, bins: &BTreeMap<usize, Bin>, baseline: f64, most: usize) -> String {
    let mut out = String::new();
    for (index, bin) in bins {
        let x = GUTTER + *index as f64 * BIN;
        let total = bin.total();
        let height = bar_height(total, most);
        out.push_str(&format!("<g class=\"mark\"><title>{}</title>", tooltip(scale, *index, bin, &lane.route)));
        let mut y = baseline;
        for (mark, n) in &bin.counts {
            let part = height * *n as f64 / total.max(1) as f64;
            y -= part;
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{part:.1}\" fill=\"{}\"/>",
                BIN - 1.0,
                mark.colour()
            ));
        }
        out.push_str("</g>\n");
    }
    // Bursts: bins next to each other (one empty bin apart at most), labelled with their total.
    let mut bursts: Vec<(usize, usize, usize, f64)> = Vec::new(); // first bin, last bin, total, tallest
    for (index, bin) in bins {
        let total = bin.total();
        let height = bar_height(total, most);
        match bursts.last_mut() {
            Some(burst) if *index <= burst.1 + 2 => {
                burst.1 = *index;
                burst.2 += total;
                burst.3 = burst.3.max(height);
            }
            _ => bursts.push((*index, *index, total, height)),
        }
    }
    let mut free_from = f64::MIN;
    for (first, last, total, tallest) in bursts {
        if total < 2 {
            continue;
        }
        let centre = GUTTER + (first + last + 1) as f64 * BIN / 2.0;
        let text = total.to_string();
        let half = text_width(&text, 11.0) / 2.0 + 2.0;
        if centre - half < free_from {
            continue;
        }
        free_from = centre + half + 4.0;
        out.push_str(&format!(
            "<text x=\"{centre:.1}\" y=\"{:.1}\" font-size=\"11\" font-weight=\"700\" text-anchor=\"middle\" \
             fill=\"#243b53\">{text}</text>\n",
            baseline - tallest - 3.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a time").with_timezone(&Utc)
    }

    fn transition(line: usize, alarm: &str, state: &str, time: &str, route: &str, did: &str) -> Transition {
        transition_at(line, alarm, state, at(time), route, did)
    }

    fn transition_at(line: usize, alarm: &str, state: &str, at: DateTime<Utc>, route: &str, did: &str) -> Transition {
        Transition {
            line,
            alarm: alarm.to_owned(),
            state: state.to_owned(),
            at: Some(at),
            route: route.to_owned(),
            did: did.to_owned(),
        }
    }

    /// The maintenance night's shape: a window keeps an ALARM quiet, a failure after it is restarted.
    fn night() -> Summary {
        let transitions = vec![
            transition(1, "web-nginx-down-host-000", "ALARM", "2026-11-21T02:05:00Z", "web-nginx", "maintenance"),
            transition(2, "web-nginx-down-host-000", "OK", "2026-11-21T02:11:00Z", "web-nginx", "nothing"),
            transition(3, "db-replica-lag", "ALARM", "2026-11-21T03:00:00Z", "default", "notified"),
            transition(4, "web-nginx-down-host-003", "ALARM", "2026-11-21T04:30:00Z", "web-nginx", "restarted"),
            transition(5, "web-nginx-down-host-003", "OK", "2026-11-21T04:33:00Z", "web-nginx", "recovery"),
        ];
        let mut summary = Summary::default();
        summary.transitions = transitions;
        summary.from = Some(at("2026-11-21T02:05:00Z"));
        summary.to = Some(at("2026-11-21T04:33:00Z"));
        let web = Counts {
            events: 4,
            executions: 1,
            restarts: 1,
            verified: 1,
            recoveries: 1,
            suppressed: Suppressed { maintenance: 1, ..Suppressed::default() },
            ..Counts::default()
        };
        let default = Counts { events: 1, notifications: 1, ..Counts::default() };
        summary.totals = Counts {
            events: 5,
            executions: 1,
            restarts: 1,
            verified: 1,
            recoveries: 1,
            notifications: 1,
            suppressed: Suppressed { maintenance: 1, ..Suppressed::default() },
            ..Counts::default()
        };
        summary.by_route.insert("web-nginx".into(), web);
        summary.by_route.insert("default".into(), default);
        summary
    }

    fn single(summary: &Summary) -> String {
        render(&Report {
            history: "events/histories/maintenance-night.jsonl",
            generated_at: at("2026-11-22T09:00:00Z"),
            a: Run { rules: "infra/routes.example.yaml", summary },
            compared: None,
        })
    }

    fn lanes_drawn(html: &str) -> usize {
        html.matches("font-size=\"15\" font-weight=\"700\"").count()
    }

    #[test]
    fn escape_makes_markup_and_ampersands_text() {
        let cases = [
            ("web-nginx", "web-nginx"),
            ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
            ("a & b", "a &amp; b"),
            ("\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;"),
            ("&amp;", "&amp;amp;"),
        ];
        for (text, escaped) in cases {
            assert_eq!(escape(text), escaped, "{text}");
        }
    }

    #[test]
    fn an_alarm_name_with_markup_appears_escaped_everywhere() {
        // GIVEN an alarm (and a reason, and a route) whose names hold markup and an ampersand
        let mut summary = night();
        let evil = "<script>alert('x')</script> & co";
        summary.transitions.push(transition(6, evil, "ALARM", "2026-11-21T04:40:00Z", "r<b>&", "paged"));
        summary.by_route.insert("r<b>&".into(), Counts { events: 1, pages: 1, ..Counts::default() });
        summary.errors.push(LineError {
            line: 7,
            error: "InvalidEvent".into(),
            message: "bad <img src=x> & junk".into(),
        });
        let b = summary.clone();
        let differences = vec![Difference {
            line: 6,
            alarm: evil.into(),
            state: "ALARM".into(),
            at: Some(at("2026-11-21T04:40:00Z")),
            a: "r<b>&: paged".into(),
            b: "default: <i>notified</i>".into(),
        }];
        // WHEN the report is rendered, with a comparison
        let html = render(&Report {
            history: "night<&>.jsonl",
            generated_at: at("2026-11-22T09:00:00Z"),
            a: Run { rules: "a&b.yaml", summary: &summary },
            compared: Some((Run { rules: "<b>.yaml", summary: &b }, &differences)),
        });
        // THEN no text from the history or the command line is markup
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>") && !html.contains("<i>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(html.contains("bad &lt;img src=x&gt; &amp; junk"));
        assert!(html.contains("night&lt;&amp;&gt;.jsonl") && html.contains("a&amp;b.yaml"));
        assert!(html.contains("r&lt;b&gt;&amp;"));
        // and the one raw ampersand left is in no text: every & starts an entity
        for (i, _) in html.match_indices('&') {
            let rest = html.get(i..).unwrap_or_default();
            let entity = rest.split(';').next().unwrap_or_default();
            assert!(entity.len() <= 8 && !entity.contains(' '), "a bare & at {i}: {}", rest.get(..30).unwrap_or(rest));
        }
    }

    #[test]
    fn the_page_is_self_contained_with_an_svg_timeline_and_the_totals() {
        let html = single(&night());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg class=\"timeline\""));
        assert!(html.contains("<title>"), "tooltips on marks");
        for total in ["Events", "Executions", "Restarts", "1 verified", "Pages", "Kept quiet", "maintenance", "Ignored"]
        {
            assert!(html.contains(total), "{total}");
        }
        // Nothing is fetched: no scripts, no links, no remote URL other than the SVG namespace.
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("@import"));
        let urls = html.matches("http").count();
        assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count() + html.matches("http-equiv").count());
        assert!(html.contains("Content-Security-Policy"));
    }

    #[test]
    fn the_timeline_has_one_lane_per_route_with_its_marks() {
        let summary = night();
        let html = single(&summary);
        assert_eq!(lanes_drawn(&html), 2, "default and web-nginx");
        let default = html.find(">default</text>").expect("the default lane");
        let web = html.find(">web-nginx</text>").expect("the web-nginx lane");
        assert!(default < web, "lanes in the per-route table's order");
        for colour in [COLOUR_ALARM, COLOUR_OK, COLOUR_RESTART, COLOUR_NOTIFY, COLOUR_RECOVERY, COLOUR_QUIET] {
            assert!(html.contains(&format!("fill=\"{colour}\"/></g>")), "a mark in {colour}");
        }
        assert!(html.contains("web-nginx-down-host-003 ALARM\n→ web-nginx: restarted"), "a single mark's tooltip");
        assert!(html.contains(">02:30</text>") && html.contains(">2026-11-21</text>"), "time axis ticks and the date");
        assert!(html.contains("Nothing paged anyone"), "nothing paged in this night");
        // A route the summary counts events for keeps its lane even when one more appears.
        let mut more = summary.clone();
        more.by_route.insert("db".into(), Counts { events: 1, ..Counts::default() });
        more.transitions.push(transition(6, "db-down", "ALARM", "2026-11-21T03:10:00Z", "db", "paged"));
        assert_eq!(lanes_drawn(&single(&more)), 3);
    }

    /// The storm sample's shape: 200 hosts alarm within two minutes and recover 25 minutes later;
    /// each is restarted, the first pages and the group keeps the other escalations quiet.
    fn storm() -> Summary {
        let mut summary = Summary::default();
        let start = at("2026-11-20T04:00:00Z");
        for host in 0..200_i64 {
            let name = format!("web-nginx-down-host-{host:03}");
            let fired = start + Duration::milliseconds(host * 600);
            let did = if host == 0 { "restarted,paged,warRoom" } else { "restarted,grouped" };
            let line = host as usize + 1;
            summary.transitions.push(transition_at(line, &name, "ALARM", fired, "web-nginx", did));
            let did = if host == 199 { "recovery" } else { "nothing" };
            let cleared = fired + Duration::minutes(25);
            summary.transitions.push(transition_at(line + 200, &name, "OK", cleared, "web-nginx", did));
        }
        summary.from = Some(start);
        summary.to = summary.transitions.iter().filter_map(|t| t.at).max();
        let counts = Counts {
            events: 400,
            executions: 200,
            restarts: 200,
            pages: 1,
            war_rooms: 1,
            recoveries: 1,
            suppressed: Suppressed { grouped: 199, ..Suppressed::default() },
            ..Counts::default()
        };
        summary.totals = counts.clone();
        summary.by_route.insert("web-nginx".into(), counts);
        summary
    }

    #[test]
    fn four_hundred_events_in_bursts_are_binned_into_few_marks() {
        // GIVEN a storm of 400 transitions
        let summary = storm();
        // WHEN it is drawn
        let html = single(&summary);
        // THEN the marks are bars per bin, far fewer than the 800 marks the transitions make
        let bars = html.matches("<g class=\"mark\">").count();
        assert!(bars < 80, "{bars} bars");
        assert!(html.contains(">200</text>"), "a burst is labelled with its size");
        assert!(html.contains("… and"), "a bin's tooltip lists a few alarms and counts the rest");
        // and the one page is listed, with what it led to
        let paged =
            html.split("id=\"paged-table\"").nth(1).and_then(|t| t.split("</table>").next()).expect("what paged");
        assert_eq!(paged.matches("<tr><td>").count(), 1);
        assert!(
            paged.contains("web-nginx-down-host-000") && paged.contains("<span class=\"pill page\">warRoom</span>")
        );
        assert_eq!(lanes_drawn(&html), 1);
    }

    #[test]
    fn differences_and_side_by_side_totals_appear_only_when_comparing() {
        let a = night();
        let single_page = single(&a);
        assert!(!single_page.contains("id=\"differences\"") && !single_page.contains("comparison-chart"));
        let mut b = a.clone();
        b.totals.pages = 3;
        let differences = vec![Difference {
            line: 3,
            alarm: "db-replica-lag".into(),
            state: "ALARM".into(),
            at: Some(at("2026-11-21T03:00:00Z")),
            a: "default: notified".into(),
            b: "db: paged".into(),
        }];
        let html = render(&Report {
            history: "h.jsonl",
            generated_at: at("2026-11-22T09:00:00Z"),
            a: Run { rules: "infra/routes.yaml", summary: &a },
            compared: Some((Run { rules: "infra/routes.example.yaml", summary: &b }, &differences)),
        });
        assert!(html.contains("id=\"differences\"") && html.contains("1 transition differs"));
        assert!(html.contains("<span class=\"pill notify\">notified</span>"));
        assert!(html.contains("<span class=\"pill page\">paged</span>"));
        assert!(html.contains("id=\"comparison-chart\""), "the A/B bar chart");
        assert!(html.contains(
            "<tr class=\"changed\"><td>pages</td><td class=\"zero\">0</td><td>3</td><td class=\"up\">+3</td>"
        ));
        assert_eq!(html.matches("<svg class=\"timeline\"").count(), 2, "a timeline for each rule set");
        assert!(html.contains("infra/routes.yaml") && html.contains("infra/routes.example.yaml"));
    }

    #[test]
    fn an_empty_history_renders_a_page_without_a_timeline() {
        let html = single(&Summary::default());
        assert!(html.contains("</html>"));
        assert!(html.contains("no transition times in the file"));
        assert!(html.contains("nothing to draw"));
        assert!(html.contains("No event reached a route."));
        assert!(!html.contains("<svg class=\"timeline\""));
    }

    #[test]
    fn a_report_into_a_missing_folder_is_a_named_error() {
        let path = Path::new("/no/such/folder/r.html");
        let error = check_destination(path).expect_err("refused");
        assert!(error.to_string().starts_with("ReportNotWritten: cannot write the report to /no/such/folder/r.html"));
        let error = write(path, "<html>").expect_err("refused");
        assert!(error.to_string().contains("ReportNotWritten"), "{error}");
        assert!(check_destination(Path::new("r.html")).is_ok(), "the current folder");
    }

    #[test]
    fn ticks_are_round_times_at_most_about_ten() {
        let mut summary = night();
        let scale = TimeScale::of(&summary).expect("a range");
        let ticks = scale.ticks();
        assert!((5..=11).contains(&ticks.len()), "{}", ticks.len());
        assert!(ticks.iter().all(|(t, _, _)| t.timestamp() % 900 == 0), "quarter hours over 2.5 hours");
        summary.to = Some(at("2026-11-23T02:05:00Z"));
        let days = TimeScale::of(&summary).expect("a range").ticks();
        assert!(days.iter().filter(|(_, _, date)| date.is_some()).count() >= 2, "each new day is dated");
        assert_eq!(span_words(Duration::minutes(148)), "2 h 28 min");
        assert_eq!(span_words(Duration::seconds(59)), "59 s");
        assert_eq!(span_words(Duration::seconds(26 * 60 + 59)), "27 min");
    }
}
