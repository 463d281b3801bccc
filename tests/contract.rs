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
        "${AlarmRouterFunctionArn}" => Some(alarm_router::RouterError::names()),
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
        assert!(retried.iter().all(|n| *n == "TransientError"), "{state_name} retries {retried:?}");
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
        // The PagerDuty webhook is the war room's binary behind its own Function URL and concurrency.
        let webhook = id == "PagerDutyWebhookFunction" && binary == "slack-channel-creator";
        assert!(webhook || id == format!("{pascal}Function"), "{id}: the logical id follows the binary name");
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

/// The longest a Task can take, retries and back-off included: every attempt runs to its
/// `TimeoutSeconds`, and every wait is the longest the back-off allows.
fn task_budget(state_name: &str, state: &Value) -> u64 {
    let timeout = state["TimeoutSeconds"].as_u64().unwrap_or_else(|| panic!("{state_name} has no TimeoutSeconds"));
    let mut attempts = 1;
    let mut waits = 0.0;
    for rule in state["Retry"].as_array().into_iter().flatten() {
        let max = rule["MaxAttempts"].as_u64().unwrap_or(3);
        let interval = rule["IntervalSeconds"].as_f64().unwrap_or(1.0);
        let rate = rule["BackoffRate"].as_f64().unwrap_or(2.0);
        let cap = rule["MaxDelaySeconds"].as_f64().unwrap_or(f64::MAX);
        attempts += max;
        waits += (0..max).map(|n| (interval * rate.powi(n as i32)).min(cap)).sum::<f64>();
    }
    timeout * attempts + waits.ceil() as u64
}

#[test]
fn the_execution_timeout_exceeds_the_worst_case_of_every_task_budget_and_the_verification_loop() {
    use restart_and_verify::{ALARM_CHECK_SECONDS, COMMAND_CHECK_SECONDS, REPORTING_GRACE_SECONDS};
    use shared::routing::{MAX_RECOVERY_SECONDS, MAX_REMEDIATION_TIMEOUT_SECONDS};
    let definition = definition();
    let states = &definition["States"];
    let budget = |name: &str| task_budget(name, &states[name]);
    // The loop ends, on the state machine's own clock, once the command has had the route's longest
    // timeout and the alarm its longest recovery time; the check that notices may itself take one
    // whole budget, after one more wait.
    let verification = MAX_REMEDIATION_TIMEOUT_SECONDS
        + REPORTING_GRACE_SECONDS as u64
        + MAX_RECOVERY_SECONDS
        + budget("Check Recovery")
        + COMMAND_CHECK_SECONDS.max(ALARM_CHECK_SECONDS);
    let ending = budget("Notify Recovered").max(budget("Escalate") + budget("Open Incident") + budget("Open War Room"));
    let worst = budget("Count Recent Failures") + budget("Restart") + verification + ending;
    let timeout = definition["TimeoutSeconds"].as_u64().expect("the execution has a TimeoutSeconds");
    assert!(
        timeout >= worst,
        "TimeoutSeconds {timeout} is below the worst case {worst}: the execution would end TIMED_OUT"
    );
    assert_eq!(timeout, shared::EXECUTION_TIMEOUT_SECONDS, "the failure counter pages back by this timeout");
}

#[test]
fn every_task_outlasts_its_lambdas_timeout_in_the_template() {
    let template = template();
    let default = template["Globals"]["Function"]["Timeout"].as_u64().expect("a global Lambda timeout");
    let lambda_timeout = |placeholder: &str| {
        let id = placeholder.trim_start_matches("${").trim_end_matches("Arn}");
        template["Resources"][id]["Properties"]["Timeout"].as_u64().unwrap_or(default)
    };
    let definition = definition();
    let mut checked = 0;
    for (name, state) in definition["States"].as_object().expect("States") {
        if state["Type"] != "Task" {
            continue;
        }
        let timeout = state["TimeoutSeconds"].as_u64().unwrap_or_else(|| panic!("{name} has no TimeoutSeconds"));
        let resource = state["Resource"].as_str().expect("resource");
        if emitted_by(resource).is_some() {
            assert!(timeout >= lambda_timeout(resource), "{name}: {timeout}s is below its Lambda's timeout");
            checked += 1;
        }
    }
    assert!(checked >= 4, "checked {checked} Lambda tasks");
}

#[test]
fn the_restart_waits_in_the_state_machine_never_in_a_lambda() {
    let definition = definition();
    let states = &definition["States"];
    assert_eq!(states["Wait Before Checking"]["SecondsPath"], "$.remediation.waitSeconds");
    assert_eq!(states["Restart"]["Next"], "Wait Before Checking");
    assert_eq!(states["Check Recovery"]["Next"], "Verified?");
    for step in ["Restart", "Check Recovery"] {
        assert_eq!(
            states[step]["Parameters"]["now.$"], "$$.State.EnteredTime",
            "{step} measures on the execution's clock"
        );
    }
}

#[test]
fn the_ssm_documents_allowed_pattern_accepts_every_unit_the_rules_restart() {
    let template = template();
    let document = &template["Resources"]["RestartServiceDocument"]["Properties"];
    assert_eq!(document["DocumentType"].as_str(), Some("Command"));
    let parameters = &document["Content"]["parameters"];
    for name in [
        restart_and_verify::UNIT_PARAMETER,
        restart_and_verify::SETTLE_PARAMETER,
        restart_and_verify::EXECUTION_TIMEOUT_PARAMETER,
    ] {
        assert!(parameters[name]["allowedPattern"].is_string(), "the document has no checked parameter {name}");
    }
    let unit = Regex::new(parameters[restart_and_verify::UNIT_PARAMETER]["allowedPattern"].as_str().expect("pattern"))
        .expect("the allowedPattern is a regex");
    // The deployed rules (notify-only as shipped) and the example rules operators copy from.
    let mut units = 0;
    for routes in [shared::Routes::deployed().expect("deployed rules"), shared::Routes::example().expect("example")] {
        for (route, remediation) in routes.remediations() {
            assert!(
                unit.is_match(&remediation.service),
                "route {route}: the document refuses {:?}",
                remediation.service
            );
            units += 1;
        }
    }
    assert!(units >= 1, "the rules restart no unit");
    for hostile in ["nginx; reboot", "$(id)", "a b", "", "x\ny"] {
        assert!(!unit.is_match(hostile), "the document accepts {hostile:?}");
    }
}

#[test]
fn every_message_the_state_machine_publishes_carries_the_documented_attributes() {
    let definition = definition();
    let kinds = ["escalation", "incident", "notification", "recovery"];
    let mut publishers = 0;
    for (state_name, state) in definition["States"].as_object().expect("States") {
        if state["Resource"].as_str() != Some("arn:aws:states:::sns:publish") {
            continue;
        }
        publishers += 1;
        let attributes = state["Parameters"]["MessageAttributes"].as_object().expect("MessageAttributes");
        let names: Vec<&str> = attributes.keys().map(String::as_str).collect();
        let mut expected = shared::page::ATTRIBUTE_NAMES.to_vec();
        expected.sort_unstable();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected, "{state_name}");
        for (name, value) in attributes {
            assert_eq!(value["DataType"], "String", "{state_name}.{name}");
        }
        assert_eq!(attributes["severity"]["StringValue.$"], "$.route.severity", "{state_name}");
        // The escalation is about the ALARM that started the execution; a recovery is verified OK.
        let recovery = attributes["kind"]["StringValue"] == "recovery";
        let alarm_state = &attributes["state"][if recovery { "StringValue" } else { "StringValue.$" }];
        assert_eq!(alarm_state, if recovery { "OK" } else { "$.alarm.state" }, "{state_name}");
        assert_eq!(attributes["route"]["StringValue.$"], "$.route.name", "{state_name}");
        let kind = attributes["kind"]["StringValue"].as_str().unwrap_or_default();
        assert!(kinds.contains(&kind), "{state_name}: kind {kind:?}");
        // What people read is a page the router wrote (or its plain fallback), never raw JSON.
        assert_eq!(state["Parameters"]["Message.$"], "$.page.message", "{state_name}");
        assert!(!state.to_string().contains("JsonToString"), "{state_name} publishes JSON");
    }
    assert_eq!(publishers, 2, "the escalation and the recovery");
}
