//! The inhibiting alarms now in ALARM, per inhibition rule and scope, in the state table
//! (`pk = inhibit#<rule>` or `inhibit#<rule>#<scope>` with `equal`, a string set `firing` of alarm
//! ARNs): see [`shared::inhibition`].
//!
//! An inhibiting alarm's ALARM adds it and its OK removes it (both idempotent, and applied in the
//! alarm's own order: the router drops a transition older than the alarm's latest before it gets
//! here); an inhibited alarm's ALARM reads the set with a consistent read. Nothing stays for ever:
//! every write renews the item's expiry, and the reconciler takes out alarms that are deleted or
//! no longer in ALARM (a deleted alarm sends no OK).

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use shared::inhibition::Inhibition;
use shared::silence::Silence;
use shared::{Alarm, AlarmState};

use crate::RouterError;
use crate::groups::failed;

/// The state table, as inhibition uses it.
#[derive(Debug, Clone)]
pub struct Inhibitors<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

/// How long a rule's item outlives its last change, when the reconciler does not clear it first.
pub const KEEP_SECONDS: i64 = 7 * 24 * 3600;

/// The key prefix of every inhibition item.
pub const PK_PREFIX: &str = "inhibit#";

fn pk(rule: &Inhibition, alarm: &Alarm) -> AttributeValue {
    let scope = rule.scope(alarm);
    if scope.is_empty() {
        AttributeValue::S(format!("{PK_PREFIX}{}", rule.name))
    } else {
        AttributeValue::S(format!("{PK_PREFIX}{}#{scope}", rule.name))
    }
}

impl Inhibitors<'_> {
    /// Records `alarm`'s state for every rule it is an inhibiting alarm of. INSUFFICIENT_DATA
    /// changes nothing: it says neither that the problem is there nor that it is gone.
    pub async fn record(&self, rules: &[Inhibition], alarm: &Alarm, now: DateTime<Utc>) -> Result<(), RouterError> {
        let change = match alarm.state {
            AlarmState::Alarm => "ADD firing :arn SET #ttl = :ttl",
            AlarmState::Ok => "DELETE firing :arn SET #ttl = :ttl",
            AlarmState::InsufficientData => return Ok(()),
        };
        for rule in rules.iter().filter(|rule| rule.inhibits_with(alarm)) {
            tracing::info!(rule = %rule.name, alarm = %alarm.name, state = %alarm.state, "inhibiting alarm");
            self.client
                .update_item()
                .table_name(self.table)
                .key("pk", pk(rule, alarm))
                .update_expression(change)
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":arn", AttributeValue::Ss(vec![alarm.arn.clone()]))
                .expression_attribute_values(":ttl", AttributeValue::N((now.timestamp() + KEEP_SECONDS).to_string()))
                .send()
                .await
                .map_err(|e| failed("UpdateItem", &e))?;
        }
        Ok(())
    }

    /// The first rule that inhibits `alarm` on `route` now, as the silence it acts as.
    pub async fn inhibiting(
        &self,
        rules: &[Inhibition],
        route: &str,
        alarm: &Alarm,
    ) -> Result<Option<Silence>, RouterError> {
        for rule in rules.iter().filter(|rule| rule.applies_to(route, alarm)) {
            let got = self
                .client
                .get_item()
                .table_name(self.table)
                .key("pk", pk(rule, alarm))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| failed("GetItem", &e))?;
            let firing = got
                .item()
                .and_then(|item| item.get("firing"))
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            if let Some(silence) = rule.silence_for(route, alarm, &firing) {
                return Ok(Some(silence));
            }
        }
        Ok(None)
    }
}
