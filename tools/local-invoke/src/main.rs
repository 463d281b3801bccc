//! `local-invoke FUNCTION EVENT_FILE`: prints the function's JSON response, or its named error
//! as Lambda reports it (`{"errorType": ..., "errorMessage": ...}`) and exits 1.

use std::process::ExitCode;

use local_invoke::{DEFAULT_ENDPOINT, Emulator, Function, emulator_config, invoke};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> ExitCode {
    lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [function, event_file] = args.as_slice() else {
        eprintln!(
            "usage: local-invoke FUNCTION EVENT_FILE   \
             (FUNCTION: alarm-router | failure-counter | restart-and-verify | slack-channel-creator)"
        );
        return ExitCode::from(2);
    };
    let function: Function = match function.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(event_file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("cannot read {event_file}: {e}");
            return ExitCode::from(2);
        }
    };
    // Lambda hands the function any JSON; text that is not JSON never reaches a handler.
    let payload: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return report(Err(("InvalidEvent".into(), format!("{event_file} is not JSON: {e}")))),
    };
    let endpoint = shared::optional_env("AWS_ENDPOINT_URL").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let config = emulator_config(&endpoint).await;
    let emulator = match Emulator::prepare(&config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    };
    let result = invoke(function, payload, &config, &emulator).await;
    report(result.map_err(|d| (d.error_type, d.error_message)))
}

fn report(result: Result<Value, (String, String)>) -> ExitCode {
    let (body, code) = match result {
        Ok(response) => (response, ExitCode::SUCCESS),
        Err((error_type, error_message)) => {
            (json!({"errorType": error_type, "errorMessage": error_message}), ExitCode::FAILURE)
        }
    };
    println!("{}", serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string()));
    code
}
