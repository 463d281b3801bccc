//! Loading a definition: placeholders filled, then every state checked against what the runner
//! supports, so nothing it cannot run faithfully is run at all.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::choice;
use crate::error::Refused;
use crate::jsonata;

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

/// Fields a state may carry only in one query language, and what the other language has instead.
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultPath",
    "ResultSelector",
    "Result",
    "ItemsPath",
    "Iterator",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "MaxConcurrencyPath",
];
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

/// Fields of each state type in a JSONata state (besides Type, Comment, Next, End, QueryLanguage).
fn allowed_jsonata(state_type: &str) -> &'static [&'static str] {
    match state_type {
        "Pass" => &["Output", "Assign"],
        "Task" => {
            &["Resource", "Arguments", "Output", "Assign", "Retry", "Catch", "TimeoutSeconds", "HeartbeatSeconds"]
        }
        "Choice" => &["Choices", "Default", "Output", "Assign"],
        "Wait" => &["Seconds", "Timestamp", "Output", "Assign"],
        "Succeed" => &["Output"],
        "Fail" => &["Error", "Cause"],
        "Parallel" => &["Branches", "Arguments", "Output", "Assign", "Retry", "Catch"],
        "Map" => &["Items", "ItemSelector", "ItemProcessor", "MaxConcurrency", "Output", "Assign", "Retry", "Catch"],
        _ => &[],
    }
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
        let jsonata = root["QueryLanguage"] == "JSONata";
        check_machine(&root, "the definition", jsonata)?;
        check_variable_scopes(&root, &BTreeSet::new())?;
        Ok(Self { root })
    }

    /// The parsed definition.
    pub fn as_value(&self) -> &Value {
        &self.root
    }
}

/// Checks a state machine (the top level, a Parallel branch or a Map processor).
fn check_machine(machine: &Value, where_: &str, jsonata: bool) -> Result<(), Refused> {
    let refuse = |why: String| Err(Refused(format!("{where_}: {why}")));
    let Some(fields) = machine.as_object() else { return refuse("is not an object".into()) };
    for name in fields.keys() {
        match name.as_str() {
            "StartAt" | "States" | "Comment" | "TimeoutSeconds" | "Version" | "ProcessorConfig" => {}
            "QueryLanguage" if where_ == "the definition" => check_query_language(&machine["QueryLanguage"], where_)?,
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
        check_state(name, state, &names, jsonata)?;
    }
    Ok(())
}

fn check_query_language(value: &Value, where_: &str) -> Result<(), Refused> {
    match value.as_str() {
        Some("JSONPath" | "JSONata") => Ok(()),
        _ => Err(Refused(format!("{where_}: QueryLanguage {value} is not a query language (JSONPath or JSONata)"))),
    }
}

fn check_state(name: &str, state: &Value, names: &BTreeSet<&str>, machine_jsonata: bool) -> Result<(), Refused> {
    let refuse = |why: String| Err(Refused(format!("state {name:?}: {why}")));
    let Some(fields) = state.as_object() else { return refuse("is not an object".into()) };
    let Some(state_type) = state["Type"].as_str() else { return refuse("has no Type".into()) };
    if fields.contains_key("QueryLanguage") {
        check_query_language(&state["QueryLanguage"], &format!("state {name:?}"))?;
        if machine_jsonata && state["QueryLanguage"] == "JSONPath" {
            return refuse(
                "is JSONPath in a JSONata state machine; AWS lets a state only move from JSONPath to JSONata".into(),
            );
        }
    }
    let jsonata = match state["QueryLanguage"].as_str() {
        Some(language) => language == "JSONata",
        None => machine_jsonata,
    };
    let Some(extra) = allowed(state_type) else { return refuse(format!("unknown Type {state_type:?}")) };
    let extra = if jsonata { allowed_jsonata(state_type) } else { extra };
    for field in fields.keys() {
        let field = field.as_str();
        if let Some(feature) = unsupported_field(field) {
            return refuse(format!("field {field:?} needs {feature}, which the runner does not support"));
        }
        if jsonata && JSONPATH_ONLY.contains(&field) {
            return refuse(format!(
                "field {field:?} belongs to JSONPath; a JSONata state uses Arguments, Output and Assign"
            ));
        }
        if !jsonata && JSONATA_ONLY.contains(&field) {
            return refuse(format!("field {field:?} belongs to JSONata; this state's QueryLanguage is JSONPath"));
        }
        if !jsonata && field == "Assign" {
            return refuse(
                "Assign in a JSONPath state: the runner runs variables in JSONata states only (set QueryLanguage to JSONata)"
                    .into(),
            );
        }
        if !COMMON.contains(&field) && !extra.contains(&field) {
            return refuse(format!("field {field:?} is not supported on a {state_type} state"));
        }
    }
    if jsonata {
        check_jsonata_state(state_type, state).map_err(|why| Refused(format!("state {name:?}: {why}")))?;
    }
    check_map_context(name, state_type, fields)?;
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
            if !jsonata {
                choice::validate(state).map_err(|why| Refused(format!("state {name:?}: {why}")))?;
            }
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
                check_machine(branch, &format!("state {name:?} branch {n}"), jsonata)?;
            }
        }
        "Map" => {
            if fields.contains_key("MaxConcurrency") && fields.contains_key("MaxConcurrencyPath") {
                return refuse("a Map takes MaxConcurrency or MaxConcurrencyPath, not both".into());
            }
            let processor = state.get("ItemProcessor").or_else(|| state.get("Iterator"));
            let Some(processor) = processor else { return refuse("a Map needs an ItemProcessor".into()) };
            check_machine(processor, &format!("state {name:?} ItemProcessor"), jsonata)?;
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

/// A JSONata state's own rules: every expression parses, Assign names variables, Choice rules have
/// a Condition, and numbers that may be expressions are numbers or expressions.
fn check_jsonata_state(state_type: &str, state: &Value) -> Result<(), String> {
    for (field, value) in state.as_object().into_iter().flatten() {
        if matches!(field.as_str(), "Branches" | "ItemProcessor" | "Choices" | "Catch" | "Retry") {
            continue;
        }
        check_expressions(field, value)?;
    }
    check_assign(&state["Assign"])?;
    for (n, rule) in state["Choices"].as_array().into_iter().flatten().enumerate() {
        let condition = rule["Condition"].as_str().and_then(jsonata::expression);
        let Some(condition) = condition else {
            return Err(format!("Choices[{n}] needs a Condition written as {{% ... %}}"));
        };
        jsonata::check_syntax(condition).map_err(|e| format!("Choices[{n}].Condition is not valid JSONata: {e}"))?;
        for field in rule.as_object().into_iter().flatten().map(|(k, _)| k.as_str()) {
            if !matches!(field, "Condition" | "Next" | "Assign" | "Output" | "Comment") {
                return Err(format!(
                    "Choices[{n}] has {field:?}; a JSONata rule has Condition, Next, Assign and Output"
                ));
            }
        }
        check_expressions(&format!("Choices[{n}].Output"), &rule["Output"])?;
        check_expressions(&format!("Choices[{n}].Assign"), &rule["Assign"])?;
        check_assign(&rule["Assign"])?;
    }
    for (n, catcher) in state["Catch"].as_array().into_iter().flatten().enumerate() {
        for field in catcher.as_object().into_iter().flatten().map(|(k, _)| k.as_str()) {
            if !matches!(field, "ErrorEquals" | "Next" | "Assign" | "Output" | "Comment") {
                return Err(format!(
                    "Catch[{n}] has {field:?}; a JSONata catcher has ErrorEquals, Next, Assign and Output"
                ));
            }
        }
        check_expressions(&format!("Catch[{n}].Output"), &catcher["Output"])?;
        check_expressions(&format!("Catch[{n}].Assign"), &catcher["Assign"])?;
        check_assign(&catcher["Assign"])?;
    }
    let number_or_expression = |field: &str| match &state[field] {
        Value::Null | Value::Number(_) => Ok(()),
        Value::String(text) if jsonata::expression(text).is_some() => Ok(()),
        other => Err(format!("{field} must be a number or a JSONata expression, not {other}")),
    };
    match state_type {
        "Wait" => number_or_expression("Seconds")?,
        "Map" => number_or_expression("MaxConcurrency")?,
        "Task" => {
            for field in ["TimeoutSeconds", "HeartbeatSeconds"] {
                if state[field].is_string() {
                    return Err(format!("{field} as a JSONata expression (a dynamic task timeout) is not supported"));
                }
            }
        }
        _ => {}
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

fn check_expressions(field: &str, value: &Value) -> Result<(), String> {
    for expression in jsonata::expressions_in(value) {
        jsonata::check_syntax(expression)
            .map_err(|e| format!("{field}: {{%{expression}%}} is not valid JSONata: {e}"))?;
    }
    Ok(())
}

/// Assign names variables: a letter or `_`, then letters, digits and `_`; `states` is reserved.
fn check_assign(assign: &Value) -> Result<(), String> {
    match assign {
        Value::Null => Ok(()),
        Value::Object(fields) => {
            for name in fields.keys() {
                let mut chars = name.chars();
                let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("Assign: {name:?} is not a variable name"));
                }
                if name == "states" {
                    return Err("Assign: $states is reserved by Step Functions".into());
                }
            }
            Ok(())
        }
        other => Err(format!("Assign must be an object, not {other}")),
    }
}

/// The variables a machine's own states assign (not those inside its branches and processors).
fn assigned_names(machine: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for state in machine["States"].as_object().into_iter().flatten().map(|(_, s)| s) {
        let mut add = |assign: &Value| {
            names.extend(assign.as_object().into_iter().flatten().map(|(k, _)| k.clone()));
        };
        add(&state["Assign"]);
        for rule in state["Choices"].as_array().into_iter().flatten() {
            add(&rule["Assign"]);
        }
        for catcher in state["Catch"].as_array().into_iter().flatten() {
            add(&catcher["Assign"]);
        }
    }
    names
}

/// A Parallel branch or Map iteration reads the variables of the scopes around it but may not
/// assign them (AWS stops such a write). Replay refuses a definition where an inner scope assigns a
/// name an outer scope also assigns, rather than guess what that execution would do.
fn check_variable_scopes(machine: &Value, outer: &BTreeSet<String>) -> Result<(), Refused> {
    let own = assigned_names(machine);
    if let Some(name) = own.intersection(outer).next() {
        return Err(Refused(format!(
            "${name} is assigned inside a Parallel branch or Map iteration and also in a scope around it; \
             an inner scope can read an outer variable but not assign it"
        )));
    }
    let scope: BTreeSet<String> = outer.union(&own).cloned().collect();
    for state in machine["States"].as_object().into_iter().flatten().map(|(_, s)| s) {
        for branch in state["Branches"].as_array().into_iter().flatten() {
            check_variable_scopes(branch, &scope)?;
        }
        if let Some(processor) = state.get("ItemProcessor").or_else(|| state.get("Iterator")) {
            check_variable_scopes(processor, &scope)?;
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
