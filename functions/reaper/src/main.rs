//! `reaper` Lambda entry point.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard_aws::Clients;
use switchyard_orchestrator::config::RouterConfig;
use switchyard_orchestrator::reconcile::ReaperSettings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    switchyard_aws::metrics::enable("reaper");
    let config = RouterConfig::from_env()?;
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let clients = Clients::new(&sdk, None);
    let state = reaper::State {
        orchestrator: config.orchestrator(&clients),
        settings: ReaperSettings {
            budget: std::time::Duration::from_secs(
                std::env::var("SWITCHYARD_REAPER_BUDGET_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(40),
            ),
            ..ReaperSettings::default()
        },
    };
    let state = &state;
    run(service_fn(move |ev: LambdaEvent<_>| async move { reaper::handle(state, ev).await })).await
}
