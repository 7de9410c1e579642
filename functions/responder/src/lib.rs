//! `responder` Lambda: SQS records from `out` queues (responses) and from DLQs (commands
//! that could not be processed). Each is recorded and answered; failures are reported per
//! record so only they are retried.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use switchyard_aws::mailer::Mailer;
use switchyard_core::messages::{decode, Response};
use switchyard_orchestrator::respond::Responded;
use switchyard_orchestrator::{Orchestrator, RouteError};
use tracing::{error, info};

/// Built once per instance.
#[derive(Debug, Clone)]
pub struct State {
    /// Use cases.
    pub orchestrator: Orchestrator,
    /// SES.
    pub mailer: Mailer,
}

/// Whether a record came from a dead-letter queue (`…-dlq-…` in its source ARN).
pub fn from_dlq(record: &SqsMessage) -> bool {
    record.event_source_arn.as_deref().and_then(|a| a.rsplit(':').next()).is_some_and(|name| name.contains("-dlq-"))
}

/// Handles one record.
pub async fn handle_record(state: &State, record: &SqsMessage) -> Result<Responded, RouteError> {
    let body = record.body.as_deref().unwrap_or_default();
    if from_dlq(record) {
        return state.orchestrator.respond_dead_letter(Some(&state.mailer), body).await;
    }
    match decode::<Response>(body) {
        Ok(r) => state.orchestrator.respond(Some(&state.mailer), &r).await,
        Err(e) => {
            // A response we cannot read will never become readable: log, count, drop.
            error!(message = record.message_id.as_deref().unwrap_or(""), error = %e, "response does not parse; dropped");
            Ok(Responded { recorded: false, email: None })
        }
    }
}

/// The Lambda handler.
pub async fn handle(state: &State, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        match handle_record(state, record).await {
            Ok(r) => info!(message = %id, recorded = r.recorded, emailed = r.email.is_some(), "response handled"),
            Err(RouteError::DeadLetter(e)) => {
                error!(message = %id, error = %e, "dead letter names no command; dropped")
            }
            Err(e) => {
                error!(message = %id, error = %e, "response not handled; will retry");
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                response.batch_item_failures.push(f);
            }
        }
    }
    Ok(response)
}
