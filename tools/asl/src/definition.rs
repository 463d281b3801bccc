//! Loading a definition: placeholders filled, then every state checked against what the runner
//! supports, so nothing it cannot run faithfully is run at all.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::choice;
use crate::error::Refused;

/// Fields any state may carry.
const COMMON: &[&str] = &["Type", "Comment", "Next", "End", "InputPath", "OutputPath", "QueryLanguage"];

fn allowed(state_type: &str) -> Option<&'static [&'static str]> {
    Some(match state_type {
        "Pass" => &["Result", "ResultPath", "Parameters"],
        "Task" => &[
            "Resource",
            "Parameters",
            "ResultPath",
            "ResultSelector",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "HeartbeatSeconds",
        ],
        "Choice" => &["Choices", "Default"],
        "Wait" => &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
        "Succeed" => &[],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &["Branches", "Parameters", "ResultPath", "ResultSelector", "Retry", "Catch"],
        "Map" => &[
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "ItemProcessor",
            "Iterator",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ResultPath",
            "ResultSelector",
            "Retry",
            "Catch",
        ],
        _ => return None,
    })
}

/// Fields that belong to features the runner does not implement, with what they are.
fn unsupported_field(name: &str) -> Option<&'static str> {
    Some(match name {
        "Arguments" | "Output" | "Items" => "the JSONata query language",
        "Assign" => "variables (Assign)",
        "Credentials" => "cross-account task credentials",
        "TimeoutSecondsPath" | "HeartbeatSecondsPath" => "dynamic task timeouts",
        "ItemReader"
        | "ItemBatcher"
        | "ResultWriter"
        | "ToleratedFailureCount"
        | "ToleratedFailurePercentage"
        | "ToleratedFailureCountPath"
        | "ToleratedFailurePercentagePath"
        | "Label" => "distributed Map",
        _ => return None,
    })
}

/// A definition the runner has checked and will run.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub(crate) root: Value,
}

impl Definition {
    /// Parses a definition, filling `${Name}` placeholders from `substitutions` first (as
    /// CloudFormation's `DefinitionSubstitutions` would); a placeholder left over is refused.
    pub fn parse(text: &str, substitutions: &[(String, String)]) -> Result<Self, Refused> {
        let mut filled = text.to_owned();
        for (name, value) in substitutions {
            filled = filled.replace(&format!("${{{name}}}"), value);
        }
        let root: Value =
            serde_json::from_str(&filled).map_err(|e| Refused(format!("the definition is not JSON: {e}")))?;
        Self::from_value(root)
    }

    /// Checks a parsed definition.
    pub fn from_value(root: Value) -> Result<Self, Refused> {
        let text = root.to_string();
        if let Some(start) = text.find("${") {
            let name: String = text[start..].chars().take_while(|c| *c != '}').collect();
            return Err(Refused(format!("placeholder {name}}} has no substitution")));
        }
        check_machine(&root, "the definition")?;
        Ok(Self { root })
    }

    /// The parsed definition.
    pub fn as_value(&self) -> &Value {
        &self.root
    }
}

/// Checks a state machine (the top level, a Parallel branch or a Map processor).
fn check_machine(machine: &Value, where_: &str) -> Result<(), Refused> {
    let refuse = |why: String| Err(Refused(format!("{where_}: {why}")));
    let Some(fields) = machine.as_object() else { return refuse("is not an object".into()) };
    for name in fields.keys() {
        match name.as_str() {
            "StartAt" | "States" | "Comment" | "TimeoutSeconds" | "Version" | "ProcessorConfig" => {}
            "QueryLanguage" => check_query_language(&machine["QueryLanguage"], where_)?,
            other => return refuse(format!("unsupported field {other:?}")),
        }
    }
    if let Some(mode) = machine["ProcessorConfig"]["Mode"].as_str().filter(|m| *m != "INLINE") {
        return refuse(format!("Map mode {mode} (distributed Map) is not supported; only INLINE"));
    }
    let Some(states) = machine["States"].as_object().filter(|s| !s.is_empty()) else {
        return refuse("has no States".into());
    };
    let Some(start) = machine["StartAt"].as_str() else { return refuse("has no StartAt".into()) };
    if !states.contains_key(start) {
        return refuse(format!("StartAt {start:?} is not a state"));
    }
    let names: BTreeSet<&str> = states.keys().map(String::as_str).collect();
    for (name, state) in states {
        check_state(name, state, &names)?;
    }
    Ok(())
}

fn check_query_language(value: &Value, where_: &str) -> Result<(), Refused> {
    match value.as_str() {
        Some("JSONPath") => Ok(()),
        Some("JSONata") => Err(Refused(format!(
            "{where_} uses QueryLanguage JSONata, which the runner does not support; only JSONPath"
        ))),
        _ => Err(Refused(format!("{where_}: QueryLanguage {value} is not a query language"))),
    }
}

fn check_state(name: &str, state: &Value, names: &BTreeSet<&str>) -> Result<(), Refused> {
    let refuse = |why: String| Err(Refused(format!("state {name:?}: {why}")));
    let Some(fields) = state.as_object() else { return refuse("is not an object".into()) };
    let Some(state_type) = state["Type"].as_str() else { return refuse("has no Type".into()) };
    let Some(extra) = allowed(state_type) else { return refuse(format!("unknown Type {state_type:?}")) };
    for field in fields.keys() {
        if let Some(feature) = unsupported_field(field) {
            return refuse(format!("field {field:?} needs {feature}, which the runner does not support"));
        }
        if !COMMON.contains(&field.as_str()) && !extra.contains(&field.as_str()) {
            return refuse(format!("field {field:?} is not supported on a {state_type} state"));
        }
    }
    check_map_context(name, state_type, fields)?;
    if fields.contains_key("QueryLanguage") {
        check_query_language(&state["QueryLanguage"], &format!("state {name:?}"))?;
    }
    let terminal = matches!(state_type, "Choice" | "Succeed" | "Fail");
    let next = state["Next"].as_str();
    let end = state["End"].as_bool() == Some(true);
    if terminal {
        if next.is_some() || fields.contains_key("End") {
            return refuse(format!("a {state_type} state has no Next or End"));
        }
    } else if next.is_some() == end {
        return refuse("needs exactly one of Next and End".into());
    }
    let target =
        |to: &str| if names.contains(to) { Ok(()) } else { refuse(format!("transitions to unknown state {to:?}")) };
    if let Some(next) = next {
        target(next)?;
    }
    match state_type {
        "Choice" => {
            choice::validate(state).map_err(|why| Refused(format!("state {name:?}: {why}")))?;
            for rule in state["Choices"].as_array().into_iter().flatten() {
                if let Some(next) = rule["Next"].as_str() {
                    target(next)?;
                }
            }
            if let Some(default) = state["Default"].as_str() {
                target(default)?;
            }
        }
        "Task" if !state["Resource"].is_string() => return refuse("a Task needs a Resource".into()),
        "Wait" => {
            let given = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
                .iter()
                .filter(|f| fields.contains_key(**f))
                .count();
            if given != 1 {
                return refuse("a Wait needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath".into());
            }
        }
        "Parallel" => {
            let Some(branches) = state["Branches"].as_array().filter(|b| !b.is_empty()) else {
                return refuse("a Parallel needs Branches".into());
            };
            for (n, branch) in branches.iter().enumerate() {
                check_machine(branch, &format!("state {name:?} branch {n}"))?;
            }
        }
        "Map" => {
            if fields.contains_key("MaxConcurrency") && fields.contains_key("MaxConcurrencyPath") {
                return refuse("a Map takes MaxConcurrency or MaxConcurrencyPath, not both".into());
            }
            let processor = state.get("ItemProcessor").or_else(|| state.get("Iterator"));
            let Some(processor) = processor else { return refuse("a Map needs an ItemProcessor".into()) };
            check_machine(processor, &format!("state {name:?} ItemProcessor"))?;
        }
        _ => {}
    }
    for list in ["Retry", "Catch"] {
        for rule in state[list].as_array().into_iter().flatten() {
            let Some(errors) = rule["ErrorEquals"].as_array().filter(|e| !e.is_empty()) else {
                return refuse(format!("every {list} rule needs ErrorEquals"));
            };
            if errors.iter().any(|e| e == "States.ALL") && errors.len() > 1 {
                return refuse(format!("States.ALL must stand alone in a {list} rule"));
            }
            if list == "Catch" {
                match rule["Next"].as_str() {
                    Some(next) => target(next)?,
                    None => return refuse("every Catch rule needs Next".into()),
                }
            }
        }
    }
    Ok(())
}

/// `$$.Map` is documented only for a Map state's `ItemSelector` (or legacy `Parameters`); what AWS
/// gives for it anywhere else (inside an iteration, in the Map's own `ResultSelector`, ...) is not
/// documented or recorded, so such a definition is refused rather than guessed at.
fn check_map_context(name: &str, state_type: &str, fields: &serde_json::Map<String, Value>) -> Result<(), Refused> {
    for (field, value) in fields {
        let nested_machine = matches!(field.as_str(), "ItemProcessor" | "Iterator" | "Branches");
        let item_selector = state_type == "Map" && matches!(field.as_str(), "ItemSelector" | "Parameters");
        if !nested_machine && !item_selector && mentions_map_context(value) {
            return Err(Refused(format!(
                "state {name:?}: field {field:?} reads $$.Map, which AWS defines only in a Map state's ItemSelector; \
                 its value anywhere else is not documented, so the runner will not guess it"
            )));
        }
    }
    Ok(())
}

fn mentions_map_context(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains("$$.Map") || text.contains("$$['Map']") || text.contains("$$[\"Map\"]"),
        Value::Array(items) => items.iter().any(mentions_map_context),
        Value::Object(map) => map.values().any(mentions_map_context),
        _ => false,
    }
}
