//! A world for end-to-end tests: emulator env + a project with a real git remote + workers
//! launched as local processes with short timings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::container::{ContainerEvent, ContainerStatus};
use switchyard_core::inbound::inbound_from_email;
use switchyard_core::messages::{decode, Response};
use switchyard_core::project::{InterruptScope, Verdict};
use switchyard_orchestrator::containers::ContainerKey;
use switchyard_orchestrator::{Orchestrator, RouteOutcome};
use switchyard_worker::local::{LocalLauncher, TaskExit};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{email, eventually, git, git_remote, project, scratch_dir, worker_binary, TestEnv};

/// The project's allowed sender.
pub const ANN: &str = "ann@example.com";
/// Upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(40);

/// One isolated end-to-end world.
pub struct World {
    /// Emulator resources.
    pub env: TestEnv,
    /// Use cases with the local launcher.
    pub o: Orchestrator,
    /// The local launcher.
    pub launcher: Arc<LocalLauncher>,
    /// Task exits reported by the launcher.
    pub exits: UnboundedReceiver<TaskExit>,
    /// The project remote (bare repo).
    pub remote: PathBuf,
    /// A scratch dir jobs write marks into.
    pub marks: PathBuf,
    /// Root of everything on disk.
    pub root: PathBuf,
}

/// GIVEN a project whose job is `job` (with `$MARKS` replaced by a scratch dir) and
/// workers launched as local processes with short timings.
pub async fn world(job: &str, scope: InterruptScope, idle_secs: u64) -> anyhow::Result<World> {
    world_in(TestEnv::new().await?, "acme", job, scope, idle_secs).await
}

/// A world whose workers also get `extra` in their environment (e.g. canary credentials).
pub async fn world_with_env(
    job: &str,
    scope: InterruptScope,
    idle_secs: u64,
    extra: &[(&str, String)],
) -> anyhow::Result<World> {
    world_on(TestEnv::new().await?, "acme", job, scope, idle_secs, extra).await
}

/// A world on given resources (a deployed stack), for project `client/site`.
pub async fn world_in(
    env: TestEnv,
    client: &str,
    job: &str,
    scope: InterruptScope,
    idle_secs: u64,
) -> anyhow::Result<World> {
    world_on(env, client, job, scope, idle_secs, &[]).await
}

async fn world_on(
    env: TestEnv,
    client: &str,
    job: &str,
    scope: InterruptScope,
    idle_secs: u64,
    more_env: &[(&str, String)],
) -> anyhow::Result<World> {
    let root = scratch_dir("worker")?;
    let remote = git_remote(&root)?;
    let marks = root.join("marks");
    std::fs::create_dir_all(&marks)?;
    // Jobs run as the unprivileged job user: the scratch dir they write marks into is theirs too.
    std::fs::set_permissions(&marks, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let extra = [
        ("SWITCHYARD_POLL_WAIT_SECS", "2".to_string()),
        ("SWITCHYARD_HEARTBEAT_SECS", "1".into()),
        ("SWITCHYARD_VISIBILITY_SECS", "4".into()),
        ("SWITCHYARD_GRACE_SECS", "2".into()),
        ("SWITCHYARD_IDLE_TIMEOUT_SECS", idle_secs.to_string()),
        ("RUST_LOG", "info".into()),
    ];
    let (launcher, exits) = LocalLauncher::new(
        worker_binary()?,
        root.join("containers"),
        extra.iter().chain(more_env).map(|(k, v)| (k.to_string(), v.clone())).collect(),
    );
    let launcher = Arc::new(launcher);
    let o = env.orchestrator_with(launcher.clone());
    let mut p = project(client, "site", &[ANN, "bob@example.com"]);
    p.repo_url = remote.to_string_lossy().into_owned();
    p.job_command = job.replace("$MARKS", &marks.to_string_lossy());
    p.interrupt_scope = scope;
    o.put_project(p).await?;
    Ok(World { env, o, launcher, exits, remote, marks, root })
}

impl World {
    /// Routes an email.
    pub async fn send(&self, from: &str, to: &str, id: &str, body: &str) -> anyhow::Result<RouteOutcome> {
        let raw = email(from, to, "Site change", id, "", body);
        Ok(self.o.route(&inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound).await?)
    }

    /// The `out` queue of the route's container.
    pub async fn out_url(&self, r: &RouteOutcome) -> anyhow::Result<String> {
        let c = self.env.store().get_container(&r.container).await?;
        Ok(c.and_then(|c| c.out_url).expect("out url recorded"))
    }

    /// Collects responses from `out` until `n` have arrived.
    pub async fn responses(&self, r: &RouteOutcome, n: usize) -> anyhow::Result<Vec<Response>> {
        self.responses_within(r, n, WAIT).await
    }

    /// The same with another deadline (a real agent CLI's first start can be slow).
    pub async fn responses_within(&self, r: &RouteOutcome, n: usize, wait: Duration) -> anyhow::Result<Vec<Response>> {
        let url = self.out_url(r).await?;
        let q = self.env.queues();
        let mut got: Vec<Response> = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while got.len() < n {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {n} responses, got {got:?}");
            for m in q.receive(&url, 10, 1, Some(60)).await? {
                got.push(decode::<Response>(&m.body)?);
                q.delete(&url, &m.receipt).await?;
            }
        }
        Ok(got)
    }

    /// Waits until a job wrote mark `name`.
    pub async fn wait_mark(&self, name: &str) -> anyhow::Result<()> {
        let p = self.marks.join(name);
        eventually(&format!("mark {name}"), WAIT, || {
            let p = p.clone();
            async move { Ok(p.exists().then_some(())) }
        })
        .await
    }

    /// The next task exit.
    pub async fn next_exit(&mut self) -> anyhow::Result<TaskExit> {
        Ok(tokio::time::timeout(WAIT, self.exits.recv()).await?.expect("launcher alive"))
    }

    /// A file on a branch of the remote.
    pub fn branch_file(&self, branch: &str, file: &str) -> Option<String> {
        git(&self.remote, &["show", &format!("{branch}:{file}")]).ok()
    }

    /// The command item of a route.
    pub async fn command(&self, r: &RouteOutcome) -> anyhow::Result<switchyard_aws::store::CommandItem> {
        Ok(self.env.store().get_command(&r.session, r.seq).await?.expect("command"))
    }

    /// Stops every worker and removes the scratch dirs.
    pub async fn stop_all(&mut self) {
        for t in self.launcher.running() {
            let _ = switchyard_aws::launcher::Launcher::stop(self.launcher.as_ref(), &t, "test over").await;
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The thread-token address of a route's thread.
pub fn token(r: &RouteOutcome) -> String {
    format!("acme.site+t.{}@in.example.com", r.thread)
}

/// Marks the container stopped and launches it again, as task-events does.
pub async fn relaunch(w: &World, r: &RouteOutcome) -> anyhow::Result<()> {
    let id = r.container.clone();
    let store = w.env.store();
    store.set_status(&id, None, ContainerEvent::TaskStopped, ContainerStatus::Stopped, Some("task stopped")).await?;
    let item = store.get_container(&id).await?;
    let (generation, urls) = w.o.ensure_queue_set(&id, item.as_ref()).await?;
    let key = ContainerKey { id: &id, client: "acme", project: "site", user: ANN };
    let pending = w.o.claim_container(&key, item.as_ref(), generation, &urls).await?.expect("claim wins");
    w.o.complete_launch(pending).await?;
    Ok(())
}
