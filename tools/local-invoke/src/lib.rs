//! Local invocation: the deployed handlers, run in-process against a local AWS emulator.
//!
//! `make invoke` and the end-to-end tests use this to drive the real handler code and real SDK
//! clients, pointed at the emulator (moto server) instead of AWS, and the war room at the Slack
//! emulator (`emulate`) instead of Slack. Credentials are always fixed test values, so a local run
//! can never act on a real account or workspace.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sfn::config::Credentials;
use lambda_runtime::Diagnostic;
use serde_json::Value;

/// Where `make emulator` serves moto.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5055";
/// The region local runs use unless `AWS_REGION` says otherwise.
pub const DEFAULT_REGION: &str = "eu-west-1";
/// moto's account.
pub const ACCOUNT: &str = "123456789012";
/// Names of the resources a local run works with.
pub const STATE_MACHINE_NAME: &str = "first-response";
pub const TOPIC_NAME: &str = "first-response-alerts";
/// The safety nets' topic in the emulator (the stack's `SafetyNetTopic`).
pub const SAFETY_NET_TOPIC_NAME: &str = "first-response-safety-net";
/// Where `make slack-emulator` serves the Slack Web API.
pub const DEFAULT_SLACK_API_URL: &str = "http://127.0.0.1:4003/api/";
/// The bot token the Slack emulator's seed (`tools/slack-emulator.yaml`) accepts.
pub const LOCAL_SLACK_TOKEN: &str = "xoxb-first-response-local";
/// The webhook secret the sample PagerDuty webhooks are signed with.
pub const WEBHOOK_SECRET_FILE: &str = "events/slack-channel-creator/webhook-secret.txt";

/// The functions that can be invoked locally, by their kebab-case (binary) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    AlarmRouter,
    FailureCounter,
    RestartAndVerify,
    SlackChannelCreator,
}

impl Function {
    pub const ALL: [Function; 4] =
        [Self::AlarmRouter, Self::FailureCounter, Self::RestartAndVerify, Self::SlackChannelCreator];

    pub fn name(self) -> &'static str {
        match self {
            Self::AlarmRouter => "alarm-router",
            Self::FailureCounter => "failure-counter",
            Self::RestartAndVerify => "restart-and-verify",
            Self::SlackChannelCreator => "slack-channel-creator",
        }
    }
}

impl FromStr for Function {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
            format!("unknown function {name:?}; expected one of {}", known.join(", "))
        })
    }
}

/// SDK configuration for the emulator at `endpoint`, with fixed test credentials.
pub async fn emulator_config(endpoint: &str) -> SdkConfig {
    let region = shared::optional_env("AWS_REGION").unwrap_or_else(|| DEFAULT_REGION.to_owned());
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(shared::aws::https_client())
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "local-emulator"))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(10)).build(),
        )
        .load()
        .await
}

/// The repository root (the workspace this crate belongs to).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What `DefinitionSubstitutions` fills in locally: ARNs in the emulator's account.
pub fn local_substitutions(region: &str, topic_arn: &str) -> Vec<(String, String)> {
    let function = |name: &str| format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}");
    vec![
        ("AlarmRouterFunctionArn".into(), function("alarm-router")),
        ("FailureCounterFunctionArn".into(), function("failure-counter")),
        ("RestartAndVerifyFunctionArn".into(), function("restart-and-verify")),
        ("SlackChannelCreatorFunctionArn".into(), function("slack-channel-creator")),
        ("AlertTopicArn".into(), topic_arn.to_owned()),
        ("ResponsePlanArn".into(), "none".into()),
    ]
}

/// The emulator resources the handlers work against.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub topic_arn: String,
    /// Where the safety nets tell people that a page could not reach them.
    pub safety_net_topic_arn: String,
    pub state_machine_arn: String,
    /// The state table (incident groups), as `STATE_TABLE` names it in the stack.
    pub state_table: String,
    /// The Slack Web API the war room talks to: `SLACK_API_URL`, else `make slack-emulator`'s.
    pub slack_api_url: String,
    /// The rules file the functions route with, when not [`local_routes`]'s (`replay history
    /// --routes`, and each side of `--compare`).
    pub routes_file: Option<String>,
}

/// The Slack API local runs use unless told otherwise: never slack.com.
pub fn local_slack_api_url() -> String {
    shared::optional_env("SLACK_API_URL").unwrap_or_else(|| DEFAULT_SLACK_API_URL.to_owned())
}

impl Emulator {
    /// Creates (or finds) the alert and safety-net topics, the state table and the first-response
    /// state machine in the emulator.
    pub async fn prepare(config: &SdkConfig) -> Result<Self, String> {
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let sns = aws_sdk_sns::Client::new(config);
        let topic = |name: &'static str| {
            let sns = sns.clone();
            async move {
                let created =
                    sns.create_topic().name(name).send().await.map_err(|e| emulator_error("CreateTopic", &e))?;
                Ok::<_, String>(created.topic_arn().unwrap_or_default().to_owned())
            }
        };
        let topic_arn = topic(TOPIC_NAME).await?;
        let safety_net_topic_arn = topic(SAFETY_NET_TOPIC_NAME).await?;
        let state_table = state_table(config).await?;

        let sfn = aws_sdk_sfn::Client::new(config);
        let machines = sfn.list_state_machines().send().await.map_err(|e| emulator_error("ListStateMachines", &e))?;
        let found = machines.state_machines().iter().find(|m| m.name() == STATE_MACHINE_NAME);
        let state_machine_arn = match found {
            Some(found) => found.state_machine_arn().to_owned(),
            None => {
                let path = repo_root().join("statemachines/first-response.asl.json");
                let mut definition = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                for (name, value) in local_substitutions(&region, &topic_arn) {
                    definition = definition.replace(&format!("${{{name}}}"), &value);
                }
                restart_document(config).await?;
                let created = sfn
                    .create_state_machine()
                    .name(STATE_MACHINE_NAME)
                    .definition(definition)
                    .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/first-response-local"))
                    .send()
                    .await
                    .map_err(|e| emulator_error("CreateStateMachine", &e))?;
                created.state_machine_arn().to_owned()
            }
        };
        Ok(Self {
            topic_arn,
            safety_net_topic_arn,
            state_machine_arn,
            state_table,
            slack_api_url: local_slack_api_url(),
            routes_file: None,
        })
    }
}

/// The name of the state table in the emulator.
pub const STATE_TABLE_NAME: &str = "first-response-state";

/// Creates the state table in the emulator, keyed as `infra/template.yaml` declares it, unless
/// it exists.
async fn state_table(config: &SdkConfig) -> Result<String, String> {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    if dynamodb.describe_table().table_name(STATE_TABLE_NAME).send().await.is_ok() {
        return Ok(STATE_TABLE_NAME.to_owned());
    }
    let built = |e: aws_sdk_dynamodb::error::BuildError| format!("the state table's definition: {e}");
    dynamodb
        .create_table()
        .table_name(STATE_TABLE_NAME)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(built)?,
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().map_err(built)?)
        .send()
        .await
        .map_err(|e| emulator_error("CreateTable", &e))?;
    Ok(STATE_TABLE_NAME.to_owned())
}

/// Creates the product's SSM document in the emulator, with the content `infra/template.yaml`
/// deploys, under [`restart_and_verify::LOCAL_DOCUMENT`].
async fn restart_document(config: &SdkConfig) -> Result<(), String> {
    let path = repo_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let content = &template["Resources"]["RestartServiceDocument"]["Properties"]["Content"];
    if content.is_null() {
        return Err(format!("{} declares no RestartServiceDocument", path.display()));
    }
    let content = serde_json::to_string(content).map_err(|e| format!("the document's content: {e}"))?;
    let ssm = aws_sdk_ssm::Client::new(config);
    let created = ssm
        .create_document()
        .name(restart_and_verify::LOCAL_DOCUMENT)
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
        .content(content)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if shared::aws::error_code(&e) == Some("DocumentAlreadyExists") => Ok(()),
        Err(e) => Err(emulator_error("CreateDocument", &e)),
    }
}

fn emulator_error(operation: &str, err: &(dyn std::error::Error + 'static)) -> String {
    format!(
        "{operation} against the local emulator failed (is it running? `make emulator` starts it): {}",
        shared::aws::describe(err)
    )
}

/// The local run's secrets: `SLACK_BOT_TOKEN` and `WEBHOOK_SECRETS` stand in for the SSM
/// parameters the deployed function reads; by default, the Slack emulator's token and the secret
/// the sample webhooks are signed with.
pub fn local_secrets() -> Result<slack_channel_creator::secrets::Secrets, String> {
    let webhook_secrets = match shared::optional_env("WEBHOOK_SECRETS") {
        Some(list) => list,
        None => {
            let path = repo_root().join(WEBHOOK_SECRET_FILE);
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    Ok(slack_channel_creator::secrets::Secrets {
        slack_token: shared::optional_env("SLACK_BOT_TOKEN").unwrap_or_else(|| LOCAL_SLACK_TOKEN.to_owned()),
        webhook_secrets: slack_channel_creator::secrets::parse_webhook_secrets(&webhook_secrets),
        pagerduty_token: None,
    })
}

/// The war room against the Slack API at `slack_api_url` (an emulator). Local runs never reach
/// Slack or PagerDuty: there is no PagerDuty API key, and the Slack URL is the emulator's.
pub fn local_war_room(slack_api_url: &str) -> Result<slack_channel_creator::WarRoom, Diagnostic> {
    let config_error = |message: String| Diagnostic { error_type: "ConfigError".into(), error_message: message };
    let mut config = slack_channel_creator::WarRoomConfig::from_env()?;
    config.slack_api_url = slack_api_url.to_owned();
    Ok(slack_channel_creator::WarRoom::new(config, local_secrets().map_err(config_error)?)?)
}

/// The rules every function routes with locally: the file `ROUTES_FILE` names (`make replay
/// ROUTES=infra/routes.yaml` tries the rules you deploy), else the sample rules of
/// `infra/routes.example.yaml` that the sample events are written for.
pub fn local_routes() -> Result<shared::Routes, Diagnostic> {
    let routes = match shared::optional_env("ROUTES_FILE") {
        Some(path) => shared::Routes::from_file(&path),
        None => shared::Routes::example(),
    };
    routes.map_err(|e| Diagnostic { error_type: "ConfigError".into(), error_message: e.to_string() })
}

/// Runs one function's handler on `payload`, as Lambda would, against the emulator. A PagerDuty
/// webhook is a recorded delivery: it is judged at the time its event occurred, so the samples
/// stay fresh; everything else runs at the wall clock.
pub async fn invoke(
    function: Function,
    payload: Value,
    config: &SdkConfig,
    emulator: &Emulator,
) -> Result<Value, Diagnostic> {
    let now = match function {
        Function::SlackChannelCreator => recorded_delivery_time(&payload),
        _ => None,
    };
    invoke_at(function, payload, config, emulator, now.unwrap_or_else(chrono::Utc::now)).await
}

/// When the PagerDuty event of a Function URL request occurred (`event.occurred_at` of its body,
/// decoded when base64), if the request is one.
pub fn recorded_delivery_time(request: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    use base64::Engine;
    let body = request.get("body")?.as_str()?;
    let raw = if request.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).ok()?
    } else {
        body.as_bytes().to_vec()
    };
    let body: Value = serde_json::from_slice(&raw).ok()?;
    body.get("event")?.get("occurred_at")?.as_str()?.parse().ok()
}

/// [`invoke`] at the time `now` on a replay's virtual clock: the failure counter's window ends
/// there, and a webhook's freshness is judged there (the deployed functions read the wall clock).
pub async fn invoke_at(
    function: Function,
    payload: Value,
    config: &SdkConfig,
    emulator: &Emulator,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, Diagnostic> {
    let json = |value: Result<Value, serde_json::Error>| {
        value.map_err(|e| Diagnostic { error_type: "ConfigError".into(), error_message: e.to_string() })
    };
    let routes = match &emulator.routes_file {
        Some(path) => shared::Routes::from_file(path)
            .map_err(|e| Diagnostic { error_type: "ConfigError".into(), error_message: e.to_string() })?,
        None => local_routes()?,
    };
    match function {
        Function::AlarmRouter => {
            let router = alarm_router::RouterConfig {
                state_machine_arn: emulator.state_machine_arn.clone(),
                topic_arn: emulator.topic_arn.clone(),
                response_plan_arn: shared::optional_env("RESPONSE_PLAN_ARN"),
                routes,
                state_table: Some(emulator.state_table.clone()),
            };
            Ok(alarm_router::dispatch(&alarm_router::Clients::new(config), &router, payload).await?)
        }
        Function::FailureCounter => {
            let counter = failure_counter::CounterConfig::from_env()?;
            let sfn = aws_sdk_sfn::Client::new(config);
            let failures = failure_counter::handle(&sfn, &counter, &routes, payload, now).await?;
            json(serde_json::to_value(failures))
        }
        Function::RestartAndVerify => {
            let clients = restart_and_verify::Clients::new(config);
            let restart = restart_and_verify::RestartConfig { document: restart_and_verify::LOCAL_DOCUMENT.to_owned() };
            let report = restart_and_verify::handle(&clients, &restart, &routes, payload).await?;
            json(serde_json::to_value(report))
        }
        Function::SlackChannelCreator => {
            let war_room = local_war_room(&emulator.slack_api_url)?.with_routes(routes);
            let reply = slack_channel_creator::handle_at(&war_room, payload, None, now).await?;
            json(serde_json::to_value(reply))
        }
    }
}
