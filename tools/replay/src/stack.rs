//! What AWS does around the functions, as `infra/template.yaml` configures it, simulated on the
//! replay's virtual clock: Lambda's asynchronous retries of the router and its on-failure
//! destination, the safety-net rules that publish to the alert topic (`RouterFailureRule`,
//! `ExecutionEndedUnseenRule`), EventBridge's retries of those deliveries, and the stack's
//! schedule.
//!
//! EventBridge delivers an alarm event to the router as an asynchronous invocation: once Lambda
//! has accepted it, a function error is Lambda's to retry, not EventBridge's. EventBridge retries
//! a target only when Lambda refuses the invocation itself (throttled), which replay does not
//! simulate; either way the effect is the same event routed again later, which a Lambda retry is.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// The delay before each retry of a failed asynchronous invocation: "If the function returns an
/// error, by default Lambda attempts to run it two more times, with a one-minute wait between the
/// first two attempts, and two minutes between the second and third attempts"
/// (<https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html>). The
/// router's `EventInvokeConfig` keeps the default, `MaximumRetryAttempts: 2`.
pub const LAMBDA_RETRY_DELAYS: [i64; 2] = [60, 120];

/// How often the stack's scheduled work runs on the virtual clock.
pub const SCHEDULE_EVERY: i64 = 300;

/// The delay before EventBridge's `attempt`-th retry (1-based) of a delivery to the topic.
/// EventBridge documents "an exponential back off and jitter" for up to 24 hours and 185 attempts
/// (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html>); replay
/// doubles from one second up to five minutes, without the jitter, so that a replay gives the
/// same summary every time.
pub fn eventbridge_retry_delay(attempt: u32) -> Duration {
    Duration::seconds(1i64 << attempt.saturating_sub(1).min(9)).min(Duration::seconds(300))
}

/// How long EventBridge keeps retrying a delivery (its default `MaximumEventAgeInSeconds`).
pub const EVENTBRIDGE_MAX_AGE: i64 = 86_400;

/// Which safety net a message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafetyNet {
    /// `RouterFailureRule`: the router's on-failure destination, after Lambda's last retry.
    RouterFailure,
    /// `ExecutionEndedUnseenRule`: an execution that timed out, was aborted, or failed without
    /// escalating.
    ExecutionEndedUnseen,
}

impl SafetyNet {
    pub fn rule(self) -> &'static str {
        match self {
            Self::RouterFailure => "RouterFailureRule",
            Self::ExecutionEndedUnseen => "ExecutionEndedUnseenRule",
        }
    }
}

/// Work due on the virtual clock.
#[derive(Debug, Clone)]
pub enum Job {
    /// The history's event at this index of the replay's entries, delivered to the router
    /// (`attempt` 1) or retried by Lambda (2 and 3).
    Route { entry: usize, attempt: u32 },
    /// A safety net's message to the alert topic, first sent at `first` (EventBridge retries it
    /// until `first` + [`EVENTBRIDGE_MAX_AGE`]).
    Publish { net: SafetyNet, message: String, attempt: u32, first: DateTime<Utc> },
}

/// The jobs due, in virtual-time order; jobs due at the same instant keep the order they were
/// scheduled in.
#[derive(Debug, Default)]
pub struct Schedule {
    jobs: std::collections::BTreeMap<(DateTime<Utc>, u64), Job>,
    scheduled: u64,
}

impl Schedule {
    pub fn push(&mut self, at: DateTime<Utc>, job: Job) {
        self.scheduled += 1;
        self.jobs.insert((at, self.scheduled), job);
    }

    /// When the next job is due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.jobs.keys().next().map(|(at, _)| *at)
    }

    pub fn pop(&mut self) -> Option<(DateTime<Utc>, Job)> {
        self.jobs.pop_first().map(|((at, _), job)| (at, job))
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// A value of `event` at `path` (keys separated by dots), as an input transformer reads it:
/// text as it is, anything else as JSON, a missing value as nothing.
fn input_path(event: &Value, path: &str) -> String {
    let found = path.split('.').try_fold(event, |value, key| value.get(key));
    match found {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The message `RouterFailureRule`'s input transformer makes of the router's failed invocation
/// record: EventBridge joins the template's quoted lines into one text.
pub fn router_failure_message(event: &Value, error_type: &str, error_message: &str, at: DateTime<Utc>) -> String {
    [
        format!(
            "The alarm router failed on alarm {} (state {}, account {}, region {}).",
            input_path(event, "detail.alarmName"),
            input_path(event, "detail.state.value"),
            input_path(event, "account"),
            input_path(event, "region"),
        ),
        format!("Error: {error_type}: {error_message}"),
        format!("Attempts: {} (RetriesExhausted), last at {}.", LAMBDA_RETRY_DELAYS.len() + 1, aws_time(at)),
        "Automation did not handle this alarm: look at it in the CloudWatch console.".to_owned(),
    ]
    .join("\n")
}

/// The message `ExecutionEndedUnseenRule` makes of an execution's status change, or `None` when
/// its pattern does not match (the execution succeeded, or failed with `Escalated`: it paged).
pub fn execution_ended_unseen_message(
    name: &str,
    execution_arn: &str,
    outcome: &asl::Outcome,
    stopped: DateTime<Utc>,
) -> Option<String> {
    let status = match outcome.status {
        asl::Status::Succeeded => return None,
        asl::Status::Failed if outcome.error.as_deref() == Some("Escalated") => return None,
        asl::Status::Failed => "FAILED",
        asl::Status::TimedOut => "TIMED_OUT",
    };
    Some(
        [
            format!("First-response execution {name} ended {status} without paging anyone."),
            format!("Error: {}", outcome.error.as_deref().unwrap_or_default()),
            format!("Cause: {}", outcome.cause.as_deref().unwrap_or_default()),
            format!("Execution: {execution_arn} (ended {})", aws_time(stopped)),
            "A human must check the alarm this execution was handling: it may still be in ALARM, unremediated."
                .to_owned(),
        ]
        .join("\n"),
    )
}

/// An event's `time` as EventBridge writes it.
fn aws_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn jobs_come_out_in_time_order_and_same_instant_jobs_in_the_order_scheduled() {
        let mut schedule = Schedule::default();
        schedule.push(at("2026-11-20T04:02:00Z"), Job::Route { entry: 2, attempt: 1 });
        schedule.push(at("2026-11-20T04:01:00Z"), Job::Route { entry: 0, attempt: 2 });
        schedule.push(at("2026-11-20T04:01:00Z"), Job::Route { entry: 1, attempt: 1 });
        let order: Vec<usize> = std::iter::from_fn(|| schedule.pop())
            .map(|(_, job)| match job {
                Job::Route { entry, .. } => entry,
                Job::Publish { .. } => usize::MAX,
            })
            .collect();
        assert_eq!(order, [0, 1, 2]);
    }

    #[test]
    fn eventbridge_backs_off_from_a_second_to_five_minutes() {
        let delays: Vec<i64> = (1..=11).map(|n| eventbridge_retry_delay(n).num_seconds()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn the_router_failure_page_names_the_alarm_and_the_error() {
        let event = serde_json::json!({"account": "123456789012", "region": "eu-west-1",
            "detail": {"alarmName": "checkout-5xx", "state": {"value": "ALARM"}}});
        let message =
            router_failure_message(&event, "TransientError", "sns:Publish throttled", at("2026-11-20T04:03:00Z"));
        assert_eq!(
            message,
            "The alarm router failed on alarm checkout-5xx (state ALARM, account 123456789012, region eu-west-1).\n\
             Error: TransientError: sns:Publish throttled\n\
             Attempts: 3 (RetriesExhausted), last at 2026-11-20T04:03:00Z.\n\
             Automation did not handle this alarm: look at it in the CloudWatch console."
        );
    }
}
