//! The responder use case (DESIGN §2.5): record the outcome if the worker has not, and
//! answer in the thread — a threaded email through SES for email sessions (API sessions
//! read their status from the table). Commands that ended in the DLQ are answered as
//! failed with a clear reason.

use mail_builder::MessageBuilder;
use switchyard_aws::mailer::{is_permanent_send_error, Mailer};
use switchyard_aws::store::{CommandUpdate, Finished};
use switchyard_core::messages::{decode, InMessage, Outcome, ReplyContext, Response, Timings};
use switchyard_core::status::ErrorCode;
use tracing::{info, instrument, warn};

use crate::{Orchestrator, RouteError};

/// A reply email that was sent.
#[derive(Debug, Clone)]
pub struct SentReply {
    /// From (the thread-token address).
    pub from: String,
    /// To (the sender of the instruction).
    pub to: String,
    /// Our Message-ID.
    pub message_id: String,
    /// The Message-ID SES gave the mail (the one the recipient sees), recorded as an alias.
    pub ses_message_id: String,
    /// The raw MIME message.
    pub raw: Vec<u8>,
}

/// What the responder did.
#[derive(Debug, Clone)]
pub struct Responded {
    /// Whether this call recorded the outcome (false: the worker had).
    pub recorded: bool,
    /// The email sent, if any.
    pub email: Option<SentReply>,
    /// Why the reply could not be delivered, if it failed for good (recorded on the command).
    pub reply_error: Option<String>,
}

impl Responded {
    fn quiet(recorded: bool) -> Self {
        Self { recorded, email: None, reply_error: None }
    }
}

/// A DLQ message that is not a command cannot be answered.
#[derive(Debug, thiserror::Error)]
#[error("dead letter is not a work message: {0}")]
pub struct UnattributableDeadLetter(pub String);

fn headline(r: &Response) -> String {
    match r.outcome {
        Outcome::Succeeded => "Done: your change is committed.".into(),
        Outcome::Failed => format!(
            "Failed: {}.",
            r.error_message.clone().unwrap_or_else(|| r.error_code.as_ref().map_or("unknown error".into(), ToString::to_string))
        ),
        Outcome::Interrupted if r.timings.started_ms == 0 => {
            "Skipped: a newer instruction in this conversation superseded this one before it started; nothing was changed for it.".into()
        }
        Outcome::Interrupted => match &r.superseded_by {
            Some(by) => format!(
                "Interrupted: your newer instruction (command {by}) superseded this one. Partial work was saved."
            ),
            None => "Interrupted: the job was stopped before it finished. Partial work was saved.".into(),
        },
        Outcome::Cancelled => "Cancelled.".into(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// What the reply says of the email itself: its attachments (passed on or refused, and
/// why) and whether the whole top part was taken as the instruction.
fn about_the_email(reply: &ReplyContext) -> Vec<String> {
    let mut lines = switchyard_core::attachments::reply_lines(&reply.attachments);
    if reply.instruction_fallback {
        lines.push(
            "Note: no new text could be told apart from quoted history or a signature, so the whole top part of your email was taken as the instruction."
                .into(),
        );
    }
    lines
}

/// One line on what the coding agent used: turns, tokens, cost.
fn agent_line(a: &switchyard_core::agent::AgentReport) -> String {
    let cost = a.cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default();
    format!("Agent: {} ({} turns, {} tokens in, {} out{cost})", a.kind, a.turns, a.input_tokens, a.output_tokens)
}

/// Builds the text and HTML bodies of a reply.
pub fn reply_bodies(r: &Response, branch: &str) -> (String, String) {
    let mut text = format!("{}\n\n", headline(r));
    if !r.summary.trim().is_empty() {
        text.push_str(&format!("Summary:\n{}\n\n", r.summary.trim()));
    }
    if !r.files_changed.is_empty() {
        text.push_str("Files changed:\n");
        for f in &r.files_changed {
            text.push_str(&format!("  - {f}\n"));
        }
        text.push('\n');
    }
    if let Some(c) = &r.commit {
        text.push_str(&format!("Commit: {c} on branch {branch}\n\n"));
    }
    if let Some(a) = &r.agent {
        text.push_str(&format!("{}\n\n", agent_line(a)));
    }
    let about = about_the_email(&r.reply);
    for line in &about {
        text.push_str(line);
        text.push('\n');
    }
    if !about.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!("-- \nReply to this email to continue this session ({}, command {}).\n", r.session, r.seq));
    let about_html = if about.is_empty() { String::new() } else { format!("<pre>{}</pre>", escape(&about.join("\n"))) };
    let html = format!(
        "<html><body><p><b>{}</b></p>{}{}{}{about_html}<p style=\"color:#666\">Reply to this email to continue this session ({}, command {}).</p></body></html>",
        escape(&headline(r)),
        if r.summary.trim().is_empty() { String::new() } else { format!("<pre>{}</pre>", escape(r.summary.trim())) },
        if r.files_changed.is_empty() {
            String::new()
        } else {
            format!("<ul>{}</ul>", r.files_changed.iter().map(|f| format!("<li><code>{}</code></li>", escape(f))).collect::<String>())
        },
        r.commit.as_ref().map(|c| format!("<p>Commit <code>{}</code> on branch <code>{}</code></p>", escape(c), escape(branch))).unwrap_or_default(),
        escape(r.session.as_str()),
        r.seq,
    );
    (text, html)
}

/// Every mail Switchyard sends says it is automatic (RFC 3834 `Auto-Submitted:
/// auto-replied`) and asks Exchange/Outlook not to answer it (`X-Auto-Response-Suppress:
/// All`): an out-of-office reply to our acknowledgement must not come back as an
/// instruction.
fn ours(b: MessageBuilder<'_>) -> MessageBuilder<'_> {
    use mail_builder::headers::raw::Raw;
    b.header("Auto-Submitted", Raw::new("auto-replied")).header("X-Auto-Response-Suppress", Raw::new("All"))
}

/// `Re: subject` (once), for any reply.
fn re_subject(subject: &str) -> String {
    let base = if subject.trim().is_empty() { "Your request" } else { subject.trim() };
    if base.to_ascii_lowercase().starts_with("re:") {
        base.to_string()
    } else {
        format!("Re: {base}")
    }
}

fn reply_subject(subject: &str, thread: &str) -> String {
    let base = re_subject(subject);
    let tag = format!("[#{thread}]");
    if base.contains(&tag) {
        base
    } else {
        format!("{base} {tag}")
    }
}

impl Orchestrator {
    /// Handles one response from the `out` queue of container `delivered_by`, trusting
    /// nothing of it that can be checked: a worker is hostile code's neighbour, and root in
    /// a container could write any response to its own `out` queue. The session must be
    /// served by that container and the command must be the session's own at that seq;
    /// the reply goes to the reply context stored when the command was routed, never to
    /// one the response carries. Anything else is dropped and counted (`ForgedResponses`).
    pub async fn respond_from(
        &self,
        mailer: Option<&Mailer>,
        r: &Response,
        delivered_by: &str,
    ) -> Result<Responded, RouteError> {
        let (session, command) =
            tokio::try_join!(self.store.get_session(&r.session), self.store.get_command(&r.session, r.seq))?;
        let checked = match (session, command) {
            (Some(s), Some(c)) if s.session_container.as_str() == delivered_by && c.command_id == r.command_id => {
                Some(Response { reply: c.reply.clone().unwrap_or_else(|| r.reply.clone()), ..r.clone() })
            }
            _ => None,
        };
        let Some(r) = checked else {
            warn!(session = %r.session, command = %r.command_id, container = delivered_by,
                "a response for a session or command its container does not serve; dropped");
            switchyard_aws::metrics::count("ForgedResponses");
            return Ok(Responded::quiet(false));
        };
        self.respond(mailer, &r).await
    }

    /// Handles one response from an `out` queue (see [`Self::respond_from`], which checks it
    /// first; this records and answers it as it is).
    #[instrument(skip(self, mailer, r), fields(session = %r.session, command = %r.command_id, outcome = r.outcome.as_str()))]
    pub async fn respond(&self, mailer: Option<&Mailer>, r: &Response) -> Result<Responded, RouteError> {
        let session = &r.session;
        let finished = self.store.finish_command(session, r.seq, r.outcome, &CommandUpdate::from(r)).await?;
        let recorded = finished.recorded();
        // Another outcome came first (a dead letter racing a late worker, say): the reply
        // tells that one, never a second, different story.
        let stored = match finished {
            Finished::Already(c) if c.status.outcome() != Some(r.outcome) => c.response(r.reply.clone()),
            _ => None,
        };
        let r = stored.as_ref().unwrap_or(r);
        // API sessions have no reply address; theirs is the webhook, if they gave one.
        if r.reply.reply_address.is_none() {
            self.send_webhook(r).await?;
        }
        let (Some(mailer), Some(from)) = (mailer, r.reply.reply_address.as_deref()) else {
            return Ok(Responded::quiet(recorded));
        };
        let claimant = ulid::Ulid::new().to_string();
        if r.reply.to.is_empty() || !self.store.claim_reply(session, r.seq, &claimant).await? {
            return Ok(Responded::quiet(recorded));
        }
        let thread = session.thread();
        let domain = from.rsplit_once('@').map_or("switchyard.local", |(_, d)| d);
        let message_id = format!("{}.{}@{domain}", r.command_id.as_str().to_ascii_lowercase(), r.outcome.as_str());
        let (text, html) = reply_bodies(r, &thread.branch());
        let mut builder = ours(MessageBuilder::new())
            .from(("Switchyard", from))
            .to(r.reply.to.as_str())
            .reply_to(from)
            .subject(reply_subject(&r.reply.subject, thread.as_str()))
            .message_id(message_id.as_str())
            .text_body(text)
            .html_body(html);
        if let Some(m) = &r.reply.message_id {
            builder = builder.in_reply_to(m.as_str());
        }
        if !r.reply.references.is_empty() {
            builder = builder.references(r.reply.references.as_slice());
        }
        let raw = match builder.write_to_vec() {
            Ok(raw) => raw,
            Err(e) => {
                warn!(error = %e, "reply could not be built");
                let reason = format!("reply could not be built: {e}");
                self.store.record_reply_failure(session, r.seq, &reason).await?;
                return Ok(Responded { recorded, email: None, reply_error: Some(reason) });
            }
        };
        let ses_id = match mailer.send_raw(from, &r.reply.to, raw.clone()).await {
            Ok(id) => id,
            Err(e) if is_permanent_send_error(&e) => {
                // Retrying cannot help and would block the session's FIFO group: the
                // outcome stands, the failed reply is recorded and counted (alarm).
                warn!(to = %r.reply.to, error = %e, "reply refused by SES for good; recorded");
                switchyard_aws::metrics::count("RepliesFailed");
                let reason = format!("reply not delivered: {e}");
                self.store.record_reply_failure(session, r.seq, &reason).await?;
                return Ok(Responded { recorded, email: None, reply_error: Some(reason) });
            }
            Err(e) => {
                self.store.release_reply(session, r.seq).await?;
                return Err(e.into());
            }
        };
        // Replies to our reply thread by In-Reply-To even if the client drops the token.
        // SES replaces our Message-ID with its own, so that one is what clients quote.
        let ses_message_id = mailer.ses_message_id(&ses_id);
        let mut aliases = vec![message_id.clone()];
        aliases.extend(mailer.ses_message_ids(&ses_id));
        self.store.put_aliases(session.client(), &thread, &aliases).await?;
        info!(to = %r.reply.to, ses_message_id = %ses_id, "reply sent");
        Ok(Responded {
            recorded,
            email: Some(SentReply { from: from.into(), to: r.reply.to.clone(), message_id, ses_message_id, raw }),
            reply_error: None,
        })
    }

    /// The signed webhook of an API session's outcome, if the session asked for one: at most
    /// once per outcome (claimed on the command first), retried with back-off inside this
    /// call, and how it went recorded on the command. A failed delivery is not retried later.
    async fn send_webhook(&self, r: &Response) -> Result<(), RouteError> {
        let Some(session) = self.store.get_session(&r.session).await? else { return Ok(()) };
        let (Some(url), Some(key_pk)) = (session.webhook_url.as_deref(), session.api_key.as_deref()) else {
            return Ok(());
        };
        let key: Option<switchyard_aws::store::ApiKeyItem> =
            self.store.get(key_pk, switchyard_aws::store::META).await?;
        let Some(secret) = key.and_then(|k| k.webhook_secret) else {
            warn!("the session's API key is gone or has no webhook secret; no webhook");
            return Ok(());
        };
        // A claim older than the responder's whole run (60 s) was left by one that died.
        if !self.store.claim_webhook(&r.session, r.seq, 5 * 60 * 1000).await? {
            return Ok(());
        }
        let body = serde_json::json!({
            "event": "command.finished",
            "session": r.session,
            "command_id": r.command_id,
            "seq": r.seq,
            "outcome": r.outcome.as_str(),
            "summary": r.summary,
            "commit": r.commit,
            "branch": session.branch,
            "files_changed": r.files_changed,
            "error_code": r.error_code,
            "error_message": r.error_message,
            "agent": r.agent,
        })
        .to_string();
        let delivery_id = format!("{}.{}", r.command_id.as_str().to_ascii_lowercase(), r.outcome.as_str());
        let outcome = switchyard_aws::webhooks::deliver(url, secret.as_bytes(), &delivery_id, body.as_bytes()).await;
        match &outcome {
            switchyard_aws::webhooks::Delivery::Delivered(_) => info!(delivery = %delivery_id, "webhook delivered"),
            switchyard_aws::webhooks::Delivery::Failed(why) => {
                warn!(delivery = %delivery_id, error = %why, "webhook not delivered");
                switchyard_aws::metrics::count("WebhooksFailed");
            }
        }
        self.store.set_webhook_status(&r.session, r.seq, &outcome.describe()).await?;
        Ok(())
    }

    /// The immediate "working on it" email for a newly routed email instruction (unless the
    /// project turns it off): session, branch, where it stands. Threaded like every reply
    /// (same From/Reply-To, `[#thread]` subject, References), and its Message-ID is a thread
    /// alias, so answering the acknowledgement continues the session too.
    pub async fn acknowledge(
        &self,
        mailer: &Mailer,
        inbound: &switchyard_core::inbound::Inbound,
        o: &crate::RouteOutcome,
    ) -> Result<Option<Vec<u8>>, RouteError> {
        if o.status != crate::route::RouteStatus::New {
            return Ok(None);
        }
        let project = self.get_project(&inbound.client, &inbound.project).await?;
        if !project.is_some_and(|p| p.acknowledge_email) {
            return Ok(None);
        }
        let Some(command) = self.store.get_command(&o.session, o.seq).await? else { return Ok(None) };
        let Some(reply) = command.reply else { return Ok(None) };
        let Some(from) = reply.reply_address.as_deref().filter(|_| !reply.to.is_empty()) else { return Ok(None) };
        let position = if o.launched {
            "A container is starting for you; the work begins as soon as it is up (usually within a minute)."
                .to_string()
        } else {
            let active = self.store.get_container(&o.container).await?.map_or(0, |c| c.active_jobs);
            match active {
                0 => "Your container is up; the work begins now.".to_string(),
                n => format!("Your container is running {n} job(s); this one is queued behind them (a newer instruction in the same session interrupts the older one)."),
            }
        };
        let text = format!(
            "Working on it.\n\nSession: {}\nBranch: {}\nInstruction {} of this session.\n{position}\n\nYou will get another email when it is done. Reply to this email to add to or change the instruction.\n",
            o.session, o.branch, o.seq
        );
        let thread = o.session.thread();
        let domain = from.rsplit_once('@').map_or("switchyard.local", |(_, d)| d);
        let message_id = format!("{}.ack@{domain}", o.command_id.as_str().to_ascii_lowercase());
        let mut builder = ours(MessageBuilder::new())
            .from(("Switchyard", from))
            .to(reply.to.as_str())
            .reply_to(from)
            .subject(reply_subject(&reply.subject, thread.as_str()))
            .message_id(message_id.as_str())
            .text_body(text);
        if let Some(m) = &reply.message_id {
            builder = builder.in_reply_to(m.as_str());
        }
        if !reply.references.is_empty() {
            builder = builder.references(reply.references.as_slice());
        }
        let raw = match builder.write_to_vec() {
            Ok(raw) => raw,
            Err(e) => {
                warn!(error = %e, "acknowledgement could not be built");
                return Ok(None);
            }
        };
        let ses_id = mailer.send_raw(from, &reply.to, raw.clone()).await?;
        let mut aliases = vec![message_id];
        aliases.extend(mailer.ses_message_ids(&ses_id));
        self.store.put_aliases(o.session.client(), &thread, &aliases).await?;
        info!(to = %reply.to, session = %o.session, "acknowledgement sent");
        Ok(Some(raw))
    }

    /// Handles one message from a container's DLQ. A work message (the worker could not
    /// process it) is answered as failed; a response (its reply kept failing) is recorded
    /// as an outcome whose reply was not delivered. Nothing here is retried forever.
    pub async fn respond_dead_letter(&self, mailer: Option<&Mailer>, body: &str) -> Result<Responded, RouteError> {
        if let Ok(r) = decode::<Response>(body) {
            return self.dead_response(&r).await;
        }
        let work = match decode::<InMessage>(body) {
            Ok(InMessage::Work(w)) => w,
            Ok(other) => {
                info!(session = %other.session(), "control message dead-lettered; nothing to answer");
                return Ok(Responded::quiet(false));
            }
            Err(e) => return Err(RouteError::DeadLetter(UnattributableDeadLetter(e.to_string()))),
        };
        switchyard_aws::metrics::count("DeadLetteredCommands");
        let now = switchyard_aws::now_ms();
        let r = Response {
            session: work.session,
            command_id: work.command_id,
            seq: work.seq,
            outcome: Outcome::Failed,
            summary: "Switchyard could not process this instruction (its message was set aside after repeated delivery failures).".into(),
            files_changed: Vec::new(),
            commit: None,
            error_code: Some(ErrorCode::Dlq),
            error_message: Some("the worker could not process this instruction's message".into()),
            timings: Timings { received_ms: now, started_ms: 0, finished_ms: now },
            reply: work.reply,
            superseded_by: None,
            agent: None,
        };
        self.respond(mailer, &r).await
    }

    /// A response that dead-lettered: its outcome is recorded (if it was not), its reply
    /// marked undeliverable.
    async fn dead_response(&self, r: &Response) -> Result<Responded, RouteError> {
        let session = &r.session;
        switchyard_aws::metrics::count("RepliesFailed");
        let recorded = self.store.finish_command(session, r.seq, r.outcome, &CommandUpdate::from(r)).await?.recorded();
        let reason = "the reply could not be delivered after repeated attempts".to_string();
        self.store.record_reply_failure(session, r.seq, &reason).await?;
        warn!(session = %r.session, command = %r.command_id, "response dead-lettered; reply recorded as failed");
        Ok(Responded { recorded, email: None, reply_error: Some(reason) })
    }
}

/// Rejections worth telling the sender about (they can act on them).
fn explain(r: &crate::Rejection) -> Option<&'static str> {
    use crate::Rejection as R;
    match r {
        R::SenderNotAllowed(_) => Some("your address is not on this project's list of allowed senders"),
        R::UnknownProject { .. } => Some("the address you wrote to does not belong to a project"),
        R::EmptyInstruction => Some("the message had no new text (only quoted history or a signature)"),
        R::InstructionTooLarge { .. } => Some("the instruction is too long (the limit is 100 KiB of text)"),
        R::SessionClosed => Some("this conversation was closed; start a new email to begin a new session"),
        R::ThreadMismatch => Some("this conversation belongs to another project"),
        _ => None,
    }
}

impl Orchestrator {
    /// DESIGN §2.1.2: a rejected email gets a polite reply — only when its `From` domain is
    /// authenticated (DMARC, aligned SPF or DKIM; never answer a possibly forged address,
    /// which would be backscatter) and only for reasons the sender can act on.
    /// Returns the raw reply when one was sent.
    pub async fn reply_to_rejection(
        &self,
        mailer: &Mailer,
        inbound: &switchyard_core::inbound::Inbound,
        rejection: &crate::Rejection,
    ) -> Result<Option<Vec<u8>>, RouteError> {
        let verified = switchyard_core::sender::authenticate(&inbound.sender, &inbound.evidence, false).is_ok();
        let (Some(reason), Some(address), true) = (explain(rejection), inbound.address.as_ref(), verified) else {
            return Ok(None);
        };
        let from = format!("{}.{}@{}", address.client, address.project, address.domain);
        let text = format!(
            "Switchyard could not accept your request: {reason}.\n\nNothing was changed. (reason code: {})\n",
            rejection.code()
        );
        let subject = re_subject(&inbound.subject);
        let mut builder = ours(MessageBuilder::new())
            .from(("Switchyard", from.as_str()))
            .to(inbound.sender.as_str())
            .subject(subject)
            .text_body(text);
        if let Some(m) = &inbound.message_id {
            builder = builder.in_reply_to(m.as_str()).references(m.as_str());
        }
        let raw = match builder.write_to_vec() {
            Ok(raw) => raw,
            Err(e) => {
                warn!(error = %e, "rejection reply could not be built");
                return Ok(None);
            }
        };
        mailer.send_raw(&from, &inbound.sender, raw.clone()).await?;
        info!(to = %inbound.sender, code = rejection.code(), "rejection reply sent");
        Ok(Some(raw))
    }
}
