//! The statuses of sessions and commands, the error codes of failed commands, and the one
//! table of allowed command moves that the store's conditional writes are built from.
//!
//! Every status is stored as the same lower-case word it always was (`queued`, `running`,
//! `succeeded`, …), so items written by earlier builds read back unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::messages::Outcome;
use crate::CoreError;

/// Whether a session takes new instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Takes instructions; its worktree may exist in its container.
    Open,
    /// Closed by its owner: instructions are refused, the branch is kept.
    Closed,
}

impl SessionStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a command is in its life: waiting for a worker, running in one, or ended with
/// its one final outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CommandStatus {
    /// Routed; its work message waits in the container's `in` queue.
    Queued,
    /// A worker started it (and holds its message).
    Running,
    /// Ended; never changes again.
    Final(Outcome),
}

impl CommandStatus {
    /// Every status, for deriving conditions from [`command_transition`].
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Running,
        Self::Final(Outcome::Succeeded),
        Self::Final(Outcome::Failed),
        Self::Final(Outcome::Interrupted),
        Self::Final(Outcome::Cancelled),
    ];

    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Final(o) => o.as_str(),
        }
    }

    /// Parses a stored status.
    pub fn parse(value: &str) -> Result<Self, CoreError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| CoreError::UnknownValue { kind: "command status", value: value.chars().take(64).collect() })
    }

    /// The outcome, once the command has one.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Self::Final(o) => Some(o),
            _ => None,
        }
    }

    /// Whether the command still waits for its outcome (a duplicate delivery re-sends it).
    pub fn is_pending(self) -> bool {
        self.outcome().is_none()
    }
}

impl TryFrom<String> for CommandStatus {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CommandStatus> for String {
    fn from(value: CommandStatus) -> Self {
        value.as_str().into()
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Something that happens to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEvent {
    /// A worker starts it (or starts it again after a crash).
    Start,
    /// A graceful stop: the partial work is a checkpoint and the command waits again.
    Release,
    /// Its one final outcome is recorded (by the worker, the responder or a dead letter).
    Finish(Outcome),
}

/// An event that does not apply to a command in its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} does not apply to a command that is {from}")]
pub struct InvalidCommandMove {
    /// Status before.
    pub from: CommandStatus,
    /// The event.
    pub event: CommandEvent,
}

/// The one table of allowed command moves. A final outcome never changes; a crash
/// leaves a command `running` and a restart is allowed from there.
pub fn command_transition(from: CommandStatus, event: CommandEvent) -> Result<CommandStatus, InvalidCommandMove> {
    use CommandEvent as E;
    use CommandStatus as S;
    match (from, event) {
        (S::Queued | S::Running, E::Start) => Ok(S::Running),
        (S::Running, E::Release) => Ok(S::Queued),
        (S::Queued | S::Running, E::Finish(o)) => Ok(S::Final(o)),
        _ => Err(InvalidCommandMove { from, event }),
    }
}

/// The statuses `event` may move a command from: what a conditional write requires.
pub fn command_sources(event: CommandEvent) -> Vec<CommandStatus> {
    CommandStatus::ALL.into_iter().filter(|s| command_transition(*s, event).is_ok()).collect()
}

/// Why a command failed, as a stable code an API client can branch on (the message says
/// the rest in words).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ErrorCode {
    /// The session's worktree could not be prepared, or the result not committed.
    Git,
    /// The commit was made but could not be pushed to the project's remote.
    GitPush,
    /// The job could not be started (instruction file, worktree hand-over, exec).
    Spawn,
    /// The job ran past the project's time limit.
    Timeout,
    /// The job printed nothing for the project's inactivity limit.
    Inactive,
    /// The agent's reported cost passed the project's cost cap.
    CostLimit,
    /// The job exited with a non-zero status or was killed by a signal.
    JobExit,
    /// The job stopped its container every time it ran (attempts exhausted).
    Crashed,
    /// The work message was set aside in the DLQ after repeated delivery failures.
    Dlq,
    /// The container could not be launched (launch attempts exhausted).
    LaunchFailed,
    /// The email's stored attachments could not be placed in the worktree.
    Attachments,
    /// A code this build does not know (written by a newer one): kept as it was read.
    Other(String),
}

impl ErrorCode {
    const KNOWN: [Self; 11] = [
        Self::Git,
        Self::GitPush,
        Self::Spawn,
        Self::Timeout,
        Self::Inactive,
        Self::CostLimit,
        Self::JobExit,
        Self::Crashed,
        Self::Dlq,
        Self::LaunchFailed,
        Self::Attachments,
    ];

    /// The code as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Git => "git",
            Self::GitPush => "git_push",
            Self::Spawn => "spawn",
            Self::Timeout => "timeout",
            Self::Inactive => "inactive",
            Self::CostLimit => "cost_limit",
            Self::JobExit => "job_exit",
            Self::Crashed => "crashed",
            Self::Dlq => "dlq",
            Self::LaunchFailed => "launch_failed",
            Self::Attachments => "attachments",
            Self::Other(s) => s,
        }
    }
}

impl From<String> for ErrorCode {
    fn from(value: String) -> Self {
        Self::KNOWN.into_iter().find(|c| c.as_str() == value).unwrap_or(Self::Other(value))
    }
}

impl From<ErrorCode> for String {
    fn from(value: ErrorCode) -> Self {
        match value {
            ErrorCode::Other(s) => s,
            known => known.as_str().into(),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandEvent as E;
    use CommandStatus as S;

    #[test]
    fn command_moves() {
        let done = S::Final(Outcome::Succeeded);
        let table: &[(S, E, Option<S>)] = &[
            (S::Queued, E::Start, Some(S::Running)),
            (S::Running, E::Start, Some(S::Running)),
            (done, E::Start, None),
            (S::Running, E::Release, Some(S::Queued)),
            (S::Queued, E::Release, None),
            (done, E::Release, None),
            (S::Queued, E::Finish(Outcome::Cancelled), Some(S::Final(Outcome::Cancelled))),
            (S::Running, E::Finish(Outcome::Failed), Some(S::Final(Outcome::Failed))),
            (done, E::Finish(Outcome::Failed), None),
            (S::Final(Outcome::Interrupted), E::Finish(Outcome::Interrupted), None),
        ];
        for (from, ev, want) in table {
            assert_eq!(command_transition(*from, *ev).ok(), *want, "{from} + {ev:?}");
        }
    }

    #[test]
    fn conditions_are_derived_from_the_table() {
        assert_eq!(command_sources(E::Start), [S::Queued, S::Running]);
        assert_eq!(command_sources(E::Release), [S::Running]);
        assert_eq!(command_sources(E::Finish(Outcome::Succeeded)), [S::Queued, S::Running]);
    }

    #[test]
    fn statuses_are_stored_as_the_words_they_always_were() {
        let words = ["queued", "running", "succeeded", "failed", "interrupted", "cancelled"];
        for (s, w) in S::ALL.into_iter().zip(words) {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{w}\""));
            assert_eq!(serde_json::from_str::<S>(&format!("\"{w}\"")).unwrap(), s);
        }
        assert!(serde_json::from_str::<S>("\"done\"").is_err());
        assert_eq!(serde_json::to_string(&SessionStatus::Closed).unwrap(), "\"closed\"");
    }

    #[test]
    fn error_codes_round_trip_including_unknown_ones() {
        let words = [
            "git",
            "git_push",
            "spawn",
            "timeout",
            "inactive",
            "cost_limit",
            "job_exit",
            "crashed",
            "dlq",
            "launch_failed",
            "attachments",
        ];
        assert_eq!(words.len(), ErrorCode::KNOWN.len());
        for (c, w) in ErrorCode::KNOWN.into_iter().zip(words) {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{w}\""));
            assert_eq!(ErrorCode::from(w.to_string()), c);
        }
        let newer: ErrorCode = serde_json::from_str("\"quota\"").unwrap();
        assert_eq!(newer, ErrorCode::Other("quota".into()));
        assert_eq!(serde_json::to_string(&newer).unwrap(), "\"quota\"");
    }
}
