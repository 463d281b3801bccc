//! The reconciler: nothing the state table holds open stays open for ever.
//!
//! EventBridge Scheduler invokes the router with `{"reconcile": {}}` (every five minutes by
//! default). The reconciler reads what the table holds open (alarms owed a recovery, groups with
//! firing members, inhibiting alarms) and asks CloudWatch (`DescribeAlarms`, 100 names a call)
//! what those alarms say now:
//!
//! - an alarm back to OK, or deleted (a deletion sends no OK), gets the recovery it is owed: a
//!   group member leaves its group through the router's own OK path, so the group's last member
//!   announces the group's recovery; an ungrouped alarm's recovery is published once it has been
//!   OK for the route's flapping quiet time (a flapping alarm's last OK is told when it is steady)
//!   and no execution for it still runs;
//! - an inhibiting alarm that is deleted or OK stops inhibiting;
//! - an alarm a silence, window or inhibition kept quiet, still in ALARM, is handled again as
//!   the same transition: once nothing keeps it quiet any more (the silence ended, the inhibiting
//!   alarm cleared or was deleted) it pages, or is remediated, as its route says;
//! - silences that ended more than a week ago are forgotten (every ALARM reads them all).
//!
//! Alarms of another account or region than the router's are left alone: the router reads
//! CloudWatch in its own.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::aws::{describe, is_transient};
use shared::{Alarm, AlarmState};

use crate::groups::failed;
use crate::lifecycle::{AlarmRecord, Lifecycle};
use crate::{Clients, Decision, RouterConfig, RouterError};

/// `DescribeAlarms` takes at most this many names.
const NAMES_PER_CALL: usize = 100;

/// What one reconciliation found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciled {
    /// Alarms the table holds open, looked up in CloudWatch.
    pub checked: usize,
    /// What the router did for the alarms found OK or deleted.
    pub decisions: Vec<Decision>,
    /// Recoveries published for ungrouped alarms that were owed one.
    pub recoveries: Vec<String>,
    /// Inhibiting alarms that stopped inhibiting (deleted or OK), by ARN.
    pub inhibitors_cleared: Vec<String>,
    /// Silences that ended more than a week ago, forgotten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silences_forgotten: Vec<String>,
    /// What could not be reconciled now (it is tried again at the next run).
    pub problems: Vec<String>,
}

/// What CloudWatch says of an alarm now.
#[derive(Debug, Clone)]
struct Now {
    state: AlarmState,
    since: DateTime<Utc>,
    reason: String,
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: BTreeMap<String, String>,
    composite: bool,
}

/// What the table holds open.
#[derive(Debug, Default)]
struct Open {
    owed: Vec<(String, AlarmRecord)>,
    /// Alarms whose current ALARM was kept quiet.
    quieted: Vec<(String, AlarmRecord)>,
    /// Firing members of groups: (alarm ARN, route).
    members: Vec<(String, String)>,
    /// Inhibition items: (pk, firing ARNs).
    inhibitors: Vec<(String, Vec<String>)>,
}

/// An alarm's name from its ARN (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`).
fn name_of(arn: &str) -> Option<&str> {
    arn.split_once(":alarm:").map(|(_, name)| name).filter(|n| !n.is_empty())
}

/// Whether the alarm lives where the router reads CloudWatch: the state machine's region and account.
fn is_local(arn: &str, home: &str) -> bool {
    let parts = |arn: &str| arn.split(':').skip(3).take(2).map(str::to_owned).collect::<Vec<_>>();
    parts(arn) == parts(home)
}

/// Reconciles the state table with CloudWatch at `now`.
pub async fn reconcile(
    clients: &Clients,
    config: &RouterConfig,
    now: DateTime<Utc>,
) -> Result<Reconciled, RouterError> {
    let Some(table) = config.state_table.as_deref() else {
        return Ok(Reconciled::default());
    };
    let open = open_items(&clients.dynamodb, table).await?;
    let home = config.state_machine_arn.as_str();
    let arns: HashSet<&str> = open
        .owed
        .iter()
        .map(|(arn, _)| arn.as_str())
        .chain(open.quieted.iter().map(|(arn, _)| arn.as_str()))
        .chain(open.members.iter().map(|(arn, _)| arn.as_str()))
        .chain(open.inhibitors.iter().flat_map(|(_, firing)| firing.iter().map(String::as_str)))
        .filter(|arn| is_local(arn, home))
        .collect();
    let names: Vec<&str> = arns.iter().filter_map(|arn| name_of(arn)).collect();
    let states = describe_alarms(&clients.cloudwatch, &names).await?;
    let mut reconciled = Reconciled { checked: names.len(), ..Reconciled::default() };
    let lifecycle = Lifecycle { client: &clients.dynamodb, table };

    for (arn, route) in &open.members {
        let Some(name) = name_of(arn).filter(|_| is_local(arn, home)) else { continue };
        let said = states.get(name);
        if said.is_some_and(|s| s.state != AlarmState::Ok) {
            continue;
        }
        let Some(route) = config.routes.by_name(route) else {
            reconciled.problems.push(format!("{name}: its group's route {route} is no longer in the rules"));
            continue;
        };
        let alarm = transition(arn, name, said, now);
        let event = event_of(&alarm);
        match crate::handle_transition(clients, config, alarm, route, &event).await {
            Ok(decision) => {
                crate::record_decision(clients, config, &decision).await;
                reconciled.decisions.push(decision);
            }
            Err(err) => reconciled.problems.push(format!("{name}: {err}")),
        }
    }

    for (arn, record) in &open.owed {
        let Some(name) = name_of(arn).filter(|_| is_local(arn, home)) else { continue };
        let said = states.get(name);
        if said.is_some_and(|s| s.state != AlarmState::Ok) {
            continue;
        }
        let route = record.route.as_deref().and_then(|r| config.routes.by_name(r));
        let Some(route) = route else {
            reconciled.problems.push(format!("{name}: its route is no longer in the rules"));
            continue;
        };
        // A flapping alarm's recovery is told once it has been steady for the quiet time: since
        // the OK the router applied, else since CloudWatch says it changed.
        let quiet = Duration::minutes(i64::from(route.flapping.quiet_minutes));
        let steady_since = match (record.state, record.at) {
            (Some(AlarmState::Ok), Some(at)) => Some(at),
            _ => said.map(|s| s.since.min(now)),
        };
        if said.is_some() && steady_since.is_some_and(|since| now - since < quiet) {
            continue;
        }
        if let Some(execution) = &record.execution_arn
            && still_running(clients, execution).await
        {
            continue;
        }
        let alarm = transition(arn, name, said, now);
        // Applied as the alarm's latest transition (a deletion is one), unless it already is.
        lifecycle.apply(&alarm, &route.name, now).await?;
        let key = shared::IncidentKey::for_transition(&route.name, &alarm);
        match crate::resolve(clients, config, &alarm, &route, &key).await {
            Ok(_) => {
                lifecycle.recovered(arn).await?;
                reconciled.recoveries.push(arn.clone());
            }
            Err(err) => reconciled.problems.push(format!("{name}: {err}")),
        }
    }

    // Inhibitors are cleared before the quieted alarms are looked at, so that an alarm muted by a
    // deleted inhibitor pages in this same run.
    clear_inhibitors(clients, table, home, &open, &states, &mut reconciled).await?;

    for (arn, record) in &open.quieted {
        let Some(name) = name_of(arn).filter(|_| is_local(arn, home)) else { continue };
        let (Some(said), Some(AlarmState::Alarm), Some(at)) = (states.get(name), record.state, record.at) else {
            continue;
        };
        if said.state != AlarmState::Alarm {
            continue;
        }
        let Some(route) = record.route.as_deref().and_then(|r| config.routes.by_name(r)) else { continue };
        let mut alarm = transition(arn, name, Some(said), now);
        (alarm.state, alarm.previous_state, alarm.timestamp) = (AlarmState::Alarm, Some(AlarmState::Ok), at);
        alarm.reason = format!("Still in ALARM after what kept it quiet: {}", said.reason);
        let event = event_of(&alarm);
        match crate::handle_transition(clients, config, alarm, route, &event).await {
            Ok(decision) if decision.action != crate::DecisionAction::Silence => {
                crate::record_decision(clients, config, &decision).await;
                reconciled.decisions.push(decision);
            }
            Ok(_) => {}
            Err(err) => reconciled.problems.push(format!("{name}: {err}")),
        }
    }
    // Ended silences are kept a week, then forgotten: every ALARM reads them all.
    let silences = crate::silences::Silences { client: &clients.dynamodb, table };
    match silences.prune(now - Duration::days(crate::silences::KEEP_ENDED_DAYS)).await {
        Ok(forgotten) => reconciled.silences_forgotten = forgotten,
        Err(err) => reconciled.problems.push(format!("ended silences: {err}")),
    }
    tracing::info!(
        checked = reconciled.checked,
        decisions = reconciled.decisions.len(),
        recoveries = reconciled.recoveries.len(),
        inhibitors_cleared = reconciled.inhibitors_cleared.len(),
        problems = reconciled.problems.len(),
        "reconciled"
    );
    Ok(reconciled)
}

/// Takes out of the inhibition items the alarms CloudWatch says are OK or gone.
async fn clear_inhibitors(
    clients: &Clients,
    table: &str,
    home: &str,
    open: &Open,
    states: &HashMap<String, Now>,
    reconciled: &mut Reconciled,
) -> Result<(), RouterError> {
    for (pk, firing) in &open.inhibitors {
        let gone: Vec<String> = firing
            .iter()
            .filter(|arn| is_local(arn, home))
            .filter(|arn| name_of(arn).is_some_and(|name| states.get(name).is_none_or(|s| s.state == AlarmState::Ok)))
            .cloned()
            .collect();
        if gone.is_empty() {
            continue;
        }
        clients
            .dynamodb
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S(pk.clone()))
            .update_expression("DELETE firing :gone")
            .expression_attribute_values(":gone", AttributeValue::Ss(gone.clone()))
            .send()
            .await
            .map_err(|e| failed("UpdateItem", &e))?;
        reconciled.inhibitors_cleared.extend(gone);
    }
    Ok(())
}

/// Every item that holds something open, read with a filtered scan (the table holds a few items per
/// alarm, group and rule, each with an expiry, so it stays small).
async fn open_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Open, RouterError> {
    let mut open = Open::default();
    let mut pages = client
        .scan()
        .table_name(table)
        .filter_expression(
            "owesRecovery = :yes OR attribute_exists(silencedBy) \
             OR (begins_with(pk, :member) AND attribute_exists(firingIn)) \
             OR (begins_with(pk, :inhibit) AND attribute_exists(firing))",
        )
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .expression_attribute_values(":member", AttributeValue::S(crate::groups::MEMBER_PREFIX.into()))
        .expression_attribute_values(":inhibit", AttributeValue::S(crate::inhibitors::PK_PREFIX.into()))
        .consistent_read(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed("Scan", &e))?;
        for item in page.items() {
            let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) else { continue };
            let firing = || item.get("firing").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
            if let Some(arn) = pk.strip_prefix("alarm#") {
                let record = AlarmRecord::from_item(item);
                if record.silenced_by.is_some() {
                    open.quieted.push((arn.to_owned(), record.clone()));
                }
                if record.owes_recovery {
                    open.owed.push((arn.to_owned(), record));
                }
            } else if pk.starts_with(crate::groups::MEMBER_PREFIX) {
                let text = |name| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                open.members.push((text("arn"), text("route")));
            } else if pk.starts_with(crate::inhibitors::PK_PREFIX) {
                open.inhibitors.push((pk.clone(), firing()));
            }
        }
    }
    Ok(open)
}

/// What CloudWatch says of each named alarm that exists; a name missing from the answer is deleted.
async fn describe_alarms(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    names: &[&str],
) -> Result<HashMap<String, Now>, RouterError> {
    let mut states = HashMap::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut pages = cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(chunk.iter().map(|n| (*n).to_owned()).collect()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                let message = format!("CloudWatch DescribeAlarms: {}", describe(&e));
                if is_transient(&e) { RouterError::TransientError(message) } else { RouterError::ConfigError(message) }
            })?;
            for alarm in page.metric_alarms() {
                let Some(name) = alarm.alarm_name() else { continue };
                let mut now = Now::said(alarm.state_value(), alarm.state_updated_timestamp(), alarm.state_reason());
                now.namespace = alarm.namespace().map(str::to_owned);
                now.metric_name = alarm.metric_name().map(str::to_owned);
                now.dimensions = alarm
                    .dimensions()
                    .iter()
                    .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                    .collect();
                states.insert(name.to_owned(), now);
            }
            for alarm in page.composite_alarms() {
                let Some(name) = alarm.alarm_name() else { continue };
                let mut now = Now::said(alarm.state_value(), alarm.state_updated_timestamp(), alarm.state_reason());
                now.composite = true;
                states.insert(name.to_owned(), now);
            }
        }
    }
    Ok(states)
}

impl Now {
    /// What `DescribeAlarms` says of any alarm: its state, since when, and why.
    fn said(state: Option<&StateValue>, at: Option<&aws_smithy_types::DateTime>, reason: Option<&str>) -> Self {
        Self {
            state: state_of(state),
            since: since(at),
            reason: reason.unwrap_or_default().to_owned(),
            namespace: None,
            metric_name: None,
            dimensions: BTreeMap::new(),
            composite: false,
        }
    }
}

fn state_of(value: Option<&StateValue>) -> AlarmState {
    match value {
        Some(StateValue::Ok) => AlarmState::Ok,
        Some(StateValue::Alarm) => AlarmState::Alarm,
        _ => AlarmState::InsufficientData,
    }
}

fn since(at: Option<&aws_smithy_types::DateTime>) -> DateTime<Utc> {
    at.and_then(|t| Utc.timestamp_millis_opt(t.to_millis().ok()?).single()).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Whether the execution is still running; when that cannot be told, it is taken as ended (the
/// recovery is then told: a notice too many is better than one lost).
async fn still_running(clients: &Clients, execution_arn: &str) -> bool {
    match clients.sfn.describe_execution().execution_arn(execution_arn).send().await {
        Ok(out) => *out.status() == aws_sdk_sfn::types::ExecutionStatus::Running,
        Err(err) => {
            tracing::warn!(error = %describe(&err), execution = execution_arn, "DescribeExecution failed");
            false
        }
    }
}

/// The OK transition CloudWatch says the alarm made (`said`), or, for a deleted alarm, the one
/// its deletion stands for, at `now`.
fn transition(arn: &str, name: &str, said: Option<&Now>, now: DateTime<Utc>) -> Alarm {
    let mut parts = arn.split(':').skip(3);
    let (region, account) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (reason, at) = match said {
        // Never later than now: a clock that is not CloudWatch's (a replay's) may be behind it.
        Some(said) => (format!("CloudWatch says OK since then: {}", said.reason), said.since.min(now)),
        None => ("The alarm was deleted: a deleted alarm sends no OK, so its recovery is told now.".to_owned(), now),
    };
    Alarm {
        name: name.to_owned(),
        arn: arn.to_owned(),
        account: account.to_owned(),
        region: region.to_owned(),
        kind: if said.is_some_and(|s| s.composite) { shared::AlarmKind::Composite } else { shared::AlarmKind::Metric },
        state: AlarmState::Ok,
        previous_state: Some(AlarmState::Alarm),
        reason,
        timestamp: at,
        description: None,
        namespace: said.and_then(|s| s.namespace.clone()),
        metric_name: said.and_then(|s| s.metric_name.clone()),
        dimensions: said.map(|s| s.dimensions.clone()).unwrap_or_default(),
        alarm_rule: None,
        actions_suppressed_by: None,
        tags: BTreeMap::new(),
    }
}

/// The EventBridge event CloudWatch would have sent for `alarm`'s transition.
pub(crate) fn event_of(alarm: &Alarm) -> Value {
    json!({
        "version": "0",
        "id": format!("reconciled-{}", alarm.timestamp.timestamp_millis()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": alarm.account,
        "time": alarm.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": alarm.region,
        "resources": [alarm.arn],
        "detail": {
            "alarmName": alarm.name,
            "state": {"value": alarm.state.as_str(), "reason": alarm.reason, "timestamp": alarm.timestamp_rfc3339()},
            "previousState": {"value": "ALARM"},
            "configuration": {}
        }
    })
}

/// A request to reconcile, as the schedule sends it: `{"reconcile": {...}}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRequest {
    /// The time to reconcile at (a replay's virtual clock); the wall clock when absent.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}
