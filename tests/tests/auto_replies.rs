//! Automatic mail is never an instruction: an out-of-office reply to our acknowledgement (or
//! to any reply) routes nothing, interrupts nothing and is not answered; every mail we send
//! says it is automatic, so responders do not answer it in the first place.

use mail_parser::MessageParser;
use switchyard_core::email::EmailError;
use switchyard_core::inbound::inbound_from_email;
use switchyard_core::messages::Outcome;
use switchyard_core::project::{InterruptScope, Verdict};
use switchyard_tests::world::{world, ANN};
use switchyard_tests::{email, unique};

const TO: &str = "acme.site@in.example.com";

#[tokio::test]
async fn an_out_of_office_reply_on_a_running_session_changes_nothing() -> anyhow::Result<()> {
    // GIVEN a running job (it waits until its mark is seen)
    let job = r#"touch "$MARKS/started"; sleep 2; echo done > page.html"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Update the page.").await?;
    w.wait_mark("started").await?;
    // WHEN Ann's out-of-office answers our acknowledgement in the session's thread, in
    // each of the ways responders mark themselves
    let token = format!("acme.site+t.{}@in.example.com", r.thread);
    for (subject, headers) in [
        ("Re: Site change", "Auto-Submitted: auto-replied\r\n"),
        ("Re: Site change", "X-Autoreply: yes\r\n"),
        ("Re: Site change", "Precedence: auto_reply\r\n"),
        ("Automatic reply: Site change", ""),
        ("Abwesenheitsnotiz: Site change", ""),
        ("Re: Site change", "X-Auto-Response-Suppress: All\r\n"),
    ] {
        let raw = email(ANN, &token, subject, &format!("{}@x", unique()), headers, "I am out until Monday.");
        // THEN it is refused as automatic: no command, no interrupt
        match inbound_from_email(&raw, Verdict::Pass, Verdict::Pass) {
            Err(EmailError::AutoReply(_)) => {}
            other => panic!("{subject} / {headers:?}: {other:?}"),
        }
    }
    // AND a delivery report (multipart/report) is refused the same way
    let report = format!(
        "From: MAILER-DAEMON@corp.example\r\nTo: {token}\r\nSubject: failure notice\r\nMessage-ID: <{}@x>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b--\r\n",
        unique()
    );
    assert!(matches!(
        inbound_from_email(report.as_bytes(), Verdict::Pass, Verdict::Pass),
        Err(EmailError::AutoReply(_))
    ));
    // AND the running command still succeeds, alone in its session
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    assert_eq!(w.env.store().list_commands(&r.session).await?.len(), 1);
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn every_mail_we_send_says_it_is_automatic() -> anyhow::Result<()> {
    let env = switchyard_tests::TestEnv::new().await?;
    let o = env.orchestrator();
    let mut p = switchyard_tests::project("acme", "site", &[ANN]);
    p.acknowledge_email = true;
    o.put_project(p).await?;
    let mailer = switchyard_aws::mailer::Mailer::new(env.clients.ses.clone());
    mailer.ensure_identity("in.example.com").await?;
    let raw = email(ANN, TO, "Site change", &format!("{}@x", unique()), "", "Make it blue.");
    let inbound = inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound;
    let routed = o.route(&inbound).await?;
    // The acknowledgement…
    let ack = o.acknowledge(&mailer, &inbound, &routed).await?.expect("an acknowledgement");
    // …and a rejection reply to an authenticated sender the project does not allow
    let stranger = email("eve@example.com", TO, "Hi", &format!("{}@x", unique()), "", "Let me in.");
    let inbound = inbound_from_email(&stranger, Verdict::Pass, Verdict::Pass)?.inbound;
    let rejection = match o.route(&inbound).await {
        Err(switchyard_orchestrator::RouteError::Rejected(r)) => r,
        other => anyhow::bail!("not rejected: {other:?}"),
    };
    let refusal = o.reply_to_rejection(&mailer, &inbound, &rejection).await?.expect("a refusal");
    for raw in [&ack, &refusal] {
        let msg = MessageParser::default().parse(raw).expect("mail");
        let header = |n: &str| msg.headers().iter().find(|h| h.name.as_str() == n).and_then(|h| h.value.as_text());
        assert_eq!(header("Auto-Submitted"), Some("auto-replied"));
        assert_eq!(header("X-Auto-Response-Suppress"), Some("All"));
    }
    Ok(())
}
