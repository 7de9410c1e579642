//! The worker's one reading of the environment: exactly what the launcher sets
//! (`switchyard_aws::launcher::LaunchSpec::env`) plus local limits.

use std::path::PathBuf;
use std::time::Duration;

use switchyard_aws::launcher::env;

/// A variable is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0}: {1}")]
pub struct ConfigError(pub &'static str, pub String);

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// DynamoDB table.
    pub table: String,
    /// The container this worker serves (every store write names it).
    pub container_id: switchyard_core::ids::ContainerId,
    /// Client slug.
    pub client: String,
    /// Project slug.
    pub project: String,
    /// User served.
    pub user: String,
    /// Token of the launch this worker belongs to.
    pub launch_token: String,
    /// Queue-set generation.
    pub generation: u32,
    /// `in` queue URL.
    pub in_url: String,
    /// `out` queue URL.
    pub out_url: String,
    /// DLQ URL.
    pub dlq_url: String,
    /// Task id (local launcher) — informational.
    pub task_arn: Option<String>,
    /// `SWITCHYARD_WORKSPACE`: where the clone and the worktrees live.
    pub workspace: PathBuf,
    /// `SWITCHYARD_HEARTBEAT_SECS` (default 30).
    pub heartbeat: Duration,
    /// `SWITCHYARD_IDLE_TIMEOUT_SECS` (default 1200).
    pub idle_timeout: Duration,
    /// `SWITCHYARD_GRACE_SECS`: SIGINT → SIGKILL grace (default 5).
    pub grace: Duration,
    /// `SWITCHYARD_POLL_WAIT_SECS`: long-poll wait (default 20).
    pub poll_wait_secs: i32,
    /// `SWITCHYARD_VISIBILITY_SECS`: in-flight visibility of a running job's message, set
    /// when it starts and extended at a third of it (default 60). A message received but
    /// not started has at most 9 s (held messages are extended by that much); a crashed
    /// worker's running command is released by task-events, or comes back after this long.
    pub visibility_secs: u64,
    /// `SWITCHYARD_MAX_OUTPUT_BYTES`: output kept per job (tail; default 64 KiB).
    pub max_output_bytes: usize,
    /// `SWITCHYARD_MAX_CONCURRENT_SESSIONS`: overrides the project's slot count.
    pub slots_override: Option<u32>,
    /// `SWITCHYARD_JOB_USER`: the stem of the slot users jobs run as, `{stem}-{slot}`
    /// (default `switchyard-job`: `switchyard-job-0` … `switchyard-job-7`).
    pub job_user: String,
    /// `SWITCHYARD_UNISOLATED_JOBS=1`: **local development only**. Without root or the slot
    /// users, jobs run as the worker's own user instead of the worker refusing to start.
    pub unisolated_jobs: bool,
    /// `SWITCHYARD_WORKER_ROLE_ARN`: the scoped role the worker assumes at start, with a
    /// session policy limited to its own queues and its client's items (unset = use the
    /// credentials it was given, as locally).
    pub worker_role_arn: Option<String>,
    /// `SWITCHYARD_ATTACHMENTS_BUCKET`: where the email attachments of this client are
    /// stored (the scoped credentials may read `attachments/{client}/*` there only).
    pub attachments_bucket: Option<String>,
    /// `SWITCHYARD_TEST_POISON`: **load testing only**. A work message whose instruction
    /// contains this text is released unprocessed on every receive, as a message the worker
    /// cannot process would be, until SQS moves it to the DLQ (`switchyard load --poison`).
    pub poison_marker: Option<String>,
}

fn req(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError(name, "not set".into()))
}

fn num<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|_| ConfigError(name, format!("not a number: {v:?}"))),
        Err(_) => Ok(default),
    }
}

impl WorkerConfig {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw = req(env::CONTAINER_ID)?;
        let container_id = switchyard_core::ids::ContainerId::parse(&raw)
            .map_err(|e| ConfigError(env::CONTAINER_ID, e.to_string()))?;
        let workspace =
            std::env::var("SWITCHYARD_WORKSPACE").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("/workspace"));
        Ok(Self {
            table: req(env::TABLE)?,
            client: req(env::CLIENT)?,
            project: req(env::PROJECT)?,
            user: req(env::USER)?,
            launch_token: req(env::LAUNCH_TOKEN)?,
            generation: num(env::GENERATION, 1)?,
            in_url: req(env::IN_QUEUE_URL)?,
            out_url: req(env::OUT_QUEUE_URL)?,
            dlq_url: req(env::DLQ_URL)?,
            task_arn: std::env::var(env::TASK_ARN).ok(),
            workspace,
            heartbeat: Duration::from_secs(num("SWITCHYARD_HEARTBEAT_SECS", 30)?),
            idle_timeout: Duration::from_secs(num("SWITCHYARD_IDLE_TIMEOUT_SECS", 1200)?),
            grace: Duration::from_secs(num("SWITCHYARD_GRACE_SECS", 5)?),
            poll_wait_secs: num("SWITCHYARD_POLL_WAIT_SECS", 20)?,
            max_output_bytes: num("SWITCHYARD_MAX_OUTPUT_BYTES", 64 * 1024)?,
            visibility_secs: num("SWITCHYARD_VISIBILITY_SECS", 60)?,
            slots_override: std::env::var("SWITCHYARD_MAX_CONCURRENT_SESSIONS").ok().and_then(|v| v.parse().ok()),
            job_user: std::env::var("SWITCHYARD_JOB_USER").unwrap_or_else(|_| "switchyard-job".into()),
            unisolated_jobs: std::env::var("SWITCHYARD_UNISOLATED_JOBS").is_ok_and(|v| v == "1"),
            worker_role_arn: std::env::var("SWITCHYARD_WORKER_ROLE_ARN").ok().filter(|v| !v.is_empty()),
            attachments_bucket: std::env::var("SWITCHYARD_ATTACHMENTS_BUCKET").ok().filter(|v| !v.is_empty()),
            poison_marker: std::env::var("SWITCHYARD_TEST_POISON").ok().filter(|v| !v.is_empty()),
            container_id,
        })
    }
}
