//! `switchyard email inspect FILE.eml`: why an email goes where it goes, and why each part
//! of its text was kept or cut.

use anyhow::Context;
use serde_json::json;
use switchyard_core::email::parse_email;
use switchyard_core::thread::{decide, ThreadRule};

/// Prints the parsed message as one JSON object. Rule 2 (known Message-ID) needs the
/// table, so offline the thread is decided by rules 1, 3 and 4 and the rule-2 candidates
/// are listed.
pub(crate) fn run(file: &std::path::Path) -> anyhow::Result<()> {
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let e = parse_email(&raw).with_context(|| format!("{} is not a usable email", file.display()))?;
    let address = e.project_address().ok();
    let token = address.as_ref().and_then(|a| a.thread.clone());
    let d = decide(token.as_ref(), None, &e.subject, &e.message_id);
    let candidates = switchyard_core::thread::reference_candidates(&e.in_reply_to, &e.references);
    let out = json!({
        "from": e.from,
        "to": e.to,
        "subject": e.subject,
        "message_id": e.message_id,
        "in_reply_to": e.in_reply_to,
        "references": e.references,
        "project": address.as_ref().map(|a| json!({"client": a.client, "project": a.project})),
        "thread": {
            "rule": d.rule,
            "id": d.thread,
            "branch": d.thread.branch(),
            "note": (d.rule == ThreadRule::New && !candidates.is_empty())
                .then_some("a known Message-ID among the candidates (rule 2) would take precedence; that needs the table"),
            "reference_candidates": candidates,
        },
        "instruction": e.instruction,
        // Which quote/signature rule cut where (1-based lines of the body below), and
        // whether the rules left nothing so the whole top part was kept.
        "instruction_fallback": e.instruction_fallback,
        "cuts": e.cuts,
        "body": e.body,
        "attachments": e.attachments,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
