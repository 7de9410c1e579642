//! `application/problem+json` (RFC 9457) errors with stable `type`s.

use lambda_http::{Body, Response};
use switchyard_orchestrator::{Rejection, RouteError};

/// Base of every problem `type`.
pub const TYPE_BASE: &str = "https://switchyard.dev/problems/";

/// An HTTP error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// Stable type slug (`unauthorized`, `session_not_found`, …).
    pub kind: &'static str,
    /// Human-readable detail.
    pub detail: String,
}

impl Problem {
    /// A problem.
    pub fn new(status: u16, kind: &'static str, detail: impl Into<String>) -> Self {
        Self { status, kind, detail: detail.into() }
    }

    /// The response.
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({
            "type": format!("{TYPE_BASE}{}", self.kind),
            "title": self.kind.replace('_', " "),
            "status": self.status,
            "detail": self.detail,
        });
        Response::builder()
            .status(self.status)
            .header("content-type", "application/problem+json")
            .body(Body::Text(body.to_string()))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

impl From<RouteError> for Problem {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Rejected(r) => {
                let status = match &r {
                    Rejection::SessionNotFound | Rejection::UnknownProject { .. } | Rejection::ThreadMismatch => 404,
                    Rejection::SessionClosed => 409,
                    Rejection::SenderNotAllowed(_) | Rejection::Unauthenticated(_) => 403,
                    Rejection::InstructionTooLarge { .. } => 413,
                    _ => 422,
                };
                Problem::new(status, r.code(), r.to_string())
            }
            RouteError::Contended(_) => Problem::new(503, "contended", "the session is busy; retry"),
            RouteError::Retiring(_) => {
                Problem::new(503, "retiring", "the container is being recycled; retry in a few seconds")
            }
            RouteError::Aws(e) if e.is_retryable() => {
                tracing::error!(error = %e, "aws failure");
                Problem::new(503, "unavailable", "a backing service is unavailable; retry")
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Problem::new(500, "internal", "internal error")
            }
        }
    }
}
