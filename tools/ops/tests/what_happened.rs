//! `first-response what-happened` against a moto server, after the router handled an alarm's
//! transitions: each one listed with its decision, a redelivery not overwriting the first, and the
//! execution it started with its status.

use std::process::{Command, Output};

use local_invoke::{Emulator, emulator_config};
use serde_json::Value;
use workspace_tests::{MotoServer, event};

fn first_response(moto: &MotoServer, table: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_first-response"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("STATE_TABLE", table)
        .output()
        .expect("the command runs")
}

#[tokio::test]
async fn what_happened_lists_each_transition_with_its_decision_and_execution() {
    // GIVEN the product's resources in moto and the router with the sample rules
    let moto = MotoServer::start();
    let config = emulator_config(&moto.endpoint).await;
    let emulator = Emulator::prepare(&config).await.expect("emulator");
    let clients = alarm_router::Clients::new(&config);
    let router = alarm_router::RouterConfig {
        state_machine_arn: emulator.state_machine_arn.clone(),
        topic_arn: emulator.topic_arn.clone(),
        response_plan_arn: None,
        routes: shared::Routes::example().expect("routes"),
        state_table: Some(emulator.state_table.clone()),
    };
    let table = emulator.state_table.as_str();
    // WHEN the web host's alarm fires (delivered twice) and clears
    let alarm = event("alarm-router/metric-alarm.json");
    let first = alarm_router::handle(&clients, &router, alarm.clone()).await.expect("alarm");
    alarm_router::handle(&clients, &router, alarm).await.expect("redelivery");
    alarm_router::handle(&clients, &router, event("alarm-router/metric-ok.json")).await.expect("ok");
    // THEN what-happened lists two transitions: the ALARM as first decided, with its execution
    let output = first_response(&moto, table, &["what-happened", "web-nginx-down", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!((lines[0]["state"].as_str(), lines[0]["action"].as_str()), (Some("ALARM"), Some("remediate")));
    assert_eq!(lines[0]["outcome"]["duplicate"], false, "the redelivery did not overwrite the first decision");
    let started = first.outcome.execution_arn().expect("an execution");
    assert_eq!(lines[0]["execution"]["executionArn"], started);
    assert_eq!(lines[0]["execution"]["status"], "RUNNING", "nothing ran it: moto keeps it running");
    assert_eq!((lines[1]["state"].as_str(), lines[1]["route"].as_str()), (Some("OK"), Some("web-nginx")));
    // AND as text, for a person
    let text = first_response(&moto, table, &["what-happened", "web-nginx-down"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("2 transition(s) recorded"), "{text}");
    assert!(text.contains("Remediate: execution started"), "{text}");
    assert!(text.contains("RUNNING"), "{text}");
    // AND an alarm with no decisions is said to have none, with a failing exit
    let unknown = first_response(&moto, table, &["what-happened", "never-fired"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no decisions recorded for never-fired"));
}
