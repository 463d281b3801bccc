use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::secrets::Secrets;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "xoxb-test-token";
const ROOM_ID: &str = "C0WARROOM";
const ESCALATION_ROOM: &str = "inc-20261120-0d5c8a41-web-nginx-down";
const PAGERDUTY_ROOM: &str = "inc-20261120-q2jq5rd8xk4l7m-storefront-checkout-5xx-rate-above-5-for-10-minutes";

fn sample(name: &str) -> Value {
    let path = format!("{}/../../events/slack-channel-creator/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json")
}

fn sample_secret() -> String {
    let path = format!("{}/../../events/slack-channel-creator/webhook-secret.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("secret file").trim().to_owned()
}

fn config(server: &MockServer) -> WarRoomConfig {
    WarRoomConfig {
        slack_api_url: format!("{}/api/", server.uri()),
        pagerduty_api_url: format!("{}/pagerduty/", server.uri()),
        retry: RetryPolicy {
            max_attempts: 4,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            attempt_timeout: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(60),
        },
        ..WarRoomConfig::default()
    }
}

fn war_room_with(server: &MockServer, webhook_secrets: Vec<String>, pagerduty_token: Option<&str>) -> WarRoom {
    let secrets =
        Secrets { slack_token: TOKEN.into(), webhook_secrets, pagerduty_token: pagerduty_token.map(str::to_owned) };
    WarRoom::new(config(server), secrets)
        .expect("war room")
        .with_routes(shared::Routes::example().expect("example routes"))
}

fn war_room(server: &MockServer) -> WarRoom {
    war_room_with(server, vec![sample_secret()], None)
}

fn ok(extra: Value) -> ResponseTemplate {
    let mut body = json!({"ok": true});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    ResponseTemplate::new(200).set_body_json(body)
}

fn refused(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": code}))
}

fn slack_method(name: &str) -> MockBuilder {
    Mock::given(method("POST")).and(path(format!("/api/{name}")))
}

/// The form parameters of a Slack call.
fn form(request: &Request) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(&request.body).into_owned().collect()
}

/// Every call of one Slack method, as form parameters, in order.
async fn calls(server: &MockServer, name: &str) -> Vec<BTreeMap<String, String>> {
    let wanted = format!("/api/{name}");
    server.received_requests().await.unwrap_or_default().iter().filter(|r| r.url.path() == wanted).map(form).collect()
}

fn channel(name: &str, archived: bool) -> Value {
    json!({"id": ROOM_ID, "name": name, "is_archived": archived, "is_member": true,
           "topic": {"value": ""}, "purpose": {"value": ""}})
}

/// A workspace that answers every call the war room makes; tests mount what differs with priority 1.
async fn workspace() -> MockServer {
    let server = MockServer::start().await;
    let mounts = [
        ("auth.test", ok(json!({"url": "https://acme.slack.com/", "user_id": "U0BOT", "team_id": "T1"}))),
        ("conversations.setTopic", ok(json!({}))),
        ("conversations.setPurpose", ok(json!({}))),
        ("conversations.unarchive", ok(json!({}))),
        ("conversations.archive", ok(json!({}))),
        ("conversations.invite", ok(json!({}))),
        ("conversations.history", ok(json!({"messages": []}))),
        (
            "conversations.list",
            ok(json!({"channels": [channel("general", false)], "response_metadata": {"next_cursor": ""}})),
        ),
        ("chat.postMessage", ok(json!({"channel": ROOM_ID, "ts": "1795147601.000100"}))),
        ("pins.add", ok(json!({}))),
        ("pins.list", ok(json!({"items": []}))),
        ("bookmarks.list", ok(json!({"bookmarks": []}))),
        ("bookmarks.add", ok(json!({"bookmark": {}}))),
    ];
    for (name, answer) in mounts {
        slack_method(name).respond_with(answer).with_priority(5).mount(&server).await;
    }
    slack_method("conversations.create")
        .respond_with(|request: &Request| {
            let name = form(request).get("name").cloned().unwrap_or_default();
            ok(json!({"channel": channel(&name, false)}))
        })
        .with_priority(5)
        .mount(&server)
        .await;
    slack_method("users.lookupByEmail")
        .respond_with(|request: &Request| match form(request).get("email").map(String::as_str) {
            Some("alice@example.com") => ok(json!({"user": {"id": "U0ALICE", "name": "alice"}})),
            Some("bob@example.com") => ok(json!({"user": {"id": "U0BOB", "name": "bob"}})),
            _ => refused("users_not_found"),
        })
        .with_priority(5)
        .mount(&server)
        .await;
    server
}

async fn escalate(server: &MockServer) -> Result<Room, WarRoomError> {
    match handle(&war_room(server), sample("escalation.json"), None).await? {
        Reply::Room(room) => Ok(room),
        Reply::Http(response) => panic!("an escalation answers a room, not {response:?}"),
    }
}

/// The signed body of a Function URL request (base64 decoded when it is encoded).
fn body_of(request: &Value) -> Value {
    let raw = request["body"].as_str().expect("body");
    let raw = if request["isBase64Encoded"] == json!(true) {
        String::from_utf8(BASE64.decode(raw).expect("base64")).expect("UTF-8")
    } else {
        raw.to_owned()
    };
    serde_json::from_str(&raw).expect("JSON body")
}

/// When PagerDuty says the delivery's event occurred.
fn occurred_at(request: &Value) -> DateTime<Utc> {
    body_of(request)["event"]["occurred_at"].as_str().expect("occurred_at").parse().expect("time")
}

/// The request carrying `body`, signed with the sample secret.
fn signed(request: &Value, body: &Value) -> Value {
    let raw = body.to_string();
    let mut request = request.clone();
    request["headers"]["x-pagerduty-signature"] = json!(pagerduty::sign(&sample_secret(), raw.as_bytes()));
    request["body"] = json!(raw);
    request["isBase64Encoded"] = json!(false);
    request
}

/// The HTTP answer to a webhook request arriving at `now`, with its JSON body.
async fn deliver_at(war_room: &WarRoom, request: Value, now: DateTime<Utc>) -> (i64, Value) {
    match handle_at(war_room, request, None, now).await.expect("a webhook always gets an HTTP answer") {
        Reply::Http(response) => {
            let body = serde_json::from_str(response.body.as_deref().unwrap_or("null")).expect("JSON body");
            (response.status_code, body)
        }
        Reply::Room(room) => panic!("a webhook answers HTTP, not {room:?}"),
    }
}

/// The HTTP answer to a webhook sample delivered two seconds after its event occurred.
async fn deliver(war_room: &WarRoom, name: &str) -> (i64, Value) {
    let request = sample(name);
    let now = occurred_at(&request) + chrono::TimeDelta::seconds(2);
    deliver_at(war_room, request, now).await
}

#[tokio::test]
async fn an_escalation_opens_a_room_with_the_alarm_and_evidence_pinned() {
    // GIVEN a workspace where alice and bob have accounts and carol has none
    let server = workspace().await;
    // WHEN the state machine escalates the sample first-response document
    let room = escalate(&server).await.expect("room");
    // THEN the room is created under its deterministic name, public by default
    assert_eq!(
        calls(&server, "conversations.create").await,
        [BTreeMap::from([
            ("is_private".to_owned(), "false".to_owned()),
            ("name".to_owned(), ESCALATION_ROOM.to_owned()),
        ])]
    );
    assert_eq!(room.name, ESCALATION_ROOM);
    assert_eq!(room.url, format!("https://acme.slack.com/archives/{ROOM_ID}"));
    assert!(room.created && room.summary_posted && !room.unarchived);
    // AND the summary names the alarm and quotes the evidence, in Block Kit and in the fallback text
    let posts = calls(&server, "chat.postMessage").await;
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert!(post["text"].starts_with("War room: web-nginx-down"), "{}", post["text"]);
    assert!(post["text"].contains("i-0f1e2d3c4b5a69788: Failed, exit code 3, not active"), "{}", post["text"]);
    assert!(post["blocks"].contains("bind() to 0.0.0.0:80 failed"), "{}", post["blocks"]);
    assert!(!post["blocks"].contains("Evidence from `i-0a1b2c3d4e5f60718`"), "only the instances still down");
    let metadata: Value = serde_json::from_str(&post["metadata"]).expect("metadata JSON");
    assert_eq!(metadata["event_type"], "war_room_summary");
    assert_eq!(metadata["event_payload"]["incident"], "web-nginx__web-nginx-down__0d5c8a41e6b2f7a93c10");
    // AND it is pinned, the topic says who has it, and the links are bookmarked
    assert_eq!(calls(&server, "pins.add").await[0]["timestamp"], "1795147601.000100");
    let topic = &calls(&server, "conversations.setTopic").await[0]["topic"];
    assert!(topic.starts_with("HIGH · escalated") && topic.contains("alice@example.com"), "{topic}");
    let bookmarks: Vec<String> = calls(&server, "bookmarks.add").await.iter().map(|b| b["title"].clone()).collect();
    assert_eq!(bookmarks, ["Alarm web-nginx-down", "Execution", "Runbook"]);
    // AND the responders with an account are invited in one batch; carol is reported, not fatal
    assert_eq!(calls(&server, "conversations.invite").await[0]["users"], "U0ALICE,U0BOB");
    assert_eq!(room.invited, ["alice@example.com", "bob@example.com"]);
    assert_eq!(room.not_invited, ["carol@example.com: users_not_found"]);
}

#[tokio::test]
async fn an_escalation_without_a_restart_tells_why_and_links_the_incident_record() {
    // GIVEN an execution that escalated on an open breaker and a caught error, with an Incident Manager record
    let server = workspace().await;
    let mut doc = sample("escalation.json");
    doc["failures"] = json!({"count": 6, "threshold": 5, "windowSeconds": 300, "breakerOpen": true});
    doc["remediation"] = json!({});
    doc["error"] = json!({"Error": "TargetUnreachable",
        "Cause": "{\"errorType\":\"TargetUnreachable\",\"errorMessage\":\"command c-1 could not reach i-0f1e2d3c4b5a69788\"}"});
    doc["incident"] = json!({"incidentRecordArn": "arn:aws:ssm-incidents::123456789012:incident-record/web/0a1b"});
    // WHEN the war room opens
    handle(&war_room(&server), doc, None).await.expect("room");
    // THEN the summary says nothing was restarted and why, and links the incident record
    let text = calls(&server, "chat.postMessage").await[0]["text"].clone();
    assert!(text.contains("Nothing: the circuit breaker is open (6 failed runs of route web-nginx"), "{text}");
    assert!(
        text.contains("It failed with TargetUnreachable: command c-1 could not reach i-0f1e2d3c4b5a69788"),
        "{text}"
    );
    assert!(text.contains("Incident Manager record: arn:aws:ssm-incidents::123456789012:incident-record/web/0a1b"));
    assert!(!text.contains("Restarted"), "{text}");
    let bookmarks: Vec<String> = calls(&server, "bookmarks.add").await.iter().map(|b| b["title"].clone()).collect();
    assert!(bookmarks.contains(&"Incident Manager".to_owned()), "{bookmarks:?}");
}

#[tokio::test]
async fn name_taken_reuses_the_room_and_posts_no_second_summary() {
    // GIVEN the room exists already, with its summary pinned
    let server = workspace().await;
    slack_method("conversations.create").respond_with(refused("name_taken")).with_priority(1).mount(&server).await;
    slack_method("conversations.list")
        .respond_with(ok(json!({"channels": [channel("general", false), channel(ESCALATION_ROOM, false)]})))
        .with_priority(1)
        .mount(&server)
        .await;
    slack_method("pins.list")
        .respond_with(ok(json!({"items": [{"type": "message", "message": {
            "ts": "1795147601.000100", "user": "U0BOT", "text": "War room: web-nginx-down",
            "metadata": {"event_type": "war_room_summary", "event_payload": {}}}}]})))
        .with_priority(1)
        .mount(&server)
        .await;
    // WHEN the escalation is delivered again
    let room = escalate(&server).await.expect("room");
    // THEN the existing room is reused: no copy, no second summary, nothing unarchived
    assert_eq!((room.channel_id.as_str(), room.created, room.summary_posted), (ROOM_ID, false, false));
    assert_eq!(calls(&server, "conversations.create").await.len(), 1, "no `-1` copy is attempted");
    assert!(calls(&server, "chat.postMessage").await.is_empty());
    assert!(calls(&server, "conversations.unarchive").await.is_empty());
}

#[tokio::test]
async fn an_archived_room_is_unarchived_and_reused() {
    let server = workspace().await;
    slack_method("conversations.create").respond_with(refused("name_taken")).with_priority(1).mount(&server).await;
    slack_method("conversations.list")
        .respond_with(ok(json!({"channels": [channel(ESCALATION_ROOM, true)]})))
        .with_priority(1)
        .mount(&server)
        .await;
    let room = escalate(&server).await.expect("room");
    assert!(room.unarchived && !room.created);
    assert_eq!(
        calls(&server, "conversations.unarchive").await,
        [BTreeMap::from([("channel".to_owned(), ROOM_ID.to_owned())])]
    );
}

#[tokio::test]
async fn a_summary_posted_but_never_pinned_is_pinned_not_posted_again() {
    let server = workspace().await;
    slack_method("conversations.history")
        .respond_with(ok(json!({"messages": [{"ts": "1795147000.000001", "user": "U0BOT",
            "text": "War room: web-nginx-down", "metadata": {"event_type": "war_room_summary", "event_payload": {}}}]})))
        .with_priority(1)
        .mount(&server)
        .await;
    let room = escalate(&server).await.expect("room");
    assert!(!room.summary_posted);
    assert!(calls(&server, "chat.postMessage").await.is_empty());
    assert_eq!(calls(&server, "pins.add").await[0]["timestamp"], "1795147000.000001");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_as_retry_after_asks() {
    // GIVEN Slack rate-limits the first create
    let server = workspace().await;
    slack_method("conversations.create")
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // WHEN the room is opened
    let room = escalate(&server).await.expect("room");
    // THEN the create was repeated once and succeeded
    assert_eq!(calls(&server, "conversations.create").await.len(), 2);
    assert!(room.created);
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_time_left_is_transient_and_not_waited() {
    let server = workspace().await;
    slack_method("conversations.create")
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = handle(&war_room(&server), sample("escalation.json"), Some(Duration::from_secs(10)))
        .await
        .expect_err("rate limited");
    assert_eq!(<&str>::from(&err), "TransientError");
    assert!(err.to_string().contains("deadline"), "{err}");
    assert_eq!(calls(&server, "conversations.create").await.len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = workspace().await;
    slack_method("conversations.create")
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    let room = escalate(&server).await.expect("room");
    assert!(room.created);
    assert_eq!(calls(&server, "conversations.create").await.len(), 3);
}

#[tokio::test]
async fn server_errors_that_persist_are_transient() {
    let server = workspace().await;
    slack_method("conversations.create").respond_with(ResponseTemplate::new(500)).with_priority(1).mount(&server).await;
    let err = escalate(&server).await.expect_err("Slack is down");
    assert_eq!(<&str>::from(&err), "TransientError");
    assert_eq!(calls(&server, "conversations.create").await.len(), 4, "max_attempts calls, then give up");
}

#[tokio::test]
async fn a_slow_slack_is_a_timeout_retried_then_transient() {
    let server = workspace().await;
    slack_method("conversations.create")
        .respond_with(ok(json!({})).set_delay(Duration::from_secs(30)))
        .with_priority(1)
        .mount(&server)
        .await;
    let mut fast = config(&server);
    fast.retry.attempt_timeout = Duration::from_millis(200);
    fast.retry.max_attempts = 2;
    let secrets = Secrets { slack_token: TOKEN.into(), webhook_secrets: vec![sample_secret()], pagerduty_token: None };
    let err = handle(
        &WarRoom::new(fast, secrets).expect("war room").with_routes(shared::Routes::example().expect("example routes")),
        sample("escalation.json"),
        None,
    )
    .await
    .expect_err("timed out");
    assert_eq!(<&str>::from(&err), "TransientError");
    assert_eq!(calls(&server, "conversations.create").await.len(), 2);
}

#[tokio::test]
async fn refused_invitations_are_dropped_and_the_rest_invited() {
    // GIVEN bob is already in the room: Slack refuses the whole batch, naming him
    let server = workspace().await;
    slack_method("conversations.invite")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "already_in_channel",
            "errors": [{"user": "U0BOB", "ok": false, "error": "already_in_channel"}]})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // WHEN the room is opened
    let room = escalate(&server).await.expect("a refused invitation is not fatal");
    // THEN alice is invited on the second call, bob counts as in the room, carol is reported
    let invites: Vec<String> =
        calls(&server, "conversations.invite").await.iter().map(|c| c["users"].clone()).collect();
    assert_eq!(invites, ["U0ALICE,U0BOB", "U0ALICE"]);
    assert_eq!(room.invited, ["alice@example.com", "bob@example.com"]);
    assert_eq!(room.not_invited, ["carol@example.com: users_not_found"]);
}

#[tokio::test]
async fn ok_false_answers_are_named_errors_carrying_slacks_code() {
    let server = workspace().await;
    slack_method("conversations.create")
        .respond_with(refused("restricted_action"))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = escalate(&server).await.expect_err("refused");
    assert_eq!(<&str>::from(&err), "SlackApiError");
    assert_eq!(err.slack_code(), Some("restricted_action"));
    assert_eq!(err.to_string(), "Slack conversations.create answered restricted_action");
}

#[tokio::test]
async fn a_bad_token_is_a_config_error() {
    let server = workspace().await;
    slack_method("auth.test").respond_with(refused("invalid_auth")).with_priority(1).mount(&server).await;
    let err = escalate(&server).await.expect_err("bad token");
    assert_eq!(<&str>::from(&err), "ConfigError");
    assert!(err.to_string().contains("invalid_auth"), "{err}");
    assert!(!err.to_string().contains(TOKEN), "the token never shows: {err}");
}

#[tokio::test]
async fn a_signed_webhook_opens_the_incident_room() {
    let server = workspace().await;
    let (status, body) = deliver(&war_room(&server), "incident-triggered.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["did"], "opened");
    assert_eq!(body["room"]["name"], PAGERDUTY_ROOM);
    let post = &calls(&server, "chat.postMessage").await[0];
    assert!(post["text"].starts_with("War room: PagerDuty #4127 Storefront checkout"), "{}", post["text"]);
    let metadata: Value = serde_json::from_str(&post["metadata"]).expect("metadata");
    assert_eq!(metadata["event_payload"]["webhook_id"], "01JD0000000000000000000001", "the signed event.id");
    let topic = &calls(&server, "conversations.setTopic").await[0]["topic"];
    assert_eq!(topic, "P2 · high urgency · triggered · on it: Alice Oncall");
}

#[tokio::test]
async fn bad_signatures_are_refused_before_slack_is_called() {
    let server = workspace().await;
    let cases = [
        (war_room(&server), "invalid-tampered-body.json"),
        (war_room(&server), "invalid-missing-signature.json"),
        (war_room_with(&server, vec!["some-other-secret".into()], None), "incident-triggered.json"),
    ];
    for (war_room, sample) in cases {
        let (status, body) = deliver(&war_room, sample).await;
        assert_eq!(status, 401, "{sample}: {body}");
    }
    assert!(server.received_requests().await.unwrap_or_default().is_empty(), "Slack must not be called");
}

#[tokio::test]
async fn a_rotated_secret_still_verifies_while_both_are_configured() {
    let server = workspace().await;
    let rotating = war_room_with(&server, vec!["the-new-secret".into(), sample_secret()], None);
    let (status, _) = deliver(&rotating, "incident-triggered.json").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_base64_body_is_decoded_before_it_is_verified() {
    let server = workspace().await;
    let (status, body) = deliver(&war_room(&server), "incident-triggered-base64.json").await;
    assert_eq!((status, body["did"].as_str()), (200, Some("opened")), "{body}");
}

#[tokio::test]
async fn other_event_types_are_answered_and_ignored() {
    let server = workspace().await;
    let (status, body) = deliver(&war_room(&server), "ignored-service-updated.json").await;
    assert_eq!((status, body["did"].as_str()), (200, Some("ignored")));
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}

async fn with_existing_room(server: &MockServer, archived: bool) {
    slack_method("conversations.list")
        .respond_with(ok(json!({"channels": [channel("general", false), channel(PAGERDUTY_ROOM, archived)]})))
        .with_priority(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn an_acknowledgement_updates_the_topic_and_posts_once() {
    let server = workspace().await;
    with_existing_room(&server, false).await;
    let (status, body) = deliver(&war_room(&server), "incident-acknowledged.json").await;
    assert_eq!((status, body["did"].as_str()), (200, Some("updated")), "{body}");
    assert_eq!(
        calls(&server, "conversations.setTopic").await[0]["topic"],
        "P2 · high urgency · acknowledged · on it: Alice Oncall"
    );
    let posts = calls(&server, "chat.postMessage").await;
    assert_eq!(posts.len(), 1);
    assert!(posts[0]["text"].contains("Alice Oncall acknowledged the incident"), "{}", posts[0]["text"]);
    assert!(calls(&server, "conversations.create").await.is_empty(), "updates find the room, they do not create it");
}

#[tokio::test]
async fn a_redelivered_webhook_changes_nothing() {
    // GIVEN the room already holds the message this delivery posted
    let server = workspace().await;
    with_existing_room(&server, false).await;
    slack_method("conversations.history")
        .respond_with(ok(json!({"messages": [{"ts": "1795147800.000200", "user": "U0BOT", "text": "acknowledged",
            "metadata": {"event_type": "pagerduty_webhook",
                         "event_payload": {"webhook_id": "01JD0000000000000000000002"}}}]})))
        .with_priority(1)
        .mount(&server)
        .await;
    // WHEN PagerDuty delivers it again
    let (status, body) = deliver(&war_room(&server), "incident-acknowledged.json").await;
    // THEN it is answered 200 and nothing is written
    assert_eq!((status, body["did"].as_str()), (200, Some("duplicate")), "{body}");
    assert!(calls(&server, "chat.postMessage").await.is_empty());
    assert!(calls(&server, "conversations.setTopic").await.is_empty());
}

#[tokio::test]
async fn a_resolution_is_posted_and_the_room_archived() {
    let server = workspace().await;
    with_existing_room(&server, false).await;
    let (status, body) = deliver(&war_room(&server), "incident-resolved.json").await;
    assert_eq!((status, body["did"].as_str()), (200, Some("resolved")), "{body}");
    assert!(calls(&server, "chat.postMessage").await[0]["text"].contains("Resolved by Alice Oncall"));
    assert_eq!(calls(&server, "conversations.archive").await.len(), 1);
}

#[tokio::test]
async fn a_redelivered_resolution_only_finishes_the_archiving() {
    // GIVEN the resolution was posted but the room not archived (the first delivery stopped there)
    let server = workspace().await;
    with_existing_room(&server, false).await;
    slack_method("conversations.history")
        .respond_with(ok(json!({"messages": [{"ts": "1795149070.000300", "user": "U0BOT", "text": "Resolved",
            "metadata": {"event_type": "pagerduty_webhook",
                         "event_payload": {"webhook_id": "01JD0000000000000000000007"}}}]})))
        .with_priority(1)
        .mount(&server)
        .await;
    // WHEN PagerDuty delivers it again
    let (status, body) = deliver(&war_room(&server), "incident-resolved.json").await;
    // THEN nothing is posted twice, and the room is archived
    assert_eq!((status, body["did"].as_str()), (200, Some("duplicate")), "{body}");
    assert!(calls(&server, "chat.postMessage").await.is_empty());
    assert_eq!(calls(&server, "conversations.archive").await.len(), 1);
}

#[tokio::test]
async fn a_resolution_keeps_the_room_open_when_configured_so() {
    let server = workspace().await;
    with_existing_room(&server, false).await;
    let mut config = config(&server);
    config.archive_on_resolve = false;
    let secrets = Secrets { slack_token: TOKEN.into(), webhook_secrets: vec![sample_secret()], pagerduty_token: None };
    let (status, _) = deliver(
        &WarRoom::new(config, secrets)
            .expect("war room")
            .with_routes(shared::Routes::example().expect("example routes")),
        "incident-resolved.json",
    )
    .await;
    assert_eq!(status, 200);
    assert!(calls(&server, "conversations.archive").await.is_empty());
}

#[tokio::test]
async fn a_reopened_incident_brings_its_archived_room_back() {
    let server = workspace().await;
    with_existing_room(&server, true).await;
    let (status, body) = deliver(&war_room(&server), "incident-reopened.json").await;
    assert_eq!((status, body["did"].as_str()), (200, Some("reopened")), "{body}");
    assert_eq!(body["room"]["unarchived"], true);
    assert_eq!(calls(&server, "conversations.unarchive").await.len(), 1);
    assert!(calls(&server, "chat.postMessage").await[0]["text"].contains("Reopened by Bob Backup"));
    assert!(calls(&server, "conversations.create").await.is_empty());
}

#[tokio::test]
async fn a_note_on_an_archived_room_or_no_room_changes_nothing() {
    for archived in [None, Some(true)] {
        let server = workspace().await;
        if let Some(archived) = archived {
            with_existing_room(&server, archived).await;
        }
        let (status, body) = deliver(&war_room(&server), "incident-annotated.json").await;
        let expected = if archived.is_some() { "roomArchived" } else { "noRoom" };
        assert_eq!((status, body["did"].as_str()), (200, Some(expected)), "{body}");
        assert!(calls(&server, "chat.postMessage").await.is_empty());
    }
}

#[tokio::test]
async fn an_update_for_an_incident_without_a_room_opens_it() {
    let server = workspace().await;
    let (status, body) = deliver(&war_room(&server), "incident-escalated.json").await;
    assert_eq!((status, body["did"].as_str()), (200, Some("opened")), "{body}");
    assert_eq!(calls(&server, "conversations.create").await[0]["name"], PAGERDUTY_ROOM);
}

#[tokio::test]
async fn assignees_are_looked_up_in_pagerduty_and_invited() {
    // GIVEN a PagerDuty API key and Alice's PagerDuty profile
    let server = workspace().await;
    Mock::given(method("GET"))
        .and(path("/pagerduty/users/PALICE1"))
        .and(|request: &Request| {
            request.headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Token token=pd-test-key")
        })
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"user": {"id": "PALICE1", "email": "alice@example.com"}})),
        )
        .mount(&server)
        .await;
    let with_directory = war_room_with(&server, vec![sample_secret()], Some("pd-test-key"));
    // WHEN the incident triggers
    let (status, body) = deliver(&with_directory, "incident-triggered.json").await;
    // THEN Alice is found by the e-mail PagerDuty gave and invited
    assert_eq!(status, 200, "{body}");
    assert_eq!(calls(&server, "users.lookupByEmail").await[0]["email"], "alice@example.com");
    assert_eq!(calls(&server, "conversations.invite").await[0]["users"], "U0ALICE");
}

#[tokio::test]
async fn a_slack_failure_during_a_webhook_is_a_5xx_so_pagerduty_retries() {
    let server = workspace().await;
    slack_method("conversations.create").respond_with(ResponseTemplate::new(500)).with_priority(1).mount(&server).await;
    let (status, body) = deliver(&war_room(&server), "incident-triggered.json").await;
    assert_eq!((status, body["errorType"].as_str()), (503, Some("TransientError")), "{body}");
}

#[tokio::test]
async fn more_v1_signatures_than_the_cap_are_refused_even_when_one_is_valid() {
    // GIVEN a delivery whose header carries eight junk signatures before the valid one
    let server = workspace().await;
    let request = sample("incident-triggered.json");
    let valid = request["headers"]["x-pagerduty-signature"].as_str().expect("signature").to_owned();
    let mut flooded = request.clone();
    let junk = vec![format!("v1={}", "00".repeat(32)); 8];
    flooded["headers"]["x-pagerduty-signature"] = json!(format!("{},{valid}", junk.join(",")));
    // WHEN it is delivered
    let (status, body) = deliver_at(&war_room(&server), flooded, occurred_at(&request)).await;
    // THEN it is refused by name, and nothing reaches Slack
    assert_eq!((status, body["errorType"].as_str()), (401, Some("TooManySignatures")), "{body}");
    assert!(server.received_requests().await.unwrap_or_default().is_empty(), "Slack must not be called");
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_refused_before_anything_else() {
    // GIVEN a correctly signed delivery padded past 256 KiB
    let server = workspace().await;
    let request = sample("incident-triggered.json");
    let mut body = body_of(&request);
    body["event"]["data"]["padding"] = json!("x".repeat(256 * 1024));
    // WHEN it is delivered
    let (status, answer) = deliver_at(&war_room(&server), signed(&request, &body), occurred_at(&request)).await;
    // THEN it is refused by name, and nothing reaches Slack
    assert_eq!((status, answer["errorType"].as_str()), (413, Some("PayloadTooLarge")), "{answer}");
    assert!(server.received_requests().await.unwrap_or_default().is_empty(), "Slack must not be called");
}

#[tokio::test]
async fn a_delivery_replayed_under_a_new_x_webhook_id_is_still_a_duplicate() {
    // GIVEN the room holds the message of the acknowledgement's signed event id
    let server = workspace().await;
    with_existing_room(&server, false).await;
    slack_method("conversations.history")
        .respond_with(ok(json!({"messages": [{"ts": "1795147800.000200", "user": "U0BOT", "text": "acknowledged",
            "metadata": {"event_type": "pagerduty_webhook",
                         "event_payload": {"webhook_id": "01JD0000000000000000000002"}}}]})))
        .with_priority(1)
        .mount(&server)
        .await;
    // WHEN the same signed body arrives again under an unsigned X-Webhook-Id never seen before
    let mut replayed = sample("incident-acknowledged.json");
    replayed["headers"]["x-webhook-id"] = json!("00000000-0000-0000-0000-00000000beef");
    let now = occurred_at(&replayed) + chrono::TimeDelta::seconds(30);
    let (status, body) = deliver_at(&war_room(&server), replayed, now).await;
    // THEN it is a duplicate: nothing is posted or changed
    assert_eq!((status, body["did"].as_str()), (200, Some("duplicate")), "{body}");
    assert!(calls(&server, "chat.postMessage").await.is_empty());
    assert!(calls(&server, "conversations.setTopic").await.is_empty());
}

#[tokio::test]
async fn a_delivery_that_occurred_long_ago_is_refused_and_reaches_no_one() {
    // GIVEN a correctly signed delivery captured and replayed 31 minutes after its event occurred
    let server = workspace().await;
    let request = sample("incident-triggered.json");
    let now = occurred_at(&request) + chrono::TimeDelta::minutes(31);
    // WHEN it is delivered
    let (status, body) = deliver_at(&war_room(&server), request, now).await;
    // THEN it is refused by name, and nothing reaches Slack
    assert_eq!((status, body["errorType"].as_str()), (400, Some("OutsideFreshnessWindow")), "{body}");
    assert!(server.received_requests().await.unwrap_or_default().is_empty(), "Slack must not be called");
}

#[tokio::test]
async fn a_delivery_dated_too_far_in_the_future_is_refused_and_reaches_no_one() {
    let server = workspace().await;
    let request = sample("incident-triggered.json");
    let now = occurred_at(&request) - chrono::TimeDelta::minutes(6);
    let (status, body) = deliver_at(&war_room(&server), request, now).await;
    assert_eq!((status, body["errorType"].as_str()), (400, Some("OutsideFreshnessWindow")), "{body}");
    assert!(server.received_requests().await.unwrap_or_default().is_empty(), "Slack must not be called");
}

#[tokio::test]
async fn a_delivery_pagerduty_retries_twenty_minutes_later_is_still_handled() {
    // GIVEN PagerDuty retries a delivery for about 20 minutes after a 5xx
    let server = workspace().await;
    let request = sample("incident-triggered.json");
    let now = occurred_at(&request) + chrono::TimeDelta::minutes(21);
    // WHEN the last retry arrives
    let (status, body) = deliver_at(&war_room(&server), request, now).await;
    // THEN it opens the room as the first delivery would have
    assert_eq!((status, body["did"].as_str()), (200, Some("opened")), "{body}");
    assert_eq!(calls(&server, "conversations.create").await.len(), 1);
}

#[tokio::test]
async fn junk_is_an_invalid_event_and_reaches_no_one() {
    let server = workspace().await;
    for junk in
        [sample("invalid-not-an-event.json"), json!("ALARM"), json!(null), json!({"alarm": 1, "incidentKey": 2})]
    {
        let err = handle(&war_room(&server), junk.clone(), None).await.expect_err("junk");
        assert_eq!(<&str>::from(&err), "InvalidEvent", "{junk}: {err}");
    }
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn no_secret_shows_in_debug_output() {
    let server = workspace().await;
    let shown = format!("{:?}", war_room_with(&server, vec![sample_secret()], Some("pd-test-key")));
    for secret in [TOKEN, sample_secret().as_str(), "pd-test-key"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn error_names_are_the_variant_names() {
    assert_eq!(WarRoomError::names(), ["InvalidEvent", "ConfigError", "SlackApiError", "TransientError"]);
}

/// Everything the war room sent Slack that Slack formats, every parameter of every call, as one
/// text. Left out: what Slack shows literally (bookmark titles, `plain_text` headers).
async fn everything_sent(server: &MockServer) -> String {
    fn drop_plain_text(value: &mut Value) {
        match value {
            Value::Array(items) => items.iter_mut().for_each(drop_plain_text),
            Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("plain_text") => {
                object.remove("text");
            }
            Value::Object(object) => object.values_mut().for_each(drop_plain_text),
            _ => {}
        }
    }
    let requests = server.received_requests().await.unwrap_or_default();
    let mut sent = Vec::new();
    for request in &requests {
        for (name, mut value) in form(request) {
            if name == "blocks" {
                let mut blocks: Value = serde_json::from_str(&value).expect("blocks JSON");
                drop_plain_text(&mut blocks);
                value = blocks.to_string();
            }
            if !(request.url.path().ends_with("bookmarks.add") && name == "title") {
                sent.push(value);
            }
        }
    }
    sent.join("\n")
}

/// What an attacker, or an unlucky alarm name, could use to mention people or plant links.
const INJECTIONS: &str =
    "<!channel> <!here> <@U0ADMIN> <#C0GENERAL> <!subteam^S0OPS> <https://evil.example|click me> &";

fn assert_nothing_injected(sent: &str) {
    for raw in ["<!channel>", "<!here>", "<@U0ADMIN>", "<#C0GENERAL>", "<!subteam", "<https://evil.example"] {
        assert!(!sent.contains(raw), "{raw} reached Slack unescaped in:\n{sent}");
    }
    assert!(sent.contains("&lt;!channel&gt;"), "the text is shown escaped, not dropped:\n{sent}");
}

#[tokio::test]
async fn no_field_of_an_escalation_can_mention_or_link() {
    // GIVEN an escalation whose every text from the alarm and the execution carries Slack control sequences
    let server = workspace().await;
    let mut doc = sample("escalation.json");
    for field in ["reason", "description", "alarmRule", "namespace", "metricName"] {
        doc["alarm"][field] = json!(format!("{field} {INJECTIONS}"));
    }
    doc["alarm"]["dimensions"] = json!({"InstanceId": INJECTIONS});
    doc["alarm"]["name"] = json!(format!("web-nginx-down {INJECTIONS}"));
    doc["remediation"]["summary"] = json!(format!("summary {INJECTIONS}"));
    doc["remediation"]["instances"][1]["evidence"] = json!(format!("evidence {INJECTIONS}"));
    doc["remediation"]["instances"][1]["status"] = json!(format!("Failed {INJECTIONS}"));
    doc["failures"] = json!({"breakerOpen": true, "count": 6, "reason": INJECTIONS});
    doc["error"] =
        json!({"Error": INJECTIONS, "Cause": format!("{{\"errorMessage\": \"{}\"}}", INJECTIONS.replace('"', ""))});
    doc["incident"] = json!({"incidentRecordArn": INJECTIONS});
    doc["notice"]["runbookUrl"] = json!("https://runbooks.example.com/x><!channel>|y");
    // WHEN the war room opens
    handle(&war_room(&server), doc, None).await.expect("room");
    // THEN no call to Slack carries a live mention or a planted link
    assert_nothing_injected(&everything_sent(&server).await);
}

#[tokio::test]
async fn no_field_of_a_pagerduty_delivery_can_mention_or_link() {
    // GIVEN a signed delivery whose title, service, priority, assignee and agent names carry control sequences
    let server = workspace().await;
    let mut request = sample("incident-triggered.json");
    let mut body: Value = serde_json::from_str(request["body"].as_str().expect("body")).expect("JSON body");
    let data = &mut body["event"]["data"];
    data["title"] = json!(format!("Checkout {INJECTIONS}"));
    data["service"]["summary"] = json!(format!("Storefront {INJECTIONS}"));
    data["priority"]["summary"] = json!(format!("P1 {INJECTIONS}"));
    data["urgency"] = json!(format!("high {INJECTIONS}"));
    data["status"] = json!(format!("triggered {INJECTIONS}"));
    data["assignees"][0]["summary"] = json!(format!("Alice {INJECTIONS}"));
    data["html_url"] = json!("https://acme.pagerduty.com/incidents/Q2><!channel>");
    body["event"]["agent"] = json!({"id": "PBOB", "summary": format!("Bob {INJECTIONS}")});
    let raw = body.to_string();
    request["headers"]["x-pagerduty-signature"] = json!(pagerduty::sign(&sample_secret(), raw.as_bytes()));
    request["body"] = json!(raw);
    // WHEN it is delivered, and then an acknowledgement and a note with the same names
    let war_room = war_room(&server);
    let now = occurred_at(&request);
    let Reply::Http(answer) = handle_at(&war_room, request.clone(), None, now).await.expect("answer") else { panic!() };
    assert_eq!(answer.status_code, 200, "{:?}", answer.body);
    for (event_type, event_id) in [("incident.acknowledged", "w-ack"), ("incident.annotated", "w-note")] {
        let mut changed = body.clone();
        changed["event"]["id"] = json!(event_id);
        changed["event"]["event_type"] = json!(event_type);
        if event_type == "incident.annotated" {
            changed["event"]["data"] =
                json!({"incident": {"id": "Q2JQ5RD8XK4L7M"}, "content": format!("note {INJECTIONS}")});
        }
        let raw = changed.to_string();
        let mut delivery = request.clone();
        delivery["headers"]["x-pagerduty-signature"] = json!(pagerduty::sign(&sample_secret(), raw.as_bytes()));
        delivery["body"] = json!(raw);
        slack_method("conversations.list")
            .respond_with(ok(json!({"channels": [channel(PAGERDUTY_ROOM, false)], "response_metadata": {}})))
            .with_priority(1)
            .mount(&server)
            .await;
        let Reply::Http(answer) = handle_at(&war_room, delivery, None, now).await.expect("answer") else { panic!() };
        assert_eq!(answer.status_code, 200, "{event_type}: {:?}", answer.body);
    }
    // THEN nothing PagerDuty sent reaches Slack as a live mention or link
    assert_eq!(calls(&server, "chat.postMessage").await.len(), 3, "summary, acknowledgement, note");
    assert_nothing_injected(&everything_sent(&server).await);
}

#[tokio::test]
async fn a_real_shaped_triggered_delivery_without_optional_fields_opens_a_room() {
    // GIVEN a delivery with priority, conference bridge and urgency null, no teams, no
    // incident_key and no created_at (what an account without those features sends)
    let server = workspace().await;
    // WHEN it is delivered
    let (status, body) = deliver(&war_room(&server), "incident-triggered-minimal.json").await;
    // THEN the room is opened, dated by the event's occurred_at
    assert_eq!((status, body["did"].as_str()), (200, Some("opened")), "{body}");
    let name = calls(&server, "conversations.create").await[0]["name"].clone();
    assert!(name.starts_with("inc-20261121-"), "{name}");
    let topic = &calls(&server, "conversations.setTopic").await[0]["topic"];
    assert!(topic.starts_with("no priority") && topic.contains("unassigned"), "{topic}");
}

#[tokio::test]
async fn a_retry_after_of_years_ends_the_invocation_instead_of_overflowing() {
    for retry_after in ["99999999999999999999", "31536000"] {
        // GIVEN Slack rate-limits and asks to wait a year, or longer than any clock can add
        let server = workspace().await;
        slack_method("auth.test")
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", retry_after))
            .with_priority(1)
            .mount(&server)
            .await;
        // WHEN an escalation needs Slack, with and without an invocation deadline
        for time_left in [None, Some(Duration::from_secs(30))] {
            let started = std::time::Instant::now();
            let err = handle(&war_room(&server), sample("escalation.json"), time_left).await.expect_err("rate limited");
            // THEN it gives up at once with a TransientError for Step Functions to retry later
            assert_eq!(<&str>::from(&err), "TransientError", "{retry_after}: {err}");
            assert!(err.to_string().contains("rate limited"), "{err}");
            assert!(started.elapsed() < Duration::from_secs(5), "it waited {:?}", started.elapsed());
        }
        assert_eq!(calls(&server, "auth.test").await.len(), 2, "one call per invocation, no retry");
    }
}

#[tokio::test]
async fn a_post_that_timed_out_but_landed_is_not_posted_again() {
    // GIVEN Slack posts the message but answers later than the client waits
    let server = workspace().await;
    let landed = Arc::new(std::sync::Mutex::new(None::<String>));
    let poster = landed.clone();
    slack_method("chat.postMessage")
        .respond_with(move |request: &Request| {
            *poster.lock().expect("lock") = form(request).get("metadata").cloned();
            ok(json!({"ts": "1795147601.000100"})).set_delay(Duration::from_millis(600))
        })
        .with_priority(1)
        .mount(&server)
        .await;
    let reader = landed.clone();
    slack_method("conversations.history")
        .respond_with(move |_: &Request| {
            let messages: Vec<Value> = reader
                .lock()
                .expect("lock")
                .iter()
                .map(|metadata| {
                    json!({"ts": "1795147601.000100", "text": "War room: web-nginx-down", "user": "U0BOT",
                           "metadata": serde_json::from_str::<Value>(metadata).expect("metadata")})
                })
                .collect();
            ok(json!({"messages": messages}))
        })
        .with_priority(1)
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.retry.attempt_timeout = Duration::from_millis(200);
    let secrets = Secrets { slack_token: TOKEN.into(), webhook_secrets: vec![sample_secret()], pagerduty_token: None };
    let war_room = WarRoom::new(config, secrets)
        .expect("war room")
        .with_routes(shared::Routes::example().expect("example routes"));
    // WHEN the escalation opens the room
    let room = match handle(&war_room, sample("escalation.json"), None).await.expect("room") {
        Reply::Room(room) => room,
        Reply::Http(response) => panic!("{response:?}"),
    };
    // THEN the summary was posted once, found again by its metadata, and pinned
    assert_eq!(calls(&server, "chat.postMessage").await.len(), 1, "posted twice");
    assert_eq!(calls(&server, "pins.add").await[0]["timestamp"], "1795147601.000100");
    assert!(room.summary_posted);
}

#[tokio::test]
async fn a_post_that_timed_out_and_did_not_land_is_posted_again() {
    // GIVEN the first chat.postMessage times out and nothing reached the channel
    let server = workspace().await;
    slack_method("chat.postMessage")
        .respond_with(ok(json!({"ts": "1795147601.000100"})).set_delay(Duration::from_millis(600)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.retry.attempt_timeout = Duration::from_millis(200);
    let secrets = Secrets { slack_token: TOKEN.into(), webhook_secrets: vec![sample_secret()], pagerduty_token: None };
    // WHEN the escalation opens the room
    handle(
        &WarRoom::new(config, secrets)
            .expect("war room")
            .with_routes(shared::Routes::example().expect("example routes")),
        sample("escalation.json"),
        None,
    )
    .await
    .expect("room");
    // THEN it looked, found nothing, and posted again: one summary in the channel
    assert_eq!(calls(&server, "chat.postMessage").await.len(), 2);
    assert_eq!(calls(&server, "pins.add").await.len(), 1);
}

mod group_post {
    use super::*;

    /// A later member's escalation of the group whose room is ESCALATION_ROOM (opened by key
    /// `web-nginx__web-nginx-down__0d5c8a41...`), with a hostile alarm name.
    fn group_post() -> Value {
        let mut doc = sample("escalation.json");
        doc["post"] = json!(GROUP_POST);
        doc["roomOf"] = doc["incidentKey"].clone();
        doc["incidentKey"] = json!("web-nginx__web-nginx-down-b__77aa00bb11cc22dd33ee");
        doc["alarm"]["name"] = json!("web-nginx-down-b <!channel>");
        doc
    }

    async fn post(server: &MockServer) -> Result<Reply, WarRoomError> {
        handle(&war_room(server), group_post(), None).await
    }

    async fn with_room(server: &MockServer) {
        slack_method("conversations.list")
            .respond_with(ok(json!({"channels": [channel("general", false), channel(ESCALATION_ROOM, false)]})))
            .with_priority(1)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn a_member_escalation_is_posted_once_into_the_room_of_the_escalation_that_paged() {
        let server = workspace().await;
        with_room(&server).await;
        let Ok(Reply::Room(room)) = post(&server).await else { panic!("a room") };
        assert_eq!((room.channel_id.as_str(), room.created, room.posted), (ROOM_ID, false, true));
        let posts = calls(&server, "chat.postMessage").await;
        assert_eq!(posts.len(), 1);
        let text = &posts[0]["text"];
        assert!(text.contains("no new page") && text.contains("web-nginx-down-b &lt;!channel&gt;"), "{text}");
        assert!(posts[0]["metadata"].contains("group_escalation"), "{:?}", posts[0]);
        assert!(calls(&server, "conversations.create").await.is_empty(), "the room is never created here");
    }

    #[tokio::test]
    async fn a_retried_post_finds_its_message_and_posts_nothing() {
        let server = workspace().await;
        with_room(&server).await;
        slack_method("conversations.history")
            .respond_with(ok(json!({"messages": [{"ts": "1.1", "text": "Also escalated", "metadata": {
                "event_type": "group_escalation",
                "event_payload": {"incident": "web-nginx__web-nginx-down-b__77aa00bb11cc22dd33ee"}}}]})))
            .with_priority(1)
            .mount(&server)
            .await;
        let Ok(Reply::Room(room)) = post(&server).await else { panic!("a room") };
        assert!(!room.posted);
        assert!(calls(&server, "chat.postMessage").await.is_empty());
    }

    #[tokio::test]
    async fn before_the_room_is_open_the_post_waits_for_a_retry() {
        let server = workspace().await;
        let Err(err) = post(&server).await else { panic!("no room yet: the post must wait") };
        assert!(matches!(&err, WarRoomError::TransientError(m) if m.contains("not open yet")), "{err:?}");
        assert!(calls(&server, "chat.postMessage").await.is_empty());
    }
}
