//! One command's life inside the worker: watermark check, conditional start, worktree,
//! job, commit (+ push), the one final outcome, response to `out`, then delete from `in`.
//!
//! The work message stays in flight (visibility extended) until the response is sent, so
//! a crash anywhere before that retries the command; the conditional start and finish on
//! the command item keep it to exactly one final outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_aws::queues::{OutgoingMessage, Queues, Received};
use switchyard_aws::store::{CommandUpdate, Store};
use switchyard_core::ids::SessionId;
use switchyard_core::messages::{encode, Outcome, Response, Timings, Work};
use switchyard_core::project::ProjectConfig;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::WorkerConfig;
use crate::git::Workspace;
use crate::job::{self, JobEnd, JobSpec};

/// Why a running job is being stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A newer instruction superseded it.
    Interrupted {
        /// The newer command, if known.
        by: Option<String>,
        /// Reason text.
        reason: String,
    },
    /// Cancelled by the user.
    Cancelled,
    /// The container is stopping (SIGTERM, superseded launch).
    Shutdown,
}

/// What every job task shares.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub cfg: WorkerConfig,
    /// The table.
    pub store: Store,
    /// SQS.
    pub queues: Queues,
    /// The project.
    pub project: ProjectConfig,
    /// The git workspace.
    pub workspace: Workspace,
    /// Per-receive visibility (extended at a third of it).
    pub visibility: Duration,
}

/// A finished job task.
#[derive(Debug)]
pub struct Done {
    /// Command id.
    pub command_id: String,
    /// Session.
    pub session: String,
}

/// Control handle of a running job.
#[derive(Debug)]
pub struct Handle {
    /// Session.
    pub session: String,
    /// Seq.
    pub seq: u64,
    /// Signals the job to stop.
    pub interrupt: watch::Sender<bool>,
    /// Why (set before signalling).
    pub reason: Arc<Mutex<Option<StopReason>>>,
}

impl Handle {
    /// Stops the job for `reason` (first reason wins).
    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut r) = self.reason.lock() {
            if r.is_none() {
                *r = Some(reason);
            }
        }
        let _ = self.interrupt.send(true);
    }
}

fn tail(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// Runs one work message to its end. Never panics; every failure becomes an outcome.
pub async fn execute(
    sh: Arc<Shared>,
    msg: Received,
    work: Work,
    interrupt: watch::Receiver<bool>,
    reason: Arc<Mutex<Option<StopReason>>>,
) -> Done {
    let done = Done { command_id: work.command_id.clone(), session: work.session.clone() };
    let received_ms = switchyard_aws::now_ms();
    let Ok(session) = SessionId::parse(&work.session) else {
        warn!(message = %msg.id, session = %work.session, "work names an invalid session; leaving it to the DLQ");
        return done;
    };
    // Keep the message invisible while we work on it.
    let extender = {
        let (queues, url, receipt, vis) =
            (sh.queues.clone(), sh.cfg.in_url.clone(), msg.receipt.clone(), sh.visibility);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(vis / 3).await;
                if let Err(e) = queues.set_visibility(&url, &receipt, vis.as_secs() as i32).await {
                    warn!(error = %e, "visibility extension failed");
                }
            }
        })
    };
    let result = run_command(&sh, &session, &work, received_ms, interrupt, &reason).await;
    extender.abort();
    match result {
        Ok(Some(response)) => {
            let out = OutgoingMessage {
                group: work.session.clone(),
                dedup: format!("{}-{}", work.command_id, response.outcome.as_str()),
                body: encode(&response),
            };
            if let Err(e) = sh.queues.send_batch(&sh.cfg.out_url, &[out]).await {
                // Not deleted: the command is retried after the visibility timeout and
                // its conditional finish keeps the first outcome.
                warn!(session = %work.session, command = %work.command_id, error = %e, "response not sent; will retry");
                return done;
            }
            info!(session = %work.session, command = %work.command_id, outcome = response.outcome.as_str(), "command finished");
            let t = &response.timings;
            switchyard_aws::metrics::emit(&[
                switchyard_core::metrics::Metric {
                    name: "JobDuration",
                    value: t.finished_ms.saturating_sub(t.started_ms) as f64,
                    unit: "Milliseconds",
                },
                switchyard_core::metrics::Metric {
                    name: if response.outcome == Outcome::Interrupted { "Interrupts" } else { "CommandsFinished" },
                    value: 1.0,
                    unit: "Count",
                },
            ]);
        }
        Ok(None) => {
            info!(session = %work.session, command = %work.command_id, "command already final; dropping duplicate")
        }
        Err(e) => {
            warn!(session = %work.session, command = %work.command_id, error = %e, "command not recorded; will retry");
            return done;
        }
    }
    if let Err(e) = sh.queues.delete(&sh.cfg.in_url, &msg.receipt).await {
        warn!(session = %work.session, command = %work.command_id, error = %e, "delete failed");
    }
    done
}

async fn run_command(
    sh: &Shared,
    session: &SessionId,
    work: &Work,
    received_ms: u64,
    interrupt: watch::Receiver<bool>,
    reason: &Mutex<Option<StopReason>>,
) -> Result<Option<Response>, switchyard_aws::AwsError> {
    let mut response = Response {
        session: work.session.clone(),
        command_id: work.command_id.clone(),
        seq: work.seq,
        outcome: Outcome::Succeeded,
        summary: String::new(),
        files_changed: Vec::new(),
        commit: None,
        error_code: None,
        error_message: None,
        timings: Timings { received_ms, ..Timings::default() },
        reply: work.reply.clone(),
        superseded_by: None,
    };
    let watermark = sh.store.get_session(session).await?.map_or(0, |s| s.cancel_before_seq);
    if work.seq < watermark {
        response.outcome = Outcome::Cancelled;
        response.summary = "cancelled before it started".into();
        return finish(sh, session, response).await;
    }
    if sh.store.start_command(session, work.seq).await?.is_none() {
        // Already final: a retry after a crash between the outcome and the response.
        // Re-send the recorded outcome (same dedup id) so the user still hears back.
        return Ok(sh.store.get_command(session, work.seq).await?.and_then(|c| recorded(c, response)));
    }
    response.timings.started_ms = switchyard_aws::now_ms();
    let dir = match sh.workspace.prepare(&work.session, &work.branch).await {
        Ok(d) => d,
        Err(e) => {
            response.outcome = Outcome::Failed;
            response.error_code = Some("git".into());
            response.error_message = Some(e.to_string());
            response.summary = "could not prepare the session's git worktree".into();
            return finish(sh, session, response).await;
        }
    };
    let spec = JobSpec {
        command: &sh.project.job_command,
        instruction: &work.instruction,
        session: &work.session,
        command_id: &work.command_id,
        branch: &work.branch,
        max_run: Duration::from_secs(sh.project.max_run_secs.max(1)),
        grace: sh.cfg.grace,
        max_output: sh.cfg.max_output_bytes,
    };
    let result = match job::run(&spec, &dir, interrupt).await {
        Ok(r) => r,
        Err(e) => {
            response.outcome = Outcome::Failed;
            response.error_code = Some("spawn".into());
            response.error_message = Some(e.to_string());
            response.summary = "the job command could not start".into();
            return finish(sh, session, response).await;
        }
    };
    let stop = reason.lock().ok().and_then(|r| r.clone());
    let subject = match (&result.end, &stop) {
        (JobEnd::Exited(Some(0)), _) => {
            response.summary = tail(result.output.trim(), 2000);
            format!("switchyard: {}", work.instruction.lines().next().unwrap_or("change"))
        }
        (JobEnd::Interrupted, Some(StopReason::Cancelled)) => {
            response.outcome = Outcome::Cancelled;
            response.summary = "cancelled while running; partial work committed".into();
            format!("switchyard: cancelled {}", work.command_id)
        }
        (JobEnd::Interrupted, s) => {
            response.outcome = Outcome::Interrupted;
            let (by, why) = match s {
                Some(StopReason::Interrupted { by, reason }) => (by.clone(), reason.clone()),
                _ => (None, "the container is stopping".to_string()),
            };
            response.superseded_by = by;
            response.summary = format!("interrupted: {why}; partial work committed");
            format!("switchyard: interrupted {}", work.command_id)
        }
        (JobEnd::TimedOut, _) => {
            response.outcome = Outcome::Failed;
            response.error_code = Some("timeout".into());
            response.error_message = Some(format!("job ran past {} s", spec.max_run.as_secs()));
            response.summary = tail(result.output.trim(), 2000);
            format!("switchyard: timed out {}", work.command_id)
        }
        (JobEnd::Exited(code), _) => {
            response.outcome = Outcome::Failed;
            response.error_code = Some("job_exit".into());
            response.error_message =
                Some(code.map_or("job was killed by a signal".into(), |c| format!("job exited with status {c}")));
            response.summary = tail(result.output.trim(), 2000);
            format!("switchyard: failed {}", work.command_id)
        }
    };
    match sh.workspace.commit_all(&dir, &subject, &work.session, &work.command_id).await {
        Ok(Some(c)) => {
            response.commit = Some(c.sha);
            response.files_changed = c.files;
            if !work.repo_url.is_empty() {
                if let Err(e) = sh.workspace.push(&dir, &work.branch).await {
                    response.outcome = Outcome::Failed;
                    response.error_code = Some("git_push".into());
                    response.error_message = Some(e.to_string());
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            response.outcome = Outcome::Failed;
            response.error_code = Some("git".into());
            response.error_message = Some(e.to_string());
        }
    }
    finish(sh, session, response).await
}

/// The response of a command whose outcome is already recorded.
fn recorded(c: switchyard_aws::store::CommandItem, mut response: Response) -> Option<Response> {
    response.outcome = match c.status.as_str() {
        "succeeded" => Outcome::Succeeded,
        "failed" => Outcome::Failed,
        "interrupted" => Outcome::Interrupted,
        "cancelled" => Outcome::Cancelled,
        _ => return None,
    };
    response.summary = c.summary.unwrap_or_default();
    response.commit = c.commit;
    response.files_changed = c.files_changed;
    response.error_code = c.error_code;
    response.error_message = c.error_message;
    response.timings.started_ms = c.started_ms.unwrap_or_default();
    response.timings.finished_ms = c.finished_ms.unwrap_or_default();
    Some(response)
}

async fn finish(
    sh: &Shared,
    session: &SessionId,
    mut response: Response,
) -> Result<Option<Response>, switchyard_aws::AwsError> {
    response.timings.finished_ms = switchyard_aws::now_ms();
    let update = CommandUpdate {
        summary: response.summary.clone(),
        commit: response.commit.clone(),
        files_changed: response.files_changed.clone(),
        error_code: response.error_code.clone(),
        error_message: response.error_message.clone(),
        started_ms: response.timings.started_ms,
        finished_ms: response.timings.finished_ms,
    };
    let first = sh.store.finish_command(session, response.seq, response.outcome, &update).await?;
    Ok(first.then_some(response))
}
