//! The routing reads and writes: one `BatchGetItem` snapshot, one `TransactWriteItems` append.

use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem, Update};
use switchyard_core::ids::{ContainerId, SessionId, ThreadId};
use switchyard_core::project::ProjectConfig;

use super::items::*;
use super::keys::*;
use super::{n, s, Item, Store};
use crate::error::{classify, AwsError};

/// What routing needs to know, read in one call.
#[derive(Debug, Clone, Default)]
pub struct RouteSnapshot {
    /// The project, if it exists.
    pub project: Option<ProjectConfig>,
    /// The session, if it exists.
    pub session: Option<SessionItem>,
    /// The container, if it exists.
    pub container: Option<ContainerItem>,
}

/// A session to create with its first command.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session item to put.
    pub item: SessionItem,
}

/// One command to append to a session.
#[derive(Debug, Clone)]
pub struct AppendCommand {
    /// Session to create (first command) — else the existing session's `next_seq` is bumped.
    pub new_session: Option<NewSession>,
    /// Session id.
    pub session: SessionId,
    /// The `next_seq` read in the snapshot (the command's seq).
    pub seq: u64,
    /// The command item.
    pub command: CommandItem,
    /// Idempotency key item key (`IDEMP#…`).
    pub idempotency_pk: String,
    /// Message-ID aliases to record for the thread (client-scoped keys).
    pub aliases: Vec<String>,
    /// Thread id (for aliases).
    pub thread: ThreadId,
}

/// Result of an append.
#[derive(Debug, Clone)]
pub enum AppendOutcome {
    /// The command was written with this seq.
    Appended,
    /// The idempotency key was used before: the first command.
    Duplicate(IdempotencyItem),
    /// The session changed under us (concurrent append): read again and retry.
    Raced,
}

const IDEMPOTENCY_TTL_S: u64 = 7 * 24 * 3600;
const ALIAS_TTL_S: u64 = 180 * 24 * 3600;

impl Store {
    /// Reads project, session and container in one `BatchGetItem` (strongly consistent).
    pub async fn route_snapshot(
        &self,
        client: &str,
        project: &str,
        session: &SessionId,
        container: &ContainerId,
    ) -> Result<RouteSnapshot, AwsError> {
        let keys = [
            (project_pk(client, project), META.to_string()),
            (session_pk(session), META.to_string()),
            (container_pk(container), META.to_string()),
        ];
        let items = self.batch_get(&keys).await?;
        let mut snap = RouteSnapshot::default();
        for item in items {
            let pk = match item.get("pk") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) => pk.clone(),
                _ => continue,
            };
            if pk == keys[0].0 {
                snap.project = Some(serde_dynamo::from_item::<_, ProjectItem>(item)?.config);
            } else if pk == keys[1].0 {
                snap.session = Some(serde_dynamo::from_item(item)?);
            } else if pk == keys[2].0 {
                snap.container = Some(serde_dynamo::from_item(item)?);
            }
        }
        Ok(snap)
    }

    /// Rule 2 of the thread rules: the thread of the first known Message-ID, in candidate order.
    pub async fn lookup_alias(&self, client: &str, message_ids: &[String]) -> Result<Option<ThreadId>, AwsError> {
        if message_ids.is_empty() {
            return Ok(None);
        }
        let keys: Vec<(String, String)> = message_ids.iter().map(|m| (msgid_pk(client, m), META.into())).collect();
        let items = self.batch_get(&keys).await?;
        let mut found: Vec<(String, MessageAliasItem)> = Vec::new();
        for item in items {
            let alias: MessageAliasItem = serde_dynamo::from_item(item)?;
            found.push((alias.pk.clone(), alias));
        }
        for (pk, _) in &keys {
            if let Some((_, alias)) = found.iter().find(|(p, _)| p == pk) {
                return Ok(Some(alias.thread.clone()));
            }
        }
        Ok(None)
    }

    /// Records Message-IDs (e.g. of our own replies) as aliases of a thread.
    pub async fn put_aliases(&self, client: &str, thread: &ThreadId, message_ids: &[String]) -> Result<(), AwsError> {
        let expires_at = crate::now_ms() / 1000 + ALIAS_TTL_S;
        for m in message_ids {
            let item =
                MessageAliasItem { pk: msgid_pk(client, m), sk: META.into(), thread: thread.clone(), expires_at };
            self.put(&item).await?;
        }
        Ok(())
    }

    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, AwsError> {
        const MAX_BATCH_GET_ROUNDS: u32 = 8;
        let mut ka = KeysAndAttributes::builder().consistent_read(true);
        let mut seen = std::collections::HashSet::new();
        for (pk, sk) in keys {
            if seen.insert(pk.clone()) {
                ka = ka.keys([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))].into_iter().collect());
            }
        }
        let mut request =
            Some(ka.build().map_err(|e| AwsError::InvalidRequest { what: "batch get keys", source: Box::new(e) })?);
        let mut out = Vec::new();
        let mut backoff = 10;
        let mut rounds = 0;
        while let Some(req) = request.take() {
            // Unprocessed keys mean the table is throttling: a few backed-off rounds
            // (10 ms … 500 ms, ~1.5 s in all), then the caller's retry decides, not an
            // unbounded loop inside a request with a deadline.
            rounds += 1;
            if rounds > MAX_BATCH_GET_ROUNDS {
                return Err(AwsError::Throttled {
                    service: "dynamodb",
                    source: format!("BatchGetItem left keys unprocessed after {MAX_BATCH_GET_ROUNDS} rounds").into(),
                });
            }
            let resp = self
                .client
                .batch_get_item()
                .request_items(&self.table, req)
                .send()
                .await
                .map_err(|e| classify("dynamodb", e))?;
            if let Some(mut r) = resp.responses {
                out.extend(r.remove(&self.table).unwrap_or_default());
            }
            request = resp.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys.is_empty());
            if request.is_some() {
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                backoff = (backoff * 2).min(500);
            }
        }
        Ok(out)
    }

    /// Appends a command in one transaction: idempotency claim, session create or seq bump
    /// (conditioned on the seq read), command put, Message-ID aliases.
    pub async fn append_command(&self, a: &AppendCommand) -> Result<AppendOutcome, AwsError> {
        // The whole request derives from `a` (no clock read here), so a repeat of the same
        // append is the same request: the ClientRequestToken then makes it idempotent.
        let now = a.command.created_ms;
        let idem = IdempotencyItem {
            pk: a.idempotency_pk.clone(),
            sk: META.into(),
            command_id: a.command.command_id.clone(),
            session_id: a.session.clone(),
            seq: a.seq,
            expires_at: now / 1000 + IDEMPOTENCY_TTL_S,
        };
        let mut items = vec![self.put_if_absent(&idem)?];
        let idem_index = 0;
        let session_pk = session_pk(&a.session);
        match &a.new_session {
            Some(ns) => {
                items.push(self.put_if_absent(&ns.item)?);
                let thread = ThreadItem {
                    pk: thread_pk(&ns.item.client, &a.thread),
                    sk: META.into(),
                    session_id: a.session.clone(),
                };
                items.push(self.put_if_absent(&thread)?);
            }
            None => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(&session_pk))
                    .key("sk", s(META))
                    .update_expression("SET next_seq = :next, last_activity_ms = :now")
                    .condition_expression("next_seq = :seq")
                    .expression_attribute_values(":next", n(a.seq + 1))
                    .expression_attribute_values(":seq", n(a.seq))
                    .expression_attribute_values(":now", n(now))
                    .build()
                    .map_err(|e| AwsError::InvalidRequest { what: "session update", source: Box::new(e) })?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
        }
        items.push(self.put_if_absent(&a.command)?);
        let expires_at = now / 1000 + ALIAS_TTL_S;
        for alias in &a.aliases {
            let item = MessageAliasItem { pk: alias.clone(), sk: META.into(), thread: a.thread.clone(), expires_at };
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(serde_dynamo::to_item(&item)?))
                .build()
                .map_err(|e| AwsError::InvalidRequest { what: "alias put", source: Box::new(e) })?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // The command id (a fresh ULID per attempt, 26 ≤ 36 chars) makes an SDK retry of a
        // transaction that did commit succeed again instead of reporting our own first
        // write as a duplicate or a race (idempotent for 10 minutes).
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(a.command.command_id.as_str())
            .send()
            .await;
        match result {
            Ok(_) => Ok(AppendOutcome::Appended),
            Err(e) => {
                let e = e.into_service_error();
                let reasons: Vec<String> = match &e {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect(),
                    _ => return Err(classify("dynamodb", e)),
                };
                if reasons.get(idem_index).map(String::as_str) == Some("ConditionalCheckFailed") {
                    return match self.get::<IdempotencyItem>(&a.idempotency_pk, META).await? {
                        Some(first) => Ok(AppendOutcome::Duplicate(first)),
                        // Expired between the two calls: treat as a race and retry.
                        None => Ok(AppendOutcome::Raced),
                    };
                }
                if reasons.iter().any(|r| r == "ConditionalCheckFailed" || r == "TransactionConflict") {
                    return Ok(AppendOutcome::Raced);
                }
                Err(AwsError::TransactionCancelled { reasons })
            }
        }
    }

    fn put_if_absent<T: serde::Serialize>(&self, item: &T) -> Result<TransactWriteItem, AwsError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| AwsError::InvalidRequest { what: "conditional put", source: Box::new(e) })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}
