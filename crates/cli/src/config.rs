//! The CLI's one reading of the environment.

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
}

fn list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl CliConfig {
    /// Reads the environment.
    pub(crate) fn from_env() -> Self {
        Self {
            subnets: list("SWITCHYARD_SUBNETS"),
            security_groups: list("SWITCHYARD_SECURITY_GROUPS"),
            worker_bin: std::env::var_os("SWITCHYARD_WORKER_BIN").map(Into::into),
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
