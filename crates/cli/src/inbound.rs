//! What SES does for us in AWS, done locally: wrap a raw email as an SES receipt
//! notification inside an SNS notification, and put it on the inbound queue.

use serde_json::json;

/// The body SQS receives from an SNS subscription for an SES receipt (SNS action, Base64).
pub(crate) fn ses_via_sns(raw: &[u8], recipients: &[String], source: &str) -> String {
    let content = aws_smithy_types::base64::encode(raw);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ses = json!({
        "notificationType": "Received",
        "mail": {
            "timestamp": now, "source": source, "messageId": ulid::Ulid::new().to_string(),
            "destination": recipients, "headersTruncated": false, "headers": [],
            "commonHeaders": { "from": [], "to": recipients }
        },
        "receipt": {
            "timestamp": now, "processingTimeMillis": 1, "recipients": recipients,
            "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"}, "dmarcVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": "arn:aws:sns:local:000000000000:switchyard-inbound", "encoding": "BASE64"}
        },
        "content": content
    });
    json!({
        "Type": "Notification",
        "MessageId": ulid::Ulid::new().to_string(),
        "TopicArn": "arn:aws:sns:local:000000000000:switchyard-inbound",
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": ses.to_string(),
        "Timestamp": now,
        "SignatureVersion": "1",
        "Signature": "local",
        "SigningCertURL": "https://localhost/cert.pem",
        "UnsubscribeURL": "https://localhost/unsubscribe"
    })
    .to_string()
}

/// Puts a raw email on the inbound queue, as SES → SNS → SQS would.
pub(crate) async fn send_email(sqs: &aws_sdk_sqs::Client, inbound_url: &str, raw: &[u8]) -> anyhow::Result<()> {
    // Locally the envelope is the headers: recipients from To/Cc, MAIL FROM = From.
    let (recipients, source) = match switchyard_core::email::parse_email(raw) {
        Ok(e) => (e.to, e.from),
        Err(_) => (Vec::new(), String::new()),
    };
    sqs.send_message().queue_url(inbound_url).message_body(ses_via_sns(raw, &recipients, &source)).send().await?;
    Ok(())
}
