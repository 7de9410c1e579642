//! Project configuration and sender authorisation (DESIGN §2.1 step 2).

use serde::{Deserialize, Serialize};

use crate::sender::{authenticate, Authenticated, SenderEvidence, Unauthenticated};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Accept an SPF or DKIM pass that is not aligned with the `From` domain when that
    /// domain publishes no DMARC policy (off by default; every use is logged). A DMARC
    /// failure is never relaxed.
    #[serde(default)]
    pub relax_sender_auth_without_dmarc: bool,
    /// Whether a job's changes to CI definitions (`.github/workflows/…`, `.gitlab-ci.yml`,
    /// …, see [`is_ci_definition`]) are committed and pushed. Off by default: the push uses
    /// the project's token, and a workflow a prompt injection wrote would run in the
    /// project's CI with the repository's secrets. Withheld changes are named in the reply.
    #[serde(default)]
    pub allow_ci_changes: bool,
    /// Secrets handed to this project's jobs, and only to them: environment variable name →
    /// SSM parameter (a `SecureString` under `/switchyard/{client}/`). The worker reads them
    /// at start; their values are redacted from every text Switchyard stores or sends.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub secrets: std::collections::BTreeMap<String, String>,
    /// SSM parameter (under `/switchyard/{client}/`) holding the HTTPS token git uses to
    /// clone and push: given to git through a credential helper, never put in a URL and
    /// never shown to jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_token_parameter: Option<String>,
    /// Which email attachments reach the job (size, count, types).
    #[serde(default)]
    pub attachments: crate::attachments::AttachmentPolicy,
    /// A coding agent CLI run instead of `job_command` (`None`: the command runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::agent::AgentConfig>,
    /// Limits besides `max_run_secs`: inactivity and cost.
    #[serde(default)]
    pub budgets: crate::agent::Budgets,
    /// Answer an email at once ("working on it", with the session and branch) before the
    /// job's reply (on by default).
    #[serde(default = "yes")]
    pub acknowledge_email: bool,
}

fn yes() -> bool {
    true
}

/// A project's secrets are named wrongly, or a limit is one AWS cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The variable name is not `[A-Z_][A-Z0-9_]*`, or one Switchyard or the platform owns.
    #[error(
        "secret variable {0:?} is not allowed (use [A-Z_][A-Z0-9_]*, not SWITCHYARD_*, AWS_*, ECS_*, PATH or HOME)"
    )]
    BadName(String),
    /// The parameter is outside the client's own path.
    #[error("secret parameter {0:?} must be under /switchyard/{1}/")]
    OutsideClientPath(String, String),
    /// The repository URL carries credentials (`https://user:token@host/…`): they would be
    /// stored in the project item and in the clone's config, where a job can read them.
    /// The URL in the error is redacted.
    #[error("repository URL {0} carries credentials; set git_token_parameter instead")]
    CredentialsInRepoUrl(String),
    /// `max_run_secs` is over [`MAX_RUN_SECS`]: a job's message stays in flight while it
    /// runs, and SQS keeps a message invisible at most 12 hours from its first receive
    /// (`ChangeMessageVisibility`), after which another worker would run it a second time.
    #[error("max_run_secs {0} is over {max} s: SQS keeps a running job's message at most 12 hours", max = MAX_RUN_SECS)]
    RunTooLong(u64),
}

/// Whether `path` (relative to the repository root) is a CI definition: a file a forge
/// runs on push with the repository's secrets.
pub fn is_ci_definition(path: &str) -> bool {
    let p = path.trim_start_matches("./");
    let lower = p.to_ascii_lowercase();
    ["/.github/workflows/", "/.github/actions/", "/.circleci/", "/.buildkite/", "/.gitlab/ci/"]
        .iter()
        .any(|d| format!("/{lower}").starts_with(d))
        || [
            ".gitlab-ci.yml",
            "jenkinsfile",
            "azure-pipelines.yml",
            "bitbucket-pipelines.yml",
            ".travis.yml",
            ".drone.yml",
        ]
        .contains(&lower.as_str())
}

/// Longest `max_run_secs`: 11 hours, an hour inside SQS's 12-hour visibility limit for the
/// time a message may wait for a slot, the commit and the push.
pub const MAX_RUN_SECS: u64 = 11 * 3600;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verdict {
    /// PASS.
    Pass,
    /// FAIL.
    Fail,
    /// GRAY / PROCESSING_FAILED / DISABLED / absent: not evidence either way.
    #[default]
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
    /// The `From` domain is not authenticated (the address may be forged).
    #[error("sender not authenticated: {0}")]
    Unauthenticated(#[from] Unauthenticated),
    /// The sender is not on the project's allow-list.
    #[error("sender {0} is not allowed on this project")]
    SenderNotAllowed(String),
}

impl ProjectConfig {
    /// A project with what it must have; everything else as a stored project without those
    /// fields gets it (the serde defaults).
    pub fn new(client: &str, project: &str, repo_url: &str, allowed_senders: &[&str], job_command: &str) -> Self {
        Self {
            client: client.into(),
            project: project.into(),
            repo_url: repo_url.into(),
            default_branch: default_branch(),
            allowed_senders: allowed_senders.iter().map(|s| s.to_string()).collect(),
            job_command: job_command.into(),
            max_concurrent_sessions: default_slots(),
            interrupt_scope: InterruptScope::default(),
            max_run_secs: default_max_run(),
            relax_sender_auth_without_dmarc: false,
            allow_ci_changes: false,
            secrets: Default::default(),
            git_token_parameter: None,
            attachments: Default::default(),
            agent: None,
            budgets: Default::default(),
            acknowledge_email: yes(),
        }
    }

    /// The job's wall-clock limit in seconds: the project's, at least 1, at most
    /// [`MAX_RUN_SECS`] (an older item may hold more).
    pub fn run_limit_secs(&self) -> u64 {
        self.max_run_secs.clamp(1, MAX_RUN_SECS)
    }

    /// Checks secret names: variables a job may receive, parameters under the client's path
    /// (the worker's credentials can read nothing else); and that `max_run_secs` fits SQS.
    pub fn validate_secrets(&self) -> Result<(), SecretsError> {
        if self.max_run_secs > MAX_RUN_SECS {
            return Err(SecretsError::RunTooLong(self.max_run_secs));
        }
        let redacted = crate::redact::redact_url_userinfo(&self.repo_url);
        if redacted != self.repo_url {
            return Err(SecretsError::CredentialsInRepoUrl(redacted));
        }
        let path = format!("/switchyard/{}/", self.client);
        for (name, parameter) in &self.secrets {
            let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let reserved = ["SWITCHYARD_", "AWS_", "ECS_"].iter().any(|p| name.starts_with(p))
                || ["PATH", "HOME", "TERM", "LD_PRELOAD", "LD_LIBRARY_PATH"].contains(&name.as_str());
            if !well_formed || reserved {
                return Err(SecretsError::BadName(name.clone()));
            }
            if !parameter.starts_with(&path) || parameter.contains("..") {
                return Err(SecretsError::OutsideClientPath(parameter.clone(), self.client.clone()));
            }
        }
        if let Some(p) = &self.git_token_parameter {
            if !p.starts_with(&path) || p.contains("..") {
                return Err(SecretsError::OutsideClientPath(p.clone(), self.client.clone()));
            }
        }
        Ok(())
    }

    /// Whether a normalised sender address is on the allow-list.
    pub fn allows(&self, sender: &str) -> bool {
        let domain = sender.rsplit_once('@').map(|(_, d)| d);
        self.allowed_senders.iter().any(|a| {
            let a = a.trim().to_lowercase();
            a == sender || (a.starts_with('@') && domain == Some(&a[1..]))
        })
    }

    /// Authorises an email sender: its `From` domain must be authenticated
    /// ([`crate::sender::authenticate`]), then the address must be on the allow-list.
    pub fn authorise_email(&self, sender: &str, evidence: &SenderEvidence) -> Result<Authenticated, AuthError> {
        let how = authenticate(sender, evidence, self.relax_sender_auth_without_dmarc)?;
        if !self.allows(sender) {
            return Err(AuthError::SenderNotAllowed(sender.into()));
        }
        Ok(how)
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
            relax_sender_auth_without_dmarc: false,
            allow_ci_changes: false,
            secrets: Default::default(),
            git_token_parameter: None,
            attachments: Default::default(),
            agent: None,
            budgets: Default::default(),
            acknowledge_email: true,
        }
    }

    #[test]
    fn authorisation() {
        let p = project();
        let dmarc = |v| SenderEvidence { dmarc: v, ..SenderEvidence::default() };
        assert_eq!(p.authorise_email("ann@example.com", &dmarc(Verdict::Pass)), Ok(Authenticated::Dmarc));
        assert!(p.authorise_email("bob@corp.example", &dmarc(Verdict::Pass)).is_ok());
        assert!(matches!(
            p.authorise_email("bob@evil.corp.example", &dmarc(Verdict::Pass)),
            Err(AuthError::SenderNotAllowed(_))
        ));
        assert!(matches!(
            p.authorise_email("eve@example.com", &dmarc(Verdict::Pass)),
            Err(AuthError::SenderNotAllowed(_))
        ));
        // Authentication comes first: an allowed address that is not authenticated is refused.
        assert_eq!(
            p.authorise_email("ann@example.com", &dmarc(Verdict::Neutral)),
            Err(AuthError::Unauthenticated(Unauthenticated::NoPass))
        );
        assert_eq!(
            p.authorise_email("ann@example.com", &dmarc(Verdict::Fail)),
            Err(AuthError::Unauthenticated(Unauthenticated::DmarcFailed))
        );
    }

    #[test]
    fn ci_definitions_are_recognised_wherever_forges_read_them() {
        for ci in [
            ".github/workflows/deploy.yml",
            ".GitHub/Workflows/x.yaml",
            ".gitlab-ci.yml",
            "Jenkinsfile",
            ".circleci/config.yml",
        ] {
            assert!(is_ci_definition(ci), "{ci}");
        }
        for not in ["src/.github/workflows/x.yml", "docs/ci.md", ".github/CODEOWNERS", "index.html"] {
            assert!(!is_ci_definition(not), "{not}");
        }
    }

    #[test]
    fn secrets_are_named_safely_and_live_under_the_client_path() {
        let mut p = project();
        p.secrets.insert("ANTHROPIC_API_KEY".into(), "/switchyard/acme/anthropic".into());
        assert_eq!(p.validate_secrets(), Ok(()));
        for bad in ["AWS_SECRET_ACCESS_KEY", "SWITCHYARD_LAUNCH_TOKEN", "PATH", "LD_PRELOAD", "lower", "1X", "A-B", ""]
        {
            let mut q = project();
            q.secrets.insert(bad.into(), "/switchyard/acme/x".into());
            assert!(matches!(q.validate_secrets(), Err(SecretsError::BadName(_))), "{bad}");
            let mut long = p.clone();
            long.max_run_secs = 12 * 3600;
            assert_eq!(long.validate_secrets(), Err(SecretsError::RunTooLong(12 * 3600)));
        }
        for bad in ["/switchyard/other/x", "/switchyard/acme/../other/x", "/elsewhere/x", "switchyard/acme/x"] {
            let mut q = project();
            q.secrets.insert("KEY".into(), bad.into());
            assert!(matches!(q.validate_secrets(), Err(SecretsError::OutsideClientPath(..))), "{bad}");
        }
        for bad in ["https://user:s3cret-token@git.example/acme/site.git", "https://s3cret-token@git.example/x.git"] {
            let mut q = project();
            q.repo_url = bad.into();
            let e = q.validate_secrets().unwrap_err();
            assert!(matches!(e, SecretsError::CredentialsInRepoUrl(_)), "{bad}");
            assert!(!e.to_string().contains("s3cret-token"), "{e}");
        }
        for good in ["https://git.example/acme/site.git", "/srv/git/site.git", "git@github.com:acme/site.git"] {
            let mut q = project();
            q.repo_url = good.into();
            assert_eq!(q.validate_secrets(), Ok(()), "{good}");
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::from_ses(Some("PASS")), Verdict::Pass);
        assert_eq!(Verdict::from_ses(Some("FAIL")), Verdict::Fail);
        assert_eq!(Verdict::from_ses(Some("GRAY")), Verdict::Neutral);
        assert_eq!(Verdict::from_ses(None), Verdict::Neutral);
    }
}
