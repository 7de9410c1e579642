//! The item kinds of the table, as `serde` structs read and written with `serde_dynamo`.

use serde::{Deserialize, Serialize};
use switchyard_core::project::ProjectConfig;

/// `PROJECT#{client}#{project}` / `META`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The configuration.
    #[serde(flatten)]
    pub config: ProjectConfig,
}

/// `APIKEY#{sha256}` / `META`: the secret itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Client the key belongs to.
    pub client: String,
    /// The user the key acts as.
    pub user: String,
    /// Projects the key may use.
    pub projects: Vec<String>,
    /// Scopes (`sessions`, `operator`).
    pub scopes: Vec<String>,
    /// Short non-secret prefix, for listing.
    pub key_prefix: String,
    /// Creation time (epoch ms).
    pub created_ms: u64,
    /// When the key was revoked (epoch ms): a revoked key authenticates nothing. Kept,
    /// not deleted, so an audit can still tell whose key it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

/// `CONTAINER#{ContainerId}` / `META`. Created by whichever comes first of the queue-set
/// record and the launch claim, so every field has a default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The container id.
    pub container_id: String,
    /// Client slug.
    pub client: String,
    /// Project slug.
    pub project: String,
    /// Normalised user.
    pub user: String,
    /// Lifecycle state (also the `by-status` GSI key).
    pub container_status: Option<String>,
    /// Token of the launch that won the claim.
    pub launch_token: Option<String>,
    /// ECS task ARN (or local task id).
    pub task_arn: Option<String>,
    /// Queue-set generation.
    #[serde(default = "one")]
    pub generation: u32,
    /// `in` queue URL.
    pub in_url: Option<String>,
    /// `out` queue URL.
    pub out_url: Option<String>,
    /// DLQ URL.
    pub dlq_url: Option<String>,
    /// Last heartbeat (epoch ms).
    pub heartbeat_ms: Option<u64>,
    /// Jobs running at the last heartbeat.
    #[serde(default)]
    pub active_jobs: u32,
    /// Last job activity (epoch ms).
    pub last_activity_ms: Option<u64>,
    /// Last launch claim (epoch ms).
    pub launched_ms: Option<u64>,
    /// Health (`healthy`, `degraded`, `failed`) as last judged by the reaper.
    pub health: Option<String>,
    /// Why the last launch or task failed/stopped.
    pub last_reason: Option<String>,
    /// Number of launches so far.
    #[serde(default)]
    pub launches: u32,
    /// Consecutive failed launches (reset when a worker registers).
    #[serde(default)]
    pub launch_failures: u32,
    /// No launch may be claimed before this time (epoch ms): back-off after failed launches.
    pub next_launch_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

/// `SESSION#{SessionId}` / `META`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Session id.
    pub session_id: String,
    /// Client slug.
    pub client: String,
    /// Project slug.
    pub project: String,
    /// Owner (normalised).
    pub user: String,
    /// Container serving the session (also the `by-container` GSI key).
    pub session_container: String,
    /// Thread id.
    pub thread: String,
    /// Git branch.
    pub branch: String,
    /// `open` or `closed`.
    pub status: String,
    /// The seq the next command gets.
    pub next_seq: u64,
    /// Work with seq below this is dropped as cancelled.
    #[serde(default)]
    pub cancel_before_seq: u64,
    /// Subject of the first message.
    pub subject: String,
    /// Email or API.
    pub source: String,
    /// Creation time (epoch ms).
    pub created_ms: u64,
    /// Last command time (epoch ms).
    pub last_activity_ms: u64,
}

/// `SESSION#{SessionId}` / `CMD#{seq:010}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Command id (ULID).
    pub command_id: String,
    /// Session id.
    pub session_id: String,
    /// Seq within the session.
    pub seq: u64,
    /// The instruction.
    pub instruction: String,
    /// `queued`, `running`, or a final outcome.
    pub status: String,
    /// Email or API.
    pub source: String,
    /// Sender.
    pub sender: String,
    /// Message-ID of the email, if any.
    pub message_id: Option<String>,
    /// Routed at (epoch ms).
    pub created_ms: u64,
    /// Job start (epoch ms).
    pub started_ms: Option<u64>,
    /// Job end (epoch ms).
    pub finished_ms: Option<u64>,
    /// How many times a worker started it.
    #[serde(default)]
    pub attempts: u32,
    /// Commit sha.
    pub commit: Option<String>,
    /// Files changed.
    #[serde(default)]
    pub files_changed: Vec<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Error code.
    pub error_code: Option<String>,
    /// Error message.
    pub error_message: Option<String>,
    /// Why the reply could not be delivered (a permanent SES error, a dead-lettered
    /// response): the outcome stands, the user was not told by email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_error: Option<String>,
    /// Launch token of the worker running it (while `running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_by: Option<String>,
    /// Receipt handle of the work message that worker holds (while `running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// The reply context of the instruction, so a duplicate delivery or a dead letter is
    /// answered from what was stored, not from a fresh resolution of the thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<switchyard_core::messages::ReplyContext>,
}

/// `IDEMP#…` / `META`: the first command of an idempotency key (TTL 7 days).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Command id.
    pub command_id: String,
    /// Session id.
    pub session_id: String,
    /// Seq.
    pub seq: u64,
    /// TTL (epoch seconds).
    pub expires_at: u64,
}

/// `MSGID#…` / `META`: a Message-ID seen in a thread (ours or theirs), TTL 180 days.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageAliasItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Thread id.
    pub thread: String,
    /// TTL (epoch seconds).
    pub expires_at: u64,
}

/// `THREAD#{client}#{ThreadId}` / `META`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Session id of the thread.
    pub session_id: String,
}
