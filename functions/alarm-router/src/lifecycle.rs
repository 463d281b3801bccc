//! Each alarm's lifecycle in the state table: one item per alarm (`pk = alarm#<alarm ARN>`).
//!
//! It holds the latest transition applied (`atMs`, `state`), the route that took it, whether a
//! recovery is owed to people who were paged for it (`owesRecovery`), the silence that kept its
//! ALARM quiet (`silencedBy`), and the first-response execution started for it (`executionArn`).
//!
//! Transitions are applied in the alarm's own order, not in arrival order: the write that applies
//! one is conditioned on the transition's `state.timestamp`, so a late or repeated delivery never
//! overwrites a newer state. A repeated delivery of the transition applied last is handled again
//! (a retry must finish what a failed delivery started); an older one is history and does nothing.
//!
//! A recovery is owed from the moment a page about the alarm is sent until the recovery is: the
//! reconciler ([`crate::reconcile`]) finds what is still owed once the alarm is OK or deleted.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, TimeZone, Utc};
use shared::{Alarm, AlarmState};

use crate::RouterError;
use crate::groups::{conditionally, failed};

/// How long an alarm's item outlives its last transition. Every write sets it, so an alarm that
/// never changes again (or was deleted) leaves nothing behind for ever.
pub const KEEP_SECONDS: i64 = 30 * 24 * 3600;

/// The state table, as the alarms' lifecycle uses it.
#[derive(Debug, Clone)]
pub struct Lifecycle<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

/// What the table held for an alarm before this transition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmRecord {
    pub name: String,
    /// The latest transition applied, if any.
    pub state: Option<AlarmState>,
    pub at: Option<DateTime<Utc>>,
    pub route: Option<String>,
    /// People were paged about the alarm and have not been told it recovered.
    pub owes_recovery: bool,
    /// The silence (or window, or inhibition) that kept its current ALARM quiet.
    pub silenced_by: Option<String>,
    /// The latest first-response execution started for it.
    pub execution_arn: Option<String>,
    /// The transition (its time) people were last paged about: a redelivery of it pages no one.
    pub paged_at: Option<DateTime<Utc>>,
}

impl AlarmRecord {
    pub(crate) fn from_item(item: &HashMap<String, AttributeValue>) -> Self {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).filter(|s| !s.is_empty()).cloned();
        let time = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        };
        Self {
            name: text("alarmName").unwrap_or_default(),
            state: text("state").and_then(|s| AlarmState::parse(&s)),
            at: time("atMs"),
            paged_at: time("pagedAtMs"),
            route: text("route"),
            owes_recovery: item.get("owesRecovery").and_then(|v| v.as_bool().ok()).copied().unwrap_or_default(),
            silenced_by: text("silencedBy"),
            execution_arn: text("executionArn"),
        }
    }
}

/// Whether a transition is to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Newer than anything applied (or the first): handle it. `before` is what was held.
    New { before: AlarmRecord },
    /// The very transition applied last, delivered again: handle it again, idempotently.
    Again { before: AlarmRecord },
    /// A newer transition was applied already: this one changes nothing.
    Stale { latest: AlarmRecord },
}

impl Applied {
    pub fn before(&self) -> &AlarmRecord {
        match self {
            Self::New { before } | Self::Again { before } => before,
            Self::Stale { latest } => latest,
        }
    }
}

fn pk(arn: &str) -> AttributeValue {
    AttributeValue::S(format!("alarm#{arn}"))
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn ttl(now: DateTime<Utc>) -> AttributeValue {
    n(now.timestamp() + KEEP_SECONDS)
}

impl Lifecycle<'_> {
    /// Applies `alarm`'s transition, taken by `route`, unless a newer one was applied. An ALARM
    /// or OK forgets what kept the previous ALARM quiet (the caller gets it in `before`);
    /// INSUFFICIENT_DATA keeps it, since it says nothing of whether the problem ended.
    pub async fn apply(&self, alarm: &Alarm, route: &str, now: DateTime<Utc>) -> Result<Applied, RouterError> {
        let at = alarm.timestamp.timestamp_millis();
        let forget = match alarm.state {
            AlarmState::InsufficientData => "",
            AlarmState::Alarm | AlarmState::Ok => " REMOVE silencedBy",
        };
        let applied = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(&alarm.arn))
            .update_expression(format!(
                "SET atMs = :at, #state = :state, alarmName = :name, #route = :route, #ttl = :ttl{forget}"
            ))
            .condition_expression("attribute_not_exists(atMs) OR atMs <= :at")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#route", "route")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":state", AttributeValue::S(alarm.state.as_str().to_owned()))
            .expression_attribute_values(":name", AttributeValue::S(alarm.name.clone()))
            .expression_attribute_values(":route", AttributeValue::S(route.to_owned()))
            .expression_attribute_values(":ttl", ttl(now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match applied {
            Ok(out) => {
                let before = out.attributes().map(AlarmRecord::from_item).unwrap_or_default();
                let again = before.at.map(|t| t.timestamp_millis()) == Some(at) && before.state == Some(alarm.state);
                Ok(if again { Applied::Again { before } } else { Applied::New { before } })
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    Ok(Applied::Stale { latest: e.item().map(AlarmRecord::from_item).unwrap_or_default() })
                }
                _ => Err(failed("UpdateItem", &err)),
            },
        }
    }

    /// The alarm's record, read consistently; `None` when the table holds nothing for it.
    pub async fn get(&self, arn: &str) -> Result<Option<AlarmRecord>, RouterError> {
        let got = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", pk(arn))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", &e))?;
        Ok(got.item().map(AlarmRecord::from_item))
    }

    /// Records that people were paged about the alarm's transition `alarm`: a recovery is owed
    /// until [`Self::recovered`], and a redelivery of that transition pages no one.
    pub async fn owe_recovery(&self, alarm: &Alarm, route: &str, now: DateTime<Utc>) -> Result<(), RouterError> {
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(&alarm.arn))
            .update_expression(
                "SET owesRecovery = :yes, owedSince = if_not_exists(owedSince, :now), alarmName = :name, \
                 #route = if_not_exists(#route, :route), pagedAtMs = :paged, #ttl = :ttl",
            )
            .expression_attribute_values(":paged", n(alarm.timestamp.timestamp_millis()))
            .expression_attribute_names("#route", "route")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":name", AttributeValue::S(alarm.name.clone()))
            .expression_attribute_values(":route", AttributeValue::S(route.to_owned()))
            .expression_attribute_values(":ttl", ttl(now))
            .send()
            .await
            .map_err(|e| failed("UpdateItem", &e))?;
        Ok(())
    }

    /// Records that the recovery was told (or that none is owed).
    pub async fn recovered(&self, arn: &str) -> Result<(), RouterError> {
        // Nothing held for the alarm: nothing was owed.
        let written = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(arn))
            .update_expression("REMOVE owesRecovery, owedSince")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        conditionally(written).map(|_| ())
    }

    /// Remembers that `silence` kept this ALARM quiet, so that its OK announces nothing (unless a
    /// page of the same episode went out before it).
    pub async fn silenced(&self, alarm: &Alarm, silence: &str) -> Result<(), RouterError> {
        // A newer transition may have been applied meanwhile: what kept this one quiet is moot.
        let written = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(&alarm.arn))
            .update_expression("SET silencedBy = :silence")
            .condition_expression("atMs = :at")
            .expression_attribute_values(":silence", AttributeValue::S(silence.to_owned()))
            .expression_attribute_values(":at", n(alarm.timestamp.timestamp_millis()))
            .send()
            .await;
        conditionally(written).map(|_| ())
    }

    /// Remembers the execution started for the alarm, so that its OK finds it by the alarm's ARN.
    pub async fn started(&self, alarm: &Alarm, execution_arn: &str) -> Result<(), RouterError> {
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(&alarm.arn))
            .update_expression("SET executionArn = :execution")
            .expression_attribute_values(":execution", AttributeValue::S(execution_arn.to_owned()))
            .send()
            .await
            .map_err(|e| failed("UpdateItem", &e))?;
        Ok(())
    }
}
