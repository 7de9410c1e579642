//! `switchyard-worker`: the agent that runs inside each container (an ECS task in AWS, a
//! child process of the local launcher in `switchyard dev`).
//!
//! Layout:
//! - [`config`]: settings from the environment the launcher sets.
//! - [`agent`]: the receive loop (slots, control messages, idle stop, shutdown).
//! - [`exec`]: one command's life (job, commit, outcome, response, delete).
//! - [`job`]: the job process (process group, bounded output, interrupt, time limit).
//! - [`identity`]: the unprivileged user and allow-listed environment of jobs.
//! - [`git`]: the clone and the per-session worktrees.
//! - [`local`]: the local launcher (worker processes instead of ECS tasks).

pub mod agent;
pub mod config;
pub mod exec;
pub mod git;
pub mod identity;
pub mod job;
pub mod local;

use std::time::Duration;

use switchyard_aws::queues::Queues;
use switchyard_aws::store::{project_pk, ProjectItem, Store, META};
use switchyard_aws::Clients;

pub use agent::Exit;
pub use config::WorkerConfig;

/// Errors that end the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// AWS failed.
    #[error(transparent)]
    Aws(#[from] switchyard_aws::AwsError),
    /// The project item does not exist.
    #[error("project {0} not found")]
    NoProject(String),
}

/// Builds the worker's shared state (reads the project once) and runs it.
pub async fn run(
    cfg: WorkerConfig,
    clients: &Clients,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Exit, WorkerError> {
    let store = Store::new(clients.dynamo.clone(), &cfg.table);
    let item: Option<ProjectItem> = store.get(&project_pk(&cfg.client, &cfg.project), META).await?;
    let project = item.ok_or_else(|| WorkerError::NoProject(format!("{}/{}", cfg.client, cfg.project)))?.config;
    let workspace =
        git::Workspace::new(cfg.workspace.clone(), project.repo_url.clone(), project.default_branch.clone());
    let visibility = Duration::from_secs(cfg.visibility_secs.max(3));
    identity::harden_worker();
    let identity = identity::JobIdentity::resolve(&cfg.job_user, &cfg.workspace);
    let shared = exec::Shared {
        queues: Queues::new(clients.sqs.clone(), ""),
        store,
        project,
        workspace,
        visibility,
        identity,
        cfg,
    };
    Ok(agent::run(shared, shutdown).await?)
}
