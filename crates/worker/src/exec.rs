//! One command's life inside the worker: watermark and seq checks, conditional start,
//! worktree, job, commit (+ push), the one final outcome, response to `out`, then delete
//! from `in`.
//!
//! The work message stays in flight (visibility extended) until the response is sent, so
//! a crash anywhere before that retries the command; the conditional start and finish on
//! the command item keep it to exactly one final outcome. A graceful stop (SIGTERM, a
//! newer launch) is not an outcome: the partial work is committed and pushed as a
//! checkpoint, the command goes back to `queued` and its message is released at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_aws::queues::{OutgoingMessage, Queues, Received};
use switchyard_aws::store::{CommandItem, CommandUpdate, Store};
use switchyard_aws::AwsError;
use switchyard_core::ids::SessionId;
use switchyard_core::messages::{bounded_files, bounded_text, encode, Outcome, Response, Timings, Work};
use switchyard_core::project::ProjectConfig;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::WorkerConfig;
use crate::git::Workspace;
use crate::job::{self, JobEnd, JobSpec};

/// Starts of one command (crashes mid-job) before it is failed instead of run again.
/// Graceful stops do not count.
pub const MAX_ATTEMPTS: u32 = 3;

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
    /// The container is stopping (SIGTERM, superseded launch): checkpoint and retry.
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
    /// Who jobs run as and what they see.
    pub identity: crate::identity::JobIdentity,
    /// The project's secrets, as job environment variables (only jobs get them).
    pub secrets: Vec<(String, String)>,
    /// Removes secret values from every text the worker stores or sends.
    pub redactor: switchyard_core::redact::Redactor,
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

/// How a command's turn in this worker ends.
#[derive(Debug)]
enum End {
    /// An outcome to report, then the message is deleted.
    Respond(Box<Response>),
    /// Nothing to report (already final): the message is deleted.
    Drop,
    /// A graceful stop: the message is released for another worker at once.
    Release,
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
    let Ok(session) = SessionId::parse(&work.session) else {
        warn!(message = %msg.id, session = %work.session, "work names an invalid session; leaving it to the DLQ");
        return done;
    };
    let extender =
        tokio::spawn(keep_invisible(sh.queues.clone(), sh.cfg.in_url.clone(), msg.receipt.clone(), sh.visibility));
    let result = run_command(&sh, &session, &work, &msg.receipt, interrupt, &reason).await;
    extender.abort();
    let (url, receipt) = (&sh.cfg.in_url, &msg.receipt);
    match result {
        Ok(End::Respond(response)) => {
            if let Err(e) = report(&sh, &response).await {
                // Not deleted: retried after the visibility timeout; the conditional
                // finish keeps the first outcome and the same dedup id its response.
                warn!(session = %work.session, command = %work.command_id, error = %e, "response not sent; will retry");
                return done;
            }
        }
        Ok(End::Drop) => {
            info!(session = %work.session, command = %work.command_id, "command already final; dropping duplicate")
        }
        Ok(End::Release) => {
            info!(session = %work.session, command = %work.command_id, "checkpoint saved; message released for retry");
            if let Err(e) = sh.queues.set_visibility(url, receipt, 0).await {
                warn!(session = %work.session, command = %work.command_id, error = %e, "release failed; retried after the visibility timeout");
            }
            return done;
        }
        Err(e) => {
            warn!(session = %work.session, command = %work.command_id, error = %e, "command not recorded; will retry");
            return done;
        }
    }
    if let Err(e) = sh.queues.delete(url, receipt).await {
        warn!(session = %work.session, command = %work.command_id, error = %e, "delete failed");
    }
    done
}

/// Extends a message's visibility at a third of it, for as long as its job runs.
async fn keep_invisible(queues: Queues, url: String, receipt: String, vis: Duration) {
    loop {
        tokio::time::sleep(vis / 3).await;
        if let Err(e) = queues.set_visibility(&url, &receipt, vis.as_secs() as i32).await {
            warn!(error = %e, "visibility extension failed");
        }
    }
}

/// Sends a final response to `out` (dedup id per command and outcome) and counts it.
async fn report(sh: &Shared, response: &Response) -> Result<(), AwsError> {
    let out = OutgoingMessage {
        group: response.session.clone(),
        dedup: format!("{}-{}", response.command_id, response.outcome.as_str()),
        body: encode(response),
    };
    sh.queues.send_batch(&sh.cfg.out_url, &[out]).await?;
    info!(session = %response.session, command = %response.command_id, outcome = response.outcome.as_str(), "command finished");
    let t = &response.timings;
    let kind = if response.outcome == Outcome::Interrupted { "Interrupts" } else { "CommandsFinished" };
    switchyard_aws::metrics::emit(&[
        switchyard_core::metrics::Metric {
            name: "JobDuration",
            value: t.finished_ms.saturating_sub(t.started_ms) as f64,
            unit: "Milliseconds",
        },
        switchyard_core::metrics::Metric { name: kind, value: 1.0, unit: "Count" },
    ]);
    Ok(())
}

/// An outcome that ends a command without running its job.
fn without_job(work: &Work, outcome: Outcome, code: Option<&str>, summary: &str) -> Response {
    let mut r = blank(work);
    r.outcome = outcome;
    r.error_code = code.map(String::from);
    r.summary = summary.into();
    r
}

fn blank(work: &Work) -> Response {
    Response {
        session: work.session.clone(),
        command_id: work.command_id.clone(),
        seq: work.seq,
        outcome: Outcome::Succeeded,
        summary: String::new(),
        files_changed: Vec::new(),
        commit: None,
        error_code: None,
        error_message: None,
        timings: Timings { received_ms: switchyard_aws::now_ms(), ..Timings::default() },
        reply: work.reply.clone(),
        superseded_by: None,
    }
}

async fn run_command(
    sh: &Shared,
    session: &SessionId,
    work: &Work,
    receipt: &str,
    interrupt: watch::Receiver<bool>,
    reason: &Mutex<Option<StopReason>>,
) -> Result<End, AwsError> {
    let item = sh.store.get_session(session).await?;
    if work.seq < item.as_ref().map_or(0, |s| s.cancel_before_seq) {
        return finish(sh, session, without_job(work, Outcome::Cancelled, None, "cancelled before it started")).await;
    }
    // A newer instruction of the session was already routed: this one would be interrupted
    // as soon as it started, so it is not started at all.
    if let Some(newest) = item.as_ref().map(|s| s.next_seq.saturating_sub(1)).filter(|n| *n > work.seq) {
        let summary = format!("skipped: superseded by a newer instruction (seq {newest}) before it started");
        return finish(sh, session, without_job(work, Outcome::Interrupted, None, &summary)).await;
    }
    if !sh.store.claim_seq(session, work.seq).await? {
        let summary = "skipped: a newer instruction of this session had already started";
        return finish(sh, session, without_job(work, Outcome::Interrupted, None, summary)).await;
    }
    let attempts = match sh.store.start_command(session, work.seq, &sh.cfg.launch_token, receipt).await? {
        // Already final: a retry after a crash between the outcome and the response.
        // Re-send the recorded outcome (same dedup id) so the user still hears back.
        None => return Ok(recorded(sh.store.get_command(session, work.seq).await?, blank(work))),
        Some(n) => n,
    };
    if attempts > MAX_ATTEMPTS {
        let summary = "the job stopped the container every time it ran; it was not run again";
        let mut r = without_job(work, Outcome::Failed, Some("crashed"), summary);
        r.error_message = Some(format!("{MAX_ATTEMPTS} attempts ended without an outcome"));
        return finish(sh, session, r).await;
    }
    let mut response = blank(work);
    response.timings.started_ms = switchyard_aws::now_ms();
    let dir = match sh.workspace.prepare(&work.session, &work.branch).await {
        Ok(d) => d,
        Err(e) => {
            return finish(sh, session, failed(response, "git", &e, "could not prepare the session's git worktree"))
                .await
        }
    };
    let instruction_file = match sh.workspace.write_instruction(&work.command_id, &work.instruction).await {
        Ok(f) => f,
        Err(e) => {
            return finish(sh, session, failed(response, "spawn", &e, "the instruction could not be handed to the job"))
                .await
        }
    };
    if let Err(e) = sh.identity.give(&dir).and_then(|()| sh.identity.give(&instruction_file)) {
        let _ = tokio::fs::remove_file(&instruction_file).await;
        return finish(sh, session, failed(response, "spawn", &e, "the worktree could not be handed to the job user"))
            .await;
    }
    let spec = JobSpec {
        identity: &sh.identity,
        secrets: &sh.secrets,
        command: &sh.project.job_command,
        instruction: &work.instruction,
        instruction_file: &instruction_file,
        session: &work.session,
        command_id: &work.command_id,
        branch: &work.branch,
        max_run: Duration::from_secs(sh.project.max_run_secs.max(1)),
        grace: sh.cfg.grace,
        max_output: sh.cfg.max_output_bytes,
    };
    let result = job::run(&spec, &dir, interrupt).await;
    let _ = tokio::fs::remove_file(&instruction_file).await;
    let result = match result {
        Ok(r) => r,
        Err(e) => return finish(sh, session, failed(response, "spawn", &e, "the job command could not start")).await,
    };
    let stop = reason.lock().ok().and_then(|r| r.clone());
    let Some(subject) = judge(&mut response, &result, stop.as_ref(), work, spec.max_run) else {
        return checkpoint(sh, session, work, &dir).await;
    };
    match sh.workspace.commit_all(&dir, &subject, &work.session, &work.command_id).await {
        Ok(Some(c)) => {
            response.commit = Some(c.sha);
            response.files_changed = bounded_files(c.files);
            if !work.repo_url.is_empty() {
                if let Err(e) = sh.workspace.push(&dir, &work.branch).await {
                    response = failed(response, "git_push", &e, "");
                }
            }
        }
        Ok(None) => {}
        Err(e) => response = failed(response, "git", &e, ""),
    }
    finish(sh, session, response).await
}

/// Sets the outcome of a job that ran and returns its commit subject; `None` for a
/// graceful stop (no outcome: checkpoint and retry).
fn judge(
    response: &mut Response,
    result: &job::JobResult,
    stop: Option<&StopReason>,
    work: &Work,
    max_run: Duration,
) -> Option<String> {
    let output = bounded_text(result.output.trim());
    let (outcome, code, summary, subject) = match (&result.end, stop) {
        (JobEnd::Interrupted, Some(StopReason::Shutdown)) => return None,
        (JobEnd::Exited(Some(0)), _) => (
            Outcome::Succeeded,
            None,
            output,
            format!("switchyard: {}", work.instruction.lines().next().unwrap_or("change")),
        ),
        (JobEnd::Interrupted, Some(StopReason::Cancelled)) => (
            Outcome::Cancelled,
            None,
            "cancelled while running; partial work committed".into(),
            format!("switchyard: cancelled {}", work.command_id),
        ),
        (JobEnd::Interrupted, s) => {
            let (by, why) = match s {
                Some(StopReason::Interrupted { by, reason }) => (by.clone(), reason.clone()),
                _ => (None, "interrupted".to_string()),
            };
            response.superseded_by = by;
            (
                Outcome::Interrupted,
                None,
                format!("interrupted: {why}; partial work committed"),
                format!("switchyard: interrupted {}", work.command_id),
            )
        }
        (JobEnd::TimedOut, _) => {
            response.error_message = Some(format!("job ran past {} s", max_run.as_secs()));
            (Outcome::Failed, Some("timeout"), output, format!("switchyard: timed out {}", work.command_id))
        }
        (JobEnd::Exited(code), _) => {
            response.error_message =
                Some(code.map_or("job was killed by a signal".into(), |c| format!("job exited with status {c}")));
            (Outcome::Failed, Some("job_exit"), output, format!("switchyard: failed {}", work.command_id))
        }
    };
    response.outcome = outcome;
    response.error_code = code.map(String::from);
    response.summary = summary;
    Some(subject)
}

/// A graceful stop: commit and push the partial work as a checkpoint, put the command
/// back to `queued` (the attempt does not count), release the message.
async fn checkpoint(sh: &Shared, session: &SessionId, work: &Work, dir: &std::path::Path) -> Result<End, AwsError> {
    let subject = format!("switchyard: checkpoint {} (container stopping)", work.command_id);
    let commit = match sh.workspace.commit_all(dir, &subject, &work.session, &work.command_id).await {
        Ok(c) => c.map(|c| c.sha),
        Err(e) => {
            warn!(session = %work.session, command = %work.command_id, error = %e, "checkpoint commit failed");
            None
        }
    };
    if commit.is_some() && !work.repo_url.is_empty() {
        if let Err(e) = sh.workspace.push(dir, &work.branch).await {
            warn!(session = %work.session, command = %work.command_id, error = %e, "checkpoint push failed");
        }
    }
    sh.store.release_command(session, work.seq, commit.as_deref()).await?;
    Ok(End::Release)
}

fn failed(mut r: Response, code: &str, e: &dyn std::fmt::Display, summary: &str) -> Response {
    r.outcome = Outcome::Failed;
    r.error_code = Some(code.into());
    r.error_message = Some(bounded_text(&e.to_string()));
    if !summary.is_empty() {
        r.summary = summary.into();
    }
    r
}

/// The response of a command whose outcome is already recorded.
fn recorded(c: Option<CommandItem>, mut response: Response) -> End {
    let Some(c) = c else { return End::Drop };
    response.outcome = match c.status.as_str() {
        "succeeded" => Outcome::Succeeded,
        "failed" => Outcome::Failed,
        "interrupted" => Outcome::Interrupted,
        "cancelled" => Outcome::Cancelled,
        _ => return End::Drop,
    };
    response.summary = c.summary.unwrap_or_default();
    response.commit = c.commit;
    response.files_changed = c.files_changed;
    response.error_code = c.error_code;
    response.error_message = c.error_message;
    response.timings.started_ms = c.started_ms.unwrap_or_default();
    response.timings.finished_ms = c.finished_ms.unwrap_or_default();
    End::Respond(Box::new(response))
}

async fn finish(sh: &Shared, session: &SessionId, mut response: Response) -> Result<End, AwsError> {
    response.timings.finished_ms = switchyard_aws::now_ms();
    // The one place an outcome's texts leave the worker: nothing secret goes with them.
    response.summary = sh.redactor.redact(&response.summary);
    response.error_message = response.error_message.map(|m| sh.redactor.redact(&m));
    let first =
        sh.store.finish_command(session, response.seq, response.outcome, &CommandUpdate::from(&response)).await?;
    Ok(if first { End::Respond(Box::new(response)) } else { End::Drop })
}
