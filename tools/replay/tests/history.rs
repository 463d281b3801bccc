//! `replay history` on the sample histories of events/histories/, as a tester runs it: the binary,
//! against a moto server and the Slack emulator, one summary line on stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use workspace_tests::{MotoServer, SlackEmulator, repo_root};

mod common;
use common::{replay_history, summary};

fn suppressed(grouped: u64, maintenance: u64, flapping: u64) -> Value {
    json!({"grouped": grouped, "silenced": 0, "maintenance": maintenance, "inhibited": 0, "flapping": flapping})
}

#[test]
fn a_storm_of_200_hosts_pages_once_opens_one_war_room_and_recovers_once() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let output = replay_history(&moto, &slack, &["--quiet", "events/histories/storm.jsonl"]);
    let summary = summary(&output);
    assert_eq!(summary["events"], 400);
    assert_eq!(summary["pages"], 1, "{summary}");
    assert_eq!(summary["warRooms"], 1, "{summary}");
    assert_eq!(summary["recoveries"], 1, "{summary}");
    // Every host is still restarted, as live: the breaker counts executions that have ended, and
    // all 200 started (on the virtual clock) before the first one failed.
    assert_eq!(summary["executions"], 200);
    assert_eq!(summary["restarts"], 200);
    assert_eq!(summary["suppressed"], suppressed(199, 0, 0), "199 escalations kept quiet by the group");
    assert_eq!(summary["byRoute"]["web-nginx"]["pages"], 1);
    assert_eq!(summary["errors"], json!([]));
    assert!(summary["dynamodbCallsPerEvent"].as_f64().is_some(), "{summary}");
    let capacity = &summary["dynamodbCapacityPerEvent"];
    assert!(capacity["read"].as_f64().is_some_and(|r| r > 0.0), "{summary}");
    assert!(capacity["write"].as_f64().is_some_and(|w| w > 0.0), "{summary}");

    // AND what an event costs in DynamoDB does not grow with the group: the first 20 hosts of the
    // same storm cost as much per event, in calls and in capacity units, as all 200 (a group that
    // kept its members in one item cost about ten times more per write at 200)
    let small = std::env::temp_dir().join(format!("storm-20-{}.jsonl", std::process::id()));
    let storm = std::fs::read_to_string(repo_root().join("events/histories/storm.jsonl")).expect("storm");
    let first_20: Vec<&str> = storm
        .lines()
        .filter(|line| {
            let event: Value = serde_json::from_str(line).expect("event");
            let name = event["detail"]["alarmName"].as_str().expect("name").to_owned();
            name.rsplit('-').next().and_then(|n| n.parse::<u32>().ok()).is_some_and(|host| host < 20)
        })
        .collect();
    assert_eq!(first_20.len(), 40);
    std::fs::write(&small, first_20.join("\n") + "\n").expect("write");
    let few = self::summary(&replay_history(&moto, &slack, &["--quiet", small.to_str().expect("path")]));
    std::fs::remove_file(&small).ok();
    assert_eq!((few["pages"].as_u64(), few["recoveries"].as_u64()), (Some(1), Some(1)), "{few}");
    let per_event = |s: &Value, what: &str| s["dynamodbCapacityPerEvent"][what].as_f64().expect("capacity");
    for what in ["read", "write"] {
        let (at_20, at_200) = (per_event(&few, what), per_event(&summary, what));
        assert!(at_20 > 0.0 && at_200 > 0.0, "{what}: {few} {summary}");
        assert!(at_200 / at_20 < 1.25, "{what} units per event: {at_20} with 20 alarms, {at_200} with 200");
    }
    let calls = |s: &Value| s["dynamodbCallsPerEvent"].as_f64().expect("calls");
    assert!(calls(&summary) / calls(&few) < 1.25, "calls per event: {} and {}", calls(&few), calls(&summary));
}

#[test]
fn a_flapping_alarm_stops_restarting_after_the_threshold_and_pages_once() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let summary = summary(&replay_history(&moto, &slack, &["--quiet", "events/histories/flapping-hour.jsonl"]));
    // Six changes are allowed in the hour; the seventh makes it flapping: no more automation.
    assert_eq!(summary["events"], 16);
    assert_eq!(summary["executions"], 3, "{summary}");
    assert_eq!(summary["restarts"], 3);
    assert_eq!(summary["pages"], 1, "the flapping page, once: {summary}");
    assert_eq!(summary["recoveries"], 3, "each verified restart's recovery: {summary}");
    assert_eq!(summary["suppressed"], suppressed(0, 0, 9), "every later change recorded quietly");
}

#[test]
fn a_maintenance_night_pages_no_one_and_the_failure_after_it_is_restarted() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let output = replay_history(&moto, &slack, &["events/histories/maintenance-night.jsonl"]);
    let summary = summary(&output);
    assert_eq!(summary["suppressed"], suppressed(0, 10, 0), "{summary}");
    assert_eq!(summary["pages"], 0, "{summary}");
    assert_eq!(summary["executions"], 1, "only the failure after the window");
    assert_eq!(summary["restarts"], 1);
    assert_eq!(summary["recoveries"], 1, "its recovery; none for the alarms the window kept quiet");
    let trace = String::from_utf8_lossy(&output.stderr);
    assert!(trace.contains("kept quiet by window:saturday-patching"), "{trace}");
}

#[test]
fn the_same_history_under_other_rules_and_junk_lines_are_named_and_handled() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let dir = std::env::temp_dir().join(format!("replay-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    // The first four storm events, a line that is not JSON, and an event that is not an alarm.
    let storm = std::fs::read_to_string(repo_root().join("events/histories/storm.jsonl")).expect("storm");
    let mut lines: Vec<String> =
        storm.lines().filter(|l| l.contains(r#""state":{"value":"ALARM""#)).take(4).map(str::to_owned).collect();
    lines.insert(1, "{not json".to_owned());
    lines.push(json!({"detail-type": "EC2 Instance State-change Notification", "detail": {}}).to_string());
    let history = dir.join("mixed.jsonl");
    std::fs::write(&history, lines.join("\n")).expect("history");
    // Rules under which web-nginx only notifies (the shipped, notify-only infra/routes.yaml).
    let output = replay_history(
        &moto,
        &slack,
        &["--quiet", "--routes", "infra/routes.yaml", history.to_str().expect("utf-8 path")],
    );
    let summary = summary(&output);
    assert_eq!(summary["events"], 5, "four alarms and the event that is not one: {summary}");
    assert_eq!(summary["executions"], 0, "nothing acts under notify-only rules");
    assert_eq!(summary["notifications"], 4, "{summary}");
    let errors = summary["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{summary}");
    assert_eq!(errors[0]["line"], 2);
    assert_eq!(errors[0]["error"], "InvalidEvent");
    assert_eq!(errors[1]["line"], 6);
    assert_eq!(errors[1]["error"], "InvalidEvent");
}

#[test]
fn a_missing_file_or_bad_rules_are_refused_before_anything_runs() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let missing = replay_history(&moto, &slack, &["events/histories/no-such-history.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-history.jsonl"));
    let bad_rules = replay_history(&moto, &slack, &["--routes", "Cargo.toml", "events/histories/storm.jsonl"]);
    assert_eq!(bad_rules.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_rules.stderr).contains("Cargo.toml"));
}

#[test]
fn while_a_region_alarm_fires_its_hosts_page_no_one_and_after_it_clears_they_are_remediated() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let dir = std::env::temp_dir().join(format!("replay-inhibit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    // The sample rules, plus: while a region- alarm is in ALARM, web-nginx alarms page no one.
    let example = std::fs::read_to_string(repo_root().join("infra/routes.example.yaml")).expect("rules");
    let rules = format!(
        "{example}\ninhibit:\n  - name: region-outage\n    whileAlarm: {{ alarmName: {{ prefix: region- }} }}\n    routes: [web-nginx]\n"
    );
    let routes = dir.join("routes.yaml");
    std::fs::write(&routes, rules).expect("rules file");
    // The region alarm fires at 04:00, three hosts at 04:01, it clears at 04:20, one more host at 04:30.
    let storm = std::fs::read_to_string(repo_root().join("events/histories/storm.jsonl")).expect("storm");
    let firing: Vec<Value> = storm
        .lines()
        .filter(|l| l.contains(r#""state":{"value":"ALARM""#))
        .take(4)
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    let at = |mut event: Value, time: &str| {
        event["detail"]["state"]["timestamp"] = Value::from(time);
        event
    };
    let region = |state: &str, time: &str| {
        let mut event = at(firing[0].clone(), time);
        event["detail"]["alarmName"] = Value::from("region-eu-west-1-unhealthy");
        event["resources"][0] =
            Value::from("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:region-eu-west-1-unhealthy");
        event["detail"]["state"]["value"] = Value::from(state);
        event
    };
    let lines = [
        region("ALARM", "2026-11-20T04:00:00.000+0000"),
        at(firing[0].clone(), "2026-11-20T04:01:00.000+0000"),
        at(firing[1].clone(), "2026-11-20T04:01:10.000+0000"),
        at(firing[2].clone(), "2026-11-20T04:01:20.000+0000"),
        region("OK", "2026-11-20T04:20:00.000+0000"),
        at(firing[3].clone(), "2026-11-20T04:30:00.000+0000"),
    ];
    let history = dir.join("region.jsonl");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&history, text.join("\n")).expect("history");
    let output =
        replay_history(&moto, &slack, &["--routes", routes.to_str().expect("utf-8"), history.to_str().expect("utf-8")]);
    let summary = summary(&output);
    assert_eq!(summary["suppressed"]["inhibited"], 3, "{summary}");
    assert_eq!(summary["byRoute"]["web-nginx"]["executions"], 1, "only the host after the region cleared: {summary}");
    assert_eq!(summary["byRoute"]["default"]["notifications"], 1, "the region alarm itself is announced: {summary}");
    let trace = String::from_utf8_lossy(&output.stderr);
    assert!(trace.contains("kept quiet by inhibit:region-outage"), "{trace}");
}

/// A summary without what depends on the machine (wall time, speed).
fn decisions_of(mut summary: Value) -> Value {
    for key in ["wallSeconds", "eventsPerSecond", "dynamodbCalls", "dynamodbCallsPerEvent"] {
        summary.as_object_mut().expect("object").remove(key);
    }
    summary
}

#[test]
fn an_exported_alarm_history_gives_the_same_decisions_as_the_events_cloudwatch_sent() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let events = summary(&replay_history(&moto, &slack, &["--quiet", "events/histories/maintenance-night.jsonl"]));
    let exported = summary(&replay_history(
        &moto,
        &slack,
        &[
            "--quiet",
            "events/histories/describe-alarm-history.json",
            "--alarms",
            "events/histories/describe-alarms.json",
        ],
    ));
    assert_eq!(decisions_of(exported), decisions_of(events));
    // Without describe-alarms, the ARNs are built from the account and region: the same decisions.
    let bare = summary(&replay_history(&moto, &slack, &["--quiet", "events/histories/describe-alarm-history.json"]));
    assert_eq!(bare["suppressed"]["maintenance"], 10, "{bare}");
    assert_eq!(bare["restarts"], 1, "{bare}");
}

#[test]
fn compare_lists_what_a_rules_change_would_do_differently_and_a_limit_fails_it() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    // A: the shipped notify-only rules; B: the sample rules, which restart and keep a window.
    let output = replay_history(
        &moto,
        &slack,
        &[
            "--quiet",
            "events/histories/maintenance-night.jsonl",
            "--routes",
            "infra/routes.yaml",
            "--compare",
            "infra/routes.example.yaml",
            "--max-restarts",
            "0",
        ],
    );
    assert_eq!(output.status.code(), Some(3), "B restarts once, over --max-restarts 0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON");
    assert_eq!(result["a"]["summary"]["notifications"], 11);
    assert_eq!(result["b"]["summary"]["restarts"], 1);
    let differences = result["differences"].as_array().expect("differences");
    assert_eq!(differences.len(), 22, "every transition differs: {differences:#?}");
    let window = &differences[0];
    assert_eq!(
        (window["a"].as_str(), window["b"].as_str()),
        (Some("default: notified"), Some("web-nginx: maintenance"))
    );
    let failure = differences.iter().find(|d| d["line"] == 21).expect("the failure after the window");
    assert_eq!(failure["b"], "web-nginx: restarted", "{failure}");
    let table = String::from_utf8_lossy(&output.stderr);
    assert!(table.contains("22 transition(s) differ") && table.contains("over the limit"), "{table}");
    // The same rules on both sides: nothing differs, and within the limits it exits 0.
    let same = replay_history(
        &moto,
        &slack,
        &[
            "--quiet",
            "events/histories/flapping-hour.jsonl",
            "--compare",
            "infra/routes.example.yaml",
            "--max-pages",
            "1",
        ],
    );
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));
    let result: Value =
        serde_json::from_str(String::from_utf8_lossy(&same.stdout).lines().last().expect("line")).expect("JSON");
    assert_eq!(result["differences"], json!([]));
    // One page is over --max-pages 0.
    let over = replay_history(&moto, &slack, &["--quiet", "events/histories/flapping-hour.jsonl", "--max-pages", "0"]);
    assert_eq!(over.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&over.stderr).contains("1 pages > --max-pages 0"));
}

#[test]
fn a_line_without_a_time_does_not_move_the_virtual_clock_to_today() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    // Ten storm hosts alarm within six seconds; between the seventh and the eighth, an event that
    // is not an alarm (it has no transition time). None of the ten executions has ended by then
    // on the virtual clock, so the breaker (more than 5 failures) must not see any of them.
    let storm = std::fs::read_to_string(repo_root().join("events/histories/storm.jsonl")).expect("storm");
    let mut lines: Vec<String> =
        storm.lines().filter(|l| l.contains(r#""state":{"value":"ALARM""#)).take(10).map(str::to_owned).collect();
    lines.insert(7, json!({"detail-type": "EC2 Instance State-change Notification", "detail": {}}).to_string());
    let dir = std::env::temp_dir().join(format!("replay-clock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let history = dir.join("clock.jsonl");
    std::fs::write(&history, lines.join("\n")).expect("history");
    let summary = summary(&replay_history(&moto, &slack, &["--quiet", history.to_str().expect("utf-8")]));
    assert_eq!(summary["errors"].as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(summary["restarts"], 10, "every host restarted, as live: {summary}");
}

/// A scratch folder of its own for a test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

/// Headless Chromium: `CHROMIUM`, else /usr/bin/chromium, when this machine has it.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    path.exists().then_some(path)
}

/// Runs Chromium headless on `page` with `args`, in a fresh profile, with stdout into `stdout`.
fn run_chromium(chromium: &Path, page: &Path, args: &[String], stdout: &Path) {
    let profile = page.with_extension(format!("profile-{}", args.len()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("a profile folder");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::from(std::fs::File::create(stdout).expect("an output file")))
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium runs") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium {args:?} exited {status}");
    let _ = std::fs::remove_dir_all(&profile);
}

/// The DOM Chromium builds from `page`, and a screenshot of it beside the page (`.png`); `None`
/// when Chromium is not installed.
fn rendered_by_chromium(page: &Path) -> Option<String> {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
        return None;
    };
    let dom = page.with_extension("dom.html");
    run_chromium(&chromium, page, &["--dump-dom".to_owned()], &dom);
    let png = page.with_extension("png");
    let screenshot = [format!("--screenshot={}", png.display()), "--window-size=1400,1800".to_owned()];
    run_chromium(&chromium, page, &screenshot, &page.with_extension("screenshot.log"));
    let image = std::fs::read(&png).expect("a screenshot");
    assert!(image.starts_with(b"\x89PNG") && image.len() > 10_000, "{} is not a rendered page", png.display());
    eprintln!("screenshot: {}", png.display());
    Some(std::fs::read_to_string(&dom).expect("the DOM"))
}

#[test]
fn a_report_of_the_maintenance_night_shows_its_totals_and_timeline_in_a_browser() {
    // GIVEN the maintenance night, replayed with a report
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let report = scratch("report").join("r.html");
    let page = report.to_str().expect("utf-8");
    // WHEN it is replayed with --report
    let output = replay_history(&moto, &slack, &["events/histories/maintenance-night.jsonl", "--report", page]);
    let summary = summary(&output);
    // THEN the page holds the summary's totals, a timeline and the route's counts, and loads nothing
    let html = std::fs::read_to_string(&report).expect("the report is written");
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("report written to {page}")));
    assert_eq!(summary["restarts"], 1);
    for expected in [
        "maintenance-night.jsonl",
        "<div class=\"label\">Events</div><div class=\"value\">22</div>",
        "<div class=\"label\">Restarts</div><div class=\"value\">1</div><div class=\"detail\">1 verified</div>",
        "<div class=\"label\">Pages</div><div class=\"value\">0</div>",
        "<b>10</b>maintenance",
        "<svg class=\"timeline\"",
        ">web-nginx</text>",
        "<td><strong>web-nginx</strong></td>",
    ] {
        assert!(html.contains(expected), "{expected} is missing from {}", report.display());
    }
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("id=\"differences\""));
    // and a browser draws it: the timeline and the totals are in the DOM it built
    if let Some(dom) = rendered_by_chromium(&report) {
        assert!(dom.contains("<svg class=\"timeline\""), "no timeline in the DOM");
        assert!(dom.contains("<div class=\"label\">Events</div><div class=\"value\">22</div>"), "no totals in the DOM");
        assert!(dom.contains("id=\"by-route\""));
    }
}

#[test]
fn a_compare_report_shows_both_rule_sets_and_is_written_when_a_limit_fails_the_run() {
    // GIVEN the shipped notify-only rules (A) against the sample rules (B), limited to no restarts
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let report = scratch("report-compare").join("r.html");
    let output = replay_history(
        &moto,
        &slack,
        &[
            "--quiet",
            "events/histories/maintenance-night.jsonl",
            "--routes",
            "infra/routes.yaml",
            "--compare",
            "infra/routes.example.yaml",
            "--max-restarts",
            "0",
            "--report",
            report.to_str().expect("utf-8"),
        ],
    );
    // WHEN B restarts once, over the limit
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    // THEN the report is written all the same, with both rule sets and what differs
    let html = std::fs::read_to_string(&report).expect("the report is written despite exit 3");
    for expected in [
        "<code>infra/routes.yaml</code>",
        "<code>infra/routes.example.yaml</code>",
        "22 transitions differ",
        "<tr class=\"changed\"><td>restarts</td><td class=\"zero\">0</td><td>1</td><td class=\"up\">+1</td></tr>",
        "id=\"comparison-chart\"",
    ] {
        assert!(html.contains(expected), "{expected} is missing from {}", report.display());
    }
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 2, "one timeline per rule set");
    let failure = html.find("<td>21</td>").expect("line 21 differs");
    let row = html.get(failure..).and_then(|rest| rest.split("</tr>").next()).expect("its row");
    assert!(row.contains("<span class=\"pill notify\">notified</span>"), "A notified: {row}");
    assert!(row.contains("<span class=\"pill restart\">restarted</span>"), "B restarted: {row}");
    if let Some(dom) = rendered_by_chromium(&report) {
        assert_eq!(dom.matches("<svg class=\"timeline\"").count(), 2);
        assert!(dom.contains("id=\"comparison-chart\"") && dom.contains("id=\"differences-table\""));
        assert!(dom.contains("<td>restarts</td>"), "the totals side by side");
    }
}

#[test]
fn an_alarm_name_with_markup_is_text_in_the_report() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let dir = scratch("report-escape");
    // GIVEN a history whose alarm is named with a script tag and an ampersand
    let night = std::fs::read_to_string(repo_root().join("events/histories/maintenance-night.jsonl")).expect("night");
    let evil = "web-nginx-<script>alert(1)</script>&co";
    let lines: Vec<String> = night.lines().take(2).map(|l| l.replace("web-nginx-down-host-000", evil)).collect();
    let history = dir.join("evil.jsonl");
    std::fs::write(&history, lines.join("\n")).expect("history");
    let report = dir.join("r.html");
    // WHEN it is replayed with a report
    let output = replay_history(
        &moto,
        &slack,
        &["--quiet", history.to_str().expect("utf-8"), "--report", report.to_str().expect("utf-8")],
    );
    summary(&output);
    // THEN the name is text, escaped, and no script element exists, in the file or in a browser
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(html.contains("web-nginx-&lt;script&gt;alert(1)&lt;/script&gt;&amp;co"), "{html}");
    assert!(!html.contains("<script"));
    if let Some(dom) = rendered_by_chromium(&report) {
        assert!(!dom.contains("<script"), "the browser made a script element");
    }
}

#[test]
fn a_report_into_a_missing_folder_is_refused_before_anything_runs() {
    // No emulator: the path is checked first.
    let output = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(["history", "events/histories/storm.jsonl", "--report", "/no/such/folder/r.html"])
        .current_dir(repo_root())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("replay runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ReportNotWritten: cannot write the report to /no/such/folder/r.html"), "{stderr}");
}
