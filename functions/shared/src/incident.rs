//! The incident document the state machine carries, and the key that makes every step idempotent.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alarm::Alarm;
use crate::routing::Route;

/// Step Functions' limit on execution names.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;
const HASH_HEX_LEN: usize = 20;
const SEPARATOR: &str = "__";

/// The stable key of one alarm transition.
///
/// `<route>__<alarm-slug>__<hash>`: the hash covers the alarm ARN, the new state and its
/// timestamp, so a redelivered event maps to the same key and a new transition to a new one.
/// It is a valid execution name (at most 80 characters of `[A-Za-z0-9_-]`, which also keeps
/// CloudWatch logging of executions possible), the Incident Manager `clientToken`, and it starts
/// with the route name so executions can be counted per route from `ListExecutions` alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentKey(String);

impl IncidentKey {
    /// The key of this alarm's current transition on the given route.
    pub fn for_transition(route_name: &str, alarm: &Alarm) -> Self {
        let digest = Sha256::digest(format!("{}\n{}\n{}", alarm.arn, alarm.state, alarm.timestamp_rfc3339()));
        let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..HASH_HEX_LEN].to_owned();
        let room = MAX_EXECUTION_NAME_LEN.saturating_sub(route_name.len() + HASH_HEX_LEN + 2 * SEPARATOR.len());
        let slug = slug(&alarm.name, room);
        Self(format!("{route_name}{SEPARATOR}{slug}{SEPARATOR}{hash}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What every key of this alarm on this route starts with, whatever the transition:
    /// `<route>__<alarm-slug>__`.
    pub fn alarm_prefix(route_name: &str, alarm: &Alarm) -> String {
        let key = Self::for_transition(route_name, alarm);
        let cut = key.0.len() - HASH_HEX_LEN;
        key.0[..cut].to_owned()
    }

    /// This key, made distinct per Incident Manager record it acts on (at most 108 characters,
    /// within the 128 a client token may have).
    pub fn for_record(&self, record_arn: &str) -> String {
        let digest = Sha256::digest(record_arn.as_bytes());
        let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}-{hash}", self.0)
    }

    /// The route an execution (named by its key) was started for.
    pub fn route_of(execution_name: &str) -> Option<&str> {
        execution_name.split_once(SEPARATOR).map(|(route, _)| route)
    }
}

impl std::fmt::Display for IncidentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[A-Za-z0-9-]` only, runs of anything else folded into one `-`, at most `max` characters.
fn slug(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(max);
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() { "alarm".chars().take(max).collect() } else { trimmed.to_owned() }
}

/// An SNS subject: printable ASCII on one line, at most 100 characters.
pub fn sns_subject(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect::<String>()
        .trim()
        .to_owned();
    if clean.len() <= 100 { clean } else { format!("{}...", &clean[..97]) }
}

/// Ready-made subjects and links for the state machine's notifications, so it never has to cut
/// text or build URLs itself, and every value it formats exists whichever path it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub recovered_subject: String,
    pub escalated_subject: String,
    pub alarm_url: String,
    pub execution_url: String,
    /// The route's runbook, or a sentence saying there is none.
    pub runbook_url: String,
}

impl Notice {
    pub fn new(alarm: &Alarm, route: &Route, execution_arn: &str) -> Self {
        let region = execution_arn.split(':').nth(3).filter(|r| !r.is_empty()).unwrap_or(&alarm.region);
        Self {
            recovered_subject: sns_subject(&format!("[RECOVERED] {} (automation restarted it)", alarm.name)),
            escalated_subject: sns_subject(&format!("[ESCALATED] {}: automation could not fix it", alarm.name)),
            alarm_url: alarm.console_url(),
            execution_url: format!(
                "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
            ),
            runbook_url: route.runbook_url.clone().unwrap_or_else(|| "none configured for this route".to_owned()),
        }
    }
}

/// The ARN Step Functions gives the execution of `state_machine_arn` named `key`.
pub fn execution_arn(state_machine_arn: &str, key: &IncidentKey) -> String {
    format!("{}:{key}", state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
}

/// The document the first-response state machine starts with; each task adds its own key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstResponseInput {
    pub alarm: Alarm,
    pub route: Route,
    pub incident_key: IncidentKey,
    pub notice: Notice,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::{AlarmKind, AlarmState};
    use std::collections::BTreeMap;

    fn alarm(name: &str, timestamp: &str) -> Alarm {
        Alarm {
            name: name.to_owned(),
            arn: format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            kind: AlarmKind::Metric,
            state: AlarmState::Alarm,
            previous_state: Some(AlarmState::Ok),
            reason: "Threshold Crossed".into(),
            timestamp: timestamp.parse().expect("timestamp"),
            description: None,
            namespace: None,
            metric_name: None,
            dimensions: BTreeMap::new(),
            alarm_rule: None,
            actions_suppressed_by: None,
            tags: BTreeMap::new(),
        }
    }

    fn is_execution_name(name: &str) -> bool {
        name.len() <= MAX_EXECUTION_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn the_same_transition_always_gets_the_same_key() {
        let a = IncidentKey::for_transition("web", &alarm("web-nginx-down", "2026-11-20T04:02:11.309Z"));
        let b = IncidentKey::for_transition("web", &alarm("web-nginx-down", "2026-11-20T04:02:11.309Z"));
        let later = IncidentKey::for_transition("web", &alarm("web-nginx-down", "2026-11-20T04:09:11.309Z"));
        assert_eq!(a, b);
        assert_ne!(a, later);
        assert!(a.as_str().starts_with("web__web-nginx-down__"), "{a}");
    }

    #[test]
    fn hostile_and_long_alarm_names_give_valid_execution_names() {
        let names = [
            "x".repeat(255),
            "a b<c>{d}[e]?f*g\"h#i%j\\k^l|m~n`o$p&q,r;s:t/u".to_owned(),
            "$(reboot); rm -rf / #".to_owned(),
            "🔥🔥🔥".to_owned(),
            "Ünïcödé alarm — prod".to_owned(),
            "\n\t".to_owned(),
        ];
        for name in names {
            let key =
                IncidentKey::for_transition("a-route-name-of-32-characters-xx", &alarm(&name, "2026-11-20T04:02:11Z"));
            assert!(is_execution_name(key.as_str()), "{name:?} gave {key}");
            assert_eq!(IncidentKey::route_of(key.as_str()), Some("a-route-name-of-32-characters-xx"));
        }
    }

    #[test]
    fn every_transition_of_an_alarm_shares_its_prefix_and_records_get_their_own_tokens() {
        let alarm = alarm("web-nginx-down", "2026-11-20T04:02:11.309Z");
        let key = IncidentKey::for_transition("web", &alarm);
        let later = IncidentKey::for_transition("web", &self::alarm("web-nginx-down", "2026-11-20T05:00:00Z"));
        let prefix = IncidentKey::alarm_prefix("web", &alarm);
        assert_eq!(prefix, "web__web-nginx-down__");
        assert!(key.as_str().starts_with(&prefix) && later.as_str().starts_with(&prefix));
        assert_ne!(key.for_record("arn:a"), key.for_record("arn:b"));
        assert!(key.for_record("arn:a").len() <= 128);
    }

    #[test]
    fn subjects_fit_sns() {
        let route = crate::Routes::from_yaml("rules: []").expect("routes").route(&alarm("a", "2026-11-20T04:02:11Z"));
        let long = alarm(&format!("line\nbreak {}", "é".repeat(200)), "2026-11-20T04:02:11Z");
        let notice = Notice::new(&long, &route, "arn:aws:states:eu-west-1:1:execution:sm:k");
        assert_eq!(notice.runbook_url, "none configured for this route");
        assert!(
            notice.execution_url.starts_with("https://eu-west-1.console.aws.amazon.com/states/"),
            "{}",
            notice.execution_url
        );
        for subject in [notice.recovered_subject, notice.escalated_subject] {
            assert!(subject.len() <= 100, "{subject}");
            assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{subject:?}");
        }
    }
}
