//! Replays the Choice-operator cases recorded against AWS Step Functions
//! (`../shared/conformance/asl-choice-operators.json`) and checks every output.
//!
//! Each case runs through the real executor: the definition is loaded (and checked) like any
//! other, and its output must equal what AWS produced.

use std::path::Path;

use asl::{Definition, ExecutionSettings, Executor, StatesError, TaskCall, TaskRunner};
use serde_json::Value;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance/asl-choice-operators.json");
const EXPECTED_CASES: usize = 491;

/// The recorded cases have no Task states.
struct NoTasks;

impl TaskRunner for NoTasks {
    async fn run(&self, call: &TaskCall) -> Result<Value, StatesError> {
        Err(StatesError::new("Unexpected", format!("no task expected, got {}", call.state)))
    }
}

/// The execution's output, or its error.
async fn run(definition: &Value, input: &Value) -> Result<Value, String> {
    let definition = Definition::from_value(definition.clone()).map_err(|refused| format!("refused: {refused}"))?;
    let settings = ExecutionSettings::local("conformance", "conformance");
    let outcome = Executor::new(&NoTasks, &settings).run(&definition, input.clone()).await;
    outcome.output.ok_or_else(|| format!("{:?}: {:?} {:?}", outcome.status, outcome.error, outcome.cause))
}

#[tokio::test]
async fn every_recorded_choice_case_gives_the_aws_output() {
    let path = Path::new(CASES);
    if !path.exists() {
        println!(
            "SKIPPED: the recorded AWS cases are not at {} (they live in ../shared next to the workspace, \
             which a plain clone does not have)",
            path.display()
        );
        return;
    }
    let text = std::fs::read_to_string(path).expect("read the conformance cases");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("the conformance file is a JSON array");

    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("<no id>");
        let expected = Ok(case["expected"].clone());
        let actual = run(&case["definition"], &case["input"]).await;
        if actual != expected {
            failures.push(format!("{id}: expected {expected:?}, got {actual:?} (input {})", case["input"]));
        }
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    let passed = cases.len() - failures.len();
    println!("{passed} of {} recorded Choice cases pass", cases.len());

    assert!(failures.is_empty(), "{} of {} cases fail (listed above)", failures.len(), cases.len());
    assert_eq!(cases.len(), EXPECTED_CASES, "the conformance file should hold every recorded case");
}
