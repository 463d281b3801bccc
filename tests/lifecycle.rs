//! Never lose a page or a recovery: the router's alarm lifecycle against moto, under the failures
//! AWS delivers (a throttled or unreachable topic, redeliveries, late and out-of-order events,
//! deleted alarms), judged by what reached the topic (moto's own record of it).
//!
//! Each test drives the real router (`alarm_router::dispatch`, as Lambda invokes it) with real SDK
//! clients against its own moto server. "SNS is down" is a client whose SNS endpoint refuses
//! connections: what a publish sees in an outage, with nothing stubbed.

use aws_sdk_cloudwatch::types::StateValue;
use local_invoke::{Emulator, emulator_config};
use serde_json::Value;
use workspace_tests::{MotoServer, event};

/// Rules for these tests: a notify route, a grouped incident route, a remediate route, and an
/// inhibition scoped by availability zone.
const RULES: &str = r#"
rules:
  - name: api
    match: { alarmName: { prefix: "api-" } }
    action: notify
    severity: high
  - name: shop
    match: { alarmName: { prefix: "shop-" } }
    action: incident
    severity: high
    group: { by: route, windowSeconds: 600 }
  - name: web
    match: { alarmName: { prefix: "web-" } }
    action: remediate
    remediation:
      targets: { instanceIds: [i-0a1b2c3d4e5f60718] }
      service: nginx
    severity: high
default: { action: notify, severity: medium }
inhibit:
  - name: zone-down
    whileAlarm: { alarmName: { prefix: "zone-" } }
    routes: [api]
    equal: [AvailabilityZone]
"#;

struct Setup {
    moto: MotoServer,
    config: aws_config::SdkConfig,
    emulator: Emulator,
    router: alarm_router::RouterConfig,
    clients: alarm_router::Clients,
}

async fn setup() -> Setup {
    let moto = MotoServer::start();
    let config = emulator_config(&moto.endpoint).await;
    let emulator = Emulator::prepare(&config).await.expect("emulator resources");
    let router = alarm_router::RouterConfig {
        state_machine_arn: emulator.state_machine_arn.clone(),
        topic_arn: emulator.topic_arn.clone(),
        response_plan_arn: None,
        routes: shared::Routes::from_yaml(RULES).expect("test rules"),
        state_table: Some(emulator.state_table.clone()),
    };
    let clients = alarm_router::Clients::new(&config);
    Setup { moto, config, emulator, router, clients }
}

impl Setup {
    /// The router's clients while SNS refuses every connection (an outage, as a publish sees it).
    fn with_sns_down(&self) -> alarm_router::Clients {
        let sns = aws_sdk_sns::config::Builder::from(&self.config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
            .build();
        alarm_router::Clients { sns: aws_sdk_sns::Client::from_conf(sns), ..self.clients.clone() }
    }

    /// One delivery of `event` to the router, as Lambda invokes it.
    async fn deliver(&self, event: Value) -> Result<Value, alarm_router::RouterError> {
        alarm_router::dispatch(&self.clients, &self.router, event).await
    }

    /// The subjects moto recorded for the alert topic, in order.
    async fn subjects(&self) -> Vec<String> {
        let data: Value = workspace_tests::http_client()
            .get(format!("{}/moto-api/data.json", self.moto.endpoint))
            .send()
            .await
            .expect("moto data")
            .json()
            .await
            .expect("moto data is JSON");
        data["sns"]["Topic"]
            .as_array()
            .expect("moto lists topics")
            .iter()
            .filter(|t| t["arn"] == self.emulator.topic_arn.as_str())
            .flat_map(|t| t["sent_notifications"].as_array().cloned().unwrap_or_default())
            .map(|n| n[2].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Puts `name` into moto's CloudWatch in `state`.
    async fn alarm_in(&self, name: &str, state: StateValue) {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&self.config);
        cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("put alarm");
        cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(state)
            .state_reason("test")
            .send()
            .await
            .expect("state");
    }

    async fn reconcile_at(&self, at: &str) -> Value {
        self.deliver(serde_json::json!({"reconcile": {"at": at}})).await.expect("reconciled")
    }
}

/// A state change of alarm `name` to `state` at `at`, with an availability zone.
fn change(name: &str, state: &str, at: &str, zone: &str) -> Value {
    let mut alarm = event("alarm-router/metric-alarm.json");
    alarm["detail"]["alarmName"] = Value::from(name);
    alarm["resources"][0] = Value::from(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"));
    alarm["detail"]["state"]["value"] = Value::from(state);
    alarm["detail"]["state"]["timestamp"] = Value::from(at);
    alarm["detail"]["previousState"]["value"] = Value::from(if state == "OK" { "ALARM" } else { "OK" });
    alarm["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
        serde_json::json!({ "AvailabilityZone": zone });
    alarm
}

fn count(subjects: &[String], prefix: &str) -> usize {
    subjects.iter().filter(|s| s.starts_with(prefix)).count()
}

#[tokio::test]
async fn a_grouped_first_page_lost_to_an_outage_is_sent_by_the_retry() {
    // GIVEN the first ALARM of a grouped incident route, delivered while SNS is down
    let s = setup().await;
    let first = change("shop-checkout-5xx-a", "ALARM", "2026-11-20T04:00:00.000+0000", "eu-west-1a");
    let failed = alarm_router::dispatch(&s.with_sns_down(), &s.router, first.clone()).await;
    assert!(failed.is_err(), "the outage must fail the delivery, so that Lambda retries it: {failed:?}");
    assert!(s.subjects().await.is_empty());
    // WHEN Lambda retries it once SNS is back, and a second member alarms
    s.deliver(first).await.expect("the retry");
    s.deliver(change("shop-checkout-5xx-b", "ALARM", "2026-11-20T04:01:00.000+0000", "eu-west-1a")).await.expect("b");
    // THEN the group paged exactly once, and the second member joined quietly
    let subjects = s.subjects().await;
    assert_eq!(subjects, ["[INCIDENT] shop-checkout-5xx-a"], "{subjects:?}");
}

#[tokio::test]
async fn a_late_alarm_delivered_after_its_ok_opens_nothing() {
    // GIVEN an alarm that fired at 04:00 and recovered at 04:05, the OK delivered first
    let s = setup().await;
    s.deliver(change("api-latency", "OK", "2026-11-20T04:05:00.000+0000", "eu-west-1a")).await.expect("ok");
    // WHEN the ALARM arrives late
    let late = s.deliver(change("api-latency", "ALARM", "2026-11-20T04:00:00.000+0000", "eu-west-1a")).await;
    // THEN it is history: no page follows the last recovery
    assert_eq!(late.expect("late")["action"], "ignore");
    let subjects = s.subjects().await;
    assert_eq!(count(&subjects, "[ALARM]"), 0, "a page nothing would close: {subjects:?}");
}

#[tokio::test]
async fn a_group_reopened_after_its_window_keeps_its_firing_members() {
    // GIVEN two members of a group (window ten minutes), and a third ALARM an hour later
    let s = setup().await;
    let at = |minute: u32| format!("2026-11-20T{:02}:{:02}:00.000+0000", 4 + minute / 60, minute % 60);
    s.deliver(change("shop-a", "ALARM", &at(0), "z")).await.expect("a");
    s.deliver(change("shop-b", "ALARM", &at(1), "z")).await.expect("b");
    s.deliver(change("shop-c", "ALARM", &at(60), "z")).await.expect("c");
    // WHEN the newest member recovers first
    let c_ok = s.deliver(change("shop-c", "OK", &at(70), "z")).await.expect("c ok");
    // THEN the group is not resolved while the first two still fire
    assert_eq!(c_ok["outcome"]["did"], "stillFiringInGroup", "{c_ok}");
    s.deliver(change("shop-a", "OK", &at(71), "z")).await.expect("a ok");
    s.deliver(change("shop-b", "OK", &at(72), "z")).await.expect("b ok");
    // AND every page is followed by one recovery, sent when the last member recovered
    let subjects = s.subjects().await;
    assert_eq!(count(&subjects, "[INCIDENT]"), 2, "the window passed: a new page: {subjects:?}");
    assert_eq!(subjects.last().map(String::as_str), Some("[RECOVERED] shop-b"), "{subjects:?}");
    assert_eq!(count(&subjects, "[RECOVERED]"), 1, "{subjects:?}");
}

#[tokio::test]
async fn a_silence_over_a_re_alarm_does_not_swallow_the_recovery_of_the_first_page() {
    // GIVEN an alarm that paged, then went INSUFFICIENT_DATA, and an operator's silence
    let s = setup().await;
    s.deliver(change("api-errors", "ALARM", "2026-11-20T04:00:00.000+0000", "z")).await.expect("alarm");
    s.deliver(change("api-errors", "INSUFFICIENT_DATA", "2026-11-20T04:10:00.000+0000", "z")).await.expect("gap");
    let silences = alarm_router::silences::Silences { client: &s.clients.dynamodb, table: &s.emulator.state_table };
    silences
        .add(&shared::silence::Silence {
            id: "patching".into(),
            conditions: serde_yaml_ng::from_str("alarmName: { prefix: api- }").expect("match"),
            route: None,
            author: "alice".into(),
            reason: "patching the API hosts".into(),
            starts_at: "2026-11-20T04:05:00Z".parse().expect("time"),
            ends_at: "2026-11-20T06:00:00Z".parse().expect("time"),
            allow_automation: false,
        })
        .await
        .expect("silence");
    // WHEN it alarms again inside the silence, then recovers
    let quiet = s.deliver(change("api-errors", "ALARM", "2026-11-20T04:15:00.000+0000", "z")).await.expect("re-alarm");
    assert_eq!(quiet["action"], "silence");
    s.deliver(change("api-errors", "OK", "2026-11-20T04:30:00.000+0000", "z")).await.expect("ok");
    // THEN the first page gets its recovery
    let subjects = s.subjects().await;
    assert_eq!(subjects, ["[ALARM] api-errors", "[RECOVERED] api-errors"], "{subjects:?}");
}

#[tokio::test]
async fn an_alarm_never_takes_the_execution_of_another_with_the_same_long_prefix() {
    // GIVEN two alarms whose names share their first 60 characters, on a remediate route
    let s = setup().await;
    let shared_prefix = "web-nginx-down-on-the-checkout-fleet-in-eu-west-1-behind-alb-";
    let (a, b) = (format!("{shared_prefix}host-a"), format!("{shared_prefix}host-b"));
    // B's execution started and was stopped; then A's started and still runs
    let b_started = s.deliver(change(&b, "ALARM", "2026-11-20T04:00:00.000+0000", "z")).await.expect("b");
    let b_execution = b_started["outcome"]["executionArn"].as_str().expect("b started").to_owned();
    aws_sdk_sfn::Client::new(&s.config).stop_execution().execution_arn(&b_execution).send().await.expect("stop b");
    let a_started = s.deliver(change(&a, "ALARM", "2026-11-20T04:01:00.000+0000", "z")).await.expect("a");
    assert_ne!(a_started["outcome"]["executionArn"], b_started["outcome"]["executionArn"]);
    // WHEN B returns to OK
    let b_ok = s.deliver(change(&b, "OK", "2026-11-20T04:05:00.000+0000", "z")).await.expect("b ok");
    // THEN B's recovery is B's to tell (its execution ended), not left to A's running one
    assert_eq!(b_ok["outcome"]["did"], "resolved", "{b_ok}");
    assert_eq!(count(&s.subjects().await, "[RECOVERED]"), 1);
}

#[tokio::test]
async fn a_deleted_inhibitor_stops_inhibiting_at_once() {
    // GIVEN a zone alarm in ALARM that inhibits the api route in its zone only
    let s = setup().await;
    s.deliver(change("zone-a-down", "ALARM", "2026-11-20T04:00:00.000+0000", "eu-west-1a")).await.expect("zone");
    let inhibited = s.deliver(change("api-a", "ALARM", "2026-11-20T04:01:00.000+0000", "eu-west-1a")).await;
    assert_eq!(inhibited.expect("api-a")["action"], "silence");
    let other_zone = s.deliver(change("api-b", "ALARM", "2026-11-20T04:01:00.000+0000", "eu-west-1b")).await;
    assert_eq!(other_zone.expect("api-b")["action"], "notify", "equal: [AvailabilityZone] scopes it");
    // WHEN the zone alarm is deleted (CloudWatch sends a configuration change, never an OK)
    let mut deleted = change("zone-a-down", "ALARM", "2026-11-20T04:02:00.000+0000", "eu-west-1a");
    deleted["detail-type"] = Value::from("CloudWatch Alarm Configuration Change");
    deleted["time"] = Value::from("2026-11-20T04:02:00Z");
    deleted["detail"]["operation"] = Value::from("delete");
    s.deliver(deleted).await.expect("the deletion is handled");
    // THEN the next api alarm of that zone pages
    let after = s.deliver(change("api-c", "ALARM", "2026-11-20T04:03:00.000+0000", "eu-west-1a")).await;
    assert_eq!(after.expect("api-c")["action"], "notify");
    assert_eq!(count(&s.subjects().await, "[ALARM] api-c"), 1);
}

#[tokio::test]
async fn the_reconciler_clears_an_inhibitor_deleted_without_an_event_and_what_it_muted_pages() {
    // GIVEN a zone alarm in ALARM that muted an api alarm of its zone, then deleted with no event seen
    let s = setup().await;
    s.deliver(change("zone-a-down", "ALARM", "2026-11-20T04:00:00.000+0000", "eu-west-1a")).await.expect("zone");
    let muted = s.deliver(change("api-a", "ALARM", "2026-11-20T04:01:00.000+0000", "eu-west-1a")).await;
    assert_eq!(muted.expect("api-a")["action"], "silence");
    s.alarm_in("api-a", StateValue::Alarm).await;
    // WHEN the reconciler runs (moto's CloudWatch has no zone alarm: it was deleted)
    let reconciled = s.reconcile_at("2026-11-20T04:05:00Z").await;
    // THEN it stops inhibiting, and the api alarm it muted, still firing, pages now
    let cleared = reconciled["inhibitorsCleared"].as_array().cloned().unwrap_or_default();
    assert_eq!(cleared.len(), 1, "{reconciled}");
    assert_eq!(count(&s.subjects().await, "[ALARM] api-a"), 1, "{reconciled}");
    let again = s.reconcile_at("2026-11-20T04:10:00Z").await;
    assert_eq!(count(&s.subjects().await, "[ALARM] api-a"), 1, "paged once: {again}");
    let after = s.deliver(change("api-c", "ALARM", "2026-11-20T04:06:00.000+0000", "eu-west-1a")).await;
    assert_eq!(after.expect("api-c")["action"], "notify");
}

#[tokio::test]
async fn a_flapping_alarm_that_ends_in_ok_gets_its_recovery_once_steady() {
    // GIVEN an api alarm that flips every five minutes and pages once as flapping, ending in OK
    let s = setup().await;
    for n in 0..8u32 {
        let state = if n % 2 == 0 { "ALARM" } else { "OK" };
        let at = format!("2026-11-20T04:{:02}:00.000+0000", n * 5);
        s.deliver(change("api-flappy", state, &at, "z")).await.expect(&at);
    }
    s.alarm_in("api-flappy", StateValue::Ok).await;
    let before = s.subjects().await;
    assert_eq!(count(&before, "[FLAPPING]"), 1, "{before:?}");
    let recoveries_before = count(&before, "[RECOVERED]");
    // WHEN the reconciler runs once it has been quiet for longer than the route's quiet time
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    s.reconcile_at(&later).await;
    s.reconcile_at(&later).await;
    // THEN the recovery is told, once
    let after = s.subjects().await;
    assert_eq!(count(&after, "[RECOVERED]"), recoveries_before + 1, "{after:?}");
    assert_eq!(after.last().map(String::as_str), Some("[RECOVERED] api-flappy"));
}

#[tokio::test]
async fn an_escalation_after_the_alarm_recovered_is_followed_by_a_recovery() {
    // GIVEN a remediation running for an alarm that returned to OK meanwhile
    let s = setup().await;
    let started = s.deliver(change("web-frontend-down", "ALARM", "2026-11-20T04:00:00.000+0000", "z")).await;
    let execution = started.expect("alarm")["outcome"]["executionArn"].as_str().expect("started").to_owned();
    let ok = s.deliver(change("web-frontend-down", "OK", "2026-11-20T04:03:00.000+0000", "z")).await.expect("ok");
    assert_eq!(ok["outcome"]["did"], "leftToExecution", "{ok}");
    // WHEN the execution escalates by a path that never re-reads the alarm, and then ends
    let mut request = event("slack-channel-creator/escalation.json");
    request["page"] = Value::from("escalation");
    request["alarm"] = serde_json::to_value(
        shared::Alarm::from_event(&change("web-frontend-down", "ALARM", "2026-11-20T04:00:00.000+0000", "z"))
            .expect("alarm"),
    )
    .expect("json");
    request["route"]["name"] = Value::from("web");
    s.deliver(request).await.expect("the escalation page is written");
    aws_sdk_sfn::Client::new(&s.config).stop_execution().execution_arn(&execution).send().await.expect("stop");
    s.alarm_in("web-frontend-down", StateValue::Ok).await;
    // THEN the reconciler tells the recovery the escalation owes
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let reconciled = s.reconcile_at(&later).await;
    assert_eq!(reconciled["recoveries"].as_array().map(Vec::len), Some(1), "{reconciled}");
    assert_eq!(count(&s.subjects().await, "[RECOVERED] web-frontend-down"), 1);
}

#[tokio::test]
async fn the_reconciler_forgets_silences_a_week_after_they_ended_and_keeps_the_rest() {
    // GIVEN three silences: one ended eight days ago, one ended yesterday, one still on
    let s = setup().await;
    let silences = alarm_router::silences::Silences { client: &s.clients.dynamodb, table: &s.emulator.state_table };
    let silence = |id: &str, starts: &str, ends: &str| shared::silence::Silence {
        id: id.into(),
        conditions: serde_yaml_ng::from_str("alarmName: { prefix: api- }").expect("match"),
        route: None,
        author: "alice".into(),
        reason: "patching".into(),
        starts_at: starts.parse().expect("time"),
        ends_at: ends.parse().expect("time"),
        allow_automation: false,
    };
    for (id, starts, ends) in [
        ("long-ago", "2026-11-11T00:00:00Z", "2026-11-12T00:00:00Z"),
        ("yesterday", "2026-11-18T00:00:00Z", "2026-11-19T00:00:00Z"),
        ("now", "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"),
    ] {
        silences.add(&silence(id, starts, ends)).await.expect("silence");
    }
    // WHEN the reconciler runs
    let reconciled = s.reconcile_at("2026-11-20T04:00:00Z").await;
    // THEN only the one that ended more than a week ago is forgotten
    assert_eq!(reconciled["silencesForgotten"], serde_json::json!(["long-ago"]), "{reconciled}");
    let left: Vec<String> = silences.all().await.expect("silences").into_iter().map(|s| s.id).collect();
    assert_eq!(left, ["yesterday", "now"]);
    // AND a second run has nothing more to forget
    let again = s.reconcile_at("2026-11-20T04:05:00Z").await;
    assert!(again.get("silencesForgotten").is_none(), "{again}");
}

#[tokio::test]
async fn an_alarm_delivered_twice_pages_once_and_its_recovery_is_told_once() {
    // GIVEN an alarm on a notifying route whose ALARM paged
    let s = setup().await;
    let alarm = change("api-latency", "ALARM", "2026-11-20T04:00:00.000+0000", "z");
    s.deliver(alarm.clone()).await.expect("alarm");
    // WHEN EventBridge delivers the same ALARM again
    let again = s.deliver(alarm).await.expect("again");
    // THEN it is not paged a second time
    assert_eq!(again["action"], "ignore", "{again}");
    s.deliver(change("api-latency", "OK", "2026-11-20T04:20:00.000+0000", "z")).await.expect("ok");
    let subjects = s.subjects().await;
    assert_eq!(subjects, ["[ALARM] api-latency", "[RECOVERED] api-latency"], "{subjects:?}");
}

#[tokio::test]
async fn a_group_recovery_lost_to_an_outage_is_sent_by_the_retry() {
    // GIVEN a grouped incident route whose one member paged
    let s = setup().await;
    s.deliver(change("shop-checkout-5xx-a", "ALARM", "2026-11-20T04:00:00.000+0000", "eu-west-1a")).await.expect("a");
    // WHEN its OK, the group's last, is delivered while SNS is down, then retried once it is back
    let ok = change("shop-checkout-5xx-a", "OK", "2026-11-20T04:10:00.000+0000", "eu-west-1a");
    let failed = alarm_router::dispatch(&s.with_sns_down(), &s.router, ok.clone()).await;
    assert!(failed.is_err(), "the outage must fail the delivery, so that Lambda retries it: {failed:?}");
    s.deliver(ok.clone()).await.expect("the retry");
    // THEN the group's recovery goes out, once, even when the OK is delivered yet again
    s.deliver(ok).await.expect("a duplicate");
    let subjects = s.subjects().await;
    assert_eq!(subjects, ["[INCIDENT] shop-checkout-5xx-a", "[RECOVERED] shop-checkout-5xx-a"], "{subjects:?}");
}
