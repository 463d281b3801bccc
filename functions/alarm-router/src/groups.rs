//! Incident groups: many alarms, one problem, one page.
//!
//! A route with `group: { by: route }` puts its alarms into groups kept in the state table (one
//! DynamoDB item per group, `pk = group#<key>`). The first ALARM of a group opens it and is handled
//! as an ungrouped alarm would be (it pages, opens the incident or starts the remediation); later
//! ALARMs join it quietly. An escalation pages only if the group has not paged yet. The group
//! resolves, with one recovery notice, when its last firing member returns to OK.
//!
//! Every write is conditional, so concurrent and repeated deliveries agree on one opener, one page
//! and one recovery: opening is a put that only succeeds on an absent, resolved or expired group;
//! leaving removes the alarm only while it is firing; the page is claimed by flipping `paged`.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use shared::aws::{describe, is_transient};
use shared::{Alarm, IncidentKey};

use crate::RouterError;

/// How long a group's item outlives the group, for "what happened" questions, before TTL removes it.
const KEEP_SECONDS: i64 = 7 * 24 * 3600;

/// The state table, as the router uses it.
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

/// An alarm's place in its group after an ALARM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// This alarm opened the group: handle it as usual.
    Opened,
    /// A redelivery of the ALARM that opened the group; `paged` says whether its page was sent
    /// (else it is sent now).
    Redelivered { paged: bool },
    /// The group was open already: the alarm joined it and pages no one.
    Joined { opened_by: String, members: usize, firing: usize },
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub firing: usize,
    pub members: usize,
    pub paged: bool,
    pub opened_by: String,
    /// Epoch seconds, on the alarms' clock, until which an ALARM joins rather than reopens.
    pub open_until: i64,
}

impl GroupState {
    /// Whether an ALARM at `at` would join this group (rather than open a new one).
    pub fn is_open_at(&self, at: DateTime<Utc>) -> bool {
        self.firing > 0 && self.open_until >= at.timestamp()
    }
}

/// What an OK did to the alarm's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departure {
    /// The alarm was not firing in an open group (never grouped, or this OK was delivered before).
    NotFiring,
    /// Others still fire.
    Left { firing: usize, members: usize },
    /// It was the last: the group is resolved, and this delivery announces it.
    Resolved { members: usize, paged: bool, opened_by: String, first_alarm_arn: String },
}

fn pk(key: &str) -> AttributeValue {
    AttributeValue::S(format!("group#{key}"))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn set_len(item: &HashMap<String, AttributeValue>, name: &str) -> usize {
    item.get(name).and_then(|v| v.as_ss().ok()).map(Vec::len).unwrap_or_default()
}

fn flag(item: &HashMap<String, AttributeValue>, name: &str) -> bool {
    item.get(name).and_then(|v| v.as_bool().ok()).copied().unwrap_or_default()
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

/// A conditional update's answer: `true` when it was written, `false` when its condition did not
/// hold (an answer, not a failure), the router's error otherwise.
pub(crate) fn conditionally<T>(
    written: Result<T, aws_sdk_dynamodb::error::SdkError<UpdateItemError>>,
) -> Result<bool, RouterError> {
    match written {
        Ok(_) => Ok(true),
        Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
            Ok(false)
        }
        Err(err) => Err(failed("UpdateItem", &err)),
    }
}

/// A failed state-table call as the router's error: transient (retried) or configuration.
pub(crate) fn failed<E>(operation: &str, err: &aws_sdk_dynamodb::error::SdkError<E>) -> RouterError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("DynamoDB {operation}: {}", describe(err));
    if is_transient(err) { RouterError::TransientError(message) } else { RouterError::ConfigError(message) }
}

impl Groups<'_> {
    /// Puts an ALARM into its group: opens the group when none is firing, else joins it. A group
    /// that still has firing members is never replaced: an ALARM after its window reopens it (a
    /// new page, the same members), so every member's OK still finds it.
    ///
    /// The group's page is claimed here but marked sent only by [`Self::paged`], once it was: a
    /// redelivery of an opener whose page was not confirmed answers [`Membership::Redelivered`]
    /// with `paged: false`, and is paged again.
    ///
    /// Windows run on the alarms' own clock (their transition timestamps), so a replayed history
    /// groups as it did live; only the item's expiry (TTL) follows the wall clock `now`.
    pub async fn join(
        &self,
        key: &str,
        window_seconds: u64,
        alarm: &Alarm,
        incident_key: &IncidentKey,
        route: &str,
        now: DateTime<Utc>,
    ) -> Result<Membership, RouterError> {
        let at = alarm.timestamp.timestamp();
        let open_until = at + i64::try_from(window_seconds).unwrap_or(i64::MAX / 2);
        let ttl = open_until.max(now.timestamp()) + KEEP_SECONDS;
        // Three tries: each step's condition can only fail because another delivery moved the
        // group on (opened it, or took its last member out) between two of ours.
        for _ in 0..3 {
            let opened = self
                .client
                .put_item()
                .table_name(self.table)
                .item("pk", pk(key))
                .item("kind", s("group"))
                .item("route", s(route))
                .item("firing", AttributeValue::Ss(vec![alarm.arn.clone()]))
                .item("seen", AttributeValue::Ss(vec![alarm.arn.clone()]))
                .item("openedBy", s(incident_key.as_str()))
                .item("firstAlarmArn", s(&alarm.arn))
                .item("openedAt", s(alarm.timestamp_rfc3339()))
                .item("lastAlarmAt", s(alarm.timestamp_rfc3339()))
                .item("openUntil", n(open_until))
                .item("paged", AttributeValue::Bool(false))
                .item("pageClaimedAt", n(now.timestamp()))
                .item("ttl", n(ttl))
                .condition_expression("attribute_not_exists(pk) OR attribute_not_exists(firing)")
                .send()
                .await;
            match opened {
                Ok(_) => return Ok(Membership::Opened),
                Err(err)
                    if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {}
                Err(err) => return Err(failed("PutItem", &err)),
            }
            let joined = self
                .client
                .update_item()
                .table_name(self.table)
                .key("pk", pk(key))
                .update_expression(
                    "ADD firing :alarm, seen :alarm SET lastAlarmAt = :at, openUntil = :until, #ttl = :ttl",
                )
                .condition_expression("attribute_exists(firing) AND openUntil >= :epoch")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":alarm", AttributeValue::Ss(vec![alarm.arn.clone()]))
                .expression_attribute_values(":at", s(alarm.timestamp_rfc3339()))
                .expression_attribute_values(":epoch", n(at))
                .expression_attribute_values(":until", n(open_until))
                .expression_attribute_values(":ttl", n(ttl))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match joined {
                Ok(out) => {
                    let item = out.attributes().cloned().unwrap_or_default();
                    let opened_by = text(&item, "openedBy");
                    if opened_by == incident_key.as_str() {
                        return Ok(Membership::Redelivered { paged: flag(&item, "paged") });
                    }
                    return Ok(Membership::Joined {
                        opened_by,
                        members: set_len(&item, "seen"),
                        firing: set_len(&item, "firing"),
                    });
                }
                Err(err)
                    if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {}
                Err(err) => return Err(failed("UpdateItem", &err)),
            }
            // Members still fire, but the window has passed: this ALARM reopens the group.
            let reopened = self
                .client
                .update_item()
                .table_name(self.table)
                .key("pk", pk(key))
                .update_expression(
                    "ADD firing :alarm, seen :alarm SET openedBy = :key, firstAlarmArn = :arn, openedAt = :at, \
                     lastAlarmAt = :at, openUntil = :until, paged = :no, pageClaimedAt = :now, #route = :route, \
                     #ttl = :ttl REMOVE pagedBy",
                )
                .condition_expression("attribute_exists(firing) AND openUntil < :epoch")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#route", "route")
                .expression_attribute_values(":alarm", AttributeValue::Ss(vec![alarm.arn.clone()]))
                .expression_attribute_values(":key", s(incident_key.as_str()))
                .expression_attribute_values(":arn", s(&alarm.arn))
                .expression_attribute_values(":at", s(alarm.timestamp_rfc3339()))
                .expression_attribute_values(":epoch", n(at))
                .expression_attribute_values(":until", n(open_until))
                .expression_attribute_values(":no", AttributeValue::Bool(false))
                .expression_attribute_values(":now", n(now.timestamp()))
                .expression_attribute_values(":route", s(route))
                .expression_attribute_values(":ttl", n(ttl))
                .send()
                .await;
            match reopened {
                Ok(_) => return Ok(Membership::Opened),
                Err(err)
                    if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {}
                Err(err) => return Err(failed("UpdateItem", &err)),
            }
        }
        Err(RouterError::TransientError(format!("group {key} kept changing while {} joined it", alarm.name)))
    }

    /// Takes the opener's page for a redelivery of the opening ALARM whose page is not marked
    /// sent: [`OpenerPage::Send`] when this delivery sends it now (the page failed, or the delivery
    /// that claimed it died more than [`CLAIM_SECONDS`] ago); [`OpenerPage::InFlight`] when
    /// another delivery is sending it right now (this one fails, to be retried: a lost page is
    /// sent by the retry, a sent one is not sent twice); [`OpenerPage::Sent`] when it went out.
    pub async fn claim_opener_page(&self, key: &str, now: DateTime<Utc>) -> Result<OpenerPage, RouterError> {
        let claimed = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .update_expression("SET pageClaimedAt = :now")
            .condition_expression("paged = :no AND (attribute_not_exists(pageClaimedAt) OR pageClaimedAt < :stale)")
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":stale", n(now.timestamp() - CLAIM_SECONDS))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(OpenerPage::Send),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    Ok(if e.item().is_some_and(|item| flag(item, "paged")) {
                        OpenerPage::Sent
                    } else {
                        OpenerPage::InFlight
                    })
                }
                _ => Err(failed("UpdateItem", &err)),
            },
        }
    }

    /// Gives the opener's page back after it failed, so that the retry sends it at once. Best
    /// effort: a claim not given back lapses after [`CLAIM_SECONDS`].
    pub async fn release_page(&self, key: &str) {
        let released = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .update_expression("REMOVE pageClaimedAt")
            .condition_expression("paged = :no")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        if let Err(err) = released {
            tracing::warn!(group = key, error = %describe(&err), "the group's page claim lapses on its own");
        }
    }

    /// Marks the group's page sent by the ALARM `incident_key` opened it with: called only after
    /// the page was accepted, so that a lost page is sent again by the redelivery.
    pub async fn paged(&self, key: &str, incident_key: &IncidentKey) -> Result<(), RouterError> {
        let confirmed = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .update_expression("SET paged = :yes REMOVE pageClaimedAt")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        conditionally(confirmed)?;
        tracing::debug!(group = key, by = %incident_key, "group page confirmed");
        Ok(())
    }

    /// Takes an alarm that returned to OK out of its group; the delivery that takes the last one
    /// out resolves the group (exactly one does: the removal is conditional on the alarm firing).
    pub async fn leave(&self, key: &str, alarm: &Alarm) -> Result<Departure, RouterError> {
        let left = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .update_expression("DELETE firing :alarm")
            .condition_expression("contains(firing, :arn)")
            .expression_attribute_values(":alarm", AttributeValue::Ss(vec![alarm.arn.clone()]))
            .expression_attribute_values(":arn", s(&alarm.arn))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match left {
            Ok(out) => out.attributes().cloned().unwrap_or_default(),
            Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                return Ok(Departure::NotFiring);
            }
            Err(err) => return Err(failed("UpdateItem", &err)),
        };
        let members = set_len(&item, "seen");
        let firing = set_len(&item, "firing");
        if firing > 0 {
            return Ok(Departure::Left { firing, members });
        }
        Ok(Departure::Resolved {
            members,
            paged: flag(&item, "paged"),
            opened_by: text(&item, "openedBy"),
            first_alarm_arn: text(&item, "firstAlarmArn"),
        })
    }

    /// The group as the table holds it, if there is one: for `explain`.
    pub async fn state(&self, key: &str) -> Result<Option<GroupState>, RouterError> {
        let got = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", &e))?;
        Ok(got.item().map(|item| GroupState {
            firing: set_len(item, "firing"),
            members: set_len(item, "seen"),
            paged: flag(item, "paged"),
            opened_by: text(item, "openedBy"),
            open_until: item
                .get("openUntil")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or_default(),
        }))
    }

    /// Claims the group's one page for an escalation by the execution of `claimant` (an incident
    /// key): [`Claim::Pages`] when this escalation pages (the group has not paged, or is not in the
    /// table), else whose war room speaks for the group.
    pub async fn claim_page(&self, key: &str, claimant: &str) -> Result<Claim, RouterError> {
        let claimed = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .update_expression("SET paged = :yes, pagedBy = :by")
            .condition_expression("attribute_exists(pk) AND paged = :no")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":by", s(claimant))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(Claim::Pages),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => match e.item() {
                    // Not in the table: nothing to join, so this escalation pages.
                    None => Ok(Claim::Pages),
                    Some(item) if item.is_empty() => Ok(Claim::Pages),
                    // The same execution asking again (a retried task): it is the one that pages.
                    Some(item) if text(item, "pagedBy") == claimant => Ok(Claim::Pages),
                    Some(item) => {
                        let by = text(item, "pagedBy");
                        Ok(Claim::PagedAlready { room_of: (!by.is_empty()).then_some(by) })
                    }
                },
                _ => Err(failed("UpdateItem", &err)),
            },
        }
    }
}

/// How long a delivery's claim on the opener's page holds: longer than sending a page takes,
/// shorter than Lambda's first retry (about a minute), so the retry of a delivery that died
/// mid-page sends it.
pub const CLAIM_SECONDS: i64 = 45;

/// What a redelivery of the opening ALARM does about the group's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenerPage {
    Send,
    InFlight,
    Sent,
}

impl Groups<'_> {
    /// Gives back the escalation `claimant`'s claim on the group's page (its page was refused):
    /// `true` when it held the claim and gave it back.
    pub async fn release_claim(&self, key: &str, claimant: &str) -> Result<bool, RouterError> {
        let released = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .update_expression("SET paged = :no REMOVE pagedBy")
            .condition_expression("pagedBy = :by")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":by", s(claimant))
            .send()
            .await;
        conditionally(released)
    }
}

/// Who pages for a group's escalation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This escalation pages (and opens the group's war room).
    Pages,
    /// The group paged already; `room_of` is the incident key whose escalation paged and opened
    /// the war room, when an escalation did (an incident route's first ALARM pages by itself).
    PagedAlready { room_of: Option<String> },
}
