//! `switchyard sessions --follow ID`: watches a session through the HTTP API's
//! `GET /v1/sessions/{id}/events` (server-sent events), reconnecting with `Last-Event-ID`
//! as an `EventSource` does, and prints each progress event and outcome as it arrives.
//! Ends when the session has nothing queued or running.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Event {
    /// `id:`
    pub(crate) id: Option<String>,
    /// `event:` (`message` when absent)
    pub(crate) event: String,
    /// `data:` lines joined by newlines.
    pub(crate) data: String,
}

/// Parses a `text/event-stream` body (comments and `retry:` skipped).
pub(crate) fn parse(body: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for block in body.replace("\r\n", "\n").split("\n\n") {
        let mut e = Event { event: "message".into(), ..Event::default() };
        let mut any = false;
        for line in block.lines() {
            let (field, value) =
                line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
            match field {
                "id" => e.id = Some(value.to_string()),
                "event" => e.event = value.to_string(),
                "data" => {
                    if any {
                        e.data.push('\n');
                    }
                    e.data.push_str(value);
                    any = true;
                }
                _ => {}
            }
        }
        if any {
            out.push(e);
        }
    }
    out
}

/// One line for a terminal.
fn show(e: &Event) -> String {
    let v: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    match e.event.as_str() {
        "progress" => format!("[{}] {:<5} {}", v["seq"], s("kind"), s("text")),
        "outcome" => format!(
            "[{}] == {} {}{}",
            v["seq"],
            s("status"),
            s("summary").lines().next().unwrap_or(""),
            v.get("commit")
                .and_then(|c| c.as_str())
                .map(|c| format!(" (commit {})", &c[..c.len().min(10)]))
                .unwrap_or_default()
        ),
        other => format!("{other}: {}", e.data),
    }
}

/// Follows session `id` until it is idle.
pub(crate) async fn run(api_url: &str, key: &str, id: &str) -> anyhow::Result<()> {
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_native_roots()?.https_or_http().enable_http1().build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let url = format!("{}/v1/sessions/{id}/events", api_url.trim_end_matches('/'));
    let mut last: Option<String> = None;
    loop {
        let mut req = hyper::Request::get(&url).header("authorization", format!("Bearer {key}"));
        if let Some(l) = &last {
            req = req.header("last-event-id", l);
        }
        let resp = client.request(req.body(Empty::new())?).await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body);
        anyhow::ensure!(status.is_success(), "GET {url}: HTTP {status}: {text}");
        for e in parse(&text) {
            if e.event == "idle" {
                println!("(session idle: nothing queued or running)");
                return Ok(());
            }
            println!("{}", show(&e));
            if e.id.is_some() {
                last = e.id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_streams_parse_as_an_event_source_reads_them() {
        let body =
            "retry: 500\n\nid: 1.1\nevent: progress\ndata: {\"a\":1}\n\n: comment\n\nid: 1.2\ndata: x\ndata: y\n\n";
        let events = parse(body);
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].id.as_deref(), events[0].event.as_str()), (Some("1.1"), "progress"));
        assert_eq!((events[1].event.as_str(), events[1].data.as_str()), ("message", "x\ny"));
    }
}
