//! Ensure a queue set and a running (or starting) container: exactly one launch.

use switchyard_aws::launcher::LaunchSpec;
use switchyard_aws::store::{ClaimOutcome, ContainerItem, QueueUrls};
use switchyard_core::container::{needs_launch, ContainerStatus};
use switchyard_core::ids::ContainerId;
use tracing::{info, warn};

use crate::{Orchestrator, RouteError};

/// Parses a stored status.
pub fn status_of(item: Option<&ContainerItem>) -> Option<ContainerStatus> {
    let s = item?.container_status.as_deref()?;
    ContainerStatus::ALL.into_iter().find(|c| c.as_str() == s)
}

/// The recorded queue URLs of an item, if complete.
pub fn urls_of(item: Option<&ContainerItem>) -> Option<QueueUrls> {
    let i = item?;
    Some(QueueUrls { in_url: i.in_url.clone()?, out_url: i.out_url.clone()?, dlq_url: i.dlq_url.clone()? })
}

/// Who the container serves.
#[derive(Debug, Clone)]
pub struct ContainerKey<'a> {
    /// Id.
    pub id: &'a ContainerId,
    /// Client.
    pub client: &'a str,
    /// Project.
    pub project: &'a str,
    /// User.
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
            ClaimOutcome::Lost(_) => Ok(None),
            ClaimOutcome::Won(won) => Ok(Some(PendingLaunch {
                spec: LaunchSpec {
                    container_id: key.id.to_string(),
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

    /// Calls the launcher for a won claim and records the task; a failed launch marks the
    /// container `failed` (so the next message or the reaper claims it again).
    pub async fn complete_launch(&self, pending: PendingLaunch) -> Result<String, RouteError> {
        let id = ContainerId::from_stored(pending.spec.container_id.clone());
        match self.launcher.launch(&pending.spec).await {
            Ok(task) => {
                info!(container = %id, task = %task, "container launched");
                switchyard_aws::metrics::count("Launches");
                self.store.record_task(&id, &pending.spec.launch_token, &task).await?;
                Ok(task)
            }
            Err(e) => {
                warn!(container = %id, error = %e, "launch failed");
                let reason = e.to_string();
                self.store
                    .set_status(&id, Some(&pending.spec.launch_token), &[], ContainerStatus::Failed, Some(&reason))
                    .await?;
                Err(e.into())
            }
        }
    }
}
