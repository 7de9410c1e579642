//! `intake-email` Lambda: SQS records carrying SNS-wrapped SES receipt notifications.
//!
//! Each record's body is an SNS notification whose `Message` is an SES notification that
//! either carries the raw email (`content`, SNS action, UTF-8 or Base64) or points to it
//! in S3 (S3 action: `bucketName`/`objectKey`). Every record is handled on its own and
//! reported through `SqsBatchResponse`: a rejected email (malformed, unauthorised) is a
//! handled outcome and is acknowledged; only infrastructure failures are retried.

use aws_lambda_events::event::ses::SimpleEmailService;
use aws_lambda_events::event::sns::SnsMessage;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use switchyard_aws::batch::for_each_record;
use switchyard_aws::mailer::Mailer;
use switchyard_core::attachments::{self, AttachmentNote, AttachmentRef};
use switchyard_core::email::attachment_parts;
use switchyard_core::email::EmailError;
use switchyard_core::inbound::{inbound_from_ses, Envelope, Inbound};
use switchyard_core::project::Verdict;
use switchyard_orchestrator::{Orchestrator, Rejection, RouteError, RouteOutcome};
use tracing::{error, info, instrument, warn};

/// What the handler needs, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct State {
    /// Routing.
    pub orchestrator: Orchestrator,
    /// S3, for emails stored by the receipt rule's S3 action.
    pub s3: aws_sdk_s3::Client,
    /// SES, for polite replies to rejected (but verified) senders.
    pub mailer: Mailer,
    /// `SWITCHYARD_INBOUND_DOMAIN`: only envelope recipients on this domain name a project.
    pub inbound_domain: String,
    /// `SWITCHYARD_ATTACHMENTS_BUCKET`: where attachments for jobs are stored (under
    /// `attachments/{client}/…`); unset, attachments are refused with that reason.
    pub attachments_bucket: Option<String>,
}

/// What happened to one record.
#[derive(Debug)]
pub enum RecordOutcome {
    /// Routed (new or duplicate).
    Routed(RouteOutcome),
    /// Refused; nothing routed; acknowledged.
    Rejected {
        /// Why.
        rejection: Rejection,
        /// Whether the sender was told (verified sender, actionable reason).
        replied: bool,
    },
}

/// Why a record could not be handled (it is retried, then lands in the inbound DLQ).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The body is not an SNS notification carrying an SES notification.
    #[error("record is not an SNS(SES) notification: {0}")]
    Envelope(#[from] serde_json::Error),
    /// The SES notification has neither content nor an S3 location.
    #[error("SES notification has no content and no S3 object")]
    NoContent,
    /// Base64 content does not decode.
    #[error("SES content is not valid base64")]
    Base64,
    /// Reading the raw email from S3 failed.
    #[error("reading s3://{bucket}/{key} failed")]
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Routing failed for an infrastructure reason.
    #[error(transparent)]
    Route(RouteError),
    /// Storing an attachment failed (retried: the keys are stable, a retry overwrites).
    #[error("storing attachment s3://{bucket}/{key} failed")]
    Attachment {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The Lambda handler: one result per record, failures reported per record.
pub async fn handle(state: &State, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(for_each_record(&event.payload.records, |record| async move {
        let id = record.message_id.as_deref().unwrap_or_default();
        match handle_record(state, record).await {
            Ok(RecordOutcome::Routed(o)) => {
                info!(message = %id, session = %o.session, command = %o.command_id, status = ?o.status, "email routed");
                Ok(())
            }
            Ok(RecordOutcome::Rejected { rejection: r, replied }) => {
                warn!(message = %id, code = r.code(), reason = %r, replied, "email rejected");
                Ok(())
            }
            Err(e) => {
                error!(message = %id, error = %e, "email not handled; will retry");
                Err(())
            }
        }
    })
    .await)
}

/// The SES notification of a record. SES leaves `commonHeaders.from` out when the email
/// has no `From` header, which `aws_lambda_events` requires: such mail is supplied an empty
/// list here, so the email itself is refused (`no_sender`) instead of the envelope failing
/// into retries and the inbound DLQ.
fn ses_notification(record: &SqsMessage) -> Result<SimpleEmailService, IntakeError> {
    let sns: SnsMessage = serde_json::from_str(record.body.as_deref().unwrap_or_default())?;
    let mut ses: serde_json::Value = serde_json::from_str(&sns.message)?;
    if let Some(headers) = ses.pointer_mut("/mail/commonHeaders").and_then(|h| h.as_object_mut()) {
        headers.entry("from").or_insert_with(|| serde_json::Value::Array(Vec::new()));
    }
    Ok(serde_json::from_value(ses)?)
}

/// Handles one SQS record.
#[instrument(skip_all, fields(message = record.message_id.as_deref().unwrap_or("")))]
pub async fn handle_record(state: &State, record: &SqsMessage) -> Result<RecordOutcome, IntakeError> {
    let ses = ses_notification(record)?;
    let raw = match raw_email(state, &ses).await? {
        Ok(raw) => raw,
        Err(e) => return Ok(RecordOutcome::Rejected { rejection: Rejection::Email(e), replied: false }),
    };
    let envelope = Envelope {
        recipients: &ses.receipt.recipients,
        domain: &state.inbound_domain,
        mail_from: ses.mail.source.as_deref(),
        spf: Verdict::from_ses(ses.receipt.spf_verdict.status.as_deref()),
        dkim: Verdict::from_ses(ses.receipt.dkim_verdict.status.as_deref()),
        dmarc: Verdict::from_ses(ses.receipt.dmarc_verdict.status.as_deref()),
        header_from: &ses.mail.common_headers.from,
    };
    let mut parsed = match inbound_from_ses(&raw, &envelope) {
        Ok(p) => p,
        Err(e) => {
            if matches!(e, switchyard_core::email::EmailError::AutoReply(_)) {
                // Out-of-office replies and bounces: routed nowhere, answered never, counted.
                switchyard_aws::metrics::count("AutoReplies");
            }
            return Ok(RecordOutcome::Rejected { rejection: Rejection::Email(e), replied: false });
        }
    };
    if parsed.inbound.instruction_fallback {
        info!(cuts = ?parsed.parsed.cuts, "no new text told apart: the whole top part is the instruction");
    }
    if !parsed.parsed.attachments.is_empty() {
        // SES scanned the message: with a virus found, no attachment reaches a job (the
        // instruction itself is text and still runs; the reply says what was withheld).
        let infected = ses.receipt.virus_verdict.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("FAIL"));
        if infected {
            warn!(sender = %parsed.inbound.sender, "SES virus verdict FAIL: attachments withheld");
            switchyard_aws::metrics::count("InfectedEmails");
        }
        store_attachments(state, &raw, &mut parsed.inbound, infected).await?;
    }
    match state.orchestrator.route(&parsed.inbound).await {
        Ok(o) => {
            // A failed acknowledgement never turns a routed instruction into a retry.
            if let Err(e) = state.orchestrator.acknowledge(&state.mailer, &parsed.inbound, &o).await {
                warn!(error = %e, "acknowledgement not sent");
            }
            Ok(RecordOutcome::Routed(o))
        }
        Err(RouteError::Rejected(r)) => {
            // A failed reply must not turn a handled rejection into a retry loop.
            let replied = match state.orchestrator.reply_to_rejection(&state.mailer, &parsed.inbound, &r).await {
                Ok(sent) => sent.is_some(),
                Err(e) => {
                    warn!(error = %e, "rejection reply not sent");
                    false
                }
            };
            Ok(RecordOutcome::Rejected { rejection: r, replied })
        }
        Err(e) => Err(IntakeError::Route(e)),
    }
}

/// The raw email, or an email-level rejection (too large to read), or an envelope error.
async fn raw_email(state: &State, ses: &SimpleEmailService) -> Result<Result<Vec<u8>, EmailError>, IntakeError> {
    if let Some(content) = &ses.content {
        let encoding = ses.receipt.action.other.get("encoding").and_then(|v| v.as_str()).unwrap_or("UTF8");
        return if encoding.eq_ignore_ascii_case("BASE64") {
            base64_decode(content).map(Ok).ok_or(IntakeError::Base64)
        } else {
            Ok(Ok(content.as_bytes().to_vec()))
        };
    }
    let action = &ses.receipt.action;
    let (Some(bucket), Some(key)) = (&action.bucket_name, &action.object_key) else {
        return Err(IntakeError::NoContent);
    };
    let s3_err = |e: Box<dyn std::error::Error + Send + Sync>| IntakeError::S3 {
        bucket: bucket.clone(),
        key: key.clone(),
        source: e,
    };
    let obj = state.s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| s3_err(Box::new(e)))?;
    let size = obj.content_length.unwrap_or(0).max(0) as usize;
    if size > switchyard_core::email::MAX_RAW_BYTES {
        // Refused before it is read into memory.
        return Ok(Err(EmailError::TooLarge { size, limit: switchyard_core::email::MAX_RAW_BYTES }));
    }
    let bytes = obj.body.collect().await.map_err(|e| s3_err(Box::new(e)))?;
    Ok(Ok(bytes.into_bytes().to_vec()))
}

fn base64_decode(input: &str) -> Option<Vec<u8>> {
    use aws_smithy_types::base64;
    let cleaned: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    base64::decode(cleaned).ok()
}

/// Judges every attachment of the email by its project's policy, stores the accepted ones
/// (S3, under the client's prefix) and notes the rest with their reason. Nothing is stored
/// for an unknown project or an unauthorised sender: routing refuses those anyway, and an
/// attacker's files never reach the bucket.
async fn store_attachments(
    state: &State,
    raw: &[u8],
    inbound: &mut Inbound,
    infected: bool,
) -> Result<(), IntakeError> {
    let project = match state.orchestrator.get_project(&inbound.client, &inbound.project).await {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(()),
        Err(e) => return Err(IntakeError::Route(e)),
    };
    if project.authorise_email(&inbound.sender, &inbound.evidence).is_err() {
        return Ok(());
    }
    // Keys name the message by its bytes, not its Message-ID: another email that reuses the
    // Message-ID (routing treats it as a duplicate) can never replace a stored file.
    let email = attachments::email_digest(raw);
    let mut taken = std::collections::HashSet::new();
    let parts = attachment_parts(raw);
    let over = parts.len().saturating_sub(attachments::MAX_LISTED);
    for (i, part) in parts.into_iter().enumerate().take(attachments::MAX_LISTED) {
        // Two `image.png`: the job sees both.
        let name = attachments::unique_name(part.name.as_deref(), i, &mut taken);
        let content_type: String = part.content_type.chars().take(attachments::MAX_TYPE_CHARS).collect();
        let size = part.bytes.len() as u64;
        let accepted = inbound.attachments.len();
        let refused = match &state.attachments_bucket {
            _ if infected => {
                Some("the mail service found a virus in this email; no attachment was passed on".to_string())
            }
            None => Some("attachments are not enabled on this deployment".to_string()),
            Some(_) => attachments::judge(&project.attachments, &name, &content_type, &part.bytes, accepted),
        };
        if let (None, Some(bucket)) = (&refused, &state.attachments_bucket) {
            let key = attachments::object_key(&inbound.client, &inbound.project, &email, i, &name);
            state
                .s3
                .put_object()
                .bucket(bucket)
                .key(&key)
                .content_type(&content_type)
                .body(aws_sdk_s3::primitives::ByteStream::from(part.bytes))
                .send()
                .await
                .map_err(|e| IntakeError::Attachment {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    source: Box::new(e),
                })?;
            inbound.attachments.push(AttachmentRef {
                bucket: bucket.clone(),
                key,
                name: name.clone(),
                content_type,
                size,
            });
        } else {
            info!(attachment = %name, size, reason = refused.as_deref().unwrap_or_default(), "attachment refused");
        }
        inbound.attachment_notes.push(AttachmentNote { name, size, refused });
    }
    if over > 0 {
        inbound.attachment_notes.push(AttachmentNote {
            name: format!("{over} more"),
            size: 0,
            refused: Some(format!("only the first {} attachments of an email are looked at", attachments::MAX_LISTED)),
        });
    }
    Ok(())
}
