//! Provisioning of what the local runtime and the benchmarks need in the emulator (or an
//! account): the table, an ECS cluster and a worker task definition.

use anyhow::Context;
use switchyard_aws::launcher::EcsSettings;
use switchyard_aws::store::Store;
use switchyard_aws::Clients;

/// Creates the table (idempotent).
pub(crate) async fn table(clients: &Clients, table: &str) -> anyhow::Result<Store> {
    let store = Store::new(clients.dynamo.clone(), table);
    store.ensure_table().await.with_context(|| format!("creating table {table}"))?;
    Ok(store)
}

/// Creates an ECS cluster and a worker task definition named after `prefix`.
pub(crate) async fn ecs(
    clients: &Clients,
    prefix: &str,
    subnets: Vec<String>,
    security_groups: Vec<String>,
) -> anyhow::Result<EcsSettings> {
    Ok(switchyard_aws::launcher::provision_cluster(
        &clients.ecs,
        prefix,
        "switchyard-worker:local",
        subnets,
        security_groups,
    )
    .await?)
}

/// Creates a bucket unless this account already has it.
pub(crate) async fn bucket(clients: &Clients, bucket: &str) -> anyhow::Result<()> {
    match clients.s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("creating bucket {bucket}"))),
    }
}
