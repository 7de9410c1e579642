//! Coding agent CLIs as jobs: a project's `agent` setting, the command line each adapter
//! builds, and the reading of each CLI's own structured output into progress events, a
//! final summary, cost and its conversation id. Pure: the worker runs the process.
//!
//! Adapters:
//! - `claude_code` — Claude Code (`@anthropic-ai/claude-code`), headless `-p` with
//!   `--output-format stream-json --verbose`; a follow-up `--resume`s the session's
//!   conversation; reports `total_cost_usd` and token use in its `result` line.
//! - `aider` — aider (`aider-chat`), non-interactive `--message`; it has no conversation id,
//!   so the session's chat history file *is* the conversation (`--restore-chat-history`);
//!   its output is text, read line by line (edits applied, cost lines).

use serde::{Deserialize, Serialize};

/// Which CLI runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Claude Code.
    ClaudeCode,
    /// aider.
    Aider,
}

impl AgentKind {
    /// As configured and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude_code",
            Self::Aider => "aider",
        }
    }

    /// The executable's name (found on the worker's `PATH`, or in `SWITCHYARD_AGENT_BIN`).
    pub fn program(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude",
            Self::Aider => "aider",
        }
    }

    /// The environment variable the CLI reads its provider key from (a project secret).
    pub fn key_variable(self) -> &'static str {
        match self {
            Self::ClaudeCode => "ANTHROPIC_API_KEY",
            Self::Aider => "OPENAI_API_KEY",
        }
    }

    /// The `base_url` of a provider served at `origin`, as the CLI expects it (an
    /// OpenAI-compatible API is addressed with its `/v1`).
    pub fn base_url(self, origin: &str) -> String {
        match self {
            Self::ClaudeCode => origin.to_string(),
            Self::Aider => format!("{}/v1", origin.trim_end_matches('/')),
        }
    }

    /// Parses a configured name (`claude-code` and `claude_code` both work).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "claude_code" | "claude" => Some(Self::ClaudeCode),
            "aider" => Some(Self::Aider),
            _ => None,
        }
    }
}

/// A project's agent: which CLI, which model, extra arguments, and where its provider is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// The CLI.
    pub kind: AgentKind,
    /// The model name passed to the CLI (`--model`).
    pub model: String,
    /// Extra arguments, appended as given (never through a shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The provider's base URL (`ANTHROPIC_BASE_URL` / `OPENAI_API_BASE`): a gateway, or the
    /// scripted endpoint in tests. Unset: the CLI's default provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// Limits of one job beyond the project's wall clock (`max_run_secs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budgets {
    /// Stop a job that prints nothing for this long (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_secs: Option<u64>,
    /// Stop an agent whose reported cost passes this (US dollars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

/// Which limit stopped a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The project's maximum run time.
    WallClock,
    /// No output for the inactivity limit.
    Inactivity,
    /// The agent's reported cost passed the cap.
    Cost,
}

/// Progress events kept per command (the latest; older ones are dropped).
pub const MAX_PROGRESS_EVENTS: usize = 50;
/// Characters kept of one progress event's text.
pub const MAX_PROGRESS_TEXT: usize = 300;

/// One step of a running job, as shown live (API events, `sessions --follow`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// 1-based, increasing within the command.
    pub n: u32,
    /// When the worker saw it (epoch ms).
    pub at_ms: u64,
    /// `text` (the agent said), `tool` (it used a tool), `edit` (it changed a file), `cost`.
    pub kind: String,
    /// What happened, one line, bounded.
    pub text: String,
}

/// What the adapter read in one line of the CLI's output.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The CLI's conversation id (Claude Code's `session_id`).
    Conversation(String),
    /// A step to show.
    Progress {
        /// See [`ProgressEvent::kind`].
        kind: &'static str,
        /// See [`ProgressEvent::text`].
        text: String,
    },
    /// The running cost so far (US dollars), where the CLI reports it.
    Cost(f64),
    /// The run's end as the CLI reports it.
    Final(AgentReport),
}

/// What an agent run reported at its end: kept on the command and shown in the reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The CLI (`claude_code`, `aider`).
    pub kind: String,
    /// The conversation the next command of the session resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// The agent's own final words.
    #[serde(default)]
    pub summary: String,
    /// Cost reported by the CLI (US dollars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Input tokens (including cache reads and writes).
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Model turns.
    #[serde(default)]
    pub turns: u32,
    /// The CLI said the run failed.
    #[serde(default)]
    pub is_error: bool,
    /// Wall time of the CLI's process, spawn to exit (ms): the rest of a command's time in
    /// the worker is the worker's own (`bench worker.agent_overhead_ms`).
    #[serde(default)]
    pub job_ms: u64,
    /// The conversation asked to be resumed no longer exists (a new task's empty disk): the
    /// worker runs the instruction again in a new conversation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume_missing: bool,
    /// The CLI stopped itself at the project's cost cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub budget_exhausted: bool,
}

/// How the worker runs one instruction with an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The executable's name.
    pub program: &'static str,
    /// Its arguments (no shell).
    pub args: Vec<String>,
    /// Variables for the job's environment (besides its secrets).
    pub env: Vec<(String, String)>,
}

/// What an adapter needs to build the command line.
#[derive(Debug, Clone)]
pub struct RunInput<'a> {
    /// The instruction.
    pub instruction: &'a str,
    /// The conversation to resume, if the session has one.
    pub resume: Option<&'a str>,
    /// The session's agent state directory (configuration, transcripts): outside the
    /// worktree, owned by the job user, kept across the session's commands.
    pub state_dir: &'a str,
    /// The email's attachments, relative to the worktree.
    pub attachments: &'a [String],
    /// The project's cost cap, for a CLI that enforces one itself.
    pub max_cost_usd: Option<f64>,
}

impl AgentConfig {
    /// The command line for one instruction.
    pub fn invocation(&self, input: &RunInput<'_>) -> Invocation {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let mut instruction = input.instruction.to_string();
        if !input.attachments.is_empty() {
            instruction.push_str("\n\nFiles sent with this instruction (in the working directory):\n");
            for a in input.attachments {
                instruction.push_str(&format!("- {a}\n"));
            }
        }
        match self.kind {
            AgentKind::ClaudeCode => {
                args.push("-p".into());
                args.extend(["--output-format".into(), "stream-json".into(), "--verbose".into()]);
                args.extend(["--model".into(), self.model.clone()]);
                // The job user in its worktree is the sandbox: nothing it can reach is ours.
                args.push("--dangerously-skip-permissions".into());
                if let Some(id) = input.resume {
                    args.extend(["--resume".into(), id.to_string()]);
                }
                // The CLI's own cap: it stops before the next model call past it.
                if let Some(cap) = input.max_cost_usd.filter(|c| c.is_finite() && *c > 0.0) {
                    args.extend(["--max-budget-usd".into(), format!("{cap}")]);
                }
                env.push(("CLAUDE_CONFIG_DIR".into(), input.state_dir.to_string()));
                env.push(("HOME".into(), input.state_dir.to_string()));
                for (k, v) in [
                    ("DISABLE_AUTOUPDATER", "1"),
                    ("DISABLE_TELEMETRY", "1"),
                    ("DISABLE_ERROR_REPORTING", "1"),
                    ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
                ] {
                    env.push((k.into(), v.into()));
                }
                if let Some(url) = &self.base_url {
                    env.push(("ANTHROPIC_BASE_URL".into(), url.clone()));
                }
            }
            AgentKind::Aider => {
                let history = format!("{}/chat-history.md", input.state_dir);
                args.extend(["--message".into(), instruction.clone()]);
                args.extend(["--model".into(), self.model.clone()]);
                // The worker does all of git (aider would commit on its own).
                args.extend(["--yes-always".into(), "--no-git".into(), "--no-check-update".into()]);
                args.extend(["--no-show-model-warnings".into(), "--no-pretty".into(), "--no-stream".into()]);
                // No first-run questions in a headless job (every session has its own HOME).
                args.extend(["--analytics-disable".into(), "--no-show-release-notes".into()]);
                args.extend(["--chat-history-file".into(), history.clone()]);
                args.extend(["--input-history-file".into(), format!("{}/input-history", input.state_dir)]);
                args.extend(["--llm-history-file".into(), format!("{}/llm-history", input.state_dir)]);
                if input.resume.is_some() {
                    args.push("--restore-chat-history".into());
                }
                env.push(("HOME".into(), input.state_dir.to_string()));
                // The model price list ships with it: no fetch from the internet at start.
                env.push(("LITELLM_LOCAL_MODEL_COST_MAP".into(), "True".into()));
                if let Some(url) = &self.base_url {
                    env.push(("OPENAI_API_BASE".into(), url.clone()));
                }
            }
        }
        args.extend(self.args.iter().cloned());
        if self.kind == AgentKind::ClaudeCode {
            // Last, after `--`: an instruction that starts with "-" (a list) is not an option.
            args.extend(["--".into(), instruction]);
        }
        Invocation { program: self.kind.program(), args, env }
    }

    /// A reader of this CLI's output; `redactor` removes secrets from every text it keeps,
    /// before any clipping (a clipped secret would no longer match).
    pub fn reader(&self, resume: Option<&str>, state_dir: &str, redactor: crate::redact::Redactor) -> OutputReader {
        OutputReader {
            kind: self.kind,
            report: AgentReport {
                kind: self.kind.as_str().into(),
                // aider's conversation is its history file: the same for every command.
                conversation: match self.kind {
                    AgentKind::Aider => Some(format!("{state_dir}/chat-history.md")),
                    AgentKind::ClaudeCode => None,
                },
                ..AgentReport::default()
            },
            resumed: resume.map(str::to_string),
            done: false,
            last_text: String::new(),
            redactor,
            announced: false,
        }
    }
}

/// Reads a CLI's output line by line.
#[derive(Debug, Clone)]
pub struct OutputReader {
    kind: AgentKind,
    report: AgentReport,
    resumed: Option<String>,
    done: bool,
    /// The last thing the agent said (the summary of a run cut short).
    last_text: String,
    redactor: crate::redact::Redactor,
    /// aider's conversation (its history file) was reported.
    announced: bool,
}

fn clip(s: &str, max: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

impl OutputReader {
    /// The events of one output line (stdout or stderr).
    pub fn line(&mut self, line: &str) -> Vec<AgentEvent> {
        match self.kind {
            AgentKind::ClaudeCode => self.claude_line(line),
            AgentKind::Aider => {
                let mut out = Vec::new();
                // aider's conversation is its history file: saved on the session with its
                // first line, so the next command restores it.
                if !self.announced {
                    self.announced = true;
                    if let Some(c) = self.report.conversation.clone() {
                        out.push(AgentEvent::Conversation(c));
                    }
                }
                out.extend(self.aider_line(line));
                out
            }
        }
    }

    /// Secrets out, then one bounded line.
    fn clean(&self, text: &str, max: usize) -> String {
        clip(&self.redactor.redact(text), max)
    }

    /// What the run reported (after its output ended); `None` if it never reported an end.
    pub fn finish(mut self, output_tail: &str) -> AgentReport {
        if !self.done {
            self.report.is_error = true;
            // Cut short (a limit, an interrupt): its last words, never its raw JSON.
            self.report.summary = self.clean(&self.last_text, 2000);
            if self.kind == AgentKind::Aider {
                // aider has no end line: its last words are the output's tail (lines kept).
                self.report.is_error = false;
                // Its start-up banner is not what the user asked about.
                const BANNER: [&str; 9] = [
                    "Analytics",
                    "Detected dumb terminal",
                    "HTTPSConnectionPool",
                    "Aider v",
                    "Model:",
                    "Git repo:",
                    "Repo-map:",
                    "https://aider.chat",
                    "Tokens:",
                ];
                let words: Vec<&str> =
                    output_tail.lines().filter(|l| !BANNER.iter().any(|b| l.trim_start().starts_with(b))).collect();
                let tail = self.redactor.redact(words.join("\n").trim());
                let n = tail.chars().count();
                self.report.summary = tail.chars().skip(n.saturating_sub(2000)).collect();
            }
        }
        self.report
    }

    /// Whether the run reported its end.
    pub fn ended(&self) -> bool {
        self.done
    }

    fn claude_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            // "No conversation found with session ID: …" on stderr, before any JSON: the
            // one sign that the conversation is gone (an error of the run is not).
            if self.resumed.is_some() && line.trim_start().starts_with("No conversation found") {
                self.report.resume_missing = true;
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(id) = v.get("session_id").and_then(|s| s.as_str()) {
            if self.report.conversation.as_deref() != Some(id) {
                self.report.conversation = Some(id.to_string());
                out.push(AgentEvent::Conversation(id.to_string()));
            }
        }
        match v.get("type").and_then(|t| t.as_str()) {
            Some("assistant") => {
                let blocks = v.pointer("/message/content").and_then(|c| c.as_array()).cloned().unwrap_or_default();
                for b in blocks {
                    match b.get("type").and_then(|t| t.as_str()) {
                        Some("text") => {
                            let text = b.get("text").and_then(|t| t.as_str()).unwrap_or("");
                            if !text.trim().is_empty() {
                                self.last_text = text.to_string();
                                out.push(AgentEvent::Progress {
                                    kind: "text",
                                    text: self.clean(text, MAX_PROGRESS_TEXT),
                                });
                            }
                        }
                        Some("tool_use") => {
                            let name = b.get("name").and_then(|t| t.as_str()).unwrap_or("tool");
                            let input = b.get("input").cloned().unwrap_or_default();
                            let detail = ["description", "file_path", "command", "pattern", "path"]
                                .iter()
                                .find_map(|k| input.get(*k).and_then(|x| x.as_str()))
                                .unwrap_or("");
                            let kind = if matches!(name, "Edit" | "Write" | "MultiEdit" | "NotebookEdit") {
                                "edit"
                            } else {
                                "tool"
                            };
                            out.push(AgentEvent::Progress {
                                kind,
                                text: self.clean(&format!("{name}: {detail}"), MAX_PROGRESS_TEXT),
                            });
                        }
                        _ => {}
                    }
                }
            }
            Some("result") => {
                self.done = true;
                let summary = self.clean(v.get("result").and_then(|t| t.as_str()).unwrap_or(""), 4000);
                let r = &mut self.report;
                r.summary = summary;
                r.cost_usd = v.get("total_cost_usd").and_then(|c| c.as_f64()).filter(|c| c.is_finite());
                if self.resumed.is_some() && r.turns == 0 && v.to_string().contains("No conversation found") {
                    r.resume_missing = true;
                }
                // The CLI's own cap (`--max-budget-usd`) ended the run.
                r.budget_exhausted = v.get("subtype").and_then(|t| t.as_str()) == Some("error_max_budget_usd");
                r.turns = v.get("num_turns").and_then(|c| c.as_u64()).unwrap_or(0) as u32;
                r.is_error = v.get("is_error").and_then(|c| c.as_bool()).unwrap_or(false);
                let u = |k: &str| v.pointer(&format!("/usage/{k}")).and_then(|x| x.as_u64()).unwrap_or(0);
                r.input_tokens = u("input_tokens") + u("cache_creation_input_tokens") + u("cache_read_input_tokens");
                r.output_tokens = u("output_tokens");
                // The cost of a finished run is reported, never a reason to stop it.
                out.push(AgentEvent::Final(r.clone()));
            }
            _ => {}
        }
        out
    }

    fn aider_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let t = line.trim();
        if t.is_empty() {
            return Vec::new();
        }
        // "Tokens: 1.2k sent, 42 received. Cost: $0.0012 message, $0.0034 session."
        if let Some(rest) = t.strip_prefix("Tokens:") {
            let mut out = Vec::new();
            let num = |s: &str| -> u64 {
                let s = s.trim();
                let (n, mul) = match s.strip_suffix('k') {
                    Some(n) => (n, 1000.0),
                    None => (s, 1.0),
                };
                (n.replace(',', "").parse::<f64>().unwrap_or(0.0) * mul) as u64
            };
            for part in rest.split(',').map(|p| p.split(". ").next().unwrap_or("").trim().trim_end_matches('.')) {
                if let Some(n) = part.strip_suffix(" sent") {
                    self.report.input_tokens += num(n);
                } else if let Some(n) = part.strip_suffix(" received") {
                    self.report.output_tokens += num(n);
                }
            }
            if let Some(session) = t.split("Cost:").nth(1).and_then(|c| c.split(',').nth(1)) {
                if let Some(c) = session.trim().trim_start_matches('$').split_whitespace().next() {
                    if let Ok(c) =
                        c.parse::<f64>().map_err(|_| ()).and_then(|c| if c.is_finite() { Ok(c) } else { Err(()) })
                    {
                        self.report.cost_usd = Some(c);
                        out.push(AgentEvent::Cost(c));
                    }
                }
            }
            self.report.turns += 1;
            return out;
        }
        if let Some(file) = t.strip_prefix("Applied edit to ") {
            return vec![AgentEvent::Progress {
                kind: "edit",
                text: self.clean(&format!("edited {file}"), MAX_PROGRESS_TEXT),
            }];
        }
        Vec::new()
    }
}

/// The `Switchyard-Signature` header of a webhook: `t={unix secs},v1={hex HMAC-SHA256 of
/// "{t}.{body}"}` with the API key's webhook secret (the scheme of Stripe's and Slack's
/// webhooks: the timestamp is signed, so a captured delivery cannot be replayed later).
pub fn webhook_signature(secret: &[u8], unix_secs: u64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix_secs},v1={}", data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()))
}

/// Checks a `Switchyard-Signature` header (what a webhook receiver does), allowing
/// `tolerance_secs` of clock difference.
pub fn verify_webhook(secret: &[u8], header: &str, body: &[u8], now_secs: u64, tolerance_secs: u64) -> bool {
    let t = header.split(',').find_map(|p| p.strip_prefix("t=")).and_then(|t| t.parse::<u64>().ok());
    let Some(t) = t else { return false };
    if now_secs.abs_diff(t) > tolerance_secs {
        return false;
    }
    let expected = webhook_signature(secret, t, body);
    // Constant time over the hex digests.
    let (a, b) = (expected.as_bytes(), header.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claude() -> AgentConfig {
        AgentConfig { kind: AgentKind::ClaudeCode, model: "m".into(), args: vec!["--x".into()], base_url: None }
    }

    #[test]
    fn claude_code_resumes_and_never_goes_through_a_shell() {
        let input = RunInput {
            instruction: "- do it; rm -rf /",
            resume: Some("abc"),
            state_dir: "/s",
            attachments: &[],
            max_cost_usd: Some(1.5),
        };
        let inv = claude().invocation(&input);
        assert_eq!(inv.program, "claude");
        assert_eq!(inv.args[0], "-p");
        // The instruction is the last argument, after `--` (it may start with "-").
        let n = inv.args.len();
        assert_eq!(inv.args[n - 2..], ["--".to_string(), "- do it; rm -rf /".to_string()]);
        let at = inv.args.iter().position(|a| a == "--resume").expect("resumes");
        assert_eq!(inv.args[at + 1], "abc");
        let cap = inv.args.iter().position(|a| a == "--max-budget-usd").expect("cost cap");
        assert_eq!(inv.args[cap + 1], "1.5");
        assert_eq!(inv.args[n - 3], "--x");
        assert!(inv.env.contains(&("CLAUDE_CONFIG_DIR".into(), "/s".into())));
    }

    #[test]
    fn claude_code_stream_json_gives_progress_cost_and_conversation() {
        let mut r = claude().reader(None, "/s", crate::redact::Redactor::default());
        let init = r#"{"type":"system","subtype":"init","session_id":"s-1"}"#;
        assert_eq!(r.line(init), vec![AgentEvent::Conversation("s-1".into())]);
        let tool = r#"{"type":"assistant","session_id":"s-1","message":{"content":[{"type":"tool_use","name":"Edit","input":{"file_path":"a.txt"}}]}}"#;
        assert_eq!(r.line(tool), vec![AgentEvent::Progress { kind: "edit", text: "Edit: a.txt".into() }]);
        let result = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"Done.","session_id":"s-1","total_cost_usd":0.5,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":7}}"#;
        let ev = r.line(result);
        assert!(matches!(ev[..], [AgentEvent::Final(_)]), "a finished run's cost never stops it: {ev:?}");
        let report = r.finish("");
        assert_eq!(
            (report.summary.as_str(), report.input_tokens, report.output_tokens, report.turns),
            ("Done.", 15, 7, 2)
        );
        assert_eq!(report.conversation.as_deref(), Some("s-1"));
        assert!(!report.is_error && !report.resume_missing);
    }

    #[test]
    fn a_lost_conversation_is_noticed() {
        let mut r = claude().reader(Some("gone"), "/s", crate::redact::Redactor::default());
        r.line("No conversation found with session ID: gone");
        let report = r.finish("");
        assert!(report.resume_missing && report.is_error);
    }

    #[test]
    fn secrets_are_removed_before_texts_are_clipped() {
        let secret = "sk-live-0123456789abcdef";
        let redactor = crate::redact::Redactor::new([secret.to_string()]);
        let mut r = claude().reader(None, "/s", redactor);
        let long = format!("{}{secret} and more", "x".repeat(MAX_PROGRESS_TEXT - 5));
        let line =
            serde_json::json!({"type":"assistant","message":{"content":[{"type":"text","text": long}]}}).to_string();
        let ev = r.line(&line);
        let AgentEvent::Progress { text, .. } = &ev[0] else { panic!("{ev:?}") };
        assert!(!text.contains("sk-live-01234"), "a clipped secret leaked: {text}");
        let result = serde_json::json!({"type":"result","result": format!("done {secret}"),"subtype":"error_max_budget_usd","is_error":true}).to_string();
        r.line(&result);
        let report = r.finish("");
        assert!(!report.summary.contains(secret) && report.budget_exhausted, "{report:?}");
    }

    #[test]
    fn a_run_without_a_result_line_is_an_error() {
        let mut r = claude().reader(None, "/s", crate::redact::Redactor::default());
        r.line("not json");
        assert!(r.finish("").is_error);
    }

    #[test]
    fn aider_output_gives_edits_tokens_and_cost() {
        let cfg = AgentConfig { kind: AgentKind::Aider, ..claude() };
        let mut r = cfg.reader(None, "/s", crate::redact::Redactor::default());
        // The history file is the conversation, reported with the first line.
        assert_eq!(
            r.line("Applied edit to index.html"),
            vec![
                AgentEvent::Conversation("/s/chat-history.md".into()),
                AgentEvent::Progress { kind: "edit", text: "edited index.html".into() }
            ]
        );
        let ev = r.line("Tokens: 1.2k sent, 42 received. Cost: $0.01 message, $0.03 session.");
        assert_eq!(ev, vec![AgentEvent::Cost(0.03)]);
        let report = r.finish("Aider v0.86.2\nModel: x\nall done\nTokens: 1 sent, 2 received.");
        assert_eq!((report.input_tokens, report.output_tokens, report.summary.as_str()), (1200, 42, "all done"));
        assert_eq!(report.conversation.as_deref(), Some("/s/chat-history.md"));
    }

    #[test]
    fn webhook_signatures_verify_and_reject_tampering_and_replays() {
        let h = webhook_signature(b"k", 1000, b"{}");
        assert!(h.starts_with("t=1000,v1=") && h.len() == "t=1000,v1=".len() + 64);
        assert!(verify_webhook(b"k", &h, b"{}", 1010, 300));
        assert!(!verify_webhook(b"k", &h, b"{ }", 1010, 300), "another body");
        assert!(!verify_webhook(b"j", &h, b"{}", 1010, 300), "another secret");
        assert!(!verify_webhook(b"k", &h, b"{}", 2000, 300), "too old");
        // RFC 4231 test case 2 (HMAC-SHA256 of "what do ya want for nothing?" with "Jefe").
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_example_agent_project_is_a_valid_project() {
        let p: crate::project::ProjectConfig =
            serde_json::from_str(include_str!("../../../examples/project-agent.json")).expect("parses");
        let agent = p.agent.clone().expect("agent");
        assert_eq!(
            (agent.kind, p.budgets.inactivity_secs, p.acknowledge_email),
            (AgentKind::ClaudeCode, Some(300), true)
        );
        assert!(p.secrets.contains_key("ANTHROPIC_API_KEY"));
        p.validate_secrets().expect("secrets named under the client's path");
    }

    #[test]
    fn kinds_parse_as_written_in_configuration() {
        assert_eq!(AgentKind::parse("claude-code"), Some(AgentKind::ClaudeCode));
        assert_eq!(AgentKind::parse("aider"), Some(AgentKind::Aider));
        assert_eq!(AgentKind::parse("codex"), None);
    }
}
