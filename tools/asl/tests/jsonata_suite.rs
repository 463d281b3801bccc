//! jsonata-core against the jsonata-js reference test suite (`test/test-suite` of
//! github.com/jsonata-js/jsonata), run with the semantics of jsonata-js's own `test/run-test-suite.js`.
//!
//! The suite is not vendored: point `JSONATA_SUITE` at an extracted `test/test-suite` (the directory
//! holding `groups/` and `datasets/`), or put it at `../jsonata-suite` next to the workspace root.
//! Without it the test prints SKIPPED and passes.
//!
//! A case passes when the result deep-equals `result` (numbers as f64, object key order ignored),
//! is undefined for `undefinedResult`, or the error code (`EvaluatorError::code()`, or the leading
//! code of a parse error's message) equals `code` / `error.code`. Messages and tokens are not
//! compared; `unordered` compares a top-level array as a multiset; `timelimit`/`depth` become
//! `EvaluatorOptions::timeout_ms`/`max_stack_depth`.

use jsonata_core::evaluator::{Context, Evaluator, EvaluatorOptions, error_code_prefix};
use jsonata_core::parser::parse;
use jsonata_core::value::JValue;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Measured 2026-11-28 on jsonata-js commit 6c7e95fdbf4405a1e741852a7cd8cd985b4305bb (package.json
/// 2.2.2), jsonata-core 2.2.13 without simd, debug build: 1686 cases, 1668 passed, 18 failed, 0
/// panicked, 0 timed out. The failures are 12 errors whose code is only inside the message (11 parse
/// errors such as "Invalid syntax: T1006: ..." and one "Signature validation failed: T0410: ..."),
/// S0106 unclosed comment without a code, U1001 expected where the crate raises D1011/D1012 (3
/// tail-recursion cases), and the two `'\uD800'` cases, which a Rust string cannot hold.
const MIN_PASSED: usize = 1668;

/// Wall-clock limit for a case without its own `timelimit`.
const CASE_TIMEOUT_MS: u64 = 10_000;

enum Expect {
    Undefined,
    Result(Value, bool),
    Code(String),
    Nothing,
}

struct Case {
    id: String,
    expr: Option<String>,
    data: Option<Value>,
    bindings: Map<String, Value>,
    expect: Expect,
    timelimit: Option<u64>,
    depth: Option<u64>,
}

/// Evaluation result: `Ok(None)` is undefined; `Err((code, message))`.
type Outcome = Result<Option<Value>, (Option<String>, String)>;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&escape_lone_surrogates(&text)))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Rust string cannot hold a lone UTF-16 surrogate (`"\uD800"` in two encodeUrl cases): keep such
/// an escape as a JSONata-level escape so the expression still parses as JSON.
fn escape_lone_surrogates(text: &str) -> String {
    let hex = |i: usize| text.get(i..i + 4).and_then(|h| u16::from_str_radix(h, 16).ok());
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'u') {
            let unit = hex(i + 2).unwrap_or(0);
            let low_follows =
                bytes.get(i + 6) == Some(&b'\\') && hex(i + 8).is_some_and(|l| (0xDC00..0xE000).contains(&l));
            if (0xD800..0xDC00).contains(&unit) && low_follows {
                out.push_str(&text[i..i + 12]);
                i += 12;
            } else {
                out.push_str(if (0xD800..0xE000).contains(&unit) { "\\\\u" } else { &text[i..i + 2] });
                i += 2;
            }
        } else if bytes[i] == b'\\' {
            out.push_str(&text[i..i + 2]);
            i += 2;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    entries
}

fn load_cases(suite: &Path) -> Vec<Case> {
    let mut datasets = Map::new();
    for path in sorted_entries(&suite.join("datasets")) {
        if path.extension().is_some_and(|x| x == "json") {
            datasets.insert(path.file_stem().unwrap().to_string_lossy().into_owned(), read_json(&path));
        }
    }
    let mut cases = Vec::new();
    for group_dir in sorted_entries(&suite.join("groups")).into_iter().filter(|p| p.is_dir()) {
        let group = group_dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in sorted_entries(&group_dir).into_iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let specs = match read_json(&file) {
                Value::Array(items) => {
                    items.into_iter().enumerate().map(|(i, c)| (format!("{group}/{name}#{i}"), c)).collect()
                }
                single => vec![(format!("{group}/{name}"), single)],
            };
            for (id, c) in specs {
                let expr = match (c.get("expr-file").and_then(Value::as_str), c.get("expr").and_then(Value::as_str)) {
                    (Some(file), _) => std::fs::read_to_string(group_dir.join(file)).ok(),
                    (None, expr) => expr.map(str::to_string),
                };
                let data = match (c.get("data"), c.get("dataset").and_then(Value::as_str)) {
                    (Some(data), _) => Some(data.clone()),
                    (None, Some(dataset)) => {
                        Some(datasets.get(dataset).unwrap_or_else(|| panic!("{id}: no dataset {dataset}")).clone())
                    }
                    (None, None) => None,
                };
                let code = c.get("error").and_then(|e| e.get("code")).or_else(|| c.get("code")).and_then(Value::as_str);
                let expect = if c.get("undefinedResult").is_some() {
                    Expect::Undefined
                } else if let Some(result) = c.get("result") {
                    Expect::Result(result.clone(), c.get("unordered") == Some(&Value::Bool(true)))
                } else if let Some(code) = code {
                    Expect::Code(code.to_string())
                } else {
                    Expect::Nothing
                };
                let (timelimit, depth) = match (c.get("timelimit"), c.get("depth")) {
                    (Some(t), Some(d)) => (t.as_u64(), d.as_u64()),
                    _ => (None, None),
                };
                let bindings = c.get("bindings").and_then(Value::as_object).cloned().unwrap_or_default();
                cases.push(Case { id, expr, data, bindings, expect, timelimit, depth });
            }
        }
    }
    cases
}

fn evaluate(case: &Case) -> Outcome {
    let expr = case.expr.as_deref().ok_or((None, "the case has no expression".to_string()))?;
    let ast = parse(expr).map_err(|e| {
        let message = e.to_string();
        (error_code_prefix(&message).map(str::to_string), message)
    })?;
    let mut context = Context::new();
    for (name, value) in &case.bindings {
        context.bind(name.clone(), JValue::from(value.clone()));
    }
    let options = EvaluatorOptions {
        timeout_ms: Some(case.timelimit.unwrap_or(CASE_TIMEOUT_MS)),
        max_stack_depth: case.depth.map(|d| d as usize),
        ..EvaluatorOptions::default()
    };
    let input = case.data.clone().map_or(JValue::Undefined, JValue::from);
    let result = Evaluator::with_options(context, options)
        .evaluate(&ast, &input)
        .map_err(|e| (e.code().map(str::to_string), e.to_string()))?;
    if result.is_undefined() {
        return Ok(None);
    }
    serde_json::to_value(&result).map(Some).map_err(|e| (None, format!("result is not JSON: {e}")))
}

/// Deep equality as chai's deep-eql sees JSON: numbers by value, objects in any key order.
///
/// Without serde_json's `float_roundtrip` feature, parsing may land one ulp off (`90.57000000000001`
/// reads as `90.57`), so a result also matches when its shortest decimal form, read by the same
/// parser, gives the expected value: the suite's files hold jsonata-js's shortest forms.
fn deep_eq(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(w), Value::Number(g)) => match (w.as_f64(), g.as_f64()) {
            (Some(w), Some(g)) => w == g || serde_json::from_str::<f64>(&format!("{g:?}")).is_ok_and(|g| g == w),
            _ => w == g,
        },
        (Value::Array(w), Value::Array(g)) => w.len() == g.len() && w.iter().zip(g).all(|(w, g)| deep_eq(w, g)),
        (Value::Object(w), Value::Object(g)) => {
            w.len() == g.len() && w.iter().all(|(k, w)| g.get(k).is_some_and(|g| deep_eq(w, g)))
        }
        _ => want == got,
    }
}

fn same_items(want: &[Value], got: &[Value]) -> bool {
    let mut used = vec![false; got.len()];
    want.len() == got.len()
        && want.iter().all(|w| match (0..got.len()).find(|&i| !used[i] && deep_eq(w, &got[i])) {
            Some(i) => {
                used[i] = true;
                true
            }
            None => false,
        })
}

fn passes(expect: &Expect, outcome: &Outcome) -> bool {
    match (expect, outcome) {
        (Expect::Undefined, Ok(None)) => true,
        (Expect::Result(want, unordered), Ok(Some(got))) => {
            deep_eq(want, got)
                || (*unordered && matches!((want, got), (Value::Array(w), Value::Array(g)) if same_items(w, g)))
        }
        (Expect::Code(want), Err((Some(got), _))) => want == got,
        _ => false,
    }
}

/// Runs one case on its own thread (deep recursion gets a big stack), catching panics; a case still
/// running after twice its time limit is abandoned and counted as timed out.
fn run_case(case: Case) -> (String, String) {
    let id = case.id.clone();
    let limit = Duration::from_millis(2 * case.timelimit.unwrap_or(CASE_TIMEOUT_MS));
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let verdict = match std::panic::catch_unwind(|| evaluate(&case)) {
                Ok(outcome) if passes(&case.expect, &outcome) => String::new(),
                Ok(Ok(None)) => "fail: got undefined".to_string(),
                Ok(Ok(Some(value))) => format!("fail: got {}", value.to_string().chars().take(200).collect::<String>()),
                Ok(Err((code, message))) => format!("fail: got error {code:?}: {message}"),
                Err(_) => "panicked".to_string(),
            };
            let _ = tx.send(verdict);
        })
        .expect("spawn a case thread");
    let verdict = rx.recv_timeout(limit).unwrap_or_else(|_| format!("timed out after {limit:?}"));
    (id, verdict)
}

#[test]
fn jsonata_core_passes_the_jsonata_js_test_suite() {
    let suite = std::env::var_os("JSONATA_SUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../jsonata-suite")));
    if !suite.join("groups").is_dir() {
        println!(
            "SKIPPED: the JSONata test suite is not at {} (fetch github:jsonata-js/jsonata and extract \
             test/test-suite there)",
            suite.display()
        );
        return;
    }
    let cases = load_cases(&suite);
    let total = cases.len();
    let mut failing = Vec::new();
    for case in cases {
        let (id, verdict) = run_case(case);
        if !verdict.is_empty() {
            failing.push(format!("{id}: {verdict}"));
        }
    }
    let passed = total - failing.len();
    for failure in &failing {
        println!("FAILING {failure}");
    }
    println!("jsonata-core on {}: {passed}/{total} passed", suite.display());
    assert!(passed >= MIN_PASSED, "{passed}/{total} cases passed, fewer than the {MIN_PASSED} measured");
}
