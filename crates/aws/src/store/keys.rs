//! Item keys of DESIGN §3.

use switchyard_core::ids::{sha256_hex, ContainerId, SessionId, ThreadId};

/// Sort key of every singleton item.
pub const META: &str = "META";

/// `PROJECT#{client}#{project}`.
pub fn project_pk(client: &str, project: &str) -> String {
    format!("PROJECT#{client}#{project}")
}
/// `APIKEY#{sha256}`.
pub fn apikey_pk(secret: &str) -> String {
    format!("APIKEY#{}", sha256_hex(secret))
}
/// `CONTAINER#{ContainerId}`.
pub fn container_pk(id: &ContainerId) -> String {
    format!("CONTAINER#{id}")
}
/// `THREAD#{client}#{ThreadId}`.
pub fn thread_pk(client: &str, thread: &ThreadId) -> String {
    format!("THREAD#{client}#{thread}")
}
/// `MSGID#{sha256(client + Message-ID)}`: scoped per client so tenants never share threads.
pub fn msgid_pk(client: &str, message_id: &str) -> String {
    format!("MSGID#{}", sha256_hex(&format!("{client}\n{message_id}")))
}
/// `SESSION#{SessionId}`.
pub fn session_pk(id: &SessionId) -> String {
    format!("SESSION#{id}")
}
/// `CMD#{seq:010}`.
pub fn command_sk(seq: u64) -> String {
    format!("CMD#{seq:010}")
}
/// `IDEMP#{scope}#{key}`: the scope (client, or API key owner) keeps keys of tenants apart.
pub fn idempotency_pk(scope: &str, key: &str) -> String {
    format!("IDEMP#{}", sha256_hex(&format!("{scope}\n{key}")))
}
