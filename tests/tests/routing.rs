//! Routing against the emulator (issue "Foundation and routing"): containers and queue sets
//! per (client, project, user), thread continuity, idempotency, one launch, seq order,
//! typed rejections.

use std::collections::{BTreeSet, HashSet};

use switchyard_core::email::EmailError;
use switchyard_core::inbound::{inbound_from_email, Inbound};
use switchyard_core::messages::{decode, InMessage};
use switchyard_core::project::Verdict;
use switchyard_core::thread::ThreadRule;
use switchyard_orchestrator::{Orchestrator, Rejection, RouteError, RouteOutcome, RouteStatus};
use switchyard_tests::{email, project, TestEnv};

const ANN: &str = "ann@example.com";

fn inbound(raw: &[u8]) -> Inbound {
    inbound_from_email(raw, Verdict::Pass, Verdict::Pass).expect("fixture parses").inbound
}

async fn send(o: &Orchestrator, raw: &[u8]) -> anyhow::Result<RouteOutcome> {
    Ok(o.route(&inbound(raw)).await?)
}

async fn setup(projects: &[&str]) -> anyhow::Result<(TestEnv, Orchestrator)> {
    let env = TestEnv::new().await?;
    let o = env.orchestrator();
    for p in projects {
        o.put_project(project("acme", p, &[ANN, "bob@example.com", "@corp.example"])).await?;
    }
    Ok((env, o))
}

/// Receives every message currently in a queue (up to `max`), releasing nothing.
async fn drain(env: &TestEnv, url: &str, max: usize) -> anyhow::Result<Vec<InMessage>> {
    let q = env.queues();
    let mut out = Vec::new();
    let mut empty_polls = 0;
    while out.len() < max && empty_polls < 2 {
        let got = q.receive(url, 10, 1, Some(300)).await?;
        if got.is_empty() {
            empty_polls += 1;
        }
        for m in got {
            out.push(decode::<InMessage>(&m.body)?);
        }
    }
    Ok(out)
}

#[tokio::test]
async fn seed_one_user_ten_sessions_three_projects() -> anyhow::Result<()> {
    // GIVEN one user and three projects
    let (env, o) = setup(&["site", "app", "shop"]).await?;
    // WHEN the user starts 10 sessions spread over them
    let mut containers = BTreeSet::new();
    let mut sessions = BTreeSet::new();
    for i in 0..10 {
        let p = ["site", "app", "shop"][i % 3];
        let raw = email(
            ANN,
            &format!("acme.{p}@in.example.com"),
            &format!("task {i}"),
            &format!("seed{i}@x"),
            "",
            "Do a thing.",
        );
        let r = send(&o, &raw).await?;
        assert!(r.new_session);
        containers.insert(r.container.clone());
        sessions.insert(r.session.clone());
    }
    // THEN exactly 3 containers, 3 queue sets, 3 RunTasks
    assert_eq!(sessions.len(), 10);
    assert_eq!(containers.len(), 3);
    assert_eq!(env.queue_urls().await?.len(), 9, "3 queue sets of in/out/dlq");
    assert_eq!(env.ecs_task_count().await?, 3);
    // AND a different user on the same project gets a different container
    let bob = send(&o, &email("bob@example.com", "acme.site@in.example.com", "x", "bob1@x", "", "Hi.")).await?;
    assert!(!containers.contains(&bob.container));
    assert_eq!(env.ecs_task_count().await?, 4);
    Ok(())
}

#[tokio::test]
async fn thread_continuity_by_every_rule() -> anyhow::Result<()> {
    let (_env, o) = setup(&["site"]).await?;
    // GIVEN a first email: a new thread and branch thread-{id}
    let first =
        send(&o, &email(ANN, "acme.site@in.example.com", "Header", "first@x", "", "Make the header blue.")).await?;
    assert_eq!(first.rule, Some(ThreadRule::New));
    assert_eq!(first.branch, format!("thread-{}", first.thread));
    let token_addr = format!("acme.site+t.{}@in.example.com", first.thread);

    // WHEN replies arrive by each rule THEN they land in the same session, seq 2..5
    let by_token = send(&o, &email(ANN, &token_addr, "whatever", "r1@x", "", "Also the footer.")).await?;
    assert_eq!(
        (by_token.rule, by_token.session.as_str(), by_token.seq),
        (Some(ThreadRule::RecipientToken), first.session.as_str(), 2)
    );

    let by_irt = send(
        &o,
        &email(ANN, "acme.site@in.example.com", "Re: Header", "r2@x", "In-Reply-To: <first@x>\r\n", "And bold."),
    )
    .await?;
    assert_eq!(
        (by_irt.rule, by_irt.session.as_str(), by_irt.seq),
        (Some(ThreadRule::KnownReference), first.session.as_str(), 3)
    );

    let by_refs = send(
        &o,
        &email(
            ANN,
            "acme.site@in.example.com",
            "Changed subject",
            "r3@x",
            "References: <zzz@elsewhere> <r2@x>\r\n",
            "Italic too.",
        ),
    )
    .await?;
    assert_eq!((by_refs.rule, by_refs.session.as_str()), (Some(ThreadRule::KnownReference), first.session.as_str()));

    let subject = format!("Re: [#{}] header", first.thread);
    let by_tag = send(&o, &email(ANN, "acme.site@in.example.com", &subject, "r4@x", "", "Last one.")).await?;
    assert_eq!(
        (by_tag.rule, by_tag.session.as_str(), by_tag.seq),
        (Some(ThreadRule::SubjectTag), first.session.as_str(), 5)
    );

    // AND a new email is a new session
    let other = send(&o, &email(ANN, "acme.site@in.example.com", "Header", "other@x", "", "Unrelated.")).await?;
    assert_ne!(other.session, first.session);
    assert_eq!(other.container, first.container);
    Ok(())
}

#[tokio::test]
async fn duplicate_deliveries_make_one_command() -> anyhow::Result<()> {
    let (env, o) = setup(&["site"]).await?;
    let raw = email(ANN, "acme.site@in.example.com", "Dup", "dup@x", "", "Once only.");
    // WHEN the same email is delivered 5 times in a row and 5 times concurrently
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(send(&o, &raw).await?);
    }
    let concurrent = futures::future::join_all((0..5).map(|_| send(&o, &raw))).await;
    for r in concurrent {
        outcomes.push(r?);
    }
    // THEN one command, one New and nine Duplicates, all naming it
    let first = &outcomes[0];
    assert_eq!(outcomes.iter().filter(|r| r.status == RouteStatus::New).count(), 1);
    assert!(outcomes.iter().all(|r| r.command_id == first.command_id && r.seq == 1));
    let session = first.session.clone();
    assert_eq!(env.store().list_commands(&session).await?.len(), 1);
    // AND one work message in the queue (resends share the dedup id)
    let container = env.store().get_container(&first.container).await?.expect("container");
    let msgs = drain(&env, container.in_url.as_deref().expect("in url"), 30).await?;
    assert_eq!(msgs.iter().filter(|m| matches!(m, InMessage::Work(_))).count(), 1);
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_cold_intakes_launch_once() -> anyhow::Result<()> {
    let (env, o) = setup(&["site"]).await?;
    // WHEN 20 new emails of one user arrive at once for a cold container
    let raws: Vec<Vec<u8>> =
        (0..20).map(|i| email(ANN, "acme.site@in.example.com", "cold", &format!("cold{i}@x"), "", "Go.")).collect();
    let results = futures::future::join_all(raws.iter().map(|r| send(&o, r))).await;
    let results: Vec<RouteOutcome> = results.into_iter().collect::<Result<_, _>>()?;
    // THEN exactly one RunTask, and every command is queued
    assert_eq!(results.iter().filter(|r| r.launched).count(), 1);
    assert_eq!(env.ecs_task_count().await?, 1);
    assert_eq!(results.iter().map(|r| &r.container).collect::<HashSet<_>>().len(), 1);
    let container = env.store().get_container(&results[0].container).await?.expect("container");
    assert_eq!(container.container_status, Some(switchyard_core::container::ContainerStatus::Starting));
    assert!(container.task_arn.is_some());
    let msgs = drain(&env, container.in_url.as_deref().expect("in url"), 40).await?;
    assert_eq!(msgs.iter().filter(|m| matches!(m, InMessage::Work(_))).count(), 20);
    Ok(())
}

#[tokio::test]
async fn follow_ups_keep_seq_and_group_order() -> anyhow::Result<()> {
    let (env, o) = setup(&["site"]).await?;
    let first = send(&o, &email(ANN, "acme.site@in.example.com", "Order", "o0@x", "", "Step 1.")).await?;
    let to = format!("acme.site+t.{}@in.example.com", first.thread);
    for i in 2..=5 {
        let r = send(&o, &email(ANN, &to, "Re: Order", &format!("o{i}@x"), "", &format!("Step {i}."))).await?;
        assert_eq!(r.seq, i);
    }
    // THEN the work messages of the session's group come out in seq order 1..5,
    // each preceded in its control group by an interrupt with before_seq = seq
    let container = env.store().get_container(&first.container).await?.expect("container");
    let url = container.in_url.expect("in url");
    let q = env.queues();
    let mut seqs = Vec::new();
    let mut interrupts = Vec::new();
    for _ in 0..20 {
        let got = q.receive(&url, 10, 1, Some(300)).await?;
        for m in &got {
            match decode::<InMessage>(&m.body)? {
                InMessage::Work(w) => {
                    assert_eq!(m.group.as_deref(), Some(first.session.as_str()));
                    seqs.push(w.seq);
                }
                InMessage::Interrupt(c) => {
                    assert_eq!(m.group.as_deref(), Some(format!("ctl.{}", first.session).as_str()));
                    interrupts.push(c.before_seq);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        if seqs.len() == 5 {
            break;
        }
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(interrupts, vec![1, 2, 3, 4, 5]);
    let cmds = env.store().list_commands(&first.session).await?;
    assert_eq!(cmds.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    Ok(())
}

fn rejection(r: Result<RouteOutcome, RouteError>) -> Rejection {
    match r {
        Err(RouteError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_input_is_rejected_and_routes_nothing() -> anyhow::Result<()> {
    let (env, o) = setup(&["site"]).await?;
    let to = "acme.site@in.example.com";
    // Parse-level rejections.
    assert!(matches!(inbound_from_email(b"", Verdict::Pass, Verdict::Pass), Err(EmailError::Malformed(_))));
    assert!(inbound_from_email(b"\xff\xfe\x00garbage", Verdict::Pass, Verdict::Pass).is_err());
    assert_eq!(
        inbound_from_email(format!("To: {to}\r\nSubject: x\r\n\r\nhi").as_bytes(), Verdict::Pass, Verdict::Pass)
            .unwrap_err(),
        EmailError::NoSender
    );
    let mut huge = email(ANN, to, "big", "big@x", "", "");
    huge.extend(std::iter::repeat_n(b'a', 10_000_000));
    assert!(matches!(inbound_from_email(&huge, Verdict::Pass, Verdict::Pass), Err(EmailError::BodyTooLarge { .. })));
    assert_eq!(
        inbound_from_email(&email(ANN, "../etc.passwd@x", "x", "p@x", "", "hi"), Verdict::Pass, Verdict::Pass)
            .unwrap_err(),
        EmailError::NoProjectRecipient
    );

    // Route-level rejections.
    let unknown = rejection(o.route(&inbound(&email(ANN, "acme.nope@in.example.com", "x", "u@x", "", "hi"))).await);
    assert_eq!(unknown.code(), "unknown_project");
    let stranger = rejection(o.route(&inbound(&email("eve@evil.example", to, "x", "e@x", "", "hi"))).await);
    assert_eq!(stranger.code(), "sender_not_allowed");
    let raw = email(ANN, to, "x", "spf@x", "", "hi");
    // Nothing passed for the From domain: refused, whoever it claims to be.
    let none = rejection(o.route(&inbound_from_email(&raw, Verdict::Fail, Verdict::Neutral)?.inbound).await);
    assert_eq!(none, Rejection::Unauthenticated(switchyard_core::sender::Unauthenticated::NoPass));
    let forged = inbound_from_email(&raw, Verdict::Pass, Verdict::Neutral)?.inbound;
    let forged = Inbound {
        evidence: switchyard_core::sender::SenderEvidence { dmarc: Verdict::Fail, ..forged.evidence.clone() },
        ..forged
    };
    let dmarc = rejection(o.route(&forged).await);
    assert_eq!(dmarc, Rejection::Unauthenticated(switchyard_core::sender::Unauthenticated::DmarcFailed));
    let quoted_only = rejection(o.route(&inbound(&email(ANN, to, "x", "q@x", "", "> only quotes"))).await);
    assert_eq!(quoted_only, Rejection::EmptyInstruction);

    // Hostile names reaching the router directly (as the API would pass them).
    let base = inbound(&email(ANN, to, "x", "n@x", "", "hi"));
    for (client, project, user) in [
        ("../acme", "site", ANN),
        ("acme", "si te", ANN),
        ("acme", "sité", ANN),
        ("acme", "site/../x", ANN),
        ("acme", "site", &"u".repeat(330)),
        ("acme", "site", "   "),
    ] {
        let mut i = base.clone();
        i.client = client.into();
        i.project = project.into();
        i.sender = user.into();
        assert_eq!(rejection(o.route(&i).await).code(), "invalid_name", "{client}/{project}/{user}");
    }
    // A 300-char user id is valid and gets a valid container (queue names ≤ 80).
    o.put_project(project("acme", "long", &["@corp.example"])).await?;
    let long_user = format!("{}@corp.example", "x".repeat(287));
    let ok = send(&o, &email(&long_user, "acme.long@in.example.com", "x", "long@x", "", "hi")).await?;
    assert!(ok.container.as_str().len() <= 42);

    // THEN nothing was routed for any rejection: only the long-user container exists.
    assert_eq!(env.ecs_task_count().await?, 1);
    assert_eq!(env.queue_urls().await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn another_senders_reply_into_a_thread_starts_a_session_of_their_own() -> anyhow::Result<()> {
    let (env, o) = setup(&["site"]).await?;
    const BOB: &str = "bob@example.com";
    // GIVEN Ann's session (her container, her conversation)
    let ann =
        send(&o, &email(ANN, "acme.site@in.example.com", "Header", "ann1@x", "", "Make the header blue.")).await?;
    let token_addr = format!("acme.site+t.{}@in.example.com", ann.thread);
    // WHEN Bob, also allowed on the project, writes into it by every thread rule
    let by_token = send(&o, &email(BOB, &token_addr, "Re: Header", "bob1@x", "", "Delete the footer.")).await?;
    let by_ref = send(
        &o,
        &email(BOB, "acme.site@in.example.com", "Re: Header", "bob2@x", "In-Reply-To: <ann1@x>\r\n", "And the menu."),
    )
    .await?;
    let tag = format!("Re: [#{}] Header", ann.thread);
    let by_tag = send(&o, &email(BOB, "acme.site@in.example.com", &tag, "bob3@x", "", "And the logo.")).await?;
    // THEN each is a session of Bob's own, in Bob's container, answered to Bob's thread
    for r in [&by_token, &by_ref, &by_tag] {
        assert_ne!(r.session, ann.session, "{r:?}");
        assert_eq!(r.rule, Some(ThreadRule::OwnSession));
        assert_eq!(r.seq, 1);
        assert_ne!(r.container, ann.container);
        let s = env.store().get_session(&r.session).await?.expect("session");
        assert_eq!(s.user, BOB);
    }
    // AND Ann's session holds only her instruction
    assert_eq!(env.store().list_commands(&ann.session).await?.len(), 1);
    // AND a redelivery of Bob's mail is the same command, not a new session
    let again = send(&o, &email(BOB, &token_addr, "Re: Header", "bob1@x", "", "Delete the footer.")).await?;
    assert_eq!((again.session, again.status), (by_token.session.clone(), RouteStatus::Duplicate));
    // AND Bob's next reply, to his own thread, continues his session
    let own = format!("acme.site+t.{}@in.example.com", by_token.thread);
    let next = send(&o, &email(BOB, &own, "Re: Header", "bob4@x", "", "Also the font.")).await?;
    assert_eq!((next.session, next.seq, next.rule), (by_token.session, 2, Some(ThreadRule::RecipientToken)));
    Ok(())
}
