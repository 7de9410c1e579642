//! `intake-email` Lambda entry point: clients once, then one handler call per event.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard_aws::Clients;
use switchyard_orchestrator::config::RouterConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    switchyard_aws::metrics::enable("intake-email");
    let config = RouterConfig::from_env()?;
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let clients = Clients::new(&sdk, None);
    let state = intake_email::State {
        orchestrator: config.orchestrator(&clients),
        s3: clients.s3.clone(),
        mailer: switchyard_aws::mailer::Mailer::new(clients.ses.clone()),
        inbound_domain: std::env::var("SWITCHYARD_INBOUND_DOMAIN")?,
        attachments_bucket: std::env::var("SWITCHYARD_ATTACHMENTS_BUCKET").ok().filter(|b| !b.is_empty()),
    };
    let state = &state;
    run(service_fn(move |ev: LambdaEvent<_>| async move { intake_email::handle(state, ev).await })).await
}
