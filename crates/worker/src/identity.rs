//! Who a job runs as, and what it sees (DESIGN §7: jobs are untrusted).
//!
//! A job is an agent acting on instructions from the internet. It runs as a separate
//! unprivileged user (`SWITCHYARD_JOB_USER`, default `switchyard-job`) with an environment
//! built from an allow-list — never the worker's AWS credentials, credentials URI, launch
//! token or queue URLs — and it cannot read the worker's `/proc/<pid>/environ` (another
//! uid's, and the worker is not dumpable). The session worktree is given to the job user for
//! the job; commits and pushes stay with the worker.
//!
//! The worker needs the privilege to switch users (root, or `CAP_SETUID`/`CAP_SETGID` and
//! `CAP_CHOWN`). Without it, or when the job user does not exist, jobs run as the worker's
//! own user: the environment is still clean and the worker still not dumpable, but a job
//! could then signal the worker or read files the worker can; the worker logs this at start.

use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};
use tracing::{info, warn};

/// Variables a job may inherit from the worker, by exact name.
const INHERITED: &[&str] = &["LANG", "LC_ALL", "LC_CTYPE", "TZ"];
/// `PATH` of a job when the worker has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The identity jobs run under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIdentity {
    /// The job user's uid and gid, or `None` to run as the worker's own user.
    pub ids: Option<(Uid, Gid)>,
    /// The job's `HOME`.
    pub home: PathBuf,
}

impl JobIdentity {
    /// Resolves `user`; falls back to the worker's own identity (logged) when it cannot
    /// switch to it.
    pub fn resolve(user: &str, fallback_home: &Path) -> Self {
        let own = || Self { ids: None, home: fallback_home.to_path_buf() };
        if !Uid::effective().is_root() {
            warn!(job_user = user, "the worker is not root: jobs run as the worker's own user (reduced isolation)");
            return own();
        }
        match User::from_name(user) {
            Ok(Some(u)) if !u.uid.is_root() => {
                info!(job_user = user, uid = u.uid.as_raw(), "jobs run as their own unprivileged user");
                Self { ids: Some((u.uid, u.gid)), home: u.dir }
            }
            _ => {
                warn!(job_user = user, "job user not found: jobs run as the worker's own user (reduced isolation)");
                own()
            }
        }
    }

    /// The whole environment of a job: the allow-list, then the job's own variables.
    pub fn environment(&self, job_vars: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into())),
            ("HOME".into(), self.home.to_string_lossy().into_owned()),
            ("TERM".into(), "dumb".into()),
        ];
        for name in INHERITED {
            if let Ok(v) = std::env::var(name) {
                env.push(((*name).into(), v));
            }
        }
        env.extend(job_vars.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        env
    }

    /// Gives `path` (recursively, never following links) to the job user. A file with more
    /// than one hard link is skipped: git never makes one, and a job that links a file it
    /// may not touch (`/etc/shadow`, where hard-link protection is off) into its worktree
    /// must not get it handed over by the next command.
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        let Some((uid, gid)) = self.ids else { return Ok(()) };
        let mut stack = vec![path.to_path_buf()];
        while let Some(p) = stack.pop() {
            let meta = std::fs::symlink_metadata(&p)?;
            if planted_link(&meta) {
                warn!(path = %p.display(), "a hard-linked file in a worktree is not handed to the job user");
                continue;
            }
            std::os::unix::fs::lchown(&p, Some(uid.as_raw()), Some(gid.as_raw()))?;
            if meta.is_dir() {
                for e in std::fs::read_dir(&p)? {
                    stack.push(e?.path());
                }
            }
        }
        Ok(())
    }
}

/// A regular file with more than one hard link: git never makes one in a worktree, so it
/// was planted by a job (a link to a file the job may not read or own).
pub(crate) fn planted_link(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.is_file() && meta.nlink() > 1
}

/// Makes the worker process non-dumpable: its `/proc/<pid>/*` (environ above all) then
/// belongs to root and no process of the same user can read or ptrace it.
pub fn harden_worker() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        warn!(error = %e, "could not make the worker non-dumpable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_an_allow_list() {
        let id = JobIdentity { ids: None, home: PathBuf::from("/home/job") };
        let env = id.environment(&[("SWITCHYARD_SESSION_ID", "acme-x".into())]);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| ["PATH", "HOME", "TERM", "SWITCHYARD_SESSION_ID"].contains(n) || INHERITED.contains(n)),
            "{names:?}"
        );
        assert!(env.contains(&("HOME".into(), "/home/job".into())));
    }

    #[test]
    fn a_hard_link_planted_in_a_worktree_is_not_handed_over() {
        use std::os::unix::fs::MetadataExt;
        // chown needs root (the worker is root in the image and in `make test` here).
        if !Uid::effective().is_root() {
            eprintln!("skipped: not root");
            return;
        }
        let root = std::env::temp_dir().join(format!("sy-give-{}", ulid::Ulid::new()));
        let tree = root.join("worktree");
        std::fs::create_dir_all(tree.join("src")).unwrap();
        std::fs::write(tree.join("src/page.html"), "hi").unwrap();
        // GIVEN a root-owned file outside the worktree, hard-linked into it by a job
        let secret = root.join("secret");
        std::fs::write(&secret, "root only").unwrap();
        std::fs::hard_link(&secret, tree.join("loot")).unwrap();
        // WHEN the worktree is handed to the job user
        let job = JobIdentity { ids: Some((Uid::from_raw(65534), Gid::from_raw(65534))), home: root.clone() };
        job.give(&tree).unwrap();
        // THEN the worktree's own files are the job's, the linked file stays root's
        assert_eq!(std::fs::metadata(tree.join("src/page.html")).unwrap().uid(), 65534);
        assert_eq!(std::fs::metadata(&secret).unwrap().uid(), 0);
        let _ = std::fs::remove_dir_all(&root);
    }
}
