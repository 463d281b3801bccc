use failure_counter::{CounterConfig, CounterError, handle, measurements};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::Routes;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = CounterConfig::from_env()?;
    let routes = Routes::deployed()?;
    let sfn = aws_sdk_sfn::Client::new(&shared::aws::sdk_config().await);
    run(service_fn(|event: LambdaEvent<Value>| async {
        let failures = handle(&sfn, &config, &routes, event.payload, chrono::Utc::now()).await?;
        shared::metrics::emit(&measurements(&failures));
        Ok::<_, CounterError>(failures)
    }))
    .await
}
