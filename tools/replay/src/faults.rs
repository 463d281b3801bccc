//! `replay history --faults PLAN`: failures injected into the emulator on the replay's virtual clock.
//!
//! A plan lists faults; each starts when the history's event on its line is delivered, fails
//! every call of one AWS operation (`sns:Publish`: the signing name and operation, as the emulator
//! counts calls) with `Throttling` or `InternalError`, for some seconds of virtual time and/or a
//! number of calls. Replay resolves each fault's start to a time on the virtual clock before
//! anything runs, arms them all in the emulator at once, and then tells the emulator the virtual
//! time of every call it makes: the router's at its event's time, a task's at the time the
//! state machine schedules it (retries included). The emulator compares that time with each
//! fault's window, so an execution that runs ahead of the history meets exactly the faults of
//! its own virtual time.

use std::path::Path;
use std::sync::Mutex;

use asl::TraceEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// The errors a plan may inject.
pub const ERRORS: [&str; 2] = ["Throttling", "InternalError"];

/// The signing names of the services the product calls (Step Functions signs as `states`,
/// CloudWatch as `monitoring`).
pub const SERVICES: [&str; 6] = ["dynamodb", "monitoring", "sns", "ssm", "ssm-incidents", "states"];

/// Why a fault plan is refused, before anything runs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("FaultPlanUnreadable: {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error(
        "UnknownCall: fault {fault} of {path}: call {call:?} is not <signing name>:<Operation> of a service the \
         product calls (one of {}), like sns:Publish or states:StartExecution",
        SERVICES.join(", ")
    )]
    UnknownCall { path: String, fault: usize, call: String },
    #[error("UnknownError: fault {fault} of {path}: error {error:?} is not one of {}", ERRORS.join(", "))]
    UnknownError { path: String, fault: usize, error: String },
    #[error(
        "LineOutOfRange: fault {fault} of {path}: line {line} holds no event of the history (lines {first}-{last})"
    )]
    LineOutOfRange { path: String, fault: usize, line: usize, first: usize, last: usize },
    #[error("FaultWithoutEnd: fault {fault} of {path}: give seconds (of virtual time), times (calls), or both")]
    WithoutEnd { path: String, fault: usize },
}

/// One fault as the plan writes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The history's line (1-based) whose delivery starts the fault.
    pub line: usize,
    /// `<signing name>:<Operation>`.
    pub call: String,
    /// How long the fault lasts on the virtual clock.
    #[serde(default)]
    pub seconds: Option<u64>,
    /// How many calls it fails, whoever makes them.
    #[serde(default)]
    pub times: Option<u64>,
    pub error: String,
}

/// A fault plan: `faults: [...]`, in YAML or JSON.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub faults: Vec<Fault>,
}

impl Plan {
    /// Reads and checks a plan against the lines of the history that hold events.
    pub fn load(path: &Path, event_lines: &[usize]) -> Result<Self, PlanError> {
        let name = path.display().to_string();
        let unreadable = |message: String| PlanError::Unreadable { path: name.clone(), message };
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let plan: Plan = serde_yaml_ng::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        plan.check(&name, event_lines)?;
        Ok(plan)
    }

    /// Refuses, by name, the first fault that could not work as written.
    pub fn check(&self, path: &str, event_lines: &[usize]) -> Result<(), PlanError> {
        let first = event_lines.iter().copied().min().unwrap_or_default();
        let last = event_lines.iter().copied().max().unwrap_or_default();
        for (index, fault) in self.faults.iter().enumerate() {
            let path = path.to_owned();
            let number = index + 1;
            if !is_call(&fault.call) {
                return Err(PlanError::UnknownCall { path, fault: number, call: fault.call.clone() });
            }
            if !ERRORS.contains(&fault.error.as_str()) {
                return Err(PlanError::UnknownError { path, fault: number, error: fault.error.clone() });
            }
            if !event_lines.contains(&fault.line) {
                return Err(PlanError::LineOutOfRange { path, fault: number, line: fault.line, first, last });
            }
            if fault.seconds.is_none() && fault.times.is_none() {
                return Err(PlanError::WithoutEnd { path, fault: number });
            }
        }
        Ok(())
    }

    /// The faults as the emulator arms them, each starting at the virtual time `delivered_at`
    /// gives its line.
    pub fn armed(&self, delivered_at: impl Fn(usize) -> Option<DateTime<Utc>>) -> Vec<Value> {
        self.faults
            .iter()
            .map(|fault| {
                let from = delivered_at(fault.line);
                let until = from.zip(fault.seconds).and_then(|(from, seconds)| {
                    from.checked_add_signed(chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)))
                });
                let mut armed = json!({"call": fault.call, "error": fault.error});
                if let Some(from) = from {
                    armed["from"] = json!(from.to_rfc3339());
                }
                if let Some(until) = until {
                    armed["until"] = json!(until.to_rfc3339());
                }
                armed["times"] = json!(fault.times);
                armed
            })
            .collect()
    }
}

/// `<signing name>:<Operation>` of a service the product calls.
fn is_call(call: &str) -> bool {
    let Some((service, operation)) = call.split_once(':') else { return false };
    SERVICES.contains(&service)
        && operation.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && operation.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The emulator's fault endpoints, and the virtual time replay last told it.
#[derive(Debug)]
pub struct FaultClock {
    endpoint: String,
    /// The time replay last told the emulator.
    told: Mutex<Option<DateTime<Utc>>>,
    /// The time the state machine last scheduled a task at, seen in its trace.
    scheduled: Mutex<Option<DateTime<Utc>>>,
}

impl FaultClock {
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            told: Mutex::default(),
            scheduled: Mutex::default(),
        }
    }

    /// Disarms whatever the emulator holds, then arms `faults`.
    pub async fn arm(&self, faults: Vec<Value>) -> Result<(), String> {
        let url = format!("{}/_first_response/faults", self.endpoint);
        let http = crate::http();
        let failed = |e: reqwest::Error| format!("the emulator at {url} did not arm the faults: {e}");
        http.delete(&url).send().await.and_then(reqwest::Response::error_for_status).map_err(failed)?;
        if faults.is_empty() {
            return Ok(());
        }
        http.post(&url)
            .json(&json!({"faults": faults}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed)?;
        Ok(())
    }

    /// Tells the emulator the virtual time of the calls that follow, when it changed.
    pub async fn tell(&self, now: DateTime<Utc>) {
        if let Ok(mut told) = self.told.lock() {
            if *told == Some(now) {
                return;
            }
            *told = Some(now);
        }
        let url = format!("{}/_first_response/clock", self.endpoint);
        let sent = crate::http().post(&url).json(&json!({"now": now.to_rfc3339()})).send().await;
        if let Err(err) = sent.and_then(reqwest::Response::error_for_status) {
            eprintln!("replay: the emulator did not take the virtual time {now}: {err}");
        }
    }

    /// Notes the virtual time of a task the state machine schedules (a retry included).
    pub fn observe(&self, event: &TraceEvent) {
        let TraceEvent::History(event) = event else { return };
        if !event.kind.ends_with("Scheduled") {
            return;
        }
        let Ok(at) = DateTime::parse_from_rfc3339(&event.timestamp) else { return };
        if let Ok(mut scheduled) = self.scheduled.lock() {
            *scheduled = Some(at.with_timezone(&Utc));
        }
    }

    /// Tells the emulator the time of the task last scheduled, if any.
    pub async fn tell_scheduled(&self) {
        let scheduled = self.scheduled.lock().ok().and_then(|s| *s);
        if let Some(at) = scheduled {
            self.tell(at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(yaml: &str) -> Plan {
        serde_yaml_ng::from_str(yaml).expect("a plan")
    }

    #[test]
    fn each_mistake_is_refused_by_name() {
        let lines = [1, 2, 3];
        let cases = [
            ("faults: [{line: 1, call: sns.Publish, seconds: 30, error: Throttling}]", "UnknownCall"),
            ("faults: [{line: 1, call: 'sfn:StartExecution', seconds: 30, error: Throttling}]", "UnknownCall"),
            ("faults: [{line: 1, call: 'sns:Publish', seconds: 30, error: SlowDown}]", "UnknownError"),
            ("faults: [{line: 4, call: 'sns:Publish', seconds: 30, error: Throttling}]", "LineOutOfRange"),
            ("faults: [{line: 0, call: 'sns:Publish', times: 1, error: Throttling}]", "LineOutOfRange"),
            ("faults: [{line: 1, call: 'sns:Publish', error: InternalError}]", "FaultWithoutEnd"),
        ];
        for (yaml, name) in cases {
            let refused = plan(yaml).check("plan.yaml", &lines).expect_err(yaml).to_string();
            assert!(refused.starts_with(&format!("{name}: fault 1 of plan.yaml")), "{yaml}: {refused}");
        }
    }

    #[test]
    fn a_fault_starts_when_its_line_is_delivered_and_lasts_its_seconds() {
        let plan = plan("faults: [{line: 2, call: 'sns:Publish', seconds: 90, times: 3, error: Throttling}]");
        plan.check("plan.yaml", &[1, 2]).expect("valid");
        let at = DateTime::parse_from_rfc3339("2026-11-20T04:00:00Z").expect("time").with_timezone(&Utc);
        let armed = plan.armed(|line| (line == 2).then_some(at));
        assert_eq!(
            armed,
            vec![json!({"call": "sns:Publish", "error": "Throttling", "from": "2026-11-20T04:00:00+00:00",
                        "until": "2026-11-20T04:01:30+00:00", "times": 3})]
        );
    }
}
