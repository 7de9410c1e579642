//! The queue messages of DESIGN §2.2: JSON, `serde`, versioned with `"v": 1`.
//!
//! `in` carries [`InMessage`] (work and control); `out` carries [`Response`].

use serde::{Deserialize, Serialize};

/// The one message version this build reads and writes.
pub const VERSION: u8 = 1;

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Inbound email.
    Email,
    /// HTTP API.
    Api,
}

/// What the responder needs to answer in the same thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContext {
    /// Address to answer (the sender).
    pub to: String,
    /// Subject of the instruction.
    pub subject: String,
    /// Message-ID of the instruction (for In-Reply-To).
    pub message_id: Option<String>,
    /// References chain of the instruction.
    pub references: Vec<String>,
    /// Our address with the thread token (Reply-To and From of the reply).
    pub reply_address: Option<String>,
}

/// A unit of work for the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    /// Session id.
    pub session: String,
    /// Command id (ULID).
    pub command_id: String,
    /// Command sequence number within the session (1-based).
    pub seq: u64,
    /// Thread id.
    pub thread: String,
    /// Git branch of the session.
    pub branch: String,
    /// The instruction text.
    pub instruction: String,
    /// Project repository URL.
    pub repo_url: String,
    /// Who asked.
    pub sender: String,
    /// Email or API.
    pub source: Source,
    /// How to answer.
    pub reply: ReplyContext,
}

/// Interrupt or cancel: applies to jobs of `session` with `seq < before_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// Session id.
    pub session: String,
    /// Only jobs older than this are affected.
    pub before_seq: u64,
    /// Why (shown to the user in the interrupted response).
    pub reason: String,
    /// The command that caused it, if any.
    pub by_command: Option<String>,
}

/// End a session: its worktree is removed, the branch kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    /// Session id.
    pub session: String,
}

/// A message on a container's `in` queue.
// `Work` dwarfs the control variants, but messages are decoded one at a time and handed
// on by value: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InMessage {
    /// Run an instruction.
    Work(Work),
    /// Interrupt the running job (it is saved as `interrupted`).
    Interrupt(Control),
    /// Interrupt and drop queued work up to `before_seq` (`cancelled`).
    Cancel(Control),
    /// Close the session.
    Close(Close),
}

impl InMessage {
    /// The session the message concerns.
    pub fn session(&self) -> &str {
        match self {
            Self::Work(w) => &w.session,
            Self::Interrupt(c) | Self::Cancel(c) => &c.session,
            Self::Close(c) => &c.session,
        }
    }
}

/// The final outcome of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The job exited 0 and its work was committed.
    Succeeded,
    /// The job failed (exit status, time-out, git error, DLQ).
    Failed,
    /// A newer instruction interrupted it; partial work committed.
    Interrupted,
    /// Cancelled before or while running.
    Cancelled,
}

impl Outcome {
    /// The outcome as a string (also the command item's status).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Millisecond timestamps of a command's life.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Received by the worker (epoch ms).
    pub received_ms: u64,
    /// Job started (epoch ms).
    pub started_ms: u64,
    /// Job finished (epoch ms).
    pub finished_ms: u64,
}

/// A message on a container's `out` queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Session id.
    pub session: String,
    /// Command id.
    pub command_id: String,
    /// Command seq.
    pub seq: u64,
    /// Outcome.
    pub outcome: Outcome,
    /// Human summary (tail of the job's output, or the reason).
    pub summary: String,
    /// Files changed by the commit.
    pub files_changed: Vec<String>,
    /// The commit sha, if one was made.
    pub commit: Option<String>,
    /// Error code (`job_exit`, `timeout`, `git`, `dlq`, …) when not succeeded.
    pub error_code: Option<String>,
    /// Error message.
    pub error_message: Option<String>,
    /// Timings.
    pub timings: Timings,
    /// How to answer (copied from the work message).
    pub reply: ReplyContext,
    /// The newer command that superseded this one (interrupted only).
    pub superseded_by: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u8,
    #[serde(flatten)]
    body: T,
}

/// Why a message body was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not JSON of the expected shape.
    #[error("message does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    /// A version this build does not read.
    #[error("unsupported message version {0}")]
    Version(u8),
}

/// Serialises a message with its version.
pub fn encode<T: Serialize>(body: &T) -> String {
    // Our message types are plain data: serialising them cannot fail.
    serde_json::to_string(&Envelope { v: VERSION, body }).unwrap_or_default()
}

/// Parses a message and checks its version.
pub fn decode<T: for<'de> Deserialize<'de>>(raw: &str) -> Result<T, MessageError> {
    let env: Envelope<T> = serde_json::from_str(raw)?;
    if env.v != VERSION {
        return Err(MessageError::Version(env.v));
    }
    Ok(env.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version() {
        let m = InMessage::Interrupt(Control {
            session: "a-bbbbbbbb".into(),
            before_seq: 3,
            reason: "newer".into(),
            by_command: None,
        });
        let s = encode(&m);
        assert!(s.contains("\"v\":1") && s.contains("\"type\":\"interrupt\""), "{s}");
        assert_eq!(decode::<InMessage>(&s).unwrap(), m);
        assert!(matches!(decode::<InMessage>(&s.replace("\"v\":1", "\"v\":2")), Err(MessageError::Version(2))));
        assert!(decode::<InMessage>("not json").is_err());
        assert!(decode::<InMessage>("{\"v\":1,\"type\":\"nope\"}").is_err());
    }
}
