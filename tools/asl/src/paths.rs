//! JSONPath as ASL uses it: paths that read (`InputPath`, `OutputPath`, `.$` fields, Choice
//! variables, intrinsic arguments) and reference paths that write (`ResultPath`).
//!
//! AWS evaluates paths with Jayway JsonPath, which is laxer than RFC 9535: a dot-notation member
//! name may hold any character but a blank, `.`, `[` or `(` (`$.detail-type`), and quoted names
//! use `'` or `"` with backslash escapes (`$['it\'s']`). Paths are parsed in Jayway's grammar and
//! rewritten to RFC 9535 ([`normalise`]) before `serde_json_path` runs them. A path starting `$$`
//! reads the context object. A definite path (names and indexes only) yields its one value; any
//! other path yields the array of everything it matched.

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

/// What one segment of a path selects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    /// A member name.
    Name(String),
    /// Several quoted member names: `['a','b']`.
    Names(Vec<String>),
    /// An array index (negative counts from the end).
    Index(i64),
    /// `*`.
    Wildcard,
    /// A slice, an index union or a filter, passed to RFC 9535 as written.
    Raw(String),
}

/// One segment: a child (`.x`, `[x]`) or a descendant (`..x`) selection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    descendant: bool,
    selector: Selector,
}

/// Parses a path (after its `$`) in Jayway's grammar.
fn segments(path: &str) -> Result<Vec<Segment>, String> {
    let rest = path.strip_prefix('$').ok_or("a path starts with $")?;
    let chars: Vec<char> = rest.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        let descendant = c == '.' && chars.get(at + 1) == Some(&'.');
        let selector = match c {
            '.' => {
                at += if descendant { 2 } else { 1 };
                match chars.get(at) {
                    Some('[') if descendant => {
                        let (selector, end) = bracket(&chars, at)?;
                        at = end;
                        selector
                    }
                    Some('*') => {
                        at += 1;
                        Selector::Wildcard
                    }
                    _ => {
                        let start = at;
                        while let Some(&n) = chars.get(at) {
                            match n {
                                '.' | '[' => break,
                                ' ' => return Err("a name with a blank needs bracket notation ['a b']".into()),
                                '(' => return Err("path functions are not supported".into()),
                                _ => at += 1,
                            }
                        }
                        let name: String = chars.get(start..at).unwrap_or_default().iter().collect();
                        if name.is_empty() {
                            return Err(format!("a name is missing at character {}", start + 1));
                        }
                        Selector::Name(name)
                    }
                }
            }
            '[' => {
                let (selector, end) = bracket(&chars, at)?;
                at = end;
                selector
            }
            other => return Err(format!("expected . or [ at character {}, found {other:?}", at + 1)),
        };
        out.push(Segment { descendant, selector });
    }
    Ok(out)
}

/// Parses the bracket opening at `open`, returning its selector and the offset past its `]`.
fn bracket(chars: &[char], open: usize) -> Result<(Selector, usize), String> {
    let mut at = open + 1;
    let skip_blanks = |at: &mut usize| {
        while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
            *at += 1;
        }
    };
    skip_blanks(&mut at);
    if let Some(&quote @ ('\'' | '"')) = chars.get(at) {
        let mut names = Vec::new();
        let mut current_quote = quote;
        loop {
            let (name, end) = quoted(chars, at, current_quote)?;
            names.push(name);
            at = end;
            skip_blanks(&mut at);
            match chars.get(at) {
                Some(']') => break,
                Some(',') => {
                    at += 1;
                    skip_blanks(&mut at);
                    match chars.get(at) {
                        Some(&q @ ('\'' | '"')) => current_quote = q,
                        _ => return Err(format!("expected a quoted name at character {}", at + 1)),
                    }
                }
                _ => return Err(format!("expected ] at character {}", at + 1)),
            }
        }
        let selector = match <[String; 1]>::try_from(names) {
            Ok([name]) => Selector::Name(name),
            Err(names) => Selector::Names(names),
        };
        return Ok((selector, at + 1));
    }
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let start = at;
    loop {
        let Some(&c) = chars.get(at) else { return Err(format!("the [ at character {} is never closed", open + 1)) };
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) if c == '\\' => at += 1,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ']' if depth == 0 => break,
                ']' => depth -= 1,
                _ => {}
            },
        }
        at += 1;
    }
    let inner: String = chars.get(start..at).unwrap_or_default().iter().collect();
    let inner = inner.trim();
    let selector = if inner == "*" {
        Selector::Wildcard
    } else if let Ok(index) = inner.parse::<i64>() {
        Selector::Index(index)
    } else if inner.is_empty() {
        return Err(format!("the [ at character {} is empty", open + 1));
    } else {
        Selector::Raw(inner.to_owned())
    };
    Ok((selector, at + 1))
}

/// Reads the string quoted by `quote` at `open`; a backslash takes the next character as it is.
fn quoted(chars: &[char], open: usize, quote: char) -> Result<(String, usize), String> {
    let mut text = String::new();
    let mut at = open + 1;
    loop {
        match chars.get(at) {
            None => return Err(format!("the quote at character {} is never closed", open + 1)),
            Some('\\') => {
                let Some(&escaped) = chars.get(at + 1) else {
                    return Err(format!("the quote at character {} ends in a lone backslash", open + 1));
                };
                text.push(escaped);
                at += 2;
            }
            Some(&c) if c == quote => return Ok((text, at + 1)),
            Some(&c) => {
                text.push(c);
                at += 1;
            }
        }
    }
}

/// A member name as an RFC 9535 single-quoted string.
fn rfc_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('\'');
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn render(segments: &[Segment]) -> String {
    let mut out = String::from("$");
    for segment in segments {
        if segment.descendant {
            out.push_str("..");
        }
        match &segment.selector {
            Selector::Name(name) => out.push_str(&format!("[{}]", rfc_name(name))),
            Selector::Names(names) => {
                let names: Vec<String> = names.iter().map(|n| rfc_name(n)).collect();
                out.push_str(&format!("[{}]", names.join(",")));
            }
            Selector::Index(index) => out.push_str(&format!("[{index}]")),
            Selector::Wildcard if segment.descendant => out.push('*'),
            Selector::Wildcard => out.push_str("[*]"),
            Selector::Raw(raw) => out.push_str(&format!("[{raw}]")),
        }
    }
    out
}

/// Rewrites a path written for AWS (Jayway JsonPath) as RFC 9535 JSONPath: every member name in
/// bracket notation with a single-quoted, escaped string.
pub fn normalise(path: &str) -> Result<String, PathError> {
    segments(path).map(|s| render(&s)).map_err(|why| PathError::Syntax(path.to_owned(), why))
}

fn definite(segments: &[Segment]) -> bool {
    segments.iter().all(|s| !s.descendant && matches!(s.selector, Selector::Name(_) | Selector::Index(_)))
}

/// The value at `path`, reading `$$` paths from `context`; `Ok(None)` when a definite path
/// matches nothing.
pub fn lookup(path: &str, input: &Value, context: &Value) -> Result<Option<Value>, PathError> {
    let (document, path_text) = match path.strip_prefix("$$") {
        Some(rest) => (context, format!("${rest}")),
        None => (input, path.to_owned()),
    };
    let parsed = segments(&path_text).map_err(|why| PathError::Syntax(path.to_owned(), why))?;
    let compiled = JsonPath::parse(&render(&parsed)).map_err(|e| PathError::Syntax(path.to_owned(), e.to_string()))?;
    let nodes = compiled.query(document).all();
    if definite(&parsed) {
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
    let path = path.strip_prefix('$').filter(|rest| rest.starts_with('$')).unwrap_or(path);
    segments(path).is_ok_and(|s| definite(&s))
}

/// Why a definite path matched nothing in `document`, in Jayway's words (the text AWS puts after
/// `Invalid path '...' :`): `No results for path: $['a']['b']` when the last step is missing or an
/// index is out of range, `Missing property in path $['a']` when a member on the way is missing.
/// The path is the document-relative one (`$...`, the `$$` already taken off).
pub fn describe_missing(path: &str, document: &Value) -> String {
    let Ok(parsed) = segments(path) else { return format!("No results for path: {path}") };
    let mut walked = String::from("$");
    let mut current = Some(document);
    let last = parsed.len().saturating_sub(1);
    let full = jayway_text(&parsed);
    for (n, segment) in parsed.iter().enumerate() {
        match &segment.selector {
            Selector::Name(name) => {
                walked.push_str(&format!("['{name}']"));
                let next = current.and_then(|v| v.as_object()).and_then(|o| o.get(name));
                if next.is_none() && n != last && current.is_some_and(Value::is_object) {
                    return format!("Missing property in path {walked}");
                }
                current = next;
            }
            Selector::Index(index) => {
                walked.push_str(&format!("[{index}]"));
                current = current.and_then(Value::as_array).and_then(|items| {
                    let at = if *index < 0 { items.len() as i64 + index } else { *index };
                    usize::try_from(at).ok().and_then(|at| items.get(at))
                });
            }
            _ => return format!("No results for path: {full}"),
        }
    }
    format!("No results for path: {full}")
}

/// A parsed path as Jayway prints it: `$['a'][0]['b']`, names unescaped.
fn jayway_text(parsed: &[Segment]) -> String {
    let mut out = String::from("$");
    for segment in parsed {
        match &segment.selector {
            Selector::Name(name) => out.push_str(&format!("['{name}']")),
            Selector::Index(index) => out.push_str(&format!("[{index}]")),
            _ => return render(parsed),
        }
    }
    out
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// Parses a reference path: `$`, then names (dot or bracket notation) and non-negative indexes.
fn reference_steps(path: &str) -> Result<Vec<Step>, PathError> {
    let syntax = |why: &str| PathError::Syntax(path.to_owned(), why.to_owned());
    if path.starts_with("$$") {
        return Err(syntax("a reference path cannot write to the context object"));
    }
    let parsed = segments(path).map_err(|why| syntax(&why))?;
    parsed
        .into_iter()
        .map(|segment| match segment.selector {
            Selector::Name(name) if !segment.descendant => Ok(Step::Field(name)),
            Selector::Index(index) if !segment.descendant => {
                usize::try_from(index).map(Step::Index).map_err(|_| syntax("a reference path has no negative indexes"))
            }
            _ => Err(syntax("a reference path names single fields")),
        })
        .collect()
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

#[cfg(test)]
mod jayway_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dot_names_may_hold_hyphens_and_other_non_identifier_characters() {
        let input = json!({"detail-type": "x", "a": {"b-c": {"d": 1}}, "delivery-partner": "UQS", "n1": {"$v": 2}});
        assert_eq!(read("$.detail-type", &input, &json!({})), Ok(json!("x")));
        assert_eq!(read("$.a.b-c.d", &input, &json!({})), Ok(json!(1)));
        assert_eq!(read("$.delivery-partner", &input, &json!({})), Ok(json!("UQS")));
        assert_eq!(read("$.n1.$v", &input, &json!({})), Ok(json!(2)));
        let context = json!({"Execution": {"Input": {"detail-type": "y"}}});
        assert_eq!(read("$$.Execution.Input.detail-type", &json!({}), &context), Ok(json!("y")));
    }

    #[test]
    fn quoted_segments_with_escaped_quotes_read_their_member() {
        let input = json!({"a b": 1, "x": 2, "it's": 3, "say \"hi\"": 4, "back\\slash": 5});
        assert_eq!(read("$['a b']", &input, &json!({})), Ok(json!(1)));
        assert_eq!(read("$[\"x\"]", &input, &json!({})), Ok(json!(2)));
        assert_eq!(read(r"$['it\'s']", &input, &json!({})), Ok(json!(3)));
        assert_eq!(read(r#"$["say \"hi\""]"#, &input, &json!({})), Ok(json!(4)));
        assert_eq!(read(r"$['back\\slash']", &input, &json!({})), Ok(json!(5)));
    }

    #[test]
    fn normalise_rewrites_jayway_paths_to_rfc_9535() {
        assert_eq!(normalise("$"), Ok("$".to_owned()));
        assert_eq!(normalise("$.detail-type"), Ok("$['detail-type']".to_owned()));
        assert_eq!(normalise("$.a[0].b-c"), Ok("$['a'][0]['b-c']".to_owned()));
        assert_eq!(normalise(r"$['it\'s']"), Ok(r"$['it\'s']".to_owned()));
        assert_eq!(normalise("$..n"), Ok("$..['n']".to_owned()));
        assert_eq!(normalise("$.items[*].n"), Ok("$['items'][*]['n']".to_owned()));
        assert_eq!(normalise("$.a.*"), Ok("$['a'][*]".to_owned()));
        assert!(matches!(normalise("$.a b"), Err(PathError::Syntax(..))));
        assert!(matches!(normalise("$.a."), Err(PathError::Syntax(..))));
        assert!(matches!(normalise("$['open"), Err(PathError::Syntax(..))));
    }

    #[test]
    fn result_paths_take_the_same_names() {
        assert_eq!(write(json!({}), "$.detail-type", json!(1)), Ok(json!({"detail-type": 1})));
        assert_eq!(write(json!({}), r"$['it\'s'].x", json!(1)), Ok(json!({"it's": {"x": 1}})));
        assert_eq!(write(json!({}), "$.a.b-c.d", json!(1)), Ok(json!({"a": {"b-c": {"d": 1}}})));
    }

    #[test]
    fn missing_paths_are_described_as_jayway_does() {
        let input = json!({"a": {"b": [1]}});
        assert_eq!(describe_missing("$.nope", &input), "No results for path: $['nope']");
        assert_eq!(describe_missing("$.no.such.path", &input), "Missing property in path $['no']");
        assert_eq!(describe_missing("$.a.b[3]", &input), "No results for path: $['a']['b'][3]");
        assert_eq!(describe_missing("$.a.x-y", &input), "No results for path: $['a']['x-y']");
    }
}
