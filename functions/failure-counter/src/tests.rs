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
use shared::Routes;

const STATE_MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:first-response";

fn now() -> DateTime<Utc> {
    "2026-11-20T04:10:00Z".parse().expect("time")
}

fn request() -> Value {
    let path = format!("{}/../../events/failure-counter/count-request.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json")
}

/// An execution of `route` that ran for 30 s and stopped `ago_secs` before [`now`].
fn execution(route: &str, n: u32, status: ExecutionStatus, ago_secs: i64) -> ExecutionListItem {
    execution_between(route, n, status, ago_secs + 30, ago_secs)
}

/// An execution of `route` that started `started_ago` and stopped `stopped_ago` seconds before [`now`].
fn execution_between(
    route: &str,
    n: u32,
    status: ExecutionStatus,
    started_ago: i64,
    stopped_ago: i64,
) -> ExecutionListItem {
    let (started, stopped) = (now().timestamp() - started_ago, now().timestamp() - stopped_ago);
    let name = format!("{route}__web-nginx-down__{n:020}");
    let builder = ExecutionListItem::builder()
        .execution_arn(format!("arn:aws:states:eu-west-1:123456789012:execution:first-response:{name}"))
        .state_machine_arn(STATE_MACHINE)
        .name(name)
        .status(status.clone())
        .start_date(SmithyDateTime::from_secs(started));
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

fn routes() -> Routes {
    Routes::example().expect("example routes")
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
    let failures =
        handle(&client(&[&only]), &CounterConfig::default(), &routes(), request(), now()).await.expect("count");
    // THEN three are this route's failures, four are failures overall, and the breaker stays shut
    assert_eq!((failures.count, failures.total_count, failures.breaker_open), (3, 4, false));
    assert_eq!(failures.recent_failed_executions.len(), 3);
    assert!(failures.recent_failed_executions[0].ends_with("00000000000000000002"));
    assert_eq!(failures.window_start, "2026-11-20T04:05:00Z");
}

#[tokio::test]
async fn a_slow_failure_that_started_before_a_finished_execution_still_counts() {
    // GIVEN (newest start first, as ListExecutions lists them) a quick failure, then an execution
    // that stopped before the window, then a slow restart started 20 minutes ago that timed out
    // a minute ago: the failure the breaker exists for
    use ExecutionStatus::*;
    let only = page(
        None,
        None,
        vec![
            execution_between("web-nginx", 1, Failed, 40, 10),
            execution_between("web-nginx", 2, Succeeded, 700, 650),
            execution_between("web-nginx", 3, TimedOut, 1200, 60),
        ],
    );
    // WHEN the counter reads them
    let failures =
        handle(&client(&[&only]), &CounterConfig::default(), &routes(), request(), now()).await.expect("count");
    // THEN both failures that stopped inside the window count, whatever order they started in
    assert_eq!(failures.count, 2, "{failures:?}");
    assert!(failures.recent_failed_executions[1].ends_with("00000000000000000003"));
}

#[tokio::test]
async fn paging_stops_once_a_start_date_is_older_than_any_execution_that_can_stop_in_the_window() {
    // GIVEN a window of 300 s and executions that run at most 3,600 s
    use ExecutionStatus::*;
    let config = CounterConfig { execution_timeout: Duration::from_secs(3600), ..CounterConfig::default() };
    let first =
        page(None, Some("t1"), vec![execution("web-nginx", 1, Failed, 10), execution("web-nginx", 2, Failed, 400)]);
    let second = page(
        Some("t1"),
        Some("t2"),
        vec![
            execution_between("web-nginx", 3, TimedOut, 3800, 200),
            execution_between("web-nginx", 4, Failed, 3901, 3890),
            execution_between("web-nginx", 5, Failed, 3950, 250),
        ],
    );
    let never = page(Some("t2"), None, vec![execution("web-nginx", 6, Failed, 20)]);
    // WHEN the counter reads them
    let failures =
        handle(&client(&[&first, &second, &never]), &config, &routes(), request(), now()).await.expect("count");
    // THEN it counts the two inside the window and stops at the first start older than 3,900 s
    assert_eq!(failures.count, 2, "{failures:?}");
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
    let shut = handle(&client(&[&at]), &CounterConfig::default(), &routes(), request(), now()).await.expect("count");
    assert!(!shut.breaker_open, "5 failures is not more than 5");
    let above = page(None, None, six);
    let open = handle(&client(&[&above]), &CounterConfig::default(), &routes(), request(), now()).await.expect("count");
    assert!(open.breaker_open);
    assert!(open.reason.as_deref().is_some_and(|r| r.contains("route web-nginx failed 6 times")), "{:?}", open.reason);
    // An open breaker is one trip of the route's breaker; a shut one measures nothing.
    assert_eq!(measurements(&shut), []);
    let trips = measurements(&open);
    assert_eq!(trips, [shared::metrics::Measurement::count(shared::metrics::Metric::BreakerTrips, "web-nginx")]);
    let line = trips[0].to_emf(shared::metrics::DEFAULT_NAMESPACE, now());
    shared::metrics::check_emf(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
}

#[tokio::test]
async fn many_failures_across_routes_open_the_breaker_too() {
    let others: Vec<_> = (0..4).map(|n| execution("database", n, ExecutionStatus::Failed, 10)).collect();
    let config = CounterConfig { total_threshold: 3, ..CounterConfig::default() };
    let only = page(None, None, others);
    let failures = handle(&client(&[&only]), &config, &routes(), request(), now()).await.expect("count");
    assert_eq!((failures.count, failures.total_count, failures.breaker_open), (0, 4, true));
}

#[tokio::test]
async fn throttling_is_transient() {
    let throttled = mock!(aws_sdk_sfn::Client::list_executions)
        .then_error(|| ListExecutionsError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
    let err = handle(&client(&[&throttled]), &CounterConfig::default(), &routes(), request(), now())
        .await
        .expect_err("throttled");
    assert_eq!(Diagnostic::from(err).error_type, "TransientError");
}

#[tokio::test]
async fn a_missing_state_machine_is_a_config_error() {
    let missing = mock!(aws_sdk_sfn::Client::list_executions)
        .then_error(|| ListExecutionsError::StateMachineDoesNotExist(StateMachineDoesNotExist::builder().build()));
    let err = handle(&client(&[&missing]), &CounterConfig::default(), &routes(), request(), now())
        .await
        .expect_err("missing");
    assert_eq!(<&str>::from(&err), "ConfigError");
}

#[tokio::test]
async fn junk_input_is_invalid_and_reads_nothing() {
    let any = page(None, None, vec![]);
    for junk in [json!("count"), json!({}), json!({"stateMachineArn": "nope", "route": {"name": "web-nginx"}})] {
        let err = handle(&client(&[&any]), &CounterConfig::default(), &routes(), junk.clone(), now())
            .await
            .expect_err("junk");
        assert_eq!(<&str>::from(&err), "InvalidEvent", "{junk}");
    }
    assert_eq!(any.num_calls(), 0);
}

#[tokio::test]
async fn a_route_that_is_not_a_deployed_remediation_is_invalid_and_reads_nothing() {
    // GIVEN requests naming a route the rules do not have, and one that only pages
    let any = page(None, None, vec![]);
    for name in ["no-such-route", "database"] {
        let mut forged = request();
        forged["route"]["name"] = json!(name);
        // WHEN the counter is asked to count for them
        let err = handle(&client(&[&any]), &CounterConfig::default(), &routes(), forged, now()).await.expect_err(name);
        // THEN it refuses, naming the route, before reading anything
        assert_eq!(<&str>::from(&err), "InvalidEvent");
        assert!(err.to_string().contains(name), "{err}");
    }
    assert_eq!(any.num_calls(), 0);
}

#[test]
fn error_names_are_the_variant_names() {
    assert_eq!(CounterError::names(), ["InvalidEvent", "ConfigError", "TransientError"]);
}
