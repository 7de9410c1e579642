//! Who a job runs as, what it sees, and how its trees and processes are handed over and
//! taken back.
//!
//! A job is an agent acting on instructions from the internet: whatever a prompt injection
//! asks runs as its uid. So:
//! - **One uid per running job**: each job leases one of the job users
//!   (`{SWITCHYARD_JOB_USER}-{n}`, e.g. `switchyard-job-0`) that no other job on the host
//!   runs as while it holds it (an exclusive lock under `/run/switchyard-jobs`, released when
//!   the job ends or the worker dies). Two jobs never share a uid, so one cannot signal,
//!   trace, read the `/proc/<pid>/environ` of, or write into the trees of another — in a
//!   task (one worker) and on a development host running many workers alike.
//! - **No process of a job outlives it.** After every job, and before any root work in its
//!   trees, every process of the job's uid is killed until none remain ([`JobIdentity::end_job`]);
//!   `setsid`, double forks and new process groups do not escape a uid.
//! - **Root never works in a tree a job process can change.** A tree is given to the job's
//!   uid only for the job ([`JobIdentity::give`], top directory `0700`) and taken back to
//!   root after it ([`JobIdentity::take_back`]), when no process of that uid exists; every
//!   walk and write goes through directory descriptors and never follows a link
//!   ([`crate::tree`]).
//! - **`no_new_privs`** on the worker, inherited by every job: no setuid binary gives a job
//!   more than its uid. Per-job resource limits (processes, file size, core dumps) are set
//!   by `prlimit` before the job's program runs ([`JobLimits`]).
//! - **Fail closed.** A worker that cannot isolate jobs (not root, no job users, no
//!   `prlimit`, no `no_new_privs`) refuses to start, unless the local development flag `SWITCHYARD_UNISOLATED_JOBS=1`
//!   says to run jobs as the worker's own user (logged on every start).
//!
//! The environment of a job is built from an allow-list — never the worker's AWS
//! credentials, credentials URI, launch token or queue URLs — and the worker is not dumpable.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid, User};
use tracing::{info, warn};

/// Variables a job may inherit from the worker, by exact name.
const INHERITED: &[&str] = &["LANG", "LC_ALL", "LC_CTYPE", "TZ"];
/// `PATH` of a job when the worker has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Most job users looked up (`{stem}-0` … `{stem}-63`; the image has 8, `make job-user`
/// creates 32 for hosts that run many local workers).
pub const MAX_JOB_USERS: usize = 64;
/// Where the leases of job users are held (root's: a job cannot plant a link there).
const LEASE_DIR: &str = "/run/switchyard-jobs";
/// How long a job waits for a free job user before it fails.
const LEASE_WAIT: Duration = Duration::from_secs(60);
/// How long [`JobIdentity::end_job`] keeps killing before it reports survivors.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// Jobs cannot be run isolated, and the development flag does not allow otherwise.
#[derive(Debug, thiserror::Error)]
#[error(
    "jobs cannot run isolated: {0}. Run the worker as root with the job users `{1}-0`, `{1}-1`, … \
     (`make job-user`; the worker image has them), or set SWITCHYARD_UNISOLATED_JOBS=1 for local \
     development only"
)]
pub struct IsolationError(String, String);

/// The identity a job runs under (a leased job user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIdentity {
    /// The job user's uid and gid, or `None` to run as the worker's own user (development
    /// flag only).
    pub ids: Option<(Uid, Gid)>,
    /// The job's `HOME`.
    pub home: PathBuf,
}

/// The job users a worker's jobs lease their uids from.
#[derive(Debug, Clone)]
pub struct JobUsers {
    /// `(name, identity)` of every job user; one entry without ids when unisolated.
    pool: Vec<(String, JobIdentity)>,
    /// Jobs may run at once (the pool's size, or the wanted slots when unisolated).
    slots: usize,
}

/// A job user held by one job: no other job on the host gets its uid until this is dropped
/// (the lock dies with the worker, too).
#[derive(Debug)]
pub struct Lease {
    identity: JobIdentity,
    lock: Option<std::fs::File>,
}

impl Lease {
    /// Who the job runs as.
    pub fn identity(&self) -> &JobIdentity {
        &self.identity
    }

    /// Keeps the uid leased until the worker exits: its processes could not all be killed,
    /// so no other job may ever run as it.
    pub fn retire(self) {
        warn!(uid = ?self.identity.ids.map(|(u, _)| u.as_raw()), "job user retired: its processes survived");
        std::mem::forget(self.lock);
    }
}

impl JobUsers {
    /// Finds the job users `{base}-0`, `{base}-1`, … (the first missing one ends the list).
    /// Refuses when the worker cannot switch to them, unless `unisolated` (then every job
    /// runs as the worker's own user).
    pub fn resolve(base: &str, wanted: usize, unisolated: bool, fallback_home: &Path) -> Result<Self, IsolationError> {
        let wanted = wanted.max(1);
        let own = || Self {
            pool: vec![("(worker)".into(), JobIdentity { ids: None, home: fallback_home.to_path_buf() })],
            slots: wanted,
        };
        let refuse = |why: String| {
            if unisolated {
                warn!(reason = %why, "SWITCHYARD_UNISOLATED_JOBS=1: jobs run as the worker's own user (development only; no isolation)");
                Ok(own())
            } else {
                Err(IsolationError(why, base.to_string()))
            }
        };
        if !Uid::effective().is_root() {
            return refuse("the worker is not root".into());
        }
        let mut pool = Vec::new();
        for i in 0..MAX_JOB_USERS {
            let name = format!("{base}-{i}");
            match User::from_name(&name) {
                Ok(Some(u)) if !u.uid.is_root() && u.gid.as_raw() == 0 => {
                    return refuse(format!("the job user {name} is in group root"));
                }
                Ok(Some(u)) if !u.uid.is_root() => {
                    pool.push((name, JobIdentity { ids: Some((u.uid, u.gid)), home: u.dir }))
                }
                Ok(Some(_)) => return refuse(format!("the job user {name} is root")),
                _ => break,
            }
        }
        if pool.is_empty() {
            return refuse(format!("no job user {base}-0 exists"));
        }
        if !Path::new(PRLIMIT).is_file() {
            return refuse(format!("{PRLIMIT} (util-linux) is missing: jobs would run without limits"));
        }
        let nnp = std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|s| s.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["NoNewPrivs:", "1"]));
        if !nnp {
            return refuse("no_new_privs is not set on the worker".into());
        }
        let uids: HashSet<u32> = pool.iter().filter_map(|(_, s)| s.ids.map(|(u, _)| u.as_raw())).collect();
        if uids.len() != pool.len() {
            return refuse("two job users share a uid".into());
        }
        if let Err(e) = lease_dir() {
            return refuse(format!("{LEASE_DIR} cannot hold the leases: {e}"));
        }
        if wanted > pool.len() {
            warn!(wanted, users = pool.len(), "more job slots than job users: capped");
        }
        let slots = wanted.min(pool.len());
        info!(slots, users = pool.len(), "jobs run isolated, each as a job user of its own");
        Ok(Self { pool, slots })
    }

    /// How many jobs can run at once.
    pub fn len(&self) -> usize {
        self.slots
    }

    /// Never empty (at least one slot); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// Leases a job user no other job on this host holds, waiting up to [`LEASE_WAIT`] for
    /// one (only a host running more jobs than it has job users waits).
    pub async fn lease(&self) -> std::io::Result<Lease> {
        if let [(_, own)] = self.pool.as_slice() {
            if own.ids.is_none() {
                return Ok(Lease { identity: own.clone(), lock: None });
            }
        }
        let started = Instant::now();
        loop {
            for (name, identity) in &self.pool {
                let file = lock_file(name)?;
                if file.try_lock().is_ok() {
                    // A worker that died mid-job may have left processes of this uid: none
                    // may meet the next job. (Processes that survive are retired with it.)
                    let lease = Lease { identity: identity.clone(), lock: Some(file) };
                    let who = identity.clone();
                    match tokio::task::spawn_blocking(move || who.end_job()).await {
                        Ok(Ok(_)) => return Ok(lease),
                        _ => lease.retire(),
                    }
                }
            }
            if started.elapsed() > LEASE_WAIT {
                return Err(std::io::Error::other(format!(
                    "all {} job users were busy for {} s",
                    self.pool.len(),
                    LEASE_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Takes back to root a tree that a worker which died mid-job left with a job user (the
    /// tree's owner says which). That uid's leftover processes are killed first: by us if
    /// we hold it (`current`, killed when leased) or can take its lock now; if another job
    /// holds it, that job's lease killed them when it began. The walk itself goes through
    /// descriptors and never follows a link, whoever else runs as that uid. Blocking.
    pub fn take_back_orphan(&self, path: &Path, current: &JobIdentity) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let owner = match std::fs::symlink_metadata(path) {
            Ok(m) => m.uid(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if owner == 0 || owner == Uid::effective().as_raw() {
            return Ok(());
        }
        let Some((name, identity)) = self.pool.iter().find(|(_, i)| i.ids.is_some_and(|(u, _)| u.as_raw() == owner))
        else {
            return Err(std::io::Error::other(format!("{} belongs to uid {owner}, no job user", path.display())));
        };
        warn!(path = %path.display(), uid = owner, "a tree left with a job user is taken back");
        if current.ids != identity.ids {
            let file = lock_file(name)?;
            if file.try_lock().is_ok() {
                identity.end_job()?;
            }
        }
        crate::tree::hand_over(path, 0, 0, crate::tree::Hand::TakeBack)
    }
}

/// The lock file of job user `name`'s lease (not locked yet).
fn lock_file(name: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(LEASE_DIR).join(format!("{name}.lock")))
}

/// The lease directory: root's, `0700`, a real directory (not a link).
fn lease_dir() -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::create_dir(LEASE_DIR) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(LEASE_DIR)?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(std::io::Error::other("not a directory of root's"));
    }
    std::fs::set_permissions(LEASE_DIR, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

impl JobIdentity {
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

    /// Gives `path` (recursively, never following links) to the job user; a directory at
    /// the top becomes `0700`, so no other job can enter it. Only ever called on a tree root
    /// holds (created by root or [taken back](Self::take_back)). A file with more than one
    /// hard link is skipped: git never makes one, and a job that links a file it may not
    /// touch (`/etc/shadow`, where hard-link protection is off) into its worktree must not
    /// get it handed over by the next command.
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        let Some((uid, gid)) = self.ids else { return Ok(()) };
        crate::tree::hand_over(path, uid.as_raw(), gid.as_raw(), crate::tree::Hand::Give)
    }

    /// Takes `path` back to root after the job, once [`end_job`](Self::end_job) has killed
    /// every process of its uid: the top first (root-owned, `0700`), then the tree, never
    /// following links, with group/other write and setuid bits removed.
    pub fn take_back(&self, path: &Path) -> std::io::Result<()> {
        if self.ids.is_none() {
            return Ok(());
        }
        crate::tree::hand_over(path, 0, 0, crate::tree::Hand::TakeBack)
    }

    /// Kills every process of the job's uid, again and again until none remains (a
    /// process forking as fast as it can is bounded by the job's process limit); `Ok(n)`:
    /// how many were killed. An error means processes survived [`KILL_DEADLINE`]: the
    /// caller must not do root work in the job's trees. Without a uid of its own (the
    /// development flag) there is nothing to kill by uid: the job runner's process-group
    /// kill is all there is.
    pub fn end_job(&self) -> std::io::Result<usize> {
        let Some((uid, gid)) = self.ids else { return Ok(0) };
        let started = Instant::now();
        let mut killed = HashSet::new();
        loop {
            let alive = processes_of(uid.as_raw())?;
            if alive.is_empty() {
                if !killed.is_empty() {
                    warn!(uid = uid.as_raw(), killed = killed.len(), "processes of a finished job were killed");
                }
                return Ok(killed.len());
            }
            if started.elapsed() > KILL_DEADLINE {
                return Err(std::io::Error::other(format!(
                    "{} processes of uid {} survived {} s of SIGKILL",
                    alive.len(),
                    uid.as_raw(),
                    KILL_DEADLINE.as_secs()
                )));
            }
            // As the uid itself first: `kill(-1, SIGKILL)` reaches every process of that uid,
            // enumerated by the kernel (a fork after our scan included); then each one the
            // scan saw. (Only when something is alive: most jobs leave nothing.)
            kill_all_as(uid, gid);
            for pid in alive {
                if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                    killed.insert(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// `kill -9 -1` run as `uid` by the shell's builtin: the kernel signals every process of
/// that uid but the shell itself (no binary beyond `/bin/sh` is needed in the image).
fn kill_all_as(uid: Uid, gid: Gid) {
    use std::os::unix::process::CommandExt;
    let _ = std::process::Command::new("/bin/sh")
        .args(["-c", "kill -9 -1 2>/dev/null"])
        .env_clear()
        .current_dir("/")
        .uid(uid.as_raw())
        .gid(gid.as_raw())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The live processes whose real, effective, saved or filesystem uid is `uid`. A zombie is
/// dead only when it has no other thread: a process whose main thread exited while others
/// run shows `State: Z` and is very much alive.
fn processes_of(uid: u32) -> std::io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        // Gone between the listing and the read: not alive.
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("");
        let threads: u32 = field("Threads:").parse().unwrap_or(1);
        if field("State:").starts_with(['Z', 'X']) && threads <= 1 {
            continue;
        }
        if field("Uid:").split_whitespace().any(|u| u.parse::<u32>() == Ok(uid)) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// A regular file with more than one hard link: git never makes one in a worktree, so it
/// was planted by a job (a link to a file the job may not read or own).
pub(crate) fn planted_link(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.is_file() && meta.nlink() > 1
}

/// Resource limits of one job, applied by `prlimit` (util-linux) as the job user before its
/// program runs, soft and hard alike (a job cannot raise them again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Processes of the slot's uid (`RLIMIT_NPROC`; per uid, so per slot).
    pub processes: u64,
    /// Largest file a job may write (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self { processes: 512, file_bytes: 1 << 30 }
    }
}

/// Where `prlimit` is (an absolute path: the job's `PATH` is not the worker's concern, and a
/// relative lookup would let a writable `PATH` entry choose the wrapper).
pub const PRLIMIT: &str = "/usr/bin/prlimit";

impl JobLimits {
    /// The `prlimit` arguments that run `program args…` under these limits.
    pub fn wrap(&self, program: &str, args: &[String]) -> Vec<String> {
        let mut out = vec![
            format!("--nproc={}", self.processes),
            format!("--fsize={}", self.file_bytes),
            "--core=0".to_string(),
            "--".to_string(),
            program.to_string(),
        ];
        out.extend(args.iter().cloned());
        out
    }
}

/// Makes the worker process non-dumpable (its `/proc/<pid>/*`, environ above all, then
/// belongs to root and no process of the same user can read or ptrace it) and sets
/// `no_new_privs`, which every job inherits: no setuid or file-capability binary raises a
/// job's privileges.
pub fn harden_worker() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        warn!(error = %e, "could not make the worker non-dumpable");
    }
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        warn!(error = %e, "could not set no_new_privs");
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
    fn without_root_or_slot_users_the_worker_refuses_unless_told_otherwise() {
        let home = Path::new("/tmp");
        let missing = JobUsers::resolve("no-such-switchyard-user", 2, false, home);
        assert!(missing.is_err(), "a worker that cannot isolate jobs must not run them");
        assert!(missing.unwrap_err().to_string().contains("SWITCHYARD_UNISOLATED_JOBS"));
        let dev = JobUsers::resolve("no-such-switchyard-user", 2, true, home).expect("development flag");
        assert_eq!(dev.len(), 2);
        assert_eq!(dev.pool[0].1.ids, None);
    }

    #[tokio::test]
    async fn two_jobs_never_hold_the_same_uid_and_a_released_one_is_leased_again() {
        let users = match JobUsers::resolve("switchyard-job", 2, false, Path::new("/tmp")) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let a = users.lease().await.expect("lease");
        let b = users.lease().await.expect("lease");
        assert_ne!(a.identity().ids, b.identity().ids);
        let held = a.identity().ids;
        drop(a);
        // Other workers on this host may lease it meanwhile; some uid is free again.
        let c = users.lease().await.expect("lease");
        assert_ne!(c.identity().ids, b.identity().ids);
        let _ = held;
    }

    #[test]
    fn limits_wrap_the_program_after_a_double_dash() {
        let args = JobLimits { processes: 64, file_bytes: 1024 }.wrap("sh", &["-c".into(), "echo --nproc=1".into()]);
        assert_eq!(args, ["--nproc=64", "--fsize=1024", "--core=0", "--", "sh", "-c", "echo --nproc=1"]);
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
        // THEN the worktree's own files are the job's, the linked file stays root's, and
        // the worktree is closed to every other uid
        assert_eq!(std::fs::metadata(tree.join("src/page.html")).unwrap().uid(), 65534);
        assert_eq!(std::fs::metadata(&secret).unwrap().uid(), 0);
        assert_eq!(std::fs::metadata(&tree).unwrap().mode() & 0o777, 0o700);
        // AND taken back, everything is root's again, the hard link included
        job.take_back(&tree).unwrap();
        assert_eq!(std::fs::metadata(tree.join("src/page.html")).unwrap().uid(), 0);
        assert_eq!(std::fs::symlink_metadata(tree.join("loot")).unwrap().uid(), 0);
        let _ = std::fs::remove_dir_all(&root);
    }
}
