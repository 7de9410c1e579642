//! The one SQS batch loop of every consumer (intake, responder, the local runtime's pollers):
//! each record handled on its own, failures reported per record (`SqsBatchResponse`), and —
//! on a FIFO source — every record after the first failure reported failed without being
//! handled, so a message group never runs out of order
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>).

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

/// Whether a record comes from a FIFO queue (its source ARN names a `.fifo` queue).
pub fn is_fifo(record: &SqsMessage) -> bool {
    record.event_source_arn.as_deref().is_some_and(|a| a.ends_with(".fifo"))
}

/// Handles `records` one by one with `handle`; `Err` marks a record for redelivery.
/// After a failure on a FIFO source the remaining records of that source are failed unseen.
pub async fn for_each_record<'a, F, Fut>(records: &'a [SqsMessage], mut handle: F) -> SqsBatchResponse
where
    F: FnMut(&'a SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), ()>>,
{
    let mut response = SqsBatchResponse::default();
    let mut blocked = false;
    for record in records {
        let failed = if blocked && is_fifo(record) { true } else { handle(record).await.is_err() };
        if failed {
            blocked |= is_fifo(record);
            let mut f = BatchItemFailure::default();
            f.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(f);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, arn: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r.event_source_arn = Some(arn.into());
        r
    }

    async fn run(arn: &str, fail: &[&str]) -> (Vec<String>, Vec<String>) {
        let records: Vec<_> = ["a", "b", "c"].iter().map(|id| record(id, arn)).collect();
        let mut seen = Vec::new();
        let out = for_each_record(&records, |r| {
            let id = r.message_id.clone().unwrap_or_default();
            seen.push(id.clone());
            let bad = fail.contains(&id.as_str());
            async move {
                if bad {
                    Err(())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        (seen, out.batch_item_failures.into_iter().map(|f| f.item_identifier).collect())
    }

    #[tokio::test]
    async fn fifo_stops_at_the_first_failure() {
        let (seen, failed) = run("arn:aws:sqs:us-east-1:1:sy-out-x-g1.fifo", &["b"]).await;
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(failed, ["b", "c"]);
    }

    #[tokio::test]
    async fn standard_queues_go_on_after_a_failure() {
        let (seen, failed) = run("arn:aws:sqs:us-east-1:1:sy-inbound", &["b"]).await;
        assert_eq!(seen, ["a", "b", "c"]);
        assert_eq!(failed, ["b"]);
    }
}
