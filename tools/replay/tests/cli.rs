//! The `replay` binary as testers use it: one JSON line on stdout, the exit code, the history file,
//! refusals. These definitions have no tasks, so no emulator is needed.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn replay(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .current_dir(dir)
        // Nothing listens here: the runner must not need AWS for a definition without tasks.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("replay runs")
}

fn write(dir: &Path, name: &str, value: &Value) {
    std::fs::write(dir.join(name), value.to_string()).expect("write");
}

fn last_json_line(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().expect("a line on stdout")).expect("JSON")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("replay-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn run_prints_the_result_and_writes_the_history() {
    let dir = scratch("run");
    write(
        &dir,
        "machine.json",
        &json!({"StartAt": "Wait", "States": {
            "Wait": {"Type": "Wait", "Seconds": 600, "Next": "Greet"},
            "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hello {}', $.name)"}, "End": true}
        }}),
    );
    write(&dir, "input.json", &json!({"name": "ops"}));
    let output = replay(&["run", "machine.json", "--input", "input.json", "--history", "history.json"], &dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(last_json_line(&output), json!({"status": "SUCCEEDED", "output": {"greeting": "hello ops"}}));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("600.000s of virtual time"), "{stderr}");
    let history: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).expect("history"))
        .expect("history is JSON");
    let kinds: Vec<&str> =
        history["events"].as_array().expect("events").iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"ExecutionStarted"));
    assert_eq!(kinds.last(), Some(&"ExecutionSucceeded"));
    assert!(kinds.contains(&"WaitStateEntered"));
}

#[test]
fn a_failed_execution_exits_non_zero_with_its_error() {
    let dir = scratch("fail");
    write(
        &dir,
        "machine.json",
        &json!({"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Escalated", "Cause": "paged"}}}),
    );
    write(&dir, "input.json", &json!({}));
    let output = replay(&["run", "machine.json", "--input", "input.json", "--quiet"], &dir);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(last_json_line(&output), json!({"status": "FAILED", "error": "Escalated", "cause": "paged"}));
}

#[test]
fn a_jsonata_state_machine_with_variables_runs_and_its_history_shows_the_assignments() {
    let dir = scratch("jsonata");
    write(
        &dir,
        "machine.json",
        &json!({"QueryLanguage": "JSONata", "StartAt": "Remember", "States": {
            "Remember": {"Type": "Pass", "Assign": {"who": "{% $states.input.name %}"}, "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [
                {"Condition": "{% $who = 'ops' %}", "Next": "Greet"}], "Default": "Stop"},
            "Greet": {"Type": "Pass", "Output": {"greeting": "{% 'hello ' & $who %}"}, "End": true},
            "Stop": {"Type": "Fail", "Error": "Stranger"}
        }}),
    );
    write(&dir, "input.json", &json!({"name": "ops"}));
    let output = replay(&["run", "machine.json", "--input", "input.json", "--history", "history.json"], &dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(last_json_line(&output), json!({"status": "SUCCEEDED", "output": {"greeting": "hello ops"}}));
    let history: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).expect("history"))
        .expect("history is JSON");
    let remembered = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "PassStateExited")
        .expect("the first Pass state exited");
    assert_eq!(remembered["stateExitedEventDetails"]["assignedVariables"], json!({"who": "\"ops\""}));
}

#[test]
fn what_replay_cannot_run_faithfully_is_refused_by_name() {
    let dir = scratch("refused");
    write(
        &dir,
        "machine.json",
        &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"x": 1}, "End": true}}}),
    );
    write(&dir, "input.json", &json!({}));
    let output = replay(&["run", "machine.json", "--input", "input.json"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Assign in a JSONPath state"));
    assert!(output.stdout.is_empty());
}

#[test]
fn the_diagram_of_the_product_state_machine_is_mermaid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = replay(&["diagram", "statemachines/first-response.asl.json"], &root);
    assert!(output.status.success());
    let mermaid = String::from_utf8_lossy(&output.stdout);
    assert!(mermaid.starts_with("flowchart TD"));
    for state in ["Count Recent Failures", "Restart", "Check Recovery", "Escalate", "Open War Room", "Escalated"] {
        assert!(mermaid.contains(&format!("\"{state}\"")), "{state} missing");
    }
}

fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A definition that would run for ten minutes of virtual time, and its input.
fn waiting_machine(dir: &Path) {
    write(
        dir,
        "machine.json",
        &json!({"StartAt": "Wait", "States": {
            "Wait": {"Type": "Wait", "Seconds": 600, "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }}),
    );
    write(dir, "input.json", &json!({}));
}

#[test]
fn a_history_file_in_a_missing_folder_is_refused_before_anything_runs() {
    // GIVEN a history path whose folder does not exist
    let dir = scratch("history-folder");
    waiting_machine(&dir);
    // WHEN replay run is asked to write it
    let output = replay(&["run", "machine.json", "--input", "input.json", "--history", "no/such/folder/h.json"], &dir);
    // THEN it is refused by name, with exit code 2, and nothing ran
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "replay: HistoryNotWritten: cannot write the execution history to no/such/folder/h.json: no folder no/such/folder"
    );
    assert!(output.stdout.is_empty(), "no result: nothing ran");
}

#[test]
fn a_history_path_that_is_a_folder_is_refused_before_anything_runs() {
    let dir = scratch("history-is-folder");
    waiting_machine(&dir);
    std::fs::create_dir_all(dir.join("histories")).expect("folder");
    let output = replay(&["run", "machine.json", "--input", "input.json", "--history", "histories"], &dir);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("replay: HistoryNotWritten: cannot write the execution history to histories:"),
        "{stderr}"
    );
    assert!(!stderr.contains("replaying"), "nothing ran: {stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn replay_event_refuses_a_bad_history_path_before_it_routes_the_alarm() {
    // GIVEN no emulator at all (the router could not run), and a history path that cannot be written
    let root = repo_root();
    let output = replay(
        &["event", "events/alarm-router/metric-alarm.json", "--history", "/no/such/folder/h.json", "--quiet"],
        &root,
    );
    // THEN the history path is what is refused: nothing was routed, no emulator was asked
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("replay: HistoryNotWritten: "), "{stderr}");
    assert!(!stderr.contains("emulator"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_writable_history_path_is_left_alone_until_the_execution_has_run() {
    // GIVEN an existing history file from an earlier run
    let dir = scratch("history-existing");
    waiting_machine(&dir);
    std::fs::write(dir.join("history.json"), "earlier").expect("write");
    // WHEN a new run writes its history there
    let output =
        replay(&["run", "machine.json", "--input", "input.json", "--history", "history.json", "--quiet"], &dir);
    // THEN the file holds the new run's history
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let history: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).expect("history")).expect("JSON");
    assert_eq!(history["events"][0]["type"], "ExecutionStarted");
}

/// `replay diagram FILE` on a file that is not a state machine: exit 2, nothing drawn, and a
/// message naming the file and saying what it is.
fn assert_not_a_state_machine(file: &str, dir: &Path, what: &str) {
    let output = replay(&["diagram", file], dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
    assert!(output.stdout.is_empty(), "{file}: nothing is drawn");
    let expected = format!("replay: NotAStateMachine: {file} is not a state machine definition: it is");
    assert!(stderr.starts_with(&expected), "{file}: {stderr}");
    assert!(stderr.contains(what), "{file}: expected {what:?} in {stderr}");
}

#[test]
fn the_diagram_of_a_sam_template_is_refused_as_not_a_state_machine() {
    assert_not_a_state_machine("infra/template.yaml", &repo_root(), "a SAM or CloudFormation template");
    let dir = scratch("template-json");
    write(
        &dir,
        "template.json",
        &json!({"AWSTemplateFormatVersion": "2010-09-09", "Transform": "AWS::Serverless-2016-10-31", "Resources": {}}),
    );
    assert_not_a_state_machine("template.json", &dir, "a SAM or CloudFormation template");
}

#[test]
fn the_diagram_of_an_alarm_event_is_refused_as_not_a_state_machine() {
    assert_not_a_state_machine(
        "events/alarm-router/metric-alarm.json",
        &repo_root(),
        "an EventBridge event (CloudWatch Alarm State Change); `replay event FILE`",
    );
}

#[test]
fn the_diagram_of_an_execution_input_is_refused_as_not_a_state_machine() {
    assert_not_a_state_machine(
        "events/first-response/restart-verified.json",
        &repo_root(),
        "an execution input (alarm, route, incidentKey, notice); `replay run DEFINITION --input FILE` runs it",
    );
}

#[test]
fn the_diagram_of_a_mock_file_or_a_history_is_refused_as_not_a_state_machine() {
    let root = repo_root();
    assert_not_a_state_machine("statemachines/mocks/first-response.json", &root, "a mock file");
    assert_not_a_state_machine("events/histories/storm.jsonl", &root, "JSON Lines");
}

#[test]
fn the_diagram_of_text_that_is_not_json_is_refused_as_not_a_state_machine() {
    let dir = scratch("not-json");
    std::fs::write(dir.join("notes.txt"), "StartAt: Prepare\n").expect("write");
    assert_not_a_state_machine("notes.txt", &dir, "not JSON (");
}

#[test]
fn the_diagram_of_json_without_start_at_and_states_is_refused_as_not_a_state_machine() {
    let dir = scratch("no-states");
    write(&dir, "settings.json", &json!({"Comment": "not a machine", "TimeoutSeconds": 60}));
    assert_not_a_state_machine("settings.json", &dir, "a JSON object without \"StartAt\" or \"States\"");
}

#[test]
fn replay_run_refuses_a_definition_that_is_not_a_state_machine_before_anything_runs() {
    // GIVEN the definition and the input swapped, as a hurried user would
    let root = repo_root();
    let output = replay(
        &["run", "events/first-response/restart-verified.json", "--input", "statemachines/first-response.asl.json"],
        &root,
    );
    // THEN the definition is refused by name before the emulator is asked anything
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("replay: NotAStateMachine: events/first-response/restart-verified.json"), "{stderr}");
    assert!(!stderr.contains("emulator"), "{stderr}");
    assert!(output.stdout.is_empty());
}

/// The state names in the order the diagram declares their nodes.
fn drawn_states(mermaid: &str) -> Vec<String> {
    mermaid
        .lines()
        .filter_map(|line| {
            let (id, rest) = line.trim().split_once('"')?;
            (!id.contains(' ')).then(|| rest.split('"').next().unwrap_or_default().to_owned())
        })
        .collect()
}

#[test]
fn the_diagram_keeps_the_order_of_the_definition_at_every_level() {
    // GIVEN a definition whose state names are not in alphabetical order, in a Parallel's branches
    // and a Map's processor too
    let dir = scratch("order");
    std::fs::write(
        dir.join("machine.json"),
        r#"{"StartAt": "Zulu", "States": {
            "Zulu": {"Type": "Pass", "Next": "Mike"},
            "Mike": {"Type": "Parallel", "Next": "Kilo", "Branches": [
                {"StartAt": "Yankee", "States": {"Yankee": {"Type": "Pass", "Next": "Bravo"}, "Bravo": {"Type": "Succeed"}}}
            ]},
            "Kilo": {"Type": "Map", "Next": "Alpha", "ItemProcessor": {"StartAt": "Xray", "States": {
                "Xray": {"Type": "Pass", "Next": "Delta"}, "Delta": {"Type": "Succeed"}}}},
            "Alpha": {"Type": "Succeed"}
        }}"#,
    )
    .expect("write");
    // WHEN it is drawn
    let output = replay(&["diagram", "machine.json"], &dir);
    // THEN the states come in the order the file lists them, and the first is s1
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mermaid = String::from_utf8_lossy(&output.stdout);
    assert_eq!(drawn_states(&mermaid), ["Zulu", "Mike", "Yankee", "Bravo", "Kilo", "Xray", "Delta", "Alpha"]);
    assert!(mermaid.contains("    start((Start)) --> s1\n    s1[\"Zulu\"]\n"), "{mermaid}");
}

#[test]
fn the_diagram_of_the_product_state_machine_follows_the_file() {
    let output = replay(&["diagram", "statemachines/first-response.asl.json"], &repo_root());
    assert!(output.status.success());
    let drawn = drawn_states(&String::from_utf8_lossy(&output.stdout));
    let text = std::fs::read_to_string(repo_root().join("statemachines/first-response.asl.json")).expect("read");
    let mut listed: Vec<(usize, &str)> = drawn
        .iter()
        .map(|name| (text.find(&format!("\n    \"{name}\": {{")).expect("listed"), name.as_str()))
        .collect();
    let in_file_order = listed.windows(2).all(|w| w[0].0 < w[1].0);
    listed.sort();
    assert!(in_file_order, "{drawn:?}, but the file lists {listed:?}");
    assert_eq!(drawn.first().map(String::as_str), Some("Prepare"));
}

#[test]
fn replay_history_refuses_a_definition_that_is_not_a_state_machine_before_anything_runs() {
    // GIVEN no emulator (resetting it would be the first thing a history replay does)
    let root = repo_root();
    let output =
        replay(&["history", "events/histories/storm.jsonl", "--definition", "infra/template.yaml", "--quiet"], &root);
    // THEN the definition is refused by name, not the missing emulator
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("replay: NotAStateMachine: infra/template.yaml"), "{stderr}");
    assert!(output.stdout.is_empty());
}
