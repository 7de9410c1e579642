//! Worker benchmarks: interrupt latency, email-to-response latency (no-op job), idle RSS
//! and wake time, with real worker processes (local launcher) against the emulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard_aws::launcher::Launcher;
use switchyard_aws::queues::Queues;
use switchyard_aws::Clients;
use switchyard_core::ids::CommandId;
use switchyard_core::inbound::inbound_from_email;
use switchyard_core::messages::{decode, Response};
use switchyard_core::project::{ProjectConfig, Verdict};
use switchyard_orchestrator::{Orchestrator, RouteOutcome};
use switchyard_worker::local::LocalLauncher;

use crate::bench::{figure, percentile};
use crate::config::CliConfig;
use crate::provision;

const JOB: &str = r#"case "$(cat "$SWITCHYARD_INSTRUCTION_FILE")" in
  slow) trap 'date +%s%N > "$MARKS/.int-$SWITCHYARD_COMMAND_ID"; mv "$MARKS/.int-$SWITCHYARD_COMMAND_ID" "$MARKS/int-$SWITCHYARD_COMMAND_ID"; exit 130' INT; touch "$MARKS/started-$SWITCHYARD_COMMAND_ID"; while :; do sleep 0.05; done;;
  *) touch "$MARKS/started-$SWITCHYARD_COMMAND_ID";;
esac"#;

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

async fn wait_for(path: &Path, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {}", path.display());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

struct Bench {
    o: Orchestrator,
    queues: Queues,
    marks: PathBuf,
}

impl Bench {
    async fn send(&self, user: &str, to: &str, id: &str, body: &str) -> anyhow::Result<RouteOutcome> {
        let raw = format!("From: {user}\r\nTo: {to}\r\nSubject: bench\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n");
        Ok(self.o.route(&inbound_from_email(raw.as_bytes(), Verdict::Pass, Verdict::Pass)?.inbound).await?)
    }

    async fn out_url(&self, r: &RouteOutcome) -> anyhow::Result<String> {
        let c = self.o.store.get_container(&r.container).await?;
        c.and_then(|c| c.out_url).context("out url")
    }

    /// Waits for the response of `command` on `out`.
    async fn response(&self, url: &str, command: &CommandId) -> anyhow::Result<Response> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "no response for {command}");
            for m in self.queues.receive(url, 10, 5, Some(30)).await? {
                self.queues.delete(url, &m.receipt).await?;
                let r: Response = decode(&m.body)?;
                if &r.command_id == command {
                    return Ok(r);
                }
            }
        }
    }
}

fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

pub(crate) async fn run(config: &CliConfig) -> anyhow::Result<()> {
    let root =
        std::env::temp_dir().join(format!("switchyard-bench-{}", ulid::Ulid::new().to_string().to_ascii_lowercase()));
    let marks = root.join("marks");
    std::fs::create_dir_all(&marks)?;
    // Jobs run as the unprivileged job user: the marks they write go where it may write.
    std::fs::set_permissions(&marks, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let remote = crate::demo_git::bare_remote(&root)?;
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let clients = Clients::new(&sdk, None);
    let prefix = format!("w{}", &ulid::Ulid::new().to_string().to_ascii_lowercase()[17..]);
    let store = provision::table(&clients, &format!("{prefix}-table")).await?;
    let worker_bin = config.worker_binary()?;
    let extra = vec![
        ("SWITCHYARD_POLL_WAIT_SECS".to_string(), "20".to_string()),
        ("SWITCHYARD_IDLE_TIMEOUT_SECS".into(), "4".into()),
        ("SWITCHYARD_GRACE_SECS".into(), "2".into()),
    ];
    let (launcher, mut exits) = LocalLauncher::new(worker_bin, root.join("containers"), extra);
    let launcher = Arc::new(launcher);
    let queues = Queues::new(clients.sqs.clone(), &prefix);
    let o = Orchestrator::new(store, queues.clone(), launcher.clone());
    o.put_project(bench_project(&remote, &JOB.replace("$MARKS", &marks.to_string_lossy()))).await?;
    let b = Bench { o, queues, marks: marks.clone() };
    let to = "bench.site@in.example.com";

    // Email to response, no-op job, warm container (the first message pays the launch).
    let first = b.send("r@bench.example", to, "r0@b", "noop").await?;
    let out = b.out_url(&first).await?;
    b.response(&out, &first.command_id).await?;
    let token = format!("bench.site+t.{}@in.example.com", first.thread);
    let mut e2r = Vec::new();
    for i in 1..=30 {
        let t = Instant::now();
        let r = b.send("r@bench.example", &token, &format!("r{i}@b"), "noop").await?;
        b.response(&out, &r.command_id).await?;
        e2r.push(t.elapsed());
    }
    e2r.sort();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = match launcher.running().first().and_then(|t| launcher.pid(t)) {
        Some(pid) => rss_mb(pid)?,
        None => anyhow::bail!("no running worker to measure"),
    };

    // Interrupt latency: each follow-up interrupts the previous slow job.
    let mut lat = Vec::new();
    let mut prev = b.send("i@bench.example", to, "i0@b", "slow").await?;
    wait_for(&b.marks.join(format!("started-{}", prev.command_id)), Duration::from_secs(60)).await?;
    let itoken = format!("bench.site+t.{}@in.example.com", prev.thread);
    for i in 1..=20 {
        let next = b.send("i@bench.example", &itoken, &format!("i{i}@b"), "slow").await?;
        let routed = now_ns();
        let mark = b.marks.join(format!("int-{}", prev.command_id));
        wait_for(&mark, Duration::from_secs(30)).await?;
        let fired: u128 = std::fs::read_to_string(&mark)?.trim().parse()?;
        lat.push(Duration::from_nanos(fired.saturating_sub(routed) as u64));
        wait_for(&b.marks.join(format!("started-{}", next.command_id)), Duration::from_secs(30)).await?;
        prev = next;
    }
    lat.sort();

    // Wake: a container that stopped when idle, woken by a message.
    let w0 = b.send("w@bench.example", to, "w0@b", "noop").await?;
    let wout = b.out_url(&w0).await?;
    b.response(&wout, &w0.command_id).await?;
    let wake_container = w0.container.clone();
    loop {
        let exit = tokio::time::timeout(Duration::from_secs(60), exits.recv()).await?.context("launcher gone")?;
        if exit.container_id == wake_container.as_str() {
            break;
        }
    }
    let t = Instant::now();
    let w1 = b.send("w@bench.example", &format!("bench.site+t.{}@in.example.com", w0.thread), "w1@b", "noop").await?;
    wait_for(&b.marks.join(format!("started-{}", w1.command_id)), Duration::from_secs(60)).await?;
    let wake = t.elapsed();

    for task in launcher.running() {
        launcher.stop(&task, "bench over").await?;
    }
    figure("worker.interrupt_latency.p50_ms", percentile(&lat, 50.0), "ms");
    figure("worker.interrupt_latency.p99_ms", percentile(&lat, 99.0), "ms");
    figure("worker.email_to_response.p50_ms", percentile(&e2r, 50.0), "ms");
    figure("worker.email_to_response.p95_ms", percentile(&e2r, 95.0), "ms");
    figure("worker.idle_rss_mb", rss, "MB");
    figure("worker.wake_ms", wake.as_secs_f64() * 1000.0, "ms");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// `bench worker.agent_overhead_ms`: what our worker adds around a real Claude Code run
/// (against the scripted model) — the command's time in the worker (received → finished:
/// checks, worktree, resume lookup, spawn, progress parsing and recording, commit, outcome)
/// minus the CLI process's own wall time. Skipped (with a line saying so) when the CLI is
/// not installed (`make agents`).
pub(crate) async fn agent_overhead(config: &CliConfig) -> anyhow::Result<()> {
    let Some(bin) = crate::scripted::agents_bin() else {
        println!("bench worker.agent_overhead: skipped (Claude Code not installed: make agents)");
        return Ok(());
    };
    let sdk = switchyard_aws::clients::load_sdk_config().await;
    let clients = switchyard_aws::clients::Clients::new(&sdk, None);
    let root = std::env::temp_dir().join(format!("switchyard-bench-agent-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&root)?;
    let remote = crate::demo_git::bare_remote(&root)?;
    let model = crate::scripted::ScriptedModel::start(&root).await?;
    let prefix = format!("a{}", &ulid::Ulid::new().to_string().to_ascii_lowercase()[17..]);
    let store = provision::table(&clients, &format!("{prefix}-table")).await?;
    let extra = vec![
        ("SWITCHYARD_POLL_WAIT_SECS".to_string(), "20".to_string()),
        ("SWITCHYARD_IDLE_TIMEOUT_SECS".into(), "30".into()),
        ("SWITCHYARD_AGENT_BIN".into(), bin.to_string_lossy().into_owned()),
    ];
    let (launcher, _exits) = LocalLauncher::new(config.worker_binary()?, root.join("containers"), extra);
    let launcher = Arc::new(launcher);
    let queues = Queues::new(clients.sqs.clone(), &prefix);
    let o = Orchestrator::new(store, queues.clone(), launcher.clone());
    let (agent, secrets) = model.agent(&sdk, "bench", switchyard_core::agent::AgentKind::ClaudeCode).await?;
    o.put_project(ProjectConfig {
        job_command: "true".into(),
        secrets,
        agent: Some(agent),
        ..bench_project(&remote, "true")
    })
    .await?;
    let b = Bench { o, queues, marks: root.clone() };
    let to = "bench.site@in.example.com";
    let first = b.send("r@bench.example", to, "ag0@b", "Warm up.").await?;
    let out = b.out_url(&first).await?;
    b.response(&out, &first.command_id).await?;
    let token = format!("bench.site+t.{}@in.example.com", first.thread);
    let mut overhead = Vec::new();
    for i in 1..=20 {
        let r = b.send("r@bench.example", &token, &format!("ag{i}@b"), &format!("Change number {i}.")).await?;
        let resp = b.response(&out, &r.command_id).await?;
        anyhow::ensure!(resp.outcome == switchyard_core::messages::Outcome::Succeeded, "agent run failed: {resp:?}");
        let job_ms = resp.agent.as_ref().map_or(0, |a| a.job_ms);
        let total = resp.timings.finished_ms.saturating_sub(resp.timings.received_ms);
        overhead.push(Duration::from_millis(total.saturating_sub(job_ms)));
    }
    overhead.sort();
    let pct = |p: f64| overhead[((overhead.len() as f64 - 1.0) * p).round() as usize].as_millis();
    println!("bench worker.agent_overhead_ms_p50 = {} ms", pct(0.5));
    println!("bench worker.agent_overhead_ms_p99 = {} ms", pct(0.99));
    for t in launcher.running() {
        let _ = launcher.stop(&t, "bench over").await;
    }
    drop(model);
    Ok(())
}

/// The benchmarks' project (`bench/site`, senders of `@bench.example`), running `job`.
fn bench_project(remote: &Path, job: &str) -> ProjectConfig {
    ProjectConfig {
        max_run_secs: 600,
        acknowledge_email: false,
        ..ProjectConfig::new("bench", "site", &remote.to_string_lossy(), &["@bench.example"], job)
    }
}
