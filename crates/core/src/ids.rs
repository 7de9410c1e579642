//! Identifiers and naming: slugs, `ContainerId`, `ThreadId`, `SessionId`, queue names.
//!
//! Every name that reaches AWS is built here so that it is valid by construction:
//! SQS queue names are at most 80 characters of `[A-Za-z0-9_-]` plus `.fifo`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::CoreError;

/// Longest client or project slug.
pub const MAX_SLUG: usize = 32;
/// Longest queue-name prefix (the stack's prefix).
pub const MAX_PREFIX: usize = 16;
/// Longest user id we accept (normalised email addresses are at most 254 chars).
pub const MAX_USER: usize = 320;
/// Readable part of a `ContainerId`; with `-` and the 8-char hash it is 42 chars.
const READABLE_LEN: usize = 33;
/// SQS's limit on queue names.
pub const MAX_QUEUE_NAME: usize = 80;

/// Checks a slug of the form `[a-z0-9-]{1,max}`, not starting or ending with `-`.
pub fn validate_slug(kind: &'static str, value: &str, max: usize) -> Result<(), CoreError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidSlug { kind, value: value.chars().take(64).collect(), max })
    }
}

/// Normalises a user id (an email address or an API key owner): trimmed, lower-cased.
/// Rejects empty ids, ids over [`MAX_USER`] chars and control characters.
pub fn normalise_user(raw: &str) -> Result<String, CoreError> {
    // ASCII case only: Unicode lower-casing maps look-alikes onto ASCII (KELVIN SIGN U+212A
    // → `k`), so `ANN@\u{212A}ORP.EXAMPLE`'s owner would be the same user as ann@korp.example.
    let user = raw.trim().to_ascii_lowercase();
    if user.is_empty() {
        return Err(CoreError::InvalidUser("empty".into()));
    }
    if user.chars().count() > MAX_USER {
        return Err(CoreError::InvalidUser(format!("longer than {MAX_USER} characters")));
    }
    if user.chars().any(char::is_control) {
        return Err(CoreError::InvalidUser("contains control characters".into()));
    }
    Ok(user)
}

fn sha256(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") never hash alike.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

/// Lower-case hex SHA-256 of a string (used for API key and Message-ID item keys).
pub fn sha256_hex(value: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
    data_encoding::HEXLOWER.encode(&digest)
}

/// Length of a [`ThreadId`] (IAM patterns match it exactly, see `policy::session_keys`).
pub const THREAD_ID_LEN: usize = 8;

fn base32_8(digest: &[u8; 32]) -> String {
    // 5 bytes = 40 bits = exactly 8 base32 characters.
    data_encoding::BASE32_NOPAD.encode(&digest[..5]).to_ascii_lowercase()
}

/// The container key: all sessions of one user on one project share one container.
///
/// A readable, sanitised prefix (`client-project-user`, cut to 33 chars) plus an
/// 8-char hash of the exact triple, so different keys never collide even when their
/// readable parts do. At most 42 chars of `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    /// Builds the id from validated client/project slugs and a normalised user.
    pub fn new(client: &str, project: &str, user: &str) -> Self {
        let readable: String = format!("{client}-{project}-{user}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        let mut squeezed = String::with_capacity(readable.len());
        for c in readable.chars() {
            if !(c == '-' && squeezed.ends_with('-')) {
                squeezed.push(c);
            }
        }
        let cut: String = squeezed.trim_matches('-').chars().take(READABLE_LEN).collect();
        let cut = cut.trim_end_matches('-');
        let hash = base32_8(&sha256(&[client, project, user]));
        Self(if cut.is_empty() { hash } else { format!("{cut}-{hash}") })
    }

    /// Parses an id that [`ContainerId::new`] built (from the worker's environment, an
    /// operator's command line): `[a-z0-9-]`, at most 42 characters, ending in the hash.
    pub fn parse(value: &str) -> Result<Self, CoreError> {
        let ok = !value.is_empty()
            && value.len() <= READABLE_LEN + 9
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-')
            && !value.ends_with('-');
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(CoreError::InvalidContainerId(value.chars().take(64).collect()))
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContainerId {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ContainerId> for String {
    fn from(value: ContainerId) -> Self {
        value.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One conversation: 8 lower-case base32 characters of a SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThreadId(String);

impl ThreadId {
    /// A thread id derived from a seed (the first Message-ID of an email thread,
    /// or a fresh ULID for an API conversation).
    pub fn from_seed(seed: &str) -> Self {
        Self(base32_8(&sha256(&["thread", seed])))
    }

    /// Parses a thread id found in an address token, a subject tag or a path.
    pub fn parse(value: &str) -> Result<Self, CoreError> {
        let v = value.to_ascii_lowercase();
        let ok = v.len() == THREAD_ID_LEN && v.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'));
        if ok {
            Ok(Self(v))
        } else {
            Err(CoreError::InvalidThreadId(value.chars().take(64).collect()))
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The session's git branch.
    pub fn branch(&self) -> String {
        format!("thread-{}", self.0)
    }
}

impl TryFrom<String> for ThreadId {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ThreadId> for String {
    fn from(value: ThreadId) -> Self {
        value.0
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The work on one thread: `{client}-{ThreadId}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// Builds the session id of a thread of a client.
    pub fn new(client: &str, thread: &ThreadId) -> Self {
        Self(format!("{client}-{thread}"))
    }

    /// Parses `{client}-{ThreadId}` (from an API path, say).
    pub fn parse(value: &str) -> Result<Self, CoreError> {
        let bad = || CoreError::InvalidSessionId(value.chars().take(64).collect());
        let (client, thread) = value.rsplit_once('-').ok_or_else(bad)?;
        validate_slug("client", client, MAX_SLUG).map_err(|_| bad())?;
        ThreadId::parse(thread).map_err(|_| bad())?;
        Ok(Self(value.to_string()))
    }

    /// The thread part of the id.
    pub fn thread(&self) -> ThreadId {
        let (_, t) = self.0.rsplit_once('-').unwrap_or(("", &self.0));
        ThreadId(t.to_string())
    }

    /// The client part of the id.
    pub fn client(&self) -> &str {
        self.0.rsplit_once('-').map_or("", |(c, _)| c)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SessionId> for String {
    fn from(value: SessionId) -> Self {
        value.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One instruction of a session: a ULID (26 Crockford base32 characters, sortable by
/// creation time). It names the command's message dedup ids, its commits and its reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommandId(String);

impl CommandId {
    /// A fresh command id.
    pub fn new() -> Self {
        Self(ulid::Ulid::new().to_string())
    }

    /// Parses a command id (from a stored item, a message, a reply's Message-ID).
    pub fn parse(value: &str) -> Result<Self, CoreError> {
        match ulid::Ulid::from_string(value) {
            Ok(u) => Ok(Self(u.to_string())),
            Err(_) => Err(CoreError::InvalidCommandId(value.chars().take(64).collect())),
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CommandId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<String> for CommandId {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CommandId> for String {
    fn from(value: CommandId) -> Self {
        value.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three queues of a container's queue set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// Work and control messages to the worker.
    In,
    /// Responses from the worker.
    Out,
    /// Dead letters of `in` (work no worker could process) and of `out` (replies that
    /// kept failing).
    Dlq,
}

impl QueueKind {
    /// The kind as it appears in a queue name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Dlq => "dlq",
        }
    }
}

/// The kind of a per-container queue named `name` under `prefix`, by the name's structure
/// (`{prefix}-{kind}-…-g{n}.fifo`), never by a substring: a project may be called `dlq-tools`.
pub fn queue_kind_of(prefix: &str, name: &str) -> Option<QueueKind> {
    queue_parts(prefix, name).map(|(kind, _, _)| kind)
}

/// The container id part of a per-container queue's name under `prefix`
/// (`{prefix}-{kind}-{ContainerId}-g{n}.fifo` → `ContainerId`).
pub fn queue_container_of<'a>(prefix: &str, name: &'a str) -> Option<&'a str> {
    queue_parts(prefix, name).map(|(_, container, _)| container)
}

/// The kind, container id and generation of a per-container queue named `name` under
/// `prefix` (the inverse of [`queue_name`]); `None` for any other name.
pub fn queue_parts<'a>(prefix: &str, name: &'a str) -> Option<(QueueKind, &'a str, u32)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let (kind, rest) = rest.split_once('-')?;
    let (container, generation) = rest.strip_suffix(".fifo")?.rsplit_once("-g")?;
    if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = [QueueKind::In, QueueKind::Out, QueueKind::Dlq].into_iter().find(|k| k.as_str() == kind)?;
    Some((kind, container, generation.parse().ok()?))
}

/// Whether `name` is a per-container queue of `kind` under `prefix`.
pub fn is_queue_of_kind(prefix: &str, kind: QueueKind, name: &str) -> bool {
    queue_kind_of(prefix, name) == Some(kind)
}

/// `{prefix}-{kind}-{ContainerId}-g{generation}.fifo`, always ≤ 80 chars.
pub fn queue_name(prefix: &str, kind: QueueKind, container: &ContainerId, generation: u32) -> String {
    format!("{prefix}-{}-{container}-g{generation}.fifo", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn queue_kinds_are_read_from_the_name_structure() {
        let id = ContainerId::new("acme", "dlq-tools", "ann@example.com");
        for kind in [QueueKind::In, QueueKind::Out, QueueKind::Dlq] {
            let name = queue_name("sy", kind, &id, 3);
            assert_eq!(queue_kind_of("sy", &name), Some(kind), "{name}");
            assert_eq!(queue_container_of("sy", &name), Some(id.as_str()), "{name}");
            assert_eq!(queue_parts("sy", &name), Some((kind, id.as_str(), 3)), "{name}");
        }
        assert!(!is_queue_of_kind("sy", QueueKind::Dlq, &queue_name("sy", QueueKind::Out, &id, 1)));
        assert!(!is_queue_of_kind("sy", QueueKind::Dlq, &queue_name("sy2", QueueKind::Dlq, &id, 1)));
        for other in ["sy-inbound", "sy-dlq-x", "sy-dlq-x-g.fifo", "other-dlq-x-g1.fifo", ""] {
            assert_eq!(queue_kind_of("sy", other), None, "{other}");
        }
    }

    #[test]
    fn slugs() {
        assert!(validate_slug("client", "acme-1", MAX_SLUG).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "../x", "a b", "é", &"a".repeat(33)] {
            assert!(validate_slug("client", bad, MAX_SLUG).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn users() {
        assert_eq!(normalise_user("  Ann@Example.COM ").unwrap(), "ann@example.com");
        assert!(normalise_user("  ").is_err());
        assert!(normalise_user(&"u".repeat(321)).is_err());
        assert!(normalise_user("a\u{0}b").is_err());
        assert!(normalise_user(&"u".repeat(300)).is_ok());
    }

    #[test]
    fn container_id_is_stable_and_readable() {
        let a = ContainerId::new("acme", "site", "ann@example.com");
        assert_eq!(a, ContainerId::new("acme", "site", "ann@example.com"));
        assert!(a.as_str().starts_with("acme-site-ann-example-com-"), "{a}");
        assert_ne!(a, ContainerId::new("acme", "site", "bob@example.com"));
        assert_ne!(a, ContainerId::new("acme", "app", "ann@example.com"));
    }

    #[test]
    fn stored_ids_parse_back_and_hostile_ones_do_not() {
        let c = ContainerId::new("acme", "site", "ann@example.com");
        assert_eq!(ContainerId::parse(c.as_str()).unwrap(), c);
        for bad in ["", "-a", "a-", "A", "a/b", "../x", &"a".repeat(43)] {
            assert!(ContainerId::parse(bad).is_err(), "{bad:?}");
        }
        let id = CommandId::new();
        assert_eq!(id.as_str().len(), 26);
        assert_eq!(CommandId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "x", "01ARZ3NDEKTSV4RRFFQ69G5FA", "../../../../etc/passwd....", "01ARZ3NDEKTSV4RRFFQ69G5FAVX"] {
            assert!(CommandId::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert!(serde_json::from_str::<CommandId>("\"nope\"").is_err());
    }

    #[test]
    fn thread_and_session_ids() {
        let t = ThreadId::from_seed("<abc@mail>");
        assert_eq!(t.as_str().len(), 8);
        assert_eq!(ThreadId::parse(&t.as_str().to_uppercase()).unwrap(), t);
        assert!(ThreadId::parse("abcdefg1").is_err());
        let s = SessionId::new("acme-co", &t);
        assert_eq!(SessionId::parse(s.as_str()).unwrap(), s);
        assert_eq!(s.thread(), t);
        assert_eq!(s.client(), "acme-co");
        assert!(SessionId::parse("../etc-passwd").is_err());
        assert_eq!(t.branch(), format!("thread-{t}"));
    }

    proptest! {
        #[test]
        fn queue_names_always_valid(
            client in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?",
            project in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?",
            user in "\\PC{1,320}",
            prefix in "[a-z0-9]{1,16}",
            generation in any::<u32>(),
        ) {
            let id = ContainerId::new(&client, &project, &user);
            prop_assert!(id.as_str().len() <= 42);
            for kind in [QueueKind::In, QueueKind::Out, QueueKind::Dlq] {
                let name = queue_name(&prefix, kind, &id, generation);
                prop_assert!(name.len() <= MAX_QUEUE_NAME, "{} is {} chars", name, name.len());
                let stem = name.strip_suffix(".fifo").unwrap();
                prop_assert!(stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
        }

        #[test]
        fn different_keys_never_collide(
            a in ("[a-z]{1,3}", "[a-z]{1,3}", "[a-z@.]{1,6}"),
            b in ("[a-z]{1,3}", "[a-z]{1,3}", "[a-z@.]{1,6}"),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(ContainerId::new(&a.0, &a.1, &a.2), ContainerId::new(&b.0, &b.1, &b.2));
        }
    }
}
