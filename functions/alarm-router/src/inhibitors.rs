//! The inhibiting alarms now in ALARM, per inhibition rule, in the state table
//! (`pk = inhibit#<rule>`, a string set `firing` of alarm ARNs): see [`shared::inhibition`].
//!
//! An inhibiting alarm's ALARM adds it and its OK removes it (both idempotent, so redeliveries
//! change nothing); an inhibited alarm's ALARM reads the set with a consistent read.

use aws_sdk_dynamodb::types::AttributeValue;
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

fn pk(rule: &str) -> AttributeValue {
    AttributeValue::S(format!("inhibit#{rule}"))
}

impl Inhibitors<'_> {
    /// Records `alarm`'s state for every rule it is an inhibiting alarm of. INSUFFICIENT_DATA
    /// changes nothing: it says neither that the problem is there nor that it is gone.
    pub async fn record(&self, rules: &[Inhibition], alarm: &Alarm) -> Result<(), RouterError> {
        let change = match alarm.state {
            AlarmState::Alarm => "ADD firing :arn",
            AlarmState::Ok => "DELETE firing :arn",
            AlarmState::InsufficientData => return Ok(()),
        };
        for rule in rules.iter().filter(|rule| rule.inhibits_with(alarm)) {
            tracing::info!(rule = %rule.name, alarm = %alarm.name, state = %alarm.state, "inhibiting alarm");
            self.client
                .update_item()
                .table_name(self.table)
                .key("pk", pk(&rule.name))
                .update_expression(change)
                .expression_attribute_values(":arn", AttributeValue::Ss(vec![alarm.arn.clone()]))
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
                .key("pk", pk(&rule.name))
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
