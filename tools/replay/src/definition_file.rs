//! Reading a state machine definition file: placeholders filled, and any other file of the project (a template, an event, an execution input, a mock
//! file) refused by name, saying what it is, before the executor reads it as a definition.

use std::path::{Path, PathBuf};

use asl::{Definition, Refused};
use serde_json::Value;

/// Why a definition file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("{}: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("NotAStateMachine: {} is not a state machine definition: {what}", path.display())]
    NotAStateMachine { path: PathBuf, what: String },
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// Reads the definition at `path`, filling its `${Placeholders}` from `substitutions` as the SAM
/// template's `DefinitionSubstitutions` would.
pub fn load(path: &Path, substitutions: &[(String, String)]) -> Result<Definition, DefinitionError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| DefinitionError::Unreadable { path: path.to_owned(), source })?;
    let mut filled = text;
    for (name, value) in substitutions {
        filled = filled.replace(&format!("${{{name}}}"), value);
    }
    if let Some(what) = not_a_state_machine(&filled) {
        return Err(DefinitionError::NotAStateMachine { path: path.to_owned(), what });
    }
    Ok(Definition::parse(&filled, &[])?)
}

/// What `text` is instead of a state machine definition (a JSON object with `StartAt` and
/// `States`), or `None` when it is one.
pub fn not_a_state_machine(text: &str) -> Option<String> {
    let document: Value = match serde_json::from_str(text) {
        Ok(document) => document,
        Err(error) => return Some(not_json(text, &error)),
    };
    let Some(fields) = document.as_object() else {
        return Some(format!("it is a JSON {}, not an object with \"StartAt\" and \"States\"", json_kind(&document)));
    };
    let has = |key: &str| fields.contains_key(key);
    if has("StartAt") && has("States") {
        return None;
    }
    Some(if has("AWSTemplateFormatVersion") || has("Resources") {
        TEMPLATE.to_owned()
    } else if has("detail-type") && has("detail") {
        let kind = fields["detail-type"].as_str().unwrap_or("an event");
        format!(
            "it is an EventBridge event ({kind}); `replay event FILE` routes an alarm event and runs the \
             execution the router starts"
        )
    } else if has("StateMachines") || has("MockedResponses") {
        "it is a mock file (MockConfigFile format); pass it with --mocks FILE --test-case NAME".to_owned()
    } else if has("alarm") && has("incidentKey") {
        "it is an execution input (alarm, route, incidentKey, notice); `replay run DEFINITION --input FILE` runs it"
            .to_owned()
    } else if has("stateMachineArn") && fields.get("definition").is_some_and(Value::is_string) {
        "it is `aws stepfunctions describe-state-machine` output; the definition is the text of its \
         \"definition\" field (`jq -r .definition FILE > machine.asl.json`)"
            .to_owned()
    } else if fields.get("events").is_some_and(Value::is_array) {
        "it is an execution history (as --history writes it)".to_owned()
    } else {
        let missing: Vec<&str> = ["StartAt", "States"].into_iter().filter(|key| !has(key)).collect();
        format!("it is a JSON object without \"{}\"", missing.join("\" or \""))
    })
}

const TEMPLATE: &str = "it is a SAM or CloudFormation template; give the definition file its state machine's \
                        DefinitionUri names, such as statemachines/first-response.asl.json";

/// What text that does not parse as JSON is.
fn not_json(text: &str, error: &serde_json::Error) -> String {
    if text.contains("AWSTemplateFormatVersion") || text.contains("AWS::Serverless") {
        return TEMPLATE.to_owned();
    }
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    if lines.len() > 1 && lines.iter().all(|line| serde_json::from_str::<Value>(line).is_ok()) {
        return "it is JSON Lines (one JSON document per line), like the alarm histories `replay history` reads"
            .to_owned();
    }
    format!("it is not JSON ({error})")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_file_is_named_for_what_it_is() {
        let cases = [
            (
                "AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\n",
                "SAM or CloudFormation",
            ),
            (r#"{"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}"#, "SAM or CloudFormation"),
            (r#"{"detail-type": "CloudWatch Alarm State Change", "detail": {}}"#, "EventBridge event"),
            (r#"{"StateMachines": {}, "MockedResponses": {}}"#, "--mocks"),
            (r#"{"alarm": {}, "route": {}, "incidentKey": "k", "notice": {}}"#, "--input FILE"),
            (r#"{"stateMachineArn": "arn", "definition": "{}"}"#, "describe-state-machine"),
            (r#"{"events": []}"#, "execution history"),
            ("{\"a\": 1}\n{\"b\": 2}\n", "JSON Lines"),
            ("StartAt: Zulu", "not JSON"),
            ("[1, 2]", "JSON array"),
            (r#"{"a": 1}"#, "without \"StartAt\" or \"States\""),
            (r#"{"StartAt": "A"}"#, "without \"States\""),
        ];
        for (text, expected) in cases {
            let what = not_a_state_machine(text).unwrap_or_else(|| panic!("{text} taken for a state machine"));
            assert!(what.contains(expected), "{text}: {what}");
        }
    }

    #[test]
    fn a_state_machine_is_left_to_the_executor_to_check() {
        assert_eq!(not_a_state_machine(r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#), None);
        assert_eq!(not_a_state_machine(r#"{"StartAt": "Missing", "States": {}}"#), None);
    }
}
