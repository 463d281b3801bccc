//! Inhibition: "while alarm(s) matching X are in ALARM, do not page for alarms matching Y".
//!
//! A region-level or composite alarm that says "the dependency is down" makes the per-host alarms
//! it causes noise: the page that matters is its own. An inhibition rule names the inhibiting
//! alarms (`whileAlarm`, the rules' match conditions) and the inhibited ones (`routes` and/or
//! `match`). The state table keeps, per rule, the inhibiting alarms now in ALARM (the router adds
//! one on its ALARM and removes it on its OK); while that set is not empty, an inhibited alarm's
//! ALARM acts as a silence named `inhibit:<rule>`: no page, no automation (unless the rule allows
//! it), and no recovery notice later for an ALARM that was never announced. An alarm never inhibits
//! itself, and whatever paged before the inhibition started still gets its recovery.
//!
//! `equal: [Dimension, ...]` narrows a rule as Alertmanager's `equal` does: an inhibiting alarm
//! mutes only the alarms whose values of those dimensions are the same as its own (a dimension an
//! alarm lacks counts as the empty value), so one zone's outage mutes only that zone's alarms.

use serde::Deserialize;

use crate::alarm::Alarm;
use crate::routing::Match;
use crate::silence::Silence;

/// The prefix of the id an inhibition takes in decisions.
pub const INHIBIT_ID_PREFIX: &str = "inhibit:";

/// An inhibition rule as written in the rules file (and, once validated, as used).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inhibition {
    pub name: String,
    /// The inhibiting alarms: while any alarm matching this is in ALARM, the rule holds.
    pub while_alarm: Match,
    /// The inhibited alarms' routes; any route when absent (then `match` must narrow it).
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// Conditions on the inhibited alarms; every one given must hold.
    #[serde(default, rename = "match")]
    pub conditions: Match,
    /// Let remediation of inhibited alarms run (their escalations still page no one).
    #[serde(default)]
    pub allow_automation: bool,
    /// Dimensions whose values the inhibiting and the inhibited alarm must share.
    #[serde(default)]
    pub equal: Vec<String>,
}

impl Inhibition {
    /// Checks the rule; `rules` are the route names it may name.
    pub fn validate(&self, rules: &[&str]) -> Result<(), String> {
        crate::routing::check_item_name(&self.name)?;
        if self.while_alarm.is_empty() {
            return Err("whileAlarm needs at least one condition: every alarm would inhibit".into());
        }
        self.while_alarm.check().map_err(|e| format!("whileAlarm: {e}"))?;
        self.conditions.check().map_err(|e| format!("match: {e}"))?;
        if let Some(bad) = self.equal.iter().find(|d| d.trim().is_empty() || d.len() > 255) {
            return Err(format!("equal: {bad:?} is not a dimension name (1 to 255 characters)"));
        }
        match &self.routes {
            Some(routes) if routes.is_empty() => {
                return Err("routes, when given, names at least one rule".into());
            }
            Some(routes) => {
                if let Some(unknown) = routes.iter().find(|r| !rules.contains(&r.as_str())) {
                    return Err(format!("routes: no rule is named {unknown:?}"));
                }
            }
            None if self.conditions.is_empty() => {
                return Err("give routes or match for the inhibited alarms: it would inhibit every alarm".into());
            }
            None => {}
        }
        Ok(())
    }

    /// Whether `alarm` is one of the inhibiting alarms.
    pub fn inhibits_with(&self, alarm: &Alarm) -> bool {
        self.while_alarm.matches(alarm)
    }

    /// Which of the rule's scopes `alarm` belongs to: the values of the `equal` dimensions, in the
    /// rule's order (empty when the rule has none). Inhibiting and inhibited alarms of the same
    /// scope meet; others never do.
    pub fn scope(&self, alarm: &Alarm) -> String {
        self.equal
            .iter()
            .map(|name| format!("{name}={}", alarm.dimensions.get(name).map(String::as_str).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether `alarm`, routed to `route`, is one this rule inhibits (while it holds).
    pub fn applies_to(&self, route: &str, alarm: &Alarm) -> bool {
        self.routes.as_ref().is_none_or(|routes| routes.iter().any(|r| r == route)) && self.conditions.matches(alarm)
    }

    /// The rule as a silence of `alarm` on `route`, given the inhibiting alarms now in ALARM
    /// (`firing`, by ARN): `None` when none fires but the alarm itself.
    pub fn silence_for(&self, route: &str, alarm: &Alarm, firing: &[String]) -> Option<Silence> {
        let by = firing.iter().find(|arn| **arn != alarm.arn)?;
        let name = by.rsplit(':').next().unwrap_or(by);
        Some(Silence {
            id: format!("{INHIBIT_ID_PREFIX}{}", self.name),
            conditions: self.conditions.clone(),
            route: Some(route.to_owned()),
            author: "the rules file".into(),
            reason: format!("inhibited by {name} (in ALARM), rule {}", self.name),
            starts_at: alarm.timestamp,
            // Until the inhibiting alarm clears; a silence needs an end, so a bounded one.
            ends_at: alarm.timestamp + chrono::Duration::days(1),
            allow_automation: self.allow_automation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(name: &str) -> Alarm {
        let event = serde_json::json!({
            "version": "0", "id": "1", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": "123456789012", "time": "2026-11-20T04:00:00Z", "region": "eu-west-1",
            "resources": [format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}")],
            "detail": {"alarmName": name, "state": {"value": "ALARM", "reason": "r", "timestamp": "2026-11-20T04:00:00.000+0000"},
                       "previousState": {"value": "OK", "reason": "r", "timestamp": "2026-11-19T04:00:00.000+0000"},
                       "configuration": {"metrics": []}}
        });
        Alarm::from_event(&event).expect("alarm")
    }

    fn rule(yaml: &str) -> Inhibition {
        serde_yaml_ng::from_str(yaml).expect("rule")
    }

    const REGION: &str = "name: region-outage\nwhileAlarm: { alarmName: { prefix: region- } }\nroutes: [web-nginx]\n";

    #[test]
    fn a_firing_region_alarm_inhibits_the_hosts_of_the_named_route_only() {
        let inhibition = rule(REGION);
        inhibition.validate(&["web-nginx", "storefront"]).expect("valid");
        let region = alarm("region-eu-west-1-unhealthy");
        let host = alarm("web-nginx-down-host-001");
        assert!(inhibition.inhibits_with(&region));
        assert!(!inhibition.inhibits_with(&host));
        assert!(inhibition.applies_to("web-nginx", &host));
        assert!(!inhibition.applies_to("storefront", &host));
        let silence = inhibition.silence_for("web-nginx", &host, std::slice::from_ref(&region.arn)).expect("inhibited");
        assert_eq!(silence.id, "inhibit:region-outage");
        assert!(silence.reason.contains("region-eu-west-1-unhealthy"), "{}", silence.reason);
        assert!(silence.silences("web-nginx", &host));
        assert!(inhibition.silence_for("web-nginx", &host, &[]).is_none(), "nothing fires: no inhibition");
    }

    #[test]
    fn with_equal_an_inhibiting_alarm_and_an_inhibited_one_meet_only_when_the_dimensions_agree() {
        let inhibition = rule(&format!("{REGION}equal: [AvailabilityZone]\n"));
        inhibition.validate(&["web-nginx"]).expect("valid");
        let mut zone_a = alarm("region-eu-west-1a-unhealthy");
        zone_a.dimensions.insert("AvailabilityZone".into(), "eu-west-1a".into());
        let mut host_a = alarm("web-nginx-down-host-001");
        host_a.dimensions.insert("AvailabilityZone".into(), "eu-west-1a".into());
        let mut host_b = alarm("web-nginx-down-host-002");
        host_b.dimensions.insert("AvailabilityZone".into(), "eu-west-1b".into());
        assert_eq!(inhibition.scope(&zone_a), "AvailabilityZone=eu-west-1a");
        assert_eq!(inhibition.scope(&zone_a), inhibition.scope(&host_a));
        assert_ne!(inhibition.scope(&zone_a), inhibition.scope(&host_b));
        assert_eq!(inhibition.scope(&alarm("no-dimensions")), "AvailabilityZone=");
        assert_eq!(rule(REGION).scope(&host_a), "", "no equal: one scope for every alarm");
        assert!(
            rule("name: a\nwhileAlarm: { namespace: X }\nroutes: [web-nginx]\nequal: ['']\n")
                .validate(&["web-nginx"])
                .expect_err("refused")
                .contains("equal")
        );
    }

    #[test]
    fn an_alarm_never_inhibits_itself() {
        let inhibition = rule("name: self\nwhileAlarm: { alarmName: { prefix: web- } }\nroutes: [web-nginx]\n");
        let host = alarm("web-nginx-down-host-001");
        assert!(inhibition.silence_for("web-nginx", &host, std::slice::from_ref(&host.arn)).is_none());
        let other = alarm("web-nginx-down-host-002");
        assert!(inhibition.silence_for("web-nginx", &host, &[other.arn]).is_some());
    }

    #[test]
    fn rules_that_would_inhibit_everything_or_name_nothing_are_refused() {
        let refused = |yaml: &str| rule(yaml).validate(&["web-nginx"]).expect_err("refused");
        assert!(refused("name: a\nwhileAlarm: {}\nroutes: [web-nginx]\n").contains("whileAlarm needs"));
        assert!(refused("name: a\nwhileAlarm: { namespace: AWS/EC2 }\n").contains("every alarm"));
        assert!(refused("name: a\nwhileAlarm: { namespace: AWS/EC2 }\nroutes: [nope]\n").contains("no rule is named"));
        assert!(refused("name: 'a b'\nwhileAlarm: { namespace: AWS/EC2 }\nroutes: [web-nginx]\n").contains("name"));
        assert!(
            refused("name: a\nwhileAlarm: { alarmName: { regex: '(' } }\nroutes: [web-nginx]\n").contains("whileAlarm")
        );
    }
}
