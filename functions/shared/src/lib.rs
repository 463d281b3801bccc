//! What the first-response functions share: the alarm model, routing rules, the incident key
//! and document, and how AWS errors are classified.

pub mod alarm;
pub mod aws;
pub mod incident;
pub mod inhibition;
pub mod maintenance;
pub mod metrics;
pub mod page;
pub mod routing;
pub mod silence;
pub mod text;

pub use alarm::{Alarm, AlarmKind, AlarmState, InvalidEvent};
pub use incident::{FirstResponseInput, IncidentKey, Notice};
pub use routing::{Action, Remediation, Route, Routes, RoutesError, Severity, Tag, Targets};

/// The first-response state machine's `TimeoutSeconds`: no execution runs longer. The failure
/// counter relies on it to bound how far back it reads; a contract test keeps the ASL equal to it.
pub const EXECUTION_TIMEOUT_SECONDS: u64 = 4500;

/// For a function's error enum whose variant names are the error names Lambda reports (derived with
/// strum's `IntoStaticStr` and `EnumIter`): `names()`, listing every name the function can return
/// (the ASL contract tests read it), and the conversion into `lambda_runtime::Diagnostic`, so the
/// name Step Functions matches is the variant's, never a Rust type path.
#[macro_export]
macro_rules! lambda_error_names {
    ($error:ty) => {
        impl $error {
            /// Every error name the function can return.
            pub fn names() -> Vec<&'static str> {
                <$error as strum::IntoEnumIterator>::iter().map(<&'static str>::from).collect()
            }
        }

        impl From<$error> for lambda_runtime::Diagnostic {
            fn from(err: $error) -> Self {
                lambda_runtime::Diagnostic {
                    error_type: <&'static str>::from(&err).to_owned(),
                    error_message: err.to_string(),
                }
            }
        }
    };
}

/// Reads an environment variable that must be set, for `main()` wiring.
pub fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {name} must be set"))
}

/// Reads an optional environment variable; unset and empty are the same.
pub fn optional_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// What is left of a Lambda invocation whose deadline is `deadline_ms` (milliseconds since the
/// Unix epoch, as `lambda_runtime::Context::deadline` gives it); zero once it has passed.
pub fn time_left(deadline_ms: u64) -> std::time::Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
