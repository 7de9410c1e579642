//! The container launcher: ECS `RunTask` in AWS, local worker processes in `switchyard dev`.
//!
//! Both implementations receive the same [`LaunchSpec`] and hand the worker the same
//! environment ([`LaunchSpec::env`]), so the worker cannot tell where it runs.

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType, NetworkConfiguration, Tag,
    TaskOverride,
};

use crate::error::{classify, AwsError};

/// Everything a worker needs to start, as the launcher passes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The container to start a task for (names its queues, workspace and tags).
    pub container_id: switchyard_core::ids::ContainerId,
    /// Client slug.
    pub client: String,
    /// Project slug.
    pub project: String,
    /// Normalised user.
    pub user: String,
    /// The launch token that won the claim.
    pub launch_token: String,
    /// Queue-set generation.
    pub generation: u32,
    /// DynamoDB table.
    pub table: String,
    /// `in` queue URL.
    pub in_url: String,
    /// `out` queue URL.
    pub out_url: String,
    /// DLQ URL.
    pub dlq_url: String,
}

/// Environment variable names the worker reads (kept equal to `infra/template.yaml`).
pub mod env {
    /// DynamoDB table.
    pub const TABLE: &str = "SWITCHYARD_TABLE";
    /// Container id.
    pub const CONTAINER_ID: &str = "SWITCHYARD_CONTAINER_ID";
    /// Client slug.
    pub const CLIENT: &str = "SWITCHYARD_CLIENT";
    /// Project slug.
    pub const PROJECT: &str = "SWITCHYARD_PROJECT";
    /// User.
    pub const USER: &str = "SWITCHYARD_USER";
    /// Launch token.
    pub const LAUNCH_TOKEN: &str = "SWITCHYARD_LAUNCH_TOKEN";
    /// Generation.
    pub const GENERATION: &str = "SWITCHYARD_GENERATION";
    /// `in` URL.
    pub const IN_QUEUE_URL: &str = "SWITCHYARD_IN_QUEUE_URL";
    /// `out` URL.
    pub const OUT_QUEUE_URL: &str = "SWITCHYARD_OUT_QUEUE_URL";
    /// DLQ URL.
    pub const DLQ_URL: &str = "SWITCHYARD_DLQ_URL";
    /// Task id (set by the local launcher; ECS workers read task metadata instead).
    pub const TASK_ARN: &str = "SWITCHYARD_TASK_ARN";
}

impl LaunchSpec {
    /// The worker's environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (env::TABLE, self.table.clone()),
            (env::CONTAINER_ID, self.container_id.to_string()),
            (env::CLIENT, self.client.clone()),
            (env::PROJECT, self.project.clone()),
            (env::USER, self.user.clone()),
            (env::LAUNCH_TOKEN, self.launch_token.clone()),
            (env::GENERATION, self.generation.to_string()),
            (env::IN_QUEUE_URL, self.in_url.clone()),
            (env::OUT_QUEUE_URL, self.out_url.clone()),
            (env::DLQ_URL, self.dlq_url.clone()),
        ]
    }
}

/// Starts and stops containers. Two implementations: ECS and local processes.
#[async_trait]
pub trait Launcher: Send + Sync + std::fmt::Debug {
    /// Starts a container; returns its task id (ARN).
    async fn launch(&self, spec: &LaunchSpec) -> Result<String, AwsError>;
    /// Stops a task (SIGTERM first; the platform kills after its stop timeout).
    async fn stop(&self, task_arn: &str, reason: &str) -> Result<(), AwsError>;
}

/// ECS settings of the launcher.
#[derive(Debug, Clone)]
pub struct EcsSettings {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Task definition family or ARN.
    pub task_definition: String,
    /// Name of the worker container in the task definition.
    pub container_name: String,
    /// Subnets for awsvpc.
    pub subnets: Vec<String>,
    /// Security groups for awsvpc.
    pub security_groups: Vec<String>,
    /// Whether to assign a public IP (needed in public subnets without NAT).
    pub assign_public_ip: bool,
}

/// Launches workers as Fargate tasks.
#[derive(Debug, Clone)]
pub struct EcsLauncher {
    client: aws_sdk_ecs::Client,
    settings: EcsSettings,
}

impl EcsLauncher {
    /// A launcher with these settings.
    pub fn new(client: aws_sdk_ecs::Client, settings: EcsSettings) -> Self {
        Self { client, settings }
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

#[async_trait]
impl Launcher for EcsLauncher {
    async fn launch(&self, spec: &LaunchSpec) -> Result<String, AwsError> {
        let st = &self.settings;
        let env: Vec<KeyValuePair> =
            spec.env().into_iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect();
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(st.subnets.clone()))
            .set_security_groups(Some(st.security_groups.clone()))
            .assign_public_ip(if st.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
            .build()
            .map_err(|e| AwsError::InvalidRequest { what: "awsvpc configuration", source: Box::new(e) })?;
        let out = self
            .client
            .run_task()
            .cluster(&st.cluster)
            .task_definition(&st.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            // A retry of this call (by the SDK or by us) with the same launch token starts
            // no second task: `clientToken` makes RunTask idempotent (≤ 64 chars; a ULID is 26).
            .client_token(&spec.launch_token)
            .started_by(spec.container_id.as_str().chars().take(36).collect::<String>())
            .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder().name(&st.container_name).set_environment(Some(env)).build(),
                    )
                    .build(),
            )
            .tags(tag("switchyard:container", spec.container_id.as_str()))
            .tags(tag("switchyard:client", &spec.client))
            .tags(tag("switchyard:project", &spec.project))
            .tags(tag("switchyard:generation", &spec.generation.to_string()))
            .send()
            .await
            .map_err(|e| classify("ecs", e))?;
        if let Some(task_arn) = out.tasks().first().and_then(|t| t.task_arn()) {
            return Ok(task_arn.to_string());
        }
        let reasons: Vec<String> = out
            .failures()
            .iter()
            .map(|f| format!("{}: {}", f.arn().unwrap_or("-"), f.reason().unwrap_or("-")))
            .collect();
        Err(AwsError::Launch { reason: format!("RunTask started no task ({})", reasons.join("; ")), source: None })
    }

    async fn stop(&self, task_arn: &str, reason: &str) -> Result<(), AwsError> {
        let reason: String = reason.chars().take(255).collect();
        match self.client.stop_task().cluster(&self.settings.cluster).task(task_arn).reason(reason).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_invalid_parameter_exception() {
                    // Unknown or already-stopped task: stopping it is done.
                    Ok(())
                } else {
                    Err(classify("ecs", e))
                }
            }
        }
    }
}

impl EcsLauncher {
    /// Last status of tasks (`RUNNING`, `STOPPED`, …) by ARN, for reconciliation.
    pub async fn describe(&self, task_arns: &[String]) -> Result<Vec<(String, String)>, AwsError> {
        if task_arns.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .describe_tasks()
            .cluster(&self.settings.cluster)
            .set_tasks(Some(task_arns.to_vec()))
            .send()
            .await
            .map_err(|e| classify("ecs", e))?;
        Ok(out
            .tasks()
            .iter()
            .filter_map(|t| Some((t.task_arn()?.to_string(), t.last_status().unwrap_or("UNKNOWN").to_string())))
            .collect())
    }
}

/// Creates an ECS cluster and a Fargate worker task definition named after `prefix` (for the
/// emulator: the local runtime's benchmarks and the tests; in AWS the template does this).
pub async fn provision_cluster(
    ecs: &aws_sdk_ecs::Client,
    prefix: &str,
    image: &str,
    subnets: Vec<String>,
    security_groups: Vec<String>,
) -> Result<EcsSettings, AwsError> {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
    let cluster = format!("{prefix}-cluster");
    ecs.create_cluster().cluster_name(&cluster).send().await.map_err(|e| classify("ecs", e))?;
    let family = format!("{prefix}-worker");
    ecs.register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(ContainerDefinition::builder().name("worker").image(image).memory(512).build())
        .send()
        .await
        .map_err(|e| classify("ecs", e))?;
    Ok(EcsSettings {
        cluster,
        task_definition: family,
        container_name: "worker".into(),
        subnets,
        security_groups,
        assign_public_ip: false,
    })
}
