use super::*;
use aws_sdk_sfn::config::retry::RetryConfig;
use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
use aws_sdk_sfn::types::ExecutionListItem;
use aws_sdk_sfn::types::error::StateMachineDoesNotExist;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime as SmithyDateTime;
use aws_smithy_types::error::ErrorMetadata;
use lambda_runtime::Diagnostic;
use serde_json::json;

const STATE_MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:first-response";

fn now() -> DateTime<Utc> {
    "2026-11-20T04:10:00Z".parse().expect("time")
}

fn request() -> Value {
    let path = format!("{}/../../events/failure-counter/count-request.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json")
}

/// An execution of `route` that stopped `ago_secs` before [`now`].
fn execution(route: &str, n: u32, status: ExecutionStatus, ago_secs: i64) -> ExecutionListItem {
    let stopped = now().timestamp() - ago_secs;
    let name = format!("{route}__web-nginx-down__{n:020}");
    let builder = ExecutionListItem::builder()
        .execution_arn(format!("arn:aws:states:eu-west-1:123456789012:execution:first-response:{name}"))
        .state_machine_arn(STATE_MACHINE)
        .name(name)
        .status(status.clone())
        .start_date(SmithyDateTime::from_secs(stopped - 30));
    let builder = if status == ExecutionStatus::Running {
        builder
    } else {
        builder.stop_date(SmithyDateTime::from_secs(stopped))
    };
    builder.build().expect("execution")
}

fn page(token_in: Option<&'static str>, token_out: Option<&'static str>, items: Vec<ExecutionListItem>) -> Rule {
    mock!(aws_sdk_sfn::Client::list_executions)
        .match_requests(move |req| req.next_token() == token_in && req.state_machine_arn() == Some(STATE_MACHINE))
        .then_output(move || {
            ListExecutionsOutput::builder()
                .set_executions(Some(items.clone()))
                .set_next_token(token_out.map(str::to_owned))
                .build()
                .expect("page")
        })
}

fn client(rules: &[&Rule]) -> aws_sdk_sfn::Client {
    mock_client!(aws_sdk_sfn, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

#[tokio::test]
async fn counts_failed_timed_out_and_aborted_executions_per_route_and_in_total() {
    // GIVEN executions of two routes in the window, in every final state
    use ExecutionStatus::*;
    let only = page(
        None,
        None,
        vec![
            execution("web-nginx", 1, Running, 0),
            execution("web-nginx", 2, Failed, 10),
            execution("web-nginx", 3, Succeeded, 20),
            execution("web-nginx", 4, TimedOut, 30),
            execution("database", 5, Failed, 40),
            execution("web-nginx", 6, Aborted, 50),
        ],
    );
    // WHEN the counter reads them
    let failures = handle(&client(&[&only]), &CounterConfig::default(), request(), now()).await.expect("count");
    // THEN three are this route's failures, four are failures overall, and the breaker stays shut
    assert_eq!((failures.count, failures.total_count, failures.breaker_open), (3, 4, false));
    assert_eq!(failures.recent_failed_executions.len(), 3);
    assert!(failures.recent_failed_executions[0].ends_with("00000000000000000002"));
    assert_eq!(failures.window_start, "2026-11-20T04:05:00Z");
}

#[tokio::test]
async fn paging_stops_as_soon_as_a_stop_date_leaves_the_window() {
    use ExecutionStatus::*;
    let first =
        page(None, Some("t1"), vec![execution("web-nginx", 1, Failed, 10), execution("web-nginx", 2, Failed, 20)]);
    let second = page(
        Some("t1"),
        Some("t2"),
        vec![
            execution("web-nginx", 3, Failed, 290),
            execution("web-nginx", 4, Failed, 301),
            execution("web-nginx", 5, Failed, 302),
        ],
    );
    let never = page(Some("t2"), None, vec![execution("web-nginx", 6, Failed, 900)]);
    let failures =
        handle(&client(&[&first, &second, &never]), &CounterConfig::default(), request(), now()).await.expect("count");
    assert_eq!(failures.count, 3, "only the three inside the 300 s window count");
    assert_eq!(failures.pages_read, 2);
    assert_eq!(never.num_calls(), 0, "the third page must not be read");
}

#[tokio::test]
async fn the_breaker_opens_only_above_the_threshold() {
    use ExecutionStatus::*;
    let five: Vec<_> = (0..5).map(|n| execution("web-nginx", n, Failed, 10 + i64::from(n))).collect();
    let mut six = five.clone();
    six.push(execution("web-nginx", 9, Aborted, 60));
    let at = page(None, None, five);
    let shut = handle(&client(&[&at]), &CounterConfig::default(), request(), now()).await.expect("count");
    assert!(!shut.breaker_open, "5 failures is not more than 5");
    let above = page(None, None, six);
    let open = handle(&client(&[&above]), &CounterConfig::default(), request(), now()).await.expect("count");
    assert!(open.breaker_open);
    assert!(open.reason.as_deref().is_some_and(|r| r.contains("route web-nginx failed 6 times")), "{:?}", open.reason);
}

#[tokio::test]
async fn many_failures_across_routes_open_the_breaker_too() {
    let others: Vec<_> = (0..4).map(|n| execution("database", n, ExecutionStatus::Failed, 10)).collect();
    let config = CounterConfig { total_threshold: 3, ..CounterConfig::default() };
    let only = page(None, None, others);
    let failures = handle(&client(&[&only]), &config, request(), now()).await.expect("count");
    assert_eq!((failures.count, failures.total_count, failures.breaker_open), (0, 4, true));
}

#[tokio::test]
async fn throttling_is_transient() {
    let throttled = mock!(aws_sdk_sfn::Client::list_executions)
        .then_error(|| ListExecutionsError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
    let err = handle(&client(&[&throttled]), &CounterConfig::default(), request(), now()).await.expect_err("throttled");
    assert_eq!(Diagnostic::from(err).error_type, "TransientError");
}

#[tokio::test]
async fn a_missing_state_machine_is_a_config_error() {
    let missing = mock!(aws_sdk_sfn::Client::list_executions)
        .then_error(|| ListExecutionsError::StateMachineDoesNotExist(StateMachineDoesNotExist::builder().build()));
    let err = handle(&client(&[&missing]), &CounterConfig::default(), request(), now()).await.expect_err("missing");
    assert_eq!(<&str>::from(&err), "ConfigError");
}

#[tokio::test]
async fn junk_input_is_invalid_and_reads_nothing() {
    let any = page(None, None, vec![]);
    for junk in [json!("count"), json!({}), json!({"stateMachineArn": "nope", "route": {"name": "web-nginx"}})] {
        let err = handle(&client(&[&any]), &CounterConfig::default(), junk.clone(), now()).await.expect_err("junk");
        assert_eq!(<&str>::from(&err), "InvalidEvent", "{junk}");
    }
    assert_eq!(any.num_calls(), 0);
}

#[test]
fn error_names_are_the_variant_names() {
    assert_eq!(CounterError::names(), ["InvalidEvent", "ConfigError", "TransientError"]);
}
