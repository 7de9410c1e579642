//! The CLI's one reading of the environment.

use switchyard_orchestrator::config::env_list;

/// Settings of the local runtime and the benchmarks.
#[derive(Debug, Clone)]
pub(crate) struct CliConfig {
    /// `SWITCHYARD_SUBNETS`: subnets for ECS RunTask (the emulator's default VPC).
    pub(crate) subnets: Vec<String>,
    /// `SWITCHYARD_SECURITY_GROUPS`: security groups for ECS RunTask.
    pub(crate) security_groups: Vec<String>,
    /// `SWITCHYARD_WORKER_BIN`: the worker binary for local containers (default: beside
    /// this binary).
    pub(crate) worker_bin: Option<std::path::PathBuf>,
    /// `SWITCHYARD_TABLE` (default `switchyard`).
    pub(crate) table: String,
    /// `SWITCHYARD_QUEUE_PREFIX` (default `sy`).
    pub(crate) prefix: String,
    /// `SWITCHYARD_INBOUND_DOMAIN` (default `in.switchyard.local`).
    pub(crate) domain: String,
    /// `SWITCHYARD_API_PORT` for `dev` (default 8787).
    pub(crate) api_port: u16,
    /// `SWITCHYARD_DATA_DIR`: containers, logs, outbox (default `.switchyard`).
    pub(crate) data_dir: std::path::PathBuf,
}

impl CliConfig {
    /// Reads the environment.
    pub(crate) fn from_env() -> Self {
        Self {
            subnets: env_list("SWITCHYARD_SUBNETS"),
            security_groups: env_list("SWITCHYARD_SECURITY_GROUPS"),
            worker_bin: std::env::var_os("SWITCHYARD_WORKER_BIN").map(Into::into),
            table: std::env::var("SWITCHYARD_TABLE").unwrap_or_else(|_| "switchyard".into()),
            prefix: std::env::var("SWITCHYARD_QUEUE_PREFIX").unwrap_or_else(|_| "sy".into()),
            domain: std::env::var("SWITCHYARD_INBOUND_DOMAIN").unwrap_or_else(|_| "in.switchyard.local".into()),
            api_port: std::env::var("SWITCHYARD_API_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8787),
            data_dir: std::env::var_os("SWITCHYARD_DATA_DIR").map_or_else(|| ".switchyard".into(), Into::into),
        }
    }

    /// The worker binary to launch locally.
    pub(crate) fn worker_binary(&self) -> anyhow::Result<std::path::PathBuf> {
        let bin = match &self.worker_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?.with_file_name("switchyard-worker"),
        };
        anyhow::ensure!(
            bin.exists(),
            "worker binary {} not found (build it: cargo build -p switchyard-worker)",
            bin.display()
        );
        Ok(bin)
    }
}
