use std::sync::{Arc, Mutex};

use super::*;
use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
use aws_sdk_ssm::operation::send_command::{SendCommandInput, SendCommandOutput};
use aws_sdk_ssm::types::error::{InvalidInstanceId, InvocationDoesNotExist};
use aws_sdk_ssm::types::{Command, CommandInvocation};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;

const FIRST: &str = "i-0a1b2c3d4e5f60718";
const SECOND: &str = "i-0f1e2d3c4b5a69788";

fn event(name: &str) -> Value {
    let path = format!("{}/../../events/restart-and-verify/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json")
}

fn client(rules: &[&Rule]) -> aws_sdk_ssm::Client {
    mock_client!(aws_sdk_ssm, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

fn sent_where(check: impl Fn(&SendCommandInput) -> bool + Send + Sync + 'static) -> Rule {
    mock!(aws_sdk_ssm::Client::send_command)
        .match_requests(check)
        .then_output(|| SendCommandOutput::builder().command(Command::builder().command_id("cmd-1").build()).build())
}

fn sent() -> Rule {
    sent_where(|_| true)
}

fn invocation(status: CommandInvocationStatus, code: i32, output: &str) -> GetCommandInvocationOutput {
    GetCommandInvocationOutput::builder()
        .command_id("cmd-1")
        .status(status)
        .response_code(code)
        .standard_output_content(output)
        .execution_elapsed_time("PT6.2S")
        .build()
}

/// Answers for one instance, in order; the last answer repeats.
fn answers(instance: &'static str, mut outputs: Vec<GetCommandInvocationOutput>) -> Rule {
    let last = outputs.pop().expect("at least one answer");
    let mut sequence = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .match_requests(move |req| req.instance_id() == Some(instance) && req.command_id() == Some("cmd-1"))
        .sequence();
    for out in outputs {
        sequence = sequence.output(move || out.clone());
    }
    sequence.output(move || last.clone()).repeatedly().build()
}

fn active(instance: &'static str) -> Rule {
    answers(
        instance,
        vec![invocation(CommandInvocationStatus::Success, 0, "restarting nginx\nActive: active (running)")],
    )
}

#[tokio::test(start_paused = true)]
async fn restarts_on_every_target_and_verifies_by_exit_code() {
    // GIVEN both web hosts restart nginx and report it active
    let send = sent_where(|req| {
        let commands = req.parameters().and_then(|p| p.get("commands")).cloned().unwrap_or_default();
        req.document_name() == Some(DOCUMENT)
            && req.instance_ids() == [FIRST, SECOND]
            && commands.contains(&"service='nginx'".to_owned())
            && commands.iter().any(|c| c.contains("systemctl is-active --quiet"))
            && req.comment().is_some_and(|c| c.starts_with("first-response web-nginx__"))
    });
    let first = answers(
        FIRST,
        vec![
            invocation(CommandInvocationStatus::InProgress, -1, ""),
            invocation(CommandInvocationStatus::Success, 0, "restarting nginx\nActive: active (running)"),
        ],
    );
    let second = active(SECOND);
    // WHEN the function runs on the canonical request
    let report = handle(&client(&[&send, &first, &second]), &Polling::default(), event("restart-request.json"), None)
        .await
        .expect("report");
    // THEN one command went out and both instances verified active
    assert_eq!(send.num_calls(), 1);
    assert!(report.verified);
    assert_eq!(report.command_id, "cmd-1");
    assert_eq!(report.instances.len(), 2);
    assert!(report.instances.iter().all(|i| i.exit_code == Some(0) && i.evidence.contains("active (running)")));
    assert_eq!(first.num_calls(), 2, "the first instance needed a second poll");
}

#[tokio::test(start_paused = true)]
async fn the_first_poll_comes_about_a_second_after_sending() {
    let polled_at = Arc::new(Mutex::new(Vec::new()));
    let seen = polled_at.clone();
    let start = Instant::now();
    let poll = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(move |_| {
        seen.lock().expect("lock").push(start.elapsed());
        invocation(CommandInvocationStatus::Success, 0, "active")
    });
    let send = sent();
    handle(&client(&[&send, &poll]), &Polling::default(), event("restart-request.json"), None).await.expect("report");
    let first = polled_at.lock().expect("lock")[0];
    assert!(first >= Duration::from_secs(1) && first < Duration::from_secs(2), "first poll after {first:?}");
}

#[tokio::test(start_paused = true)]
async fn invocation_does_not_exist_right_after_sending_is_retried() {
    let missing_then_active = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .sequence()
        .error(|| GetCommandInvocationError::InvocationDoesNotExist(InvocationDoesNotExist::builder().build()))
        .times(2)
        .output(|| invocation(CommandInvocationStatus::Success, 0, "active"))
        .repeatedly()
        .build();
    let send = sent();
    let report =
        handle(&client(&[&send, &missing_then_active]), &Polling::default(), event("restart-request.json"), None)
            .await
            .expect("report");
    assert!(report.verified);
}

#[tokio::test(start_paused = true)]
async fn an_invocation_that_never_appears_means_the_target_is_unreachable() {
    let never = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .then_error(|| GetCommandInvocationError::InvocationDoesNotExist(InvocationDoesNotExist::builder().build()));
    let send = sent();
    let err = handle(&client(&[&send, &never]), &Polling::default(), event("restart-request.json"), None)
        .await
        .expect_err("unreachable");
    assert_eq!(<&str>::from(&err), "TargetUnreachable");
    assert!(err.to_string().contains(FIRST), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_service_that_stays_down_is_not_verified_and_keeps_its_evidence() {
    let first = active(FIRST);
    let second = answers(
        SECOND,
        vec![invocation(
            CommandInvocationStatus::Failed,
            3,
            &format!("restarting nginx\nActive: failed (Result: exit-code)\n{}", "x".repeat(3000)),
        )],
    );
    let send = sent();
    let report = handle(&client(&[&send, &first, &second]), &Polling::default(), event("restart-request.json"), None)
        .await
        .expect("report");
    assert!(!report.verified);
    let failed = report.instances.iter().find(|i| i.instance_id == SECOND).expect("second instance");
    assert_eq!((failed.exit_code, failed.active), (Some(3), false));
    assert!(failed.evidence.starts_with("restarting nginx\nActive: failed"));
    assert!(failed.evidence.len() <= EVIDENCE_LIMIT + '…'.len_utf8());
}

#[tokio::test(start_paused = true)]
async fn an_offline_agent_is_a_target_unreachable_error() {
    let offline = mock!(aws_sdk_ssm::Client::send_command).then_error(|| {
        SendCommandError::InvalidInstanceId(InvalidInstanceId::builder().message("agent not online").build())
    });
    let poll = active(FIRST);
    let err = handle(&client(&[&offline, &poll]), &Polling::default(), event("restart-request.json"), None)
        .await
        .expect_err("offline");
    assert_eq!(<&str>::from(&err), "TargetUnreachable");
    assert_eq!(poll.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn undeliverable_invocations_are_unreachable_targets() {
    let first = active(FIRST);
    let second = answers(
        SECOND,
        vec![
            GetCommandInvocationOutput::builder()
                .status(CommandInvocationStatus::Failed)
                .status_details("Undeliverable")
                .response_code(-1)
                .build(),
        ],
    );
    let send = sent();
    let err = handle(&client(&[&send, &first, &second]), &Polling::default(), event("restart-request.json"), None)
        .await
        .expect_err("undeliverable");
    assert_eq!(<&str>::from(&err), "TargetUnreachable");
    assert!(err.to_string().contains(&format!("{SECOND} (Failed: Undeliverable)")), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_command_still_running_at_the_deadline_times_out() {
    let running = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::InProgress, -1, ""));
    let send = sent();
    let start = Instant::now();
    let err = handle(&client(&[&send, &running]), &Polling::default(), event("restart-request.json"), None)
        .await
        .expect_err("timeout");
    assert_eq!(<&str>::from(&err), "CommandTimedOut");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(90) && waited < Duration::from_secs(100), "gave up after {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn the_lambda_deadline_shortens_the_wait() {
    let running = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::InProgress, -1, ""));
    let send = sent();
    let start = Instant::now();
    let err = handle(
        &client(&[&send, &running]),
        &Polling::default(),
        event("restart-request.json"),
        Some(Duration::from_secs(30)),
    )
    .await
    .expect_err("timeout");
    assert_eq!(<&str>::from(&err), "CommandTimedOut");
    assert!(start.elapsed() < Duration::from_secs(30), "must report before the Lambda is killed");
}

#[tokio::test(start_paused = true)]
async fn throttling_on_send_is_transient() {
    let throttled = mock!(aws_sdk_ssm::Client::send_command)
        .then_error(|| SendCommandError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
    let err = handle(&client(&[&throttled]), &Polling::default(), event("restart-request.json"), None)
        .await
        .expect_err("throttled");
    assert_eq!(<&str>::from(&err), "TransientError");
}

#[tokio::test(start_paused = true)]
async fn throttling_while_polling_is_ridden_out() {
    let throttled_then_active = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .sequence()
        .error(|| GetCommandInvocationError::generic(ErrorMetadata::builder().code("ThrottlingException").build()))
        .times(3)
        .output(|| invocation(CommandInvocationStatus::Success, 0, "active"))
        .repeatedly()
        .build();
    let send = sent();
    let report =
        handle(&client(&[&send, &throttled_then_active]), &Polling::default(), event("restart-request.json"), None)
            .await
            .expect("report");
    assert!(report.verified);
}

#[tokio::test(start_paused = true)]
async fn tag_targets_are_discovered_from_the_command_invocations() {
    let send = sent_where(|req| {
        req.instance_ids().is_empty()
            && req.targets().first().is_some_and(|t| t.key() == Some("tag:Role") && t.values() == ["web"])
    });
    let listed = mock!(aws_sdk_ssm::Client::list_command_invocations)
        .sequence()
        .output(|| ListCommandInvocationsOutput::builder().build())
        .output(|| {
            ListCommandInvocationsOutput::builder()
                .command_invocations(CommandInvocation::builder().instance_id(FIRST).build())
                .build()
        })
        .build();
    let poll = active(FIRST);
    let report =
        handle(&client(&[&send, &listed, &poll]), &Polling::default(), event("restart-request-tag-targets.json"), None)
            .await
            .expect("report");
    assert!(report.verified);
    assert_eq!(report.instances.iter().map(|i| i.instance_id.as_str()).collect::<Vec<_>>(), [FIRST]);
}

#[tokio::test(start_paused = true)]
async fn bad_requests_are_invalid_and_send_nothing() {
    for file in ["invalid-hostile-service.json", "invalid-no-remediation.json"] {
        let send = sent();
        let err = handle(&client(&[&send]), &Polling::default(), event(file), None).await.expect_err(file);
        assert_eq!(<&str>::from(&err), "InvalidEvent", "{file}: {err}");
        assert_eq!(send.num_calls(), 0, "{file} reached SSM");
    }
}

#[test]
fn the_alarm_never_reaches_the_script() {
    let script = restart_script("nginx", 5).join("\n");
    assert!(script.contains("service='nginx'"));
    assert!(!script.contains("web-nginx-down"));
}

#[test]
fn error_names_are_the_variant_names() {
    assert_eq!(
        RestartError::names(),
        ["InvalidEvent", "ConfigError", "TargetUnreachable", "CommandTimedOut", "TransientError"]
    );
}
