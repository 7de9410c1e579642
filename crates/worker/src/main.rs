//! `switchyard-worker`: config from env → clients → run until idle, SIGTERM or supersession.
#![recursion_limit = "256"]

use switchyard_aws::Clients;
use switchyard_worker::WorkerConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    switchyard_aws::metrics::enable("worker");
    let cfg = WorkerConfig::from_env()?;
    if let Some(marker) = &cfg.poison_marker {
        tracing::warn!(marker = %marker, "SWITCHYARD_TEST_POISON is set: load testing only; never in a deployment");
    }
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let sdk = switchyard_worker::scoped_sdk_config(&cfg, sdk).await?;
    let clients = Clients::new(&sdk, None);
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let shutdown = async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    let exit = switchyard_worker::run(cfg, &clients, &ssm, shutdown).await?;
    tracing::info!(?exit, "bye");
    Ok(())
}
