//! Payload templates: `Parameters`, `ResultSelector` and `ItemSelector`.
//!
//! A field whose name ends in `.$` takes its value from a path or an intrinsic function call
//! and loses the suffix; every other field is copied as it is, objects and arrays recursively.

use serde_json::{Map, Value};

use crate::error::StatesError;
use crate::intrinsics;
use crate::paths::{self, PathError};

/// Builds the payload `template` describes from `input` and the `context` object.
///
/// A path that matches nothing is `States.Runtime` (as AWS records it, not the
/// `States.ParameterPathFailure` the specification names); a failing intrinsic is
/// `States.IntrinsicFailure`.
pub fn render(template: &Value, input: &Value, context: &Value) -> Result<Value, StatesError> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (name, value) in fields {
                match name.strip_suffix(".$") {
                    Some(bare) => {
                        let expression = value.as_str().ok_or_else(|| {
                            StatesError::parameter_path(format!("the value of {name:?} must be a path or an intrinsic"))
                        })?;
                        out.insert(bare.to_owned(), resolve_field(expression, name, input, context)?);
                    }
                    None => {
                        out.insert(name.clone(), render(value, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            items.iter().map(|item| render(item, input, context)).collect::<Result<_, _>>().map(Value::Array)
        }
        literal => Ok(literal.clone()),
    }
}

/// The value of the field `field` (`name.$`, `ErrorPath`, ...): a path (`$...`, `$$...`) or an
/// intrinsic call (`States....`).
///
/// A path that matches nothing is `States.Runtime` with AWS's cause: the path, the field and the
/// document it was read from as compact JSON (the state input, or for `$$` paths the context
/// object).
pub fn resolve_field(expression: &str, field: &str, input: &Value, context: &Value) -> Result<Value, StatesError> {
    if intrinsics::is_intrinsic(expression) {
        return intrinsics::evaluate(expression, input, context);
    }
    paths::read(expression, input, context).map_err(|e| match e {
        PathError::Missing(path) => {
            let document = if path.starts_with("$$") { context } else { input };
            StatesError::runtime(format!(
                "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{document}'"
            ))
        }
        other => StatesError::runtime(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dollar_fields_read_paths_and_the_rest_is_literal() {
        let template = json!({
            "flagged": true,
            "parts": {"first.$": "$.vals[0]", "last.$": "$.vals[-1:]"},
            "list": [{"name.$": "$$.State.Name"}, "plain"],
            "execution.$": "$$.Execution.Id"
        });
        let input = json!({"vals": [0, 10, 20, 30]});
        let context = json!({"Execution": {"Id": "arn:e"}, "State": {"Name": "S"}});
        assert_eq!(
            render(&template, &input, &context),
            Ok(json!({
                "flagged": true,
                "parts": {"first": 0, "last": [30]},
                "list": [{"name": "S"}, "plain"],
                "execution": "arn:e"
            }))
        );
    }

    #[test]
    fn a_missing_path_is_a_runtime_error_naming_the_field_and_input() {
        let err = render(&json!({"x.$": "$.nope"}), &json!({"a": [1]}), &json!({})).expect_err("missing");
        assert_eq!(err.error, "States.Runtime");
        assert_eq!(
            err.cause,
            "The JSONPath '$.nope' specified for the field 'x.$' could not be found in the input '{\"a\":[1]}'"
        );
    }
}
