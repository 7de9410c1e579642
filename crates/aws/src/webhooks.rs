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

/// The host of `url` if it is an IP literal (the connector does not resolve those).
fn literal_host(url: &str) -> Option<std::net::IpAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.parse().ok()
}

/// A resolver that answers only outside addresses: a name with any inside address among
/// its answers is refused whole (a rebinding name would list both), and the connector then
/// connects to exactly what was checked — no second lookup between check and connect.
#[derive(Debug, Clone, Copy)]
struct OutsideOnly {
    /// Local development (`http://` to loopback): loopback answers are allowed.
    local: bool,
}

type Resolving = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<std::vec::IntoIter<std::net::SocketAddr>, std::io::Error>> + Send>,
>;

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for OutsideOnly {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let local = self.local;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let inside = |a: &std::net::SocketAddr| {
                switchyard_core::net::forbidden_ip(a.ip()) && !(local && a.ip().is_loopback())
            };
            if let Some(bad) = addrs.iter().find(|a| inside(a)) {
                return Err(std::io::Error::other(format!("{host} resolves to {}, not an outside address", bad.ip())));
            }
            Ok(addrs.into_iter())
        })
    }
}

/// POSTs `body` to `url` with `Switchyard-Signature` (signed with `secret` at send time),
/// `Switchyard-Event` and `Switchyard-Delivery` (the same id on every retry, so a receiver
/// can drop a repeat), retrying transport errors, 5xx and 429 with back-off.
pub async fn deliver(url: &str, secret: &[u8], delivery_id: &str, body: &[u8]) -> Delivery {
    // Plain http is admitted by the API only to a loopback literal in local development; any
    // other URL reaches only outside addresses, checked on what the name resolves to now.
    let local = url.starts_with("http://");
    if let Some(ip) = literal_host(url).filter(|ip| !local && switchyard_core::net::forbidden_ip(*ip)) {
        return Delivery::Failed(format!("refused: {ip} is not an outside address"));
    }
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(OutsideOnly { local });
    http.enforce_http(false);
    let https = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(b) => b.https_or_http().enable_http1().wrap_connector(http),
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
            Ok(Err(e)) => {
                // The cause (a refused address, a TLS failure) is in the source chain.
                last = format!("{e}");
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    last.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                if last.contains("not an outside address") {
                    return Delivery::Failed(last);
                }
            }
            Err(_) => last = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        }
    }
    Delivery::Failed(format!("{ATTEMPTS} attempts, last: {last}"))
}

#[cfg(test)]
mod delivery_tests {
    use super::*;

    #[tokio::test]
    async fn a_name_or_literal_that_reaches_inside_is_refused_at_delivery() {
        // GIVEN a receiver on loopback, which a name resolving there would reach
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // WHEN a webhook is delivered by a name that resolves inside (as a public name
        // rebound to 127.0.0.1 after the API's check would), or to an inside literal in an
        // IPv6 disguise
        for url in [format!("https://localhost:{port}/hook"), format!("https://[::ffff:127.0.0.1]:{port}/hook")] {
            let d = deliver(&url, b"secret", "d1", b"{}").await;
            // THEN nothing connects, and the record says why
            match d {
                Delivery::Failed(why) => assert!(why.contains("not an outside address"), "{url}: {why}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
        assert!(accepted.is_err(), "a connection reached the inside receiver");
    }
}
