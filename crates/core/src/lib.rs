//! `switchyard-core`: the pure domain of Switchyard. No I/O lives here.
//!
//! Layout:
//! - [`agent`]: coding agent CLIs: command lines, their output read as progress, webhooks' signature.
//! - [`ids`]: identifiers and naming (`ContainerId`, `ThreadId`, `SessionId`, queue names).
//! - [`email`]: raw MIME → [`email::ParsedEmail`] via `mail-parser`.
//! - [`inbound`]: a trigger normalised for routing.
//! - [`instruction`]: the new text of a reply (quotes and signatures removed).
//! - [`thread`]: the thread rules of DESIGN §2.1 step 3, in order.
//! - [`messages`]: the versioned queue messages of DESIGN §2.2.
//! - [`metrics`]: CloudWatch EMF lines.
//! - [`container`]: the container state machine and health rules of DESIGN §2.3.
//! - [`policy`]: the session policy that scopes a worker's credentials to its own resources.
//! - [`project`]: the project configuration and sender authorisation.
//! - [`sender`]: sender authentication (DMARC, aligned SPF/DKIM) of inbound email.
//! - [`redact`]: removal of URL credentials from any text we write.
//! - [`status`]: session and command statuses, error codes, and the allowed command moves.
//! - [`plan`]: routing and job-outcome decisions, as pure functions of what was read.

pub mod agent;
pub mod attachments;
pub mod container;
pub mod email;
pub mod ids;
pub mod inbound;
pub mod instruction;
pub mod messages;
pub mod metrics;
pub mod net;
pub mod plan;
pub mod policy;
pub mod project;
pub mod redact;
pub mod sender;
pub mod status;
pub mod thread;

/// Errors raised by the pure domain: every one is a rejection of input.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A slug (client, project, prefix) is not of the form `[a-z0-9-]{1,N}`.
    #[error("invalid {kind} {value:?}: must match [a-z0-9-]{{1,{max}}} and not start or end with '-'")]
    InvalidSlug {
        /// Which kind of slug (client, project, prefix).
        kind: &'static str,
        /// The offending value (truncated to 64 chars).
        value: String,
        /// Maximum length for this kind.
        max: usize,
    },
    /// A user identifier is empty, too long or holds control characters.
    #[error("invalid user id: {0}")]
    InvalidUser(String),
    /// A thread id is not 8 base32 characters.
    #[error("invalid thread id {0:?}")]
    InvalidThreadId(String),
    /// A session id is not `{client}-{ThreadId}`.
    #[error("invalid session id {0:?}")]
    InvalidSessionId(String),
    /// A container id is not one `ContainerId::new` could have built.
    #[error("invalid container id {0:?}")]
    InvalidContainerId(String),
    /// A command id is not a ULID.
    #[error("invalid command id {0:?}")]
    InvalidCommandId(String),
    /// A stored status or code this build does not know.
    #[error("unknown {kind} {value:?}")]
    UnknownValue {
        /// Which vocabulary (command status, error code, …).
        kind: &'static str,
        /// The value read (truncated to 64 chars).
        value: String,
    },
}
