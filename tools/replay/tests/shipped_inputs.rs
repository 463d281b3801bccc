//! The execution inputs shipped in `events/first-response/` for `replay run`: each is exactly what
//! the alarm router starts the first-response state machine with for its alarm, and `replay run`
//! (the binary, as the README has it) ends each the way the README says, against this test's moto
//! and Slack emulators.

use std::path::Path;
use std::process::{Command, Output};

use local_invoke::{Emulator, Function, emulator_config};
use serde_json::{Value, json};
use workspace_tests::{MotoServer, SlackEmulator, read, repo_root};

const DEFINITION: &str = "statemachines/first-response.asl.json";
const MOCKS: &str = "statemachines/mocks/first-response.json";

/// A shipped input, and how `replay run` ends it with the given options.
struct Run {
    input: &'static str,
    options: &'static [&'static str],
    status: &'static str,
    error: Option<&'static str>,
    /// States the execution must have entered, in this order (not necessarily one after another).
    path: &'static [&'static str],
}

/// Every run the README's table of shipped inputs lists.
const RUNS: [Run; 4] = [
    Run {
        input: "events/first-response/restart-verified.json",
        options: &[],
        status: "SUCCEEDED",
        error: None,
        path: &["Restart", "Wait Before Checking", "Check Recovery", "Verified?", "Write Recovery Page", "Recovered"],
    },
    Run {
        input: "events/first-response/restart-verified.json",
        options: &["--alarm-stays"],
        status: "FAILED",
        error: Some("Escalated"),
        path: &["Restart", "Check Recovery", "Verified?", "Write Escalation Page", "Escalate", "Escalated"],
    },
    Run {
        input: "events/first-response/restart-verified.json",
        options: &["--mocks", MOCKS, "--test-case", "BreakerOpen"],
        status: "FAILED",
        error: Some("Escalated"),
        path: &["Count Recent Failures", "Breaker Open?", "Write Escalation Page", "Escalate", "Escalated"],
    },
    Run {
        input: "events/first-response/no-managed-instance.json",
        options: &[],
        status: "FAILED",
        error: Some("Escalated"),
        path: &["Restart", "Check Recovery", "Write Escalation Page", "Escalate", "Escalated"],
    },
];

/// The alarm event the router starts each shipped input for.
fn alarm_of(input: &str) -> Value {
    let mut event = workspace_tests::event("alarm-router/metric-alarm.json");
    if input.ends_with("no-managed-instance.json") {
        // The same alarm on the app fleet, whose route finds its instances by tag.
        let name = "app-fleet-app-server-down";
        event["detail"]["alarmName"] = json!(name);
        event["resources"][0] = json!(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"));
        event["detail"]["configuration"]["description"] = json!("app-server is not running on an app host");
        event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
            json!({"pattern": "app-server", "AutoScalingGroupName": "app"});
    }
    event
}

fn shipped_inputs() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("events/first-response"))
        .expect("events/first-response")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .map(|name| format!("events/first-response/{name}"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_input_has_a_run_here() {
    let inputs = shipped_inputs();
    assert!(!inputs.is_empty());
    for input in &inputs {
        assert!(RUNS.iter().any(|run| run.input == input), "{input} has no run in RUNS");
    }
}

#[tokio::test]
async fn each_shipped_input_is_what_the_router_starts_for_its_alarm() {
    for input in shipped_inputs() {
        // GIVEN a fresh emulator and the sample rules
        let moto = MotoServer::start();
        let config = emulator_config(&moto.endpoint).await;
        let emulator = Emulator::prepare(&config).await.expect("emulator resources");
        // WHEN the router handles the input's alarm
        let decision = local_invoke::invoke(Function::AlarmRouter, alarm_of(&input), &config, &emulator)
            .await
            .unwrap_or_else(|d| panic!("{input}: the router failed: {}: {}", d.error_type, d.error_message));
        let execution_arn = decision["outcome"]["executionArn"].as_str().unwrap_or_else(|| panic!("{decision}"));
        // THEN the execution it started has exactly the shipped input
        let started = replay::recorded_input(&aws_sdk_sfn::Client::new(&config), execution_arn).await.expect("input");
        let shipped: Value = serde_json::from_str(&read(&input)).expect("JSON");
        assert_eq!(shipped, started, "{input} is not what the router starts:\n{started:#}");
    }
}

fn replay_run(run: &Run, moto: &MotoServer, slack: &SlackEmulator, history: &Path) -> Output {
    let history = history.to_string_lossy();
    let mut args = vec!["run", DEFINITION, "--input", run.input, "--quiet", "--history", &history];
    args.extend(run.options);
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(&args)
        .current_dir(repo_root())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "eu-west-1")
        .env("SLACK_API_URL", &slack.api_url)
        .env_remove("ROUTES_FILE")
        .output()
        .expect("replay runs")
}

/// The states an execution entered, from the history `--history` wrote.
fn entered(history: &Path) -> Vec<String> {
    let history: Value = serde_json::from_str(&std::fs::read_to_string(history).expect("history")).expect("JSON");
    history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.ends_with("StateEntered")))
        .filter_map(|e| e["stateEnteredEventDetails"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Whether `path` holds `states` in this order.
fn passes_through(path: &[String], states: &[&str]) -> bool {
    let mut rest = path.iter();
    states.iter().all(|state| rest.any(|entered| entered == state))
}

#[test]
fn replay_run_ends_each_shipped_input_as_the_readme_says() {
    let scratch = std::env::temp_dir().join(format!("replay-shipped-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    for (n, run) in RUNS.iter().enumerate() {
        // GIVEN fresh emulators
        let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
        let history = scratch.join(format!("history-{n}.json"));
        // WHEN replay run runs the shipped input
        let output = replay_run(run, &moto, &slack, &history);
        let label = format!("{} {}", run.input, run.options.join(" "));
        let stderr = String::from_utf8_lossy(&output.stderr);
        // THEN it ends as documented, with the exit code that goes with it, through the documented states
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result: Value = stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| panic!("{label}: no result line: {stdout}\n{stderr}"));
        assert_eq!(result["status"], run.status, "{label}: {result}\n{stderr}");
        assert_eq!(result["error"].as_str(), run.error, "{label}: {result}");
        let code = if run.status == "SUCCEEDED" { 0 } else { 1 };
        assert_eq!(output.status.code(), Some(code), "{label}: {stderr}");
        let path = entered(&history);
        assert!(passes_through(&path, run.path), "{label}: {path:?}");
    }
}
