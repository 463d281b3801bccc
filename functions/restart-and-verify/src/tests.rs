use super::*;
use aws_sdk_cloudwatch::operation::describe_alarms::{DescribeAlarmsError, DescribeAlarmsOutput};
use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm};
use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
use aws_sdk_ssm::operation::list_commands::{ListCommandsError, ListCommandsOutput};
use aws_sdk_ssm::operation::send_command::{SendCommandInput, SendCommandOutput};
use aws_sdk_ssm::types::error::{InvalidInstanceId, InvocationDoesNotExist};
use aws_sdk_ssm::types::{Command, CommandPlugin};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use serde_json::json;
use shared::metrics::{Measurement, Metric};

const FIRST: &str = "i-0a1b2c3d4e5f60718";
const SECOND: &str = "i-0f1e2d3c4b5a69788";
const COMMAND: &str = "8f3c2a10-5b7e-4d21-9a44-1c2e3f4a5b6c";
const KEY: &str = "web-nginx__web-nginx-down__0d5c8a41e6b2f7a93c10";
const TAG_KEY: &str = "app-fleet__app-fleet-5xx-high__5b0e61f2c9d84a37e1f0";

fn event(name: &str) -> Value {
    let path = format!("{}/../../events/restart-and-verify/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json")
}

fn routes() -> Routes {
    Routes::example().expect("example routes")
}

fn config() -> RestartConfig {
    RestartConfig { document: LOCAL_DOCUMENT.to_owned() }
}

fn clients(ssm: &[&Rule], cloudwatch: &[&Rule]) -> Clients {
    Clients {
        ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, ssm, |c| c.retry_config(RetryConfig::disabled())),
        cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, cloudwatch, |c| c
            .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())),
    }
}

async fn run(ssm: &[&Rule], cloudwatch: &[&Rule], input: Value) -> Result<RemediationReport, RestartError> {
    handle(&clients(ssm, cloudwatch), &config(), &routes(), input).await
}

/// The check request `seconds` after the restart was sent, carrying `report`.
fn check_at(file: &str, seconds: i64, report: Value) -> Value {
    let mut input = event(file);
    let sent: DateTime<Utc> = "2026-11-20T04:02:14.120Z".parse().expect("time");
    input["step"] = json!("check");
    input["now"] = json!(sent + TimeDelta::seconds(seconds));
    input["remediation"] = report;
    input
}

fn restarting(command_id: &str) -> Value {
    json!({
        "stage": "restarting", "verified": false, "summary": "restarting", "commandId": command_id,
        "service": "nginx", "sentAt": "2026-11-20T04:02:14.120Z", "checks": 0, "waitSeconds": 10
    })
}

fn awaiting_alarm(active_seconds_after_send: i64) -> Value {
    let sent: DateTime<Utc> = "2026-11-20T04:02:14.120Z".parse().expect("time");
    let mut report = restarting(COMMAND);
    report["stage"] = json!("awaitingAlarm");
    report["activeAt"] = json!(sent + TimeDelta::seconds(active_seconds_after_send));
    report
}

fn sent_where(check: impl Fn(&SendCommandInput) -> bool + Send + Sync + 'static) -> Rule {
    mock!(aws_sdk_ssm::Client::send_command)
        .match_requests(check)
        .then_output(|| SendCommandOutput::builder().command(Command::builder().command_id(COMMAND).build()).build())
}

fn sent() -> Rule {
    sent_where(|_| true)
}

/// `ListCommands` as SSM answers it: the restart of `key` (when given), targeting `targets` instances.
fn listed_commands(key: Option<&'static str>, targets: i32) -> Rule {
    mock!(aws_sdk_ssm::Client::list_commands).then_output(move || {
        let commands = key
            .map(|key| {
                Command::builder()
                    .command_id(COMMAND)
                    .comment(format!("first-response {key}"))
                    .target_count(targets)
                    .build()
            })
            .into_iter()
            .collect();
        ListCommandsOutput::builder().set_commands(Some(commands)).build()
    })
}

fn no_earlier_command() -> Rule {
    listed_commands(None, 0)
}

fn invocation(status: CommandInvocationStatus, code: i32, output: &str) -> GetCommandInvocationOutput {
    GetCommandInvocationOutput::builder()
        .command_id(COMMAND)
        .status(status)
        .response_code(code)
        .standard_output_content(output)
        .execution_elapsed_time("PT6.2S")
        .build()
}

fn answer(instance: &'static str, out: GetCommandInvocationOutput) -> Rule {
    mock!(aws_sdk_ssm::Client::get_command_invocation)
        .match_requests(move |req| req.instance_id() == Some(instance) && req.command_id() == Some(COMMAND))
        .then_output(move || out.clone())
}

fn active(instance: &'static str) -> Rule {
    answer(instance, invocation(CommandInvocationStatus::Success, 0, "restarting nginx\nActive: active (running)"))
}

fn alarm_in(state: StateValue) -> Rule {
    mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|req| req.alarm_names() == ["web-nginx-down"] || req.alarm_names() == ["app-fleet-5xx-high"])
        .then_output(move || {
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("web-nginx-down")
                        .state_value(state.clone())
                        .period(60)
                        .evaluation_periods(3)
                        .build(),
                )
                .build()
        })
}

#[tokio::test]
async fn the_restart_sends_the_products_document_with_the_deployed_unit_once() {
    // GIVEN no earlier command for this incident
    let earlier = no_earlier_command();
    let send = sent_where(|req| {
        let parameter = |name: &str| req.parameters().and_then(|p| p.get(name)).cloned().unwrap_or_default();
        req.document_name() == Some(LOCAL_DOCUMENT)
            && req.instance_ids() == [FIRST, SECOND]
            && parameter(UNIT_PARAMETER) == ["nginx"]
            && parameter(SETTLE_PARAMETER) == ["5"]
            && parameter(EXECUTION_TIMEOUT_PARAMETER) == ["90"]
            && req.max_concurrency() == Some("1")
            && req.comment() == Some(&format!("first-response {KEY}"))
    });
    // WHEN the restart step runs on the canonical request
    let report = run(&[&earlier, &send], &[], event("restart-request.json")).await.expect("report");
    // THEN exactly one command went out and the state machine is told to wait, then check
    assert_eq!(send.num_calls(), 1);
    assert_eq!((report.stage, report.verified, report.resumed), (Stage::Restarting, false, false));
    assert_eq!(report.command_id, COMMAND);
    assert_eq!(report.wait_seconds, 10, "settle time plus five seconds");
    assert_eq!(report.sent_at, "2026-11-20T04:02:14.120Z".parse::<DateTime<Utc>>().expect("time"));
}

#[tokio::test]
async fn a_retried_restart_resumes_the_command_already_sent_and_sends_nothing() {
    // GIVEN an earlier attempt sent the restart, then failed before returning
    let earlier = listed_commands(Some(KEY), 2);
    let send = sent();
    // WHEN Step Functions retries the restart step
    let report = run(&[&earlier, &send], &[], event("restart-request.json")).await.expect("report");
    // THEN the earlier command is resumed and no second restart is sent
    assert_eq!(send.num_calls(), 0, "a retry must never restart the service again");
    assert!(report.resumed);
    assert_eq!(report.command_id, COMMAND);
}

#[tokio::test]
async fn a_restart_that_cannot_look_for_an_earlier_command_sends_nothing() {
    let throttled = mock!(aws_sdk_ssm::Client::list_commands)
        .then_error(|| ListCommandsError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
    let send = sent();
    let err = run(&[&throttled, &send], &[], event("restart-request.json")).await.expect_err("throttled");
    assert_eq!(<&str>::from(&err), "TransientError");
    assert_eq!(send.num_calls(), 0);
}

#[tokio::test]
async fn forged_unknown_and_non_remediating_routes_are_invalid_and_send_nothing() {
    // GIVEN task inputs that try to decide what runs: another unit and targets, a hostile unit, a
    // route the rules do not have, a route that only pages, and another route's incident key
    let mut foreign_key = event("restart-request.json");
    foreign_key["incidentKey"] = json!("database__web-nginx-down__0d5c8a41e6b2f7a93c10");
    let cases = [
        (
            "invalid-forged-remediation.json",
            event("invalid-forged-remediation.json"),
            "differs from the deployed rules",
        ),
        ("invalid-hostile-service.json", event("invalid-hostile-service.json"), "differs from the deployed rules"),
        ("invalid-unknown-route.json", event("invalid-unknown-route.json"), "not in the deployed rules"),
        ("invalid-no-remediation.json", event("invalid-no-remediation.json"), "has no remediation"),
        ("foreign incident key", foreign_key, "does not belong to route"),
    ];
    for (name, input, why) in cases {
        let (earlier, send) = (no_earlier_command(), sent());
        // WHEN the restart step is invoked with them
        let err = run(&[&earlier, &send], &[], input).await.expect_err(name);
        // THEN each is refused by name, and nothing reaches SSM
        assert_eq!(<&str>::from(&err), "InvalidEvent", "{name}: {err}");
        assert!(err.to_string().contains(why), "{name}: {err}");
        assert_eq!(send.num_calls() + earlier.num_calls(), 0, "{name} reached SSM");
    }
}

#[tokio::test]
async fn the_input_may_omit_the_remediation_the_rules_define() {
    let mut input = event("restart-request.json");
    input["route"] = json!({"name": "web-nginx"});
    let (earlier, send) = (no_earlier_command(), sent());
    run(&[&earlier, &send], &[], input).await.expect("report");
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn active_on_every_target_and_the_alarm_ok_is_recovered() {
    // GIVEN both hosts report nginx active and the alarm is OK again
    let command = listed_commands(Some(KEY), 2);
    let (first, second) = (active(FIRST), active(SECOND));
    let alarm = alarm_in(StateValue::Ok);
    let send = sent();
    // WHEN the state machine checks ten seconds after the restart
    let report =
        run(&[&command, &first, &second, &send], &[&alarm], check_at("restart-request.json", 10, restarting(COMMAND)))
            .await
            .expect("report");
    // THEN the remediation is verified, by the alarm itself, and nothing was sent again
    assert_eq!((report.stage, report.verified), (Stage::Recovered, true));
    assert_eq!(alarm.num_calls(), 1);
    assert_eq!(send.num_calls(), 0);
    assert_eq!(report.alarm_state.as_deref(), Some("OK"));
    assert_eq!(report.instances.len(), 2);
    assert!(report.instances.iter().all(|i| i.exit_code == Some(0) && i.evidence.contains("active (running)")));
    assert_eq!(report.checks, 1);
}

#[tokio::test]
async fn a_command_still_running_is_checked_again_later_without_looking_at_the_alarm() {
    let command = listed_commands(Some(KEY), 2);
    let first = answer(FIRST, invocation(CommandInvocationStatus::InProgress, -1, ""));
    let second = active(SECOND);
    let alarm = alarm_in(StateValue::Ok);
    let report =
        run(&[&command, &first, &second], &[&alarm], check_at("restart-request.json", 10, restarting(COMMAND)))
            .await
            .expect("report");
    assert_eq!((report.stage, report.wait_seconds), (Stage::Restarting, COMMAND_CHECK_SECONDS));
    assert!(report.summary.contains("1 of 2"), "{}", report.summary);
    assert_eq!(alarm.num_calls(), 0, "the alarm only counts once the unit is active everywhere");
}

#[tokio::test]
async fn invocation_does_not_exist_right_after_sending_means_not_yet_then_unreachable() {
    let command = listed_commands(Some(KEY), 2);
    let missing = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .match_requests(|req| req.instance_id() == Some(FIRST))
        .then_error(|| GetCommandInvocationError::InvocationDoesNotExist(InvocationDoesNotExist::builder().build()));
    let second = active(SECOND);
    let early = run(&[&command, &missing, &second], &[], check_at("restart-request.json", 10, restarting(COMMAND)))
        .await
        .expect("still waiting");
    assert_eq!(early.stage, Stage::Restarting);
    let late = run(
        &[&command, &missing, &second],
        &[],
        check_at("restart-request.json", INVOCATION_GRACE_SECONDS, restarting(COMMAND)),
    )
    .await
    .expect_err("unreachable");
    assert_eq!(<&str>::from(&late), "TargetUnreachable");
    assert!(late.to_string().contains(FIRST), "{late}");
    assert!(
        late.to_string().contains("active (running)"),
        "the evidence of the instance that answered is kept: {late}"
    );
}

#[tokio::test]
async fn a_service_that_stays_down_fails_the_restart_and_keeps_its_evidence() {
    let command = listed_commands(Some(KEY), 2);
    let first = active(FIRST);
    let second = answer(
        SECOND,
        invocation(
            CommandInvocationStatus::Failed,
            3,
            &format!("restarting nginx\nActive: failed (Result: exit-code)\n{}", "x".repeat(3000)),
        ),
    );
    let alarm = alarm_in(StateValue::Alarm);
    let report =
        run(&[&command, &first, &second], &[&alarm], check_at("restart-request.json", 10, restarting(COMMAND)))
            .await
            .expect("report");
    assert_eq!((report.stage, report.verified), (Stage::RestartFailed, false));
    assert!(report.summary.contains(SECOND), "{}", report.summary);
    let failed = report.instances.iter().find(|i| i.instance_id == SECOND).expect("second instance");
    assert_eq!((failed.exit_code, failed.active), (Some(3), false));
    assert!(failed.evidence.starts_with("restarting nginx\nActive: failed"));
    assert!(failed.evidence.len() <= EVIDENCE_LIMIT + '…'.len_utf8());
    assert_eq!(alarm.num_calls(), 0);
}

#[tokio::test]
async fn undeliverable_invocations_are_unreachable_targets() {
    let command = listed_commands(Some(KEY), 2);
    let first = active(FIRST);
    let second = answer(
        SECOND,
        GetCommandInvocationOutput::builder()
            .status(CommandInvocationStatus::Failed)
            .status_details("Undeliverable")
            .response_code(-1)
            .build(),
    );
    let err = run(&[&command, &first, &second], &[], check_at("restart-request.json", 10, restarting(COMMAND)))
        .await
        .expect_err("undeliverable");
    assert_eq!(<&str>::from(&err), "TargetUnreachable");
    assert!(err.to_string().contains(&format!("{SECOND} (Failed: Undeliverable)")), "{err}");
}

#[tokio::test]
async fn a_command_still_running_past_the_routes_deadline_times_out_with_the_evidence_it_has() {
    let command = listed_commands(Some(KEY), 2);
    let first = active(FIRST);
    let second = answer(SECOND, invocation(CommandInvocationStatus::InProgress, -1, ""));
    let just_in_time = 90 + REPORTING_GRACE_SECONDS;
    let waiting =
        run(&[&command, &first, &second], &[], check_at("restart-request.json", just_in_time, restarting(COMMAND)))
            .await
            .expect("still within the deadline");
    assert_eq!(waiting.stage, Stage::Restarting);
    let err =
        run(&[&command, &first, &second], &[], check_at("restart-request.json", just_in_time + 1, restarting(COMMAND)))
            .await
            .expect_err("timed out");
    assert_eq!(<&str>::from(&err), "CommandTimedOut");
    assert!(err.to_string().contains(SECOND) && err.to_string().contains("active (running)"), "{err}");
}

#[tokio::test]
async fn a_throttled_check_is_transient_and_never_sends_the_restart_again() {
    let command = listed_commands(Some(KEY), 2);
    let throttled = mock!(aws_sdk_ssm::Client::get_command_invocation).then_error(|| {
        GetCommandInvocationError::generic(ErrorMetadata::builder().code("ThrottlingException").build())
    });
    let send = sent();
    let err = run(&[&command, &throttled, &send], &[], check_at("restart-request.json", 10, restarting(COMMAND)))
        .await
        .expect_err("throttled");
    assert_eq!(<&str>::from(&err), "TransientError");
    assert_eq!(send.num_calls(), 0);
}

#[tokio::test]
async fn a_command_of_another_incident_is_not_checked() {
    let other = listed_commands(Some("web-nginx__web-nginx-down__ffffffffffffffffffff"), 2);
    let err =
        run(&[&other], &[], check_at("restart-request.json", 10, restarting(COMMAND))).await.expect_err("foreign");
    assert_eq!(<&str>::from(&err), "InvalidEvent");
    assert!(err.to_string().contains("was not sent for incident"), "{err}");
}

#[tokio::test]
async fn an_alarm_that_still_fires_is_watched_until_the_recovery_deadline_then_fails() {
    // GIVEN nginx is active everywhere since 10 s after the restart, and the alarm (period 60 s,
    // three evaluation periods: 240 s to recover) still fires
    let alarm = alarm_in(StateValue::Alarm);
    // WHEN the state machine looks a minute later
    let early = run(&[], &[&alarm], check_at("restart-request.json", 70, awaiting_alarm(10))).await.expect("report");
    // THEN it waits and looks again
    assert_eq!((early.stage, early.wait_seconds), (Stage::AwaitingAlarm, ALARM_CHECK_SECONDS));
    // AND when it looks after the deadline, the restart is not verified: the alarm still fires
    let late = run(&[], &[&alarm], check_at("restart-request.json", 250, awaiting_alarm(10))).await.expect("report");
    assert_eq!((late.stage, late.verified), (Stage::AlarmStillFiring, false));
    assert!(late.summary.contains("restarted and active, but the alarm still fires"), "{}", late.summary);
    assert_eq!(
        late.recovery_deadline,
        Some("2026-11-20T04:02:24.120Z".parse::<DateTime<Utc>>().expect("time") + TimeDelta::seconds(240))
    );
}

#[tokio::test]
async fn the_last_wait_never_overshoots_the_recovery_deadline() {
    let alarm = alarm_in(StateValue::InsufficientData);
    let report = run(&[], &[&alarm], check_at("restart-request.json", 240, awaiting_alarm(10))).await.expect("report");
    assert_eq!((report.stage, report.wait_seconds), (Stage::AwaitingAlarm, 10));
}

#[tokio::test]
async fn a_composite_alarm_is_watched_too_and_a_deleted_alarm_cannot_verify() {
    let composite = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
        DescribeAlarmsOutput::builder()
            .composite_alarms(
                CompositeAlarm::builder().alarm_name("web-nginx-down").state_value(StateValue::Ok).build(),
            )
            .build()
    });
    let report =
        run(&[], &[&composite], check_at("restart-request.json", 40, awaiting_alarm(10))).await.expect("report");
    assert_eq!(report.stage, Stage::Recovered);
    let gone =
        mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| DescribeAlarmsOutput::builder().build());
    let report = run(&[], &[&gone], check_at("restart-request.json", 40, awaiting_alarm(10))).await.expect("report");
    assert_eq!((report.stage, report.verified), (Stage::AlarmMissing, false));
}

#[tokio::test]
async fn a_throttled_describe_alarms_is_transient() {
    let throttled = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .then_error(|| DescribeAlarmsError::generic(ErrorMetadata::builder().code("Throttling").build()));
    let err =
        run(&[], &[&throttled], check_at("restart-request.json", 40, awaiting_alarm(10))).await.expect_err("throttled");
    assert_eq!(<&str>::from(&err), "TransientError");
}

/// `n` tag-targeted invocations listed from `from`, all active.
fn listed_invocations(from: usize, n: usize) -> Vec<CommandInvocation> {
    (from..from + n)
        .map(|i| {
            CommandInvocation::builder()
                .instance_id(format!("i-{i:017x}"))
                .status(CommandInvocationStatus::Success)
                .status_details("Success")
                .command_plugins(
                    CommandPlugin::builder().name("restartUnit").response_code(0).output("active (running)").build(),
                )
                .build()
        })
        .collect()
}

fn invocation_pages(total: usize) -> Rule {
    mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |req| {
        let from: usize = req.next_token().and_then(|t| t.parse().ok()).unwrap_or(0);
        let n = 50.min(total - from);
        let next = (from + n < total).then(|| (from + n).to_string());
        ListCommandInvocationsOutput::builder()
            .set_command_invocations(Some(listed_invocations(from, n)))
            .set_next_token(next)
            .build()
    })
}

fn tag_restarting() -> Value {
    let mut report = restarting(COMMAND);
    report["service"] = json!("app-server.service");
    report
}

#[tokio::test]
async fn tag_targets_are_verified_only_once_every_page_lists_as_many_invocations_as_ssm_targeted() {
    // GIVEN a tag command that SSM says targets 61 instances, of which 60 are listed so far
    let command = listed_commands(Some(TAG_KEY), 61);
    let pages = invocation_pages(60);
    let alarm = alarm_in(StateValue::Ok);
    // WHEN the state machine checks
    let partial =
        run(&[&command, &pages], &[&alarm], check_at("restart-request-tag-targets.json", 20, tag_restarting()))
            .await
            .expect("report");
    // THEN both pages were read, and it keeps waiting for the 61st
    assert_eq!(pages.num_calls(), 2);
    assert_eq!(partial.stage, Stage::Restarting);
    assert_eq!(partial.target_count, Some(61));
    assert_eq!(alarm.num_calls(), 0);
    // AND once SSM lists all 61, they are verified by the alarm
    let all = invocation_pages(61);
    let report = run(&[&command, &all], &[&alarm], check_at("restart-request-tag-targets.json", 30, tag_restarting()))
        .await
        .expect("report");
    assert_eq!((report.stage, report.instances.len()), (Stage::Recovered, 61));
}

#[tokio::test]
async fn a_tag_nobody_carries_is_an_unreachable_target_after_the_grace_period() {
    let command = listed_commands(Some(TAG_KEY), 0);
    let none = invocation_pages(0);
    let early = run(&[&command, &none], &[], check_at("restart-request-tag-targets.json", 20, tag_restarting()))
        .await
        .expect("waiting");
    assert_eq!(early.stage, Stage::Restarting);
    let err = run(&[&command, &none], &[], check_at("restart-request-tag-targets.json", 61, tag_restarting()))
        .await
        .expect_err("nobody");
    assert_eq!(<&str>::from(&err), "TargetUnreachable");
    assert!(err.to_string().contains("tagged Role=app"), "{err}");
}

#[tokio::test]
async fn a_listing_that_fails_is_never_reported_as_nothing_matched() {
    let command = listed_commands(Some(TAG_KEY), 3);
    let broken = mock!(aws_sdk_ssm::Client::list_command_invocations).then_error(|| {
        aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsError::generic(
            ErrorMetadata::builder().code("AccessDeniedException").message("not authorized").build(),
        )
    });
    let err = run(&[&command, &broken], &[], check_at("restart-request-tag-targets.json", 120, tag_restarting()))
        .await
        .expect_err("broken");
    assert_eq!(<&str>::from(&err), "ConfigError");
    assert!(err.to_string().contains("ListCommandInvocations") && !err.to_string().contains("no managed instance"));
}

#[tokio::test]
async fn an_offline_agent_is_a_target_unreachable_error() {
    let earlier = no_earlier_command();
    let offline = mock!(aws_sdk_ssm::Client::send_command).then_error(|| {
        SendCommandError::InvalidInstanceId(InvalidInstanceId::builder().message("agent not online").build())
    });
    let err = run(&[&earlier, &offline], &[], event("restart-request.json")).await.expect_err("offline");
    assert_eq!(<&str>::from(&err), "TargetUnreachable");
}

/// An SSM 500 as the service sends it (awsJson 1.1), so the SDK classifies it as it would in AWS.
const SSM_INTERNAL_ERROR: &str = r#"{"__type":"InternalServerError","message":"An internal error occurred"}"#;

/// `ListCommands` that finds nothing the first time and, from then on, the command SSM did create.
fn listed_only_after_the_first_look(key: &'static str) -> Rule {
    let created = move || {
        ListCommandsOutput::builder()
            .commands(Command::builder().command_id(COMMAND).comment(format!("first-response {key}")).build())
            .build()
    };
    mock!(aws_sdk_ssm::Client::list_commands)
        .sequence()
        .output(|| ListCommandsOutput::builder().build())
        .output(created)
        .repeatedly()
        .build()
}

#[tokio::test]
async fn send_command_is_never_retried_by_the_sdk_even_when_the_client_retries() {
    // GIVEN a client configured as in Lambda, with the SDK's automatic retries on, and SSM answering
    // SendCommand with a 500 once (the command may have been created) and then accepting it
    let earlier = no_earlier_command();
    let send = mock!(aws_sdk_ssm::Client::send_command)
        .sequence()
        .http_status(500, Some(SSM_INTERNAL_ERROR.to_owned()))
        .output(|| SendCommandOutput::builder().command(Command::builder().command_id(COMMAND).build()).build())
        .build();
    let retrying = RetryConfig::standard().with_initial_backoff(std::time::Duration::from_millis(1));
    let clients = Clients {
        ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&earlier, &send], |c| c.retry_config(retrying.clone())),
        cloudwatch: clients(&[], &[]).cloudwatch,
    };
    // WHEN the restart step runs
    let _ = handle(&clients, &config(), &routes(), event("restart-request.json")).await;
    // THEN SendCommand went out once: no second restart behind the function's back
    assert_eq!(send.num_calls(), 1, "the SDK re-sent SendCommand");
}

#[tokio::test]
async fn an_ambiguous_send_command_failure_with_no_command_found_is_a_final_error_that_escalates() {
    // GIVEN SSM answers SendCommand with a 500 and lists no command for the incident afterwards
    let earlier = no_earlier_command();
    let send = mock!(aws_sdk_ssm::Client::send_command)
        .sequence()
        .http_status(500, Some(SSM_INTERNAL_ERROR.to_owned()))
        .build();
    // WHEN the restart step runs
    let err = run(&[&earlier, &send], &[], event("restart-request.json")).await.expect_err("ambiguous");
    // THEN the error is not the retryable one, so Step Functions escalates instead of restarting again
    assert_eq!(<&str>::from(&err), "CommandOutcomeUnknown", "{err}");
    assert!(err.to_string().contains(&format!("first-response {KEY}")), "names the comment to look for: {err}");
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn an_ambiguous_send_command_failure_resumes_the_command_ssm_did_create() {
    // GIVEN SSM answers SendCommand with a 500, yet had created the command: it is listed afterwards
    let listed = listed_only_after_the_first_look(KEY);
    let send = mock!(aws_sdk_ssm::Client::send_command)
        .sequence()
        .http_status(500, Some(SSM_INTERNAL_ERROR.to_owned()))
        .build();
    // WHEN the restart step runs
    let report = run(&[&listed, &send], &[], event("restart-request.json")).await.expect("report");
    // THEN that command is the restart, and nothing else was sent
    assert_eq!(send.num_calls(), 1);
    assert_eq!(listed.num_calls(), 2, "looked before sending and once after the failure");
    assert_eq!((report.stage, report.command_id.as_str()), (Stage::Restarting, COMMAND));
}

#[tokio::test]
async fn a_throttled_send_command_is_transient_because_ssm_created_nothing() {
    let earlier = no_earlier_command();
    let throttled = mock!(aws_sdk_ssm::Client::send_command)
        .then_error(|| SendCommandError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
    let err = run(&[&earlier, &throttled], &[], event("restart-request.json")).await.expect_err("throttled");
    assert_eq!(<&str>::from(&err), "TransientError", "{err}");
    assert_eq!(throttled.num_calls(), 1);
}

#[tokio::test]
async fn an_incident_key_too_long_for_the_command_comment_is_invalid_and_reaches_no_ssm() {
    // GIVEN an incident key of the right route, but longer than any the router makes, so that the
    // command's comment would pass SSM's 100 characters and no retry could find the command by it
    let mut input = event("restart-request.json");
    input["incidentKey"] = json!(format!("web-nginx__{}__0d5c8a41e6b2f7a93c10", "x".repeat(70)));
    let (earlier, send) = (no_earlier_command(), sent());
    // WHEN the restart step runs
    let err = run(&[&earlier, &send], &[], input).await.expect_err("too long");
    // THEN it is refused by name before anything reaches SSM
    assert_eq!(<&str>::from(&err), "InvalidEvent", "{err}");
    assert_eq!(earlier.num_calls() + send.num_calls(), 0);
}

fn unreachable_with(status: CommandInvocationStatus, details: &'static str) -> Rule {
    answer(
        SECOND,
        GetCommandInvocationOutput::builder().status(status).status_details(details).response_code(-1).build(),
    )
}

#[tokio::test]
async fn a_delivery_that_timed_out_as_ssm_words_it_is_an_unreachable_target() {
    // GIVEN SSM could not deliver the command to the second host: Status TimedOut, StatusDetails
    // "Delivery Timed Out" (spaced, as StatusDetails is documented)
    let command = listed_commands(Some(KEY), 2);
    let first = active(FIRST);
    let second = unreachable_with(CommandInvocationStatus::TimedOut, "Delivery Timed Out");
    // WHEN the state machine checks
    let err = run(&[&command, &first, &second], &[], check_at("restart-request.json", 10, restarting(COMMAND)))
        .await
        .expect_err("unreachable");
    // THEN the host is reported unreachable, not as a restart that ran too long
    assert_eq!(<&str>::from(&err), "TargetUnreachable", "{err}");
    assert!(err.to_string().contains(&format!("{SECOND} (TimedOut: Delivery Timed Out)")), "{err}");
}

#[tokio::test]
async fn an_invalid_platform_as_ssm_words_it_is_an_unreachable_target() {
    // GIVEN the document cannot run on the second host: Status Failed, StatusDetails "Invalid Platform"
    let command = listed_commands(Some(KEY), 2);
    let first = active(FIRST);
    let second = unreachable_with(CommandInvocationStatus::Failed, "Invalid Platform");
    // WHEN the state machine checks
    let err = run(&[&command, &first, &second], &[], check_at("restart-request.json", 10, restarting(COMMAND)))
        .await
        .expect_err("unreachable");
    // THEN the host is reported unreachable, not as a service the restart left down
    assert_eq!(<&str>::from(&err), "TargetUnreachable", "{err}");
    assert!(err.to_string().contains(&format!("{SECOND} (Failed: Invalid Platform)")), "{err}");
}

#[tokio::test]
async fn a_finished_remediation_is_not_checked_again() {
    let mut done = awaiting_alarm(10);
    done["stage"] = json!("recovered");
    let err = run(&[], &[], check_at("restart-request.json", 40, done)).await.expect_err("done");
    assert_eq!(<&str>::from(&err), "InvalidEvent");
}

#[test]
fn the_sample_check_request_is_a_valid_request() {
    let request: RemediationRequest = serde_json::from_value(event("check-request.json")).expect("request");
    assert_eq!((request.step, request.remediation.map(|r| r.stage)), (Step::Check, Some(Stage::Restarting)));
}

#[test]
fn error_names_are_the_variant_names() {
    assert_eq!(
        RestartError::names(),
        [
            "InvalidEvent",
            "ConfigError",
            "TargetUnreachable",
            "CommandTimedOut",
            "CommandOutcomeUnknown",
            "TransientError"
        ]
    );
}

async fn run_measured(ssm: &[&Rule], cloudwatch: &[&Rule], input: Value) -> Vec<Measurement> {
    let (_, measured) = handle_measured(&clients(ssm, cloudwatch), &config(), &routes(), input).await.expect("report");
    for measurement in &measured {
        let line = measurement.to_emf(shared::metrics::DEFAULT_NAMESPACE, Utc::now());
        shared::metrics::check_emf(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    measured
}

#[tokio::test]
async fn a_restart_sent_is_an_attempt_and_one_a_retry_resumed_is_not_counted_again() {
    let (earlier, send) = (no_earlier_command(), sent());
    let measured = run_measured(&[&earlier, &send], &[], event("restart-request.json")).await;
    assert_eq!(measured, [Measurement::count(Metric::RemediationsAttempted, "web-nginx")]);
    let (earlier, send) = (listed_commands(Some(KEY), 2), sent());
    assert_eq!(run_measured(&[&earlier, &send], &[], event("restart-request.json")).await, []);
}

#[tokio::test]
async fn a_verified_recovery_is_measured_with_the_seconds_from_the_alarm_to_the_check() {
    let command = listed_commands(Some(KEY), 2);
    let (first, second) = (active(FIRST), active(SECOND));
    let alarm = alarm_in(StateValue::Ok);
    let input = check_at("restart-request.json", 10, restarting(COMMAND));
    let measured = run_measured(&[&command, &first, &second], &[&alarm], input.clone()).await;
    // The alarm fired at 04:02:11.309; the check ran at 04:02:24.120.
    assert_eq!(
        measured,
        [
            Measurement::count(Metric::RemediationsVerified, "web-nginx"),
            Measurement { metric: Metric::TimeToRecovery, value: 12.811, route: "web-nginx".into(), reason: None }
        ]
    );
    // A check that is still waiting measures nothing; an input without the alarm's time only counts.
    let still = alarm_in(StateValue::Alarm);
    let (first, second) = (active(FIRST), active(SECOND));
    assert_eq!(run_measured(&[&command, &first, &second], &[&still], input.clone()).await, []);
    let mut untimed = input;
    untimed["alarm"].as_object_mut().expect("alarm").remove("timestamp");
    let (first, second, ok) = (active(FIRST), active(SECOND), alarm_in(StateValue::Ok));
    assert_eq!(
        run_measured(&[&command, &first, &second], &[&ok], untimed).await,
        [Measurement::count(Metric::RemediationsVerified, "web-nginx")]
    );
}

#[tokio::test]
async fn an_alarm_time_that_does_not_parse_never_stops_the_restart_it_only_goes_unmeasured() {
    // The time is read for a metric only: whatever it holds, what runs is decided as before.
    let (earlier, send) = (no_earlier_command(), sent());
    let mut input = event("restart-request.json");
    input["alarm"]["timestamp"] = json!("not a time");
    let measured = run_measured(&[&earlier, &send], &[], input).await;
    assert_eq!(send.num_calls(), 1);
    assert_eq!(measured, [Measurement::count(Metric::RemediationsAttempted, "web-nginx")]);
}

/// The sample rules with web-nginx acting on the instance each alarm names.
fn per_host_routes() -> Routes {
    let yaml = "rules:\n  - name: web-nginx\n    action: remediate\n    severity: high\n    remediation:\n      targets: { fromDimension: InstanceId }\n      service: nginx\n      timeoutSeconds: 90\n      settleSeconds: 5\n";
    Routes::from_yaml(yaml).expect("per-host rules")
}

/// A restart request of route web-nginx whose (untrusted) input names `claimed` as its instance.
fn per_host_request(claimed: &str) -> Value {
    let mut input = event("restart-request.json");
    input["route"].as_object_mut().expect("route").remove("remediation");
    input["alarm"]["dimensions"] = json!({ "InstanceId": claimed });
    input
}

/// CloudWatch's record of web-nginx-down: a metric alarm on `instance`, or a composite alarm.
fn described(instance: Option<&'static str>) -> Rule {
    mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|req| req.alarm_names() == ["web-nginx-down"])
        .then_output(move || match instance {
            Some(id) => DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("web-nginx-down")
                        .dimensions(
                            aws_sdk_cloudwatch::types::Dimension::builder().name("InstanceId").value(id).build(),
                        )
                        .state_value(StateValue::Alarm)
                        .build(),
                )
                .build(),
            None => DescribeAlarmsOutput::builder()
                .composite_alarms(CompositeAlarm::builder().alarm_name("web-nginx-down").build())
                .build(),
        })
}

#[tokio::test]
async fn a_from_dimension_target_restarts_the_instance_cloudwatch_says_the_alarm_is_about() {
    // GIVEN a per-host rule, and a task input that claims another instance than the alarm's own
    let (earlier, alarm) = (no_earlier_command(), described(Some(SECOND)));
    let send = sent_where(|req| req.instance_ids() == [SECOND] && req.targets().is_empty());
    // WHEN the restart step runs
    let report =
        handle(&clients(&[&earlier, &send], &[&alarm]), &config(), &per_host_routes(), per_host_request(FIRST))
            .await
            .expect("report");
    // THEN the command goes to the instance CloudWatch names, and to it alone
    assert_eq!((send.num_calls(), alarm.num_calls()), (1, 1));
    assert_eq!(report.stage, Stage::Restarting);
}

#[tokio::test]
async fn a_from_dimension_target_of_a_composite_or_deleted_alarm_sends_nothing() {
    for (alarm, expected) in [
        (described(None), "CompositeAlarmHasNoTarget"),
        (
            mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| DescribeAlarmsOutput::builder().build()),
            "does not exist",
        ),
    ] {
        let (earlier, send) = (no_earlier_command(), sent());
        let answer =
            handle(&clients(&[&earlier, &send], &[&alarm]), &config(), &per_host_routes(), per_host_request(FIRST))
                .await;
        assert!(
            matches!(&answer, Err(RestartError::InvalidEvent(why)) if why.contains(expected)),
            "{expected}: {answer:?}"
        );
        assert_eq!(send.num_calls(), 0, "{expected}");
    }
}
