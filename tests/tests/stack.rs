//! Routing and worker end to end against the resources of the stack that
//! `infra/template.yaml` created in the emulator's CloudFormation (names from its outputs).
//! moto drops a few properties (TTL, task networking, arm64): `tests/infra.rs` checks those
//! by reading the template.

use switchyard_core::inbound::inbound_from_email;
use switchyard_core::messages::Outcome;
use switchyard_core::project::{InterruptScope, Verdict};
use switchyard_core::status::CommandStatus;
use switchyard_tests::world::{world_in, ANN};
use switchyard_tests::{email, git, project, unique, TestEnv};

#[tokio::test]
async fn routing_on_the_stack_resources() -> anyhow::Result<()> {
    let env = TestEnv::from_stack().await?;
    let client = unique();
    let o = env.orchestrator();
    o.put_project(project(&client, "site", &[ANN])).await?;
    let to = format!("{client}.site@in.example.com");
    let responder = std::env::var("SWITCHYARD_STACK_RESPONDERFUNCTIONARN")?;
    let mappings = switchyard_aws::subscriptions::ResponderMappings::new(env.clients.lambda.clone(), &responder);
    let o = o.with_responder_mappings(mappings.clone());
    let before = env.ecs_task_count().await?;
    let raw = email(ANN, &to, "Stack", &format!("{client}-1@x"), "", "Route me through the stack.");
    let inbound = inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound;
    // WHEN an email is routed THEN a queue set under the stack's prefix and one task in its cluster
    let r = o.route(&inbound).await?;
    assert!(r.launched);
    let c = env.store().get_container(&r.container).await?.expect("container");
    let in_url = c.in_url.expect("in url");
    assert!(in_url.rsplit('/').next().unwrap_or("").starts_with(&format!("{}-in-", env.prefix)), "{in_url}");
    assert_eq!(env.ecs_task_count().await?, before + 1);
    // AND the stack's responder is subscribed to the new out queue and DLQ
    let q = env.queues();
    for url in [c.out_url.as_deref().expect("out"), c.dlq_url.as_deref().expect("dlq")] {
        assert_eq!(mappings.mapped(&q.arn(url).await?).await?, 1, "{url}");
    }
    // AND a duplicate delivery makes no second command
    let again = o.route(&inbound).await?;
    assert_eq!(again.command_id, r.command_id);
    assert_eq!(env.store().list_commands(&r.session).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn worker_on_the_stack_resources() -> anyhow::Result<()> {
    let env = TestEnv::from_stack().await?;
    let client = unique();
    let mut w = world_in(
        env,
        &client,
        r#"printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" > stack.txt"#,
        InterruptScope::Session,
        600,
    )
    .await?;
    let r = w
        .send(ANN, &format!("{client}.site@in.example.com"), &format!("{client}-w@x"), "Commit through the stack.")
        .await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded);
    let branch = format!("thread-{}", r.thread);
    assert_eq!(git(&w.remote, &["show", &format!("{branch}:stack.txt")])?, "Commit through the stack.\n");
    assert_eq!(w.command(&r).await?.status, CommandStatus::Final(Outcome::Succeeded));
    w.stop_all().await;
    Ok(())
}
