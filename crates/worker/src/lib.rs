//! `switchyard-worker`: the agent that runs inside each container (an ECS task in AWS, a
//! child process of the local launcher in `switchyard dev`).
//!
//! Layout:
//! - [`config`]: settings from the environment the launcher sets.
//! - [`agent`]: the receive loop (slots, control messages, idle stop, shutdown).
//! - [`exec`]: one command's life (job, commit, outcome, response, delete).
//! - [`job`]: the job process (process group, bounded output, interrupt, time limit).
//! - [`identity`]: the job users (a uid leased per job), their environment, the kill of a
//!   finished job's processes, trees handed over and taken back.
//! - [`tree`]: root's file operations in job-written trees, through descriptors, no link followed.
//! - [`git`]: the clone and the per-session worktrees.
//! - [`local`]: the local launcher (worker processes instead of ECS tasks).

pub mod agent;
pub mod coding;
pub mod config;
pub mod exec;
pub mod git;
pub mod identity;
pub mod job;
pub mod local;
pub mod tree;

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
    /// Jobs cannot be isolated (not root, no slot users) and the development flag is off.
    #[error(transparent)]
    Isolation(#[from] identity::IsolationError),
    /// The project item does not exist.
    #[error("project {0} not found")]
    NoProject(String),
    /// The worker's credentials could not be scoped.
    #[error("cannot scope the worker's credentials: {0}")]
    Scope(String),
    /// A project secret could not be read (its value is never part of the error).
    #[error("secret parameter {parameter} could not be read ({code})")]
    Secret {
        /// The SSM parameter name.
        parameter: String,
        /// The service's error code.
        code: String,
    },
}

/// Reads an SSM `SecureString` (decrypted).
async fn read_parameter(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<String, WorkerError> {
    let failed = |code: &str| WorkerError::Secret { parameter: parameter.into(), code: code.into() };
    let out = ssm.get_parameter().name(parameter).with_decryption(true).send().await.map_err(|e| {
        let e = e.into_service_error();
        failed(aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e).unwrap_or("unknown"))
    })?;
    out.parameter.and_then(|p| p.value).ok_or_else(|| failed("no value"))
}

/// The project's secrets (job environment) and git token, read once at start.
async fn read_secrets(
    ssm: &aws_sdk_ssm::Client,
    project: &switchyard_core::project::ProjectConfig,
) -> Result<(Vec<(String, String)>, Option<String>), WorkerError> {
    let mut env = Vec::new();
    for (name, parameter) in &project.secrets {
        env.push((name.clone(), read_parameter(ssm, parameter).await?));
    }
    let git = match &project.git_token_parameter {
        Some(p) => Some(read_parameter(ssm, p).await?),
        None => None,
    };
    Ok((env, git))
}

/// The SDK config the worker works with: with `worker_role_arn`, credentials of that role
/// assumed with the session policy of [`switchyard_core::policy::worker_session_policy`]
/// (refreshed before they expire); else `sdk` as given.
pub async fn scoped_sdk_config(
    cfg: &WorkerConfig,
    sdk: aws_config::SdkConfig,
) -> Result<aws_config::SdkConfig, WorkerError> {
    use switchyard_core::policy::{queue_arn, worker_session_policy, WorkerScope};
    let Some(role) = cfg.worker_role_arn.as_deref() else { return Ok(sdk) };
    // arn:{partition}:iam::{account}:role/{name}
    let parts: Vec<&str> = role.split(':').collect();
    let (Some(partition), Some(account)) = (parts.get(1), parts.get(4)) else {
        return Err(WorkerError::Scope(format!("not a role ARN: {role}")));
    };
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let arn = |url: &str| {
        queue_arn(partition, &region, url).ok_or_else(|| WorkerError::Scope(format!("not a queue URL: {url}")))
    };
    let (in_arn, out_arn, dlq_arn) = (arn(&cfg.in_url)?, arn(&cfg.out_url)?, arn(&cfg.dlq_url)?);
    let table_arn = format!("arn:{partition}:dynamodb:{region}:{account}:table/{}", cfg.table);
    let ssm_prefix = format!("arn:{partition}:ssm:{region}:{account}");
    let container = cfg.container_id.clone();
    let policy = worker_session_policy(&WorkerScope {
        table_arn: &table_arn,
        queue_arns: [&in_arn, &out_arn, &dlq_arn],
        container: &container,
        client: &cfg.client,
        project: &cfg.project,
        ssm_prefix: &ssm_prefix,
        attachments_bucket: cfg.attachments_bucket.as_deref(),
        partition,
    });
    // Session names allow [\w+=,.@-], at most 64 characters; container ids are [a-z0-9-].
    let session: String = format!("worker-{}", cfg.container_id).chars().take(64).collect();
    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name(session)
        .policy(policy)
        .configure(&sdk)
        .build()
        .await;
    tracing::info!(role, "worker credentials scoped to its own queues and client");
    Ok(sdk
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
        .build())
}

/// Builds the worker's shared state (reads the project once) and runs it.
pub async fn run(
    cfg: WorkerConfig,
    clients: &Clients,
    ssm: &aws_sdk_ssm::Client,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Exit, WorkerError> {
    let store = Store::new(clients.dynamo.clone(), &cfg.table);
    let item: Option<ProjectItem> = store.get(&project_pk(&cfg.client, &cfg.project), META).await?;
    let project = item.ok_or_else(|| WorkerError::NoProject(format!("{}/{}", cfg.client, cfg.project)))?.config;
    let (secrets, git_token) = read_secrets(ssm, &project).await?;
    let redactor =
        switchyard_core::redact::Redactor::new(secrets.iter().map(|(_, v)| v.clone()).chain(git_token.iter().cloned()));
    let workspace =
        git::Workspace::new(cfg.workspace.clone(), project.repo_url.clone(), project.default_branch.clone())
            .with_token(git_token)
            .withholding_ci(!project.allow_ci_changes);
    let visibility = Duration::from_secs(cfg.visibility_secs.max(3));
    identity::harden_worker();
    let wanted = agent::slots_of(&project, cfg.slots_override);
    let users = identity::JobUsers::resolve(&cfg.job_user, wanted, cfg.unisolated_jobs, &cfg.workspace)?;
    let shared = exec::Shared {
        queues: Queues::new(clients.sqs.clone(), ""),
        s3: clients.s3.clone(),
        store,
        project,
        workspace,
        visibility,
        users,
        limits: identity::JobLimits::default(),
        secrets,
        redactor,
        cfg,
    };
    Ok(agent::run(shared, shutdown).await?)
}
