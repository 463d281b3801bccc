//! What the router decided for each of an alarm's recent transitions, kept in the state table so
//! an operator can ask "what happened to alarm X?" (`first-response what-happened`).
//!
//! One item per alarm (`pk = decisions#<alarm ARN>`), one attribute per transition
//! (`d|<transition time>|<state>`, holding the decision as JSON). The first decision of a
//! transition is kept: a redelivery, which the router answers as "done already", does not
//! overwrite what was done. `entries` counts writes (redeliveries included, so it may run ahead);
//! past [`TRIM_AT`] the oldest entries are removed down to [`KEEP`]. The item expires
//! [`KEEP_DAYS`] after its last write.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::AlarmState;

use crate::groups::failed;
use crate::{Decision, DecisionAction, Outcome, RouterError};

/// Transitions kept per alarm.
pub const KEEP: usize = 100;
/// Writes after which the oldest entries are removed.
pub const TRIM_AT: i64 = 120;
/// Days an alarm's decisions outlive its last transition.
pub const KEEP_DAYS: i64 = 30;
const ENTRY_PREFIX: &str = "d|";

/// One transition and what the router did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    /// The transition's time, on the alarm's clock.
    pub at: DateTime<Utc>,
    pub state: AlarmState,
    pub route: String,
    pub action: DecisionAction,
    pub outcome: Outcome,
    pub incident_key: String,
    /// When the router decided (wall clock).
    pub decided_at: DateTime<Utc>,
}

/// The state table, as the decision log uses it.
#[derive(Debug, Clone)]
pub struct Decisions<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

fn pk(alarm_arn: &str) -> AttributeValue {
    AttributeValue::S(format!("decisions#{alarm_arn}"))
}

impl Decisions<'_> {
    /// Records `decision` (the first one recorded for its transition stays).
    pub async fn record(&self, decision: &Decision, now: DateTime<Utc>) -> Result<(), RouterError> {
        let alarm = &decision.alarm;
        let entry = Recorded {
            at: alarm.timestamp,
            state: alarm.state,
            route: decision.route.name.clone(),
            action: decision.action,
            outcome: decision.outcome.clone(),
            incident_key: decision.incident_key.as_str().to_owned(),
            decided_at: now,
        };
        let json =
            serde_json::to_string(&entry).map_err(|e| RouterError::ConfigError(format!("decision to JSON: {e}")))?;
        let name = format!("{ENTRY_PREFIX}{}|{}", alarm.timestamp_rfc3339(), alarm.state.as_str());
        let ttl = now.timestamp().max(alarm.timestamp.timestamp()) + KEEP_DAYS * 24 * 3600;
        let written = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(&alarm.arn))
            .update_expression("SET #entry = if_not_exists(#entry, :entry), #ttl = :ttl ADD entries :one")
            .expression_attribute_names("#entry", &name)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":entry", AttributeValue::S(json))
            .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| failed("UpdateItem", &e))?;
        let entries = written
            .attributes()
            .and_then(|a| a.get("entries"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or_default();
        if entries > TRIM_AT {
            self.trim(&alarm.arn).await?;
        }
        Ok(())
    }

    /// Removes the oldest entries down to [`KEEP`].
    async fn trim(&self, alarm_arn: &str) -> Result<(), RouterError> {
        let item = self.item(alarm_arn).await?;
        let mut names: Vec<&String> = item.keys().filter(|k| k.starts_with(ENTRY_PREFIX)).collect();
        names.sort();
        let remove = names.len().saturating_sub(KEEP);
        let mut update = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(alarm_arn))
            .expression_attribute_values(":kept", AttributeValue::N(names.len().min(KEEP).to_string()));
        let mut removed = Vec::new();
        for (index, name) in names.iter().take(remove).enumerate() {
            update = update.expression_attribute_names(format!("#r{index}"), name.as_str());
            removed.push(format!("#r{index}"));
        }
        let expression = if removed.is_empty() {
            "SET entries = :kept".to_owned()
        } else {
            format!("SET entries = :kept REMOVE {}", removed.join(", "))
        };
        update.update_expression(expression).send().await.map_err(|e| failed("UpdateItem", &e))?;
        Ok(())
    }

    async fn item(&self, alarm_arn: &str) -> Result<HashMap<String, AttributeValue>, RouterError> {
        let got = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", pk(alarm_arn))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", &e))?;
        Ok(got.item().cloned().unwrap_or_default())
    }

    /// The recorded decisions for an alarm, oldest first.
    pub async fn of(&self, alarm_arn: &str) -> Result<Vec<Recorded>, RouterError> {
        let item = self.item(alarm_arn).await?;
        let mut entries: Vec<(&String, Recorded)> = item
            .iter()
            .filter(|(k, _)| k.starts_with(ENTRY_PREFIX))
            .filter_map(|(k, v)| Some((k, serde_json::from_str(v.as_s().ok()?).ok()?)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        Ok(entries.into_iter().map(|(_, recorded)| recorded).collect())
    }
}
