//! Silences: "do not page for, or act on, these alarms until then", set by an operator.
//!
//! A silence matches alarms with the rules' own `match` syntax, optionally only on one route, for
//! a bounded time, and says who set it and why. While one matches, an ALARM neither pages nor
//! starts automation (unless the silence lets automation continue, and then its escalation does
//! not page); the decision names the silence. Recoveries are never silenced: whatever paged a
//! human gets its recovery, and an ALARM that a silence kept quiet gets none.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alarm::Alarm;
use crate::routing::Match;

/// The longest a silence may last: a silence forgotten for ever is an outage nobody hears of.
pub const MAX_SILENCE_DAYS: i64 = 14;

/// One silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Silence {
    pub id: String,
    /// Conditions on the alarm, as in the rules; every one given must hold.
    #[serde(default, rename = "match", skip_serializing_if = "Match::is_empty")]
    pub conditions: Match,
    /// Only alarms the rules send to this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub author: String,
    pub reason: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Let remediation run while no one is paged.
    #[serde(default)]
    pub allow_automation: bool,
}

impl Silence {
    /// Checks what an operator gave: a reason and an author, at least one condition, a regex that
    /// compiles, and an end after the start, at most [`MAX_SILENCE_DAYS`] later.
    pub fn validate(&self) -> Result<(), String> {
        if self.author.trim().is_empty() || self.reason.trim().is_empty() {
            return Err("a silence says who set it (author) and why (reason)".into());
        }
        if self.conditions.is_empty() && self.route.is_none() {
            return Err("a silence needs a route or at least one condition: it would silence every alarm".into());
        }
        self.conditions.check()?;
        if self.ends_at <= self.starts_at {
            return Err(format!("the silence ends ({}) before it starts ({})", self.ends_at, self.starts_at));
        }
        if self.ends_at - self.starts_at > chrono::Duration::days(MAX_SILENCE_DAYS) {
            return Err(format!("a silence lasts at most {MAX_SILENCE_DAYS} days"));
        }
        Ok(())
    }

    /// Whether the silence holds at `at`.
    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    /// Whether it silences `alarm` on `route` at the alarm's own time.
    pub fn silences(&self, route: &str, alarm: &Alarm) -> bool {
        self.is_active(alarm.timestamp)
            && self.route.as_deref().is_none_or(|r| r == route)
            && self.conditions.matches(alarm)
    }
}

/// The first active silence in `silences` that silences `alarm` on `route`.
pub fn silencing<'a>(silences: &'a [Silence], route: &str, alarm: &Alarm) -> Option<&'a Silence> {
    silences.iter().find(|s| s.silences(route, alarm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(name: &str, at: &str) -> Alarm {
        let path = format!("{}/../../events/alarm-router/metric-alarm.json", env!("CARGO_MANIFEST_DIR"));
        let mut event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
        event["detail"]["alarmName"] = serde_json::Value::from(name);
        event["detail"]["state"]["timestamp"] = serde_json::Value::from(at);
        Alarm::from_event(&event).expect("alarm")
    }

    fn silence(yaml: &str) -> Silence {
        serde_yaml_ng::from_str(&format!(
            "id: s-1\nauthor: alice\nreason: patching\nstartsAt: 2026-11-20T22:00:00Z\nendsAt: 2026-11-21T02:00:00Z\n{yaml}"
        ))
        .expect("silence")
    }

    #[test]
    fn a_silence_holds_for_its_alarms_on_its_route_and_only_while_it_lasts() {
        let web = silence("match: { alarmName: { prefix: web- } }\nroute: web-nginx");
        let cases = [
            ("web-nginx-down", "2026-11-20T23:00:00.000+0000", "web-nginx", true),
            ("web-nginx-down", "2026-11-20T21:59:59.000+0000", "web-nginx", false), // before
            ("web-nginx-down", "2026-11-21T02:00:00.000+0000", "web-nginx", false), // the end is exclusive
            ("web-nginx-down", "2026-11-20T23:00:00.000+0000", "default", false),   // another route
            ("api-down", "2026-11-20T23:00:00.000+0000", "web-nginx", false),       // another alarm
        ];
        for (name, at, route, expected) in cases {
            assert_eq!(web.silences(route, &alarm(name, at)), expected, "{name} at {at} on {route}");
        }
        let by_dimension = silence("match: { dimensions: { AutoScalingGroupName: web } }");
        assert!(by_dimension.silences("any", &alarm("x", "2026-11-20T23:00:00.000+0000")));
    }

    #[test]
    fn what_an_operator_gives_is_checked() {
        assert!(silence("route: web-nginx").validate().is_ok());
        let cases = [
            ("route: web-nginx\nallowAutomation: maybe", None),
            ("", Some("every alarm")),
            ("match: { alarmName: { regex: \"(\" } }", Some("regex")),
        ];
        for (yaml, error) in cases {
            let parsed: Result<Silence, _> = serde_yaml_ng::from_str(&format!(
                "id: s-1\nauthor: alice\nreason: patching\nstartsAt: 2026-11-20T22:00:00Z\nendsAt: 2026-11-21T02:00:00Z\n{yaml}"
            ));
            match (parsed, error) {
                (Err(_), None) => {}
                (Ok(s), Some(error)) => assert!(s.validate().expect_err(yaml).contains(error), "{yaml}"),
                (other, _) => panic!("{yaml}: {other:?}"),
            }
        }
        let mut long = silence("route: web-nginx");
        long.ends_at = long.starts_at + chrono::Duration::days(MAX_SILENCE_DAYS + 1);
        assert!(long.validate().is_err());
        let mut backwards = silence("route: web-nginx");
        backwards.ends_at = backwards.starts_at;
        assert!(backwards.validate().is_err());
        let mut anonymous = silence("route: web-nginx");
        anonymous.author = " ".into();
        assert!(anonymous.validate().is_err());
    }
}
