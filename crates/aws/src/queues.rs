//! Per-container SQS queue sets: FIFO `in` and `out`, a FIFO DLQ for both (`in`: 10
//! receives, `out`: 5).
//!
//! Names carry a generation (`…-g{n}.fifo`) so a retired set is never recreated under a
//! name SQS still refuses (60 s after delete). `CreateQueue` is idempotent for equal
//! attributes, so any router may ensure a set without coordination.

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use switchyard_core::ids::{queue_name, ContainerId, QueueKind};

use crate::error::{classify, AwsError};
use crate::store::QueueUrls;

/// Visibility timeout of `in`: long enough for a worker to extend it while a job runs.
pub const IN_VISIBILITY_S: i32 = 60;
/// The responder Lambda's timeout (`infra/template.yaml`, `ResponderFunction.Timeout`).
pub const RESPONDER_TIMEOUT_S: i32 = 60;
/// Visibility timeout of `out` and the DLQ, which the responder consumes through event
/// source mappings: Lambda refuses a mapping from a queue whose visibility timeout is below
/// the function timeout, and AWS recommends 6× it
/// (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html>).
pub const RESPONDER_VISIBILITY_S: i32 = 6 * RESPONDER_TIMEOUT_S;
/// Receives of an `in` message before SQS moves it to the DLQ. Not the retry budget of a
/// command (that is `attempts` on the command item, which a graceful stop does not use up):
/// a backstop for messages no worker can even parse.
pub const MAX_RECEIVE_COUNT: u32 = 10;
/// Receives of a response on `out` before it moves to the DLQ (the responder retries a
/// transient SES or DynamoDB failure this often, then reports the reply as failed).
pub const OUT_MAX_RECEIVE_COUNT: u32 = 5;

/// One message to send.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// FIFO group.
    pub group: String,
    /// FIFO deduplication id.
    pub dedup: String,
    /// Body.
    pub body: String,
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// Message id.
    pub id: String,
    /// Receipt handle (delete, visibility).
    pub receipt: String,
    /// Body.
    pub body: String,
    /// How many times it was received.
    pub receive_count: u32,
    /// FIFO group.
    pub group: Option<String>,
}

/// SQS access for queue sets.
#[derive(Debug, Clone)]
pub struct Queues {
    client: aws_sdk_sqs::Client,
    prefix: String,
}

impl Queues {
    /// Queue sets named under `prefix`.
    pub fn new(client: aws_sdk_sqs::Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into() }
    }

    /// The queue-name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn create(&self, name: &str, attrs: HashMap<QueueAttributeName, String>) -> Result<String, AwsError> {
        let out = self
            .client
            .create_queue()
            .queue_name(name)
            .set_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| classify("sqs", e))?;
        out.queue_url.ok_or_else(|| AwsError::NotFound { what: format!("url of queue {name}") })
    }

    /// Creates (or finds) the queue set of a container generation.
    pub async fn ensure_queue_set(&self, container: &ContainerId, generation: u32) -> Result<QueueUrls, AwsError> {
        let fifo = |extra: &[(QueueAttributeName, String)]| {
            let mut m: HashMap<QueueAttributeName, String> =
                [(QueueAttributeName::FifoQueue, "true".to_string())].into_iter().collect();
            m.extend(extra.iter().cloned());
            m
        };
        let dlq_name = queue_name(&self.prefix, QueueKind::Dlq, container, generation);
        let dlq_url = self
            .create(
                &dlq_name,
                fifo(&[
                    (QueueAttributeName::MessageRetentionPeriod, "1209600".into()),
                    (QueueAttributeName::VisibilityTimeout, RESPONDER_VISIBILITY_S.to_string()),
                ]),
            )
            .await?;
        let arn = self.arn(&dlq_url).await?;
        let redrive = |max: u32| serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max }).to_string();
        let in_url = self
            .create(
                &queue_name(&self.prefix, QueueKind::In, container, generation),
                fifo(&[
                    (QueueAttributeName::RedrivePolicy, redrive(MAX_RECEIVE_COUNT)),
                    (QueueAttributeName::VisibilityTimeout, IN_VISIBILITY_S.to_string()),
                ]),
            )
            .await?;
        // `out` shares the set's DLQ: a response the responder keeps failing on (a
        // permanent downstream error it did not recognise) must not block its session's
        // FIFO group for the retention period.
        let out_url = self
            .create(
                &queue_name(&self.prefix, QueueKind::Out, container, generation),
                fifo(&[
                    (QueueAttributeName::RedrivePolicy, redrive(OUT_MAX_RECEIVE_COUNT)),
                    (QueueAttributeName::VisibilityTimeout, RESPONDER_VISIBILITY_S.to_string()),
                ]),
            )
            .await?;
        Ok(QueueUrls { in_url, out_url, dlq_url })
    }

    /// Sends up to 10 messages in one `SendMessageBatch`; any failed entry is an error.
    pub async fn send_batch(&self, url: &str, messages: &[OutgoingMessage]) -> Result<(), AwsError> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .message_group_id(&m.group)
                    .message_deduplication_id(&m.dedup)
                    .build()
                    .map_err(|e| AwsError::InvalidRequest { what: "batch entry", source: Box::new(e) })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("sqs", e))?;
        if let Some(first) = out.failed.first() {
            return Err(AwsError::PartialBatch {
                failed: out.failed.len(),
                total: messages.len(),
                first_code: first.code.clone(),
            });
        }
        Ok(())
    }

    /// Long-polls up to `max` messages.
    pub async fn receive(
        &self,
        url: &str,
        max: i32,
        wait_s: i32,
        visibility_s: Option<i32>,
    ) -> Result<Vec<Received>, AwsError> {
        // One attempt ID per receive, repeated by the SDK's retries of it: on a FIFO queue, a
        // retry after a lost response gets the same messages back at once instead of leaving
        // them invisible for their visibility timeout (AWS ignores it on standard queues).
        let attempt = ulid::Ulid::new().to_string();
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .receive_request_attempt_id(attempt)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_s)
            .set_visibility_timeout(visibility_s)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| classify("sqs", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let attrs = m.attributes.unwrap_or_default();
                Some(Received {
                    id: m.message_id?,
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count: attrs
                        .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                    group: attrs.get(&MessageSystemAttributeName::MessageGroupId).cloned(),
                })
            })
            .collect())
    }

    /// Deletes a received message.
    pub async fn delete(&self, url: &str, receipt: &str) -> Result<(), AwsError> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| classify("sqs", e))?;
        Ok(())
    }

    /// Changes a received message's visibility (0 releases it at once).
    pub async fn set_visibility(&self, url: &str, receipt: &str, seconds: i32) -> Result<(), AwsError> {
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| classify("sqs", e))?;
        Ok(())
    }

    /// Approximate (visible, in flight) message counts.
    pub async fn depth(&self, url: &str) -> Result<(u64, u64), AwsError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| classify("sqs", e))?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// How long ago a queue was created.
    pub async fn age(&self, url: &str) -> Result<std::time::Duration, AwsError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::CreatedTimestamp)
            .send()
            .await
            .map_err(|e| classify("sqs", e))?;
        // Epoch seconds (moto sends a fraction). Unknown = brand new: never old enough to delete.
        let now = crate::now_ms() as f64 / 1000.0;
        let created: f64 = out
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::CreatedTimestamp))
            .and_then(|v| v.parse().ok())
            .unwrap_or(now);
        Ok(std::time::Duration::from_secs_f64((now - created).max(0.0)))
    }

    /// A queue's ARN.
    pub async fn arn(&self, url: &str) -> Result<String, AwsError> {
        self.client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| classify("sqs", e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| AwsError::NotFound { what: format!("arn of queue {url}") })
    }

    /// Deletes a queue (a missing queue is not an error).
    pub async fn delete_queue(&self, url: &str) -> Result<(), AwsError> {
        match self.client.delete_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_queue_does_not_exist() {
                    Ok(())
                } else {
                    Err(classify("sqs", e))
                }
            }
        }
    }

    /// URLs of queues whose names start with `{prefix}-`.
    pub async fn list(&self) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .client
                .list_queues()
                .queue_name_prefix(format!("{}-", self.prefix))
                .set_next_token(token.take())
                .max_results(1000)
                .send()
                .await
                .map_err(|e| classify("sqs", e))?;
            out.extend(resp.queue_urls.unwrap_or_default());
            match resp.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }
}
