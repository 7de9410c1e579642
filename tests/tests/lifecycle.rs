//! Closing the loop: responder (threaded replies through SES), task-events (a worker killed
//! from outside is relaunched because work waits) and the reaper (health, relaunch,
//! orphaned queue sets).

use std::time::Duration;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use mail_parser::MessageParser;
use switchyard_aws::mailer::Mailer;
use switchyard_core::container::{ContainerEvent, ContainerStatus};
use switchyard_core::ids::ContainerId;
use switchyard_core::messages::Outcome;
use switchyard_core::project::InterruptScope;
use switchyard_core::status::{CommandStatus, ErrorCode};
use switchyard_core::thread::ThreadRule;
use switchyard_orchestrator::reconcile::ReaperSettings;
use switchyard_tests::world::{token, world, ANN, WAIT};
use switchyard_tests::{email, eventually, project, TestEnv};

const TO: &str = "acme.site@in.example.com";
const WRITE_JOB: &str = r#"printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" >> notes.md; echo "wrote notes""#;
const TASK_EVENT: &str = include_str!("../fixtures/events/ecs-task-stopped.json");

/// The out-queue messages as the SQS event a Lambda event source mapping would deliver.
fn sqs_event(bodies: &[(String, String)], source_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, body) in bodies {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.clone());
        m.body = Some(body.clone());
        m.event_source_arn = Some(source_arn.to_string());
        m.event_source = Some("aws:sqs".into());
        event.records.push(m);
    }
    event
}

#[tokio::test]
async fn reply_email_is_threaded_and_replies_to_it_stay_in_the_session() -> anyhow::Result<()> {
    let mut w = world(WRITE_JOB, InterruptScope::Session, 600).await?;
    let mailer = Mailer::new(w.env.clients.ses.clone());
    mailer.ensure_identity("in.example.com").await?;
    let state = responder::State { orchestrator: w.o.clone(), mailer };
    // GIVEN an email that the worker answered on `out`
    let first = w.send(ANN, TO, "orig@client.example", "Add a note.").await?;
    let url = w.out_url(&first).await?;
    let q = w.env.queues();
    let msgs = eventually("response on out", WAIT, || {
        let (q, url) = (q.clone(), url.clone());
        async move { Ok(Some(q.receive(&url, 10, 1, Some(60)).await?).filter(|m| !m.is_empty())) }
    })
    .await?;
    // WHEN the responder handles the out-queue record
    let record = msgs.into_iter().next().expect("one");
    let event = sqs_event(
        &[(record.id.clone(), record.body.clone())],
        &format!("arn:aws:sqs:us-east-1:000000000000:{}", url.rsplit('/').next().unwrap_or("")),
    );
    let handled = responder::handle_record(&state, &event.records[0]).await?;
    let sent = handled.email.expect("a reply was sent");
    // THEN the reply is threaded: Re: subject, In-Reply-To, References, Reply-To token
    let parsed = MessageParser::default().parse(&sent.raw).expect("reply parses");
    assert!(parsed.subject().unwrap_or("").starts_with("Re: Site change"), "{:?}", parsed.subject());
    assert_eq!(parsed.in_reply_to().as_text(), Some("orig@client.example"));
    assert!(parsed.references().as_text_list().is_some_and(|l| l.iter().any(|r| r == "orig@client.example")));
    let reply_to = parsed.reply_to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or("");
    assert_eq!(reply_to, token(&first));
    let body = parsed.body_text(0).unwrap_or_default();
    assert!(body.contains("Done: your change is committed."), "{body}");
    assert!(body.contains("notes.md"), "{body}");
    assert!(parsed.body_html(0).is_some());
    // AND the command records the outcome (the worker already had)
    assert_eq!(w.command(&first).await?.status, CommandStatus::Final(Outcome::Succeeded));
    // AND the same out record again sends no second email
    assert!(responder::handle_record(&state, &event.records[0]).await?.email.is_none());

    // WHEN the user replies to the reply's Reply-To address with headers dropped
    let by_token = w.send(ANN, &token(&first), "r1@client.example", "And another.").await?;
    // AND replies to the plain address with only In-Reply-To of our reply
    let raw =
        email(ANN, TO, "Re: thing", "r2@client.example", &format!("In-Reply-To: <{}>\r\n", sent.message_id), "Third.");
    let by_header =
        w.o.route(
            &switchyard_core::inbound::inbound_from_email(
                &raw,
                switchyard_core::project::Verdict::Pass,
                switchyard_core::project::Verdict::Pass,
            )?
            .inbound,
        )
        .await?;
    // THEN both land in the same session
    assert_eq!((by_token.session.as_str(), by_token.rule), (first.session.as_str(), Some(ThreadRule::RecipientToken)));
    assert_eq!(
        (by_header.session.as_str(), by_header.rule),
        (first.session.as_str(), Some(ThreadRule::KnownReference))
    );
    w.stop_all().await;
    Ok(())
}

/// The ARN a Lambda event names for a queue URL.
fn arn_of(url: &str) -> String {
    format!("arn:aws:sqs:us-east-1:000000000000:{}", url.rsplit('/').next().unwrap_or_default())
}

#[tokio::test]
async fn dead_lettered_command_is_reported_failed() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let mailer = Mailer::new(env.clients.ses.clone());
    mailer.ensure_identity("in.example.com").await?;
    let r = o
        .route(
            &switchyard_core::inbound::inbound_from_email(
                &email(ANN, TO, "x", "dlq@x", "", "Never runs."),
                switchyard_core::project::Verdict::Pass,
                switchyard_core::project::Verdict::Pass,
            )?
            .inbound,
        )
        .await?;
    // GIVEN the work message as it would sit in the DLQ
    let c = env.store().get_container(&r.container).await?.expect("container");
    let msgs = env.queues().receive(c.in_url.as_deref().expect("in"), 10, 1, Some(60)).await?;
    let work = msgs.iter().find(|m| m.body.contains("\"type\":\"work\"")).expect("work message");
    let state = responder::State { orchestrator: o.clone(), mailer };
    let dlq_arn = arn_of(c.dlq_url.as_deref().expect("dlq"));
    let event = sqs_event(&[(work.id.clone(), work.body.clone())], &dlq_arn);
    // WHEN the responder gets it from the DLQ
    let out = responder::handle(&state, LambdaEvent::new(event, Context::default())).await.expect("handler");
    // THEN the command is failed with the dlq code and the sender is told
    assert!(out.batch_item_failures.is_empty());
    let cmd = env.store().get_command(&r.session, 1).await?.expect("command");
    assert_eq!((cmd.status, cmd.error_code), (CommandStatus::Final(Outcome::Failed), Some(ErrorCode::Dlq)));
    // AND a poison body in the DLQ is dropped, not retried forever
    let poison = sqs_event(&[("p".into(), "{garbage".into())], &dlq_arn);
    assert!(responder::handle(&state, LambdaEvent::new(poison, Context::default()))
        .await
        .expect("handler")
        .batch_item_failures
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn task_events_relaunch_a_killed_worker_when_work_waits() -> anyhow::Result<()> {
    let job = r#"touch "$MARKS/started-$(date +%s%N)"; sleep 2; printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" > result.txt"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let state = task_events::State { orchestrator: w.o.clone() };
    let r = w.send(ANN, TO, "te1@x", "Finish me.").await?;
    eventually("job started", WAIT, || {
        let marks = w.marks.clone();
        async move { Ok((std::fs::read_dir(&marks)?.count() > 0).then_some(())) }
    })
    .await?;
    // WHEN the worker is killed from outside and its STOPPED event arrives
    let task = w.launcher.running().pop().expect("task");
    let pid = w.launcher.pid(&task).expect("pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)?;
    let exit = w.next_exit().await?;
    let json = TASK_EVENT.replace("__TASK__", &exit.task_arn).replace("__CONTAINER__", &exit.container_id);
    let event: CloudWatchEvent<task_events::TaskStateChange> = serde_json::from_str(&json)?;
    let applied = task_events::apply(&state, event.detail.as_ref().expect("detail")).await?.expect("applied");
    // THEN the container was marked stopped and relaunched because its command waits
    assert!(applied.marked_stopped && applied.relaunched, "{applied:?}");
    // AND the command completes on the new worker
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, switchyard_core::messages::Outcome::Succeeded);
    // AND a late event for the old task changes nothing
    let again = task_events::apply(&state, event.detail.as_ref().expect("detail")).await?.expect("applied");
    assert!(!again.marked_stopped);
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn reaper_marks_silent_workers_degraded_then_failed_and_relaunches_with_backlog() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let r = o
        .route(
            &switchyard_core::inbound::inbound_from_email(
                &email(ANN, TO, "x", "reap@x", "", "Queued work."),
                switchyard_core::project::Verdict::Pass,
                switchyard_core::project::Verdict::Pass,
            )?
            .inbound,
        )
        .await?;
    let id = r.container.clone();
    let first = env.store().get_container(&id).await?.expect("container");
    // GIVEN a worker that registered and then went silent (no heartbeats)
    env.store()
        .set_status(&id, first.launch_token.as_deref(), ContainerEvent::Registered, ContainerStatus::Running, None)
        .await?;
    let settings = ReaperSettings { heartbeat: Duration::from_millis(300), ..ReaperSettings::default() };
    // THEN the reaper first judges it degraded…
    eventually("degraded", WAIT, || {
        let (o, s, c) = (o.clone(), settings.clone(), r.container.clone());
        async move { Ok(o.reap(&s).await?.degraded.contains(&c).then_some(())) }
    })
    .await?;
    // …then failed: stopped, and relaunched because its work waits in `in`
    let report = eventually("failed", WAIT, || {
        let (o, s, c) = (o.clone(), settings.clone(), r.container.clone());
        async move {
            let rep = o.reap(&s).await?;
            Ok(rep.failed.contains(&c).then_some(rep))
        }
    })
    .await?;
    assert!(report.relaunched.contains(&r.container), "{report:?}");
    let now = env.store().get_container(&id).await?.expect("container");
    assert_eq!(now.container_status, Some(ContainerStatus::Starting));
    assert_ne!(now.launch_token, first.launch_token);
    assert_eq!(env.ecs_task_count().await?, 2);
    let stopped = env
        .clients
        .ecs
        .describe_tasks()
        .cluster(&env.ecs.cluster)
        .tasks(first.task_arn.clone().expect("task"))
        .send()
        .await?;
    assert_eq!(stopped.tasks()[0].desired_status(), Some("STOPPED"));
    Ok(())
}

#[tokio::test]
async fn reaper_deletes_orphaned_queue_sets_but_never_live_ones() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    o.route(
        &switchyard_core::inbound::inbound_from_email(
            &email(ANN, TO, "x", "live@x", "", "Live."),
            switchyard_core::project::Verdict::Pass,
            switchyard_core::project::Verdict::Pass,
        )?
        .inbound,
    )
    .await?;
    // GIVEN a queue set created but never recorded (a crash between create and record)
    let orphan = env.queues().ensure_queue_set(&ContainerId::new("acme", "site", "ghost@example.com"), 1).await?;
    assert_eq!(env.queue_urls().await?.len(), 6);
    // WHEN the reaper runs with orphan age 0
    let settings = ReaperSettings { orphan_age: Duration::ZERO, ..ReaperSettings::default() };
    let report = o.reap(&settings).await?;
    // THEN only the orphaned set is gone
    let mut deleted = report.orphans_deleted.clone();
    deleted.sort();
    let mut want = vec![orphan.in_url, orphan.out_url, orphan.dlq_url];
    want.sort();
    assert_eq!(deleted, want);
    assert_eq!(env.queue_urls().await?.len(), 3);
    // AND with the default 24 h age nothing young is touched
    let young = env.queues().ensure_queue_set(&ContainerId::new("acme", "site", "ghost2@example.com"), 1).await?;
    assert!(o.reap(&ReaperSettings::default()).await?.orphans_deleted.is_empty());
    assert!(env.queue_urls().await?.contains(&young.in_url));
    Ok(())
}

#[tokio::test]
async fn reaper_retires_an_idle_stopped_queue_set_and_the_next_launch_uses_a_new_generation() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN])).await?;
    let route = |id: &'static str| {
        let o = o.clone();
        async move {
            let raw = email(ANN, TO, "x", id, "", "Work.");
            anyhow::Ok(
                o.route(
                    &switchyard_core::inbound::inbound_from_email(
                        &raw,
                        switchyard_core::project::Verdict::Pass,
                        switchyard_core::project::Verdict::Pass,
                    )?
                    .inbound,
                )
                .await?,
            )
        }
    };
    // GIVEN a container whose work was consumed and which then stopped
    let r = route("gen1@x").await?;
    let id = r.container.clone();
    let item = env.store().get_container(&id).await?.expect("container");
    let in_url = item.in_url.clone().expect("in");
    assert!(in_url.ends_with("-g1.fifo"), "{in_url}");
    let q = env.queues();
    for m in q.receive(&in_url, 10, 1, Some(60)).await? {
        q.delete(&in_url, &m.receipt).await?;
    }
    env.store().set_status(&id, None, ContainerEvent::TaskStopped, ContainerStatus::Stopped, Some("idle")).await?;
    // WHEN the reaper runs with a zero retirement age
    let settings = ReaperSettings { retire_after: Duration::ZERO, ..ReaperSettings::default() };
    let report = o.reap(&settings).await?;
    // THEN the queue set is deleted and the item moves to generation 2 with no URLs
    assert_eq!(report.retired, vec![r.container.clone()]);
    let retired = env.store().get_container(&id).await?.expect("container");
    assert_eq!((retired.generation, retired.in_url.as_deref()), (2, None));
    assert!(env.queue_urls().await?.is_empty());
    // AND the next message creates the g2 queue set and launches
    let next = route("gen2@x").await?;
    assert!(next.launched);
    let fresh = env.store().get_container(&id).await?.expect("container");
    assert!(fresh.in_url.as_deref().is_some_and(|u| u.ends_with("-g2.fifo")), "{:?}", fresh.in_url);
    Ok(())
}

#[tokio::test]
async fn the_responder_trusts_nothing_a_worker_wrote_that_it_can_check() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    o.put_project(project("acme", "site", &[ANN, "bob@example.com"])).await?;
    let mailer = Mailer::new(env.clients.ses.clone());
    mailer.ensure_identity("in.example.com").await?;
    let route = |from: &'static str, id: &'static str| {
        let o = o.clone();
        async move {
            let raw = email(from, TO, "Site change", id, "", "Change it.");
            let inbound = switchyard_core::inbound::inbound_from_email(
                &raw,
                switchyard_core::project::Verdict::Pass,
                switchyard_core::project::Verdict::Pass,
            )?;
            anyhow::Ok(o.route(&inbound.inbound).await?)
        }
    };
    // GIVEN Ann's and Bob's sessions, in their own containers
    let ann = route(ANN, "trust-ann@x").await?;
    let bob = route("bob@example.com", "trust-bob@x").await?;
    assert_ne!(ann.container, bob.container);
    let out_arn = |r: &switchyard_orchestrator::RouteOutcome| {
        let store = env.store();
        let id = r.container.clone();
        async move {
            let c = store.get_container(&id).await?.expect("container");
            anyhow::Ok(arn_of(c.out_url.as_deref().expect("out")))
        }
    };
    let state = responder::State { orchestrator: o.clone(), mailer };
    let response = |r: &switchyard_orchestrator::RouteOutcome, to: &str| switchyard_core::messages::Response {
        session: r.session.clone(),
        command_id: r.command_id.clone(),
        seq: r.seq,
        outcome: Outcome::Succeeded,
        summary: "done".into(),
        files_changed: Vec::new(),
        commit: None,
        error_code: None,
        error_message: None,
        timings: Default::default(),
        reply: switchyard_core::messages::ReplyContext {
            to: to.into(),
            subject: "Site change".into(),
            message_id: None,
            references: Vec::new(),
            reply_address: Some(format!("acme.site+t.{}@in.example.com", r.thread)),
            attachments: Vec::new(),
            instruction_fallback: false,
        },
        superseded_by: None,
        agent: None,
    };
    // WHEN root in Bob's container writes an outcome for Ann's command to its own `out`
    let forged = switchyard_core::messages::encode(&response(&ann, "eve@evil.example"));
    let event = sqs_event(&[("f1".into(), forged)], &out_arn(&bob).await?);
    let out = responder::handle(&state, LambdaEvent::new(event, Context::default())).await.expect("handler");
    assert!(out.batch_item_failures.is_empty());
    // THEN Ann's command is untouched
    let cmd = env.store().get_command(&ann.session, 1).await?.expect("command");
    assert_eq!(cmd.status, CommandStatus::Queued, "a container answered another container's command");
    // AND WHEN Bob's own outcome names another recipient THEN the reply goes to Bob, as routed
    let own = switchyard_core::messages::encode(&response(&bob, "eve@evil.example"));
    let event = sqs_event(&[("f2".into(), own)], &out_arn(&bob).await?);
    let sent = std::sync::Mutex::new(Vec::new());
    responder::handle_batch(&state, &event.records, |r| {
        sent.lock().expect("lock").extend(r.email.as_ref().map(|e| e.to.clone()));
    })
    .await;
    assert_eq!(sent.into_inner()?, vec!["bob@example.com".to_string()]);
    Ok(())
}

#[tokio::test]
async fn the_reaper_never_deletes_a_queue_set_its_item_records_but_no_index_shows() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    // GIVEN a queue set recorded on a container item that has no status yet (a router
    // records the set before it claims the launch): the sparse status index holds no such
    // item, so the reaper's snapshot of all containers does not show it (as an index that
    // lags the table would not either)
    let id = ContainerId::new("acme", "site", "early@example.com");
    let urls = env.queues().ensure_queue_set(&id, 1).await?;
    env.store().record_queue_set(&id, 1, &urls).await?;
    assert!(env.store().all_containers().await?.iter().all(|c| c.container_id != id), "the index shows it");
    // WHEN the reaper runs with orphan age 0
    let settings = ReaperSettings { orphan_age: Duration::ZERO, ..ReaperSettings::default() };
    let report = o.reap(&settings).await?;
    // THEN the set is kept: the item itself, read consistently, records it
    assert!(report.orphans_deleted.is_empty(), "{report:?}");
    assert!(env.queue_urls().await?.contains(&urls.in_url));
    Ok(())
}
