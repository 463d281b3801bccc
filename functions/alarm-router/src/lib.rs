//! The alarm router: decides what a CloudWatch alarm state change needs, and does it.
//!
//! ALARM + remediate starts the first-response state machine under the transition's incident key;
//! ALARM + incident opens an Incident Manager incident (SNS where no response plan is configured);
//! ALARM + notify publishes to SNS; OK resolves what the ALARM opened. When automation cannot be
//! started, the alarm goes to humans over SNS instead: nothing the router accepts is dropped.
//!
//! The router also writes the state machine's pages (`{"page": "escalation" | "recovery", ...}`),
//! so that every message people read comes from one writer, in one voice, with the same SNS
//! message attributes ([`shared::page::ATTRIBUTE_NAMES`]).

pub mod decisions;
pub mod flapping;
pub mod groups;
pub mod inhibitors;
pub mod lifecycle;
pub mod metrics;
pub mod reconcile;
pub mod silences;

use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_ssmincidents::types::{
    AttributeValueList, Condition, Filter, IncidentRecordStatus, ItemIdentifier, ItemType, ItemValue, RelatedItem,
    TriggerDetails,
};
use aws_smithy_types::DateTime as SmithyDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::aws::{describe, is_transient};
use shared::incident::execution_arn;
use shared::page::{ExecutionDocument, MessageKind, Page, Suppression, attributes};
use shared::text::{SNS_ATTRIBUTES_RESERVE, SNS_MESSAGE_BYTES, truncate};
use shared::{Action, Alarm, AlarmState, FirstResponseInput, IncidentKey, Notice, Route, Routes};

use crate::flapping::{Flap, FlapHistory};
use crate::groups::{Departure, Groups, Membership};
use crate::lifecycle::{AlarmRecord, Applied, Lifecycle};
use crate::silences::Silences;
use strum::{EnumIter, IntoStaticStr};

/// Incident Manager keeps at most this much of the triggering event.
pub const MAX_TRIGGER_RAW_DATA: usize = 4000;
/// How much of an alarm's reason or description a message carries (CloudWatch itself allows about
/// 1,000 characters; a delivery may carry more).
pub const MAX_REASON_BYTES: usize = 8192;
/// What the router tells Incident Manager created the incident.
pub const TRIGGER_SOURCE: &str = "first-response.alarm-router";

/// Errors the router returns; the variant name is the error name Lambda reports.
#[derive(Debug, thiserror::Error, IntoStaticStr, EnumIter)]
pub enum RouterError {
    /// Not an alarm state change the router can act on; nothing was done.
    #[error("{0}")]
    InvalidEvent(String),
    /// The router's own configuration is wrong.
    #[error("{0}")]
    ConfigError(String),
    /// AWS was unavailable or throttled us; a retry may succeed.
    #[error("{0}")]
    TransientError(String),
}

shared::lambda_error_names!(RouterError);

/// Where the router sends things, read once at cold start.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub state_machine_arn: String,
    pub topic_arn: String,
    /// Incident Manager response plan; `None` sends incidents to SNS.
    pub response_plan_arn: Option<String>,
    pub routes: Routes,
    /// The state table (`STATE_TABLE`) where incident groups are kept; `None` groups nothing.
    pub state_table: Option<String>,
}

impl RouterConfig {
    /// Reads `STATE_MACHINE_ARN`, `ALERT_TOPIC_ARN`, optional `RESPONSE_PLAN_ARN`; the routing
    /// rules are the compiled-in `infra/routes.yaml`.
    pub fn from_env() -> Result<Self, RouterError> {
        let routes = Routes::deployed().map_err(|e| RouterError::ConfigError(e.to_string()))?;
        Ok(Self {
            state_machine_arn: shared::required_env("STATE_MACHINE_ARN").map_err(RouterError::ConfigError)?,
            topic_arn: shared::required_env("ALERT_TOPIC_ARN").map_err(RouterError::ConfigError)?,
            response_plan_arn: shared::optional_env("RESPONSE_PLAN_ARN"),
            routes,
            state_table: shared::optional_env("STATE_TABLE"),
        })
    }
}

/// The AWS clients the router uses, built once at cold start.
#[derive(Debug, Clone)]
pub struct Clients {
    pub sfn: aws_sdk_sfn::Client,
    pub sns: aws_sdk_sns::Client,
    pub incidents: aws_sdk_ssmincidents::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// For the reconciler: what the alarms say now.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            sfn: aws_sdk_sfn::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            incidents: aws_sdk_ssmincidents::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
        }
    }
}

impl RouterConfig {
    /// The alarms' flap history, when there is a state table.
    fn flap_history<'a>(&'a self, clients: &'a Clients) -> Option<FlapHistory<'a>> {
        Some(FlapHistory { client: &clients.dynamodb, table: self.state_table.as_deref()? })
    }

    /// The alarms' lifecycle records, when there is a state table.
    fn lifecycle<'a>(&'a self, clients: &'a Clients) -> Option<Lifecycle<'a>> {
        Some(Lifecycle { client: &clients.dynamodb, table: self.state_table.as_deref()? })
    }

    /// The silences, when there is a state table.
    fn silences<'a>(&'a self, clients: &'a Clients) -> Option<Silences<'a>> {
        Some(Silences { client: &clients.dynamodb, table: self.state_table.as_deref()? })
    }

    /// The inhibiting alarms' states, when there is a state table and the rules inhibit.
    fn inhibitors<'a>(&'a self, clients: &'a Clients) -> Option<inhibitors::Inhibitors<'a>> {
        if self.routes.inhibitions().is_empty() {
            return None;
        }
        Some(inhibitors::Inhibitors { client: &clients.dynamodb, table: self.state_table.as_deref()? })
    }

    /// What keeps an ALARM of `route` quiet now, if anything: an operator's silence first (it names
    /// a person and a reason), then the rules' maintenance windows, then inhibition.
    async fn quiet(
        &self,
        clients: &Clients,
        stored: &[shared::silence::Silence],
        route: &str,
        alarm: &Alarm,
    ) -> Result<Option<shared::silence::Silence>, RouterError> {
        if let Some(silence) = shared::silence::silencing(stored, route, alarm) {
            return Ok(Some(silence.clone()));
        }
        if let Some(window) = self.routes.maintenance_silence(route, alarm) {
            return Ok(Some(window));
        }
        match self.inhibitors(clients) {
            Some(inhibitors) => inhibitors.inhibiting(self.routes.inhibitions(), route, alarm).await,
            None => Ok(None),
        }
    }

    /// The group `alarm` belongs to on `route` and the table it is kept in, when the route groups.
    fn group_of<'a>(&'a self, clients: &'a Clients, route: &Route, alarm: &Alarm) -> Option<(Groups<'a>, String)> {
        let table = self.state_table.as_deref()?;
        let key = route.group_key(alarm)?;
        Some((Groups { client: &clients.dynamodb, table }, key))
    }
}

/// What the router decided and did for one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// remediate, incident, notify, ignore or resolve.
    pub action: DecisionAction,
    pub route: Route,
    pub incident_key: IncidentKey,
    pub alarm: Alarm,
    /// What was done, with the identifiers AWS returned.
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DecisionAction {
    Remediate,
    Incident,
    Notify,
    Ignore,
    Resolve,
    /// The alarm joined an open group: no page (its remediation, if any, still runs).
    Group,
    /// A silence kept the ALARM quiet.
    Silence,
    /// The alarm flaps: automation stops for it, and it is paged once.
    Flapping,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "did")]
pub enum Outcome {
    /// The first-response execution was started (or had been started by an earlier delivery).
    #[serde(rename_all = "camelCase")]
    StartedExecution { execution_arn: String, duplicate: bool },
    /// An Incident Manager incident was opened (or found, for a repeated delivery).
    #[serde(rename_all = "camelCase")]
    OpenedIncident { incident_record_arn: String },
    /// A message went to the SNS topic; `fallbackFrom` says which action could not be carried out.
    #[serde(rename_all = "camelCase")]
    Published {
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_from: Option<String>,
    },
    /// Open incidents for the alarm were resolved and the recovery published.
    #[serde(rename_all = "camelCase")]
    Resolved { incident_record_arns: Vec<String>, message_id: String },
    /// The alarm returned to OK while its first-response execution was still running: that
    /// execution watches the alarm itself and announces the recovery, so the router says nothing
    /// that it could contradict.
    #[serde(rename_all = "camelCase")]
    LeftToExecution { running_execution_arn: String },
    /// The alarm's latest first-response execution fixed it and has announced the recovery
    /// already: one recovery message per fixed alarm.
    #[serde(rename_all = "camelCase")]
    AnnouncedByExecution { announcing_execution_arn: String },
    /// The alarm joined its route's open group: it pages no one (a remediation still runs).
    #[serde(rename_all = "camelCase")]
    Grouped {
        group: String,
        /// The incident key of the ALARM that opened the group.
        opened_by: String,
        members: usize,
        firing: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_arn: Option<String>,
    },
    /// A silence matched the ALARM: nobody is paged, and nothing runs unless the silence allows
    /// automation (then the execution's escalation does not page either).
    #[serde(rename_all = "camelCase")]
    Silenced {
        silence: String,
        until: chrono::DateTime<chrono::Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_arn: Option<String>,
    },
    /// The alarm keeps changing state: this change either made it flapping (and paged, once) or
    /// is recorded quietly; no automation runs for it.
    #[serde(rename_all = "camelCase")]
    Flapping {
        since: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// The alarm left its group, whose other members still fire: the recovery waits for them.
    #[serde(rename_all = "camelCase")]
    StillFiringInGroup { group: String, firing: usize },
    /// Nothing was done, for this reason.
    Ignored { reason: String },
}

/// What kind of quiet a silence's id names: an operator's silence, a window or an inhibition.
pub fn suppression_of(id: &str) -> Suppression {
    if id.starts_with(shared::maintenance::WINDOW_ID_PREFIX) {
        Suppression::Maintenance
    } else if id.starts_with(shared::inhibition::INHIBIT_ID_PREFIX) {
        Suppression::Inhibited
    } else {
        Suppression::Silenced
    }
}

impl Outcome {
    /// What was done, in a few words, for a trace or an operator's listing.
    pub fn summary(&self) -> String {
        match self {
            Self::StartedExecution { duplicate: true, .. } => "execution already started".to_owned(),
            Self::StartedExecution { .. } => "execution started".to_owned(),
            Self::OpenedIncident { .. } => "incident opened (paged)".to_owned(),
            Self::Published { fallback_from: Some(from), .. } => format!("could not {from}: paged instead"),
            Self::Published { .. } => "published".to_owned(),
            Self::Resolved { .. } => "recovery announced".to_owned(),
            Self::LeftToExecution { .. } => "left to its running execution".to_owned(),
            Self::AnnouncedByExecution { .. } => "recovery announced by its execution".to_owned(),
            Self::Grouped { group, members, .. } => format!("joined {group} ({members} alarms): no page"),
            Self::Silenced { silence, until, .. } => {
                format!("kept quiet by {silence} until {}", until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }
            Self::Flapping { message_id: Some(_), .. } => "flapping: paged once".to_owned(),
            Self::Flapping { .. } => "flapping: recorded quietly".to_owned(),
            Self::StillFiringInGroup { firing, .. } => format!("left its group ({firing} still firing)"),
            Self::Ignored { reason } => format!("ignored: {reason}"),
        }
    }

    /// Whether this outcome reached people with a page about the ALARM (so a recovery is owed).
    pub fn paged(&self) -> bool {
        matches!(self, Self::Published { .. } | Self::OpenedIncident { .. })
    }

    /// The execution this decision started, if it started one.
    pub fn execution_arn(&self) -> Option<&str> {
        match self {
            Self::StartedExecution { execution_arn, .. } => Some(execution_arn),
            Self::Grouped { execution_arn, .. } | Self::Silenced { execution_arn, .. } => execution_arn.as_deref(),
            _ => None,
        }
    }
}

/// What the state machine's `Write Page` states ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PageRequest {
    Escalation,
    Recovery,
}

/// The function's entry point: a page request from the state machine (`page` is set), else an
/// EventBridge alarm event for [`handle`].
pub async fn dispatch(clients: &Clients, config: &RouterConfig, event: Value) -> Result<Value, RouterError> {
    Ok(dispatch_measured(clients, config, event).await?.0)
}

/// [`dispatch`], and what the answer means as metrics, for the Lambda binary to emit once the
/// answer is ready (tools that run the router in process, such as replay, keep stdout for
/// themselves).
pub async fn dispatch_measured(
    clients: &Clients,
    config: &RouterConfig,
    event: Value,
) -> Result<(Value, Vec<shared::metrics::Measurement>), RouterError> {
    let (answer, measured) = match page_request(config, &event) {
        Some((request, route)) => {
            let page = page_for(clients, config, event).await?;
            let measured = metrics::of_page(request, &route, &page);
            (serde_json::to_value(page), measured)
        }
        None if event.get("reconcile").is_some() => {
            let request: reconcile::ReconcileRequest = serde_json::from_value(event["reconcile"].clone())
                .map_err(|e| RouterError::InvalidEvent(format!("reconcile: {e}")))?;
            let at = request.at.unwrap_or_else(chrono::Utc::now);
            (serde_json::to_value(reconcile::reconcile(clients, config, at).await?), Vec::new())
        }
        None if event.get("releasePage").is_some() => (Ok(release_page(clients, config, event).await?), Vec::new()),
        None if event.get("page").is_some() => {
            (serde_json::to_value(page_for(clients, config, event).await?), Vec::new())
        }
        None => {
            let decision = handle(clients, config, event).await?;
            let measured = metrics::of_decision(&decision);
            (serde_json::to_value(decision), measured)
        }
    };
    let answer = answer.map_err(|e| RouterError::ConfigError(format!("the answer does not serialize: {e}")))?;
    Ok((answer, measured))
}

/// Which page a request asks for and the deployed route it names (for its metrics); none when the
/// event is not a page request or names no deployed route.
fn page_request(config: &RouterConfig, event: &Value) -> Option<(PageRequest, String)> {
    let request = serde_json::from_value(event.get("page")?.clone()).ok()?;
    let route = config.routes.by_name(event.pointer("/route/name")?.as_str()?)?;
    Some((request, route.name.clone()))
}

/// The page the state machine publishes, or a suppressed one when the alarm's group speaks for it:
/// an escalation pages only if its group has not paged yet, and a grouped alarm's recovery is the
/// group's to announce, when its last member is OK. Whether a route groups comes from the
/// deployed rules, never from the task input.
pub async fn page_for(clients: &Clients, config: &RouterConfig, event: Value) -> Result<Page, RouterError> {
    let context = serde_json::from_value::<PageContext>(event.clone()).ok();
    let mut page = write_page(event)?;
    // An execution a silence or a maintenance window let run pages no one when it escalates.
    if let Some(context) = &context
        && context.page == PageRequest::Escalation
        && let Some(route) = config.routes.by_name(&context.route.name)
    {
        let stored = match config.silences(clients) {
            Some(silences) => silences.all().await?,
            None => Vec::new(),
        };
        if let Some(silence) = config.quiet(clients, &stored, &route.name, &context.alarm).await? {
            let by = suppression_of(&silence.id);
            page.suppress(by, format!("silenced by {} until {}", silence.id, silence.ends_at));
            return Ok(page);
        }
    }
    let grouping = context.as_ref().and_then(|context| {
        let route = config.routes.by_name(&context.route.name)?;
        let (groups, key) = config.group_of(clients, &route, &context.alarm)?;
        Some((groups, key, context.page, context.incident_key.as_str().to_owned()))
    });
    // An ungrouped alarm's escalation pages for it alone: from now on its recovery is owed, even if
    // the alarm returned to OK while the execution ran (the reconciler then tells it).
    if grouping.is_none()
        && let Some(context) = &context
        && context.page == PageRequest::Escalation
        && let (Some(lifecycle), Some(route)) = (config.lifecycle(clients), config.routes.by_name(&context.route.name))
    {
        lifecycle.owe_recovery(&context.alarm, &route.name, chrono::Utc::now()).await?;
    }
    if let Some((groups, key, request, claimant)) = grouping {
        let speaks = match request {
            PageRequest::Escalation => match groups.claim_page(&key, &claimant).await? {
                groups::Claim::Pages => true,
                groups::Claim::PagedAlready { room_of } => {
                    page.room_of = room_of;
                    false
                }
            },
            PageRequest::Recovery => false,
        };
        if !speaks {
            page.suppress(
                Suppression::Grouped,
                match request {
                    PageRequest::Escalation => format!("group {key} has paged already"),
                    PageRequest::Recovery => format!("group {key} announces its recovery when its last alarm is OK"),
                },
            );
        }
    }
    Ok(page)
}

/// `Release Group Page`: the alert topic refused this escalation's page, so its claim on its
/// group's page is given back, and the group's next escalation pages. Which group comes from the
/// deployed rules, never from the task input; only the claimant's own claim is given back.
pub async fn release_page(clients: &Clients, config: &RouterConfig, mut event: Value) -> Result<Value, RouterError> {
    let request = event.get_mut("releasePage").map(Value::take).unwrap_or_default();
    let context: ReleaseContext = serde_json::from_value(request)
        .map_err(|e| RouterError::InvalidEvent(format!("releasePage: {e} (alarm, route and incidentKey)")))?;
    let route = config
        .routes
        .by_name(&context.route.name)
        .ok_or_else(|| RouterError::InvalidEvent(format!("releasePage: no deployed route {}", context.route.name)))?;
    let Some((groups, key)) = config.group_of(clients, &route, &context.alarm) else {
        return Ok(serde_json::json!({"released": false, "why": "the route does not group"}));
    };
    let released = groups.release_claim(&key, context.incident_key.as_str()).await?;
    tracing::warn!(group = %key, released, "an escalation's page was refused; its claim on the group's page");
    Ok(serde_json::json!({"released": released, "group": key}))
}

/// What `Release Group Page` says of the escalation.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseContext {
    alarm: Alarm,
    route: RouteName,
    incident_key: IncidentKey,
}

#[derive(Deserialize)]
struct RouteName {
    name: String,
}

/// What a page request says about its alarm, to find its group.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageContext {
    page: PageRequest,
    alarm: Alarm,
    route: Route,
    incident_key: IncidentKey,
}

/// Writes the page the state machine publishes; no side effect, no AWS call.
pub fn write_page(mut event: Value) -> Result<Page, RouterError> {
    let request = event
        .as_object_mut()
        .and_then(|fields| fields.remove("page"))
        .ok_or_else(|| RouterError::InvalidEvent("a page request names the page it wants".into()))?;
    let request: PageRequest = serde_json::from_value(request)
        .map_err(|e| RouterError::InvalidEvent(format!("page: {e} (escalation or recovery)")))?;
    let document: ExecutionDocument = serde_json::from_value(event)
        .map_err(|e| RouterError::InvalidEvent(format!("not a first-response document: {e}")))?;
    Ok(match request {
        PageRequest::Escalation => document.escalation_page(),
        PageRequest::Recovery => document.recovery_page(),
    })
}

/// Routes one EventBridge event. Invalid events fail with `InvalidEvent` before any side effect.
/// With a state table, the decision is kept for `first-response what-happened`; that record is
/// best effort: what was done is done, and failing now would only make EventBridge redeliver.
pub async fn handle(clients: &Clients, config: &RouterConfig, event: Value) -> Result<Decision, RouterError> {
    let decision = route_event(clients, config, event).await?;
    record_decision(clients, config, &decision).await;
    Ok(decision)
}

/// Keeps `decision` for `first-response what-happened`, best effort.
pub(crate) async fn record_decision(clients: &Clients, config: &RouterConfig, decision: &Decision) {
    if let Some(table) = config.state_table.as_deref() {
        let log = decisions::Decisions { client: &clients.dynamodb, table };
        if let Err(err) = log.record(decision, chrono::Utc::now()).await {
            tracing::warn!(error = %err, alarm = %decision.alarm.name, "the decision was made but not recorded");
        }
    }
}

async fn route_event(clients: &Clients, config: &RouterConfig, event: Value) -> Result<Decision, RouterError> {
    if event.get("detail-type").and_then(Value::as_str) == Some(CONFIGURATION_CHANGE) {
        return deleted(clients, config, event).await;
    }
    let alarm = Alarm::from_event(&event).map_err(|e| RouterError::InvalidEvent(e.to_string()))?;
    let route = config.routes.route(&alarm);
    handle_transition(clients, config, alarm, route, &event).await
}

/// The detail-type of the event CloudWatch sends when an alarm is created, updated or deleted.
pub const CONFIGURATION_CHANGE: &str = "CloudWatch Alarm Configuration Change";

/// A deleted alarm sends no OK: its deletion is its last transition, to OK, at the event's time,
/// handled on the route that took its earlier transitions (so it leaves its group, stops
/// inhibiting, and its owed recovery is told).
async fn deleted(clients: &Clients, config: &RouterConfig, mut event: Value) -> Result<Decision, RouterError> {
    let operation = event.pointer("/detail/operation").and_then(Value::as_str).unwrap_or_default().to_owned();
    if operation != "delete" {
        return Err(RouterError::InvalidEvent(format!(
            "a configuration change acts only when an alarm is deleted; this one is {operation:?}"
        )));
    }
    let at = event.get("time").cloned().unwrap_or(Value::Null);
    event["detail-type"] = Value::from(shared::alarm::ALARM_DETAIL_TYPE);
    event["detail"]["previousState"] = serde_json::json!({"value": "ALARM"});
    event["detail"]["state"] = serde_json::json!({
        "value": "OK",
        "reason": "The alarm was deleted: a deleted alarm sends no OK, so its recovery is told now.",
        "timestamp": at,
    });
    let alarm = Alarm::from_event(&event).map_err(|e| RouterError::InvalidEvent(format!("deleted alarm: {e}")))?;
    let recorded = match config.lifecycle(clients) {
        Some(lifecycle) => lifecycle.get(&alarm.arn).await?.and_then(|record| record.route),
        None => None,
    };
    let route = recorded.and_then(|name| config.routes.by_name(&name)).unwrap_or_else(|| config.routes.route(&alarm));
    handle_transition(clients, config, alarm, route, &event).await
}

/// Handles one transition of `alarm`, taken by `route`: the alarm's own event, or one the
/// reconciler wrote for what `DescribeAlarms` says (a deleted alarm's last transition is to OK).
pub(crate) async fn handle_transition(
    clients: &Clients,
    config: &RouterConfig,
    alarm: Alarm,
    route: Route,
    event: &Value,
) -> Result<Decision, RouterError> {
    let incident_key = IncidentKey::for_transition(&route.name, &alarm);
    tracing::info!(alarm = %alarm.name, state = %alarm.state, route = %route.name, key = %incident_key, "routing");

    let decide = |action, outcome| Decision {
        action,
        route: route.clone(),
        incident_key: incident_key.clone(),
        alarm: alarm.clone(),
        outcome,
    };
    let ignored = |reason: String| decide(DecisionAction::Ignore, Outcome::Ignored { reason });

    // The alarm's own order, not the order of delivery: a transition older than one applied
    // already is history, and changes nothing (no state, no page, no recovery).
    let lifecycle = config.lifecycle(clients);
    let before = match &lifecycle {
        Some(lifecycle) => match lifecycle.apply(&alarm, &route.name, chrono::Utc::now()).await? {
            Applied::Stale { latest } => {
                let (state, at) = (latest.state.map(AlarmState::as_str).unwrap_or("a state"), latest.at);
                let at = at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_default();
                return Ok(ignored(format!(
                    "{} at {} is older than its latest transition ({state} at {at}): nothing changes",
                    alarm.state,
                    alarm.timestamp_rfc3339()
                )));
            }
            // A redelivery of the ALARM people were paged about (its page went out and was
            // recorded): paging again would be a duplicate. Anything short of that is finished.
            Applied::Again { before }
                if alarm.state == AlarmState::Alarm && before.paged_at == Some(alarm.timestamp) =>
            {
                return Ok(ignored(format!(
                    "a redelivery of the ALARM at {} that paged already: nothing is sent again",
                    alarm.timestamp_rfc3339()
                )));
            }
            applied => applied.before().clone(),
        },
        None => AlarmRecord::default(),
    };

    // An inhibiting alarm's state is kept whatever its own route does with it (even
    // when CloudWatch suppressed its actions: it is still in ALARM).
    if let Some(inhibitors) = config.inhibitors(clients) {
        inhibitors.record(config.routes.inhibitions(), &alarm, chrono::Utc::now()).await?;
    }
    if let Some(by) = &alarm.actions_suppressed_by {
        return Ok(ignored(format!("composite alarm actions are suppressed by {by}")));
    }
    if route.action == Action::Ignore {
        return Ok(ignored(format!("route {} ignores this alarm", route.name)));
    }
    let flap = match (config.flap_history(clients), alarm.state) {
        (Some(history), AlarmState::Alarm | AlarmState::Ok) => {
            history.record(&alarm, route.flapping, chrono::Utc::now()).await?
        }
        _ => Flap::Steady,
    };
    match alarm.state {
        AlarmState::InsufficientData => Ok(ignored("INSUFFICIENT_DATA is not acted on".into())),
        // After INSUFFICIENT_DATA the event does not say whether an ALARM came before it, so OK
        // resolves whatever is open for the alarm and announces the recovery either way: a notice
        // too many is better than an incident left open.
        AlarmState::Ok => {
            if let Some((groups, group)) = config.group_of(clients, &route, &alarm) {
                let flapped = match flap {
                    Flap::Steady => None,
                    _ => Some(flapping(clients, config, &alarm, &route, &incident_key, &flap).await?),
                };
                // Even a flapping alarm leaves its group, so that the group can resolve.
                let outcome = leave_group(clients, config, &alarm, &route, &incident_key, &groups, &group).await?;
                return Ok(match (flapped, outcome) {
                    (Some(flapped), Outcome::Ignored { .. }) => decide(DecisionAction::Flapping, flapped),
                    (_, outcome) => decide(DecisionAction::Resolve, outcome),
                });
            }
            if flap != Flap::Steady {
                // Its recovery, if owed, waits until it is steady: the reconciler tells it then.
                let outcome = flapping(clients, config, &alarm, &route, &incident_key, &flap).await?;
                return Ok(decide(DecisionAction::Flapping, outcome));
            }
            // Recoveries are never silenced; but an ALARM a silence kept quiet was never announced,
            // unless an ALARM of the same episode (before an INSUFFICIENT_DATA) was.
            if let Some(silence) = &before.silenced_by
                && !before.owes_recovery
            {
                return Ok(ignored(format!("its ALARM was kept quiet by silence {silence}: nothing was announced")));
            }
            if route.action == Action::Remediate
                && let Some(outcome) =
                    recovery_told_by_execution(clients, config, &alarm, &route, before.execution_arn.as_deref()).await
            {
                tracing::info!(outcome = ?outcome, "the recovery is the execution's to announce");
                if let (Some(lifecycle), Outcome::AnnouncedByExecution { .. }) = (&lifecycle, &outcome)
                    && before.owes_recovery
                {
                    lifecycle.recovered(&alarm.arn).await?;
                }
                return Ok(decide(DecisionAction::Resolve, outcome));
            }
            let outcome = resolve(clients, config, &alarm, &route, &incident_key).await?;
            // Only a recovery that was owed is written off: no write for an alarm that paged no one.
            if let Some(lifecycle) = &lifecycle
                && before.owes_recovery
            {
                lifecycle.recovered(&alarm.arn).await?;
            }
            Ok(decide(DecisionAction::Resolve, outcome))
        }
        AlarmState::Alarm => {
            let stored = match config.silences(clients) {
                Some(silences) => silences.all().await?,
                None => Vec::new(),
            };
            let quiet = config.quiet(clients, &stored, &route.name, &alarm).await?;
            if let Some(silence) = &quiet {
                tracing::info!(silence = %silence.id, until = %silence.ends_at, "silenced");
                if let Some(lifecycle) = &lifecycle {
                    lifecycle.silenced(&alarm, &silence.id).await?;
                }
                let execution_arn = match route.action {
                    Action::Remediate if silence.allow_automation => {
                        match start_remediation(clients, config, &alarm, &route, &incident_key).await? {
                            Outcome::StartedExecution { execution_arn, .. } => Some(execution_arn),
                            other => return Ok(decide(DecisionAction::Remediate, other)),
                        }
                    }
                    _ => None,
                };
                let outcome = Outcome::Silenced { silence: silence.id.clone(), until: silence.ends_at, execution_arn };
                return Ok(decide(DecisionAction::Silence, outcome));
            }
            if flap != Flap::Steady {
                let outcome = flapping(clients, config, &alarm, &route, &incident_key, &flap).await?;
                if let (Some(lifecycle), Outcome::Flapping { message_id: Some(_), .. }) = (&lifecycle, &outcome) {
                    lifecycle.owe_recovery(&alarm, &route.name, chrono::Utc::now()).await?;
                }
                return Ok(decide(DecisionAction::Flapping, outcome));
            }
            let pages_itself = route.action != Action::Remediate;
            if let Some((groups, group)) = config.group_of(clients, &route, &alarm) {
                let window = route.group.as_ref().map(|g| g.window_seconds).unwrap_or_default();
                let membership =
                    groups.join(&group, window, &alarm, &incident_key, &route.name, chrono::Utc::now()).await?;
                if let Membership::Redelivered { paged } = membership
                    && pages_itself
                {
                    let page = if paged {
                        groups::OpenerPage::Sent
                    } else {
                        groups.claim_opener_page(&group, chrono::Utc::now()).await?
                    };
                    match page {
                        // The first delivery paged; starting an execution again is harmless, paging is not.
                        groups::OpenerPage::Sent => {
                            return Ok(ignored(format!(
                                "a redelivery of the ALARM that opened group {group}: paged already"
                            )));
                        }
                        groups::OpenerPage::InFlight => {
                            return Err(RouterError::TransientError(format!(
                                "another delivery of this ALARM is sending group {group}'s page: retry to see it sent"
                            )));
                        }
                        groups::OpenerPage::Send => {}
                    }
                }
                // A group whose page nobody sent or is sending (the opener's page failed, and its
                // OK may come before its retry) is paged by the next alarm that joins it.
                let takes_page = match &membership {
                    Membership::Joined { page_unclaimed: true, .. } if pages_itself => {
                        groups.claim_opener_page(&group, chrono::Utc::now()).await? == groups::OpenerPage::Send
                    }
                    _ => false,
                };
                if let Membership::Joined { opened_by, members, firing, .. } = membership
                    && !takes_page
                {
                    tracing::info!(group = %group, members, firing, "joined the open group: no page");
                    // Each alarm is still remediated, under the breaker; only the paging is shared.
                    let execution_arn = match route.action {
                        Action::Remediate => {
                            match start_remediation(clients, config, &alarm, &route, &incident_key).await? {
                                Outcome::StartedExecution { execution_arn, .. } => Some(execution_arn),
                                // Could not start: the fallback has paged, as for any alarm.
                                other => return Ok(decide(DecisionAction::Remediate, other)),
                            }
                        }
                        _ => None,
                    };
                    let outcome = Outcome::Grouped { group, opened_by, members, firing, execution_arn };
                    return Ok(decide(DecisionAction::Group, outcome));
                }
                // It opened the group (or is the opener again, its page not yet confirmed): the page
                // is marked sent only once it was, so a lost page is sent by the redelivery.
                let handled = handle_alarm(clients, config, &alarm, &route, &incident_key, event).await;
                let (action, outcome) = match handled {
                    Ok(handled) => handled,
                    Err(err) => {
                        if pages_itself {
                            groups.release_page(&group).await;
                        }
                        return Err(err);
                    }
                };
                if outcome.paged() {
                    groups.paged(&group, &incident_key).await?;
                }
                return Ok(decide(action, outcome));
            }
            let (action, outcome) = handle_alarm(clients, config, &alarm, &route, &incident_key, event).await?;
            if let Some(lifecycle) = &lifecycle
                && outcome.paged()
            {
                lifecycle.owe_recovery(&alarm, &route.name, chrono::Utc::now()).await?;
            }
            Ok(decide(action, outcome))
        }
    }
}

/// A change of a flapping alarm: the one that made it flapping pages, once, with the history;
/// the others are recorded quietly. Nothing runs either way.
async fn flapping(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
    flap: &Flap,
) -> Result<Outcome, RouterError> {
    match flap {
        Flap::Started { changes } => {
            let settings = route.flapping;
            let note = format!(
                "FLAPPING: it changed state {} times within {} minutes ({}). Automation stops for this alarm, and its \
                 further changes are recorded quietly, until it has not changed state for {} minutes.",
                changes.len(),
                settings.window_minutes,
                changes.join(", "),
                settings.quiet_minutes
            );
            tracing::warn!(alarm = %alarm.name, changes = changes.len(), "flapping: paging once");
            let message_id =
                publish_as(clients, config, alarm, route, key, MessageKind::Escalation, "FLAPPING", Some(&note))
                    .await?;
            Ok(Outcome::Flapping { since: alarm.timestamp_rfc3339(), message_id: Some(message_id) })
        }
        Flap::Ongoing { since } => Ok(Outcome::Flapping { since: since.clone(), message_id: None }),
        Flap::Steady => Err(RouterError::ConfigError("flapping() called for a steady alarm".into())),
    }
}

/// An ALARM handled on its own (or as the first of its group), as its route's action says.
async fn handle_alarm(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    incident_key: &IncidentKey,
    event: &Value,
) -> Result<(DecisionAction, Outcome), RouterError> {
    let (alarm, route) = (alarm.clone(), route.clone());
    let incident_key = incident_key.clone();
    {
        match route.action {
            Action::Remediate => {
                let outcome = start_remediation(clients, config, &alarm, &route, &incident_key).await?;
                Ok((DecisionAction::Remediate, outcome))
            }
            Action::Incident => {
                let outcome = open_incident(clients, config, &alarm, &route, &incident_key, event).await?;
                Ok((DecisionAction::Incident, outcome))
            }
            Action::Notify | Action::Ignore => {
                let outcome =
                    notify(clients, config, &alarm, &route, &incident_key, MessageKind::Notification, None).await?;
                Ok((DecisionAction::Notify, outcome))
            }
        }
    }
}

/// An OK of a grouped alarm: it leaves its group, and the last to leave announces the recovery,
/// once, for the whole group. An alarm that was not firing in a group was never announced.
async fn leave_group(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
    groups: &Groups<'_>,
    group: &str,
) -> Result<Outcome, RouterError> {
    match groups.leave(group, alarm).await? {
        Departure::NotFiring => Ok(Outcome::Ignored {
            reason: format!(
                "{} is not firing in an open group of route {}: nothing was announced",
                alarm.name, route.name
            ),
        }),
        Departure::Left { firing, .. } => Ok(Outcome::StillFiringInGroup { group: group.to_owned(), firing }),
        Departure::Resolved { members, first_alarm_arn, .. } => {
            let mut resolved = Vec::new();
            if config.response_plan_arn.is_some() {
                for arn in open_incidents_for(&clients.incidents, &first_alarm_arn).await? {
                    resolve_incident(&clients.incidents, &arn, alarm, &key.for_record(&arn)).await?;
                    resolved.push(arn);
                }
            }
            let note = format!(
                "Group {group}: all {members} alarm(s) of route {} are back to OK; {} was the last.",
                route.name, alarm.name
            );
            let message_id = publish(clients, config, alarm, route, key, MessageKind::Recovery, Some(&note)).await?;
            groups.recovery_told(group, &alarm.arn).await;
            Ok(Outcome::Resolved { incident_record_arns: resolved, message_id })
        }
    }
}

async fn start_remediation(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
) -> Result<Outcome, RouterError> {
    // A target taken from the alarm must be there, and be an instance: else nothing runs, and
    // people are paged with the reason (the remediation function resolves it again, from
    // CloudWatch's own record of the alarm, before it acts).
    if let Some(remediation) = &route.remediation {
        let composite = alarm.kind == shared::AlarmKind::Composite;
        let dimensions = alarm.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if let Err(err) = remediation.targets.for_alarm(&alarm.name, composite, dimensions) {
            let why = format!("{}: {err}", err.name());
            tracing::warn!(key = %key, error = %why, "no target: falling back to SNS");
            return notify(clients, config, alarm, route, key, MessageKind::Escalation, Some(("remediate", &why)))
                .await;
        }
    }
    let input = FirstResponseInput {
        alarm: alarm.clone(),
        route: route.clone(),
        incident_key: key.clone(),
        notice: Notice::new(alarm, route, &execution_arn(&config.state_machine_arn, key)),
    };
    let input = serde_json::to_string(&input).map_err(|e| RouterError::ConfigError(e.to_string()))?;
    let started = clients
        .sfn
        .start_execution()
        .state_machine_arn(&config.state_machine_arn)
        .name(key.as_str())
        .input(input)
        .send()
        .await;
    let outcome = match started {
        Ok(out) => Outcome::StartedExecution { execution_arn: out.execution_arn().to_owned(), duplicate: false },
        Err(err) if matches!(err.as_service_error(), Some(StartExecutionError::ExecutionAlreadyExists(_))) => {
            tracing::info!(key = %key, "execution already started by an earlier delivery");
            Outcome::StartedExecution { execution_arn: execution_arn(&config.state_machine_arn, key), duplicate: true }
        }
        Err(err) if is_transient(&err) => {
            return Err(RouterError::TransientError(format!("StartExecution: {}", describe(&err))));
        }
        Err(err) => {
            // The automation cannot run (missing state machine, permissions, ...): a human must know.
            let why = format!("could not start the first-response state machine: {}", describe(&err));
            tracing::error!(key = %key, error = %why, "falling back to SNS");
            return notify(clients, config, alarm, route, key, MessageKind::Escalation, Some(("remediate", &why)))
                .await;
        }
    };
    // Its OK finds the execution by the alarm's ARN, not by a name that other alarms may share.
    if let (Some(lifecycle), Outcome::StartedExecution { execution_arn, .. }) = (config.lifecycle(clients), &outcome) {
        lifecycle.started(alarm, execution_arn).await?;
    }
    Ok(outcome)
}

/// Whether the alarm's latest first-response execution tells people of this recovery: it is still
/// running (it watches the alarm itself and announces the recovery), or it fixed the alarm and
/// has announced it. The execution is the one the state table remembers for the alarm's ARN;
/// without a table, the newest of those started within one execution timeout before the OK whose
/// input names this alarm's ARN (names alone are not enough: alarms that share a long prefix share
/// the name's slug). When that cannot be told, `None`: the recovery is announced, since a
/// duplicate notice is better than a lost one.
async fn recovery_told_by_execution(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    remembered: Option<&str>,
) -> Option<Outcome> {
    use aws_sdk_sfn::types::ExecutionStatus;
    let told = |status: &ExecutionStatus, execution_arn: String| match status {
        ExecutionStatus::Running => Some(Outcome::LeftToExecution { running_execution_arn: execution_arn }),
        ExecutionStatus::Succeeded => Some(Outcome::AnnouncedByExecution { announcing_execution_arn: execution_arn }),
        // It escalated, failed or was stopped: people were paged and want to hear this.
        _ => None,
    };
    let describe_execution = |arn: String| async move {
        match clients.sfn.describe_execution().execution_arn(&arn).send().await {
            Ok(out) => Some(out),
            Err(err) => {
                tracing::warn!(error = %describe(&err), "DescribeExecution failed; announcing the recovery anyway");
                None
            }
        }
    };
    if let Some(arn) = remembered {
        let out = describe_execution(arn.to_owned()).await?;
        return told(out.status(), arn.to_owned());
    }
    let prefix = IncidentKey::alarm_prefix(&route.name, alarm);
    let timeout = i64::try_from(shared::EXECUTION_TIMEOUT_SECONDS).unwrap_or(i64::MAX);
    let oldest = alarm.timestamp.timestamp().saturating_sub(timeout);
    let mut pages = clients.sfn.list_executions().state_machine_arn(&config.state_machine_arn).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %describe(&err), "ListExecutions failed; announcing the recovery anyway");
                return None;
            }
        };
        for execution in page.executions() {
            if execution.start_date().secs() < oldest {
                return None;
            }
            if !execution.name().starts_with(&prefix) {
                continue;
            }
            let out = describe_execution(execution.execution_arn().to_owned()).await?;
            let input: Option<Value> = out.input().and_then(|input| serde_json::from_str(input).ok());
            if input.as_ref().and_then(|input| input.pointer("/alarm/arn")).and_then(Value::as_str) == Some(&alarm.arn)
            {
                return told(out.status(), execution.execution_arn().to_owned());
            }
        }
    }
    None
}

async fn open_incident(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
    event: &Value,
) -> Result<Outcome, RouterError> {
    let Some(plan) = &config.response_plan_arn else {
        return notify(clients, config, alarm, route, key, MessageKind::Incident, None).await;
    };
    let trigger = TriggerDetails::builder()
        .source(TRIGGER_SOURCE)
        .trigger_arn(&alarm.arn)
        .timestamp(SmithyDateTime::from_millis(alarm.timestamp.timestamp_millis()))
        .raw_data(truncate(&event.to_string(), MAX_TRIGGER_RAW_DATA))
        .build()
        .map_err(|e| RouterError::ConfigError(e.to_string()))?;
    let related = ItemIdentifier::builder()
        .r#type(ItemType::Other)
        .value(ItemValue::Url(alarm.console_url()))
        .build()
        .map_err(|e| RouterError::ConfigError(e.to_string()))?;
    let started = clients
        .incidents
        .start_incident()
        .response_plan_arn(plan)
        .client_token(key.as_str())
        .title(truncate(&format!("{}: {}", alarm.name, first_line(&alarm.reason)), 200))
        .impact(route.impact)
        .trigger_details(trigger)
        .related_items(RelatedItem::builder().identifier(related).title("CloudWatch alarm").build())
        .send()
        .await;
    match started {
        Ok(out) => Ok(Outcome::OpenedIncident { incident_record_arn: out.incident_record_arn().to_owned() }),
        Err(err) if is_transient(&err) => {
            Err(RouterError::TransientError(format!("StartIncident: {}", describe(&err))))
        }
        Err(err) => {
            let why = format!("could not open an Incident Manager incident: {}", describe(&err));
            tracing::error!(key = %key, error = %why, "falling back to SNS");
            notify(clients, config, alarm, route, key, MessageKind::Incident, Some(("incident", &why))).await
        }
    }
}

async fn resolve(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
) -> Result<Outcome, RouterError> {
    let mut resolved = Vec::new();
    if let Some(_plan) = &config.response_plan_arn {
        for arn in open_incidents_for(&clients.incidents, &alarm.arn).await? {
            resolve_incident(&clients.incidents, &arn, alarm, &key.for_record(&arn)).await?;
            resolved.push(arn);
        }
    }
    let message_id = publish(clients, config, alarm, route, key, MessageKind::Recovery, None).await?;
    Ok(Outcome::Resolved { incident_record_arns: resolved, message_id })
}

/// Open Incident Manager records that this alarm triggered.
async fn open_incidents_for(
    incidents: &aws_sdk_ssmincidents::Client,
    alarm_arn: &str,
) -> Result<Vec<String>, RouterError> {
    let open = Filter::builder()
        .key("status")
        .condition(Condition::Equals(AttributeValueList::StringValues(vec!["OPEN".to_owned()])))
        .build()
        .map_err(|e| RouterError::ConfigError(e.to_string()))?;
    let mut pages = incidents.list_incident_records().filters(open).into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListIncidentRecords", e))?;
        arns.extend(
            page.incident_record_summaries()
                .iter()
                .filter(|r| r.incident_record_source().and_then(|s| s.resource_arn()) == Some(alarm_arn))
                .map(|r| r.arn().to_owned()),
        );
    }
    Ok(arns)
}

/// Resolves one record; `token` is this transition's key for this record, so a redelivery is
/// idempotent and two records never share a client token.
async fn resolve_incident(
    incidents: &aws_sdk_ssmincidents::Client,
    record_arn: &str,
    alarm: &Alarm,
    token: &str,
) -> Result<(), RouterError> {
    let note = serde_json::json!({
        "content": format!("Alarm {} returned to OK at {}: resolved by the alarm router.", alarm.name, alarm.timestamp_rfc3339()),
    });
    let at = SmithyDateTime::from_millis(alarm.timestamp.timestamp_millis());
    incidents
        .create_timeline_event()
        .incident_record_arn(record_arn)
        .client_token(format!("{token}-timeline"))
        .event_time(at)
        .event_type("Custom Event")
        .event_data(note.to_string())
        .send()
        .await
        .map_err(|e| classify("CreateTimelineEvent", e))?;
    incidents
        .update_incident_record()
        .arn(record_arn)
        .client_token(format!("{token}-resolve"))
        .status(IncidentRecordStatus::Resolved)
        .send()
        .await
        .map_err(|e| classify("UpdateIncidentRecord", e))?;
    tracing::info!(record = record_arn, "incident resolved");
    Ok(())
}

fn classify<E>(operation: &str, err: aws_sdk_ssmincidents::error::SdkError<E>) -> RouterError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("{operation}: {}", describe(&err));
    if is_transient(&err) { RouterError::TransientError(message) } else { RouterError::ConfigError(message) }
}

async fn notify(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
    kind: MessageKind,
    fallback: Option<(&str, &str)>,
) -> Result<Outcome, RouterError> {
    let problem = fallback.map(|(_, why)| format!("Automation could not act: {why}"));
    let message_id = publish(clients, config, alarm, route, key, kind, problem.as_deref()).await?;
    Ok(Outcome::Published { message_id, fallback_from: fallback.map(|(action, _)| action.to_owned()) })
}

async fn publish(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
    kind: MessageKind,
    problem: Option<&str>,
) -> Result<String, RouterError> {
    let label = match kind {
        MessageKind::Recovery => "RECOVERED",
        MessageKind::Incident => "INCIDENT",
        MessageKind::Escalation | MessageKind::Notification => "ALARM",
    };
    publish_as(clients, config, alarm, route, key, kind, label, problem).await
}

/// [`publish`] under another subject label (`FLAPPING`).
#[allow(clippy::too_many_arguments)]
async fn publish_as(
    clients: &Clients,
    config: &RouterConfig,
    alarm: &Alarm,
    route: &Route,
    key: &IncidentKey,
    kind: MessageKind,
    label: &str,
    problem: Option<&str>,
) -> Result<String, RouterError> {
    let mut request = clients
        .sns
        .publish()
        .topic_arn(&config.topic_arn)
        .subject(shared::incident::sns_subject(&format!("[{label}] {}", alarm.name)))
        .message(truncate(
            &message_body(alarm, route, key, label, problem),
            SNS_MESSAGE_BYTES - SNS_ATTRIBUTES_RESERVE,
        ));
    for (name, value) in attributes(route, alarm, kind) {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| RouterError::ConfigError(e.to_string()))?;
        request = request.message_attributes(name, value);
    }
    let out = request.send().await.map_err(|e| {
        let message = format!("SNS Publish: {}", describe(&e));
        if is_transient(&e) { RouterError::TransientError(message) } else { RouterError::ConfigError(message) }
    })?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}

/// The notification a human reads: what fired, why, where, and where to look next.
/// `note` is a line said right after the headline (why automation could not act, or the group).
pub fn message_body(alarm: &Alarm, route: &Route, key: &IncidentKey, label: &str, note: Option<&str>) -> String {
    let mut lines = vec![format!("{label}: {}", alarm.name)];
    if let Some(line) = note {
        lines.push(line.to_owned());
    }
    let previous = alarm.previous_state.map(|s| s.as_str()).unwrap_or("unknown");
    lines.push(format!("State: {previous} -> {} at {}", alarm.state, alarm.timestamp_rfc3339()));
    lines.push(format!("Reason: {}", truncate(&alarm.reason, MAX_REASON_BYTES)));
    if let Some(description) = &alarm.description {
        lines.push(format!("Description: {}", truncate(description, MAX_REASON_BYTES)));
    }
    lines.push(format!("Account / region: {} / {}", alarm.account, alarm.region));
    let metric = match (&alarm.namespace, &alarm.metric_name) {
        (Some(ns), Some(name)) => {
            let dims: Vec<String> = alarm.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(" ({ns} {name} {})", dims.join(" ")).replace(" )", ")")
        }
        _ => alarm.alarm_rule.as_ref().map(|r| format!(" (rule: {r})")).unwrap_or_default(),
    };
    lines.push(format!("Kind: {:?}{metric}", alarm.kind));
    lines.push(format!("Route: {} ({:?}, severity {})", route.name, route.action, route.severity.as_str()));
    lines.push(format!("Console: {}", alarm.console_url()));
    lines.push(format!("Runbook: {}", route.runbook_url.as_deref().unwrap_or("none configured for this route")));
    lines.push(format!("Incident key: {key}"));
    lines.join("\n")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests;
