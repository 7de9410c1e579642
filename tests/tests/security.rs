//! Untrusted jobs and forged senders (issue 10): what a job can see, what leaks into
//! errors and replies.

use switchyard_core::messages::Outcome;
use switchyard_core::project::InterruptScope;
use switchyard_core::status::ErrorCode;
use switchyard_tests::world::{world_with_env, ANN};
use switchyard_tests::{project, unique, TestEnv};

const TO: &str = "acme.site@in.example.com";
const CANARY_SESSION: &str = "canary-session-token-4711";
const CANARY_URI: &str = "/v2/credentials/canary-uri-4711";

/// A job that hunts for credentials everywhere it can look and commits what it found.
const HUNTER: &str = r#"{ echo "== id"; id; echo "== env"; env; echo "== proc"; for f in /proc/[0-9]*/environ; do tr '\0' '\n' < "$f" 2>/dev/null; done; echo "== metadata vars"; echo "$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI $ECS_CONTAINER_METADATA_URI_V4 $AWS_SECRET_ACCESS_KEY $SWITCHYARD_LAUNCH_TOKEN"; } > loot.txt 2>&1; true"#;

#[tokio::test]
async fn a_job_hunting_for_credentials_finds_none() -> anyhow::Result<()> {
    // GIVEN a worker holding AWS credentials (with a session token and a credentials URI,
    // as on ECS) and its launch token
    let extra = [
        ("AWS_SESSION_TOKEN", CANARY_SESSION.to_string()),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", CANARY_URI.to_string()),
        ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/canary-meta-4711".to_string()),
    ];
    let mut w = world_with_env(HUNTER, InterruptScope::Session, 600, &extra).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Look around.").await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    let loot = w.branch_file(&format!("thread-{}", r.thread), "loot.txt").expect("loot committed");
    let launch_token =
        w.env.store().get_container(&r.container).await?.and_then(|c| c.launch_token).expect("launch token");
    // THEN the commit holds none of them
    for secret in [CANARY_SESSION, CANARY_URI, "canary-meta-4711", launch_token.as_str()] {
        assert!(!loot.contains(secret), "the job found {secret}:\n{loot}");
    }
    for name in [
        "AWS_ACCESS_KEY_ID=",
        "AWS_SECRET_ACCESS_KEY=",
        "AWS_SESSION_TOKEN=",
        "SWITCHYARD_LAUNCH_TOKEN=",
        "SWITCHYARD_IN_QUEUE_URL=",
    ] {
        assert!(!loot.contains(name), "the job saw {name}:\n{loot}");
    }
    // AND it ran as the unprivileged job user, not as the worker
    let id_line = loot.lines().nth(1).unwrap_or_default();
    assert!(id_line.contains("switchyard-job") && !id_line.starts_with("uid=0("), "{id_line}");
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn a_repository_url_with_credentials_never_reaches_an_error_or_a_reply() -> anyhow::Result<()> {
    let mut w = world_with_env("true", InterruptScope::Session, 600, &[]).await?;
    // GIVEN a project whose repository URL carries a token (and cannot be reached)
    let mut p = project("acme", "site", &[ANN]);
    p.repo_url = "https://deploy:ghp_s3cretT0ken@127.0.0.1:9/acme/site.git".into();
    // THEN it is refused (the token would sit in the item and in the clone's config, which a
    // job can read), with an error that does not repeat it
    let refused = w.o.put_project(p.clone()).await.expect_err("a URL with credentials is refused");
    assert!(!refused.to_string().contains("ghp_s3cretT0ken"), "{refused}");
    assert!(refused.to_string().contains("git_token_parameter"), "{refused}");
    // AND a project item written before that check existed still leaks nothing
    let item = switchyard_aws::store::ProjectItem {
        pk: switchyard_aws::store::project_pk("acme", "site"),
        sk: switchyard_aws::store::META.into(),
        config: p,
    };
    w.env.store().put(&item).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Change something.").await?;
    let rs = w.responses(&r, 1).await?;
    // THEN the job fails on git, and neither the response nor the stored command shows it
    assert_eq!((rs[0].outcome, rs[0].error_code.clone()), (Outcome::Failed, Some(ErrorCode::Git)));
    let text = serde_json::to_string(&rs[0])?;
    assert!(!text.contains("ghp_s3cretT0ken"), "{text}");
    let stored = format!("{:?}", w.command(&r).await?);
    assert!(!stored.contains("ghp_s3cretT0ken"), "{stored}");
    let (text, html) = switchyard_orchestrator::respond::reply_bodies(&rs[0], "thread-x");
    assert!(!text.contains("ghp_s3cretT0ken") && !html.contains("ghp_s3cretT0ken"));
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn a_revoked_api_key_authenticates_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    let secret = o.create_api_key("acme", ANN, &["site".into()], &["sessions".into()]).await?;
    assert!(o.authenticate(&secret).await?.is_some());
    // A second key made in the same instant keeps working when the first is revoked.
    let other = o.create_api_key("acme", ANN, &["site".into()], &["sessions".into()]).await?;
    let prefix: String = secret.chars().take(switchyard_orchestrator::sessions::KEY_PREFIX_CHARS).collect();
    assert_ne!(prefix, other.chars().take(prefix.len()).collect::<String>());
    assert_eq!(o.revoke_api_key("acme", &prefix).await?, 1);
    assert!(o.authenticate(&secret).await?.is_none());
    assert!(o.authenticate(&other).await?.is_some(), "revoking one key revoked another");
    Ok(())
}

#[tokio::test]
async fn project_secrets_reach_the_job_and_nothing_else() -> anyhow::Result<()> {
    let canary = format!("sk-ant-canary-{}", unique());
    // The job proves it has the key by committing its digest (never the key itself).
    let job =
        r#"printf %s "$ANTHROPIC_API_KEY" | sha256sum | cut -c1-64 > seen.txt; echo "my key is $ANTHROPIC_API_KEY""#;
    let mut w = world_with_env(job, InterruptScope::Session, 600, &[]).await?;
    // GIVEN a secret in SSM under the client's path, named by the project
    let parameter = w.env.put_secret(&canary).await?;
    let mut p = project("acme", "site", &[ANN]);
    p.repo_url = w.remote.to_string_lossy().into_owned();
    p.job_command = job.into();
    p.secrets.insert("ANTHROPIC_API_KEY".into(), parameter);
    w.o.put_project(p).await?;
    // WHEN a job that prints its key runs
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Use the model.").await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    // THEN the job had it…
    let digest = switchyard_core::ids::sha256_hex(&canary);
    assert_eq!(w.branch_file(&format!("thread-{}", r.thread), "seen.txt"), Some(format!("{digest}\n")));
    // …and it appears in no response, stored item or worker log line
    assert!(rs[0].summary.contains("my key is [redacted]"), "{}", rs[0].summary);
    let response = serde_json::to_string(&rs[0])?;
    assert!(!response.contains(&canary), "{response}");
    let cmd = w.command(&r).await?;
    assert!(!cmd.summary.clone().unwrap_or_default().contains(&canary), "{cmd:?}");
    // …no item anywhere in the table…
    let items = w.env.clients.dynamo.scan().table_name(&w.env.table).send().await?;
    let table = format!("{:?}", items.items());
    assert!(!items.items().is_empty() && !table.contains(&canary), "a stored item holds the secret");
    // …no reply email (text or HTML)…
    let (text, html) = switchyard_orchestrator::respond::reply_bodies(&rs[0], &format!("thread-{}", r.thread));
    assert!(text.contains("[redacted]") && !text.contains(&canary) && !html.contains(&canary), "{text}");
    let logs = std::fs::read_dir(w.root.join("containers"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!logs.is_empty(), "worker logs captured");
    assert!(!logs.contains(&canary), "a worker log line holds the secret");
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn a_worker_with_a_scoped_role_assumes_it_and_serves() -> anyhow::Result<()> {
    // GIVEN a worker told to assume a scoped role (STS in the emulator issues credentials;
    // the session policy itself is checked in switchyard-core and tests/infra.rs)
    let role = ("SWITCHYARD_WORKER_ROLE_ARN", "arn:aws:iam::123456789012:role/sy-worker-scoped".to_string());
    let mut w = world_with_env("echo done", InterruptScope::Session, 600, &[role]).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Hello").await?;
    // THEN it serves with those credentials
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded);
    let logs = std::fs::read_dir(w.root.join("containers"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(logs.contains("worker credentials scoped"), "{logs}");
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn a_secret_handed_back_encoded_or_as_a_file_name_is_redacted() -> anyhow::Result<()> {
    let canary = format!("sk-ant-canary-{}", unique());
    // GIVEN a job (a prompt injection's) that hands its key back base64-encoded in its output
    // and as the name of a file it commits
    let job = r#"printf 'x%s' "$ANTHROPIC_API_KEY" | base64 -w0; echo; echo hi > "leak-$ANTHROPIC_API_KEY.txt""#;
    let mut w = world_with_env(job, InterruptScope::Session, 600, &[]).await?;
    let parameter = w.env.put_secret(&canary).await?;
    let mut p = project("acme", "site", &[ANN]);
    p.repo_url = w.remote.to_string_lossy().into_owned();
    p.job_command = job.into();
    p.secrets.insert("ANTHROPIC_API_KEY".into(), parameter);
    w.o.put_project(p).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Use the model.").await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    // THEN neither the key nor its base64 is in the response, the stored command or the reply
    let b64 = data_encoding::BASE64.encode(format!("x{canary}").as_bytes());
    let core = &b64[4..b64.len() - 4];
    let response = serde_json::to_string(&rs[0])?;
    let cmd = format!("{:?}", w.command(&r).await?);
    let (text, html) = switchyard_orchestrator::respond::reply_bodies(&rs[0], &format!("thread-{}", r.thread));
    for (what, s) in [("response", &response), ("command", &cmd), ("reply", &text), ("html", &html)] {
        assert!(!s.contains(&canary) && !s.contains(core), "the {what} hands the key back: {s}");
    }
    assert!(rs[0].files_changed.iter().any(|f| f == "leak-[redacted].txt"), "{:?}", rs[0].files_changed);
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn a_workflow_the_job_wrote_is_never_pushed_unless_the_project_allows_it() -> anyhow::Result<()> {
    // GIVEN a job (a prompt injection's) that adds a CI workflow beside its real change
    let job = r#"mkdir -p .github/workflows && printf 'on: push\njobs: {x: {runs-on: ubuntu-latest, steps: [{run: "curl evil"}]}}\n' > .github/workflows/x.yml; echo hi > index.html"#;
    let mut w = world_with_env(job, InterruptScope::Session, 600, &[]).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Update the page.").await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    // THEN the page is committed and pushed, the workflow is not, and the reply says so
    let branch = format!("thread-{}", r.thread);
    assert_eq!(w.branch_file(&branch, "index.html").as_deref(), Some("hi\n"));
    assert!(w.branch_file(&branch, ".github/workflows/x.yml").is_none(), "a workflow was pushed");
    assert_eq!(rs[0].files_changed, vec!["index.html".to_string()]);
    assert!(rs[0].summary.contains("CI definitions (.github/workflows/x.yml)"), "{}", rs[0].summary);
    w.stop_all().await;
    Ok(())
}
