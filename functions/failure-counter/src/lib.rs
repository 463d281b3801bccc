//! The failure counter: the circuit breaker in front of automated remediation.
//!
//! Counts executions of the first-response state machine that ended FAILED, TIMED_OUT or ABORTED
//! within a recent window, for the alarm's route and in total, and opens the breaker when either
//! count passes its threshold.
//!
//! `ListExecutions` lists the most recently *started* execution first, so stop dates are not in
//! order: a slow restart started twenty minutes ago may have failed a minute ago, behind executions
//! that stopped long before the window. Every listed execution whose stop date is inside the window
//! counts, and paging stops only at the first start date older than the window start minus the
//! execution timeout: nothing started before that can have stopped inside the window. The cost
//! follows recent activity, not history.

use std::time::Duration;

use aws_sdk_sfn::operation::list_executions::ListExecutionsError;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::aws::{describe, is_transient};
use shared::{Action, IncidentKey, Routes};
use strum::{EnumIter, IntoStaticStr};

/// How many failed execution ARNs the result lists, newest first.
pub const MAX_LISTED_FAILURES: usize = 10;
const PAGE_SIZE: i32 = 100;

/// Errors the counter returns; the variant name is the error name the state machine sees.
#[derive(Debug, thiserror::Error, IntoStaticStr, EnumIter)]
pub enum CounterError {
    /// The task input is not a count request; nothing was read.
    #[error("{0}")]
    InvalidEvent(String),
    /// The state machine cannot be read (missing, or permissions).
    #[error("{0}")]
    ConfigError(String),
    /// Step Functions was unavailable or throttled us; a retry may succeed.
    #[error("{0}")]
    TransientError(String),
}

shared::lambda_error_names!(CounterError);

/// The breaker's settings, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterConfig {
    /// How far back failures count.
    pub window: Duration,
    /// The breaker opens when the route has more failures than this in the window.
    pub threshold: u32,
    /// The breaker opens when all routes together have more failures than this in the window.
    pub total_threshold: u32,
    /// The state machine's `TimeoutSeconds`: the longest an execution can run, so an execution that
    /// started earlier than the window start minus this cannot have stopped inside the window.
    pub execution_timeout: Duration,
}

impl Default for CounterConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            threshold: 5,
            total_threshold: 20,
            execution_timeout: Duration::from_secs(shared::EXECUTION_TIMEOUT_SECONDS),
        }
    }
}

impl CounterConfig {
    /// Reads `FAILURE_WINDOW_SECONDS`, `FAILURE_THRESHOLD` and `TOTAL_FAILURE_THRESHOLD`; unset means default.
    pub fn from_env() -> Result<Self, CounterError> {
        let defaults = Self::default();
        let number = |name: &str, default: u64| -> Result<u64, CounterError> {
            match shared::optional_env(name) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| CounterError::ConfigError(format!("{name}={text:?} is not a whole number"))),
            }
        };
        let window = number("FAILURE_WINDOW_SECONDS", defaults.window.as_secs())?;
        if window == 0 {
            return Err(CounterError::ConfigError("FAILURE_WINDOW_SECONDS must be above 0".into()));
        }
        let threshold = |name, default: u32| {
            number(name, default.into())
                .and_then(|n| u32::try_from(n).map_err(|_| CounterError::ConfigError(format!("{name} is too large"))))
        };
        Ok(Self {
            window: Duration::from_secs(window),
            threshold: threshold("FAILURE_THRESHOLD", defaults.threshold)?,
            total_threshold: threshold("TOTAL_FAILURE_THRESHOLD", defaults.total_threshold)?,
            execution_timeout: defaults.execution_timeout,
        })
    }
}

/// The task input: which state machine to read and which route the alarm took.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountRequest {
    pub state_machine_arn: String,
    #[serde(default)]
    pub execution_arn: Option<String>,
    pub route: RouteName,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RouteName {
    pub name: String,
}

/// What the state machine keeps under `failures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    pub route: String,
    /// Failed executions of this route in the window.
    pub count: u32,
    /// Failed executions of every route in the window.
    pub total_count: u32,
    pub window_seconds: u64,
    /// Start of the window, RFC 3339 UTC.
    pub window_start: String,
    pub threshold: u32,
    pub total_threshold: u32,
    pub breaker_open: bool,
    /// Why the breaker is open, for the responders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The most recent failed executions of this route, newest first.
    pub recent_failed_executions: Vec<String>,
    /// How many `ListExecutions` pages were read.
    pub pages_read: u32,
}

/// Counts recent failures and decides whether the breaker is open. `now` is the current UTC time;
/// `routes` are the deployed rules, in which the request's route must be one that remediates.
pub async fn handle(
    sfn: &aws_sdk_sfn::Client,
    config: &CounterConfig,
    routes: &Routes,
    input: Value,
    now: DateTime<Utc>,
) -> Result<Failures, CounterError> {
    let request: CountRequest = serde_json::from_value(input)
        .map_err(|e| CounterError::InvalidEvent(format!("not a failure-count request: {e}")))?;
    match routes.by_name(&request.route.name) {
        Some(route) if route.action == Action::Remediate => {}
        Some(_) => {
            return Err(CounterError::InvalidEvent(format!(
                "route {:?} does not remediate in the deployed rules: there is nothing to count",
                request.route.name
            )));
        }
        None => {
            return Err(CounterError::InvalidEvent(format!(
                "route {:?} is not in the deployed rules",
                request.route.name
            )));
        }
    }
    if !request.state_machine_arn.starts_with("arn:") || !request.state_machine_arn.contains(":stateMachine:") {
        return Err(CounterError::InvalidEvent(format!(
            "stateMachineArn {:?} is not a state machine ARN",
            request.state_machine_arn
        )));
    }
    let window = chrono::Duration::from_std(config.window)
        .map_err(|_| CounterError::ConfigError("the failure window is too long".into()))?;
    let window_start = now - window;
    let window_start_secs = window_start.timestamp_millis() as f64 / 1000.0;
    let oldest_start_secs = window_start_secs - config.execution_timeout.as_secs_f64();

    let mut count = 0u32;
    let mut total_count = 0u32;
    let mut recent = Vec::new();
    let mut pages_read = 0u32;
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(&request.state_machine_arn)
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    'pages: while let Some(page) = pages.next().await {
        let page = page.map_err(classify)?;
        pages_read += 1;
        for execution in page.executions() {
            if execution.start_date().as_secs_f64() < oldest_start_secs {
                break 'pages;
            }
            let Some(stopped) = execution.stop_date() else { continue };
            if stopped.as_secs_f64() < window_start_secs {
                continue;
            }
            if !matches!(
                execution.status(),
                ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
            ) {
                continue;
            }
            total_count += 1;
            if IncidentKey::route_of(execution.name()) == Some(request.route.name.as_str()) {
                count += 1;
                if recent.len() < MAX_LISTED_FAILURES {
                    recent.push(execution.execution_arn().to_owned());
                }
            }
        }
    }

    let reason = if count > config.threshold {
        Some(format!(
            "route {} failed {count} times in the last {}s (threshold {})",
            request.route.name,
            config.window.as_secs(),
            config.threshold
        ))
    } else if total_count > config.total_threshold {
        Some(format!(
            "first response failed {total_count} times across all routes in the last {}s (threshold {})",
            config.window.as_secs(),
            config.total_threshold
        ))
    } else {
        None
    };
    tracing::info!(route = %request.route.name, count, total_count, pages_read, breaker_open = reason.is_some(), "counted");
    Ok(Failures {
        route: request.route.name,
        count,
        total_count,
        window_seconds: config.window.as_secs(),
        window_start: window_start.to_rfc3339_opts(SecondsFormat::Secs, true),
        threshold: config.threshold,
        total_threshold: config.total_threshold,
        breaker_open: reason.is_some(),
        reason,
        recent_failed_executions: recent,
        pages_read,
    })
}

/// An open breaker stopped this execution before it acted: one breaker trip for its route.
pub fn measurements(failures: &Failures) -> Vec<shared::metrics::Measurement> {
    if failures.breaker_open {
        vec![shared::metrics::Measurement::count(shared::metrics::Metric::BreakerTrips, &failures.route)]
    } else {
        Vec::new()
    }
}

fn classify(err: aws_sdk_sfn::error::SdkError<ListExecutionsError>) -> CounterError {
    let message = format!("ListExecutions: {}", describe(&err));
    if is_transient(&err) { CounterError::TransientError(message) } else { CounterError::ConfigError(message) }
}

#[cfg(test)]
mod tests;
