//! Benchmarks against the emulator. Each figure is one line `bench <name> = <number> <unit>`.
//!
//! The emulator serves one request at a time, so absolute throughput measures moto; the
//! figures that transfer to AWS are calls per message (counted by an SDK interceptor) and
//! the ratio of routing time to the time of the same AWS calls issued bare.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use switchyard_aws::launcher::{EcsLauncher, Launcher};
use switchyard_aws::queues::{OutgoingMessage, Queues};
use switchyard_aws::store::{container_pk, project_pk, session_pk, META};
use switchyard_aws::{CallCounter, Clients};
use switchyard_core::container::{ContainerEvent, ContainerStatus};
use switchyard_core::inbound::inbound_from_email;
use switchyard_core::project::{ProjectConfig, Verdict};
use switchyard_orchestrator::{Orchestrator, RouteOutcome};

use crate::config::CliConfig;
use crate::provision;

/// Prints one figure.
pub(crate) fn figure(name: &str, value: f64, unit: &str) {
    println!("bench {name} = {value:.2} {unit}");
}

/// The p-th percentile (0–100) of sorted durations, in ms.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

pub(crate) async fn run(which: &str, messages: usize, concurrency: usize) -> anyhow::Result<()> {
    let config = CliConfig::from_env();
    match which {
        "route" => route(&config, messages, concurrency).await,
        "worker" => crate::bench_worker::run(&config).await,
        "agent" => crate::bench_worker::agent_overhead(&config).await,
        "chaos" => chaos(&config).await,
        "load" => load(&config).await,
        "email" => email_extraction(),
        "all" => {
            email_extraction()?;
            route(&config, messages, concurrency).await?;
            crate::bench_worker::run(&config).await?;
            crate::bench_worker::agent_overhead(&config).await?;
            chaos(&config).await?;
            load(&config).await
        }
        other => anyhow::bail!("unknown benchmark {other:?} (email, route, worker, agent, chaos, load, all)"),
    }
}

/// Instruction extraction over the public corpus (`tests/fixtures/emails/corpus`): the
/// whole `parse_email` of each message — MIME, charset, HTML → text, the extractor — timed
/// one message at a time, 200 rounds.
fn email_extraction() -> anyhow::Result<()> {
    let dir = std::path::Path::new("tests/fixtures/emails/corpus");
    let mut corpus = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("{} (run from the repository root)", dir.display()))? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "eml") {
            corpus.push(std::fs::read(&path)?);
        }
    }
    anyhow::ensure!(!corpus.is_empty(), "no .eml in {}", dir.display());
    let mut times = Vec::with_capacity(corpus.len() * 200);
    for _ in 0..200 {
        for raw in &corpus {
            let t = Instant::now();
            let parsed = switchyard_core::email::parse_email(raw);
            times.push(t.elapsed());
            std::hint::black_box(parsed.ok());
        }
    }
    times.sort();
    let us = |p: f64| percentile(&times, p) * 1000.0;
    figure("email.messages", corpus.len() as f64, "messages");
    figure("email.extract_p50_us", us(50.0), "us");
    figure("email.extract_p99_us", us(99.0), "us");
    figure("email.extract_max_us", times.last().map_or(0.0, |d| d.as_secs_f64() * 1e6), "us");
    Ok(())
}

/// Recovery after a worker crash: SIGKILL → the outcome of the command it cut short, on the
/// local runtime with the production visibility timeout's role played by 30 s.
async fn chaos(config: &CliConfig) -> anyhow::Result<()> {
    let plan = crate::chaos::ChaosPlan {
        threads: 6,
        follow_ups: 4,
        duplicates: 0.2,
        kills: 6,
        stops: 2,
        deadline: Duration::from_secs(240),
        visibility_secs: 30,
    };
    let report = crate::chaos::run(config, &plan).await?;
    crate::chaos::print(&report);
    anyhow::ensure!(report.ok(), "chaos invariants violated");
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        if let Some(v) = report.recovery(p) {
            println!("bench chaos.recovery_{name}_ms = {v} ms");
        }
    }
    println!("bench chaos.lost = {} commands", report.lost);
    println!("bench chaos.reply_mismatches = {} commands", report.reply_mismatches);
    Ok(())
}

/// The load suite at full size: every scenario, then `concurrent` under chaos.
async fn load(config: &CliConfig) -> anyhow::Result<()> {
    use crate::load::{LoadOptions, Scenario};
    let plain = LoadOptions {
        short: false,
        messages: None,
        kill_workers: 0,
        stop_workers: 0,
        duplicates: 0.0,
        aws_faults: 0.0,
        poison: 0.0,
        deadline: Duration::from_secs(600),
    };
    let chaos = LoadOptions {
        kill_workers: 3,
        stop_workers: 2,
        duplicates: 0.2,
        aws_faults: 0.02,
        poison: 0.01,
        ..plain.clone()
    };
    let runs = [
        (Scenario::Seed, &plain, "seed"),
        (Scenario::Burst, &plain, "burst"),
        (Scenario::Concurrent, &plain, "concurrent"),
        (Scenario::Sustained, &plain, "sustained"),
        (Scenario::Fifo, &plain, "fifo"),
        (Scenario::Concurrent, &chaos, "chaos"),
    ];
    let mut reports = Vec::new();
    for (scenario, opts, name) in runs {
        let mut r = crate::load::run(config, scenario, opts).await?;
        r.scenario = name.into();
        println!("bench load.{name}.handled_pct = {:.1} %", r.handled_pct);
        println!("bench load.{name}.lost = {} commands", r.lost);
        println!("bench load.{name}.duplicated = {} commands", r.duplicated);
        println!("bench load.{name}.reexecuted = {} commands", r.reexecuted);
        println!("bench load.{name}.out_of_order = {} starts", r.out_of_order);
        println!("bench load.{name}.email_to_reply_p99_ms = {} ms", r.email_to_reply_ms[2]);
        if opts.poison > 0.0 {
            println!("bench load.{name}.poisoned = {} sent, {} answered failed (dlq)", r.poisoned.0, r.poisoned.1);
        }
        reports.push(r);
    }
    crate::load::print_table(&reports);
    let path = crate::load::default_html(config);
    std::fs::write(&path, crate::load::html(&reports))?;
    println!("HTML report: {}", path.display());
    Ok(())
}

fn email(user: &str, to: &str, id: &str) -> Vec<u8> {
    format!("From: {user}\r\nTo: {to}\r\nSubject: bench\r\nMessage-ID: <{id}>\r\n\r\nChange the header colour.\r\n")
        .into_bytes()
}

async fn route_one(o: &Orchestrator, raw: &[u8]) -> anyhow::Result<(RouteOutcome, Duration)> {
    let inbound = inbound_from_email(raw, Verdict::Pass, Verdict::Pass)?.inbound;
    let t = Instant::now();
    let r = o.route(&inbound).await?;
    Ok((r, t.elapsed()))
}

async fn route(config: &CliConfig, messages: usize, concurrency: usize) -> anyhow::Result<()> {
    const CONTAINERS: usize = 30;
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let counter = CallCounter::default();
    let clients = Clients::new(&sdk, Some(&counter));
    let prefix = format!("b{}", &ulid::Ulid::new().to_string().to_ascii_lowercase()[17..]);
    let store = provision::table(&clients, &format!("{prefix}-table")).await?;
    let ecs = provision::ecs(&clients, &prefix, config.subnets.clone(), config.security_groups.clone()).await?;
    let launcher: Arc<dyn Launcher> = Arc::new(EcsLauncher::new(clients.ecs.clone(), ecs));
    let queues = Queues::new(clients.sqs.clone(), &prefix);
    let o = Orchestrator::new(store.clone(), queues.clone(), launcher);
    o.put_project(ProjectConfig {
        max_run_secs: 60,
        acknowledge_email: false,
        ..ProjectConfig::new("bench", "site", "/dev/null", &["@bench.example"], "true")
    })
    .await?;

    // Cold: a new session for a new user each time (queue set + launch claim + RunTask).
    counter.reset();
    let mut sessions = Vec::new();
    for i in 0..CONTAINERS {
        let (r, _) =
            route_one(&o, &email(&format!("u{i}@bench.example"), "bench.site@in.example.com", &format!("cold{i}@b")))
                .await?;
        sessions.push(r);
    }
    let cold_calls = counter.total() as f64 / CONTAINERS as f64;
    eprintln!("cold calls by operation: {:?}", counter.by_operation());
    for s in &sessions {
        store.set_status(&s.container, None, ContainerEvent::Registered, ContainerStatus::Running, None).await?;
    }

    let follow_up = |i: usize, tag: &str| {
        let s = &sessions[i % CONTAINERS];
        let user = format!("u{}@bench.example", i % CONTAINERS);
        email(&user, &format!("bench.site+t.{}@in.example.com", s.thread), &format!("{tag}{i}@b"))
    };

    // Single router on the fresh table: the baseline of the flatness figure, after 100
    // follow-ups that warm connections and the emulator.
    let warm: Vec<Vec<u8>> = (0..100).map(|i| follow_up(i, "warm")).collect();
    routed(&o, &warm, 1).await?;
    let first: Vec<Vec<u8>> = (0..100).map(|i| follow_up(i, "first")).collect();
    let (first_lat, _) = routed(&o, &first, 1).await?;

    // Hot: follow-ups by thread token to running containers, `concurrency` routers.
    let raws: Vec<Vec<u8>> = (0..messages).map(|i| follow_up(i, "hot")).collect();
    counter.reset();
    let (lat, elapsed) = routed(&o, &raws, concurrency).await?;
    let hot_calls = counter.total() as f64 / messages as f64;
    eprintln!("hot calls by operation: {:?}", counter.by_operation());

    // Flat as the table grows: 10,000 more items, then 1,000 follow-ups by one router (the
    // `in` queues by then also hold the messages routed so far, unconsumed: ~40 each).
    fill_table(&clients, store.table(), 10_000).await?;
    let after: Vec<Vec<u8>> = (0..1_000).map(|i| follow_up(i, "after")).collect();
    let (single_lat, single_elapsed) = routed(&o, &after, 1).await?;

    // Overhead: a routed follow-up vs. the same three calls issued bare, interleaved one by
    // one so both see the same emulator state (table size, queue depth, warm caches).
    let samples = 100;
    let s0 = &sessions[0];
    let bare_url = queues.ensure_queue_set(&s0.container, 1).await?.in_url;
    let (mut routed, mut bare) = (Duration::ZERO, Duration::ZERO);
    for i in 0..samples {
        let raw =
            email("u0@bench.example", &format!("bench.site+t.{}@in.example.com", s0.thread), &format!("ovh{i}@b"));
        routed += route_one(&o, &raw).await?.1;
        bare += bare_call(&clients, store.table(), &queues, &bare_url, s0, i).await?;
    }

    figure("route.cold.aws_calls_per_message", cold_calls, "calls");
    figure("route.hot.aws_calls_per_message", hot_calls, "calls");
    figure("route.hot.p50_ms", percentile(&lat, 50.0), "ms");
    figure("route.hot.p95_ms", percentile(&lat, 95.0), "ms");
    figure("route.hot.p99_ms", percentile(&lat, 99.0), "ms");
    figure("route.throughput_per_s", messages as f64 / elapsed.as_secs_f64(), "msg/s");
    figure("route.single.p50_ms", percentile(&single_lat, 50.0), "ms");
    figure("route.single.p99_ms", percentile(&single_lat, 99.0), "ms");
    figure("route.single.throughput_per_s", after.len() as f64 / single_elapsed.as_secs_f64(), "msg/s");
    figure("route.flat_ratio", percentile(&single_lat, 50.0) / percentile(&first_lat, 50.0), "x");
    figure("route.overhead_ratio", routed.as_secs_f64() / bare.as_secs_f64(), "x");
    Ok(())
}

/// Routes `raws` with `concurrency` routers: each message's latency (sorted) and the
/// elapsed time of the whole run.
async fn routed(o: &Orchestrator, raws: &[Vec<u8>], concurrency: usize) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<(RouteOutcome, Duration)>> =
        futures::stream::iter(raws.iter().map(|r| route_one(o, r))).buffered(concurrency).collect().await;
    let elapsed = started.elapsed();
    let mut lat: Vec<Duration> = results.into_iter().map(|r| r.map(|(_, d)| d)).collect::<Result<_, _>>()?;
    lat.sort();
    Ok((lat, elapsed))
}

/// `count` filler items of ~300 bytes (other users' commands, in size), 25 per BatchWriteItem.
async fn fill_table(clients: &Clients, table: &str, count: usize) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{AttributeValue as A, PutRequest, WriteRequest};
    for chunk in (0..count).collect::<Vec<_>>().chunks(25) {
        let mut requests = Vec::with_capacity(chunk.len());
        for i in chunk {
            let put = PutRequest::builder()
                .item("pk", A::S(format!("FILL#{i}")))
                .item("sk", A::S(META.into()))
                .item("payload", A::S("x".repeat(280)))
                .build()?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let mut pending = Some(requests);
        while let Some(req) = pending.take() {
            let out = clients.dynamo.batch_write_item().request_items(table, req).send().await?;
            pending = out.unprocessed_items.and_then(|mut u| u.remove(table)).filter(|r| !r.is_empty());
        }
    }
    Ok(())
}

/// Once: BatchGetItem of the same three keys, a TransactWriteItems of the same shape
/// (idempotency put, seq update, command put, alias put), a SendMessageBatch of two.
async fn bare_call(
    clients: &Clients,
    table: &str,
    queues: &Queues,
    url: &str,
    s: &RouteOutcome,
    i: usize,
) -> anyhow::Result<Duration> {
    use aws_sdk_dynamodb::types::{AttributeValue as A, KeysAndAttributes, Put, TransactWriteItem, Update};
    let sid = s.session.clone();
    let cid = s.container.clone();
    let key = |pk: String| [("pk".to_string(), A::S(pk)), ("sk".to_string(), A::S(META.into()))].into_iter().collect();
    {
        let t = Instant::now();
        let keys = KeysAndAttributes::builder()
            .keys(key(project_pk("bench", "site")))
            .keys(key(session_pk(&sid)))
            .keys(key(container_pk(&cid)))
            .consistent_read(true)
            .build()?;
        clients.dynamo.batch_get_item().request_items(table, keys).send().await?;
        let put = |pk: String| -> anyhow::Result<TransactWriteItem> {
            let p = Put::builder()
                .table_name(table)
                .item("pk", A::S(pk))
                .item("sk", A::S(META.into()))
                .item("payload", A::S("x".repeat(200)))
                .condition_expression("attribute_not_exists(pk)")
                .build()?;
            Ok(TransactWriteItem::builder().put(p).build())
        };
        let update = Update::builder()
            .table_name(table)
            .key("pk", A::S(format!("BARE#{i}")))
            .key("sk", A::S("S".into()))
            .update_expression("SET n = :n")
            .expression_attribute_values(":n", A::N(i.to_string()))
            .build()?;
        clients
            .dynamo
            .transact_write_items()
            .transact_items(put(format!("BAREI#{i}"))?)
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(put(format!("BAREC#{i}"))?)
            .transact_items(put(format!("BAREA#{i}"))?)
            .send()
            .await
            .context("bare transaction")?;
        let body = "x".repeat(600);
        queues
            .send_batch(
                url,
                &[
                    OutgoingMessage { group: "ctl.bare".into(), dedup: format!("bi{i}"), body: body.clone() },
                    OutgoingMessage { group: "bare".into(), dedup: format!("bw{i}"), body },
                ],
            )
            .await?;
        Ok(t.elapsed())
    }
}
