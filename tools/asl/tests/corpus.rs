//! Replays the JSONPath conformance corpus (`tests/corpus/jsonpath.json`) through the real
//! executor.
//!
//! Each case names where AWS's behaviour comes from (`source`) and expects either an `output`, an
//! `error` and `cause` (null when AWS reports none; `"match": "prefix"` when only the start of the
//! cause is known), or a load-time refusal (`refused`: a fragment of the reason) where AWS's
//! behaviour is not documented. `task_result` is what every Task returns; `task_result_blob`
//! returns `{"blob": "aaa..."}` of that many bytes; `expand` fills a JSON pointer of the case with
//! a repeated string (for payloads over 256 KiB).

use asl::{Definition, ExecutionSettings, Executor, StatesError, TaskCall, TaskRunner};
use serde_json::{Value, json};

const CORPUS: &str = include_str!("corpus/jsonpath.json");
const MIN_CASES: usize = 40;

/// Every Task returns the same result.
struct Fixed(Value);

impl TaskRunner for Fixed {
    async fn run(&self, _call: &TaskCall) -> Result<Value, StatesError> {
        Ok(self.0.clone())
    }
}

fn expanded(case: &Value) -> Value {
    let mut case = case.clone();
    for expansion in case["expand"].as_array().cloned().unwrap_or_default() {
        let pointer = expansion["pointer"].as_str().expect("expand.pointer");
        let times = expansion["times"].as_u64().expect("expand.times") as usize;
        let text = expansion["repeat"].as_str().expect("expand.repeat").repeat(times);
        *case.pointer_mut(pointer).expect("expand.pointer names a value") = json!(text);
    }
    case
}

/// What went wrong with one case, or nothing.
async fn check(case: &Value) -> Option<String> {
    let case = expanded(case);
    let loaded = Definition::from_value(case["definition"].clone());
    if let Some(fragment) = case["refused"].as_str() {
        return match loaded {
            Err(refused) if refused.0.contains(fragment) => None,
            Err(refused) => Some(format!("refused for another reason: {refused}")),
            Ok(_) => Some(format!("expected a refusal mentioning {fragment:?}, but it loaded")),
        };
    }
    let definition = match loaded {
        Ok(definition) => definition,
        Err(refused) => return Some(format!("refused: {refused}")),
    };
    let result = match case["task_result_blob"].as_u64() {
        Some(bytes) => json!({"blob": "a".repeat(bytes as usize)}),
        None => case.get("task_result").cloned().unwrap_or(Value::Null),
    };
    let settings = ExecutionSettings::local("corpus", "corpus");
    let outcome = Executor::new(&Fixed(result), &settings).run(&definition, case["input"].clone()).await;
    if let Some(expected) = case.get("output") {
        return (outcome.output.as_ref() != Some(expected)).then(|| {
            format!("expected output {expected}, got {:?} {:?} {:?}", outcome.output, outcome.error, outcome.cause)
        });
    }
    let error = case["error"].as_str();
    let cause = case["cause"].as_str();
    let cause_ok = match (case["match"].as_str(), cause, outcome.cause.as_deref()) {
        (Some("prefix"), Some(prefix), Some(actual)) => actual.starts_with(prefix),
        (_, expected, actual) => expected == actual,
    };
    (outcome.output.is_some() || outcome.error.as_deref() != error || !cause_ok).then(|| {
        format!(
            "expected error {error:?} cause {cause:?}, got error {:?} cause {:?} output {:?}",
            outcome.error, outcome.cause, outcome.output
        )
    })
}

#[tokio::test]
async fn every_corpus_case_matches_what_aws_does() {
    let cases: Vec<Value> = serde_json::from_str(CORPUS).expect("the corpus is a JSON array");
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("<no id>");
        assert!(case["source"].as_str().is_some_and(|s| !s.is_empty()), "{id}: every case names its source");
        if let Some(problem) = check(case).await {
            failures.push(format!("{id}: {problem}"));
        }
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    assert!(failures.is_empty(), "{} of {} corpus cases fail (listed above)", failures.len(), cases.len());
    assert!(cases.len() >= MIN_CASES, "the corpus should hold at least {MIN_CASES} cases, has {}", cases.len());
}

#[test]
fn ambiguous_behaviour_is_refused_at_load() {
    let cases: Vec<Value> = serde_json::from_str(CORPUS).expect("the corpus is a JSON array");
    let refused: Vec<&Value> = cases.iter().filter(|c| c.get("refused").is_some()).collect();
    assert!(!refused.is_empty(), "the corpus proves at least one refusal");
    for case in refused {
        let id = case["id"].as_str().unwrap_or("<no id>");
        assert!(case["note"].as_str().is_some(), "{id}: a refusal says in a note why AWS's behaviour is unknown");
        assert!(Definition::from_value(case["definition"].clone()).is_err(), "{id}: must be refused");
    }
}
