//! Session and command items after routing: status updates, reads, cancel watermark.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use switchyard_core::ids::{ContainerId, SessionId};
use switchyard_core::messages::{Outcome, Response};
use switchyard_core::status::{command_sources, CommandEvent, CommandStatus, ErrorCode, SessionStatus};

use super::items::{CommandItem, SessionItem};
use super::keys::{command_sk, session_pk, META};
use super::{is_ccf, n, one_of, s, won, Store};
use crate::error::{classify, AwsError};

/// What recording an outcome found.
#[derive(Debug, Clone)]
pub enum Finished {
    /// This outcome is the command's one outcome now.
    Recorded,
    /// An earlier outcome stands: the command item as it is (read with the refused write,
    /// no extra call).
    Already(Box<CommandItem>),
    /// There is no such command.
    Missing,
}

impl Finished {
    /// Whether this call recorded the outcome.
    pub fn recorded(&self) -> bool {
        matches!(self, Self::Recorded)
    }
}

/// The final record of a command: what its item keeps of a [`Response`].
#[derive(Debug, Clone, Default)]
pub struct CommandUpdate {
    /// What the user was told first.
    pub summary: String,
    /// The commit of its work, if any.
    pub commit: Option<String>,
    /// Files the commit changed.
    pub files_changed: Vec<String>,
    /// Why it failed, as a code.
    pub error_code: Option<ErrorCode>,
    /// Why it failed, in words.
    pub error_message: Option<String>,
    /// Job start (epoch ms; 0 when no job ran, which keeps the stored start).
    pub started_ms: u64,
    /// Outcome time (epoch ms).
    pub finished_ms: u64,
    /// What the coding agent reported.
    pub agent: Option<switchyard_core::agent::AgentReport>,
}

impl From<&Response> for CommandUpdate {
    /// The one mapping of a response to the record of its outcome.
    fn from(r: &Response) -> Self {
        Self {
            summary: r.summary.clone(),
            commit: r.commit.clone(),
            files_changed: r.files_changed.clone(),
            error_code: r.error_code.clone(),
            error_message: r.error_message.clone(),
            started_ms: r.timings.started_ms,
            finished_ms: if r.timings.finished_ms > 0 { r.timings.finished_ms } else { crate::now_ms() },
            agent: r.agent.clone(),
        }
    }
}

type UpdateItem = aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

impl Store {
    /// An `UpdateItem` on a command item.
    fn update_command(&self, id: &SessionId, seq: u64) -> UpdateItem {
        self.client.update_item().table_name(&self.table).key("pk", s(session_pk(id))).key("sk", s(command_sk(seq)))
    }

    /// An `UpdateItem` on a command item for `event`, conditional on the item existing in a
    /// status core's transition table moves from. Returns the request and its condition
    /// (callers may add to it).
    fn move_command(&self, id: &SessionId, seq: u64, event: CommandEvent) -> (UpdateItem, String) {
        let from = command_sources(event);
        let (req, allowed) = one_of(
            self.update_command(id, seq).expression_attribute_names("#st", "status"),
            "#st",
            "from",
            from.iter().map(|st| Some(st.as_str())),
        );
        (req, format!("attribute_exists(pk) AND {allowed}"))
    }

    /// An `UpdateItem` on a session item.
    fn update_session(&self, id: &SessionId) -> UpdateItem {
        self.client.update_item().table_name(&self.table).key("pk", s(session_pk(id))).key("sk", s(META))
    }

    /// Reads a session.
    pub async fn get_session(&self, id: &SessionId) -> Result<Option<SessionItem>, AwsError> {
        self.get(&session_pk(id), META).await
    }

    /// Reads a command by seq.
    pub async fn get_command(&self, id: &SessionId, seq: u64) -> Result<Option<CommandItem>, AwsError> {
        self.get(&session_pk(id), &command_sk(seq)).await
    }

    /// All commands of a session, by seq.
    pub async fn list_commands(&self, id: &SessionId) -> Result<Vec<CommandItem>, AwsError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :cmd)")
            .expression_attribute_values(":pk", s(session_pk(id)))
            .expression_attribute_values(":cmd", s("CMD#"))
            .consistent_read(true);
        self.query_all(query).await
    }

    /// The commands of a session from `from_seq` on, by seq (a watcher that already holds
    /// the final ones before it reads only the rest).
    pub async fn list_commands_from(&self, id: &SessionId, from_seq: u64) -> Result<Vec<CommandItem>, AwsError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(session_pk(id)))
            .expression_attribute_values(":from", s(command_sk(from_seq)))
            .expression_attribute_values(":to", s(command_sk(9_999_999_999)))
            .consistent_read(true);
        self.query_all(query).await
    }

    /// Sessions served by a container (the `by-container` GSI).
    pub async fn sessions_of_container(&self, container: &ContainerId) -> Result<Vec<SessionItem>, AwsError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(super::GSI_BY_CONTAINER)
            .key_condition_expression("session_container = :c")
            .expression_attribute_values(":c", s(container.as_str()));
        self.query_all(query).await
    }

    /// Marks a command running (attempts + 1) unless it already has a final outcome.
    /// Returns the attempt number, or `None` if the command is already final.
    ///
    /// `run_by` (the launch token of the worker) and `receipt` (of the work message) let
    /// task-events release the message at once when that worker's task dies, instead of
    /// waiting out its visibility timeout.
    pub async fn start_command(
        &self,
        id: &SessionId,
        seq: u64,
        run_by: &str,
        receipt: &str,
    ) -> Result<Option<u32>, AwsError> {
        let (req, condition) = self.move_command(id, seq, CommandEvent::Start);
        let res = req
            .update_expression(
                "SET #st = :running, started_ms = :now, run_by = :by, receipt = :receipt ADD attempts :one",
            )
            .expression_attribute_values(":by", s(run_by))
            .expression_attribute_values(":receipt", s(receipt))
            .condition_expression(condition)
            .expression_attribute_values(":running", s(CommandStatus::Running.as_str()))
            .expression_attribute_values(":now", n(crate::now_ms()))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match res {
            Ok(out) => {
                let attempts = out
                    .attributes
                    .and_then(|a| a.get("attempts").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()))
                    .unwrap_or(1);
                Ok(Some(attempts))
            }
            Err(e) if is_ccf(&e) => Ok(None),
            Err(e) => Err(classify("dynamodb", e)),
        }
    }

    /// Claims the right to start `seq` in its session: never a seq lower than the highest
    /// already started (two routers may send seq 6 before seq 5; 5 must then not run after
    /// 6). A retry of the same seq is allowed. `Ok(false)`: a newer command has started.
    pub async fn claim_seq(&self, id: &SessionId, seq: u64) -> Result<bool, AwsError> {
        let res = self
            .update_session(id)
            .update_expression("SET started_seq = :seq")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(started_seq) OR started_seq <= :seq)")
            .expression_attribute_values(":seq", n(seq))
            .send()
            .await;
        won(res)
    }

    /// Puts a running command back to `queued` after a graceful stop (SIGTERM, a newer
    /// launch): the attempt does not count, and the checkpoint commit is remembered.
    pub async fn release_command(&self, id: &SessionId, seq: u64, checkpoint: Option<&str>) -> Result<(), AwsError> {
        let (req, condition) = self.move_command(id, seq, CommandEvent::Release);
        let mut req = req
            .condition_expression(condition)
            .expression_attribute_values(":queued", s(CommandStatus::Queued.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0));
        let mut set = "SET #st = :queued, attempts = if_not_exists(attempts, :zero) - :one".to_string();
        if let Some(c) = checkpoint {
            set.push_str(", checkpoint = :c");
            req = req.expression_attribute_values(":c", s(c));
        }
        match req.update_expression(set).send().await {
            Ok(_) => Ok(()),
            // Already final or queued: nothing to release.
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(classify("dynamodb", e)),
        }
    }

    /// Records the one final outcome of a command, unless it already has one.
    pub async fn finish_command(
        &self,
        id: &SessionId,
        seq: u64,
        outcome: Outcome,
        u: &CommandUpdate,
    ) -> Result<Finished, AwsError> {
        let (req, condition) = self.move_command(id, seq, CommandEvent::Finish(outcome));
        let mut req = req
            .condition_expression(condition)
            .expression_attribute_values(":outcome", s(CommandStatus::Final(outcome).as_str()))
            .expression_attribute_values(":summary", s(&u.summary))
            .expression_attribute_values(":finished", n(u.finished_ms))
            .expression_attribute_values(":files", AttributeValue::L(u.files_changed.iter().map(s).collect()));
        let mut set =
            "SET #st = :outcome, summary = :summary, finished_ms = :finished, files_changed = :files".to_string();
        if u.started_ms > 0 {
            set.push_str(", started_ms = :started");
            req = req.expression_attribute_values(":started", n(u.started_ms));
        }
        if let Some(agent) = &u.agent {
            // AGENT is a DynamoDB reserved word.
            set.push_str(", #agent = :agent");
            req = req
                .expression_attribute_names("#agent", "agent")
                .expression_attribute_values(":agent", AttributeValue::M(serde_dynamo::to_item(agent)?));
        }
        let code = u.error_code.as_ref().map(|c| c.as_str().to_string());
        for (name, value) in [("commit", &u.commit), ("error_code", &code), ("error_message", &u.error_message)] {
            if let Some(v) = value {
                // Names are aliased: COMMIT is a DynamoDB reserved word.
                set.push_str(&format!(", #{name} = :{name}"));
                req = req
                    .expression_attribute_names(format!("#{name}"), name)
                    .expression_attribute_values(format!(":{name}"), s(v));
            }
        }
        let res = req
            .update_expression(set)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(Finished::Recorded),
            Err(e) if is_ccf(&e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(c) => match c.item {
                    Some(item) => Ok(Finished::Already(Box::new(serde_dynamo::from_item(item)?))),
                    None => Ok(Finished::Missing),
                },
                _ => Ok(Finished::Missing),
            },
            Err(e) => Err(classify("dynamodb", e)),
        }
    }

    /// Commands of a container's sessions that are `running` (for releasing the messages of
    /// a task that died).
    pub async fn running_commands_of(&self, container: &ContainerId) -> Result<Vec<CommandItem>, AwsError> {
        self.commands_of(container, |c| c.status == CommandStatus::Running).await
    }

    /// The commands of a container's sessions that `keep` keeps.
    async fn commands_of(
        &self,
        container: &ContainerId,
        keep: impl Fn(&CommandItem) -> bool,
    ) -> Result<Vec<CommandItem>, AwsError> {
        let mut out = Vec::new();
        for session in self.sessions_of_container(container).await? {
            out.extend(self.list_commands(&session.session_id).await?.into_iter().filter(|c| keep(c)));
        }
        Ok(out)
    }

    /// The container's commands still `running`, or final since `since_ms`: those whose
    /// work message a worker may still hold (a worker killed between recording an outcome
    /// and deleting its message leaves it in flight, blocking its session's FIFO group).
    pub async fn recent_commands_of(
        &self,
        container: &ContainerId,
        since_ms: u64,
    ) -> Result<Vec<CommandItem>, AwsError> {
        self.commands_of(container, |c| {
            c.status == CommandStatus::Running || (c.status.outcome().is_some() && c.finished_ms >= Some(since_ms))
        })
        .await
    }

    /// Replaces the command's progress events with the latest ones (the worker keeps the
    /// window; one write per batch of events). Only while the command is `running`.
    pub async fn record_progress(
        &self,
        id: &SessionId,
        seq: u64,
        events: &[switchyard_core::agent::ProgressEvent],
    ) -> Result<(), AwsError> {
        let list =
            events.iter().map(|e| serde_dynamo::to_item(e).map(AttributeValue::M)).collect::<Result<Vec<_>, _>>()?;
        let res = self
            .update_command(id, seq)
            .update_expression("SET progress = :p")
            .condition_expression("#st = :running")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s(CommandStatus::Running.as_str()))
            .expression_attribute_values(":p", AttributeValue::L(list))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // Finished (or released) meanwhile: late progress is not recorded.
            Err(e) if is_ccf(&e) => Ok(()),
            Err(e) => Err(classify("dynamodb", e)),
        }
    }

    /// Records the coding agent's conversation on the session: its next command resumes it
    /// (`None` forgets it: the next command starts a new conversation).
    pub async fn set_conversation(&self, id: &SessionId, conversation: Option<&str>) -> Result<(), AwsError> {
        let req = self.update_session(id).condition_expression("attribute_exists(pk)");
        let req = match conversation {
            Some(c) => req.update_expression("SET agent_conversation = :c").expression_attribute_values(":c", s(c)),
            None => req.update_expression("REMOVE agent_conversation"),
        };
        req.send().await.map_err(|e| classify("dynamodb", e))?;
        Ok(())
    }

    /// Claims the one webhook of a command's outcome: `false` if it was delivered, failed,
    /// or is being sent. A claim left `sending` longer than `stale_ms` (its responder died
    /// mid-delivery) may be taken again, so a webhook is never lost to a crash; a receiver
    /// can drop the rare repeat by its `Switchyard-Delivery` id.
    pub async fn claim_webhook(&self, id: &SessionId, seq: u64, stale_ms: u64) -> Result<bool, AwsError> {
        let now = crate::now_ms();
        let res = self
            .update_command(id, seq)
            .update_expression("SET webhook = :w, webhook_claimed_ms = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(webhook) OR (webhook = :w AND webhook_claimed_ms < :stale))",
            )
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":stale", n(now.saturating_sub(stale_ms)))
            .expression_attribute_values(":w", s("sending"))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_ccf(&e) => Ok(false),
            Err(e) => Err(classify("dynamodb", e)),
        }
    }

    /// Records how the webhook went (`delivered (HTTP 200)`, `failed after 3 attempts: …`).
    pub async fn set_webhook_status(&self, id: &SessionId, seq: u64, status: &str) -> Result<(), AwsError> {
        self.update_command(id, seq)
            .update_expression("SET webhook = :w")
            .expression_attribute_values(":w", s(status))
            .send()
            .await
            .map_err(|e| classify("dynamodb", e))?;
        Ok(())
    }

    /// Raises the session's cancel watermark (never lowers it).
    pub async fn raise_cancel_watermark(&self, id: &SessionId, before_seq: u64) -> Result<(), AwsError> {
        let res = self
            .update_session(id)
            .update_expression("SET cancel_before_seq = :b")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(cancel_before_seq) OR cancel_before_seq < :b)",
            )
            .expression_attribute_values(":b", n(before_seq))
            .send()
            .await;
        // A lower or equal watermark already in place is as good.
        won(res).map(|_| ())
    }

    /// Sets a session's status.
    pub async fn set_session_status(&self, id: &SessionId, status: SessionStatus) -> Result<(), AwsError> {
        self.update_session(id)
            .update_expression("SET #st = :s")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .send()
            .await
            .map_err(|e| {
                if is_ccf(&e) {
                    AwsError::NotFound { what: format!("session {id}") }
                } else {
                    classify("dynamodb", e)
                }
            })?;
        Ok(())
    }
}

impl Store {
    /// Claims the one reply of a command (at most one email per command). `claimant` is
    /// unique per attempt to reply: an SDK retry of a claim that went through (its response
    /// lost) finds its own claim and still wins; any other claimant loses.
    pub async fn claim_reply(&self, id: &SessionId, seq: u64, claimant: &str) -> Result<bool, AwsError> {
        let res = self
            .update_command(id, seq)
            .update_expression("SET replied_ms = :now, reply_claim = :me")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(replied_ms) OR reply_claim = :me)")
            .expression_attribute_values(":me", s(claimant))
            .expression_attribute_values(":now", n(crate::now_ms()))
            .send()
            .await;
        won(res)
    }

    /// Releases a reply claim after a failed send, so a retry can send.
    pub async fn release_reply(&self, id: &SessionId, seq: u64) -> Result<(), AwsError> {
        self.update_command(id, seq)
            .update_expression("REMOVE replied_ms, reply_claim")
            .send()
            .await
            .map_err(|e| classify("dynamodb", e))?;
        Ok(())
    }

    /// Records that the reply of a command could not be delivered (a permanent SES error, or
    /// a response that dead-lettered). The reply claim stays taken: nothing retries it.
    pub async fn record_reply_failure(&self, id: &SessionId, seq: u64, reason: &str) -> Result<(), AwsError> {
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        self.update_command(id, seq)
            .update_expression("SET reply_error = :e, replied_ms = if_not_exists(replied_ms, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":e", s(reason))
            .expression_attribute_values(":now", n(crate::now_ms()))
            .send()
            .await
            .map_err(super::conflict("reply failure"))?;
        Ok(())
    }
}

/// Reasons and error messages stored on items are cut to this many characters.
pub(crate) const MAX_REASON_CHARS: usize = 1000;
