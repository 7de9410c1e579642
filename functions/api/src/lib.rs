//! `api` Lambda (API Gateway HTTP API, `lambda_http`): the endpoints of DESIGN §2.6.
//!
//! | method | path | does |
//! |---|---|---|
//! | POST | `/v1/sessions` | new session + first instruction (202) |
//! | POST | `/v1/sessions/{id}/messages` | follow-up (202) |
//! | GET | `/v1/sessions/{id}` | status, commands, outcomes |
//! | GET | `/v1/sessions/{id}/events` | progress and outcomes as server-sent events |
//! | POST | `/v1/sessions/{id}/interrupt` | interrupt the running job (202) |
//! | DELETE | `/v1/sessions/{id}` | close the session (202) |
//! | GET | `/v1/containers` | containers of the key's client (operator scope) |
//!
//! Bearer keys are looked up by hash and scoped to a client, a user and projects; a
//! session of another user answers 404. Routing is by path, so the handler behaves the
//! same behind API Gateway and on the local runtime's HTTP server.

pub mod problem;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use switchyard_aws::store::{ApiKeyItem, SessionItem};
use switchyard_core::ids::SessionId;
use switchyard_core::inbound::{Inbound, ThreadHint};
use switchyard_core::messages::Source;
use switchyard_core::status::CommandStatus;
use switchyard_orchestrator::sessions::SessionControl;
use switchyard_orchestrator::{Orchestrator, RouteOutcome};

pub use problem::Problem;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Built once per instance.
#[derive(Debug, Clone)]
pub struct State {
    /// Use cases.
    pub orchestrator: Orchestrator,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSession {
    project: String,
    instruction: String,
    #[serde(default)]
    subject: Option<String>,
    /// Where every final outcome of the session is POSTed, signed with the key's secret.
    #[serde(default)]
    webhook_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUp {
    instruction: String,
}

/// The Lambda handler: never fails; every error is a problem+json response.
pub async fn handle(state: &State, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(match dispatch(state, &req).await {
        Ok(r) => r,
        Err(p) => p.into_response(),
    })
}

fn json(status: u16, value: serde_json::Value) -> Result<Response<Body>, Problem> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(value.to_string()))
        .map_err(|e| Problem::new(500, "internal", e.to_string()))
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

fn parse<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, Problem> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(413, "too_large", format!("body is {} bytes, over {MAX_BODY_BYTES}", bytes.len())));
    }
    serde_json::from_slice(bytes).map_err(|e| Problem::new(400, "invalid_json", e.to_string()))
}

async fn authenticate(state: &State, req: &Request) -> Result<ApiKeyItem, Problem> {
    let secret = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Problem::new(401, "unauthorized", "missing bearer API key"))?;
    state
        .orchestrator
        .authenticate(secret.trim())
        .await
        .map_err(Problem::from)?
        .ok_or_else(|| Problem::new(401, "unauthorized", "unknown API key"))
}

fn idempotency_key(req: &Request) -> Result<Option<String>, Problem> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v.to_str().map_err(|_| Problem::new(400, "invalid_request", "Idempotency-Key is not ASCII"))?;
            if k.is_empty() || k.len() > 255 {
                return Err(Problem::new(400, "invalid_request", "Idempotency-Key must be 1–255 characters"));
            }
            Ok(Some(k.to_string()))
        }
    }
}

/// The session, if it exists and belongs to the key's user; else 404.
async fn owned_session(state: &State, key: &ApiKeyItem, id: &str) -> Result<SessionItem, Problem> {
    state
        .orchestrator
        .owned_session(key, id)
        .await
        .map_err(Problem::from)?
        .ok_or_else(|| Problem::new(404, "session_not_found", "no such session"))
}

fn accepted(r: &RouteOutcome) -> Result<Response<Body>, Problem> {
    json(
        202,
        serde_json::json!({
            "session": r.session,
            "command_id": r.command_id,
            "seq": r.seq,
            "duplicate": r.status == switchyard_orchestrator::RouteStatus::Duplicate,
            "branch": r.branch,
            "status": CommandStatus::Queued,
            "links": { "session": format!("/v1/sessions/{}", r.session) },
        }),
    )
}

#[allow(clippy::too_many_arguments)] // one per field of the inbound the API fills in
async fn route(
    state: &State,
    key: &ApiKeyItem,
    req: &Request,
    project: &str,
    session: Option<SessionId>,
    subject: String,
    instruction: String,
    webhook: Option<(String, String)>,
) -> Result<Response<Body>, Problem> {
    if !key.projects.iter().any(|p| p == project) {
        return Err(Problem::new(403, "forbidden", "the API key is not scoped to this project"));
    }
    let inbound = Inbound {
        source: Source::Api,
        client: key.client.clone(),
        project: project.to_string(),
        sender: key.user.clone(),
        subject,
        instruction,
        message_id: None,
        references: Vec::new(),
        thread: ThreadHint::Api { session },
        idempotency_key: idempotency_key(req)?,
        evidence: Default::default(),
        address: None,
        instruction_fallback: false,
        attachments: Vec::new(),
        attachment_notes: Vec::new(),
        webhook,
    };
    let r = state.orchestrator.route(&inbound).await.map_err(Problem::from)?;
    accepted(&r)
}

async fn dispatch(state: &State, req: &Request) -> Result<Response<Body>, Problem> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let method = req.method().clone();
    let key = authenticate(state, req).await?;
    match (method, parts.as_slice()) {
        (Method::POST, ["v1", "sessions"]) => {
            let b: NewSession = parse(req)?;
            let subject =
                b.subject.unwrap_or_else(|| b.instruction.lines().next().unwrap_or("").chars().take(80).collect());
            let webhook = match b.webhook_url {
                Some(url) => Some((webhook_url(&key, &url)?, key.pk.clone())),
                None => None,
            };
            route(state, &key, req, &b.project, None, subject, b.instruction, webhook).await
        }
        (Method::POST, ["v1", "sessions", id, "messages"]) => {
            let s = owned_session(state, &key, id).await?;
            let b: FollowUp = parse(req)?;
            let (project, subject) = (&s.project, s.subject.clone());
            route(state, &key, req, project, Some(s.session_id.clone()), subject, b.instruction, None).await
        }
        (Method::GET, ["v1", "sessions", id]) => {
            let s = owned_session(state, &key, id).await?;
            let commands = state.orchestrator.commands_of(&s).await.map_err(Problem::from)?;
            json(
                200,
                serde_json::json!({
                    "session": s.session_id,
                    "project": s.project,
                    "status": s.status,
                    "branch": s.branch,
                    "subject": s.subject,
                    "commands": commands.iter().map(|c| serde_json::json!({
                        "seq": c.seq,
                        "command_id": c.command_id,
                        "status": c.status,
                        "instruction": c.instruction,
                        "summary": c.summary,
                        "commit": c.commit,
                        "files_changed": c.files_changed,
                        "error_code": c.error_code,
                        "attempts": c.attempts,
                        // Email commands: the extractor kept the whole top part; what the
                        // email's attachments became (passed on, or refused and why).
                        "instruction_fallback": c.instruction_fallback,
                        "attachments": c.reply.as_ref().map(|r| r.attachments.clone()).unwrap_or_default(),
                        // Agent projects: what the agent reported, and its latest steps.
                        "agent": c.agent,
                        "progress": c.progress,
                        "webhook": c.webhook,
                    })).collect::<Vec<_>>(),
                    "agent_conversation": s.agent_conversation,
                    "webhook_url": s.webhook_url,
                }),
            )
        }
        (Method::GET, ["v1", "sessions", id, "events"]) => {
            let s = owned_session(state, &key, id).await?;
            events(state, &s, req).await
        }
        (Method::POST, ["v1", "sessions", id, "interrupt"]) => {
            let s = owned_session(state, &key, id).await?;
            state.orchestrator.control_session(&s, SessionControl::Interrupt).await.map_err(Problem::from)?;
            json(202, serde_json::json!({ "session": s.session_id, "status": "interrupting" }))
        }
        (Method::DELETE, ["v1", "sessions", id]) => {
            let s = owned_session(state, &key, id).await?;
            state.orchestrator.control_session(&s, SessionControl::Close).await.map_err(Problem::from)?;
            json(202, serde_json::json!({ "session": s.session_id, "status": "closing" }))
        }
        (Method::GET, ["v1", "containers"]) => {
            if !key.scopes.iter().any(|s| s == "operator") {
                return Err(Problem::new(403, "forbidden", "the operator scope is required"));
            }
            let all = state.orchestrator.containers_of(&key.client).await.map_err(Problem::from)?;
            let list: Vec<_> = all
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "container": c.container_id,
                        "project": c.project,
                        "user": c.user,
                        "status": c.container_status,
                        "health": c.health,
                        "active_jobs": c.active_jobs,
                        "generation": c.generation,
                        "heartbeat_ms": c.heartbeat_ms,
                    })
                })
                .collect();
            json(200, serde_json::json!({ "containers": list }))
        }
        _ => Err(Problem::new(404, "not_found", format!("no route for {} {}", req.method(), path))),
    }
}

/// A webhook URL as given when a session is created: `https://` (plain `http://` only to
/// loopback, and only where `SWITCHYARD_ALLOW_HTTP_WEBHOOKS=1`, as `switchyard dev` sets),
/// at most 2,048 characters, no user-info; the key must have a webhook secret to sign with.
fn webhook_url(key: &ApiKeyItem, url: &str) -> Result<String, Problem> {
    let bad = |why: &str| Err(Problem::new(400, "invalid_webhook_url", why.to_string()));
    if key.webhook_secret.is_none() {
        return Err(Problem::new(
            400,
            "no_webhook_secret",
            "this API key was made before webhooks and has no secret to sign them: make a new key",
        ));
    }
    let url = url.trim();
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("the webhook URL is too long or holds spaces or control characters");
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
        if !(local && std::env::var("SWITCHYARD_ALLOW_HTTP_WEBHOOKS").is_ok_and(|v| v == "1")) {
            return bad("the webhook URL must be https://");
        }
        r
    } else {
        return bad("the webhook URL must be https://");
    };
    if url.contains('#') {
        return bad("the webhook URL must not have a fragment");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return bad("the webhook URL needs a host and no user-info");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if url.starts_with("https://") && internal_host(host) {
        return bad("the webhook URL names a loopback, private or link-local address");
    }
    Ok(url.to_string())
}

/// A host a webhook must not be sent to: an inside address however written
/// ([`switchyard_core::net::forbidden_ip`]), or `localhost`. Names are checked as written
/// here; the sender checks what they resolve to at delivery.
fn internal_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    // Numeric hosts other than four decimal numbers (`127.1`, `2130706433`, `0x7f.1`) are
    // read as addresses by resolvers: refused rather than parsed the resolver's way.
    // (The URL standard's "ends in a number": a last label of digits, or `0x…`; no top-level
    // domain starts with a digit.)
    let last = host.rsplit('.').next().unwrap_or("");
    let numeric = !last.is_empty() && (last.chars().all(|c| c.is_ascii_digit()) || last.starts_with("0x"));
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => switchyard_core::net::forbidden_ip(ip),
        Err(_) => numeric && !host.contains(':'),
    }
}

/// How long one `GET …/events` waits for something new before it ends (the client
/// reconnects with `Last-Event-ID`; API Gateway ends any response at 30 s).
fn events_window() -> std::time::Duration {
    let secs = std::env::var("SWITCHYARD_EVENTS_WINDOW_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20u64);
    std::time::Duration::from_secs(secs.clamp(1, 25))
}

/// Outcome events sort after every progress event of their command.
const OUTCOME_N: u32 = u32::MAX;

/// `GET /v1/sessions/{id}/events`: the session's progress events and outcomes after
/// `Last-Event-ID` (`{seq}.{n}`), as `text/event-stream`. It answers as soon as there is
/// something new (or the session has nothing queued or running: `event: idle`), else at
/// the end of its window with a comment; `retry:` tells an `EventSource` to come back at
/// once. Behind API Gateway a response is delivered whole, so this is SSE by long poll: an
/// event reaches the client within one poll interval of being recorded.
async fn events(state: &State, s: &SessionItem, req: &Request) -> Result<Response<Body>, Problem> {
    let cursor = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().query().and_then(|q| q.split('&').find_map(|p| p.strip_prefix("after="))))
        .map(|v| {
            let (seq, n) = v.split_once('.').unwrap_or((v, "0"));
            (seq.parse::<u64>().unwrap_or(0), n.parse::<u32>().unwrap_or(0))
        })
        .unwrap_or((0, 0));
    let deadline = tokio::time::Instant::now() + events_window();
    let mut body = String::from("retry: 500\n\n");
    loop {
        let commands = state.orchestrator.commands_of(s).await.map_err(Problem::from)?;
        let mut any = false;
        for c in &commands {
            for e in c.progress.iter().filter(|e| (c.seq, e.n) > cursor) {
                let data = serde_json::json!({
                    "seq": c.seq, "command_id": c.command_id, "n": e.n, "at_ms": e.at_ms, "kind": e.kind, "text": e.text,
                });
                body.push_str(&format!("id: {}.{}\nevent: progress\ndata: {data}\n\n", c.seq, e.n));
                any = true;
            }
            if c.status.outcome().is_some() && (c.seq, OUTCOME_N) > cursor {
                let data = serde_json::json!({
                    "seq": c.seq, "command_id": c.command_id, "status": c.status, "summary": c.summary,
                    "commit": c.commit, "error_code": c.error_code, "agent": c.agent,
                });
                body.push_str(&format!("id: {}.{OUTCOME_N}\nevent: outcome\ndata: {data}\n\n", c.seq));
                any = true;
            }
        }
        let idle = commands.iter().all(|c| c.status.outcome().is_some());
        if idle && !any {
            body.push_str("event: idle\ndata: {}\n\n");
        }
        if any || idle || tokio::time::Instant::now() >= deadline {
            if !any && !idle {
                body.push_str(": nothing new\n\n");
            }
            return Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(Body::Text(body))
                .map_err(|e| Problem::new(500, "internal", e.to_string()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: Option<&str>) -> ApiKeyItem {
        ApiKeyItem {
            pk: "APIKEY#x".into(),
            sk: "META".into(),
            client: "acme".into(),
            user: "ann@example.com".into(),
            projects: vec![],
            scopes: vec![],
            key_prefix: "sy_x".into(),
            created_ms: 0,
            revoked_ms: None,
            webhook_secret: secret.map(str::to_string),
        }
    }

    #[test]
    fn webhook_urls_must_be_public_https() {
        let k = key(Some("whsec_x"));
        assert!(webhook_url(&k, "https://hooks.example.com/switchyard?x=1").is_ok());
        assert!(webhook_url(&k, "https://cafe.be/h").is_ok(), "a name of hex letters is a name");
        assert!(webhook_url(&k, "https://93.184.216.34/h").is_ok(), "a public address");
        for bad in [
            "http://hooks.example.com/h",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5/h",
            "https://127.0.0.1:8443/h",
            "https://[::1]/h",
            "https://[fd00::1]/h",
            "https://localhost/h",
            "https://127.1/h",
            "https://2130706433/h",
            "https://0x7f.1/h",
            "https://100.64.0.1/h",
            "https://user:pw@hooks.example.com/h",
            "https://hooks.example.com/h#frag",
            "https://hooks.example.com/a b",
            "ftp://hooks.example.com/h",
        ] {
            assert!(webhook_url(&k, bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(webhook_url(&key(None), "https://hooks.example.com/h").map_err(|p| p.status), Err(400));
    }
}
