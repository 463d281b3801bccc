//! Errors as Step Functions names them: an error name and a cause, both strings.

use std::fmt;

/// An error raised inside an execution, matched by `ErrorEquals` in Retry and Catch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

/// The predefined error names the runner raises.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self { error: error.into(), cause: cause.into() }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(names::RUNTIME, cause)
    }

    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Self::new(names::INTRINSIC_FAILURE, cause)
    }

    pub fn parameter_path(cause: impl Into<String>) -> Self {
        Self::new(names::PARAMETER_PATH_FAILURE, cause)
    }

    pub fn result_path(cause: impl Into<String>) -> Self {
        Self::new(names::RESULT_PATH_MATCH_FAILURE, cause)
    }

    /// Whether a Retry or Catch rule listing `name` applies to this error.
    ///
    /// Nothing matches `States.Runtime`: AWS never retries or catches it, not even under a rule
    /// naming it (LocalStack snapshot `test_catch_states_runtime`). `States.ALL` matches every
    /// other error; `States.TaskFailed` matches any task failure except a timeout.
    pub fn is_matched_by(&self, name: &str) -> bool {
        if self.error == names::RUNTIME {
            return false;
        }
        match name {
            names::ALL => true,
            names::TASK_FAILED => !self.error.starts_with("States.") || self.error == names::TASK_FAILED,
            other => other == self.error,
        }
    }
}

impl fmt::Display for StatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StatesError {}

/// A definition the runner refuses to run, with the reason (JSONata, an unsupported field, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);
