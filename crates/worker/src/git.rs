//! The container's git workspace: one clone of the project repo, one worktree per session
//! on branch `thread-{ThreadId}`. Repo-level operations (fetch, worktree add/remove) are
//! serialised; commits in different worktrees run side by side.

use std::path::{Path, PathBuf};

use tokio::process::Command;
use tokio::sync::Mutex;

/// A git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("git could not start: {0}")]
    Spawn(#[from] std::io::Error),
    /// git exited non-zero.
    #[error("git {args} failed ({status}): {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// Exit status.
        status: String,
        /// Its stderr (tail).
        stderr: String,
    },
}

/// A commit made after a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The sha.
    pub sha: String,
    /// Files changed by it.
    pub files: Vec<String>,
}

/// The clone and its worktrees.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    repo_url: String,
    default_branch: String,
    repo_lock: Mutex<bool>,
}

async fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Switchyard", "-c", "user.email=switchyard@localhost", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true)
        .output()
        .await?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(GitError::Failed { args: args.join(" "), status: out.status.to_string(), stderr: tail });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Workspace {
    /// A workspace under `root` for `repo_url`.
    pub fn new(root: PathBuf, repo_url: String, default_branch: String) -> Self {
        Self { root, repo_url, default_branch, repo_lock: Mutex::new(false) }
    }

    fn clone_dir(&self) -> PathBuf {
        self.root.join("repo")
    }

    /// The worktree directory of a session (session ids are `[a-z0-9-]`, safe as names).
    pub fn worktree_dir(&self, session: &str) -> PathBuf {
        self.root.join("sessions").join(session)
    }

    /// Clones once, fetches, and returns the session's worktree on `branch`
    /// (from the remote branch if it exists, else from the default branch).
    pub async fn prepare(&self, session: &str, branch: &str) -> Result<PathBuf, GitError> {
        let mut cloned = self.repo_lock.lock().await;
        let repo = self.clone_dir();
        if !*cloned {
            if !repo.join(".git").exists() {
                tokio::fs::create_dir_all(&self.root).await?;
                let out = Command::new("git")
                    .args(["clone", "--quiet", "--no-checkout", &self.repo_url])
                    .arg(&repo)
                    .env("GIT_TERMINAL_PROMPT", "0")
                    .output()
                    .await?;
                if !out.status.success() {
                    return Err(GitError::Failed {
                        args: format!("clone {}", self.repo_url),
                        status: out.status.to_string(),
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    });
                }
            }
            *cloned = true;
        }
        let dir = self.worktree_dir(session);
        if dir.join(".git").exists() {
            return Ok(dir);
        }
        git(&repo, &["fetch", "--quiet", "origin"]).await?;
        let remote_branch = format!("origin/{branch}");
        let has_remote = git(&repo, &["rev-parse", "--verify", "--quiet", &remote_branch]).await.is_ok();
        let has_local =
            git(&repo, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).await.is_ok();
        let dir_s = dir.to_string_lossy().into_owned();
        git(&repo, &["worktree", "prune"]).await?;
        if has_local {
            git(&repo, &["worktree", "add", "--quiet", &dir_s, branch]).await?;
        } else {
            let base = if has_remote { remote_branch } else { format!("origin/{}", self.default_branch) };
            git(&repo, &["worktree", "add", "--quiet", "--no-track", "-b", branch, &dir_s, &base]).await?;
        }
        Ok(dir)
    }

    /// Commits every change in the worktree with the session and command trailers.
    /// Returns `None` when there is nothing to commit.
    pub async fn commit_all(
        &self,
        dir: &Path,
        subject: &str,
        session: &str,
        command: &str,
    ) -> Result<Option<Commit>, GitError> {
        git(dir, &["add", "--all"]).await?;
        let staged = git(dir, &["diff", "--cached", "--name-only"]).await?;
        let files: Vec<String> = staged.lines().filter(|l| !l.is_empty()).map(String::from).collect();
        if files.is_empty() {
            return Ok(None);
        }
        let subject: String = subject.lines().next().unwrap_or("").chars().take(72).collect();
        let message = format!("{subject}\n\nSession-Id: {session}\nCommand-Id: {command}\n");
        git(dir, &["commit", "--quiet", "--no-verify", "-m", &message]).await?;
        let sha = git(dir, &["rev-parse", "HEAD"]).await?.trim().to_string();
        Ok(Some(Commit { sha, files }))
    }

    /// Pushes the session branch to the project remote.
    pub async fn push(&self, dir: &Path, branch: &str) -> Result<(), GitError> {
        git(dir, &["push", "--quiet", "origin", &format!("{branch}:refs/heads/{branch}")]).await?;
        Ok(())
    }

    /// Removes a session's worktree (its branch is kept).
    pub async fn remove(&self, session: &str) -> Result<(), GitError> {
        let _guard = self.repo_lock.lock().await;
        let dir = self.worktree_dir(session);
        if dir.exists() {
            git(&self.clone_dir(), &["worktree", "remove", "--force", &dir.to_string_lossy()]).await?;
        }
        Ok(())
    }
}
