//! JSONata state machines with variables, run by the executor: the corpus in
//! `tests/corpus/jsonata.json` (each case names its source), what replay refuses, and the history.
//!
//! Task states in the corpus call two resources: `arn:aws:states:::echo` returns its arguments and
//! `arn:aws:states:::fail` fails with `Broken`.

use asl::{Definition, ExecutionSettings, Executor, Outcome, StatesError, Status, TaskCall, TaskRunner};
use serde_json::{Value, json};

const CORPUS: &str = include_str!("corpus/jsonata.json");

struct EchoOrFail;

impl TaskRunner for EchoOrFail {
    async fn run(&self, call: &TaskCall) -> Result<Value, StatesError> {
        match call.resource.as_str() {
            "arn:aws:states:::echo" => Ok(call.input.clone()),
            "arn:aws:states:::fail" => Err(StatesError::new("Broken", "the task failed on purpose")),
            other => Err(StatesError::new("Unexpected", format!("no such resource in the corpus: {other}"))),
        }
    }
}

async fn run(definition: &Value, input: &Value) -> Result<Outcome, String> {
    let definition = Definition::from_value(definition.clone()).map_err(|refused| format!("refused: {refused}"))?;
    let settings = ExecutionSettings::local("jsonata", "corpus");
    Ok(Executor::new(&EchoOrFail, &settings).run(&definition, input.clone()).await)
}

#[tokio::test]
async fn every_jsonata_corpus_case_gives_the_documented_result() {
    let cases: Vec<Value> = serde_json::from_str(CORPUS).expect("the corpus is a JSON array");
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("<no id>");
        assert!(case["source"].as_str().is_some_and(|s| !s.is_empty()), "{id} names no source");
        let outcome = match run(&case["definition"], &case["input"]).await {
            Ok(outcome) => outcome,
            Err(refused) => {
                failures.push(format!("{id}: {refused}"));
                continue;
            }
        };
        let problem = if let Some(expected) = case.get("output") {
            (outcome.output.as_ref() != Some(expected)).then(|| {
                format!("expected output {expected}, got {:?} {:?} {:?}", outcome.output, outcome.error, outcome.cause)
            })
        } else {
            let error = case["error"].as_str();
            let cause_ok = match (case.get("cause"), case["cause_contains"].as_str()) {
                (Some(cause), _) => outcome.cause.as_deref() == cause.as_str(),
                (None, Some(part)) => outcome.cause.as_deref().is_some_and(|c| c.contains(part)),
                (None, None) => true,
            };
            (outcome.status != Status::Failed || outcome.error.as_deref() != error || !cause_ok).then(|| {
                format!(
                    "expected error {error:?} ({}), got {:?} {:?} {:?}",
                    case, outcome.status, outcome.error, outcome.cause
                )
            })
        };
        if let Some(problem) = problem {
            failures.push(format!("{id}: {problem}"));
        }
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    println!("{} of {} JSONata corpus cases pass", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{} JSONata corpus cases fail (listed above)", failures.len());
}

fn refusal(definition: Value) -> String {
    match Definition::from_value(definition) {
        Ok(_) => panic!("the definition should be refused"),
        Err(refused) => refused.to_string(),
    }
}

fn jsonata_pass(extra: Value) -> Value {
    let mut state = json!({"Type": "Pass", "End": true});
    for (k, v) in extra.as_object().expect("object") {
        state[k] = v.clone();
    }
    json!({"QueryLanguage": "JSONata", "StartAt": "Only", "States": {"Only": state}})
}

#[test]
fn a_jsonpath_field_in_a_jsonata_state_is_refused_by_name() {
    let why = refusal(jsonata_pass(json!({"Parameters": {"a.$": "$.a"}})));
    assert!(why.contains("\"Parameters\"") && why.contains("JSONPath"), "{why}");
    let why = refusal(jsonata_pass(json!({"OutputPath": "$.a"})));
    assert!(why.contains("\"OutputPath\""), "{why}");
}

#[test]
fn a_jsonata_field_in_a_jsonpath_state_is_refused_by_name() {
    let why =
        refusal(json!({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "Output": {"a": 1}, "End": true}}}));
    assert!(why.contains("\"Output\"") && why.contains("JSONata"), "{why}");
}

#[test]
fn variables_in_jsonpath_states_are_refused_rather_than_guessed() {
    let why =
        refusal(json!({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "Assign": {"a": 1}, "End": true}}}));
    assert!(why.contains("Assign in a JSONPath state"), "{why}");
}

#[test]
fn invalid_jsonata_is_refused_at_load_with_the_field() {
    let why = refusal(jsonata_pass(json!({"Output": {"a": "{% $states.input. %}"}})));
    assert!(why.contains("Output") && why.contains("not valid JSONata"), "{why}");
    let choice = json!({"QueryLanguage": "JSONata", "StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% ( %}", "Next": "D"}], "Default": "D"},
        "D": {"Type": "Succeed"}}});
    assert!(refusal(choice).contains("Choices[0].Condition"));
}

#[test]
fn a_jsonpath_state_inside_a_jsonata_machine_is_refused() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Only", "States": {
        "Only": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}});
    assert!(refusal(definition).contains("JSONPath in a JSONata state machine"));
}

#[test]
fn bad_variable_names_and_reserved_states_are_refused() {
    assert!(refusal(jsonata_pass(json!({"Assign": {"9lives": 1}}))).contains("not a variable name"));
    assert!(refusal(jsonata_pass(json!({"Assign": {"states": 1}}))).contains("reserved"));
}

#[test]
fn an_inner_scope_assigning_an_outer_variable_is_refused() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"total": 0}, "Next": "Each"},
        "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "Add", "States": {
            "Add": {"Type": "Pass", "Assign": {"total": "{% $total + 1 %}"}, "End": true}}}, "End": true}}});
    let why = refusal(definition);
    assert!(why.contains("$total") && why.contains("outer"), "{why}");
}

#[tokio::test]
async fn the_history_shows_assigned_variables_as_aws_writes_them() {
    let definition = jsonata_pass(json!({"Assign": {"who": "{% $states.input.name %}", "n": 2}}));
    let outcome = run(&definition, &json!({"name": "Ada"})).await.expect("runs");
    let exited = outcome.history.iter().find(|e| e.kind == "PassStateExited").expect("exited");
    assert_eq!(exited.details["stateExitedEventDetails"]["assignedVariables"], json!({"who": "\"Ada\"", "n": "2"}));
    assert_eq!(exited.details["stateExitedEventDetails"]["assignedVariablesDetails"], json!({"truncated": false}));
    let entered = outcome.history.iter().find(|e| e.kind == "PassStateEntered").expect("entered");
    assert!(entered.details["stateEnteredEventDetails"].get("assignedVariables").is_none());
}

#[tokio::test]
async fn random_and_uuid_repeat_from_one_replay_to_the_next() {
    let definition = jsonata_pass(json!({"Output": {"r": "{% $random() %}", "id": "{% $uuid() %}"}}));
    let first = run(&definition, &json!({})).await.expect("runs").output;
    let second = run(&definition, &json!({})).await.expect("runs").output;
    assert!(first.is_some());
    assert_eq!(first, second, "a replay is repeatable: the generator is seeded");
}

#[tokio::test]
async fn a_query_evaluation_error_in_a_task_can_be_caught() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::echo", "Output": "{% $states.result.nope %}",
            "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "Output": "{% $states.input.Error %}", "End": true}}});
    let outcome = run(&definition, &json!({"a": 1})).await.expect("runs");
    assert_eq!(outcome.output, Some(json!("States.QueryEvaluationError")));
}

fn chain(outcome: &Outcome) -> Vec<(u64, u64, &str)> {
    outcome.history.iter().map(|e| (e.id, e.previous_event_id, e.kind.as_str())).collect()
}

#[tokio::test]
async fn previous_event_ids_chain_as_in_aws_api_reference_example() {
    // The GetExecutionHistory example in the AWS Step Functions API Reference: the first state's
    // entered event follows event 0, not ExecutionStarted.
    let definition = json!({"StartAt": "HelloWorld", "States": {"HelloWorld": {"Type": "Pass", "End": true}}});
    let outcome = run(&definition, &json!({})).await.expect("runs");
    assert_eq!(
        chain(&outcome),
        [
            (1, 0, "ExecutionStarted"),
            (2, 0, "PassStateEntered"),
            (3, 2, "PassStateExited"),
            (4, 3, "ExecutionSucceeded")
        ]
    );
}

#[tokio::test]
async fn branches_and_iterations_each_follow_the_event_that_started_them() {
    // As LocalStack's event model (built from histories recorded against AWS) chains them: every
    // branch or iteration starts from the Parallel's or Map's started event, and the state's exit
    // follows the last event of any branch.
    let definition = json!({"StartAt": "Both", "States": {
        "Both": {"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}], "Next": "Each"},
        "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}, "End": true}}});
    let outcome = run(&definition, &json!([1, 2])).await.expect("runs");
    let events = chain(&outcome);
    let id_of = |kind: &str, nth: usize| events.iter().filter(|e| e.2 == kind).nth(nth).expect(kind).0;
    let previous_of = |kind: &str, nth: usize| events.iter().filter(|e| e.2 == kind).nth(nth).expect(kind).1;
    let parallel_started = id_of("ParallelStateStarted", 0);
    assert_eq!(previous_of("PassStateEntered", 0), parallel_started, "{events:?}");
    assert_eq!(previous_of("PassStateEntered", 1), parallel_started, "{events:?}");
    assert_eq!(previous_of("ParallelStateExited", 0), id_of("PassStateExited", 1), "{events:?}");
    let map_started = id_of("MapStateStarted", 0);
    assert_eq!(previous_of("MapIterationStarted", 0), map_started, "{events:?}");
    assert_eq!(previous_of("MapIterationStarted", 1), map_started, "{events:?}");
    assert_eq!(previous_of("MapStateExited", 0), id_of("PassStateExited", 3), "{events:?}");
}

#[tokio::test]
async fn a_failed_jsonata_evaluation_is_recorded_before_the_execution_fails() {
    let definition = jsonata_pass(json!({"Output": {"missing": "{% $states.input.nope %}"}}));
    let outcome = run(&definition, &json!({})).await.expect("runs");
    let kinds: Vec<&str> = outcome.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["ExecutionStarted", "PassStateEntered", "EvaluationFailed", "ExecutionFailed"]);
    let details = &outcome.history[2].details["evaluationFailedEventDetails"];
    assert_eq!(details["error"], "States.QueryEvaluationError");
    assert_eq!(details["location"], "Output");
    assert_eq!(details["state"], "Only");
}
