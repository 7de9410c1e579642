//! `api` Lambda (API Gateway HTTP API, `lambda_http`): the endpoints of DESIGN §2.6.
//!
//! | method | path | does |
//! |---|---|---|
//! | POST | `/v1/sessions` | new session + first instruction (202) |
//! | POST | `/v1/sessions/{id}/messages` | follow-up (202) |
//! | GET | `/v1/sessions/{id}` | status, commands, outcomes |
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

async fn route(
    state: &State,
    key: &ApiKeyItem,
    req: &Request,
    project: &str,
    session: Option<SessionId>,
    subject: String,
    instruction: String,
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
            route(state, &key, req, &b.project, None, subject, b.instruction).await
        }
        (Method::POST, ["v1", "sessions", id, "messages"]) => {
            let s = owned_session(state, &key, id).await?;
            let b: FollowUp = parse(req)?;
            route(state, &key, req, &s.project, Some(s.session_id.clone()), s.subject.clone(), b.instruction).await
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
                    })).collect::<Vec<_>>(),
                }),
            )
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
