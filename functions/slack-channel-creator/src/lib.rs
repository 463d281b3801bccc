//! The war room: a dedicated Slack channel for every incident.
//!
//! Two ways in, one Lambda. PagerDuty webhooks v3 arrive as Lambda Function URL requests and are
//! checked against their signature before anything else; the first-response state machine's
//! Escalate branch invokes the function with the execution's document. Either way the room is
//! found under its deterministic name or created, then converged: topic, purpose, responders,
//! one pinned summary, bookmarks. There is no database: the channel name, the pins and message
//! metadata are the state, so retries and redeliveries change nothing twice.

pub mod escalation;
pub mod naming;
pub mod pagerduty;
pub mod secrets;
pub mod slack;
pub mod summary;

use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strum::{EnumIter, IntoStaticStr};
use tokio::time::Instant;

use crate::escalation::Escalation;
use crate::pagerduty::{Directory, Incident, IncidentEvent, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WebhookEvent};
use crate::secrets::Secrets;
use crate::slack::{Channel, Identity, Message, RetryPolicy, Slack, SlackApi};
use crate::summary::{Brief, GROUP_ESCALATION_EVENT, SUMMARY_EVENT, SUMMARY_PREFIX};

/// Kept free before the Lambda's own deadline, to answer instead of being killed.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(2);
/// How many recent messages are searched for what an earlier delivery posted.
pub const HISTORY_WINDOW: u32 = 100;

/// Errors the function returns; the variant name is the error name Lambda reports.
#[derive(Debug, thiserror::Error, IntoStaticStr, EnumIter)]
pub enum WarRoomError {
    /// Neither a PagerDuty webhook nor an escalation document; nothing was done.
    #[error("{0}")]
    InvalidEvent(String),
    /// The function's configuration is wrong: a missing parameter, a bad token, missing scopes.
    #[error("{0}")]
    ConfigError(String),
    /// Slack answered `ok: false` with this error code.
    #[error("Slack {method} answered {code}")]
    SlackApiError { method: String, code: String },
    /// Slack or AWS was unavailable, throttled us or timed out, or the group's war room is not
    /// open yet (the escalation that paged opens it a moment later); a retry may succeed.
    #[error("{0}")]
    TransientError(String),
}

shared::lambda_error_names!(WarRoomError);

impl WarRoomError {
    /// Slack's error code, for an `ok: false` answer.
    pub fn slack_code(&self) -> Option<&str> {
        match self {
            Self::SlackApiError { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How rooms are made, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarRoomConfig {
    /// The Slack Web API (`SLACK_API_URL`, default `https://slack.com/api/`).
    pub slack_api_url: String,
    /// The PagerDuty REST API (`PAGERDUTY_API_URL`, default `https://api.pagerduty.com/`).
    pub pagerduty_api_url: String,
    /// `SLACK_CHANNEL_PRIVATE`: rooms are private channels.
    pub private_channels: bool,
    /// `ARCHIVE_ON_RESOLVE`: a resolved PagerDuty incident archives its room.
    pub archive_on_resolve: bool,
    pub retry: RetryPolicy,
}

impl Default for WarRoomConfig {
    fn default() -> Self {
        Self {
            slack_api_url: slack::DEFAULT_API_URL.to_owned(),
            pagerduty_api_url: pagerduty::DEFAULT_API_URL.to_owned(),
            private_channels: false,
            archive_on_resolve: true,
            retry: RetryPolicy::default(),
        }
    }
}

impl WarRoomConfig {
    /// Reads `SLACK_API_URL`, `PAGERDUTY_API_URL`, `SLACK_CHANNEL_PRIVATE` and `ARCHIVE_ON_RESOLVE`;
    /// unset means the default.
    pub fn from_env() -> Result<Self, WarRoomError> {
        let defaults = Self::default();
        let flag = |name: &str, default: bool| match shared::optional_env(name) {
            None => Ok(default),
            Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(WarRoomError::ConfigError(format!("{name}={text:?} is neither true nor false"))),
            },
        };
        Ok(Self {
            slack_api_url: shared::optional_env("SLACK_API_URL").unwrap_or(defaults.slack_api_url),
            pagerduty_api_url: shared::optional_env("PAGERDUTY_API_URL").unwrap_or(defaults.pagerduty_api_url),
            private_channels: flag("SLACK_CHANNEL_PRIVATE", defaults.private_channels)?,
            archive_on_resolve: flag("ARCHIVE_ON_RESOLVE", defaults.archive_on_resolve)?,
            retry: defaults.retry,
        })
    }
}

/// Everything an invocation needs, built once per cold start. `Debug` shows no secret.
pub struct WarRoom {
    pub config: WarRoomConfig,
    pub slack: SlackApi,
    webhook_secrets: Vec<String>,
    directory: Option<Directory>,
    /// The rules that name each route's responders: the compiled-in ones, unless replaced.
    routes: shared::Routes,
}

impl std::fmt::Debug for WarRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarRoom")
            .field("config", &self.config)
            .field("slack", &self.slack)
            .field("webhook_secrets", &format!("<{} redacted>", self.webhook_secrets.len()))
            .field("directory", &self.directory)
            .finish()
    }
}

impl WarRoom {
    pub fn new(config: WarRoomConfig, secrets: Secrets) -> Result<Self, WarRoomError> {
        shared::aws::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("first-response-war-room/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WarRoomError::ConfigError(format!("HTTP client: {}", shared::aws::describe(&e))))?;
        let directory =
            secrets.pagerduty_token.map(|token| Directory::new(http.clone(), &config.pagerduty_api_url, token));
        let routes = shared::Routes::deployed().map_err(|e| WarRoomError::ConfigError(e.to_string()))?;
        Ok(Self {
            slack: SlackApi::new(http, &config.slack_api_url, secrets.slack_token, config.retry.clone()),
            config,
            webhook_secrets: secrets.webhook_secrets,
            directory,
            routes,
        })
    }

    /// The same war room, inviting the responders these rules name (local replays, tests).
    pub fn with_routes(self, routes: shared::Routes) -> Self {
        Self { routes, ..self }
    }
}

/// What the function answers: an HTTP response to a webhook, or the room to the state machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Http(LambdaFunctionUrlResponse),
    Room(Room),
}

/// The war room, as the state machine keeps it under `warRoom`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub channel_id: String,
    pub name: String,
    pub url: String,
    /// True when this invocation created the channel, false when it reused an existing one.
    pub created: bool,
    /// True when the channel was archived and has been brought back.
    pub unarchived: bool,
    /// True when this invocation posted (and pinned) the summary.
    pub summary_posted: bool,
    /// True when this invocation posted a group member's escalation into the room.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub posted: bool,
    /// Responders in the room (invited now or already there), by e-mail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invited: Vec<String>,
    /// Responders who could not be invited, with Slack's reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_invited: Vec<String>,
}

impl Room {
    fn existing(identity: &Identity, channel: &Channel) -> Self {
        Self {
            channel_id: channel.id.clone(),
            name: channel.name.clone(),
            url: format!("{}archives/{}", identity.team_url, channel.id),
            created: false,
            unarchived: false,
            summary_posted: false,
            posted: false,
            invited: Vec::new(),
            not_invited: Vec::new(),
        }
    }
}

/// What a webhook delivery did; the body of the 200 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReceipt {
    pub event_type: String,
    /// The delivery's signed `event.id`, by which a redelivery is recognised.
    pub webhook_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    pub did: WebhookAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Room>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookAction {
    /// The room was opened (or found and converged).
    Opened,
    /// The topic was updated and the change posted.
    Updated,
    /// A note was posted.
    Annotated,
    /// The resolution was posted (and the room archived, if configured).
    Resolved,
    /// The room was brought back and the reopening posted.
    Reopened,
    /// This delivery was handled before; nothing changed.
    Duplicate,
    /// An event type the war room does not act on.
    Ignored,
    /// The incident has no room, and this event does not open one.
    NoRoom,
    /// The room is archived; only a reopening brings it back.
    RoomArchived,
}

/// Handles one invocation: a Function URL request is a PagerDuty webhook, a document with an
/// `alarm` and an `incidentKey` is an escalation; anything else is an `InvalidEvent`.
///
/// `time_left` is what remains of the Lambda invocation, when known. Webhooks are judged at the
/// wall clock; [`handle_at`] takes the time.
pub async fn handle(war_room: &WarRoom, event: Value, time_left: Option<Duration>) -> Result<Reply, WarRoomError> {
    handle_at(war_room, event, time_left, Utc::now()).await
}

/// [`handle`] at the time `now`: a webhook whose `occurred_at` is too far from it is refused.
pub async fn handle_at(
    war_room: &WarRoom,
    event: Value,
    time_left: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<Reply, WarRoomError> {
    let deadline = time_left.map(|left| Instant::now() + left.saturating_sub(SAFETY_MARGIN));
    let slack = war_room.slack.session(deadline);
    if event.get("requestContext").and_then(|c| c.get("http")).is_some() {
        return Ok(Reply::Http(webhook(war_room, &slack, event, now).await));
    }
    if event.get("post").and_then(Value::as_str) == Some(GROUP_POST) {
        let post: GroupPost = serde_json::from_value(event)
            .map_err(|e| WarRoomError::InvalidEvent(format!("not a group escalation post: {e}")))?;
        tracing::info!(key = %post.doc.incident_key, room_of = %post.room_of, "posting into the group's war room");
        return Ok(Reply::Room(post_to_group_room(war_room, &slack, &post).await?));
    }
    if event.get("alarm").is_some() && event.get("incidentKey").is_some() {
        let mut doc: Escalation = serde_json::from_value(event)
            .map_err(|e| WarRoomError::InvalidEvent(format!("not a first-response escalation document: {e}")))?;
        // Who is invited comes from the deployed rules, never from the task input.
        doc.route.responders = war_room.routes.by_name(&doc.route.name).map(|r| r.responders).unwrap_or_default();
        tracing::info!(key = %doc.incident_key, alarm = %doc.alarm.name, "opening the war room for an escalation");
        return Ok(Reply::Room(open_room(war_room, &slack, &Brief::for_escalation(&doc), None).await?));
    }
    Err(WarRoomError::InvalidEvent(
        "neither a PagerDuty webhook (a Function URL request) nor an escalation document (alarm, incidentKey)".into(),
    ))
}

/// Answers a webhook delivery. Nothing reaches Slack unless the body is within
/// [`pagerduty::MAX_BODY_BYTES`], the signature holds and the event is fresh at `now`.
async fn webhook(war_room: &WarRoom, slack: &Slack<'_>, event: Value, now: DateTime<Utc>) -> LambdaFunctionUrlResponse {
    let request: LambdaFunctionUrlRequest = match serde_json::from_value(event) {
        Ok(request) => request,
        Err(e) => return respond(400, &json!({"error": format!("not a Function URL request: {e}")})),
    };
    let source = request.request_context.http.source_ip.clone().unwrap_or_default();
    if request.request_context.http.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("POST")) {
        return respond(405, &json!({"error": "PagerDuty webhooks are POSTed"}));
    }
    if let Err(refusal) =
        pagerduty::check_body_size(request.body.as_deref().unwrap_or_default(), request.is_base64_encoded)
    {
        return refuse(&refusal, &source);
    }
    let body = match raw_body(&request) {
        Ok(body) => body,
        Err(e) => return respond(400, &json!({"error": e})),
    };
    if war_room.webhook_secrets.is_empty() {
        // The escalation function has no webhook secret and no Function URL; a request that
        // reaches it anyway is refused before anything else.
        tracing::warn!(source = %source, "webhook refused: no PagerDuty webhook secret is configured here");
        return respond(401, &json!({"error": "this function takes no PagerDuty webhooks"}));
    }
    let signature = request.headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Err(refusal) = pagerduty::check_signature(signature, &body, &war_room.webhook_secrets) {
        return refuse(&refusal, &source);
    }
    let payload = match serde_json::from_slice::<pagerduty::WebhookPayload>(&body) {
        Ok(payload) if !payload.event.id.trim().is_empty() => payload,
        Ok(_) => return respond(400, &json!({"error": "not a PagerDuty v3 webhook: event.id is empty"})),
        Err(e) => return respond(400, &json!({"error": format!("not a PagerDuty v3 webhook: {e}")})),
    };
    if let Err(refusal) = pagerduty::check_freshness(payload.event.occurred_at, now) {
        return refuse(&refusal, &source);
    }
    // Duplicates are keyed on the signed event id: X-Webhook-Id is not signed, so a captured
    // delivery could come back under a new one. The header is logged, for PagerDuty's support.
    let event_id = payload.event.id.clone();
    let header_id = request.headers.get(WEBHOOK_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info!(
        event_type = %payload.event.event_type, event_id = %event_id, x_webhook_id = %header_id,
        "webhook verified"
    );
    match on_webhook_event(war_room, slack, &payload.event, &event_id).await {
        Ok(receipt) => respond(200, &receipt),
        Err(err) => {
            let status = match err {
                WarRoomError::InvalidEvent(_) => 400,
                WarRoomError::TransientError(_) => 503,
                _ => 500,
            };
            let name: &'static str = (&err).into();
            tracing::error!(error_type = name, error = %err, event_id = %event_id, "webhook failed");
            respond(status, &json!({"errorType": name, "errorMessage": err.to_string()}))
        }
    }
}

async fn on_webhook_event(
    war_room: &WarRoom,
    slack: &Slack<'_>,
    event: &WebhookEvent,
    webhook_id: &str,
) -> Result<WebhookReceipt, WarRoomError> {
    let receipt = |did, incident: Option<&str>, room| WebhookReceipt {
        event_type: event.event_type.clone(),
        webhook_id: webhook_id.to_owned(),
        incident: incident.map(str::to_owned),
        did,
        room,
    };
    let Some(incident_event) = event.incident_event().map_err(WarRoomError::InvalidEvent)? else {
        return Ok(receipt(WebhookAction::Ignored, None, None));
    };
    let incident_id = incident_event.incident_id().to_owned();
    let id = Some(incident_id.as_str());
    let agent = event.agent.as_ref();
    if let IncidentEvent::Triggered(incident) = &incident_event {
        let room = open_pagerduty_room(war_room, slack, incident, webhook_id).await?;
        return Ok(receipt(WebhookAction::Opened, id, Some(room)));
    }
    let identity = slack.identity().await?;
    let found = find_incident_room(war_room, slack, &incident_id).await?;
    let Some(channel) = found else {
        return match &incident_event {
            // The triggered delivery was lost or is still on its way: open the room now.
            IncidentEvent::Changed(_, incident) | IncidentEvent::Reopened(incident) => {
                let room = open_pagerduty_room(war_room, slack, incident, webhook_id).await?;
                Ok(receipt(WebhookAction::Opened, id, Some(room)))
            }
            _ => Ok(receipt(WebhookAction::NoRoom, id, None)),
        };
    };
    let mut room = Room::existing(&identity, &channel);
    if already_posted(slack, &channel, webhook_id).await? {
        // Handled before; finish only what that delivery may have left undone.
        if matches!(incident_event, IncidentEvent::Resolved(_))
            && war_room.config.archive_on_resolve
            && !channel.is_archived
        {
            slack.archive(&channel.id).await?;
        }
        return Ok(receipt(WebhookAction::Duplicate, id, Some(room)));
    }
    let did = match incident_event {
        // Opened above.
        IncidentEvent::Triggered(_) => WebhookAction::Opened,
        IncidentEvent::Changed(..) | IncidentEvent::Annotated(_) if channel.is_archived => WebhookAction::RoomArchived,
        IncidentEvent::Changed(change, incident) => {
            set_topic(slack, &channel, &summary::pagerduty_topic(&incident)).await?;
            let emails = assignee_emails(war_room, &incident).await;
            (room.invited, room.not_invited) = invite_responders(slack, &channel.id, &identity, &emails).await?;
            slack.post(&channel.id, &summary::change_post(change, &incident, agent, webhook_id)).await?;
            WebhookAction::Updated
        }
        IncidentEvent::Annotated(note) => {
            slack.post(&channel.id, &summary::note_post(&note, agent, webhook_id)).await?;
            WebhookAction::Annotated
        }
        IncidentEvent::Resolved(incident) => {
            if !channel.is_archived {
                let archiving = war_room.config.archive_on_resolve;
                set_topic(slack, &channel, &summary::pagerduty_topic(&incident)).await?;
                slack.post(&channel.id, &summary::resolved_post(&incident, agent, archiving, webhook_id)).await?;
                if archiving {
                    slack.archive(&channel.id).await?;
                }
            }
            WebhookAction::Resolved
        }
        IncidentEvent::Reopened(incident) => {
            if channel.is_archived {
                slack.unarchive(&channel.id).await?;
                room.unarchived = true;
            }
            set_topic(slack, &channel, &summary::pagerduty_topic(&incident)).await?;
            let emails = assignee_emails(war_room, &incident).await;
            (room.invited, room.not_invited) = invite_responders(slack, &channel.id, &identity, &emails).await?;
            slack.post(&channel.id, &summary::reopened_post(&incident, agent, webhook_id)).await?;
            WebhookAction::Reopened
        }
    };
    Ok(receipt(did, id, Some(room)))
}

async fn open_pagerduty_room(
    war_room: &WarRoom,
    slack: &Slack<'_>,
    incident: &Incident,
    webhook_id: &str,
) -> Result<Room, WarRoomError> {
    let emails = assignee_emails(war_room, incident).await;
    open_room(war_room, slack, &Brief::for_pagerduty(incident, emails), Some(webhook_id)).await
}

/// Finds the room under its name, or creates it, and converges it: unarchived, joined, topic and
/// purpose, responders invited, one pinned summary, bookmarks. Safe to repeat.
async fn open_room(
    war_room: &WarRoom,
    slack: &Slack<'_>,
    brief: &Brief,
    webhook_id: Option<&str>,
) -> Result<Room, WarRoomError> {
    let identity = slack.identity().await?;
    let name = brief.key.channel_name();
    let private = war_room.config.private_channels;
    let (channel, created) = match slack.create_channel(&name, private).await {
        Ok(channel) => (channel, true),
        Err(err) if err.slack_code() == Some("name_taken") => {
            let found = slack.find_channel(private, |n| n == name || brief.key.names_this_incident(n)).await?;
            // Taken by a channel the bot cannot see (a private one it is not in): never make a copy.
            (found.ok_or(err)?, false)
        }
        Err(err) => return Err(err),
    };
    tracing::info!(channel = %channel.id, name = %channel.name, created, "war room");
    let mut room = Room { created, ..Room::existing(&identity, &channel) };
    if channel.is_archived {
        slack.unarchive(&channel.id).await?;
        room.unarchived = true;
    }
    if channel.is_member == Some(false) && !private {
        slack.join(&channel.id).await?;
    }
    set_topic(slack, &channel, &brief.topic).await?;
    if channel.purpose() != brief.purpose {
        slack.set_purpose(&channel.id, &brief.purpose).await?;
    }
    (room.invited, room.not_invited) = invite_responders(slack, &channel.id, &identity, &brief.responders).await?;
    room.summary_posted = pin_summary(slack, &channel.id, &identity, brief, webhook_id).await?;
    bookmark_links(slack, &channel.id, brief).await?;
    Ok(room)
}

/// What `Post To Group Room` sends: `post` names the request; `roomOf` is the incident key
/// whose escalation paged for the group and opened its room.
pub const GROUP_POST: &str = "groupEscalation";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupPost {
    room_of: String,
    #[serde(flatten)]
    doc: Escalation,
}

/// Posts a group member's escalation into the group's war room, once however often the task is
/// retried. The room is never created here: its name and summary are the paging escalation's.
async fn post_to_group_room(war_room: &WarRoom, slack: &Slack<'_>, post: &GroupPost) -> Result<Room, WarRoomError> {
    let key = naming::RoomKey::for_escalation(post.doc.alarm.timestamp, &post.room_of, "");
    let private = war_room.config.private_channels;
    let channel = slack.find_channel(private, |name| key.names_this_incident(name)).await?.ok_or_else(|| {
        WarRoomError::TransientError(format!(
            "the war room of {} (the escalation that paged for this group) is not open yet",
            post.room_of
        ))
    })?;
    let identity = slack.identity().await?;
    let mut room = Room::existing(&identity, &channel);
    if channel.is_archived {
        slack.unarchive(&channel.id).await?;
        room.unarchived = true;
    }
    let incident = post.doc.incident_key.as_str();
    let recent = slack.history(&channel.id, HISTORY_WINDOW).await?;
    let posted_before = recent.iter().any(|m| {
        m.metadata.as_ref().is_some_and(|md| {
            md.event_type == GROUP_ESCALATION_EVENT && md.event_payload.incident.as_deref() == Some(incident)
        })
    });
    if !posted_before {
        slack.post(&channel.id, &summary::group_escalation_post(&post.doc)).await?;
        room.posted = true;
    }
    Ok(room)
}

async fn set_topic(slack: &Slack<'_>, channel: &Channel, topic: &str) -> Result<(), WarRoomError> {
    if channel.topic() == topic { Ok(()) } else { slack.set_topic(&channel.id, topic).await }
}

/// The PagerDuty incident's room, whatever date and title it was named with.
async fn find_incident_room(
    war_room: &WarRoom,
    slack: &Slack<'_>,
    incident_id: &str,
) -> Result<Option<Channel>, WarRoomError> {
    let short_id = naming::short_id(incident_id);
    slack.find_channel(war_room.config.private_channels, |name| naming::is_room_of(name, &short_id)).await
}

/// True when a message about this PagerDuty event (by its signed `event.id`) is already in the room.
async fn already_posted(slack: &Slack<'_>, channel: &Channel, webhook_id: &str) -> Result<bool, WarRoomError> {
    let recent = slack.history(&channel.id, HISTORY_WINDOW).await?;
    Ok(recent.iter().any(|m| {
        m.metadata.as_ref().and_then(|md| md.event_payload.webhook_id.as_deref()) == Some(webhook_id)
            && m.metadata.as_ref().is_some_and(|md| md.event_type != SUMMARY_EVENT)
    }))
}

/// Posts and pins the summary unless the room has it; true when posted now.
async fn pin_summary(
    slack: &Slack<'_>,
    channel: &str,
    identity: &Identity,
    brief: &Brief,
    webhook_id: Option<&str>,
) -> Result<bool, WarRoomError> {
    let is_summary = |m: &Message| {
        m.metadata.as_ref().is_some_and(|md| md.event_type == SUMMARY_EVENT)
            || (m.user.as_deref() == Some(identity.user_id.as_str()) && m.text.starts_with(SUMMARY_PREFIX))
    };
    if slack.pinned(channel).await?.iter().any(is_summary) {
        return Ok(false);
    }
    // Posted by an earlier attempt that stopped before pinning it.
    if let Some(posted) = slack.history(channel, HISTORY_WINDOW).await?.iter().find(|m| is_summary(m)) {
        slack.pin(channel, &posted.ts).await?;
        return Ok(false);
    }
    let ts = slack.post(channel, &brief.summary(webhook_id)).await?;
    slack.pin(channel, &ts).await?;
    Ok(true)
}

/// Bookmarks the brief's links the room does not have yet. Best effort: the links are in the
/// summary too, so a refused bookmark is logged, not fatal.
async fn bookmark_links(slack: &Slack<'_>, channel: &str, brief: &Brief) -> Result<(), WarRoomError> {
    let existing = slack.bookmarks(channel).await?;
    for link in brief.links.iter().filter(|l| !existing.iter().any(|b| b.link == l.url)) {
        match slack.add_bookmark(channel, &link.title, &link.url).await {
            Err(WarRoomError::SlackApiError { code, .. }) => {
                tracing::warn!(channel = %channel, link = %link.url, code = %code, "bookmark refused");
            }
            other => other?,
        }
    }
    Ok(())
}

/// Looks responders up by e-mail and invites them. Unknown addresses and refused invitations are
/// logged and reported, never fatal. Returns (in the room, not invited with the reason).
async fn invite_responders(
    slack: &Slack<'_>,
    channel: &str,
    identity: &Identity,
    emails: &[String],
) -> Result<(Vec<String>, Vec<String>), WarRoomError> {
    let mut members: Vec<(String, String)> = Vec::new();
    let mut not_invited = Vec::new();
    for email in emails {
        match slack.lookup_by_email(email).await? {
            Some(member) if member.id == identity.user_id => {}
            Some(member) if members.iter().any(|(_, id)| *id == member.id) => {}
            Some(member) => members.push((email.clone(), member.id)),
            None => {
                tracing::warn!(channel = %channel, responder = %email, "responder not invited: users_not_found");
                not_invited.push(format!("{email}: users_not_found"));
            }
        }
    }
    if members.is_empty() {
        return Ok((Vec::new(), not_invited));
    }
    let ids: Vec<String> = members.iter().map(|(_, id)| id.clone()).collect();
    let refusals = slack.invite(channel, &ids).await?;
    let mut invited = Vec::new();
    for (email, id) in members {
        match refusals.iter().find(|r| r.user == id) {
            None => invited.push(email),
            Some(refusal) if refusal.code == "already_in_channel" => {
                tracing::info!(channel = %channel, responder = %email, "responder already in the room");
                invited.push(email);
            }
            Some(refusal) => {
                tracing::warn!(channel = %channel, responder = %email, code = %refusal.code, "responder not invited");
                not_invited.push(format!("{email}: {}", refusal.code));
            }
        }
    }
    Ok((invited, not_invited))
}

/// The assignees' e-mail addresses, when a PagerDuty API key lets us look them up.
async fn assignee_emails(war_room: &WarRoom, incident: &Incident) -> Vec<String> {
    let Some(directory) = &war_room.directory else {
        if !incident.assignees.is_empty() {
            tracing::info!(incident = %incident.id, "no PagerDuty API key configured: assignees are not invited");
        }
        return Vec::new();
    };
    let mut emails = Vec::new();
    for assignee in &incident.assignees {
        if let Some(email) = directory.email(assignee).await {
            emails.push(email);
        }
    }
    emails
}

/// The request body as PagerDuty signed it: Function URLs base64-encode bodies they deem binary.
fn raw_body(request: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, String> {
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        BASE64.decode(body).map_err(|e| format!("the body is not valid base64: {e}"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// Answers a refused delivery with the refusal's name; nothing else is done for it.
fn refuse(refusal: &pagerduty::WebhookRefusal, source: &str) -> LambdaFunctionUrlResponse {
    let name: &'static str = refusal.into();
    tracing::warn!(source = %source, error_type = name, error = %refusal, "webhook refused");
    respond(refusal.status(), &json!({"errorType": name, "errorMessage": refusal.to_string()}))
}

fn respond(status: i64, body: &impl Serialize) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status;
    response.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned()));
    response
}

#[cfg(test)]
mod tests;
