//! SDK errors classified into domain variants at the adapter boundary.
//!
//! Classification uses the SDK's typed service errors (`into_service_error()`,
//! `is_*_exception()`) and error codes from `ProvideErrorMetadata`, never message text.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Boxed source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong talking to AWS, in terms the use cases decide on.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// A conditional write lost (someone else changed the item first).
    #[error("conditional write lost: {context}")]
    Conflict {
        /// What was being written.
        context: &'static str,
    },
    /// A transaction was cancelled; one reason code per item (`None`, `ConditionalCheckFailed`, …).
    #[error("transaction cancelled: {reasons:?}")]
    TransactionCancelled {
        /// Reason code per item of the transaction, in order.
        reasons: Vec<String>,
    },
    /// The resource does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// Which resource.
        what: String,
    },
    /// AWS throttled the call; retry with backoff.
    #[error("throttled by {service}")]
    Throttled {
        /// The service.
        service: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Some entries of a batch failed.
    #[error("{failed} of {total} batch entries failed: {first_code}")]
    PartialBatch {
        /// Failed entries.
        failed: usize,
        /// Entries sent.
        total: usize,
        /// Code of the first failure.
        first_code: String,
    },
    /// A stored item does not have the shape we expect.
    #[error("item does not deserialise: {0}")]
    Item(#[from] serde_dynamo::Error),
    /// Launching or stopping a container failed.
    #[error("launch failed: {reason}")]
    Launch {
        /// Why (ECS failure reasons, spawn error).
        reason: String,
        /// Underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A request could not be built (a bug, not an AWS answer).
    #[error("invalid request: {what}")]
    InvalidRequest {
        /// What was being built.
        what: &'static str,
        /// The builder error.
        #[source]
        source: BoxError,
    },
    /// Any other service error, kept with its source.
    #[error("{service} call failed ({code})")]
    Service {
        /// The service.
        service: &'static str,
        /// The error code, if the service gave one.
        code: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

impl AwsError {
    /// Whether an SQS call failed because the queue does not exist (deleted, or never was).
    pub fn is_queue_missing(&self) -> bool {
        matches!(self, Self::Service { service: "sqs", code, .. }
            if code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist")
    }

    /// Whether a retry of the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Service { .. } | Self::PartialBatch { .. })
            && !self.is_queue_missing()
    }
}

const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "TooManyRequestsException",
];

/// Classifies any SDK error that carries error metadata.
pub fn classify<E>(service: &'static str, err: E) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().unwrap_or("unknown").to_string();
    if THROTTLE_CODES.contains(&code.as_str()) {
        return AwsError::Throttled { service, source: Box::new(err) };
    }
    AwsError::Service { service, code, source: Box::new(err) }
}
