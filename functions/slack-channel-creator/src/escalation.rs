//! The first-response document as the Escalate branch hands it over: the alarm, the route, what
//! the failure counter and restart-and-verify reported, the error that ended automation, and the
//! Incident Manager record when one was opened. Every part but the alarm, route, key and notice
//! may be empty (`{}`), depending on where the execution gave up.

use serde::Deserialize;
use shared::{Alarm, IncidentKey, Notice, Route};

use crate::summary::{AutomationStory, Link};

/// The task input of `Open War Room`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    pub alarm: Alarm,
    pub route: Route,
    pub incident_key: IncidentKey,
    pub notice: Notice,
    #[serde(default)]
    pub failures: FailureCount,
    #[serde(default)]
    pub remediation: RemediationEvidence,
    #[serde(default)]
    pub error: TaskError,
    #[serde(default)]
    pub incident: IncidentRecord,
}

/// The failure counter's answer (`failures`), as far as the room tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureCount {
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub threshold: Option<u32>,
    #[serde(default)]
    pub total_count: Option<u32>,
    #[serde(default)]
    pub total_threshold: Option<u32>,
    #[serde(default)]
    pub window_seconds: Option<u64>,
    #[serde(default)]
    pub breaker_open: Option<bool>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Restart-and-verify's report (`remediation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationEvidence {
    #[serde(default)]
    pub verified: Option<bool>,
    #[serde(default)]
    pub command_id: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub instances: Vec<InstanceEvidence>,
    /// Where the remediation stood, in one sentence ("restarted and active, but the alarm still fires").
    #[serde(default)]
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceEvidence {
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub evidence: String,
}

/// What a state's `Catch` recorded (`error`): Step Functions' `Error` and `Cause`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TaskError {
    #[serde(default, rename = "Error")]
    pub error: Option<String>,
    #[serde(default, rename = "Cause")]
    pub cause: Option<String>,
}

/// The Incident Manager record `Open Incident` created (`incident`), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentRecord {
    #[serde(default)]
    pub incident_record_arn: Option<String>,
}

impl TaskError {
    /// The error's message: a Lambda error's `Cause` is itself JSON with an `errorMessage`.
    pub fn message(&self) -> Option<String> {
        let cause = self.cause.as_deref()?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct LambdaCause {
            error_message: String,
        }
        Some(serde_json::from_str::<LambdaCause>(cause).map(|c| c.error_message).unwrap_or_else(|_| cause.to_owned()))
    }
}

impl Escalation {
    /// What automation did before giving up, with the evidence it kept.
    pub fn automation_story(&self) -> AutomationStory {
        let mut story = AutomationStory::default();
        let failures = &self.failures;
        if failures.breaker_open == Some(true) {
            let mut line = format!(
                "Nothing: the circuit breaker is open ({} failed runs of route {} in the last {}s, threshold {}).",
                number(failures.count),
                self.route.name,
                number(failures.window_seconds),
                number(failures.threshold),
            );
            if let Some(reason) = failures.reason.as_deref().filter(|r| !r.is_empty()) {
                line.push_str(&format!(" {reason}"));
            }
            story.lines.push(line);
        }
        let remediation = &self.remediation;
        if let Some(command) = &remediation.command_id {
            let service = remediation
                .service
                .clone()
                .or_else(|| self.route.remediation.as_ref().map(|r| r.service.clone()))
                .unwrap_or_else(|| "the service".to_owned());
            let verdict = if remediation.verified == Some(true) {
                "verified by the alarm returning to OK"
            } else {
                "NOT verified"
            };
            story.lines.push(format!(
                "Restarted {service} with SSM command {command} on {} instance(s): {verdict}.",
                remediation.instances.len()
            ));
            if let Some(summary) = remediation.summary.as_deref().filter(|s| !s.trim().is_empty()) {
                story.lines.push(format!("Verification: {summary}."));
            }
            for instance in &remediation.instances {
                let exit =
                    instance.exit_code.map(|c| format!("exit code {c}")).unwrap_or_else(|| "no exit code".into());
                let state = if instance.active { "active" } else { "not active" };
                story.lines.push(format!("{}: {}, {exit}, {state}.", instance.instance_id, instance.status));
            }
            // The evidence that matters is from the instances still down; all of it when none is.
            let down = remediation.instances.iter().any(|i| !i.active);
            story.evidence = remediation
                .instances
                .iter()
                .filter(|i| (!down || !i.active) && !i.evidence.trim().is_empty())
                .map(|i| (i.instance_id.clone(), i.evidence.clone()))
                .collect();
        }
        if let Some(error) = &self.error.error {
            let message = self.error.message().map(|m| format!(": {m}")).unwrap_or_default();
            story.lines.push(format!("It failed with {error}{message}"));
        }
        story
    }

    /// The alarm, the execution, the runbook and the Incident Manager record, where they exist.
    pub fn links(&self) -> Vec<Link> {
        let notice = &self.notice;
        let mut links = vec![
            Link { title: format!("Alarm {}", self.alarm.name), url: notice.alarm_url.clone() },
            Link { title: "Execution".to_owned(), url: notice.execution_url.clone() },
            Link { title: "Runbook".to_owned(), url: notice.runbook_url.clone() },
        ];
        if self.incident.incident_record_arn.is_some() {
            let region = &self.alarm.region;
            links.push(Link {
                title: "Incident Manager".to_owned(),
                url: format!(
                    "https://{region}.console.aws.amazon.com/systems-manager/incidents/home?region={region}#/incidents"
                ),
            });
        }
        // Only web links, made safe to appear inside Slack's `<url|title>` and as bookmarks.
        links
            .into_iter()
            .filter_map(|link| Some(Link { url: shared::text::slack_link_url(&link.url)?, ..link }))
            .collect()
    }
}

fn number<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escalation() -> Escalation {
        let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("escalation")
    }

    #[test]
    fn the_story_says_why_a_restart_that_worked_was_not_enough() {
        // GIVEN nginx restarted and active everywhere, but the alarm kept firing
        let mut doc = escalation();
        doc.remediation.verified = Some(false);
        doc.remediation.summary =
            Some("nginx restarted and active, but the alarm still fires (ALARM 240s after the restart)".into());
        // WHEN the war room tells the story
        let story = doc.automation_story();
        // THEN the responders read the reason, not only "NOT verified"
        assert!(
            story.lines.iter().any(|l| l == "Verification: nginx restarted and active, but the alarm still fires (ALARM 240s after the restart)."),
            "{:?}",
            story.lines
        );
    }
}
