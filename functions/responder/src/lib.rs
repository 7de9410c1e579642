//! `responder` Lambda: SQS records from `out` queues (responses) and from DLQs (commands
//! that could not be processed, responses whose reply kept failing). Each is recorded and
//! answered; failures are reported per record so only they are retried, and a FIFO batch
//! stops at its first failure so a session's replies never overtake each other.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use switchyard_aws::batch::for_each_record;
use switchyard_aws::mailer::Mailer;
use switchyard_core::ids::{is_queue_of_kind, QueueKind};
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

/// Whether a record came from a container's dead-letter queue: its source queue is named
/// `{prefix}-dlq-…` under our prefix (a project may well be called `dlq-tools`).
pub fn from_dlq(state: &State, record: &SqsMessage) -> bool {
    let name = record.event_source_arn.as_deref().and_then(|a| a.rsplit(':').next()).unwrap_or("");
    is_queue_of_kind(state.orchestrator.queues.prefix(), QueueKind::Dlq, name)
}

/// Handles one record.
pub async fn handle_record(state: &State, record: &SqsMessage) -> Result<Responded, RouteError> {
    let body = record.body.as_deref().unwrap_or_default();
    if from_dlq(state, record) {
        return state.orchestrator.respond_dead_letter(Some(&state.mailer), body).await;
    }
    let queue = record.event_source_arn.as_deref().and_then(|a| a.rsplit(':').next()).unwrap_or("");
    let container = switchyard_core::ids::queue_container_of(state.orchestrator.queues.prefix(), queue);
    match (decode::<Response>(body), container) {
        (Ok(r), Some(container)) => state.orchestrator.respond_from(Some(&state.mailer), &r, container).await,
        (Ok(r), None) => {
            // Not one of our `out` queues: nothing says which container wrote it.
            error!(session = %r.session, queue, "response from a queue that is no container's; dropped");
            switchyard_aws::metrics::count("ForgedResponses");
            Ok(Responded { recorded: false, email: None, reply_error: None })
        }
        (Err(e), _) => {
            // A response we cannot read will never become readable: log, count, drop.
            error!(message = record.message_id.as_deref().unwrap_or(""), error = %e, "response does not parse; dropped");
            switchyard_aws::metrics::count("UnreadableResponses");
            Ok(Responded { recorded: false, email: None, reply_error: None })
        }
    }
}

/// Handles a batch; `on_handled` sees every handled record's result (the local runtime keeps
/// a copy of each email sent).
pub async fn handle_batch(state: &State, records: &[SqsMessage], on_handled: impl Fn(&Responded)) -> SqsBatchResponse {
    for_each_record(records, |record| {
        let on_handled = &on_handled;
        async move {
            let id = record.message_id.as_deref().unwrap_or_default();
            match handle_record(state, record).await {
                Ok(r) => {
                    info!(message = %id, recorded = r.recorded, emailed = r.email.is_some(), reply_error = r.reply_error.as_deref().unwrap_or(""), "response handled");
                    on_handled(&r);
                    Ok(())
                }
                Err(RouteError::DeadLetter(e)) => {
                    error!(message = %id, error = %e, "dead letter names no command; dropped");
                    Ok(())
                }
                Err(e) if !e.retryable() => {
                    error!(message = %id, error = %e, "response cannot be handled; dropped");
                    Ok(())
                }
                Err(e) => {
                    error!(message = %id, error = %e, "response not handled; will retry");
                    Err(())
                }
            }
        }
    })
    .await
}

/// The Lambda handler.
pub async fn handle(state: &State, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(handle_batch(state, &event.payload.records, |_| {}).await)
}
