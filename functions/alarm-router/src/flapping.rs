//! Flapping: an alarm that keeps changing state is one problem for a human, not a restart every
//! few minutes for ever.
//!
//! Each ALARM and OK of an alarm is recorded in the state table (`pk = flap#<arn>`, a set of
//! `<timestamp>|<state>`, so a redelivery is recorded once). More than the route's
//! `flapping.transitions` changes within `windowMinutes` make it flapping: the delivery that sets
//! `flappingSince` (conditionally, so exactly one does) pages once with the history; while it
//! flaps, automation does not run and nothing more is announced; a change after `quietMinutes`
//! without one ends it.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Duration, Utc};
use shared::Alarm;
use shared::routing::Flapping;

use crate::RouterError;
use crate::groups::failed;

/// How long an alarm's history outlives its last change.
const KEEP_SECONDS: i64 = 7 * 24 * 3600;

/// The flap history in the state table.
#[derive(Debug, Clone)]
pub struct FlapHistory<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

/// What this change of state means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flap {
    /// Not flapping: handle the change as usual.
    Steady,
    /// This change made the alarm flapping: page once, with these changes (oldest first).
    Started { changes: Vec<String> },
    /// It has been flapping since then: record quietly.
    Ongoing { since: String },
}

fn key(alarm: &Alarm) -> AttributeValue {
    AttributeValue::S(format!("flap#{}", alarm.arn))
}

/// `<timestamp>|<state>` entries as (time, entry), oldest first.
fn changes(item: &HashMap<String, AttributeValue>) -> Vec<(DateTime<Utc>, String)> {
    let mut changes: Vec<(DateTime<Utc>, String)> = item
        .get("transitions")
        .and_then(|v| v.as_ss().ok())
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let (at, _) = entry.split_once('|')?;
            Some((DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc), entry.clone()))
        })
        .collect();
    changes.sort();
    changes
}

impl FlapHistory<'_> {
    /// Records the alarm's change of state and says whether it flaps.
    pub async fn record(&self, alarm: &Alarm, settings: Flapping, now: DateTime<Utc>) -> Result<Flap, RouterError> {
        let at = alarm.timestamp;
        let entry = format!("{}|{}", alarm.timestamp_rfc3339(), alarm.state);
        let recorded = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", key(alarm))
            .update_expression("ADD transitions :change SET #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":change", AttributeValue::Ss(vec![entry.clone()]))
            .expression_attribute_values(":ttl", AttributeValue::N((now.timestamp() + KEEP_SECONDS).to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| failed("UpdateItem", &e))?;
        let item = recorded.attributes().cloned().unwrap_or_default();
        let changes = changes(&item);
        let window = Duration::minutes(i64::from(settings.window_minutes));
        let quiet = Duration::minutes(i64::from(settings.quiet_minutes));
        self.forget_older_than(alarm, &changes, at - window.max(quiet)).await;
        let previous = changes.iter().filter(|(t, e)| *t < at && *e != entry).map(|(t, _)| *t).next_back();

        if let Some(since) = item.get("flappingSince").and_then(|v| v.as_s().ok()) {
            if previous.is_none_or(|p| at - p > quiet) {
                // Quiet long enough: it is steady again (whoever clears it first; the rest agree).
                self.client
                    .update_item()
                    .table_name(self.table)
                    .key("pk", key(alarm))
                    .update_expression("REMOVE flappingSince")
                    .send()
                    .await
                    .map_err(|e| failed("UpdateItem", &e))?;
                return Ok(Flap::Steady);
            }
            return Ok(Flap::Ongoing { since: since.clone() });
        }
        let recent: Vec<String> =
            changes.iter().filter(|(t, _)| *t > at - window && *t <= at).map(|(_, e)| e.clone()).collect();
        if recent.len() <= settings.transitions as usize {
            return Ok(Flap::Steady);
        }
        let started = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", key(alarm))
            .update_expression("SET flappingSince = :at")
            .condition_expression("attribute_not_exists(flappingSince)")
            .expression_attribute_values(":at", AttributeValue::S(alarm.timestamp_rfc3339()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match started {
            Ok(_) => Ok(Flap::Started { changes: recent }),
            Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                Ok(Flap::Ongoing { since: alarm.timestamp_rfc3339() })
            }
            Err(err) => Err(failed("UpdateItem", &err)),
        }
    }

    /// Drops changes older than `before`, best effort: the history only needs its window.
    async fn forget_older_than(&self, alarm: &Alarm, changes: &[(DateTime<Utc>, String)], before: DateTime<Utc>) {
        let old: Vec<String> = changes.iter().filter(|(t, _)| *t < before).map(|(_, e)| e.clone()).collect();
        if old.is_empty() {
            return;
        }
        let trimmed = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", key(alarm))
            .update_expression("DELETE transitions :old")
            .expression_attribute_values(":old", AttributeValue::Ss(old))
            .send()
            .await;
        if let Err(err) = trimmed {
            tracing::warn!(error = %shared::aws::describe(&err), "could not trim the flap history; it only grows");
        }
    }
}
