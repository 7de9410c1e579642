//! Keeping container items true to the tasks: ECS task-state changes (task-events) and the
//! periodic reaper (health by heartbeat age, stuck launches, backlog without a task,
//! retirement of idle queue sets, orphaned queues).

use std::time::Duration;

use switchyard_aws::queues::Queues;
use switchyard_aws::store::ContainerItem;
use switchyard_core::container::{health, ContainerEvent, ContainerStatus, Health, MAX_LAUNCH_FAILURES};
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
    /// A pass starts no new container after this long (`SWITCHYARD_REAPER_BUDGET_SECS`), so
    /// it ends inside its Lambda timeout and before the next scheduled pass; the rest wait
    /// for that pass, which starts where this one stopped.
    pub budget: Duration,
}

impl Default for ReaperSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            start_timeout: Duration::from_secs(300),
            retire_after: Duration::from_secs(24 * 3600),
            orphan_age: Duration::from_secs(24 * 3600),
            budget: Duration::from_secs(40),
        }
    }
}

/// What one reaper pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// Containers newly judged degraded.
    pub degraded: Vec<ContainerId>,
    /// Containers judged failed (stopped).
    pub failed: Vec<ContainerId>,
    /// Containers relaunched for backlog.
    pub relaunched: Vec<ContainerId>,
    /// Containers whose queue set was retired.
    pub retired: Vec<ContainerId>,
    /// Orphaned queue URLs deleted.
    pub orphans_deleted: Vec<String>,
    /// Given-up containers whose newly waiting work was answered as failed.
    pub answered_failed: Vec<ContainerId>,
    /// Containers (or steps) that failed this pass; the others were still judged.
    pub errors: Vec<String>,
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
    /// task) and relaunch at once if work waits. A task that stops before its worker
    /// registered is a failed launch (image pull, network, configuration): it backs off.
    #[instrument(skip(self))]
    pub async fn task_stopped(&self, id: &ContainerId, task_arn: &str, reason: &str) -> Result<Reconciled, RouteError> {
        let id = id.clone();
        let before = self.store.get_container(&id).await?;
        let never_registered = before.as_ref().is_some_and(|i| {
            i.task_arn.as_deref() == Some(task_arn) && status_of(Some(i)) == Some(ContainerStatus::Starting)
        });
        let marked_stopped = match before.as_ref().and_then(|i| i.launch_token.as_deref()) {
            Some(token) if never_registered => {
                self.launch_failed(&id, token, &format!("task stopped before the worker started: {reason}")).await?;
                true
            }
            _ => self.store.mark_stopped_if_task(&id, task_arn, reason).await?,
        };
        if let Some(before) = before.as_ref().filter(|i| i.task_arn.as_deref() == Some(task_arn)) {
            self.release_orphans(&id, before).await?;
        }
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

    /// Makes the work messages a dead task held visible again at once: a crash then costs
    /// a relaunch, not a wait for the visibility timeout. Only commands started under that
    /// task's launch token (their receipt is the latest) that are still `running`, or that
    /// finished in the last 10 minutes: a task killed after recording an outcome but before
    /// deleting its message left it in flight, and the session's next work waits behind it
    /// (released, it is answered again with the recorded outcome and deleted; a message
    /// already deleted just refuses the release).
    async fn release_orphans(&self, id: &ContainerId, dead: &ContainerItem) -> Result<usize, RouteError> {
        let (Some(token), Some(urls)) = (dead.launch_token.as_deref(), urls_of(Some(dead))) else { return Ok(0) };
        let mut released = 0;
        let since = switchyard_aws::now_ms().saturating_sub(10 * 60 * 1000);
        for c in self.store.recent_commands_of(id, since).await? {
            let (Some(by), Some(receipt)) = (c.run_by.as_deref(), c.receipt.as_deref()) else { continue };
            if by != token {
                continue;
            }
            match self.queues.set_visibility(&urls.in_url, receipt, 0).await {
                Ok(()) => {
                    released += 1;
                    info!(container = %id, session = %c.session_id, command = %c.command_id, "work of a dead task released");
                }
                // Already received again, deleted, or expired: nothing to release.
                Err(e) => info!(container = %id, command = %c.command_id, error = %e, "orphan not released"),
            }
        }
        Ok(released)
    }

    /// One reaper pass. Each container is judged on its own: an error on one is logged and
    /// reported, and the pass goes on with the next.
    #[instrument(skip(self, settings))]
    pub async fn reap(&self, settings: &ReaperSettings) -> Result<ReapReport, RouteError> {
        let mut report = ReapReport::default();
        let started = tokio::time::Instant::now();
        let all = self.store.all_containers().await?;
        // Rotate the starting point with the clock so a pass cut short by its budget does
        // not starve the same containers every time.
        let offset = if all.is_empty() { 0 } else { (switchyard_aws::now_ms() / 60_000) as usize % all.len() };
        for (i, item) in all.iter().cycle().skip(offset).take(all.len()).enumerate() {
            if started.elapsed() > settings.budget {
                report.errors.push(format!("budget reached; {} containers left for the next pass", all.len() - i));
                break;
            }
            if let Err(e) = self.reap_one(item, settings, &mut report).await {
                warn!(container = %item.container_id, error = %e, "reaper: container skipped this pass");
                switchyard_aws::metrics::count("ReaperErrors");
                report.errors.push(format!("{}: {e}", item.container_id));
            }
        }
        match self.delete_orphans(&all, settings).await {
            Ok(deleted) => report.orphans_deleted = deleted,
            Err(e) => report.errors.push(format!("orphans: {e}")),
        }
        Ok(report)
    }

    async fn reap_one(
        &self,
        item: &ContainerItem,
        s: &ReaperSettings,
        report: &mut ReapReport,
    ) -> Result<(), RouteError> {
        let now = switchyard_aws::now_ms();
        let id = item.container_id.clone();
        let token = item.launch_token.as_deref();
        match status_of(Some(item)) {
            Some(ContainerStatus::Running | ContainerStatus::Idle) => {
                let age = now.saturating_sub(item.heartbeat_ms.unwrap_or(0));
                match health(age, s.heartbeat.as_millis() as u64) {
                    Health::Healthy => {}
                    Health::Degraded if item.health == Some(Health::Degraded) => {}
                    Health::Degraded => {
                        self.store.set_health(&id, Health::Degraded).await?;
                        report.degraded.push(id.clone());
                    }
                    Health::Failed => {
                        self.fail(&id, item, token, "heartbeat lost").await?;
                        self.release_orphans(&id, item).await?;
                        report.failed.push(id.clone());
                        if self.relaunch_after_fail(&id).await? {
                            report.relaunched.push(id.clone());
                        }
                    }
                }
            }
            Some(ContainerStatus::Starting) => {
                let age = now.saturating_sub(item.launched_ms.unwrap_or(0));
                if age > s.start_timeout.as_millis() as u64 {
                    if let Some(task) = &item.task_arn {
                        self.launcher.stop(task, "stuck starting").await?;
                    }
                    if let Some(t) = token {
                        self.launch_failed(&id, t, "the task did not start its worker in time").await?;
                    }
                    report.failed.push(id.clone());
                    if self.relaunch_after_fail(&id).await? {
                        report.relaunched.push(id.clone());
                    }
                }
            }
            Some(ContainerStatus::Failed)
                if item.launch_failures >= MAX_LAUNCH_FAILURES && item.next_launch_ms.is_some_and(|t| t > now) =>
            {
                // Given up: work that arrived since is answered, not left waiting an hour.
                let reason = item.last_reason.as_deref().unwrap_or("launches keep failing");
                if self.fail_waiting_work(item, reason).await? > 0 {
                    report.answered_failed.push(id.clone());
                }
            }
            Some(ContainerStatus::Stopped | ContainerStatus::Failed) => {
                if self.relaunch_if_backlog(&id, item).await? {
                    report.relaunched.push(id.clone());
                } else if status_of(Some(item)) == Some(ContainerStatus::Stopped)
                    && self.retirable(item, s, now).await?
                    && self.retire(&id, item).await?
                {
                    report.retired.push(id.clone());
                }
            }
            Some(ContainerStatus::Retiring) => {
                // A pass that died mid-retirement: finish it (or abandon it if work came).
                if self.retire(&id, item).await? {
                    report.retired.push(id.clone());
                }
            }
            Some(ContainerStatus::Stopping) | None => {}
        }
        Ok(())
    }

    /// Retires a stopped container's queue set: `retiring` first (no claim, no router can
    /// send after it), then the queues are checked again — any message, and the set is
    /// kept — then the mappings and queues are deleted and the next launch uses the next
    /// generation. Returns whether the set was deleted.
    async fn retire(&self, id: &ContainerId, item: &ContainerItem) -> Result<bool, RouteError> {
        let Some(u) = urls_of(Some(item)) else { return Ok(false) };
        if status_of(Some(item)) == Some(ContainerStatus::Stopped)
            && !self.store.begin_retire(id, item.generation).await?
        {
            return Ok(false);
        }
        for url in [&u.in_url, &u.out_url, &u.dlq_url] {
            match self.queues.depth(url).await {
                Ok((v, f)) if v + f > 0 => {
                    info!(container = %id, "work arrived during retirement; queue set kept");
                    self.store.end_retire(id, item.generation, false).await?;
                    return Ok(false);
                }
                Ok(_) => {}
                Err(e) if e.is_queue_missing() => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(m) = &self.responder_mappings {
            let mut arns = Vec::new();
            for url in [&u.out_url, &u.dlq_url] {
                match self.queues.arn(url).await {
                    Ok(arn) => arns.push(arn),
                    Err(e) if e.is_queue_missing() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            m.unsubscribe(&arns.iter().map(String::as_str).collect::<Vec<_>>()).await?;
        }
        for url in [&u.in_url, &u.out_url, &u.dlq_url] {
            self.queues.delete_queue(url).await?;
        }
        self.store.end_retire(id, item.generation, true).await?;
        Ok(true)
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
        self.store.set_health(id, Health::Failed).await?;
        match self.store.set_status(id, token, ContainerEvent::Failed, ContainerStatus::Failed, Some(reason)).await {
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
            if age >= s.orphan_age && self.unrecorded(&url).await? {
                self.queues.delete_queue(&url).await?;
                info!(queue = %url, "orphaned queue deleted");
                deleted.push(url);
            }
        }
        Ok(deleted)
    }

    /// Whether the queue at `url` is truly recorded by no container, read from the
    /// container item itself with a consistent read: the snapshot of all containers comes
    /// from eventually consistent, sparse index queries (an item whose queue set was recorded
    /// before any status is in none of them), and deleting a live set strands its container.
    /// The queue's own name says which container and generation it belongs to: it is an
    /// orphan only when that container's item does not exist or records a newer generation.
    async fn unrecorded(&self, url: &str) -> Result<bool, RouteError> {
        let name = url.rsplit('/').next().unwrap_or("");
        let Some((_, raw, generation)) = switchyard_core::ids::queue_parts(self.queues.prefix(), name) else {
            return Ok(false);
        };
        let Ok(id) = ContainerId::parse(raw) else { return Ok(false) };
        Ok(match self.store.get_container(&id).await? {
            None => true,
            Some(item) => item.generation > generation,
        })
    }
}

/// Whether a queue URL names a per-container queue under our prefix (not the inbound queue).
fn is_queue_set_url(q: &Queues, url: &str) -> bool {
    switchyard_core::ids::queue_kind_of(q.prefix(), url.rsplit('/').next().unwrap_or("")).is_some()
}
