//! The CLI's one reading of the environment.

/// Settings of the local runtime and the benchmarks.
#[derive(Debug, Clone)]
pub(crate) struct CliConfig {
    /// `SWITCHYARD_SUBNETS`: subnets for ECS RunTask (the emulator's default VPC).
    pub(crate) subnets: Vec<String>,
    /// `SWITCHYARD_SECURITY_GROUPS`: security groups for ECS RunTask.
    pub(crate) security_groups: Vec<String>,
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
        Self { subnets: list("SWITCHYARD_SUBNETS"), security_groups: list("SWITCHYARD_SECURITY_GROUPS") }
    }
}
