//! `reaper` Lambda (EventBridge schedule): one reaper pass per invocation.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::LambdaEvent;
use switchyard_orchestrator::reconcile::{ReapReport, ReaperSettings};
use switchyard_orchestrator::Orchestrator;
use tracing::info;

/// Built once per instance.
#[derive(Debug, Clone)]
pub struct State {
    /// Use cases.
    pub orchestrator: Orchestrator,
    /// Thresholds.
    pub settings: ReaperSettings,
}

/// The Lambda handler: returns what the pass did.
pub async fn handle(
    state: &State,
    _event: LambdaEvent<CloudWatchEvent>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let report: ReapReport = state.orchestrator.reap(&state.settings).await?;
    info!(?report, "reaper pass");
    Ok(serde_json::json!({
        "degraded": report.degraded,
        "failed": report.failed,
        "relaunched": report.relaunched,
        "retired": report.retired,
        "orphans_deleted": report.orphans_deleted,
    }))
}
