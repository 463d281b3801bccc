use super::*;
use aws_sdk_sfn::config::retry::RetryConfig;
use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
use aws_sdk_sfn::types::error::{ExecutionAlreadyExists, StateMachineDoesNotExist};
use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
use aws_sdk_ssmincidents::operation::create_timeline_event::CreateTimelineEventOutput;
use aws_sdk_ssmincidents::operation::list_incident_records::ListIncidentRecordsOutput;
use aws_sdk_ssmincidents::operation::start_incident::StartIncidentOutput;
use aws_sdk_ssmincidents::operation::update_incident_record::UpdateIncidentRecordOutput;
use aws_sdk_ssmincidents::types::{IncidentRecordSource, IncidentRecordSummary};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use lambda_runtime::Diagnostic;
use shared::AlarmKind;

const STATE_MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:first-response";
const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:first-response-alerts";
const PLAN: &str = "arn:aws:ssm-incidents::123456789012:response-plan/web-oncall";

fn event(name: &str) -> Value {
    let path = format!("{}/../../events/alarm-router/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config(response_plan: Option<&str>) -> RouterConfig {
    RouterConfig {
        state_machine_arn: STATE_MACHINE.into(),
        topic_arn: TOPIC.into(),
        response_plan_arn: response_plan.map(str::to_owned),
        routes: Routes::example().expect("example routes"),
        state_table: None,
    }
}

/// Real SDK clients whose calls are answered by the given rules; retries off so errors surface.
fn clients(sfn: &[&Rule], sns: &[&Rule], incidents: &[&Rule]) -> Clients {
    clients_with_table(sfn, sns, incidents, &[])
}

/// The flap history of an alarm that changes state rarely: its record holds this change only.
fn steady_flaps() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.key().and_then(|k| k.get("pk")).and_then(|v| v.as_s().ok()).is_some_and(|k| k.starts_with("flap#"))
        })
        .then_output(|| aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build())
}

/// The alarm's lifecycle record: nothing held before this transition (its own tests say otherwise).
fn fresh_alarm() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.key().and_then(|k| k.get("pk")).and_then(|v| v.as_s().ok()).is_some_and(|k| k.starts_with("alarm#"))
        })
        .then_output(|| aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build())
}

/// The decision log's write (its own tests look at what is written).
fn decision_logged() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.key().and_then(|k| k.get("pk")).and_then(|v| v.as_s().ok()).is_some_and(|k| k.starts_with("decisions#"))
        })
        .then_output(|| aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build())
}

/// [`clients`], with the state table's calls answered by `dynamodb` (and alarms steady, unless
/// a test answers the flap history itself: those rules come after this one, for other keys).
fn clients_with_table(sfn: &[&Rule], sns: &[&Rule], incidents: &[&Rule], dynamodb: &[&Rule]) -> Clients {
    let (steady, logged, fresh) = (steady_flaps(), decision_logged(), fresh_alarm());
    let dynamodb: Vec<&Rule> = [&steady, &logged].into_iter().chain(dynamodb.iter().copied()).chain([&fresh]).collect();
    let dynamodb = dynamodb.as_slice();
    Clients {
        sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn, |c| c.retry_config(RetryConfig::disabled())),
        sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns, |c| c.retry_config(RetryConfig::disabled())),
        incidents: mock_client!(aws_sdk_ssmincidents, RuleMode::MatchAny, incidents, |c| c
            .retry_config(RetryConfig::disabled())),
        dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb, |c| c
            .retry_config(RetryConfig::disabled())),
        cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, &[], |c| c
            .retry_config(RetryConfig::disabled())),
    }
}

fn started() -> Rule {
    mock!(aws_sdk_sfn::Client::start_execution).then_output(|| {
        StartExecutionOutput::builder()
            .execution_arn(format!("{STATE_MACHINE}:started").replace(":stateMachine:", ":execution:"))
            .start_date(SmithyDateTime::from_secs(0))
            .build()
            .expect("output")
    })
}

fn none_running() -> Rule {
    mock!(aws_sdk_sfn::Client::list_executions).then_output(|| {
        aws_sdk_sfn::operation::list_executions::ListExecutionsOutput::builder()
            .set_executions(Some(Vec::new()))
            .build()
            .expect("out")
    })
}

fn published() -> Rule {
    mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().message_id("msg-1").build())
}

fn published_where(check: impl Fn(&PublishInput) -> bool + Send + Sync + 'static) -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .match_requests(check)
        .then_output(|| PublishOutput::builder().message_id("msg-1").build())
}

#[tokio::test]
async fn every_sample_alarm_gets_the_decision_its_route_calls_for() {
    let cases = [
        ("metric-alarm.json", AlarmKind::Metric, DecisionAction::Remediate, "web-nginx"),
        ("metric-ok.json", AlarmKind::Metric, DecisionAction::Resolve, "web-nginx"),
        ("metric-insufficient-data.json", AlarmKind::Metric, DecisionAction::Ignore, "web-nginx"),
        ("metric-math-alarm.json", AlarmKind::MetricMath, DecisionAction::Notify, "default"),
        ("anomaly-detection-alarm.json", AlarmKind::AnomalyDetection, DecisionAction::Notify, "default"),
        ("composite-alarm.json", AlarmKind::Composite, DecisionAction::Incident, "storefront"),
        ("composite-with-suppressor-alarm.json", AlarmKind::Composite, DecisionAction::Incident, "storefront"),
        ("composite-suppressed.json", AlarmKind::Composite, DecisionAction::Ignore, "storefront"),
        ("database-alarm.json", AlarmKind::Metric, DecisionAction::Incident, "database"),
        ("batch-ignored-alarm.json", AlarmKind::Metric, DecisionAction::Ignore, "batch-noise"),
        ("hostile-name-alarm.json", AlarmKind::Metric, DecisionAction::Remediate, "web-nginx"),
    ];
    for (file, kind, action, route) in cases {
        let (sfn, sns, idle) = (started(), published(), none_running());
        let decision = handle(&clients(&[&sfn, &idle], &[&sns], &[]), &config(None), event(file)).await.expect(file);
        assert_eq!(
            (decision.alarm.kind, decision.action, decision.route.name.as_str()),
            (kind, action, route),
            "{file}"
        );
    }
}

#[tokio::test]
async fn alarm_on_a_remediate_route_starts_the_state_machine_under_the_incident_key() {
    // GIVEN the canonical nginx alarm
    let alarm = Alarm::from_event(&event("metric-alarm.json")).expect("alarm");
    let key = IncidentKey::for_transition("web-nginx", &alarm);
    let expected_name = key.as_str().to_owned();
    let start = mock!(aws_sdk_sfn::Client::start_execution)
        .match_requests(move |req| {
            let input: Value = serde_json::from_str(req.input().unwrap_or_default()).expect("json input");
            req.state_machine_arn() == Some(STATE_MACHINE)
                && req.name() == Some(expected_name.as_str())
                && input["route"]["remediation"]["service"] == "nginx"
                && input["alarm"]["name"] == "web-nginx-down"
                && input["notice"]["recoveredSubject"].as_str().is_some_and(|s| s.len() <= 100)
        })
        .then_output(|| {
            StartExecutionOutput::builder()
                .execution_arn("arn:aws:states:eu-west-1:123456789012:execution:first-response:x")
                .start_date(SmithyDateTime::from_secs(0))
                .build()
                .expect("output")
        });
    let sns = published();
    // WHEN the router handles it
    let decision =
        handle(&clients(&[&start], &[&sns], &[]), &config(None), event("metric-alarm.json")).await.expect("decision");
    // THEN one execution was started, nobody was notified yet, and the decision names the key
    assert_eq!(start.num_calls(), 1);
    assert_eq!(sns.num_calls(), 0);
    assert_eq!(decision.incident_key, key);
    assert!(matches!(decision.outcome, Outcome::StartedExecution { duplicate: false, .. }), "{:?}", decision.outcome);
}

#[tokio::test]
async fn a_redelivered_alarm_is_a_duplicate_not_a_failure() {
    let start = mock!(aws_sdk_sfn::Client::start_execution)
        .then_error(|| StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().build()));
    let sns = published();
    let decision =
        handle(&clients(&[&start], &[&sns], &[]), &config(None), event("metric-alarm.json")).await.expect("decision");
    let Outcome::StartedExecution { execution_arn, duplicate } = decision.outcome else {
        panic!("unexpected outcome {:?}", decision.outcome)
    };
    assert!(duplicate);
    assert_eq!(
        execution_arn,
        format!("arn:aws:states:eu-west-1:123456789012:execution:first-response:{}", decision.incident_key)
    );
    assert_eq!(sns.num_calls(), 0, "a duplicate must not notify");
}

#[tokio::test]
async fn when_the_state_machine_cannot_be_started_humans_are_notified_instead() {
    let start = mock!(aws_sdk_sfn::Client::start_execution)
        .then_error(|| StartExecutionError::StateMachineDoesNotExist(StateMachineDoesNotExist::builder().build()));
    let sns = published_where(|req| {
        req.message().is_some_and(|m| m.contains("could not start the first-response state machine"))
            && req.subject() == Some("[ALARM] web-nginx-down")
    });
    let decision =
        handle(&clients(&[&start], &[&sns], &[]), &config(None), event("metric-alarm.json")).await.expect("decision");
    assert_eq!(sns.num_calls(), 1);
    assert_eq!(
        decision.outcome,
        Outcome::Published { message_id: "msg-1".into(), fallback_from: Some("remediate".into()) }
    );
}

/// The sample rules, with web-nginx acting on the instance each alarm names.
fn per_host_config() -> RouterConfig {
    let yaml = "rules:\n  - name: web-nginx\n    match: { alarmName: { prefix: web-nginx- } }\n    action: remediate\n    severity: high\n    remediation:\n      targets: { fromDimension: InstanceId }\n      service: nginx\n";
    RouterConfig { routes: Routes::from_yaml(yaml).expect("per-host rules"), ..config(None) }
}

#[tokio::test]
async fn a_per_host_rule_starts_the_remediation_of_an_alarm_that_names_its_instance() {
    let start = started();
    let mut alarm = event("metric-alarm.json");
    alarm["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
        serde_json::json!({ "InstanceId": "i-0a1b2c3d4e5f60718", "pattern": "nginx" });
    let decision = handle(&clients(&[&start], &[], &[]), &per_host_config(), alarm).await.expect("decision");
    assert_eq!(decision.action, DecisionAction::Remediate);
    assert_eq!(start.num_calls(), 1);
}

#[tokio::test]
async fn a_per_host_rule_pages_with_a_named_reason_when_the_alarm_names_no_instance() {
    // The sample alarm is by AutoScalingGroupName: it names no InstanceId.
    for (alarm, reason) in [
        (event("metric-alarm.json"), "TargetDimensionMissing"),
        (
            {
                let mut alarm = event("metric-alarm.json");
                alarm["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
                    serde_json::json!({ "InstanceId": "$(reboot)" });
                alarm
            },
            "TargetNotAnInstance",
        ),
    ] {
        let start = started();
        let sns = published_where(move |req| req.message().is_some_and(|m| m.contains(reason)));
        let decision = handle(&clients(&[&start], &[&sns], &[]), &per_host_config(), alarm).await.expect("decision");
        assert_eq!(start.num_calls(), 0, "{reason}: nothing runs");
        assert_eq!(sns.num_calls(), 1, "{reason}: people are paged with the reason");
        assert!(
            matches!(&decision.outcome, Outcome::Published { fallback_from: Some(from), .. } if from == "remediate"),
            "{reason}: {:?}",
            decision.outcome
        );
    }
}

#[tokio::test]
async fn throttling_is_a_transient_error_with_no_fallback() {
    let start = mock!(aws_sdk_sfn::Client::start_execution)
        .then_error(|| StartExecutionError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
    let sns = published();
    let err = handle(&clients(&[&start], &[&sns], &[]), &config(None), event("metric-alarm.json"))
        .await
        .expect_err("throttled");
    assert_eq!(<&str>::from(&err), "TransientError");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert_eq!(sns.num_calls(), 0);
}

#[tokio::test]
async fn junk_events_are_invalid_and_touch_nothing() {
    for file in [
        "invalid-not-an-alarm.json",
        "invalid-missing-state.json",
        "invalid-unknown-state.json",
        "invalid-not-json-object.json",
    ] {
        let (sfn, sns) = (started(), published());
        let err = handle(&clients(&[&sfn], &[&sns], &[]), &config(Some(PLAN)), event(file)).await.expect_err(file);
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "InvalidEvent", "{file}");
        assert_eq!((sfn.num_calls(), sns.num_calls()), (0, 0), "{file} caused a side effect");
    }
}

#[tokio::test]
async fn a_suppressed_composite_alarm_is_ignored_with_its_reason() {
    let (sfn, sns) = (started(), published());
    let decision =
        handle(&clients(&[&sfn], &[&sns], &[]), &config(None), event("composite-suppressed.json")).await.expect("ok");
    assert_eq!(
        decision.outcome,
        Outcome::Ignored { reason: "composite alarm actions are suppressed by WaitPeriod".into() }
    );
    assert_eq!((sfn.num_calls(), sns.num_calls()), (0, 0));
}

#[tokio::test]
async fn incident_route_opens_an_incident_manager_incident_when_a_plan_is_configured() {
    let alarm = Alarm::from_event(&event("database-alarm.json")).expect("alarm");
    let key = IncidentKey::for_transition("database", &alarm).as_str().to_owned();
    let start = mock!(aws_sdk_ssmincidents::Client::start_incident)
        .match_requests(move |req| {
            let trigger = req.trigger_details().expect("trigger");
            req.client_token() == Some(key.as_str())
                && req.response_plan_arn() == Some(PLAN)
                && req.impact() == Some(1)
                && req.title().is_some_and(|t| t.starts_with("orders-db-cpu-high: Threshold Crossed"))
                && trigger.trigger_arn() == Some("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:orders-db-cpu-high")
                && trigger.raw_data().is_some_and(|d| d.contains("orders-db") && d.len() <= MAX_TRIGGER_RAW_DATA)
                && req.related_items().len() == 1
        })
        .then_output(|| {
            StartIncidentOutput::builder()
                .incident_record_arn("arn:aws:ssm-incidents::123456789012:incident-record/web-oncall/1")
                .build()
                .expect("output")
        });
    let sns = published();
    let decision = handle(&clients(&[], &[&sns], &[&start]), &config(Some(PLAN)), event("database-alarm.json"))
        .await
        .expect("decision");
    assert_eq!(start.num_calls(), 1);
    assert_eq!(sns.num_calls(), 0);
    assert_eq!(
        decision.outcome,
        Outcome::OpenedIncident {
            incident_record_arn: "arn:aws:ssm-incidents::123456789012:incident-record/web-oncall/1".into()
        }
    );
}

#[tokio::test]
async fn the_trigger_raw_data_is_truncated_to_what_incident_manager_accepts() {
    let mut big = event("database-alarm.json");
    big["detail"]["configuration"]["description"] = Value::String("é".repeat(5000));
    let start = mock!(aws_sdk_ssmincidents::Client::start_incident)
        .match_requests(|req| req.trigger_details().and_then(|t| t.raw_data()).is_some_and(|d| d.len() <= 4000))
        .then_output(|| StartIncidentOutput::builder().incident_record_arn("arn:x").build().expect("output"));
    handle(&clients(&[], &[], &[&start]), &config(Some(PLAN)), big).await.expect("decision");
    assert_eq!(start.num_calls(), 1);
}

#[tokio::test]
async fn incident_route_without_a_response_plan_pages_over_sns() {
    let sns = published_where(|req| req.subject() == Some("[INCIDENT] orders-db-cpu-high"));
    let decision =
        handle(&clients(&[], &[&sns], &[]), &config(None), event("database-alarm.json")).await.expect("decision");
    assert_eq!(sns.num_calls(), 1);
    assert_eq!(decision.outcome, Outcome::Published { message_id: "msg-1".into(), fallback_from: None });
}

#[tokio::test]
async fn notify_publishes_a_message_a_human_can_act_on() {
    let sns = published_where(|req| {
        let body = req.message().unwrap_or_default();
        req.topic_arn() == Some(TOPIC)
            && req.subject() == Some("[ALARM] api-5xx-rate-high")
            && body.contains("Reason: Threshold Crossed")
            && body.contains("Account / region: 123456789012 / eu-west-1")
            && body.contains("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/api-5xx-rate-high")
            && body.contains("Runbook: none configured for this route")
            && req.message_attributes().and_then(|a| a.get("severity")).and_then(|v| v.string_value()) == Some("medium")
    });
    handle(&clients(&[], &[&sns], &[]), &config(None), event("metric-math-alarm.json")).await.expect("decision");
    assert_eq!(sns.num_calls(), 1);
}

#[tokio::test]
async fn ok_resolves_the_open_incident_this_alarm_triggered_and_publishes_the_recovery() {
    let alarm_arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:web-nginx-down";
    let mine = "arn:aws:ssm-incidents::123456789012:incident-record/web-oncall/mine";
    let list = mock!(aws_sdk_ssmincidents::Client::list_incident_records).then_output(move || {
        ListIncidentRecordsOutput::builder()
            .incident_record_summaries(open_record(mine, alarm_arn))
            .incident_record_summaries(open_record(
                "arn:other",
                "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:other",
            ))
            .build()
            .expect("output")
    });
    let timeline = mock!(aws_sdk_ssmincidents::Client::create_timeline_event)
        .match_requests(move |req| req.incident_record_arn() == Some(mine) && req.event_type() == Some("Custom Event"))
        .then_output(move || {
            CreateTimelineEventOutput::builder().incident_record_arn(mine).event_id("e1").build().expect("out")
        });
    let update = mock!(aws_sdk_ssmincidents::Client::update_incident_record)
        .match_requests(move |req| req.arn() == Some(mine) && req.status() == Some(&IncidentRecordStatus::Resolved))
        .then_output(|| UpdateIncidentRecordOutput::builder().build());
    let sns = published_where(|req| req.subject() == Some("[RECOVERED] web-nginx-down"));

    let decision = handle(
        &clients(&[&none_running()], &[&sns], &[&list, &timeline, &update]),
        &config(Some(PLAN)),
        event("metric-ok.json"),
    )
    .await
    .expect("decision");

    assert_eq!((timeline.num_calls(), update.num_calls(), sns.num_calls()), (1, 1, 1));
    assert_eq!(
        decision.outcome,
        Outcome::Resolved { incident_record_arns: vec![mine.to_owned()], message_id: "msg-1".into() }
    );
}

fn open_record(arn: &str, alarm_arn: &str) -> IncidentRecordSummary {
    IncidentRecordSummary::builder()
        .arn(arn)
        .title("t")
        .status(IncidentRecordStatus::Open)
        .creation_time(SmithyDateTime::from_secs(0))
        .impact(2)
        .incident_record_source(
            IncidentRecordSource::builder()
                .created_by("x")
                .source(TRIGGER_SOURCE)
                .resource_arn(alarm_arn)
                .build()
                .expect("source"),
        )
        .build()
        .expect("summary")
}

fn ok_after_insufficient_data() -> Value {
    let mut ok = event("metric-ok.json");
    ok["detail"]["previousState"]["value"] = Value::from("INSUFFICIENT_DATA");
    ok
}

#[tokio::test]
async fn ok_after_insufficient_data_resolves_what_the_alarm_opened_and_announces_the_recovery() {
    // GIVEN an incident the ALARM opened, then the alarm went ALARM -> INSUFFICIENT_DATA -> OK
    let alarm_arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:web-nginx-down";
    let mine = "arn:aws:ssm-incidents::123456789012:incident-record/web-oncall/mine";
    let list = mock!(aws_sdk_ssmincidents::Client::list_incident_records).then_output(move || {
        ListIncidentRecordsOutput::builder()
            .incident_record_summaries(open_record(mine, alarm_arn))
            .build()
            .expect("out")
    });
    let timeline = mock!(aws_sdk_ssmincidents::Client::create_timeline_event).then_output(move || {
        CreateTimelineEventOutput::builder().incident_record_arn(mine).event_id("e1").build().expect("out")
    });
    let update = mock!(aws_sdk_ssmincidents::Client::update_incident_record)
        .then_output(|| UpdateIncidentRecordOutput::builder().build());
    let sns = published_where(|req| req.subject() == Some("[RECOVERED] web-nginx-down"));
    // WHEN the OK arrives
    let decision = handle(
        &clients(&[&none_running()], &[&sns], &[&list, &timeline, &update]),
        &config(Some(PLAN)),
        ok_after_insufficient_data(),
    )
    .await
    .expect("decision");
    // THEN the incident is resolved and the recovery announced
    assert_eq!(decision.action, DecisionAction::Resolve);
    assert_eq!((update.num_calls(), sns.num_calls()), (1, 1));
}

#[tokio::test]
async fn resolving_several_records_uses_one_client_token_per_record() {
    let alarm_arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:web-nginx-down";
    let records = [
        "arn:aws:ssm-incidents::123456789012:incident-record/web-oncall/a",
        "arn:aws:ssm-incidents::123456789012:incident-record/web-oncall/b",
    ];
    let list = mock!(aws_sdk_ssmincidents::Client::list_incident_records).then_output(move || {
        ListIncidentRecordsOutput::builder()
            .incident_record_summaries(open_record(records[0], alarm_arn))
            .incident_record_summaries(open_record(records[1], alarm_arn))
            .build()
            .expect("out")
    });
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let timeline = mock!(aws_sdk_ssmincidents::Client::create_timeline_event).then_compute_output(move |req| {
        seen.lock().expect("lock").push(req.client_token().unwrap_or_default().to_owned());
        CreateTimelineEventOutput::builder().incident_record_arn("x").event_id("e1").build().expect("out")
    });
    let seen = tokens.clone();
    let update = mock!(aws_sdk_ssmincidents::Client::update_incident_record).then_compute_output(move |req| {
        seen.lock().expect("lock").push(req.client_token().unwrap_or_default().to_owned());
        UpdateIncidentRecordOutput::builder().build()
    });
    let sns = published();
    handle(
        &clients(&[&none_running()], &[&sns], &[&list, &timeline, &update]),
        &config(Some(PLAN)),
        event("metric-ok.json"),
    )
    .await
    .expect("decision");
    let tokens = tokens.lock().expect("lock").clone();
    assert_eq!(tokens.len(), 4, "a timeline event and an update per record");
    // one token per record and call: two records never share one
    let unique: std::collections::BTreeSet<&String> = tokens.iter().collect();
    assert_eq!(unique.len(), 4, "{tokens:?}");
}

/// `ListExecutions` answering these executions of the state machine, newest first:
/// (name, status, started at); and `DescribeExecution` answering each one's status and input,
/// whose alarm is the sample's for names of `web-nginx-down`, another alarm's otherwise.
fn executions(listed: &[(&str, aws_sdk_sfn::types::ExecutionStatus, &str)]) -> [Rule; 2] {
    let arn_of = |name: &str| format!("{STATE_MACHINE}:{name}").replace(":stateMachine:", ":execution:");
    let items: Vec<aws_sdk_sfn::types::ExecutionListItem> = listed
        .iter()
        .map(|(name, status, started)| {
            let started = chrono::DateTime::parse_from_rfc3339(started).expect("time").timestamp();
            aws_sdk_sfn::types::ExecutionListItem::builder()
                .execution_arn(arn_of(name))
                .state_machine_arn(STATE_MACHINE)
                .name(*name)
                .status(status.clone())
                .start_date(SmithyDateTime::from_secs(started))
                .build()
                .expect("item")
        })
        .collect();
    let described: Vec<(String, aws_sdk_sfn::types::ExecutionStatus, String)> = listed
        .iter()
        .map(|(name, status, _)| {
            let alarm = if name.contains("__web-nginx-down__") { "web-nginx-down" } else { "web-nginx-other" };
            let input = serde_json::json!({"alarm": {"arn": format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{alarm}")}});
            (arn_of(name), status.clone(), input.to_string())
        })
        .collect();
    let list = mock!(aws_sdk_sfn::Client::list_executions).then_output(move || {
        aws_sdk_sfn::operation::list_executions::ListExecutionsOutput::builder()
            .set_executions(Some(items.clone()))
            .build()
            .expect("out")
    });
    let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_compute_output(move |request| {
        let (arn, status, input) = described
            .iter()
            .find(|(arn, _, _)| Some(arn.as_str()) == request.execution_arn())
            .cloned()
            .expect("a listed execution");
        aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput::builder()
            .execution_arn(arn)
            .state_machine_arn(STATE_MACHINE)
            .status(status)
            .input(input)
            .start_date(SmithyDateTime::from_secs(0))
            .build()
            .expect("out")
    });
    [list, describe]
}

const THIS_ALARM: &str = "web-nginx__web-nginx-down__0d5c8a41e6b2f7a93c10";
const THIS_ALARM_BEFORE: &str = "web-nginx__web-nginx-down__11111111111111111111";
const OTHER_ALARM: &str = "web-nginx__web-nginx-other__22222222222222222222";

#[tokio::test]
async fn an_ok_while_the_remediation_is_still_running_is_left_to_that_execution() {
    use aws_sdk_sfn::types::ExecutionStatus::{Running, Succeeded};
    // GIVEN the first-response execution for this alarm is still verifying the restart
    let listed =
        executions(&[(OTHER_ALARM, Succeeded, "2026-11-20T04:05:00Z"), (THIS_ALARM, Running, "2026-11-20T04:02:12Z")]);
    let sns = published();
    // WHEN the alarm returns to OK
    let decision = handle(&clients(&[&listed[0], &listed[1]], &[&sns], &[]), &config(None), event("metric-ok.json"))
        .await
        .expect("decision");
    // THEN the router announces nothing: the execution sees the OK itself and says "recovered" once
    assert_eq!(sns.num_calls(), 0, "no recovery notice that the execution could contradict");
    assert!(matches!(decision.outcome, Outcome::LeftToExecution { .. }), "{:?}", decision.outcome);
}

#[tokio::test]
async fn an_ok_after_the_execution_announced_the_recovery_is_not_announced_again() {
    use aws_sdk_sfn::types::ExecutionStatus::Succeeded;
    // GIVEN the execution verified the recovery (and published it) before the OK event arrived
    let listed = executions(&[(THIS_ALARM, Succeeded, "2026-11-20T04:02:12Z")]);
    let sns = published();
    // WHEN the alarm's OK reaches the router
    let decision = handle(&clients(&[&listed[0], &listed[1]], &[&sns], &[]), &config(None), event("metric-ok.json"))
        .await
        .expect("decision");
    // THEN one recovery message per fixed alarm: the execution's
    assert_eq!(sns.num_calls(), 0, "a second recovery message");
    assert!(
        matches!(&decision.outcome, Outcome::AnnouncedByExecution { announcing_execution_arn } if announcing_execution_arn.ends_with(THIS_ALARM)),
        "{:?}",
        decision.outcome
    );
}

#[tokio::test]
async fn an_ok_after_an_escalation_is_announced_even_if_an_earlier_run_had_fixed_the_alarm() {
    use aws_sdk_sfn::types::ExecutionStatus::{Failed, Succeeded};
    // GIVEN the alarm's latest execution escalated, and an earlier one had fixed an earlier ALARM;
    // and, for another case, the only succeeded execution is older than any run can last
    let cases = [
        executions(&[
            (THIS_ALARM, Failed, "2026-11-20T04:02:12Z"),
            (THIS_ALARM_BEFORE, Succeeded, "2026-11-20T03:30:00Z"),
        ]),
        executions(&[(THIS_ALARM_BEFORE, Succeeded, "2026-11-20T02:30:00Z")]),
    ];
    for listed in cases {
        let sns = published();
        // WHEN the alarm returns to OK
        let decision =
            handle(&clients(&[&listed[0], &listed[1]], &[&sns], &[]), &config(None), event("metric-ok.json"))
                .await
                .expect("decision");
        // THEN the people who were paged hear of the recovery
        assert_eq!(sns.num_calls(), 1);
        assert!(matches!(decision.outcome, Outcome::Resolved { .. }), "{:?}", decision.outcome);
    }
}

#[tokio::test]
async fn an_alarm_reason_larger_than_sns_allows_still_reaches_a_human_cut_visibly() {
    // GIVEN a delivery whose reason and description are far beyond what an SNS message may hold
    let mut huge = event("metric-math-alarm.json");
    huge["detail"]["state"]["reason"] = Value::from("datapoint ".repeat(30_000));
    huge["detail"]["configuration"]["description"] = Value::from("é".repeat(100_000));
    let sns = published_where(|req| {
        let message = req.message().unwrap_or_default();
        message.len() <= shared::text::SNS_MESSAGE_BYTES - shared::text::SNS_ATTRIBUTES_RESERVE
            && message.contains(shared::text::TRUNCATED)
            && message.contains("Incident key: ")
            && req.subject().is_some_and(|s| s.len() <= 100)
    });
    // WHEN the router notifies
    let decision = handle(&clients(&[], &[&sns], &[]), &config(None), huge).await.expect("published");
    // THEN one bounded message went out, with its links and key intact
    assert_eq!(decision.action, DecisionAction::Notify);
    assert_eq!(sns.num_calls(), 1);
}

#[tokio::test]
async fn hostile_alarm_names_never_leave_the_allowed_execution_name_characters() {
    let start = mock!(aws_sdk_sfn::Client::start_execution)
        .match_requests(|req| {
            req.name().is_some_and(|n| {
                n.len() <= 80 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        })
        .then_output(|| {
            StartExecutionOutput::builder()
                .execution_arn("arn:x")
                .start_date(SmithyDateTime::from_secs(0))
                .build()
                .expect("o")
        });
    let decision =
        handle(&clients(&[&start], &[], &[]), &config(None), event("hostile-name-alarm.json")).await.expect("decision");
    assert_eq!(start.num_calls(), 1);
    assert!(
        decision.incident_key.as_str().starts_with("web-nginx__web-nginx-reboot-rm-rf-id__"),
        "{}",
        decision.incident_key
    );
}

#[test]
fn error_names_are_the_variant_names() {
    assert_eq!(RouterError::names(), ["InvalidEvent", "ConfigError", "TransientError"]);
}

#[tokio::test]
async fn every_message_the_router_publishes_carries_the_documented_attributes() {
    // (sample, plan, state machine answers, kind the message must say it is)
    let failing_start = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
        aws_sdk_sfn::operation::start_execution::StartExecutionError::unhandled("no such state machine")
    });
    let cases: [(&str, Option<&Rule>, &str, &str); 4] = [
        ("metric-math-alarm.json", None, "notification", "ALARM"),
        ("database-alarm.json", None, "incident", "ALARM"),
        ("metric-ok.json", Some(&none_running()), "recovery", "OK"),
        ("metric-alarm.json", Some(&failing_start), "escalation", "ALARM"),
    ];
    for (sample, sfn, kind, state) in cases {
        let expected = (kind, state);
        let sns = published_where(move |input| {
            let attribute = |name: &str| {
                input.message_attributes().and_then(|a| a.get(name)).and_then(|v| v.string_value()).unwrap_or_default()
            };
            let names: std::collections::BTreeSet<&str> =
                input.message_attributes().map(|a| a.keys().map(String::as_str).collect()).unwrap_or_default();
            names == shared::page::ATTRIBUTE_NAMES.into_iter().collect()
                && attribute("kind") == expected.0
                && attribute("state") == expected.1
                && !attribute("severity").is_empty()
                && !attribute("route").is_empty()
        });
        let sfn: Vec<&Rule> = sfn.into_iter().collect();
        handle(&clients(&sfn, &[&sns], &[]), &config(None), event(sample)).await.expect(sample);
        assert_eq!(sns.num_calls(), 1, "{sample}: the message lacks or misstates its attributes");
    }
}

#[test]
fn the_state_machine_gets_its_pages_written_and_junk_is_refused() {
    let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
    let mut request: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    request["page"] = Value::from("escalation");
    let page = write_page(request.clone()).expect("escalation page");
    assert!(page.message.starts_with("ESCALATED: web-nginx-down"), "{}", page.message);
    request["page"] = Value::from("recovery");
    assert!(write_page(request.clone()).expect("recovery page").message.starts_with("RECOVERED: web-nginx-down"));
    request["page"] = Value::from("gossip");
    assert_eq!(<&str>::from(&write_page(request.clone()).expect_err("unknown page")), "InvalidEvent");
    assert_eq!(
        <&str>::from(&write_page(serde_json::json!({"page": "escalation"})).expect_err("no document")),
        "InvalidEvent"
    );
}

// ---------------------------------------------------------------- incident groups

mod groups {
    use super::*;
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use shared::metrics::{Measurement, Metric, Reason};
    use std::collections::HashMap;

    fn grouped_config() -> RouterConfig {
        RouterConfig { state_table: Some("state".into()), ..config(None) }
    }

    fn no_silences() -> Rule {
        mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(|| aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder().build())
    }

    fn forgotten() -> Rule {
        mock!(aws_sdk_dynamodb::Client::delete_item)
            .then_output(|| aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput::builder().build())
    }

    /// The group's and the member's items as the router reads them (one consistent batch): the
    /// first key asked is the group's, the second the member's.
    pub(super) fn snapshot(
        group: Option<HashMap<String, AttributeValue>>,
        member: Option<HashMap<String, AttributeValue>>,
    ) -> Rule {
        use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
        mock!(aws_sdk_dynamodb::Client::batch_get_item).then_compute_output(move |request| {
            let asked = request.request_items().and_then(|r| r.get("state")).map(|k| k.keys().to_vec());
            let asked = asked.unwrap_or_default();
            let found: Vec<HashMap<String, AttributeValue>> = [group.clone(), member.clone()]
                .into_iter()
                .zip(asked)
                .filter_map(|(item, key)| {
                    item.map(|mut item| {
                        item.extend(key);
                        item
                    })
                })
                .collect();
            BatchGetItemOutput::builder().responses("state", found).build()
        })
    }

    /// The group's and the member's writes, done together.
    pub(super) fn written() -> Rule {
        mock!(aws_sdk_dynamodb::Client::transact_write_items).then_output(|| {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput::builder().build()
        })
    }

    /// A group of generation `gen`: `firing` of its `members` fire.
    fn group_item(opened_by: &str, firing: usize, members: usize, paged: bool) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S("group#storefront/AvailabilityZone=eu-west-1a".into())),
            ("generation".to_owned(), AttributeValue::S("gen".into())),
            ("openedBy".to_owned(), AttributeValue::S(opened_by.into())),
            ("firstAlarmArn".to_owned(), AttributeValue::S("arn:first".into())),
            ("paged".to_owned(), AttributeValue::Bool(paged)),
            ("firingCount".to_owned(), AttributeValue::N(firing.to_string())),
            ("memberCount".to_owned(), AttributeValue::N(members.to_string())),
            ("openUntil".to_owned(), AttributeValue::N(i64::MAX.to_string())),
        ])
    }

    /// A member item: firing in generation `gen`, or only seen in it.
    fn member_item(firing: bool) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([("seenIn".to_owned(), AttributeValue::S("gen".into()))]);
        if firing {
            item.insert("firingIn".into(), AttributeValue::S("gen".into()));
        }
        item
    }

    fn updated(item: HashMap<String, AttributeValue>) -> Rule {
        mock!(aws_sdk_dynamodb::Client::update_item)
            .then_output(move || UpdateItemOutput::builder().set_attributes(Some(item.clone())).build())
    }

    fn update_refused(old: Option<HashMap<String, AttributeValue>>) -> Rule {
        mock!(aws_sdk_dynamodb::Client::update_item).then_error(move || {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().set_item(old.clone()).build(),
            )
        })
    }

    fn storefront(host: &str, state: &str) -> Value {
        let mut alarm = event("storefront-alarm.json");
        let name = format!("storefront-checkout-5xx-{host}");
        alarm["detail"]["alarmName"] = Value::from(name.clone());
        alarm["resources"][0] = Value::from(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"));
        alarm["detail"]["state"]["value"] = Value::from(state);
        alarm
    }

    #[test]
    fn the_group_key_is_the_route_and_the_dimensions_it_splits_by() {
        let routes = Routes::example().expect("routes");
        let alarm = shared::Alarm::from_event(&storefront("i-1", "ALARM")).expect("alarm");
        let route = routes.route(&alarm);
        assert_eq!(route.group_key(&alarm).as_deref(), Some("storefront/AvailabilityZone=eu-west-1a"));
        let web = shared::Alarm::from_event(&event("metric-alarm.json")).expect("alarm");
        assert_eq!(routes.route(&web).group_key(&web).as_deref(), Some("web-nginx"));
        let api = shared::Alarm::from_event(&event("metric-math-alarm.json")).expect("alarm");
        assert_eq!(routes.route(&api).group_key(&api), None, "routes without group: every alarm alone");
    }

    #[tokio::test]
    async fn the_first_alarm_of_a_group_opens_it_and_pages_as_usual() {
        let (read, put, sns, confirmed) = (snapshot(None, None), written(), published(), page_confirmed());
        let decision = handle(
            &clients_with_table(&[], &[&sns], &[], &[&read, &put, &confirmed, &no_silences(), &forgotten()]),
            &grouped_config(),
            storefront("i-1", "ALARM"),
        )
        .await
        .expect("decision");
        assert_eq!(decision.action, DecisionAction::Incident);
        assert_eq!((put.num_calls(), sns.num_calls(), confirmed.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn a_group_page_that_failed_is_not_marked_sent() {
        // GIVEN the first ALARM of a group, and SNS throttling the page
        let throttled = mock!(aws_sdk_sns::Client::publish).then_error(|| {
            aws_sdk_sns::operation::publish::PublishError::generic(
                ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build(),
            )
        });
        let (read, put, confirmed) = (snapshot(None, None), written(), page_confirmed());
        let released = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression() == Some("REMOVE pageClaimedAt"))
            .then_output(|| UpdateItemOutput::builder().build());
        // WHEN the router handles it
        let answer = handle(
            &clients_with_table(
                &[],
                &[&throttled],
                &[],
                &[&read, &put, &confirmed, &released, &no_silences(), &forgotten()],
            ),
            &grouped_config(),
            storefront("i-1", "ALARM"),
        )
        .await;
        // THEN the delivery fails (so it is retried), the group's page stays unsent, and the claim
        // on it is given back so that the retry sends it at once
        assert!(matches!(answer, Err(RouterError::TransientError(_))), "{answer:?}");
        assert_eq!((throttled.num_calls(), confirmed.num_calls(), released.num_calls()), (1, 0, 1));
    }

    #[tokio::test]
    async fn a_redelivered_opener_whose_page_was_not_sent_pages_now() {
        // GIVEN the group's opener was delivered before but its page never confirmed
        let alarm = storefront("i-1", "ALARM");
        let key = IncidentKey::for_transition("storefront", &shared::Alarm::from_event(&alarm).expect("alarm"));
        let (put, sns, confirmed) = (
            snapshot(Some(group_item(key.as_str(), 1, 1, false)), Some(member_item(true))),
            published(),
            page_confirmed(),
        );
        let again = updated(HashMap::new());
        // WHEN it is delivered again
        handle(
            &clients_with_table(&[], &[&sns], &[], &[&put, &confirmed, &again, &no_silences(), &forgotten()]),
            &grouped_config(),
            alarm,
        )
        .await
        .expect("decision");
        // THEN the page goes out now, and only then is it marked sent
        assert_eq!((sns.num_calls(), confirmed.num_calls()), (1, 1));
    }

    /// The group's page marked sent.
    fn page_confirmed() -> Rule {
        mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression() == Some("SET paged = :yes REMOVE pageClaimedAt"))
            .then_output(|| aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build())
    }

    #[tokio::test]
    async fn a_later_alarm_joins_the_open_group_and_pages_no_one() {
        let (put, sns) = (snapshot(Some(group_item("storefront__first__0", 1, 1, true)), None), published());
        let joined = written();
        let decision = handle(
            &clients_with_table(&[], &[&sns], &[], &[&put, &joined, &no_silences(), &forgotten()]),
            &grouped_config(),
            storefront("i-2", "ALARM"),
        )
        .await
        .expect("decision");
        assert_eq!(decision.action, DecisionAction::Group);
        assert!(
            matches!(&decision.outcome, Outcome::Grouped { members: 2, firing: 2, opened_by, execution_arn: None, .. } if opened_by == "storefront__first__0"),
            "{:?}",
            decision.outcome
        );
        assert_eq!(sns.num_calls(), 0, "no second page");
    }

    #[tokio::test]
    async fn a_redelivered_first_alarm_does_not_page_twice() {
        // GIVEN the opening ALARM's first delivery opened the group (and paged)
        let alarm = storefront("i-1", "ALARM");
        let key = IncidentKey::for_transition("storefront", &shared::Alarm::from_event(&alarm).expect("alarm"));
        let (put, sns) = (snapshot(Some(group_item(key.as_str(), 1, 1, true)), Some(member_item(true))), published());
        let again = written();
        // WHEN it is delivered again (or two deliveries race, and this one loses the put)
        let decision = handle(
            &clients_with_table(&[], &[&sns], &[], &[&put, &again, &no_silences(), &forgotten()]),
            &grouped_config(),
            alarm,
        )
        .await
        .expect("decision");
        // THEN nothing is published a second time
        assert_eq!(sns.num_calls(), 0);
        assert_eq!(decision.action, DecisionAction::Ignore, "{:?}", decision.outcome);
    }

    #[tokio::test]
    async fn a_joining_alarm_of_a_remediating_route_is_still_remediated() {
        let (put, sfn, sns) =
            (snapshot(Some(group_item("web-nginx__other__0", 2, 2, false)), None), started(), published());
        let joined = written();
        let decision = handle(
            &clients_with_table(&[&sfn], &[&sns], &[], &[&put, &joined, &no_silences(), &forgotten()]),
            &grouped_config(),
            event("metric-alarm.json"),
        )
        .await
        .expect("decision");
        assert!(matches!(&decision.outcome, Outcome::Grouped { execution_arn: Some(_), .. }), "{:?}", decision.outcome);
        assert_eq!((sfn.num_calls(), sns.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn only_the_last_ok_of_a_group_announces_its_recovery_once() {
        let cases = [
            // (what the table says, recoveries published)
            (snapshot(Some(group_item("k", 2, 2, true)), Some(member_item(true))), 0),
            (snapshot(Some(group_item("k", 1, 2, true)), Some(member_item(true))), 1),
            // not firing in an open group: redelivered OK, or never announced
            (snapshot(Some(group_item("k", 1, 2, true)), Some(member_item(false))), 0),
            (snapshot(None, None), 0),
        ];
        for (table, expected) in cases {
            let (sns, left) = (published(), written());
            let told = mock!(aws_sdk_dynamodb::Client::update_item)
                .match_requests(|r| r.update_expression() == Some("REMOVE recoveryOwedBy"))
                .then_output(|| UpdateItemOutput::builder().build());
            let decision = handle(
                &clients_with_table(&[], &[&sns], &[], &[&table, &left, &told, &no_silences(), &forgotten()]),
                &grouped_config(),
                storefront("i-1", "OK"),
            )
            .await
            .expect("decision");
            assert_eq!(sns.num_calls(), expected, "{:?}", decision.outcome);
        }
    }

    fn page_request(page: &str) -> Value {
        let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
        let mut request: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
        request["page"] = Value::from(page);
        request
    }

    #[tokio::test]
    async fn only_the_first_escalation_of_a_group_pages() {
        // (the claim's answer, suppressed?)
        let cases = [
            (updated(HashMap::new()), false),
            (update_refused(Some(group_item("k", 1, 1, true))), true),
            // no group in the table (expired): page rather than lose it
            (update_refused(None), false),
        ];
        for (claim, suppressed) in cases {
            let page = page_for(
                &clients_with_table(&[], &[], &[], &[&claim, &no_silences()]),
                &grouped_config(),
                page_request("escalation"),
            )
            .await
            .expect("page");
            assert_eq!(page.suppressed, suppressed, "{page:?}");
            assert!(page.message.starts_with("ESCALATED: web-nginx-down"));
        }
    }

    #[tokio::test]
    async fn a_refused_escalation_gives_back_only_its_own_claim_on_the_groups_page() {
        // GIVEN an escalation whose page the alert topic refused
        let request = page_request("escalation");
        let this = request["incidentKey"].as_str().expect("key").to_owned();
        let release = serde_json::json!({"releasePage": {
            "alarm": request["alarm"], "route": request["route"], "incidentKey": this,
        }});
        // (the table's answer to "SET paged = false where pagedBy is this claimant", released?)
        let cases = [(updated(HashMap::new()), true), (update_refused(None), false)];
        for (answer, released) in cases {
            // WHEN Release Group Page asks the router
            let out = dispatch(&clients_with_table(&[], &[], &[], &[&answer]), &grouped_config(), release.clone())
                .await
                .expect("released");
            // THEN the claim is given back only where this escalation held it
            assert_eq!(out["released"], released, "{out}");
            assert_eq!(answer.num_calls(), 1);
        }
        let forged = serde_json::json!({"releasePage": {"alarm": request["alarm"], "route": {"name": "nope"}, "incidentKey": this}});
        let refused = dispatch(&clients_with_table(&[], &[], &[], &[]), &grouped_config(), forged).await;
        assert!(matches!(refused, Err(RouterError::InvalidEvent(_))), "{refused:?}");
    }

    #[tokio::test]
    async fn a_suppressed_escalation_names_the_room_of_the_one_that_paged_and_a_retried_claim_still_pages() {
        let this = page_request("escalation")["incidentKey"].as_str().expect("key").to_owned();
        let paged_by = |key: &str| {
            let mut item = group_item("k", 1, 1, true);
            item.insert("pagedBy".to_owned(), AttributeValue::S(key.to_owned()));
            item
        };
        // (the claim's answer, suppressed?, room named)
        let cases = [
            (update_refused(Some(paged_by("web-nginx__web-nginx-down-a__1234567890abcdef1234"))), true, true),
            // this very execution claimed it before (its Write Escalation Page task is retried)
            (update_refused(Some(paged_by(&this))), false, false),
        ];
        for (claim, suppressed, room) in cases {
            let page = page_for(
                &clients_with_table(&[], &[], &[], &[&claim, &no_silences()]),
                &grouped_config(),
                page_request("escalation"),
            )
            .await
            .expect("page");
            assert_eq!(page.suppressed, suppressed, "{page:?}");
            assert_eq!(page.room_of.is_some(), room, "{page:?}");
        }
    }

    #[tokio::test]
    async fn an_escalation_its_group_paged_for_already_is_measured_as_a_page_avoided() {
        let claim = update_refused(Some({
            let mut item = group_item("k", 1, 1, true);
            item.insert("pagedBy".to_owned(), AttributeValue::S("web-nginx__other__1234567890abcdef1234".into()));
            item
        }));
        let (_, measured) = dispatch_measured(
            &clients_with_table(&[], &[], &[], &[&claim, &no_silences()]),
            &grouped_config(),
            page_request("escalation"),
        )
        .await
        .expect("page");
        assert_eq!(
            measured,
            [
                Measurement::count(Metric::RemediationsEscalated, "web-nginx"),
                Measurement::avoided("web-nginx", Reason::Grouped)
            ]
        );
        // The route is the deployed one: a forged name is not a dimension of anyone's metrics.
        let mut forged = page_request("recovery");
        forged["route"]["name"] = Value::from("not-a-route");
        let (_, measured) =
            dispatch_measured(&clients_with_table(&[], &[], &[], &[&no_silences()]), &grouped_config(), forged)
                .await
                .expect("page");
        assert_eq!(measured, []);
    }

    #[tokio::test]
    async fn a_grouped_alarms_recovery_is_left_to_its_group_and_the_route_comes_from_the_rules() {
        let page = page_for(
            &clients_with_table(&[], &[], &[], &[&no_silences()]),
            &grouped_config(),
            page_request("recovery"),
        )
        .await
        .expect("page");
        assert!(page.suppressed, "{page:?}");
        // A task input claiming another route does not change what the deployed rules say.
        let mut forged = page_request("recovery");
        forged["route"]["name"] = Value::from("not-a-route");
        let page = page_for(&clients_with_table(&[], &[], &[], &[&no_silences()]), &grouped_config(), forged)
            .await
            .expect("page");
        assert!(!page.suppressed, "an unknown route is not grouped: {page:?}");
    }
}

// ---------------------------------------------------------------- silences

mod silenced {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;

    fn table_config() -> RouterConfig {
        RouterConfig { state_table: Some("state".into()), ..config(None) }
    }

    /// The silences item holding one silence of the api alarms, with or without automation.
    fn silences(allow_automation: bool, alarm_prefix: &str) -> Rule {
        let silence = serde_json::json!({
            "id": "s-patch", "match": {"alarmName": {"prefix": alarm_prefix}}, "author": "alice",
            "reason": "patching tonight", "startsAt": "2026-11-20T00:00:00Z", "endsAt": "2026-11-21T00:00:00Z",
            "allowAutomation": allow_automation
        });
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("silences".into())),
            (
                "silences".to_owned(),
                AttributeValue::M(HashMap::from([("s-patch".to_owned(), AttributeValue::S(silence.to_string()))])),
            ),
        ]);
        mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(move || GetItemOutput::builder().set_item(Some(item.clone())).build())
    }

    fn remembered() -> Rule {
        mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression() == Some("SET silencedBy = :silence"))
            .then_output(|| aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build())
    }

    /// The alarm's lifecycle record before this transition: the silence that kept its ALARM quiet.
    fn forgotten(silenced_by: Option<&'static str>) -> Rule {
        mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression().is_some_and(|e| e.starts_with("SET atMs")))
            .then_output(move || {
                let old =
                    silenced_by.map(|id| HashMap::from([("silencedBy".to_owned(), AttributeValue::S(id.into()))]));
                aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().set_attributes(old).build()
            })
    }

    #[tokio::test]
    async fn a_silenced_alarm_pages_no_one_and_starts_nothing() {
        // GIVEN a silence of the notify route's api alarms, and one of the web hosts
        for (sample, prefix) in [("metric-math-alarm.json", "api-"), ("metric-alarm.json", "web-")] {
            let (table, remember, sns, sfn) = (silences(false, prefix), remembered(), published(), started());
            // WHEN the alarm fires
            let decision = handle(
                &clients_with_table(&[&sfn], &[&sns], &[], &[&table, &remember]),
                &table_config(),
                event(sample),
            )
            .await
            .expect("decision");
            // THEN the decision names the silence; nothing is published or started; the ALARM is remembered
            assert_eq!(decision.action, DecisionAction::Silence, "{sample}");
            assert!(
                matches!(&decision.outcome, Outcome::Silenced { silence, execution_arn: None, .. } if silence == "s-patch"),
                "{:?}",
                decision.outcome
            );
            assert_eq!((sns.num_calls(), sfn.num_calls(), remember.num_calls()), (0, 0, 1), "{sample}");
        }
    }

    #[tokio::test]
    async fn a_silence_that_allows_automation_still_remediates_but_its_escalation_pages_no_one() {
        let (table, remember, sns, sfn) = (silences(true, "web-"), remembered(), published(), started());
        let decision = handle(
            &clients_with_table(&[&sfn], &[&sns], &[], &[&table, &remember]),
            &table_config(),
            event("metric-alarm.json"),
        )
        .await
        .expect("decision");
        assert!(
            matches!(&decision.outcome, Outcome::Silenced { execution_arn: Some(_), .. }),
            "{:?}",
            decision.outcome
        );
        assert_eq!((sfn.num_calls(), sns.num_calls()), (1, 0));
        let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
        let mut request: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
        request["page"] = Value::from("escalation");
        let page = page_for(&clients_with_table(&[], &[], &[], &[&silences(true, "web-")]), &table_config(), request)
            .await
            .expect("page");
        assert!(page.suppressed && page.why.as_deref().is_some_and(|w| w.contains("s-patch")), "{page:?}");
    }

    #[tokio::test]
    async fn an_ok_announces_a_recovery_only_for_what_was_announced() {
        // (what the table remembers of the ALARM, recoveries published)
        for (silenced_by, expected) in [(Some("s-patch"), 0), (None, 1)] {
            let (forget, sns) = (forgotten(silenced_by), published());
            let decision = handle(
                &clients_with_table(&[], &[&sns], &[], &[&forget]),
                &table_config(),
                ok_of("metric-math-alarm.json"),
            )
            .await
            .expect("decision");
            assert_eq!(sns.num_calls(), expected, "{silenced_by:?}: {:?}", decision.outcome);
        }
    }

    /// The sample alarm returning to OK from ALARM.
    fn ok_of(sample: &str) -> Value {
        let mut alarm = event(sample);
        alarm["detail"]["state"]["value"] = Value::from("OK");
        alarm["detail"]["previousState"]["value"] = Value::from("ALARM");
        alarm
    }
}

mod maintenance {
    use super::*;

    /// The canonical web host alarm, fired at `at`.
    fn web_alarm_at(at: &str) -> Value {
        let mut alarm = event("metric-alarm.json");
        alarm["detail"]["state"]["timestamp"] = Value::from(at);
        alarm
    }

    #[tokio::test]
    async fn an_alarm_in_a_maintenance_window_pages_no_one_and_starts_nothing() {
        // GIVEN the sample rules' saturday-patching window (02:00-04:00 Europe/Dublin, web-nginx)
        let (sns, sfn) = (published(), started());
        let clients = clients(&[&sfn], &[&sns], &[]);
        // WHEN a web host's alarm fires at 02:30 on a Saturday in winter (UTC+0)
        let decision =
            handle(&clients, &config(None), web_alarm_at("2026-11-21T02:30:00.000+0000")).await.expect("decision");
        // THEN the window keeps it quiet: nothing published, nothing started
        assert_eq!(decision.action, DecisionAction::Silence);
        assert!(
            matches!(&decision.outcome, Outcome::Silenced { silence, execution_arn: None, .. } if silence == "window:saturday-patching"),
            "{:?}",
            decision.outcome
        );
        assert_eq!((sns.num_calls(), sfn.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn the_window_follows_summer_time_and_ends_on_time() {
        for (at, quiet) in [
            // 02:30 Dublin summer time is 01:30 UTC: in the window
            ("2026-06-20T01:30:00.000+0000", true),
            // 03:30 UTC in June is 04:30 in Dublin: after it
            ("2026-06-20T03:30:00.000+0000", false),
            // 04:00 UTC in November is its end: not covered
            ("2026-11-21T04:00:00.000+0000", false),
        ] {
            let (sns, sfn) = (published(), started());
            let decision = handle(&clients(&[&sfn], &[&sns], &[]), &config(None), web_alarm_at(at)).await.expect("ok");
            let silenced = decision.action == DecisionAction::Silence;
            assert_eq!(silenced, quiet, "{at}: {:?}", decision.outcome);
            assert_eq!(sfn.num_calls(), usize::from(!quiet), "{at}");
        }
    }
}

mod inhibition {
    use super::*;
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;

    const REGION: &str = "region-eu-west-1-unhealthy";

    fn arn(name: &str) -> String {
        format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}")
    }

    /// The sample rules, plus: while a region- alarm is in ALARM, web-nginx alarms page no one.
    fn inhibiting_config() -> RouterConfig {
        let path = format!("{}/../../infra/routes.example.yaml", env!("CARGO_MANIFEST_DIR"));
        let example = std::fs::read_to_string(&path).expect("example rules");
        let yaml = format!(
            "{example}\ninhibit:\n  - name: region-outage\n    whileAlarm: {{ alarmName: {{ prefix: region- }} }}\n    routes: [web-nginx]\n"
        );
        RouterConfig {
            state_table: Some("state".into()),
            routes: Routes::from_yaml(&yaml).expect("rules"),
            ..config(None)
        }
    }

    fn key_is(prefix: &'static str) -> impl Fn(&HashMap<String, AttributeValue>) -> bool {
        move |key| key.get("pk").and_then(|v| v.as_s().ok()).is_some_and(|k| k.starts_with(prefix))
    }

    /// The table: no silences; the region-outage rule's inhibiting alarms now in ALARM are `firing`.
    fn table(firing: Vec<String>) -> (Rule, Rule, Rule, Rule, Rule, Rule, Rule, Rule) {
        let inhibitors = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| r.key().is_some_and(key_is("inhibit#region-outage")))
            .then_output(move || {
                let item = HashMap::from([("firing".to_owned(), AttributeValue::Ss(firing.clone()))]);
                GetItemOutput::builder().set_item((!firing.is_empty()).then_some(item)).build()
            });
        let no_silences = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
        let recorded = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.key().is_some_and(key_is("inhibit#")))
            .then_output(|| UpdateItemOutput::builder().build());
        let joined = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
        let put = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
        let read = super::groups::snapshot(None, None);
        let opened = super::groups::written();
        let forgotten =
            mock!(aws_sdk_dynamodb::Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
        (inhibitors, no_silences, recorded, joined, put, forgotten, read, opened)
    }

    fn named(name: &str, state: &str) -> Value {
        let mut alarm = event("metric-alarm.json");
        alarm["detail"]["alarmName"] = Value::from(name);
        alarm["resources"][0] = Value::from(arn(name));
        alarm["detail"]["state"]["value"] = Value::from(state);
        alarm
    }

    #[tokio::test]
    async fn while_the_region_alarm_fires_a_host_alarm_pages_no_one_and_starts_nothing() {
        let (inhibitors, no_silences, recorded, joined, put, forgotten, read, opened) = table(vec![arn(REGION)]);
        let (sns, sfn) = (published(), started());
        let clients = clients_with_table(
            &[&sfn],
            &[&sns],
            &[],
            &[&inhibitors, &no_silences, &recorded, &joined, &put, &forgotten, &read, &opened],
        );
        let decision = handle(&clients, &inhibiting_config(), event("metric-alarm.json")).await.expect("decision");
        assert_eq!(decision.action, DecisionAction::Silence);
        assert!(
            matches!(&decision.outcome, Outcome::Silenced { silence, execution_arn: None, .. } if silence == "inhibit:region-outage"),
            "{:?}",
            decision.outcome
        );
        assert_eq!((sns.num_calls(), sfn.num_calls(), inhibitors.num_calls()), (0, 0, 1));
        assert_eq!(recorded.num_calls(), 0, "a host alarm is not an inhibiting one");
        assert_eq!(suppression_of("inhibit:region-outage"), Suppression::Inhibited);
    }

    #[tokio::test]
    async fn with_no_region_alarm_firing_the_host_alarm_is_remediated_as_usual() {
        // Only the host itself in the set (it never inhibits itself), then nothing at all.
        for firing in [vec![arn("web-nginx-down")], vec![]] {
            let (inhibitors, no_silences, recorded, joined, put, forgotten, read, opened) = table(firing.clone());
            let (sns, sfn) = (published(), started());
            let clients = clients_with_table(
                &[&sfn],
                &[&sns],
                &[],
                &[&inhibitors, &no_silences, &recorded, &joined, &put, &forgotten, &read, &opened],
            );
            let decision = handle(&clients, &inhibiting_config(), event("metric-alarm.json")).await.expect("decision");
            assert_eq!(decision.action, DecisionAction::Remediate, "{firing:?}: {:?}", decision.outcome);
            assert_eq!(sfn.num_calls(), 1, "{firing:?}");
        }
    }

    #[tokio::test]
    async fn the_region_alarm_is_recorded_on_alarm_and_cleared_on_ok_whatever_its_route_does() {
        for (state, expression) in
            [("ALARM", "ADD firing :arn SET #ttl = :ttl"), ("OK", "DELETE firing :arn SET #ttl = :ttl")]
        {
            let (inhibitors, no_silences, _, joined, put, forgotten, read, opened) = table(vec![]);
            let recorded = mock!(aws_sdk_dynamodb::Client::update_item)
                .match_requests(move |r| {
                    r.key().is_some_and(key_is("inhibit#region-outage"))
                        && r.update_expression() == Some(expression)
                        && r.expression_attribute_values()
                            .and_then(|v| v.get(":arn"))
                            .and_then(|v| v.as_ss().ok())
                            .is_some_and(|arns| arns == &vec![arn(REGION)])
                })
                .then_output(|| UpdateItemOutput::builder().build());
            let sns = published();
            let incidents = mock!(aws_sdk_ssmincidents::Client::list_incident_records).then_output(|| {
                ListIncidentRecordsOutput::builder().set_incident_record_summaries(Some(vec![])).build().expect("out")
            });
            let clients = clients_with_table(
                &[],
                &[&sns],
                &[&incidents],
                &[&inhibitors, &no_silences, &recorded, &joined, &put, &forgotten, &read, &opened],
            );
            // The region alarm takes the default (notify) route: it is announced as usual.
            let decision = handle(&clients, &inhibiting_config(), named(REGION, state)).await.expect("decision");
            assert_eq!(decision.route.name, "default");
            assert_eq!(recorded.num_calls(), 1, "{state}");
        }
    }
}

mod decision_log {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;

    fn decision() -> Decision {
        let alarm = shared::Alarm::from_event(&event("metric-alarm.json")).expect("alarm");
        let route = Routes::example().expect("rules").route(&alarm);
        Decision {
            action: DecisionAction::Ignore,
            incident_key: IncidentKey::for_transition(&route.name, &alarm),
            route,
            alarm,
            outcome: Outcome::Ignored { reason: "test".into() },
        }
    }

    #[tokio::test]
    async fn past_the_trim_mark_the_oldest_entries_are_removed_down_to_the_kept_number() {
        // GIVEN an alarm with 121 recorded transitions (written 121 times)
        let written = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression().is_some_and(|e| e.starts_with("SET #entry")))
            .then_output(|| {
                UpdateItemOutput::builder()
                    .set_attributes(Some(HashMap::from([("entries".to_owned(), AttributeValue::N("121".into()))])))
                    .build()
            });
        let item: HashMap<String, AttributeValue> = (0..121)
            .map(|i| {
                (format!("d|2026-11-20T04:{:02}:{:02}.000Z|ALARM", i / 60, i % 60), AttributeValue::S("{}".into()))
            })
            .chain([("entries".to_owned(), AttributeValue::N("121".into()))])
            .collect();
        let read = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(move || GetItemOutput::builder().set_item(Some(item.clone())).build());
        let trimmed = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                let names = r.expression_attribute_names().cloned().unwrap_or_default();
                let removed: Vec<&String> = names.values().collect();
                // The 21 oldest (04:00:00 to 04:00:20), and no newer one.
                r.update_expression().is_some_and(|e| e.starts_with("SET entries = :kept REMOVE"))
                    && removed.len() == 21
                    && removed.iter().all(|n| n.as_str() < "d|2026-11-20T04:00:21")
            })
            .then_output(|| UpdateItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&written, &read, &trimmed]);
        // WHEN one more decision is recorded
        let log = decisions::Decisions { client: &client, table: "state" };
        log.record(&decision(), chrono::Utc::now()).await.expect("recorded");
        // THEN the 21 oldest were removed in one call
        assert_eq!((written.num_calls(), read.num_calls(), trimmed.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn a_failed_record_does_not_fail_the_routing() {
        // GIVEN a table whose decision log write fails (every other call answered)
        let failing = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.key()
                    .and_then(|k| k.get("pk"))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|k| k.starts_with("decisions#"))
            })
            .then_error(|| {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::unhandled("AccessDeniedException")
            });
        let fresh = fresh_alarm();
        let clients = Clients {
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&failing, &fresh], |c| c
                .retry_config(RetryConfig::disabled())),
            ..clients(&[], &[], &[])
        };
        // WHEN an ignored alarm is routed with a state table
        let config = RouterConfig { state_table: Some("state".into()), ..config(None) };
        let decision = handle(&clients, &config, event("batch-ignored-alarm.json")).await;
        // THEN the decision stands
        assert!(matches!(decision.map(|d| d.action), Ok(DecisionAction::Ignore)));
        assert_eq!(failing.num_calls(), 1);
    }
}

// ---------------------------------------------------------------- metrics

mod measured {
    use super::*;
    use shared::metrics::{DEFAULT_NAMESPACE, Measurement, Metric, Reason, check_emf};

    fn page_request(page: &str) -> Value {
        let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
        let mut request: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
        request["page"] = Value::from(page);
        request
    }

    fn valid(measured: &[Measurement]) {
        for measurement in measured {
            let line = measurement.to_emf(DEFAULT_NAMESPACE, chrono::Utc::now());
            check_emf(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    }

    #[tokio::test]
    async fn a_page_sent_is_measured_and_a_notification_or_a_started_remediation_is_not() {
        let cases: [(&str, Vec<Measurement>); 4] = [
            ("database-alarm.json", vec![Measurement::count(Metric::PagesSent, "database")]),
            ("metric-math-alarm.json", vec![]),
            ("metric-alarm.json", vec![]),
            ("batch-ignored-alarm.json", vec![]),
        ];
        for (file, expected) in cases {
            let (sfn, sns, idle) = (started(), published(), none_running());
            let (answer, measured) =
                dispatch_measured(&clients(&[&sfn, &idle], &[&sns], &[]), &config(None), event(file))
                    .await
                    .expect(file);
            assert!(answer.get("action").is_some(), "{file}: the answer is the decision: {answer}");
            assert_eq!(measured, expected, "{file}");
            valid(&measured);
        }
    }

    #[tokio::test]
    async fn a_remediation_that_could_not_start_and_paged_instead_is_a_page_sent() {
        let refused = mock!(aws_sdk_sfn::Client::start_execution)
            .then_error(|| StartExecutionError::StateMachineDoesNotExist(StateMachineDoesNotExist::builder().build()));
        let sns = published();
        let (_, measured) =
            dispatch_measured(&clients(&[&refused], &[&sns], &[]), &config(None), event("metric-alarm.json"))
                .await
                .expect("decision");
        assert_eq!(measured, [Measurement::count(Metric::PagesSent, "web-nginx")]);
    }

    #[tokio::test]
    async fn an_escalation_pages_and_a_verified_recovery_is_a_page_the_automation_avoided() {
        let no_table = clients(&[], &[], &[]);
        let (answer, measured) =
            dispatch_measured(&no_table, &config(None), page_request("escalation")).await.expect("escalation");
        assert!(answer["message"].as_str().is_some_and(|m| m.starts_with("ESCALATED")), "{answer}");
        assert_eq!(
            measured,
            [
                Measurement::count(Metric::RemediationsEscalated, "web-nginx"),
                Measurement::count(Metric::PagesSent, "web-nginx")
            ]
        );
        valid(&measured);
        let (_, measured) =
            dispatch_measured(&no_table, &config(None), page_request("recovery")).await.expect("recovery");
        assert_eq!(measured, [Measurement::avoided("web-nginx", Reason::AutoFixed)]);
        valid(&measured);
    }

    #[test]
    fn quiet_decisions_are_pages_avoided_for_their_reason() {
        let alarm = shared::Alarm::from_event(&event("database-alarm.json")).expect("alarm");
        let routes = Routes::example().expect("routes");
        let route = routes.route(&alarm);
        let decide = |action, outcome| Decision {
            action,
            route: route.clone(),
            incident_key: IncidentKey::for_transition(&route.name, &alarm),
            alarm: alarm.clone(),
            outcome,
        };
        let until = chrono::Utc::now();
        let cases = [
            (Outcome::Silenced { silence: "s-1".into(), until, execution_arn: None }, Some(Reason::Silenced)),
            (
                Outcome::Silenced { silence: "window:patching".into(), until, execution_arn: None },
                Some(Reason::Maintenance),
            ),
            (
                Outcome::Silenced { silence: "inhibit:region".into(), until, execution_arn: None },
                Some(Reason::Inhibited),
            ),
            (Outcome::Flapping { since: "x".into(), message_id: None }, Some(Reason::Flapping)),
            (
                Outcome::Grouped {
                    group: "g".into(),
                    opened_by: "k".into(),
                    members: 2,
                    firing: 2,
                    execution_arn: None,
                },
                Some(Reason::Grouped),
            ),
        ];
        for (outcome, reason) in cases {
            let measured = metrics::of_decision(&decide(DecisionAction::Silence, outcome.clone()));
            assert_eq!(
                measured,
                reason.map(|r| Measurement::avoided("database", r)).into_iter().collect::<Vec<_>>(),
                "{outcome:?}"
            );
            valid(&measured);
        }
        let paged = metrics::of_decision(&decide(
            DecisionAction::Flapping,
            Outcome::Flapping { since: "x".into(), message_id: Some("m".into()) },
        ));
        assert_eq!(paged, [Measurement::count(Metric::PagesSent, "database")]);
    }
}
