//! Project configuration and sender authorisation (DESIGN §2.1 step 2).

use serde::{Deserialize, Serialize};

/// How far an interrupt reaches inside a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterruptScope {
    /// A new instruction interrupts only the older job of its own session.
    #[default]
    Session,
    /// One job at a time in one workspace; any new work interrupts the running job.
    Container,
}

/// A project: one repository of a client, with who may ask and what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectConfig {
    /// Client slug.
    pub client: String,
    /// Project slug.
    pub project: String,
    /// Git URL of the repository (a path to a bare repo works locally).
    pub repo_url: String,
    /// Default branch that new session branches start from.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// Allowed senders: exact addresses, or `@domain` for a whole domain (lower-case).
    pub allowed_senders: Vec<String>,
    /// The job command, run with `sh -c` in the session worktree.
    pub job_command: String,
    /// Parallel sessions per container.
    #[serde(default = "default_slots")]
    pub max_concurrent_sessions: u32,
    /// Interrupt reach.
    #[serde(default)]
    pub interrupt_scope: InterruptScope,
    /// Maximum job run time in seconds.
    #[serde(default = "default_max_run")]
    pub max_run_secs: u64,
}

fn default_branch() -> String {
    "main".into()
}
fn default_slots() -> u32 {
    4
}
fn default_max_run() -> u64 {
    3600
}

/// SES verdicts on an inbound email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// PASS.
    Pass,
    /// FAIL.
    Fail,
    /// GRAY / PROCESSING_FAILED / DISABLED / absent: not evidence either way.
    Neutral,
}

impl Verdict {
    /// From an SES verdict status string.
    pub fn from_ses(status: Option<&str>) -> Self {
        match status.map(str::to_ascii_uppercase).as_deref() {
            Some("PASS") => Self::Pass,
            Some("FAIL") => Self::Fail,
            _ => Self::Neutral,
        }
    }
}

/// Why a sender may not route to a project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// SPF or DKIM failed.
    #[error("{0} verification failed")]
    VerificationFailed(&'static str),
    /// The sender is not on the project's allow-list.
    #[error("sender {0} is not allowed on this project")]
    SenderNotAllowed(String),
}

impl ProjectConfig {
    /// Whether a normalised sender address is on the allow-list.
    pub fn allows(&self, sender: &str) -> bool {
        let domain = sender.rsplit_once('@').map(|(_, d)| d);
        self.allowed_senders.iter().any(|a| {
            let a = a.trim().to_lowercase();
            a == sender || (a.starts_with('@') && domain == Some(&a[1..]))
        })
    }

    /// Authorises an email sender: verdicts first, then the allow-list.
    pub fn authorise_email(&self, sender: &str, spf: Verdict, dkim: Verdict) -> Result<(), AuthError> {
        if spf == Verdict::Fail {
            return Err(AuthError::VerificationFailed("SPF"));
        }
        if dkim == Verdict::Fail {
            return Err(AuthError::VerificationFailed("DKIM"));
        }
        if !self.allows(sender) {
            return Err(AuthError::SenderNotAllowed(sender.into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectConfig {
        ProjectConfig {
            client: "acme".into(),
            project: "site".into(),
            repo_url: "/tmp/x.git".into(),
            default_branch: "main".into(),
            allowed_senders: vec!["ann@example.com".into(), "@corp.example".into()],
            job_command: "true".into(),
            max_concurrent_sessions: 4,
            interrupt_scope: InterruptScope::Session,
            max_run_secs: 60,
        }
    }

    #[test]
    fn authorisation() {
        let p = project();
        let (pass, fail, neutral) = (Verdict::Pass, Verdict::Fail, Verdict::Neutral);
        assert!(p.authorise_email("ann@example.com", pass, pass).is_ok());
        assert!(p.authorise_email("bob@corp.example", neutral, neutral).is_ok());
        assert!(p.authorise_email("bob@evil.corp.example", pass, pass).is_err());
        assert_eq!(p.authorise_email("ann@example.com", fail, pass), Err(AuthError::VerificationFailed("SPF")));
        assert_eq!(p.authorise_email("ann@example.com", pass, fail), Err(AuthError::VerificationFailed("DKIM")));
        assert!(matches!(p.authorise_email("eve@example.com", pass, pass), Err(AuthError::SenderNotAllowed(_))));
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::from_ses(Some("PASS")), Verdict::Pass);
        assert_eq!(Verdict::from_ses(Some("FAIL")), Verdict::Fail);
        assert_eq!(Verdict::from_ses(Some("GRAY")), Verdict::Neutral);
        assert_eq!(Verdict::from_ses(None), Verdict::Neutral);
    }
}
