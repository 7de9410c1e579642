//! The container's git workspace: one clone of the project repo, one worktree per session
//! on branch `thread-{ThreadId}`.
//!
//! Every operation that writes the shared repository — fetch, worktree add/remove, commit
//! (it moves a branch ref) and push (it updates remote-tracking refs) — holds the repo
//! lock; jobs in different worktrees still run side by side. Every git call has a time
//! limit, automatic gc is off (a gc racing a commit in another worktree is how repos get
//! corrupted), and lock files left by a killed worker are cleared before a worktree is used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_core::redact::redact_url_userinfo;
use tokio::process::Command;
use tokio::sync::Mutex;

/// Time limit of a local git operation (status, add, commit, worktree).
const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);
/// Time limit of a network git operation (clone, fetch, push).
const NETWORK_TIMEOUT: Duration = Duration::from_secs(600);
/// Time limit of the push of a checkpoint while the worker stops (the task's StopTimeout
/// is 120 s, and every running job checkpoints at once).
pub const CHECKPOINT_PUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// A git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started (or a file could not be written).
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
    /// git ran past its time limit and was killed.
    #[error("git {args} did not finish within {} s", limit.as_secs())]
    TimedOut {
        /// The arguments.
        args: String,
        /// The limit.
        limit: Duration,
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
    /// Held by every write to the shared repository; `true` once the clone is ready.
    repo_lock: Mutex<bool>,
    /// HTTPS token for the remote, handed to git by a credential helper (never in a URL).
    token: Option<String>,
    /// Whether a job's changes to CI definitions are kept out of every commit (the
    /// project's `allow_ci_changes` unset).
    withhold_ci: bool,
}

/// What saving a job's work left: the commit, if anything changed, and the CI definitions
/// the job changed that were taken back out (not committed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// The commit, if anything was left to commit.
    pub commit: Option<Commit>,
    /// Changed CI definitions that were withheld.
    pub withheld: Vec<String>,
}

/// A credential helper that answers git's `get` with the token from the environment of
/// that one git process (set by us, never by a job; the worker's children are not readable
/// by the job user).
const CREDENTIAL_HELPER: &str =
    "!f() { test \"$1\" = get && echo username=x-access-token && echo \"password=$SWITCHYARD_GIT_TOKEN\"; }; f";

fn tail(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// Where a git command runs.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    /// Nowhere in particular (clone).
    Nowhere,
    /// The shared clone (owned by the worker).
    Repo(&'a Path),
    /// A session worktree, by its administrative git directory (inside the worker-owned
    /// clone) and its work tree (owned by the job user). The worktree's own `.git` file is
    /// never read: a job could point it at a git directory of its own whose config runs
    /// hooks or an fsmonitor as the worker, or sends the token to another remote.
    Worktree { git_dir: &'a Path, work_tree: &'a Path },
}

/// A session worktree with its administrative directory found (see [`At::Worktree`]).
struct Worktree<'a> {
    git_dir: PathBuf,
    work_tree: &'a Path,
}

impl Worktree<'_> {
    async fn git(&self, args: &[&str], limit: Duration, token: Option<&str>) -> Result<String, GitError> {
        run_git_at(At::Worktree { git_dir: &self.git_dir, work_tree: self.work_tree }, args, limit, token).await
    }
}

/// Runs git with our fixed settings in `dir` (or without `-C` when `dir` is `None`).
async fn run_git(dir: Option<&Path>, args: &[&str], limit: Duration) -> Result<String, GitError> {
    run_git_at(dir.map_or(At::Nowhere, At::Repo), args, limit, None).await
}

/// The only variables of the worker's environment root's git gets: none of its AWS
/// credentials or queue URLs reach a git subprocess (a filter, a credential helper, ssh).
const GIT_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSH_AUTH_SOCK"];

async fn run_git_at(at: At<'_>, args: &[&str], limit: Duration, token: Option<&str>) -> Result<String, GitError> {
    let mut cmd = Command::new("git");
    // A cleared environment, and no system configuration: `/etc/gitconfig` is the one git
    // file outside our trees a job could ever have had root write (a filter or pager that
    // would then run as root on every commit).
    cmd.env_clear()
        .envs(GIT_ENV.iter().filter_map(|k| std::env::var_os(k).map(|v| (*k, v))))
        .env("GIT_CONFIG_NOSYSTEM", "1");
    if let Some(t) = token {
        // An empty helper first clears any configured one; then ours.
        cmd.args(["-c", "credential.helper=", "-c", &format!("credential.helper={CREDENTIAL_HELPER}")])
            .env("SWITCHYARD_GIT_TOKEN", t);
    }
    match at {
        At::Nowhere => {}
        At::Repo(d) => {
            cmd.arg("-C").arg(d);
        }
        At::Worktree { git_dir, work_tree } => {
            cmd.arg("--git-dir").arg(git_dir).arg("--work-tree").arg(work_tree).current_dir(work_tree);
        }
    }
    cmd.args(["-c", "user.name=Switchyard", "-c", "user.email=switchyard@localhost", "-c", "commit.gpgsign=false"])
        .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
        // Nothing configured by anyone else runs as the worker.
        .args(["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    let shown = args.join(" ");
    let out = match tokio::time::timeout(limit, cmd.output()).await {
        Ok(out) => out?,
        Err(_) => return Err(GitError::TimedOut { args: shown, limit }),
    };
    if !out.status.success() {
        let stderr = redact_url_userinfo(&tail(&String::from_utf8_lossy(&out.stderr), 2000));
        return Err(GitError::Failed { args: shown, status: out.status.to_string(), stderr });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Takes the staged changes to CI definitions back out of the index and the worktree
/// (restored as committed, or removed if new); returns their paths. Renames off: a CI file
/// moved away is a change to it too.
async fn withhold_ci(wt: &Worktree<'_>, session: &str, command: &str) -> Result<Vec<String>, GitError> {
    let staged = wt.git(&["diff", "--cached", "--name-only", "--no-renames", "-z"], LOCAL_TIMEOUT, None).await?;
    let ci: Vec<String> =
        staged.split('\0').filter(|l| switchyard_core::project::is_ci_definition(l)).map(String::from).collect();
    for f in &ci {
        wt.git(&["reset", "--quiet", "--", f], LOCAL_TIMEOUT, None).await?;
        let head = format!("HEAD:{f}");
        if wt.git(&["cat-file", "-e", &head], LOCAL_TIMEOUT, None).await.is_ok() {
            wt.git(&["checkout", "--quiet", "--", f], LOCAL_TIMEOUT, None).await?;
        } else {
            wt.git(&["clean", "--force", "--quiet", "--", f], LOCAL_TIMEOUT, None).await?;
        }
    }
    if !ci.is_empty() {
        tracing::warn!(session, command, files = ?ci, "CI definition changes withheld");
    }
    Ok(ci)
}

async fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    run_git(Some(dir), args, LOCAL_TIMEOUT).await
}

/// Removes lock files a killed git left behind under `git_dir` (only ever called while
/// no git of ours can be running there).
async fn clear_stale_locks(git_dir: &Path) {
    for name in ["index.lock", "HEAD.lock", "packed-refs.lock", "shallow.lock", "config.lock"] {
        let _ = tokio::fs::remove_file(git_dir.join(name)).await;
    }
    let mut stack = vec![git_dir.join("refs")];
    while let Some(dir) = stack.pop() {
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else { continue };
        while let Ok(Some(e)) = entries.next_entry().await {
            let path = e.path();
            if e.file_type().await.is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "lock") {
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
    }
}

impl Workspace {
    /// A workspace under `root` for `repo_url`.
    pub fn new(root: PathBuf, repo_url: String, default_branch: String) -> Self {
        Self { root, repo_url, default_branch, repo_lock: Mutex::new(false), token: None, withhold_ci: false }
    }

    /// Keeps a job's changes to CI definitions out of every commit (and so every push).
    pub fn withholding_ci(mut self, withhold: bool) -> Self {
        self.withhold_ci = withhold;
        self
    }

    /// Uses `token` (if any) for the remote, through the credential helper.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    fn clone_dir(&self) -> PathBuf {
        self.root.join("repo")
    }

    /// The administrative git directory of the worktree at `dir`: the entry under the
    /// clone's `.git/worktrees/` whose `gitdir` names `dir/.git`. Read from the worker-owned
    /// clone only, never from the job-owned worktree.
    async fn admin_dir(&self, dir: &Path) -> Result<PathBuf, GitError> {
        // git records the real path; the workspace may sit behind a link. (The worktree
        // directory itself is the worker's, inside the worker's `sessions/`: a job cannot
        // swap it for a link.)
        let want = tokio::fs::canonicalize(dir).await.unwrap_or_else(|_| dir.to_path_buf()).join(".git");
        let root = self.clone_dir().join(".git").join("worktrees");
        let mut entries = tokio::fs::read_dir(&root).await?;
        while let Some(e) = entries.next_entry().await? {
            if let Ok(named) = tokio::fs::read_to_string(e.path().join("gitdir")).await {
                if Path::new(named.trim()) == want || Path::new(named.trim()) == dir.join(".git") {
                    return Ok(e.path());
                }
            }
        }
        Err(GitError::Spawn(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no worktree is registered for {}", dir.display()),
        )))
    }

    /// The worktree at `dir`, resolved once for the git calls of one operation.
    async fn worktree<'a>(&self, dir: &'a Path) -> Result<Worktree<'a>, GitError> {
        Ok(Worktree { git_dir: self.admin_dir(dir).await?, work_tree: dir })
    }

    /// The worktree directory of a session (session ids are `[a-z0-9-]`, safe as names).
    pub fn worktree_dir(&self, session: &str) -> PathBuf {
        self.root.join("sessions").join(session)
    }

    /// Writes a command's instruction where its job reads it (outside every worktree, so
    /// it is never committed); the caller removes it after the job.
    pub async fn write_instruction(&self, command_id: &str, instruction: &str) -> Result<PathBuf, GitError> {
        use std::os::unix::fs::PermissionsExt;
        // Another slot's job may not list or read it: the directory is `0711`, the file
        // `0600` (given to the job's slot user with its worktree).
        let dir = self.root.join("instructions");
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).await?;
        let path = dir.join(format!("{command_id}.txt"));
        let _ = tokio::fs::remove_file(&path).await;
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, instruction.as_bytes()).await?;
        Ok(path)
    }

    /// Clones once, fetches, and returns the session's worktree on `branch`
    /// (from the remote branch if it exists, else from the default branch).
    pub async fn prepare(&self, session: &str, branch: &str) -> Result<PathBuf, GitError> {
        let mut ready = self.repo_lock.lock().await;
        let repo = self.clone_dir();
        if !*ready {
            if repo.join(".git").exists() {
                // A previous worker on this disk may have been killed mid-operation.
                clear_stale_locks(&repo.join(".git")).await;
            } else {
                tokio::fs::create_dir_all(&self.root).await?;
                let target = repo.to_string_lossy().into_owned();
                run_git_at(
                    At::Nowhere,
                    &["clone", "--quiet", "--no-checkout", &self.repo_url, &target],
                    NETWORK_TIMEOUT,
                    self.token.as_deref(),
                )
                .await
                // Never echo the URL: it may carry credentials.
                .map_err(|e| match e {
                    GitError::Failed { status, stderr, .. } => {
                        GitError::Failed { args: "clone".into(), status, stderr }
                    }
                    GitError::TimedOut { limit, .. } => GitError::TimedOut { args: "clone".into(), limit },
                    other => other,
                })?;
                // Jobs run git in their worktrees too (it reads this config): no automatic gc
                // racing our commits, no hooks.
                for (k, v) in [("gc.auto", "0"), ("maintenance.auto", "false"), ("core.hooksPath", "/dev/null")] {
                    git(&repo, &["config", k, v]).await?;
                }
            }
            // What Switchyard puts in a worktree for the job (attachments) is never committed.
            let exclude = repo.join(".git").join("info").join("exclude");
            let listed = tokio::fs::read_to_string(&exclude).await.unwrap_or_default();
            if !listed.lines().any(|l| l.trim() == "/.switchyard/") {
                tokio::fs::create_dir_all(repo.join(".git").join("info")).await?;
                tokio::fs::write(&exclude, format!("{listed}\n/.switchyard/\n")).await?;
            }
            *ready = true;
        }
        let dir = self.worktree_dir(session);
        if dir.join(".git").exists() {
            // Only this session's job uses its worktree, and none runs now.
            if let Ok(git_dir) = self.admin_dir(&dir).await {
                clear_stale_locks(&git_dir).await;
            }
            return Ok(dir);
        }
        run_git_at(At::Repo(&repo), &["fetch", "--quiet", "origin"], NETWORK_TIMEOUT, self.token.as_deref()).await?;
        let remote_branch = format!("origin/{branch}");
        let has_remote = git(&repo, &["rev-parse", "--verify", "--quiet", &remote_branch]).await.is_ok();
        let has_local =
            git(&repo, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).await.is_ok();
        let dir_s = dir.to_string_lossy().into_owned();
        git(&repo, &["worktree", "prune"]).await?;
        if has_local {
            git(&repo, &["worktree", "add", "--quiet", &dir_s, branch]).await?;
            if has_remote {
                // A checkpoint pushed by another container may be ahead of our branch.
                if let Ok(wt) = self.worktree(&dir).await {
                    let _ = wt.git(&["merge", "--ff-only", "--quiet", &remote_branch], LOCAL_TIMEOUT, None).await;
                }
            }
        } else {
            let base = if has_remote { remote_branch } else { format!("origin/{}", self.default_branch) };
            git(&repo, &["worktree", "add", "--quiet", "--no-track", "-b", branch, &dir_s, &base]).await?;
        }
        // Jobs enter their own session's worktree (`0700`, theirs for the job); they may
        // not list the others. A new worktree is closed at once (attachments are placed in
        // it before it is handed over).
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).await?;
            if let Some(parent) = dir.parent() {
                tokio::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711)).await?;
            }
        }
        Ok(dir)
    }

    /// Commits every change in the worktree with the session and command trailers, after
    /// taking the job's changes to CI definitions back out when the project withholds them.
    /// `commit` is `None` when there is nothing (else) to commit. Run in a tree no job
    /// process can change (root's, after the job).
    pub async fn commit_all(&self, dir: &Path, subject: &str, session: &str, command: &str) -> Result<Saved, GitError> {
        let _guard = self.repo_lock.lock().await;
        let wt = self.worktree(dir).await?;
        wt.git(&["add", "--all"], LOCAL_TIMEOUT, None).await?;
        let withheld = if self.withhold_ci { withhold_ci(&wt, session, command).await? } else { Vec::new() };
        // NUL-separated: without `-z` git C-quotes names with unusual bytes (`"a\303\251"`),
        // which then match no path and no rule.
        let staged = wt.git(&["diff", "--cached", "--name-only", "-z"], LOCAL_TIMEOUT, None).await?;
        let mut files: Vec<String> = staged.split('\0').filter(|l| !l.is_empty()).map(String::from).collect();
        // git runs as the worker and reads what the job user may not: a file hard-linked into
        // the worktree (git itself never makes one) is left out of the commit.
        let mut linked = Vec::new();
        for f in &files {
            if tokio::fs::symlink_metadata(dir.join(f)).await.is_ok_and(|m| crate::identity::planted_link(&m)) {
                linked.push(f.clone());
            }
        }
        for f in &linked {
            tracing::warn!(file = %f, "a hard-linked file is not committed");
            wt.git(&["rm", "--cached", "--quiet", "--", f], LOCAL_TIMEOUT, None).await?;
        }
        files.retain(|f| !linked.contains(f));
        if files.is_empty() {
            return Ok(Saved { commit: None, withheld });
        }
        let subject: String = subject.lines().next().unwrap_or("").chars().take(72).collect();
        let message = format!("{subject}\n\nSession-Id: {session}\nCommand-Id: {command}\n");
        wt.git(&["commit", "--quiet", "--no-verify", "-m", &message], LOCAL_TIMEOUT, None).await?;
        let sha = wt.git(&["rev-parse", "HEAD"], LOCAL_TIMEOUT, None).await?.trim().to_string();
        Ok(Saved { commit: Some(Commit { sha, files }), withheld })
    }

    /// Pushes the session branch to the project remote.
    pub async fn push(&self, dir: &Path, branch: &str) -> Result<(), GitError> {
        self.push_within(dir, branch, NETWORK_TIMEOUT).await
    }

    /// Pushes the session branch, giving up after `limit` (waiting for the lock included).
    pub async fn push_within(&self, dir: &Path, branch: &str, limit: Duration) -> Result<(), GitError> {
        let refspec = format!("{branch}:refs/heads/{branch}");
        let push = async {
            let _guard = self.repo_lock.lock().await;
            self.worktree(dir).await?.git(&["push", "--quiet", "origin", &refspec], limit, self.token.as_deref()).await
        };
        match tokio::time::timeout(limit, push).await {
            Ok(r) => r.map(drop),
            Err(_) => Err(GitError::TimedOut { args: "push".into(), limit }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git").arg("-C").arg(dir).args(args).status().map(|s| s.success());
        assert_eq!(ok.ok(), Some(true), "git {args:?}");
    }

    /// A bare remote with one commit on `main`.
    fn remote(root: &Path) -> PathBuf {
        let seed = root.join("seed");
        std::fs::create_dir_all(&seed).unwrap();
        sh(&seed, &["init", "--quiet", "-b", "main"]);
        std::fs::write(seed.join("README"), "hi\n").unwrap();
        sh(&seed, &["add", "."]);
        sh(&seed, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "seed"]);
        let bare = root.join("remote.git");
        sh(root, &["clone", "--quiet", "--bare", &seed.to_string_lossy(), &bare.to_string_lossy()]);
        bare
    }

    #[tokio::test]
    async fn a_stale_index_lock_in_a_reused_worktree_does_not_fail_later_commands() {
        let root = std::env::temp_dir().join(format!("sy-git-{}", ulid::Ulid::new()));
        let bare = remote(&root);
        let ws = Workspace::new(root.join("ws"), bare.to_string_lossy().into_owned(), "main".into());
        let dir = ws.prepare("acme-s1", "thread-s1").await.unwrap();
        // GIVEN a worker killed mid-commit: its index.lock is left behind
        let git_dir = ws.admin_dir(&dir).await.unwrap();
        std::fs::write(git_dir.join("index.lock"), "").unwrap();
        // WHEN a new worker (a new Workspace on the same disk) reuses the worktree
        let ws = Workspace::new(root.join("ws"), bare.to_string_lossy().into_owned(), "main".into());
        let dir = ws.prepare("acme-s1", "thread-s1").await.unwrap();
        std::fs::write(dir.join("a.txt"), "a\n").unwrap();
        // THEN the commit succeeds
        let c = ws.commit_all(&dir, "s", "acme-s1", "c1").await.unwrap().commit;
        assert_eq!(c.map(|c| c.files), Some(vec!["a.txt".to_string()]));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_clone_error_never_shows_the_repository_url() {
        let root = std::env::temp_dir().join(format!("sy-git-{}", ulid::Ulid::new()));
        let url = "https://user:s3cret-token@127.0.0.1:1/nothing.git";
        let ws = Workspace::new(root.clone(), url.into(), "main".into());
        let e = ws.prepare("acme-s1", "thread-s1").await.unwrap_err();
        assert!(!e.to_string().contains("s3cret-token"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn auto_gc_is_off_for_every_git_call() {
        let root = std::env::temp_dir().join(format!("sy-git-{}", ulid::Ulid::new()));
        let bare = remote(&root);
        let ws = Workspace::new(root.join("ws"), bare.to_string_lossy().into_owned(), "main".into());
        let dir = ws.prepare("acme-s1", "thread-s1").await.unwrap();
        // Persisted in the clone's config (what a job's own git reads), not only on our command lines.
        let config = std::fs::read_to_string(root.join("ws/repo/.git/config")).unwrap();
        assert!(config.contains("auto = 0") && config.contains("hooksPath = /dev/null"), "{config}");
        let plain = std::process::Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["config", "--get", "gc.auto"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&plain.stdout).trim(), "0");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_hard_linked_file_is_never_committed() {
        let root = std::env::temp_dir().join(format!("sy-git-{}", ulid::Ulid::new()));
        let bare = remote(&root);
        let ws = Workspace::new(root.join("ws"), bare.to_string_lossy().into_owned(), "main".into());
        let dir = ws.prepare("acme-s1", "thread-s1").await.unwrap();
        // GIVEN a job that links a file it should not see into its worktree, and edits a page
        let secret = root.join("secret");
        std::fs::write(&secret, "not for the job").unwrap();
        std::fs::hard_link(&secret, dir.join("loot")).unwrap();
        std::fs::write(dir.join("page.html"), "<h1>hi</h1>\n").unwrap();
        // WHEN the worker commits the session's work
        let c = ws.commit_all(&dir, "s", "acme-s1", "c1").await.unwrap().commit.expect("a commit");
        // THEN the page is in it and the linked file is not
        assert_eq!(c.files, vec!["page.html".to_string()]);
        let tree = std::process::Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["ls-tree", "-r", "--name-only", "HEAD"])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&tree.stdout).contains("loot"));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_job_that_repoints_its_worktree_runs_nothing_as_the_worker() {
        let root = std::env::temp_dir().join(format!("sy-git-{}", ulid::Ulid::new()));
        let bare = remote(&root);
        let ws = Workspace::new(root.join("ws"), bare.to_string_lossy().into_owned(), "main".into());
        let dir = ws.prepare("acme-s1", "thread-s1").await.unwrap();
        // GIVEN a job that builds a git directory of its own, whose config runs a program as
        // whoever runs git there (an fsmonitor, hooks) and sends pushes elsewhere, and points
        // its worktree's `.git` file at it
        let evil = root.join("evil");
        let marker = root.join("pwned");
        let payload = root.join("payload.sh");
        std::fs::write(&payload, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&payload).status().unwrap();
        sh(&root, &["init", "--quiet", &evil.to_string_lossy()]);
        let hooks = evil.join(".git/hooks");
        for hook in ["pre-commit", "post-commit", "pre-push", "post-index-change"] {
            std::fs::copy(&payload, hooks.join(hook)).unwrap();
        }
        sh(&evil, &["config", "core.fsmonitor", &payload.to_string_lossy()]);
        sh(&evil, &["remote", "add", "origin", &root.join("elsewhere.git").to_string_lossy()]);
        std::fs::write(dir.join(".git"), format!("gitdir: {}\n", evil.join(".git").display())).unwrap();
        std::fs::write(dir.join("page.html"), "<h1>hi</h1>\n").unwrap();
        // WHEN the worker commits and pushes the session's work
        let c = ws.commit_all(&dir, "s", "acme-s1", "c1").await.unwrap().commit.expect("a commit");
        ws.push(&dir, "thread-s1").await.unwrap();
        // THEN nothing of the job's ran, and the commit is on the session branch of the real remote
        assert!(!marker.exists(), "the job's program ran as the worker");
        let pushed = std::process::Command::new("git")
            .arg("-C")
            .arg(&bare)
            .args(["rev-parse", "refs/heads/thread-s1"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&pushed.stdout).trim(), c.sha);
        assert!(!root.join("elsewhere.git").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
