//! JSONPath as ASL uses it: paths that read (`InputPath`, `OutputPath`, `.$` fields, Choice
//! variables, intrinsic arguments) and reference paths that write (`ResultPath`).
//!
//! Reading is RFC 9535 JSONPath (`serde_json_path`); a path starting `$$` reads the context
//! object. A definite path (no wildcard, descendant, filter, slice or union) yields its one
//! value; any other path yields the array of everything it matched.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// Why a path could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not a valid path.
    #[error("invalid path {0:?}: {1}")]
    Syntax(String, String),
    /// A definite path that matches nothing.
    #[error("the path {0:?} matches nothing")]
    Missing(String),
    /// A reference path runs through a value that cannot hold it (a string, a number, ...).
    #[error("cannot write {0:?}: {1}")]
    Mismatch(String, String),
}

/// True for strings that are paths (`$...` or `$$...`).
pub fn is_path(text: &str) -> bool {
    text.starts_with('$')
}

/// The value at `path`, reading `$$` paths from `context`; `Ok(None)` when a definite path
/// matches nothing.
pub fn lookup(path: &str, input: &Value, context: &Value) -> Result<Option<Value>, PathError> {
    let (document, path_text) = match path.strip_prefix("$$") {
        Some(rest) => (context, format!("${rest}")),
        None => (input, path.to_owned()),
    };
    if !path_text.starts_with('$') {
        return Err(PathError::Syntax(path.to_owned(), "a path starts with $".into()));
    }
    let compiled = JsonPath::parse(&path_text).map_err(|e| PathError::Syntax(path.to_owned(), e.to_string()))?;
    let nodes = compiled.query(document).all();
    if is_definite(&path_text) {
        Ok(nodes.first().map(|v| (*v).clone()))
    } else {
        Ok(Some(Value::Array(nodes.into_iter().cloned().collect())))
    }
}

/// The value at `path`, which must match something.
pub fn read(path: &str, input: &Value, context: &Value) -> Result<Value, PathError> {
    lookup(path, input, context)?.ok_or_else(|| PathError::Missing(path.to_owned()))
}

/// Whether a path names at most one value: no wildcard, descendant, filter, slice or union.
pub fn is_definite(path: &str) -> bool {
    let mut in_quote: Option<char> = None;
    let mut in_bracket = false;
    let mut previous = '\0';
    for c in path.chars() {
        match in_quote {
            Some(q) if c == q && previous != '\\' => in_quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => in_quote = Some(c),
                '[' => in_bracket = true,
                ']' => in_bracket = false,
                '*' | '?' => return false,
                '.' if previous == '.' => return false,
                ',' | ':' if in_bracket => return false,
                _ => {}
            },
        }
        previous = c;
    }
    true
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// Parses a reference path: `$`, then `.name`, `['name']`, `["name"]` or `[n]` steps.
fn reference_steps(path: &str) -> Result<Vec<Step>, PathError> {
    let syntax = |why: &str| PathError::Syntax(path.to_owned(), why.to_owned());
    let rest = path.strip_prefix('$').ok_or_else(|| syntax("a reference path starts with $"))?;
    if rest.starts_with('$') {
        return Err(syntax("a reference path cannot write to the context object"));
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                if name.is_empty() || name == "*" {
                    return Err(syntax("a reference path names single fields"));
                }
                steps.push(Step::Field(name));
                i = end;
            }
            '[' => {
                let close =
                    chars[i..].iter().position(|c| *c == ']').map(|p| p + i).ok_or_else(|| syntax("unclosed ["))?;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if let Some(quoted) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    steps.push(Step::Field(quoted.to_owned()));
                } else {
                    let index = inner.parse().map_err(|_| syntax("a reference path has only names and indexes"))?;
                    steps.push(Step::Index(index));
                }
                i = close + 1;
            }
            _ => return Err(syntax("expected . or [")),
        }
    }
    Ok(steps)
}

/// Writes `value` into `target` at the reference path `path` (`ResultPath`), creating missing
/// objects on the way; `$` replaces the whole document.
pub fn write(target: Value, path: &str, value: Value) -> Result<Value, PathError> {
    let steps = reference_steps(path)?;
    if steps.is_empty() {
        return Ok(value);
    }
    let mut root = target;
    let mut slot = &mut root;
    for (n, step) in steps.iter().enumerate() {
        let last = n + 1 == steps.len();
        let mismatch = |what: &Value| {
            PathError::Mismatch(path.to_owned(), format!("{} is {}, not a container", describe_step(step), kind(what)))
        };
        slot = match step {
            Step::Field(name) => {
                if slot.is_null() && n > 0 {
                    *slot = Value::Object(Map::new());
                }
                let Value::Object(map) = slot else { return Err(mismatch(slot)) };
                let entry = map.entry(name.clone()).or_insert(Value::Null);
                if last {
                    *entry = value;
                    return Ok(root);
                }
                if entry.is_null() {
                    *entry = Value::Object(Map::new());
                }
                entry
            }
            Step::Index(index) => {
                let Value::Array(items) = slot else { return Err(mismatch(slot)) };
                let len = items.len();
                let item = items.get_mut(*index).ok_or_else(|| {
                    PathError::Mismatch(path.to_owned(), format!("index {index} is past the {len} items"))
                })?;
                if last {
                    *item = value;
                    return Ok(root);
                }
                item
            }
        };
    }
    Ok(root)
}

fn describe_step(step: &Step) -> String {
    match step {
        Step::Field(name) => format!("the parent of {name:?}"),
        Step::Index(index) => format!("the parent of [{index}]"),
    }
}

/// A JSON type's name, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definite_paths_read_one_value() {
        let input = json!({"a": {"b": [1, {"c": "x"}]}, "weird key": 2});
        assert_eq!(read("$.a.b[1].c", &input, &json!({})), Ok(json!("x")));
        assert_eq!(read("$['weird key']", &input, &json!({})), Ok(json!(2)));
        assert_eq!(read("$", &input, &json!({})), Ok(input.clone()));
        assert_eq!(lookup("$.nope", &input, &json!({})), Ok(None));
        assert!(matches!(read("$.nope", &input, &json!({})), Err(PathError::Missing(_))));
    }

    #[test]
    fn indefinite_paths_read_every_match() {
        let input = json!({"items": [{"n": 1}, {"n": 2}, {"m": 3}]});
        assert_eq!(read("$.items[*].n", &input, &json!({})), Ok(json!([1, 2])));
        assert_eq!(read("$..n", &input, &json!({})), Ok(json!([1, 2])));
        assert_eq!(read("$.items[?@.n > 1].n", &input, &json!({})), Ok(json!([2])));
        assert_eq!(read("$.items[0:2].n", &input, &json!({})), Ok(json!([1, 2])));
    }

    #[test]
    fn double_dollar_reads_the_context() {
        let context = json!({"Execution": {"Id": "arn:x"}});
        assert_eq!(read("$$.Execution.Id", &json!({}), &context), Ok(json!("arn:x")));
    }

    #[test]
    fn result_paths_merge_into_the_input() {
        let merged = write(json!({"a": 1}), "$.b.c", json!(2)).expect("write");
        assert_eq!(merged, json!({"a": 1, "b": {"c": 2}}));
        assert_eq!(write(json!({"a": 1}), "$", json!("x")), Ok(json!("x")));
        assert_eq!(write(json!({"a": [1, 2]}), "$.a[1]", json!(9)), Ok(json!({"a": [1, 9]})));
        assert_eq!(write(json!({}), "$['odd key']", json!(true)), Ok(json!({"odd key": true})));
    }

    #[test]
    fn a_result_path_through_a_string_is_a_mismatch() {
        assert!(matches!(write(json!({"a": "text"}), "$.a.b", json!(1)), Err(PathError::Mismatch(..))));
        assert!(matches!(write(json!("text"), "$.a", json!(1)), Err(PathError::Mismatch(..))));
    }

    #[test]
    fn reference_paths_refuse_wildcards_and_the_context() {
        for path in ["$.a[*]", "$$.Execution", "a.b", "$.a..b"] {
            assert!(matches!(write(json!({}), path, json!(1)), Err(PathError::Syntax(..))), "{path}");
        }
    }
}
