//! `switchyard-aws`: the adapters between Switchyard and AWS.
//!
//! Layout:
//! - [`batch`]: the SQS batch loop with partial failures (FIFO-aware), for every consumer.
//! - [`clients`]: one set of SDK clients from one `SdkConfig`, with an optional call counter.
//! - [`iam`]: the IAM action and resource kind of each SDK call (the least-privilege test).
//! - [`error`]: SDK errors classified into [`AwsError`] variants (never by message text).
//! - [`store`]: the single DynamoDB table of DESIGN §3 and typed access to each item kind.
//! - [`queues`]: per-container SQS queue sets (FIFO `in`/`out`, DLQ with redrive).
//! - [`launcher`]: the container launcher trait and its ECS implementation.
//! - [`mailer`]: SES v2 raw email sending.
//! - [`subscriptions`]: the responder's event source mappings on queue sets (AWS).
//! - [`metrics`]: CloudWatch EMF metric lines.

pub mod batch;
pub mod clients;
pub mod error;
pub mod faults;
pub mod iam;
pub mod launcher;
pub mod mailer;
pub mod metrics;
pub mod queues;
pub mod store;
pub mod subscriptions;
pub mod webhooks;

pub use clients::{CallCounter, Clients};
pub use error::AwsError;

/// Milliseconds since the Unix epoch (the timestamp unit of every item).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}
