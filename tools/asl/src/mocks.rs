//! Mocked task responses in the AWS Step Functions Local `MockConfigFile` format.
//!
//! ```json
//! {"StateMachines": {"first-response": {"TestCases": {"BreakerOpen": {"Count Recent Failures": "Open"}}}},
//!  "MockedResponses": {"Open": {"0": {"Return": {"breakerOpen": true}}, "1-2": {"Throw": {"Error": "E", "Cause": "c"}}}}}
//! ```
//! A test case maps state names to mocked responses; a response maps invocation numbers (`"0"`,
//! `"1-2"`, counted per state from 0, retries included) to a `Return` or a `Throw`. States the test
//! case does not name run for real.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::error::{Refused, StatesError};
use crate::executor::{TaskCall, TaskRunner};

/// One mocked answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MockResponse {
    Return(Value),
    Throw(StatesError),
}

/// The mocked answers of one state, by invocation range.
#[derive(Debug, Clone, PartialEq)]
struct StateMock {
    response: String,
    ranges: Vec<(u32, u32, MockResponse)>,
}

/// A test case chosen from a mock file.
#[derive(Debug)]
pub struct TestCase {
    pub name: String,
    states: BTreeMap<String, StateMock>,
    calls: Mutex<BTreeMap<String, u32>>,
}

impl TestCase {
    /// Reads test case `case` of `state_machine` from a MockConfigFile. When the file describes a
    /// single state machine, `state_machine` may be `None`.
    pub fn load(text: &str, state_machine: Option<&str>, case: &str) -> Result<Self, Refused> {
        let file: Value = serde_json::from_str(text).map_err(|e| Refused(format!("the mock file is not JSON: {e}")))?;
        let machines =
            file["StateMachines"].as_object().ok_or_else(|| Refused("the mock file has no StateMachines".into()))?;
        let machine = match state_machine {
            Some(name) if machines.contains_key(name) => &machines[name],
            _ if machines.len() == 1 => machines.values().next().unwrap_or(&Value::Null),
            Some(name) => return Err(Refused(format!("the mock file has no state machine {name:?}"))),
            None => return Err(Refused("the mock file has several state machines; name one".into())),
        };
        let cases =
            machine["TestCases"].as_object().ok_or_else(|| Refused("the state machine has no TestCases".into()))?;
        let Some(chosen) = cases.get(case).and_then(Value::as_object) else {
            let known: Vec<&str> = cases.keys().map(String::as_str).collect();
            return Err(Refused(format!("no test case {case:?}; the mock file has {}", known.join(", "))));
        };
        let mut states = BTreeMap::new();
        for (state, response) in chosen {
            let response =
                response.as_str().ok_or_else(|| Refused(format!("test case {case}: {state} must name a response")))?;
            let ranges = parse_response(&file["MockedResponses"][response], response)?;
            states.insert(state.clone(), StateMock { response: response.to_owned(), ranges });
        }
        Ok(Self { name: case.to_owned(), states, calls: Mutex::new(BTreeMap::new()) })
    }

    /// The states this test case mocks.
    pub fn mocked_states(&self) -> impl Iterator<Item = &str> {
        self.states.keys().map(String::as_str)
    }

    /// The mocked answer for the next invocation of `state`, or `None` when it is not mocked.
    pub fn answer(&self, state: &str) -> Option<Result<Value, StatesError>> {
        let mock = self.states.get(state)?;
        let invocation = {
            let mut calls = self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = calls.entry(state.to_owned()).or_insert(0);
            let current = *count;
            *count += 1;
            current
        };
        let found = mock.ranges.iter().find(|(from, to, _)| (*from..=*to).contains(&invocation));
        Some(match found {
            Some((_, _, MockResponse::Return(value))) => Ok(value.clone()),
            Some((_, _, MockResponse::Throw(error))) => Err(error.clone()),
            None => Err(StatesError::runtime(format!(
                "mocked response {:?} has no answer for invocation {invocation} of {state:?}",
                mock.response
            ))),
        })
    }
}

fn parse_response(response: &Value, name: &str) -> Result<Vec<(u32, u32, MockResponse)>, Refused> {
    let refuse = |why: String| Refused(format!("mocked response {name:?}: {why}"));
    let entries = response.as_object().ok_or_else(|| refuse("is missing or not an object".into()))?;
    let mut ranges = Vec::new();
    for (range, answer) in entries {
        let bounds = match range.split_once('-') {
            Some((from, to)) => (from.trim().parse(), to.trim().parse()),
            None => (range.trim().parse(), range.trim().parse()),
        };
        let (Ok(from), Ok(to)) = bounds else {
            return Err(refuse(format!("{range:?} is not an invocation or a range")));
        };
        if from > to {
            return Err(refuse(format!("range {range:?} runs backwards")));
        }
        let answer = match (answer.get("Return"), answer.get("Throw")) {
            (Some(value), None) => MockResponse::Return(value.clone()),
            (None, Some(throw)) => MockResponse::Throw(StatesError::new(
                throw["Error"].as_str().unwrap_or_default(),
                throw["Cause"].as_str().unwrap_or_default(),
            )),
            _ => return Err(refuse(format!("{range:?} needs exactly one of Return and Throw"))),
        };
        ranges.push((from, to, answer));
    }
    Ok(ranges)
}

/// A task runner that answers mocked states from a test case and hands the rest to `inner`.
pub struct Mocked<'a, R> {
    pub case: &'a TestCase,
    pub inner: &'a R,
}

impl<R: TaskRunner> TaskRunner for Mocked<'_, R> {
    async fn run(&self, call: &TaskCall) -> Result<Value, StatesError> {
        match self.case.answer(&call.state) {
            Some(answer) => answer,
            None => self.inner.run(call).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"{
      "StateMachines": {"sm": {"TestCases": {"Flaky": {"Work": "FailTwice"}}}},
      "MockedResponses": {"FailTwice": {
        "0-1": {"Throw": {"Error": "TransientError", "Cause": "busy"}},
        "2": {"Return": {"ok": true}}
      }}
    }"#;

    #[test]
    fn invocations_are_answered_by_range() {
        let case = TestCase::load(FILE, Some("sm"), "Flaky").expect("case");
        assert_eq!(case.answer("Work"), Some(Err(StatesError::new("TransientError", "busy"))));
        assert_eq!(case.answer("Work"), Some(Err(StatesError::new("TransientError", "busy"))));
        assert_eq!(case.answer("Work"), Some(Ok(json!({"ok": true}))));
        assert!(matches!(case.answer("Work"), Some(Err(e)) if e.error == "States.Runtime"));
        assert_eq!(case.answer("Other"), None);
    }

    #[test]
    fn unknown_cases_and_bad_ranges_are_refused() {
        assert!(TestCase::load(FILE, None, "Nope").expect_err("unknown").0.contains("Flaky"));
        let bad = FILE.replace("\"0-1\"", "\"1-0\"");
        assert!(TestCase::load(&bad, None, "Flaky").is_err());
    }
}
