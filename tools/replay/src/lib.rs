//! Offline replay of the product: the exact ASL production runs, executed locally by the `asl`
//! crate, with its Lambda tasks running the project's own handlers in-process and its service
//! integrations (SNS, Incident Manager) going through the Rust SDK to the local emulator.

pub mod cloudwatch;
pub mod definition_file;
pub mod execution_history;
pub mod faults;
pub mod history;
pub mod report;
pub mod stack;
pub mod topic;

use std::fmt::Write as _;
use std::path::Path;

use asl::mocks::{Mocked, TestCase};
use asl::{Definition, ExecutionSettings, Executor, Outcome, StatesError, TaskCall, TaskRunner, TraceEvent};
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::StateValue;
use local_invoke::{Emulator, Function};
use serde_json::{Value, json};

pub use definition_file::DefinitionError;

/// The service integrations replay runs for real; other resources must be mocked.
pub const SNS_PUBLISH: &str = "arn:aws:states:::sns:publish";
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
pub const START_INCIDENT: &str = "arn:aws:states:::aws-sdk:ssmincidents:startIncident";

/// Reads a definition file and fills its `${Placeholders}` the way the SAM template does,
/// with the emulator's ARNs; a file that is not a state machine is refused as `NotAStateMachine`.
pub fn load_definition(path: &Path, region: &str, topic_arn: &str) -> Result<Definition, DefinitionError> {
    definition_file::load(path, &local_invoke::local_substitutions(region, topic_arn))
}

/// The function a Lambda ARN names, when it is one of the project's.
pub fn function_of(resource: &str) -> Option<Function> {
    let name = resource.strip_prefix("arn:aws:lambda:")?.split(':').nth(3)?;
    name.parse().ok()
}

/// Every Task state whose resource replay cannot run and the test case does not mock.
pub fn unsupported_tasks(definition: &Definition, mocks: Option<&TestCase>) -> Vec<String> {
    let mocked: Vec<&str> = mocks.map(|m| m.mocked_states().collect()).unwrap_or_default();
    let mut found = Vec::new();
    collect_unsupported(definition.as_value(), &mocked, &mut found);
    found
}

fn collect_unsupported(machine: &Value, mocked: &[&str], found: &mut Vec<String>) {
    for (name, state) in machine["States"].as_object().into_iter().flatten() {
        if let Some(resource) = state["Resource"].as_str() {
            let supported =
                function_of(resource).is_some() || [SNS_PUBLISH, LAMBDA_INVOKE, START_INCIDENT].contains(&resource);
            if !supported && !mocked.contains(&name.as_str()) {
                found.push(format!("{name:?} ({resource})"));
            }
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            collect_unsupported(branch, mocked, found);
        }
        if let Some(processor) = state.get("ItemProcessor").or_else(|| state.get("Iterator")) {
            collect_unsupported(processor, mocked, found);
        }
    }
}

/// Runs Task states the way AWS would: the project's handlers in-process, SNS and Incident
/// Manager through the SDK against the emulator.
pub struct ProductTasks {
    pub config: SdkConfig,
    pub emulator: Emulator,
    /// How the alarm behaves after the restart, since nothing evaluates metrics offline.
    pub alarm: SimulatedAlarm,
    /// In `replay history`: the alarms' own transitions, and the executions still running on the
    /// virtual clock.
    pub history: Option<history::Clock>,
    /// In `replay history --faults`: the emulator's fault clock, told the virtual time of every
    /// call the product makes.
    pub faults: Option<faults::FaultClock>,
    /// Replay's own calls to the emulator (simulating the alarm, reading and recording
    /// executions): signed with [`HARNESS_ACCESS_KEY`], so that no injected fault answers them.
    pub harness: SdkConfig,
    /// The state replay last gave each simulated alarm in the emulator, to skip calls that would
    /// change nothing.
    simulated: std::sync::Mutex<std::collections::HashMap<String, StateValue>>,
}

impl ProductTasks {
    pub fn new(config: SdkConfig, emulator: Emulator, alarm: SimulatedAlarm) -> Self {
        let harness = config
            .to_builder()
            .credentials_provider(aws_sdk_sfn::config::SharedCredentialsProvider::new(
                aws_sdk_sfn::config::Credentials::new(HARNESS_ACCESS_KEY, "testing", None, None, "replay-harness"),
            ))
            .build();
        Self { config, emulator, alarm, history: None, faults: None, harness, simulated: Default::default() }
    }

    fn simulated_state(&self, name: &str) -> Option<StateValue> {
        self.simulated.lock().ok()?.get(name).cloned()
    }
}

/// The access key of replay's own calls; the emulator's faults never answer them.
pub const HARNESS_ACCESS_KEY: &str = "replay-harness";

/// The alarm's state as the restart's checks see it in the emulator: ALARM until `recovers_after`
/// seconds (of the execution's clock) after the restart was sent, then OK; `None` keeps it in
/// ALARM, so the restart cannot be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatedAlarm {
    pub recovers_after: Option<u64>,
}

impl Default for SimulatedAlarm {
    fn default() -> Self {
        Self { recovers_after: Some(60) }
    }
}

impl TaskRunner for ProductTasks {
    async fn run(&self, call: &TaskCall) -> Result<Value, StatesError> {
        // The task's time on the execution's virtual clock.
        let now = call.context["State"]["EnteredTime"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        if let Some(faults) = &self.faults {
            faults.tell_scheduled().await;
        }
        if let Some(function) = function_of(&call.resource) {
            if function == Function::RestartAndVerify && call.input["step"] == "check" {
                self.simulate_alarm(&call.input).await?;
            }
            return self.invoke(function, call.input.clone(), now).await;
        }
        match call.resource.as_str() {
            LAMBDA_INVOKE => {
                let name = call.input["FunctionName"].as_str().unwrap_or_default();
                let function = function_of(name).or_else(|| name.parse().ok()).ok_or_else(|| {
                    StatesError::new("Lambda.ResourceNotFoundException", format!("no function {name}"))
                })?;
                let payload = self.invoke(function, call.input["Payload"].clone(), now).await?;
                Ok(json!({"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}))
            }
            SNS_PUBLISH => self.publish(&call.input).await,
            START_INCIDENT => self.start_incident(&call.input).await,
            other => Err(StatesError::runtime(format!("replay cannot run resource {other}; mock this state"))),
        }
    }
}

impl ProductTasks {
    /// Puts the alarm of a check request into the state [`SimulatedAlarm`] gives it at the check's time.
    async fn simulate_alarm(&self, input: &Value) -> Result<(), StatesError> {
        let time = |value: &Value| value.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let (Some(name), Some(now), Some(sent)) =
            (input["alarm"]["name"].as_str(), time(&input["now"]), time(&input["remediation"]["sentAt"]))
        else {
            return Ok(());
        };
        let elapsed = u64::try_from((now - sent).num_seconds()).unwrap_or_default();
        let told = self.history.as_ref().and_then(|h| h.alarm_state_at(name, now.with_timezone(&chrono::Utc)));
        let recovered = match told {
            Some(state) => state == shared::AlarmState::Ok,
            None => self.alarm.recovers_after.is_some_and(|after| elapsed >= after),
        };
        let state = if recovered { StateValue::Ok } else { StateValue::Alarm };
        let reason = match told {
            Some(_) => format!("replay: {} at this time in the replayed history", state.as_str()),
            None => format!("replay: simulated {} {elapsed}s after the restart", state.as_str()),
        };
        let metric = (input["alarm"]["namespace"].as_str(), input["alarm"]["metricName"].as_str());
        self.set_alarm(name, state, &reason, metric)
            .await
            .map_err(|e| StatesError::runtime(format!("replay could not simulate the alarm: {e}")))
    }

    /// Deletes these alarms from the emulator's CloudWatch (those replay put there).
    pub(crate) async fn delete_alarms(&self, names: &[String]) -> Result<(), String> {
        let present: Vec<String> = match self.simulated.lock() {
            Ok(mut simulated) => names.iter().filter(|name| simulated.remove(*name).is_some()).cloned().collect(),
            Err(_) => Vec::new(),
        };
        if present.is_empty() {
            return Ok(());
        }
        aws_sdk_cloudwatch::Client::new(&self.harness)
            .delete_alarms()
            .set_alarm_names(Some(present))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| shared::aws::describe(&e))
    }

    /// Puts alarm `name` into `state` in the emulator's CloudWatch (creating it, with `metric`'s
    /// namespace and name, when it is not there), unless replay put it there in that state already.
    pub(crate) async fn set_alarm(
        &self,
        name: &str,
        state: StateValue,
        reason: &str,
        metric: (Option<&str>, Option<&str>),
    ) -> Result<(), String> {
        let known = self.simulated_state(name);
        if known.as_ref() == Some(&state) {
            return Ok(()); // the emulator has it in this state already
        }
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&self.harness);
        let failed = |e: &(dyn std::error::Error + 'static)| shared::aws::describe(e);
        let exists = match known {
            Some(_) => true,
            None => {
                let found = cloudwatch.describe_alarms().alarm_names(name).send().await.map_err(|e| failed(&e))?;
                !found.metric_alarms().is_empty() || !found.composite_alarms().is_empty()
            }
        };
        if !exists {
            // Evaluated once a minute over three periods, as the sample alarms are.
            cloudwatch
                .put_metric_alarm()
                .alarm_name(name)
                .namespace(metric.0.unwrap_or("Replay"))
                .metric_name(metric.1.unwrap_or("Simulated"))
                .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
                .period(60)
                .evaluation_periods(3)
                .threshold(1.0)
                .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
                .send()
                .await
                .map_err(|e| failed(&e))?;
        }
        cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(state.clone())
            .state_reason(reason)
            .send()
            .await
            .map_err(|e| failed(&e))?;
        if let Ok(mut simulated) = self.simulated.lock() {
            simulated.insert(name.to_owned(), state);
        }
        Ok(())
    }

    async fn invoke(
        &self,
        function: Function,
        payload: Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Value, StatesError> {
        local_invoke::invoke_at(function, payload, &self.config, &self.emulator, now).await.map_err(|diagnostic| {
            // Lambda hands Step Functions the error name and the JSON error payload as the cause.
            let cause = json!({"errorType": diagnostic.error_type, "errorMessage": diagnostic.error_message});
            StatesError::new(diagnostic.error_type, cause.to_string())
        })
    }

    async fn publish(&self, input: &Value) -> Result<Value, StatesError> {
        let sns = aws_sdk_sns::Client::new(&self.config);
        let mut request = sns
            .publish()
            .set_topic_arn(input["TopicArn"].as_str().map(str::to_owned))
            .set_message(input["Message"].as_str().map(str::to_owned));
        if let Some(subject) = input["Subject"].as_str() {
            request = request.subject(subject);
        }
        for (name, attribute) in input["MessageAttributes"].as_object().into_iter().flatten() {
            let value = aws_sdk_sns::types::MessageAttributeValue::builder()
                .set_data_type(attribute["DataType"].as_str().map(str::to_owned))
                .set_string_value(attribute["StringValue"].as_str().map(str::to_owned))
                .build()
                .map_err(|e| StatesError::new("SNS.InvalidParameterException", e.to_string()))?;
            request = request.message_attributes(name, value);
        }
        let out = request.send().await.map_err(|e| service_error("SNS", &e))?;
        Ok(json!({"MessageId": out.message_id(), "SdkHttpMetadata": {"HttpStatusCode": 200}}))
    }

    async fn start_incident(&self, input: &Value) -> Result<Value, StatesError> {
        let client = aws_sdk_ssmincidents::Client::new(&self.config);
        let trigger = &input["TriggerDetails"];
        let timestamp = trigger["Timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| aws_smithy_types::DateTime::from_millis(t.timestamp_millis()))
            .ok_or_else(|| {
                StatesError::new("SsmIncidents.ValidationException", "TriggerDetails.Timestamp is not a timestamp")
            })?;
        let details = aws_sdk_ssmincidents::types::TriggerDetails::builder()
            .set_source(trigger["Source"].as_str().map(str::to_owned))
            .set_trigger_arn(trigger["TriggerArn"].as_str().map(str::to_owned))
            .timestamp(timestamp)
            .set_raw_data(trigger["RawData"].as_str().map(str::to_owned))
            .build()
            .map_err(|e| StatesError::new("SsmIncidents.ValidationException", e.to_string()))?;
        let out = client
            .start_incident()
            .set_response_plan_arn(input["ResponsePlanArn"].as_str().map(str::to_owned))
            .set_client_token(input["ClientToken"].as_str().map(str::to_owned))
            .set_title(input["Title"].as_str().map(str::to_owned))
            .set_impact(input["Impact"].as_i64().and_then(|i| i32::try_from(i).ok()))
            .trigger_details(details)
            .send()
            .await
            .map_err(|e| service_error("SsmIncidents", &e))?;
        Ok(json!({"IncidentRecordArn": out.incident_record_arn()}))
    }
}

/// How Step Functions names a service integration's error: `SNS.InvalidParameterException`, ...
fn service_error<E>(service: &str, err: &aws_sdk_sns::error::SdkError<E>) -> StatesError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = shared::aws::error_code(err).unwrap_or("SdkClientException");
    StatesError::new(format!("{service}.{code}"), shared::aws::describe(err))
}

/// The input Step Functions recorded for an execution the router started: what replay runs.
pub async fn recorded_input(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<Value, String> {
    let described = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| format!("DescribeExecution {execution_arn}: {}", shared::aws::describe(&e)))?;
    serde_json::from_str(described.input().unwrap_or("{}"))
        .map_err(|e| format!("the execution's input is not JSON: {e}"))
}

/// Settings for a local execution named `name` of the first-response state machine.
pub fn settings(state_machine_arn: &str, name: &str) -> ExecutionSettings {
    let seed = name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    ExecutionSettings {
        state_machine_arn: state_machine_arn.to_owned(),
        seed,
        ..ExecutionSettings::local("first-response", name)
    }
}

/// Runs `definition` on `input` with the product's tasks (and the mocks of `case`, if given), and
/// tells the emulator how the execution ended.
pub async fn execute(
    tasks: &ProductTasks,
    case: Option<&TestCase>,
    definition: &Definition,
    settings: &ExecutionSettings,
    input: Value,
    trace: &mut dyn FnMut(&TraceEvent),
) -> Outcome {
    let outcome = run_execution(tasks, case, definition, settings, input, trace).await;
    record_execution(tasks, &ended(settings, &outcome)).await;
    outcome
}

/// Runs `definition` on `input` with the product's tasks; the emulator is not told how it ended.
pub async fn run_execution(
    tasks: &ProductTasks,
    case: Option<&TestCase>,
    definition: &Definition,
    settings: &ExecutionSettings,
    input: Value,
    trace: &mut dyn FnMut(&TraceEvent),
) -> Outcome {
    match case {
        Some(case) => {
            let mocked = Mocked { case, inner: tasks };
            Executor::new(&mocked, settings).with_trace(trace).run(definition, input).await
        }
        None => Executor::new(tasks, settings).with_trace(trace).run(definition, input).await,
    }
}

/// What the emulator is told about an execution: its dates on the virtual clock and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRecord {
    pub execution_arn: String,
    pub start: chrono::DateTime<chrono::Utc>,
    pub stop: Option<chrono::DateTime<chrono::Utc>>,
    pub status: Option<&'static str>,
}

/// How the execution of `settings` ended: it started at the settings' start time, and stopped the
/// virtual time it took later.
pub fn ended(settings: &ExecutionSettings, outcome: &Outcome) -> ExecutionRecord {
    let took = chrono::Duration::from_std(outcome.virtual_duration).unwrap_or(chrono::Duration::MAX);
    ExecutionRecord {
        execution_arn: execution_arn_of(settings),
        start: settings.start_time,
        stop: settings.start_time.checked_add_signed(took),
        status: Some(match outcome.status {
            asl::Status::Succeeded => "SUCCEEDED",
            asl::Status::Failed => "FAILED",
            asl::Status::TimedOut => "TIMED_OUT",
        }),
    }
}

/// The ARN of the execution `settings` describe.
pub fn execution_arn_of(settings: &ExecutionSettings) -> String {
    format!("{}:{}", settings.state_machine_arn.replacen(":stateMachine:", ":execution:", 1), settings.execution_name)
}

/// Tells the emulator an execution's dates and status, when the emulator knows the execution (the
/// router started it there): the router and the failure counter then read them as they would
/// from Step Functions.
pub async fn record_execution(tasks: &ProductTasks, record: &ExecutionRecord) {
    let sfn = aws_sdk_sfn::Client::new(&tasks.harness);
    if sfn.describe_execution().execution_arn(&record.execution_arn).send().await.is_err() {
        return; // not an execution the emulator started: nothing to record
    }
    let Some(endpoint) = tasks.config.endpoint_url() else { return };
    let mut update = json!({"executionArn": record.execution_arn, "startDate": record.start.to_rfc3339()});
    if let Some(status) = record.status {
        update["status"] = json!(status);
    }
    if let Some(stop) = record.stop {
        update["stopDate"] = json!(stop.to_rfc3339());
    }
    let recorded =
        http().post(format!("{}/_first_response/execution", endpoint.trim_end_matches('/'))).json(&update).send().await;
    if let Err(err) = recorded.and_then(reqwest::Response::error_for_status) {
        eprintln!("replay: the emulator did not record execution {}: {err}", record.execution_arn);
    }
}

/// The states an execution entered, in order.
pub fn path_taken(outcome: &Outcome) -> Vec<String> {
    outcome
        .history
        .iter()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .filter_map(|e| e.details.get("stateEnteredEventDetails")?.get("name")?.as_str().map(str::to_owned))
        .collect()
}

/// Renders trace events as readable lines: virtual time since the start, wall time, what happened.
pub struct TraceWriter {
    start: Option<chrono::DateTime<chrono::Utc>>,
    /// The input of the state last entered, to show only what a state changed.
    entered_input: Option<Value>,
    /// Longest JSON shown before it is cut.
    pub width: usize,
}

impl Default for TraceWriter {
    fn default() -> Self {
        Self { start: None, entered_input: None, width: 160 }
    }
}

impl TraceWriter {
    pub fn header() -> String {
        format!("{:>10} {:>8}  {}", "virtual", "wall", "event")
    }

    /// One line for an event, or `None` for events the trace leaves out.
    pub fn line(&mut self, event: &TraceEvent) -> Option<String> {
        let (timestamp, wall_ms, text) = match event {
            TraceEvent::Note { timestamp, wall_ms, text } => (timestamp, *wall_ms, format!("  … {text}")),
            TraceEvent::History(e) => (&e.timestamp, e.wall_ms, self.describe(&e.kind, &e.details)?),
        };
        let at = chrono::DateTime::parse_from_rfc3339(timestamp).ok().map(|t| t.with_timezone(&chrono::Utc));
        let start = *self.start.get_or_insert(at.unwrap_or_default());
        let offset = at.map(|t| (t - start).num_milliseconds() as f64 / 1000.0).unwrap_or_default();
        let mut line = String::new();
        let _ = write!(line, "{:>9.3}s {:>6}ms  {text}", offset, wall_ms);
        Some(line)
    }

    fn describe(&mut self, kind: &str, details: &serde_json::Map<String, Value>) -> Option<String> {
        let detail = |key: &str, field: &str| -> String {
            details.get(key).and_then(|d| d.get(field)).and_then(Value::as_str).unwrap_or_default().to_owned()
        };
        let cut = |text: String| -> String {
            if text.chars().count() <= self.width {
                text
            } else {
                format!("{}…", text.chars().take(self.width).collect::<String>())
            }
        };
        Some(match kind {
            "ExecutionStarted" => {
                format!("execution started, input {}", cut(detail("executionStartedEventDetails", "input")))
            }
            "ExecutionSucceeded" => {
                format!("execution SUCCEEDED, output {}", cut(detail("executionSucceededEventDetails", "output")))
            }
            "ExecutionFailed" => format!(
                "execution FAILED: {} {}",
                detail("executionFailedEventDetails", "error"),
                cut(detail("executionFailedEventDetails", "cause"))
            ),
            "ExecutionTimedOut" => format!("execution TIMED_OUT: {}", detail("executionTimedOutEventDetails", "cause")),
            k if k.ends_with("StateEntered") => {
                self.entered_input = serde_json::from_str(&detail("stateEnteredEventDetails", "input")).ok();
                format!("→ {} ({})", detail("stateEnteredEventDetails", "name"), k.trim_end_matches("StateEntered"))
            }
            k if k.ends_with("StateExited") => {
                let output = detail("stateExitedEventDetails", "output");
                let changes = match (self.entered_input.take(), serde_json::from_str::<Value>(&output).ok()) {
                    (Some(Value::Object(before)), Some(Value::Object(after))) => {
                        let changed: Vec<String> = after
                            .iter()
                            .filter(|(key, value)| before.get(*key) != Some(*value))
                            .map(|(key, value)| cut(format!("{key} = {value}")))
                            .collect();
                        if changed.is_empty() { "(no change)".to_owned() } else { changed.join("; ") }
                    }
                    _ => format!("output {}", cut(output)),
                };
                format!("← {}  {changes}", detail("stateExitedEventDetails", "name"))
            }
            "LambdaFunctionScheduled" => {
                let resource = detail("lambdaFunctionScheduledEventDetails", "resource");
                format!("  λ {} invoked", resource.rsplit(':').next().unwrap_or_default())
            }
            "LambdaFunctionSucceeded" => {
                format!("  λ returned {}", cut(detail("lambdaFunctionSucceededEventDetails", "output")))
            }
            "LambdaFunctionFailed" => format!(
                "  λ failed: {} {}",
                detail("lambdaFunctionFailedEventDetails", "error"),
                cut(detail("lambdaFunctionFailedEventDetails", "cause"))
            ),
            "TaskScheduled" => format!(
                "  ⚙ {}:{} called",
                detail("taskScheduledEventDetails", "resourceType"),
                detail("taskScheduledEventDetails", "resource")
            ),
            "TaskSucceeded" => format!("  ⚙ returned {}", cut(detail("taskSucceededEventDetails", "output"))),
            "TaskFailed" => format!(
                "  ⚙ failed: {} {}",
                detail("taskFailedEventDetails", "error"),
                cut(detail("taskFailedEventDetails", "cause"))
            ),
            "LambdaFunctionStarted" | "TaskStarted" => return None,
            other => format!("  {other}"),
        })
    }
}

/// An HTTP client for the local emulators' own endpoints. The workspace builds reqwest with rustls
/// but no crypto provider of its own (the functions use ring; see `shared::aws`), so the provider
/// is installed first.
pub fn http() -> reqwest::Client {
    shared::aws::install_crypto_provider();
    reqwest::Client::new()
}
