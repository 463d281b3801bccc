//! Local invocation: the deployed handlers, run in-process against a local AWS emulator.
//!
//! `make invoke` and the end-to-end tests use this to drive the real handler code and real SDK
//! clients, pointed at the emulator (moto server) instead of AWS. Credentials are always fixed test
//! values, so a local run can never act on a real account.

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

/// The functions that can be invoked locally, by their kebab-case (binary) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    AlarmRouter,
    FailureCounter,
    RestartAndVerify,
}

impl Function {
    pub const ALL: [Function; 3] = [Self::AlarmRouter, Self::FailureCounter, Self::RestartAndVerify];

    pub fn name(self) -> &'static str {
        match self {
            Self::AlarmRouter => "alarm-router",
            Self::FailureCounter => "failure-counter",
            Self::RestartAndVerify => "restart-and-verify",
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
        ("FailureCounterFunctionArn".into(), function("failure-counter")),
        ("RestartAndVerifyFunctionArn".into(), function("restart-and-verify")),
        ("AlertTopicArn".into(), topic_arn.to_owned()),
        ("ResponsePlanArn".into(), "none".into()),
    ]
}

/// The emulator resources the handlers work against.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub topic_arn: String,
    pub state_machine_arn: String,
}

impl Emulator {
    /// Creates (or finds) the alert topic and the first-response state machine in the emulator.
    pub async fn prepare(config: &SdkConfig) -> Result<Self, String> {
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let sns = aws_sdk_sns::Client::new(config);
        let topic = sns.create_topic().name(TOPIC_NAME).send().await.map_err(|e| emulator_error("CreateTopic", &e))?;
        let topic_arn = topic.topic_arn().unwrap_or_default().to_owned();

        let sfn = aws_sdk_sfn::Client::new(config);
        let machines = sfn.list_state_machines().send().await.map_err(|e| emulator_error("ListStateMachines", &e))?;
        if let Some(found) = machines.state_machines().iter().find(|m| m.name() == STATE_MACHINE_NAME) {
            return Ok(Self { topic_arn, state_machine_arn: found.state_machine_arn().to_owned() });
        }
        let path = repo_root().join("statemachines/first-response.asl.json");
        let mut definition = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (name, value) in local_substitutions(&region, &topic_arn) {
            definition = definition.replace(&format!("${{{name}}}"), &value);
        }
        let created = sfn
            .create_state_machine()
            .name(STATE_MACHINE_NAME)
            .definition(definition)
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/first-response-local"))
            .send()
            .await
            .map_err(|e| emulator_error("CreateStateMachine", &e))?;
        Ok(Self { topic_arn, state_machine_arn: created.state_machine_arn().to_owned() })
    }
}

fn emulator_error(operation: &str, err: &(dyn std::error::Error + 'static)) -> String {
    format!(
        "{operation} against the local emulator failed (is it running? `make emulator` starts it): {}",
        shared::aws::describe(err)
    )
}

/// Runs one function's handler on `payload`, as Lambda would, against the emulator.
pub async fn invoke(
    function: Function,
    payload: Value,
    config: &SdkConfig,
    emulator: &Emulator,
) -> Result<Value, Diagnostic> {
    let json = |value: Result<Value, serde_json::Error>| {
        value.map_err(|e| Diagnostic { error_type: "ConfigError".into(), error_message: e.to_string() })
    };
    match function {
        Function::AlarmRouter => {
            let routes = shared::Routes::load(shared::optional_env("ROUTES_FILE").as_deref())
                .map_err(|e| Diagnostic { error_type: "ConfigError".into(), error_message: e.to_string() })?;
            let router = alarm_router::RouterConfig {
                state_machine_arn: emulator.state_machine_arn.clone(),
                topic_arn: emulator.topic_arn.clone(),
                response_plan_arn: shared::optional_env("RESPONSE_PLAN_ARN"),
                routes,
            };
            let decision = alarm_router::handle(&alarm_router::Clients::new(config), &router, payload).await?;
            json(serde_json::to_value(decision))
        }
        Function::FailureCounter => {
            let counter = failure_counter::CounterConfig::from_env()?;
            let sfn = aws_sdk_sfn::Client::new(config);
            let failures = failure_counter::handle(&sfn, &counter, payload, chrono::Utc::now()).await?;
            json(serde_json::to_value(failures))
        }
        Function::RestartAndVerify => {
            let ssm = aws_sdk_ssm::Client::new(config);
            let report =
                restart_and_verify::handle(&ssm, &restart_and_verify::Polling::default(), payload, None).await?;
            json(serde_json::to_value(report))
        }
    }
}
