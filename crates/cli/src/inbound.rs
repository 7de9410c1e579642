//! What SES does for us in AWS, done locally: wrap a raw email as an SES receipt
//! notification inside an SNS notification, and put it on the inbound queue.

use serde_json::json;

/// SES's SNS action carries messages up to 150 KB; larger ones go through its S3 action
/// (<https://docs.aws.amazon.com/ses/latest/dg/receiving-email-action-sns.html>).
pub(crate) const SNS_ACTION_MAX_BYTES: usize = 150 * 1024;

/// The SES action of a local receipt: the message itself, or where it was stored.
enum Action<'a> {
    Sns(&'a [u8]),
    S3 { bucket: &'a str, key: &'a str },
}

/// The body SQS receives from an SNS subscription for an SES receipt.
fn ses_via_sns(action: Action<'_>, recipients: &[String], source: &str, from: &[String]) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (action, content) = match action {
        Action::Sns(raw) => (
            json!({"type": "SNS", "topicArn": "arn:aws:sns:local:000000000000:switchyard-inbound", "encoding": "BASE64"}),
            Some(aws_smithy_types::base64::encode(raw)),
        ),
        Action::S3 { bucket, key } => (
            json!({"type": "S3", "topicArn": "arn:aws:sns:local:000000000000:switchyard-inbound", "bucketName": bucket, "objectKey": key}),
            None,
        ),
    };
    let mut ses = json!({
        "notificationType": "Received",
        "mail": {
            "timestamp": now, "source": source, "messageId": ulid::Ulid::new().to_string(),
            "destination": recipients, "headersTruncated": false, "headers": [],
            "commonHeaders": { "from": from, "to": recipients }
        },
        "receipt": {
            "timestamp": now, "processingTimeMillis": 1, "recipients": recipients,
            "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"}, "dmarcVerdict": {"status": "PASS"},
            "action": action
        }
    });
    if let Some(content) = content {
        ses["content"] = json!(content);
    }
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

/// The `From` header values as SES's `commonHeaders.from` gives them: one entry per `From`
/// header, unfolded, not decoded further (a second reading of the header, independent of
/// the parser intake uses, as SES's own is).
fn header_from(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("").split("\n\n").next().unwrap_or("");
    let mut values: Vec<String> = Vec::new();
    let mut in_from = false;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if in_from {
                if let Some(v) = values.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            }
            continue;
        }
        in_from = false;
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("from") {
                in_from = true;
                values.push(value.trim().to_string());
            }
        }
    }
    values
}

/// The bucket that stands in for the receipt rule's S3 action and holds attachments locally.
pub(crate) fn mail_bucket(prefix: &str) -> String {
    let clean: String =
        prefix.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("switchyard-{}-mail", clean.trim_matches('-')).chars().take(63).collect()
}

/// Where local mail arrives: what SES → (S3) → SNS → SQS does in AWS.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    /// The inbound queue.
    pub(crate) url: String,
    /// Messages over [`SNS_ACTION_MAX_BYTES`] are stored here, as SES's S3 action would.
    pub(crate) bucket: String,
}

impl Inbox {
    /// Puts a raw email on the inbound queue (through the bucket when it is large).
    /// Locally the envelope is the headers: recipients from To/Cc, MAIL FROM = From.
    pub(crate) async fn send(&self, raw: &[u8]) -> anyhow::Result<()> {
        let (recipients, source) = match switchyard_core::email::parse_email(raw) {
            Ok(e) => (e.to, e.from),
            Err(_) => (Vec::new(), String::new()),
        };
        let body = if raw.len() > SNS_ACTION_MAX_BYTES {
            let key = format!("inbound/{}", ulid::Ulid::new().to_string().to_lowercase());
            self.s3.put_object().bucket(&self.bucket).key(&key).body(raw.to_vec().into()).send().await?;
            ses_via_sns(Action::S3 { bucket: &self.bucket, key: &key }, &recipients, &source, &header_from(raw))
        } else {
            ses_via_sns(Action::Sns(raw), &recipients, &source, &header_from(raw))
        };
        self.sqs.send_message().queue_url(&self.url).message_body(body).send().await?;
        Ok(())
    }
}
