//! Choice state rules: checking them when a definition is loaded and picking the branch an input takes.
//!
//! A rule is either a comparison (`Variable` plus one operator) or a boolean combination
//! (`And`, `Or`, `Not`) of nested rules; only top-level rules carry `Next`. The semantics follow
//! what AWS Step Functions recorded:
//!
//! - a value of the wrong type never matches (`NumericEquals` on a string is false, not an error);
//! - a `Variable` (or `...Path` operand) that matches nothing is `States.Runtime`, except for
//!   `IsPresent`, which exists to ask exactly that;
//! - numbers compare by value (`1` equals `1.0`);
//! - timestamps are RFC 3339 with an uppercase `T` and an uppercase `Z` or a numeric offset, and
//!   compare as instants; a string that is not one makes every `Timestamp...` operator false.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Number, Value};

use crate::error::StatesError;
use crate::paths::{self, PathError};

/// The `Next` of the first top-level rule that matches, or `None` (the caller then takes
/// `Default` or raises States.NoChoiceMatched).
///
/// A `Variable` or `...Path` operand that matches nothing raises `States.Runtime` (except under
/// `IsPresent`); so does a malformed rule, which [`validate`] would have refused.
pub fn choose(state: &Value, input: &Value, context: &Value) -> Result<Option<String>, StatesError> {
    for (index, rule) in choices(state).map_err(StatesError::runtime)?.iter().enumerate() {
        let location = format!("Choices[{index}]");
        let parsed = parse(rule, &location, true).map_err(StatesError::runtime)?;
        if parsed.rule.matches(input, context)? {
            return Ok(parsed.next.map(str::to_owned));
        }
    }
    Ok(None)
}

/// Checks a Choice state's rules before anything runs: known operators only, exactly one
/// comparison per rule, `Variable` where needed, `Next` on top-level rules only, And/Or non-empty.
/// Errors are plain messages naming the offending rule/operator (the caller refuses the definition).
pub fn validate(state: &Value) -> Result<(), String> {
    if let Some(default) = state.get("Default")
        && !default.is_string()
    {
        return Err("Default must be a state name".into());
    }
    for (index, rule) in choices(state)?.iter().enumerate() {
        parse(rule, &format!("Choices[{index}]"), true)?;
    }
    Ok(())
}

/// The state's `Choices`, which must be a non-empty array.
fn choices(state: &Value) -> Result<&Vec<Value>, String> {
    match state.get("Choices") {
        Some(Value::Array(rules)) if !rules.is_empty() => Ok(rules),
        Some(Value::Array(_)) => Err("Choices must hold at least one rule".into()),
        Some(_) => Err("Choices must be an array of rules".into()),
        None => Err("a Choice state needs Choices".into()),
    }
}

/// A top-level rule and the state it leads to.
struct TopRule<'a> {
    rule: Rule<'a>,
    next: Option<&'a str>,
}

/// A parsed rule, borrowing its strings and literals from the definition.
#[derive(Debug)]
enum Rule<'a> {
    And(Vec<Rule<'a>>),
    Or(Vec<Rule<'a>>),
    Not(Box<Rule<'a>>),
    Compare { variable: &'a str, test: Test<'a> },
}

/// What a comparison does with the value at its `Variable`.
#[derive(Debug)]
enum Test<'a> {
    /// `String...`, `Numeric...`, `Boolean...` and `Timestamp...`, literal or `...Path`.
    Relate { kind: Kind, relation: Relation, operand: Operand<'a> },
    /// `StringMatches`, pattern already split into literal characters and wildcards.
    Matches(Vec<Glob>),
    /// `IsNull`, `IsPresent`, ...: whether the value is of a kind, compared with `expected`.
    Is { check: TypeCheck, expected: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeCheck {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

/// The right-hand side of a comparison.
#[derive(Debug)]
enum Operand<'a> {
    Literal(&'a Value),
    Path(&'a str),
}

/// One element of a `StringMatches` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glob {
    Any,
    Char(char),
}

/// Fields a comparison rule may carry besides its operator.
const COMPARISON_FIELDS: [&str; 3] = ["Variable", "Next", "Comment"];

fn parse<'a>(rule: &'a Value, location: &str, top_level: bool) -> Result<TopRule<'a>, String> {
    let Value::Object(fields) = rule else {
        return Err(format!("{location}: a rule must be an object"));
    };
    let next = match fields.get("Next") {
        Some(_) if !top_level => return Err(format!("{location}: Next is only allowed on top-level rules")),
        Some(Value::String(next)) => Some(next.as_str()),
        Some(_) => return Err(format!("{location}: Next must be a state name")),
        None if top_level => return Err(format!("{location}: a top-level rule needs Next")),
        None => None,
    };
    let mut operators = Vec::new();
    for name in fields.keys() {
        if COMPARISON_FIELDS.contains(&name.as_str()) {
            continue;
        }
        if matches!(name.as_str(), "And" | "Or" | "Not") || operator(name).is_some() {
            operators.push(name.as_str());
        } else if name == "Assign" {
            return Err(format!("{location}: Assign (variables) is not supported by this executor"));
        } else {
            return Err(format!("{location}: unknown operator or field {name:?}"));
        }
    }
    let name = match operators.as_slice() {
        [name] => *name,
        [] => return Err(format!("{location}: the rule has no comparison operator")),
        several => {
            return Err(format!("{location}: a rule holds exactly one comparison, found {}", several.join(", ")));
        }
    };
    let value = fields.get(name).unwrap_or(&Value::Null);
    let rule = match name {
        "And" | "Or" => {
            let nested = nested_rules(fields, name, location)?;
            if name == "And" { Rule::And(nested) } else { Rule::Or(nested) }
        }
        "Not" => {
            forbid_variable(fields, name, location)?;
            Rule::Not(Box::new(parse(value, &format!("{location}.Not"), false)?.rule))
        }
        _ => {
            let variable = match fields.get("Variable") {
                Some(Value::String(path)) => path.as_str(),
                Some(_) => return Err(format!("{location}: Variable must be a path string")),
                None => return Err(format!("{location}: {name} needs a Variable")),
            };
            check_path(variable).map_err(|why| format!("{location}: Variable {why}"))?;
            let test = test(name, value).map_err(|why| format!("{location}: {name} {why}"))?;
            Rule::Compare { variable, test }
        }
    };
    Ok(TopRule { rule, next })
}

fn nested_rules<'a>(fields: &'a Map<String, Value>, name: &str, location: &str) -> Result<Vec<Rule<'a>>, String> {
    forbid_variable(fields, name, location)?;
    let Some(Value::Array(rules)) = fields.get(name) else {
        return Err(format!("{location}: {name} must be an array of rules"));
    };
    if rules.is_empty() {
        return Err(format!("{location}: {name} must hold at least one rule"));
    }
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| Ok(parse(rule, &format!("{location}.{name}[{index}]"), false)?.rule))
        .collect()
}

fn forbid_variable(fields: &Map<String, Value>, name: &str, location: &str) -> Result<(), String> {
    if fields.contains_key("Variable") {
        return Err(format!("{location}: {name} takes nested rules, not a Variable"));
    }
    Ok(())
}

/// Refuses a string that is not a readable path.
fn check_path(path: &str) -> Result<(), String> {
    match paths::lookup(path, &Value::Null, &Value::Null) {
        Err(PathError::Syntax(_, why)) => Err(format!("{path:?} is not a valid path: {why}")),
        _ => Ok(()),
    }
}

/// What an operator name means, without its operand: `None` for unknown names.
enum Operator {
    Relate(Kind, Relation, bool),
    Matches,
    Is(TypeCheck),
}

fn operator(name: &str) -> Option<Operator> {
    let check = match name {
        "StringMatches" => return Some(Operator::Matches),
        "IsNull" => Some(TypeCheck::Null),
        "IsPresent" => Some(TypeCheck::Present),
        "IsNumeric" => Some(TypeCheck::Numeric),
        "IsString" => Some(TypeCheck::String),
        "IsBoolean" => Some(TypeCheck::Boolean),
        "IsTimestamp" => Some(TypeCheck::Timestamp),
        _ => None,
    };
    if let Some(check) = check {
        return Some(Operator::Is(check));
    }
    let (kind, rest) = [
        ("String", Kind::String),
        ("Numeric", Kind::Numeric),
        ("Boolean", Kind::Boolean),
        ("Timestamp", Kind::Timestamp),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| name.strip_prefix(prefix).map(|rest| (kind, rest)))?;
    let (rest, by_path) = match rest.strip_suffix("Path") {
        Some(bare) => (bare, true),
        None => (rest, false),
    };
    let relation = match rest {
        "Equals" => Relation::Equals,
        "LessThan" => Relation::LessThan,
        "GreaterThan" => Relation::GreaterThan,
        "LessThanEquals" => Relation::LessThanEquals,
        "GreaterThanEquals" => Relation::GreaterThanEquals,
        _ => return None,
    };
    if kind == Kind::Boolean && relation != Relation::Equals {
        return None;
    }
    Some(Operator::Relate(kind, relation, by_path))
}

/// The test an operator and its operand make; `Err` says what is wrong with the operand.
fn test<'a>(name: &str, operand: &'a Value) -> Result<Test<'a>, String> {
    match operator(name) {
        Some(Operator::Is(check)) => match operand {
            Value::Bool(expected) => Ok(Test::Is { check, expected: *expected }),
            _ => Err("takes true or false".into()),
        },
        Some(Operator::Matches) => match operand {
            Value::String(pattern) => Ok(Test::Matches(glob(pattern))),
            _ => Err("takes a pattern string".into()),
        },
        Some(Operator::Relate(kind, relation, true)) => match operand {
            Value::String(path) => {
                check_path(path)?;
                Ok(Test::Relate { kind, relation, operand: Operand::Path(path) })
            }
            _ => Err("takes a path string".into()),
        },
        Some(Operator::Relate(kind, relation, false)) => {
            let fits = match kind {
                Kind::String => operand.is_string(),
                Kind::Numeric => operand.is_number(),
                Kind::Boolean => operand.is_boolean(),
                Kind::Timestamp => operand.as_str().and_then(timestamp).is_some(),
            };
            if !fits {
                let wanted = match kind {
                    Kind::String => "a string",
                    Kind::Numeric => "a number",
                    Kind::Boolean => "true or false",
                    Kind::Timestamp => "an RFC 3339 timestamp such as \"2016-08-18T17:33:00Z\"",
                };
                return Err(format!("takes {wanted}, not {operand}"));
            }
            Ok(Test::Relate { kind, relation, operand: Operand::Literal(operand) })
        }
        None => Err("is not an operator".into()),
    }
}

impl Rule<'_> {
    fn matches(&self, input: &Value, context: &Value) -> Result<bool, StatesError> {
        match self {
            Rule::And(rules) => {
                for rule in rules {
                    if !rule.matches(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for rule in rules {
                    if rule.matches(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => Ok(!rule.matches(input, context)?),
            Rule::Compare { variable, test } => {
                let value = lookup(variable, input, context)?;
                match (test, value) {
                    (Test::Is { check: TypeCheck::Present, expected }, value) => Ok(value.is_some() == *expected),
                    (_, None) => Err(invalid_path(variable)),
                    (Test::Is { check, expected }, Some(value)) => Ok(is(*check, &value) == *expected),
                    (Test::Matches(pattern), Some(value)) => {
                        Ok(value.as_str().is_some_and(|text| glob_matches(pattern, text)))
                    }
                    (Test::Relate { kind, relation, operand }, Some(value)) => {
                        let owned;
                        let operand = match operand {
                            Operand::Literal(literal) => *literal,
                            Operand::Path(path) => {
                                owned = lookup(path, input, context)?.ok_or_else(|| invalid_path(path))?;
                                &owned
                            }
                        };
                        Ok(compare(*kind, &value, operand).is_some_and(|ordering| relation.holds(ordering)))
                    }
                }
            }
        }
    }
}

impl Relation {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Relation::Equals => ordering.is_eq(),
            Relation::LessThan => ordering.is_lt(),
            Relation::GreaterThan => ordering.is_gt(),
            Relation::LessThanEquals => ordering.is_le(),
            Relation::GreaterThanEquals => ordering.is_ge(),
        }
    }
}

fn lookup(path: &str, input: &Value, context: &Value) -> Result<Option<Value>, StatesError> {
    paths::lookup(path, input, context).map_err(|error| StatesError::runtime(format!("Invalid path '{path}': {error}")))
}

/// The error AWS raises when a Choice rule reads a path that matches nothing.
fn invalid_path(path: &str) -> StatesError {
    StatesError::runtime(format!(
        "Invalid path '{path}': The choice state's condition path references an invalid value."
    ))
}

fn is(check: TypeCheck, value: &Value) -> bool {
    match check {
        TypeCheck::Null => value.is_null(),
        TypeCheck::Present => true,
        TypeCheck::Numeric => value.is_number(),
        TypeCheck::String => value.is_string(),
        TypeCheck::Boolean => value.is_boolean(),
        TypeCheck::Timestamp => value.as_str().and_then(timestamp).is_some(),
    }
}

/// How `value` orders against `operand` as `kind`, or `None` when either is not of that kind
/// (AWS treats a type mismatch as "does not match").
fn compare(kind: Kind, value: &Value, operand: &Value) -> Option<Ordering> {
    match (kind, value, operand) {
        // Step Functions compares strings as Java does, by UTF-16 code unit.
        (Kind::String, Value::String(a), Value::String(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
        (Kind::Numeric, Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
        (Kind::Boolean, Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Kind::Timestamp, Value::String(a), Value::String(b)) => Some(timestamp(a)?.cmp(&timestamp(b)?)),
        _ => None,
    }
}

/// Numbers by value: integers exactly, anything else as `f64` (so `1` equals `1.0`).
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// An RFC 3339 timestamp as ASL accepts it: uppercase `T` between date and time, and an
/// uppercase `Z` or a numeric offset (chrono alone would also take `t`, `z` and a space).
fn timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    if text.as_bytes().get(10) != Some(&b'T') || text.contains(['t', 'z']) {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok()
}

/// Splits a `StringMatches` pattern: `*` is any run of characters, `\*` a literal star, `\\` a
/// literal backslash (a backslash before any other character, or at the end, stands for itself).
fn glob(pattern: &str) -> Vec<Glob> {
    let mut parts = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => parts.push(Glob::Any),
            '\\' => match chars.peek() {
                Some(&escaped @ ('*' | '\\')) => {
                    chars.next();
                    parts.push(Glob::Char(escaped));
                }
                _ => parts.push(Glob::Char('\\')),
            },
            other => parts.push(Glob::Char(other)),
        }
    }
    parts
}

/// Whether `text` matches the whole pattern (greedy wildcard matching with backtracking to the
/// last `*`, linear in practice).
fn glob_matches(pattern: &[Glob], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut at_text, mut at_pattern) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while at_text < text.len() {
        match (pattern.get(at_pattern), text.get(at_text)) {
            (Some(Glob::Char(expected)), Some(actual)) if expected == actual => {
                at_pattern += 1;
                at_text += 1;
            }
            (Some(Glob::Any), _) => {
                last_star = Some((at_pattern + 1, at_text));
                at_pattern += 1;
            }
            _ => match last_star {
                Some((after_star, absorbed)) => {
                    last_star = Some((after_star, absorbed + 1));
                    at_pattern = after_star;
                    at_text = absorbed + 1;
                }
                None => return false,
            },
        }
    }
    pattern.iter().skip(at_pattern).all(|part| *part == Glob::Any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(rules: Value) -> Value {
        json!({"Type": "Choice", "Choices": rules, "Default": "Fallback"})
    }

    fn refusal(rules: Value) -> String {
        validate(&state(rules)).expect_err("the rules should be refused")
    }

    fn pick(rule: Value, input: Value) -> Result<Option<String>, StatesError> {
        choose(&state(json!([rule])), &input, &json!({}))
    }

    #[test]
    fn validate_accepts_every_operator_family() {
        let rules = json!([
            {"Variable": "$.s", "StringMatches": "log-*.txt", "Next": "A"},
            {"Variable": "$.n", "NumericLessThanEqualsPath": "$$.Execution.Input.n", "Next": "A"},
            {"Variable": "$.t", "TimestampGreaterThan": "2016-08-18T17:33:00+02:00", "Next": "A"},
            {"Not": {"Variable": "$.b", "IsBoolean": false}, "Next": "A"},
            {"And": [{"Variable": "$.x", "IsPresent": true}, {"Or": [{"Variable": "$.x", "IsNull": true}]}], "Next": "B"}
        ]);
        assert_eq!(validate(&state(rules)), Ok(()));
    }

    #[test]
    fn validate_refuses_an_unknown_operator() {
        let message = refusal(json!([{"Variable": "$.s", "StringContains": "x", "Next": "A"}]));
        assert!(message.contains("Choices[0]") && message.contains("StringContains"), "{message}");
    }

    #[test]
    fn validate_refuses_two_operators_in_one_rule() {
        let message = refusal(json!([{"Variable": "$.n", "NumericEquals": 1, "NumericLessThan": 5, "Next": "A"}]));
        assert!(message.contains("exactly one comparison"), "{message}");
        assert!(message.contains("NumericEquals") && message.contains("NumericLessThan"), "{message}");
    }

    #[test]
    fn validate_refuses_next_inside_and() {
        let message = refusal(json!([{"And": [{"Variable": "$.a", "IsNull": true, "Next": "A"}], "Next": "A"}]));
        assert_eq!(message, "Choices[0].And[0]: Next is only allowed on top-level rules");
    }

    #[test]
    fn validate_refuses_an_empty_and() {
        let message = refusal(json!([{"And": [], "Next": "A"}]));
        assert_eq!(message, "Choices[0]: And must hold at least one rule");
    }

    #[test]
    fn validate_refuses_missing_variable_next_and_bad_operands() {
        assert_eq!(refusal(json!([{"StringEquals": "x", "Next": "A"}])), "Choices[0]: StringEquals needs a Variable");
        assert_eq!(refusal(json!([{"Variable": "$.a", "IsNull": true}])), "Choices[0]: a top-level rule needs Next");
        assert!(refusal(json!([{"Variable": "$.a", "NumericEquals": "1", "Next": "A"}])).contains("takes a number"));
        assert!(refusal(json!([{"Variable": "$.a", "IsString": "yes", "Next": "A"}])).contains("true or false"));
        assert!(
            refusal(json!([{"Variable": "$.a", "StringEqualsPath": "a.b", "Next": "A"}])).contains("not a valid path")
        );
        let message = refusal(json!([{"Variable": "$.a", "TimestampEquals": "2016-08-18 17:33:00", "Next": "A"}]));
        assert!(message.contains("RFC 3339"), "{message}");
        assert_eq!(refusal(json!([])), "Choices must hold at least one rule");
    }

    #[test]
    fn string_matches_treats_star_as_a_wildcard_and_honours_escapes() {
        let matches = |pattern: &str, text: &str| glob_matches(&glob(pattern), text);
        assert!(matches("log-*.txt", "log-2024-01.txt"));
        assert!(matches("log-*.txt", "log-.txt"));
        assert!(!matches("log-*.txt", "log-1.txt.bak"));
        assert!(matches("*a*b*", "xxaYYbzz"));
        assert!(!matches("*a*b", "ba"));
        assert!(matches(r"a\*b", "a*b"));
        assert!(!matches(r"a\*b", "axxb"));
        assert!(matches(r"C:\\temp\\*", r"C:\temp\file"));
        assert!(!matches(r"C:\\temp", "C:temp"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }

    #[test]
    fn string_matches_on_a_non_string_is_false() {
        assert_eq!(pick(json!({"Variable": "$.v", "StringMatches": "*", "Next": "A"}), json!({"v": 1})), Ok(None));
        assert_eq!(
            pick(json!({"Variable": "$.v", "StringMatches": "*", "Next": "A"}), json!({"v": ""})),
            Ok(Some("A".into()))
        );
    }

    #[test]
    fn double_dollar_paths_read_the_context_object() {
        let state = state(json!([
            {"Variable": "$$.Execution.Name", "StringEquals": "nightly", "Next": "Nightly"},
            {"Variable": "$.name", "StringEqualsPath": "$$.Execution.Name", "Next": "Same"}
        ]));
        let context = json!({"Execution": {"Name": "nightly"}});
        assert_eq!(choose(&state, &json!({}), &context), Ok(Some("Nightly".into())));
        let context = json!({"Execution": {"Name": "adhoc"}});
        assert_eq!(choose(&state, &json!({"name": "adhoc"}), &context), Ok(Some("Same".into())));
        assert_eq!(choose(&state, &json!({"name": "other"}), &context), Ok(None));
    }

    #[test]
    fn path_forms_compare_against_another_value_in_the_input() {
        let input =
            json!({"count": 3, "limit": 3.0, "when": "2024-01-01T00:00:00Z", "due": "2024-01-01T01:00:00+01:00"});
        let rule = |operator: &str, operand: &str| json!({"Variable": "$.count", operator: operand, "Next": "Hit"});
        assert_eq!(pick(rule("NumericEqualsPath", "$.limit"), input.clone()), Ok(Some("Hit".into())));
        assert_eq!(pick(rule("NumericLessThanPath", "$.limit"), input.clone()), Ok(None));
        assert_eq!(pick(rule("StringEqualsPath", "$.limit"), input.clone()), Ok(None));
        let same_instant = json!({"Variable": "$.when", "TimestampEqualsPath": "$.due", "Next": "Hit"});
        assert_eq!(pick(same_instant, input.clone()), Ok(Some("Hit".into())));
        let error = pick(rule("NumericEqualsPath", "$.absent"), input).expect_err("a missing operand path fails");
        assert_eq!(error.error, "States.Runtime");
        assert!(error.cause.contains("Invalid path '$.absent'"), "{}", error.cause);
    }

    #[test]
    fn a_missing_variable_is_a_runtime_error_except_for_is_present() {
        let error = pick(json!({"Variable": "$.nope", "IsNull": true, "Next": "A"}), json!({})).expect_err("missing");
        assert_eq!(error.error, "States.Runtime");
        assert_eq!(
            error.cause,
            "Invalid path '$.nope': The choice state's condition path references an invalid value."
        );
        assert_eq!(
            pick(json!({"Variable": "$.nope", "IsPresent": false, "Next": "A"}), json!({})),
            Ok(Some("A".into()))
        );
        assert_eq!(pick(json!({"Variable": "$.nope", "IsPresent": true, "Next": "A"}), json!({})), Ok(None));
    }

    #[test]
    fn numbers_compare_by_value_and_mismatched_types_do_not_match() {
        let equals_one = json!({"Variable": "$.v", "NumericEquals": 1, "Next": "A"});
        assert_eq!(pick(equals_one.clone(), json!({"v": 1.0})), Ok(Some("A".into())));
        assert_eq!(pick(equals_one.clone(), json!({"v": "1"})), Ok(None));
        assert_eq!(pick(equals_one, json!({"v": true})), Ok(None));
        let above = json!({"Variable": "$.v", "NumericGreaterThan": -1, "Next": "A"});
        assert_eq!(pick(above, json!({"v": u64::MAX})), Ok(Some("A".into())));
    }

    #[test]
    fn timestamps_need_an_uppercase_t_and_a_zone() {
        let is_timestamp = json!({"Variable": "$.v", "IsTimestamp": true, "Next": "A"});
        for valid in ["2016-08-18T17:33:00Z", "2016-08-18T17:33:00.123Z", "2016-08-18T17:33:00-05:00"] {
            assert_eq!(pick(is_timestamp.clone(), json!({"v": valid})), Ok(Some("A".into())), "{valid}");
        }
        for invalid in ["2016-08-18T17:33:00", "2016-08-18t17:33:00Z", "2016-08-18 17:33:00Z", "2016-08-18T17:33:00z"] {
            assert_eq!(pick(is_timestamp.clone(), json!({"v": invalid})), Ok(None), "{invalid}");
        }
    }

    #[test]
    fn and_or_not_combine_nested_rules() {
        let rule = json!({
            "And": [
                {"Variable": "$.level", "NumericGreaterThanEquals": 2},
                {"Or": [{"Variable": "$.team", "StringEquals": "ops"}, {"Not": {"Variable": "$.muted", "BooleanEquals": true}}]}
            ],
            "Next": "Page"
        });
        assert_eq!(pick(rule.clone(), json!({"level": 3, "team": "dev", "muted": false})), Ok(Some("Page".into())));
        assert_eq!(pick(rule.clone(), json!({"level": 3, "team": "dev", "muted": true})), Ok(None));
        assert_eq!(pick(rule.clone(), json!({"level": 3, "team": "ops", "muted": true})), Ok(Some("Page".into())));
        assert_eq!(pick(rule, json!({"level": 1, "team": "ops", "muted": false})), Ok(None));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let state = state(json!([
            {"Variable": "$.v", "StringLessThan": "m", "Next": "Early"},
            {"Variable": "$.v", "IsString": true, "Next": "Late"}
        ]));
        assert_eq!(choose(&state, &json!({"v": "apple"}), &json!({})), Ok(Some("Early".into())));
        assert_eq!(choose(&state, &json!({"v": "zebra"}), &json!({})), Ok(Some("Late".into())));
        assert_eq!(choose(&state, &json!({"v": 7}), &json!({})), Ok(None));
    }
}
