//! A real coding agent CLI as the job: Claude Code (installed pinned from npm by
//! `scripts/install-agents.sh`) in real worker processes, against a scripted model endpoint
//! that speaks the Anthropic Messages API (`scripts/scripted_model.py`) — the only stand-in,
//! for the provider this machine cannot reach. Then: the file it changed is committed, its
//! progress is recorded and streamed over SSE, a follow-up resumes its conversation, an
//! inactivity limit saves a checkpoint and says so, and an API session's outcome arrives as
//! a signed webhook.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use lambda_http::{Body, Request};
use switchyard_core::agent::{verify_webhook, AgentConfig, AgentKind, Budgets};
use switchyard_core::messages::Outcome;
use switchyard_core::project::InterruptScope;
use switchyard_core::status::{CommandStatus, ErrorCode};
use switchyard_tests::world::{token, world_with_env, World, ANN, WAIT};
use switchyard_tests::{eventually, git, project, scratch_dir, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TO: &str = "acme.site@in.example.com";
/// A real CLI's first start on a cold machine (aider imports litellm: seconds, tens of them
/// with six tests at once on two cores) — a deadline, not a sleep.
const AGENT_WAIT: Duration = Duration::from_secs(120);

/// The scripted provider, stopped when dropped.
struct Model {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Model {
    async fn start() -> anyhow::Result<Self> {
        let dir = scratch_dir("model")?;
        let (port_file, log) = (dir.join("port"), dir.join("requests.jsonl"));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/scripted_model.py");
        let child =
            Command::new("python3").arg(script).arg("--port-file").arg(&port_file).arg("--log").arg(&log).spawn()?;
        let port = eventually("the scripted model's port", WAIT, || {
            let f = port_file.clone();
            async move { Ok(std::fs::read_to_string(f).ok()) }
        })
        .await?;
        Ok(Self { child, url: format!("http://127.0.0.1:{port}"), log })
    }

    /// The conversations the CLI sent, in order (`messages` of every request).
    fn requests(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        Ok(text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?)
    }
}

/// Where `scripts/install-agents.sh` put the CLIs (`make test` runs it first).
fn agent_bin() -> anyhow::Result<String> {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.agents/bin");
    anyhow::ensure!(
        bin.join("claude").exists(),
        "Claude Code is not installed: run scripts/install-agents.sh (make test does)"
    );
    Ok(bin.canonicalize()?.to_string_lossy().into_owned())
}

/// A world whose project runs Claude Code against the scripted model, with its API key
/// from SSM like any project secret.
async fn agent_world(model: &Model, budgets: Budgets) -> anyhow::Result<World> {
    agent_world_of(model, AgentKind::ClaudeCode, budgets).await
}

/// The same for any CLI: its provider key and base URL are the ones that CLI reads.
async fn agent_world_of(model: &Model, kind: AgentKind, budgets: Budgets) -> anyhow::Result<World> {
    let w = world_with_env("", InterruptScope::Session, 600, &[("SWITCHYARD_AGENT_BIN", agent_bin()?)]).await?;
    let ssm = aws_sdk_ssm::Client::new(&w.env.sdk);
    let parameter = format!("/switchyard/acme/anthropic-{}", unique());
    let value = format!("sk-ant-scripted-{}", unique());
    let secure = aws_sdk_ssm::types::ParameterType::SecureString;
    ssm.put_parameter().name(&parameter).value(value).r#type(secure).send().await?;
    let mut p = project("acme", "site", &[ANN]);
    p.repo_url = w.remote.to_string_lossy().into_owned();
    let model_name = match kind {
        AgentKind::ClaudeCode => "claude-sonnet-4-5",
        AgentKind::Aider => "openai/scripted",
    };
    p.secrets.insert(kind.key_variable().into(), parameter);
    let base_url = Some(kind.base_url(&model.url));
    p.agent = Some(AgentConfig { kind, model: model_name.into(), args: Vec::new(), base_url });
    p.budgets = budgets;
    w.o.put_project(p).await?;
    Ok(w)
}

async fn get(state: &api::State, path: &str, key: &str, last_event: Option<&str>) -> (u16, String) {
    let mut b = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("https://api.example{path}"))
        .header("authorization", format!("Bearer {key}"));
    if let Some(id) = last_event {
        b = b.header("last-event-id", id);
    }
    let req: Request = b.body(Body::Empty).expect("request");
    let resp = api::handle(state, req).await.expect("handler never fails");
    let text = match resp.body() {
        Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    (resp.status().as_u16(), text)
}

#[tokio::test]
async fn claude_code_edits_commits_streams_progress_and_resumes_its_conversation() -> anyhow::Result<()> {
    let model = Model::start().await?;
    let mut w = agent_world(&model, Budgets::default()).await?;
    // WHEN an email asks for a change
    let first = w.send(ANN, TO, &format!("{}@x", unique()), "Add a greeting line to the site.").await?;
    let r1 = w.responses_within(&first, 1, AGENT_WAIT).await?.remove(0);
    // THEN Claude Code ran the scripted tool call, and its edit is the commit
    assert_eq!(r1.outcome, Outcome::Succeeded, "{r1:?}");
    assert_eq!(r1.files_changed, vec!["AGENT_LOG.md"]);
    let branch = format!("thread-{}", first.thread);
    assert_eq!(w.branch_file(&branch, "AGENT_LOG.md").as_deref(), Some("- Add a greeting line to the site.\n"));
    // AND the reply is the agent's own summary, with what it cost
    assert!(r1.summary.contains("Done: appended"), "{}", r1.summary);
    let a1 = r1.agent.clone().expect("agent report");
    assert_eq!((a1.kind.as_str(), a1.turns, a1.is_error), ("claude_code", 2, false));
    assert!(a1.cost_usd.is_some_and(|c| c > 0.0) && a1.output_tokens > 0, "{a1:?}");
    let conversation = a1.conversation.clone().expect("conversation id");
    // AND its progress was recorded on the command: what it said, the tool it used
    let c1 = w.command(&first).await?;
    let kinds: Vec<_> = c1.progress.iter().map(|e| (e.kind.as_str(), e.text.as_str())).collect();
    assert!(kinds.iter().any(|(k, t)| *k == "tool" && t.starts_with("Bash:")), "{kinds:?}");
    assert!(kinds.iter().any(|(k, _)| *k == "text"), "{kinds:?}");
    assert!(c1.progress.windows(2).all(|p| p[0].n < p[1].n));
    // AND the session keeps the conversation
    let session = w.env.store().get_session(&first.session).await?.expect("session");
    assert_eq!(session.agent_conversation.as_deref(), Some(conversation.as_str()));

    // WHEN the API streams the session's events (the session's owner's key)
    let key = w.o.create_api_key("acme", ANN, &["site".into()], &["sessions".into()]).await?;
    let state = api::State { orchestrator: w.o.clone() };
    let path = format!("/v1/sessions/{}/events", first.session);
    let (status, sse) = get(&state, &path, &key, None).await;
    // THEN every progress event and the outcome come as server-sent events
    assert_eq!(status, 200, "{sse}");
    assert!(sse.contains("event: progress") && sse.contains("\"kind\":\"tool\""), "{sse}");
    assert!(sse.contains(&format!("id: 1.{}\nevent: outcome", u32::MAX)), "{sse}");
    // AND from the last event on, there is nothing new: the stream says the session is idle
    let (_, rest) = get(&state, &path, &key, Some(&format!("1.{}", u32::MAX))).await;
    assert!(rest.contains("event: idle") && !rest.contains("event: progress"), "{rest}");

    // WHEN a follow-up arrives in the thread
    let second = w.send(ANN, &token(&first), &format!("{}@x", unique()), "Now add a footer too.").await?;
    let r2 = w.responses_within(&first, 1, AGENT_WAIT).await?.remove(0);
    assert_eq!((r2.seq, r2.outcome), (2, Outcome::Succeeded), "{r2:?}");
    // THEN it resumed the same conversation: same id, and the model saw the first exchange
    assert_eq!(r2.agent.as_ref().and_then(|a| a.conversation.as_deref()), Some(conversation.as_str()));
    let requests = model.requests()?;
    let last = requests.last().expect("requests").pointer("/body/messages").cloned().unwrap_or_default();
    let history = last.to_string();
    assert!(
        history.contains("Add a greeting line to the site."),
        "the first instruction is not in the resumed conversation"
    );
    assert!(history.contains("Now add a footer too."));
    assert_eq!(
        w.branch_file(&branch, "AGENT_LOG.md").as_deref(),
        Some("- Add a greeting line to the site.\n- Now add a footer too.\n")
    );
    assert_eq!(second.seq, 2);
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn an_inactive_agent_is_stopped_with_a_checkpoint_and_a_clear_reply() -> anyhow::Result<()> {
    let model = Model::start().await?;
    let budgets = Budgets { inactivity_secs: Some(3), max_cost_usd: None };
    let mut w = agent_world(&model, budgets).await?;
    // WHEN the agent edits a file, then goes quiet (the scripted model holds its answer 60 s)
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Update the menu, stall 60").await?;
    let resp = w.responses_within(&r, 1, AGENT_WAIT).await?.remove(0);
    // THEN the inactivity limit stopped it, the edit so far is a checkpoint commit, and the
    // reply says which limit and what was saved
    assert_eq!((resp.outcome, resp.error_code.clone()), (Outcome::Failed, Some(ErrorCode::Inactive)), "{resp:?}");
    assert!(resp.summary.contains("inactivity limit") && resp.summary.contains("checkpoint"), "{}", resp.summary);
    assert_eq!(resp.files_changed, vec!["AGENT_LOG.md"]);
    let branch = format!("thread-{}", r.thread);
    let subject = git(&w.remote, &["log", "-1", "--format=%s", &branch])?;
    assert_eq!(subject.trim(), format!("switchyard: checkpoint {} (inactivity limit)", r.command_id));
    assert_eq!(w.branch_file(&branch, "AGENT_LOG.md").as_deref(), Some("- Update the menu, stall 60\n"));
    assert_eq!(w.command(&r).await?.status, CommandStatus::Final(Outcome::Failed));
    w.stop_all().await;
    Ok(())
}

/// Accepts one HTTP request and answers 200; returns its headers (lower-case) and body.
async fn one_request(listener: tokio::net::TcpListener) -> anyhow::Result<(Vec<(String, String)>, Vec<u8>)> {
    let (mut sock, _) = listener.accept().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
            .collect();
        let len: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        if buf.len() >= end + 4 + len {
            let body = buf[end + 4..end + 4 + len].to_vec();
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await?;
            return Ok((headers, body));
        }
    }
}

#[tokio::test]
async fn an_api_session_with_a_webhook_gets_its_outcome_signed() -> anyhow::Result<()> {
    // The local runtime allows plain-HTTP webhooks to loopback; AWS deployments do not.
    std::env::set_var("SWITCHYARD_ALLOW_HTTP_WEBHOOKS", "1");
    let model = Model::start().await?;
    let mut w = agent_world(&model, Budgets::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
    let received = tokio::spawn(one_request(listener));
    let key = w.o.create_api_key("acme", ANN, &["site".into()], &["sessions".into()]).await?;
    let state = api::State { orchestrator: w.o.clone() };
    // WHEN a session is created through the API with a webhook URL
    let body = serde_json::json!({ "project": "site", "instruction": "Add a contact page.", "webhook_url": hook });
    let req: Request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://api.example/v1/sessions")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::Text(body.to_string()))?;
    let resp = api::handle(&state, req).await.expect("handler never fails");
    assert_eq!(resp.status().as_u16(), 202);
    let Body::Text(created) = resp.body() else { anyhow::bail!("no body") };
    let created: serde_json::Value = serde_json::from_str(created)?;
    let session = switchyard_core::ids::SessionId::parse(created["session"].as_str().unwrap_or(""))?;
    // AND its outcome goes through the responder
    let item = w.env.store().get_session(&session).await?.expect("session");
    let out = w.env.store().get_container(&item.session_container).await?.and_then(|c| c.out_url).expect("out queue");
    let q = w.env.queues();
    let response = eventually("the outcome", WAIT, || {
        let (q, out) = (q.clone(), out.clone());
        async move {
            let got = q.receive(&out, 1, 1, Some(60)).await?;
            Ok(got.into_iter().next())
        }
    })
    .await?;
    let r: switchyard_core::messages::Response = switchyard_core::messages::decode(&response.body)?;
    w.o.respond(None, &r).await?;
    // THEN the webhook arrived once, signed with the key's secret over its body
    let (headers, body) = tokio::time::timeout(Duration::from_secs(30), received).await???;
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let secret = w.o.authenticate(&key).await?.and_then(|k| k.webhook_secret).expect("the key has a webhook secret");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    assert!(verify_webhook(secret.as_bytes(), &header("switchyard-signature"), &body, now, 300), "{headers:?}");
    assert!(!verify_webhook(b"another secret", &header("switchyard-signature"), &body, now, 300));
    let event: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!((event["event"].as_str(), event["outcome"].as_str()), (Some("command.finished"), Some("succeeded")));
    assert_eq!(event["agent"]["kind"].as_str(), Some("claude_code"));
    assert_eq!(header("switchyard-delivery"), format!("{}.succeeded", r.command_id.as_str().to_ascii_lowercase()));
    // AND the command records it; answering the same outcome again sends nothing more
    let c = w.env.store().get_command(&session, 1).await?.expect("command");
    assert_eq!(c.webhook.as_deref(), Some("delivered (HTTP 200)"));
    w.o.respond(None, &r).await?;
    assert_eq!(
        w.env.store().get_command(&session, 1).await?.and_then(|c| c.webhook).as_deref(),
        Some("delivered (HTTP 200)")
    );
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn an_email_instruction_is_acknowledged_at_once_in_its_thread_unless_turned_off() -> anyhow::Result<()> {
    let env = switchyard_tests::TestEnv::new().await?;
    let (launcher, _exits) = switchyard_worker::local::LocalLauncher::new(
        switchyard_tests::worker_binary()?,
        scratch_dir("ack")?,
        vec![("SWITCHYARD_IDLE_TIMEOUT_SECS".into(), "2".into())],
    );
    let o = env.orchestrator_with(std::sync::Arc::new(launcher));
    let mut p = project("acme", "site", &[ANN]);
    p.acknowledge_email = true;
    o.put_project(p.clone()).await?;
    let mailer = switchyard_aws::mailer::Mailer::new(env.clients.ses.clone());
    mailer.ensure_identity("in.example.com").await?;
    let id = format!("{}@x", unique());
    let raw = switchyard_tests::email(ANN, TO, "Header colour", &id, "", "Make the header blue.");
    let verdicts = switchyard_core::project::Verdict::Pass;
    let inbound = switchyard_core::inbound::inbound_from_email(&raw, verdicts, verdicts)?.inbound;
    // WHEN an email instruction is routed
    let routed = o.route(&inbound).await?;
    let ack = o.acknowledge(&mailer, &inbound, &routed).await?.expect("an acknowledgement");
    // THEN the sender is told at once, in the thread: session, branch, where it stands
    let m = mail_parser::MessageParser::default().parse(&ack).expect("parses");
    let text = m.body_text(0).unwrap_or_default().to_string();
    assert!(text.starts_with("Working on it."), "{text}");
    assert!(text.contains(routed.session.as_str()) && text.contains(&routed.branch), "{text}");
    assert!(text.contains("container is starting"), "{text}");
    assert_eq!(m.in_reply_to().as_text(), Some(id.as_str()));
    assert!(m.subject().unwrap_or("").contains(&format!("[#{}]", routed.thread)));
    // AND answering the acknowledgement continues the same session
    let ack_id = m.message_id().expect("message id").to_string();
    let reply = switchyard_tests::email(
        ANN,
        TO,
        "Re: Header colour",
        &format!("{}@x", unique()),
        &format!("In-Reply-To: <{ack_id}>\r\n"),
        "Darker, please.",
    );
    let follow = o.route(&switchyard_core::inbound::inbound_from_email(&reply, verdicts, verdicts)?.inbound).await?;
    assert_eq!((follow.session.as_str(), follow.seq), (routed.session.as_str(), 2));
    // AND a duplicate delivery is not acknowledged twice
    let again = o.route(&inbound).await?;
    assert!(o.acknowledge(&mailer, &inbound, &again).await?.is_none());
    // AND a project that turns acknowledgements off gets none
    p.acknowledge_email = false;
    o.put_project(p).await?;
    let quiet = switchyard_tests::email(ANN, TO, "Other", &format!("{}@x", unique()), "", "Add a page.");
    let quiet = switchyard_core::inbound::inbound_from_email(&quiet, verdicts, verdicts)?.inbound;
    let r = o.route(&quiet).await?;
    assert!(o.acknowledge(&mailer, &quiet, &r).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn aider_edits_and_the_follow_up_restores_its_chat_history() -> anyhow::Result<()> {
    let model = Model::start().await?;
    let mut w = agent_world_of(&model, AgentKind::Aider, Budgets::default()).await?;
    // WHEN an email asks for a change
    let first = w.send(ANN, TO, &format!("{}@x", unique()), "Add a greeting line.").await?;
    let r1 = w.responses_within(&first, 1, AGENT_WAIT).await?.remove(0);
    // THEN aider applied the scripted edit (no git of its own: the worker committed it)
    assert_eq!(r1.outcome, Outcome::Succeeded, "{r1:?}");
    assert_eq!(r1.files_changed, vec!["AGENT_LOG.md"]);
    let branch = format!("thread-{}", first.thread);
    assert_eq!(w.branch_file(&branch, "AGENT_LOG.md").as_deref(), Some("- Add a greeting line.\n"));
    let log = git(&w.remote, &["log", "--format=%s", &branch])?;
    assert_eq!(log.lines().filter(|l| l.starts_with("switchyard:")).count(), 1, "{log}");
    let a1 = r1.agent.clone().expect("agent report");
    assert_eq!((a1.kind.as_str(), a1.input_tokens, a1.output_tokens), ("aider", 120, 42), "{a1:?}");
    // AND its edit was a progress event
    let c1 = w.command(&first).await?;
    assert!(c1.progress.iter().any(|e| e.kind == "edit" && e.text == "edited AGENT_LOG.md"), "{:?}", c1.progress);
    // WHEN a follow-up arrives in the thread
    w.send(ANN, &token(&first), &format!("{}@x", unique()), "Now add a footer too.").await?;
    let r2 = w.responses_within(&first, 1, AGENT_WAIT).await?.remove(0);
    assert_eq!((r2.seq, r2.outcome), (2, Outcome::Succeeded), "{r2:?}");
    // THEN aider restored the session's chat history: the model saw the first instruction
    let requests = model.requests()?;
    let history = requests.last().and_then(|r| r.pointer("/body/messages")).cloned().unwrap_or_default().to_string();
    assert!(history.contains("Add a greeting line."), "the chat history was not restored");
    assert_eq!(
        w.branch_file(&branch, "AGENT_LOG.md").as_deref(),
        Some("- Add a greeting line.\n- Now add a footer too.\n")
    );
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn the_cost_cap_stops_claude_code_and_the_reply_says_so() -> anyhow::Result<()> {
    let model = Model::start().await?;
    // The scripted model's first turn costs $0.00099 at Claude Code's prices.
    let budgets = Budgets { inactivity_secs: None, max_cost_usd: Some(0.0005) };
    let mut w = agent_world(&model, budgets).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "- Rebuild the whole site").await?;
    let resp = w.responses_within(&r, 1, AGENT_WAIT).await?.remove(0);
    // THEN the CLI stopped at the cap (before running the tool it asked for), and the reply
    // names the cost cap; an instruction starting with "-" reached it as text, not an option
    assert_eq!((resp.outcome, resp.error_code.clone()), (Outcome::Failed, Some(ErrorCode::CostLimit)), "{resp:?}");
    assert!(resp.summary.contains("cost cap"), "{}", resp.summary);
    assert!(resp.agent.as_ref().is_some_and(|a| a.budget_exhausted), "{:?}", resp.agent);
    let first = model.requests()?.into_iter().next().expect("a request").to_string();
    assert!(first.contains("- Rebuild the whole site"), "the instruction did not reach the model");
    w.stop_all().await;
    Ok(())
}
