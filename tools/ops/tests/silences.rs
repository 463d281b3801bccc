//! The operator's `first-response silence` command against a moto server, and what the router
//! then does: a silenced alarm pages no one and starts nothing; the recovery of an alarm paged
//! before the silence still arrives.

use std::process::Command;

use local_invoke::{Emulator, emulator_config};
use serde_json::Value;
use workspace_tests::{MotoServer, event};

/// Runs `first-response ARGS` against the emulator; its stdout lines as JSON, or its failure.
fn first_response(moto: &MotoServer, table: &str, args: &[&str]) -> Result<Vec<Value>, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_first-response"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("STATE_TABLE", table)
        .env("USER", "alice")
        .output()
        .expect("the command runs");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect())
}

#[tokio::test]
async fn silences_are_added_listed_and_expired_and_hold_for_alarms_but_never_for_recoveries() {
    // GIVEN the product's resources in moto, a pager on the topic, and the router
    let moto = MotoServer::start();
    let config = emulator_config(&moto.endpoint).await;
    let emulator = Emulator::prepare(&config).await.expect("emulator");
    let pager = moto.subscribe_queue(&emulator.topic_arn, "pager").await;
    let clients = alarm_router::Clients::new(&config);
    let router = alarm_router::RouterConfig {
        state_machine_arn: emulator.state_machine_arn.clone(),
        topic_arn: emulator.topic_arn.clone(),
        response_plan_arn: None,
        routes: shared::Routes::example().expect("routes"),
        state_table: Some(emulator.state_table.clone()),
    };
    let table = emulator.state_table.as_str();

    // AND the database alarm paged ten minutes ago, before anything was silenced
    let stamp = |at: chrono::DateTime<chrono::Utc>| Value::from(at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
    let mut database = event("alarm-router/database-alarm.json");
    database["detail"]["state"]["timestamp"] = stamp(chrono::Utc::now() - chrono::Duration::minutes(10));
    alarm_router::handle(&clients, &router, database.clone()).await.expect("database alarm");
    assert_eq!(moto.drain_queue(&pager).await.len(), 1, "the incident paged");

    // WHEN an operator silences the api alarms and the database for a day
    let at = ["--duration", "1d", "--reason", "patching tonight"];
    let api = first_response(&moto, table, &[&["silence", "add", "--alarm-prefix", "api-"][..], &at[..]].concat())
        .expect("add");
    first_response(&moto, table, &[&["silence", "add", "--namespace", "AWS/RDS"][..], &at[..]].concat()).expect("add");
    let listed = first_response(&moto, table, &["silence", "list"]).expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!((api[0]["author"].as_str(), api[0]["reason"].as_str()), (Some("alice"), Some("patching tonight")));
    // and a silence of everything is refused, naming why
    let refused = first_response(&moto, table, &[&["silence", "add"][..], &at[..]].concat()).expect_err("everything");
    assert!(refused.contains("every alarm"), "{refused}");

    // THEN an api alarm during the silence pages no one
    let mut alarm = event("alarm-router/metric-math-alarm.json");
    alarm["detail"]["state"]["timestamp"] = stamp(chrono::Utc::now());
    let decision = alarm_router::handle(&clients, &router, alarm.clone()).await.expect("api");
    assert_eq!(decision.action, alarm_router::DecisionAction::Silence, "{:?}", decision.outcome);
    let mut ok = alarm;
    ok["detail"]["state"]["value"] = Value::from("OK");
    alarm_router::handle(&clients, &router, ok).await.expect("api ok");
    assert!(moto.drain_queue(&pager).await.is_empty(), "neither the silenced ALARM nor its OK reached anyone");

    // AND the database's recovery, paged before the silence, still gets through
    let mut recovered = database;
    recovered["detail"]["state"]["value"] = Value::from("OK");
    recovered["detail"]["previousState"]["value"] = Value::from("ALARM");
    recovered["detail"]["state"]["timestamp"] = stamp(chrono::Utc::now());
    alarm_router::handle(&clients, &router, recovered).await.expect("database ok");
    let delivered = moto.drain_queue(&pager).await;
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert_eq!(delivered[0].attributes.get("kind").map(String::as_str), Some("recovery"));

    // WHEN the api silence is expired
    let id = api[0]["id"].as_str().expect("id");
    first_response(&moto, table, &["silence", "expire", id]).expect("expire");
    let active = first_response(&moto, table, &["silence", "list"]).expect("list");
    assert_eq!(active.len(), 1, "only the database silence is still active: {active:?}");
    assert!(active.iter().all(|s| s["id"] != id), "{active:?}");
    let all = first_response(&moto, table, &["silence", "list", "--all"]).expect("list");
    assert_eq!(all.len(), 2, "an expired silence stays listed: {all:?}");
    // and an unknown one is refused
    assert!(
        first_response(&moto, table, &["silence", "expire", "s-nope"]).expect_err("unknown").contains("no silence")
    );
}
