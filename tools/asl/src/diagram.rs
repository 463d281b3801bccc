//! A state machine as a Mermaid flowchart, its states in the order the definition lists them.
//!
//! The order is the parsed definition's own: the workspace builds serde_json with
//! `preserve_order`, so a `Map` keeps its keys as the text wrote them.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::definition::Definition;

/// The definition as a Mermaid `flowchart TD`, with Choice rules, Catch and Default edges
/// labelled, its states (nested Parallel branches and Map processors too) in definition order.
pub fn mermaid(definition: &Definition) -> String {
    let mut out = String::from("flowchart TD\n");
    let mut ids = 0usize;
    draw_machine(definition.as_value(), "", &mut out, &mut ids);
    out
}

fn draw_machine(machine: &Value, prefix: &str, out: &mut String, ids: &mut usize) {
    let Some(states) = machine["States"].as_object() else { return };
    let id_of: BTreeMap<&str, String> = states
        .iter()
        .map(|(name, _)| {
            *ids += 1;
            (name.as_str(), format!("{prefix}s{}", *ids))
        })
        .collect();
    let node = |name: &str| id_of.get(name).cloned().unwrap_or_else(|| "missing".to_owned());
    let start = format!("{prefix}start");
    let end = format!("{prefix}finish");
    let _ = writeln!(out, "    {start}((Start)) --> {}", node(machine["StartAt"].as_str().unwrap_or_default()));
    let mut ends = false;
    for (name, state) in states {
        let id = node(name);
        let label = escape(name);
        let shape = match state["Type"].as_str().unwrap_or_default() {
            "Choice" => format!("{id}{{\"{label}\"}}"),
            "Succeed" => format!("{id}([\"{label}\"])"),
            "Fail" => format!("{id}[/\"{label}\"/]"),
            "Pass" => format!("{id}[\"{label}\"]"),
            "Wait" => format!("{id}[(\"{label}\")]"),
            _ => format!("{id}[[\"{label}\"]]"),
        };
        let _ = writeln!(out, "    {shape}");
        if let Some(next) = state["Next"].as_str() {
            let _ = writeln!(out, "    {id} --> {}", node(next));
        }
        if state["End"].as_bool() == Some(true) || matches!(state["Type"].as_str(), Some("Succeed" | "Fail")) {
            let _ = writeln!(out, "    {id} --> {end}");
            ends = true;
        }
        for rule in state["Choices"].as_array().into_iter().flatten() {
            if let Some(next) = rule["Next"].as_str() {
                let _ = writeln!(out, "    {id} -->|\"{}\"| {}", escape(&condition(rule)), node(next));
            }
        }
        if let Some(default) = state["Default"].as_str() {
            let _ = writeln!(out, "    {id} -->|default| {}", node(default));
        }
        for catcher in state["Catch"].as_array().into_iter().flatten() {
            if let Some(next) = catcher["Next"].as_str() {
                let errors: Vec<&str> =
                    catcher["ErrorEquals"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let _ = writeln!(out, "    {id} -.->|\"catch {}\"| {}", escape(&errors.join(", ")), node(next));
            }
        }
        let nested: Vec<&Value> = match state["Type"].as_str() {
            Some("Parallel") => state["Branches"].as_array().map(|b| b.iter().collect()).unwrap_or_default(),
            Some("Map") => state.get("ItemProcessor").or_else(|| state.get("Iterator")).into_iter().collect(),
            _ => Vec::new(),
        };
        for (n, branch) in nested.into_iter().enumerate() {
            let _ = writeln!(
                out,
                "    subgraph {id}_b{n}[\"{label} {}\"]",
                if state["Type"] == "Map" { "item".to_owned() } else { format!("branch {n}") }
            );
            draw_machine(branch, &format!("{id}_b{n}_"), out, ids);
            let _ = writeln!(out, "    end");
            let _ = writeln!(out, "    {id} -.- {id}_b{n}");
        }
    }
    if ends {
        let _ = writeln!(out, "    {end}((End))");
    }
}

/// A short reading of a Choice rule.
fn condition(rule: &Value) -> String {
    let Some(fields) = rule.as_object() else { return String::new() };
    if let Some(all) = rule["And"].as_array() {
        return all.iter().map(condition).collect::<Vec<_>>().join(" and ");
    }
    if let Some(any) = rule["Or"].as_array() {
        return any.iter().map(condition).collect::<Vec<_>>().join(" or ");
    }
    if let Some(inner) = rule.get("Not") {
        return format!("not ({})", condition(inner));
    }
    let variable = rule["Variable"].as_str().unwrap_or("?");
    fields
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "Variable" | "Next"))
        .map(|(operator, value)| format!("{variable} {operator} {value}"))
        .unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('"', "#quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// State names out of alphabetical order at every level: the top, a Parallel's branches and a
    /// Map's processor.
    const UNSORTED: &str = r#"{
      "StartAt": "Zulu",
      "States": {
        "Zulu": {"Type": "Pass", "Next": "Mike"},
        "Mike": {"Type": "Parallel", "Next": "Kilo", "Branches": [
          {"StartAt": "Yankee", "States": {"Yankee": {"Type": "Pass", "Next": "Bravo"}, "Bravo": {"Type": "Succeed"}}},
          {"StartAt": "Whiskey", "States": {"Whiskey": {"Type": "Pass", "Next": "Charlie"}, "Charlie": {"Type": "Succeed"}}}
        ]},
        "Kilo": {"Type": "Map", "Next": "Alpha", "ItemProcessor": {"StartAt": "Xray", "States": {
          "Xray": {"Type": "Pass", "Next": "Delta"}, "Delta": {"Type": "Succeed"}
        }}},
        "Alpha": {"Type": "Succeed"}
      }
    }"#;

    /// The state names in the order the diagram declares their nodes.
    fn drawn_order(mermaid: &str) -> Vec<String> {
        mermaid
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let node = line.split_once('"').filter(|(id, _)| !id.contains(' ') && !id.starts_with("subgraph"))?;
                Some(node.1.split('"').next()?.to_owned())
            })
            .collect()
    }

    #[test]
    fn the_states_are_drawn_in_the_order_the_definition_lists_them() {
        // GIVEN a definition whose state names are not in alphabetical order, nested ones included
        let definition = Definition::parse(UNSORTED, &[]).expect("definition");
        // WHEN it is drawn
        let mermaid = mermaid(&definition);
        // THEN every level keeps the definition's order
        assert_eq!(
            drawn_order(&mermaid),
            ["Zulu", "Mike", "Yankee", "Bravo", "Whiskey", "Charlie", "Kilo", "Xray", "Delta", "Alpha"],
            "{mermaid}"
        );
        assert!(mermaid.contains("start((Start)) --> s1\n    s1[\"Zulu\"]\n"), "{mermaid}");
    }
}
