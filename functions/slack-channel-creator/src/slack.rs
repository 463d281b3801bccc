//! The Slack Web API, as the war room uses it.
//!
//! Every call is a form-encoded POST with the bot token (the encoding every Web API method
//! accepts). Rate limits (HTTP 429) are waited out as `Retry-After` asks, 5xx answers, Slack's
//! temporary error codes and timeouts are retried with backoff, and all of it stops before the
//! invocation's deadline. `ok: false` answers become named errors carrying Slack's error code.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::{Instant, sleep};

use crate::WarRoomError;

/// Where the Slack Web API is, unless `SLACK_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://slack.com/api/";
/// Users per `conversations.invite` call.
pub const INVITE_BATCH: usize = 100;
/// How many channel pages `conversations.list` is read for before giving up.
const MAX_LIST_PAGES: usize = 50;

/// Error codes Slack documents as temporary: the same call may succeed later.
const TRANSIENT_CODES: &[&str] =
    &["internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"];
/// Error codes that mean the bot token or the app's installation is wrong, not the request.
const AUTH_CODES: &[&str] = &[
    "not_authed",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "not_allowed_token_type",
    "no_permission",
    "ekm_access_denied",
    "team_access_not_granted",
];
/// Why Slack may refuse to invite one user; none of them stops the war room.
const INVITE_REFUSALS: &[&str] = &[
    "already_in_channel",
    "cant_invite_self",
    "user_not_found",
    "users_not_found",
    "cant_invite",
    "user_is_restricted",
    "user_is_ultra_restricted",
    "ura_max_channels",
    "user_disabled",
];

/// How the client retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls per method, the first included.
    pub max_attempts: u32,
    /// Wait after the first failure (5xx, timeout); it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest a single request may take.
    pub attempt_timeout: Duration,
    /// Longest a rate limit's `Retry-After` is waited out within one invocation; a longer one
    /// ends the invocation with a `TransientError`, for Step Functions or PagerDuty to retry later.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            attempt_timeout: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(20),
        }
    }
}

/// Who the bot is, from `auth.test`, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The workspace's URL, ending in `/`.
    pub team_url: String,
    pub user_id: String,
}

/// The configured client: built once per cold start, shared by every invocation.
pub struct SlackApi {
    http: reqwest::Client,
    base_url: String,
    token: String,
    retry: RetryPolicy,
    identity: OnceLock<Identity>,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi").field("base_url", &self.base_url).field("token", &"<redacted>").finish()
    }
}

impl SlackApi {
    /// A client for the Web API at `base_url` (`https://slack.com/api/`, or an emulator).
    pub fn new(http: reqwest::Client, base_url: &str, token: String, retry: RetryPolicy) -> Self {
        let base_url = if base_url.ends_with('/') { base_url.to_owned() } else { format!("{base_url}/") };
        Self { http, base_url, token, retry, identity: OnceLock::new() }
    }

    /// Calls made for one invocation, which must all finish before `deadline`.
    pub fn session(&self, deadline: Option<Instant>) -> Slack<'_> {
        Slack { api: self, deadline }
    }
}

/// The Slack client within one invocation's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Slack<'a> {
    api: &'a SlackApi,
    deadline: Option<Instant>,
}

/// A channel as `conversations.*` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Channel {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub is_archived: bool,
    /// Whether the bot is in the channel, when Slack says.
    #[serde(default)]
    pub is_member: Option<bool>,
    #[serde(default)]
    pub topic: Option<TextValue>,
    #[serde(default)]
    pub purpose: Option<TextValue>,
}

impl Channel {
    pub fn topic(&self) -> &str {
        self.topic.as_ref().map(|t| t.value.as_str()).unwrap_or_default()
    }

    pub fn purpose(&self) -> &str {
        self.purpose.as_ref().map(|t| t.value.as_str()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TextValue {
    #[serde(default)]
    pub value: String,
}

/// A workspace member found by e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub real_name: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

/// Message metadata: how the war room recognises what it posted before, statelessly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub event_type: String,
    #[serde(default)]
    pub event_payload: MetadataPayload,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataPayload {
    /// The incident the message is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The PagerDuty event that caused the message: its signed `event.id`, by which a redelivery
    /// is recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
}

/// A message read back from a channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub ts: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// A message to post: the plain-text fallback, Block Kit blocks, and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub text: String,
    pub blocks: Vec<Value>,
    pub metadata: Metadata,
}

/// A channel bookmark.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Bookmark {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub link: String,
}

/// One user Slack would not invite, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub user: String,
    pub code: String,
}

impl Slack<'_> {
    /// The bot's workspace URL and user id (`auth.test`, once per cold start).
    pub async fn identity(&self) -> Result<Identity, WarRoomError> {
        if let Some(known) = self.api.identity.get() {
            return Ok(known.clone());
        }
        #[derive(Deserialize)]
        struct AuthTest {
            url: String,
            user_id: String,
        }
        let answer: AuthTest = self.call("auth.test", &[]).await?;
        let team_url = if answer.url.ends_with('/') { answer.url } else { format!("{}/", answer.url) };
        Ok(self.api.identity.get_or_init(|| Identity { team_url, user_id: answer.user_id }).clone())
    }

    /// Creates a channel; `name_taken` comes back as a [`WarRoomError::SlackApiError`].
    pub async fn create_channel(&self, name: &str, private: bool) -> Result<Channel, WarRoomError> {
        #[derive(Deserialize)]
        struct Created {
            channel: Channel,
        }
        let created: Created = self
            .call("conversations.create", &[("name", name.to_owned()), ("is_private", private.to_string())])
            .await?;
        Ok(created.channel)
    }

    /// The first channel (archived ones included) whose name `wanted` accepts.
    pub async fn find_channel(
        &self,
        include_private: bool,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Option<Channel>, WarRoomError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            channels: Vec<Channel>,
            #[serde(default)]
            response_metadata: Option<Cursor>,
        }
        #[derive(Deserialize)]
        struct Cursor {
            #[serde(default)]
            next_cursor: String,
        }
        let types = if include_private { "public_channel,private_channel" } else { "public_channel" };
        let mut cursor = String::new();
        for _ in 0..MAX_LIST_PAGES {
            let mut params = vec![
                ("types", types.to_owned()),
                ("exclude_archived", "false".to_owned()),
                ("limit", "1000".to_owned()),
            ];
            if !cursor.is_empty() {
                params.push(("cursor", cursor.clone()));
            }
            let page: Page = self.call("conversations.list", &params).await?;
            if let Some(found) = page.channels.into_iter().find(|c| wanted(&c.name)) {
                return Ok(Some(found));
            }
            cursor = page.response_metadata.map(|m| m.next_cursor).unwrap_or_default();
            if cursor.is_empty() {
                return Ok(None);
            }
        }
        Err(WarRoomError::TransientError(format!(
            "Slack conversations.list: still paging after {MAX_LIST_PAGES} pages of channels"
        )))
    }

    pub async fn unarchive(&self, channel: &str) -> Result<(), WarRoomError> {
        tolerate(
            self.call::<IgnoredAny>("conversations.unarchive", &[("channel", channel.to_owned())]).await,
            &["not_archived"],
        )
    }

    pub async fn join(&self, channel: &str) -> Result<(), WarRoomError> {
        self.call::<IgnoredAny>("conversations.join", &[("channel", channel.to_owned())]).await.map(drop)
    }

    pub async fn archive(&self, channel: &str) -> Result<(), WarRoomError> {
        tolerate(
            self.call::<IgnoredAny>("conversations.archive", &[("channel", channel.to_owned())]).await,
            &["already_archived"],
        )
    }

    pub async fn set_topic(&self, channel: &str, topic: &str) -> Result<(), WarRoomError> {
        self.call::<IgnoredAny>(
            "conversations.setTopic",
            &[("channel", channel.to_owned()), ("topic", topic.to_owned())],
        )
        .await
        .map(drop)
    }

    pub async fn set_purpose(&self, channel: &str, purpose: &str) -> Result<(), WarRoomError> {
        self.call::<IgnoredAny>(
            "conversations.setPurpose",
            &[("channel", channel.to_owned()), ("purpose", purpose.to_owned())],
        )
        .await
        .map(drop)
    }

    /// The member with this e-mail address; `None` when Slack knows no such user.
    pub async fn lookup_by_email(&self, email: &str) -> Result<Option<Member>, WarRoomError> {
        #[derive(Deserialize)]
        struct Found {
            user: Member,
        }
        match self.call::<Found>("users.lookupByEmail", &[("email", email.to_owned())]).await {
            Ok(found) => Ok(Some(found.user).filter(|user| !user.deleted)),
            Err(err) if err.slack_code() == Some("users_not_found") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Invites users in batches. Slack refuses a whole batch when one user cannot be invited, so
    /// the refused users are dropped and the rest invited again; they are returned, never fatal.
    pub async fn invite(&self, channel: &str, users: &[String]) -> Result<Vec<Refusal>, WarRoomError> {
        let mut refused = Vec::new();
        for batch in users.chunks(INVITE_BATCH) {
            let mut pending = batch.to_vec();
            while !pending.is_empty() {
                let answer = self
                    .send(
                        "conversations.invite",
                        &[("channel", channel.to_owned()), ("users", pending.join(",")), ("force", "true".to_owned())],
                    )
                    .await?;
                if is_ok(&answer) {
                    break;
                }
                let code = error_code(&answer).unwrap_or("unknown_error").to_owned();
                let mut per_user = per_user_errors(&answer);
                if per_user.is_empty() && INVITE_REFUSALS.contains(&code.as_str()) {
                    if let [only] = pending.as_slice() {
                        per_user.push(Refusal { user: only.clone(), code });
                    } else {
                        // Slack named no culprit: find it by inviting one at a time.
                        for user in std::mem::take(&mut pending) {
                            refused.extend(Box::pin(self.invite(channel, &[user])).await?);
                        }
                        break;
                    }
                }
                if per_user.is_empty() {
                    return Err(rejected("conversations.invite", &answer));
                }
                let before = pending.len();
                pending.retain(|user| !per_user.iter().any(|r| &r.user == user));
                refused.extend(per_user);
                if pending.len() == before {
                    return Err(rejected("conversations.invite", &answer));
                }
            }
        }
        Ok(refused)
    }

    /// Posts a message and returns its timestamp. Posting is not idempotent: when an attempt ends
    /// without a clear answer (a timeout, a 5xx), the message may be in the channel already, so the
    /// channel's recent history is searched for its metadata before it is posted again.
    pub async fn post(&self, channel: &str, post: &Post) -> Result<String, WarRoomError> {
        #[derive(Deserialize)]
        struct Posted {
            ts: String,
        }
        let metadata = serde_json::to_string(&post.metadata).map_err(|e| WarRoomError::ConfigError(e.to_string()))?;
        let mut params = vec![
            ("channel", channel.to_owned()),
            ("text", post.text.clone()),
            ("metadata", metadata),
            ("unfurl_links", "false".to_owned()),
            ("unfurl_media", "false".to_owned()),
        ];
        if !post.blocks.is_empty() {
            params.push(("blocks", Value::Array(post.blocks.clone()).to_string()));
        }
        let policy = &self.api.retry;
        let mut backoff = policy.first_backoff;
        for attempt in 1..=policy.max_attempts {
            let why = match self.attempt("chat.postMessage", &params, false).await {
                Ok(answer) => return parse::<Posted>("chat.postMessage", answer).map(|posted| posted.ts),
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::Ambiguous(why)) => why,
                // Waited out inside `attempt`; it never reports one here.
                Err(Failure::RateLimited(wait)) => format!("rate limited (Retry-After {}s)", wait.as_secs()),
            };
            if let Some(ts) = self.find_posted(channel, &post.metadata).await? {
                tracing::info!(channel, attempt, why = %why, "the post had landed; not posting it again");
                return Ok(ts);
            }
            if attempt == policy.max_attempts {
                return Err(WarRoomError::TransientError(format!(
                    "Slack chat.postMessage: {why}; gave up after {attempt} attempts"
                )));
            }
            self.pause("chat.postMessage", &why, backoff).await?;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
        Err(WarRoomError::TransientError("Slack chat.postMessage: no attempt was made".into()))
    }

    /// The timestamp of a recent message in `channel` carrying exactly this metadata.
    async fn find_posted(&self, channel: &str, metadata: &Metadata) -> Result<Option<String>, WarRoomError> {
        let recent = self.history(channel, 20).await?;
        Ok(recent.into_iter().find(|m| m.metadata.as_ref() == Some(metadata)).map(|m| m.ts))
    }

    pub async fn pin(&self, channel: &str, ts: &str) -> Result<(), WarRoomError> {
        tolerate(
            self.call::<IgnoredAny>("pins.add", &[("channel", channel.to_owned()), ("timestamp", ts.to_owned())]).await,
            &["already_pinned"],
        )
    }

    /// The channel's pinned messages.
    pub async fn pinned(&self, channel: &str) -> Result<Vec<Message>, WarRoomError> {
        #[derive(Deserialize)]
        struct Pins {
            #[serde(default)]
            items: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            #[serde(default)]
            message: Option<Message>,
        }
        let pins: Pins = self.call("pins.list", &[("channel", channel.to_owned())]).await?;
        Ok(pins.items.into_iter().filter_map(|item| item.message).collect())
    }

    /// The channel's most recent messages (with their metadata), newest first.
    pub async fn history(&self, channel: &str, limit: u32) -> Result<Vec<Message>, WarRoomError> {
        #[derive(Deserialize)]
        struct History {
            #[serde(default)]
            messages: Vec<Message>,
        }
        let history: History = self
            .call(
                "conversations.history",
                &[
                    ("channel", channel.to_owned()),
                    ("limit", limit.to_string()),
                    ("include_all_metadata", "true".to_owned()),
                ],
            )
            .await?;
        Ok(history.messages)
    }

    pub async fn bookmarks(&self, channel: &str) -> Result<Vec<Bookmark>, WarRoomError> {
        #[derive(Deserialize)]
        struct Bookmarks {
            #[serde(default)]
            bookmarks: Vec<Bookmark>,
        }
        let listed: Bookmarks = self.call("bookmarks.list", &[("channel_id", channel.to_owned())]).await?;
        Ok(listed.bookmarks)
    }

    pub async fn add_bookmark(&self, channel: &str, title: &str, link: &str) -> Result<(), WarRoomError> {
        self.call::<IgnoredAny>(
            "bookmarks.add",
            &[
                ("channel_id", channel.to_owned()),
                ("title", title.to_owned()),
                ("type", "link".to_owned()),
                ("link", link.to_owned()),
            ],
        )
        .await
        .map(drop)
    }

    /// Calls `method`; an `ok: false` answer is an error carrying Slack's code.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &[(&str, String)],
    ) -> Result<T, WarRoomError> {
        parse(method, self.send(method, params).await?)
    }

    /// Sends one call, retrying what may succeed later, and returns Slack's JSON answer as is.
    /// Only for methods that are safe to repeat: every method but `chat.postMessage`.
    async fn send(&self, method: &'static str, params: &[(&str, String)]) -> Result<Value, WarRoomError> {
        let policy = &self.api.retry;
        let mut backoff = policy.first_backoff;
        let mut attempt = 1;
        loop {
            let (why, wait) = match self.attempt(method, params, true).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::RateLimited(wait)) => (format!("rate limited (Retry-After {}s)", wait.as_secs()), wait),
                Err(Failure::Ambiguous(why)) => (why, backoff),
            };
            if attempt >= policy.max_attempts {
                return Err(WarRoomError::TransientError(format!(
                    "Slack {method}: {why}; gave up after {attempt} attempts"
                )));
            }
            self.pause(method, &why, wait).await?;
            backoff = (backoff * 2).min(policy.max_backoff);
            attempt += 1;
        }
    }

    /// One request, as Slack answered it. With `report_rate_limits` false, rate limits are waited
    /// out here (Slack did not act on those calls), so only ambiguous failures reach the caller.
    async fn attempt(
        &self,
        method: &'static str,
        params: &[(&str, String)],
        report_rate_limits: bool,
    ) -> Result<Value, Failure> {
        let url = format!("{}{method}", self.api.base_url);
        for _ in 0..self.api.retry.max_attempts {
            let timeout = self.time_for_one_attempt(method).map_err(Failure::Final)?;
            let answer =
                self.api.http.post(&url).bearer_auth(&self.api.token).timeout(timeout).form(params).send().await;
            let failure = match answer {
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    Failure::RateLimited(retry_after(&response))
                }
                Ok(response) if response.status().is_server_error() => {
                    Failure::Ambiguous(format!("HTTP {}", response.status()))
                }
                Ok(response) if !response.status().is_success() => {
                    return Err(Failure::Final(WarRoomError::ConfigError(format!(
                        "Slack {method}: HTTP {} from {url} (is SLACK_API_URL right?)",
                        response.status()
                    ))));
                }
                Ok(response) => match response.json::<Value>().await {
                    Ok(body) => match error_code(&body) {
                        Some("ratelimited") if !is_ok(&body) => Failure::RateLimited(Duration::from_secs(1)),
                        Some(code) if !is_ok(&body) && TRANSIENT_CODES.contains(&code) => {
                            Failure::Ambiguous(code.to_owned())
                        }
                        _ => return Ok(body),
                    },
                    Err(err) if err.is_decode() => {
                        return Err(Failure::Final(WarRoomError::ConfigError(format!(
                            "Slack {method}: the answer is not JSON (is SLACK_API_URL right?): {err}"
                        ))));
                    }
                    Err(err) => Failure::Ambiguous(shared::aws::describe(&err)),
                },
                Err(err) => Failure::Ambiguous(shared::aws::describe(&err)),
            };
            match failure {
                // Slack did not act on a rate-limited call: waiting it out and repeating is safe.
                Failure::RateLimited(wait) if !report_rate_limits => {
                    self.pause(method, &format!("rate limited (Retry-After {}s)", wait.as_secs()), wait).await?;
                }
                other => return Err(other),
            }
        }
        Err(Failure::Final(WarRoomError::TransientError(format!(
            "Slack {method}: still rate limited after {} attempts",
            self.api.retry.max_attempts
        ))))
    }

    /// Waits `wait` before the next attempt, unless that is longer than a rate limit is waited
    /// out or would pass the invocation's deadline.
    async fn pause(&self, method: &str, why: &str, wait: Duration) -> Result<(), WarRoomError> {
        if wait > self.api.retry.max_retry_after {
            return Err(WarRoomError::TransientError(format!(
                "Slack {method}: {why}; that is longer than one invocation waits ({}s)",
                self.api.retry.max_retry_after.as_secs()
            )));
        }
        let passes_deadline =
            self.deadline.is_some_and(|deadline| Instant::now().checked_add(wait).is_none_or(|end| end >= deadline));
        if passes_deadline {
            return Err(WarRoomError::TransientError(format!(
                "Slack {method}: {why}; waiting {}ms more would pass the invocation's deadline",
                wait.as_millis()
            )));
        }
        tracing::warn!(method, why = %why, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "retrying Slack");
        sleep(wait).await;
        Ok(())
    }

    fn time_for_one_attempt(&self, method: &str) -> Result<Duration, WarRoomError> {
        let Some(deadline) = self.deadline else { return Ok(self.api.retry.attempt_timeout) };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WarRoomError::TransientError(format!("Slack {method}: no time left in this invocation")));
        }
        Ok(left.min(self.api.retry.attempt_timeout))
    }
}

/// How one request failed.
enum Failure {
    /// Slack refused or the configuration is wrong: repeating changes nothing.
    Final(WarRoomError),
    /// Rate limited: Slack did not act, and asks to wait this long.
    RateLimited(Duration),
    /// A timeout, a 5xx or a temporary error code: Slack may or may not have acted.
    Ambiguous(String),
}

impl From<WarRoomError> for Failure {
    fn from(err: WarRoomError) -> Self {
        Self::Final(err)
    }
}

/// An `ok: true` answer in the shape `T`; an `ok: false` one is an error carrying Slack's code.
fn parse<T: DeserializeOwned>(method: &'static str, answer: Value) -> Result<T, WarRoomError> {
    if !is_ok(&answer) {
        return Err(rejected(method, &answer));
    }
    serde_json::from_value(answer).map_err(|e| {
        WarRoomError::ConfigError(format!(
            "Slack {method} answered in an unexpected shape (is SLACK_API_URL right?): {e}"
        ))
    })
}

fn is_ok(answer: &Value) -> bool {
    answer.get("ok").and_then(Value::as_bool) == Some(true)
}

fn error_code(answer: &Value) -> Option<&str> {
    answer.get("error").and_then(Value::as_str)
}

/// `conversations.invite`'s per-user errors: `errors: [{user, error}, ...]`.
fn per_user_errors(answer: &Value) -> Vec<Refusal> {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(Refusal { user: e.get("user")?.as_str()?.to_owned(), code: e.get("error")?.as_str()?.to_owned() })
        })
        .collect()
}

/// The error for an `ok: false` answer: a token or scope problem is configuration, anything else
/// carries Slack's code.
fn rejected(method: &'static str, answer: &Value) -> WarRoomError {
    let code = error_code(answer).unwrap_or("unknown_error").to_owned();
    if AUTH_CODES.contains(&code.as_str()) {
        let needed = answer.get("needed").and_then(Value::as_str).map(|n| format!(" (needs {n})")).unwrap_or_default();
        return WarRoomError::ConfigError(format!(
            "Slack {method}: {code}{needed}: check the bot token parameter and the Slack app's scopes"
        ));
    }
    WarRoomError::SlackApiError { method: method.to_owned(), code }
}

/// Success, or one of the codes that mean "already done".
fn tolerate<T>(result: Result<T, WarRoomError>, already_done: &[&str]) -> Result<(), WarRoomError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.slack_code().is_some_and(|code| already_done.contains(&code)) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Slack's `Retry-After` (seconds); one second when it is missing or unreadable, and at most a
/// day whatever it says (the wait is checked against the invocation's limits before it starts).
fn retry_after(response: &reqwest::Response) -> Duration {
    const MAX_SECONDS: u64 = 86_400;
    let header = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok());
    let seconds = match header.map(str::trim) {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse::<u64>().unwrap_or(MAX_SECONDS)
        }
        _ => 1,
    };
    Duration::from_secs(seconds.clamp(1, MAX_SECONDS))
}
