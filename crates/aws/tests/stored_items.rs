//! Items written before the typed vocabulary read into today's types and write back
//! byte-identical: the change of types needed no data migration. No emulator: this is
//! about the item format alone (`serde_dynamo`, as the store reads and writes it).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use switchyard_aws::store::{CommandItem, ContainerItem, IdempotencyItem, MessageAliasItem, SessionItem, ThreadItem};
use switchyard_core::container::{ContainerStatus, Health};
use switchyard_core::messages::{Outcome, Source};
use switchyard_core::status::{CommandStatus, ErrorCode, SessionStatus};

type Item = HashMap<String, AttributeValue>;

fn fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("fixtures/items-before-typed-vocabulary.json")).expect("fixture parses")
}

/// The item as DynamoDB holds it. `null`s are dropped: the old code wrote `None` as NULL
/// and today's writes NULL too, so both sides are compared without them.
fn item(v: &serde_json::Value) -> Item {
    without_nulls(serde_dynamo::to_item(v).expect("item"))
}

fn without_nulls(item: Item) -> Item {
    item.into_iter().filter(|(_, v)| !matches!(v, AttributeValue::Null(_))).collect()
}

/// Reads `v` as `T`, writes it back, and checks nothing changed.
fn round_trip<T: DeserializeOwned + Serialize>(v: &serde_json::Value) -> T {
    let stored = item(v);
    let typed: T = serde_dynamo::from_item(stored.clone()).expect("reads into today's types");
    let written = without_nulls(serde_dynamo::to_item(&typed).expect("writes"));
    assert_eq!(written, stored, "written back differently");
    typed
}

#[test]
fn items_of_the_previous_build_read_and_write_back_unchanged() {
    let f = fixture();
    let c: ContainerItem = round_trip(&f["container"]);
    assert_eq!((c.container_status, c.health), (Some(ContainerStatus::Running), Some(Health::Degraded)));
    let s: SessionItem = round_trip(&f["session"]);
    assert_eq!((s.status, s.source, s.thread.as_str()), (SessionStatus::Closed, Source::Email, "hdw7dntk"));
    let cmds: Vec<CommandItem> = f["commands"].as_array().expect("commands").iter().map(round_trip).collect();
    assert_eq!(cmds[0].status, CommandStatus::Final(Outcome::Interrupted));
    assert_eq!((cmds[1].status, cmds[1].source), (CommandStatus::Final(Outcome::Failed), Source::Api));
    assert_eq!(cmds[1].error_code, Some(ErrorCode::Git));
    assert_eq!(cmds[2].status, CommandStatus::Queued);
    // A code this build does not know (a newer build's) is kept as it was, not lost.
    assert_eq!(cmds[2].error_code, Some(ErrorCode::Other("quota_exceeded_by_a_newer_build".into())));
    let i: IdempotencyItem = round_trip(&f["idempotency"]);
    assert_eq!(i.command_id, cmds[0].command_id);
    let a: MessageAliasItem = round_trip(&f["alias"]);
    assert_eq!(a.thread, s.thread);
    let t: ThreadItem = round_trip(&f["thread"]);
    assert_eq!(t.session_id, s.session_id);
}

#[test]
fn a_hostile_id_in_an_item_is_refused_when_read() {
    let mut f = fixture();
    f["session"]["session_id"] = serde_json::json!("../../etc-hdw7dntk");
    assert!(serde_dynamo::from_item::<_, SessionItem>(item(&f["session"])).is_err());
    let mut f = fixture();
    f["commands"][0]["status"] = serde_json::json!("done");
    assert!(serde_dynamo::from_item::<_, CommandItem>(item(&f["commands"][0])).is_err());
}
