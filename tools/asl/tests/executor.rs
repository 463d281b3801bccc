//! The executor against the ASL specification's worked examples and AWS's documented behaviour.

use std::sync::Mutex;
use std::time::Duration;

use asl::mocks::{Mocked, TestCase};
use asl::{Definition, ExecutionSettings, Executor, Outcome, StatesError, Status, TaskCall, TaskRunner, TraceEvent};
use serde_json::{Value, json};

/// A task runner driven by a closure, recording every call.
struct Tasks<F> {
    answer: F,
    calls: Mutex<Vec<TaskCall>>,
}

impl<F: Fn(&TaskCall) -> Result<Value, StatesError>> Tasks<F> {
    fn new(answer: F) -> Self {
        Self { answer, calls: Mutex::new(Vec::new()) }
    }

    fn calls(&self) -> Vec<TaskCall> {
        self.calls.lock().expect("lock").clone()
    }
}

impl<F: Fn(&TaskCall) -> Result<Value, StatesError>> TaskRunner for Tasks<F> {
    async fn run(&self, call: &TaskCall) -> Result<Value, StatesError> {
        self.calls.lock().expect("lock").push(call.clone());
        (self.answer)(call)
    }
}

fn no_tasks() -> Tasks<impl Fn(&TaskCall) -> Result<Value, StatesError>> {
    Tasks::new(|call: &TaskCall| Err(StatesError::new("Unexpected", format!("no task expected, got {}", call.state))))
}

fn definition(value: Value) -> Definition {
    Definition::from_value(value).expect("valid definition")
}

async fn run<R: TaskRunner>(tasks: &R, machine: Value, input: Value) -> Outcome {
    let settings = ExecutionSettings::local("test", "exec-1");
    Executor::new(tasks, &settings).run(&definition(machine), input).await
}

fn task(resource: &str, extra: Value) -> Value {
    let mut state = json!({"Type": "Task", "Resource": resource, "End": true});
    for (k, v) in extra.as_object().expect("object") {
        state[k] = v.clone();
    }
    state
}

fn one_state(state: Value) -> Value {
    json!({"StartAt": "Only", "States": {"Only": state}})
}

const LAMBDA: &str = "arn:aws:lambda:eu-west-1:123456789012:function:adder";

#[tokio::test]
async fn input_result_and_output_paths_follow_the_spec_example() {
    // The specification's example: add two numbers and keep them beside the sum.
    let adder = Tasks::new(|call: &TaskCall| {
        Ok(json!(call.input["val1"].as_i64().unwrap_or(0) + call.input["val2"].as_i64().unwrap_or(0)))
    });
    let machine = one_state(task(LAMBDA, json!({"InputPath": "$.numbers", "ResultPath": "$.sum", "OutputPath": "$"})));
    let outcome = run(&adder, machine, json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}})).await;
    assert_eq!(outcome.status, Status::Succeeded);
    assert_eq!(outcome.output, Some(json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7})));
    assert_eq!(adder.calls()[0].input, json!({"val1": 3, "val2": 4}));
}

#[tokio::test]
async fn parameters_build_the_task_input_from_paths_and_literals() {
    let echo = Tasks::new(|call: &TaskCall| Ok(call.input.clone()));
    let machine = one_state(task(
        LAMBDA,
        json!({"Parameters": {
            "comment": "Selecting what I care about.",
            "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability", "StaticValue": "foo"}
        }}),
    ));
    let input = json!({
        "flagged": 7,
        "vals": [0, 10, 20, 30, 40, 50],
        "product": {"details": {"color": "blue", "size": "small", "material": "cotton"}, "availability": "in stock", "sku": "2317", "cost": "$23"}
    });
    let outcome = run(&echo, machine, input).await;
    assert_eq!(
        outcome.output,
        Some(
            json!({"comment": "Selecting what I care about.", "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}})
        )
    );
}

#[tokio::test]
async fn result_selector_shapes_the_result_before_result_path() {
    let service = Tasks::new(|_: &TaskCall| {
        Ok(
            json!({"resourceType": "elasticmapreduce", "resource": "createCluster.sync", "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "ClusterId": "AKIAIOSFODNN7EXAMPLE"}}),
        )
    });
    let machine = one_state(task(
        "arn:aws:states:::elasticmapreduce:createCluster.sync",
        json!({"ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"}, "ResultPath": "$.EMROutput"}),
    ));
    let outcome = run(&service, machine, json!({"keep": true})).await;
    assert_eq!(
        outcome.output,
        Some(
            json!({"keep": true, "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}})
        )
    );
}

#[tokio::test]
async fn result_path_null_keeps_the_input_and_dollar_replaces_it() {
    let answer = Tasks::new(|_: &TaskCall| Ok(json!("result")));
    let discard = run(&answer, one_state(task(LAMBDA, json!({"ResultPath": null}))), json!({"a": 1})).await;
    assert_eq!(discard.output, Some(json!({"a": 1})));
    let replace = run(&answer, one_state(task(LAMBDA, json!({}))), json!({"a": 1})).await;
    assert_eq!(replace.output, Some(json!("result")));
}

#[tokio::test]
async fn retries_back_off_on_the_virtual_clock_then_succeed() {
    // GIVEN a task that fails twice with a retryable error
    let flaky = Tasks::new(|call: &TaskCall| {
        if call.retry_count < 2 { Err(StatesError::new("TransientError", "busy")) } else { Ok(json!({"done": true})) }
    });
    let retry = json!({"Retry": [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 3, "MaxAttempts": 3, "BackoffRate": 2}]});
    // WHEN it runs
    let outcome = run(&flaky, one_state(task(LAMBDA, retry)), json!({})).await;
    // THEN it waited 3 s then 6 s of virtual time, and almost no wall time
    assert_eq!(outcome.status, Status::Succeeded);
    assert_eq!(outcome.virtual_duration, Duration::from_secs(9));
    assert!(outcome.wall_duration < Duration::from_secs(5));
    let retry_counts: Vec<u32> = flaky.calls().iter().map(|c| c.retry_count).collect();
    assert_eq!(retry_counts, [0, 1, 2]);
    assert_eq!(flaky.calls()[2].context["State"]["RetryCount"], json!(2));
}

#[tokio::test]
async fn max_delay_caps_the_back_off_and_jitter_stays_below_it() {
    let always = Tasks::new(|_: &TaskCall| Err(StatesError::new("TransientError", "busy")));
    let capped = json!({"Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 3, "BackoffRate": 10, "MaxDelaySeconds": 15}]});
    let outcome = run(&always, one_state(task(LAMBDA, capped)), json!({})).await;
    assert_eq!(outcome.virtual_duration, Duration::from_secs(10 + 15 + 15));
    assert_eq!((outcome.status, outcome.error.as_deref()), (Status::Failed, Some("TransientError")));

    let jittered = json!({"Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 2, "BackoffRate": 1, "JitterStrategy": "FULL"}]});
    let outcome = run(&always, one_state(task(LAMBDA, jittered)), json!({})).await;
    assert!(outcome.virtual_duration <= Duration::from_secs(20), "{:?}", outcome.virtual_duration);
}

#[tokio::test]
async fn an_exhausted_retry_is_caught_with_the_error_merged_at_result_path() {
    let failing =
        Tasks::new(|_: &TaskCall| Err(StatesError::new("TargetUnreachable", "{\"errorMessage\":\"agent offline\"}")));
    let machine = json!({
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": LAMBDA, "Next": "Done",
                "Retry": [{"ErrorEquals": ["TransientError"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["TargetUnreachable"], "ResultPath": "$.error", "Next": "Escalate"}]},
            "Done": {"Type": "Succeed"},
            "Escalate": {"Type": "Pass", "End": true}
        }
    });
    let outcome = run(&failing, machine, json!({"alarm": "a"})).await;
    assert_eq!(failing.calls().len(), 1, "a final error is not retried");
    assert_eq!(
        outcome.output,
        Some(
            json!({"alarm": "a", "error": {"Error": "TargetUnreachable", "Cause": "{\"errorMessage\":\"agent offline\"}"}})
        )
    );
}

#[tokio::test]
async fn states_all_does_not_catch_a_runtime_error() {
    let machine = json!({
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": LAMBDA, "InputPath": "$.missing", "End": true,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
            "Caught": {"Type": "Succeed"}
        }
    });
    let outcome = run(&no_tasks(), machine, json!({})).await;
    assert_eq!((outcome.status, outcome.error.as_deref()), (Status::Failed, Some("States.Runtime")));
}

#[tokio::test]
async fn a_result_path_through_a_string_fails_with_result_path_match_failure() {
    let answer = Tasks::new(|_: &TaskCall| Ok(json!(1)));
    let outcome =
        run(&answer, one_state(task(LAMBDA, json!({"ResultPath": "$.text.field"}))), json!({"text": "x"})).await;
    assert_eq!(outcome.error.as_deref(), Some("States.ResultPathMatchFailure"));
}

#[tokio::test]
async fn a_missing_parameter_path_is_a_runtime_error_that_names_the_state_and_field() {
    // AWS records States.Runtime (not ParameterPathFailure), uncatchable, with this cause.
    let machine = json!({
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": LAMBDA, "Parameters": {"x.$": "$.nope"}, "End": true,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
            "Caught": {"Type": "Pass", "End": true}
        }
    });
    let outcome = run(&no_tasks(), machine, json!({"a": 1})).await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(outcome.error.as_deref(), Some("States.Runtime"));
    assert_eq!(
        outcome.cause.as_deref(),
        Some(
            "An error occurred while executing the state 'Work' (entered at the event id #2). \
             The JSONPath '$.nope' specified for the field 'x.$' could not be found in the input '{\"a\":1}'"
        )
    );
}

#[tokio::test]
async fn a_runtime_error_is_not_caught_even_when_named() {
    let answer = Tasks::new(|_: &TaskCall| Ok(json!({})));
    let machine = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": LAMBDA, "OutputPath": "$.no.such.path", "Next": "Done",
            "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": true},
        "Done": {"Type": "Pass", "End": true}
    }});
    let outcome = run(&answer, machine, json!({})).await;
    assert_eq!(outcome.error.as_deref(), Some("States.Runtime"));
    assert_eq!(
        outcome.cause.as_deref(),
        Some(
            "An error occurred while executing the state 'Work' (entered at the event id #2). \
             Invalid path '$.no.such.path' : Missing property in path $['no']"
        )
    );
}

#[tokio::test]
async fn a_fail_state_without_error_or_cause_reports_neither() {
    let outcome = run(&no_tasks(), one_state(json!({"Type": "Fail"})), json!({})).await;
    assert_eq!((outcome.status, outcome.error.as_deref(), outcome.cause.as_deref()), (Status::Failed, None, None));
    let last = serde_json::to_value(outcome.history.last().expect("event")).expect("json");
    assert_eq!(last["executionFailedEventDetails"], json!({}));
}

#[tokio::test]
async fn seconds_path_must_name_a_non_negative_whole_number() {
    let machine = one_state(json!({"Type": "Wait", "SecondsPath": "$.s", "End": true}));
    for (seconds, why) in [
        (json!(-1), "The SecondsPath parameter references a negative value: $.s == -1"),
        (json!(1.5), "The SecondsPath parameter cannot be parsed as a long value: $.s == 1.5"),
    ] {
        let outcome = run(&no_tasks(), machine.clone(), json!({"s": seconds})).await;
        assert_eq!(outcome.error.as_deref(), Some("States.Runtime"));
        let expected =
            format!("An error occurred while executing the state 'Only' (entered at the event id #2). {why}");
        assert_eq!(outcome.cause, Some(expected));
    }
}

#[tokio::test]
async fn a_task_result_over_256_kib_is_data_limit_exceeded_and_catchable() {
    let big = Tasks::new(|_: &TaskCall| Ok(json!({"blob": "a".repeat(262_144)})));
    let machine = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": LAMBDA, "End": true, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let outcome = run(&big, machine, json!({})).await;
    let cause = format!(
        "The state/task '{LAMBDA}' returned a result with a size exceeding the maximum number of bytes service limit."
    );
    assert_eq!(outcome.output, Some(json!({"Error": "States.DataLimitExceeded", "Cause": cause})));
}

#[tokio::test]
async fn no_matching_choice_without_default_is_no_choice_matched() {
    let machine =
        one_state(json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Only"}]}));
    let outcome = run(&no_tasks(), machine, json!({"x": 2})).await;
    assert_eq!(outcome.error.as_deref(), Some("States.NoChoiceMatched"));
}

#[tokio::test]
async fn waits_advance_the_virtual_clock_only() {
    let machine = json!({
        "StartAt": "Hour",
        "States": {
            "Hour": {"Type": "Wait", "Seconds": 3600, "Next": "FromPath"},
            "FromPath": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Until"},
            "Until": {"Type": "Wait", "TimestampPath": "$.until", "End": true}
        }
    });
    let settings = ExecutionSettings {
        start_time: "2026-11-20T04:00:00Z".parse().expect("time"),
        ..ExecutionSettings::local("test", "exec-1")
    };
    let outcome = Executor::new(&no_tasks(), &settings)
        .run(&definition(machine), json!({"delay": 60, "until": "2026-11-20T06:00:00Z"}))
        .await;
    assert_eq!(outcome.status, Status::Succeeded);
    assert_eq!(outcome.virtual_duration, Duration::from_secs(7200));
    assert!(outcome.wall_duration < Duration::from_secs(5));
}

#[tokio::test]
async fn an_execution_past_its_timeout_times_out() {
    let machine = json!({"TimeoutSeconds": 10, "StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 60, "End": true}}});
    let outcome = run(&no_tasks(), machine, json!({})).await;
    assert_eq!((outcome.status, outcome.error.as_deref()), (Status::TimedOut, Some("States.Timeout")));
    assert_eq!(outcome.history.last().map(|e| e.kind.as_str()), Some("ExecutionTimedOut"));
}

#[tokio::test]
async fn fail_reads_error_and_cause_from_paths() {
    let machine = one_state(json!({"Type": "Fail", "ErrorPath": "$.why.error", "CausePath": "$.why.cause"}));
    let outcome = run(&no_tasks(), machine, json!({"why": {"error": "Escalated", "cause": "humans paged"}})).await;
    assert_eq!((outcome.error.as_deref(), outcome.cause.as_deref()), (Some("Escalated"), Some("humans paged")));
    assert_eq!(outcome.summary(), json!({"status": "FAILED", "error": "Escalated", "cause": "humans paged"}));
}

#[tokio::test]
async fn parallel_branches_run_on_the_same_input_and_take_the_longest_virtual_time() {
    let machine = one_state(json!({"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 30, "Next": "A2"}, "A2": {"Type": "Pass", "Result": "a", "End": true}}},
        {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 90, "Next": "B2"}, "B2": {"Type": "Pass", "InputPath": "$.x", "End": true}}}
    ]}));
    let outcome = run(&no_tasks(), machine, json!({"x": 5})).await;
    assert_eq!(outcome.output, Some(json!(["a", 5])));
    assert_eq!(outcome.virtual_duration, Duration::from_secs(90));
}

#[tokio::test]
async fn a_failing_branch_fails_the_parallel_state_with_its_error() {
    let machine = one_state(json!({"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "BranchBroke", "Cause": "b"}}}
    ]}));
    let outcome = run(&no_tasks(), machine, json!({})).await;
    assert_eq!(outcome.error.as_deref(), Some("BranchBroke"));
}

#[tokio::test]
async fn map_runs_each_item_with_its_index_and_honours_max_concurrency() {
    let double = Tasks::new(|call: &TaskCall| Ok(json!(call.input["value"].as_i64().unwrap_or(0) * 2)));
    let processor = json!({"StartAt": "Slow", "States": {
        "Slow": {"Type": "Wait", "Seconds": 10, "Next": "Double"},
        "Double": {"Type": "Task", "Resource": LAMBDA, "End": true}
    }});
    let map = |concurrency: u64| {
        one_state(json!({"Type": "Map", "End": true, "ItemsPath": "$.items", "MaxConcurrency": concurrency,
            "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "label.$": "$.label"},
            "ItemProcessor": processor.clone()}))
    };
    let input = json!({"label": "x", "items": [1, 2, 3]});
    let unlimited = run(&double, map(0), input.clone()).await;
    assert_eq!(unlimited.output, Some(json!([2, 4, 6])));
    assert_eq!(unlimited.virtual_duration, Duration::from_secs(10));
    let indexes: Vec<Value> = double.calls().iter().map(|c| c.input["index"].clone()).collect();
    assert_eq!(indexes, [json!(0), json!(1), json!(2)]);
    let one_at_a_time = run(&double, map(1), input).await;
    assert_eq!(one_at_a_time.virtual_duration, Duration::from_secs(30));
}

#[tokio::test]
async fn the_context_object_names_the_execution_and_state() {
    let echo = Tasks::new(|call: &TaskCall| Ok(call.input.clone()));
    let machine = one_state(task(
        LAMBDA,
        json!({"Parameters": {
            "execution.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "machine.$": "$$.StateMachine.Id",
            "state.$": "$$.State.Name", "input.$": "$$.Execution.Input"
        }}),
    ));
    let outcome = run(&echo, machine, json!({"a": 1})).await;
    assert_eq!(
        outcome.output,
        Some(json!({
            "execution": "arn:aws:states:eu-west-1:123456789012:execution:test:exec-1",
            "name": "exec-1",
            "machine": "arn:aws:states:eu-west-1:123456789012:stateMachine:test",
            "state": "Only",
            "input": {"a": 1}
        }))
    );
}

#[tokio::test]
async fn intrinsic_functions_run_inside_parameters() {
    let echo = Tasks::new(|call: &TaskCall| Ok(call.input.clone()));
    let machine = one_state(task(
        LAMBDA,
        json!({"Parameters": {
            "greeting.$": "States.Format('Hello, {}! You have {} items.', $.name, States.ArrayLength($.items))"
        }}),
    ));
    let outcome = run(&echo, machine, json!({"name": "ops", "items": [1, 2, 3]})).await;
    assert_eq!(outcome.output, Some(json!({"greeting": "Hello, ops! You have 3 items."})));
}

#[tokio::test]
async fn a_failing_intrinsic_is_an_intrinsic_failure() {
    let machine =
        one_state(json!({"Type": "Pass", "End": true, "Parameters": {"x.$": "States.ArrayGetItem($.items, 9)"}}));
    let outcome = run(&no_tasks(), machine, json!({"items": [1]})).await;
    assert_eq!(outcome.error.as_deref(), Some("States.IntrinsicFailure"));
}

#[tokio::test]
async fn a_lambda_task_is_recorded_in_aws_history_shape() {
    let answer = Tasks::new(|_: &TaskCall| Ok(json!({"ok": true})));
    let mut trace = Vec::new();
    let mut sink = |event: &TraceEvent| trace.push(event.clone());
    let settings = ExecutionSettings::local("test", "exec-1");
    let outcome = Executor::new(&answer, &settings)
        .with_trace(&mut sink)
        .run(&definition(one_state(task(LAMBDA, json!({})))), json!({}))
        .await;
    let kinds: Vec<&str> = outcome.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let first = serde_json::to_value(&outcome.history[0]).expect("serializable");
    assert_eq!(first["type"], "ExecutionStarted");
    assert_eq!(first["executionStartedEventDetails"]["input"], "{}");
    assert_eq!(outcome.history.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=7).collect::<Vec<u64>>());
    assert_eq!(trace.len(), 7);
}

#[tokio::test]
async fn mocks_force_a_path_and_leave_other_states_real() {
    let mocks = r#"{"StateMachines": {"test": {"TestCases": {"Broken": {"Work": "Fails"}}}},
        "MockedResponses": {"Fails": {"0": {"Throw": {"Error": "TargetUnreachable", "Cause": "mocked"}}}}}"#;
    let case = TestCase::load(mocks, Some("test"), "Broken").expect("test case");
    let real = Tasks::new(|_: &TaskCall| Ok(json!("real")));
    let machine = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": LAMBDA, "Next": "After", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}]},
        "After": {"Type": "Succeed"},
        "Recover": {"Type": "Task", "Resource": LAMBDA, "End": true}
    }});
    let outcome = run(&Mocked { case: &case, inner: &real }, machine, json!({})).await;
    assert_eq!(outcome.output, Some(json!("real")));
    assert_eq!(real.calls().iter().map(|c| c.state.as_str()).collect::<Vec<_>>(), ["Recover"]);
}

#[test]
fn definitions_it_cannot_run_faithfully_are_refused_by_name() {
    let cases = [
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": true}}}),
            "JSONPath",
        ),
        (
            json!({"QueryLanguage": "JSONBath", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
            "not a query language",
        ),
        (json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"x": 1}, "End": true}}}), "Assign"),
        (json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {"x": 1}, "End": true}}}), "JSONata"),
        (json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${Fn}", "End": true}}}), "${Fn}"),
        (json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Bogus": 1, "End": true}}}), "Bogus"),
        (json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}), "Nowhere"),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Map", "End": true, "ItemReader": {}, "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}}}}),
            "distributed Map",
        ),
        (json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}), "exactly one of Next and End"),
    ];
    for (machine, expected) in cases {
        let refused = Definition::from_value(machine.clone()).expect_err("must be refused");
        assert!(refused.0.contains(expected), "{machine}: {refused}");
    }
}

#[test]
fn the_diagram_shows_states_and_labelled_edges() {
    let machine = definition(json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Work"},
        "Work": {"Type": "Task", "Resource": LAMBDA, "Next": "Done", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}]},
        "Done": {"Type": "Succeed"},
        "Oops": {"Type": "Fail", "Error": "E"}
    }}));
    let mermaid = asl::diagram::mermaid(&machine);
    assert!(mermaid.starts_with("flowchart TD\n"));
    for expected in
        ["{\"Check\"}", "-->|\"$.ok BooleanEquals true\"|", "-->|default|", "-.->|\"catch States.ALL\"|", "((End))"]
    {
        assert!(mermaid.contains(expected), "missing {expected} in\n{mermaid}");
    }
}

fn map_with_concurrency_path() -> Value {
    one_state(json!({"Type": "Map", "End": true, "ItemsPath": "$.Values", "MaxConcurrencyPath": "$.Limit",
        "ItemProcessor": {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 10, "End": true}}}}))
}

#[tokio::test]
async fn max_concurrency_path_limits_the_iterations_in_flight() {
    let one_at_a_time = run(&no_tasks(), map_with_concurrency_path(), json!({"Limit": 1, "Values": [1, 2, 3]})).await;
    assert_eq!(one_at_a_time.output, Some(json!([1, 2, 3])));
    assert_eq!(one_at_a_time.virtual_duration, Duration::from_secs(30));
    let unlimited = run(&no_tasks(), map_with_concurrency_path(), json!({"Limit": 0, "Values": [1, 2, 3]})).await;
    assert_eq!(unlimited.virtual_duration, Duration::from_secs(10));
}

#[tokio::test]
async fn max_concurrency_path_to_a_non_integer_is_a_runtime_error() {
    let outcome = run(&no_tasks(), map_with_concurrency_path(), json!({"Limit": "NoNumber", "Values": [1]})).await;
    assert_eq!(outcome.error.as_deref(), Some("States.Runtime"));
    assert_eq!(
        outcome.cause.as_deref(),
        Some(
            "An error occurred while executing the state 'Only' (entered at the event id #2). \
             The MaxConcurrencyPath field refers to value \"NoNumber\" which is not a valid integer: $.Limit"
        )
    );
}

#[tokio::test]
async fn legacy_map_parameters_read_the_map_context_per_item() {
    let machine = one_state(json!({"Type": "Map", "End": true,
        "Parameters": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}));
    let outcome = run(&no_tasks(), machine, json!(["a", "b"])).await;
    assert_eq!(outcome.output, Some(json!([{"v": "a", "i": 0}, {"v": "b", "i": 1}])));
}

#[test]
fn the_map_context_outside_an_item_selector_is_refused() {
    let inside = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true,
            "Parameters": {"i.$": "$$.Map.Item.Index"}}}}}}});
    let refused = Definition::from_value(inside).expect_err("$$.Map inside an iteration");
    assert!(refused.0.contains("$$.Map"), "{refused}");
    let selector = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemSelector": {"i.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}});
    assert!(Definition::from_value(selector).is_ok());
}
