//! The executor: runs a [`Definition`] state by state on a virtual clock.
//!
//! Input and output processing follows the JSONPath order: `InputPath`, `Parameters`, the work,
//! `ResultSelector`, `ResultPath` (into the state's raw input), `OutputPath`. Waits and retry
//! back-off move the virtual clock; tasks are handed to a [`TaskRunner`]. Every step is recorded as
//! an AWS-shaped history event.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value, json};

use std::cell::RefCell;
use std::rc::Rc;

use crate::choice;
use crate::definition::Definition;
use crate::error::{StatesError, names};
use crate::jsonata;
use crate::paths::{self, PathError};
use crate::payload;

/// One Task state's call, as the runner hands it to a [`TaskRunner`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCall {
    pub state: String,
    pub resource: String,
    /// The effective input: after `InputPath` and `Parameters`.
    pub input: Value,
    /// The context object as the task sees it.
    pub context: Value,
    /// 0 for the first attempt, then 1, 2, ... for retries.
    pub retry_count: u32,
}

/// Runs Task states: the project's handlers, AWS service integrations, or mocks.
pub trait TaskRunner {
    /// The task's result, or the error Step Functions would see.
    fn run(&self, call: &TaskCall) -> impl Future<Output = Result<Value, StatesError>>;
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
}

/// One history event, in the shape `GetExecutionHistory` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    /// Virtual time.
    pub timestamp: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub details: Map<String, Value>,
    /// Wall time since the execution started, in milliseconds (not part of AWS's shape).
    #[serde(skip)]
    pub wall_ms: u128,
}

/// What the trace shows: history events, and notes on retries and catches.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceEvent {
    History(HistoryEvent),
    Note { timestamp: String, wall_ms: u128, text: String },
}

/// The end of an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub history: Vec<HistoryEvent>,
    /// Virtual time the execution took.
    pub virtual_duration: Duration,
    pub wall_duration: Duration,
}

impl Outcome {
    /// The one-line result `replay run` prints.
    pub fn summary(&self) -> Value {
        match self.status {
            Status::Succeeded => json!({"status": self.status, "output": self.output}),
            _ => {
                let cause = self
                    .cause
                    .as_deref()
                    .map(|c| serde_json::from_str(c).unwrap_or_else(|_| Value::String(c.to_owned())));
                json!({"status": self.status, "error": self.error, "cause": cause})
            }
        }
    }
}

/// Names and times for one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSettings {
    pub state_machine_arn: String,
    pub execution_name: String,
    pub role_arn: String,
    pub start_time: DateTime<Utc>,
    /// Seeds the jitter of retries, so a replay is repeatable.
    pub seed: u64,
}

impl ExecutionSettings {
    /// Local names for a state machine called `name`.
    pub fn local(name: &str, execution_name: &str) -> Self {
        Self {
            state_machine_arn: format!("arn:aws:states:eu-west-1:123456789012:stateMachine:{name}"),
            execution_name: execution_name.to_owned(),
            role_arn: format!("arn:aws:iam::123456789012:role/{name}-local"),
            start_time: Utc::now(),
            seed: 0,
        }
    }

    fn execution_arn(&self) -> String {
        format!("{}:{}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1), self.execution_name)
    }
}

/// A failure on its way out of a state.
struct Failure {
    error: StatesError,
    /// Whether a `States.Runtime` cause already names the state it happened in.
    located: bool,
    /// A Fail state without `Error`/`ErrorPath`: AWS reports no error at all.
    error_absent: bool,
    /// A Fail state without `Cause`/`CausePath`: AWS reports no cause at all.
    cause_absent: bool,
}

impl From<StatesError> for Failure {
    fn from(error: StatesError) -> Self {
        Self { error, located: false, error_absent: false, cause_absent: false }
    }
}

/// The most bytes of UTF-8 JSON a state's input, output or a task's result may have: 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 262_144;

fn too_big(value: &Value) -> bool {
    serde_json::to_string(value).is_ok_and(|text| text.len() > MAX_PAYLOAD_BYTES)
}

fn data_limit_exceeded(who: &str) -> StatesError {
    StatesError::new(
        names::DATA_LIMIT_EXCEEDED,
        format!(
            "The state/task '{who}' returned a result with a size exceeding the maximum number of bytes service limit."
        ),
    )
}

type Sink<'s> = &'s mut dyn FnMut(&TraceEvent);

/// Runs one execution.
pub struct Executor<'r, R: TaskRunner> {
    tasks: &'r R,
    clock: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    wall_start: Instant,
    rng: StdRng,
    history: Vec<HistoryEvent>,
    sink: Option<Sink<'r>>,
    context: Value,
    /// Whether states without their own QueryLanguage are JSONata (the definition's top level).
    jsonata_default: bool,
    /// The workflow variables in scope: the execution's, or a Parallel branch's or Map
    /// iteration's (which start from a copy of the scope around them).
    variables: Map<String, Value>,
    /// What the current state assigned, for its StateExited event.
    assigned: Map<String, Value>,
    /// The event the next event follows (`previousEventId`): 0 before the first state, and within a
    /// Parallel branch or Map iteration the branch's own last event.
    source: u64,
}

/// Events after which the next event still follows the event before them, as AWS chains them.
const KEEPS_SOURCE: &[&str] =
    &["ExecutionStarted", "ParallelStateSucceeded", "MapStateSucceeded", "MapIterationSucceeded", "MapIterationFailed"];

impl<'r, R: TaskRunner> Executor<'r, R> {
    pub fn new(tasks: &'r R, settings: &ExecutionSettings) -> Self {
        let name = settings.state_machine_arn.rsplit(':').next().unwrap_or_default().to_owned();
        Self {
            tasks,
            clock: settings.start_time,
            deadline: None,
            wall_start: Instant::now(),
            rng: StdRng::seed_from_u64(settings.seed),
            history: Vec::new(),
            sink: None,
            context: json!({
                "Execution": {
                    "Id": settings.execution_arn(),
                    "Name": settings.execution_name,
                    "RoleArn": settings.role_arn,
                    "StartTime": time(settings.start_time),
                    "RedriveCount": 0,
                },
                "StateMachine": {"Id": settings.state_machine_arn, "Name": name},
            }),
            jsonata_default: false,
            variables: Map::new(),
            assigned: Map::new(),
            source: 0,
        }
    }

    /// Sends every history event and note to `sink` as it happens.
    pub fn with_trace(mut self, sink: Sink<'r>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Runs `definition` on `input` to its end.
    pub async fn run(mut self, definition: &Definition, input: Value) -> Outcome {
        self.context["Execution"]["Input"] = input.clone();
        let root = &definition.root;
        self.jsonata_default = root["QueryLanguage"] == "JSONata";
        if let Some(seconds) = root["TimeoutSeconds"].as_u64() {
            self.deadline = Some(self.clock + chrono::Duration::seconds(seconds as i64));
        }
        let role = self.context["Execution"]["RoleArn"].clone();
        self.record(
            "ExecutionStarted",
            json!({"executionStartedEventDetails": {"input": input.to_string(), "roleArn": role}}),
        );
        let start = self.clock;
        let result = self.run_machine(root, input).await;
        let (status, output, error, cause) = match result {
            Ok(output) => {
                self.record(
                    "ExecutionSucceeded",
                    json!({"executionSucceededEventDetails": {"output": output.to_string()}}),
                );
                (Status::Succeeded, Some(output), None, None)
            }
            Err(failure) => {
                let timed_out = failure.error.error == names::TIMEOUT && self.past_deadline();
                let (kind, key) = if timed_out {
                    ("ExecutionTimedOut", "executionTimedOutEventDetails")
                } else {
                    ("ExecutionFailed", "executionFailedEventDetails")
                };
                let error = (!failure.error_absent).then_some(failure.error.error);
                let cause = (!failure.cause_absent).then_some(failure.error.cause);
                let mut details = Map::new();
                if let Some(error) = &error {
                    details.insert("error".into(), json!(error));
                }
                if let Some(cause) = &cause {
                    details.insert("cause".into(), json!(cause));
                }
                self.record(kind, json!({ key: details }));
                let status = if timed_out { Status::TimedOut } else { Status::Failed };
                (status, None, error, cause)
            }
        };
        Outcome {
            status,
            output,
            error,
            cause,
            history: self.history,
            virtual_duration: (self.clock - start).to_std().unwrap_or_default(),
            wall_duration: self.wall_start.elapsed(),
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| self.clock >= d)
    }

    fn check_deadline(&self) -> Result<(), Failure> {
        if self.past_deadline() {
            return Err(StatesError::new(names::TIMEOUT, "the execution ran past its TimeoutSeconds").into());
        }
        Ok(())
    }

    fn record(&mut self, kind: &str, details: Value) {
        let id = self.history.len() as u64 + 1;
        let previous_event_id = self.source;
        if !KEEPS_SOURCE.contains(&kind) {
            self.source = id;
        }
        let event = HistoryEvent {
            id,
            previous_event_id,
            timestamp: time(self.clock),
            kind: kind.to_owned(),
            details: match details {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            wall_ms: self.wall_start.elapsed().as_millis(),
        };
        if let Some(sink) = self.sink.as_mut() {
            sink(&TraceEvent::History(event.clone()));
        }
        self.history.push(event);
    }

    fn note(&mut self, text: String) {
        let note =
            TraceEvent::Note { timestamp: time(self.clock), wall_ms: self.wall_start.elapsed().as_millis(), text };
        if let Some(sink) = self.sink.as_mut() {
            sink(&note);
        }
    }

    /// Runs the states of a machine (top level, branch or Map processor) from `StartAt` to an end.
    fn run_machine<'a>(
        &'a mut self,
        machine: &'a Value,
        input: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Value, Failure>> + 'a>> {
        Box::pin(async move {
            let mut current = machine["StartAt"].as_str().unwrap_or_default().to_owned();
            let mut data = input;
            loop {
                self.check_deadline()?;
                let state = &machine["States"][&current];
                match self.run_state(&current, state, data).await? {
                    Step::Next(next, output) => {
                        current = next;
                        data = output;
                    }
                    Step::End(output) => return Ok(output),
                }
            }
        })
    }

    async fn run_state(&mut self, name: &str, state: &Value, input: Value) -> Result<Step, Failure> {
        let state_type = state["Type"].as_str().unwrap_or_default();
        self.context["State"] = json!({"Name": name, "EnteredTime": time(self.clock), "RetryCount": 0});
        let entered = format!("{}StateEntered", type_prefix(state_type));
        self.record(&entered, json!({"stateEnteredEventDetails": {"name": name, "input": input.to_string()}}));
        let entered_id = self.history.len();

        self.assigned = Map::new();
        let outcome = if self.is_jsonata(state) {
            self.jsonata_state(name, state_type, state, input).await
        } else {
            self.jsonpath_state(name, state_type, state, input).await
        };
        let outcome = outcome.map_err(|failure| locate(failure, name, entered_id))?;
        if state_type != "Fail" {
            let output = match &outcome {
                Step::Next(_, output) | Step::End(output) => output,
            };
            // One serialisation both measures the output and goes into the history.
            let output = output.to_string();
            if output.len() > MAX_PAYLOAD_BYTES {
                return Err(data_limit_exceeded(name).into());
            }
            let exited = format!("{}StateExited", type_prefix(state_type));
            let mut details = json!({"name": name, "output": output});
            if !self.assigned.is_empty() {
                // As AWS writes them: each value as JSON text.
                let assigned: Map<String, Value> =
                    self.assigned.iter().map(|(k, v)| (k.clone(), Value::String(v.to_string()))).collect();
                details["assignedVariables"] = Value::Object(assigned);
                details["assignedVariablesDetails"] = json!({"truncated": false});
            }
            self.record(&exited, json!({ "stateExitedEventDetails": details }));
        }
        Ok(outcome)
    }

    fn is_jsonata(&self, state: &Value) -> bool {
        match state["QueryLanguage"].as_str() {
            Some(language) => language == "JSONata",
            None => self.jsonata_default,
        }
    }

    async fn jsonpath_state(
        &mut self,
        name: &str,
        state_type: &str,
        state: &Value,
        input: Value,
    ) -> Result<Step, Failure> {
        match state_type {
            "Pass" => self.pass(state, input).await,
            "Task" | "Parallel" | "Map" => self.with_retry_and_catch(name, state, input).await,
            "Choice" => self.choice(name, state, input),
            "Wait" => self.wait(state, input),
            "Succeed" => self.succeed(state, input).map(Step::End),
            "Fail" => Err(self.fail(state, input)),
            other => Err(StatesError::runtime(format!("unknown state type {other}")).into()),
        }
    }

    fn transition(state: &Value, output: Value) -> Step {
        match state["Next"].as_str() {
            Some(next) => Step::Next(next.to_owned(), output),
            None => Step::End(output),
        }
    }

    async fn pass(&mut self, state: &Value, raw: Value) -> Result<Step, Failure> {
        let effective = self.effective_input(state, &raw)?;
        let result = match state.get("Result") {
            Some(result) => result.clone(),
            None => effective,
        };
        let output = self.finish(state, raw, result)?;
        Ok(Self::transition(state, output))
    }

    fn choice(&mut self, name: &str, state: &Value, raw: Value) -> Result<Step, Failure> {
        let input = input_path(state, &raw, &self.context)?;
        let next = match choice::choose(state, &input, &self.context)? {
            Some(next) => next,
            None => match state["Default"].as_str() {
                Some(default) => default.to_owned(),
                None => {
                    return Err(StatesError::new(
                        names::NO_CHOICE_MATCHED,
                        format!("no Choice rule of {name:?} matched and it has no Default"),
                    )
                    .into());
                }
            },
        };
        let output = output_path(state, input, &self.context)?;
        Ok(Step::Next(next, output))
    }

    fn wait(&mut self, state: &Value, raw: Value) -> Result<Step, Failure> {
        let input = input_path(state, &raw, &self.context)?;
        let until = if let Some(seconds) = state.get("Seconds") {
            let seconds = seconds.as_u64().ok_or_else(|| StatesError::runtime("Seconds must be a whole number"))?;
            self.clock + chrono::Duration::seconds(seconds as i64)
        } else if let Some(path) = state["SecondsPath"].as_str() {
            let seconds = seconds_at(path, &input, &self.context)?;
            self.clock + chrono::Duration::seconds(seconds)
        } else {
            let (text, path) = match (state["Timestamp"].as_str(), state["TimestampPath"].as_str()) {
                (Some(text), _) => (Value::String(text.to_owned()), None),
                (None, Some(path)) => (paths::read(path, &input, &self.context).map_err(runtime)?, Some(path)),
                (None, None) => return Err(StatesError::runtime("a Wait needs a duration").into()),
            };
            let parsed = text.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            let Some(until) = parsed else {
                let shown = text.as_str().map_or_else(|| text.to_string(), str::to_owned);
                return Err(StatesError::runtime(match path {
                    Some(path) => format!(
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time \
                         format string: {path} == {shown}"
                    ),
                    None => format!("{text} is not an RFC 3339 timestamp"),
                })
                .into());
            };
            until.with_timezone(&Utc).max(self.clock)
        };
        self.wait_until(until)?;
        let output = output_path(state, input, &self.context)?;
        Ok(Self::transition(state, output))
    }

    /// Moves the virtual clock to `until`, or to the execution's deadline if that comes first.
    fn wait_until(&mut self, until: DateTime<Utc>) -> Result<(), Failure> {
        let waited = until - self.clock;
        self.note(format!("waiting {}s of virtual time", waited.num_milliseconds() as f64 / 1000.0));
        match self.deadline {
            Some(deadline) if until > deadline => {
                self.clock = deadline;
                self.check_deadline()?;
            }
            _ => self.clock = until,
        }
        Ok(())
    }

    fn succeed(&mut self, state: &Value, raw: Value) -> Result<Value, Failure> {
        let input = input_path(state, &raw, &self.context)?;
        Ok(output_path(state, input, &self.context)?)
    }

    /// The failure a Fail state raises; without `Error`/`Cause` (or their paths) AWS reports none.
    fn fail(&mut self, state: &Value, raw: Value) -> Failure {
        let pick = |literal: &str, path: &str| -> Result<Option<String>, StatesError> {
            if let Some(text) = state[literal].as_str() {
                return Ok(Some(text.to_owned()));
            }
            let Some(expression) = state[path].as_str() else { return Ok(None) };
            let value = payload::resolve_field(expression, path, &raw, &self.context)
                .map_err(|e| StatesError::runtime(e.cause))?;
            match value {
                Value::String(text) => Ok(Some(text)),
                other => Err(StatesError::runtime(format!("{path} must name a string, found {other}"))),
            }
        };
        let error = match pick("Error", "ErrorPath") {
            Ok(error) => error,
            Err(e) => return e.into(),
        };
        let cause = match pick("Cause", "CausePath") {
            Ok(cause) => cause,
            Err(e) => return e.into(),
        };
        Failure {
            error_absent: error.is_none(),
            cause_absent: cause.is_none(),
            ..StatesError::new(error.unwrap_or_default(), cause.unwrap_or_default()).into()
        }
    }

    /// Task, Parallel and Map: the work, retried and caught as the state says.
    async fn with_retry_and_catch(&mut self, name: &str, state: &Value, raw: Value) -> Result<Step, Failure> {
        let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
        let mut attempts = vec![0u32; retriers.len()];
        let mut retry_count = 0u32;
        loop {
            self.context["State"]["RetryCount"] = json!(retry_count);
            let attempt = self.attempt(name, state, &raw, retry_count).await;
            let failure = match attempt {
                Ok(output) => return Ok(Self::transition(state, output)),
                Err(failure) => failure,
            };
            let error = failure.error.clone();
            if error.error == names::TIMEOUT && self.past_deadline() {
                return Err(failure);
            }
            let retrier = retriers.iter().enumerate().find(|(_, r)| matches_error(r, &error));
            if let Some((index, retrier)) = retrier {
                let max_attempts = retrier["MaxAttempts"].as_u64().unwrap_or(3) as u32;
                if attempts[index] < max_attempts {
                    let delay = self.retry_delay(retrier, attempts[index]);
                    attempts[index] += 1;
                    retry_count += 1;
                    self.note(format!(
                        "{name}: {} — retry {} of {max_attempts} in {:.3}s",
                        error.error,
                        attempts[index],
                        delay.as_secs_f64()
                    ));
                    self.clock += chrono::Duration::from_std(delay).unwrap_or_default();
                    self.check_deadline()?;
                    continue;
                }
            }
            let catcher = state["Catch"].as_array().into_iter().flatten().find(|c| matches_error(c, &error));
            let Some(catcher) = catcher else { return Err(failure) };
            let next = catcher["Next"].as_str().unwrap_or_default().to_owned();
            self.note(format!("{name}: caught {} -> {next}", error.error));
            let error_output = json!({"Error": error.error, "Cause": error.cause});
            if self.is_jsonata(state) {
                let states = json!({"input": raw, "context": self.context, "errorOutput": error_output});
                let output = self.jsonata_output_and_assign(catcher, &states, error_output, "Catch")?;
                return Ok(Step::Next(next, output));
            }
            let output = match catcher.get("ResultPath") {
                Some(Value::Null) => raw,
                Some(Value::String(path)) => paths::write(raw, path, error_output).map_err(result_path)?,
                _ => error_output,
            };
            return Ok(Step::Next(next, output));
        }
    }

    fn retry_delay(&mut self, retrier: &Value, attempt: u32) -> Duration {
        let interval = retrier["IntervalSeconds"].as_f64().unwrap_or(1.0);
        let rate = retrier["BackoffRate"].as_f64().unwrap_or(2.0);
        let mut seconds = interval * rate.powi(attempt as i32);
        if let Some(max) = retrier["MaxDelaySeconds"].as_f64() {
            seconds = seconds.min(max);
        }
        if retrier["JitterStrategy"].as_str() == Some("FULL") {
            seconds = self.rng.random_range(0.0..=seconds);
        }
        Duration::from_secs_f64(seconds.max(0.0))
    }

    /// One attempt of a Task, Parallel or Map state, through its output processing.
    async fn attempt(&mut self, name: &str, state: &Value, raw: &Value, retry_count: u32) -> Result<Value, Failure> {
        if self.is_jsonata(state) {
            return self.jsonata_attempt(name, state, raw, retry_count).await;
        }
        let effective = self.effective_input(state, raw)?;
        let result = match state["Type"].as_str() {
            Some("Task") => self.task(name, state, effective, retry_count).await?,
            Some("Parallel") => self.parallel(state, effective).await?,
            _ => self.map(state, effective, false).await?,
        };
        let selected = match state.get("ResultSelector") {
            Some(selector) => payload::render(selector, &result, &self.context)?,
            None => result,
        };
        self.finish(state, raw.clone(), selected)
    }

    async fn task(&mut self, name: &str, state: &Value, input: Value, retry_count: u32) -> Result<Value, Failure> {
        let resource = state["Resource"].as_str().unwrap_or_default().to_owned();
        let lambda = resource.starts_with("arn:aws:lambda:");
        let (resource_type, resource_name) = service_of(&resource);
        let timeout = state["TimeoutSeconds"].as_u64();
        if lambda {
            let mut scheduled = json!({"resource": resource, "input": input.to_string()});
            if let Some(seconds) = timeout {
                scheduled["timeoutInSeconds"] = json!(seconds);
            }
            self.record("LambdaFunctionScheduled", json!({"lambdaFunctionScheduledEventDetails": scheduled}));
            self.record("LambdaFunctionStarted", json!({}));
        } else {
            let details = json!({"resourceType": resource_type, "resource": resource_name, "region": "eu-west-1", "parameters": input.to_string()});
            self.record("TaskScheduled", json!({"taskScheduledEventDetails": details}));
            self.record(
                "TaskStarted",
                json!({"taskStartedEventDetails": {"resourceType": resource_type, "resource": resource_name}}),
            );
        }
        let call = TaskCall {
            state: name.to_owned(),
            resource: resource.clone(),
            input,
            context: self.context.clone(),
            retry_count,
        };
        let started = Instant::now();
        let mut result = self.tasks.run(&call).await;
        if result.as_ref().is_ok_and(too_big) {
            result = Err(data_limit_exceeded(if lambda { &resource } else { &resource_type }));
        }
        if let Some(seconds) = timeout
            && result.is_ok()
            && started.elapsed() > Duration::from_secs(seconds)
        {
            result = Err(StatesError::new(
                names::TIMEOUT,
                format!("the task ran longer than its TimeoutSeconds ({seconds})"),
            ));
        }
        match result {
            Ok(output) => {
                if lambda {
                    self.record(
                        "LambdaFunctionSucceeded",
                        json!({"lambdaFunctionSucceededEventDetails": {"output": output.to_string()}}),
                    );
                } else {
                    let details =
                        json!({"resourceType": resource_type, "resource": resource_name, "output": output.to_string()});
                    self.record("TaskSucceeded", json!({"taskSucceededEventDetails": details}));
                }
                Ok(output)
            }
            Err(error) => {
                let (kind, key) = match (lambda, error.error == names::TIMEOUT) {
                    (true, true) => ("LambdaFunctionTimedOut", "lambdaFunctionTimedOutEventDetails"),
                    (true, false) => ("LambdaFunctionFailed", "lambdaFunctionFailedEventDetails"),
                    (false, true) => ("TaskTimedOut", "taskTimedOutEventDetails"),
                    (false, false) => ("TaskFailed", "taskFailedEventDetails"),
                };
                let mut details = json!({"error": error.error, "cause": error.cause});
                if !lambda {
                    details["resourceType"] = json!(resource_type);
                    details["resource"] = json!(resource_name);
                }
                self.record(kind, json!({ key: details }));
                Err(error.into())
            }
        }
    }

    async fn parallel(&mut self, state: &Value, input: Value) -> Result<Value, Failure> {
        self.record("ParallelStateStarted", json!({}));
        let start = self.clock;
        let mut end = start;
        let mut results = Vec::new();
        let saved_state = self.context["State"].clone();
        let outer_variables = self.variables.clone();
        // Each branch's events follow ParallelStateStarted; the state's next event follows the
        // latest event of any branch.
        let fork = self.source;
        let mut joined = fork;
        for branch in state["Branches"].as_array().into_iter().flatten() {
            self.clock = start;
            self.source = fork;
            // Each branch reads the variables around it; what it assigns stays in the branch.
            self.variables = outer_variables.clone();
            let result = self.run_machine(branch, input.clone()).await;
            self.variables = outer_variables.clone();
            joined = joined.max(self.source);
            self.source = joined;
            match result {
                Ok(output) => results.push(output),
                Err(failure) => {
                    self.context["State"] = saved_state;
                    self.record("ParallelStateFailed", json!({}));
                    return Err(failure);
                }
            }
            end = end.max(self.clock);
        }
        self.clock = end;
        self.context["State"] = saved_state;
        self.record("ParallelStateSucceeded", json!({}));
        Ok(Value::Array(results))
    }

    async fn map(&mut self, state: &Value, input: Value, jsonata: bool) -> Result<Value, Failure> {
        let items = if jsonata {
            let states = json!({"input": input, "context": self.context});
            match state.get("Items") {
                Some(template) => self.jsonata_render(template, "Items", &states)?,
                None => input.clone(),
            }
        } else {
            match state["ItemsPath"].as_str() {
                Some(path) => read_path(path, &input, &self.context)?,
                None => input.clone(),
            }
        };
        let Value::Array(items) = items else {
            if jsonata {
                return Err(StatesError::new(
                    names::QUERY_EVALUATION_ERROR,
                    format!("Map state input must be an array but was {}", paths::kind(&items)),
                )
                .into());
            }
            return Err(
                StatesError::runtime(format!("ItemsPath must select an array, found {}", paths::kind(&items))).into()
            );
        };
        let processor = state.get("ItemProcessor").or_else(|| state.get("Iterator")).cloned().unwrap_or_default();
        let selector = state.get("ItemSelector").or_else(|| state.get("Parameters")).cloned();
        let limit = if let Some(path) = state["MaxConcurrencyPath"].as_str() {
            max_concurrency_at(path, &input, &self.context)?
        } else if jsonata && state["MaxConcurrency"].is_string() {
            let states = json!({"input": input, "context": self.context});
            self.jsonata_whole(&state["MaxConcurrency"], "MaxConcurrency", &states)?
        } else {
            state["MaxConcurrency"].as_u64().unwrap_or(0)
        };
        let concurrency = usize::try_from(limit).ok().filter(|n| *n > 0);
        let outer_variables = self.variables.clone();
        self.record("MapStateStarted", json!({"mapStateStartedEventDetails": {"length": items.len()}}));
        let start = self.clock;
        let mut finished: Vec<DateTime<Utc>> = Vec::new();
        let mut results = Vec::with_capacity(items.len());
        let saved_state = self.context["State"].clone();
        // Each iteration's events follow MapStateStarted, or, when it waited for a slot, the last
        // event of the iteration that held the slot before it.
        let fork = self.source;
        let mut joined = fork;
        let mut slot_sources: Vec<u64> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            // An iteration starts when a slot is free: at once without a limit, else when the
            // iteration `concurrency` places earlier has finished.
            self.clock = match concurrency {
                Some(limit) if index >= limit => finished.get(index - limit).copied().unwrap_or(start),
                _ => start,
            };
            self.source = match concurrency {
                Some(limit) if index >= limit => slot_sources.get(index - limit).copied().unwrap_or(fork),
                _ => fork,
            };
            let name = state_name(&saved_state);
            self.record(
                "MapIterationStarted",
                json!({"mapIterationStartedEventDetails": {"name": name, "index": index}}),
            );
            self.context["Map"] = json!({"Item": {"Index": index, "Value": item}});
            let item_input = match (&selector, jsonata) {
                (Some(template), true) => {
                    let states = json!({"input": input, "context": self.context});
                    self.jsonata_render(template, "ItemSelector", &states)
                }
                (Some(template), false) => payload::render(template, &input, &self.context),
                (None, _) => Ok(item),
            };
            // Only the ItemSelector sees the Map context (the definition refuses $$.Map anywhere else).
            if let Value::Object(context) = &mut self.context {
                context.remove("Map");
            }
            // Each iteration reads the variables around it; what it assigns stays in the iteration.
            self.variables = outer_variables.clone();
            let result = match item_input {
                Ok(item_input) => self.run_machine(&processor, item_input).await,
                Err(error) => Err(error.into()),
            };
            self.variables = outer_variables.clone();
            self.context["State"] = saved_state.clone();
            slot_sources.push(self.source);
            joined = joined.max(self.source);
            match result {
                Ok(output) => {
                    self.record(
                        "MapIterationSucceeded",
                        json!({"mapIterationSucceededEventDetails": {"name": name, "index": index}}),
                    );
                    results.push(output);
                }
                Err(failure) => {
                    self.record(
                        "MapIterationFailed",
                        json!({"mapIterationFailedEventDetails": {"name": name, "index": index}}),
                    );
                    self.source = joined;
                    self.record("MapStateFailed", json!({}));
                    return Err(failure);
                }
            }
            finished.push(self.clock);
        }
        self.clock = finished.iter().copied().max().unwrap_or(start);
        self.source = joined;
        self.record("MapStateSucceeded", json!({}));
        Ok(Value::Array(results))
    }

    /// Evaluates the JSONata expressions in `template` with `$states` and the variables in scope.
    fn jsonata_render(&mut self, template: &Value, field: &str, states: &Value) -> Result<Value, StatesError> {
        let rng = Rc::new(RefCell::new(StdRng::seed_from_u64(self.rng.random::<u64>())));
        let scope = jsonata::Scope { states, variables: &self.variables, now: self.clock, rng };
        let result = jsonata::render(template, field, &scope);
        if let Err(error) = &result {
            // AWS records a failed JSONata evaluation as its own history event first.
            let location = field.split(['.', '[']).next().unwrap_or(field);
            let state = state_name(&self.context["State"]);
            let details = json!({"error": error.error, "cause": error.cause, "location": location, "state": state});
            self.record("EvaluationFailed", json!({ "evaluationFailedEventDetails": details }));
        }
        result
    }

    /// A field that is a whole number of 0 or more, or a JSONata expression giving one.
    fn jsonata_whole(&mut self, template: &Value, field: &str, states: &Value) -> Result<u64, StatesError> {
        let value = self.jsonata_render(template, field, states)?;
        value.as_u64().ok_or_else(|| {
            StatesError::new(
                names::QUERY_EVALUATION_ERROR,
                format!("{field} must be a whole number of 0 or more, found {value}"),
            )
        })
    }

    /// A JSONata state's `Output` (by default `default`) and `Assign`, both evaluated with the
    /// variables as they were when the state was entered; the assignments then take effect.
    fn jsonata_output_and_assign(
        &mut self,
        fields: &Value,
        states: &Value,
        default: Value,
        prefix: &str,
    ) -> Result<Value, StatesError> {
        let field = |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
        let assigned = match fields.get("Assign") {
            Some(Value::Object(assign)) => {
                let mut values = Map::new();
                for (name, template) in assign {
                    values.insert(
                        name.clone(),
                        self.jsonata_render(template, &field(&format!("Assign.{name}")), states)?,
                    );
                }
                values
            }
            _ => Map::new(),
        };
        let output = match fields.get("Output") {
            Some(template) => self.jsonata_render(template, &field("Output"), states)?,
            None => default,
        };
        for (name, value) in assigned {
            self.variables.insert(name.clone(), value.clone());
            self.assigned.insert(name, value);
        }
        Ok(output)
    }

    /// A state in the JSONata query language.
    async fn jsonata_state(
        &mut self,
        name: &str,
        state_type: &str,
        state: &Value,
        input: Value,
    ) -> Result<Step, Failure> {
        let states = json!({"input": input, "context": self.context});
        match state_type {
            "Pass" | "Succeed" => {
                let output = self.jsonata_output_and_assign(state, &states, input, "")?;
                Ok(if state_type == "Pass" { Self::transition(state, output) } else { Step::End(output) })
            }
            "Task" | "Parallel" | "Map" => self.with_retry_and_catch(name, state, input).await,
            "Choice" => {
                for (n, rule) in state["Choices"].as_array().into_iter().flatten().enumerate() {
                    let field = format!("Choices[{n}].Condition");
                    let matched = match self.jsonata_render(&rule["Condition"], &field, &states)? {
                        Value::Bool(matched) => matched,
                        other => {
                            return Err(StatesError::new(
                                names::QUERY_EVALUATION_ERROR,
                                format!("The Condition of Choices[{n}] must be a boolean, found {other}"),
                            )
                            .into());
                        }
                    };
                    if matched {
                        let next = rule["Next"].as_str().unwrap_or_default().to_owned();
                        let output = self.jsonata_output_and_assign(rule, &states, input, &format!("Choices[{n}]"))?;
                        return Ok(Step::Next(next, output));
                    }
                }
                let Some(default) = state["Default"].as_str() else {
                    return Err(StatesError::new(
                        names::NO_CHOICE_MATCHED,
                        format!("no Choice rule of {name:?} matched and it has no Default"),
                    )
                    .into());
                };
                // The state's own Assign and Output apply when no rule matched.
                let output = self.jsonata_output_and_assign(state, &states, input, "")?;
                Ok(Step::Next(default.to_owned(), output))
            }
            "Wait" => {
                let until = if let Some(seconds) = state.get("Seconds") {
                    let seconds = self.jsonata_whole(seconds, "Seconds", &states)?;
                    self.clock + chrono::Duration::seconds(seconds as i64)
                } else {
                    let text = self.jsonata_render(&state["Timestamp"], "Timestamp", &states)?;
                    let parsed = text.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
                    let Some(until) = parsed else {
                        return Err(StatesError::new(
                            names::QUERY_EVALUATION_ERROR,
                            format!("Timestamp must be an RFC 3339 time, found {text}"),
                        )
                        .into());
                    };
                    until.with_timezone(&Utc).max(self.clock)
                };
                self.wait_until(until)?;
                let output = self.jsonata_output_and_assign(state, &states, input, "")?;
                Ok(Self::transition(state, output))
            }
            "Fail" => {
                let mut text = |field: &str| -> Result<Option<String>, StatesError> {
                    match state.get(field) {
                        None => Ok(None),
                        Some(template) => match self.jsonata_render(template, field, &states)? {
                            Value::String(text) => Ok(Some(text)),
                            other => Err(StatesError::new(
                                names::QUERY_EVALUATION_ERROR,
                                format!("{field} must be a string, found {other}"),
                            )),
                        },
                    }
                };
                let error = text("Error")?;
                let cause = text("Cause")?;
                Err(Failure {
                    error_absent: error.is_none(),
                    cause_absent: cause.is_none(),
                    ..StatesError::new(error.unwrap_or_default(), cause.unwrap_or_default()).into()
                })
            }
            other => Err(StatesError::runtime(format!("unknown state type {other}")).into()),
        }
    }

    /// One attempt of a JSONata Task, Parallel or Map: `Arguments`, the work, then `Output` and
    /// `Assign` with `$states.result`.
    async fn jsonata_attempt(
        &mut self,
        name: &str,
        state: &Value,
        raw: &Value,
        retry_count: u32,
    ) -> Result<Value, Failure> {
        let states = json!({"input": raw, "context": self.context});
        let arguments = match state.get("Arguments") {
            Some(template) => self.jsonata_render(template, "Arguments", &states)?,
            None => raw.clone(),
        };
        let result = match state["Type"].as_str() {
            Some("Task") => self.task(name, state, arguments, retry_count).await?,
            Some("Parallel") => self.parallel(state, arguments).await?,
            _ => self.map(state, raw.clone(), true).await?,
        };
        let states = json!({"input": raw, "context": self.context, "result": result});
        Ok(self.jsonata_output_and_assign(state, &states, result, "")?)
    }

    /// `InputPath`, then `Parameters`.
    /// `InputPath`, then `Parameters` (which on a Map state is the legacy name of `ItemSelector`,
    /// applied per item).
    fn effective_input(&self, state: &Value, raw: &Value) -> Result<Value, Failure> {
        let input = input_path(state, raw, &self.context)?;
        match state.get("Parameters").filter(|_| state["Type"] != "Map") {
            Some(template) => Ok(payload::render(template, &input, &self.context)?),
            None => Ok(input),
        }
    }

    /// `ResultPath`, then `OutputPath`.
    fn finish(&self, state: &Value, raw: Value, result: Value) -> Result<Value, Failure> {
        let combined = match state.get("ResultPath") {
            Some(Value::Null) => raw,
            Some(Value::String(path)) => paths::write(raw, path, result).map_err(result_path)?,
            _ => result,
        };
        Ok(output_path(state, combined, &self.context)?)
    }
}

enum Step {
    Next(String, Value),
    End(Value),
}

fn state_name(state_context: &Value) -> String {
    state_context["Name"].as_str().unwrap_or_default().to_owned()
}

fn matches_error(rule: &Value, error: &StatesError) -> bool {
    rule["ErrorEquals"].as_array().into_iter().flatten().filter_map(Value::as_str).any(|name| error.is_matched_by(name))
}

fn input_path(state: &Value, raw: &Value, context: &Value) -> Result<Value, StatesError> {
    match state.get("InputPath") {
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(path)) => read_path(path, raw, context),
        _ => Ok(raw.clone()),
    }
}

fn output_path(state: &Value, combined: Value, context: &Value) -> Result<Value, StatesError> {
    match state.get("OutputPath") {
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(path)) => read_path(path, &combined, context),
        _ => Ok(combined),
    }
}

/// Reads a path field (`InputPath`, `OutputPath`, `ItemsPath`, ...); one that matches nothing is
/// `States.Runtime` with AWS's cause, `Invalid path '<path>' : <Jayway's reason>`.
fn read_path(path: &str, document: &Value, context: &Value) -> Result<Value, StatesError> {
    paths::read(path, document, context).map_err(|err| match err {
        PathError::Missing(_) => {
            let (relative, searched) = match path.strip_prefix('$') {
                Some(rest) if rest.starts_with('$') => (rest, context),
                _ => (path, document),
            };
            StatesError::runtime(format!("Invalid path '{path}' : {}", paths::describe_missing(relative, searched)))
        }
        other => runtime(other),
    })
}

/// The whole, non-negative number of seconds `SecondsPath` names, or AWS's error for any other value.
fn seconds_at(path: &str, input: &Value, context: &Value) -> Result<i64, StatesError> {
    let value = match paths::read(path, input, context) {
        Ok(value) => value,
        Err(PathError::Missing(_)) => {
            return Err(StatesError::runtime(format!(
                "The SecondsPath parameter does not reference an input value: {path}"
            )));
        }
        Err(other) => return Err(runtime(other)),
    };
    let shown = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    match value.as_i64() {
        Some(seconds) if seconds >= 0 => Ok(seconds),
        Some(_) => Err(StatesError::runtime(format!(
            "The SecondsPath parameter references a negative value: {path} == {shown}"
        ))),
        None => Err(StatesError::runtime(format!(
            "The SecondsPath parameter cannot be parsed as a long value: {path} == {shown}"
        ))),
    }
}

/// The `MaxConcurrencyPath` limit: a non-negative integer (0 for no limit), else `States.Runtime`
/// with AWS's cause (LocalStack snapshots `test_max_concurrency_path`).
fn max_concurrency_at(path: &str, input: &Value, context: &Value) -> Result<u64, StatesError> {
    let value = read_path(path, input, context)?;
    match (value.as_u64(), value.as_i64()) {
        (Some(limit), _) => Ok(limit),
        (None, Some(negative)) => Err(StatesError::runtime(format!(
            "Expected non-negative integer for MaxConcurrency, got '{negative}' instead."
        ))),
        (None, None) => {
            let shown = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            Err(StatesError::runtime(format!(
                "The MaxConcurrencyPath field refers to value \"{shown}\" which is not a valid integer: {path}"
            )))
        }
    }
}

/// Prefixes a `States.Runtime` cause with the state it happened in, as AWS does, once.
fn locate(mut failure: Failure, state: &str, entered_id: usize) -> Failure {
    if failure.error.error == names::RUNTIME && !failure.located {
        failure.error.cause = format!(
            "An error occurred while executing the state '{state}' (entered at the event id #{entered_id}). {}",
            failure.error.cause
        );
        failure.located = true;
    }
    failure
}

fn runtime(err: PathError) -> StatesError {
    StatesError::runtime(err.to_string())
}

fn result_path(err: PathError) -> StatesError {
    StatesError::result_path(err.to_string())
}

/// `arn:aws:states:::sns:publish` -> ("sns", "publish"); `arn:aws:states:::aws-sdk:ssmincidents:startIncident`
/// -> ("aws-sdk:ssmincidents", "startIncident").
fn service_of(resource: &str) -> (String, String) {
    let Some(rest) = resource.strip_prefix("arn:aws:states:::") else {
        return ("unknown".into(), resource.to_owned());
    };
    match rest.rsplit_once(':') {
        Some((service, action)) => (service.to_owned(), action.split('.').next().unwrap_or(action).to_owned()),
        None => (rest.to_owned(), rest.to_owned()),
    }
}

fn type_prefix(state_type: &str) -> &str {
    match state_type {
        "Pass" | "Task" | "Choice" | "Wait" | "Succeed" | "Fail" | "Parallel" | "Map" => state_type,
        _ => "Unknown",
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
