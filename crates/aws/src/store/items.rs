//! The item kinds of the table, as `serde` structs read and written with `serde_dynamo`.

use serde::{Deserialize, Serialize};
use switchyard_core::container::{ContainerStatus, Health};
use switchyard_core::ids::{CommandId, ContainerId, SessionId, ThreadId};
use switchyard_core::messages::{ReplyContext, Response, Source, Timings};
use switchyard_core::project::ProjectConfig;
use switchyard_core::status::{CommandStatus, ErrorCode, SessionStatus};

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
    /// The tenant the key belongs to: it never sees another client's sessions.
    pub client: String,
    /// The user the key acts as (owner of the sessions it creates).
    pub user: String,
    /// Projects the key may use (empty: all of the client's).
    pub projects: Vec<String>,
    /// What the key may do (`sessions`, `operator`).
    pub scopes: Vec<String>,
    /// Short non-secret prefix, so an operator can name a key to revoke without its secret.
    pub key_prefix: String,
    /// Creation time (epoch ms).
    pub created_ms: u64,
    /// When the key was revoked (epoch ms): a revoked key authenticates nothing. Kept,
    /// not deleted, so an audit can still tell whose key it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
    /// Signs the webhooks of this key's sessions (HMAC-SHA256; shown once, at creation).
    /// Keys made before webhooks have none and cannot ask for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// `CONTAINER#{ContainerId}` / `META`. Created by whichever comes first of the queue-set
/// record and the launch claim (both write the id), so every other field has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The container, so a query over the status index yields usable ids.
    pub container_id: ContainerId,
    /// The container's key (with `project` and `user`): a relaunch by the reaper needs
    /// them to rebuild the task's environment.
    #[serde(default)]
    pub client: String,
    /// See `client`.
    #[serde(default)]
    pub project: String,
    /// See `client` (normalised).
    #[serde(default)]
    pub user: String,
    /// Lifecycle state (also the `by-status` GSI key); `None` until the first launch claim.
    #[serde(default)]
    pub container_status: Option<ContainerStatus>,
    /// Token of the launch that won the claim: every write of the worker is conditional on
    /// it, so a superseded worker can change nothing.
    #[serde(default)]
    pub launch_token: Option<String>,
    /// ECS task ARN (or local task id): the reaper and task-events match stop events by it.
    #[serde(default)]
    pub task_arn: Option<String>,
    /// Queue-set generation: bumped when the reaper deletes an idle set, so a new set never
    /// reuses a name SQS still remembers (60 s) and stale URLs are never sent to.
    #[serde(default = "one")]
    pub generation: u32,
    /// `in` queue URL of the current generation (work and control to the worker).
    #[serde(default)]
    pub in_url: Option<String>,
    /// `out` queue URL (responses to the responder).
    #[serde(default)]
    pub out_url: Option<String>,
    /// DLQ URL (work no worker could process, replies that kept failing).
    #[serde(default)]
    pub dlq_url: Option<String>,
    /// Last heartbeat (epoch ms): its age is the container's health.
    #[serde(default)]
    pub heartbeat_ms: Option<u64>,
    /// Jobs running at the last heartbeat: a container with jobs is never idle-stopped.
    #[serde(default)]
    pub active_jobs: u32,
    /// Last job activity (epoch ms): idle time is measured from it.
    #[serde(default)]
    pub last_activity_ms: Option<u64>,
    /// Last launch claim (epoch ms): a launch stuck `starting` is judged from it.
    #[serde(default)]
    pub launched_ms: Option<u64>,
    /// Health as last judged by the reaper (the worker writes `healthy` with each beat).
    #[serde(default)]
    pub health: Option<Health>,
    /// Why the last launch or task failed or stopped, for an operator.
    #[serde(default)]
    pub last_reason: Option<String>,
    /// Launches so far (a count an operator reads for flapping containers).
    #[serde(default)]
    pub launches: u32,
    /// Consecutive failed launches (reset when a worker registers): drives the back-off.
    #[serde(default)]
    pub launch_failures: u32,
    /// No launch may be claimed before this time (epoch ms): back-off after failed launches.
    #[serde(default)]
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
    /// The session, so a query over the container index yields usable ids.
    pub session_id: SessionId,
    /// The tenant: API keys and Message-ID aliases are scoped by it.
    pub client: String,
    /// A thread never crosses projects: a reply on another project's thread is refused.
    pub project: String,
    /// The owner (normalised): only they may continue the session through the API, and
    /// their container serves it.
    pub user: String,
    /// The container serving the session, fixed at creation (also the `by-container` GSI
    /// key, which the reaper uses to release a dead task's work).
    pub session_container: ContainerId,
    /// The conversation: names the branch and the reply address token.
    pub thread: ThreadId,
    /// The session's git branch (`thread-{thread}`).
    pub branch: String,
    /// Closed sessions refuse instructions.
    pub status: SessionStatus,
    /// The seq the next command gets: the append transaction bumps it conditionally, which
    /// orders concurrent instructions.
    pub next_seq: u64,
    /// Work with a seq below this is dropped as cancelled (a cancel's watermark).
    #[serde(default)]
    pub cancel_before_seq: u64,
    /// Subject of the first message, shown in listings and quoted in replies.
    pub subject: String,
    /// How the session began: email sessions are answered by email.
    pub source: Source,
    /// Creation time (epoch ms).
    pub created_ms: u64,
    /// Last command time (epoch ms), for listings.
    pub last_activity_ms: u64,
    /// The coding agent's conversation: the next command of the session resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_conversation: Option<String>,
    /// Where every final outcome of an API session is POSTed (signed), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The API key that created the session (its `pk`): its webhook secret signs the POSTs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl SessionItem {
    /// What routing decides on (core's view of the session).
    pub fn facts(&self) -> switchyard_core::plan::SessionFacts {
        switchyard_core::plan::SessionFacts {
            project: self.project.clone(),
            user: self.user.clone(),
            status: self.status,
            container: self.session_container.clone(),
            next_seq: self.next_seq,
        }
    }
}

/// `SESSION#{SessionId}` / `CMD#{seq:010}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Names the command's messages (dedup ids), commits and reply.
    pub command_id: CommandId,
    /// The session it belongs to (also in `pk`, kept whole for readers of one item).
    pub session_id: SessionId,
    /// Order within the session (also in `sk`).
    pub seq: u64,
    /// The instruction as routed: a duplicate delivery or a retry re-sends it from here.
    pub instruction: String,
    /// Where it is in its life; moves only as `status::command_transition` allows.
    pub status: CommandStatus,
    /// Email or API.
    pub source: Source,
    /// Who asked (normalised).
    pub sender: String,
    /// Message-ID of the email, if any (threading and duplicate detection).
    pub message_id: Option<String>,
    /// Routed at (epoch ms).
    pub created_ms: u64,
    /// Last job start (epoch ms).
    pub started_ms: Option<u64>,
    /// Outcome time (epoch ms).
    pub finished_ms: Option<u64>,
    /// Starts by a worker: a command that crashed its worker the worker's `MAX_ATTEMPTS`
    /// times is failed instead of run again. Graceful stops give the attempt back.
    #[serde(default)]
    pub attempts: u32,
    /// The commit of its work (or partial work), if the job changed anything.
    pub commit: Option<String>,
    /// Files the commit changed (bounded).
    #[serde(default)]
    pub files_changed: Vec<String>,
    /// What the user was told: the tail of the job's output, or why it ended.
    pub summary: Option<String>,
    /// Why it failed, as a stable code (API clients branch on it).
    pub error_code: Option<ErrorCode>,
    /// Why it failed, in words (redacted, bounded).
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
    pub reply: Option<ReplyContext>,
    /// The email's attachments stored for the job (references; the bytes are in S3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<switchyard_core::attachments::AttachmentRef>,
    /// The instruction is the email's whole top part: the extractor's rules left nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub instruction_fallback: bool,
    /// What the coding agent reported at the end (agent projects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<switchyard_core::agent::AgentReport>,
    /// The latest progress events of its job (bounded), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<switchyard_core::agent::ProgressEvent>,
    /// The webhook of this outcome was claimed (sent at most once), and how it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

impl CommandItem {
    /// The response of its recorded outcome (`None` while it has none): what a retry or a
    /// late duplicate answers with, so a command is only ever answered with its one outcome.
    pub fn response(&self, reply: ReplyContext) -> Option<Response> {
        Some(Response {
            session: self.session_id.clone(),
            command_id: self.command_id.clone(),
            seq: self.seq,
            outcome: self.status.outcome()?,
            summary: self.summary.clone().unwrap_or_default(),
            files_changed: self.files_changed.clone(),
            commit: self.commit.clone(),
            error_code: self.error_code.clone(),
            error_message: self.error_message.clone(),
            timings: Timings {
                received_ms: 0,
                started_ms: self.started_ms.unwrap_or_default(),
                finished_ms: self.finished_ms.unwrap_or_default(),
            },
            reply,
            superseded_by: None,
            agent: self.agent.clone(),
        })
    }
}

/// `IDEMP#…` / `META`: the first command of an idempotency key (TTL 7 days).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The first command of the key: a duplicate delivery answers with it.
    pub command_id: CommandId,
    /// Its session (the duplicate is re-sent to that session's container).
    pub session_id: SessionId,
    /// Its seq (to read its item).
    pub seq: u64,
    /// TTL (epoch seconds): SES and SQS redeliver within days, not weeks.
    pub expires_at: u64,
}

/// `MSGID#…` / `META`: a Message-ID seen in a thread (ours or theirs), TTL 180 days.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageAliasItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The thread a reply quoting this Message-ID continues (thread rule 2).
    pub thread: ThreadId,
    /// TTL (epoch seconds): replies to mail older than half a year start a new thread.
    pub expires_at: u64,
}

/// `THREAD#{client}#{ThreadId}` / `META`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The session of the thread.
    pub session_id: SessionId,
}
