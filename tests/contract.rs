//! Contracts between the pieces: the error names the ASL matches are the ones the Rust code
//! emits, every ASL placeholder is filled by the template, and the template builds the binaries
//! the workspace has.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;
use workspace_tests::{read, repo_root};

fn definition() -> Value {
    serde_json::from_str(&read("statemachines/first-response.asl.json")).expect("ASL is JSON")
}

fn template() -> Yaml {
    serde_yaml_ng::from_str(&read("infra/template.yaml")).expect("template is YAML")
}

/// The error names each Lambda-backed placeholder's function can return.
fn emitted_by(resource: &str) -> Option<Vec<&'static str>> {
    match resource {
        "${FailureCounterFunctionArn}" => Some(failure_counter::CounterError::names()),
        "${RestartAndVerifyFunctionArn}" => Some(restart_and_verify::RestartError::names()),
        "${SlackChannelCreatorFunctionArn}" => Some(slack_channel_creator::WarRoomError::names()),
        _ => None,
    }
}

/// Every error name in the task's Retry and Catch lists, with which list it came from.
fn matched_names(state: &Value) -> Vec<(&'static str, String)> {
    let mut names = Vec::new();
    for (list, kind) in [("Retry", "Retry"), ("Catch", "Catch")] {
        for rule in state[list].as_array().into_iter().flatten() {
            for name in rule["ErrorEquals"].as_array().into_iter().flatten() {
                names.push((kind, name.as_str().expect("error names are strings").to_owned()));
            }
        }
    }
    names
}

fn is_predefined(name: &str) -> bool {
    name.starts_with("States.") || name.starts_with("Lambda.")
}

#[test]
fn every_error_name_the_asl_matches_is_one_the_function_emits() {
    let definition = definition();
    let mut checked = 0;
    for (state_name, state) in definition["States"].as_object().expect("States") {
        let Some(emitted) = state["Resource"].as_str().and_then(emitted_by) else { continue };
        for (list, name) in matched_names(state) {
            if is_predefined(&name) {
                continue;
            }
            assert!(emitted.contains(&name.as_str()), "{state_name} {list}s {name:?}, which the function never emits");
            checked += 1;
        }
    }
    assert!(checked >= 5, "expected the ASL to match the functions' named errors, checked {checked}");
}

#[test]
fn only_transient_errors_are_retried_and_every_final_error_is_caught() {
    let definition = definition();
    for (state_name, state) in definition["States"].as_object().expect("States") {
        let Some(emitted) = state["Resource"].as_str().and_then(emitted_by) else { continue };
        let names = matched_names(state);
        let retried: BTreeSet<&str> =
            names.iter().filter(|(l, n)| *l == "Retry" && !is_predefined(n)).map(|(_, n)| n.as_str()).collect();
        assert_eq!(retried, BTreeSet::from(["TransientError"]), "{state_name} retries {retried:?}");
        let caught: BTreeSet<&str> = names.iter().filter(|(l, _)| *l == "Catch").map(|(_, n)| n.as_str()).collect();
        for name in emitted.iter().filter(|n| **n != "TransientError") {
            assert!(
                caught.contains(name) || caught.contains("States.ALL"),
                "{state_name} lets final error {name} fail the execution without escalating"
            );
        }
    }
}

#[test]
fn every_placeholder_in_the_asl_is_substituted_by_the_template_and_nothing_else() {
    let placeholder = Regex::new(r"\$\{([A-Za-z0-9]+)\}").expect("regex");
    let asl = read("statemachines/first-response.asl.json");
    let used: BTreeSet<String> = placeholder.captures_iter(&asl).map(|c| c[1].to_owned()).collect();
    let template = template();
    let substitutions = template["Resources"]["FirstResponseStateMachine"]["Properties"]["DefinitionSubstitutions"]
        .as_mapping()
        .expect("the state machine has DefinitionSubstitutions");
    let given: BTreeSet<String> = substitutions.keys().map(|k| k.as_str().expect("string keys").to_owned()).collect();
    assert!(!used.is_empty());
    assert_eq!(used, given, "ASL placeholders and template substitutions differ");
    let uri = template["Resources"]["FirstResponseStateMachine"]["Properties"]["DefinitionUri"].as_str();
    assert_eq!(uri, Some("../statemachines/first-response.asl.json"));
}

#[test]
fn the_asl_holds_no_account_specific_arns() {
    let arn = Regex::new(r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:\d{12}:").expect("regex");
    let asl = read("statemachines/first-response.asl.json");
    assert!(!arn.is_match(&asl), "ARNs belong in DefinitionSubstitutions: {:?}", arn.find(&asl));
}

#[test]
fn every_function_in_the_template_builds_a_workspace_binary_with_sample_events() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut binaries = BTreeSet::new();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().expect("logical id");
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().expect("BuildProperties.Binary");
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}");
        let pascal: String = binary.split('-').map(|part| part[..1].to_uppercase() + &part[1..]).collect();
        assert_eq!(id, format!("{pascal}Function"), "logical id follows the binary name");
        assert!(repo_root().join("functions").join(binary).join("src/main.rs").exists(), "{binary} has no package");
        let events = std::fs::read_dir(repo_root().join("events").join(binary)).expect("events folder").count();
        assert!(events > 0, "{binary} has no sample events");
        binaries.insert(binary.to_owned());
    }
    assert_eq!(
        binaries,
        BTreeSet::from([
            "alarm-router".to_owned(),
            "failure-counter".to_owned(),
            "restart-and-verify".to_owned(),
            "slack-channel-creator".to_owned(),
        ])
    );
}

#[test]
fn every_sample_event_is_json() {
    for folder in std::fs::read_dir(repo_root().join("events")).expect("events") {
        let folder = folder.expect("entry").path();
        for file in std::fs::read_dir(&folder).expect("folder") {
            let path = file.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("readable");
                serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }
}
