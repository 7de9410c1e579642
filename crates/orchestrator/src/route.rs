//! The routing use case (DESIGN §2.1): one trigger in, at most one command out.
//!
//! Hot path (follow-up, running container): `BatchGetItem` (project, session, container)
//! → `TransactWriteItems` (idempotency, seq, command, aliases) → `SendMessageBatch`
//! (interrupt on `ctl.{session}`, work on `{session}`): 3 AWS calls.

use serde::Serialize;
use switchyard_aws::queues::OutgoingMessage;
use switchyard_aws::store::{
    command_sk, idempotency_pk, msgid_pk, session_pk, AppendCommand, AppendOutcome, CommandItem, NewSession,
    SessionItem, META,
};
use switchyard_core::ids::{new_command_id, normalise_user, validate_slug, ContainerId, SessionId, ThreadId, MAX_SLUG};
use switchyard_core::inbound::{Inbound, ThreadHint};
use switchyard_core::messages::{encode, Control, InMessage, ReplyContext, Source, Work};
use switchyard_core::project::AuthError;
use switchyard_core::thread::{decide, ThreadRule};
use tracing::{info, instrument};

use crate::containers::ContainerKey;
use crate::{Orchestrator, Rejection, RouteError};

/// Appends retried on a concurrent seq bump before giving up.
const MAX_RACES: usize = 16;

/// Whether the command is new or a duplicate delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStatus {
    /// A new command was appended and queued.
    New,
    /// The idempotency key was seen before: the first command is returned.
    Duplicate,
}

/// What routing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteOutcome {
    /// New or duplicate.
    pub status: RouteStatus,
    /// The session.
    pub session: String,
    /// Whether this inbound created the session.
    pub new_session: bool,
    /// The command id.
    pub command_id: String,
    /// The command's seq.
    pub seq: u64,
    /// The thread and the rule that found it.
    pub thread: String,
    /// Which thread rule matched (`None` for API).
    pub rule: Option<ThreadRule>,
    /// The container.
    pub container: String,
    /// Whether this call launched the container.
    pub launched: bool,
    /// The session's branch.
    pub branch: String,
}

fn invalid(e: impl std::fmt::Display) -> Rejection {
    Rejection::InvalidName(e.to_string())
}

impl Orchestrator {
    /// Routes one inbound. Rejections route nothing.
    #[instrument(skip(self, inbound), fields(source = ?inbound.source, client = %inbound.client, project = %inbound.project))]
    pub async fn route(&self, inbound: &Inbound) -> Result<RouteOutcome, RouteError> {
        validate_slug("client", &inbound.client, MAX_SLUG).map_err(invalid)?;
        validate_slug("project", &inbound.project, MAX_SLUG).map_err(invalid)?;
        let user = normalise_user(&inbound.sender).map_err(invalid)?;
        if inbound.instruction.trim().is_empty() {
            return Err(Rejection::EmptyInstruction.into());
        }
        let client = inbound.client.as_str();

        // Thread (rules 1–4 for email; path or new for API).
        let (thread, rule) = match &inbound.thread {
            ThreadHint::Email { token, candidates } => {
                let known = match token {
                    Some(_) => None,
                    None => self.store.lookup_alias(client, candidates).await?,
                };
                let message_id = inbound.message_id.as_deref().unwrap_or_default();
                let d = decide(token.as_ref(), known.as_ref(), &inbound.subject, message_id);
                (d.thread, Some(d.rule))
            }
            ThreadHint::Api { session: Some(s) } => {
                if s.client() != client {
                    return Err(Rejection::SessionNotFound.into());
                }
                (s.thread(), None)
            }
            ThreadHint::Api { session: None } => {
                let seed = inbound.idempotency_key.clone().map_or_else(new_command_id, |k| format!("{user}\n{k}"));
                (ThreadId::from_seed(&seed), None)
            }
        };
        let session_id = SessionId::new(client, &thread);
        let own_container = ContainerId::new(client, &inbound.project, &user);

        for _ in 0..MAX_RACES {
            let mut snap = self.store.route_snapshot(client, &inbound.project, &session_id, &own_container).await?;
            let project = snap
                .project
                .take()
                .ok_or_else(|| Rejection::UnknownProject { client: client.into(), project: inbound.project.clone() })?;
            if inbound.source == Source::Email {
                project.authorise_email(&user, inbound.spf, inbound.dkim).map_err(|e| match e {
                    AuthError::VerificationFailed(which) => Rejection::VerificationFailed(which),
                    AuthError::SenderNotAllowed(s) => Rejection::SenderNotAllowed(s),
                })?;
            }
            // An existing session keeps its container (its owner's), whoever writes.
            let (container_id, container) = match &snap.session {
                Some(s) if s.project != inbound.project => return Err(Rejection::ThreadMismatch.into()),
                Some(s) if inbound.source == Source::Api && s.user != user => {
                    return Err(Rejection::SessionNotFound.into())
                }
                Some(s) if s.status == "closed" => return Err(Rejection::SessionClosed.into()),
                Some(s) if s.session_container != own_container.as_str() => {
                    let id = ContainerId::from_stored(s.session_container.clone());
                    let item = self.store.get_container(&id).await?;
                    (id, item)
                }
                _ => (own_container.clone(), snap.container.take()),
            };
            if matches!(inbound.thread, ThreadHint::Api { session: Some(_) }) && snap.session.is_none() {
                return Err(Rejection::SessionNotFound.into());
            }
            let owner = snap.session.as_ref().map_or(user.clone(), |s| s.user.clone());
            let seq = snap.session.as_ref().map_or(1, |s| s.next_seq);
            let now = switchyard_aws::now_ms();
            let command_id = new_command_id();
            let idem_key = inbound.idempotency_key.clone().unwrap_or_else(|| command_id.clone());
            let idem_scope = match inbound.source {
                Source::Email => format!("email\n{client}"),
                Source::Api => format!("api\n{client}\n{user}"),
            };
            let new_session = snap.session.is_none().then(|| NewSession {
                item: SessionItem {
                    pk: session_pk(&session_id),
                    sk: META.into(),
                    session_id: session_id.to_string(),
                    client: client.into(),
                    project: inbound.project.clone(),
                    user: user.clone(),
                    session_container: container_id.to_string(),
                    thread: thread.to_string(),
                    branch: thread.branch(),
                    status: "open".into(),
                    next_seq: 2,
                    cancel_before_seq: 0,
                    subject: inbound.subject.clone(),
                    source: source_str(inbound.source).into(),
                    created_ms: now,
                    last_activity_ms: now,
                },
            });
            let aliases = inbound.message_id.iter().map(|m| msgid_pk(client, m)).collect();
            let append = AppendCommand {
                new_session,
                session: session_id.clone(),
                seq,
                command: CommandItem {
                    pk: session_pk(&session_id),
                    sk: command_sk(seq),
                    command_id: command_id.clone(),
                    session_id: session_id.to_string(),
                    seq,
                    instruction: inbound.instruction.clone(),
                    status: "queued".into(),
                    source: source_str(inbound.source).into(),
                    sender: user.clone(),
                    message_id: inbound.message_id.clone(),
                    created_ms: now,
                    started_ms: None,
                    finished_ms: None,
                    attempts: 0,
                    commit: None,
                    files_changed: Vec::new(),
                    summary: None,
                    error_code: None,
                    error_message: None,
                },
                idempotency_pk: idempotency_pk(&idem_scope, &idem_key),
                aliases,
                thread: thread.clone(),
            };
            let (status, command_id, seq) = match self.store.append_command(&append).await? {
                AppendOutcome::Raced => continue,
                AppendOutcome::Appended => (RouteStatus::New, command_id, seq),
                AppendOutcome::Duplicate(first) => (RouteStatus::Duplicate, first.command_id, first.seq),
            };
            let new_session = append.new_session.is_some() && status == RouteStatus::New;

            // Queue set and container; a duplicate re-sends with the same dedup ids (SQS
            // drops it within 5 min; the worker's conditional start drops it after).
            let (generation, urls) = self.ensure_queue_set(&container_id, container.as_ref()).await?;
            let key = ContainerKey { id: &container_id, client, project: &inbound.project, user: &owner };
            let pending = self.claim_container(&key, container.as_ref(), generation, &urls).await?;

            let work = Work {
                session: session_id.to_string(),
                command_id: command_id.clone(),
                seq,
                thread: thread.to_string(),
                branch: thread.branch(),
                instruction: inbound.instruction.clone(),
                repo_url: project.repo_url.clone(),
                sender: user.clone(),
                source: inbound.source,
                reply: reply_context(inbound, &user, &thread),
            };
            let control = Control {
                session: session_id.to_string(),
                before_seq: seq,
                reason: format!("superseded by command {seq}"),
                by_command: Some(command_id.clone()),
            };
            let batch = [
                OutgoingMessage {
                    group: format!("ctl.{session_id}"),
                    dedup: format!("i-{command_id}"),
                    body: encode(&InMessage::Interrupt(control)),
                },
                OutgoingMessage {
                    group: session_id.to_string(),
                    dedup: command_id.clone(),
                    body: encode(&InMessage::Work(work)),
                },
            ];
            self.queues.send_batch(&urls.in_url, &batch).await?;
            let launched = match pending {
                Some(p) => {
                    self.complete_launch(p).await?;
                    true
                }
                None => false,
            };
            info!(session = %session_id, command = %command_id, seq, ?status, launched, "routed");
            switchyard_aws::metrics::count(match status {
                RouteStatus::New => "RoutedMessages",
                RouteStatus::Duplicate => "DuplicateDeliveries",
            });
            return Ok(RouteOutcome {
                status,
                session: session_id.to_string(),
                new_session,
                command_id,
                seq,
                thread: thread.to_string(),
                rule,
                container: container_id.to_string(),
                launched,
                branch: thread.branch(),
            });
        }
        Err(RouteError::Contended(session_id.to_string()))
    }
}

fn source_str(source: Source) -> &'static str {
    match source {
        Source::Email => "email",
        Source::Api => "api",
    }
}

fn reply_context(inbound: &Inbound, user: &str, thread: &ThreadId) -> ReplyContext {
    let mut references = inbound.references.clone();
    if let Some(m) = &inbound.message_id {
        if !references.contains(m) {
            references.push(m.clone());
        }
    }
    ReplyContext {
        to: user.into(),
        subject: inbound.subject.clone(),
        message_id: inbound.message_id.clone(),
        references,
        reply_address: inbound.address.as_ref().map(|a| a.with_thread(thread)),
    }
}
