//! Incident groups: many alarms, one problem, one page.
//!
//! A route with `group: { by: route }` puts its alarms into groups kept in the state table. The
//! first ALARM of a group opens it and is handled as an ungrouped alarm would be (it pages, opens
//! the incident or starts the remediation); later ALARMs join it quietly. An escalation pages only
//! if the group has not paged yet. The group resolves, with one recovery notice, when its last
//! firing member returns to OK.
//!
//! A group is one item (`pk = group#<key>`) holding counts (`firingCount`, `memberCount`), the
//! page's state and its window, and one item per member (`pk = member#<key>#<alarm ARN>`) saying in
//! which generation of the group it fires (`firingIn`) and was seen (`seenIn`). An ALARM or an OK
//! reads both items in one consistent batch and writes both in one transaction, conditioned on what
//! it read, so what an event costs (calls and capacity) stays the same from 2 members to 10,000,
//! and concurrent and repeated deliveries agree on one opener, one page and one recovery: opening
//! only succeeds on an absent or resolved group; a member counts once per generation; the count
//! reaches zero, and the group resolves, exactly once.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
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
    Joined {
        opened_by: String,
        members: usize,
        firing: usize,
        /// The group has not paged and nobody is sending its page (the opener's page failed and
        /// its retry has not come, or never will: its OK came first): this alarm may take it.
        page_unclaimed: bool,
    },
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

/// An item's pk of the alarm `arn`'s membership of group `key`.
fn member_pk(key: &str, arn: &str) -> AttributeValue {
    AttributeValue::S(format!("{MEMBER_PREFIX}{key}#{arn}"))
}

/// The prefix of member items' keys (`member#<group key>#<alarm ARN>`).
pub const MEMBER_PREFIX: &str = "member#";

/// How often a join or a leave reads and writes again when another delivery moved the group on
/// (or DynamoDB cancelled its transaction for a concurrent one on the same item).
const TRIES: usize = 6;

/// A short, jittered pause before trying again, so that deliveries that collided spread out.
async fn pause() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos());
    let jitter = u64::from(nanos.unwrap_or_default() % 50);
    tokio::time::sleep(std::time::Duration::from_millis(10 + jitter)).await;
}

type Item = HashMap<String, AttributeValue>;

fn number(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or_default()
}

fn count(item: &Item, name: &str) -> usize {
    usize::try_from(number(item, name)).unwrap_or_default()
}

fn built(err: aws_smithy_types::error::operation::BuildError) -> RouterError {
    RouterError::ConfigError(format!("DynamoDB request: {err}"))
}

/// A group's item, as read.
#[derive(Debug, Clone, Default)]
struct GroupItem {
    generation: String,
    firing: usize,
    members: usize,
    paged: bool,
    opened_by: String,
    first_alarm_arn: String,
    open_until: i64,
    /// The alarm whose OK resolved the group, until the recovery it owes is told.
    recovery_owed_by: Option<String>,
    page_claimed_at: Option<i64>,
}

impl GroupItem {
    fn of(item: &Item) -> Self {
        Self {
            generation: text(item, "generation"),
            firing: count(item, "firingCount"),
            members: count(item, "memberCount"),
            paged: flag(item, "paged"),
            opened_by: text(item, "openedBy"),
            first_alarm_arn: text(item, "firstAlarmArn"),
            open_until: number(item, "openUntil"),
            recovery_owed_by: item.get("recoveryOwedBy").and_then(|v| v.as_s().ok()).cloned(),
            page_claimed_at: item.get("pageClaimedAt").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()),
        }
    }

    /// Whether the group's page is neither sent nor being sent at `now`.
    fn page_unclaimed(&self, now: DateTime<Utc>) -> bool {
        !self.paged && self.page_claimed_at.is_none_or(|at| at < now.timestamp() - CLAIM_SECONDS)
    }
}

/// An alarm's member item, as read: the generations it fires and was seen in.
#[derive(Debug, Clone, Default)]
struct Member {
    firing_in: Option<String>,
    seen_in: Option<String>,
}

impl Member {
    fn of(item: &Item) -> Self {
        let generation = |name| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Self { firing_in: generation("firingIn"), seen_in: generation("seenIn") }
    }
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
    /// The group's item and the alarm's member item, read in one strongly consistent batch (a
    /// transactional read would cost twice the capacity, and is not needed: every write is
    /// conditioned on what was read).
    async fn snapshot(&self, key: &str, arn: &str) -> Result<(Option<Item>, Option<Item>), RouterError> {
        let (group_pk, member_pk) = (pk(key), member_pk(key, arn));
        let mut wanted = vec![
            HashMap::from([("pk".to_owned(), group_pk.clone())]),
            HashMap::from([("pk".to_owned(), member_pk.clone())]),
        ];
        let (mut group, mut member) = (None, None);
        // DynamoDB may leave keys unprocessed (throttled); they are asked again, twice at most.
        for _ in 0..3 {
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(wanted.clone()))
                .consistent_read(true)
                .build()
                .map_err(built)?;
            let read = self
                .client
                .batch_get_item()
                .request_items(self.table, keys)
                .send()
                .await
                .map_err(|e| failed("BatchGetItem", &e))?;
            for item in read.responses().and_then(|r| r.get(self.table)).into_iter().flatten() {
                match item.get("pk") {
                    Some(found) if *found == group_pk => group = Some(item.clone()),
                    Some(found) if *found == member_pk => member = Some(item.clone()),
                    _ => {}
                }
            }
            wanted =
                read.unprocessed_keys().and_then(|u| u.get(self.table)).map(|k| k.keys().to_vec()).unwrap_or_default();
            if wanted.is_empty() {
                return Ok((group, member));
            }
        }
        Err(RouterError::TransientError(format!("DynamoDB BatchGetItem left group {key} unread (throttled)")))
    }

    /// Writes the group's item and the alarm's member item together: `Ok(true)` when both were
    /// written, `Ok(false)` when a condition did not hold or another transaction held an item (the
    /// caller reads again and decides again), the router's error otherwise.
    async fn together(&self, group: Update, member: TransactWriteItem) -> Result<bool, RouterError> {
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(group).build())
            .transact_items(member)
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    tracing::debug!(reasons = ?e.cancellation_reasons(), "group write cancelled: reading again");
                    Ok(false)
                }
                _ => Err(failed("TransactWriteItems", &err)),
            },
        }
    }

    /// Puts an ALARM into its group: opens the group when none is firing, else joins it. A group
    /// that still has firing members is never replaced: an ALARM after its window reopens it (a
    /// new page, the same members), so every member's OK still finds it.
    ///
    /// The group item holds counts and each alarm has its own member item (`member#<group>#<ARN>`),
    /// written together in one transaction: what an ALARM costs does not grow with the group.
    /// A member counts in the group's current *generation* (the incident key that opened it
    /// afresh); a member item left over from an earlier generation counts for nothing.
    ///
    /// The group's page is claimed here but marked sent only by [`Self::paged`], once it was: a
    /// redelivery of an opener whose page was not confirmed answers [`Membership::Redelivered`]
    /// with `paged: false`, and is paged again.
    ///
    /// Windows run on the alarms' own clock (their transition timestamps), so a replayed history
    /// groups as it did live; only the items' expiry (TTL) follows the wall clock `now`.
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
        // Each try's conditions can only fail because another delivery moved the group on (opened
        // it, or took its last member out) between our read and our write.
        for _ in 0..TRIES {
            let (group, member) = self.snapshot(key, &alarm.arn).await?;
            let group = group.as_ref().map(GroupItem::of).filter(|g| g.firing > 0);
            let member = member.as_ref().map(Member::of).unwrap_or_default();
            let Some(group) = group else {
                // No group is firing: this ALARM opens one, as a new generation.
                let generation = incident_key.as_str();
                let open = Update::builder()
                    .table_name(self.table)
                    .key("pk", pk(key))
                    .update_expression(
                        "SET kind = :kind, #route = :route, generation = :gen, firingCount = :one, \
                         memberCount = :one, openedBy = :gen, firstAlarmArn = :arn, openedAt = :at, \
                         lastAlarmAt = :at, openUntil = :until, paged = :no, pageClaimedAt = :now, #ttl = :ttl \
                         REMOVE pagedBy, recoveryOwedBy",
                    )
                    .condition_expression("attribute_not_exists(pk) OR firingCount = :zero")
                    .expression_attribute_names("#route", "route")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":kind", s("group"))
                    .expression_attribute_values(":route", s(route))
                    .expression_attribute_values(":gen", s(generation))
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":arn", s(&alarm.arn))
                    .expression_attribute_values(":at", s(alarm.timestamp_rfc3339()))
                    .expression_attribute_values(":until", n(open_until))
                    .expression_attribute_values(":no", AttributeValue::Bool(false))
                    .expression_attribute_values(":now", n(now.timestamp()))
                    .expression_attribute_values(":ttl", n(ttl))
                    .build()
                    .map_err(built)?;
                let write = self.member_write(key, alarm, route, generation, ttl, member)?;
                if self.together(open, write).await? {
                    return Ok(Membership::Opened);
                }
                pause().await;
                continue;
            };
            if group.opened_by == incident_key.as_str() {
                return Ok(Membership::Redelivered { paged: group.paged });
            }
            let firing_here = member.firing_in.as_deref() == Some(group.generation.as_str());
            let seen_here = member.seen_in.as_deref() == Some(group.generation.as_str());
            let reopens = group.open_until < at;
            if firing_here && !reopens {
                // A redelivery of an ALARM that joined already: it joins quietly again.
                let page_unclaimed = group.page_unclaimed(now);
                return Ok(Membership::Joined {
                    opened_by: group.opened_by,
                    members: group.members,
                    firing: group.firing,
                    page_unclaimed,
                });
            }
            // What this ALARM adds to the counts: nothing for a member firing already, a firing
            // member for one seen before in this generation, else a new member too.
            let adds = match (firing_here, seen_here) {
                (true, _) => "",
                (false, true) => " ADD firingCount :one",
                (false, false) => " ADD firingCount :one, memberCount :one",
            };
            let update = if reopens {
                // Members still fire, but the window has passed: this ALARM reopens the group,
                // which pages again and keeps its members.
                format!(
                    "SET openedBy = :key, firstAlarmArn = :arn, openedAt = :at, lastAlarmAt = :at, \
                     openUntil = :until, paged = :no, pageClaimedAt = :now, #route = :route, #ttl = :ttl \
                     REMOVE pagedBy{adds}"
                )
            } else {
                format!("SET lastAlarmAt = :at, openUntil = :until, #ttl = :ttl{adds}")
            };
            let mut write = Update::builder()
                .table_name(self.table)
                .key("pk", pk(key))
                .update_expression(update)
                // Not conditioned on the count as read: joins add to it in any order.
                .condition_expression(if reopens {
                    "generation = :gen AND firingCount > :zero AND openUntil < :epoch"
                } else {
                    "generation = :gen AND firingCount > :zero AND openUntil >= :epoch"
                })
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":gen", s(&group.generation))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":at", s(alarm.timestamp_rfc3339()))
                .expression_attribute_values(":epoch", n(at))
                .expression_attribute_values(":until", n(open_until))
                .expression_attribute_values(":ttl", n(ttl));
            if !adds.is_empty() {
                write = write.expression_attribute_values(":one", n(1));
            }
            if reopens {
                write = write
                    .expression_attribute_names("#route", "route")
                    .expression_attribute_values(":key", s(incident_key.as_str()))
                    .expression_attribute_values(":arn", s(&alarm.arn))
                    .expression_attribute_values(":no", AttributeValue::Bool(false))
                    .expression_attribute_values(":now", n(now.timestamp()))
                    .expression_attribute_values(":route", s(route));
            }
            let member_write = self.member_write(key, alarm, route, &group.generation, ttl, member)?;
            if !self.together(write.build().map_err(built)?, member_write).await? {
                pause().await;
                continue;
            }
            if reopens {
                return Ok(Membership::Opened);
            }
            let (members, firing) = match (firing_here, seen_here) {
                (true, _) => (group.members, group.firing),
                (false, true) => (group.members, group.firing + 1),
                (false, false) => (group.members + 1, group.firing + 1),
            };
            let page_unclaimed = group.page_unclaimed(now);
            return Ok(Membership::Joined { opened_by: group.opened_by, members, firing, page_unclaimed });
        }
        Err(RouterError::TransientError(format!("group {key} kept changing while {} joined it", alarm.name)))
    }

    /// The write that makes the alarm a firing member of generation `generation`, conditioned on
    /// the member item being as it was read (`was`), so that two deliveries of one ALARM count once.
    fn member_write(
        &self,
        key: &str,
        alarm: &Alarm,
        route: &str,
        generation: &str,
        ttl: i64,
        was: Member,
    ) -> Result<TransactWriteItem, RouterError> {
        let mut write = Update::builder()
            .table_name(self.table)
            .key("pk", member_pk(key, &alarm.arn))
            .update_expression(
                "SET kind = :member, #group = :group, #route = :route, arn = :arn, firingIn = :gen, seenIn = :gen, \
                 #ttl = :ttl",
            )
            .expression_attribute_names("#group", "group")
            .expression_attribute_names("#route", "route")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":member", s("member"))
            .expression_attribute_values(":group", s(key))
            .expression_attribute_values(":route", s(route))
            .expression_attribute_values(":arn", s(&alarm.arn))
            .expression_attribute_values(":gen", s(generation))
            .expression_attribute_values(":ttl", n(ttl))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut conditions = Vec::new();
        match was.firing_in {
            Some(firing) => {
                conditions.push("firingIn = :wasFiring");
                write = write.expression_attribute_values(":wasFiring", s(firing));
            }
            None => conditions.push("attribute_not_exists(firingIn)"),
        }
        match was.seen_in {
            Some(seen) => {
                conditions.push("seenIn = :wasSeen");
                write = write.expression_attribute_values(":wasSeen", s(seen));
            }
            None => conditions.push("attribute_not_exists(seenIn)"),
        }
        write = write.condition_expression(conditions.join(" AND "));
        Ok(TransactWriteItem::builder().update(write.build().map_err(built)?).build())
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
    /// out resolves the group (exactly one does: the member's removal and the count's decrement are
    /// one transaction, conditioned on the member firing and on the count as read).
    pub async fn leave(&self, key: &str, alarm: &Alarm) -> Result<Departure, RouterError> {
        for _ in 0..TRIES {
            let (group, member) = self.snapshot(key, &alarm.arn).await?;
            let member = member.as_ref().map(Member::of).unwrap_or_default();
            let Some(firing_in) = member.firing_in else {
                // Its leaving resolved the group, but the recovery was not told (the publish
                // failed): this redelivery tells it.
                let owed = group
                    .as_ref()
                    .map(GroupItem::of)
                    .filter(|g| g.firing == 0 && g.recovery_owed_by.as_deref() == Some(alarm.arn.as_str()));
                return Ok(match owed {
                    Some(g) => Departure::Resolved {
                        members: g.members,
                        paged: g.paged,
                        opened_by: g.opened_by,
                        first_alarm_arn: g.first_alarm_arn,
                    },
                    None => Departure::NotFiring,
                });
            };
            let group = group.as_ref().map(GroupItem::of).filter(|g| g.firing > 0 && g.generation == firing_in);
            let Some(group) = group else {
                // Firing in a generation that is over (its group expired): it stops counting.
                self.forget_firing(key, &alarm.arn, &firing_in).await;
                return Ok(Departure::NotFiring);
            };
            let last = group.firing == 1;
            let count = Update::builder()
                .table_name(self.table)
                .key("pk", pk(key))
                .expression_attribute_values(":gen", s(&group.generation))
                .expression_attribute_values(":one", n(1));
            // The last member out sets the count to zero; any other takes one off, never the last.
            let count = if last {
                count
                    .update_expression("SET firingCount = :zero, resolvedAt = :now, recoveryOwedBy = :arn")
                    .condition_expression("generation = :gen AND firingCount = :one")
                    .expression_attribute_values(":arn", s(&alarm.arn))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":now", s(alarm.timestamp_rfc3339()))
            } else {
                count
                    .update_expression("ADD firingCount :less")
                    .condition_expression("generation = :gen AND firingCount > :one")
                    .expression_attribute_values(":less", n(-1))
            };
            let out = Update::builder()
                .table_name(self.table)
                .key("pk", member_pk(key, &alarm.arn))
                .update_expression("REMOVE firingIn")
                .condition_expression("firingIn = :gen")
                .expression_attribute_values(":gen", s(&group.generation))
                .build()
                .map_err(built)?;
            let out = TransactWriteItem::builder().update(out).build();
            if !self.together(count.build().map_err(built)?, out).await? {
                pause().await;
                continue;
            }
            if !last {
                return Ok(Departure::Left { firing: group.firing - 1, members: group.members });
            }
            return Ok(Departure::Resolved {
                members: group.members,
                paged: group.paged,
                opened_by: group.opened_by,
                first_alarm_arn: group.first_alarm_arn,
            });
        }
        Err(RouterError::TransientError(format!("group {key} kept changing while {} left it", alarm.name)))
    }

    /// Records that the group's recovery, owed by the OK of `arn` that resolved it, was told: a
    /// later redelivery of that OK announces nothing. Best effort: a failure here means at most a
    /// second recovery notice.
    pub async fn recovery_told(&self, key: &str, arn: &str) {
        let told = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", pk(key))
            .update_expression("REMOVE recoveryOwedBy")
            .condition_expression("recoveryOwedBy = :arn")
            .expression_attribute_values(":arn", s(arn))
            .send()
            .await;
        if let Err(err) = conditionally(told) {
            tracing::warn!(group = key, error = %err, "a redelivered OK may announce the group's recovery again");
        }
    }

    /// Clears a member's firing mark of a generation that is over. Best effort: the item expires.
    async fn forget_firing(&self, key: &str, arn: &str, generation: &str) {
        let cleared = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", member_pk(key, arn))
            .update_expression("REMOVE firingIn")
            .condition_expression("firingIn = :gen")
            .expression_attribute_values(":gen", s(generation))
            .send()
            .await;
        if let Err(err) = conditionally(cleared) {
            tracing::warn!(group = key, alarm = arn, error = %err, "a stale member mark expires on its own");
        }
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
        Ok(got.item().map(GroupItem::of).map(|g| GroupState {
            firing: g.firing,
            members: g.members,
            paged: g.paged,
            opened_by: g.opened_by,
            open_until: g.open_until,
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
