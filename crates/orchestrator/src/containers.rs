//! Ensure a queue set and a running (or starting) container: exactly one launch.

use switchyard_aws::launcher::LaunchSpec;
use switchyard_aws::queues::OutgoingMessage;
use switchyard_aws::store::{ClaimOutcome, ContainerItem, QueueUrls};
use switchyard_core::container::{
    accepts_work, launch_retry, needs_launch, ContainerStatus, LaunchRetry, MAX_LAUNCH_FAILURES,
};
use switchyard_core::ids::ContainerId;
use switchyard_core::messages::{bounded_text, decode, encode, InMessage, Outcome, Response, Timings};
use switchyard_core::status::ErrorCode;
use tracing::{info, warn};

use crate::{Orchestrator, RouteError};

/// The status of a container item (`None`: no item, or never claimed).
pub fn status_of(item: Option<&ContainerItem>) -> Option<ContainerStatus> {
    item?.container_status
}

/// The recorded queue URLs of an item, if complete.
pub fn urls_of(item: Option<&ContainerItem>) -> Option<QueueUrls> {
    let i = item?;
    Some(QueueUrls { in_url: i.in_url.clone()?, out_url: i.out_url.clone()?, dlq_url: i.dlq_url.clone()? })
}

/// Who the container serves: what a launch writes on its item and passes to its task.
#[derive(Debug, Clone)]
pub struct ContainerKey<'a> {
    /// The container.
    pub id: &'a ContainerId,
    /// Its client (the task's secrets and API scope).
    pub client: &'a str,
    /// Its project (the repository and job the task runs).
    pub project: &'a str,
    /// Its user (normalised).
    pub user: &'a str,
}

/// A launch claim that was won and still has to call the launcher.
#[derive(Debug, Clone)]
pub struct PendingLaunch {
    /// What to launch.
    pub spec: LaunchSpec,
}

impl Orchestrator {
    /// Returns the queue URLs of the container, creating and recording the set if needed.
    pub async fn ensure_queue_set(
        &self,
        id: &ContainerId,
        item: Option<&ContainerItem>,
    ) -> Result<(u32, QueueUrls), RouteError> {
        if let (Some(urls), Some(i)) = (urls_of(item), item) {
            return Ok((i.generation, urls));
        }
        let generation = item.map_or(1, |i| i.generation.max(1));
        let urls = self.queues.ensure_queue_set(id, generation).await?;
        if let Some(m) = &self.responder_mappings {
            let (out, dlq) = (self.queues.arn(&urls.out_url).await?, self.queues.arn(&urls.dlq_url).await?);
            m.subscribe(&[&out, &dlq]).await?;
        }
        self.store.record_queue_set(id, generation, &urls).await?;
        Ok((generation, urls))
    }

    /// Claims a launch if the container needs one. Exactly one concurrent caller gets
    /// `Some`; it must then call [`Orchestrator::complete_launch`].
    pub async fn claim_container(
        &self,
        key: &ContainerKey<'_>,
        item: Option<&ContainerItem>,
        generation: u32,
        urls: &QueueUrls,
    ) -> Result<Option<PendingLaunch>, RouteError> {
        if !needs_launch(status_of(item)) {
            return Ok(None);
        }
        let token = ulid::Ulid::new().to_string();
        match self.store.claim_launch(key.id, key.client, key.project, key.user, &token).await? {
            ClaimOutcome::Lost(item) if !accepts_work(status_of(item.as_ref())) => {
                Err(RouteError::Retiring(key.id.clone()))
            }
            ClaimOutcome::Lost(_) => Ok(None),
            ClaimOutcome::Won(won) => Ok(Some(PendingLaunch {
                spec: LaunchSpec {
                    container_id: key.id.clone(),
                    client: key.client.into(),
                    project: key.project.into(),
                    user: key.user.into(),
                    launch_token: token,
                    generation: won.generation.max(generation),
                    table: self.store.table().into(),
                    in_url: urls.in_url.clone(),
                    out_url: urls.out_url.clone(),
                    dlq_url: urls.dlq_url.clone(),
                },
            })),
        }
    }

    /// Calls the launcher for a won claim and records the task; a failed launch is recorded
    /// with its back-off (see [`Orchestrator::launch_failed`]) and returned.
    pub async fn complete_launch(&self, pending: PendingLaunch) -> Result<String, RouteError> {
        let id = pending.spec.container_id.clone();
        match self.launcher.launch(&pending.spec).await {
            Ok(task) => {
                info!(container = %id, task = %task, "container launched");
                switchyard_aws::metrics::count("Launches");
                self.store.record_task(&id, &pending.spec.launch_token, &task).await?;
                Ok(task)
            }
            Err(e) => {
                warn!(container = %id, error = %e, "launch failed");
                self.launch_failed(&id, &pending.spec.launch_token, &e.to_string()).await?;
                Err(e.into())
            }
        }
    }

    /// A launch failed (RunTask refused, the task died before it registered, it never left
    /// `starting`): the container is `failed` with a back-off before the next claim; after
    /// [`MAX_LAUNCH_FAILURES`] in a row it gives up — the work waiting on its `in` queue is
    /// answered as failed through `out`, and `ContainersGaveUp` is counted (alarm).
    pub async fn launch_failed(&self, id: &ContainerId, token: &str, reason: &str) -> Result<(), RouteError> {
        let Some(item) = self.store.get_container(id).await? else { return Ok(()) };
        if item.launch_token.as_deref() != Some(token) {
            return Ok(());
        }
        let now = switchyard_aws::now_ms();
        // After a give-up's cool-down, a new message gets a fresh budget.
        let fresh = item.launch_failures >= MAX_LAUNCH_FAILURES && item.next_launch_ms.is_some_and(|t| t <= now);
        let failures = if fresh { 1 } else { item.launch_failures + 1 };
        let retry = launch_retry(failures);
        let wait = match retry {
            LaunchRetry::After(ms) | LaunchRetry::GiveUp(ms) => ms,
        };
        if !self.store.record_launch_failure(id, token, reason, failures, now + wait).await? {
            return Ok(());
        }
        switchyard_aws::metrics::count("LaunchFailures");
        if let LaunchRetry::GiveUp(_) = retry {
            warn!(container = %id, failures, reason, "launches keep failing; giving up and answering waiting work");
            switchyard_aws::metrics::count("ContainersGaveUp");
            self.fail_waiting_work(&item, reason).await?;
        }
        Ok(())
    }

    /// Answers every work message waiting on a given-up container's `in` queue as failed
    /// (a response on `out`, which the responder delivers) and removes it from `in`.
    pub async fn fail_waiting_work(&self, item: &ContainerItem, reason: &str) -> Result<usize, RouteError> {
        let Some(urls) = urls_of(Some(item)) else { return Ok(0) };
        let mut answered = 0;
        loop {
            let msgs = self.queues.receive(&urls.in_url, 10, 0, Some(60)).await?;
            if msgs.is_empty() {
                return Ok(answered);
            }
            for m in msgs {
                if let Ok(InMessage::Work(w)) = decode::<InMessage>(&m.body) {
                    let response = Response {
                        session: w.session.clone(),
                        command_id: w.command_id.clone(),
                        seq: w.seq,
                        outcome: Outcome::Failed,
                        summary: "Switchyard could not start a container for this project after repeated attempts; \
                                  nothing was changed. Send the instruction again later."
                            .into(),
                        files_changed: Vec::new(),
                        commit: None,
                        error_code: Some(ErrorCode::LaunchFailed),
                        error_message: Some(bounded_text(reason)),
                        timings: Timings::default(),
                        reply: w.reply,
                        superseded_by: None,
                        agent: None,
                    };
                    let out = OutgoingMessage {
                        group: w.session.to_string(),
                        dedup: format!("{}-launch-failed", w.command_id),
                        body: encode(&response),
                    };
                    self.queues.send_batch(&urls.out_url, &[out]).await?;
                    answered += 1;
                }
                self.queues.delete(&urls.in_url, &m.receipt).await?;
            }
        }
    }
}
