use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use restart_and_verify::{Polling, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let polling = Polling::default();
    let ssm = aws_sdk_ssm::Client::new(&aws_config::load_from_env().await);
    run(service_fn(|event: LambdaEvent<Value>| {
        handle(&ssm, &polling, event.payload, Some(shared::time_left(event.context.deadline)))
    }))
    .await
}
