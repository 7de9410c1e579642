//! Table creation (idempotent) and the schema the code relies on.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};

use super::Store;
use crate::error::{classify, AwsError};

/// GSI over container items by status.
pub const GSI_BY_STATUS: &str = "by-status";
/// GSI over session items by container.
pub const GSI_BY_CONTAINER: &str = "by-container";
/// TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The schema as data, so a test can compare it with `infra/template.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// (hash, range) of the table.
    pub keys: (&'static str, &'static str),
    /// (name, hash, range) per GSI.
    pub gsis: Vec<(&'static str, &'static str, &'static str)>,
    /// TTL attribute.
    pub ttl: &'static str,
}

impl TableSchema {
    /// The schema the store uses.
    pub fn current() -> Self {
        Self {
            keys: ("pk", "sk"),
            gsis: vec![(GSI_BY_STATUS, "container_status", "pk"), (GSI_BY_CONTAINER, "session_container", "pk")],
            ttl: TTL_ATTRIBUTE,
        }
    }
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, AwsError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| AwsError::InvalidRequest { what: "invalid key schema", source: Box::new(e) })
}

impl Store {
    /// Creates the table with its GSIs and TTL if it does not exist; waits until active.
    pub async fn ensure_table(&self) -> Result<(), AwsError> {
        let schema = TableSchema::current();
        let mut attrs = vec!["pk", "sk"];
        for (_, h, r) in &schema.gsis {
            for a in [h, r] {
                if !attrs.contains(a) {
                    attrs.push(a);
                }
            }
        }
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(schema.keys.0, KeyType::Hash)?)
            .key_schema(key(schema.keys.1, KeyType::Range)?);
        for a in attrs {
            let def = AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| AwsError::InvalidRequest { what: "invalid attribute", source: Box::new(e) })?;
            req = req.attribute_definitions(def);
        }
        for (name, h, r) in &schema.gsis {
            let gsi = GlobalSecondaryIndex::builder()
                .index_name(*name)
                .key_schema(key(h, KeyType::Hash)?)
                .key_schema(key(r, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| AwsError::InvalidRequest { what: "invalid gsi", source: Box::new(e) })?;
            req = req.global_secondary_indexes(gsi);
        }
        match req.send().await {
            Ok(_) => {}
            Err(e) => {
                let e = e.into_service_error();
                if !e.is_resource_in_use_exception() {
                    return Err(classify("dynamodb", e));
                }
            }
        }
        for _ in 0..100 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| classify("dynamodb", e))?;
            let active = d.table.and_then(|t| t.table_status).map(|s| s.as_str() == "ACTIVE").unwrap_or(false);
            if active {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(schema.ttl)
            .enabled(true)
            .build()
            .map_err(|e| AwsError::InvalidRequest { what: "invalid ttl", source: Box::new(e) })?;
        // Setting TTL twice is refused by DynamoDB; an already-enabled TTL is what we want.
        if let Err(e) =
            self.client.update_time_to_live().table_name(&self.table).time_to_live_specification(ttl).send().await
        {
            tracing::debug!(error = ?e.into_service_error(), "time to live already set");
        }
        Ok(())
    }
}
