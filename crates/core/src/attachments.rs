//! Attachments for the job (issue 12): which files of an email are passed on, under what
//! name, where they are stored, and why the others are refused. Pure: the intake stores
//! what [`judge`] accepts in S3 and the worker places it in the session's worktree under
//! `.switchyard/attachments/{command}/`. Nothing of an attachment travels in a queue
//! message but its [`AttachmentRef`].

use serde::{Deserialize, Serialize};

use crate::ids::sha256_hex;

/// Largest attachment accepted unless the project says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Most attachments passed on from one email unless the project says otherwise.
pub const DEFAULT_MAX_COUNT: usize = 10;
/// Characters kept of a file name.
pub const MAX_NAME_CHARS: usize = 100;
/// Attachments looked at in one email, and passed to one job, at most (one more note in the
/// reply names the rest): a work message stays small whatever the email or the project says.
pub const MAX_LISTED: usize = 20;
/// Characters kept of a MIME type.
pub const MAX_TYPE_CHARS: usize = 100;

/// Types passed on by default: images (a screenshot, a logo), documents, plain data.
pub const DEFAULT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/svg+xml",
    "application/pdf",
    "text/plain",
    "text/csv",
    "text/markdown",
    "text/html",
    "application/json",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
];

/// File name endings that are programs, whatever type the sender's client declared.
const EXECUTABLE_ENDINGS: &[&str] = &[
    ".exe", ".com", ".bat", ".cmd", ".msi", ".dll", ".scr", ".pif", ".cpl", ".sh", ".bash", ".ps1", ".vbs", ".jar",
    ".app", ".dmg", ".pkg", ".deb", ".rpm", ".run", ".bin", ".elf", ".so", ".dylib", ".apk", ".js", ".mjs", ".hta",
];

/// A project's rules for attachments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentPolicy {
    /// Largest attachment passed on, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Most attachments passed on from one email.
    #[serde(default = "default_max_count")]
    pub max_count: usize,
    /// MIME types passed on (lower case); anything else is refused.
    #[serde(default = "default_types")]
    pub allowed_types: Vec<String>,
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}
fn default_max_count() -> usize {
    DEFAULT_MAX_COUNT
}
fn default_types() -> Vec<String> {
    DEFAULT_TYPES.iter().map(|t| t.to_string()).collect()
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self { max_bytes: DEFAULT_MAX_BYTES, max_count: DEFAULT_MAX_COUNT, allowed_types: default_types() }
    }
}

/// A stored attachment, as the work message and the command item carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// S3 bucket.
    pub bucket: String,
    /// S3 key (`attachments/{client}/{project}/{email}/{nn}-{name}`).
    pub key: String,
    /// Safe file name in the worktree.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// What the reply says of one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentNote {
    /// File name (safe form).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Why it was not passed on; `None` if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Sizes as people read them: `12 KB`, `30.0 MB`.
pub fn human_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes < 1024 * 1024 {
        format!("{} KB", bytes.div_ceil(1024).max(1))
    } else {
        format!("{:.1} MB", bytes as f64 / MB)
    }
}

/// The last `n` characters of `s` (a file name's end says what it is).
fn last_chars(s: &str, n: usize) -> String {
    let skip = s.chars().count().saturating_sub(n);
    s.chars().skip(skip).collect()
}

/// A file name safe in a worktree and a shell: the last path component, letters, digits,
/// `.`, `-`, `_` and spaces kept, no leading dot, at most [`MAX_NAME_CHARS`]; `attachment-{n}`
/// when nothing is left. Numbered by the caller, so two `image.png` never collide.
pub fn safe_name(raw: Option<&str>, index: usize) -> String {
    let base = raw.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String =
        base.chars().map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') { c } else { '_' }).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let mut name = last_chars(cleaned, MAX_NAME_CHARS);
    if name.chars().all(|c| c == '_' || c == '.' || c == ' ') {
        name = format!("attachment-{}", index + 1);
    }
    name
}

/// [`safe_name`], made unique among `taken` (and added to it): `{n}-name`, the number
/// growing until it is free, the whole kept within [`MAX_NAME_CHARS`].
pub fn unique_name(raw: Option<&str>, index: usize, taken: &mut std::collections::HashSet<String>) -> String {
    let base = safe_name(raw, index);
    let mut name = base.clone();
    let mut n = index + 1;
    while taken.contains(&name) {
        let prefix = format!("{n}-");
        let keep = MAX_NAME_CHARS.saturating_sub(prefix.chars().count());
        name = format!("{prefix}{}", last_chars(&base, keep));
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// A stable id of a raw message for its attachments' keys (a hash of its bytes).
pub fn email_digest(raw: &[u8]) -> String {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(raw).into();
    data_encoding::HEXLOWER.encode(&digest)
}

/// Whether the bytes or the name say "program": PE (`MZ`), ELF, Mach-O, a script with a
/// `#!` line, or a name ending in a program's extension.
pub fn is_executable(name: &str, bytes: &[u8]) -> bool {
    let magic = [
        &b"MZ"[..],
        b"\x7fELF",
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xcf\xfa\xed\xfe",
        b"\xce\xfa\xed\xfe",
        b"#!",
    ];
    let lower = name.to_lowercase();
    magic.iter().any(|m| bytes.starts_with(m)) || EXECUTABLE_ENDINGS.iter().any(|e| lower.ends_with(e))
}

/// Why an attachment is not passed on (`None`: it is). `accepted` is how many of the
/// email's attachments were passed on before this one (refused ones do not use the quota).
pub fn judge(
    policy: &AttachmentPolicy,
    name: &str,
    content_type: &str,
    bytes: &[u8],
    accepted: usize,
) -> Option<String> {
    let content_type = content_type.to_lowercase();
    if is_executable(name, bytes) || content_type.contains("executable") || content_type.contains("x-msdownload") {
        return Some("programs are never passed to the job".into());
    }
    if bytes.len() as u64 > policy.max_bytes {
        return Some(format!(
            "{} is over this project's limit of {} per attachment",
            human_size(bytes.len() as u64),
            human_size(policy.max_bytes)
        ));
    }
    if !policy.allowed_types.iter().any(|t| t.eq_ignore_ascii_case(&content_type)) {
        return Some(format!("files of type {content_type} are not accepted by this project"));
    }
    let max_count = policy.max_count.min(MAX_LISTED);
    if accepted >= max_count {
        return Some(format!("only the first {max_count} attachments of an email are passed on"));
    }
    None
}

/// Where an accepted attachment is stored: under its client (the worker's credentials can
/// read that prefix only) and the email (`email`: [`email_digest`]; a retried intake writes
/// the same keys).
pub fn object_key(client: &str, project: &str, email: &str, index: usize, name: &str) -> String {
    format!("attachments/{client}/{project}/{}/{:02}-{name}", &sha256_hex(email)[..32], index + 1)
}

/// The lines of a reply about attachments (empty when the email had none).
pub fn reply_lines(notes: &[AttachmentNote]) -> Vec<String> {
    let passed: Vec<String> = notes
        .iter()
        .filter(|n| n.refused.is_none())
        .map(|n| format!("  - {} ({})", n.name, human_size(n.size)))
        .collect();
    let refused: Vec<String> = notes
        .iter()
        .filter_map(|n| n.refused.as_ref().map(|why| format!("  - {} ({}): {why}", n.name, human_size(n.size))))
        .collect();
    let mut out = Vec::new();
    if !passed.is_empty() {
        out.push("Attachments passed to the job:".to_string());
        out.extend(passed);
    }
    if !refused.is_empty() {
        out.push("Attachments not passed on:".to_string());
        out.extend(refused);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe() {
        let table = [
            (Some("logo.png"), "logo.png"),
            (Some("../../etc/passwd"), "passwd"),
            (Some("C:\\Users\\ann\\shot 1.png"), "shot 1.png"),
            (Some(".bashrc"), "bashrc"),
            (Some("a;rm -rf $(x).png"), "a_rm -rf __x_.png"),
            (Some("..."), "attachment-3"),
            (None, "attachment-3"),
            (Some("Résumé.pdf"), "Résumé.pdf"),
        ];
        for (raw, want) in table {
            assert_eq!(safe_name(raw, 2), want, "{raw:?}");
        }
        assert_eq!(safe_name(Some(&format!("{}.png", "x".repeat(300))), 0).chars().count(), MAX_NAME_CHARS);
        assert!(safe_name(Some(&format!("{}.png", "x".repeat(300))), 0).ends_with(".png"));
    }

    #[test]
    fn judged_by_program_size_type_and_count() {
        let p = AttachmentPolicy::default();
        let png = b"\x89PNG\r\n\x1a\n....";
        assert_eq!(judge(&p, "logo.png", "image/png", png, 0), None);
        assert_eq!(judge(&p, "spec.pdf", "application/pdf", b"%PDF-1.7", 1), None);
        let program = Some("programs are never passed to the job".to_string());
        assert_eq!(judge(&p, "setup.exe", "application/octet-stream", b"MZ\x90\x00", 0), program);
        assert_eq!(judge(&p, "logo.png", "image/png", b"\x7fELF\x02", 0), program, "a program named like an image");
        assert_eq!(judge(&p, "run.sh", "text/plain", b"echo hi", 0), program);
        let big = vec![0u8; 30 * 1024 * 1024];
        assert_eq!(
            judge(&p, "video.png", "image/png", &big, 0).as_deref(),
            Some("30.0 MB is over this project's limit of 10.0 MB per attachment")
        );
        assert_eq!(
            judge(&p, "a.zip", "application/zip", b"PK", 0).as_deref(),
            Some("files of type application/zip are not accepted by this project")
        );
        assert!(judge(&p, "n.png", "image/png", png, 10).unwrap().contains("first 10"));
    }

    #[test]
    fn names_never_collide() {
        let mut taken = std::collections::HashSet::new();
        let names: Vec<String> = [Some("a.png"), Some("3-a.png"), Some("a.png"), Some("a.png")]
            .iter()
            .enumerate()
            .map(|(i, n)| unique_name(*n, i, &mut taken))
            .collect();
        assert_eq!(names, ["a.png", "3-a.png", "4-a.png", "5-a.png"]);
        let long = format!("{}.png", "x".repeat(200));
        let mut taken = std::collections::HashSet::new();
        let a = unique_name(Some(&long), 0, &mut taken);
        let b = unique_name(Some(&long), 1, &mut taken);
        assert_ne!(a, b);
        assert!(b.chars().count() <= MAX_NAME_CHARS && b.starts_with("2-") && b.ends_with(".png"), "{b}");
        // The worker's own `safe_name` keeps it as it is.
        assert_eq!(safe_name(Some(&b), 1), b);
    }

    #[test]
    fn keys_are_per_client_and_stable() {
        let k = object_key("acme", "site", "m1@x", 0, "logo.png");
        assert!(k.starts_with("attachments/acme/site/") && k.ends_with("/01-logo.png"), "{k}");
        assert_eq!(k, object_key("acme", "site", "m1@x", 0, "logo.png"));
        assert_ne!(k, object_key("acme", "site", "m2@x", 0, "logo.png"));
    }

    #[test]
    fn the_reply_lists_both_kinds() {
        let notes = [
            AttachmentNote { name: "logo.png".into(), size: 2048, refused: None },
            AttachmentNote {
                name: "setup.exe".into(),
                size: 10,
                refused: Some("programs are never passed to the job".into()),
            },
        ];
        assert_eq!(
            reply_lines(&notes),
            [
                "Attachments passed to the job:",
                "  - logo.png (2 KB)",
                "Attachments not passed on:",
                "  - setup.exe (1 KB): programs are never passed to the job"
            ]
        );
        assert!(reply_lines(&[]).is_empty());
    }
}
