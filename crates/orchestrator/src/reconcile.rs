//! Keeping container items true to the tasks: ECS task-state changes (task-events) and the
//! periodic reaper (health by heartbeat age, stuck launches, backlog without a task,
//! retirement of idle queue sets, orphaned queues).

use std::time::Duration;

use switchyard_aws::queues::Queues;
use switchyard_aws::store::ContainerItem;
use switchyard_core::container::{health, ContainerStatus, Health};
use switchyard_core::ids::ContainerId;
use tracing::{info, instrument, warn};

use crate::containers::{status_of, urls_of, ContainerKey};
use crate::{Orchestrator, RouteError};

/// What a reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// The container was marked stopped.
    pub marked_stopped: bool,
    /// A new task was launched for waiting work.
    pub relaunched: bool,
}

/// Reaper thresholds.
#[derive(Debug, Clone)]
pub struct ReaperSettings {
    /// Worker heartbeat interval (degraded > 2×, failed > 4×).
    pub heartbeat: Duration,
    /// A `starting` container older than this is a stuck launch.
    pub start_timeout: Duration,
    /// A stopped container with empty queues is retired after this long.
    pub retire_after: Duration,
    /// Queues no container records are deleted after this age.
    pub orphan_age: Duration,
}

impl Default for ReaperSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            start_timeout: Duration::from_secs(300),
            retire_after: Duration::from_secs(24 * 3600),
            orphan_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// What one reaper pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// Containers newly judged degraded.
    pub degraded: Vec<String>,
    /// Containers judged failed (stopped).
    pub failed: Vec<String>,
    /// Containers relaunched for backlog.
    pub relaunched: Vec<String>,
    /// Containers whose queue set was retired.
    pub retired: Vec<String>,
    /// Orphaned queue URLs deleted.
    pub orphans_deleted: Vec<String>,
}

impl Orchestrator {
    /// Messages waiting (visible + in flight) on a container's `in` queue.
    async fn backlog(&self, item: &ContainerItem) -> Result<u64, RouteError> {
        match urls_of(Some(item)) {
            Some(u) => {
                let (visible, in_flight) = self.queues.depth(&u.in_url).await?;
                Ok(visible + in_flight)
            }
            None => Ok(0),
        }
    }

    /// Launches a stopped or failed container (`item`, as stored now) again if its `in`
    /// queue has work.
    async fn relaunch_if_backlog(&self, id: &ContainerId, item: &ContainerItem) -> Result<bool, RouteError> {
        if self.backlog(item).await? == 0 {
            return Ok(false);
        }
        let (generation, urls) = self.ensure_queue_set(id, Some(item)).await?;
        let key = ContainerKey { id, client: &item.client, project: &item.project, user: &item.user };
        match self.claim_container(&key, Some(item), generation, &urls).await? {
            Some(pending) => {
                self.complete_launch(pending).await?;
                info!(container = %id, "relaunched for waiting work");
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A task stopped: mark its container stopped (only if it is still the container's
    /// task) and relaunch at once if work waits.
    #[instrument(skip(self))]
    pub async fn task_stopped(&self, container: &str, task_arn: &str, reason: &str) -> Result<Reconciled, RouteError> {
        let id = ContainerId::from_stored(container.to_string());
        let marked_stopped = self.store.mark_stopped_if_task(&id, task_arn, reason).await?;
        let relaunched = match self.store.get_container(&id).await? {
            Some(item)
                if matches!(status_of(Some(&item)), Some(ContainerStatus::Stopped | ContainerStatus::Failed)) =>
            {
                self.relaunch_if_backlog(&id, &item).await?
            }
            _ => false,
        };
        Ok(Reconciled { marked_stopped, relaunched })
    }

    /// One reaper pass.
    #[instrument(skip(self, settings))]
    pub async fn reap(&self, settings: &ReaperSettings) -> Result<ReapReport, RouteError> {
        let mut report = ReapReport::default();
        let now = switchyard_aws::now_ms();
        let all = self.store.all_containers().await?;
        for item in &all {
            let id = ContainerId::from_stored(item.container_id.clone());
            let status = status_of(Some(item));
            let token = item.launch_token.clone();
            match status {
                Some(ContainerStatus::Running | ContainerStatus::Idle) => {
                    let age = now.saturating_sub(item.heartbeat_ms.unwrap_or(0));
                    match health(age, settings.heartbeat.as_millis() as u64) {
                        Health::Healthy => {}
                        Health::Degraded => {
                            if item.health.as_deref() != Some("degraded") {
                                self.store.set_health(&id, "degraded").await?;
                                report.degraded.push(id.to_string());
                            }
                        }
                        Health::Failed => {
                            self.fail(&id, item, token.as_deref(), "heartbeat lost").await?;
                            report.failed.push(id.to_string());
                            if self.relaunch_after_fail(&id).await? {
                                report.relaunched.push(id.to_string());
                            }
                        }
                    }
                }
                Some(ContainerStatus::Starting) => {
                    let age = now.saturating_sub(item.launched_ms.unwrap_or(0));
                    if age > settings.start_timeout.as_millis() as u64 {
                        self.fail(&id, item, token.as_deref(), "stuck starting").await?;
                        report.failed.push(id.to_string());
                        if self.relaunch_after_fail(&id).await? {
                            report.relaunched.push(id.to_string());
                        }
                    }
                }
                Some(ContainerStatus::Stopped | ContainerStatus::Failed) => {
                    if self.relaunch_if_backlog(&id, item).await? {
                        report.relaunched.push(id.to_string());
                    } else if status == Some(ContainerStatus::Stopped) && self.retirable(item, settings, now).await? {
                        if let Some(u) = urls_of(Some(item)) {
                            self.store.retire_queue_set(&id, item.generation).await?;
                            if let Some(m) = &self.responder_mappings {
                                let (out, dlq) =
                                    (self.queues.arn(&u.out_url).await?, self.queues.arn(&u.dlq_url).await?);
                                m.unsubscribe(&[&out, &dlq]).await?;
                            }
                            for url in [&u.in_url, &u.out_url, &u.dlq_url] {
                                self.queues.delete_queue(url).await?;
                            }
                            report.retired.push(id.to_string());
                        }
                    }
                }
                Some(ContainerStatus::Stopping) | None => {}
            }
        }
        report.orphans_deleted = self.delete_orphans(&all, settings).await?;
        Ok(report)
    }

    async fn fail(
        &self,
        id: &ContainerId,
        item: &ContainerItem,
        token: Option<&str>,
        reason: &str,
    ) -> Result<(), RouteError> {
        warn!(container = %id, reason, "container failed");
        switchyard_aws::metrics::count("ContainersFailed");
        self.store.set_health(id, "failed").await?;
        match self.store.set_status(id, token, &[], ContainerStatus::Failed, Some(reason)).await {
            Ok(()) | Err(switchyard_aws::AwsError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(task) = &item.task_arn {
            self.launcher.stop(task, reason).await?;
        }
        Ok(())
    }

    /// After [`Self::fail`] changed the item, relaunch from its new state.
    async fn relaunch_after_fail(&self, id: &ContainerId) -> Result<bool, RouteError> {
        match self.store.get_container(id).await? {
            Some(item) => self.relaunch_if_backlog(id, &item).await,
            None => Ok(false),
        }
    }

    async fn retirable(&self, item: &ContainerItem, s: &ReaperSettings, now: u64) -> Result<bool, RouteError> {
        let since = item.last_activity_ms.or(item.heartbeat_ms).or(item.launched_ms).unwrap_or(0);
        if now.saturating_sub(since) < s.retire_after.as_millis() as u64 {
            return Ok(false);
        }
        let Some(u) = urls_of(Some(item)) else { return Ok(false) };
        for url in [&u.in_url, &u.out_url, &u.dlq_url] {
            let (v, f) = self.queues.depth(url).await?;
            if v + f > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn delete_orphans(&self, all: &[ContainerItem], s: &ReaperSettings) -> Result<Vec<String>, RouteError> {
        let recorded: std::collections::HashSet<&str> = all
            .iter()
            .flat_map(|c| [c.in_url.as_deref(), c.out_url.as_deref(), c.dlq_url.as_deref()])
            .flatten()
            .collect();
        let mut deleted = Vec::new();
        for url in self.queues.list().await? {
            if recorded.contains(url.as_str()) || !is_queue_set_url(&self.queues, &url) {
                continue;
            }
            let age = self.queues.age(&url).await?;
            if age >= s.orphan_age {
                self.queues.delete_queue(&url).await?;
                info!(queue = %url, "orphaned queue deleted");
                deleted.push(url);
            }
        }
        Ok(deleted)
    }
}

/// Whether a queue URL names a per-container queue under our prefix (not the inbound queue).
fn is_queue_set_url(q: &Queues, url: &str) -> bool {
    let name = url.rsplit('/').next().unwrap_or("");
    ["in", "out", "dlq"].iter().any(|k| name.starts_with(&format!("{}-{k}-", q.prefix())))
}
