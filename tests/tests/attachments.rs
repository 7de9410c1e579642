//! Attachments for the job, end to end (issue 12): an email through the intake handler
//! (SES's S3 action, as for any message over 150 KB) → attachments judged by the project's
//! policy and stored in S3 → a real worker places the accepted ones in the session's
//! worktree → the job sees them → the reply lists what was passed on and what was refused.

use aws_lambda_events::event::sqs::SqsMessage;
use sha2::Digest;
use switchyard_core::messages::Outcome;
use switchyard_core::project::InterruptScope;
use switchyard_tests::unique;
use switchyard_tests::world::{world, ANN};

const TO: &str = "acme.site@in.example.com";

/// The job lists what it was given and the digest of each file.
const JOB: &str = r#"{ printf '%s\n' "$SWITCHYARD_ATTACHMENTS"; printf '%s\n' "$SWITCHYARD_ATTACHMENTS" | while read -r f; do sha256sum "$f" | cut -c1-64; done; } > seen.txt"#;

fn b64(bytes: &[u8]) -> String {
    let encoded = aws_smithy_types::base64::encode(bytes);
    encoded.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\r\n")
}

fn part(content_type: &str, disposition: &str, extra: &str, bytes: &[u8]) -> String {
    format!(
        "Content-Type: {content_type}\r\nContent-Disposition: {disposition}\r\n{extra}Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64(bytes)
    )
}

fn hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn attachments_reach_the_job_and_the_reply_says_which_were_refused() -> anyhow::Result<()> {
    let mut w = world(JOB, InterruptScope::Session, 600).await?;
    let bucket = format!("switchyard-{}-mail", unique().to_lowercase());
    w.env.clients.s3.create_bucket().bucket(&bucket).send().await?;

    // GIVEN an HTML email with a screenshot pasted inline, a logo (PNG) and a brief (PDF)
    // attached, a 30 MB image and a program
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 600]].concat();
    let screenshot = [b"\x89PNG\r\n\x1a\n".as_slice(), &[9u8; 300]].concat();
    let pdf = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let huge = vec![b'x'; 30 * 1024 * 1024];
    let program = [b"MZ\x90\x00".as_slice(), &[0u8; 200]].concat();
    let id = format!("{}@x", unique());
    let raw = format!(
        "From: Ann <{ANN}>\r\nTo: {TO}\r\nSubject: New logo\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
--mixed\r\nContent-Type: multipart/related; boundary=\"related\"\r\n\r\n\
--related\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<div>Use the attached logo in the header, like in this screenshot:</div><div><img src=\"cid:shot1\"></div><div>Thanks,<br>Ann</div>\r\n\
--related\r\n{}--related--\r\n\
--mixed\r\n{}--mixed\r\n{}--mixed\r\n{}--mixed\r\n{}--mixed--\r\n",
        part("image/png; name=\"screenshot.png\"", "inline; filename=\"screenshot.png\"", "Content-ID: <shot1>\r\n", &screenshot),
        part("image/png; name=\"logo.png\"", "attachment; filename=\"logo.png\"", "", &png),
        part("application/pdf; name=\"brief.pdf\"", "attachment; filename=\"brief.pdf\"", "", &pdf),
        part("image/png; name=\"huge.png\"", "attachment; filename=\"huge.png\"", "", &huge),
        part("application/octet-stream; name=\"setup.exe\"", "attachment; filename=\"setup.exe\"", "", &program),
    );
    // …stored by SES's S3 action (it is far over the SNS action's 150 KB)
    let key = format!("inbound/{}", unique());
    w.env.clients.s3.put_object().bucket(&bucket).key(&key).body(raw.into_bytes().into()).send().await?;
    let ses = serde_json::json!({
        "notificationType": "Received",
        "mail": {"timestamp": "2026-12-01T10:00:00.000Z", "source": ANN, "messageId": unique(), "destination": [TO],
                 "headersTruncated": false, "headers": [], "commonHeaders": {"from": [ANN], "to": [TO]}},
        "receipt": {"timestamp": "2026-12-01T10:00:00.000Z", "processingTimeMillis": 1, "recipients": [TO],
                    "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"}, "spfVerdict": {"status": "PASS"},
                    "dkimVerdict": {"status": "PASS"}, "dmarcVerdict": {"status": "PASS"},
                    "action": {"type": "S3", "topicArn": "arn:aws:sns:local:0:t", "bucketName": bucket, "objectKey": key}}
    });
    let sns = serde_json::json!({"Type": "Notification", "MessageId": unique(), "TopicArn": "arn:aws:sns:local:0:t",
        "Message": ses.to_string(), "Timestamp": "2026-12-01T10:00:00.000Z", "SignatureVersion": "1",
        "Signature": "x", "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"});
    let mut record = SqsMessage::default();
    record.message_id = Some(unique());
    record.body = Some(sns.to_string());
    let mailer = switchyard_aws::mailer::Mailer::new(w.env.clients.ses.clone());
    let state = intake_email::State {
        orchestrator: w.o.clone(),
        s3: w.env.clients.s3.clone(),
        mailer,
        inbound_domain: "in.example.com".into(),
        attachments_bucket: Some(bucket.clone()),
    };

    // WHEN the intake handles it and a worker runs the job
    let routed = match intake_email::handle_record(&state, &record).await? {
        intake_email::RecordOutcome::Routed(r) => r,
        other => anyhow::bail!("not routed: {other:?}"),
    };
    let rs = w.responses(&routed, 1).await?;

    // THEN the instruction ran, with the signature gone and the HTML's lines kept apart
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    let command = w.command(&routed).await?;
    assert_eq!(command.instruction, "Use the attached logo in the header, like in this screenshot:");
    // AND the job saw exactly the three accepted files, byte for byte
    let dir = format!(".switchyard/attachments/{}", routed.command_id);
    let seen = w.branch_file(&format!("thread-{}", routed.thread), "seen.txt").expect("seen.txt committed");
    let want = format!(
        "{dir}/screenshot.png\n{dir}/logo.png\n{dir}/brief.pdf\n{}\n{}\n{}\n",
        hex(&screenshot),
        hex(&png),
        hex(&pdf)
    );
    assert_eq!(seen, want);
    // AND nothing of them was committed (the worktree's `.switchyard/` is excluded)
    assert!(w.branch_file(&format!("thread-{}", routed.thread), &format!("{dir}/logo.png")).is_none());
    // AND only those three were stored, under the client's prefix; the work message named them only
    let stored = w.env.clients.s3.list_objects_v2().bucket(&bucket).prefix("attachments/acme/site/").send().await?;
    assert_eq!(stored.contents().len(), 3, "{:?}", stored.contents());
    assert_eq!(command.attachments.len(), 3);
    // AND the reply lists what was passed on and what was refused, and why
    let (text, html) = switchyard_orchestrator::respond::reply_bodies(&rs[0], &format!("thread-{}", routed.thread));
    for line in [
        "Attachments passed to the job:",
        "  - screenshot.png (1 KB)",
        "  - logo.png (1 KB)",
        "  - brief.pdf (1 KB)",
        "Attachments not passed on:",
        "  - huge.png (30.0 MB): 30.0 MB is over this project's limit of 10.0 MB per attachment",
        "  - setup.exe (1 KB): programs are never passed to the job",
    ] {
        assert!(text.lines().any(|l| l == line), "reply lacks {line:?}:\n{text}");
    }
    assert!(html.contains("programs are never passed to the job"), "{html}");
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn an_email_ses_found_a_virus_in_passes_no_attachment_on() -> anyhow::Result<()> {
    let env = switchyard_tests::TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(switchyard_tests::project("acme", "site", &[ANN])).await?;
    let bucket = format!("switchyard-{}-mail", unique().to_lowercase());
    env.clients.s3.create_bucket().bucket(&bucket).send().await?;
    // GIVEN an authenticated email with a harmless-looking PDF that SES's scan flagged
    let pdf = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let raw = format!(
        "From: Ann <{ANN}>\r\nTo: {TO}\r\nSubject: Brief\r\nMessage-ID: <{}@x>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
--mixed\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nUse the brief.\r\n\
--mixed\r\n{}--mixed--\r\n",
        unique(),
        part("application/pdf; name=\"brief.pdf\"", "attachment; filename=\"brief.pdf\"", "", &pdf),
    );
    let ses = serde_json::json!({
        "notificationType": "Received",
        "mail": {"timestamp": "2026-12-01T10:00:00.000Z", "source": ANN, "messageId": unique(), "destination": [TO],
                 "headersTruncated": false, "headers": [], "commonHeaders": {"from": [ANN], "to": [TO]}},
        "receipt": {"timestamp": "2026-12-01T10:00:00.000Z", "processingTimeMillis": 1, "recipients": [TO],
                    "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "FAIL"}, "spfVerdict": {"status": "PASS"},
                    "dkimVerdict": {"status": "PASS"}, "dmarcVerdict": {"status": "PASS"},
                    "action": {"type": "SNS", "topicArn": "arn:aws:sns:local:0:t", "encoding": "BASE64"}},
        "content": aws_smithy_types::base64::encode(raw.as_bytes()),
    });
    let sns = serde_json::json!({"Type": "Notification", "MessageId": unique(), "TopicArn": "arn:aws:sns:local:0:t",
        "Message": ses.to_string(), "Timestamp": "2026-12-01T10:00:00.000Z", "SignatureVersion": "1",
        "Signature": "x", "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"});
    let mut record = SqsMessage::default();
    record.message_id = Some(unique());
    record.body = Some(sns.to_string());
    let state = env.intake(Some(bucket.clone())).await?;
    // WHEN the intake handles it
    let routed = match intake_email::handle_record(&state, &record).await? {
        intake_email::RecordOutcome::Routed(r) => r,
        other => anyhow::bail!("not routed: {other:?}"),
    };
    // THEN the instruction is routed, but nothing was stored or handed to the job, and the
    // reply will say why
    let command = env.store().get_command(&routed.session, routed.seq).await?.expect("command");
    assert!(command.attachments.is_empty(), "{:?}", command.attachments);
    let stored = env.clients.s3.list_objects_v2().bucket(&bucket).send().await?;
    assert!(stored.contents().is_empty(), "{:?}", stored.contents());
    let notes = command.reply.map(|r| r.attachments).unwrap_or_default();
    assert!(notes.iter().any(|n| n.refused.as_deref().is_some_and(|w| w.contains("virus"))), "{notes:?}");
    Ok(())
}
