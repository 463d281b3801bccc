//! PagerDuty webhooks v3: signature verification, the incident events the war room acts on, and
//! the optional REST API lookup of assignees' e-mail addresses.
//!
//! PagerDuty signs the raw body with HMAC-SHA256 under the subscription's secret and sends
//! `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]` (several during a secret rotation). What an
//! unsigned request can cost is bounded before anything is hashed: the body's size and the number
//! of signatures considered.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::digest::CtOutput;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use strum::IntoStaticStr;

/// The header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "x-pagerduty-signature";
/// The header naming one delivery; PagerDuty sends it again when it retries.
pub const WEBHOOK_ID_HEADER: &str = "x-webhook-id";
/// Where the PagerDuty REST API is, unless `PAGERDUTY_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.pagerduty.com/";

/// The largest body accepted, as signed (PagerDuty's v3 deliveries are a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The most `v1=` signatures a header may carry (one per secret in rotation; PagerDuty sends one or two).
pub const MAX_SIGNATURES: usize = 8;
/// How long after its `occurred_at` an event is still accepted: PagerDuty retries a failed delivery
/// for about 20 minutes; a captured delivery replayed later is refused.
pub const MAX_EVENT_AGE: TimeDelta = TimeDelta::minutes(30);
/// How far ahead of this function's clock an `occurred_at` may be (clock skew).
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery is refused before anything is done for it; the variant name is the answer's
/// `errorType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, IntoStaticStr)]
pub enum WebhookRefusal {
    #[error("the body has {0} bytes as sent, more than the {MAX_BODY_BYTES} a PagerDuty webhook is given")]
    PayloadTooLarge(usize),
    #[error("missing X-PagerDuty-Signature")]
    MissingSignature,
    #[error("X-PagerDuty-Signature carries {0} v1= signatures, more than the {MAX_SIGNATURES} considered")]
    TooManySignatures(usize),
    #[error("invalid X-PagerDuty-Signature")]
    InvalidSignature,
    /// The event's `occurred_at` is missing, older than [`MAX_EVENT_AGE`], or further ahead than
    /// [`MAX_CLOCK_SKEW`].
    #[error("{0}")]
    OutsideFreshnessWindow(String),
}

impl WebhookRefusal {
    /// The HTTP status of the answer: 4xx, so PagerDuty does not deliver it again.
    pub fn status(&self) -> i64 {
        match self {
            Self::PayloadTooLarge(_) => 413,
            Self::OutsideFreshnessWindow(_) => 400,
            Self::MissingSignature | Self::TooManySignatures(_) | Self::InvalidSignature => 401,
        }
    }
}

/// Refuses a body over [`MAX_BODY_BYTES`], measured as it arrived, before it is decoded or hashed.
pub fn check_body_size(body: &str, base64_encoded: bool) -> Result<(), WebhookRefusal> {
    let limit = if base64_encoded { MAX_BODY_BYTES.div_ceil(3) * 4 } else { MAX_BODY_BYTES };
    if body.len() > limit { Err(WebhookRefusal::PayloadTooLarge(body.len())) } else { Ok(()) }
}

/// The signature PagerDuty sends for `body` under `secret`: `v1=<hex>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    match <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC takes keys of any length; were it ever to refuse one, an empty signature verifies nothing.
        Err(_) => String::new(),
    }
}

/// True when any `v1=` signature in `header` is the HMAC of `body` under any of `secrets`.
pub fn verify(header: &str, body: &[u8], secrets: &[String]) -> bool {
    check_signature(header, body, secrets).is_ok()
}

/// Ok when any `v1=` signature in `header` is the HMAC of `body` under any of `secrets`. A header
/// with more than [`MAX_SIGNATURES`] is refused unhashed; the body is hashed once per secret and
/// compared with each signature in constant time; anything malformed simply does not match.
pub fn check_signature(header: &str, body: &[u8], secrets: &[String]) -> Result<(), WebhookRefusal> {
    if header.trim().is_empty() {
        return Err(WebhookRefusal::MissingSignature);
    }
    let signatures: Vec<&str> = header.split(',').filter_map(|part| part.trim().strip_prefix("v1=")).collect();
    if signatures.len() > MAX_SIGNATURES {
        return Err(WebhookRefusal::TooManySignatures(signatures.len()));
    }
    let candidates: Vec<CtOutput<HmacSha256>> = signatures.iter().filter_map(|hex| digest_of(hex)).collect();
    if candidates.is_empty() {
        return Err(WebhookRefusal::InvalidSignature);
    }
    let matched = secrets.iter().filter(|secret| !secret.is_empty()).any(|secret| {
        let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes()) else { return false };
        mac.update(body);
        let expected = mac.finalize();
        // CtOutput's equality is constant-time.
        candidates.contains(&expected)
    });
    if matched { Ok(()) } else { Err(WebhookRefusal::InvalidSignature) }
}

/// A signature's hex digest, when it is one of the right length.
fn digest_of(hex_digest: &str) -> Option<CtOutput<HmacSha256>> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut bytes).ok()?;
    Some(CtOutput::new(bytes.into()))
}

/// Ok when the event occurred within [`MAX_EVENT_AGE`] before `now` and at most
/// [`MAX_CLOCK_SKEW`] after it.
pub fn check_freshness(occurred_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), WebhookRefusal> {
    let Some(at) = occurred_at else {
        return Err(WebhookRefusal::OutsideFreshnessWindow(
            "the event has no occurred_at, so its freshness cannot be judged".into(),
        ));
    };
    if now - at > MAX_EVENT_AGE {
        return Err(WebhookRefusal::OutsideFreshnessWindow(format!(
            "the event occurred at {at}, {} minutes before now; older than the {} minutes accepted",
            (now - at).num_minutes(),
            MAX_EVENT_AGE.num_minutes()
        )));
    }
    if at - now > MAX_CLOCK_SKEW {
        return Err(WebhookRefusal::OutsideFreshnessWindow(format!(
            "the event occurred at {at}, {} minutes after now; further ahead than the {} minutes of clock skew accepted",
            (at - now).num_minutes(),
            MAX_CLOCK_SKEW.num_minutes()
        )));
    }
    Ok(())
}

/// `null` read as the type's default: PagerDuty sends `null` for many fields it also omits.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Incident {
    /// When the incident started, as well as the delivery tells: `created_at`, else the event's
    /// `occurred_at` (filled in by [`WebhookEvent::incident_event`]), else now.
    pub fn since(&self) -> DateTime<Utc> {
        self.created_at.unwrap_or_else(Utc::now)
    }
}

/// A webhook's body: one event.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookPayload {
    pub event: WebhookEvent,
}

/// One outbound event. `data` depends on `event_type`; [`WebhookEvent::incident_event`] reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    pub event_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_type: String,
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub agent: Option<Reference>,
    #[serde(default)]
    data: Value,
}

/// A reference to another PagerDuty object (user, service, priority, incident).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reference {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub summary: String,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// An incident as webhooks describe it. Only `id` is required: PagerDuty's v3 schema guarantees
/// little else, and real deliveries carry `null` for what an account does not use (priorities,
/// conference bridges) and may omit `created_at` or `incident_key`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Incident {
    pub id: String,
    #[serde(default)]
    pub number: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub title: String,
    /// When the incident was created; the event's `occurred_at` when the delivery omits it.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub service: Option<Reference>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<Reference>,
    #[serde(default)]
    pub priority: Option<Reference>,
    #[serde(default)]
    pub urgency: Option<String>,
    #[serde(default)]
    pub conference_bridge: Option<ConferenceBridge>,
    #[serde(default)]
    pub resolve_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConferenceBridge {
    #[serde(default)]
    pub conference_number: Option<String>,
    #[serde(default)]
    pub conference_url: Option<String>,
}

/// A note added to an incident (`incident.annotated`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IncidentNote {
    pub incident: Reference,
    #[serde(default, deserialize_with = "null_as_default")]
    pub content: String,
}

/// What changed, for the events that update an open room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Acknowledged,
    Escalated,
    PriorityUpdated,
    Reassigned,
}

impl Change {
    /// The past tense a responder reads.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Acknowledged => "acknowledged",
            Self::Escalated => "escalated",
            Self::PriorityUpdated => "re-prioritised",
            Self::Reassigned => "reassigned",
        }
    }
}

/// The incident events the war room acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentEvent {
    Triggered(Incident),
    Changed(Change, Incident),
    Annotated(IncidentNote),
    Resolved(Incident),
    Reopened(Incident),
}

impl IncidentEvent {
    /// The incident's PagerDuty id.
    pub fn incident_id(&self) -> &str {
        match self {
            Self::Triggered(i) | Self::Changed(_, i) | Self::Resolved(i) | Self::Reopened(i) => &i.id,
            Self::Annotated(note) => &note.incident.id,
        }
    }
}

impl WebhookEvent {
    /// The event as the war room understands it; `Ok(None)` for event types it ignores.
    pub fn incident_event(&self) -> Result<Option<IncidentEvent>, String> {
        let incident = || {
            let mut incident = serde_json::from_value::<Incident>(self.data.clone())
                .map_err(|e| format!("{} data is not an incident: {e}", self.event_type))?;
            incident.created_at = incident.created_at.or(self.occurred_at);
            Ok::<_, String>(incident)
        };
        Ok(Some(match self.event_type.as_str() {
            "incident.triggered" => IncidentEvent::Triggered(incident()?),
            "incident.acknowledged" => IncidentEvent::Changed(Change::Acknowledged, incident()?),
            "incident.escalated" => IncidentEvent::Changed(Change::Escalated, incident()?),
            "incident.priority_updated" => IncidentEvent::Changed(Change::PriorityUpdated, incident()?),
            "incident.reassigned" => IncidentEvent::Changed(Change::Reassigned, incident()?),
            "incident.resolved" => IncidentEvent::Resolved(incident()?),
            "incident.reopened" => IncidentEvent::Reopened(incident()?),
            "incident.annotated" => IncidentEvent::Annotated(
                serde_json::from_value(self.data.clone())
                    .map_err(|e| format!("incident.annotated data is not a note: {e}"))?,
            ),
            _ => return Ok(None),
        }))
    }
}

/// Looks up PagerDuty users' e-mail addresses over the REST API (webhooks carry only references).
#[derive(Clone)]
pub struct Directory {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").field("base_url", &self.base_url).field("token", &"<redacted>").finish()
    }
}

#[derive(Debug, Deserialize)]
struct UserEnvelope {
    user: User,
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(default)]
    email: Option<String>,
}

impl Directory {
    /// A directory on the REST API at `base_url` (ending in `/`) with a read-only API key.
    pub fn new(http: reqwest::Client, base_url: &str, token: String) -> Self {
        let base_url = if base_url.ends_with('/') { base_url.to_owned() } else { format!("{base_url}/") };
        Self { http, base_url, token }
    }

    /// The user's e-mail address; `None` (and a log line) when PagerDuty cannot tell. Best effort:
    /// a missing invitation must never cost the war room.
    pub async fn email(&self, user: &Reference) -> Option<String> {
        if user.id.is_empty() || !user.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            tracing::warn!(user = %user.id, "not a PagerDuty user id");
            return None;
        }
        let answer = self
            .http
            .get(format!("{}users/{}", self.base_url, user.id))
            .header("Authorization", format!("Token token={}", self.token))
            .header("Accept", "application/json")
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        let found = match answer {
            Ok(response) if response.status().is_success() => response.json::<UserEnvelope>().await.ok(),
            Ok(response) => {
                tracing::warn!(user = %user.id, status = %response.status(), "PagerDuty user lookup refused");
                None
            }
            Err(err) => {
                tracing::warn!(user = %user.id, error = %err, "PagerDuty user lookup failed");
                None
            }
        };
        found.and_then(|envelope| envelope.user.email).filter(|email| email.contains('@'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec-test";
    const BODY: &[u8] = br#"{"event":{"id":"01","event_type":"incident.triggered"}}"#;

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_valid_signature_is_accepted() {
        assert!(verify(&sign(SECRET, BODY), BODY, &secrets(&[SECRET])));
    }

    #[test]
    fn the_signature_is_hmac_sha256_hex_of_the_raw_body() {
        // Computed independently: printf hello | openssl dgst -sha256 -hmac whsec-test
        assert_eq!(sign(SECRET, b"hello"), "v1=32e4008afde3e51a2be33a3a612683879bc5b9ada39002baba51a91034de8962");
    }

    #[test]
    fn any_of_several_signatures_may_match_during_a_rotation() {
        let header = format!("v1={},{}", "ab".repeat(32), sign(SECRET, BODY));
        assert!(verify(&header, BODY, &secrets(&[SECRET])));
        let header = format!("{}, v1=00", sign("old-secret", BODY));
        assert!(verify(&header, BODY, &secrets(&["new-secret", "old-secret"])), "either configured secret may sign");
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let header = sign(SECRET, BODY);
        let tampered = br#"{"event":{"id":"01","event_type":"incident.resolved"}}"#;
        assert!(!verify(&header, tampered, &secrets(&[SECRET])));
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        assert!(!verify(&sign("not-the-secret", BODY), BODY, &secrets(&[SECRET])));
    }

    #[test]
    fn malformed_headers_and_empty_secrets_never_match() {
        let valid = sign(SECRET, BODY);
        let hex_only = valid.trim_start_matches("v1=").to_owned();
        for header in ["", "v1=", "v1=zz", "v0=00", hex_only.as_str(), "v2=abc"] {
            assert!(!verify(header, BODY, &secrets(&[SECRET])), "{header:?}");
        }
        assert!(!verify(&sign("", BODY), BODY, &secrets(&[""])), "an empty secret is no secret");
        assert!(!verify(&valid, BODY, &[]));
    }

    #[test]
    fn up_to_the_cap_every_signature_is_considered() {
        let junk = vec![format!("v1={}", "00".repeat(32)); MAX_SIGNATURES - 1];
        let header = format!("{},{}", junk.join(","), sign(SECRET, BODY));
        assert_eq!(check_signature(&header, BODY, &secrets(&[SECRET])), Ok(()));
    }

    #[test]
    fn the_freshness_window_holds_its_edges() {
        let occurred = "2026-11-20T04:06:41Z".parse::<DateTime<Utc>>().expect("time");
        assert_eq!(check_freshness(Some(occurred), occurred + MAX_EVENT_AGE), Ok(()));
        assert_eq!(check_freshness(Some(occurred), occurred - MAX_CLOCK_SKEW), Ok(()));
        let late = check_freshness(Some(occurred), occurred + MAX_EVENT_AGE + TimeDelta::seconds(1));
        assert!(matches!(late, Err(WebhookRefusal::OutsideFreshnessWindow(_))), "{late:?}");
        let undated = check_freshness(None, occurred);
        assert!(matches!(undated, Err(WebhookRefusal::OutsideFreshnessWindow(_))), "{undated:?}");
    }

    #[test]
    fn incident_events_are_read_and_others_ignored() {
        let event = |event_type: &str, data: Value| WebhookEvent {
            id: "01".into(),
            event_type: event_type.into(),
            resource_type: "incident".into(),
            occurred_at: None,
            agent: None,
            data,
        };
        let incident = serde_json::json!({"id": "PGR0VU2", "created_at": "2026-11-20T04:05:00Z", "title": "t"});
        let read = event("incident.acknowledged", incident.clone()).incident_event().expect("valid");
        assert!(matches!(read, Some(IncidentEvent::Changed(Change::Acknowledged, ref i)) if i.id == "PGR0VU2"));
        let note = serde_json::json!({"incident": {"id": "PGR0VU2"}, "content": "looking at it"});
        let read = event("incident.annotated", note).incident_event().expect("valid");
        assert_eq!(read.map(|e| e.incident_id().to_owned()).as_deref(), Some("PGR0VU2"));
        assert_eq!(event("service.updated", incident).incident_event(), Ok(None));
        assert!(event("incident.resolved", serde_json::json!({"id": 1})).incident_event().is_err());
    }

    #[test]
    fn a_real_shaped_delivery_without_the_optional_fields_is_read() {
        // GIVEN what PagerDuty may send for an account without priorities or bridges: nulls, an
        // empty team list, no incident_key and no created_at
        let data = serde_json::json!({
            "id": "Q0MINIMAL1", "type": "incident", "number": null, "status": null, "title": null,
            "service": {"id": "PSVC001", "summary": null, "html_url": null},
            "assignees": null, "teams": [], "priority": null, "urgency": null,
            "conference_bridge": null, "resolve_reason": null, "escalation_policy": null
        });
        let occurred = "2026-11-20T04:06:41Z".parse::<DateTime<Utc>>().expect("time");
        let event = WebhookEvent {
            id: "01".into(),
            event_type: "incident.triggered".into(),
            resource_type: "incident".into(),
            occurred_at: Some(occurred),
            agent: None,
            data,
        };
        // WHEN the war room reads it
        let Ok(Some(IncidentEvent::Triggered(incident))) = event.incident_event() else {
            panic!("refused: {:?}", event.incident_event())
        };
        // THEN it is an incident dated by the event, with nothing invented
        assert_eq!(incident.id, "Q0MINIMAL1");
        assert_eq!(incident.since(), occurred);
        assert!(incident.assignees.is_empty() && incident.priority.is_none() && incident.conference_bridge.is_none());
        assert_eq!(incident.service.map(|s| s.summary), Some(String::new()));
    }
}
