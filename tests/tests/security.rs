//! Untrusted jobs and forged senders (issue 10): what a job can see, what leaks into
//! errors and replies.

use switchyard_core::ids::ContainerId;
use switchyard_core::messages::Outcome;
use switchyard_core::project::InterruptScope;
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
    let launch_token = w
        .env
        .store()
        .get_container(&ContainerId::from_stored(r.container.clone()))
        .await?
        .and_then(|c| c.launch_token)
        .expect("launch token");
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
    w.o.put_project(p).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Change something.").await?;
    let rs = w.responses(&r, 1).await?;
    // THEN the job fails on git, and neither the response nor the stored command shows it
    assert_eq!((rs[0].outcome, rs[0].error_code.as_deref()), (Outcome::Failed, Some("git")));
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
    let prefix: String = secret.chars().take(10).collect();
    assert_eq!(o.revoke_api_key("acme", &prefix).await?, 1);
    assert!(o.authenticate(&secret).await?.is_none());
    Ok(())
}
