//! What a war room shows: its topic and purpose, the pinned summary (Block Kit with a plain-text
//! fallback), its bookmarks, and the messages later PagerDuty events post to it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::escalation::{AutomationStory, Escalation, Link};
use crate::naming::RoomKey;
use crate::pagerduty::{Change, Incident, IncidentNote, Reference};
use crate::slack::{Metadata, MetadataPayload, Post};
use shared::text::{Measure, slack_escape as escape, slack_link_url, slack_text, truncate_chars as cut, truncate_to};

/// Metadata `event_type` of the pinned summary.
pub const SUMMARY_EVENT: &str = "war_room_summary";
/// Metadata `event_type` of the messages PagerDuty webhooks post.
pub const WEBHOOK_EVENT: &str = "pagerduty_webhook";
/// Metadata event type of an escalation posted into its group's room instead of paging.
pub const GROUP_ESCALATION_EVENT: &str = "group_escalation";
/// Every summary's fallback text starts with this, so it is recognised even without metadata.
pub const SUMMARY_PREFIX: &str = "War room: ";
/// Slack's limit on topics and purposes.
pub const MAX_TOPIC: usize = 250;
/// How much of each instance's evidence the summary quotes.
const EVIDENCE_QUOTE: usize = 700;
/// Slack's limit on a section's text.
const MAX_SECTION: usize = 3000;
/// Slack's limit on the blocks of one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a header's text.
const MAX_HEADER: usize = 150;

/// Everything needed to open (or converge) one incident's room.
#[derive(Debug, Clone, PartialEq)]
pub struct Brief {
    pub key: RoomKey,
    /// Names the incident in message metadata: `pagerduty:<id>` or the incident key.
    pub incident: String,
    pub topic: String,
    pub purpose: String,
    pub summary_text: String,
    pub summary_blocks: Vec<Value>,
    pub links: Vec<Link>,
    /// E-mail addresses to invite.
    pub responders: Vec<String>,
}

impl Brief {
    /// The room for a first-response escalation: the alarm, what automation tried, and its evidence.
    pub fn for_escalation(doc: &Escalation) -> Self {
        let alarm = &doc.alarm;
        let route = &doc.route;
        let severity = route.severity.as_str();
        let key = RoomKey::for_escalation(alarm.timestamp, doc.incident_key.as_str(), &alarm.name);
        let was = alarm.previous_state.map(|s| format!(", was {s}")).unwrap_or_default();
        let since = format!("{} ({}{was})", human_time(alarm.timestamp), alarm.state);
        let who = if route.responders.is_empty() {
            "paged via the alert topic".to_owned()
        } else {
            format!("on call: {}", route.responders.join(", "))
        };
        let story = doc.automation_story();
        // Only web links, made safe inside Slack's `<url|title>` and as bookmarks.
        let links: Vec<Link> =
            doc.links().into_iter().filter_map(|l| Some(Link { url: slack_link_url(&l.url)?, ..l })).collect();

        let mut text = vec![
            format!("{SUMMARY_PREFIX}{} (escalated: automation could not fix it)", alarm.name),
            format!("What fired: {}", alarm.reason),
            format!("Since: {since}"),
            format!(
                "Severity: {severity} · Route: {} · Account / region: {} / {}",
                route.name, alarm.account, alarm.region
            ),
        ];
        if let Some(description) = &alarm.description {
            text.push(format!("Description: {description}"));
        }
        text.push(format!("What automation tried: {}", story.plain()));
        text.extend(links.iter().map(|l| format!("{}: {}", l.title, l.url)));
        if let Some(record) = &doc.incident.incident_record_arn {
            text.push(format!("Incident Manager record: {record}"));
        }
        text.push(format!("Incident key: {}", doc.incident_key));

        let mut fields = vec![
            ("Severity", severity.to_owned()),
            ("Since", since.clone()),
            ("Route", format!("`{}` ({})", route.name, action_name(route.action))),
            ("Account / region", format!("{} / {}", alarm.account, alarm.region)),
        ];
        if let Some(metric) = metric_line(doc) {
            fields.push(("Metric", metric));
        }
        fields.push(("Incident key", format!("`{}`", doc.incident_key)));
        if let Some(record) = &doc.incident.incident_record_arn {
            fields.push(("Incident Manager record", format!("`{record}`")));
        }
        let mut fired = format!("*What fired*\n{}", slack_text(&alarm.reason, MAX_SECTION / 2));
        if let Some(description) = &alarm.description {
            fired.push_str(&format!("\n_{}_", slack_text(description, MAX_SECTION / 3)));
        }
        let mut blocks = vec![
            header(&format!(":rotating_light: {}: automation could not fix it", alarm.name)),
            fields_block(&fields),
            section(&fired),
            section(&format!("*What automation tried*\n{}", story_mrkdwn(&story))),
        ];
        // Slack takes at most 50 blocks a message: quote what fits, and say how much does not.
        let room = MAX_BLOCKS - blocks.len() - 2;
        blocks.extend(story.evidence.iter().take(room).map(|(instance, evidence)| {
            section(&format!("*Evidence from `{instance}`*\n```{}```", escape(&cut(evidence, EVIDENCE_QUOTE))))
        }));
        if story.evidence.len() > room {
            let more = story.evidence.len() - room;
            blocks.push(section(&format!("_Evidence from {more} more instance(s) is in the execution's output._")));
        }
        blocks.push(links_block(&links));

        Self {
            purpose: fit(&format!(
                "Alarm {} in {} / {}: automation could not fix it (route {})",
                alarm.name, alarm.account, alarm.region, route.name
            )),
            topic: fit(&format!("{} · escalated: automation could not fix it · {who}", severity.to_uppercase())),
            key,
            incident: doc.incident_key.to_string(),
            summary_text: slack_text(&text.join("\n"), MAX_SECTION),
            summary_blocks: blocks,
            links,
            responders: route.responders.clone(),
        }
    }

    /// The room for a PagerDuty incident; `responders` are its assignees' e-mail addresses.
    pub fn for_pagerduty(incident: &Incident, responders: Vec<String>) -> Self {
        let number = incident.number.map(|n| format!("#{n} ")).unwrap_or_default();
        let since = human_time(incident.since());
        let links = pagerduty_links(incident);
        let status = pagerduty_status(incident);
        let mut text = vec![
            format!("{SUMMARY_PREFIX}PagerDuty {number}{}", incident.title),
            format!("Status: {status}"),
            format!("Since: {since}"),
        ];
        if let Some(service) = &incident.service {
            text.push(format!("Service: {}", service.summary));
        }
        text.push(format!("Assigned: {}", assigned(incident)));
        text.extend(links.iter().map(|l| format!("{}: {}", l.title, l.url)));

        let fields = vec![
            ("Priority", incident.priority.as_ref().map(|p| p.summary.clone()).unwrap_or_else(|| "none".to_owned())),
            ("Urgency", incident.urgency.clone().unwrap_or_else(|| "unknown".to_owned())),
            ("Status", incident.status.clone()),
            ("Since", since.clone()),
            ("Service", incident.service.as_ref().map(|s| s.summary.clone()).unwrap_or_else(|| "unknown".to_owned())),
            ("Assigned", assigned(incident)),
        ];
        let blocks = vec![
            header(&format!(":rotating_light: PagerDuty {number}{}", incident.title)),
            fields_block(&fields),
            links_block(&links),
        ];
        Self {
            key: RoomKey::new(incident.since(), &incident.id, &incident.title),
            incident: pagerduty_ref(&incident.id),
            topic: pagerduty_topic(incident),
            purpose: fit(&format!("PagerDuty incident {number}{}", incident.title)),
            summary_text: slack_text(&text.join("\n"), MAX_SECTION),
            summary_blocks: blocks,
            links,
            responders,
        }
    }

    /// The summary message, tagged so a retry recognises it.
    pub fn summary(&self, webhook_id: Option<&str>) -> Post {
        Post {
            text: self.summary_text.clone(),
            blocks: self.summary_blocks.clone(),
            metadata: metadata(SUMMARY_EVENT, &self.incident, webhook_id),
        }
    }
}

/// The automation story as Slack mrkdwn: one escaped bullet per sentence.
fn story_mrkdwn(story: &AutomationStory) -> String {
    if story.lines.is_empty() {
        return "Nothing before escalating.".to_owned();
    }
    cut(&story.lines.iter().map(|l| format!("• {}", escape(l))).collect::<Vec<_>>().join("\n"), MAX_SECTION - 40)
}

/// The message a group member's escalation posts into the group's room (it pages no one): what
/// fired, what automation tried, and the evidence, escaped and cut to what Slack shows in full.
pub fn group_escalation_post(doc: &Escalation) -> Post {
    let alarm = &doc.alarm;
    let story = doc.automation_story();
    let mut lines = vec![format!(
        ":rotating_light: Also escalated in this group (no new page): *{}* on route {}, {} since {}.",
        escape(&alarm.name),
        escape(&doc.route.name),
        alarm.state,
        human_time(alarm.timestamp)
    )];
    lines.push(format!("What fired: {}", escape(&alarm.reason)));
    lines.extend(story.lines.iter().map(|l| format!("• {}", escape(l))));
    lines.extend(
        story
            .evidence
            .iter()
            .take(5)
            .map(|(instance, text)| format!("• {}: {}", escape(instance), escape(&cut(text, EVIDENCE_QUOTE / 2)))),
    );
    if story.evidence.len() > 5 {
        lines.push(format!("• … and the evidence of {} more instance(s) in the execution", story.evidence.len() - 5));
    }
    Post {
        text: cut(&lines.join("\n"), MAX_SECTION),
        blocks: Vec::new(),
        metadata: metadata(GROUP_ESCALATION_EVENT, doc.incident_key.as_str(), None),
    }
}

/// `pagerduty:<id>`: how webhook messages name the incident in their metadata.
pub fn pagerduty_ref(id: &str) -> String {
    format!("pagerduty:{id}")
}

/// `P1 · high urgency · acknowledged · on it: Alice` (at most 250 characters).
pub fn pagerduty_topic(incident: &Incident) -> String {
    let priority = incident.priority.as_ref().map(|p| p.summary.as_str()).filter(|p| !p.is_empty());
    let mut parts = vec![priority.unwrap_or("no priority").to_owned()];
    if let Some(urgency) = &incident.urgency {
        parts.push(format!("{urgency} urgency"));
    }
    parts.push(pagerduty_status(incident));
    parts.push(if incident.assignees.is_empty() {
        "unassigned".to_owned()
    } else {
        format!("on it: {}", assigned(incident))
    });
    fit(&parts.join(" · "))
}

/// The message a PagerDuty change posts.
pub fn change_post(change: Change, incident: &Incident, agent: Option<&Reference>, webhook_id: &str) -> Post {
    let by = agent_name(agent);
    let text = format!(
        ":arrows_counterclockwise: {by} {} the incident. Status: {} · Priority: {} · Assigned: {}",
        change.verb(),
        pagerduty_status(incident),
        incident.priority.as_ref().map(|p| p.summary.as_str()).unwrap_or("none"),
        assigned(incident),
    );
    webhook_post(&text, &incident.id, webhook_id)
}

/// The message a PagerDuty note posts.
pub fn note_post(note: &IncidentNote, agent: Option<&Reference>, webhook_id: &str) -> Post {
    let text = format!(":memo: Note from {}: {}", agent_name(agent), note.content);
    webhook_post(&text, &note.incident.id, webhook_id)
}

/// The message a resolution posts.
pub fn resolved_post(incident: &Incident, agent: Option<&Reference>, archiving: bool, webhook_id: &str) -> Post {
    let mut text = format!(":white_check_mark: Resolved by {}.", agent_name(agent));
    if let Some(reason) = incident.resolve_reason.as_deref().filter(|r| !r.is_empty()) {
        text.push_str(&format!(" Reason: {reason}."));
    }
    if archiving {
        text.push_str(" This room is archived now; it comes back if the incident reopens.");
    }
    webhook_post(&text, &incident.id, webhook_id)
}

/// The message a reopened incident posts.
pub fn reopened_post(incident: &Incident, agent: Option<&Reference>, webhook_id: &str) -> Post {
    let text = format!(
        ":leftwards_arrow_with_hook: Reopened by {}. Status: {} · Assigned: {}",
        agent_name(agent),
        pagerduty_status(incident),
        assigned(incident)
    );
    webhook_post(&text, &incident.id, webhook_id)
}

/// A message for a room, from webhook text: escaped, so nothing PagerDuty carries can mention or
/// link, and cut to what Slack shows in full.
fn webhook_post(text: &str, incident_id: &str, webhook_id: &str) -> Post {
    Post {
        text: slack_text(text, MAX_SECTION),
        blocks: Vec::new(),
        metadata: metadata(WEBHOOK_EVENT, &pagerduty_ref(incident_id), Some(webhook_id)),
    }
}

fn metadata(event_type: &str, incident: &str, webhook_id: Option<&str>) -> Metadata {
    Metadata {
        event_type: event_type.to_owned(),
        event_payload: MetadataPayload {
            incident: Some(incident.to_owned()),
            webhook_id: webhook_id.map(str::to_owned),
        },
    }
}

fn pagerduty_status(incident: &Incident) -> String {
    if incident.status.is_empty() { "unknown status".to_owned() } else { incident.status.clone() }
}

fn assigned(incident: &Incident) -> String {
    let names: Vec<&str> = incident
        .assignees
        .iter()
        .map(|a| if a.summary.is_empty() { a.id.as_str() } else { a.summary.as_str() })
        .collect();
    if names.is_empty() { "nobody".to_owned() } else { names.join(", ") }
}

fn agent_name(agent: Option<&Reference>) -> String {
    agent.map(|a| a.summary.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| "PagerDuty".to_owned())
}

fn pagerduty_links(incident: &Incident) -> Vec<Link> {
    let mut links = Vec::new();
    let mut push = |title: String, url: Option<&String>| {
        if let Some(url) = url.and_then(|u| slack_link_url(u)) {
            links.push(Link { title, url });
        }
    };
    push("PagerDuty incident".to_owned(), incident.html_url.as_ref());
    if let Some(service) = &incident.service {
        push(format!("Service: {}", service.summary), service.html_url.as_ref());
    }
    if let Some(bridge) = &incident.conference_bridge {
        push("Conference bridge".to_owned(), bridge.conference_url.as_ref());
    }
    links
}

fn metric_line(doc: &Escalation) -> Option<String> {
    let alarm = &doc.alarm;
    match (&alarm.namespace, &alarm.metric_name) {
        (Some(namespace), Some(name)) => {
            let dimensions: Vec<String> = alarm.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Some(format!("{namespace} {name} {}", dimensions.join(" ")).trim_end().to_owned())
        }
        _ => alarm.alarm_rule.as_ref().map(|rule| format!("composite: {}", cut(rule, 300))),
    }
}

/// Only web links become bookmarks ("none configured for this route" is not one).
pub fn is_web_link(text: &str) -> bool {
    slack_link_url(text).is_some()
}

fn action_name(action: shared::Action) -> &'static str {
    match action {
        shared::Action::Remediate => "remediate",
        shared::Action::Incident => "incident",
        shared::Action::Notify => "notify",
        shared::Action::Ignore => "ignore",
    }
}

fn human_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": cut(text, MAX_HEADER), "emoji": true}})
}

fn section(mrkdwn: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(mrkdwn, MAX_SECTION)}})
}

fn fields_block(fields: &[(&str, String)]) -> Value {
    let fields: Vec<Value> = fields
        .iter()
        .take(10)
        .map(|(name, value)| json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", slack_text(value, 1900))}))
        .collect();
    json!({"type": "section", "fields": fields})
}

fn links_block(links: &[Link]) -> Value {
    let text = links
        .iter()
        .filter_map(|l| Some(format!("<{}|{}>", slack_link_url(&l.url)?, escape(&l.title))))
        .collect::<Vec<_>>();
    let text = if text.is_empty() { "No links".to_owned() } else { text.join("  ·  ") };
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&text, MAX_SECTION)}]})
}

/// Escaped for Slack, on one line, in at most 250 UTF-16 units (what Slack counts for topics and
/// purposes).
pub fn fit(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_to(&escape(&one_line), MAX_TOPIC, Measure::Utf16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_never_has_more_blocks_than_slack_takes() {
        // GIVEN a tag route whose restart failed on 120 instances, each with evidence
        let path = format!("{}/../../events/slack-channel-creator/escalation.json", env!("CARGO_MANIFEST_DIR"));
        let mut doc: Escalation = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("doc");
        let failed = doc.remediation.instances[1].clone();
        doc.remediation.instances = (0..120)
            .map(|n| crate::escalation::InstanceEvidence { instance_id: format!("i-{n:017x}"), ..failed.clone() })
            .collect();
        // WHEN the summary is built
        let brief = Brief::for_escalation(&doc);
        // THEN it fits in one message and says what it left out
        assert!(brief.summary_blocks.len() <= MAX_BLOCKS, "{} blocks", brief.summary_blocks.len());
        let text = Value::Array(brief.summary_blocks.clone()).to_string();
        assert!(text.contains("more instance(s) is in the execution"), "{text}");
    }

    #[test]
    fn topics_fit_slack_whatever_the_title() {
        for text in ["x".repeat(400), "🔥".repeat(200), format!("line\nbreak {}", "é".repeat(300))] {
            let topic = fit(&text);
            assert!(topic.encode_utf16().count() <= MAX_TOPIC, "{} units", topic.encode_utf16().count());
            assert!(!topic.contains('\n'));
        }
        assert_eq!(fit("short  and\nsweet"), "short and sweet");
    }
}
