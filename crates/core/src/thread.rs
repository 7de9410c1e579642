//! The thread rules of DESIGN §2.1 step 3, in this order:
//! 1. a thread token in the recipient address (`…+t.{ThreadId}@…`);
//! 2. a known Message-ID in `References` / `In-Reply-To`;
//! 3. a `[#ThreadId]` subject tag;
//! 4. else a new thread from the hash of the Message-ID.
//!
//! Rule 2 needs a lookup; the caller does it (only when rule 1 did not match) and passes
//! the result in, so the decision itself stays pure.

use serde::{Deserialize, Serialize};

use crate::ids::ThreadId;

/// Which rule placed the message in its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadRule {
    /// Rule 1: recipient token.
    RecipientToken,
    /// Rule 2: a known Message-ID in References / In-Reply-To.
    KnownReference,
    /// Rule 3: `[#ThreadId]` in the subject.
    SubjectTag,
    /// Rule 4: a new thread.
    New,
    /// A reply by another sender to someone else's thread: a new thread of their own (a
    /// session has one owner; the joiner's instruction never runs in the owner's container
    /// or conversation, and their reply never carries the owner's work).
    OwnSession,
}

/// The thread of a sender who wrote into another person's thread: their own, derived from
/// the message and the sender (so a redelivery lands in the same one).
pub fn own_thread(user: &str, message_id: &str) -> ThreadId {
    ThreadId::from_seed(&format!("own\n{user}\n{message_id}"))
}

/// The outcome of the thread rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadDecision {
    /// The rule that matched.
    pub rule: ThreadRule,
    /// The thread.
    pub thread: ThreadId,
}

/// Finds a `[#abcdefgh]` tag in a subject.
pub fn subject_tag(subject: &str) -> Option<ThreadId> {
    let mut rest = subject;
    // Linear: a tag is `[#` + 8 characters + `]`, so only the next 9 bytes are looked at
    // (`[#[#[#…` without a `]` would otherwise scan to the end once per `[#`).
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        if let Some(end) = after.get(..after.len().min(16)).and_then(|w| w.find(']')) {
            if let Ok(t) = ThreadId::parse(&after[..end]) {
                return Some(t);
            }
        }
        rest = after;
    }
    None
}

/// The ids whose aliases rule 2 looks up: In-Reply-To first, then References newest first.
pub fn reference_candidates(in_reply_to: &[String], references: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in in_reply_to.iter().chain(references.iter().rev()) {
        if out.len() == 50 {
            break;
        }
        if seen.insert(id.as_str()) {
            out.push(id.clone());
        }
    }
    out
}

/// Applies the rules in order. `known_reference` is the thread found by rule 2's lookup.
pub fn decide(
    recipient_token: Option<&ThreadId>,
    known_reference: Option<&ThreadId>,
    subject: &str,
    message_id: &str,
) -> ThreadDecision {
    if let Some(t) = recipient_token {
        return ThreadDecision { rule: ThreadRule::RecipientToken, thread: t.clone() };
    }
    if let Some(t) = known_reference {
        return ThreadDecision { rule: ThreadRule::KnownReference, thread: t.clone() };
    }
    if let Some(t) = subject_tag(subject) {
        return ThreadDecision { rule: ThreadRule::SubjectTag, thread: t };
    }
    ThreadDecision { rule: ThreadRule::New, thread: ThreadId::from_seed(message_id) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> ThreadId {
        ThreadId::parse(s).unwrap()
    }

    #[test]
    fn rules_apply_in_order() {
        let (a, b, c) = (t("aaaaaaaa"), t("bbbbbbbb"), t("cccccccc"));
        let subj = "Re: thing [#cccccccc]";
        assert_eq!(decide(Some(&a), Some(&b), subj, "m").rule, ThreadRule::RecipientToken);
        assert_eq!(decide(None, Some(&b), subj, "m").thread, b);
        assert_eq!(decide(None, None, subj, "m").thread, c);
        let new = decide(None, None, "hello", "m@x");
        assert_eq!(new.rule, ThreadRule::New);
        assert_eq!(new.thread, ThreadId::from_seed("m@x"));
    }

    #[test]
    fn subject_tags() {
        assert_eq!(subject_tag("[#bad] then [#abcdefgh] x"), Some(t("abcdefgh")));
        assert_eq!(subject_tag("no tag [#"), None);
        assert_eq!(subject_tag("[#ABCDEFGH]"), Some(t("abcdefgh")));
    }

    #[test]
    fn hostile_subjects_and_reference_lists_cost_linear_time() {
        // Each input costs minutes with a scan to the end per `[#` (or a list walk per id);
        // linear, it is milliseconds. The budget is 40× what it takes here, not a benchmark.
        let budget = std::time::Duration::from_secs(2);
        let subject = "[#".repeat(1_000_000);
        let t = std::time::Instant::now();
        assert_eq!(subject_tag(&subject), None);
        assert!(t.elapsed() < budget, "subject scan took {:?}", t.elapsed());
        let refs: Vec<String> = (0..200_000).map(|i| format!("m{i}@x")).collect();
        let t = std::time::Instant::now();
        let c = reference_candidates(&refs, &refs);
        assert_eq!(c.len(), 50);
        assert!(t.elapsed() < budget, "reference walk took {:?}", t.elapsed());
    }

    #[test]
    fn candidates_are_deduplicated_newest_first() {
        let c = reference_candidates(&["c".into()], &["a".into(), "b".into(), "c".into()]);
        assert_eq!(c, vec!["c", "b", "a"]);
    }
}
