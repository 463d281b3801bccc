use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use slack_channel_creator::secrets::{self, SecretNames};
use slack_channel_creator::{WarRoom, WarRoomConfig, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = WarRoomConfig::from_env()?;
    let ssm = aws_sdk_ssm::Client::new(&shared::aws::sdk_config().await);
    let secrets = secrets::load(&ssm, &SecretNames::from_env()?).await?;
    let war_room = WarRoom::new(config, secrets)?;
    run(service_fn(|event: LambdaEvent<Value>| {
        handle(&war_room, event.payload, Some(shared::time_left(event.context.deadline)))
    }))
    .await
}
