//! A state machine as a Mermaid flowchart, its states in the order the definition lists them.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::definition::Definition;

/// The order in which a definition's text lists its states, at every level. A parsed
/// [`Definition`] cannot tell: serde_json's `Map` keeps its keys sorted unless the crate's
/// `preserve_order` feature happens to be on in the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateOrder {
    pub states: Vec<StateInOrder>,
}

/// A state's name and, in order, the state machines nested in it: a Parallel's branches, or a
/// Map's processor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateInOrder {
    pub name: String,
    pub nested: Vec<StateOrder>,
}

impl StateOrder {
    /// Reads the order of the states from the text of a definition (placeholders filled).
    pub fn of(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The machine nested in state `name` at position `index`, if the order knows it.
    fn nested(&self, name: &str, index: usize) -> Option<&StateOrder> {
        self.states.iter().find(|s| s.name == name)?.nested.get(index)
    }
}

impl<'de> Deserialize<'de> for StateOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MachineVisitor)
    }
}

/// Reads a state machine object: the names under `States`, everything else skipped.
struct MachineVisitor;

impl<'de> Visitor<'de> for MachineVisitor {
    type Value = StateOrder;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a state machine (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StateOrder, A::Error> {
        let mut order = StateOrder::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "States" {
                order.states = map.next_value::<StatesInOrder>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(order)
    }
}

/// The `States` object: its keys in the order written.
struct StatesInOrder(Vec<StateInOrder>);

impl<'de> Deserialize<'de> for StatesInOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatesVisitor;
        impl<'de> Visitor<'de> for StatesVisitor {
            type Value = StatesInOrder;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the States object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StatesInOrder, A::Error> {
                let mut states = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let nested = map.next_value::<NestedMachines>()?.0;
                    states.push(StateInOrder { name, nested });
                }
                Ok(StatesInOrder(states))
            }
        }
        deserializer.deserialize_map(StatesVisitor)
    }
}

/// One state: the machines in its `Branches`, `ItemProcessor` or `Iterator`.
struct NestedMachines(Vec<StateOrder>);

impl<'de> Deserialize<'de> for NestedMachines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StateVisitor;
        impl<'de> Visitor<'de> for StateVisitor {
            type Value = NestedMachines;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a state (a JSON object)")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NestedMachines, A::Error> {
                let mut nested = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "Branches" => nested = map.next_value::<Vec<StateOrder>>()?,
                        "ItemProcessor" | "Iterator" => nested = vec![map.next_value::<StateOrder>()?],
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(NestedMachines(nested))
            }
        }
        deserializer.deserialize_map(StateVisitor)
    }
}

/// The definition as a Mermaid `flowchart TD`, with Choice rules, Catch and Default edges
/// labelled, its states in the order the map of the parsed definition holds them (sorted by name
/// unless serde_json's `preserve_order` is on); [`mermaid_ordered`] keeps the definition's order.
pub fn mermaid(definition: &Definition) -> String {
    mermaid_ordered(definition, &StateOrder::default())
}

/// The definition as a Mermaid `flowchart TD`, with Choice rules, Catch and Default edges
/// labelled, its states in the order `order` lists them (see [`StateOrder::of`]); states it does
/// not list follow the others.
pub fn mermaid_ordered(definition: &Definition, order: &StateOrder) -> String {
    let mut out = String::from("flowchart TD\n");
    let mut ids = 0usize;
    draw_machine(definition.as_value(), order, "", &mut out, &mut ids);
    out
}

/// The names of `states` in the order `order` lists them, then any it does not list.
fn in_order<'a>(states: &'a serde_json::Map<String, Value>, order: &StateOrder) -> Vec<(&'a str, &'a Value)> {
    let mut listed: Vec<(&str, &Value)> = Vec::with_capacity(states.len());
    let listed_names = order.states.iter().filter_map(|s| states.get_key_value(s.name.as_str()));
    for (name, state) in listed_names.chain(states.iter()) {
        if !listed.iter().any(|(seen, _)| *seen == name) {
            listed.push((name.as_str(), state));
        }
    }
    listed
}

fn draw_machine(machine: &Value, order: &StateOrder, prefix: &str, out: &mut String, ids: &mut usize) {
    let Some(states) = machine["States"].as_object() else { return };
    let states = in_order(states, order);
    let id_of: BTreeMap<&str, String> = states
        .iter()
        .map(|(name, _)| {
            *ids += 1;
            (*name, format!("{prefix}s{}", *ids))
        })
        .collect();
    let node = |name: &str| id_of.get(name).cloned().unwrap_or_else(|| "missing".to_owned());
    let start = format!("{prefix}start");
    let end = format!("{prefix}finish");
    let _ = writeln!(out, "    {start}((Start)) --> {}", node(machine["StartAt"].as_str().unwrap_or_default()));
    let mut ends = false;
    let unknown = StateOrder::default();
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
            let nested_order = order.nested(name, n).unwrap_or(&unknown);
            draw_machine(branch, nested_order, &format!("{id}_b{n}_"), out, ids);
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
        let order = StateOrder::of(UNSORTED).expect("order");
        // WHEN it is drawn
        let mermaid = mermaid_ordered(&definition, &order);
        // THEN every level keeps the definition's order
        assert_eq!(
            drawn_order(&mermaid),
            ["Zulu", "Mike", "Yankee", "Bravo", "Whiskey", "Charlie", "Kilo", "Xray", "Delta", "Alpha"],
            "{mermaid}"
        );
        assert!(mermaid.contains("start((Start)) --> s1\n    s1[\"Zulu\"]\n"), "{mermaid}");
    }

    #[test]
    fn the_order_is_read_from_the_text_at_every_level() {
        let order = StateOrder::of(UNSORTED).expect("order");
        let names: Vec<&str> = order.states.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Zulu", "Mike", "Kilo", "Alpha"]);
        let mike = &order.states[1].nested;
        assert_eq!(mike.len(), 2, "two branches");
        assert_eq!(mike[1].states.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Whiskey", "Charlie"]);
        let kilo = &order.states[2].nested;
        assert_eq!(kilo[0].states.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Xray", "Delta"]);
    }

    #[test]
    fn states_the_order_does_not_know_are_still_drawn() {
        let definition = Definition::parse(UNSORTED, &[]).expect("definition");
        let mermaid = mermaid_ordered(&definition, &StateOrder::default());
        let mut drawn = drawn_order(&mermaid);
        drawn.sort();
        assert_eq!(drawn, ["Alpha", "Bravo", "Charlie", "Delta", "Kilo", "Mike", "Whiskey", "Xray", "Yankee", "Zulu"]);
    }

    #[test]
    fn text_that_is_not_json_has_no_order() {
        assert!(StateOrder::of("StartAt: Zulu").is_err());
    }
}
