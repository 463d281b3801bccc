//! What people read: the first-response document as the state machine hands it over, the story of
//! what automation did, the escalation and recovery pages written from it, and the SNS message
//! attributes every message the product publishes carries.
//!
//! Pages are plain text for a person at 4 a.m.: sentences, one fact per line, the evidence as
//! indented text; never a JSON blob or an escaped `\n`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alarm::Alarm;
use crate::incident::{IncidentKey, Notice};
use crate::routing::Route;
use crate::text::{SNS_ATTRIBUTES_RESERVE, SNS_MESSAGE_BYTES, truncate};

/// The SNS message attributes every message the product publishes carries, so that a
/// subscription's filter policy can send pages to a pager and information to e-mail.
pub const ATTRIBUTE_NAMES: [&str; 4] = ["severity", "state", "route", "kind"];

/// How much of one instance's evidence a page quotes.
const EVIDENCE_BYTES: usize = 4096;
/// From how many instances a page quotes evidence.
const MAX_EVIDENCE_QUOTES: usize = 20;
/// How much of an alarm's reason, description or an error's message a page quotes.
const TEXT_BYTES: usize = 8192;

/// What a message is for: the `kind` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MessageKind {
    /// Automation could not fix the alarm, or could not start: a human must act now.
    Escalation,
    /// An incident route's alarm, sent to SNS because no Incident Manager response plan is set.
    Incident,
    /// A notify route's alarm: for information.
    Notification,
    /// The alarm is back to OK, fixed by automation or on its own.
    Recovery,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Escalation => "escalation",
            Self::Incident => "incident",
            Self::Notification => "notification",
            Self::Recovery => "recovery",
        }
    }
}

/// The values of [`ATTRIBUTE_NAMES`] for one message.
pub fn attributes(route: &Route, alarm: &Alarm, kind: MessageKind) -> [(&'static str, String); 4] {
    [
        ("severity", route.severity.as_str().to_owned()),
        ("state", alarm.state.as_str().to_owned()),
        ("route", route.name.clone()),
        ("kind", kind.as_str().to_owned()),
    ]
}

/// A message to publish: an SNS subject and a plain-text body within SNS's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub subject: String,
    pub message: String,
    /// True when the page must not be published: its alarm's group has paged (or will announce
    /// the recovery) already. The state machine skips the publish; `why` says so in its history.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What kept the page quiet, when it is suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<Suppression>,
    /// When the alarm's group paged already: the incident key whose escalation paged and opened
    /// the group's war room, where this escalation is posted instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_of: Option<String>,
}

impl Page {
    /// Marks the page as not to be published, and says why.
    pub fn suppress(&mut self, by: Suppression, why: String) {
        self.suppressed = true;
        self.suppressed_by = Some(by);
        self.why = Some(why);
    }
}

/// What keeps a page quiet: the noise controls, as decisions and replay summaries count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Suppression {
    /// The alarm's group has paged already (or announces the recovery itself).
    Grouped,
    /// An operator's silence matched the alarm.
    Silenced,
    /// A maintenance window of the rules covered the alarm.
    Maintenance,
    /// Another alarm in ALARM inhibits this one.
    Inhibited,
    /// The alarm flaps: its further changes are recorded quietly.
    Flapping,
}

/// The first-response document as the state machine hands it to `Write Page` and `Open War Room`:
/// the alarm, the route, what the failure counter and restart-and-verify reported, the error that
/// ended automation, and the Incident Manager record when one was opened. Every part but the
/// alarm, route, key and notice may be empty (`{}`), depending on where the execution stopped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDocument {
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

/// The failure counter's answer (`failures`), as far as people are told it.
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

/// A titled web link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// What the first-response execution did, as sentences and the evidence it kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutomationStory {
    /// Sentences, each plain text (one may span lines: an error's message).
    pub lines: Vec<String>,
    /// `(instance id, evidence text)`.
    pub evidence: Vec<(String, String)>,
}

impl AutomationStory {
    pub fn plain(&self) -> String {
        if self.lines.is_empty() { "nothing before escalating.".to_owned() } else { self.lines.join(" ") }
    }
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

impl ExecutionDocument {
    /// What automation did before giving up (or recovering), with the evidence it kept.
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
            let verdict = if remediation.verified == Some(true) {
                "verified by the alarm returning to OK"
            } else {
                "NOT verified"
            };
            story.lines.push(format!(
                "Restarted {} with SSM command {command} on {} instance(s): {verdict}.",
                self.service(),
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

    /// The alarm, the execution, the runbook and the Incident Manager console, where they are web links.
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
        links.retain(|link| link.url.starts_with("https://") || link.url.starts_with("http://"));
        links
    }

    /// The service the route restarts, as the report or the rules name it.
    fn service(&self) -> String {
        self.remediation
            .service
            .clone()
            .or_else(|| self.route.remediation.as_ref().map(|r| r.service.clone()))
            .unwrap_or_else(|| "the service".to_owned())
    }

    /// The page that tells people automation could not fix the alarm.
    pub fn escalation_page(&self) -> Page {
        let alarm = &self.alarm;
        let story = self.automation_story();
        let mut text = vec![
            format!("ESCALATED: {}", alarm.name),
            "Automation could not fix this alarm; a human is needed.".to_owned(),
            String::new(),
        ];
        text.extend(self.alarm_facts());
        text.push(String::new());
        text.push("What automation tried:".to_owned());
        if story.lines.is_empty() {
            text.push("- nothing before escalating.".to_owned());
        }
        text.extend(story.lines.iter().map(|line| format!("- {}", indent_continuation(&truncate(line, TEXT_BYTES)))));
        for (instance, evidence) in story.evidence.iter().take(MAX_EVIDENCE_QUOTES) {
            text.push(String::new());
            text.push(format!("Evidence from {instance}:"));
            text.push(indent(&truncate(evidence, EVIDENCE_BYTES)));
        }
        if let Some(more) = story.evidence.len().checked_sub(MAX_EVIDENCE_QUOTES).filter(|n| *n > 0) {
            text.push(format!("(Evidence from {more} more instance(s) is in the execution's output.)"));
        }
        text.push(String::new());
        text.extend(self.references());
        Page {
            subject: self.notice.escalated_subject.clone(),
            message: bounded(&text.join("\n")),
            suppressed: false,
            why: None,
            suppressed_by: None,
            room_of: None,
        }
    }

    /// The page that tells people automation fixed the alarm, verified by the alarm itself.
    pub fn recovery_page(&self) -> Page {
        let alarm = &self.alarm;
        let remediation = &self.remediation;
        let mut text = vec![
            format!("RECOVERED: {}", alarm.name),
            format!(
                "Automation restarted {} and the alarm itself returned to OK; nobody needs to act.",
                self.service()
            ),
            String::new(),
        ];
        if let Some(summary) = remediation.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            text.push(format!("Verification: {}.", truncate(summary, TEXT_BYTES)));
        }
        if let Some(command) = &remediation.command_id {
            text.push(format!("Command: {command}"));
        }
        for instance in &remediation.instances {
            let exit = instance.exit_code.map(|c| format!("exit code {c}")).unwrap_or_else(|| "no exit code".into());
            let state = if instance.active { "active" } else { "not active" };
            text.push(format!("- {}: {}, {exit}, {state}", instance.instance_id, instance.status));
        }
        text.push(String::new());
        text.extend(self.alarm_facts());
        text.push(String::new());
        text.extend(self.references());
        Page {
            subject: self.notice.recovered_subject.clone(),
            message: bounded(&text.join("\n")),
            suppressed: false,
            why: None,
            suppressed_by: None,
            room_of: None,
        }
    }

    /// What fired, since when, where, on which route.
    fn alarm_facts(&self) -> Vec<String> {
        let alarm = &self.alarm;
        let was = alarm.previous_state.map(|s| format!(", was {s}")).unwrap_or_default();
        let mut facts = vec![
            format!("What fired: {}", indent_continuation(&truncate(&alarm.reason, TEXT_BYTES))),
            format!("Since: {} ({}{was})", human_time(alarm.timestamp), alarm.state),
            format!(
                "Severity: {} · Route: {} · Account / region: {} / {}",
                self.route.severity.as_str(),
                self.route.name,
                alarm.account,
                alarm.region
            ),
        ];
        if let Some(description) = &alarm.description {
            facts.push(format!("Description: {}", indent_continuation(&truncate(description, TEXT_BYTES))));
        }
        facts
    }

    /// Where to look next.
    fn references(&self) -> Vec<String> {
        let mut lines = vec![
            format!("Alarm: {}", self.notice.alarm_url),
            format!("Execution: {}", self.notice.execution_url),
            format!("Runbook: {}", self.notice.runbook_url),
        ];
        if let Some(record) = &self.incident.incident_record_arn {
            lines.push(format!("Incident Manager record: {record}"));
        }
        lines.push(format!("Incident key: {}", self.incident_key));
        lines
    }
}

/// A whole message within what SNS accepts next to its attributes.
fn bounded(text: &str) -> String {
    truncate(text, SNS_MESSAGE_BYTES - SNS_ATTRIBUTES_RESERVE)
}

/// Every line of `text` indented by four spaces.
fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
}

/// The lines after the first indented, so a multi-line value stays under its label.
fn indent_continuation(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

fn human_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn number<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> ExecutionDocument {
        let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("document")
    }

    /// What a page must never show a person: JSON syntax or escaped line breaks.
    fn assert_readable(message: &str) {
        for raw in ["\\n", "{\"", "\"}", "\":", "[{", "Some("] {
            assert!(!message.contains(raw), "the page shows {raw:?}:\n{message}");
        }
    }

    #[test]
    fn an_escalation_page_tells_the_story_in_sentences_with_the_evidence_as_text() {
        // GIVEN an execution whose restart failed on one instance with a caught error
        let mut doc = document();
        doc.error = TaskError {
            error: Some("CommandTimedOut".into()),
            cause: Some(
                serde_json::json!({"errorType": "CommandTimedOut", "errorMessage":
                    "command c-1 timed out on i-0f1e2d3c4b5a69788 (TimedOut)\nEvidence:\n--- i-0a1b2c3d4e5f60718 (Success, exit code 0):\nActive: active (running)"})
                .to_string(),
            ),
        };
        // WHEN the page is written
        let page = doc.escalation_page();
        // THEN a person reads sentences and the evidence as indented text, never JSON
        assert_readable(&page.message);
        assert!(page.message.starts_with("ESCALATED: web-nginx-down\nAutomation could not fix this alarm"));
        assert!(page.message.contains("- i-0f1e2d3c4b5a69788: Failed, exit code 3, not active."), "{}", page.message);
        assert!(
            page.message.contains("- It failed with CommandTimedOut: command c-1 timed out on i-0f1e2d3c4b5a69788 (TimedOut)\n    Evidence:\n    --- i-0a1b2c3d4e5f60718 (Success, exit code 0):\n    Active: active (running)"),
            "{}",
            page.message
        );
        assert!(page.message.contains("Evidence from i-0f1e2d3c4b5a69788:\n    "), "{}", page.message);
        assert!(page.message.contains("Runbook: https://runbooks.example.com/web/nginx-down"), "{}", page.message);
        assert_eq!(page.subject, doc.notice.escalated_subject);
    }

    #[test]
    fn an_open_breaker_is_the_first_thing_the_page_says_automation_did() {
        let mut doc = document();
        doc.failures = FailureCount {
            count: Some(6),
            threshold: Some(5),
            window_seconds: Some(300),
            breaker_open: Some(true),
            reason: Some("6 failed runs of route web-nginx in 300s reached the threshold of 5".into()),
            ..FailureCount::default()
        };
        doc.remediation = RemediationEvidence::default();
        let page = doc.escalation_page();
        assert_readable(&page.message);
        assert!(
            page.message.contains(
                "What automation tried:\n- Nothing: the circuit breaker is open (6 failed runs of route web-nginx in the last 300s, threshold 5). 6 failed runs"
            ),
            "{}",
            page.message
        );
    }

    #[test]
    fn an_execution_that_stopped_before_anything_ran_still_pages_readably() {
        let mut doc = document();
        doc.remediation = RemediationEvidence::default();
        let page = doc.escalation_page();
        assert_readable(&page.message);
        assert!(page.message.contains("What automation tried:\n- nothing before escalating."), "{}", page.message);
    }

    #[test]
    fn a_recovery_page_says_nobody_needs_to_act_and_what_was_done() {
        let mut doc = document();
        doc.remediation.verified = Some(true);
        doc.remediation.summary = Some("nginx restarted and active on all 2 targets; the alarm is OK".into());
        for instance in &mut doc.remediation.instances {
            instance.active = true;
        }
        let page = doc.recovery_page();
        assert_readable(&page.message);
        assert!(page.message.starts_with("RECOVERED: web-nginx-down\nAutomation restarted nginx and the alarm itself returned to OK; nobody needs to act."), "{}", page.message);
        assert!(page.message.contains("- i-0a1b2c3d4e5f60718: Success, exit code 0, active"), "{}", page.message);
        assert_eq!(page.subject, doc.notice.recovered_subject);
    }

    #[test]
    fn a_page_fits_sns_whatever_the_alarm_and_the_evidence_say() {
        let mut doc = document();
        doc.alarm.reason = "r".repeat(300_000);
        doc.alarm.description = Some("d".repeat(300_000));
        for instance in &mut doc.remediation.instances {
            instance.evidence = "e\n".repeat(200_000);
        }
        doc.error = TaskError { error: Some("TargetUnreachable".into()), cause: Some("c".repeat(300_000)) };
        for page in [doc.escalation_page(), doc.recovery_page()] {
            assert!(page.message.len() <= SNS_MESSAGE_BYTES - SNS_ATTRIBUTES_RESERVE, "{}", page.message.len());
            assert!(page.message.contains("Incident key: "), "the links survive the cut");
        }
    }

    #[test]
    fn every_message_kind_has_the_four_attributes() {
        let doc = document();
        for kind in [MessageKind::Escalation, MessageKind::Incident, MessageKind::Notification, MessageKind::Recovery] {
            let attributes = attributes(&doc.route, &doc.alarm, kind);
            assert_eq!(attributes.clone().map(|(name, _)| name), ATTRIBUTE_NAMES);
            assert_eq!(attributes[3].1, kind.as_str());
            assert!(attributes.iter().all(|(_, value)| !value.is_empty()));
        }
    }
}
