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
        routes: shared::Routes::deployed().expect("deployed routes"),
    }
}

/// Messages moto recorded for the alert topic, as (subject, message).
async fn published(moto: &MotoServer, topic_arn: &str) -> Vec<(String, String)> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint))
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
    let failures =
        failure_counter::handle(
            &sfn,
            &failure_counter::CounterConfig::default(),
            &shared::Routes::deployed().expect("routes"),
            request,
            chrono::Utc::now(),
        )
            .await
            .expect("count");

    // THEN it counts six for the route, seven in total, and opens the breaker (6 > 5)
    assert_eq!((failures.count, failures.total_count, failures.breaker_open), (6, 7, true));
    assert_eq!(failures.recent_failed_executions.len(), 6);
}

#[tokio::test]
async fn restart_and_verify_sends_the_restart_and_reads_its_result() {
    let moto = MotoServer::start();
    let (config, _emulator) = emulator(&moto).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let report = restart_and_verify::handle(
        &ssm,
        &restart_and_verify::Polling::default(),
        event("restart-and-verify/restart-request.json"),
        None,
    )
    .await
    .expect("report");
    // moto answers every invocation with Success and exit code 0
    assert!(report.verified);
    assert_eq!(report.instances.len(), 2);
    let commands = ssm.list_commands().command_id(&report.command_id).send().await.expect("list commands");
    let command = commands.commands().first().expect("the command moto recorded");
    assert_eq!(command.document_name(), Some(restart_and_verify::DOCUMENT));
    assert_eq!(command.instance_ids().len(), 2);
    let script = command.parameters().and_then(|p| p.get("commands")).expect("commands parameter").join("\n");
    assert!(script.contains("service='nginx'"), "{script}");
    assert!(!script.contains("web-nginx-down"), "nothing from the alarm reaches the shell");
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
    assert_eq!(subjects, ["[ALARM] api-5xx-rate-high", "[INCIDENT] orders-db-cpu-high", "[RECOVERED] web-nginx-down"]);
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
