//! The receive loop: registers, heartbeats, long-polls `in`, starts jobs in free slots,
//! applies control messages at once, stops when idle without losing a message, and drains
//! on shutdown. It never waits on a job: jobs run as tasks that own their message.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_aws::queues::Received;
use switchyard_aws::AwsError;
use switchyard_core::container::{ContainerEvent, ContainerStatus};
use switchyard_core::ids::{CommandId, ContainerId, SessionId};
use switchyard_core::messages::{decode, Control, InMessage, Work};
use switchyard_core::project::InterruptScope;
use switchyard_core::status::SessionStatus;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::exec::{self, Done, Handle, Shared, StopReason};

/// How the worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Idle for `idle_timeout`: marked stopped, queue empty.
    Idle,
    /// Asked to stop (SIGTERM): running jobs saved and reported.
    Shutdown,
    /// Another launch took the container over.
    Superseded,
    /// The `in` queue no longer exists (its set was retired): nothing can reach this worker.
    QueueGone,
}

/// A long poll of `in` in progress.
type Receiving = std::pin::Pin<Box<dyn Future<Output = Result<Vec<Received>, AwsError>> + Send>>;

/// Visibility of a message this worker has received but no job of it has started yet (it
/// is being handled, or held for a slot or for its session's job): short, so that a worker
/// killed before a job has taken the message (full visibility, `start_command` recording it)
/// costs seconds, not a whole visibility timeout (nothing but the worker knows it has it).
/// Held messages are extended at a third of it, timed from their receive; a failed extension
/// is tried again on the next turn of the loop (which turns about every second while work
/// is held: its receives then wait 1 s).
const HELD_VISIBILITY: Duration = Duration::from_secs(9);

fn held_visibility(sh: &Shared) -> Duration {
    sh.visibility.min(HELD_VISIBILITY)
}

/// The loop's state.
struct Agent {
    sh: Arc<Shared>,
    id: ContainerId,
    slots: usize,
    running: HashMap<CommandId, Handle>,
    /// Work received for a busy session or without a free slot, with when its visibility
    /// was last extended.
    held: Vec<(Received, Work, tokio::time::Instant)>,
    jobs: JoinSet<Done>,
    closing: HashSet<SessionId>,
    active: Arc<AtomicU32>,
    last_activity: Arc<AtomicU64>,
}

/// How many jobs a worker of `project` runs at once (before the cap by slot users).
pub fn slots_of(project: &switchyard_core::project::ProjectConfig, slots_override: Option<u32>) -> usize {
    match project.interrupt_scope {
        InterruptScope::Container => 1,
        InterruptScope::Session => slots_override.unwrap_or(project.max_concurrent_sessions).max(1) as usize,
    }
}

/// Runs the worker until idle stop, shutdown or supersession.
pub async fn run(sh: Shared, shutdown: impl Future<Output = ()>) -> Result<Exit, AwsError> {
    let sh = Arc::new(sh);
    let id = sh.cfg.container_id.clone();
    let token = sh.cfg.launch_token.clone();
    match sh.store.set_status(&id, Some(&token), ContainerEvent::Registered, ContainerStatus::Running, None).await {
        Ok(()) => info!(container = %id, "registered running"),
        Err(AwsError::Conflict { .. }) => {
            warn!(container = %id, "another launch holds the container; exiting");
            return Ok(Exit::Superseded);
        }
        Err(e) => return Err(e),
    }
    // One uid per running job: never more slots than job users.
    let slots = slots_of(&sh.project, sh.cfg.slots_override).min(sh.users.len()).max(1);
    let mut agent = Agent {
        sh: sh.clone(),
        id: id.clone(),
        slots,
        running: HashMap::new(),
        held: Vec::new(),
        jobs: JoinSet::new(),
        closing: HashSet::new(),
        active: Arc::new(AtomicU32::new(0)),
        last_activity: Arc::new(AtomicU64::new(switchyard_aws::now_ms())),
    };
    let (superseded_tx, mut superseded) = watch::channel(false);
    let heartbeat = tokio::spawn(heartbeat(
        sh.clone(),
        id.clone(),
        agent.active.clone(),
        agent.last_activity.clone(),
        superseded_tx,
    ));
    tokio::pin!(shutdown);
    // The long poll in progress, kept across turns of the loop: a job that ends wakes the
    // loop at once (its session's next message starts without waiting for the poll), and a
    // poll is never dropped half-way (its messages would stay invisible for a visibility
    // timeout).
    let mut receiving: Option<Receiving> = None;
    let exit = loop {
        agent.reap();
        let idle = agent.running.is_empty() && agent.held.is_empty();
        let idle_for =
            Duration::from_millis(switchyard_aws::now_ms().saturating_sub(agent.last_activity.load(Ordering::Relaxed)));
        if idle && receiving.is_none() && idle_for >= sh.cfg.idle_timeout {
            match agent.idle_stop().await? {
                Some(exit) => break exit,
                None => continue,
            }
        }
        let rx = receiving.get_or_insert_with(|| {
            let wait = if idle {
                (sh.cfg.idle_timeout.saturating_sub(idle_for).as_secs() as i32).clamp(1, sh.cfg.poll_wait_secs.max(1))
            } else {
                1
            };
            let (queues, url, max) = (sh.queues.clone(), sh.cfg.in_url.clone(), agent.receive_budget());
            // Received with the short visibility of a held message: until a job's extender
            // takes over, nothing but this worker knows it has the message.
            let vis = Some(held_visibility(&sh).as_secs() as i32);
            Box::pin(async move {
                if max == 0 {
                    // Full: nothing is received until a job ends.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Ok(Vec::new());
                }
                queues.receive(&url, max, wait, vis).await
            })
        });
        tokio::select! {
            biased;
            _ = &mut shutdown => break Exit::Shutdown,
            _ = superseded.changed() => break Exit::Superseded,
            Some(done) = agent.jobs.join_next(), if !agent.jobs.is_empty() => agent.finished(done),
            got = rx => {
                receiving = None;
                match got {
                    Ok(msgs) => {
                        let received_at = tokio::time::Instant::now();
                        for m in msgs { agent.handle(m, received_at).await }
                    }
                    Err(e) if e.is_queue_missing() => {
                        warn!(container = %id, "the in queue is gone (queue set retired); exiting");
                        break Exit::QueueGone;
                    }
                    Err(e) => {
                        warn!(error = %e, "receive failed; backing off");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            },
        }
        agent.extend_held().await;
    };
    agent.drain(exit).await;
    heartbeat.abort();
    if exit == Exit::Shutdown {
        let stopped = ContainerStatus::Stopped;
        match sh
            .store
            .set_status(&id, Some(&token), ContainerEvent::TaskStopped, stopped, Some("worker stopped (SIGTERM)"))
            .await
        {
            Ok(()) | Err(AwsError::Conflict { .. }) => {}
            Err(e) => warn!(error = %e, "final status not recorded"),
        }
    }
    info!(container = %id, ?exit, "worker exiting");
    Ok(exit)
}

async fn heartbeat(
    sh: Arc<Shared>,
    id: ContainerId,
    active: Arc<AtomicU32>,
    last: Arc<AtomicU64>,
    superseded: watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(sh.cfg.heartbeat);
    tick.tick().await;
    loop {
        tick.tick().await;
        match sh
            .store
            .heartbeat(&id, &sh.cfg.launch_token, active.load(Ordering::Relaxed), last.load(Ordering::Relaxed))
            .await
        {
            Ok(()) => {}
            Err(AwsError::Conflict { .. }) => {
                warn!(container = %id, "launch token changed: superseded");
                let _ = superseded.send(true);
                return;
            }
            Err(e) => warn!(container = %id, error = %e, "heartbeat failed"),
        }
    }
}

impl Agent {
    fn touch(&self) {
        self.last_activity.store(switchyard_aws::now_ms(), Ordering::Relaxed);
        self.active.store(self.running.len() as u32, Ordering::Relaxed);
    }

    /// Collects finished jobs and starts held work in the freed slots.
    /// A job task ended: free its slot (and close its session if asked to).
    fn finished(&mut self, res: Result<Done, tokio::task::JoinError>) {
        match res {
            Ok(done) => {
                self.running.remove(&done.command_id);
                if self.closing.remove(&done.session) {
                    self.spawn_close(done.session);
                }
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => warn!(error = %e, "job task ended abnormally"),
        }
        self.touch();
    }

    fn reap(&mut self) {
        while let Some(res) = self.jobs.try_join_next() {
            self.finished(res);
        }
        let mut i = 0;
        while i < self.held.len() && self.running.len() < self.slots {
            if self.session_busy(&self.held[i].1.session) {
                i += 1;
                continue;
            }
            let (m, w, _) = self.held.remove(i);
            self.start(m, w);
        }
    }

    /// How many messages to receive: what free slots can start, plus one while fewer than
    /// `slots` messages are held, so the interrupt that comes with a busy session's newer
    /// work still gets through. Every message received and later released (a restart)
    /// counts towards its redrive, so a worker never takes more than twice what it can run;
    /// a full worker (every slot running, `slots` held) receives nothing until a job ends.
    fn receive_budget(&self) -> i32 {
        if self.held.len() >= self.slots {
            return 0;
        }
        let free = self.slots.saturating_sub(self.running.len() + self.held.len());
        (free + 1).min(10) as i32
    }

    fn session_busy(&self, session: &SessionId) -> bool {
        self.running.values().any(|h| &h.session == session)
    }

    /// Starts a job. Its message has only the short visibility it was received with (or
    /// held with) left: the job's extender sets the full one at once.
    fn start(&mut self, msg: Received, work: Work) {
        let (tx, rx) = watch::channel(false);
        let reason = Arc::new(Mutex::new(None));
        info!(session = %work.session, command = %work.command_id, seq = work.seq, "job starting");
        self.running.insert(
            work.command_id.clone(),
            Handle { session: work.session.clone(), seq: work.seq, interrupt: tx, reason: reason.clone() },
        );
        self.jobs.spawn(exec::execute(self.sh.clone(), msg, work, rx, reason));
        self.touch();
    }

    /// Handles one received message; `received_at`: when its receive returned (its short
    /// visibility runs from then, whatever the earlier messages of the batch cost).
    async fn handle(&mut self, msg: Received, received_at: tokio::time::Instant) {
        let parsed = decode::<InMessage>(&msg.body);
        let Ok(parsed) = parsed else {
            // Left to the redrive policy: released now, DLQ after `MAX_RECEIVE_COUNT` (10)
            // receives.
            warn!(message = %msg.id, receives = msg.receive_count, error = %parsed.err().map(|e| e.to_string()).unwrap_or_default(), "message does not parse");
            if let Err(e) = self.sh.queues.set_visibility(&self.sh.cfg.in_url, &msg.receipt, 0).await {
                warn!(message = %msg.id, error = %e, "release failed");
            }
            return;
        };
        match parsed {
            InMessage::Work(w)
                if self.sh.cfg.poison_marker.as_ref().is_some_and(|m| w.instruction.contains(m.as_str())) =>
            {
                // Load testing only: a message this worker "cannot process", left to the
                // redrive policy (DLQ after MAX_RECEIVE_COUNT receives) like a real one.
                warn!(session = %w.session, command = %w.command_id, receives = msg.receive_count, "poison message (test switch): released unprocessed");
                if let Err(e) = self.sh.queues.set_visibility(&self.sh.cfg.in_url, &msg.receipt, 0).await {
                    warn!(message = %msg.id, error = %e, "release failed");
                }
            }
            InMessage::Work(w) => {
                if self.running.len() < self.slots && !self.session_busy(&w.session) {
                    self.start(msg, w);
                } else {
                    info!(session = %w.session, command = %w.command_id, "no free slot; holding");
                    // Its short visibility is kept up by `extend_held`.
                    self.held.push((msg, w, received_at));
                }
            }
            InMessage::Interrupt(c) => {
                self.interrupt(&c, StopReason::Interrupted { by: c.by_command.clone(), reason: c.reason.clone() });
                self.ack(&msg).await;
            }
            InMessage::Cancel(c) => {
                if let Err(e) = self.sh.store.raise_cancel_watermark(&c.session, c.before_seq).await {
                    warn!(session = %c.session, error = %e, "cancel watermark not saved; will retry");
                    return;
                }
                self.interrupt(&c, StopReason::Cancelled);
                self.ack(&msg).await;
            }
            InMessage::Close(c) => {
                if let Err(e) = self.sh.store.set_session_status(&c.session, SessionStatus::Closed).await {
                    warn!(session = %c.session, error = %e, "close not recorded");
                }
                if self.session_busy(&c.session) {
                    self.closing.insert(c.session.clone());
                } else {
                    self.spawn_close(c.session.clone());
                }
                self.ack(&msg).await;
            }
        }
    }

    fn interrupt(&self, c: &Control, reason: StopReason) {
        let container_scope = self.sh.project.interrupt_scope == InterruptScope::Container;
        let mut hit = false;
        for h in self.running.values() {
            let same = h.session == c.session;
            if (same && h.seq < c.before_seq) || (!same && container_scope && reason != StopReason::Cancelled) {
                info!(session = %h.session, seq = h.seq, before_seq = c.before_seq, "interrupting job");
                h.stop(reason.clone());
                hit = true;
            }
        }
        if !hit {
            tracing::debug!(session = %c.session, "control message for nothing running; ignored");
        }
    }

    fn spawn_close(&mut self, session: SessionId) {
        let sh = self.sh.clone();
        tokio::spawn(async move {
            if let Err(e) = sh.workspace.remove(session.as_str()).await {
                warn!(session = %session, error = %e, "worktree not removed");
            }
            // The agent's configuration and transcripts of a closed session go with it.
            let state = crate::coding::state_dir(&sh.cfg.workspace, &session);
            if let Err(e) = tokio::fs::remove_dir_all(&state).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    warn!(session = %session, error = %e, "agent state not removed");
                }
            }
        });
    }

    async fn ack(&self, msg: &Received) {
        if let Err(e) = self.sh.queues.delete(&self.sh.cfg.in_url, &msg.receipt).await {
            warn!(message = %msg.id, error = %e, "control message not deleted");
        }
    }

    /// Extends held messages at a third of their visibility (not on every loop turn).
    async fn extend_held(&mut self) {
        let held = held_visibility(&self.sh);
        let every = held / 3;
        for (m, _, extended) in &mut self.held {
            if extended.elapsed() < every {
                continue;
            }
            let secs = held.as_secs() as i32;
            match self.sh.queues.set_visibility(&self.sh.cfg.in_url, &m.receipt, secs).await {
                Ok(()) => *extended = tokio::time::Instant::now(),
                // Not reset: tried again on the next turn of the loop.
                Err(e) => warn!(message = %m.id, error = %e, "held message not extended"),
            }
        }
    }

    /// Idle stop without loss: conditionally `stopped`, one last receive; if work came,
    /// conditionally back to `running`, else exit. `None` = go on serving.
    async fn idle_stop(&mut self) -> Result<Option<Exit>, AwsError> {
        let token = self.sh.cfg.launch_token.clone();
        let (event, to) = (ContainerEvent::TaskStopped, ContainerStatus::Stopped);
        match self.sh.store.set_status(&self.id, Some(&token), event, to, Some("no work for the idle timeout")).await {
            Ok(()) => {}
            Err(AwsError::Conflict { .. }) => return Ok(Some(Exit::Superseded)),
            Err(e) => return Err(e),
        }
        let last = self
            .sh
            .queues
            .receive(&self.sh.cfg.in_url, 10, 1, Some(held_visibility(&self.sh).as_secs() as i32))
            .await?;
        if last.is_empty() {
            info!(container = %self.id, "idle: stopped");
            return Ok(Some(Exit::Idle));
        }
        match self
            .sh
            .store
            .set_status(&self.id, Some(&token), ContainerEvent::Registered, ContainerStatus::Running, None)
            .await
        {
            Ok(()) => {
                info!(container = %self.id, "idle stop cancelled: work arrived");
                self.touch();
                let received_at = tokio::time::Instant::now();
                for m in last {
                    self.handle(m, received_at).await;
                }
                Ok(None)
            }
            Err(AwsError::Conflict { .. }) => {
                for m in &last {
                    let _ = self.sh.queues.set_visibility(&self.sh.cfg.in_url, &m.receipt, 0).await;
                }
                Ok(Some(Exit::Superseded))
            }
            Err(e) => Err(e),
        }
    }

    /// Stops every job, waits for them to save and report, releases held messages.
    async fn drain(&mut self, exit: Exit) {
        if exit != Exit::Idle {
            for h in self.running.values() {
                h.stop(StopReason::Shutdown);
            }
        }
        for (m, _, _) in self.held.drain(..) {
            let _ = self.sh.queues.set_visibility(&self.sh.cfg.in_url, &m.receipt, 0).await;
        }
        while let Some(res) = self.jobs.join_next().await {
            if let Err(e) = res {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
        self.running.clear();
    }
}
