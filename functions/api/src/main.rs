//! `api` Lambda entry point.
#![recursion_limit = "256"]

use lambda_http::{run, service_fn, Error, Request};
use switchyard_aws::Clients;
use switchyard_orchestrator::config::RouterConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    switchyard_aws::metrics::enable("api");
    let config = RouterConfig::from_env()?;
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let clients = Clients::new(&sdk, None);
    let state = api::State { orchestrator: config.orchestrator(&clients) };
    let state = &state;
    run(service_fn(move |req: Request| async move { api::handle(state, req).await })).await
}
