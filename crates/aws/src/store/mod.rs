//! The single DynamoDB table of DESIGN §3: `pk`/`sk`, two sparse GSIs, TTL `expires_at`.
//!
//! | GSI | partition | sort | holds |
//! |---|---|---|---|
//! | `by-status` | `container_status` | `pk` | container items |
//! | `by-container` | `session_container` | `pk` | session items |
//!
//! Every rule (one launch, seq order, idempotency) is a conditional write or a transaction.

mod commands;
mod containers;
mod items;
mod keys;
mod routing;
mod table;

pub(crate) use commands::MAX_REASON_CHARS;
pub use commands::{CommandUpdate, Finished};
pub use containers::{ClaimOutcome, QueueUrls};
pub use items::*;
pub use keys::*;
pub use routing::{AppendCommand, AppendOutcome, NewSession, RouteSnapshot};
pub use table::{TableSchema, GSI_BY_CONTAINER, GSI_BY_STATUS, TTL_ATTRIBUTE};

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::{classify, AwsError};

/// Typed access to the Switchyard table.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

impl Store {
    /// A store on `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads one item by key.
    pub async fn get_raw(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", e))?;
        Ok(out.item)
    }

    /// Reads and deserialises one item.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>, AwsError> {
        match self.get_raw(pk, sk).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }

    /// Runs a query to its last page.
    pub(crate) async fn query_all<T: serde::de::DeserializeOwned>(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<T>, AwsError> {
        all_pages(|start| {
            let page = query.clone().set_exclusive_start_key(start);
            async move {
                let r = page.send().await.map_err(|e| classify("dynamodb", e))?;
                Ok((r.items.unwrap_or_default(), r.last_evaluated_key))
            }
        })
        .await
    }

    /// API keys of `client` whose non-secret prefix is `prefix` (a scan: revocation is a
    /// rare operator action, and keys are keyed by the hash of their secret).
    pub async fn api_keys_by_prefix(&self, client: &str, prefix: &str) -> Result<Vec<ApiKeyItem>, AwsError> {
        let scan = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :k) AND #c = :client AND key_prefix = :p")
            .expression_attribute_names("#c", "client")
            .expression_attribute_values(":k", s("APIKEY#"))
            .expression_attribute_values(":client", s(client))
            .expression_attribute_values(":p", s(prefix))
            .consistent_read(true);
        all_pages(|start| {
            let page = scan.clone().set_exclusive_start_key(start);
            async move {
                let r = page.send().await.map_err(|e| classify("dynamodb", e))?;
                Ok((r.items.unwrap_or_default(), r.last_evaluated_key))
            }
        })
        .await
    }

    /// Writes an item unconditionally.
    pub async fn put<T: serde::Serialize>(&self, item: &T) -> Result<(), AwsError> {
        let item: Item = serde_dynamo::to_item(item)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("dynamodb", e))?;
        Ok(())
    }
}

/// Every item of a paginated read: `page(start)` fetches one page (its items and the key
/// to continue from) until DynamoDB returns no continuation key.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, AwsError>
where
    T: serde::de::DeserializeOwned,
    F: FnMut(Option<Item>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Item>, Option<Item>), AwsError>>,
{
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let (items, next) = page(start.take()).await?;
        for item in items {
            out.push(serde_dynamo::from_item(item)?);
        }
        match next {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `({attr} IN (:{tag}0, …))` over the allowed values (`None`: the attribute is absent),
/// set on an `UpdateItem` with its values. Conditions are derived from core's transition
/// tables through this, never restated.
pub(crate) fn one_of<'a>(
    req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    attr: &str,
    tag: &str,
    allowed: impl IntoIterator<Item = Option<&'a str>>,
) -> (aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder, String) {
    let mut req = req;
    let (mut names, mut absent) = (Vec::new(), false);
    for (i, v) in allowed.into_iter().enumerate() {
        match v {
            Some(v) => {
                let name = format!(":{tag}{i}");
                req = req.expression_attribute_values(&name, s(v));
                names.push(name);
            }
            None => absent = true,
        }
    }
    let mut parts = Vec::new();
    if absent {
        parts.push(format!("attribute_not_exists({attr})"));
    }
    if !names.is_empty() {
        parts.push(format!("{attr} IN ({})", names.join(", ")));
    }
    if parts.is_empty() {
        parts.push("attribute_exists(never_set_attribute_guard)".into());
    }
    (req, format!("({})", parts.join(" OR ")))
}

/// Whether an SDK error is a lost conditional write.
pub(crate) fn is_ccf<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// A conditional write's result as "did it win": a lost condition is `Ok(false)`.
pub(crate) fn won<T, E>(res: Result<T, aws_sdk_dynamodb::error::SdkError<E>>) -> Result<bool, AwsError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_ccf(&e) => Ok(false),
        Err(e) => Err(classify("dynamodb", e)),
    }
}

/// Maps a lost conditional write to [`AwsError::Conflict`] (for `map_err`).
pub(crate) fn conflict<E>(context: &'static str) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E>) -> AwsError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| if is_ccf(&e) { AwsError::Conflict { context } } else { classify("dynamodb", e) }
}
