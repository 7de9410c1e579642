//! The responder's subscriptions to queue sets: in AWS, a Lambda event source mapping from
//! each container's `out` queue and DLQ to the responder, created with the queue set and
//! deleted with it (DESIGN §2.5). The local runtime polls those queues instead.

use aws_sdk_lambda::types::FunctionResponseType;

use crate::error::{classify, AwsError};

/// Creates and deletes the responder's event source mappings.
#[derive(Debug, Clone)]
pub struct ResponderMappings {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl ResponderMappings {
    /// Mappings to `function` (the responder's name or ARN).
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self { client, function: function.into() }
    }

    /// Subscribes the responder to these queues (idempotent: an existing mapping is kept).
    pub async fn subscribe(&self, queue_arns: &[&str]) -> Result<(), AwsError> {
        for arn in queue_arns {
            let res = self
                .client
                .create_event_source_mapping()
                .event_source_arn(*arn)
                .function_name(&self.function)
                .batch_size(10)
                .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                .send()
                .await;
            if let Err(e) = res {
                let e = e.into_service_error();
                if !e.is_resource_conflict_exception() {
                    return Err(classify("lambda", e));
                }
            }
        }
        Ok(())
    }

    /// Deletes the responder's mappings from these queues.
    pub async fn unsubscribe(&self, queue_arns: &[&str]) -> Result<(), AwsError> {
        for arn in queue_arns {
            let out = self
                .client
                .list_event_source_mappings()
                .event_source_arn(*arn)
                .function_name(&self.function)
                .send()
                .await
                .map_err(|e| classify("lambda", e))?;
            for m in out.event_source_mappings() {
                if let Some(uuid) = m.uuid() {
                    if let Err(e) = self.client.delete_event_source_mapping().uuid(uuid).send().await {
                        let e = e.into_service_error();
                        if !e.is_resource_not_found_exception() {
                            return Err(classify("lambda", e));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The ARNs of a function's mappings from a queue (for operators and tests).
    pub async fn mapped(&self, queue_arn: &str) -> Result<usize, AwsError> {
        let out = self
            .client
            .list_event_source_mappings()
            .event_source_arn(queue_arn)
            .function_name(&self.function)
            .send()
            .await
            .map_err(|e| classify("lambda", e))?;
        Ok(out.event_source_mappings().len())
    }
}
