//! Restart and verify: the known first response, run over SSM Run Command, and its verification
//! by the signal that fired.
//!
//! The function never waits: the state machine does, in a `Wait`/`Choice` loop that costs no Lambda
//! time and shows every check in the execution history. It is called in two steps:
//!
//! - `restart` sends the product's own SSM document (restart the unit, settle, `is-active`, status
//!   as evidence) to the route's targets, exactly once per incident key: a retried step finds the
//!   command an earlier attempt sent, by its comment, and resumes it instead of sending another.
//! - `check` reads the command's invocations (every page, until SSM has answered for as many
//!   instances as it targeted). Once every instance reports the unit active, it watches the alarm
//!   itself (`DescribeAlarms`): OK means recovered; still in ALARM after the route's recovery time
//!   means the restart did not fix what fired.
//!
//! What runs, and where, comes from the deployed rules, looked up by the route's name; the task
//! input only names the route and carries the progress so far. Every deadline is measured on the
//! state machine's clock (`$$.State.EnteredTime`), so a replay on a virtual clock behaves as AWS does.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_ssm::config::http::HttpResponse;
use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::get_command_invocation::{GetCommandInvocationError, GetCommandInvocationOutput};
use aws_sdk_ssm::operation::send_command::SendCommandError;
use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey, CommandInvocation, CommandInvocationStatus, Target};
use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::aws::{describe, is_transient};
use shared::metrics::{Measurement, Metric};
use shared::routing::default_recovery_seconds;
use shared::text::truncate;
use shared::{IncidentKey, Remediation, Routes, Targets};
use strum::{EnumIter, IntoStaticStr};

/// How much of an instance's output is kept as evidence (SSM itself keeps at most 2,500 characters).
pub const EVIDENCE_LIMIT: usize = 1000;
/// The name local runs give the product's SSM document (the stack names it `<stack>-restart-service`).
pub const LOCAL_DOCUMENT: &str = "first-response-restart-service";
/// The document's parameters, as `infra/template.yaml` declares them.
pub const UNIT_PARAMETER: &str = "unit";
pub const SETTLE_PARAMETER: &str = "settleSeconds";
pub const EXECUTION_TIMEOUT_PARAMETER: &str = "executionTimeout";
/// How long `InvocationDoesNotExist`, or fewer invocations than targets, means "not created yet".
pub const INVOCATION_GRACE_SECONDS: i64 = 60;
/// Time SSM is given past the route's `timeoutSeconds` to report a final status.
pub const REPORTING_GRACE_SECONDS: i64 = 30;
/// Wait between two checks of a running command.
pub const COMMAND_CHECK_SECONDS: u64 = 10;
/// Wait between two looks at the alarm.
pub const ALARM_CHECK_SECONDS: u64 = 30;
/// How far back a retried restart looks for the command an earlier attempt sent.
pub const RESUME_LOOKBACK_SECONDS: i64 = shared::EXECUTION_TIMEOUT_SECONDS as i64;
/// Pages of `ListCommands` / `ListCommandInvocations` read at most (50 items each).
pub const MAX_PAGES: usize = 40;
/// SSM's limit on a command's comment, which carries the incident key.
pub const MAX_COMMENT_LEN: usize = 100;

/// Errors the function returns; the variant name is the error name the state machine matches.
#[derive(Debug, thiserror::Error, IntoStaticStr, EnumIter)]
pub enum RestartError {
    /// The task input does not name a remediation of the deployed rules, or contradicts them;
    /// nothing was sent.
    #[error("{0}")]
    InvalidEvent(String),
    /// The command cannot be sent or read as configured (document, permissions).
    #[error("{0}")]
    ConfigError(String),
    /// A target does not exist, is not managed by SSM, or its agent is not online.
    #[error("{0}")]
    TargetUnreachable(String),
    /// The command did not finish on every target before the route's deadline.
    #[error("{0}")]
    CommandTimedOut(String),
    /// SendCommand failed in a way that leaves open whether SSM created the command (a 5xx, a
    /// timeout, an answer lost on the way), and no command of this incident is listed since. Final:
    /// a retry could restart the service a second time, so people look instead.
    #[error("{0}")]
    CommandOutcomeUnknown(String),
    /// SSM or CloudWatch was unavailable or throttled us; a retry may succeed, and never sends the
    /// restart again.
    #[error("{0}")]
    TransientError(String),
}

shared::lambda_error_names!(RestartError);

/// Settings read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartConfig {
    /// The product's SSM Command document (`RESTART_DOCUMENT`).
    pub document: String,
}

impl RestartConfig {
    pub fn from_env() -> Result<Self, RestartError> {
        Ok(Self { document: shared::required_env("RESTART_DOCUMENT").map_err(RestartError::ConfigError)? })
    }
}

/// The AWS clients the function uses, built once at cold start.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ssm: aws_sdk_ssm::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { ssm: aws_sdk_ssm::Client::new(config), cloudwatch: aws_sdk_cloudwatch::Client::new(config) }
    }
}

/// Which step the state machine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    Restart,
    Check,
}

/// The task input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationRequest {
    pub step: Step,
    pub route: RouteRef,
    pub incident_key: IncidentKey,
    pub alarm: AlarmRef,
    /// When the state machine entered this state (`$$.State.EnteredTime`).
    pub now: DateTime<Utc>,
    /// `check`: what the previous step reported.
    #[serde(default)]
    pub remediation: Option<RemediationReport>,
}

/// The route as the task input names it. Only the name is used; a remediation, when present, must
/// be the deployed one.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteRef {
    pub name: String,
    #[serde(default)]
    pub remediation: Option<Remediation>,
}

/// The alarm whose recovery verifies the restart.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmRef {
    pub name: String,
    /// When the alarm entered ALARM, to measure the time to recovery. Read for the metric only, so
    /// a missing or unreadable time never refuses the request: it leaves the time unmeasured.
    #[serde(default, deserialize_with = "lenient_time")]
    pub timestamp: Option<DateTime<Utc>>,
}

fn lenient_time<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(value.as_str().and_then(|text| text.parse().ok()))
}

/// Where a remediation stands; the state machine's `Verified?` choice reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// The command is running on the targets: check again after `waitSeconds`.
    Restarting,
    /// Every target reports the unit active; waiting for the alarm to return to OK.
    AwaitingAlarm,
    /// The unit is active everywhere and the alarm is OK: verified.
    Recovered,
    /// The unit is not active on some target after the restart.
    RestartFailed,
    /// The unit is active everywhere, but the alarm still fires after the recovery time.
    AlarmStillFiring,
    /// The alarm no longer exists, so recovery cannot be verified.
    AlarmMissing,
}

impl Stage {
    /// Whether the state machine should wait and check again.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Restarting | Self::AwaitingAlarm)
    }
}

/// What the state machine keeps under `remediation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationReport {
    pub stage: Stage,
    /// True only when every targeted instance reports the unit active and the alarm is OK.
    pub verified: bool,
    /// For people: where the remediation stands, in one sentence.
    pub summary: String,
    pub command_id: String,
    pub service: String,
    /// When the restart step ran (the state machine's clock).
    pub sent_at: DateTime<Utc>,
    /// True when a retried restart step found the command an earlier attempt had sent.
    #[serde(default)]
    pub resumed: bool,
    /// How many instances SSM targeted, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_count: Option<u32>,
    /// Per instance, once SSM has a final answer for every one.
    #[serde(default)]
    pub instances: Vec<InstanceReport>,
    /// When every target was first seen with the unit active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_at: Option<DateTime<Utc>>,
    /// When the alarm must be OK by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_deadline: Option<DateTime<Utc>>,
    /// The alarm's state at the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_state: Option<String>,
    /// How many check steps have run.
    #[serde(default)]
    pub checks: u32,
    /// How long the state machine waits before the next check.
    pub wait_seconds: u64,
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
    /// The script's exit code: 0 when `systemctl is-active` found the unit running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub active: bool,
    /// The script's output (restart and `systemctl status`), truncated; evidence only.
    pub evidence: String,
    /// SSM's execution time for this instance (ISO 8601 duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<String>,
}

/// Runs one step of the remediation of the route the request names, as the deployed `routes`
/// define it.
pub async fn handle(
    clients: &Clients,
    config: &RestartConfig,
    routes: &Routes,
    input: Value,
) -> Result<RemediationReport, RestartError> {
    Ok(handle_measured(clients, config, routes, input).await?.0)
}

/// [`handle`], and what the step's report means as metrics, for the Lambda binary to emit.
pub async fn handle_measured(
    clients: &Clients,
    config: &RestartConfig,
    routes: &Routes,
    input: Value,
) -> Result<(RemediationReport, Vec<Measurement>), RestartError> {
    let request: RemediationRequest = serde_json::from_value(input)
        .map_err(|e| RestartError::InvalidEvent(format!("not a remediation request: {e}")))?;
    let report = step(clients, config, routes, &request).await?;
    let measured = measurements(&request, &report);
    Ok((report, measured))
}

/// A restart sent (not one a retry resumed) is a remediation attempted; a check that finds the
/// service active and the alarm OK is one verified, with the time from the alarm to that check.
pub fn measurements(request: &RemediationRequest, report: &RemediationReport) -> Vec<Measurement> {
    let route = request.route.name.as_str();
    match (request.step, report.stage) {
        (Step::Restart, _) if !report.resumed => vec![Measurement::count(Metric::RemediationsAttempted, route)],
        (Step::Check, Stage::Recovered) => std::iter::once(Measurement::count(Metric::RemediationsVerified, route))
            .chain(request.alarm.timestamp.and_then(|at| Measurement::time_to_recovery(route, at, request.now)))
            .collect(),
        _ => Vec::new(),
    }
}

async fn step(
    clients: &Clients,
    config: &RestartConfig,
    routes: &Routes,
    request: &RemediationRequest,
) -> Result<RemediationReport, RestartError> {
    let mut remediation = deployed_remediation(routes, request)?;
    remediation.targets = alarms_targets(&clients.cloudwatch, &remediation, request).await?;
    match request.step {
        Step::Restart => restart(&clients.ssm, config, &remediation, request).await,
        Step::Check => {
            let previous = request.remediation.clone().ok_or_else(|| {
                RestartError::InvalidEvent("a check needs the report of the restart step (remediation)".into())
            })?;
            if previous.service != remediation.service {
                return Err(RestartError::InvalidEvent(format!(
                    "the report is about {:?}, but route {} restarts {:?}",
                    previous.service, request.route.name, remediation.service
                )));
            }
            check(clients, &remediation, request, previous).await
        }
    }
}

/// The route's remediation from the deployed rules; the input may only repeat it.
fn deployed_remediation(routes: &Routes, request: &RemediationRequest) -> Result<Remediation, RestartError> {
    let name = &request.route.name;
    let route = routes
        .by_name(name)
        .ok_or_else(|| RestartError::InvalidEvent(format!("route {name:?} is not in the deployed rules")))?;
    let remediation = route.remediation.ok_or_else(|| {
        RestartError::InvalidEvent(format!("route {name:?} has no remediation in the deployed rules"))
    })?;
    if let Some(given) = &request.route.remediation
        && *given != remediation
    {
        return Err(RestartError::InvalidEvent(format!(
            "the input's remediation for route {name:?} differs from the deployed rules; only the rules decide what runs"
        )));
    }
    if IncidentKey::route_of(request.incident_key.as_str()) != Some(name.as_str()) {
        return Err(RestartError::InvalidEvent(format!(
            "incident key {} does not belong to route {name:?}",
            request.incident_key
        )));
    }
    remediation.validate().map_err(|e| RestartError::InvalidEvent(format!("route {name}: {e}")))?;
    // A longer comment would be refused by SSM, and a retry could not find the command by it.
    if command_comment(&request.incident_key).len() > MAX_COMMENT_LEN {
        return Err(RestartError::InvalidEvent(format!(
            "incident key {} is too long for an SSM command comment ({MAX_COMMENT_LEN} characters); the router's keys have at most {}",
            request.incident_key,
            shared::incident::MAX_EXECUTION_NAME_LEN
        )));
    }
    Ok(remediation)
}

/// The instances the remediation acts on for this alarm: its fixed targets, or, for
/// `fromDimension`, the one instance CloudWatch's own record of the alarm names in that dimension
/// (of its metric, or of the metrics its expression reads). The task input's copy of the alarm is
/// never trusted for it: only CloudWatch and the deployed rules decide what is acted on.
async fn alarms_targets(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    remediation: &Remediation,
    request: &RemediationRequest,
) -> Result<Targets, RestartError> {
    if !matches!(remediation.targets, Targets::FromDimension(_)) {
        return Ok(remediation.targets.clone());
    }
    let name = &request.alarm.name;
    let described = cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| sdk_failure(&format!("DescribeAlarms {name}"), &e, is_transient(&e)))?;
    let composite = described.metric_alarms().is_empty() && !described.composite_alarms().is_empty();
    if described.metric_alarms().is_empty() && !composite {
        return Err(RestartError::InvalidEvent(format!(
            "alarm {name} does not exist, so targets.fromDimension names no instance; nothing was sent"
        )));
    }
    let dimensions: Vec<(&str, &str)> = described
        .metric_alarms()
        .iter()
        .flat_map(|alarm| {
            let own = alarm.dimensions().iter();
            let read = alarm
                .metrics()
                .iter()
                .filter_map(|query| query.metric_stat()?.metric())
                .flat_map(|metric| metric.dimensions().iter());
            own.chain(read)
        })
        .filter_map(|d| Some((d.name()?, d.value()?)))
        .collect();
    remediation
        .targets
        .for_alarm(name, composite, dimensions)
        .map_err(|e| RestartError::InvalidEvent(format!("{}: {e}; nothing was sent", e.name())))
}

/// The comment that marks a command as this incident's restart (SSM allows [`MAX_COMMENT_LEN`]
/// characters; an incident key the router made has at most 80).
pub fn command_comment(key: &IncidentKey) -> String {
    format!("first-response {key}")
}

async fn restart(
    ssm: &aws_sdk_ssm::Client,
    config: &RestartConfig,
    remediation: &Remediation,
    request: &RemediationRequest,
) -> Result<RemediationReport, RestartError> {
    let comment = command_comment(&request.incident_key);
    let (command_id, resumed) = match earlier_command(ssm, config, &comment, request.now).await? {
        Some(id) => {
            tracing::warn!(command_id = id, key = %request.incident_key, "resuming the command an earlier attempt sent");
            (id, true)
        }
        None => match send(ssm, config, remediation, &comment).await {
            Ok(id) => (id, false),
            Err(SendFailure::Refused(err)) => return Err(err),
            Err(SendFailure::Ambiguous(why)) => (created_anyway(ssm, config, &comment, request.now, why).await?, false),
        },
    };
    tracing::info!(command_id, service = %remediation.service, resumed, "restart command sent");
    let summary = format!(
        "{} {} on {}; waiting for every target to report it",
        if resumed { "resumed the restart of" } else { "restarting" },
        remediation.service,
        describe_targets(&remediation.targets)
    );
    Ok(RemediationReport {
        stage: Stage::Restarting,
        verified: false,
        summary,
        command_id,
        service: remediation.service.clone(),
        sent_at: request.now,
        resumed,
        target_count: None,
        instances: Vec::new(),
        active_at: None,
        recovery_deadline: None,
        alarm_state: None,
        checks: 0,
        wait_seconds: remediation.settle_seconds + 5,
    })
}

/// The command an earlier attempt of this step sent for the same incident, if any.
async fn earlier_command(
    ssm: &aws_sdk_ssm::Client,
    config: &RestartConfig,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, RestartError> {
    let since = (now - TimeDelta::seconds(RESUME_LOOKBACK_SECONDS)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let filter = |key, value: &str| {
        CommandFilter::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| RestartError::ConfigError(format!("ListCommands filter: {e}")))
    };
    let mut pages = ssm
        .list_commands()
        .filters(filter(CommandFilterKey::DocumentName, &config.document)?)
        .filters(filter(CommandFilterKey::InvokedAfter, &since)?)
        .into_paginator()
        .send();
    let mut read = 0;
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| sdk_failure("ListCommands (looking for an earlier restart)", &e, is_transient(&e)))?;
        if let Some(found) = page.commands().iter().find(|c| c.comment() == Some(comment)) {
            return Ok(found.command_id().map(str::to_owned));
        }
        read += 1;
        if read >= MAX_PAGES {
            return Err(RestartError::TransientError(format!(
                "ListCommands: more than {MAX_PAGES} pages of commands in the last hour; not sending a restart that may already be running"
            )));
        }
    }
    Ok(None)
}

/// Why SendCommand failed.
enum SendFailure {
    /// SSM created no command: refused, throttled or never reached.
    Refused(RestartError),
    /// SSM may have created the command before the call failed.
    Ambiguous(String),
}

/// Sends the restart once. The SDK's automatic retries are off for this call: SendCommand takes no
/// idempotency token, so a retry after a 5xx or a lost answer could restart the service twice.
async fn send(
    ssm: &aws_sdk_ssm::Client,
    config: &RestartConfig,
    remediation: &Remediation,
    comment: &str,
) -> Result<String, SendFailure> {
    let mut command = ssm
        .send_command()
        .document_name(&config.document)
        .comment(comment)
        .timeout_seconds(i32::try_from(remediation.timeout_seconds.max(30)).unwrap_or(i32::MAX))
        .parameters(UNIT_PARAMETER, vec![remediation.service.clone()])
        .parameters(SETTLE_PARAMETER, vec![remediation.settle_seconds.to_string()])
        .parameters(EXECUTION_TIMEOUT_PARAMETER, vec![remediation.timeout_seconds.to_string()])
        .max_concurrency(&remediation.max_concurrency)
        .max_errors(&remediation.max_errors);
    command = match &remediation.targets {
        Targets::InstanceIds(ids) => command.set_instance_ids(Some(ids.clone())),
        Targets::Tag(tag) => {
            command.targets(Target::builder().key(format!("tag:{}", tag.key)).values(&tag.value).build())
        }
        // Resolved to the alarm's instance before any step runs.
        Targets::FromDimension(dimension) => {
            return Err(SendFailure::Refused(RestartError::ConfigError(format!(
                "targets.fromDimension {dimension} was not resolved to an instance"
            ))));
        }
    };
    let no_retries = aws_sdk_ssm::config::Builder::default().retry_config(RetryConfig::disabled());
    let sent = command.customize().config_override(no_retries).send().await.map_err(|err| {
        let message = format!("SendCommand: {}", describe(&err));
        if may_have_created(&err) {
            return SendFailure::Ambiguous(message);
        }
        SendFailure::Refused(match err.as_service_error() {
            Some(SendCommandError::InvalidInstanceId(_)) => RestartError::TargetUnreachable(message),
            _ if is_transient(&err) => RestartError::TransientError(message),
            _ => RestartError::ConfigError(message),
        })
    })?;
    // SSM accepted the request, so the command exists: an answer without its id cannot be resent.
    sent.command()
        .and_then(|c| c.command_id())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| SendFailure::Ambiguous("SendCommand was accepted but returned no command id".into()))
}

/// Whether a failed SendCommand may still have created the command: SSM failed on its side (5xx),
/// or its answer never arrived or could not be read. A throttled or refused request created nothing.
fn may_have_created(err: &SdkError<SendCommandError, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => service.raw().status().is_server_error(),
        _ => false,
    }
}

/// After an ambiguous SendCommand: the command, if SSM lists it now; else a final error, since
/// sending again could restart the service twice.
async fn created_anyway(
    ssm: &aws_sdk_ssm::Client,
    config: &RestartConfig,
    comment: &str,
    now: DateTime<Utc>,
    why: String,
) -> Result<String, RestartError> {
    let looked = earlier_command(ssm, config, comment, now).await;
    if let Ok(Some(id)) = &looked {
        tracing::warn!(command_id = id, why, "SendCommand failed, but SSM had created the command: resuming it");
        return Ok(id.clone());
    }
    let listed = match looked {
        Err(err) => format!("listing the commands failed too ({err})"),
        _ => "no command of this incident is listed".to_owned(),
    };
    Err(RestartError::CommandOutcomeUnknown(format!(
        "{why}. SSM may or may not have created the restart, and {listed}; not sending it again. Look for a command with the comment {comment:?} in SSM Run Command history before restarting by hand."
    )))
}

async fn check(
    clients: &Clients,
    remediation: &Remediation,
    request: &RemediationRequest,
    previous: RemediationReport,
) -> Result<RemediationReport, RestartError> {
    let mut report = RemediationReport { checks: previous.checks + 1, ..previous };
    match report.stage {
        Stage::Restarting => {
            check_command(&clients.ssm, remediation, request, &mut report).await?;
            if report.stage == Stage::AwaitingAlarm {
                check_alarm(&clients.cloudwatch, remediation, request, &mut report).await?;
            }
        }
        Stage::AwaitingAlarm => check_alarm(&clients.cloudwatch, remediation, request, &mut report).await?,
        done => {
            return Err(RestartError::InvalidEvent(format!(
                "the remediation has already ended ({}); there is nothing to check",
                <&str>::from(done)
            )));
        }
    }
    tracing::info!(
        command_id = report.command_id,
        stage = <&str>::from(report.stage),
        checks = report.checks,
        "checked"
    );
    Ok(report)
}

/// Reads every invocation of the command and moves the report on when all have a final status.
async fn check_command(
    ssm: &aws_sdk_ssm::Client,
    remediation: &Remediation,
    request: &RemediationRequest,
    report: &mut RemediationReport,
) -> Result<(), RestartError> {
    let command_id = report.command_id.clone();
    let since_sent = (request.now - report.sent_at).num_seconds();
    let targeted = incident_command(ssm, &command_id, &request.incident_key).await?;
    let (target_count, invocations) = match &remediation.targets {
        Targets::InstanceIds(ids) => {
            let invocations = instance_invocations(ssm, &command_id, ids, since_sent).await?;
            (Some(u32::try_from(ids.len()).unwrap_or(u32::MAX)), invocations)
        }
        Targets::Tag(_) => (targeted, tag_invocations(ssm, &command_id).await?),
        Targets::FromDimension(dimension) => {
            return Err(RestartError::ConfigError(format!(
                "targets.fromDimension {dimension} was not resolved to an instance"
            )));
        }
    };
    report.target_count = target_count;
    let expected = target_count.map(|n| n as usize);
    let listed_all = expected.is_some_and(|n| n > 0 && invocations.len() >= n);
    let all_final = invocations.values().all(|i| i.is_some());
    let deadline_passed =
        since_sent > i64::try_from(remediation.timeout_seconds).unwrap_or(i64::MAX) + REPORTING_GRACE_SECONDS;

    if !(listed_all && all_final) {
        if expected == Some(0) && since_sent >= INVOCATION_GRACE_SECONDS {
            return Err(RestartError::TargetUnreachable(format!(
                "command {command_id}: SSM found no managed instance for {} (is the opt-in tag on them, and their agent online?)",
                describe_targets(&remediation.targets)
            )));
        }
        if !deadline_passed {
            report.stage = Stage::Restarting;
            report.wait_seconds = COMMAND_CHECK_SECONDS;
            let answered = invocations.values().filter(|i| i.is_some()).count();
            report.summary = format!(
                "restarting {}: {answered} of {} targets answered",
                remediation.service,
                expected.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
            );
            return Ok(());
        }
        let pending: Vec<&str> = invocations.iter().filter(|(_, i)| i.is_none()).map(|(id, _)| id.as_str()).collect();
        let missing = expected.map(|n| n.saturating_sub(invocations.len())).unwrap_or_default();
        let finished: Vec<InstanceReport> = invocations.values().flatten().cloned().collect();
        return Err(RestartError::CommandTimedOut(format!(
            "command {command_id} had no final status after {since_sent}s on {}{}{}",
            if pending.is_empty() { "-".to_owned() } else { pending.join(", ") },
            if missing > 0 { format!(" ({missing} targeted instances never listed)") } else { String::new() },
            evidence_of(&finished)
        )));
    }

    let instances: Vec<InstanceReport> = invocations.into_values().flatten().collect();
    let unreachable: Vec<&InstanceReport> = instances.iter().filter(|r| is_unreachable(r)).collect();
    if !unreachable.is_empty() {
        return Err(RestartError::TargetUnreachable(format!(
            "command {command_id} could not reach {}{}",
            summarize(&unreachable),
            evidence_of(&instances)
        )));
    }
    let timed_out: Vec<&InstanceReport> = instances.iter().filter(|r| r.status == "TimedOut").collect();
    if !timed_out.is_empty() {
        return Err(RestartError::CommandTimedOut(format!(
            "command {command_id} timed out on {}{}",
            summarize(&timed_out),
            evidence_of(&instances)
        )));
    }
    let down: Vec<&InstanceReport> = instances.iter().filter(|r| !r.active).collect();
    if down.is_empty() {
        report.stage = Stage::AwaitingAlarm;
        report.active_at = Some(request.now);
        report.summary = format!("{} restarted and active on all {} targets", remediation.service, instances.len());
    } else {
        report.stage = Stage::RestartFailed;
        report.summary = format!("the restart did not bring {} back on {}", remediation.service, summarize(&down));
    }
    report.instances = instances;
    report.wait_seconds = 0;
    Ok(())
}

/// One answer per instance id: `Some` once final, `None` while running or not yet created.
async fn instance_invocations(
    ssm: &aws_sdk_ssm::Client,
    command_id: &str,
    instance_ids: &[String],
    since_sent: i64,
) -> Result<BTreeMap<String, Option<InstanceReport>>, RestartError> {
    let mut answers = BTreeMap::new();
    for instance_id in instance_ids {
        let answer = ssm.get_command_invocation().command_id(command_id).instance_id(instance_id).send().await;
        let report = match answer {
            Ok(out) => final_report(instance_id, &out),
            Err(err)
                if matches!(err.as_service_error(), Some(GetCommandInvocationError::InvocationDoesNotExist(_))) =>
            {
                (since_sent >= INVOCATION_GRACE_SECONDS).then(|| never_created(instance_id))
            }
            Err(err) => {
                let message = format!("GetCommandInvocation {instance_id}: {}", describe(&err));
                return Err(match err.as_service_error() {
                    _ if is_transient(&err) => RestartError::TransientError(message),
                    Some(GetCommandInvocationError::InvalidInstanceId(_)) => RestartError::TargetUnreachable(message),
                    _ => RestartError::ConfigError(message),
                });
            }
        };
        answers.insert(instance_id.clone(), report);
    }
    Ok(answers)
}

/// A failed AWS call: retryable when AWS said so, else a configuration problem. A listing that
/// failed is reported as that failure, never as "nothing matched".
fn sdk_failure(what: &str, err: &(dyn std::error::Error + 'static), transient: bool) -> RestartError {
    let message = format!("{what} failed: {}", describe(err));
    if transient { RestartError::TransientError(message) } else { RestartError::ConfigError(message) }
}

/// The command, checked to be this incident's restart, and how many instances SSM targeted.
async fn incident_command(
    ssm: &aws_sdk_ssm::Client,
    command_id: &str,
    key: &IncidentKey,
) -> Result<Option<u32>, RestartError> {
    let commands = ssm
        .list_commands()
        .command_id(command_id)
        .send()
        .await
        .map_err(|e| sdk_failure(&format!("ListCommands for command {command_id}"), &e, is_transient(&e)))?;
    let command = commands
        .commands()
        .first()
        .ok_or_else(|| RestartError::InvalidEvent(format!("command {command_id} does not exist")))?;
    if command.comment() != Some(command_comment(key).as_str()) {
        return Err(RestartError::InvalidEvent(format!("command {command_id} was not sent for incident {key}")));
    }
    Ok(u32::try_from(command.target_count()).ok())
}

/// Every invocation of a tag-targeted command (all pages, up to [`MAX_PAGES`]).
async fn tag_invocations(
    ssm: &aws_sdk_ssm::Client,
    command_id: &str,
) -> Result<BTreeMap<String, Option<InstanceReport>>, RestartError> {
    let mut answers = BTreeMap::new();
    let mut pages =
        ssm.list_command_invocations().command_id(command_id).details(true).max_results(50).into_paginator().send();
    let mut read = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            sdk_failure(&format!("ListCommandInvocations for command {command_id}"), &e, is_transient(&e))
        })?;
        for invocation in page.command_invocations() {
            if let Some(instance_id) = invocation.instance_id() {
                answers.insert(instance_id.to_owned(), listed_report(instance_id, invocation));
            }
        }
        read += 1;
        if read >= MAX_PAGES {
            break;
        }
    }
    Ok(answers)
}

/// Looks at the alarm that fired: OK verifies the restart; still firing past the deadline fails it.
async fn check_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    remediation: &Remediation,
    request: &RemediationRequest,
    report: &mut RemediationReport,
) -> Result<(), RestartError> {
    let described = cloudwatch
        .describe_alarms()
        .alarm_names(&request.alarm.name)
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .map_err(|e| sdk_failure(&format!("DescribeAlarms {}", request.alarm.name), &e, is_transient(&e)))?;
    let metric = described.metric_alarms().first();
    let state = metric
        .and_then(|a| a.state_value())
        .or_else(|| described.composite_alarms().first().and_then(|a| a.state_value()))
        .cloned();
    let Some(state) = state else {
        report.stage = Stage::AlarmMissing;
        report.wait_seconds = 0;
        report.summary = format!(
            "{} restarted and active, but alarm {} no longer exists, so recovery cannot be verified",
            remediation.service, request.alarm.name
        );
        return Ok(());
    };
    report.alarm_state = Some(state.as_str().to_owned());
    let active_at = report.active_at.unwrap_or(request.now);
    let recovery = remediation.recovery_seconds.unwrap_or_else(|| {
        default_recovery_seconds(
            metric.and_then(|a| a.period()).and_then(|p| u64::try_from(p).ok()),
            metric.and_then(|a| a.evaluation_periods()).and_then(|p| u64::try_from(p).ok()),
        )
    });
    // Bounded by the rules' validation already; clamped again so the arithmetic cannot overflow.
    let recovery = recovery.min(shared::routing::MAX_RECOVERY_SECONDS) as i64;
    let deadline = active_at + TimeDelta::seconds(recovery);
    report.recovery_deadline = Some(deadline);
    if state == StateValue::Ok {
        report.stage = Stage::Recovered;
        report.verified = true;
        report.wait_seconds = 0;
        report.summary = format!(
            "{} restarted and active on every target, and alarm {} is OK again",
            remediation.service, request.alarm.name
        );
    } else if request.now >= deadline {
        report.stage = Stage::AlarmStillFiring;
        report.wait_seconds = 0;
        report.summary = format!(
            "{} restarted and active, but the alarm still fires ({} {}s after the restart)",
            remediation.service,
            state.as_str(),
            (request.now - active_at).num_seconds()
        );
    } else {
        report.stage = Stage::AwaitingAlarm;
        let left = u64::try_from((deadline - request.now).num_seconds()).unwrap_or(0).max(1);
        report.wait_seconds = ALARM_CHECK_SECONDS.min(left);
        report.summary = format!(
            "{} restarted and active; waiting up to {left}s more for alarm {} ({}) to return to OK",
            remediation.service,
            request.alarm.name,
            state.as_str()
        );
    }
    Ok(())
}

fn is_final(status: &CommandInvocationStatus) -> bool {
    !matches!(
        status,
        CommandInvocationStatus::Pending
            | CommandInvocationStatus::InProgress
            | CommandInvocationStatus::Delayed
            | CommandInvocationStatus::Cancelling
    )
}

/// The report for an invocation that has finished, or `None` while it is still running.
fn final_report(instance_id: &str, out: &GetCommandInvocationOutput) -> Option<InstanceReport> {
    let status = out.status().filter(|s| is_final(s))?;
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
    })
}

/// The same report from a `ListCommandInvocations` entry listed with details.
fn listed_report(instance_id: &str, invocation: &CommandInvocation) -> Option<InstanceReport> {
    let status = invocation.status().filter(|s| is_final(s))?;
    let plugin = invocation.command_plugins().first();
    let exit_code = plugin.map(|p| p.response_code()).filter(|code| *code >= 0);
    Some(InstanceReport {
        instance_id: instance_id.to_owned(),
        status: status.as_str().to_owned(),
        status_details: invocation.status_details().map(str::to_owned),
        exit_code,
        active: *status == CommandInvocationStatus::Success && exit_code == Some(0),
        evidence: truncate(plugin.and_then(|p| p.output()).unwrap_or_default(), EVIDENCE_LIMIT),
        elapsed: None,
    })
}

fn never_created(instance_id: &str) -> InstanceReport {
    InstanceReport {
        instance_id: instance_id.to_owned(),
        status: "Undeliverable".to_owned(),
        status_details: Some("the invocation never appeared (InvocationDoesNotExist)".to_owned()),
        exit_code: None,
        active: false,
        evidence: String::new(),
        elapsed: None,
    }
}

/// SSM's words for "the command never ran there". `StatusDetails` spells them with spaces
/// ("Delivery Timed Out", "Invalid Platform"); the unspaced forms are the `Status` enum's, accepted
/// too.
fn is_unreachable(report: &InstanceReport) -> bool {
    report.status == "Undeliverable"
        || matches!(
            report.status_details.as_deref(),
            Some(
                "Undeliverable"
                    | "Terminated"
                    | "Delivery Timed Out"
                    | "DeliveryTimedOut"
                    | "Invalid Platform"
                    | "InvalidPlatform"
            )
        )
}

fn describe_targets(targets: &Targets) -> String {
    match targets {
        Targets::InstanceIds(ids) => ids.join(", "),
        Targets::Tag(tag) => format!("instances tagged {}={}", tag.key, tag.value),
        Targets::FromDimension(dimension) => format!("the instance the alarm's {dimension} names"),
    }
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

/// What the instances that did answer said, for an error's message: the evidence is kept on every
/// path, not only when the restart is verified.
fn evidence_of(reports: &[InstanceReport]) -> String {
    let answered: Vec<String> = reports
        .iter()
        .filter(|r| !r.evidence.is_empty())
        .map(|r| {
            let exit = r.exit_code.map(|c| format!("exit code {c}")).unwrap_or_else(|| "no exit code".to_owned());
            format!("\n--- {} ({}, {exit}):\n{}", r.instance_id, r.status, r.evidence)
        })
        .collect();
    if answered.is_empty() {
        String::new()
    } else {
        format!("\nEvidence:{}", truncate(&answered.concat(), 4 * EVIDENCE_LIMIT))
    }
}

#[cfg(test)]
mod tests;
