//! Errors of the use cases: typed rejections of input, and infrastructure failures.

use switchyard_aws::AwsError;
use switchyard_core::email::EmailError;

/// Why an inbound was refused. Nothing is routed for a rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The email could not be used (malformed, no sender, too large, no project recipient).
    #[error(transparent)]
    Email(#[from] EmailError),
    /// A client, project, user or session name is invalid.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// The project does not exist.
    #[error("unknown project {client}/{project}")]
    UnknownProject {
        /// Client.
        client: String,
        /// Project.
        project: String,
    },
    /// The sender is not on the project's allow-list.
    #[error("sender {0} is not allowed on this project")]
    SenderNotAllowed(String),
    /// The `From` domain is not authenticated (DMARC, aligned SPF or DKIM): the address
    /// may be forged, so it is never answered.
    #[error("sender not authenticated: {0}")]
    Unauthenticated(#[from] switchyard_core::sender::Unauthenticated),
    /// The session does not exist (or belongs to someone else).
    #[error("session not found")]
    SessionNotFound,
    /// The session was closed.
    #[error("session is closed")]
    SessionClosed,
    /// The thread belongs to another project.
    #[error("thread belongs to another project")]
    ThreadMismatch,
    /// The instruction is empty after quotes and signatures are removed.
    #[error("no instruction: the message has no new text")]
    EmptyInstruction,
    /// The instruction is larger than a work message can carry.
    #[error("instruction of {size} bytes is over the limit of {limit}")]
    InstructionTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Rejection {
    /// A stable machine-readable code (used in logs, problem+json types, metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Email(EmailError::Malformed(_)) => "malformed_email",
            Self::Email(EmailError::NoSender) => "no_sender",
            Self::Email(EmailError::TooLarge { .. } | EmailError::BodyTooLarge { .. }) => "too_large",
            Self::Email(EmailError::NoProjectRecipient) => "no_project_recipient",
            Self::InvalidName(_) => "invalid_name",
            Self::UnknownProject { .. } => "unknown_project",
            Self::SenderNotAllowed(_) => "sender_not_allowed",
            Self::Unauthenticated(_) => "unauthenticated_sender",
            Self::SessionNotFound => "session_not_found",
            Self::SessionClosed => "session_closed",
            Self::ThreadMismatch => "thread_mismatch",
            Self::EmptyInstruction => "empty_instruction",
            Self::InstructionTooLarge { .. } => "instruction_too_large",
        }
    }
}

/// A use case failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The input was refused (handled outcome; do not retry).
    #[error("rejected: {0}")]
    Rejected(#[from] Rejection),
    /// AWS failed (retry may help).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A dead letter that names no command.
    #[error(transparent)]
    DeadLetter(#[from] crate::respond::UnattributableDeadLetter),
    /// Concurrent appends kept racing past the retry budget.
    #[error("session {0} is too contended; retry")]
    Contended(String),
    /// The container's queue set is being retired: the work must be routed again once
    /// the retirement is over (the next route uses the next generation).
    #[error("container {0} is retiring its queue set; retry")]
    Retiring(String),
}

impl RouteError {
    /// Whether the same call may succeed later (consumers leave the message for redelivery
    /// only then; anything else is a handled outcome).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Rejected(_) | Self::DeadLetter(_) => false,
            Self::Aws(e) => e.is_retryable(),
            Self::Contended(_) | Self::Retiring(_) => true,
        }
    }
}
