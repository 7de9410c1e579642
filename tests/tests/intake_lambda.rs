//! The intake-email Lambda handler called with a realistic SQS(SNS(SES)) event.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use switchyard_core::ids::{ContainerId, SessionId, ThreadId};
use switchyard_tests::{project, TestEnv};

const EVENT: &[u8] = include_bytes!("../fixtures/events/sqs-sns-ses.json");
const S3_OBJECT: &[u8] = include_bytes!("../fixtures/events/s3-object.eml");
const BUCKET: &str = "switchyard-inbound-fixture";

#[tokio::test]
async fn handler_routes_sns_and_s3_emails_and_reports_only_envelope_failures() -> anyhow::Result<()> {
    // GIVEN a project and the raw email the S3 record points to
    let env = TestEnv::new().await?;
    let orchestrator = env.orchestrator();
    orchestrator.put_project(project("acme", "site", &["ann@example.com"])).await?;
    let _ = env.clients.s3.create_bucket().bucket(BUCKET).send().await;
    let key = format!("inbound/{}", env.prefix);
    env.clients.s3.put_object().bucket(BUCKET).key(&key).body(S3_OBJECT.to_vec().into()).send().await?;
    let mut event: SqsEvent = serde_json::from_slice(EVENT)?;
    let body = event.records[1].body.take().unwrap_or_default().replace("inbound/abc123", &key);
    event.records[1].body = Some(body);
    let mailer = switchyard_aws::mailer::Mailer::new(env.clients.ses.clone());
    mailer.ensure_identity("in.example.com").await?;
    let state = intake_email::State {
        orchestrator: orchestrator.clone(),
        s3: env.clients.s3.clone(),
        mailer,
        inbound_domain: "in.example.com".into(),
        attachments_bucket: None,
    };

    // WHEN the handler gets the batch
    let response = intake_email::handle(&state, LambdaEvent::new(event, Context::default())).await.expect("handler");

    // THEN only the record that is not an SNS notification is reported for retry;
    // the malformed and the forged (DMARC-failed) emails are handled rejections
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec!["rec-5"]);
    // AND the SNS-carried and S3-stored emails each made a session with one command
    for message_id in ["new-1@example.com", "s3-1@example.com"] {
        let session = SessionId::new("acme", &ThreadId::from_seed(message_id));
        let commands = env.store().list_commands(&session).await?;
        assert_eq!(commands.len(), 1, "{message_id}");
    }
    let spoofed = SessionId::new("acme", &ThreadId::from_seed("spf-1@example.com"));
    assert!(env.store().get_session(&spoofed).await?.is_none());
    // AND one container was launched for ann
    let container = env.store().get_container(&ContainerId::new("acme", "site", "ann@example.com")).await?;
    assert_eq!(container.and_then(|c| c.container_status), Some(switchyard_core::container::ContainerStatus::Starting));
    assert_eq!(env.ecs_task_count().await?, 1);
    Ok(())
}

#[tokio::test]
async fn rejected_senders_get_a_polite_reply_only_when_verified() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.orchestrator().put_project(project("acme", "site", &["ann@example.com"])).await?;
    let state = env.intake(None).await?;
    let mut event: SqsEvent = serde_json::from_slice(EVENT)?;
    let template = event.records.remove(0);
    let record = |from: &str, source: &str, spf: &str, dkim: &str, dmarc: &str| {
        let raw = switchyard_tests::email(
            from,
            "acme.site@in.example.com",
            "Hello",
            &format!("{}@x", switchyard_tests::unique()),
            "",
            "Delete the site.",
        );
        let mut r = template.clone();
        let mut sns: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap_or("{}")).expect("sns");
        let mut ses: serde_json::Value = serde_json::from_str(sns["Message"].as_str().unwrap_or("{}")).expect("ses");
        ses["content"] = serde_json::Value::String(aws_smithy_types::base64::encode(&raw));
        ses["mail"]["source"] = source.into();
        // SES reports the From it parsed (and evaluated DMARC for).
        ses["mail"]["commonHeaders"]["from"] = serde_json::json!([from]);
        ses["receipt"]["spfVerdict"]["status"] = spf.into();
        ses["receipt"]["dkimVerdict"]["status"] = dkim.into();
        ses["receipt"]["dmarcVerdict"]["status"] = dmarc.into();
        sns["Message"] = serde_json::Value::String(ses.to_string());
        r.body = Some(sns.to_string());
        r
    };
    // An authenticated stranger is told why. A forged allowed sender (the attacker's own
    // envelope domain passes SPF, DKIM is GRAY, DMARC fails) is refused and never answered,
    // and so is an unauthenticated (all GRAY) stranger: no backscatter to forged addresses.
    let cases = [
        ("eve@example.com", "eve@example.com", "PASS", "PASS", "PASS", "sender_not_allowed", true),
        ("ann@example.com", "bounce@attacker.example", "PASS", "GRAY", "FAIL", "unauthenticated_sender", false),
        ("ann@example.com", "bounce@attacker.example", "PASS", "GRAY", "GRAY", "unauthenticated_sender", false),
        ("gray@example.com", "gray@example.com", "GRAY", "GRAY", "GRAY", "unauthenticated_sender", false),
    ];
    for (from, source, spf, dkim, dmarc, code, want_reply) in cases {
        match intake_email::handle_record(&state, &record(from, source, spf, dkim, dmarc)).await? {
            intake_email::RecordOutcome::Rejected { rejection, replied } => {
                assert_eq!((rejection.code(), replied), (code, want_reply), "{from} via {source}");
            }
            other => panic!("{from}: expected a rejection, got {other:?}"),
        }
    }
    Ok(())
}

/// An SQS(SNS(SES)) record for `raw`, with the envelope recipients SES reports.
fn ses_record(
    template: &aws_lambda_events::event::sqs::SqsMessage,
    raw: &[u8],
    recipients: &[&str],
    from_header: bool,
) -> aws_lambda_events::event::sqs::SqsMessage {
    let mut r = template.clone();
    let mut sns: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap_or("{}")).expect("sns");
    let mut ses: serde_json::Value = serde_json::from_str(sns["Message"].as_str().unwrap_or("{}")).expect("ses");
    ses["content"] = serde_json::Value::String(aws_smithy_types::base64::encode(raw));
    ses["receipt"]["recipients"] = serde_json::json!(recipients);
    if !from_header {
        // SES leaves `from` out of commonHeaders when the email has no From header.
        ses["mail"]["commonHeaders"].as_object_mut().expect("commonHeaders").remove("from");
    } else if let Ok(parsed) = switchyard_core::email::parse_email(raw) {
        ses["mail"]["commonHeaders"]["from"] = serde_json::json!([parsed.from]);
    }
    sns["Message"] = serde_json::Value::String(ses.to_string());
    r.body = Some(sns.to_string());
    r
}

#[tokio::test]
async fn the_project_comes_from_the_envelope_and_mail_without_from_is_refused() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let orchestrator = env.orchestrator();
    orchestrator.put_project(project("acme", "site", &["ann@example.com"])).await?;
    orchestrator.put_project(project("john", "smith", &["ann@example.com"])).await?;
    let mailer = switchyard_aws::mailer::Mailer::new(env.clients.ses.clone());
    let state = intake_email::State {
        orchestrator,
        s3: env.clients.s3.clone(),
        mailer,
        inbound_domain: "in.example.com".into(),
        attachments_bucket: None,
    };
    let mut event: SqsEvent = serde_json::from_slice(EVENT)?;
    let template = event.records.remove(0);
    // GIVEN a colleague `john.smith@corp.com` listed first in To, and our address in Cc
    let raw = format!(
        "From: ann@example.com\r\nTo: John Smith <john.smith@corp.com>\r\nCc: acme.site@in.example.com\r\nSubject: s\r\nMessage-ID: <{}@x>\r\n\r\nFix the menu.\r\n",
        switchyard_tests::unique()
    );
    let rec = ses_record(&template, raw.as_bytes(), &["acme.site@in.example.com"], true);
    match intake_email::handle_record(&state, &rec).await? {
        intake_email::RecordOutcome::Routed(o) => assert!(o.container.as_str().starts_with("acme-site-"), "{o:?}"),
        other => panic!("expected acme/site, got {other:?}"),
    }
    // AND a BCC delivery: our address is in no header, only in the envelope
    let raw = format!(
        "From: ann@example.com\r\nTo: team@corp.com\r\nSubject: s\r\nMessage-ID: <{}@x>\r\n\r\nFix the footer.\r\n",
        switchyard_tests::unique()
    );
    let rec = ses_record(&template, raw.as_bytes(), &["acme.site@in.example.com"], true);
    assert!(matches!(intake_email::handle_record(&state, &rec).await?, intake_email::RecordOutcome::Routed(_)));
    // AND an email without a From header is a clean rejection, not an envelope failure
    let raw = b"To: acme.site@in.example.com\r\nSubject: s\r\nMessage-ID: <nofrom@x>\r\n\r\nHello\r\n";
    let rec = ses_record(&template, raw, &["acme.site@in.example.com"], false);
    match intake_email::handle_record(&state, &rec).await? {
        intake_email::RecordOutcome::Rejected { rejection, replied } => {
            assert_eq!((rejection.code(), replied), ("no_sender", false))
        }
        other => panic!("expected no_sender, got {other:?}"),
    }
    let mut batch = SqsEvent::default();
    batch.records.push(rec);
    let response = intake_email::handle(&state, LambdaEvent::new(batch, Context::default())).await.expect("handler");
    assert!(response.batch_item_failures.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_from_other_than_the_one_ses_evaluated_is_refused_without_a_reply() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.orchestrator().put_project(project("acme", "site", &["ann@example.com"])).await?;
    let state = env.intake(None).await?;
    let mut event: SqsEvent = serde_json::from_slice(EVENT)?;
    let template = event.records.remove(0);
    let to = "acme.site@in.example.com";
    // GIVEN SES read the From as Ann's (and DMARC passed for it), while the header holds two
    // mailboxes glued without a comma, or SES read another mailbox than the header's first
    for (from, ses_from) in [
        ("<eve@evil.example> <ann@example.com>", "Ann Example <ann@example.com>"),
        ("Ann <ann@example.com>", "eve@evil.example"),
    ] {
        let raw = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: s\r\nMessage-ID: <{}@x>\r\n\r\nDelete everything.\r\n",
            switchyard_tests::unique()
        );
        let mut rec = ses_record(&template, raw.as_bytes(), &[to], true);
        let mut sns: serde_json::Value = serde_json::from_str(rec.body.as_deref().unwrap_or("{}"))?;
        let mut ses: serde_json::Value = serde_json::from_str(sns["Message"].as_str().unwrap_or("{}"))?;
        ses["mail"]["commonHeaders"]["from"] = serde_json::json!([ses_from]);
        sns["Message"] = serde_json::Value::String(ses.to_string());
        rec.body = Some(sns.to_string());
        // THEN nothing is routed, and nobody is answered
        match intake_email::handle_record(&state, &rec).await? {
            intake_email::RecordOutcome::Rejected { rejection, replied } => {
                assert_eq!((rejection.code(), replied), ("ambiguous_sender", false), "{from} / {ses_from}")
            }
            other => panic!("{from}: expected a rejection, got {other:?}"),
        }
    }
    Ok(())
}
