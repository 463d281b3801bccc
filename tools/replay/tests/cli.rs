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
fn a_jsonata_definition_is_refused_by_name() {
    let dir = scratch("jsonata");
    write(
        &dir,
        "machine.json",
        &json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
    );
    write(&dir, "input.json", &json!({}));
    let output = replay(&["run", "machine.json", "--input", "input.json"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("JSONata"));
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
