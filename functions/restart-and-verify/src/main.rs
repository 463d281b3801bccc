use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use restart_and_verify::{Clients, RestartConfig, RestartError, handle_measured};
use serde_json::Value;
use shared::Routes;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RestartConfig::from_env()?;
    // What runs on an instance comes from the rules compiled into this build, never from the input.
    let routes = Routes::deployed()?;
    let clients = Clients::new(&shared::aws::sdk_config().await);
    run(service_fn(|event: LambdaEvent<Value>| async {
        let (report, measured) = handle_measured(&clients, &config, &routes, event.payload).await?;
        shared::metrics::emit(&measured);
        Ok::<_, RestartError>(report)
    }))
    .await
}
