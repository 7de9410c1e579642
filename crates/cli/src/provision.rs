//! Provisioning of what the local runtime and the benchmarks need in the emulator (or an
//! account): the table, an ECS cluster and a worker task definition.

use anyhow::Context;
use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
use switchyard_aws::launcher::EcsSettings;
use switchyard_aws::store::Store;
use switchyard_aws::Clients;

/// Creates the table (idempotent).
pub(crate) async fn table(clients: &Clients, table: &str) -> anyhow::Result<Store> {
    let store = Store::new(clients.dynamo.clone(), table);
    store.ensure_table().await.with_context(|| format!("creating table {table}"))?;
    Ok(store)
}

/// Creates an ECS cluster and a Fargate worker task definition named after `prefix`.
pub(crate) async fn ecs(
    clients: &Clients,
    prefix: &str,
    subnets: Vec<String>,
    security_groups: Vec<String>,
) -> anyhow::Result<EcsSettings> {
    let cluster = format!("{prefix}-cluster");
    clients.ecs.create_cluster().cluster_name(&cluster).send().await.context("create cluster")?;
    let family = format!("{prefix}-worker");
    clients
        .ecs
        .register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder().name("worker").image("switchyard-worker:local").memory(512).build(),
        )
        .send()
        .await
        .context("register task definition")?;
    Ok(EcsSettings {
        cluster,
        task_definition: family,
        container_name: "worker".into(),
        subnets,
        security_groups,
        assign_public_ip: false,
    })
}
