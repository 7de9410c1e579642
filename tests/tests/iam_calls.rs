//! Least privilege from the calls the code makes: each function's paths are driven on the
//! emulator with a call recorder of its own (service, operation and resource kind of every
//! SDK call, `switchyard_aws::iam`), and every action it needed must be granted by its role
//! in `infra/template.yaml` on that kind of resource. A hand-written list of actions is how
//! task-events came to lack `dynamodb:Query` and `sqs:ChangeMessageVisibility` on its normal
//! path (every task stop) and every router the give-up path's receive/delete/send.
//!
//! Removing one action from one role makes the named test fail: e.g. `dynamodb:Query` from
//! `TaskEventsRole` fails `task_events_calls_are_granted_by_its_role`.

use std::collections::BTreeSet;

use switchyard_aws::iam::{IamCall, ResourceKind};
use switchyard_aws::mailer::Mailer;
use switchyard_core::container::{ContainerEvent, ContainerStatus, MAX_LAUNCH_FAILURES};
use switchyard_core::inbound::inbound_from_email;
use switchyard_core::project::Verdict;
use switchyard_orchestrator::reconcile::ReaperSettings;
use switchyard_orchestrator::{Orchestrator, RouteOutcome};
use switchyard_tests::template::{list, load as template, text};
use switchyard_tests::{email, project, TestEnv};

const TO: &str = "acme.site@in.example.com";
const ANN: &str = "ann@example.com";

/// Whether a template `Resource` covers a resource of `kind`.
fn covers(resource: &str, kind: ResourceKind) -> bool {
    match kind {
        ResourceKind::Table => resource == "!GetAtt Table.Arn",
        ResourceKind::Index => resource.contains("${Table.Arn}/index/"),
        ResourceKind::InQueue => resource.contains("${QueuePrefix}-in-*"),
        ResourceKind::OutQueue => resource.contains("${QueuePrefix}-out-*"),
        ResourceKind::DlqQueue => resource.contains("${QueuePrefix}-dlq-*"),
        ResourceKind::OtherQueue => resource.contains("InboundQueue"),
        ResourceKind::Any => true,
    }
}

/// The calls `role` does not grant (action on that kind of resource).
fn refused(role: &str, calls: &BTreeSet<IamCall>) -> Vec<String> {
    let t = template();
    let statements: Vec<(Vec<String>, Vec<String>)> = list(&t["Resources"][role]["Properties"]["Policies"])
        .into_iter()
        .flat_map(|p| list(&p["PolicyDocument"]["Statement"]))
        .filter(|st| st["Effect"].as_str() == Some("Allow"))
        .map(|st| {
            (list(&st["Action"]).into_iter().map(text).collect(), list(&st["Resource"]).into_iter().map(text).collect())
        })
        .collect();
    assert!(!statements.is_empty(), "{role} has no statements in the template");
    calls
        .iter()
        .filter(|(action, kind)| {
            !statements.iter().any(|(actions, resources)| {
                actions.iter().any(|a| a == action) && resources.iter().any(|r| r == "*" || covers(r, *kind))
            })
        })
        .map(|(a, k)| format!("{a} on {k:?}"))
        .collect()
}

fn assert_granted(role: &str, calls: &BTreeSet<IamCall>) {
    assert!(!calls.is_empty(), "{role}: nothing was recorded");
    let missing = refused(role, calls);
    assert!(missing.is_empty(), "{role} lacks what its code calls: {missing:?}\nall calls: {calls:?}");
}

async fn route(o: &Orchestrator, id: &str, body: &str) -> anyhow::Result<RouteOutcome> {
    let raw = email(ANN, TO, "Site change", id, "", body);
    Ok(o.route(&inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound).await?)
}

/// GIVEN a container whose worker registered and started the routed command (its receipt
/// recorded), as a live worker leaves it.
async fn running_command(env: &TestEnv, o: &Orchestrator, id: &str) -> anyhow::Result<(RouteOutcome, String)> {
    let r = route(o, id, "Change the title.").await?;
    let c = env.store().get_container(&r.container).await?.expect("container");
    let (token, task) = (c.launch_token.clone().expect("token"), c.task_arn.clone().expect("task"));
    env.store()
        .set_status(&r.container, Some(&token), ContainerEvent::Registered, ContainerStatus::Running, None)
        .await?;
    let msgs = env.queues().receive(c.in_url.as_deref().expect("in"), 10, 1, Some(60)).await?;
    let work = msgs.iter().find(|m| m.body.contains("\"type\":\"work\"")).expect("work message");
    env.store().start_command(&r.session, 1, &token, &work.receipt).await?;
    Ok((r, task))
}

/// GIVEN a container one failure short of giving up, launched again (`starting`, a task
/// that never registers) with work waiting on its `in` queue.
async fn about_to_give_up(env: &TestEnv, o: &Orchestrator, id: &str) -> anyhow::Result<(RouteOutcome, String)> {
    let r = route(o, id, "First.").await?;
    let c = env.store().get_container(&r.container).await?.expect("container");
    let past = switchyard_aws::now_ms() - 1;
    let token = c.launch_token.clone().expect("token");
    env.store().record_launch_failure(&r.container, &token, "image pull", MAX_LAUNCH_FAILURES - 1, past).await?;
    route(o, &format!("{id}-2"), "Second.").await?;
    let c = env.store().get_container(&r.container).await?.expect("container");
    assert_eq!(c.container_status, Some(ContainerStatus::Starting));
    Ok((r, c.task_arn.expect("task")))
}

#[tokio::test]
async fn router_calls_are_granted_to_intake_and_api() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.orchestrator().put_project(project("acme", "site", &[ANN])).await?;
    // WHEN a router routes a new session (queue set, launch, send), a follow-up, and a
    // message whose launch fails for the last time (give-up: the waiting work is answered)
    let (o, _, calls) = env.recorded(env.ecs.clone());
    route(&o, "r1@x", "New session.").await?;
    route(&o, "r1b@x", "Follow-up.").await?;
    let setup = env.orchestrator();
    setup.put_project(project("acme", "other", &["bob@example.com"])).await?;
    let raw = email("bob@example.com", "acme.other@in.example.com", "x", "r2@x", "", "Other container.");
    let r = setup.route(&inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound).await?;
    let c = env.store().get_container(&r.container).await?.expect("container");
    let past = switchyard_aws::now_ms() - 1;
    env.store()
        .record_launch_failure(
            &r.container,
            c.launch_token.as_deref().expect("token"),
            "x",
            MAX_LAUNCH_FAILURES - 1,
            past,
        )
        .await?;
    let broken =
        switchyard_aws::launcher::EcsSettings { task_definition: "missing-definition".into(), ..env.ecs.clone() };
    let (failing, _, failing_calls) = env.recorded(broken);
    let raw = email("bob@example.com", "acme.other@in.example.com", "x", "r3@x", "", "Launch fails.");
    let _ = failing.route(&inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound).await;
    let after = env.store().get_container(&r.container).await?.expect("container");
    assert_eq!(after.launch_failures, MAX_LAUNCH_FAILURES, "the launch gave up");
    let mut all = calls.iam_calls();
    all.extend(failing_calls.iam_calls());
    assert!(all.contains(&("sqs:ReceiveMessage".into(), ResourceKind::InQueue)), "give-up path not driven: {all:?}");
    // THEN both routing functions' roles grant every call
    assert_granted("IntakeEmailRole", &all);
    assert_granted("ApiRole", &all);
    Ok(())
}

#[tokio::test]
async fn task_events_calls_are_granted_by_its_role() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let setup = env.orchestrator();
    setup.put_project(project("acme", "site", &[ANN])).await?;
    let (o, _, calls) = env.recorded(env.ecs.clone());
    // WHEN a registered worker's task stops mid-command (orphan released, relaunched)…
    let (r, task) = running_command(&env, &setup, "te1@x").await?;
    let done = o.task_stopped(&r.container, &task, "killed").await?;
    assert!(done.marked_stopped && done.relaunched, "{done:?}");
    assert!(calls.iam_calls().contains(&("dynamodb:Query".into(), ResourceKind::Index)), "orphans not looked up");
    // …and a task that never registered stops on the last allowed launch (give-up)
    let env2 = TestEnv::new().await?;
    let setup2 = env2.orchestrator();
    setup2.put_project(project("acme", "site", &[ANN])).await?;
    let (o2, _, calls2) = env2.recorded(env2.ecs.clone());
    let (r2, task2) = about_to_give_up(&env2, &setup2, "te2@x").await?;
    o2.task_stopped(&r2.container, &task2, "CannotPullContainerError").await?;
    let mut all = calls.iam_calls();
    all.extend(calls2.iam_calls());
    assert!(all.contains(&("sqs:SendMessage".into(), ResourceKind::OutQueue)), "give-up path not driven: {all:?}");
    // THEN its role grants every call
    assert_granted("TaskEventsRole", &all);
    Ok(())
}

#[tokio::test]
async fn reaper_calls_are_granted_by_its_role() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let setup = env.orchestrator();
    setup.put_project(project("acme", "site", &[ANN])).await?;
    // GIVEN a silent registered worker mid-command, and a container that gave up with work
    // waiting (its last launch failed)
    let (_r, _) = running_command(&env, &setup, "re1@x").await?;
    let p = project("acme", "other", &["bob@example.com"]);
    setup.put_project(p).await?;
    let raw = email("bob@example.com", "acme.other@in.example.com", "x", "re2@x", "", "Waits.");
    let r2 = setup.route(&inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound).await?;
    let c2 = env.store().get_container(&r2.container).await?.expect("container");
    let later = switchyard_aws::now_ms() + 3_600_000;
    let token2 = c2.launch_token.clone().expect("token");
    env.store().record_launch_failure(&r2.container, &token2, "gave up", MAX_LAUNCH_FAILURES, later).await?;
    // WHEN the reaper passes (heartbeat lost: stop, release, relaunch; given up: answer)
    let (o, _, calls) = env.recorded(env.ecs.clone());
    // (a 1 ms heartbeat: the worker registered tens of ms ago, it is long silent)
    let settings = ReaperSettings { heartbeat: std::time::Duration::from_millis(1), ..ReaperSettings::default() };
    let report = o.reap(&settings).await?;
    assert!(!report.failed.is_empty() && !report.answered_failed.is_empty(), "{report:?}");
    // THEN its role grants every call
    assert_granted("ReaperRole", &calls.iam_calls());
    Ok(())
}

#[tokio::test]
async fn responder_calls_are_granted_by_its_role() -> anyhow::Result<()> {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    let env = TestEnv::new().await?;
    let setup = env.orchestrator();
    setup.put_project(project("acme", "site", &[ANN])).await?;
    Mailer::new(env.clients.ses.clone()).ensure_identity("in.example.com").await?;
    let r = route(&setup, "rs1@x", "Answer me.").await?;
    let c = env.store().get_container(&r.container).await?.expect("container");
    let msgs = env.queues().receive(c.in_url.as_deref().expect("in"), 10, 1, Some(60)).await?;
    let work = msgs.iter().find(|m| m.body.contains("\"type\":\"work\"")).expect("work message");
    let w = match switchyard_core::messages::decode::<switchyard_core::messages::InMessage>(&work.body)? {
        switchyard_core::messages::InMessage::Work(w) => w,
        other => anyhow::bail!("not work: {other:?}"),
    };
    let response = switchyard_core::messages::Response {
        session: w.session.clone(),
        command_id: w.command_id.clone(),
        seq: w.seq,
        outcome: switchyard_core::messages::Outcome::Succeeded,
        summary: "done".into(),
        files_changed: Vec::new(),
        commit: None,
        error_code: None,
        error_message: None,
        timings: switchyard_core::messages::Timings::default(),
        reply: w.reply.clone(),
        superseded_by: None,
        agent: None,
    };
    let (o, clients, calls) = env.recorded(env.ecs.clone());
    let state = responder::State { orchestrator: o, mailer: Mailer::new(clients.ses.clone()) };
    let mut event = SqsEvent::default();
    for (id, body, url) in [
        ("out-1", switchyard_core::messages::encode(&response), c.out_url.clone().expect("out")),
        (work.id.as_str(), work.body.clone(), c.dlq_url.clone().expect("dlq")),
    ] {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_string());
        m.body = Some(body);
        m.event_source_arn =
            Some(format!("arn:aws:sqs:us-east-1:000000000000:{}", url.rsplit('/').next().unwrap_or("")));
        event.records.push(m);
    }
    // WHEN the responder handles an outcome from `out` and a dead-lettered work message
    let out =
        responder::handle(&state, lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default())).await;
    assert!(out.expect("handler").batch_item_failures.is_empty());
    // THEN its role grants every call
    assert_granted("ResponderRole", &calls.iam_calls());
    Ok(())
}
