//! A coding agent CLI as the job: where its executable and its per-session state are, the
//! live recording of its progress on the command item, and its conversation on the session.
//! The command line and the reading of its output are core's (`switchyard_core::agent`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_aws::store::Store;
use switchyard_core::agent::{ProgressEvent, MAX_PROGRESS_EVENTS};
use switchyard_core::ids::SessionId;
use tokio::sync::mpsc;
use tracing::warn;

/// How often at most the progress window is written while events keep coming (each write
/// rewrites the command item: a cost per running agent of one item write a second).
pub const PROGRESS_FLUSH: Duration = Duration::from_secs(1);

/// Where the CLI's executable is: `SWITCHYARD_AGENT_BIN` (a directory) first, then the
/// worker's `PATH`. Resolved by the worker, so the job's `PATH` cannot swap it.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var("SWITCHYARD_AGENT_BIN").into_iter().chain(std::env::var("PATH"));
    dirs.flat_map(|d| d.split(':').map(PathBuf::from).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
}

/// The session's agent state directory (the CLI's configuration and transcripts): beside
/// the worktrees, never inside one (it would be committed), kept across the session's
/// commands; removed with the session's worktree when it closes.
pub fn state_dir(workspace: &Path, session: &SessionId) -> PathBuf {
    workspace.join("agents").join(session.as_str())
}

/// Creates the parent of the sessions' state directories, root's and `0711`: a job may
/// enter its own session's directory (given to it for the job), not list the others.
pub fn make_state_parent(state: &Path) -> std::io::Result<()> {
    if let Some(parent) = state.parent() {
        std::fs::create_dir_all(parent)?;
        std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
    }
    Ok(())
}

/// Records progress events on the command item as they arrive: the latest
/// [`MAX_PROGRESS_EVENTS`], written at most every [`PROGRESS_FLUSH`].
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<(&'static str, String)>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts recording for one command.
    /// (After the events its earlier runs recorded; texts come redacted from the reader.)
    pub fn start(store: Store, session: SessionId, seq: u64, earlier: Vec<ProgressEvent>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, String)>();
        let task = tokio::spawn(async move {
            let mut n = earlier.iter().map(|e| e.n).max().unwrap_or(0);
            let mut window = earlier;
            let mut open = true;
            while open {
                // Wait for one event, then gather what else comes within the flush interval.
                match rx.recv().await {
                    Some(e) => push(&mut window, &mut n, e),
                    None => break,
                }
                let until = tokio::time::Instant::now() + PROGRESS_FLUSH;
                loop {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(e)) => push(&mut window, &mut n, e),
                        Ok(None) => {
                            open = false;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if let Err(e) = store.record_progress(&session, seq, &window).await {
                    warn!(session = %session, seq, error = %e, "progress not recorded");
                }
            }
        });
        Self { tx, task }
    }

    /// A step of the job.
    pub fn push(&self, kind: &'static str, text: String) {
        let _ = self.tx.send((kind, text));
    }

    /// Writes what is left; returns once it is recorded.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

fn push(window: &mut Vec<ProgressEvent>, n: &mut u32, (kind, text): (&'static str, String)) {
    *n += 1;
    window.push(ProgressEvent { n: *n, at_ms: switchyard_aws::now_ms(), kind: kind.into(), text });
    if window.len() > MAX_PROGRESS_EVENTS {
        let cut = window.len() - MAX_PROGRESS_EVENTS;
        window.drain(..cut);
    }
}
