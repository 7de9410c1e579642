//! The routing use case (DESIGN §2.1): one trigger in, at most one command out.
//!
//! Hot path (follow-up, running container): `BatchGetItem` (project, session, container)
//! → `TransactWriteItems` (idempotency, seq, command, aliases) → `SendMessageBatch`
//! (interrupt on `ctl.{session}`, work on `{session}`): 3 AWS calls.
//!
//! Once the command is written, the instruction is accepted: a failed launch is recorded
//! and left to the reaper (the queue holds the work), never reported as a failure that a
//! client would retry into a second command. A duplicate delivery re-sends the stored
//! command to the stored session's container, whatever the thread rules say today.

use serde::Serialize;
use switchyard_aws::queues::OutgoingMessage;
use switchyard_aws::store::{
    command_sk, idempotency_pk, msgid_pk, session_pk, AppendCommand, AppendOutcome, CommandItem, ContainerItem,
    IdempotencyItem, NewSession, SessionItem, META,
};
use switchyard_core::container::accepts_work;
use switchyard_core::ids::{CommandId, ContainerId, SessionId, ThreadId};
use switchyard_core::inbound::{Inbound, ThreadHint};
use switchyard_core::messages::{clean_instruction, encode, Control, InMessage, ReplyContext, Source, Work};
use switchyard_core::plan::{plan_route, validate, RoutePlan};
use switchyard_core::project::ProjectConfig;
use switchyard_core::status::{CommandStatus, SessionStatus};
use switchyard_core::thread::{decide, own_thread, ThreadRule};
use tracing::{info, instrument, warn};

use crate::containers::{status_of, ContainerKey};
use crate::{Orchestrator, Rejection, RouteError};

/// Appends retried on a concurrent seq bump before giving up.
const MAX_RACES: usize = 24;
/// How long a router waits for a retiring queue set to be replaced before it gives up
/// (retirement is a depth check and three deletes: seconds).
const RETIRING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the command is new or a duplicate delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStatus {
    /// A new command was appended and queued.
    New,
    /// The idempotency key was seen before: the first command is returned.
    Duplicate,
}

/// What routing did: the API's answer and the intake's log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteOutcome {
    /// New or duplicate (a client retry or a redelivered email gets the first command).
    pub status: RouteStatus,
    /// The session the command joined.
    pub session: SessionId,
    /// Whether this inbound created the session.
    pub new_session: bool,
    /// The command, for polling and cancelling.
    pub command_id: CommandId,
    /// Its place in the session.
    pub seq: u64,
    /// The conversation.
    pub thread: ThreadId,
    /// Which thread rule matched (`None` for API), for an operator reading why a reply
    /// joined or started a thread.
    pub rule: Option<ThreadRule>,
    /// The container serving the session.
    pub container: ContainerId,
    /// Whether this call launched the container.
    pub launched: bool,
    /// The session's branch.
    pub branch: String,
}

/// A command ready to be sent to a container.
struct Dispatch<'a> {
    container: ContainerId,
    item: Option<ContainerItem>,
    owner: String,
    project: &'a str,
    client: &'a str,
    work: Work,
}

impl Orchestrator {
    /// Routes one inbound. Rejections route nothing.
    #[instrument(skip(self, inbound), fields(source = ?inbound.source, client = %inbound.client, project = %inbound.project))]
    pub async fn route(&self, inbound: &Inbound) -> Result<RouteOutcome, RouteError> {
        let user = validate(inbound)?;
        let (mut thread, mut rule) = self.resolve_thread(inbound, &user).await?;
        let mut session_id = SessionId::new(&inbound.client, &thread);
        let own = ContainerId::new(&inbound.client, &inbound.project, &user);
        for attempt in 0..MAX_RACES {
            let snap = self.store.route_snapshot(&inbound.client, &inbound.project, &session_id, &own).await?;
            let facts = snap.session.as_ref().map(SessionItem::facts);
            // A session has one owner. Another sender's mail into it (an allowed colleague
            // replying to the thread, or anyone who learnt its address) starts a session of
            // their own instead: it must not run in the owner's container, resume the owner's
            // conversation, or get the owner's work in its reply.
            if inbound.source == Source::Email
                && rule != Some(ThreadRule::OwnSession)
                && facts.as_ref().is_some_and(|s| s.user != user)
            {
                let message_id = inbound.message_id.as_deref().unwrap_or_default();
                info!(session = %session_id, sender = %user, "another sender's mail to a session: a session of their own");
                thread = own_thread(&user, message_id);
                rule = Some(ThreadRule::OwnSession);
                session_id = SessionId::new(&inbound.client, &thread);
                continue;
            }
            if inbound.source == Source::Email && rule == Some(ThreadRule::OwnSession) {
                if let Some(s) = facts.as_ref().filter(|s| s.user != user) {
                    warn!(session = %session_id, owner = %s.user, sender = %user, "own thread taken by another owner");
                    return Err(Rejection::ThreadMismatch.into());
                }
            }
            let command_id = CommandId::new();
            let plan = plan_route(snap.project.as_ref(), facts.as_ref(), inbound, &user, &thread, &command_id)?;
            if plan.relaxed_sender {
                warn!(sender = %user, client = %inbound.client, project = %inbound.project, evidence = ?inbound.evidence,
                    "sender accepted by the project's relaxation (unaligned SPF/DKIM pass, no DMARC policy)");
                switchyard_aws::metrics::count("RelaxedSenderAuth");
            }
            let project = plan.project;
            let item = match plan.container == own {
                true => snap.container,
                false => self.store.get_container(&plan.container).await?,
            };
            let append = new_command(inbound, &user, &thread, &plan, command_id);
            match self.store.append_command(&append).await? {
                AppendOutcome::Raced => race_backoff(attempt).await,
                AppendOutcome::Duplicate(first) => return self.redeliver(&first, project, inbound, rule).await,
                AppendOutcome::Appended => {
                    let work = work_of(&append.command, &thread, project, reply_context(inbound, &user, &thread));
                    let (client, project) = (inbound.client.as_str(), inbound.project.as_str());
                    let container = plan.container.clone();
                    let d = Dispatch { container, item, owner: plan.owner.clone(), project, client, work };
                    let launched = self.dispatch(d).await?;
                    switchyard_aws::metrics::count("RoutedMessages");
                    info!(session = %session_id, command = %append.command.command_id, seq = plan.seq, launched, "routed");
                    return Ok(RouteOutcome {
                        status: RouteStatus::New,
                        session: session_id,
                        new_session: plan.new_session,
                        command_id: append.command.command_id,
                        seq: plan.seq,
                        branch: thread.branch(),
                        thread,
                        rule,
                        container: plan.container,
                        launched,
                    });
                }
            }
        }
        Err(RouteError::Contended(session_id))
    }

    /// Thread rules 1–4 for email; the session in the path (or a new one) for the API.
    async fn resolve_thread(
        &self,
        inbound: &Inbound,
        user: &str,
    ) -> Result<(ThreadId, Option<ThreadRule>), RouteError> {
        Ok(match &inbound.thread {
            ThreadHint::Email { token, candidates } => {
                let known = match token {
                    Some(_) => None,
                    None => self.store.lookup_alias(&inbound.client, candidates).await?,
                };
                let message_id = inbound.message_id.as_deref().unwrap_or_default();
                let d = decide(token.as_ref(), known.as_ref(), &inbound.subject, message_id);
                (d.thread, Some(d.rule))
            }
            ThreadHint::Api { session: Some(s) } if s.client() != inbound.client => {
                return Err(Rejection::SessionNotFound.into())
            }
            ThreadHint::Api { session: Some(s) } => (s.thread(), None),
            ThreadHint::Api { session: None } => {
                let seed = inbound
                    .idempotency_key
                    .as_ref()
                    .map_or_else(|| CommandId::new().to_string(), |k| format!("{user}\n{k}"));
                (ThreadId::from_seed(&seed), None)
            }
        })
    }

    /// A duplicate delivery: the stored command, re-sent (same dedup ids) to the stored
    /// session's container unless it already has its outcome.
    async fn redeliver(
        &self,
        first: &IdempotencyItem,
        project: &ProjectConfig,
        inbound: &Inbound,
        rule: Option<ThreadRule>,
    ) -> Result<RouteOutcome, RouteError> {
        switchyard_aws::metrics::count("DuplicateDeliveries");
        let session_id = first.session_id.clone();
        let (session, command) =
            (self.store.get_session(&session_id).await?, self.store.get_command(&session_id, first.seq).await?);
        let (Some(session), Some(command)) = (session, command) else {
            return Err(Rejection::SessionNotFound.into());
        };
        let thread = session_id.thread();
        let container = session.session_container.clone();
        let mut launched = false;
        if command.status.is_pending() {
            let reply = command.reply.clone().unwrap_or_else(|| reply_context(inbound, &command.sender, &thread));
            let work = work_of(&command, &thread, project, reply);
            let item = self.store.get_container(&container).await?;
            let d = Dispatch {
                container: container.clone(),
                item,
                owner: session.user.clone(),
                project: &session.project,
                client: &session.client,
                work,
            };
            launched = self.dispatch(d).await?;
        }
        info!(session = %session_id, command = %command.command_id, seq = command.seq, "duplicate delivery");
        Ok(RouteOutcome {
            status: RouteStatus::Duplicate,
            session: session_id,
            new_session: false,
            command_id: command.command_id,
            seq: command.seq,
            branch: thread.branch(),
            thread,
            rule,
            container,
            launched,
        })
    }

    /// Queue set, container, then one `SendMessageBatch` (interrupt + work). Returns
    /// whether this call launched the container. A failed launch after the send is
    /// recorded (the reaper retries it); the work stays accepted.
    async fn dispatch(&self, mut d: Dispatch<'_>) -> Result<bool, RouteError> {
        let deadline = tokio::time::Instant::now() + RETIRING_WAIT;
        while !accepts_work(status_of(d.item.as_ref())) {
            if tokio::time::Instant::now() >= deadline {
                return Err(RouteError::Retiring(d.container));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            d.item = self.store.get_container(&d.container).await?;
        }
        let (generation, urls) = self.ensure_queue_set(&d.container, d.item.as_ref()).await?;
        let key = ContainerKey { id: &d.container, client: d.client, project: d.project, user: &d.owner };
        let pending = match self.claim_container(&key, d.item.as_ref(), generation, &urls).await {
            Err(RouteError::Retiring(_)) => {
                // Retirement began between our read and our claim: read again and wait.
                d.item = self.store.get_container(&d.container).await?;
                return Box::pin(self.dispatch(d)).await;
            }
            other => other?,
        };
        self.queues.send_batch(&urls.in_url, &batch(&d.work)).await?;
        let Some(p) = pending else { return Ok(false) };
        match self.complete_launch(p).await {
            Ok(_) => Ok(true),
            Err(e) => {
                warn!(container = %d.container, error = %e, "launch failed after the work was queued; the reaper retries");
                Ok(false)
            }
        }
    }
}

/// Full-jitter exponential back-off after a lost append (5 ms … 320 ms ceiling): routers
/// racing on one busy session spread out instead of exhausting their retries together and
/// leaving the message to a redelivery a visibility timeout later.
async fn race_backoff(attempt: usize) {
    let ceiling_ms = 5u64 << attempt.min(6);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let jitter = u64::from(nanos) % ceiling_ms.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}

/// The transaction that appends the inbound's command (and creates the session if new),
/// as [`plan_route`] decided.
fn new_command(
    inbound: &Inbound,
    user: &str,
    thread: &ThreadId,
    plan: &RoutePlan,
    command_id: CommandId,
) -> AppendCommand {
    let client = inbound.client.as_str();
    let now = switchyard_aws::now_ms();
    let new_session = plan.new_session.then(|| NewSession {
        item: SessionItem {
            pk: session_pk(&plan.session),
            sk: META.into(),
            session_id: plan.session.clone(),
            client: client.into(),
            project: inbound.project.clone(),
            user: user.into(),
            session_container: plan.container.clone(),
            thread: thread.clone(),
            branch: thread.branch(),
            status: SessionStatus::Open,
            next_seq: 2,
            cancel_before_seq: 0,
            subject: ReplyContext { subject: inbound.subject.clone(), ..Default::default() }.bounded().subject,
            source: inbound.source,
            created_ms: now,
            last_activity_ms: now,
            agent_conversation: None,
            webhook_url: inbound.webhook.as_ref().map(|w| w.0.clone()),
            api_key: inbound.webhook.as_ref().map(|w| w.1.clone()),
        },
    });
    AppendCommand {
        new_session,
        session: plan.session.clone(),
        seq: plan.seq,
        command: CommandItem {
            pk: session_pk(&plan.session),
            sk: command_sk(plan.seq),
            command_id,
            session_id: plan.session.clone(),
            seq: plan.seq,
            instruction: clean_instruction(&inbound.instruction),
            status: CommandStatus::Queued,
            source: inbound.source,
            sender: user.into(),
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
            reply_error: None,
            run_by: None,
            receipt: None,
            reply: Some(reply_context(inbound, user, thread)),
            attachments: inbound.attachments.iter().take(switchyard_core::attachments::MAX_LISTED).cloned().collect(),
            instruction_fallback: inbound.instruction_fallback,
            agent: None,
            progress: Vec::new(),
            webhook: None,
        },
        idempotency_pk: idempotency_pk(&plan.idempotency.0, &plan.idempotency.1),
        aliases: inbound.message_id.iter().map(|m| msgid_pk(client, m)).collect(),
        thread: thread.clone(),
    }
}

/// The work message of a stored (or just written) command.
fn work_of(c: &CommandItem, thread: &ThreadId, project: &ProjectConfig, reply: ReplyContext) -> Work {
    Work {
        session: c.session_id.clone(),
        command_id: c.command_id.clone(),
        seq: c.seq,
        thread: thread.clone(),
        branch: thread.branch(),
        instruction: c.instruction.clone(),
        repo_url: project.repo_url.clone(),
        sender: c.sender.clone(),
        source: c.source,
        reply,
        attachments: c.attachments.clone(),
    }
}

/// Interrupt (its own FIFO group, so it is not held behind the running job) and work.
fn batch(work: &Work) -> [OutgoingMessage; 2] {
    let control = Control {
        session: work.session.clone(),
        before_seq: work.seq,
        reason: format!("superseded by command {}", work.seq),
        by_command: Some(work.command_id.clone()),
    };
    [
        OutgoingMessage {
            group: format!("ctl.{}", work.session),
            dedup: format!("i-{}", work.command_id),
            body: encode(&InMessage::Interrupt(control)),
        },
        OutgoingMessage {
            group: work.session.to_string(),
            dedup: work.command_id.to_string(),
            body: encode(&InMessage::Work(work.clone())),
        },
    ]
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
        attachments: inbound.attachment_notes.clone(),
        instruction_fallback: inbound.instruction_fallback,
    }
    .bounded()
}
