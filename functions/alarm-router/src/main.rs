use alarm_router::{Clients, RouterConfig, dispatch};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RouterConfig::from_env()?;
    tracing::info!(rules = config.routes.len(), "routing rules loaded");
    let clients = Clients::new(&aws_config::load_from_env().await);
    run(service_fn(|event: LambdaEvent<Value>| dispatch(&clients, &config, event.payload))).await
}
