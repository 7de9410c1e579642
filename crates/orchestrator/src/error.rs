//! Errors of the use cases: typed rejections of input, and infrastructure failures.

use switchyard_aws::AwsError;
use switchyard_core::ids::{ContainerId, SessionId};
pub use switchyard_core::plan::Rejection;

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
    Contended(SessionId),
    /// The container's queue set is being retired: the work must be routed again once
    /// the retirement is over (the next route uses the next generation).
    #[error("container {0} is retiring its queue set; retry")]
    Retiring(ContainerId),
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
