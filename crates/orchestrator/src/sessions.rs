//! Session control and API keys: interrupt, cancel, close a session; create and check keys.

use switchyard_aws::queues::OutgoingMessage;
use switchyard_aws::store::{apikey_pk, ApiKeyItem, CommandItem, ContainerItem, SessionItem, META};
use switchyard_core::container::has_worker;
use switchyard_core::ids::{validate_slug, SessionId, MAX_SLUG};
use switchyard_core::messages::{encode, Close, Control, InMessage};
use switchyard_core::status::SessionStatus;

use crate::containers::{status_of, urls_of};
use crate::{Orchestrator, Rejection, RouteError};

/// Characters of a secret kept, in clear, as the key's name (`sy_` + 7).
pub const KEY_PREFIX_CHARS: usize = 19;

/// What to tell a session's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionControl {
    /// Interrupt whatever runs (partial work saved).
    Interrupt,
    /// Interrupt and drop queued work.
    Cancel,
    /// Close the session (worktree removed, branch kept).
    Close,
}

impl Orchestrator {
    /// Sends a control message for a session to its container's `in` queue.
    pub async fn control_session(&self, session: &SessionItem, what: SessionControl) -> Result<(), RouteError> {
        let id = &session.session_id;
        let item = self.store.get_container(&session.session_container).await?;
        let live = has_worker(status_of(item.as_ref()));
        let urls = match urls_of(item.as_ref()) {
            Some(urls) if live => urls,
            _ => {
                // No worker runs, so no job can be running: a message would only sit in
                // `in` as backlog and make task-events or the reaper launch a task for it.
                // A cancel's watermark (persisted) still drops queued work when a worker
                // next starts; a closed session refuses new work from now on.
                match what {
                    SessionControl::Interrupt => {}
                    SessionControl::Cancel => self.store.raise_cancel_watermark(id, session.next_seq).await?,
                    SessionControl::Close => self.store.set_session_status(id, SessionStatus::Closed).await?,
                }
                return Ok(());
            }
        };
        let control = Control {
            session: session.session_id.clone(),
            before_seq: session.next_seq,
            reason: match what {
                SessionControl::Interrupt => "interrupted on request".into(),
                SessionControl::Cancel => "cancelled on request".into(),
                SessionControl::Close => "session closed".into(),
            },
            by_command: None,
        };
        let nonce = ulid::Ulid::new().to_string();
        let msg = match what {
            SessionControl::Interrupt => OutgoingMessage {
                group: format!("ctl.{id}"),
                dedup: format!("int-{nonce}"),
                body: encode(&InMessage::Interrupt(control)),
            },
            SessionControl::Cancel => {
                self.store.raise_cancel_watermark(id, session.next_seq).await?;
                OutgoingMessage {
                    group: format!("ctl.{id}"),
                    dedup: format!("can-{nonce}"),
                    body: encode(&InMessage::Cancel(control)),
                }
            }
            SessionControl::Close => {
                self.store.set_session_status(id, SessionStatus::Closed).await?;
                // In the session's own group: it runs after the work already queued.
                OutgoingMessage {
                    group: id.to_string(),
                    dedup: format!("close-{nonce}"),
                    body: encode(&InMessage::Close(Close { session: id.clone() })),
                }
            }
        };
        self.queues.send_batch(&urls.in_url, &[msg]).await?;
        Ok(())
    }

    /// Creates an API key and returns its secret (shown once; only its hash is stored).
    pub async fn create_api_key(
        &self,
        client: &str,
        user: &str,
        projects: &[String],
        scopes: &[String],
    ) -> Result<String, RouteError> {
        validate_slug("client", client, MAX_SLUG).map_err(Rejection::from)?;
        for p in projects {
            validate_slug("project", p, MAX_SLUG).map_err(Rejection::from)?;
        }
        let user = switchyard_core::ids::normalise_user(user).map_err(Rejection::from)?;
        // 80 random bits each (a ULID's random part), the first of them the public name: a
        // key's revocation prefix names it alone (the time part of a ULID, which the old
        // prefix was, is shared by every key made in the same 32 s).
        let random = || {
            let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
            id[10..].to_string()
        };
        let secret = format!("sy_{}{}{}", random(), random(), random());
        let item = ApiKeyItem {
            pk: apikey_pk(&secret),
            sk: META.into(),
            client: client.into(),
            user,
            projects: projects.to_vec(),
            scopes: scopes.to_vec(),
            key_prefix: secret.chars().take(KEY_PREFIX_CHARS).collect(),
            created_ms: switchyard_aws::now_ms(),
            revoked_ms: None,
            webhook_secret: Some(format!("whsec_{}{}{}", random(), random(), random())),
        };
        self.store.put(&item).await?;
        Ok(secret)
    }

    /// The key behind a secret, if any and not revoked.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKeyItem>, RouteError> {
        if secret.len() < 10 || secret.len() > 200 {
            return Ok(None);
        }
        let key: Option<ApiKeyItem> = self.store.get(&apikey_pk(secret), META).await?;
        Ok(key.filter(|k| k.revoked_ms.is_none()))
    }

    /// The session `id` if the key's user owns it. A session of another user or client is
    /// reported exactly as a missing one (`None`): a caller learns nothing of it.
    pub async fn owned_session(&self, key: &ApiKeyItem, id: &str) -> Result<Option<SessionItem>, RouteError> {
        let Ok(id) = SessionId::parse(id) else { return Ok(None) };
        let s = self.store.get_session(&id).await?;
        // The key's project scope holds on every route, not only where work is sent: a key
        // of the same user scoped to another project sees (and stops) nothing of this one.
        Ok(s.filter(|s| s.client == key.client && s.user == key.user && key.projects.iter().any(|p| p == &s.project)))
    }

    /// A session's commands, by seq.
    pub async fn commands_of(&self, session: &SessionItem) -> Result<Vec<CommandItem>, RouteError> {
        Ok(self.store.list_commands(&session.session_id).await?)
    }

    /// Every container of a client (an operator's view).
    pub async fn containers_of(&self, client: &str) -> Result<Vec<ContainerItem>, RouteError> {
        let all = self.store.all_containers().await?;
        Ok(all.into_iter().filter(|c| c.client == client).collect())
    }

    /// Revokes the keys of `client` whose listed prefix is `prefix` (the first
    /// characters of the secret, shown when the key was created). Returns how many.
    pub async fn revoke_api_key(&self, client: &str, prefix: &str) -> Result<usize, RouteError> {
        validate_slug("client", client, MAX_SLUG).map_err(Rejection::from)?;
        let mut revoked = 0;
        for mut key in self.store.api_keys_by_prefix(client, prefix).await? {
            if key.revoked_ms.is_none() {
                key.revoked_ms = Some(switchyard_aws::now_ms());
                self.store.put(&key).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}
