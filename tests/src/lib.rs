//! Test harness for emulator tests: every test gets its own table, queue prefix and ECS
//! cluster (unique names), so tests run in parallel and repeatedly against one emulator.
//!
//! The emulator endpoint comes from `AWS_ENDPOINT_URL` (set by `scripts/with-emulator.sh`).
//! With the `localstack` feature and `SWITCHYARD_TEST_BACKEND=localstack`, LocalStack is
//! started through testcontainers instead (needs Docker).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use switchyard_aws::launcher::{EcsLauncher, EcsSettings, Launcher};
use switchyard_aws::queues::Queues;
use switchyard_aws::store::Store;
use switchyard_aws::{CallCounter, Clients};
use switchyard_core::project::{InterruptScope, ProjectConfig};
use switchyard_orchestrator::config::env_list;
use switchyard_orchestrator::Orchestrator;

pub mod world;

/// `infra/template.yaml` as YAML values, for the tests that check it.
pub mod template {
    use serde_yaml::Value;

    /// The template.
    pub fn load() -> Value {
        let path = format!("{}/../infra/template.yaml", env!("CARGO_MANIFEST_DIR"));
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("template")).expect("template is YAML")
    }

    /// A scalar, or the scalar inside a CloudFormation tag (`!Ref X` → `!Ref X`).
    pub fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Tagged(t) => format!("{} {}", t.tag, text(&t.value)),
            Value::Sequence(s) => s.iter().map(text).collect::<Vec<_>>().join(","),
            other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
        }
    }

    /// A sequence's items, a single value as one, nothing for null.
    pub fn list(v: &Value) -> Vec<&Value> {
        match v {
            Value::Sequence(s) => s.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        }
    }
}

/// One isolated test environment.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Unique lower-case prefix of every name in this environment.
    pub prefix: String,
    /// SDK config.
    pub sdk: aws_config::SdkConfig,
    /// Clients (counted).
    pub clients: Clients,
    /// Call counter on every client.
    pub counter: CallCounter,
    /// Table.
    pub table: String,
    /// ECS settings (own cluster).
    pub ecs: EcsSettings,
}

/// A unique, valid lower-case name stem (`t` + 9 base32 chars).
pub fn unique() -> String {
    let u = ulid::Ulid::new().to_string().to_ascii_lowercase();
    format!("t{}", &u[u.len() - 9..])
}

async fn sdk_config() -> anyhow::Result<aws_config::SdkConfig> {
    #[cfg(feature = "localstack")]
    if std::env::var("SWITCHYARD_TEST_BACKEND").as_deref() == Ok("localstack") {
        return localstack::sdk_config().await;
    }
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        bail!("AWS_ENDPOINT_URL is not set: run the tests through `make test` (scripts/with-emulator.sh)");
    }
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())))
        .load()
        .await)
}

impl TestEnv {
    /// Creates the table, an ECS cluster and a worker task definition under a unique prefix.
    pub async fn new() -> anyhow::Result<Self> {
        let prefix = unique();
        let sdk = sdk_config().await?;
        let counter = CallCounter::default();
        let clients = Clients::new(&sdk, Some(&counter));
        let table = format!("{prefix}-table");
        Store::new(clients.dynamo.clone(), &table).ensure_table().await.context("create table")?;
        let ecs = switchyard_aws::launcher::provision_cluster(
            &clients.ecs,
            &prefix,
            "switchyard-worker:test",
            env_list("SWITCHYARD_SUBNETS"),
            env_list("SWITCHYARD_SECURITY_GROUPS"),
        )
        .await
        .context("provision ECS")?;
        counter.reset();
        Ok(Self { prefix, sdk, clients, counter, table, ecs })
    }

    /// The resources of a stack deployed from `infra/template.yaml` (names from its outputs,
    /// exported by `scripts/with-stack.sh`). Tests on it isolate by unique client names.
    pub async fn from_stack() -> anyhow::Result<Self> {
        let var = |k: &str| {
            std::env::var(format!("SWITCHYARD_STACK_{k}")).with_context(|| {
                format!("SWITCHYARD_STACK_{k} not set: run through `make test` (scripts/with-stack.sh)")
            })
        };
        let sdk = sdk_config().await?;
        let counter = CallCounter::default();
        let clients = Clients::new(&sdk, Some(&counter));
        let ecs = EcsSettings {
            cluster: var("CLUSTERNAME")?,
            task_definition: var("TASKDEFINITION")?,
            container_name: "worker".into(),
            subnets: env_list("SWITCHYARD_SUBNETS"),
            security_groups: env_list("SWITCHYARD_SECURITY_GROUPS"),
            assign_public_ip: false,
        };
        Ok(Self { prefix: var("QUEUEPREFIX")?, sdk, clients, counter, table: var("TABLENAME")?, ecs })
    }

    /// The store.
    pub fn store(&self) -> Store {
        Store::new(self.clients.dynamo.clone(), &self.table)
    }

    /// Queue sets under this environment's prefix.
    pub fn queues(&self) -> Queues {
        Queues::new(self.clients.sqs.clone(), &self.prefix)
    }

    /// An orchestrator with the ECS launcher on this environment's cluster.
    pub fn orchestrator(&self) -> Orchestrator {
        let launcher: Arc<dyn Launcher> = Arc::new(EcsLauncher::new(self.clients.ecs.clone(), self.ecs.clone()));
        self.orchestrator_with(launcher)
    }

    /// An orchestrator with another launcher.
    pub fn orchestrator_with(&self, launcher: Arc<dyn Launcher>) -> Orchestrator {
        Orchestrator::new(self.store(), self.queues(), launcher)
    }

    /// An orchestrator on clients of its own whose calls `counter` records: one per
    /// function in the least-privilege test, so each role is compared with its own calls.
    pub fn recorded(&self, ecs: EcsSettings) -> (Orchestrator, Clients, CallCounter) {
        let counter = CallCounter::default();
        let clients = Clients::new(&self.sdk, Some(&counter));
        let launcher: Arc<dyn Launcher> = Arc::new(EcsLauncher::new(clients.ecs.clone(), ecs));
        let o = Orchestrator::new(
            Store::new(clients.dynamo.clone(), &self.table),
            Queues::new(clients.sqs.clone(), &self.prefix),
            launcher,
        );
        (o, clients, counter)
    }

    /// The intake Lambda's state on this environment (`in.example.com`, its SES identity
    /// verified; attachments stored in `bucket` if given).
    pub async fn intake(&self, bucket: Option<String>) -> anyhow::Result<intake_email::State> {
        let mailer = switchyard_aws::mailer::Mailer::new(self.clients.ses.clone());
        mailer.ensure_identity("in.example.com").await?;
        Ok(intake_email::State {
            orchestrator: self.orchestrator(),
            s3: self.clients.s3.clone(),
            mailer,
            inbound_domain: "in.example.com".into(),
            attachments_bucket: bucket,
        })
    }

    /// Stores `value` as an SSM `SecureString` under the client `acme`'s path; returns its name.
    pub async fn put_secret(&self, value: &str) -> anyhow::Result<String> {
        let ssm = aws_sdk_ssm::Client::new(&self.sdk);
        let parameter = format!("/switchyard/acme/secret-{}", unique());
        ssm.put_parameter()
            .name(&parameter)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await?;
        Ok(parameter)
    }

    /// Number of ECS tasks started in this environment's cluster.
    pub async fn ecs_task_count(&self) -> anyhow::Result<usize> {
        let out = self.clients.ecs.list_tasks().cluster(&self.ecs.cluster).send().await?;
        Ok(out.task_arns().len())
    }

    /// Queue URLs under this environment's prefix.
    pub async fn queue_urls(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.queues().list().await?)
    }
}

/// A project allowing `senders`, with a no-op job.
pub fn project(client: &str, name: &str, senders: &[&str]) -> ProjectConfig {
    ProjectConfig {
        client: client.into(),
        project: name.into(),
        repo_url: format!("/tmp/{client}-{name}.git"),
        default_branch: "main".into(),
        allowed_senders: senders.iter().map(|s| s.to_string()).collect(),
        job_command: "true".into(),
        max_concurrent_sessions: 4,
        interrupt_scope: InterruptScope::Session,
        max_run_secs: 60,
        relax_sender_auth_without_dmarc: false,
        allow_ci_changes: false,
        secrets: Default::default(),
        git_token_parameter: None,
        attachments: Default::default(),
        agent: None,
        budgets: Default::default(),
        acknowledge_email: false,
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Builds a raw email.
pub fn email(from: &str, to: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{extra_headers}Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[cfg(feature = "localstack")]
mod localstack {
    use testcontainers_modules::localstack::LocalStack;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;
    use tokio::sync::OnceCell;

    static ENDPOINT: OnceCell<String> = OnceCell::const_new();

    /// Starts one LocalStack container per test process and points the SDK at it.
    pub(super) async fn sdk_config() -> anyhow::Result<aws_config::SdkConfig> {
        let endpoint = ENDPOINT
            .get_or_try_init(|| async {
                let container = LocalStack::default().start().await?;
                let port = container.get_host_port_ipv4(4566).await?;
                // Kept alive for the whole test process.
                std::mem::forget(container);
                anyhow::Ok(format!("http://127.0.0.1:{port}"))
            })
            .await?;
        Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await)
    }
}

/// A scratch directory under the system temp dir, unique per call.
pub fn scratch_dir(what: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("switchyard-{what}-{}", unique()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs git and returns stdout; fails with its stderr.
pub fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A bare repository with one commit on `main` (the project remote).
pub fn git_remote(root: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let bare = root.join("remote.git");
    let seed = root.join("seed");
    std::fs::create_dir_all(&seed)?;
    git(root, &["init", "--quiet", "--bare", "-b", "main", &bare.to_string_lossy()])?;
    git(&seed, &["init", "--quiet", "-b", "main"])?;
    std::fs::write(seed.join("README.md"), "# sample site\n")?;
    git(&seed, &["add", "."])?;
    git(&seed, &["commit", "--quiet", "-m", "initial"])?;
    git(&seed, &["push", "--quiet", &bare.to_string_lossy(), "main"])?;
    Ok(bare)
}

/// The `switchyard-worker` binary built beside the test binary (`cargo test --workspace`).
pub fn worker_binary() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|d| d.parent()).context("test binary has no target dir")?;
    let bin = dir.join("switchyard-worker");
    if !bin.exists() {
        bail!("{} not built: run `cargo build -p switchyard-worker` or `make test`", bin.display());
    }
    Ok(bin)
}
