//! `switchyard demo`: a scripted run on the local runtime. A sample project with a real
//! local git remote; sample emails from `examples/emails` (a new request, a reply in the
//! same thread, a second thread from another user, a long job interrupted by a follow-up)
//! and API calls; a progress display while it waits; then the sessions, commands and
//! outcomes, the reply emails, and `git log` per branch.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use switchyard_aws::store::CommandItem;
use switchyard_core::ids::{CommandId, SessionId};
use switchyard_core::messages::Outcome;
use switchyard_core::status::CommandStatus;

/// The statuses a demo step waits for when it waits for a command to end.
const ENDED: &[CommandStatus] = &[CommandStatus::Final(Outcome::Succeeded), CommandStatus::Final(Outcome::Failed)];
use switchyard_core::project::ProjectConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::CliConfig;
use crate::demo_git::git;
use crate::runtime::{Runtime, Scratch};
use crate::scripted::ScriptedModel;

const DOMAIN: &str = "in.switchyard.local";
const ADDRESS: &str = "acme.website@in.switchyard.local";

pub(crate) fn examples_dir() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    if compiled.exists() {
        compiled
    } else {
        PathBuf::from("examples")
    }
}

struct Demo {
    rt: Runtime,
    bar: ProgressBar,
}

impl Demo {
    fn step(&self, msg: &str) {
        // `suspend` prints with or without a terminal (a hidden bar drops `println`).
        self.bar.suspend(|| println!("▶ {msg}"));
    }

    async fn send(&self, file: &str, vars: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut text = std::fs::read_to_string(examples_dir().join("emails").join(file))
            .with_context(|| format!("example {file}"))?;
        for (k, v) in vars {
            text = text.replace(&format!("{{{{{k}}}}}"), v);
        }
        let raw = text.replace("\r\n", "\n").replace('\n', "\r\n");
        self.rt.inbox.send(raw.as_bytes()).await
    }

    /// Waits until the command `seq` of the session found by `find` has status in `want`.
    async fn wait_command(
        &self,
        what: &str,
        session: &SessionId,
        seq: u64,
        want: &[CommandStatus],
    ) -> anyhow::Result<CommandItem> {
        self.bar.set_message(what.to_string());
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut shown = 0u32;
        loop {
            if let Some(c) = self.rt.orchestrator.store.get_command(session, seq).await? {
                // A coding agent's steps, as they are recorded.
                let since = shown;
                for e in c.progress.iter().filter(|e| e.n > since) {
                    self.bar.suspend(|| println!("    · {:<5} {}", e.kind, e.text));
                    shown = e.n;
                }
                if want.contains(&c.status) {
                    self.bar.suspend(|| {
                        println!("  ✓ {what}: {} (command {}, {})", c.status, seq, short(c.command_id.as_str()))
                    });
                    return Ok(c);
                }
            }
            if Instant::now() > deadline {
                bail!("timed out: {what}");
            }
            self.bar.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The session created by an email with this Message-ID (thread rule 4).
    fn session_of(message_id: &str) -> SessionId {
        SessionId::new("acme", &switchyard_core::ids::ThreadId::from_seed(message_id))
    }

    /// The reply in the outbox for a command, once the responder has sent it.
    async fn reply_for(&self, command_id: &CommandId) -> anyhow::Result<(String, PathBuf)> {
        let prefix = command_id.as_str().to_ascii_lowercase();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for entry in std::fs::read_dir(&self.rt.outbox)? {
                let path = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
                // `{command}.ack…` is the acknowledgement sent on arrival, not the reply.
                if name.starts_with(&prefix) && !name.starts_with(&format!("{prefix}.ack")) {
                    let raw = std::fs::read(&path)?;
                    let msg = mail_parser::MessageParser::default().parse(&raw).context("reply parses")?;
                    let id = msg.message_id().unwrap_or_default().to_string();
                    return Ok((id, path));
                }
            }
            if Instant::now() > deadline {
                bail!("no reply email for {command_id}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn short(id: &str) -> &str {
    &id[id.len().saturating_sub(6)..]
}

/// Minimal HTTP/1.1 client for the local API (one request per connection).
pub(crate) async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    stream.read_to_string(&mut resp).await?;
    let status: u16 = resp.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("status line")?;
    let json = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, serde_json::from_str(json).unwrap_or(serde_json::Value::Null)))
}

pub(crate) async fn run(config: &CliConfig) -> anyhow::Result<()> {
    println!("Switchyard demo — emulator at {}", std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "(AWS)".into()));
    let env = [("SWITCHYARD_POLL_WAIT_SECS", "5".to_string()), ("SWITCHYARD_GRACE_SECS", "3".into())];
    let Scratch { rt, data, remote, .. } =
        Scratch::start(config, "demo", DOMAIN, &env, Duration::from_secs(10)).await?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let d = Demo { rt, bar };
    let agent = examples_dir().join("jobs/fake-agent.sh").canonicalize().context("examples/jobs/fake-agent.sh")?;
    d.rt.orchestrator
        .put_project(ProjectConfig { job_command: format!("sh {}", agent.display()), ..website(&remote) })
        .await?;
    d.step(&format!("project acme/website → {ADDRESS}, remote {}", remote.display()));
    d.step(&format!("HTTP API on http://{}", d.rt.api_addr));

    // 1. A new request by email.
    d.step("email 1: Ann asks for a blue header (new thread)");
    d.send("01-new-request.eml", &[("PROJECT_ADDRESS", ADDRESS)]).await?;
    let s1 = Demo::session_of("demo-01@mail.example.com");
    let c1 = d.wait_command("container launched, job running, committed", &s1, 1, ENDED).await?;
    let (reply1, _) = d.reply_for(&c1.command_id).await?;
    let token1 = format!("acme.website+t.{}@{DOMAIN}", s1.thread());
    d.step(&format!("reply sent, threaded (Message-ID {reply1}, Reply-To {token1})"));

    // 2. A reply in the same thread.
    d.step("email 2: Ann replies in the thread (footer)");
    d.send("02-reply.eml", &[("REPLY_TO", &token1), ("IN_REPLY_TO", &reply1)]).await?;
    d.wait_command("same session, command 2", &s1, 2, ENDED).await?;

    // 3. A second thread from another user (another container).
    d.step("email 3: Bob asks for a pricing table (his own container)");
    d.send("03-second-thread.eml", &[("PROJECT_ADDRESS", ADDRESS)]).await?;
    let s3 = Demo::session_of("demo-03@mail.example.com");
    d.wait_command("Bob's session", &s3, 1, ENDED).await?;

    // 4. A long job, interrupted by a follow-up.
    d.step("email 4: Ann asks for a long redesign");
    d.send("04-long-job.eml", &[("PROJECT_ADDRESS", ADDRESS)]).await?;
    let s4 = Demo::session_of("demo-04@mail.example.com");
    d.wait_command("long job running", &s4, 1, &[CommandStatus::Running]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let token4 = format!("acme.website+t.{}@{DOMAIN}", s4.thread());
    d.step("email 5: Ann changes her mind mid-job (interrupts it)");
    let t = Instant::now();
    d.send("05-interrupt.eml", &[("REPLY_TO", &token4)]).await?;
    d.wait_command(
        "long job interrupted, partial work committed",
        &s4,
        1,
        &[CommandStatus::Final(Outcome::Interrupted)],
    )
    .await?;
    d.step(&format!("interrupt landed {} ms after the email was queued", t.elapsed().as_millis()));
    d.wait_command("follow-up done", &s4, 2, ENDED).await?;

    // 5. The HTTP API.
    let key =
        d.rt.orchestrator.create_api_key("acme", "ann@example.com", &["website".into()], &["sessions".into()]).await?;
    d.step("API: POST /v1/sessions (Ann's key)");
    let (st, created) = http(
        d.rt.api_addr,
        "POST",
        "/v1/sessions",
        &key,
        Some(r#"{"project":"website","instruction":"Add a contact page link to the header"}"#),
    )
    .await?;
    anyhow::ensure!(st == 202, "POST /v1/sessions answered {st}: {created}");
    let api_session = SessionId::parse(created["session"].as_str().context("session")?)?;
    d.wait_command("API session", &api_session, 1, ENDED).await?;
    let (st, status) = http(d.rt.api_addr, "GET", &format!("/v1/sessions/{api_session}"), &key, None).await?;
    d.step(&format!("API: GET /v1/sessions/{api_session} → {st}, command 1 {}", status["commands"][0]["status"]));
    let (st, _) = http(d.rt.api_addr, "GET", &format!("/v1/sessions/{s3}"), &key, None).await?;
    d.step(&format!("API: Ann reading Bob's session → {st} (keys never see other users' sessions)"));
    d.bar.finish_and_clear();

    report(&d, &remote, &[s1, s3, s4, api_session]).await?;
    d.rt.shutdown().await;
    println!("\nDemo complete. Data under {}", data.display());
    Ok(())
}

async fn report(d: &Demo, remote: &Path, sessions: &[SessionId]) -> anyhow::Result<()> {
    println!("\n== Sessions, commands and outcomes");
    println!(
        "{:<18} {:<16} {:<16} {:>3}  {:<12} {:<8}  instruction",
        "session", "user", "branch", "seq", "outcome", "commit"
    );
    for s in sessions {
        let item = d.rt.orchestrator.store.get_session(s).await?.context("session")?;
        for c in d.rt.orchestrator.store.list_commands(s).await? {
            let instr: String = c.instruction.lines().next().unwrap_or("").chars().take(48).collect();
            println!(
                "{:<18} {:<16} {:<16} {:>3}  {:<12} {:<8}  {}",
                s.as_str(),
                item.user,
                item.branch,
                c.seq,
                c.status,
                c.commit.as_deref().map(|x| &x[..7.min(x.len())]).unwrap_or("-"),
                instr
            );
        }
    }
    println!("\n== Containers");
    for c in d.rt.orchestrator.store.all_containers().await? {
        println!(
            "{:<48} {:<10} launches={} gen={}",
            c.container_id,
            c.container_status.map_or("-", |s| s.as_str()),
            c.launches,
            c.generation
        );
    }
    println!("\n== Reply emails (sent through SES; copies in {})", d.rt.outbox.display());
    let mut files: Vec<_> = std::fs::read_dir(&d.rt.outbox)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in files {
        let raw = std::fs::read(&f)?;
        let Some(m) = mail_parser::MessageParser::default().parse(&raw) else { continue };
        let first = m.body_text(0).map(|b| b.lines().next().unwrap_or("").to_string()).unwrap_or_default();
        println!(
            "To: {:<16} Subject: {}\n    In-Reply-To: {}  Reply-To: {}\n    {}",
            m.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or(""),
            m.subject().unwrap_or(""),
            m.in_reply_to().as_text().unwrap_or("-"),
            m.reply_to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("-"),
            first
        );
    }
    println!("\n== git log per branch ({})", remote.display());
    for branch in git(remote, &["for-each-ref", "--format=%(refname:short)", "refs/heads/"])?.lines() {
        println!("-- {branch}");
        print!("{}", git(remote, &["log", "--format=   %h %s", branch])?);
    }
    Ok(())
}

/// `make demo AGENT=claude-code`: the real CLI (installed pinned by
/// `scripts/install-agents.sh`) as the job of a project, against the scripted model endpoint
/// (this machine reaches no model), with its progress printed as it is recorded: a new
/// request, then a follow-up that resumes the same conversation.
/// The demo's project (`acme/website`, Ann and Bob, acknowledgements on), on `remote`.
fn website(remote: &Path) -> ProjectConfig {
    ProjectConfig {
        max_run_secs: 600,
        ..ProjectConfig::new(
            "acme",
            "website",
            &remote.to_string_lossy(),
            &["ann@example.com", "bob@example.com"],
            "true",
        )
    }
}

pub(crate) async fn run_agent(config: &CliConfig, kind: &str) -> anyhow::Result<()> {
    use switchyard_core::agent::AgentKind;
    let kind = AgentKind::parse(kind).with_context(|| format!("AGENT={kind}: claude-code or aider"))?;
    let bin = crate::scripted::agents_bin().context("run scripts/install-agents.sh first")?;
    println!(
        "Switchyard agent demo ({}) — emulator at {}",
        kind.as_str(),
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    let env =
        [("SWITCHYARD_POLL_WAIT_SECS", "5".to_string()), ("SWITCHYARD_AGENT_BIN", bin.to_string_lossy().into_owned())];
    let Scratch { rt, data, remote, .. } =
        Scratch::start(config, "agent-demo", DOMAIN, &env, Duration::from_secs(10)).await?;
    let model = ScriptedModel::start(&data).await?;
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let (agent, secrets) = model.agent(&sdk, "acme", kind).await?;
    let bar = ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(120));
    let d = Demo { rt, bar };
    d.rt.orchestrator
        .put_project(ProjectConfig {
            job_command: "true".into(),
            secrets,
            agent: Some(agent),
            budgets: switchyard_core::agent::Budgets { inactivity_secs: Some(120), max_cost_usd: Some(5.0) },
            ..website(&remote)
        })
        .await?;
    d.step(&format!("project acme/website runs {} (scripted model on 127.0.0.1:{})", kind.as_str(), model.port()));
    d.step("email 1: Ann asks for a blue header (new thread)");
    d.send("01-new-request.eml", &[("PROJECT_ADDRESS", ADDRESS)]).await?;
    let s1 = Demo::session_of("demo-01@mail.example.com");
    let c1 = d.wait_command("agent ran, committed", &s1, 1, ENDED).await?;
    let (reply1, _) = d.reply_for(&c1.command_id).await?;
    let token1 = format!("acme.website+t.{}@{DOMAIN}", s1.thread());
    d.step("email 2: Ann replies in the thread (the agent resumes the same conversation)");
    d.send("02-reply.eml", &[("REPLY_TO", &token1), ("IN_REPLY_TO", &reply1)]).await?;
    let c2 = d.wait_command("same session, same conversation", &s1, 2, ENDED).await?;
    d.bar.finish_and_clear();
    let conv = |c: &CommandItem| c.agent.as_ref().and_then(|a| a.conversation.clone()).unwrap_or_default();
    println!("\nconversation: command 1 {} · command 2 {}", conv(&c1), conv(&c2));
    for c in [&c1, &c2] {
        if let Some(a) = &c.agent {
            println!(
                "command {}: {} turns, {} tokens in, {} out, ${:.4}",
                c.seq,
                a.turns,
                a.input_tokens,
                a.output_tokens,
                a.cost_usd.unwrap_or(0.0)
            );
        }
    }
    report(&d, &remote, &[s1]).await?;
    d.rt.shutdown().await;
    println!("\nAgent demo complete. Data under {}", data.display());
    Ok(())
}
