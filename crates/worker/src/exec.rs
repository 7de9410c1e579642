//! One command's life inside the worker: watermark and seq checks, conditional start,
//! worktree, job, commit (+ push), the one final outcome, response to `out`, then delete
//! from `in`.
//!
//! The work message stays in flight (visibility extended) until the response is sent, so
//! a crash anywhere before that retries the command; the conditional start and finish on
//! the command item keep it to exactly one final outcome. A graceful stop (SIGTERM, a
//! newer launch) is not an outcome: the partial work is committed and pushed as a
//! checkpoint, the command goes back to `queued` and its message is released at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_aws::queues::{OutgoingMessage, Queues, Received};
use switchyard_aws::store::{CommandItem, CommandUpdate, Finished, Store};
use switchyard_aws::AwsError;
use switchyard_core::agent::AgentEvent;
use switchyard_core::ids::{CommandId, SessionId};
use switchyard_core::messages::{bounded_files, bounded_text, encode, Outcome, Response, Timings, Work};
pub use switchyard_core::plan::StopReason;
use switchyard_core::plan::{outcome_of, JobVerdict};
use switchyard_core::project::ProjectConfig;
use switchyard_core::status::ErrorCode;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::WorkerConfig;
use crate::git::Workspace;
use crate::identity::JobIdentity;
use crate::job::{self, JobSpec};

/// Starts of one command (crashes mid-job) before it is failed instead of run again.
/// Graceful stops do not count.
pub const MAX_ATTEMPTS: u32 = 3;

/// What every job task shares.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub cfg: WorkerConfig,
    /// The table.
    pub store: Store,
    /// SQS.
    pub queues: Queues,
    /// S3 (the email's attachments).
    pub s3: aws_sdk_s3::Client,
    /// The project.
    pub project: ProjectConfig,
    /// The git workspace.
    pub workspace: Workspace,
    /// Visibility of a running job's message (set when it starts, extended at a third of
    /// it). Messages not yet started have the agent's short `HELD_VISIBILITY`.
    pub visibility: Duration,
    /// The job users: each running job leases a uid of its own (see [`crate::identity`]).
    pub users: crate::identity::JobUsers,
    /// Resource limits of every job.
    pub limits: crate::identity::JobLimits,
    /// The project's secrets, as job environment variables (only jobs get them).
    pub secrets: Vec<(String, String)>,
    /// Removes secret values from every text the worker stores or sends.
    pub redactor: switchyard_core::redact::Redactor,
}

/// A finished job task.
#[derive(Debug)]
pub struct Done {
    /// The command whose turn ended (its slot is free).
    pub command_id: CommandId,
    /// Its session (a close waiting for it may proceed).
    pub session: SessionId,
}

/// Control handle of a running job.
#[derive(Debug)]
pub struct Handle {
    /// The job's session: controls apply per session.
    pub session: SessionId,
    /// The job's seq: a control stops only jobs older than its `before_seq`.
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
    let mut extender = None;
    let result = run_command(&sh, &work, &msg.receipt, interrupt, &reason, &mut extender).await;
    if let Some(extender) = extender {
        extender.abort();
    }
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
            info!(session = %work.session, command = %work.command_id, "command already answered; dropping duplicate")
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

/// Sets the full visibility on a message about to run: three tries, a second apart (each
/// with the SDK's own retries), inside the short visibility it was received with.
async fn take_message(sh: &Shared, work: &Work, receipt: &str) -> bool {
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        match sh.queues.set_visibility(&sh.cfg.in_url, receipt, sh.visibility.as_secs() as i32).await {
            Ok(()) => return true,
            Err(e) => warn!(session = %work.session, command = %work.command_id, error = %e, "visibility not extended"),
        }
    }
    warn!(session = %work.session, command = %work.command_id, "visibility not extended; released, not run");
    false
}

/// Extends a message's visibility at a third of it for as long as its job runs (the full
/// visibility was set when it started); after a failure, tries again within seconds.
async fn keep_invisible(queues: Queues, url: String, receipt: String, vis: Duration) {
    let mut wait = vis / 3;
    loop {
        tokio::time::sleep(wait).await;
        wait = match queues.set_visibility(&url, &receipt, vis.as_secs() as i32).await {
            Ok(()) => vis / 3,
            Err(e) => {
                warn!(error = %e, "visibility extension failed; retrying");
                (vis / 3).min(Duration::from_secs(3))
            }
        };
    }
}

/// Sends a final response to `out` (dedup id per command and outcome) and counts it.
async fn report(sh: &Shared, response: &Response) -> Result<(), AwsError> {
    let out = OutgoingMessage {
        group: response.session.to_string(),
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

/// A response with no outcome yet: the command's ids, its reply context, received now.
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
        agent: None,
    }
}

/// An outcome that ends a command without running its job.
fn without_job(work: &Work, outcome: Outcome, code: Option<ErrorCode>, summary: &str) -> Response {
    Response { outcome, error_code: code, summary: summary.into(), ..blank(work) }
}

/// Why a job could not be run or its work not saved.
struct Failure {
    code: ErrorCode,
    error: String,
    summary: &'static str,
}

impl Failure {
    fn new(code: ErrorCode, e: &dyn std::fmt::Display, summary: &'static str) -> Self {
        Self { code, error: e.to_string(), summary }
    }

    /// The job's processes survived its end (its uid is retired): nothing of it is saved.
    fn unstopped(e: &std::io::Error) -> Self {
        Self::new(ErrorCode::Spawn, e, "the job's processes could not be stopped; its work was not saved")
    }

    /// `response` failed for this reason (its summary kept when this one has none).
    fn applied(self, mut r: Response) -> Response {
        r.outcome = Outcome::Failed;
        r.error_code = Some(self.code);
        r.error_message = Some(bounded_text(&self.error));
        if !self.summary.is_empty() {
            r.summary = self.summary.into();
        }
        r
    }
}

/// One command's turn: the checks that may end it before its job, the job, then its
/// outcome (or a checkpoint). Each step is I/O around a decision made in core.
async fn run_command(
    sh: &Shared,
    work: &Work,
    receipt: &str,
    interrupt: watch::Receiver<bool>,
    reason: &Mutex<Option<StopReason>>,
    extender: &mut Option<tokio::task::JoinHandle<()>>,
) -> Result<End, AwsError> {
    let conversation = match before_job(sh, work, receipt).await? {
        Before::End(end) => return Ok(end),
        Before::Run { conversation } => conversation,
    };
    // The message still has the short visibility it was received with. Only now that
    // `start_command` has recorded its receipt (task-events releases it if this worker
    // dies) does it get the full one, awaited: no job runs without it (it could reappear
    // mid-job and be taken by another worker), and no extension is in flight at the end.
    if !take_message(sh, work, receipt).await {
        sh.store.release_command(&work.session, work.seq, None).await?;
        return Ok(End::Release);
    }
    let (queues, url) = (sh.queues.clone(), sh.cfg.in_url.clone());
    *extender = Some(tokio::spawn(keep_invisible(queues, url, receipt.to_string(), sh.visibility)));
    let mut response = blank(work);
    response.timings.started_ms = switchyard_aws::now_ms();
    // A uid no other job on this host runs as, for as long as this command holds it.
    let lease = match sh.users.lease().await {
        Ok(lease) => lease,
        Err(e) => {
            let f = Failure::new(ErrorCode::Spawn, &e, "no isolated job user was free to run the job");
            return finish(sh, work, f.applied(response)).await;
        }
    };
    let who = lease.identity();
    let (dir, instruction_file, attachments) = match prepare(sh, who, work).await {
        Ok(ready) => ready,
        Err(f) => {
            // The tree may have been handed over before the failure: back to root first.
            if let Err(e) = reclaim(sh, who, work).await {
                warn!(session = %work.session, command = %work.command_id, error = %e, "job trees not taken back");
                lease.retire();
            }
            return finish(sh, work, f.applied(response)).await;
        }
    };
    let agent = sh.project.agent.clone();
    let mut resume = conversation;
    let (result, report) = loop {
        let run = run_job(
            sh,
            who,
            work,
            &dir,
            &instruction_file,
            &attachments,
            agent.as_ref(),
            resume.as_deref(),
            interrupt.clone(),
        )
        .await;
        match run {
            // The conversation to resume is gone (a new task's empty disk): once more, new.
            // Only when the CLI said so and did nothing (no model turn, exited by itself).
            (Ok(j), Some(r))
                if r.resume_missing && r.turns == 0 && matches!(j.end, job::JobEnd::Exited(_)) && resume.is_some() =>
            {
                info!(session = %work.session, "the agent's conversation is gone; starting a new one");
                if let Err(e) = sh.store.set_conversation(&work.session, None).await {
                    warn!(session = %work.session, error = %e, "conversation not forgotten");
                }
                resume = None;
                // The first run's processes end, and its trees come back to root, before the
                // worktree is handed over again (a hook could have left a process behind).
                let again = match reclaim(sh, who, work).await {
                    Ok(()) => {
                        let (who, dir) = (who.clone(), dir.clone());
                        blocking(move || who.give(&dir)).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = again {
                    lease.retire();
                    return finish(sh, work, Failure::unstopped(&e).applied(response)).await;
                }
            }
            other => break other,
        }
    };
    let _ = tokio::fs::remove_file(&instruction_file).await;
    // No process of the job survives it, and its trees are root's again before root works
    // in them (commit, push, the next command's attachments). If that fails, nothing of
    // the job is saved: a process of the job could still change what root reads.
    if let Err(e) = reclaim(sh, who, work).await {
        lease.retire();
        return finish(sh, work, Failure::unstopped(&e).applied(response)).await;
    }
    let (mut result, report) = match (result, report) {
        (Ok(r), report) => (r, report),
        (Err(e), _) => {
            let f = Failure::new(ErrorCode::Spawn, &e, "the job could not start");
            return finish(sh, work, f.applied(response)).await;
        }
    };
    // The CLI stopped itself at the cost cap: the same limit as ours, said the same way.
    if report.as_ref().is_some_and(|r| r.budget_exhausted) && matches!(result.end, job::JobEnd::Exited(_)) {
        result.end = job::JobEnd::Limit(switchyard_core::agent::Limit::Cost);
    }
    // A CLI that reports an error but exits 0 (an API error it gave up on) did not succeed.
    if report.as_ref().is_some_and(|r| r.is_error && r.kind != "aider") && result.end == job::JobEnd::Exited(Some(0)) {
        result.end = job::JobEnd::Exited(Some(1));
    }
    let stop = reason.lock().ok().and_then(|r| r.clone());
    let max_run = sh.project.run_limit_secs();
    let verdict = outcome_of(result.end, stop.as_ref(), &work.command_id, &work.instruction, max_run);
    let JobVerdict::Final { outcome, code, note, error, superseded_by, subject } = verdict else {
        return checkpoint(sh, work, &dir).await;
    };
    response.outcome = outcome;
    response.error_code = code;
    response.error_message = error;
    response.superseded_by = superseded_by;
    // What the user reads: the agent's own words, else the output's tail; a limit says so
    // first.
    let words = match &report {
        Some(r) if !r.summary.trim().is_empty() => r.summary.trim().to_string(),
        // An agent's raw output is its protocol (JSON lines), not words for the user.
        Some(r) => format!("The agent ({}) ended without a summary; its output is in the worker's log.", r.kind),
        // The output kept is a tail: one that was cut may start inside a secret.
        None if result.output.len() >= sh.cfg.max_output_bytes.max(1024) => {
            bounded_text(&sh.redactor.redact_tail(result.output.trim()))
        }
        None => bounded_text(&sh.redactor.redact(result.output.trim())),
    };
    response.summary = match (note, result.end) {
        // The note first, whole; the words' tail after it.
        (Some(note), job::JobEnd::Limit(_)) if !words.is_empty() => {
            let room = switchyard_core::messages::limits::MAX_TEXT_CHARS.saturating_sub(note.chars().count() + 2);
            let tail: String = words.chars().skip(words.chars().count().saturating_sub(room)).collect();
            format!("{note}\n\n{tail}")
        }
        (Some(note), _) => note,
        (None, _) => words,
    };
    response.agent = report;
    let response = save_work(sh, work, &dir, &subject, response).await;
    finish(sh, work, response).await
}

type JobRun = (Result<job::JobResult, job::SpawnError>, Option<switchyard_core::agent::AgentReport>);

/// Runs the job once: the project's command, or its coding agent (resuming `resume`, the
/// session's conversation), recording the agent's progress as it goes.
#[allow(clippy::too_many_arguments)] // the pieces `run_command` has prepared
async fn run_job(
    sh: &Shared,
    who: &JobIdentity,
    work: &Work,
    dir: &Path,
    instruction_file: &Path,
    attachments: &[String],
    agent: Option<&switchyard_core::agent::AgentConfig>,
    conversation: Option<&str>,
    interrupt: watch::Receiver<bool>,
) -> JobRun {
    let mut spec = JobSpec {
        identity: who,
        limits: Some(&sh.limits),
        secrets: &sh.secrets,
        program: job::Program::Shell(&sh.project.job_command),
        extra_env: &[],
        inactivity: sh.project.budgets.inactivity_secs.map(Duration::from_secs),
        instruction: &work.instruction,
        instruction_file,
        attachments,
        session: work.session.as_str(),
        command_id: work.command_id.as_str(),
        branch: &work.branch,
        max_run: Duration::from_secs(sh.project.run_limit_secs()),
        grace: sh.cfg.grace,
        max_output: sh.cfg.max_output_bytes,
    };
    let Some(agent) = agent else {
        return (job::run(&spec, dir, interrupt, &mut |_| false).await, None);
    };
    let Some(program) = crate::coding::find_program(agent.kind.program()) else {
        let e = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the {} CLI ({}) is not installed in this worker", agent.kind.as_str(), agent.kind.program()),
        );
        return (Err(job::SpawnError(e)), None);
    };
    let state = crate::coding::state_dir(&sh.cfg.workspace, &work.session);
    let given = {
        let (state, who, users) = (state.clone(), who.clone(), sh.users.clone());
        blocking(move || {
            crate::coding::make_state_parent(&state)?;
            users.take_back_orphan(&state, &who)?;
            std::fs::create_dir_all(&state)?;
            who.give(&state)
        })
        .await
    };
    if let Err(e) = given {
        return (Err(job::SpawnError(e)), None);
    }
    let state_str = state.to_string_lossy().into_owned();
    let input = switchyard_core::agent::RunInput {
        instruction: &work.instruction,
        resume: conversation,
        state_dir: &state_str,
        attachments,
        max_cost_usd: sh.project.budgets.max_cost_usd,
    };
    let invocation = agent.invocation(&input);
    let program = program.to_string_lossy().into_owned();
    spec.program = job::Program::Exec(&program, &invocation.args);
    spec.extra_env = &invocation.env;
    let mut reader = agent.reader(conversation, &state_str, sh.redactor.clone());
    // A command's events keep counting across its runs (a retry, a resumed attempt), so an
    // SSE client's `Last-Event-ID` never skips the new ones.
    let earlier = match sh.store.get_command(&work.session, work.seq).await {
        Ok(c) => c.map(|c| c.progress).unwrap_or_default(),
        Err(e) => {
            warn!(session = %work.session, error = %e, "earlier progress not read");
            Vec::new()
        }
    };
    let recorder = crate::coding::Recorder::start(sh.store.clone(), work.session.clone(), work.seq, earlier);
    let cap = sh.project.budgets.max_cost_usd;
    let mut saved: Option<String> = conversation.map(str::to_string);
    let mut on_line = |line: &str| {
        let mut stop = false;
        for event in reader.line(line) {
            match event {
                AgentEvent::Progress { kind, text } => recorder.push(kind, text),
                AgentEvent::Cost(c) => {
                    recorder.push("cost", format!("cost so far: ${c:.4}"));
                    stop |= cap.is_some_and(|cap| c > cap);
                }
                // Saved at once: an interrupted or stopped command's conversation is
                // resumed by the next one too.
                AgentEvent::Conversation(id) if saved.as_deref() != Some(id.as_str()) => {
                    saved = Some(id.clone());
                    let (store, session) = (sh.store.clone(), work.session.clone());
                    tokio::spawn(async move {
                        if let Err(e) = store.set_conversation(&session, Some(&id)).await {
                            warn!(session = %session, error = %e, "conversation not saved");
                        }
                    });
                }
                AgentEvent::Conversation(_) | AgentEvent::Final(_) => {}
            }
        }
        stop
    };
    let result = job::run(&spec, dir, interrupt, &mut on_line).await;
    recorder.finish().await;
    let tail = result.as_ref().map(|r| r.output.clone()).unwrap_or_default();
    let mut report = reader.finish(&tail);
    report.job_ms = result.as_ref().map_or(0, |r| r.elapsed.as_millis() as u64);
    (result, Some(report))
}

/// What the checks before a job decided.
enum Before {
    /// The command's turn ends without its job.
    End(End),
    /// Run it (the command is now `running`), resuming the session's agent conversation, if
    /// any (read with the session the checks read anyway).
    Run {
        /// The agent conversation to resume.
        conversation: Option<String>,
    },
}

/// The checks before a job runs: cancelled, superseded, already started by a newer seq,
/// already final, attempts exhausted.
async fn before_job(sh: &Shared, work: &Work, receipt: &str) -> Result<Before, AwsError> {
    let session = &work.session;
    let item = sh.store.get_session(session).await?;
    if work.seq < item.as_ref().map_or(0, |s| s.cancel_before_seq) {
        let r = without_job(work, Outcome::Cancelled, None, "cancelled before it started");
        return finish(sh, work, r).await.map(Before::End);
    }
    // A newer instruction of the session was already routed: this one would be interrupted
    // as soon as it started, so it is not started at all.
    if let Some(newest) = item.as_ref().map(|s| s.next_seq.saturating_sub(1)).filter(|n| *n > work.seq) {
        let summary = format!("skipped: superseded by a newer instruction (seq {newest}) before it started");
        return finish(sh, work, without_job(work, Outcome::Interrupted, None, &summary)).await.map(Before::End);
    }
    if !sh.store.claim_seq(session, work.seq).await? {
        let summary = "skipped: a newer instruction of this session had already started";
        return finish(sh, work, without_job(work, Outcome::Interrupted, None, summary)).await.map(Before::End);
    }
    match sh.store.start_command(session, work.seq, &sh.cfg.launch_token, receipt).await? {
        // Already final: a retry after a crash between the outcome and the response.
        None => recorded(sh, work).await.map(Before::End),
        Some(n) if n > MAX_ATTEMPTS => {
            let summary = "the job stopped the container every time it ran; it was not run again";
            let mut r = without_job(work, Outcome::Failed, Some(ErrorCode::Crashed), summary);
            r.error_message = Some(format!("{MAX_ATTEMPTS} attempts ended without an outcome"));
            finish(sh, work, r).await.map(Before::End)
        }
        Some(_) => Ok(Before::Run { conversation: item.and_then(|s| s.agent_conversation) }),
    }
}

/// The session's worktree and the instruction file, both handed to the job user.
async fn prepare(sh: &Shared, who: &JobIdentity, work: &Work) -> Result<(PathBuf, PathBuf, Vec<String>), Failure> {
    let dir = sh
        .workspace
        .prepare(work.session.as_str(), &work.branch)
        .await
        .map_err(|e| Failure::new(ErrorCode::Git, &e, "could not prepare the session's git worktree"))?;
    // A worker that died mid-job may have left the tree with its job user.
    let orphan = {
        let (dir, who, users) = (dir.clone(), who.clone(), sh.users.clone());
        blocking(move || users.take_back_orphan(&dir, &who)).await
    };
    orphan.map_err(|e| {
        Failure::new(ErrorCode::Spawn, &e, "the session's worktree could not be taken back from a crashed job")
    })?;
    let attachments = place_attachments(sh, work, &dir).await.map_err(|e| {
        Failure::new(ErrorCode::Attachments, &e, "the email's attachments could not be given to the job")
    })?;
    let file = sh
        .workspace
        .write_instruction(work.command_id.as_str(), &work.instruction)
        .await
        .map_err(|e| Failure::new(ErrorCode::Spawn, &e, "the instruction could not be handed to the job"))?;
    let given = {
        let (dir, file, who) = (dir.clone(), file.clone(), who.clone());
        blocking(move || who.give(&dir).and_then(|()| who.give(&file))).await
    };
    if let Err(e) = given {
        let _ = tokio::fs::remove_file(&file).await;
        return Err(Failure::new(ErrorCode::Spawn, &e, "the worktree could not be handed to the job user"));
    }
    Ok((dir, file, attachments))
}

/// Runs blocking file work (tree walks, the kill of a job's processes) off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Ends the job for good and takes its trees back: every process of the slot's uid killed
/// until none remains, then the worktree and the agent's state directory handed back to
/// root (walked while nothing else can change them). Blocking work, off the runtime.
async fn reclaim(sh: &Shared, who: &JobIdentity, work: &Work) -> std::io::Result<()> {
    let dir = sh.workspace.worktree_dir(work.session.as_str());
    let state = crate::coding::state_dir(&sh.cfg.workspace, &work.session);
    let who = who.clone();
    blocking(move || {
        who.end_job()?;
        for tree in [&dir, &state] {
            match who.take_back(tree) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(())
    })
    .await
}

/// Fetches the command's attachments from S3 into `.switchyard/attachments/{command}/` of
/// the worktree (never committed: the clone excludes `.switchyard/`). Returns their paths
/// relative to the worktree, for `SWITCHYARD_ATTACHMENTS`.
async fn place_attachments(sh: &Shared, work: &Work, dir: &Path) -> Result<Vec<String>, String> {
    if work.attachments.is_empty() {
        return Ok(Vec::new());
    }
    let rel = Path::new(".switchyard").join("attachments").join(work.command_id.as_str());
    let mut files = Vec::new();
    let mut placed = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for a in &work.attachments {
        // Names were made safe and unique at intake; never trust that here either.
        let name = switchyard_core::attachments::unique_name(Some(&a.name), placed.len(), &mut taken);
        let object = sh.s3.get_object().bucket(&a.bucket).key(&a.key).send().await.map_err(|e| {
            format!("s3://{}/{}: {}", a.bucket, a.key, aws_smithy_types::error::display::DisplayErrorContext(&e))
        })?;
        let bytes = object.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
        placed.push(rel.join(&name).to_string_lossy().into_owned());
        files.push((name, bytes.to_vec()));
    }
    // Written as root into the job's worktree: through directory descriptors, each level a
    // real directory, each file new, no link ever followed (`crate::tree`) — a job may have
    // left links there, and another uid's process could swap them during the write.
    let (top, command) = (dir.to_path_buf(), work.command_id.to_string());
    blocking(move || crate::tree::write_files(&top, &[".switchyard", "attachments", command.as_str()], &files))
        .await
        .map_err(|e| e.to_string())?;
    Ok(placed)
}

/// Commits (and pushes) what the job left in the worktree; a git failure fails the
/// command but keeps the job's summary.
async fn save_work(sh: &Shared, work: &Work, dir: &Path, subject: &str, mut response: Response) -> Response {
    match sh.workspace.commit_all(dir, subject, work.session.as_str(), work.command_id.as_str()).await {
        Ok(saved) => {
            if !saved.withheld.is_empty() {
                let note = format!(
                    "Not committed: changes to CI definitions ({}); this project does not allow them.",
                    saved.withheld.join(", ")
                );
                response.summary =
                    if response.summary.is_empty() { note } else { format!("{}\n\n{note}", response.summary) };
            }
            let Some(c) = saved.commit else { return response };
            response.commit = Some(c.sha);
            response.files_changed = bounded_files(c.files);
            if !work.repo_url.is_empty() {
                if let Err(e) = sh.workspace.push(dir, &work.branch).await {
                    response = Failure::new(ErrorCode::GitPush, &e, "").applied(response);
                }
            }
            response
        }
        Err(e) => Failure::new(ErrorCode::Git, &e, "").applied(response),
    }
}

/// A graceful stop: commit and push the partial work as a checkpoint, put the command
/// back to `queued` (the attempt does not count), release the message.
async fn checkpoint(sh: &Shared, work: &Work, dir: &Path) -> Result<End, AwsError> {
    let subject = format!("switchyard: checkpoint {} (container stopping)", work.command_id);
    let commit = match sh.workspace.commit_all(dir, &subject, work.session.as_str(), work.command_id.as_str()).await {
        Ok(saved) => saved.commit.map(|c| c.sha),
        Err(e) => {
            warn!(session = %work.session, command = %work.command_id, error = %e, "checkpoint commit failed");
            None
        }
    };
    if commit.is_some() && !work.repo_url.is_empty() {
        // Bounded well inside the task's StopTimeout (120 s): a slow push must not cost the
        // release of the message (a SIGKILL would leave it to its visibility timeout).
        if let Err(e) = sh.workspace.push_within(dir, &work.branch, crate::git::CHECKPOINT_PUSH_TIMEOUT).await {
            warn!(session = %work.session, command = %work.command_id, error = %e, "checkpoint push failed");
        }
    }
    sh.store.release_command(&work.session, work.seq, commit.as_deref()).await?;
    Ok(End::Release)
}

/// The response of a command whose outcome is already recorded: re-sent with the same
/// dedup id, so a worker that died between recording and sending still gets it answered
/// (the responder's reply claim keeps it to one email).
async fn recorded(sh: &Shared, work: &Work) -> Result<End, AwsError> {
    Ok(answer_with(sh.store.get_command(&work.session, work.seq).await?.as_ref(), work))
}

/// The stored outcome of a command as the answer to send (nothing if it has none).
fn answer_with(c: Option<&CommandItem>, work: &Work) -> End {
    match c.and_then(|c| c.response(work.reply.clone())) {
        Some(response) => End::Respond(Box::new(response)),
        None => End::Drop,
    }
}

/// Records the outcome; if another outcome was recorded first, that one is answered.
async fn finish(sh: &Shared, work: &Work, mut response: Response) -> Result<End, AwsError> {
    response.timings.finished_ms = switchyard_aws::now_ms();
    // The one place an outcome's texts leave the worker: nothing secret goes with them.
    response.summary = sh.redactor.redact(&response.summary);
    response.error_message = response.error_message.map(|m| sh.redactor.redact(&m));
    // A job chooses its file names too (a secret, or its base64, as a name).
    response.files_changed = response.files_changed.iter().map(|f| sh.redactor.redact(f)).collect();
    if let Some(a) = response.agent.as_mut() {
        a.summary = sh.redactor.redact(&a.summary);
    }
    let update = CommandUpdate::from(&response);
    Ok(match sh.store.finish_command(&work.session, response.seq, response.outcome, &update).await? {
        Finished::Recorded => End::Respond(Box::new(response)),
        Finished::Already(c) => answer_with(Some(&c), work),
        Finished::Missing => End::Drop,
    })
}
