//! The first-response state machine replayed for every sample alarm, and for each path the mocks
//! force, against a moto server: the path taken and the final output.

use std::path::PathBuf;
use std::time::Duration;

use asl::mocks::TestCase;
use asl::{Outcome, Status, TaskRunner};
use local_invoke::{Emulator, Function, emulator_config};
use replay::{ProductTasks, SimulatedAlarm, execute, load_definition, path_taken, settings};
use serde_json::{Value, json};
use workspace_tests::{MotoServer, SlackEmulator, read, repo_root};

/// How every verified remediation starts: one restart, then the first check.
const RESTART_THEN_CHECK: [&str; 7] = [
    "Prepare",
    "Count Recent Failures",
    "Breaker Open?",
    "Restart",
    "Wait Before Checking",
    "Check Recovery",
    "Verified?",
];
/// How it ends once the alarm itself is OK: web-nginx groups its alarms, so the recovery is its
/// group's to announce (the router does, with the group's last OK) and the execution says nothing.
const RECOVERED: [&str; 4] = ["Verified?", "Write Recovery Page", "Group Announces Recovery?", "Recovered"];

fn count(path: &[String], state: &str) -> usize {
    path.iter().filter(|s| *s == state).count()
}

/// The product's tasks against this test's moto and Slack emulators.
async fn product(moto: &MotoServer, slack: &SlackEmulator) -> ProductTasks {
    let config = emulator_config(&moto.endpoint).await;
    let mut emulator = Emulator::prepare(&config).await.expect("emulator resources");
    emulator.slack_api_url = slack.api_url.clone();
    ProductTasks::new(config, emulator, SimulatedAlarm::default())
}

/// What the router started for `event`: its decision and, when it started an execution, the
/// product's definition, that execution's settings and exactly the input Step Functions recorded.
async fn route(
    tasks: &ProductTasks,
    event: Value,
) -> (Value, Option<(asl::Definition, asl::ExecutionSettings, Value)>) {
    let decision = match local_invoke::invoke(Function::AlarmRouter, event, &tasks.config, &tasks.emulator).await {
        Ok(decision) => decision,
        Err(diagnostic) => return (json!({"error": diagnostic.error_type}), None),
    };
    let Some(execution_arn) = decision["outcome"]["executionArn"].as_str() else { return (decision, None) };
    let sfn = aws_sdk_sfn::Client::new(&tasks.config);
    let described = sfn.describe_execution().execution_arn(execution_arn).send().await.expect("describe");
    let input: Value = serde_json::from_str(described.input().expect("input")).expect("JSON input");
    let definition = load_definition(
        &repo_root().join("statemachines/first-response.asl.json"),
        "eu-west-1",
        &tasks.emulator.topic_arn,
    )
    .expect("definition");
    let name = execution_arn.rsplit(':').next().expect("name");
    let settings = settings(&tasks.emulator.state_machine_arn, name);
    (decision, Some((definition, settings, input)))
}

/// Routes `event` and, when the router starts an execution, replays exactly the input it recorded.
async fn replay_event(tasks: &ProductTasks, event: Value, case: Option<&TestCase>) -> (Value, Option<Outcome>) {
    let (decision, started) = route(tasks, event).await;
    let Some((definition, settings, input)) = started else { return (decision, None) };
    let outcome = execute(tasks, case, &definition, &settings, input, &mut |_| {}).await;
    (decision, Some(outcome))
}

fn mocks(case: &str) -> TestCase {
    TestCase::load(&read("statemachines/mocks/first-response.json"), Some("first-response"), case).expect("test case")
}

fn sample_events() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("events/alarm-router"))
        .expect("events")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_sample_alarm_takes_the_path_its_route_calls_for() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    let mut remediated = 0;
    for file in sample_events() {
        let name = file.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        let (decision, outcome) = replay_event(&tasks, event, None).await;
        if name.starts_with("invalid-") {
            assert_eq!(decision["error"], "InvalidEvent", "{name}");
            assert!(outcome.is_none());
            continue;
        }
        match decision["action"].as_str() {
            // A grouped alarm of a route that does not remediate only joins its group.
            Some("group") if outcome.is_none() => assert_eq!(decision["outcome"]["did"], "grouped", "{name}"),
            Some("remediate" | "group") => {
                let outcome = outcome.unwrap_or_else(|| panic!("{name}: the router started no execution"));
                assert_eq!(outcome.status, Status::Succeeded, "{name}: {:?}", outcome.summary());
                let path = path_taken(&outcome);
                assert!(path.starts_with(&RESTART_THEN_CHECK.map(String::from)), "{name}: {path:?}");
                assert!(path.ends_with(&RECOVERED.map(String::from)), "{name}: {path:?}");
                assert_eq!(count(&path, "Restart"), 1, "{name}: one restart");
                let output = outcome.output.expect("output");
                assert_eq!(output["remediation"]["verified"], true, "{name}");
                assert_eq!(output["remediation"]["stage"], "recovered", "{name}");
                assert_eq!(output["remediation"]["alarmState"], "OK", "{name}: verified by the alarm itself");
                assert_eq!(output["failures"]["breakerOpen"], false, "{name}");
                assert_eq!(output["page"]["suppressed"], true, "{name}: the group announces the recovery: {output}");
                remediated += 1;
            }
            Some("notify" | "incident" | "ignore" | "resolve") => {
                assert!(outcome.is_none(), "{name} started an execution")
            }
            other => panic!("{name}: unexpected action {other:?}"),
        }
    }
    assert_eq!(remediated, 2, "metric-alarm.json and hostile-name-alarm.json remediate");
}

#[tokio::test]
async fn an_open_breaker_escalates_without_touching_the_instances() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    let case = mocks("BreakerOpen");
    let (_, outcome) =
        replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), Some(&case)).await;
    let outcome = outcome.expect("execution");
    assert_eq!((outcome.status, outcome.error.as_deref()), (Status::Failed, Some("Escalated")));
    let path = path_taken(&outcome);
    assert_eq!(
        &path[..6],
        [
            "Prepare",
            "Count Recent Failures",
            "Breaker Open?",
            "Write Escalation Page",
            "Group Paged Already?",
            "Escalate"
        ]
    );
    assert!(!path.contains(&"Restart".to_owned()));
    let ssm = aws_sdk_ssm::Client::new(&tasks.config);
    assert!(ssm.list_commands().send().await.expect("commands").commands().is_empty(), "no restart was sent");
}

#[tokio::test]
async fn a_failed_verification_escalates_with_its_evidence() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    let case = mocks("VerificationFailed");
    let (_, outcome) =
        replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), Some(&case)).await;
    let outcome = outcome.expect("execution");
    assert_eq!(outcome.error.as_deref(), Some("Escalated"));
    let path = path_taken(&outcome);
    assert!(
        path.windows(5)
            .any(|w| w == ["Check Recovery", "Verified?", "Write Escalation Page", "Group Paged Already?", "Escalate"]),
        "{path:?}"
    );
    let message = published_escalation(&outcome);
    assert!(message.starts_with("ESCALATED: web-nginx-down"), "{message}");
    assert!(message.contains("unknown directive"), "the evidence reaches the responders: {message}");
}

#[tokio::test]
async fn a_page_the_alert_topic_refuses_ends_in_escalation_failed_not_escalated() {
    // GIVEN an open breaker, and an alert topic whose KMS key is disabled: every publish fails
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    let case = mocks("EscalationPublishFails");
    // WHEN the canonical alarm is replayed
    let (_, outcome) =
        replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), Some(&case)).await;
    let outcome = outcome.expect("execution");
    // THEN the execution ends in the Fail state the safety net catches, saying why the page failed
    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (Status::Failed, Some("EscalationFailed")),
        "{:?}",
        outcome.cause
    );
    let cause = outcome.cause.clone().unwrap_or_default();
    assert!(cause.contains("SNS.KmsDisabledException") && cause.contains("not enabled"), "{cause}");
    let path = path_taken(&outcome);
    assert_eq!(path.last().map(String::as_str), Some("EscalationFailed"), "{path:?}");
    assert!(!path.contains(&"Escalated".to_owned()), "only a published page ends in Escalated: {path:?}");
    assert!(
        path.windows(2).any(|w| w == ["Release Group Page", "EscalationFailed"]),
        "the claim on the group's page is given back first: {path:?}"
    );
    // AND the other ways to people were still tried after the failed page
    assert!(path.windows(2).any(|w| w == ["Escalate", "Incident Manager Configured?"]), "{path:?}");
    let output = input_of_last_state(&outcome);
    assert!(output.get("escalated").is_none(), "no message id: nothing was published: {output}");
    assert_eq!(output["escalationError"]["Error"], "SNS.KmsDisabledException", "{output}");
    assert!(output["warRoom"]["channelId"].is_string(), "the war room opened all the same: {output}");
}

#[tokio::test]
async fn an_unreachable_target_is_caught_and_escalated() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    let case = mocks("TargetUnreachable");
    let (_, outcome) =
        replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), Some(&case)).await;
    let outcome = outcome.expect("execution");
    assert_eq!(outcome.error.as_deref(), Some("Escalated"));
    let path = path_taken(&outcome);
    assert!(
        path.windows(4).any(|w| w == ["Restart", "Write Escalation Page", "Group Paged Already?", "Escalate"]),
        "{path:?}"
    );
}

#[tokio::test]
async fn a_throttled_counter_is_retried_on_the_virtual_clock() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    let case = mocks("ThrottledCounter");
    let (_, outcome) =
        replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), Some(&case)).await;
    let outcome = outcome.expect("execution");
    assert_eq!(outcome.status, Status::Succeeded);
    let failed = outcome.history.iter().filter(|e| e.kind == "LambdaFunctionFailed").count();
    assert_eq!(failed, 2, "two throttled attempts, then success");
    let at = |state: &str| {
        let entered = outcome
            .history
            .iter()
            .find(|e| e.details.get("stateEnteredEventDetails").is_some_and(|d| d["name"] == state))
            .unwrap_or_else(|| panic!("{state} was entered"));
        chrono::DateTime::parse_from_rfc3339(&entered.timestamp).expect("timestamp")
    };
    let counting = at("Breaker Open?") - at("Count Recent Failures");
    assert!(counting <= chrono::Duration::seconds(20), "full jitter stays within the back-off: {counting}");
}

#[tokio::test]
async fn the_canonical_alarm_is_verified_by_the_alarm_returning_to_ok_on_the_virtual_clock() {
    // GIVEN the alarm returns to OK a minute after the restart (replay's default simulation)
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    // WHEN the canonical alarm is replayed
    let (_, outcome) = replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), None).await;
    let outcome = outcome.expect("execution");
    // THEN the state machine looked at the alarm until it was OK, waiting on the virtual clock
    assert_eq!(outcome.status, Status::Succeeded);
    let path = path_taken(&outcome);
    assert_eq!(
        count(&path, "Check Recovery"),
        3,
        "first check at 10 s (ALARM), then 40 s (ALARM), then 70 s (OK): {path:?}"
    );
    assert!(outcome.virtual_duration >= Duration::from_secs(70), "{:?}", outcome.virtual_duration);
    let ssm = aws_sdk_ssm::Client::new(&tasks.config);
    let commands = ssm.list_commands().send().await.expect("commands");
    assert_eq!(commands.commands().len(), 1, "one restart, however many checks");
    assert_eq!(commands.commands()[0].document_name(), Some(restart_and_verify::LOCAL_DOCUMENT));
}

#[tokio::test]
async fn restarted_and_active_but_the_alarm_still_fires_escalates_with_that_reason() {
    // GIVEN an alarm that never returns to OK
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let mut tasks = product(&moto, &slack).await;
    tasks.alarm = SimulatedAlarm { recovers_after: None };
    // WHEN the canonical alarm is replayed
    let (_, outcome) = replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), None).await;
    let outcome = outcome.expect("execution");
    // THEN after the recovery time (60 s x 3 periods + 60 s) the humans are paged with the reason
    assert_eq!(outcome.error.as_deref(), Some("Escalated"));
    assert!(outcome.virtual_duration >= Duration::from_secs(240), "{:?}", outcome.virtual_duration);
    let escalation = published_escalation(&outcome);
    assert!(escalation.contains("restarted and active, but the alarm still fires"), "{escalation}");
}

#[tokio::test]
async fn the_mocked_paths_of_the_verification_loop_end_where_they_should() {
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    for (case, status, checks) in
        [("AlarmRecoversAfterPolls", Status::Succeeded, 4), ("AlarmStillFires", Status::Failed, 9)]
    {
        let case = mocks(case);
        let (_, outcome) =
            replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), Some(&case)).await;
        let outcome = outcome.expect("execution");
        assert_eq!(outcome.status, status, "{}", case.name);
        assert_eq!(count(&path_taken(&outcome), "Check Recovery"), checks, "{}", case.name);
    }
}

/// Runs the product's tasks, except that the first `Restart` sends the command for real and then
/// fails as a Lambda that died before answering would.
struct DiesAfterSending<'a> {
    inner: &'a ProductTasks,
    died: std::sync::atomic::AtomicBool,
}

impl TaskRunner for DiesAfterSending<'_> {
    async fn run(&self, call: &asl::TaskCall) -> Result<Value, asl::StatesError> {
        let result = self.inner.run(call).await;
        if call.state == "Restart" && !self.died.swap(true, std::sync::atomic::Ordering::SeqCst) {
            result?;
            return Err(asl::StatesError::new("Lambda.ServiceException", "died after sending"));
        }
        result
    }
}

#[tokio::test]
async fn a_restart_retried_after_the_command_was_sent_resumes_it_and_restarts_once() {
    // GIVEN the restart step sends the command, then its invocation fails
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let tasks = product(&moto, &slack).await;
    let (_, started) = route(&tasks, workspace_tests::event("alarm-router/metric-alarm.json")).await;
    let (definition, settings, input) = started.expect("an execution");
    let flaky = DiesAfterSending { inner: &tasks, died: Default::default() };
    // WHEN Step Functions retries it
    let outcome = asl::Executor::new(&flaky, &settings).run(&definition, input).await;
    // THEN the retry resumed the command already sent: one restart, verified
    assert_eq!(outcome.status, Status::Succeeded, "{:?}", outcome.summary());
    assert_eq!(outcome.history.iter().filter(|e| e.kind == "LambdaFunctionFailed").count(), 1);
    let ssm = aws_sdk_ssm::Client::new(&tasks.config);
    assert_eq!(ssm.list_commands().send().await.expect("commands").commands().len(), 1, "the service restarted once");
    assert_eq!(outcome.output.expect("output")["remediation"]["resumed"], true);
}

/// The document the execution's last state was entered with: a failed execution has no output.
fn input_of_last_state(outcome: &Outcome) -> Value {
    let entered = outcome
        .history
        .iter()
        .rev()
        .find_map(|e| e.details.get("stateEnteredEventDetails"))
        .expect("a state was entered");
    serde_json::from_str(entered["input"].as_str().expect("input")).expect("JSON input")
}

/// The message of the escalation page the execution published.
fn published_escalation(outcome: &Outcome) -> String {
    let escalation = outcome
        .history
        .iter()
        .find(|e| e.kind == "TaskScheduled" && e.details["taskScheduledEventDetails"]["resource"] == "publish")
        .expect("the escalation was published");
    let parameters: Value = serde_json::from_str(
        escalation.details["taskScheduledEventDetails"]["parameters"].as_str().expect("parameters"),
    )
    .expect("JSON");
    parameters["Message"].as_str().expect("message").to_owned()
}

/// What a person must never read in a page: JSON syntax or escaped line breaks.
fn assert_readable(message: &str) {
    for raw in ["\\n", "{\"", "\"}", "\":", "[{", "Some("] {
        assert!(!message.contains(raw), "the page shows {raw:?}:\n{message}");
    }
}

#[tokio::test]
async fn a_subscriber_reads_pages_with_the_documented_attributes_and_one_recovery_per_fixed_alarm() {
    // GIVEN a queue subscribed to the alert topic, as a pager or an e-mail gateway would be
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let mut tasks = product(&moto, &slack).await;
    let queue = moto.subscribe_queue(&tasks.emulator.topic_arn, "pager").await;

    // WHEN the canonical alarm is fixed by the restart, and then its OK reaches the router
    let (_, outcome) = replay_event(&tasks, workspace_tests::event("alarm-router/metric-alarm.json"), None).await;
    assert_eq!(outcome.expect("execution").status, Status::Succeeded);
    let (ok, _) = route(&tasks, workspace_tests::event("alarm-router/metric-ok.json")).await;
    // THEN the subscriber gets one recovery message, the execution's, readable and attributed
    assert_eq!(ok["outcome"]["did"], "resolved", "the group's last OK announces it: {ok}");
    let received = moto.drain_queue(&queue).await;
    assert_eq!(received.len(), 1, "one recovery message per fixed alarm: {received:#?}");
    let recovery = &received[0];
    assert_readable(&recovery.message);
    assert!(recovery.message.starts_with("RECOVERED: web-nginx-down"), "{}", recovery.message);
    let attributes = |pairs: [(&str, &str); 4]| pairs.map(|(k, v)| (k.to_owned(), v.to_owned())).into_iter().collect();
    assert_eq!(
        recovery.attributes,
        attributes([("kind", "recovery"), ("route", "web-nginx"), ("severity", "high"), ("state", "OK")])
    );

    // WHEN the same alarm fires again and the restart cannot bring it back
    tasks.alarm = SimulatedAlarm { recovers_after: None };
    let mut again = workspace_tests::event("alarm-router/metric-alarm.json");
    again["detail"]["state"]["timestamp"] = json!("2026-11-20T05:02:11.309+0000");
    let (_, outcome) = replay_event(&tasks, again, None).await;
    assert_eq!(outcome.expect("execution").error.as_deref(), Some("Escalated"));
    // THEN the page a person reads says what was tried, as text, with the page's attributes
    let received = moto.drain_queue(&queue).await;
    assert_eq!(received.len(), 1, "{received:#?}");
    let page = &received[0];
    assert_readable(&page.message);
    assert!(
        page.message.starts_with("ESCALATED: web-nginx-down\nAutomation could not fix this alarm"),
        "{}",
        page.message
    );
    assert!(page.message.contains("What automation tried:\n- Restarted nginx"), "{}", page.message);
    assert_eq!(
        page.attributes,
        attributes([("kind", "escalation"), ("route", "web-nginx"), ("severity", "high"), ("state", "ALARM")])
    );
}

#[tokio::test]
async fn three_hosts_that_cannot_be_fixed_are_restarted_each_and_paged_once() {
    // GIVEN a pager on the topic, and web hosts whose alarm keeps firing after the restart
    let (moto, slack) = (MotoServer::start(), SlackEmulator::start());
    let mut tasks = product(&moto, &slack).await;
    tasks.alarm = SimulatedAlarm { recovers_after: None };
    let queue = moto.subscribe_queue(&tasks.emulator.topic_arn, "pager").await;
    // WHEN three of them alarm (route web-nginx, grouped by route)
    let mut escalated = 0;
    for host in ["web-nginx-down-a", "web-nginx-down-b", "web-nginx-down-c"] {
        let mut alarm = workspace_tests::event("alarm-router/metric-alarm.json");
        alarm["detail"]["alarmName"] = json!(host);
        alarm["resources"][0] = json!(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{host}"));
        let (decision, outcome) = replay_event(&tasks, alarm, None).await;
        let outcome = outcome.unwrap_or_else(|| panic!("{host}: no execution: {decision}"));
        assert_eq!(outcome.error.as_deref(), Some("Escalated"), "{host}");
        escalated += 1;
    }
    // THEN each was restarted, each execution escalated, and the humans were paged once
    let ssm = aws_sdk_ssm::Client::new(&tasks.config);
    assert_eq!(ssm.list_commands().send().await.expect("commands").commands().len(), 3, "one restart per host");
    assert_eq!(escalated, 3);
    let pages = moto.drain_queue(&queue).await;
    assert_eq!(pages.len(), 1, "one page per problem: {pages:#?}");
    assert!(pages[0].message.starts_with("ESCALATED: web-nginx-down-a"), "{}", pages[0].message);
    // AND one war room, the first host's, where the other two escalations were posted instead
    let rooms: Vec<Value> = slack_api(&slack, "conversations.list", json!({"limit": 1000})).await["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("inc-")))
        .cloned()
        .collect();
    assert_eq!(rooms.len(), 1, "{rooms:#?}");
    assert!(rooms[0]["name"].as_str().is_some_and(|n| n.ends_with("web-nginx-down-a")), "{}", rooms[0]["name"]);
    let history = slack_api(
        &slack,
        "conversations.history",
        json!({"channel": rooms[0]["id"], "limit": 1000, "include_all_metadata": true}),
    )
    .await;
    let posted: Vec<String> = history["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["metadata"]["event_type"] == "group_escalation")
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(posted.len(), 2, "{history:#}");
    for (text, host) in posted.iter().rev().zip(["web-nginx-down-b", "web-nginx-down-c"]) {
        assert!(text.contains(&format!("*{host}*")) && text.contains("no new page"), "{text}");
    }
}

/// A Web API call to the Slack emulator, as the bot.
async fn slack_api(slack: &SlackEmulator, method: &str, args: Value) -> Value {
    slack.call(local_invoke::LOCAL_SLACK_TOKEN, method, args).await
}
