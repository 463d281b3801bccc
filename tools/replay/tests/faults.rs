//! `replay history --faults`, `--in-file-order` and `--settle`, through the binary against a moto
//! server and the Slack emulator: the emulator's fault injection, what AWS does around the
//! functions on the virtual clock, and what reached the topic. Then the samples of
//! events/histories/faults/, each judged by what the emulator's topic received.

use std::path::PathBuf;
use std::process::Command;

use aws_sdk_sns::config::retry::RetryConfig;
use serde_json::{Value, json};
use workspace_tests::{MotoServer, SlackEmulator, http_client, repo_root};

mod common;
use common::{replay_history, summary};

const SAMPLES: &str = "events/histories/faults";

/// A scratch folder of its own for a test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("replay-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("a scratch file");
    path.to_str().expect("utf-8").to_owned()
}

/// The first `n` lines of a sample's history.
fn sample_lines(sample: &str, n: usize) -> String {
    let text = std::fs::read_to_string(repo_root().join(format!("{SAMPLES}/{sample}/history.jsonl"))).expect("sample");
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}

/// The ALARM of search-latency-p99 at 04:00: its route (search) pages on every ALARM, ungrouped.
fn search_alarm() -> String {
    sample_lines("late-alarm-after-ok", 2).lines().nth(1).expect("the ALARM").to_owned()
}

fn sample_file(sample: &str, file: &str) -> String {
    format!("{SAMPLES}/{sample}/{file}")
}

/// Every message the alert topic received, in order, as the emulator recorded it.
async fn topic_messages(moto: &MotoServer) -> Vec<Value> {
    messages_of(moto, "first-response-alerts").await
}

/// What the safety nets told people, on their own topic.
async fn safety_net_messages(moto: &MotoServer) -> Vec<Value> {
    messages_of(moto, "first-response-safety-net").await
}

async fn messages_of(moto: &MotoServer, name: &str) -> Vec<Value> {
    moto.topic_messages(&format!("arn:aws:sns:eu-west-1:123456789012:{name}")).await
}

/// The route's messages in order, as "page" or "recovery" (notifications left out).
fn pages_and_recoveries(messages: &[Value], route: &str) -> Vec<&'static str> {
    messages
        .iter()
        .filter(|m| m["attributes"]["route"] == route)
        .filter_map(|m| match m["attributes"]["kind"].as_str() {
            Some("recovery") => Some("recovery"),
            Some("escalation" | "incident") => Some("page"),
            _ => None,
        })
        .collect()
}

/// Every page of `sequence` is followed by a recovery: as many of each, and none after the last
/// recovery.
#[test]
fn a_page_is_open_until_a_recovery_follows_it() {
    assert!(no_page_left_open(&[]));
    assert!(no_page_left_open(&["recovery"]), "a notice too many leaves nothing open");
    assert!(no_page_left_open(&["page", "page", "recovery"]), "one recovery closes a group's pages");
    assert!(!no_page_left_open(&["page"]));
    assert!(!no_page_left_open(&["page", "recovery", "page"]));
}

/// Whether every page is followed by a recovery (one recovery may close a group's several pages,
/// and a recovery with no page before it, a notice too many, leaves nothing open).
fn no_page_left_open(sequence: &[&str]) -> bool {
    sequence.iter().rposition(|k| *k == "page").is_none_or(|last| sequence[last..].contains(&"recovery"))
}

async fn clock(moto: &MotoServer, now: &str) {
    let told = http_client()
        .post(format!("{}/_first_response/clock", moto.endpoint))
        .json(&json!({ "now": now }))
        .send()
        .await
        .expect("the emulator answers");
    assert!(told.status().is_success());
}

#[tokio::test]
async fn an_injected_fault_is_answered_in_each_services_own_error_shape() {
    // GIVEN faults armed on four services that speak four protocols, and clients that do not retry
    let moto = MotoServer::start();
    let config =
        local_invoke::emulator_config(&moto.endpoint).await.to_builder().retry_config(RetryConfig::disabled()).build();
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = sns.create_topic().name("faults").send().await.expect("topic");
    let topic_arn = topic.topic_arn().expect("arn");
    moto.arm_faults(json!([
        {"call": "sns:Publish", "error": "Throttling", "times": 1},
        {"call": "sns:Publish", "error": "InternalError", "times": 1},
        {"call": "dynamodb:ListTables", "error": "InternalError", "times": 1},
        {"call": "states:ListStateMachines", "error": "Throttling", "times": 1},
        {"call": "monitoring:DescribeAlarms", "error": "Throttling", "times": 1},
    ]))
    .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let sfn = aws_sdk_sfn::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    // WHEN each is called
    let publish = || sns.publish().topic_arn(topic_arn).message("hello").send();
    let throttled = publish().await.expect_err("throttled");
    let internal = publish().await.expect_err("internal error");
    let tables = dynamodb.list_tables().send().await.expect_err("internal error");
    let machines = sfn.list_state_machines().send().await.expect_err("throttled");
    let alarms = cloudwatch.describe_alarms().send().await.expect_err("throttled");
    // THEN each SDK reads its service's own error: query XML, awsJson __type, rpcv2Cbor
    let status = |e: Option<&aws_smithy_runtime_api::http::Response>| e.map(|r| r.status().as_u16());
    assert_eq!(shared::aws::error_code(&throttled), Some("Throttling"), "{throttled:?}");
    assert_eq!(status(throttled.raw_response()), Some(400));
    assert_eq!(shared::aws::error_code(&internal), Some("InternalError"), "{internal:?}");
    assert_eq!(status(internal.raw_response()), Some(500));
    assert_eq!(shared::aws::error_code(&tables), Some("InternalServerError"), "{tables:?}");
    assert_eq!(tables.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(shared::aws::error_code(&machines), Some("ThrottlingException"), "{machines:?}");
    assert_eq!(shared::aws::error_code(&alarms), Some("Throttling"), "{alarms:?}");
    // and once the faults have answered their calls, the services answer again
    publish().await.expect("SNS answers");
    dynamodb.list_tables().send().await.expect("DynamoDB answers");
    cloudwatch.describe_alarms().send().await.expect("CloudWatch answers");
}

#[tokio::test]
async fn a_fault_of_the_virtual_clock_fails_calls_only_within_its_window() {
    // GIVEN DynamoDB failing for 30 seconds of virtual time from 04:00
    let moto = MotoServer::start();
    let config =
        local_invoke::emulator_config(&moto.endpoint).await.to_builder().retry_config(RetryConfig::disabled()).build();
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    moto.arm_faults(json!([{"call": "dynamodb:ListTables", "error": "Throttling",
                "from": "2026-12-01T04:00:00Z", "until": "2026-12-01T04:00:30Z"}]))
        .await;
    // WHEN the virtual clock is before, within and after the window
    clock(&moto, "2026-12-01T03:59:59Z").await;
    let before = dynamodb.list_tables().send().await;
    clock(&moto, "2026-12-01T04:00:10Z").await;
    let within = dynamodb.list_tables().send().await;
    let again = dynamodb.list_tables().send().await;
    clock(&moto, "2026-12-01T04:00:30Z").await;
    let after = dynamodb.list_tables().send().await;
    // and replay's own calls (signed as replay-harness) are never faulted
    clock(&moto, "2026-12-01T04:00:20Z").await;
    let credentials = aws_sdk_sfn::config::Credentials::new(replay::HARNESS_ACCESS_KEY, "testing", None, None, "test");
    let harness = config
        .to_builder()
        .credentials_provider(aws_sdk_sfn::config::SharedCredentialsProvider::new(credentials))
        .build();
    let replays_own = aws_sdk_dynamodb::Client::new(&harness).list_tables().send().await;
    // THEN only the product's calls within it fail, however many there are
    assert!(replays_own.is_ok(), "{replays_own:?}");
    assert!(before.is_ok() && after.is_ok());
    assert_eq!(within.as_ref().err().and_then(shared::aws::error_code), Some("ThrottlingException"));
    assert_eq!(again.as_ref().err().and_then(shared::aws::error_code), Some("ThrottlingException"));
}

#[tokio::test]
async fn a_router_that_keeps_failing_is_retried_twice_then_its_failure_reaches_the_topic() {
    // GIVEN one ALARM at 04:00 of a route that pages, and SNS throttling every Publish for ten minutes
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let dir = scratch("router-fails");
    let history = write(&dir, "history.jsonl", &search_alarm());
    let plan = write(&dir, "plan.yaml", "faults: [{line: 1, call: 'sns:Publish', seconds: 600, error: Throttling}]");
    let routes = sample_file("late-alarm-after-ok", "routes.yaml");
    // WHEN it is replayed
    let output = replay_history(&moto, &slack, &["--quiet", &history, "--routes", &routes, "--faults", &plan]);
    // THEN Lambda retries the router 1 and then 2 minutes later, on the virtual clock
    let summary = summary(&output);
    assert_eq!(
        summary["lambdaRetries"],
        json!([{"line": 1, "attempt": 2, "at": "2026-12-01T04:01:00Z"},
               {"line": 1, "attempt": 3, "at": "2026-12-01T04:03:00Z"}])
    );
    assert_eq!(summary["unhandled"][0]["line"], 1, "{summary}");
    assert!(summary["unhandled"][0]["message"].as_str().is_some_and(|m| m.starts_with("after 3 attempts")));
    // and the on-failure destination's rule publishes once SNS answers again, after 04:10
    let nets = summary["safetyNets"].as_array().expect("safety nets");
    assert_eq!(nets.len(), 1, "{summary}");
    assert_eq!(nets[0]["rule"], "RouterFailureRule");
    assert_eq!(nets[0]["firstAt"], "2026-12-01T04:03:00Z");
    let published = nets[0]["publishedAt"].as_str().expect("published");
    assert!(("2026-12-01T04:10:00Z".."2026-12-01T04:16:00Z").contains(&published), "{published}");
    // on the safety nets' own topic: the alert topic's failure cannot block it
    assert_eq!(summary["reachedTopic"]["unattributed"], 0, "{summary}");
    assert_eq!(summary["reachedTopic"]["pages"], 0);
    let messages = safety_net_messages(&moto).await;
    let text = messages[0]["message"].as_str().expect("text");
    assert!(text.starts_with("The alarm router failed on alarm search-latency-p99 (state ALARM"), "{text}");
    assert!(text.contains("Attempts: 3 (RetriesExhausted), last at 2026-12-01T04:03:00Z."), "{text}");
}

#[tokio::test]
async fn a_fault_of_three_calls_fails_the_first_delivery_and_lambdas_retry_notifies() {
    // GIVEN an ALARM of the default (notify) route, and SNS failing the next three Publish calls
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let dir = scratch("times");
    let alarm = search_alarm().replace("search-", "other-");
    let history = write(&dir, "history.jsonl", &alarm);
    let plan = write(
        &dir,
        "plan.json",
        r#"{"faults": [{"line": 1, "call": "sns:Publish", "times": 3, "error": "InternalError"}]}"#,
    );
    // WHEN it is replayed: the router's SDK tries three times, all answered by the fault
    let output = replay_history(&moto, &slack, &["--quiet", &history, "--faults", &plan]);
    // THEN Lambda's first retry, a minute later, notifies, and nothing is left unhandled
    let summary = summary(&output);
    assert_eq!(summary["lambdaRetries"], json!([{"line": 1, "attempt": 2, "at": "2026-12-01T04:01:00Z"}]));
    assert_eq!(summary["unhandled"], json!([]));
    assert_eq!(summary["reachedTopic"]["byRoute"]["default"], json!({"pages": 0, "recoveries": 0, "notifications": 1}));
    let faults: Value = http_client()
        .get(format!("{}/_first_response/faults", moto.endpoint))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(faults["faults"][0]["answered"], 3, "{faults}");
}

#[test]
fn in_file_order_delivers_a_late_event_at_the_clocks_time_with_its_own_timestamp() {
    // GIVEN a file whose OK (04:10, line 1) comes before its ALARM (04:00, line 2)
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let history = sample_file("late-alarm-after-ok", "history.jsonl");
    let routes = sample_file("late-alarm-after-ok", "routes.yaml");
    // WHEN it is replayed in time order, then in the file's order
    let sorted = replay_history(&moto, &slack, &[&history, "--routes", &routes]);
    let in_file = replay_history(&moto, &slack, &[&history, "--routes", &routes, "--in-file-order"]);
    // THEN in time order the ALARM comes first, at its own time
    assert_eq!(summary(&sorted)["deliveredLate"], 0);
    let trace = String::from_utf8_lossy(&sorted.stderr);
    let alarm = trace.find("2026-12-01T04:00:00Z line    2  search-latency-p99 ALARM →").expect("the ALARM at 04:00");
    assert!(trace.find("line    1  search-latency-p99 OK").is_some_and(|ok| ok > alarm), "{trace}");
    // and in the file's order the ALARM comes after the OK, at the clock's 04:10, keeping its 04:00
    assert_eq!(summary(&in_file)["deliveredLate"], 1);
    let trace = String::from_utf8_lossy(&in_file.stderr);
    let ok = trace.find("2026-12-01T04:10:00Z line    1  search-latency-p99 OK →").expect("the OK first");
    let late = trace
        .find("2026-12-01T04:10:00Z line    2  search-latency-p99 ALARM (its time 2026-12-01T04:00:00Z) →")
        .expect("the late ALARM at the clock's time");
    assert!(ok < late, "{trace}");
}

#[test]
fn settle_keeps_the_clock_running_after_the_last_event_for_what_is_still_due() {
    // GIVEN one ALARM at 04:00 whose router fails for ten minutes (retries due at 04:01 and 04:03)
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let dir = scratch("settle");
    let history = write(&dir, "history.jsonl", &search_alarm());
    let plan = write(&dir, "plan.yaml", "faults: [{line: 1, call: 'sns:Publish', seconds: 600, error: Throttling}]");
    let routes = sample_file("late-alarm-after-ok", "routes.yaml");
    let args = |settle: &'static str| -> Vec<String> {
        ["--quiet", &history, "--routes", &routes, "--faults", &plan, "--settle", settle].map(str::to_owned).to_vec()
    };
    let run = |settle| {
        let args = args(settle);
        summary(&replay_history(&moto, &slack, &args.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    // WHEN the clock runs two minutes past the event
    let short = run("2m");
    // THEN the first retry runs, the second is still scheduled, and no scheduled work was due
    assert_eq!(short["settledUntil"], "2026-12-01T04:02:00Z");
    assert_eq!(short["lambdaRetries"].as_array().map(Vec::len), Some(1), "{short}");
    assert_eq!(short["leftScheduled"], 1);
    assert_eq!(short["scheduledTicks"], 0);
    // WHEN it runs the default hour: every retry, the safety net, and the schedule every 5 minutes
    let hour = run("1h");
    assert_eq!(hour["settledUntil"], "2026-12-01T05:00:00Z");
    assert_eq!(hour["lambdaRetries"].as_array().map(Vec::len), Some(2), "{hour}");
    assert_eq!(hour["leftScheduled"], 0);
    assert_eq!(hour["scheduledTicks"], 12);
    // and a duration that is not one is refused
    let refused = replay_history(&moto, &slack, &[&history, "--settle", "1 hour"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("InvalidDuration"));
}

#[tokio::test]
async fn what_reached_the_topic_is_counted_per_route_and_stays_in_the_emulator() {
    // GIVEN an incident route's ALARM and OK, and an alarm of the default (notify) route
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let dir = scratch("topic");
    let search = sample_lines("late-alarm-after-ok", 2);
    let other = sample_lines("late-alarm-after-ok", 2).lines().nth(1).expect("ALARM").replace("search-", "other-");
    let history = write(&dir, "history.jsonl", &format!("{search}\n{other}"));
    let routes = sample_file("late-alarm-after-ok", "routes.yaml");
    // WHEN it is replayed
    let output = replay_history(&moto, &slack, &[&history, "--routes", &routes]);
    // THEN the summary says what the topic received, per route, in the JSON and for a person
    let summary = summary(&output);
    let reached = &summary["reachedTopic"];
    assert_eq!(reached["byRoute"]["search"], json!({"pages": 1, "recoveries": 1, "notifications": 0}));
    assert_eq!(reached["byRoute"]["default"], json!({"pages": 0, "recoveries": 0, "notifications": 1}));
    assert_eq!((reached["pages"].as_u64(), reached["unattributed"].as_u64()), (Some(1), Some(0)));
    let table = String::from_utf8_lossy(&output.stderr);
    assert!(table.contains("reached the topic") && table.contains("  search "), "{table}");
    // and the emulator still holds the messages after the replay
    let messages = topic_messages(&moto).await;
    assert_eq!(messages.len(), 3);
    assert_eq!(pages_and_recoveries(&messages, "search"), ["page", "recovery"]);
}

#[test]
fn a_fault_plan_is_refused_by_name_before_anything_runs() {
    let dir = scratch("plans");
    let history = sample_file("late-alarm-after-ok", "history.jsonl");
    let cases = [
        ("faults: [{line: 1, call: Publish, seconds: 30, error: Throttling}]", "UnknownCall: fault 1"),
        ("faults: [{line: 1, call: 'sns:Publish', seconds: 30, error: Timeout}]", "UnknownError: fault 1"),
        ("faults: [{line: 3, call: 'sns:Publish', seconds: 30, error: Throttling}]", "LineOutOfRange: fault 1"),
        ("faults: [{line: 2, call: 'sns:Publish', error: Throttling}]", "FaultWithoutEnd: fault 1"),
        ("faults: {line: 1}", "FaultPlanUnreadable"),
    ];
    for (index, (text, name)) in cases.into_iter().enumerate() {
        let plan = write(&dir, &format!("plan-{index}.yaml"), text);
        // No emulator: the plan is checked first.
        let output = Command::new(env!("CARGO_BIN_EXE_replay"))
            .args(["history", &history, "--faults", &plan])
            .current_dir(repo_root())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .expect("replay runs");
        assert_eq!(output.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name) && !stderr.contains("reset"), "{text}: {stderr}");
    }
}

/// Replays a sample of events/histories/faults/ with its rules and plan.
async fn replay_sample(sample: &str, extra: &[&str]) -> (Value, Vec<Value>) {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let (history, routes, plan) =
        (sample_file(sample, "history.jsonl"), sample_file(sample, "routes.yaml"), sample_file(sample, "plan.yaml"));
    let mut args = vec!["--quiet", history.as_str(), "--routes", routes.as_str(), "--faults", plan.as_str()];
    args.extend_from_slice(extra);
    let summary = summary(&replay_history(&moto, &slack, &args));
    (summary, topic_messages(&moto).await)
}

#[tokio::test]
async fn sample_a_grouped_routes_throttled_first_page_is_sent_by_lambdas_retry() {
    let (summary, messages) = replay_sample("grouped-first-page-throttled", &[]).await;
    assert_eq!(summary["lambdaRetries"][0]["at"], "2026-12-01T04:01:00Z", "{summary}");
    assert_eq!(pages_and_recoveries(&messages, "checkout"), ["page", "recovery"], "{summary}");
}

#[tokio::test]
async fn sample_b_a_failed_escalation_publish_is_itself_seen() {
    let (summary, messages) = replay_sample("escalation-publish-fails", &[]).await;
    assert_eq!(summary["restarts"], 1, "{summary}");
    // The refused escalation is itself seen: the execution ended in EscalationFailed, and the
    // safety net told people on its own topic, which the alert topic's failure cannot block.
    let told = summary["safetyNets"].as_array().cloned().unwrap_or_default();
    assert!(told.iter().any(|m| m["rule"] == "ExecutionEndedUnseenRule" && m["publishedAt"].is_string()), "{summary}");
    assert!(messages.iter().all(|m| m["attributes"]["kind"] != "escalation"), "the page was refused: {messages:#?}");
}

#[tokio::test]
async fn sample_c_a_late_alarm_after_its_ok_leaves_no_page_open() {
    let (summary, messages) = replay_sample("late-alarm-after-ok", &["--in-file-order"]).await;
    assert_eq!(summary["deliveredLate"], 1);
    let sequence = pages_and_recoveries(&messages, "search");
    assert!(no_page_left_open(&sequence), "{sequence:?}");
}

#[tokio::test]
async fn sample_d_an_inhibitor_deleted_in_alarm_lets_the_inhibited_alarms_page_after_the_reconciler() {
    let (summary, messages) = replay_sample("inhibitor-deleted", &[]).await;
    assert_eq!(summary["errors"], json!([]), "the deletion is an event the router takes: {summary}");
    assert!(summary["scheduledTicks"].as_u64() > Some(0));
    let sequence = pages_and_recoveries(&messages, "queue-depth");
    assert!(sequence.contains(&"page"), "{summary}");
}

#[tokio::test]
async fn sample_e_a_group_whose_window_ends_while_firing_recovers_every_page() {
    let (summary, messages) = replay_sample("group-window-ends-while-firing", &[]).await;
    let sequence = pages_and_recoveries(&messages, "payments-api");
    assert!(sequence.contains(&"page"), "{summary}");
    assert!(no_page_left_open(&sequence), "{sequence:?}");
}
