//! `Inbound`: a trigger (email or API request) normalised for routing (DESIGN §2.1 step 1).

use crate::email::{parse_email, EmailError, ParsedEmail, ProjectAddress};
use crate::ids::{SessionId, ThreadId};
use crate::messages::Source;
use crate::project::Verdict;
use crate::sender::SenderEvidence;
use crate::thread::reference_candidates;

/// How the thread of an inbound is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadHint {
    /// Email: the thread rules of §2.1 step 3.
    Email {
        /// Rule 1: recipient token.
        token: Option<ThreadId>,
        /// Rule 2: Message-IDs to look up (In-Reply-To, then References newest first).
        candidates: Vec<String>,
    },
    /// API: an existing session, or a new one.
    Api {
        /// The session in the path, if any.
        session: Option<SessionId>,
    },
}

/// A normalised trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Email or API.
    pub source: Source,
    /// Client slug (validated by the router).
    pub client: String,
    /// Project slug (validated by the router).
    pub project: String,
    /// Sender / key owner (normalised).
    pub sender: String,
    /// Subject (email) or a title (API).
    pub subject: String,
    /// The instruction.
    pub instruction: String,
    /// Message-ID (email).
    pub message_id: Option<String>,
    /// References chain to carry into our reply (email).
    pub references: Vec<String>,
    /// How to find the thread.
    pub thread: ThreadHint,
    /// Idempotency key: the Message-ID (email) or the `Idempotency-Key` header (API).
    pub idempotency_key: Option<String>,
    /// What SES established about the sender (email; all neutral for the API).
    pub evidence: SenderEvidence,
    /// The project address the email was sent to (its domain is reused for Reply-To).
    pub address: Option<ProjectAddress>,
    /// Whether the instruction is the whole top part (the extractor's rules left nothing).
    pub instruction_fallback: bool,
    /// Attachments stored for the job (set by the intake before routing).
    pub attachments: Vec<crate::attachments::AttachmentRef>,
    /// What the reply says of every attachment of the email.
    pub attachment_notes: Vec<crate::attachments::AttachmentNote>,
    /// API: where a new session's final outcomes are POSTed, and the key (its `pk`) whose
    /// webhook secret signs them.
    pub webhook: Option<(String, String)>,
}

/// A parsed email and its normalised inbound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailInbound {
    /// The parse, for inspection.
    pub parsed: ParsedEmail,
    /// The inbound.
    pub inbound: Inbound,
}

/// What SES knows of a received message besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The envelope recipients of this receipt (SES `receipt.recipients`): the addresses the
    /// mail was delivered to, BCC included — never a colleague listed in `To`/`Cc`.
    pub recipients: &'a [String],
    /// Our inbound domain: only recipients on it name a project.
    pub domain: &'a str,
    /// The envelope sender (SES `mail.source`, the domain SPF checked); `None` for a null sender.
    pub mail_from: Option<&'a str>,
    /// SPF verdict.
    pub spf: Verdict,
    /// DKIM verdict.
    pub dkim: Verdict,
    /// DMARC verdict.
    pub dmarc: Verdict,
    /// The `From` as SES parsed it (`mail.commonHeaders.from`): the mailbox its DMARC
    /// verdict is about. Ours must be that one, and there must be exactly one.
    pub header_from: &'a [String],
}

/// Raw MIME + the SES envelope → `Inbound`. The project comes from the first envelope
/// recipient on our inbound domain that names one.
pub fn inbound_from_ses(raw: &[u8], envelope: &Envelope<'_>) -> Result<EmailInbound, EmailError> {
    let parsed = parse_email(raw)?;
    // The From we authorise is the one SES evaluated: one mailbox, the same as ours. A
    // message two parsers read differently (glued, folded or encoded mailboxes) is refused.
    match envelope.header_from {
        [one] if crate::email::mailbox_of_rendered(one).as_deref() == Some(parsed.from.as_str()) => {}
        [] => return Err(EmailError::NoSender),
        _ => return Err(EmailError::AmbiguousSender),
    }
    let address = envelope
        .recipients
        .iter()
        .filter_map(|a| ProjectAddress::parse(a))
        .find(|a| a.domain.eq_ignore_ascii_case(envelope.domain))
        .ok_or(EmailError::NoProjectRecipient)?;
    let evidence = SenderEvidence {
        spf: envelope.spf,
        dkim: envelope.dkim,
        dmarc: envelope.dmarc,
        spf_domain: envelope
            .mail_from
            .and_then(|m| m.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .filter(|d| !d.is_empty()),
        dkim_domains: parsed.dkim_domains.clone(),
    };
    Ok(build(parsed, address, evidence))
}

/// Raw MIME + SPF/DKIM verdicts → `Inbound`, the project taken from the `To`/`Cc` headers,
/// for tools and tests that have no SES envelope: the verdicts are taken to be about the
/// `From` domain (as if the envelope sender and the signer were that domain), with no DMARC
/// verdict. The intake uses [`inbound_from_ses`].
pub fn inbound_from_email(raw: &[u8], spf: Verdict, dkim: Verdict) -> Result<EmailInbound, EmailError> {
    let parsed = parse_email(raw)?;
    let address = parsed.project_address()?;
    let from_domain = parsed.from.rsplit_once('@').map(|(_, d)| d.to_string());
    let evidence = SenderEvidence {
        spf,
        dkim,
        dmarc: Verdict::Neutral,
        spf_domain: from_domain.clone(),
        dkim_domains: from_domain.into_iter().collect(),
    };
    Ok(build(parsed, address, evidence))
}

fn build(parsed: ParsedEmail, address: ProjectAddress, evidence: SenderEvidence) -> EmailInbound {
    let mut references = parsed.references.clone();
    let known: std::collections::HashSet<&String> = parsed.references.iter().collect();
    for id in &parsed.in_reply_to {
        if !known.contains(id) {
            references.push(id.clone());
        }
    }
    let inbound = Inbound {
        source: Source::Email,
        client: address.client.clone(),
        project: address.project.clone(),
        sender: parsed.from.clone(),
        subject: parsed.subject.clone(),
        instruction: parsed.instruction.clone(),
        message_id: Some(parsed.message_id.clone()),
        references,
        thread: ThreadHint::Email {
            token: address.thread.clone(),
            candidates: reference_candidates(&parsed.in_reply_to, &parsed.references),
        },
        idempotency_key: Some(parsed.message_id.clone()),
        evidence,
        address: Some(address),
        instruction_fallback: parsed.instruction_fallback,
        attachments: Vec::new(),
        attachment_notes: Vec::new(),
        webhook: None,
    };
    EmailInbound { parsed, inbound }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] =
        b"From: Ann <ann@corp.example>\r\nTo: John Smith <john.smith@corp.com>, acme.site@in.example.com\r\n\
Subject: s\r\nMessage-ID: <m1@corp.example>\r\n\r\nPlease fix the header.\r\n";

    fn envelope(recipients: &[String]) -> Envelope<'_> {
        Envelope {
            recipients,
            domain: "in.example.com",
            mail_from: Some("ann@corp.example"),
            spf: Verdict::Pass,
            dkim: Verdict::Pass,
            dmarc: Verdict::Pass,
            header_from: &FROM,
        }
    }

    static FROM: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| vec!["Ann <ann@corp.example>".into()]);

    #[test]
    fn the_from_must_be_the_one_ses_evaluated() {
        let recipients = vec!["acme.site@in.example.com".to_string()];
        let with = |from: &[String]| {
            let mut e = envelope(&recipients);
            e.header_from = from;
            inbound_from_ses(RAW, &e).map(|e| e.inbound.sender)
        };
        assert_eq!(with(&["Ann <Ann@Corp.Example>".into()]).unwrap(), "ann@corp.example");
        // SES read another mailbox (DMARC is about that one), or two, or none
        assert_eq!(with(&["eve@evil.example".into()]).unwrap_err(), EmailError::AmbiguousSender);
        assert_eq!(with(&["<eve@evil.example> <ann@corp.example>".into()]).unwrap_err(), EmailError::AmbiguousSender);
        assert_eq!(
            with(&["ann@corp.example".into(), "eve@evil.example".into()]).unwrap_err(),
            EmailError::AmbiguousSender
        );
        assert_eq!(with(&[]).unwrap_err(), EmailError::NoSender);
    }

    #[test]
    fn the_project_comes_from_the_envelope_recipient_on_our_domain() {
        // A colleague listed first in To (`john.smith@corp.com` has the `x.y@` shape) is not
        // a project; the envelope recipient on our domain is.
        let recipients = vec!["acme.site@in.example.com".to_string()];
        let e = inbound_from_ses(RAW, &envelope(&recipients)).unwrap();
        assert_eq!((e.inbound.client.as_str(), e.inbound.project.as_str()), ("acme", "site"));
    }

    #[test]
    fn bcc_delivery_routes_and_other_domains_do_not() {
        let raw = b"From: ann@corp.example\r\nTo: team@corp.example\r\nSubject: s\r\n\r\nhi\r\n";
        let bcc = vec!["john.smith@corp.com".to_string(), "Acme.Site@IN.example.com".to_string()];
        let e = inbound_from_ses(raw, &envelope(&bcc)).unwrap();
        assert_eq!(e.inbound.project, "site");
        let elsewhere = vec!["john.smith@corp.com".to_string()];
        assert_eq!(inbound_from_ses(raw, &envelope(&elsewhere)).unwrap_err(), EmailError::NoProjectRecipient);
    }
}
