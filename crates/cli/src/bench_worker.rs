//! Worker benchmarks (filled in with the worker).

use crate::config::CliConfig;

pub(crate) async fn run(_config: &CliConfig) -> anyhow::Result<()> {
    Ok(())
}
