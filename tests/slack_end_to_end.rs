//! Offline end-to-end for the war room: the real handler and HTTP client against a real Slack API
//! emulator (`emulate`), driven by the signed sample webhooks and the sample escalation in
//! `events/slack-channel-creator/`.
//!
//! Each test starts its own emulator on a free loopback port (installed by `make setup`) and reads
//! back through the Web API what the room holds: channels, messages with their metadata, pins,
//! bookmarks, members.

use local_invoke::{LOCAL_SLACK_TOKEN, local_secrets, recorded_delivery_time};
use serde_json::{Value, json};
use slack_channel_creator::{Reply, Room, WarRoom, WarRoomConfig, handle, handle_at};
use workspace_tests::{MotoServer, SlackEmulator, event};

fn war_room(slack: &SlackEmulator) -> WarRoom {
    let config = WarRoomConfig { slack_api_url: slack.api_url.clone(), ..WarRoomConfig::default() };
    WarRoom::new(config, local_secrets().expect("the local secrets"))
        .expect("war room")
        .with_routes(shared::Routes::example().expect("example routes"))
}

/// Delivers a sample webhook a second after its event occurred: (HTTP status, JSON body).
async fn deliver(war_room: &WarRoom, sample: &str) -> (i64, Value) {
    let request = event(&format!("slack-channel-creator/{sample}"));
    let now = recorded_delivery_time(&request).expect("the sample's occurred_at") + chrono::TimeDelta::seconds(1);
    match handle_at(war_room, request, None, now).await.expect(sample) {
        Reply::Http(response) => {
            (response.status_code, serde_json::from_str(response.body.as_deref().unwrap_or("null")).expect("JSON"))
        }
        Reply::Room(room) => panic!("{sample}: a webhook is answered over HTTP, not with {room:?}"),
    }
}

async fn escalate(war_room: &WarRoom) -> Room {
    match handle(war_room, event("slack-channel-creator/escalation.json"), None).await.expect("escalation") {
        Reply::Room(room) => room,
        Reply::Http(response) => panic!("an escalation is answered with the room, not {response:?}"),
    }
}

/// A Web API call to the emulator, as the bot.
async fn slack_api(slack: &SlackEmulator, method: &str, args: Value) -> Value {
    slack.call(LOCAL_SLACK_TOKEN, method, args).await
}

/// Every war room the emulator holds, archived ones included.
async fn rooms(slack: &SlackEmulator) -> Vec<Value> {
    let listed = slack_api(
        slack,
        "conversations.list",
        json!({"types": "public_channel,private_channel", "exclude_archived": false, "limit": 1000}),
    )
    .await;
    listed["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("inc-")))
        .cloned()
        .collect()
}

async fn messages(slack: &SlackEmulator, channel: &str) -> Vec<Value> {
    let history = slack_api(slack, "conversations.history", json!({"channel": channel, "limit": 1000})).await;
    history["messages"].as_array().cloned().unwrap_or_default()
}

fn with_event_type<'a>(messages: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["metadata"]["event_type"] == event_type).collect()
}

#[tokio::test]
async fn the_same_webhook_delivered_three_times_yields_one_room_with_one_summary() {
    // GIVEN an empty workspace
    let slack = SlackEmulator::start();
    let war_room = war_room(&slack);
    // WHEN PagerDuty delivers the same incident.triggered three times
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(deliver(&war_room, "incident-triggered.json").await);
    }
    // THEN every delivery is answered 200, the first created the room and the others reused it
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let created: Vec<&Value> = answers.iter().map(|(_, body)| &body["room"]["created"]).collect();
    assert_eq!(created, [true, false, false]);
    // AND the workspace holds exactly one room, with one summary, pinned, and its links bookmarked
    let rooms = rooms(&slack).await;
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(rooms[0]["name"], "inc-20261120-q2jq5rd8xk4l7m-storefront-checkout-5xx-rate-above-5-for-10-minutes");
    let channel = rooms[0]["id"].as_str().expect("channel id");
    let summaries = with_event_type(&messages(&slack, channel).await, "war_room_summary").len();
    assert_eq!(summaries, 1);
    let pins = slack_api(&slack, "pins.list", json!({"channel": channel})).await;
    assert_eq!(pins["items"].as_array().map(Vec::len), Some(1));
    let bookmarks = slack_api(&slack, "bookmarks.list", json!({"channel_id": channel})).await;
    let titles: Vec<&str> =
        bookmarks["bookmarks"].as_array().into_iter().flatten().filter_map(|b| b["title"].as_str()).collect();
    assert_eq!(titles, ["PagerDuty incident", "Service: Storefront", "Conference bridge"]);
    assert_eq!(rooms[0]["topic"]["value"], "P2 · high urgency · triggered · on it: Alice Oncall");
}

#[tokio::test]
async fn every_incident_event_is_posted_once_and_a_reopened_incident_reuses_its_archived_room() {
    let slack = SlackEmulator::start();
    let war_room = war_room(&slack);
    // GIVEN the room of a triggered incident
    let (_, opened) = deliver(&war_room, "incident-triggered.json").await;
    let channel = opened["room"]["channelId"].as_str().expect("channel id").to_owned();
    // WHEN the incident goes through its life, each update delivered twice
    for sample in [
        "incident-acknowledged.json",
        "incident-priority-updated.json",
        "incident-annotated.json",
        "incident-escalated.json",
        "incident-reassigned.json",
    ] {
        let (status, first) = deliver(&war_room, sample).await;
        assert_eq!(status, 200, "{sample}: {first}");
        assert_ne!(first["did"], "duplicate", "{sample}");
        let (_, again) = deliver(&war_room, sample).await;
        assert_eq!(again["did"], "duplicate", "{sample}: {again}");
    }
    // THEN each update was posted once, and the topic follows the incident
    let posted = messages(&slack, &channel).await;
    assert_eq!(with_event_type(&posted, "pagerduty_webhook").len(), 5);
    let info = slack_api(&slack, "conversations.info", json!({"channel": channel})).await;
    assert_eq!(info["channel"]["topic"]["value"], "P1 · high urgency · triggered · on it: Alice Oncall, Bob Backup");

    // WHEN it is resolved: the room is archived
    let (_, resolved) = deliver(&war_room, "incident-resolved.json").await;
    assert_eq!(resolved["did"], "resolved", "{resolved}");
    let info = slack_api(&slack, "conversations.info", json!({"channel": channel})).await;
    assert_eq!(info["channel"]["is_archived"], true);
    // AND reopened: the same room comes back, no other is made
    let (status, reopened) = deliver(&war_room, "incident-reopened.json").await;
    assert_eq!((status, reopened["did"].as_str()), (200, Some("reopened")), "{reopened}");
    assert_eq!(reopened["room"]["channelId"], channel.as_str());
    let info = slack_api(&slack, "conversations.info", json!({"channel": channel})).await;
    assert_eq!(info["channel"]["is_archived"], false);
    assert_eq!(rooms(&slack).await.len(), 1);
    let texts: Vec<String> = messages(&slack, &channel)
        .await
        .iter()
        .filter(|m| m["metadata"]["event_type"] == "pagerduty_webhook")
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect();
    assert!(texts.iter().any(|t| t.starts_with(":leftwards_arrow_with_hook: Reopened by Bob Backup")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with(":white_check_mark: Resolved by Alice Oncall")), "{texts:?}");
    assert_eq!(with_event_type(&messages(&slack, &channel).await, "war_room_summary").len(), 1);
}

#[tokio::test]
async fn an_escalation_yields_a_room_whose_summary_names_the_alarm_and_the_evidence() {
    // GIVEN a workspace where alice and bob have accounts, carol none
    let slack = SlackEmulator::start();
    let war_room = war_room(&slack);
    // WHEN the state machine escalates the sample first-response document, twice (a Step Functions retry)
    let room = escalate(&war_room).await;
    let again = escalate(&war_room).await;
    // THEN one room holds one summary naming the alarm, with the failing instance's evidence
    assert_eq!(room.name, "inc-20261120-0d5c8a41-web-nginx-down");
    assert!(room.created && room.summary_posted);
    assert_eq!(
        (again.channel_id.as_str(), again.created, again.summary_posted),
        (room.channel_id.as_str(), false, false)
    );
    assert_eq!(rooms(&slack).await.len(), 1);
    let posted = messages(&slack, &room.channel_id).await;
    let summaries = with_event_type(&posted, "war_room_summary");
    assert_eq!(summaries.len(), 1);
    let summary = summaries[0];
    let text = summary["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("War room: web-nginx-down"), "{text}");
    assert!(text.contains("i-0f1e2d3c4b5a69788: Failed, exit code 3, not active"), "{text}");
    let blocks = summary["blocks"].to_string();
    assert!(blocks.contains("bind() to 0.0.0.0:80 failed"), "{blocks}");
    assert!(blocks.contains("https://runbooks.example.com/web/nginx-down"), "{blocks}");
    // AND the responders with an account are members; carol is reported
    let members = slack_api(&slack, "conversations.members", json!({"channel": room.channel_id})).await;
    let alice = slack_api(&slack, "users.lookupByEmail", json!({"email": "alice@example.com"})).await;
    let bob = slack_api(&slack, "users.lookupByEmail", json!({"email": "bob@example.com"})).await;
    let members = members["members"].to_string();
    for user in [&alice, &bob] {
        assert!(members.contains(user["user"]["id"].as_str().expect("id")), "{members}");
    }
    assert_eq!(room.not_invited, ["carol@example.com: users_not_found"]);
}

#[tokio::test]
async fn a_webhook_that_does_not_verify_touches_nothing() {
    let slack = SlackEmulator::start();
    let war_room = war_room(&slack);
    for sample in ["invalid-tampered-body.json", "invalid-missing-signature.json"] {
        let (status, body) = deliver(&war_room, sample).await;
        assert_eq!(status, 401, "{sample}: {body}");
    }
    assert!(rooms(&slack).await.is_empty());
}

#[tokio::test]
async fn the_secrets_are_read_back_from_ssm_securestrings() {
    // GIVEN the token and two webhook secrets stored the way the README says, in the AWS emulator
    let moto = MotoServer::start();
    let config = local_invoke::emulator_config(&moto.endpoint).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    for (name, value) in [
        ("/first-response/slack-bot-token", "xoxb-from-ssm"),
        ("/first-response/pagerduty-webhook-secrets", "new-secret,old-secret"),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("put parameter");
    }
    // WHEN the function reads them as it does at cold start
    let names = slack_channel_creator::secrets::SecretNames {
        slack_token: "/first-response/slack-bot-token".into(),
        webhook_secrets: Some("/first-response/pagerduty-webhook-secrets".into()),
        pagerduty_token: None,
    };
    let secrets = slack_channel_creator::secrets::load(&ssm, &names).await.expect("secrets");
    // THEN they come back decrypted, and the webhook secrets split for rotation
    assert_eq!(secrets.slack_token, "xoxb-from-ssm");
    assert_eq!(secrets.webhook_secrets, ["new-secret", "old-secret"]);
}
