//! SES v2 raw email sending (threaded replies are built by the responder).

use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{EmailContent, RawMessage};

use crate::error::{classify, AwsError};

/// Sends raw MIME messages through SES v2.
#[derive(Debug, Clone)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
}

impl Mailer {
    /// A mailer on this client.
    pub fn new(client: aws_sdk_sesv2::Client) -> Self {
        Self { client }
    }

    /// The `Message-ID` SES gives a message it sent (it replaces ours, see
    /// <https://docs.aws.amazon.com/ses/latest/dg/header-fields.html>):
    /// `{id}@{region}.amazonses.com`, without angle brackets, as every Message-ID is stored.
    pub fn ses_message_id(&self, ses_id: &str) -> String {
        format!("{ses_id}@{}.amazonses.com", self.region())
    }

    /// Every form the `Message-ID` of a sent message may take: in us-east-1 SES writes
    /// `{id}@email.amazonses.com` (the region form is kept as well, since a client quoting
    /// either must find the thread, and an alias costs one small item).
    pub fn ses_message_ids(&self, ses_id: &str) -> Vec<String> {
        let mut ids = vec![self.ses_message_id(ses_id)];
        if self.region() == "us-east-1" {
            ids.push(format!("{ses_id}@email.amazonses.com"));
        }
        ids
    }

    fn region(&self) -> &str {
        self.client.config().region().map_or("us-east-1", |r| r.as_ref())
    }

    /// Sends one raw message; returns the SES message id.
    pub async fn send_raw(&self, from: &str, to: &str, raw: Vec<u8>) -> Result<String, AwsError> {
        let raw = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| AwsError::InvalidRequest { what: "raw message", source: Box::new(e) })?;
        let out = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(aws_sdk_sesv2::types::Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|e| classify("sesv2", e))?;
        Ok(out.message_id.unwrap_or_default())
    }

    /// Verifies a sender identity (needed before sending, in SES and in the emulator).
    pub async fn ensure_identity(&self, identity: &str) -> Result<(), AwsError> {
        match self.client.create_email_identity().email_identity(identity).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_already_exists_exception() {
                    Ok(())
                } else {
                    Err(classify("sesv2", e))
                }
            }
        }
    }
}

/// SES v2 `SendEmail` errors that no retry can fix: the message, a sender identity or the
/// account is refused (sandbox recipients, unverified identity, suspended or paused sending).
/// <https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors>
const PERMANENT_SEND_ERRORS: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
];

/// Whether a send failed for good (record it and move on) rather than for now (retry).
pub fn is_permanent_send_error(e: &AwsError) -> bool {
    matches!(e, AwsError::Service { service: "sesv2", code, .. } if PERMANENT_SEND_ERRORS.contains(&code.as_str()))
}
