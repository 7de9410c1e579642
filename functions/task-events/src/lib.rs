//! `task-events` Lambda (EventBridge "ECS Task State Change"): a STOPPED task marks its
//! container stopped (only if the task is still the container's), and waiting work is
//! relaunched at once.
//!
//! `aws_lambda_events` has the EventBridge envelope but no type for the ECS detail, so
//! [`TaskStateChange`] names the few detail fields we read.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use switchyard_aws::launcher::env;
use switchyard_orchestrator::reconcile::Reconciled;
use switchyard_orchestrator::{Orchestrator, RouteError};
use tracing::{info, warn};

/// The fields of an ECS task-state-change `detail` that we use.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    /// Task ARN.
    pub task_arn: String,
    /// `RUNNING`, `STOPPED`, …
    pub last_status: String,
    /// Why it stopped.
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// The overrides given at RunTask (they carry our container id).
    #[serde(default)]
    pub overrides: Overrides,
}

/// Task overrides.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overrides {
    /// Per-container overrides.
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
}

/// One container's overrides.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct ContainerOverride {
    /// Environment.
    #[serde(default)]
    pub environment: Vec<NameValue>,
}

/// An environment variable.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct NameValue {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

impl TaskStateChange {
    /// Our container id, from the env override the launcher set.
    pub fn container_id(&self) -> Option<&str> {
        self.overrides
            .container_overrides
            .iter()
            .flat_map(|c| &c.environment)
            .find(|kv| kv.name == env::CONTAINER_ID)
            .map(|kv| kv.value.as_str())
    }
}

/// Built once per instance.
#[derive(Debug, Clone)]
pub struct State {
    /// Use cases.
    pub orchestrator: Orchestrator,
}

/// Applies one task-state change.
pub async fn apply(state: &State, change: &TaskStateChange) -> Result<Option<Reconciled>, RouteError> {
    if change.last_status != "STOPPED" {
        return Ok(None);
    }
    let Some(raw) = change.container_id() else {
        info!(task = %change.task_arn, "task is not a switchyard worker; ignored");
        return Ok(None);
    };
    let Ok(container) = switchyard_core::ids::ContainerId::parse(raw) else {
        warn!(task = %change.task_arn, container = raw, "task names an invalid container; ignored");
        return Ok(None);
    };
    let reason = change.stopped_reason.as_deref().unwrap_or("task stopped");
    let r = state.orchestrator.task_stopped(&container, &change.task_arn, reason).await?;
    info!(container = %container, task = %change.task_arn, marked = r.marked_stopped, relaunched = r.relaunched, "task stopped");
    Ok(Some(r))
}

/// The Lambda handler.
pub async fn handle(
    state: &State,
    event: LambdaEvent<CloudWatchEvent<TaskStateChange>>,
) -> Result<(), lambda_runtime::Error> {
    if let Some(detail) = &event.payload.detail {
        apply(state, detail).await?;
    }
    Ok(())
}
