//! Settings shared by every process that routes (intake, API, CLI): read once from env.
//!
//! Variable names equal those in `infra/template.yaml`.

use std::sync::Arc;

use switchyard_aws::launcher::{EcsLauncher, EcsSettings, Launcher};
use switchyard_aws::queues::Queues;
use switchyard_aws::store::Store;
use switchyard_aws::subscriptions::ResponderMappings;
use switchyard_aws::Clients;

use crate::Orchestrator;

/// A required variable is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    /// Variable name.
    pub name: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// Routing settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// `SWITCHYARD_TABLE`.
    pub table: String,
    /// `SWITCHYARD_QUEUE_PREFIX`: prefix of every per-container queue name.
    pub queue_prefix: String,
    /// ECS settings (`SWITCHYARD_CLUSTER`, `SWITCHYARD_TASK_DEFINITION`,
    /// `SWITCHYARD_WORKER_CONTAINER`, `SWITCHYARD_SUBNETS`, `SWITCHYARD_SECURITY_GROUPS`,
    /// `SWITCHYARD_ASSIGN_PUBLIC_IP`).
    pub ecs: EcsSettings,
    /// `SWITCHYARD_RESPONDER_FUNCTION` (routers and reaper in AWS): the responder to subscribe
    /// to each new queue set. Unset = no mappings (the local runtime polls).
    pub responder_function: Option<String>,
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError { name, problem: "not set".into() })
}

/// A comma-separated list variable (empty items dropped; unset = empty).
pub fn env_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl RouterConfig {
    /// Every variable [`RouterConfig::from_env`] reads (the template must set each one).
    pub const VARS: [&'static str; 8] = [
        "SWITCHYARD_TABLE",
        "SWITCHYARD_QUEUE_PREFIX",
        "SWITCHYARD_CLUSTER",
        "SWITCHYARD_TASK_DEFINITION",
        "SWITCHYARD_WORKER_CONTAINER",
        "SWITCHYARD_SUBNETS",
        "SWITCHYARD_SECURITY_GROUPS",
        "SWITCHYARD_ASSIGN_PUBLIC_IP",
    ];

    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let queue_prefix = std::env::var("SWITCHYARD_QUEUE_PREFIX").unwrap_or_else(|_| "sy".into());
        switchyard_core::ids::validate_slug("prefix", &queue_prefix, switchyard_core::ids::MAX_PREFIX)
            .map_err(|e| ConfigError { name: "SWITCHYARD_QUEUE_PREFIX", problem: e.to_string() })?;
        Ok(Self {
            responder_function: std::env::var("SWITCHYARD_RESPONDER_FUNCTION").ok().filter(|v| !v.is_empty()),
            table: var("SWITCHYARD_TABLE")?,
            queue_prefix,
            ecs: EcsSettings {
                cluster: std::env::var("SWITCHYARD_CLUSTER").unwrap_or_else(|_| "switchyard".into()),
                task_definition: std::env::var("SWITCHYARD_TASK_DEFINITION")
                    .unwrap_or_else(|_| "switchyard-worker".into()),
                container_name: std::env::var("SWITCHYARD_WORKER_CONTAINER").unwrap_or_else(|_| "worker".into()),
                subnets: env_list("SWITCHYARD_SUBNETS"),
                security_groups: env_list("SWITCHYARD_SECURITY_GROUPS"),
                assign_public_ip: std::env::var("SWITCHYARD_ASSIGN_PUBLIC_IP").is_ok_and(|v| v == "true"),
            },
        })
    }

    /// Builds an orchestrator with the ECS launcher.
    pub fn orchestrator(&self, clients: &Clients) -> Orchestrator {
        let launcher: Arc<dyn Launcher> = Arc::new(EcsLauncher::new(clients.ecs.clone(), self.ecs.clone()));
        self.orchestrator_with(clients, launcher)
    }

    /// Builds an orchestrator with another launcher (local processes).
    pub fn orchestrator_with(&self, clients: &Clients, launcher: Arc<dyn Launcher>) -> Orchestrator {
        let o = Orchestrator::new(
            Store::new(clients.dynamo.clone(), &self.table),
            Queues::new(clients.sqs.clone(), &self.queue_prefix),
            launcher,
        );
        match &self.responder_function {
            Some(f) => o.with_responder_mappings(ResponderMappings::new(clients.lambda.clone(), f)),
            None => o,
        }
    }
}
