//! What IAM sees of an SDK call: the action(s) it needs and the kind of resource it names.
//!
//! The call counter records these for every call it sees, so a test can drive a function's
//! code paths and compare what the code really called with what its role in the template
//! grants — instead of a list of actions written by hand, which is how task-events came to
//! lack `dynamodb:Query` and `sqs:ChangeMessageVisibility` on its normal path.
//!
//! Action names follow the Service Authorization Reference: a batch operation needs the
//! action of its single form (`SendMessageBatch` → `sqs:SendMessage`), a transaction needs
//! the action of every item kind it holds (`TransactWriteItems` → `dynamodb:UpdateItem`, …,
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>),
//! SES v2 `SendEmail` with raw content is authorised as `ses:SendRawEmail` (the error SES
//! returns names that action), `RunTask` with tags needs `ecs:TagResource` as well
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html>)
//! and passes the task's roles (`iam:PassRole`).

use aws_smithy_runtime_api::client::interceptors::context::Input;

/// The kind of resource an action is called on, as the template's `Resource` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// The table itself.
    Table,
    /// One of the table's indexes (`table/…/index/*`).
    Index,
    /// A queue set's `in` queue.
    InQueue,
    /// A queue set's `out` queue.
    OutQueue,
    /// A queue set's dead-letter queue.
    DlqQueue,
    /// Any other queue (the stack's inbound email queue).
    OtherQueue,
    /// Not classified here (ECS, S3, SES, Lambda, STS, SSM, `sqs:ListQueues`): only the
    /// action is compared.
    Any,
}

impl ResourceKind {
    /// The kind of a queue by its name or URL (`{prefix}-{in,out,dlq}-{container}-g{n}.fifo`).
    pub fn of_queue(name_or_url: &str) -> Self {
        let name = name_or_url.rsplit('/').next().unwrap_or(name_or_url);
        // The first of the three markers after the prefix decides (a container id may
        // itself contain `-in-`).
        [("-in-", Self::InQueue), ("-out-", Self::OutQueue), ("-dlq-", Self::DlqQueue)]
            .iter()
            .filter_map(|(m, k)| name.find(m).map(|at| (at, *k)))
            .min_by_key(|(at, _)| *at)
            .map_or(Self::OtherQueue, |(_, k)| k)
    }
}

/// One action on one kind of resource.
pub type IamCall = (String, ResourceKind);

/// The IAM actions (and resource kinds) an SDK call needs. `service` and `operation` are
/// the SDK's own names (`"SQS"`, `"ReceiveMessage"`).
pub fn calls_of(service: &str, operation: &str, input: &Input) -> Vec<IamCall> {
    match service {
        "DynamoDB" => dynamodb(operation, input),
        "SQS" => sqs(operation, input),
        "SESv2" if operation == "SendEmail" => {
            use aws_sdk_sesv2::operation::send_email::SendEmailInput;
            let raw =
                input.downcast_ref::<SendEmailInput>().and_then(|i| i.content()).is_some_and(|c| c.raw().is_some());
            vec![(if raw { "ses:SendRawEmail" } else { "ses:SendEmail" }.to_string(), ResourceKind::Any)]
        }
        "ECS" if operation == "RunTask" => {
            use aws_sdk_ecs::operation::run_task::RunTaskInput;
            let mut out =
                vec![("ecs:RunTask".to_string(), ResourceKind::Any), ("iam:PassRole".to_string(), ResourceKind::Any)];
            if input.downcast_ref::<RunTaskInput>().is_some_and(|i| !i.tags().is_empty()) {
                out.push(("ecs:TagResource".to_string(), ResourceKind::Any));
            }
            out
        }
        "S3" if operation == "HeadObject" => vec![("s3:GetObject".to_string(), ResourceKind::Any)],
        "S3" if operation == "ListObjectsV2" => vec![("s3:ListBucket".to_string(), ResourceKind::Any)],
        "Lambda" if operation == "Invoke" => vec![("lambda:InvokeFunction".to_string(), ResourceKind::Any)],
        other => {
            let prefix = match other {
                "SESv2" => "ses",
                "S3" => "s3",
                "ECS" => "ecs",
                "Lambda" => "lambda",
                o => return vec![(format!("{}:{operation}", o.to_ascii_lowercase()), ResourceKind::Any)],
            };
            vec![(format!("{prefix}:{operation}"), ResourceKind::Any)]
        }
    }
}

fn dynamodb(op: &str, input: &Input) -> Vec<IamCall> {
    use aws_sdk_dynamodb::operation as o;
    let one = |action: &str, kind| vec![(format!("dynamodb:{action}"), kind)];
    match op {
        "Query" => {
            let index = input.downcast_ref::<o::query::QueryInput>().and_then(|i| i.index_name()).is_some();
            one("Query", if index { ResourceKind::Index } else { ResourceKind::Table })
        }
        "Scan" => {
            let index = input.downcast_ref::<o::scan::ScanInput>().and_then(|i| i.index_name()).is_some();
            one("Scan", if index { ResourceKind::Index } else { ResourceKind::Table })
        }
        "TransactGetItems" => one("GetItem", ResourceKind::Table),
        "TransactWriteItems" => {
            let Some(i) = input.downcast_ref::<o::transact_write_items::TransactWriteItemsInput>() else {
                return one("TransactWriteItems", ResourceKind::Table);
            };
            let mut out: Vec<IamCall> = Vec::new();
            for item in i.transact_items() {
                for (present, action) in [
                    (item.put().is_some(), "PutItem"),
                    (item.update().is_some(), "UpdateItem"),
                    (item.delete().is_some(), "DeleteItem"),
                    (item.condition_check().is_some(), "ConditionCheckItem"),
                ] {
                    let call = (format!("dynamodb:{action}"), ResourceKind::Table);
                    if present && !out.contains(&call) {
                        out.push(call);
                    }
                }
            }
            out
        }
        other => one(other, ResourceKind::Table),
    }
}

fn sqs(op: &str, input: &Input) -> Vec<IamCall> {
    use aws_sdk_sqs::operation as o;
    // The queue an input names, by its URL or (CreateQueue, GetQueueUrl) its name.
    macro_rules! url {
        ($m:ident :: $t:ident) => {
            url!($m::$t, queue_url)
        };
        ($m:ident :: $t:ident, $field:ident) => {
            input.downcast_ref::<o::$m::$t>().and_then(|i| i.$field()).map(ResourceKind::of_queue)
        };
    }
    let (action, kind) = match op {
        "SendMessage" => ("SendMessage", url!(send_message::SendMessageInput)),
        "SendMessageBatch" => ("SendMessage", url!(send_message_batch::SendMessageBatchInput)),
        "ReceiveMessage" => ("ReceiveMessage", url!(receive_message::ReceiveMessageInput)),
        "DeleteMessage" => ("DeleteMessage", url!(delete_message::DeleteMessageInput)),
        "DeleteMessageBatch" => ("DeleteMessage", url!(delete_message_batch::DeleteMessageBatchInput)),
        "ChangeMessageVisibility" => {
            ("ChangeMessageVisibility", url!(change_message_visibility::ChangeMessageVisibilityInput))
        }
        "ChangeMessageVisibilityBatch" => {
            ("ChangeMessageVisibility", url!(change_message_visibility_batch::ChangeMessageVisibilityBatchInput))
        }
        "GetQueueAttributes" => ("GetQueueAttributes", url!(get_queue_attributes::GetQueueAttributesInput)),
        "SetQueueAttributes" => ("SetQueueAttributes", url!(set_queue_attributes::SetQueueAttributesInput)),
        "DeleteQueue" => ("DeleteQueue", url!(delete_queue::DeleteQueueInput)),
        "PurgeQueue" => ("PurgeQueue", url!(purge_queue::PurgeQueueInput)),
        "TagQueue" => ("TagQueue", url!(tag_queue::TagQueueInput)),
        "ListQueueTags" => ("ListQueueTags", url!(list_queue_tags::ListQueueTagsInput)),
        "CreateQueue" => ("CreateQueue", url!(create_queue::CreateQueueInput, queue_name)),
        "GetQueueUrl" => ("GetQueueUrl", url!(get_queue_url::GetQueueUrlInput, queue_name)),
        other => (other, Some(ResourceKind::Any)),
    };
    vec![(format!("sqs:{action}"), kind.unwrap_or(ResourceKind::Any))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_classified_by_the_first_marker_after_the_prefix() {
        assert_eq!(ResourceKind::of_queue("http://h/1/sy-in-acme-site-ab12cd34-g1.fifo"), ResourceKind::InQueue);
        assert_eq!(ResourceKind::of_queue("sy-out-acme-in-site-ab12cd34-g1.fifo"), ResourceKind::OutQueue);
        assert_eq!(ResourceKind::of_queue("sy-dlq-a-out-b-g2.fifo"), ResourceKind::DlqQueue);
        assert_eq!(ResourceKind::of_queue("https://sqs/123/switchyard-inbound"), ResourceKind::OtherQueue);
    }

    #[test]
    fn batches_and_transactions_need_the_actions_of_their_parts() {
        use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
        let key = std::collections::HashMap::from([("pk".to_string(), AttributeValue::S("k".into()))]);
        let update = Update::builder()
            .table_name("t")
            .set_key(Some(key.clone()))
            .update_expression("SET a = :a")
            .build()
            .expect("update");
        let check = ConditionCheck::builder()
            .table_name("t")
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .build();
        let tx = aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput::builder()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().condition_check(check.expect("check")).build())
            .build()
            .expect("input");
        let calls = calls_of("DynamoDB", "TransactWriteItems", &Input::erase(tx));
        assert_eq!(
            calls,
            vec![
                ("dynamodb:UpdateItem".to_string(), ResourceKind::Table),
                ("dynamodb:ConditionCheckItem".to_string(), ResourceKind::Table)
            ]
        );
        let batch = aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput::builder()
            .queue_url("http://h/1/sy-out-x-g1.fifo")
            .build()
            .expect("input");
        assert_eq!(
            calls_of("SQS", "SendMessageBatch", &Input::erase(batch)),
            vec![("sqs:SendMessage".to_string(), ResourceKind::OutQueue)]
        );
    }
}
