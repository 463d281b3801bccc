//! JSONata as Step Functions runs it: `{% ... %}` expressions in a state's fields, the reserved
//! `$states` variable, workflow variables, and the functions Step Functions adds to the language
//! (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`).
//!
//! Expressions are evaluated by `jsonata-core`, which passes the jsonata-js test suite
//! (`tests/jsonata_suite.rs` measures it). What Step Functions changes is done here: `$eval` is not
//! available, `$now()` and `$millis()` read the execution's virtual clock, `$random` takes an
//! optional seed, and a value that JSON cannot hold (nothing, a function) is an error.

use std::cell::RefCell;
use std::rc::Rc;

use chrono::{DateTime, SecondsFormat, Utc};
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::parser;
use jsonata_core::value::JValue;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Number, Value};

use crate::error::{StatesError, names};
use crate::intrinsics;

/// How long one expression may run before replay stops it (an expression that loops forever would
/// otherwise hang the replay; AWS bounds a state's work by its own limits).
const TIME_LIMIT_MS: u64 = 10_000;

/// The JSONata expression a field's string holds: the text between `{%` and `%}` when the string
/// is nothing else. Any other string is a literal.
pub fn expression(text: &str) -> Option<&str> {
    text.strip_prefix("{%")?.strip_suffix("%}")
}

/// Checks an expression's syntax, for loading a definition.
pub fn check_syntax(expression: &str) -> Result<(), String> {
    parser::parse(expression).map(|_| ()).map_err(|e| e.to_string())
}

/// Every JSONata expression found in a field's value (strings, and strings inside objects and
/// arrays), for checking at load.
pub fn expressions_in(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => expression(text).into_iter().collect(),
        Value::Array(items) => items.iter().flat_map(expressions_in).collect(),
        Value::Object(fields) => fields.values().flat_map(expressions_in).collect(),
        _ => Vec::new(),
    }
}

/// What an expression can see: `$states` and the workflow variables in scope.
pub struct Scope<'a> {
    /// `{"input": ..., "context": ..., "result": ..., "errorOutput": ...}` as far as the state has them.
    pub states: &'a Value,
    pub variables: &'a Map<String, Value>,
    /// The execution's virtual time, for `$now()` and `$millis()`.
    pub now: DateTime<Utc>,
    /// The execution's seeded generator, for `$random()` and `$uuid()`.
    pub rng: Rc<RefCell<StdRng>>,
}

/// Evaluates every expression in `template` (a field's value): strings that are expressions are
/// replaced by their values, objects and arrays are evaluated member by member, everything else is
/// literal. `field` names the field in errors (`Arguments`, `Output`, `Assign.total`, ...).
pub fn render(template: &Value, field: &str, scope: &Scope) -> Result<Value, StatesError> {
    render_with(template, field, scope, &Bindings::of(scope))
}

/// Evaluates one expression; nothing (JSONata's undefined) or a function is an error, since the
/// field needs a JSON value.
pub fn evaluate(expr: &str, field: &str, scope: &Scope) -> Result<Value, StatesError> {
    evaluate_with(expr, field, scope, &Bindings::of(scope))
}

/// `$states` and the variables as JSONata values, converted once for every expression of a field
/// (cloning a converted value is cheap).
struct Bindings {
    states: JValue,
    variables: Vec<(String, JValue)>,
}

impl Bindings {
    fn of(scope: &Scope) -> Self {
        Self {
            states: JValue::from(scope.states.clone()),
            variables: scope
                .variables
                .iter()
                .map(|(name, value)| (name.clone(), JValue::from(value.clone())))
                .collect(),
        }
    }
}

fn render_with(template: &Value, field: &str, scope: &Scope, bindings: &Bindings) -> Result<Value, StatesError> {
    match template {
        Value::String(text) => match expression(text) {
            Some(expr) => evaluate_with(expr, field, scope, bindings),
            None => Ok(template.clone()),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(n, item)| render_with(item, &format!("{field}[{n}]"), scope, bindings))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (name, value) in fields {
                out.insert(name.clone(), render_with(value, &format!("{field}.{name}"), scope, bindings)?);
            }
            Ok(Value::Object(out))
        }
        literal => Ok(literal.clone()),
    }
}

fn evaluate_with(expr: &str, field: &str, scope: &Scope, bindings: &Bindings) -> Result<Value, StatesError> {
    let failed = |why: String| {
        StatesError::new(
            names::QUERY_EVALUATION_ERROR,
            format!("The JSONata expression '{expr}' specified for the field '{field}' {why}"),
        )
    };
    let ast = parser::parse(expr).map_err(|e| failed(format!("is not valid JSONata: {e}")))?;
    let mut context = Context::new();
    context.bind("states".to_owned(), bindings.states.clone());
    for (name, value) in &bindings.variables {
        context.bind(name.clone(), value.clone());
    }
    let options = EvaluatorOptions { timeout_ms: Some(TIME_LIMIT_MS), ..EvaluatorOptions::default() };
    let mut evaluator = Evaluator::with_options(context, options);
    register_functions(&mut evaluator, scope).map_err(|e| failed(format!("could not be prepared: {e}")))?;
    let value = evaluator.evaluate(&ast, &JValue::Undefined).map_err(|e| failed(format!("returned an error: {e}")))?;
    to_json(&value).ok_or_else(|| {
        if value.is_undefined() {
            failed("returned nothing (undefined)".to_owned())
        } else {
            failed("returned a value JSON cannot hold (a function, NaN or infinity)".to_owned())
        }
    })
}

/// A JSONata value as JSON: whole numbers without a fraction, undefined members dropped; `None`
/// for undefined itself, functions and non-finite numbers.
pub fn to_json(value: &JValue) -> Option<Value> {
    Some(match value {
        JValue::Undefined => return None,
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => number(*n)?,
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                if item.is_undefined() {
                    continue;
                }
                out.push(to_json(item)?);
            }
            Value::Array(out)
        }
        JValue::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (name, item) in fields.iter() {
                if item.is_undefined() {
                    continue;
                }
                out.insert(name.clone(), to_json(item)?);
            }
            Value::Object(out)
        }
        _ => return None,
    })
}

fn number(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    // Whole numbers print without a fraction, as JavaScript (and AWS) print them.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return Some(Value::Number(Number::from(n as i64)));
    }
    Number::from_f64(n).map(Value::Number)
}

fn host_error(message: impl Into<String>) -> EvaluatorError {
    EvaluatorError::EvaluationError(message.into())
}

fn whole(value: Option<&JValue>, what: &str) -> Result<i64, EvaluatorError> {
    match value.and_then(JValue::as_f64) {
        Some(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => Ok(n as i64),
        _ => Err(host_error(format!("{what} must be a whole number"))),
    }
}

fn register_functions(evaluator: &mut Evaluator, scope: &Scope) -> Result<(), EvaluatorError> {
    evaluator.register_fn_override("eval", |_: &[JValue]| -> Result<JValue, EvaluatorError> {
        Err(host_error("$eval is not available in Step Functions; use $parse"))
    })?;

    let now = scope.now;
    evaluator.register_fn_override("millis", move |_: &[JValue]| Ok(JValue::from(now.timestamp_millis())))?;
    evaluator.register_fn_override("now", move |args: &[JValue]| {
        if args.is_empty() {
            return Ok(JValue::from(now.to_rfc3339_opts(SecondsFormat::Millis, true)));
        }
        // `$now(picture, timezone)` is `$fromMillis` of the same instant.
        let mut context = Context::new();
        context.bind("ms".to_owned(), JValue::from(now.timestamp_millis()));
        context.bind("picture".to_owned(), args.first().cloned().unwrap_or(JValue::Undefined));
        context.bind("tz".to_owned(), args.get(1).cloned().unwrap_or(JValue::Undefined));
        let ast = parser::parse("$fromMillis($ms, $picture, $tz)").map_err(|e| host_error(e.to_string()))?;
        Evaluator::with_context(context).evaluate(&ast, &JValue::Undefined)
    })?;

    let rng = scope.rng.clone();
    evaluator.register_fn_override("random", move |args: &[JValue]| {
        let value = match args.first() {
            None | Some(JValue::Undefined) => rng.borrow_mut().random::<f64>(),
            Some(seed) => StdRng::seed_from_u64(whole(Some(seed), "the seed of $random")? as u64).random::<f64>(),
        };
        Ok(JValue::from(value))
    })?;

    let rng = scope.rng.clone();
    evaluator.register_fn("uuid", move |_: &[JValue]| {
        let bytes: [u8; 16] = rng.borrow_mut().random();
        Ok(JValue::from(uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()))
    })?;

    evaluator.register_fn("parse", |args: &[JValue]| {
        let Some(text) = args.first().and_then(JValue::as_str) else {
            return Err(host_error("$parse needs a string of JSON"));
        };
        let parsed: Value =
            serde_json::from_str(text).map_err(|e| host_error(format!("$parse: the string is not JSON: {e}")))?;
        Ok(JValue::from(parsed))
    })?;

    // Step Functions' equivalents of its intrinsics run the intrinsics themselves.
    for (name, intrinsic) in
        [("hash", "States.Hash"), ("partition", "States.ArrayPartition"), ("range", "States.ArrayRange")]
    {
        evaluator.register_fn(name, move |args: &[JValue]| {
            let arguments = args
                .iter()
                .map(|arg| to_json(arg).ok_or_else(|| host_error(format!("${name}: an argument has no JSON value"))))
                .collect::<Result<Vec<_>, _>>()?;
            let value = intrinsics::call(intrinsic, arguments).map_err(|why| host_error(format!("${name}: {why}")))?;
            Ok(JValue::from(value))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope_eval(expr: &str, states: Value, variables: Value) -> Result<Value, StatesError> {
        let variables = variables.as_object().cloned().unwrap_or_default();
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("time").with_timezone(&Utc);
        let scope =
            Scope { states: &states, variables: &variables, now, rng: Rc::new(RefCell::new(StdRng::seed_from_u64(7))) };
        evaluate(expr, "Output", &scope)
    }

    fn eval(expr: &str) -> Result<Value, StatesError> {
        scope_eval(expr, json!({"input": {"n": 3, "items": [{"price": 2}, {"price": 5}]}}), json!({"x": 10}))
    }

    #[test]
    fn only_a_whole_string_between_the_markers_is_an_expression() {
        assert_eq!(expression("{% $states.input %}"), Some(" $states.input "));
        assert_eq!(expression(" {% 1 %}"), None);
        assert_eq!(expression("{% 1 %} "), None);
        assert_eq!(expression("price {% 1 %}"), None);
    }

    #[test]
    fn states_and_variables_are_bound() {
        assert_eq!(eval("$states.input.n + $x"), Ok(json!(13)));
        assert_eq!(eval("$sum($states.input.items.price)"), Ok(json!(7)));
        assert_eq!(eval("$states.input.n / 2"), Ok(json!(1.5)));
    }

    #[test]
    fn nothing_is_a_query_evaluation_error_not_null() {
        let err = eval("$states.input.missing").expect_err("undefined");
        assert_eq!(err.error, "States.QueryEvaluationError");
        assert!(err.cause.contains("'$states.input.missing'"), "{}", err.cause);
        assert!(err.cause.contains("'Output'"), "{}", err.cause);
        assert_eq!(eval("null"), Ok(Value::Null));
    }

    #[test]
    fn a_jsonata_error_is_a_query_evaluation_error_with_its_code() {
        let err = eval("'a' + 1").expect_err("type error");
        assert_eq!(err.error, "States.QueryEvaluationError");
        assert!(err.cause.contains("T2001"), "{}", err.cause);
    }

    #[test]
    fn eval_is_not_available_and_parse_is() {
        assert_eq!(eval("$parse('{\"a\": [1, 2]}')"), Ok(json!({"a": [1, 2]})));
        assert!(eval("$eval('1 + 1')").expect_err("eval").cause.contains("$parse"));
        assert!(eval("$parse('{nope')").is_err());
    }

    #[test]
    fn partition_and_range_follow_the_docs_examples() {
        // AWS docs, "JSONata functions provided by Step Functions".
        assert_eq!(eval("$partition([1,2,3,4], 2)"), Ok(json!([[1, 2], [3, 4]])));
        assert_eq!(eval("$partition([1,2,3,4,5], 2)"), Ok(json!([[1, 2], [3, 4], [5]])));
        assert_eq!(eval("$range(0, 10, 2)"), Ok(json!([0, 2, 4, 6, 8, 10])));
        assert_eq!(eval("$range(5, 1, -2)"), Ok(json!([5, 3, 1])));
        assert!(eval("$range(0, 10, 0)").is_err());
        assert!(eval("$range(0, 5000, 1)").is_err());
        assert!(eval("$partition([1], 0)").is_err());
    }

    #[test]
    fn hash_gives_lowercase_hex_for_each_algorithm() {
        assert_eq!(eval("$hash('input data', 'SHA-1')"), Ok(json!("aaff4a450a104cd177d28d18d74485e8cae074b7")));
        assert_eq!(eval("$hash('', 'MD5')"), Ok(json!("d41d8cd98f00b204e9800998ecf8427e")));
        assert!(eval("$hash('x', 'SHA-3')").is_err());
    }

    #[test]
    fn random_with_a_seed_repeats_and_uuid_is_a_v4() {
        let a = eval("$random(42)").expect("random");
        assert_eq!(eval("$random(42)"), Ok(a.clone()));
        let n = a.as_f64().expect("number");
        assert!((0.0..1.0).contains(&n));
        let id = eval("$uuid()").expect("uuid");
        let id = uuid::Uuid::parse_str(id.as_str().expect("string")).expect("uuid");
        assert_eq!(id.get_version_num(), 4);
    }

    #[test]
    fn now_and_millis_read_the_virtual_clock() {
        assert_eq!(eval("$now()"), Ok(json!("2024-05-01T12:00:00.000Z")));
        assert_eq!(eval("$millis()"), Ok(json!(1_714_564_800_000_i64)));
        assert_eq!(eval("$now('[Y0001]-[M01]')"), Ok(json!("2024-05")));
    }

    #[test]
    fn templates_evaluate_inside_objects_and_arrays_and_keep_literals() {
        let states = json!({"input": {"title": "T"}});
        let variables = Map::new();
        let scope = Scope {
            states: &states,
            variables: &variables,
            now: Utc::now(),
            rng: Rc::new(RefCell::new(StdRng::seed_from_u64(0))),
        };
        let template =
            json!({"static": "Hello", "title": "{% $states.input.title %}", "list": ["{% 1 + 1 %}", "$x"], "n": 3});
        assert_eq!(
            render(&template, "Arguments", &scope),
            Ok(json!({"static": "Hello", "title": "T", "list": [2, "$x"], "n": 3}))
        );
        let err = render(&json!({"a": {"b": "{% $nope %}"}}), "Arguments", &scope).expect_err("undefined");
        assert!(err.cause.contains("'Arguments.a.b'"), "{}", err.cause);
    }
}
