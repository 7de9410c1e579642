//! Signed webhooks: one POST per final outcome of an API session, to the URL given when the
//! session was created, signed with the API key's webhook secret
//! (`switchyard_core::agent::webhook_signature`), retried with back-off.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Attempts per outcome (1 s, 2 s between them).
pub const ATTEMPTS: u32 = 3;
/// Time allowed for one attempt: at most 3 × 5 s + 3 s of a responder's 60 s on a receiver
/// that does not answer (a slow receiver must not stall the replies of other sessions).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a delivery ended, as recorded on the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// Every attempt failed (the last reason), or the receiver refused it for good (4xx).
    Failed(String),
}

impl Delivery {
    /// As stored on the command item.
    pub fn describe(&self) -> String {
        match self {
            Self::Delivered(code) => format!("delivered (HTTP {code})"),
            Self::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// POSTs `body` to `url` with `Switchyard-Signature` (signed with `secret` at send time),
/// `Switchyard-Event` and `Switchyard-Delivery` (the same id on every retry, so a receiver
/// can drop a repeat), retrying transport errors, 5xx and 429 with back-off.
pub async fn deliver(url: &str, secret: &[u8], delivery_id: &str, body: &[u8]) -> Delivery {
    let https = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(b) => b.https_or_http().enable_http1().build(),
        Err(e) => return Delivery::Failed(format!("no TLS roots: {e}")),
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let req = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("user-agent", "switchyard-webhooks/1")
            .header("switchyard-event", "command.finished")
            .header("switchyard-delivery", delivery_id)
            .header("switchyard-signature", switchyard_core::agent::webhook_signature(secret, now, body))
            .body(Full::new(Bytes::copy_from_slice(body)));
        let req = match req {
            Ok(r) => r,
            Err(e) => return Delivery::Failed(format!("invalid request: {e}")),
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => return Delivery::Delivered(resp.status().as_u16()),
            Ok(Ok(resp)) if resp.status().is_client_error() && resp.status().as_u16() != 429 => {
                return Delivery::Failed(format!("refused with HTTP {}", resp.status().as_u16()));
            }
            Ok(Ok(resp)) => last = format!("HTTP {}", resp.status().as_u16()),
            Ok(Err(e)) => last = format!("{e}"),
            Err(_) => last = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        }
    }
    Delivery::Failed(format!("{ATTEMPTS} attempts, last: {last}"))
}
