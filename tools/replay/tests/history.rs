//! `replay history` on the sample histories of events/histories/, as a tester runs it: the binary,
//! against a moto server and the Slack emulator, one summary line on stdout.

use std::process::{Command, Output};

use serde_json::{Value, json};
use workspace_tests::{MotoServer, SlackEmulator, repo_root};

fn replay_history(moto: &MotoServer, slack: &SlackEmulator, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg("history")
        .args(args)
        .current_dir(repo_root())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("SLACK_API_URL", &slack.api_url)
        .env_remove("ROUTES_FILE")
        .output()
        .expect("replay runs")
}

fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}\nstdout: {stdout}\nstderr: {stderr}", output.status);
    serde_json::from_str(stdout.lines().last().expect("a summary line")).expect("JSON summary")
}

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
