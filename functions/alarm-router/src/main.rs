use alarm_router::{Clients, RouterConfig, dispatch_measured};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RouterConfig::from_env()?;
    tracing::info!(rules = config.routes.len(), "routing rules loaded");
    let clients = Clients::new(&shared::aws::sdk_config().await);
    run(service_fn(|event: LambdaEvent<Value>| async {
        let (answer, measured) = dispatch_measured(&clients, &config, event.payload).await?;
        shared::metrics::emit(&measured);
        Ok::<_, alarm_router::RouterError>(answer)
    }))
    .await
}
