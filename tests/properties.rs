//! Never lose a page or a recovery, as a property: for random histories of a small set of alarms,
//! delivered in random order, some of them twice, while SNS and DynamoDB fail for a while, the
//! real router (with real SDK clients, against moto) ends where the alarms ended:
//!
//! - every alarm that ends in ALARM on a route that pages has had its page reach the topic (for a
//!   grouped route: the group's last message is a page, not a recovery);
//! - every page is followed by a recovery when the alarm (for a group: every member) ends in OK.
//!
//! A delivery that fails is delivered again later, as Lambda and EventBridge do, until the fault
//! has passed; the SDK's own retries are off, so that every fault reaches the router. Then the
//! reconciler runs once, as its schedule would, with CloudWatch holding each alarm's last state.
//!
//! `PROPTEST_CASES` sets how many histories are tried (default 24). A failure prints the history
//! proptest shrank it to: the deliveries in order, and the faults.

use std::collections::{BTreeMap, VecDeque};

use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Duration, Utc};
use local_invoke::{Emulator, emulator_config};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use workspace_tests::{MotoServer, event, http_client};

/// Two ungrouped alarms on a route that notifies, two grouped ones on a route that opens incidents.
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
default: { action: notify, severity: medium }
"#;

const ALARMS: [&str; 4] = ["api-0", "api-1", "shop-0", "shop-1"];

/// One alarm's history: how many transitions (ALARM, OK, ALARM, ...), the minutes between them,
/// and how many times each is delivered.
#[derive(Debug, Clone)]
struct History {
    gaps: Vec<u32>,
    copies: Vec<u8>,
}

/// A whole case: each alarm's history, how late each delivery arrives (random keys), and how
/// many calls each fault fails.
#[derive(Debug, Clone)]
struct Case {
    histories: Vec<History>,
    order: Vec<u32>,
    faults: Vec<Fault>,
}

/// From the `at`-th delivery on (counted modulo the deliveries), the next `times` calls of `call` fail.
#[derive(Debug, Clone)]
struct Fault {
    at: usize,
    call: &'static str,
    error: &'static str,
    times: u32,
}

fn fault() -> impl Strategy<Value = Fault> {
    let call = prop_oneof![
        Just(("sns:Publish", "Throttling")),
        Just(("dynamodb:TransactWriteItems", "InternalError")),
        Just(("dynamodb:UpdateItem", "Throttling")),
    ];
    (0usize..32, call, 1u32..=3).prop_map(|(at, (call, error), times)| Fault { at, call, error, times })
}

fn history() -> impl Strategy<Value = History> {
    (1usize..=4).prop_flat_map(|transitions| {
        (prop::collection::vec(1u32..=20, transitions), prop::collection::vec(1u8..=2, transitions))
            .prop_map(|(gaps, copies)| History { gaps, copies })
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(history(), ALARMS.len()),
        prop::collection::vec(any::<u32>(), 32),
        prop::collection::vec(fault(), 0..=3),
    )
        .prop_map(|(histories, order, faults)| Case { histories, order, faults })
}

/// A transition of one alarm, as CloudWatch would send it.
#[derive(Debug, Clone)]
struct Transition {
    alarm: &'static str,
    state: &'static str,
    at: DateTime<Utc>,
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T04:00:00Z").expect("time").with_timezone(&Utc)
}

impl Case {
    /// Every delivery, in the order they arrive: each transition as often as it is delivered,
    /// each delayed by the case's random keys (so late and out-of-order deliveries happen).
    fn deliveries(&self) -> Vec<Transition> {
        let mut all = Vec::new();
        for (alarm, history) in ALARMS.iter().zip(&self.histories) {
            let mut at = start();
            for (n, (gap, copies)) in history.gaps.iter().zip(&history.copies).enumerate() {
                at += Duration::minutes(i64::from(*gap));
                let state = if n % 2 == 0 { "ALARM" } else { "OK" };
                for _ in 0..*copies {
                    all.push(Transition { alarm, state, at });
                }
            }
        }
        // Each delivery arrives up to a quarter of an hour late: those within that of each other
        // may arrive in any order.
        let mut keyed: Vec<(DateTime<Utc>, u32, Transition)> = all
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let key = self.order.get(i).copied().unwrap_or_default();
                (t.at + Duration::minutes(i64::from(key % 16)), key, t)
            })
            .collect();
        keyed.sort_by_key(|(arrives, key, _)| (*arrives, *key));
        keyed.into_iter().map(|(_, _, t)| t).collect()
    }

    /// Each alarm's last state.
    fn last_states(&self) -> BTreeMap<&'static str, &'static str> {
        ALARMS
            .iter()
            .zip(&self.histories)
            .map(|(alarm, h)| (*alarm, if h.gaps.len() % 2 == 1 { "ALARM" } else { "OK" }))
            .collect()
    }

    fn last_time(&self) -> DateTime<Utc> {
        self.histories
            .iter()
            .map(|h| start() + Duration::minutes(h.gaps.iter().map(|g| i64::from(*g)).sum()))
            .max()
            .unwrap_or_else(start)
    }
}

fn change(t: &Transition) -> Value {
    let mut alarm = event("alarm-router/metric-alarm.json");
    alarm["detail"]["alarmName"] = Value::from(t.alarm);
    alarm["resources"][0] = Value::from(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{}", t.alarm));
    alarm["detail"]["state"]["value"] = Value::from(t.state);
    alarm["detail"]["state"]["timestamp"] = Value::from(t.at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
    alarm["detail"]["previousState"]["value"] = Value::from(if t.state == "OK" { "ALARM" } else { "OK" });
    alarm["id"] = Value::from(format!("{}-{}-{}", t.alarm, t.state, t.at.timestamp()));
    alarm
}

/// Runs one case from an emptied emulator; the property's failure says what broke.
async fn run(moto: &MotoServer, case: &Case) -> Result<(), TestCaseError> {
    http_client().post(format!("{}/moto-api/reset", moto.endpoint)).send().await.expect("reset");
    let config = emulator_config(&moto.endpoint).await;
    let emulator = Emulator::prepare(&config).await.expect("emulator resources");
    let config = config.to_builder().retry_config(aws_config::retry::RetryConfig::disabled()).build();
    let clients = alarm_router::Clients::new(&config);
    let router = alarm_router::RouterConfig {
        state_machine_arn: emulator.state_machine_arn.clone(),
        topic_arn: emulator.topic_arn.clone(),
        response_plan_arn: None,
        routes: shared::Routes::from_yaml(RULES).expect("test rules"),
        state_table: Some(emulator.state_table.clone()),
    };
    moto.disarm_faults().await;

    // Deliver; a failed delivery goes to the back of the queue (Lambda's and EventBridge's retry).
    let mut queue: VecDeque<Transition> = case.deliveries().into();
    let count = queue.len();
    let mut attempts = 0;
    while let Some(next) = queue.pop_front() {
        for fault in case.faults.iter().filter(|f| f.at % count == attempts) {
            moto.arm_faults(json!([{"call": fault.call, "error": fault.error, "times": fault.times}])).await;
        }
        attempts += 1;
        prop_assert!(attempts < 200, "deliveries kept failing after the faults had passed");
        match alarm_router::dispatch(&clients, &router, change(&next)).await {
            Ok(_) => {}
            Err(alarm_router::RouterError::TransientError(_)) => queue.push_back(next),
            Err(err) => {
                return Err(TestCaseError::fail(format!("{} {} at {}: {err}", next.alarm, next.state, next.at)));
            }
        }
    }

    // CloudWatch holds each alarm's last state; the reconciler runs once, well after the last event.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let last = case.last_states();
    for (alarm, state) in &last {
        cloudwatch
            .put_metric_alarm()
            .alarm_name(*alarm)
            .namespace("AWS/EC2")
            .metric_name("StatusCheckFailed")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold)
            .send()
            .await
            .expect("put alarm");
        let value = if *state == "OK" { StateValue::Ok } else { StateValue::Alarm };
        cloudwatch
            .set_alarm_state()
            .alarm_name(*alarm)
            .state_value(value)
            .state_reason("last")
            .send()
            .await
            .expect("state");
    }
    let at = (case.last_time() + Duration::hours(3)).to_rfc3339();
    let reconciled = alarm_router::dispatch(&clients, &router, json!({"reconcile": {"at": at}})).await;
    prop_assert!(reconciled.is_ok(), "the reconciler failed: {reconciled:?}");

    // What the topic received, in order: (subject, route).
    let messages: Vec<(String, String)> = moto
        .topic_messages(&emulator.topic_arn)
        .await
        .iter()
        .map(|m| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&m["subject"]), text(&m["attributes"]["route"]))
        })
        .collect();
    let is_page = |subject: &str| subject.starts_with("[ALARM]") || subject.starts_with("[INCIDENT]");
    let is_recovery = |subject: &str| subject.starts_with("[RECOVERED]");
    // Ungrouped alarms: judged one by one, by their own messages.
    for alarm in ["api-0", "api-1"] {
        let own: Vec<&str> =
            messages.iter().map(|(s, _)| s.as_str()).filter(|s| s.ends_with(&format!(" {alarm}"))).collect();
        let last_own = own.last().copied().unwrap_or_default();
        if last[alarm] == "ALARM" {
            prop_assert!(is_page(last_own), "{alarm} ends in ALARM, but its last message is {last_own:?}: {own:?}");
        } else if own.iter().any(|s| is_page(s)) {
            prop_assert!(
                is_recovery(last_own),
                "{alarm} ends in OK after a page, but its last message is {last_own:?}"
            );
        }
    }
    // The grouped route: judged as one problem.
    let shop: Vec<&str> = messages.iter().filter(|(_, r)| r == "shop").map(|(s, _)| s.as_str()).collect();
    let last_shop = shop.last().copied().unwrap_or_default();
    if last["shop-0"] == "ALARM" || last["shop-1"] == "ALARM" {
        prop_assert!(
            is_page(last_shop),
            "a shop alarm ends in ALARM, but the route's last message is {last_shop:?}: {shop:?}"
        );
    } else if shop.iter().any(|s| is_page(s)) {
        prop_assert!(
            is_recovery(last_shop),
            "every shop alarm ends in OK, but the route's last message is {last_shop:?}: {shop:?}"
        );
    }
    Ok(())
}

#[test]
fn whatever_the_order_duplicates_and_faults_every_page_is_sent_and_every_recovery_told() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let moto = MotoServer::start();
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(24);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&case(), |case| runtime.block_on(run(&moto, &case)));
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
