//! Production fidelity: what real AWS and real faults would break, one test per finding
//! (issue 8). Each one failed against the code before its fix.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::QueueAttributeName;
use switchyard_aws::launcher::{EcsLauncher, Launcher};
use switchyard_aws::mailer::Mailer;
use switchyard_aws::queues::RESPONDER_VISIBILITY_S;
use switchyard_aws::store::{ContainerItem, META};
use switchyard_core::container::{ContainerEvent, ContainerStatus};
use switchyard_core::ids::{CommandId, ContainerId, SessionId};
use switchyard_core::inbound::inbound_from_email;
use switchyard_core::messages::{decode, encode, Outcome, Response, Source, Timings};
use switchyard_core::project::{InterruptScope, Verdict};
use switchyard_core::status::{CommandStatus, ErrorCode, SessionStatus};
use switchyard_orchestrator::reconcile::ReaperSettings;
use switchyard_orchestrator::sessions::SessionControl;
use switchyard_orchestrator::{Orchestrator, Rejection, RouteError, RouteOutcome, RouteStatus};
use switchyard_tests::world::{world, ANN};
use switchyard_tests::{email, project, unique, TestEnv};

const TO: &str = "acme.site@in.example.com";

async fn route_email(o: &Orchestrator, id: &str, to: &str, body: &str) -> anyhow::Result<RouteOutcome> {
    let raw = email(ANN, to, "Site change", id, "", body);
    Ok(o.route(&inbound_from_email(&raw, Verdict::Pass, Verdict::Pass)?.inbound).await?)
}

async fn container(env: &TestEnv, r: &RouteOutcome) -> anyhow::Result<ContainerItem> {
    Ok(env.store().get_container(&r.container).await?.expect("container item"))
}

async fn queue_attr(env: &TestEnv, url: &str, name: QueueAttributeName) -> anyhow::Result<String> {
    let out = env.clients.sqs.get_queue_attributes().queue_url(url).attribute_names(name.clone()).send().await?;
    Ok(out.attributes.and_then(|mut a| a.remove(&name)).unwrap_or_default())
}

fn arn_of(url: &str) -> String {
    format!("arn:aws:sqs:us-east-1:000000000000:{}", url.rsplit('/').next().unwrap_or_default())
}

fn record(id: &str, body: &str, source_url: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = Some(id.into());
    r.body = Some(body.into());
    r.event_source_arn = Some(arn_of(source_url));
    r
}

/// An orchestrator whose ECS launches always fail (a task definition that does not exist).
fn broken_launcher(env: &TestEnv) -> Orchestrator {
    let mut ecs = env.ecs.clone();
    ecs.task_definition = format!("{}-missing", env.prefix);
    let launcher: Arc<dyn Launcher> = Arc::new(EcsLauncher::new(env.clients.ecs.clone(), ecs));
    env.orchestrator_with(launcher)
}

fn succeeded(r: &RouteOutcome, reply_to: Option<&str>) -> Response {
    Response {
        session: r.session.clone(),
        command_id: r.command_id.clone(),
        seq: r.seq,
        outcome: Outcome::Succeeded,
        summary: "done".into(),
        files_changed: Vec::new(),
        commit: None,
        error_code: None,
        error_message: None,
        timings: Timings::default(),
        reply: switchyard_core::messages::ReplyContext {
            to: ANN.into(),
            subject: "Site change".into(),
            message_id: None,
            references: Vec::new(),
            reply_address: reply_to.map(String::from),
            ..Default::default()
        },
        superseded_by: None,
        agent: None,
    }
}

// 1 + 6: `out` and the DLQ can feed a Lambda; `out` has a DLQ.
#[tokio::test]
async fn out_and_dlq_suit_the_responder_and_out_dead_letters() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    let c = container(&env, &r).await?;
    let (out, dlq) = (c.out_url.expect("out"), c.dlq_url.expect("dlq"));
    for url in [&out, &dlq] {
        let vis: i32 = queue_attr(&env, url, QueueAttributeName::VisibilityTimeout).await?.parse()?;
        assert!(vis >= RESPONDER_VISIBILITY_S && vis >= 6 * 60, "{url}: visibility {vis}");
    }
    let redrive = queue_attr(&env, &out, QueueAttributeName::RedrivePolicy).await?;
    let policy: serde_json::Value = serde_json::from_str(&redrive)?;
    assert_eq!(
        policy["deadLetterTargetArn"].as_str(),
        Some(queue_attr(&env, &dlq, QueueAttributeName::QueueArn).await?.as_str())
    );
    Ok(())
}

// 6: a permanent SES error is a handled outcome, recorded; a dead-lettered response too.
#[tokio::test]
async fn permanent_ses_errors_and_dead_lettered_responses_are_recorded_not_retried() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    // GIVEN an instruction whose reply goes From an identity SES has not verified (SES:
    // MessageRejected): sent to the project at a domain nobody verified, so the reply address
    // stored at routing is on it (the responder replies from the stored context only)
    let domain = format!("{}.unverified.example", unique());
    let r = route_email(&o, &format!("{}@x", unique()), &format!("acme.site@{domain}"), "Hello").await?;
    let state = responder::State { orchestrator: o.clone(), mailer: Mailer::new(env.clients.ses.clone()) };
    let from = format!("acme.site+t.{}@{domain}", r.thread);
    let c = container(&env, &r).await?;
    let out_url = c.out_url.clone().expect("out");
    let res = responder::handle_record(&state, &record("m1", &encode(&succeeded(&r, Some(&from))), &out_url)).await?;
    // THEN it is handled (no retry), the outcome stands and the failed reply is recorded
    assert!(res.reply_error.as_deref().is_some_and(|e| e.contains("MessageRejected")), "{res:?}");
    let cmd = env.store().get_command(&r.session, r.seq).await?.expect("command");
    assert_eq!(cmd.status, CommandStatus::Final(Outcome::Succeeded));
    assert!(cmd.reply_error.is_some());
    // AND a response that reached the DLQ is recorded the same way, never re-sent
    let r2 = route_email(&o, &format!("{}@x", unique()), &format!("acme.site+t.{}@in.example.com", r.thread), "Again")
        .await?;
    let dlq_url = c.dlq_url.clone().expect("dlq");
    let res = responder::handle_record(&state, &record("m2", &encode(&succeeded(&r2, Some(TO))), &dlq_url)).await?;
    assert!(res.email.is_none() && res.reply_error.is_some());
    let cmd = env.store().get_command(&r2.session, r2.seq).await?.expect("command");
    assert_eq!((cmd.status, cmd.reply_error.is_some()), (CommandStatus::Final(Outcome::Succeeded), true));
    Ok(())
}

// 14: a project called `dlq-tools` keeps its replies.
#[tokio::test]
async fn a_project_named_dlq_tools_is_answered_not_dead_lettered() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "dlq-tools", &[ANN])).await?;
    let r = route_email(&o, &format!("{}@x", unique()), "acme.dlq-tools@in.example.com", "Hello").await?;
    let out_url = container(&env, &r).await?.out_url.expect("out");
    assert!(out_url.contains("-dlq-"), "{out_url}");
    let state = responder::State { orchestrator: o.clone(), mailer: Mailer::new(env.clients.ses.clone()) };
    responder::handle_record(&state, &record("m1", &encode(&succeeded(&r, None)), &out_url)).await?;
    let cmd = env.store().get_command(&r.session, r.seq).await?.expect("command");
    assert_eq!((cmd.status, cmd.error_code), (CommandStatus::Final(Outcome::Succeeded), None));
    Ok(())
}

// 7 + 8: once enqueued, a failed RunTask is not an error; launches back off, then give up
// and the waiting work is answered.
#[tokio::test]
async fn failed_launches_are_accepted_back_off_and_finally_answer_the_waiting_work() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = broken_launcher(&env);
    o.put_project(project("acme", "site", &[ANN])).await?;
    // WHEN the launch fails after the work was queued
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    // THEN the instruction is accepted (no error for a client to retry into a duplicate)
    assert!(!r.launched);
    let c = container(&env, &r).await?;
    assert_eq!((c.container_status, c.launch_failures), (Some(ContainerStatus::Failed), 1));
    assert!(c.next_launch_ms.is_some_and(|t| t > switchyard_aws::now_ms()));
    // AND the reaper does not relaunch inside the back-off
    let report = o.reap(&ReaperSettings::default()).await?;
    assert!(report.relaunched.is_empty() && report.errors.is_empty(), "{report:?}");
    // WHEN the back-off has passed and this is the fifth failure in a row
    let id = r.container.clone();
    env.clients
        .dynamo
        .update_item()
        .table_name(&env.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("CONTAINER#{id}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(META.into()))
        .update_expression("SET launch_failures = :four, next_launch_ms = :zero")
        .expression_attribute_values(":four", aws_sdk_dynamodb::types::AttributeValue::N("4".into()))
        .expression_attribute_values(":zero", aws_sdk_dynamodb::types::AttributeValue::N("0".into()))
        .send()
        .await?;
    o.reap(&ReaperSettings::default()).await?;
    // THEN the container gives up and the waiting instruction is answered as failed on `out`
    let c = container(&env, &r).await?;
    assert_eq!((c.container_status, c.launch_failures), (Some(ContainerStatus::Failed), 5));
    let out = env.queues().receive(c.out_url.as_deref().expect("out"), 10, 1, Some(60)).await?;
    let answers: Vec<Response> = out.iter().map(|m| decode::<Response>(&m.body)).collect::<Result<_, _>>()?;
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].outcome, answers[0].error_code.clone()), (Outcome::Failed, Some(ErrorCode::LaunchFailed)));
    let (visible, in_flight) = env.queues().depth(c.in_url.as_deref().expect("in")).await?;
    assert_eq!(visible + in_flight, 0);
    Ok(())
}

// 9: one broken container does not stop the pass.
#[tokio::test]
async fn one_failing_container_does_not_abort_the_reaper_pass() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    // GIVEN a stopped container with backlog
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    let id = r.container.clone();
    env.store().set_status(&id, None, ContainerEvent::TaskStopped, ContainerStatus::Stopped, Some("test")).await?;
    // AND a stopped container whose recorded queue no longer exists (its calls fail)
    let broken = ContainerId::new("acme", "site", "zed@example.com");
    let urls = env.queues().ensure_queue_set(&broken, 1).await?;
    env.store().record_queue_set(&broken, 1, &urls).await?;
    env.store().claim_launch(&broken, "acme", "site", "zed@example.com", "tok").await?;
    env.store().set_status(&broken, None, ContainerEvent::TaskStopped, ContainerStatus::Stopped, Some("test")).await?;
    env.clients.sqs.delete_queue().queue_url(&urls.in_url).send().await?;
    // WHEN the reaper passes (whatever order it meets them in)
    let report = o.reap(&ReaperSettings::default()).await?;
    // THEN the healthy one is relaunched and the broken one is reported
    assert_eq!(report.relaunched, vec![id.clone()], "{report:?}");
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(report.errors[0].starts_with(broken.as_str()), "{report:?}");
    Ok(())
}

// 10: a retiring queue set blocks claims and routers; a worker whose queue is gone exits.
#[tokio::test]
async fn routers_wait_for_a_retiring_queue_set_and_use_the_next_generation() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    let id = r.container.clone();
    let store = env.store();
    // GIVEN the container stopped with empty queues, and the reaper beginning to retire it
    let c = container(&env, &r).await?;
    let old_in = c.in_url.clone().expect("in");
    for m in env.queues().receive(&old_in, 10, 1, Some(60)).await? {
        env.queues().delete(&old_in, &m.receipt).await?;
    }
    store.set_status(&id, None, ContainerEvent::TaskStopped, ContainerStatus::Stopped, Some("idle")).await?;
    assert!(store.begin_retire(&id, 1).await?);
    // THEN no launch can be claimed
    assert!(matches!(
        store.claim_launch(&id, "acme", "site", ANN, "tok2").await?,
        switchyard_aws::store::ClaimOutcome::Lost(_)
    ));
    // WHEN a follow-up is routed while the set is being deleted
    let token = format!("acme.site+t.{}@in.example.com", r.thread);
    let o2 = o.clone();
    let routing = tokio::spawn(async move { route_email(&o2, &format!("{}@x", unique()), &token, "Follow-up").await });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!routing.is_finished(), "the router must wait for the retirement");
    for url in [c.in_url.as_ref(), c.out_url.as_ref(), c.dlq_url.as_ref()].into_iter().flatten() {
        env.queues().delete_queue(url).await?;
    }
    store.end_retire(&id, 1, true).await?;
    // THEN it lands on generation 2, never on the deleted queue
    let r2 = routing.await??;
    let c2 = container(&env, &r2).await?;
    assert_eq!(c2.generation, 2);
    let new_in = c2.in_url.expect("in");
    assert_ne!(new_in, old_in);
    let msgs = env.queues().receive(&new_in, 10, 1, Some(60)).await?;
    assert!(msgs.iter().any(|m| m.body.contains(r2.command_id.as_str())));
    Ok(())
}

#[tokio::test]
async fn a_worker_whose_queue_was_deleted_exits() -> anyhow::Result<()> {
    let mut w = world("true", InterruptScope::Session, 600).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Hello").await?;
    w.responses(&r, 1).await?;
    let c = container(&w.env, &r).await?;
    w.env.queues().delete_queue(c.in_url.as_deref().expect("in")).await?;
    let exit = w.next_exit().await?;
    assert_eq!(exit.exit_code, Some(0));
    w.stop_all().await;
    Ok(())
}

// 11: a full worker receives only what it can start (plus one), so queued work is not
// received, held and released over and over.
#[tokio::test]
async fn a_busy_worker_leaves_queued_work_in_the_queue() -> anyhow::Result<()> {
    let job = r#"touch "$MARKS/started-$SWITCHYARD_SESSION_ID"; sleep 30"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    // GIVEN a worker with one job slot
    let mut p = project("acme", "site", &[ANN]);
    p.repo_url = w.remote.to_string_lossy().into_owned();
    p.job_command = job.replace("$MARKS", &w.marks.to_string_lossy());
    p.max_concurrent_sessions = 1;
    w.o.put_project(p).await?;
    let first = w.send(ANN, TO, &format!("{}@x", unique()), "Slow").await?;
    w.wait_mark(&format!("started-{}", first.session)).await?;
    // WHEN five more sessions' work arrives while the only slot is busy
    for _ in 0..5 {
        w.send(ANN, TO, &format!("{}@x", unique()), "Queued").await?;
    }
    let in_url = container(&w.env, &first).await?.in_url.expect("in");
    // THEN at most the running job and one held message are in flight; the rest wait
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (visible, in_flight) = w.env.queues().depth(&in_url).await?;
    assert!(in_flight <= 2, "in flight {in_flight}, visible {visible}");
    assert!(visible >= 4, "in flight {in_flight}, visible {visible}");
    w.stop_all().await;
    Ok(())
}

// 12: a seq lower than one already started never starts.
#[tokio::test]
async fn an_older_seq_never_starts_after_a_newer_one() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    let s = r.session.clone();
    let store = env.store();
    assert!(store.claim_seq(&s, 6).await?);
    assert!(store.claim_seq(&s, 6).await?, "a retry of the same seq may start");
    assert!(!store.claim_seq(&s, 5).await?, "seq 5 must not start after seq 6");
    assert!(store.claim_seq(&s, 7).await?);
    Ok(())
}

// 13: a duplicate delivery is answered from what was stored, whatever the thread rules say now.
#[tokio::test]
async fn a_duplicate_delivery_resends_the_stored_command_of_the_stored_session() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let other = route_email(&o, &format!("{}@x", unique()), TO, "Another thread").await?;
    let id = format!("{}@x", unique());
    let first = route_email(&o, &id, TO, "Original words").await?;
    // WHEN the same Message-ID arrives again, now carrying another thread's token
    let token = format!("acme.site+t.{}@in.example.com", other.thread);
    let dup = route_email(&o, &id, &token, "Other words").await?;
    // THEN it is the first command, in the first session
    assert_eq!(dup.status, RouteStatus::Duplicate);
    assert_eq!(
        (dup.session.as_str(), dup.command_id.as_str(), dup.seq),
        (first.session.as_str(), first.command_id.as_str(), first.seq)
    );
    let cmds = env.store().list_commands(&other.session).await?;
    assert_eq!(cmds.len(), 1, "nothing was appended to the other session");
    Ok(())
}

// 15: idempotency tokens on RunTask and TransactWriteItems.
#[tokio::test]
async fn run_task_with_the_same_launch_token_starts_one_task() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let launcher = EcsLauncher::new(env.clients.ecs.clone(), env.ecs.clone());
    let spec = switchyard_aws::launcher::LaunchSpec {
        container_id: ContainerId::parse(&format!("{}-c", env.prefix))?,
        client: "acme".into(),
        project: "site".into(),
        user: ANN.into(),
        launch_token: ulid::Ulid::new().to_string(),
        generation: 1,
        table: env.table.clone(),
        in_url: "in".into(),
        out_url: "out".into(),
        dlq_url: "dlq".into(),
    };
    let a = launcher.launch(&spec).await?;
    let b = launcher.launch(&spec).await?;
    assert_eq!(a, b);
    assert_eq!(env.ecs_task_count().await?, 1);
    Ok(())
}

// 16: limits.
#[tokio::test]
async fn an_instruction_too_large_for_a_work_message_is_refused() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let huge = "word ".repeat(30_000);
    let err = route_email(&o, &format!("{}@x", unique()), TO, &huge).await.unwrap_err();
    let rejection = err.downcast::<RouteError>()?;
    assert!(matches!(rejection, RouteError::Rejected(Rejection::InstructionTooLarge { .. })), "{rejection}");
    assert!(env.queue_urls().await?.is_empty(), "nothing routed");
    Ok(())
}

// 18: SES replaces our Message-ID; replies quoting SES's id stay in the thread.
#[tokio::test]
async fn the_ses_message_id_of_a_reply_is_a_thread_alias() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let mailer = Mailer::new(env.clients.ses.clone());
    mailer.ensure_identity("in.example.com").await?;
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    let from = format!("acme.site+t.{}@in.example.com", r.thread);
    let sent = o.respond(Some(&mailer), &succeeded(&r, Some(&from))).await?.email.expect("a reply");
    assert!(sent.ses_message_id.ends_with("@us-east-1.amazonses.com"), "{}", sent.ses_message_id);
    let thread = env.store().lookup_alias("acme", std::slice::from_ref(&sent.ses_message_id)).await?;
    assert_eq!(thread, Some(r.thread.clone()));
    // In us-east-1 SES writes `{id}@email.amazonses.com`: a reply quoting that form threads too.
    let (id, _) = sent.ses_message_id.split_once('@').expect("an id");
    let east = format!("{id}@email.amazonses.com");
    assert_eq!(env.store().lookup_alias("acme", &[east]).await?, Some(r.thread.clone()));
    Ok(())
}

// 20: an interrupt or close for a stopped container does not launch a task.
#[tokio::test]
async fn controls_for_a_stopped_container_launch_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    let c = container(&env, &r).await?;
    let in_url = c.in_url.clone().expect("in");
    for m in env.queues().receive(&in_url, 10, 1, Some(60)).await? {
        env.queues().delete(&in_url, &m.receipt).await?;
    }
    let id = r.container.clone();
    env.store().set_status(&id, None, ContainerEvent::TaskStopped, ContainerStatus::Stopped, Some("idle")).await?;
    let tasks_before = env.ecs_task_count().await?;
    let session = env.store().get_session(&r.session).await?.expect("session");
    for what in [SessionControl::Interrupt, SessionControl::Cancel, SessionControl::Close] {
        o.control_session(&session, what).await?;
    }
    let (visible, in_flight) = env.queues().depth(&in_url).await?;
    assert_eq!(visible + in_flight, 0, "no backlog for the reaper to launch for");
    let report = o.reap(&ReaperSettings::default()).await?;
    assert!(report.relaunched.is_empty(), "{report:?}");
    assert_eq!(env.ecs_task_count().await?, tasks_before);
    let s = env.store().get_session(&r.session).await?.expect("session");
    assert_eq!((s.status, s.cancel_before_seq), (SessionStatus::Closed, 2));
    Ok(())
}

// 16 (worker side): the job gets the instruction in a file, not in its environment.
#[tokio::test]
async fn the_job_reads_its_instruction_from_a_file() -> anyhow::Result<()> {
    let job = r#"env | grep -c '^SWITCHYARD_INSTRUCTION=' > env-count.txt; cp "$SWITCHYARD_INSTRUCTION_FILE" got.txt"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let words = "Make the banner blue.\nAnd the footer grey.";
    let r = w.send(ANN, TO, &format!("{}@x", unique()), words).await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    let branch = format!("thread-{}", r.thread);
    assert_eq!(w.branch_file(&branch, "env-count.txt").as_deref(), Some("0\n"));
    assert_eq!(w.branch_file(&branch, "got.txt").as_deref(), Some(words));
    w.stop_all().await;
    Ok(())
}

// 15: a transaction retried with its ClientRequestToken is not reported as a duplicate.
#[tokio::test]
async fn an_sdk_retry_of_a_committed_append_is_not_a_duplicate() -> anyhow::Result<()> {
    use switchyard_aws::store::{command_sk, idempotency_pk, session_pk, AppendCommand, AppendOutcome, CommandItem};
    let env = TestEnv::new().await?;
    let session = SessionId::new("acme", &switchyard_core::ids::ThreadId::from_seed(&unique()));
    let command_id = CommandId::new();
    let command = CommandItem {
        pk: session_pk(&session),
        sk: command_sk(1),
        command_id: command_id.clone(),
        session_id: session.clone(),
        seq: 1,
        instruction: "x".into(),
        status: CommandStatus::Queued,
        source: Source::Email,
        sender: ANN.into(),
        message_id: None,
        created_ms: 1,
        started_ms: None,
        finished_ms: None,
        attempts: 0,
        commit: None,
        files_changed: Vec::new(),
        summary: None,
        error_code: None,
        error_message: None,
        reply_error: None,
        run_by: None,
        receipt: None,
        reply: None,
        attachments: Vec::new(),
        instruction_fallback: false,
        agent: None,
        progress: Vec::new(),
        webhook: None,
    };
    let append = AppendCommand {
        new_session: None,
        session: session.clone(),
        seq: 1,
        command,
        idempotency_pk: idempotency_pk("email\nacme", &unique()),
        aliases: Vec::new(),
        thread: session.thread(),
    };
    // GIVEN the session item the append bumps
    let item = switchyard_aws::store::SessionItem {
        pk: session_pk(&session),
        sk: META.into(),
        session_id: session.clone(),
        client: "acme".into(),
        project: "site".into(),
        user: ANN.into(),
        session_container: ContainerId::new("acme", "site", ANN),
        thread: session.thread(),
        branch: session.thread().branch(),
        status: SessionStatus::Open,
        next_seq: 1,
        cancel_before_seq: 0,
        subject: String::new(),
        source: Source::Email,
        created_ms: 1,
        last_activity_ms: 1,
        agent_conversation: None,
        webhook_url: None,
        api_key: None,
    };
    env.store().put(&item).await?;
    assert!(matches!(env.store().append_command(&append).await?, AppendOutcome::Appended));
    // WHEN the same request is sent again (what the SDK does when a response is lost)
    // THEN DynamoDB answers success for the same token, not a cancelled transaction
    assert!(matches!(env.store().append_command(&append).await?, AppendOutcome::Appended));
    Ok(())
}

// 15 (again): a claim whose response was lost is retried by the SDK; the retry must find its
// own claim and win, or the reply is never sent and the launch never made.
#[tokio::test]
async fn an_sdk_retry_of_a_won_claim_still_wins() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let r = route_email(&o, &format!("{}@x", unique()), TO, "Hello").await?;
    let store = env.store();
    // The reply claim: the same claimant again wins, anyone else loses.
    assert!(store.claim_reply(&r.session, r.seq, "attempt-1").await?);
    assert!(store.claim_reply(&r.session, r.seq, "attempt-1").await?, "a retry of the won claim");
    assert!(!store.claim_reply(&r.session, r.seq, "attempt-2").await?, "another responder");
    // The launch claim: a retry with the same token is still the winner.
    let id = ContainerId::new("acme", "site", &format!("{}@x", unique()));
    let won = store.claim_launch(&id, "acme", "site", "u@x", "tok-1").await?;
    assert!(matches!(won, switchyard_aws::store::ClaimOutcome::Won(_)));
    let retry = store.claim_launch(&id, "acme", "site", "u@x", "tok-1").await?;
    assert!(matches!(retry, switchyard_aws::store::ClaimOutcome::Won(_)), "{retry:?}");
    let other = store.claim_launch(&id, "acme", "site", "u@x", "tok-2").await?;
    assert!(matches!(other, switchyard_aws::store::ClaimOutcome::Lost(_)), "{other:?}");
    Ok(())
}
