//! The decisions of routing and of a job's end, as pure functions of what was read: the
//! use cases only fetch the facts, call these, and write what they return.
//!
//! - [`validate`] and [`plan_route`]: DESIGN §2.1 steps 1–6 for one inbound — names,
//!   instruction, sender authentication and allow-list, session ownership, which
//!   container, which seq, which idempotency key.
//! - [`outcome_of`]: how a job's end and the reason it was stopped become the command's
//!   outcome (or a checkpoint, for a graceful stop).

use crate::email::EmailError;
use crate::ids::{normalise_user, validate_slug, CommandId, ContainerId, SessionId, ThreadId, MAX_SLUG};
use crate::inbound::{Inbound, ThreadHint};
use crate::messages::limits::MAX_INSTRUCTION_BYTES;
use crate::messages::{clean_instruction, Outcome, Source};
use crate::project::{AuthError, ProjectConfig, SecretsError};
use crate::sender::{Authenticated, Unauthenticated};
use crate::status::{ErrorCode, SessionStatus};
use crate::CoreError;

/// Why an inbound was refused. Nothing is routed for a rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The email could not be used (malformed, no sender, too large, no project recipient).
    #[error(transparent)]
    Email(#[from] EmailError),
    /// A client, project, user, session or container name is invalid.
    #[error("invalid name: {0}")]
    Invalid(#[from] CoreError),
    /// A project's secrets do not name parameters under the client's path.
    #[error("invalid secrets: {0}")]
    Secrets(#[from] SecretsError),
    /// The project does not exist.
    #[error("unknown project {client}/{project}")]
    UnknownProject {
        /// The client slug the inbound named.
        client: String,
        /// The project slug the inbound named.
        project: String,
    },
    /// The sender is not on the project's allow-list.
    #[error("sender {0} is not allowed on this project")]
    SenderNotAllowed(String),
    /// The `From` domain is not authenticated (DMARC, aligned SPF or DKIM): the address
    /// may be forged, so it is never answered.
    #[error("sender not authenticated: {0}")]
    Unauthenticated(#[from] Unauthenticated),
    /// The session does not exist (or belongs to someone else: an API caller is not told
    /// which).
    #[error("session not found")]
    SessionNotFound,
    /// The session was closed by its owner.
    #[error("session is closed")]
    SessionClosed,
    /// The thread belongs to another project of the client.
    #[error("thread belongs to another project")]
    ThreadMismatch,
    /// The instruction is empty after quotes and signatures are removed.
    #[error("no instruction: the message has no new text")]
    EmptyInstruction,
    /// The instruction is larger than a work message can carry.
    #[error("instruction of {size} bytes is over the limit of {limit}")]
    InstructionTooLarge {
        /// Its size in bytes, control characters removed.
        size: usize,
        /// [`MAX_INSTRUCTION_BYTES`].
        limit: usize,
    },
}

impl Rejection {
    /// A stable machine-readable code (used in logs, problem+json types, metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Email(EmailError::Malformed(_)) => "malformed_email",
            Self::Email(EmailError::NoSender) => "no_sender",
            Self::Email(EmailError::AmbiguousSender) => "ambiguous_sender",
            Self::Email(EmailError::TooLarge { .. } | EmailError::BodyTooLarge { .. }) => "too_large",
            Self::Email(EmailError::NoProjectRecipient) => "no_project_recipient",
            Self::Email(EmailError::AutoReply(_)) => "auto_reply",
            Self::Invalid(_) | Self::Secrets(_) => "invalid_name",
            Self::UnknownProject { .. } => "unknown_project",
            Self::SenderNotAllowed(_) => "sender_not_allowed",
            Self::Unauthenticated(_) => "unauthenticated_sender",
            Self::SessionNotFound => "session_not_found",
            Self::SessionClosed => "session_closed",
            Self::ThreadMismatch => "thread_mismatch",
            Self::EmptyInstruction => "empty_instruction",
            Self::InstructionTooLarge { .. } => "instruction_too_large",
        }
    }
}

/// What routing knows of an existing session (read in the same `BatchGetItem` as the
/// project and the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    /// The project the session belongs to: a thread never crosses projects.
    pub project: String,
    /// Whose session it is: only they may continue it through the API, and their
    /// container serves it.
    pub user: String,
    /// Closed sessions refuse instructions.
    pub status: SessionStatus,
    /// The container that serves it (fixed at creation, even if the sender changes).
    pub container: ContainerId,
    /// The seq its next command gets.
    pub next_seq: u64,
}

/// Everything [`plan_route`] decides for one inbound.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutePlan<'p> {
    /// The project the inbound is for (checked to exist).
    pub project: &'p ProjectConfig,
    /// The session the command joins (or creates).
    pub session: SessionId,
    /// Whether the command creates the session (with seq 1).
    pub new_session: bool,
    /// The container whose `in` queue gets the work: the session's, or the sender's own.
    pub container: ContainerId,
    /// The user the container belongs to (the session owner's, for an existing session).
    pub owner: String,
    /// The command's seq within the session.
    pub seq: u64,
    /// `(scope, key)` of the idempotency item: a redelivered email (same Message-ID) or a
    /// retried API call (same `Idempotency-Key`, same caller) finds the first command.
    pub idempotency: (String, String),
    /// Whether the sender passed only by the project's relaxation for domains without
    /// DMARC (logged and counted by the caller).
    pub relaxed_sender: bool,
}

/// The names in an inbound, its sender and its instruction, checked. Returns the
/// normalised user.
pub fn validate(inbound: &Inbound) -> Result<String, Rejection> {
    validate_slug("client", &inbound.client, MAX_SLUG)?;
    validate_slug("project", &inbound.project, MAX_SLUG)?;
    let user = normalise_user(&inbound.sender)?;
    if inbound.instruction.trim().is_empty() {
        return Err(Rejection::EmptyInstruction);
    }
    let size = clean_instruction(&inbound.instruction).len();
    if size > MAX_INSTRUCTION_BYTES {
        return Err(Rejection::InstructionTooLarge { size, limit: MAX_INSTRUCTION_BYTES });
    }
    Ok(user)
}

/// Decides where an inbound goes, from the project and session read for it. `user` is
/// [`validate`]'s, `thread` the resolved thread, `command_id` the id the command will get
/// (the idempotency key of an inbound that brings none).
pub fn plan_route<'p>(
    project: Option<&'p ProjectConfig>,
    session: Option<&SessionFacts>,
    inbound: &Inbound,
    user: &str,
    thread: &ThreadId,
    command_id: &CommandId,
) -> Result<RoutePlan<'p>, Rejection> {
    let project = project.ok_or_else(|| Rejection::UnknownProject {
        client: inbound.client.clone(),
        project: inbound.project.clone(),
    })?;
    let mut relaxed_sender = false;
    if inbound.source == Source::Email {
        let how = project.authorise_email(user, &inbound.evidence).map_err(|e| match e {
            AuthError::Unauthenticated(why) => Rejection::Unauthenticated(why),
            AuthError::SenderNotAllowed(s) => Rejection::SenderNotAllowed(s),
        })?;
        relaxed_sender = how == Authenticated::RelaxedNoDmarc;
    }
    match session {
        Some(s) if s.project != inbound.project => return Err(Rejection::ThreadMismatch),
        Some(s) if inbound.source == Source::Api && s.user != user => return Err(Rejection::SessionNotFound),
        Some(s) if s.status == SessionStatus::Closed => return Err(Rejection::SessionClosed),
        None if matches!(inbound.thread, ThreadHint::Api { session: Some(_) }) => {
            return Err(Rejection::SessionNotFound)
        }
        _ => {}
    }
    let client = inbound.client.as_str();
    let scope = match inbound.source {
        Source::Email => format!("email\n{client}"),
        Source::Api => format!("api\n{client}\n{user}"),
    };
    let key = inbound.idempotency_key.clone().unwrap_or_else(|| command_id.to_string());
    Ok(RoutePlan {
        project,
        session: SessionId::new(client, thread),
        new_session: session.is_none(),
        container: session.map_or_else(|| ContainerId::new(client, &inbound.project, user), |s| s.container.clone()),
        owner: session.map_or_else(|| user.to_string(), |s| s.user.clone()),
        seq: session.map_or(1, |s| s.next_seq),
        idempotency: (scope, key),
        relaxed_sender,
    })
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// Exited by itself with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// Stopped on request (see [`StopReason`]).
    Interrupted,
    /// Stopped by one of the project's limits (the work so far is committed).
    Limit(crate::agent::Limit),
}

/// Why a running job is being stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A newer instruction of the session superseded it.
    Interrupted {
        /// The newer command, if known (named in the reply).
        by: Option<CommandId>,
        /// Shown to the user in the interrupted reply.
        reason: String,
    },
    /// Cancelled by the user.
    Cancelled,
    /// The container is stopping (SIGTERM, a superseding launch): not an outcome — the
    /// partial work is a checkpoint and the instruction runs again.
    Shutdown,
}

/// What a job's end means for its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobVerdict {
    /// A graceful stop: commit a checkpoint, put the command back to `queued`, release
    /// the message.
    Checkpoint,
    /// The command's final outcome.
    Final {
        /// The outcome.
        outcome: Outcome,
        /// Why it failed, when it did.
        code: Option<ErrorCode>,
        /// A sentence for the user (replaces the job's output as the summary), if any.
        note: Option<String>,
        /// The error message, when it failed.
        error: Option<String>,
        /// The newer command that superseded it (interrupted only).
        superseded_by: Option<CommandId>,
        /// What the commit of its (partial) work is called.
        subject: String,
    },
}

/// The verdict on a job from how it ended and why it was stopped. `instruction` names the
/// commit of a successful job; `max_run_secs` is quoted in a time-out.
pub fn outcome_of(
    end: JobEnd,
    stop: Option<&StopReason>,
    command: &CommandId,
    instruction: &str,
    max_run_secs: u64,
) -> JobVerdict {
    let fin = |outcome, code, note: Option<String>, error: Option<String>, subject: String| JobVerdict::Final {
        outcome,
        code,
        note,
        error,
        superseded_by: None,
        subject,
    };
    match (end, stop) {
        (JobEnd::Interrupted, Some(StopReason::Shutdown)) => JobVerdict::Checkpoint,
        (JobEnd::Exited(Some(0)), _) => fin(
            Outcome::Succeeded,
            None,
            None,
            None,
            format!("switchyard: {}", instruction.lines().next().unwrap_or("change")),
        ),
        (JobEnd::Interrupted, Some(StopReason::Cancelled)) => fin(
            Outcome::Cancelled,
            None,
            Some("cancelled while running; partial work committed".into()),
            None,
            format!("switchyard: cancelled {command}"),
        ),
        (JobEnd::Interrupted, s) => {
            let (by, why) = match s {
                Some(StopReason::Interrupted { by, reason }) => (by.clone(), reason.clone()),
                _ => (None, "stopped on request".to_string()),
            };
            JobVerdict::Final {
                outcome: Outcome::Interrupted,
                code: None,
                note: Some(format!("interrupted: {why}; partial work committed")),
                error: None,
                superseded_by: by,
                subject: format!("switchyard: interrupted {command}"),
            }
        }
        (JobEnd::Limit(limit), _) => {
            use crate::agent::Limit;
            let (code, why, name) = match limit {
                Limit::WallClock => (ErrorCode::Timeout, format!("job ran past {max_run_secs} s"), "time limit"),
                Limit::Inactivity => (
                    ErrorCode::Inactive,
                    "job printed nothing for the inactivity limit".to_string(),
                    "inactivity limit",
                ),
                Limit::Cost => (ErrorCode::CostLimit, "the agent's cost passed the cost cap".to_string(), "cost cap"),
            };
            fin(
                Outcome::Failed,
                Some(code),
                Some(format!(
                    "stopped by the project's {name}: {why}; the work so far is saved as a checkpoint commit"
                )),
                Some(why),
                format!("switchyard: checkpoint {command} ({name})"),
            )
        }
        (JobEnd::Exited(code), _) => fin(
            Outcome::Failed,
            Some(ErrorCode::JobExit),
            None,
            Some(code.map_or("job was killed by a signal".into(), |c| format!("job exited with status {c}"))),
            format!("switchyard: failed {command}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Verdict;
    use crate::sender::SenderEvidence;

    fn project(allowed: &[&str]) -> ProjectConfig {
        serde_json::from_value(serde_json::json!({
            "client": "acme", "project": "site", "repo_url": "", "job_command": "true",
            "allowed_senders": allowed,
        }))
        .unwrap()
    }

    fn api(instruction: &str, session: Option<SessionId>) -> Inbound {
        Inbound {
            source: Source::Api,
            client: "acme".into(),
            project: "site".into(),
            sender: "Ann@Example.com".into(),
            subject: String::new(),
            instruction: instruction.into(),
            message_id: None,
            references: Vec::new(),
            thread: ThreadHint::Api { session },
            idempotency_key: None,
            evidence: SenderEvidence::default(),
            address: None,
            instruction_fallback: false,
            attachments: Vec::new(),
            attachment_notes: Vec::new(),
            webhook: None,
        }
    }

    fn email(evidence: SenderEvidence) -> Inbound {
        Inbound {
            source: Source::Email,
            thread: ThreadHint::Email { token: None, candidates: Vec::new() },
            evidence,
            ..api("fix it", None)
        }
    }

    fn facts(user: &str, status: SessionStatus, project: &str) -> SessionFacts {
        SessionFacts {
            project: project.into(),
            user: user.into(),
            status,
            container: ContainerId::new("acme", "site", user),
            next_seq: 7,
        }
    }

    #[test]
    fn validation_by_table() {
        let too_big = "x".repeat(MAX_INSTRUCTION_BYTES + 1);
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("acme", "site", "fix", None),
            ("Acme", "site", "fix", Some("invalid_name")),
            ("acme", "../x", "fix", Some("invalid_name")),
            ("acme", "site", "  \n ", Some("empty_instruction")),
            ("acme", "site", &too_big, Some("instruction_too_large")),
        ];
        for (client, project, text, want) in cases {
            let mut i = api(text, None);
            (i.client, i.project) = (client.to_string(), project.to_string());
            assert_eq!(validate(&i).err().map(|r| r.code()), *want, "{client}/{project}");
        }
        assert_eq!(validate(&api("fix", None)).unwrap(), "ann@example.com");
        let mut i = api("fix", None);
        i.sender = "a\u{0}b".into();
        assert!(matches!(validate(&i), Err(Rejection::Invalid(CoreError::InvalidUser(_)))));
    }

    #[test]
    fn plans_by_table() {
        let t = ThreadId::from_seed("x");
        let id = CommandId::new();
        let ann = "ann@example.com";
        let p = project(&[ann]);
        let bob_only = project(&["bob@example.com"]);
        let open = facts(ann, SessionStatus::Open, "site");
        let bobs = facts("bob@example.com", SessionStatus::Open, "site");
        let closed = facts(ann, SessionStatus::Closed, "site");
        let other = facts(ann, SessionStatus::Open, "app");
        let sid = Some(SessionId::new("acme", &t));
        let pass = SenderEvidence { dmarc: Verdict::Pass, ..SenderEvidence::default() };
        type Case<'a> = (Option<&'a ProjectConfig>, Option<&'a SessionFacts>, Inbound, Result<u64, &'a str>);
        let cases: Vec<Case> = vec![
            (Some(&p), None, api("fix", None), Ok(1)),
            (Some(&p), Some(&open), api("fix", sid.clone()), Ok(7)),
            (None, None, api("fix", None), Err("unknown_project")),
            (Some(&p), None, api("fix", sid.clone()), Err("session_not_found")),
            (Some(&p), Some(&bobs), api("fix", sid.clone()), Err("session_not_found")),
            (Some(&p), Some(&closed), api("fix", sid.clone()), Err("session_closed")),
            (Some(&p), Some(&other), api("fix", sid.clone()), Err("thread_mismatch")),
            (Some(&p), None, email(pass.clone()), Ok(1)),
            (Some(&p), Some(&bobs), email(pass.clone()), Ok(7)),
            (Some(&p), None, email(SenderEvidence::default()), Err("unauthenticated_sender")),
            (Some(&bob_only), None, email(pass), Err("sender_not_allowed")),
        ];
        for (i, (project, session, inbound, want)) in cases.into_iter().enumerate() {
            let got = plan_route(project, session, &inbound, ann, &t, &id);
            assert_eq!(got.as_ref().map(|p| p.seq).map_err(Rejection::code), want, "case {i}");
        }
    }

    #[test]
    fn a_continued_session_stays_with_its_owners_container() {
        let t = ThreadId::from_seed("x");
        let p = project(&["ann@example.com", "bob@example.com"]);
        let bobs = facts("bob@example.com", SessionStatus::Open, "site");
        let pass = SenderEvidence { dmarc: Verdict::Pass, ..SenderEvidence::default() };
        let plan = plan_route(Some(&p), Some(&bobs), &email(pass), "ann@example.com", &t, &CommandId::new()).unwrap();
        assert_eq!((plan.container, plan.owner.as_str(), plan.new_session), (bobs.container, "bob@example.com", false));
        let fresh = plan_route(Some(&p), None, &api("fix", None), "ann@example.com", &t, &CommandId::new()).unwrap();
        assert_eq!(fresh.container, ContainerId::new("acme", "site", "ann@example.com"));
        assert!(fresh.new_session);
    }

    #[test]
    fn idempotency_is_scoped_to_the_client_for_email_and_to_the_caller_for_the_api() {
        let t = ThreadId::from_seed("x");
        let p = project(&["ann@example.com"]);
        let id = CommandId::new();
        let mut a = api("fix", None);
        a.idempotency_key = Some("k1".into());
        let plan = plan_route(Some(&p), None, &a, "ann@example.com", &t, &id).unwrap();
        assert_eq!(plan.idempotency, ("api\nacme\nann@example.com".into(), "k1".into()));
        let pass = SenderEvidence { dmarc: Verdict::Pass, ..SenderEvidence::default() };
        let plan = plan_route(Some(&p), None, &email(pass), "ann@example.com", &t, &id).unwrap();
        assert_eq!(plan.idempotency, ("email\nacme".into(), id.to_string()));
    }

    #[test]
    fn outcomes_by_table() {
        let c = CommandId::new();
        let by = Some(CommandId::new());
        let newer = StopReason::Interrupted { by: by.clone(), reason: "newer".into() };
        type Case = (JobEnd, Option<StopReason>, Option<(Outcome, Option<ErrorCode>)>);
        let cases: &[Case] = &[
            (JobEnd::Exited(Some(0)), None, Some((Outcome::Succeeded, None))),
            (JobEnd::Exited(Some(0)), Some(newer.clone()), Some((Outcome::Succeeded, None))),
            (JobEnd::Exited(Some(2)), None, Some((Outcome::Failed, Some(ErrorCode::JobExit)))),
            (JobEnd::Exited(None), None, Some((Outcome::Failed, Some(ErrorCode::JobExit)))),
            (JobEnd::Limit(crate::agent::Limit::WallClock), None, Some((Outcome::Failed, Some(ErrorCode::Timeout)))),
            (JobEnd::Limit(crate::agent::Limit::Inactivity), None, Some((Outcome::Failed, Some(ErrorCode::Inactive)))),
            (JobEnd::Limit(crate::agent::Limit::Cost), None, Some((Outcome::Failed, Some(ErrorCode::CostLimit)))),
            (JobEnd::Interrupted, Some(newer), Some((Outcome::Interrupted, None))),
            (JobEnd::Interrupted, None, Some((Outcome::Interrupted, None))),
            (JobEnd::Interrupted, Some(StopReason::Cancelled), Some((Outcome::Cancelled, None))),
            (JobEnd::Interrupted, Some(StopReason::Shutdown), None),
            (JobEnd::Exited(Some(0)), Some(StopReason::Shutdown), Some((Outcome::Succeeded, None))),
        ];
        for (end, stop, want) in cases {
            let got = match outcome_of(*end, stop.as_ref(), &c, "make it blue\nthanks", 60) {
                JobVerdict::Checkpoint => None,
                JobVerdict::Final { outcome, code, .. } => Some((outcome, code)),
            };
            assert_eq!(got, *want, "{end:?} {stop:?}");
        }
        let JobVerdict::Final { superseded_by, .. } = outcome_of(
            JobEnd::Interrupted,
            Some(&StopReason::Interrupted { by: by.clone(), reason: "x".into() }),
            &c,
            "i",
            1,
        ) else {
            panic!("final")
        };
        assert_eq!(superseded_by, by);
        let JobVerdict::Final { subject, .. } =
            outcome_of(JobEnd::Exited(Some(0)), None, &c, "make it blue\nthanks", 1)
        else {
            panic!("final")
        };
        assert_eq!(subject, "switchyard: make it blue");
        let JobVerdict::Final { error, .. } =
            outcome_of(JobEnd::Limit(crate::agent::Limit::WallClock), None, &c, "i", 60)
        else {
            panic!("final")
        };
        assert_eq!(error.as_deref(), Some("job ran past 60 s"));
    }
}
