//! Offline end-to-end: the real handlers and SDK clients against a real moto server.
//!
//! Each test starts its own moto on a free loopback port (installed by `make setup`), creates the
//! topic and state machine the way `make invoke` does, and reads back what the handlers did.

use aws_sdk_sfn::types::ExecutionStatus;
use local_invoke::{Emulator, emulator_config};
use serde_json::Value;
use workspace_tests::{MotoServer, event};

async fn emulator(moto: &MotoServer) -> (aws_config::SdkConfig, Emulator) {
    let config = emulator_config(&moto.endpoint).await;
    let emulator = Emulator::prepare(&config).await.expect("emulator resources");
    (config, emulator)
}

fn router_config(emulator: &Emulator) -> alarm_router::RouterConfig {
    alarm_router::RouterConfig {
        state_machine_arn: emulator.state_machine_arn.clone(),
        topic_arn: emulator.topic_arn.clone(),
        response_plan_arn: None,
        routes: shared::Routes::example().expect("example routes"),
        state_table: Some(emulator.state_table.clone()),
    }
}

/// Messages moto recorded for the alert topic, as (subject, message).
async fn published(moto: &MotoServer, topic_arn: &str) -> Vec<(String, String)> {
    let data: Value = workspace_tests::http_client()
        .get(format!("{}/moto-api/data.json", moto.endpoint))
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
        .filter(|t| t["arn"] == topic_arn)
        .flat_map(|t| t["sent_notifications"].as_array().cloned().unwrap_or_default())
        .map(|n| (n[2].as_str().unwrap_or_default().to_owned(), n[1].as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_remediate_alarm_starts_one_execution_however_often_it_is_delivered() {
    // GIVEN the emulator with the first-response state machine
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let clients = alarm_router::Clients::new(&config);
    let router = router_config(&emulator);
    // WHEN EventBridge delivers the canonical alarm twice
    let first = alarm_router::handle(&clients, &router, event("alarm-router/metric-alarm.json")).await.expect("first");
    let again = alarm_router::handle(&clients, &router, event("alarm-router/metric-alarm.json")).await.expect("again");
    // THEN exactly one execution exists, named by the incident key, and both answers name it
    let sfn = aws_sdk_sfn::Client::new(&config);
    let listed = sfn.list_executions().state_machine_arn(&emulator.state_machine_arn).send().await.expect("list");
    let names: Vec<&str> = listed.executions().iter().map(|e| e.name()).collect();
    assert_eq!(names, [first.incident_key.as_str()]);
    assert_eq!(first.outcome, again.outcome);
    let execution_arn = listed.executions()[0].execution_arn();
    let described = sfn.describe_execution().execution_arn(execution_arn).send().await.expect("describe");
    let input: Value = serde_json::from_str(described.input().expect("input")).expect("input is JSON");
    assert_eq!(input["route"]["remediation"]["service"], "nginx");
    assert_eq!(input["incidentKey"], first.incident_key.as_str());
    assert!(published(&moto, &emulator.topic_arn).await.is_empty(), "remediation must not page anyone");

    // AND once that execution has ended, a late redelivery is a duplicate, not a second remediation
    sfn.stop_execution().execution_arn(execution_arn).send().await.expect("stop");
    let late = alarm_router::handle(&clients, &router, event("alarm-router/metric-alarm.json")).await.expect("late");
    assert_eq!(
        late.outcome,
        alarm_router::Outcome::StartedExecution { execution_arn: execution_arn.to_owned(), duplicate: true }
    );
    let listed = sfn.list_executions().state_machine_arn(&emulator.state_machine_arn).send().await.expect("list");
    assert_eq!(listed.executions().len(), 1);
}

#[tokio::test]
async fn the_failure_counter_counts_the_aborted_executions_it_finds() {
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    // GIVEN six aborted executions of the nginx route, one of another route, and one still running
    let start = |name: String| {
        let sfn = sfn.clone();
        let arn = emulator.state_machine_arn.clone();
        async move { sfn.start_execution().state_machine_arn(arn).name(name).input("{}").send().await.expect("start") }
    };
    for n in 0..6 {
        let started = start(format!("web-nginx__web-nginx-down__{n:020}")).await;
        sfn.stop_execution().execution_arn(started.execution_arn()).send().await.expect("stop");
    }
    let other = start("database__orders-db-cpu-high__00000000000000000001".into()).await;
    sfn.stop_execution().execution_arn(other.execution_arn()).send().await.expect("stop");
    start("web-nginx__web-nginx-down__99999999999999999999".into()).await;
    let statuses = sfn.list_executions().state_machine_arn(&emulator.state_machine_arn).send().await.expect("list");
    assert_eq!(statuses.executions().iter().filter(|e| *e.status() == ExecutionStatus::Aborted).count(), 7);

    // WHEN the counter runs for the nginx route
    let mut request = event("failure-counter/count-request.json");
    request["stateMachineArn"] = Value::String(emulator.state_machine_arn.clone());
    let failures = failure_counter::handle(
        &sfn,
        &failure_counter::CounterConfig::default(),
        &shared::Routes::example().expect("routes"),
        request,
        chrono::Utc::now(),
    )
    .await
    .expect("count");

    // THEN it counts six for the route, seven in total, and opens the breaker (6 > 5)
    assert_eq!((failures.count, failures.total_count, failures.breaker_open), (6, 7, true));
    assert_eq!(failures.recent_failed_executions.len(), 6);
}

/// Runs one step of restart-and-verify, as the state machine would, against the emulator.
async fn remediation_step(config: &aws_config::SdkConfig, input: Value) -> Result<Value, lambda_runtime::Diagnostic> {
    let emulator = Emulator::prepare(config).await.expect("emulator");
    local_invoke::invoke(local_invoke::Function::RestartAndVerify, input, config, &emulator).await
}

/// The check request for the report `previous`, `seconds` after the restart.
fn check_of(mut request: Value, previous: &Value, seconds: i64) -> Value {
    let sent: chrono::DateTime<chrono::Utc> = previous["sentAt"].as_str().expect("sentAt").parse().expect("time");
    request["step"] = Value::from("check");
    request["now"] = Value::from((sent + chrono::Duration::seconds(seconds)).to_rfc3339());
    request["remediation"] = previous.clone();
    request
}

/// Puts `name` into moto's CloudWatch in `state`, evaluated over three one-minute periods.
async fn alarm_in(config: &aws_config::SdkConfig, name: &str, state: aws_sdk_cloudwatch::types::StateValue) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("CWAgent")
        .metric_name("procstat_lookup_pid_count")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(3)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .expect("put alarm");
    cloudwatch.set_alarm_state().alarm_name(name).state_value(state).state_reason("test").send().await.expect("state");
}

async fn commands(config: &aws_config::SdkConfig) -> Vec<aws_sdk_ssm::types::Command> {
    aws_sdk_ssm::Client::new(config).list_commands().send().await.expect("list commands").commands().to_vec()
}

#[tokio::test]
async fn a_restart_is_sent_once_and_verified_by_the_alarm_returning_to_ok() {
    // GIVEN the emulator, and the alarm still in ALARM
    let moto = MotoServer::start();
    let (config, _emulator) = emulator(&moto).await;
    alarm_in(&config, "web-nginx-down", aws_sdk_cloudwatch::types::StateValue::Alarm).await;
    // WHEN the restart step runs, and Step Functions retries it
    let request = event("restart-and-verify/restart-request.json");
    let sent = remediation_step(&config, request.clone()).await.expect("restart");
    let retried = remediation_step(&config, request.clone()).await.expect("retried restart");
    // THEN one command went out, the product's document with the unit from the rules, and the retry resumed it
    let sent_commands = commands(&config).await;
    assert_eq!(sent_commands.len(), 1, "a retry must not restart the service again");
    let command = &sent_commands[0];
    assert_eq!(command.document_name(), Some(restart_and_verify::LOCAL_DOCUMENT));
    assert_eq!(command.instance_ids().len(), 2);
    let unit = command.parameters().and_then(|p| p.get(restart_and_verify::UNIT_PARAMETER)).expect("unit");
    assert_eq!(unit, &["nginx"]);
    assert_eq!((retried["resumed"].as_bool(), retried["commandId"].as_str()), (Some(true), sent["commandId"].as_str()));
    // AND while the alarm fires, the check waits (moto answers every invocation with Success)
    let waiting = remediation_step(&config, check_of(request.clone(), &sent, 10)).await.expect("check");
    assert_eq!(waiting["stage"], "awaitingAlarm", "{waiting}");
    assert_eq!(waiting["instances"].as_array().map(Vec::len), Some(2));
    // AND once the alarm is OK the restart is verified
    alarm_in(&config, "web-nginx-down", aws_sdk_cloudwatch::types::StateValue::Ok).await;
    let verified = remediation_step(&config, check_of(request, &waiting, 40)).await.expect("check");
    assert_eq!((verified["stage"].as_str(), verified["verified"].as_bool()), (Some("recovered"), Some(true)));
    assert_eq!(commands(&config).await.len(), 1);
}

#[tokio::test]
async fn a_throttled_get_command_invocation_after_a_successful_send_never_produces_a_second_command() {
    // GIVEN the restart was sent, and SSM then throttles GetCommandInvocation
    let moto = MotoServer::start();
    let (config, _emulator) = emulator(&moto).await;
    alarm_in(&config, "web-nginx-down", aws_sdk_cloudwatch::types::StateValue::Ok).await;
    let request = event("restart-and-verify/restart-request.json");
    let sent = remediation_step(&config, request.clone()).await.expect("restart");
    let fault =
        serde_json::json!({"target": "AmazonSSM.GetCommandInvocation", "code": "ThrottlingException", "times": 3});
    let armed = workspace_tests::http_client()
        .post(format!("{}/_first_response/faults", moto.endpoint))
        .json(&fault)
        .send()
        .await
        .expect("arm the fault");
    assert!(armed.status().is_success());
    // WHEN the check fails with TransientError and Step Functions retries the check
    let check = check_of(request.clone(), &sent, 10);
    let throttled = remediation_step(&config, check.clone()).await.expect_err("throttled");
    assert_eq!(throttled.error_type, "TransientError", "{}", throttled.error_message);
    let retried = remediation_step(&config, check).await.expect("retried check");
    // THEN the retry reads the same command, verifies it, and SSM holds one command only
    assert_eq!(retried["stage"], "recovered", "{retried}");
    assert_eq!(commands(&config).await.len(), 1, "a throttled read must never send the restart again");
}

#[tokio::test]
async fn a_forged_task_input_puts_no_command_into_ssm() {
    let moto = MotoServer::start();
    let (config, _emulator) = emulator(&moto).await;
    for file in ["invalid-forged-remediation.json", "invalid-hostile-service.json", "invalid-unknown-route.json"] {
        let err = remediation_step(&config, event(&format!("restart-and-verify/{file}"))).await.expect_err(file);
        assert_eq!(err.error_type, "InvalidEvent", "{file}: {}", err.error_message);
    }
    assert!(commands(&config).await.is_empty(), "nothing reached SSM");
}

/// Launches `count` instances tagged `Role=app` in moto's EC2, through its query API.
async fn tagged_instances(moto: &MotoServer, count: usize) {
    let form = [
        ("Action", "RunInstances".to_owned()),
        ("Version", "2016-11-15".to_owned()),
        ("ImageId", "ami-12c6146b".to_owned()),
        ("InstanceType", "t3.micro".to_owned()),
        ("MinCount", count.to_string()),
        ("MaxCount", count.to_string()),
        ("TagSpecification.1.ResourceType", "instance".to_owned()),
        ("TagSpecification.1.Tag.1.Key", "Role".to_owned()),
        ("TagSpecification.1.Tag.1.Value", "app".to_owned()),
    ];
    let response = workspace_tests::http_client()
        .post(&moto.endpoint)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261120/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&form)
        .send()
        .await
        .expect("RunInstances");
    assert!(response.status().is_success(), "RunInstances: {}", response.text().await.unwrap_or_default());
}

#[tokio::test]
async fn tag_targets_are_verified_across_every_page_of_invocations() {
    // GIVEN 60 instances tagged Role=app (more than one page of 50 invocations) and the alarm OK
    let moto = MotoServer::start();
    let (config, _emulator) = emulator(&moto).await;
    tagged_instances(&moto, 60).await;
    alarm_in(&config, "app-fleet-5xx-high", aws_sdk_cloudwatch::types::StateValue::Ok).await;
    // WHEN the app-fleet route restarts and checks
    let request = event("restart-and-verify/restart-request-tag-targets.json");
    let sent = remediation_step(&config, request.clone()).await.expect("restart");
    let checked = remediation_step(&config, check_of(request, &sent, 20)).await.expect("check");
    // THEN every one of the 60 is verified, not just the first page
    assert_eq!(checked["stage"], "recovered", "{checked}");
    assert_eq!(checked["targetCount"], 60);
    assert_eq!(checked["instances"].as_array().map(Vec::len), Some(60));
}

#[tokio::test]
async fn notifications_and_recoveries_reach_the_topic() {
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let clients = alarm_router::Clients::new(&config);
    let router = router_config(&emulator);
    for file in ["metric-math-alarm.json", "database-alarm.json", "metric-ok.json", "batch-ignored-alarm.json"] {
        alarm_router::handle(&clients, &router, event(&format!("alarm-router/{file}"))).await.expect(file);
    }
    let messages = published(&moto, &emulator.topic_arn).await;
    let subjects: Vec<&str> = messages.iter().map(|(s, _)| s.as_str()).collect();
    // web-nginx groups its alarms: an OK of one that never fired in a group was never announced.
    assert_eq!(subjects, ["[ALARM] api-5xx-rate-high", "[INCIDENT] orders-db-cpu-high"]);
    assert!(messages[1].1.contains("Runbook: https://runbooks.example.com/database"), "{}", messages[1].1);
}

#[tokio::test]
async fn junk_reaches_no_emulated_service() {
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let clients = alarm_router::Clients::new(&config);
    let err =
        alarm_router::handle(&clients, &router_config(&emulator), event("alarm-router/invalid-not-an-alarm.json"))
            .await
            .expect_err("junk");
    assert_eq!(<&str>::from(&err), "InvalidEvent");
    let sfn = aws_sdk_sfn::Client::new(&config);
    let listed = sfn.list_executions().state_machine_arn(&emulator.state_machine_arn).send().await.expect("list");
    assert!(listed.executions().is_empty());
    assert!(published(&moto, &emulator.topic_arn).await.is_empty());
}

/// Calls a query-protocol action of the emulator (SNS, SQS) and returns the XML answer.
async fn query(moto: &MotoServer, service: &str, form: &[(&str, &str)]) -> String {
    let response = workspace_tests::http_client()
        .post(&moto.endpoint)
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20261120/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .form(form)
        .send()
        .await
        .expect("query call");
    let status = response.status();
    let text = response.text().await.expect("answer");
    assert!(status.is_success(), "{form:?}: {text}");
    text
}

#[tokio::test]
async fn alarm_then_insufficient_data_then_ok_announces_the_recovery_to_subscribers() {
    // GIVEN an SQS queue subscribed to the alert topic
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let created = query(&moto, "sqs", &[("Action", "CreateQueue"), ("QueueName", "pager")]).await;
    assert!(created.contains("pager"), "{created}");
    let queue_arn = "arn:aws:sqs:eu-west-1:123456789012:pager";
    let queue_url = format!("{}/123456789012/pager", moto.endpoint);
    query(
        &moto,
        "sns",
        &[("Action", "Subscribe"), ("TopicArn", &emulator.topic_arn), ("Protocol", "sqs"), ("Endpoint", queue_arn)],
    )
    .await;
    // WHEN an alarm goes ALARM, then INSUFFICIENT_DATA, then OK
    let clients = alarm_router::Clients::new(&config);
    let router = router_config(&emulator);
    let transition = |state: &str, previous: &str, at: &str| {
        let mut alarm = event("alarm-router/metric-math-alarm.json");
        alarm["detail"]["state"]["value"] = Value::from(state);
        alarm["detail"]["state"]["timestamp"] = Value::from(at);
        alarm["detail"]["previousState"]["value"] = Value::from(previous);
        alarm
    };
    let steps = [
        ("ALARM", "OK", "2026-11-20T04:02:11.309+0000"),
        ("INSUFFICIENT_DATA", "ALARM", "2026-11-20T04:09:11.309+0000"),
        ("OK", "INSUFFICIENT_DATA", "2026-11-20T04:15:11.309+0000"),
    ];
    let mut actions = Vec::new();
    for (state, previous, at) in steps {
        let decision = alarm_router::handle(&clients, &router, transition(state, previous, at)).await.expect(state);
        actions.push(decision.action);
    }
    // THEN the OK resolves, and the subscriber receives the page and then the recovery
    use alarm_router::DecisionAction::{Ignore, Notify, Resolve};
    assert_eq!(actions, [Notify, Ignore, Resolve]);
    let mut received = String::new();
    for _ in 0..5 {
        received += &query(
            &moto,
            "sqs",
            &[("Action", "ReceiveMessage"), ("QueueUrl", &queue_url), ("MaxNumberOfMessages", "10")],
        )
        .await;
        if received.contains("[RECOVERED] api-5xx-rate-high") {
            break;
        }
    }
    assert!(received.contains("[ALARM] api-5xx-rate-high"), "{received}");
    assert!(
        received.contains("[RECOVERED] api-5xx-rate-high"),
        "the recovery never reached the subscriber: {received}"
    );
}

#[tokio::test]
async fn an_ok_of_a_grouped_alarm_is_announced_once_by_its_group() {
    // GIVEN the canonical alarm (route web-nginx, grouped by route) started a remediation
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let clients = alarm_router::Clients::new(&config);
    let router = router_config(&emulator);
    let started =
        alarm_router::handle(&clients, &router, event("alarm-router/metric-alarm.json")).await.expect("alarm");
    assert!(matches!(started.outcome, alarm_router::Outcome::StartedExecution { .. }), "{:?}", started.outcome);
    // WHEN the alarm returns to OK, and the OK is delivered again
    let ok = alarm_router::handle(&clients, &router, event("alarm-router/metric-ok.json")).await.expect("ok");
    let again = alarm_router::handle(&clients, &router, event("alarm-router/metric-ok.json")).await.expect("ok again");
    // THEN its group (of one) resolves with one recovery notice; the execution's own is suppressed
    assert!(matches!(ok.outcome, alarm_router::Outcome::Resolved { .. }), "{:?}", ok.outcome);
    assert!(matches!(again.outcome, alarm_router::Outcome::Ignored { .. }), "{:?}", again.outcome);
    let messages = published(&moto, &emulator.topic_arn).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].0, "[RECOVERED] web-nginx-down");
}

/// A storefront host's alarm (route storefront: an incident, grouped by availability zone).
fn storefront(host: usize, state: &str, at: &str) -> Value {
    let mut alarm = event("alarm-router/storefront-alarm.json");
    let name = format!("storefront-checkout-5xx-host-{host:03}");
    alarm["detail"]["alarmName"] = Value::from(name.clone());
    alarm["resources"][0] = Value::from(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"));
    alarm["detail"]["state"]["value"] = Value::from(state);
    alarm["detail"]["state"]["timestamp"] = Value::from(at);
    alarm
}

#[tokio::test]
async fn a_storm_of_200_alarms_is_one_page_and_one_recovery() {
    // GIVEN a pager subscribed to the alert topic
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let queue = moto.subscribe_queue(&emulator.topic_arn, "pager").await;
    let clients = alarm_router::Clients::new(&config);
    let router = router_config(&emulator);
    // WHEN 200 storefront hosts in one zone alarm within two minutes, the first delivered twice at once
    let first = storefront(0, "ALARM", "2026-11-20T04:00:00.000+0000");
    let (a, b) = tokio::join!(
        alarm_router::handle(&clients, &router, first.clone()),
        alarm_router::handle(&clients, &router, first)
    );
    // The racer either sees the page sent, or finds it being sent and fails, to be retried by
    // Lambda (a lost page would be sent by that retry; this one is not sent twice).
    let mut actions = Vec::new();
    for delivered in [a, b] {
        let decision = match delivered {
            Ok(decision) => decision,
            Err(alarm_router::RouterError::TransientError(_)) => {
                alarm_router::handle(&clients, &router, storefront(0, "ALARM", "2026-11-20T04:00:00.000+0000"))
                    .await
                    .expect("the retry")
            }
            Err(other) => panic!("{other:?}"),
        };
        actions.push(decision.action);
    }
    for host in 1..200 {
        let at = format!("2026-11-20T04:{:02}:{:02}.000+0000", host * 120 / 200 / 60, host * 120 / 200 % 60);
        actions
            .push(alarm_router::handle(&clients, &router, storefront(host, "ALARM", &at)).await.expect("alarm").action);
    }
    // THEN one page went out, and every other alarm joined the group
    use alarm_router::DecisionAction::{Group, Ignore, Incident};
    assert_eq!(actions.iter().filter(|a| **a == Incident).count(), 1, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == Group).count(), 199, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == Ignore).count(), 1, "the racing redelivery: {actions:?}");
    let pages = moto.drain_queue(&queue).await;
    assert_eq!(pages.len(), 1, "{pages:#?}");
    assert_eq!(pages[0].attributes.get("kind").map(String::as_str), Some("incident"));
    // WHEN they return to OK, one by one
    let mut recoveries = 0;
    for host in 0..200 {
        let decision = alarm_router::handle(&clients, &router, storefront(host, "OK", "2026-11-20T04:30:00.000+0000"))
            .await
            .expect("ok");
        if matches!(decision.outcome, alarm_router::Outcome::Resolved { .. }) {
            recoveries += 1;
            assert_eq!(host, 199, "only the last OK resolves the group");
        }
    }
    // THEN one recovery notice, for the whole group
    assert_eq!(recoveries, 1);
    let after = moto.drain_queue(&queue).await;
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0].attributes.get("kind").map(String::as_str), Some("recovery"));
    assert!(after[0].message.contains("all 200 alarm(s) of route storefront are back to OK"), "{}", after[0].message);
}

#[tokio::test]
async fn of_eight_alarms_of_one_group_delivered_at_once_exactly_one_opens_it() {
    // GIVEN the state table in moto, whose server answers requests on several threads
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let queue = moto.subscribe_queue(&emulator.topic_arn, "pager").await;
    let clients = alarm_router::Clients::new(&config);
    let router = router_config(&emulator);
    let at = "2026-11-20T04:00:00.000+0000";
    let handle = |host| alarm_router::handle(&clients, &router, storefront(host, "ALARM", at));
    // WHEN eight storefront hosts of one zone alarm in the same instant
    let (a, b, c, d, e, f, g, h) =
        tokio::join!(handle(0), handle(1), handle(2), handle(3), handle(4), handle(5), handle(6), handle(7));
    let actions: Vec<_> =
        [a, b, c, d, e, f, g, h].into_iter().map(|decision| decision.expect("alarm").action).collect();
    // THEN one of them opened the group and paged; the other seven joined it (the conditional
    // write is atomic in DynamoDB, and must stay so in the emulator the tests trust)
    use alarm_router::DecisionAction::{Group, Incident};
    assert_eq!(actions.iter().filter(|a| **a == Incident).count(), 1, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == Group).count(), 7, "{actions:?}");
    assert_eq!(moto.drain_queue(&queue).await.len(), 1);
}

#[tokio::test]
async fn a_flapping_alarm_stops_restarting_pages_once_and_is_steady_again_after_a_quiet_spell() {
    // GIVEN a pager on the topic
    let moto = MotoServer::start();
    let (config, emulator) = emulator(&moto).await;
    let queue = moto.subscribe_queue(&emulator.topic_arn, "pager").await;
    let clients = alarm_router::Clients::new(&config);
    let router = router_config(&emulator);
    let change = |state: &str, previous: &str, at: String| {
        let mut alarm = event("alarm-router/metric-alarm.json");
        alarm["detail"]["state"]["value"] = Value::from(state);
        alarm["detail"]["previousState"]["value"] = Value::from(previous);
        alarm["detail"]["state"]["timestamp"] = Value::from(at);
        alarm
    };
    // WHEN nginx's alarm flips every five minutes for an hour (12 changes; web-nginx remediates)
    let mut restarts = Vec::new();
    let mut flapping = Vec::new();
    for n in 0..12u32 {
        let (state, previous) = if n % 2 == 0 { ("ALARM", "OK") } else { ("OK", "ALARM") };
        let at = format!("2026-11-20T04:{:02}:00.000+0000", n * 5);
        let decision = alarm_router::handle(&clients, &router, change(state, previous, at.clone())).await.expect(&at);
        if matches!(decision.outcome, alarm_router::Outcome::StartedExecution { duplicate: false, .. }) {
            restarts.push(n);
        }
        if decision.action == alarm_router::DecisionAction::Flapping {
            flapping.push(n);
        }
    }
    // THEN it is restarted for the first three ALARMs only; the seventh change makes it flapping
    assert_eq!(restarts, [0, 2, 4], "no restart once it flaps");
    assert_eq!(flapping, [6, 7, 8, 9, 10, 11]);
    let messages = moto.drain_queue(&queue).await;
    let flaps: Vec<&workspace_tests::Delivered> =
        messages.iter().filter(|m| m.subject.starts_with("[FLAPPING]")).collect();
    assert_eq!(flaps.len(), 1, "paged once: {messages:#?}");
    assert!(flaps[0].message.contains("changed state 7 times within 60 minutes"), "{}", flaps[0].message);
    assert_eq!(flaps[0].attributes.get("kind").map(String::as_str), Some("escalation"));
    // WHEN it has been quiet for 45 minutes and alarms again
    let again = alarm_router::handle(&clients, &router, change("ALARM", "OK", "2026-11-20T05:40:00.000+0000".into()))
        .await
        .expect("after the quiet spell");
    // THEN it is steady again, and remediated
    assert!(matches!(again.outcome, alarm_router::Outcome::StartedExecution { .. }), "{:?}", again.outcome);
}
