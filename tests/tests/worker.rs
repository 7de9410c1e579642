//! The worker end to end: real worker processes (local launcher), real git repositories
//! (a bare repo as remote), real SQS/DynamoDB in the emulator.

use switchyard_aws::queues::Received;
use switchyard_core::container::ContainerStatus;
use switchyard_core::messages::Outcome;
use switchyard_core::project::InterruptScope;
use switchyard_core::status::CommandStatus;
use switchyard_tests::world::{relaunch, token, world, ANN, WAIT};
use switchyard_tests::{eventually, git};

const TO: &str = "acme.site@in.example.com";
const WRITE_JOB: &str = r#"printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" >> notes.md; echo "wrote notes""#;

#[tokio::test]
async fn email_to_commit_on_branch_and_response() -> anyhow::Result<()> {
    let mut w = world(WRITE_JOB, InterruptScope::Session, 600).await?;
    // WHEN an email is routed to a cold container
    let r = w.send(ANN, TO, "w1@x", "Add a note.").await?;
    assert!(r.launched);
    // THEN a succeeded response arrives with the commit and files changed
    let resp = w.responses(&r, 1).await?.remove(0);
    assert_eq!((resp.outcome, resp.command_id.as_str()), (Outcome::Succeeded, r.command_id.as_str()));
    assert_eq!(resp.files_changed, vec!["notes.md"]);
    assert!(resp.summary.contains("wrote notes"));
    let sha = resp.commit.clone().expect("commit");
    // AND the remote branch thread-{id} holds the commit with its trailers
    let branch = format!("thread-{}", r.thread);
    assert_eq!(git(&w.remote, &["rev-parse", &branch])?.trim(), sha);
    let message = git(&w.remote, &["log", "-1", "--format=%B", &branch])?;
    assert!(message.contains(&format!("Session-Id: {}", r.session)), "{message}");
    assert!(message.contains(&format!("Command-Id: {}", r.command_id)), "{message}");
    assert_eq!(w.branch_file(&branch, "notes.md").as_deref(), Some("Add a note.\n"));
    // AND the command item is succeeded with sha and files
    let c = w.command(&r).await?;
    assert_eq!(
        (c.status, c.commit.as_deref(), c.attempts),
        (CommandStatus::Final(Outcome::Succeeded), Some(sha.as_str()), 1)
    );
    assert_eq!(c.files_changed, vec!["notes.md"]);
    // AND the container registered running and heartbeats
    let item = w.env.store().get_container(&r.container).await?.expect("container");
    assert_eq!(item.container_status, Some(ContainerStatus::Running));
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn two_sessions_of_one_container_run_side_by_side() -> anyhow::Result<()> {
    // The job waits (up to 10 s) until both sessions' jobs have started: both succeed
    // with "2" only if they really ran at the same time.
    let job = r#"touch "$MARKS/$SWITCHYARD_SESSION_ID"; for i in $(seq 1 100); do [ "$(ls "$MARKS" | wc -l)" -ge 2 ] && break; sleep 0.1; done; ls "$MARKS" | wc -l | tr -d ' ' > seen.txt; printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" > "own-$SWITCHYARD_SESSION_ID.txt""#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let a = w.send(ANN, TO, "a1@x", "Session A work.").await?;
    let b = w.send(ANN, TO, "b1@x", "Session B work.").await?;
    assert_eq!(a.container, b.container);
    assert_ne!(a.session, b.session);
    let ra = w.responses(&a, 2).await?;
    for r in &ra {
        assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
    }
    for (mine, other) in [(&a, &b), (&b, &a)] {
        let branch = format!("thread-{}", mine.thread);
        assert_eq!(w.branch_file(&branch, "seen.txt").as_deref(), Some("2\n"), "jobs did not overlap");
        assert!(w.branch_file(&branch, &format!("own-{}.txt", mine.session)).is_some());
        assert!(
            w.branch_file(&branch, &format!("own-{}.txt", other.session)).is_none(),
            "files leaked across sessions"
        );
    }
    w.stop_all().await;
    Ok(())
}

const SLOW_OR_FAST: &str = r#"if [ "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" = "slow" ]; then trap 'echo partial > partial.txt; exit 130' INT TERM; touch "$MARKS/started-$SWITCHYARD_SESSION_ID"; while true; do sleep 0.1; done; else printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" > done.txt; fi"#;

#[tokio::test]
async fn follow_up_interrupts_the_running_job_of_its_session() -> anyhow::Result<()> {
    let mut w = world(SLOW_OR_FAST, InterruptScope::Session, 600).await?;
    // GIVEN a long job running
    let first = w.send(ANN, TO, "s1@x", "slow").await?;
    w.wait_mark(&format!("started-{}", first.session)).await?;
    // WHEN a follow-up arrives in the same thread
    let second = w.send(ANN, &token(&first), "s2@x", "fast").await?;
    assert_eq!((second.session.as_str(), second.seq), (first.session.as_str(), 2));
    // THEN the first is interrupted with its partial work committed, then the second succeeds
    let rs = w.responses(&first, 2).await?;
    assert_eq!(
        rs.iter().map(|r| (r.seq, r.outcome)).collect::<Vec<_>>(),
        vec![(1, Outcome::Interrupted), (2, Outcome::Succeeded)]
    );
    assert_eq!(rs[0].superseded_by.as_ref(), Some(&second.command_id));
    assert_eq!(rs[0].files_changed, vec!["partial.txt"]);
    let branch = format!("thread-{}", first.thread);
    let log = git(&w.remote, &["log", "--format=%s", &branch])?;
    assert!(log.contains(&format!("switchyard: interrupted {}", first.command_id)), "{log}");
    assert_eq!(w.branch_file(&branch, "done.txt").as_deref(), Some("fast\n"));
    assert_eq!(w.command(&first).await?.status, CommandStatus::Final(Outcome::Interrupted));
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn container_scope_interrupts_across_sessions() -> anyhow::Result<()> {
    let mut w = world(SLOW_OR_FAST, InterruptScope::Container, 600).await?;
    let a = w.send(ANN, TO, "c1@x", "slow").await?;
    w.wait_mark(&format!("started-{}", a.session)).await?;
    // WHEN session B gets a message
    let b = w.send(ANN, TO, "c2@x", "fast").await?;
    assert_ne!(a.session, b.session);
    // THEN A's job is interrupted and B's runs
    let rs = w.responses(&a, 2).await?;
    let ra = rs.iter().find(|r| r.session == a.session).expect("A responded");
    let rb = rs.iter().find(|r| r.session == b.session).expect("B responded");
    assert_eq!((ra.outcome, rb.outcome), (Outcome::Interrupted, Outcome::Succeeded));
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn killed_worker_mid_job_is_retried_after_relaunch() -> anyhow::Result<()> {
    let job = r#"touch "$MARKS/started-$(date +%s%N)"; sleep 2; printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" > result.txt"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let r = w.send(ANN, TO, "k1@x", "Survive a crash.").await?;
    eventually("job started", WAIT, || {
        let marks = w.marks.clone();
        async move { Ok((std::fs::read_dir(&marks)?.count() > 0).then_some(())) }
    })
    .await?;
    // WHEN the worker is killed with SIGKILL mid-job
    let task = w.launcher.running().pop().expect("a task");
    let pid = w.launcher.pid(&task).expect("pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)?;
    let exit = w.next_exit().await?;
    assert_eq!((exit.task_arn.as_str(), exit.exit_code), (task.as_str(), None));
    // AND the container is relaunched
    relaunch(&w, &r).await?;
    // THEN the command is retried and completes with exactly one final outcome
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded);
    let c = w.command(&r).await?;
    assert_eq!((c.status, c.attempts), (CommandStatus::Final(Outcome::Succeeded), 2));
    assert_eq!(w.branch_file(&format!("thread-{}", r.thread), "result.txt").as_deref(), Some("Survive a crash.\n"));
    // AND no second response follows
    let url = w.out_url(&r).await?;
    let extra: Vec<Received> = w.env.queues().receive(&url, 10, 2, Some(60)).await?;
    assert!(extra.is_empty(), "duplicate response: {extra:?}");
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn poison_message_goes_to_dlq_and_the_worker_keeps_serving() -> anyhow::Result<()> {
    let mut w = world(WRITE_JOB, InterruptScope::Session, 600).await?;
    let first = w.send(ANN, TO, "p1@x", "Before poison.").await?;
    w.responses(&first, 1).await?;
    let c = w.env.store().get_container(&first.container).await?.expect("container");
    let (in_url, dlq_url) = (c.in_url.expect("in"), c.dlq_url.expect("dlq"));
    // WHEN a message that does not parse lands on `in`
    w.env
        .queues()
        .send_batch(
            &in_url,
            &[switchyard_aws::queues::OutgoingMessage {
                group: "poison".into(),
                dedup: "poison-1".into(),
                body: "{not json".into(),
            }],
        )
        .await?;
    // THEN it reaches the DLQ after its receives
    let q = w.env.queues();
    let dead = eventually("poison in DLQ", WAIT, || {
        let (q, dlq_url) = (q.clone(), dlq_url.clone());
        async move { Ok(q.receive(&dlq_url, 1, 1, Some(30)).await?.pop()) }
    })
    .await?;
    assert_eq!(dead.body, "{not json");
    // AND the worker still serves the next good message
    let next = w.send(ANN, TO, "p2@x", "After poison.").await?;
    let rs = w.responses(&next, 1).await?;
    assert_eq!((rs[0].command_id.as_str(), rs[0].outcome), (next.command_id.as_str(), Outcome::Succeeded));
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn idle_container_stops_and_wakes_on_the_next_message() -> anyhow::Result<()> {
    let mut w = world(WRITE_JOB, InterruptScope::Session, 2).await?;
    let first = w.send(ANN, TO, "i1@x", "Before idling.").await?;
    w.responses(&first, 1).await?;
    // WHEN nothing arrives for the idle timeout THEN the worker marks stopped and exits 0
    let exit = w.next_exit().await?;
    assert_eq!(exit.exit_code, Some(0));
    let id = first.container.clone();
    assert_eq!(
        w.env.store().get_container(&id).await?.and_then(|c| c.container_status),
        Some(ContainerStatus::Stopped)
    );
    // WHEN a new message arrives THEN the container is launched again and serves it
    let second = w.send(ANN, &token(&first), "i2@x", "After waking.").await?;
    assert!(second.launched);
    let rs = w.responses(&second, 1).await?;
    assert_eq!((rs[0].command_id.as_str(), rs[0].outcome), (second.command_id.as_str(), Outcome::Succeeded));
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn sigterm_during_a_job_checkpoints_and_the_instruction_runs_again() -> anyhow::Result<()> {
    // A job that is slow on its first run and fast once a checkpoint of it exists.
    let job = r#"if [ -f partial.txt ]; then printf '%s\n' "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" > done.txt; else trap 'echo partial > partial.txt; exit 130' INT TERM; touch "$MARKS/started-$SWITCHYARD_SESSION_ID"; while true; do sleep 0.1; done; fi"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let r = w.send(ANN, TO, "t1@x", "Finish the page.").await?;
    w.wait_mark(&format!("started-{}", r.session)).await?;
    // WHEN the container is stopped (SIGTERM: scale-in, maintenance, the reaper)
    let task = w.launcher.running().pop().expect("a task");
    switchyard_aws::launcher::Launcher::stop(w.launcher.as_ref(), &task, "scale in").await?;
    let exit = w.next_exit().await?;
    assert_eq!(exit.exit_code, Some(0));
    // THEN no outcome is reported: the partial work is pushed as a checkpoint and the
    // command is queued again, its attempt not counted
    let c = w.command(&r).await?;
    assert_eq!((c.status.as_str(), c.attempts), ("queued", 0), "{c:?}");
    let branch = format!("thread-{}", r.thread);
    assert_eq!(w.branch_file(&branch, "partial.txt").as_deref(), Some("partial\n"));
    let log = git(&w.remote, &["log", "--format=%s", &branch])?;
    assert!(log.lines().next().unwrap_or_default().starts_with("switchyard: checkpoint"), "{log}");
    let id = r.container.clone();
    assert_eq!(
        w.env.store().get_container(&id).await?.and_then(|c| c.container_status),
        Some(ContainerStatus::Stopped)
    );
    // AND the released message runs to success on the next worker, from the checkpoint
    relaunch(&w, &r).await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded);
    assert_eq!(w.branch_file(&branch, "done.txt").as_deref(), Some("Finish the page.\n"));
    assert_eq!(w.command(&r).await?.attempts, 1);
    w.stop_all().await;
    Ok(())
}

// A command whose outcome was recorded elsewhere while its job ran (a worker that died
// after recording, a dead letter): when the job ends, the worker must answer with the
// recorded outcome — not drop the message unanswered (a reply lost under kills, found by
// the chaos pass of `switchyard load`). The superseded-skip paths end the same way.
#[tokio::test]
async fn a_command_whose_outcome_was_recorded_elsewhere_is_answered_with_it() -> anyhow::Result<()> {
    use switchyard_aws::store::CommandUpdate;
    use switchyard_core::status::ErrorCode;
    let job = r#"touch "$MARKS/started"; while [ ! -f "$MARKS/go" ]; do sleep 0.05; done; echo done"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let r = w.send(ANN, TO, "rec1@x", "Wait for it.").await?;
    w.wait_mark("started").await?;
    // WHEN another outcome is recorded while the job runs, and then the job ends
    let update = CommandUpdate {
        summary: "recorded elsewhere".into(),
        error_code: Some(ErrorCode::Dlq),
        finished_ms: 1,
        ..CommandUpdate::default()
    };
    assert!(w.env.store().finish_command(&r.session, r.seq, Outcome::Failed, &update).await?.recorded());
    std::fs::write(w.marks.join("go"), "")?;
    // THEN the answer is the recorded outcome, once
    let rs = w.responses(&r, 1).await?;
    assert_eq!((rs[0].outcome, rs[0].error_code.clone()), (Outcome::Failed, Some(ErrorCode::Dlq)));
    assert_eq!(rs[0].summary, "recorded elsewhere");
    assert_eq!(w.command(&r).await?.status, CommandStatus::Final(Outcome::Failed));
    w.stop_all().await;
    Ok(())
}
