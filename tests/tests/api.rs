//! The HTTP API handler: create, follow up, read, interrupt, close; keys scoped per user
//! and project; problem+json errors; Idempotency-Key replay.

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use switchyard_tests::{project, TestEnv};

struct Api {
    state: api::State,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        idem: Option<&str>,
    ) -> (u16, Value, String) {
        let mut b = lambda_http::http::Request::builder().method(method).uri(format!("https://api.example{path}"));
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        if let Some(i) = idem {
            b = b.header("idempotency-key", i);
        }
        let req: Request = b.body(body.map_or(Body::Empty, |s| Body::Text(s.to_string()))).expect("request");
        let resp: Response<Body> = api::handle(&self.state, req).await.expect("handler never fails");
        let status = resp.status().as_u16();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let text = match resp.body() {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), ctype)
    }
}

#[tokio::test]
async fn sessions_over_http_with_scoped_keys() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[])).await?;
    o.put_project(project("acme", "secret", &[])).await?;
    let ann = o.create_api_key("acme", "ann@example.com", &["site".into()], &["sessions".into()]).await?;
    let bob =
        o.create_api_key("acme", "bob@example.com", &["site".into()], &["sessions".into(), "operator".into()]).await?;
    let api = Api { state: api::State { orchestrator: o.clone() } };

    // Create a session: 202 with session, command and seq 1.
    let (st, created, _) = api
        .call(
            "POST",
            "/v1/sessions",
            Some(&ann),
            Some(r#"{"project":"site","instruction":"Make the header blue."}"#),
            Some("create-1"),
        )
        .await;
    assert_eq!(st, 202, "{created}");
    let session = created["session"].as_str().expect("session").to_string();
    assert_eq!(created["seq"], 1);
    // Replayed Idempotency-Key: the same command, no new one.
    let (st, replay, _) = api
        .call(
            "POST",
            "/v1/sessions",
            Some(&ann),
            Some(r#"{"project":"site","instruction":"Make the header blue."}"#),
            Some("create-1"),
        )
        .await;
    assert_eq!((st, &replay["command_id"], &replay["duplicate"]), (202, &created["command_id"], &json!(true)));

    // Follow-up, status, interrupt.
    let (st, follow, _) = api
        .call(
            "POST",
            &format!("/v1/sessions/{session}/messages"),
            Some(&ann),
            Some(r#"{"instruction":"And the footer."}"#),
            None,
        )
        .await;
    assert_eq!((st, &follow["seq"]), (202, &json!(2)));
    let (st, status, _) = api.call("GET", &format!("/v1/sessions/{session}"), Some(&ann), None, None).await;
    assert_eq!(st, 200);
    let seqs: Vec<i64> =
        status["commands"].as_array().expect("commands").iter().map(|c| c["seq"].as_i64().unwrap_or(0)).collect();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(status["commands"][0]["status"], "queued");
    let (st, _, _) = api.call("POST", &format!("/v1/sessions/{session}/interrupt"), Some(&ann), None, None).await;
    assert_eq!(st, 202);

    // Errors are problem+json with stable types.
    let (st, p, ctype) =
        api.call("GET", &format!("/v1/sessions/{session}"), Some("sy_wrongwrongwrong"), None, None).await;
    assert_eq!(
        (st, p["type"].as_str(), ctype.as_str()),
        (401, Some("https://switchyard.dev/problems/unauthorized"), "application/problem+json")
    );
    let (st, _, _) = api.call("GET", &format!("/v1/sessions/{session}"), None, None, None).await;
    assert_eq!(st, 401);
    let (st, p, _) = api.call("GET", &format!("/v1/sessions/{session}"), Some(&bob), None, None).await;
    assert_eq!(
        (st, p["type"].as_str()),
        (404, Some("https://switchyard.dev/problems/session_not_found")),
        "another user's session is invisible"
    );
    let (st, _, _) = api
        .call(
            "POST",
            &format!("/v1/sessions/{session}/messages"),
            Some(&bob),
            Some(r#"{"instruction":"hijack"}"#),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, p, _) = api.call("POST", "/v1/sessions", Some(&ann), Some(r#"{"project":"site","#), None).await;
    assert_eq!((st, p["type"].as_str()), (400, Some("https://switchyard.dev/problems/invalid_json")));
    let (st, _, _) =
        api.call("POST", "/v1/sessions", Some(&ann), Some(r#"{"project":"secret","instruction":"x"}"#), None).await;
    assert_eq!(st, 403, "project outside the key's scope");
    let (st, p, _) =
        api.call("POST", "/v1/sessions", Some(&ann), Some(r#"{"project":"../etc","instruction":"x"}"#), None).await;
    assert_eq!(st, 403, "{p}");
    let big = format!(r#"{{"project":"site","instruction":"{}"}}"#, "x".repeat(300 * 1024));
    let (st, _, _) = api.call("POST", "/v1/sessions", Some(&ann), Some(&big), None).await;
    assert_eq!(st, 413);
    let (st, _, _) = api.call("GET", "/v1/sessions/..%2F..%2Fetc", Some(&ann), None, None).await;
    assert_eq!(st, 404);

    // Operator scope for containers.
    let (st, _, _) = api.call("GET", "/v1/containers", Some(&ann), None, None).await;
    assert_eq!(st, 403);
    let (st, list, _) = api.call("GET", "/v1/containers", Some(&bob), None, None).await;
    assert_eq!((st, list["containers"].as_array().map(Vec::len)), (200, Some(1)));

    // Close: 202, then follow-ups are refused with 409.
    let (st, _, _) = api.call("DELETE", &format!("/v1/sessions/{session}"), Some(&ann), None, None).await;
    assert_eq!(st, 202);
    let (st, p, _) = api
        .call("POST", &format!("/v1/sessions/{session}/messages"), Some(&ann), Some(r#"{"instruction":"late"}"#), None)
        .await;
    assert_eq!((st, p["type"].as_str()), (409, Some("https://switchyard.dev/problems/session_closed")));
    Ok(())
}

#[tokio::test]
async fn a_key_scoped_to_one_project_reaches_nothing_of_another() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[])).await?;
    o.put_project(project("acme", "shop", &[])).await?;
    // GIVEN Ann's session on `site`, and a second key of Ann's scoped to `shop` only (a key
    // handed to a contractor of the shop, say)
    let site = o.create_api_key("acme", "ann@example.com", &["site".into()], &["sessions".into()]).await?;
    let shop = o.create_api_key("acme", "ann@example.com", &["shop".into()], &["sessions".into()]).await?;
    let api = Api { state: api::State { orchestrator: o.clone() } };
    let (st, created, _) =
        api.call("POST", "/v1/sessions", Some(&site), Some(r#"{"project":"site","instruction":"Draft."}"#), None).await;
    assert_eq!(st, 202, "{created}");
    let session = created["session"].as_str().expect("session").to_string();
    // WHEN the shop key reads, follows, interrupts or closes it THEN it does not exist for it
    for (method, path, body) in [
        ("GET", format!("/v1/sessions/{session}"), None),
        ("GET", format!("/v1/sessions/{session}/events"), None),
        ("POST", format!("/v1/sessions/{session}/messages"), Some(r#"{"instruction":"x"}"#)),
        ("POST", format!("/v1/sessions/{session}/interrupt"), None),
        ("DELETE", format!("/v1/sessions/{session}"), None),
    ] {
        let (st, p, _) = api.call(method, &path, Some(&shop), body, None).await;
        assert_eq!(
            (st, p["type"].as_str()),
            (404, Some("https://switchyard.dev/problems/session_not_found")),
            "{method} {path}"
        );
    }
    // AND the session is untouched
    let (st, s, _) = api.call("GET", &format!("/v1/sessions/{session}"), Some(&site), None, None).await;
    assert_eq!((st, s["status"].as_str(), s["commands"].as_array().map(Vec::len)), (200, Some("open"), Some(1)), "{s}");
    Ok(())
}
