//! Restart and verify: the known first response, run over SSM Run Command.
//!
//! One `AWS-RunShellScript` command restarts the route's service on its targets, waits for it to
//! settle and checks it with `systemctl is-active --quiet`; the exit code decides, the status text
//! is kept only as evidence. The service name comes from the routing rules and is checked against a
//! strict pattern again here; nothing from the alarm reaches the shell.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ssm::operation::get_command_invocation::{GetCommandInvocationError, GetCommandInvocationOutput};
use aws_sdk_ssm::operation::send_command::SendCommandError;
use aws_sdk_ssm::types::{CommandInvocationStatus, Target};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::aws::{describe, is_transient};
use shared::{IncidentKey, Remediation, Route, Targets};
use strum::{EnumIter, IntoStaticStr};
use tokio::time::{Instant, sleep};

/// The SSM document that runs the restart.
pub const DOCUMENT: &str = "AWS-RunShellScript";
/// How much of an instance's output is kept as evidence (SSM itself keeps at most 2,500 characters).
pub const EVIDENCE_LIMIT: usize = 1000;

/// Errors the function returns; the variant name is the error name the state machine matches.
#[derive(Debug, thiserror::Error, IntoStaticStr, EnumIter)]
pub enum RestartError {
    /// The task input has no valid remediation; nothing was sent.
    #[error("{0}")]
    InvalidEvent(String),
    /// The command cannot be sent as configured (document, permissions).
    #[error("{0}")]
    ConfigError(String),
    /// A target does not exist, is not managed by SSM, or its agent is not online.
    #[error("{0}")]
    TargetUnreachable(String),
    /// The command did not finish on every target before the deadline.
    #[error("{0}")]
    CommandTimedOut(String),
    /// SSM was unavailable or throttled us; a retry may succeed.
    #[error("{0}")]
    TransientError(String),
}

shared::lambda_error_names!(RestartError);

/// How the function polls SSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polling {
    /// Wait before the first `GetCommandInvocation`.
    pub first_poll: Duration,
    /// Longest wait between two polls (the wait doubles up to this).
    pub max_interval: Duration,
    /// How long `InvocationDoesNotExist` is taken to mean "not created yet".
    pub invocation_grace: Duration,
    /// Kept free before the Lambda's own deadline, to report instead of being killed.
    pub safety_margin: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            first_poll: Duration::from_secs(1),
            max_interval: Duration::from_secs(5),
            invocation_grace: Duration::from_secs(30),
            safety_margin: Duration::from_secs(5),
        }
    }
}

/// The task input: the route's remediation, and the key that names this incident.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartRequest {
    pub route: Route,
    pub incident_key: IncidentKey,
}

/// What the state machine keeps under `remediation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationReport {
    /// True only when every targeted instance reports the service active.
    pub verified: bool,
    pub command_id: String,
    pub service: String,
    pub instances: Vec<InstanceReport>,
    /// From sending the command to the last answer, in milliseconds.
    pub duration_ms: u64,
}

/// One instance's part of the remediation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReport {
    pub instance_id: String,
    /// SSM's invocation status (Success, Failed, TimedOut, ...).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<String>,
    /// The script's exit code: 0 when `systemctl is-active` found the service running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub active: bool,
    /// The script's output (restart and `systemctl status`), truncated; evidence only.
    pub evidence: String,
    /// SSM's execution time for this instance (ISO 8601 duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<String>,
    /// From sending the command to this instance's final answer, in milliseconds.
    pub answered_after_ms: u64,
}

/// The shell script SSM runs. `service` has been checked against the strict service-name pattern.
pub fn restart_script(service: &str, settle_seconds: u64) -> Vec<String> {
    vec![
        "set -u".to_owned(),
        format!("service='{service}'"),
        r#"echo "restarting $service""#.to_owned(),
        r#"systemctl restart "$service" 2>&1 || echo "systemctl restart failed with $?""#.to_owned(),
        format!("sleep {settle_seconds}"),
        r#"systemctl is-active --quiet "$service"; active=$?"#.to_owned(),
        r#"systemctl status "$service" --no-pager --lines=15 2>&1 | head -c 2000"#.to_owned(),
        "exit $active".to_owned(),
    ]
}

/// Restarts the route's service on its targets and waits, within the deadline, for every verdict.
///
/// `time_left` is what remains of the Lambda invocation, when known.
pub async fn handle(
    ssm: &aws_sdk_ssm::Client,
    polling: &Polling,
    input: Value,
    time_left: Option<Duration>,
) -> Result<RemediationReport, RestartError> {
    let request: RestartRequest =
        serde_json::from_value(input).map_err(|e| RestartError::InvalidEvent(format!("not a restart request: {e}")))?;
    let remediation = request
        .route
        .remediation
        .ok_or_else(|| RestartError::InvalidEvent(format!("route {} has no remediation", request.route.name)))?;
    remediation.validate().map_err(|e| RestartError::InvalidEvent(format!("route {}: {e}", request.route.name)))?;

    let started = Instant::now();
    let mut budget = Duration::from_secs(remediation.timeout_seconds);
    if let Some(left) = time_left {
        budget = budget.min(left.saturating_sub(polling.safety_margin));
    }
    let deadline = started + budget;

    let (command_id, mut instance_ids) = send(ssm, &remediation, &request.incident_key).await?;
    tracing::info!(command_id, service = %remediation.service, "restart command sent");
    if instance_ids.is_empty() {
        instance_ids = discover_targets(ssm, polling, &command_id, &remediation, started, deadline).await?;
    }

    let reports = poll(ssm, polling, &command_id, &instance_ids, started, deadline).await?;
    let unreachable: Vec<&InstanceReport> = reports.values().filter(|r| is_unreachable(r)).collect();
    if !unreachable.is_empty() {
        return Err(RestartError::TargetUnreachable(format!(
            "command {command_id} could not reach {}",
            summarize(&unreachable)
        )));
    }
    let timed_out: Vec<&InstanceReport> = reports.values().filter(|r| r.status == "TimedOut").collect();
    if !timed_out.is_empty() {
        return Err(RestartError::CommandTimedOut(format!(
            "command {command_id} timed out on {}",
            summarize(&timed_out)
        )));
    }
    let instances: Vec<InstanceReport> = reports.into_values().collect();
    let verified = !instances.is_empty() && instances.iter().all(|r| r.active);
    tracing::info!(command_id, verified, "restart verified");
    Ok(RemediationReport {
        verified,
        command_id,
        service: remediation.service,
        instances,
        duration_ms: millis(started.elapsed()),
    })
}

async fn send(
    ssm: &aws_sdk_ssm::Client,
    remediation: &Remediation,
    key: &IncidentKey,
) -> Result<(String, Vec<String>), RestartError> {
    let comment: String = format!("first-response {key}").chars().take(100).collect();
    let mut command = ssm
        .send_command()
        .document_name(DOCUMENT)
        .comment(comment)
        .timeout_seconds(i32::try_from(remediation.timeout_seconds.max(30)).unwrap_or(i32::MAX))
        .parameters("commands", restart_script(&remediation.service, remediation.settle_seconds))
        .parameters("executionTimeout", vec![remediation.timeout_seconds.to_string()])
        .max_concurrency(&remediation.max_concurrency)
        .max_errors(&remediation.max_errors);
    command = match &remediation.targets {
        Targets::InstanceIds(ids) => command.set_instance_ids(Some(ids.clone())),
        Targets::Tag(tag) => {
            command.targets(Target::builder().key(format!("tag:{}", tag.key)).values(&tag.value).build())
        }
    };
    let sent = command.send().await.map_err(|err| {
        let message = format!("SendCommand: {}", describe(&err));
        match err.as_service_error() {
            Some(SendCommandError::InvalidInstanceId(_)) => RestartError::TargetUnreachable(message),
            _ if is_transient(&err) => RestartError::TransientError(message),
            _ => RestartError::ConfigError(message),
        }
    })?;
    let command =
        sent.command().ok_or_else(|| RestartError::TransientError("SendCommand returned no command".into()))?;
    let id = command.command_id().unwrap_or_default().to_owned();
    if id.is_empty() {
        return Err(RestartError::TransientError("SendCommand returned no command id".into()));
    }
    let ids = match &remediation.targets {
        Targets::InstanceIds(ids) => ids.clone(),
        Targets::Tag(_) => command.instance_ids().to_vec(),
    };
    Ok((id, ids))
}

/// For tag targets: the instances SSM chose, once it has created their invocations.
async fn discover_targets(
    ssm: &aws_sdk_ssm::Client,
    polling: &Polling,
    command_id: &str,
    remediation: &Remediation,
    started: Instant,
    deadline: Instant,
) -> Result<Vec<String>, RestartError> {
    let give_up = deadline.min(started + polling.invocation_grace);
    let mut wait = polling.first_poll;
    loop {
        sleep(wait).await;
        let listed = ssm.list_command_invocations().command_id(command_id).send().await;
        match listed {
            Ok(out) => {
                let ids: Vec<String> =
                    out.command_invocations().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect();
                if !ids.is_empty() {
                    return Ok(ids);
                }
            }
            Err(err) if is_transient(&err) => tracing::warn!(error = %describe(&err), "ListCommandInvocations"),
            Err(err) => return Err(RestartError::ConfigError(format!("ListCommandInvocations: {}", describe(&err)))),
        }
        if Instant::now() >= give_up {
            let wanted = match &remediation.targets {
                Targets::Tag(tag) => format!("tag {}={}", tag.key, tag.value),
                Targets::InstanceIds(ids) => ids.join(", "),
            };
            return Err(RestartError::TargetUnreachable(format!(
                "command {command_id}: no managed instance matched {wanted}"
            )));
        }
        wait = (wait * 2).min(polling.max_interval);
    }
}

/// Polls every instance until each has a final status or the deadline passes.
async fn poll(
    ssm: &aws_sdk_ssm::Client,
    polling: &Polling,
    command_id: &str,
    instance_ids: &[String],
    started: Instant,
    deadline: Instant,
) -> Result<BTreeMap<String, InstanceReport>, RestartError> {
    let mut done = BTreeMap::new();
    let mut last_problem: BTreeMap<&str, String> = BTreeMap::new();
    let mut wait = polling.first_poll;
    loop {
        sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
        let pending: Vec<&String> = instance_ids.iter().filter(|id| !done.contains_key(id.as_str())).collect();
        for instance_id in pending {
            let answer = ssm.get_command_invocation().command_id(command_id).instance_id(instance_id).send().await;
            match answer {
                Ok(out) => {
                    if let Some(report) = final_report(instance_id, &out, started) {
                        done.insert(instance_id.clone(), report);
                    } else {
                        last_problem.remove(instance_id.as_str());
                    }
                }
                Err(err)
                    if matches!(err.as_service_error(), Some(GetCommandInvocationError::InvocationDoesNotExist(_))) =>
                {
                    if started.elapsed() >= polling.invocation_grace {
                        done.insert(instance_id.clone(), never_created(instance_id, started));
                    }
                }
                Err(err) if is_transient(&err) => {
                    last_problem.insert(instance_id, describe(&err));
                }
                Err(err) => {
                    let message = format!("GetCommandInvocation {instance_id}: {}", describe(&err));
                    return Err(match err.as_service_error() {
                        Some(GetCommandInvocationError::InvalidInstanceId(_)) => {
                            RestartError::TargetUnreachable(message)
                        }
                        _ => RestartError::ConfigError(message),
                    });
                }
            }
        }
        if done.len() == instance_ids.len() {
            return Ok(done);
        }
        if Instant::now() >= deadline {
            let pending: Vec<&str> =
                instance_ids.iter().map(String::as_str).filter(|id| !done.contains_key(*id)).collect();
            if pending.iter().all(|id| last_problem.contains_key(id)) {
                return Err(RestartError::TransientError(format!(
                    "command {command_id}: SSM kept failing while polling {}",
                    pending
                        .iter()
                        .map(|id| format!("{id} ({})", last_problem.get(id).map(String::as_str).unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            return Err(RestartError::CommandTimedOut(format!(
                "command {command_id} had no final status after {}s on {}",
                started.elapsed().as_secs(),
                pending.join(", ")
            )));
        }
        wait = (wait * 2).min(polling.max_interval);
    }
}

/// The report for an invocation that has finished, or `None` while it is still running.
fn final_report(instance_id: &str, out: &GetCommandInvocationOutput, started: Instant) -> Option<InstanceReport> {
    let status = out.status()?;
    if matches!(
        status,
        CommandInvocationStatus::Pending
            | CommandInvocationStatus::InProgress
            | CommandInvocationStatus::Delayed
            | CommandInvocationStatus::Cancelling
    ) {
        return None;
    }
    let exit_code = Some(out.response_code()).filter(|code| *code >= 0);
    let evidence = [out.standard_output_content(), out.standard_error_content()]
        .into_iter()
        .flatten()
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Some(InstanceReport {
        instance_id: instance_id.to_owned(),
        status: status.as_str().to_owned(),
        status_details: out.status_details().map(str::to_owned),
        exit_code,
        active: *status == CommandInvocationStatus::Success && exit_code == Some(0),
        evidence: truncate(&evidence, EVIDENCE_LIMIT),
        elapsed: out.execution_elapsed_time().map(str::to_owned),
        answered_after_ms: millis(started.elapsed()),
    })
}

fn never_created(instance_id: &str, started: Instant) -> InstanceReport {
    InstanceReport {
        instance_id: instance_id.to_owned(),
        status: "Undeliverable".to_owned(),
        status_details: Some("the invocation never appeared (InvocationDoesNotExist)".to_owned()),
        exit_code: None,
        active: false,
        evidence: String::new(),
        elapsed: None,
        answered_after_ms: millis(started.elapsed()),
    }
}

/// SSM's words for "the command never ran there".
fn is_unreachable(report: &InstanceReport) -> bool {
    report.status == "Undeliverable"
        || matches!(
            report.status_details.as_deref(),
            Some("Undeliverable" | "Terminated" | "DeliveryTimedOut" | "InvalidPlatform")
        )
}

fn summarize(reports: &[&InstanceReport]) -> String {
    reports
        .iter()
        .map(|r| {
            format!(
                "{} ({}{})",
                r.instance_id,
                r.status,
                r.status_details.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// At most `max` bytes, cut on a character boundary and marked with `…` where cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max { text.to_owned() } else { format!("{}…", &text[..text.floor_char_boundary(max)]) }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
