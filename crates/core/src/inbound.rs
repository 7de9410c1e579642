//! `Inbound`: a trigger (email or API request) normalised for routing (DESIGN §2.1 step 1).

use crate::email::{parse_email, EmailError, ParsedEmail, ProjectAddress};
use crate::ids::{SessionId, ThreadId};
use crate::messages::Source;
use crate::project::Verdict;
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
    /// SPF verdict (email).
    pub spf: Verdict,
    /// DKIM verdict (email).
    pub dkim: Verdict,
    /// The project address the email was sent to (its domain is reused for Reply-To).
    pub address: Option<ProjectAddress>,
}

/// A parsed email and its normalised inbound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailInbound {
    /// The parse, for inspection.
    pub parsed: ParsedEmail,
    /// The inbound.
    pub inbound: Inbound,
}

/// Raw MIME + SES verdicts → `Inbound`.
pub fn inbound_from_email(raw: &[u8], spf: Verdict, dkim: Verdict) -> Result<EmailInbound, EmailError> {
    let parsed = parse_email(raw)?;
    let address = parsed.project_address()?;
    let mut references = parsed.references.clone();
    for id in &parsed.in_reply_to {
        if !references.contains(id) {
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
        spf,
        dkim,
        address: Some(address),
    };
    Ok(EmailInbound { parsed, inbound })
}
