use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use restart_and_verify::{Polling, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let polling = Polling::default();
    let ssm = aws_sdk_ssm::Client::new(&aws_config::load_from_env().await);
    run(service_fn(|event: LambdaEvent<Value>| {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
        let time_left = Duration::from_millis(
            u64::try_from(u128::from(event.context.deadline).saturating_sub(now_ms)).unwrap_or(0),
        );
        handle(&ssm, &polling, event.payload, Some(time_left))
    }))
    .await
}
