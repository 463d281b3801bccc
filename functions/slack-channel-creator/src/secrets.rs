//! The war room's secrets: the Slack bot token, the PagerDuty webhook secrets and, optionally, a
//! PagerDuty REST API key, read once per cold start from SSM Parameter Store SecureStrings whose
//! names the environment gives. Values are never logged: `Debug` redacts them.

use aws_sdk_ssm::types::Parameter;
use shared::aws::{describe, is_transient};

use crate::WarRoomError;

/// The parameter names, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretNames {
    /// `SLACK_TOKEN_PARAMETER`: the bot token (`xoxb-...`).
    pub slack_token: String,
    /// `WEBHOOK_SECRETS_PARAMETER`, optional: one or more PagerDuty webhook secrets, comma or
    /// newline separated. Only the webhook function (the one with a Function URL) has it; without
    /// it every webhook request is refused.
    pub webhook_secrets: Option<String>,
    /// `PAGERDUTY_TOKEN_PARAMETER`, optional: a read-only REST API key, to find assignees' e-mails.
    pub pagerduty_token: Option<String>,
}

impl SecretNames {
    pub fn from_env() -> Result<Self, WarRoomError> {
        Ok(Self {
            slack_token: shared::required_env("SLACK_TOKEN_PARAMETER").map_err(WarRoomError::ConfigError)?,
            webhook_secrets: shared::optional_env("WEBHOOK_SECRETS_PARAMETER"),
            pagerduty_token: shared::optional_env("PAGERDUTY_TOKEN_PARAMETER"),
        })
    }
}

/// The secrets themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    pub slack_token: String,
    /// Any of these may sign a webhook, so a secret can be rotated without dropping deliveries.
    pub webhook_secrets: Vec<String>,
    pub pagerduty_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("slack_token", &"<redacted>")
            .field("webhook_secrets", &format!("<{} redacted>", self.webhook_secrets.len()))
            .field("pagerduty_token", &self.pagerduty_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Splits a stored list of webhook secrets (comma, whitespace or newline separated).
pub fn parse_webhook_secrets(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Reads every secret in one `GetParameters` call, decrypted.
pub async fn load(ssm: &aws_sdk_ssm::Client, names: &SecretNames) -> Result<Secrets, WarRoomError> {
    let mut wanted = vec![names.slack_token.clone()];
    wanted.extend(names.webhook_secrets.clone());
    wanted.extend(names.pagerduty_token.clone());
    let answer = ssm.get_parameters().set_names(Some(wanted)).with_decryption(true).send().await.map_err(|err| {
        let message = format!("SSM GetParameters: {}", describe(&err));
        if is_transient(&err) { WarRoomError::TransientError(message) } else { WarRoomError::ConfigError(message) }
    })?;
    if !answer.invalid_parameters().is_empty() {
        return Err(WarRoomError::ConfigError(format!(
            "SSM parameters not found: {} (store them as SecureString, see the README)",
            answer.invalid_parameters().join(", ")
        )));
    }
    let value = |name: &str| -> Result<String, WarRoomError> {
        answer
            .parameters()
            .iter()
            .find(|p| p.name() == Some(name))
            .and_then(Parameter::value)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| WarRoomError::ConfigError(format!("SSM parameter {name} is empty")))
    };
    let webhook_secrets = match &names.webhook_secrets {
        Some(name) => parse_webhook_secrets(&value(name)?),
        None => Vec::new(),
    };
    Ok(Secrets {
        slack_token: value(&names.slack_token)?,
        webhook_secrets,
        pagerduty_token: names.pagerduty_token.as_deref().map(value).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::config::retry::RetryConfig;
    use aws_sdk_ssm::operation::get_parameters::{GetParametersError, GetParametersOutput};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;

    fn names() -> SecretNames {
        SecretNames {
            slack_token: "/first-response/slack-bot-token".into(),
            webhook_secrets: Some("/first-response/pagerduty-webhook-secrets".into()),
            pagerduty_token: None,
        }
    }

    fn parameter(name: &str, value: &str) -> Parameter {
        Parameter::builder().name(name).value(value).r#type(aws_sdk_ssm::types::ParameterType::SecureString).build()
    }

    #[tokio::test]
    async fn reads_both_secrets_decrypted_in_one_call() {
        // GIVEN both SecureStrings exist, the webhook parameter holding two secrets mid-rotation
        let get = mock!(aws_sdk_ssm::Client::get_parameters)
            .match_requests(|req| {
                req.with_decryption() == Some(true)
                    && req.names() == ["/first-response/slack-bot-token", "/first-response/pagerduty-webhook-secrets"]
            })
            .then_output(|| {
                GetParametersOutput::builder()
                    .parameters(parameter("/first-response/slack-bot-token", "xoxb-1-2-3\n"))
                    .parameters(parameter("/first-response/pagerduty-webhook-secrets", "new-secret,\nold-secret"))
                    .build()
            });
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&get]);
        // WHEN they are loaded
        let secrets = load(&ssm, &names()).await.expect("secrets");
        // THEN one call read them, and nothing of them shows in Debug output
        assert_eq!(get.num_calls(), 1);
        assert_eq!(secrets.slack_token, "xoxb-1-2-3");
        assert_eq!(secrets.webhook_secrets, ["new-secret", "old-secret"]);
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("xoxb") && !shown.contains("secret,") && !shown.contains("old-secret"), "{shown}");
    }

    #[tokio::test]
    async fn a_missing_parameter_is_a_config_error_naming_it() {
        let get = mock!(aws_sdk_ssm::Client::get_parameters).then_output(|| {
            GetParametersOutput::builder()
                .parameters(parameter("/first-response/slack-bot-token", "xoxb-1"))
                .invalid_parameters("/first-response/pagerduty-webhook-secrets")
                .build()
        });
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&get]);
        let err = load(&ssm, &names()).await.expect_err("missing");
        assert_eq!(<&str>::from(&err), "ConfigError");
        assert!(err.to_string().contains("/first-response/pagerduty-webhook-secrets"), "{err}");
    }

    #[tokio::test]
    async fn throttling_is_transient() {
        let get = mock!(aws_sdk_ssm::Client::get_parameters)
            .then_error(|| GetParametersError::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&get], |c| c.retry_config(RetryConfig::disabled()));
        let err = load(&ssm, &names()).await.expect_err("throttled");
        assert_eq!(<&str>::from(&err), "TransientError");
    }

    #[test]
    fn webhook_secret_lists_split_on_commas_and_newlines() {
        assert_eq!(parse_webhook_secrets(" a, b\nc\n\n"), ["a", "b", "c"]);
        assert!(parse_webhook_secrets(" \n").is_empty());
    }
}
