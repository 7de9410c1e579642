//! The local launcher: containers as `switchyard-worker` child processes, with the same
//! environment `RunTask` would carry. Stop = SIGTERM. Every exit is reported like an ECS
//! task-state change (`STOPPED`, exit code, reason) on a channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use switchyard_aws::launcher::{env, LaunchSpec, Launcher};
use switchyard_aws::AwsError;
use tokio::sync::mpsc;

/// A local task that stopped (the local equivalent of an ECS "Task State Change").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExit {
    /// The task id given at launch.
    pub task_arn: String,
    /// The container it served.
    pub container_id: String,
    /// Exit code (None = killed by a signal).
    pub exit_code: Option<i32>,
    /// Why it stopped, in ECS's words where they fit.
    pub reason: String,
}

/// Launches workers as local processes.
#[derive(Debug, Clone)]
pub struct LocalLauncher {
    binary: PathBuf,
    root: PathBuf,
    extra_env: Vec<(String, String)>,
    pids: Arc<Mutex<HashMap<String, u32>>>,
    exits: mpsc::UnboundedSender<TaskExit>,
}

impl LocalLauncher {
    /// A launcher of `binary` whose containers keep their workspaces and logs under `root`.
    /// `extra_env` is added to every worker (limits for tests and the demo).
    pub fn new(
        binary: PathBuf,
        root: PathBuf,
        mut extra_env: Vec<(String, String)>,
    ) -> (Self, mpsc::UnboundedReceiver<TaskExit>) {
        let (exits, rx) = mpsc::unbounded_channel();
        // A worker refuses to run jobs it cannot isolate (root and the slot users). Local
        // development as an ordinary user is the one place that runs them anyway, said once
        // here and by every worker it starts. As root (the image, `make test` here) the slot
        // users must exist (`make job-user`) and isolation is real.
        if !nix::unistd::Uid::effective().is_root() {
            tracing::warn!(
                "not root: local workers run jobs as your own user, without isolation (SWITCHYARD_UNISOLATED_JOBS=1)"
            );
            extra_env.push(("SWITCHYARD_UNISOLATED_JOBS".into(), "1".into()));
        }
        (Self { binary, root, extra_env, pids: Arc::default(), exits }, rx)
    }

    /// The pid of a running task (for operators and failure tests).
    pub fn pid(&self, task_arn: &str) -> Option<u32> {
        self.pids.lock().ok()?.get(task_arn).copied()
    }

    /// Task ids of the running tasks.
    pub fn running(&self) -> Vec<String> {
        self.pids.lock().map(|p| p.keys().cloned().collect()).unwrap_or_default()
    }
}

fn launch_error(reason: &str, e: std::io::Error) -> AwsError {
    AwsError::Launch { reason: reason.into(), source: Some(Box::new(e)) }
}

#[async_trait]
impl Launcher for LocalLauncher {
    async fn launch(&self, spec: &LaunchSpec) -> Result<String, AwsError> {
        let task_arn = format!("local:{}/{}", spec.container_id, ulid::Ulid::new().to_string().to_ascii_lowercase());
        let workspace = self.root.join(spec.container_id.as_str());
        std::fs::create_dir_all(&workspace).map_err(|e| launch_error("workspace", e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("{}.log", spec.container_id)))
            .map_err(|e| launch_error("log file", e))?;
        let log2 = log.try_clone().map_err(|e| launch_error("log file", e))?;
        let mut child = tokio::process::Command::new(&self.binary)
            .envs(spec.env())
            .env(env::TASK_ARN, &task_arn)
            .env("SWITCHYARD_WORKSPACE", &workspace)
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| launch_error(&format!("spawning {}", self.binary.display()), e))?;
        let pid = child.id().unwrap_or_default();
        if let Ok(mut p) = self.pids.lock() {
            p.insert(task_arn.clone(), pid);
        }
        let (pids, exits, arn, container) =
            (self.pids.clone(), self.exits.clone(), task_arn.clone(), spec.container_id.to_string());
        tokio::spawn(async move {
            let status = child.wait().await;
            if let Ok(mut p) = pids.lock() {
                p.remove(&arn);
            }
            let (exit_code, reason) = match status {
                Ok(s) if s.success() => (Some(0), "Essential container in task exited".to_string()),
                Ok(s) => (s.code(), format!("Essential container in task exited ({s})")),
                Err(e) => (None, format!("wait failed: {e}")),
            };
            let _ = exits.send(TaskExit { task_arn: arn, container_id: container, exit_code, reason });
        });
        Ok(task_arn)
    }

    async fn stop(&self, task_arn: &str, _reason: &str) -> Result<(), AwsError> {
        if let Some(pid) = self.pid(task_arn).and_then(|p| i32::try_from(p).ok()) {
            // Already gone is as good as stopped.
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        Ok(())
    }
}
