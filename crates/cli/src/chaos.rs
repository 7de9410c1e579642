//! `switchyard chaos`: the local runtime under a burst of follow-ups on several threads,
//! with duplicate deliveries, while worker processes are killed (SIGKILL) and stopped
//! (SIGTERM). Then every outcome is checked against what was sent: nothing lost, nothing
//! stuck, nothing failed, every thread's last instruction succeeded, exactly one reply per
//! command. Also measures recovery: a SIGKILL to the outcome of the command it cut short.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use switchyard_aws::store::CommandItem;
use switchyard_core::ids::{SessionId, ThreadId};
use switchyard_core::messages::Outcome;
use switchyard_core::project::ProjectConfig;

use crate::config::CliConfig;
use crate::runtime::{Runtime, Scratch};

const DOMAIN: &str = "in.chaos.local";
const USERS: [&str; 3] = ["ann@example.com", "bob@example.com", "cy@example.com"];
/// The job: short enough for a burst, long enough for kills to land mid-job.
const JOB: &str = r#"i=$(cat "$SWITCHYARD_INSTRUCTION_FILE"); sleep 0.8; printf '%s\n' "$i" >> notes.md; echo "$i""#;

/// What to do to the runtime.
#[derive(Debug, Clone)]
pub(crate) struct ChaosPlan {
    /// Threads (sessions), spread over three users (three containers).
    pub(crate) threads: usize,
    /// Follow-ups per thread after its first email.
    pub(crate) follow_ups: usize,
    /// Share of emails delivered twice.
    pub(crate) duplicates: f64,
    /// Workers killed with SIGKILL during the burst.
    pub(crate) kills: usize,
    /// Workers stopped with SIGTERM during the burst.
    pub(crate) stops: usize,
    /// Give up waiting for outcomes after this long.
    pub(crate) deadline: Duration,
    /// In-flight visibility of a worker's message (the bound on recovery without the
    /// release of a dead task's messages).
    pub(crate) visibility_secs: u64,
}

/// What the run found.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ChaosReport {
    /// Distinct emails sent.
    pub(crate) sent: usize,
    /// Extra deliveries of an email already sent.
    pub(crate) duplicates_sent: usize,
    /// Commands recorded.
    pub(crate) commands: usize,
    /// Emails with no command.
    pub(crate) lost: usize,
    /// Commands still `queued` or `running` at the end.
    pub(crate) stuck: usize,
    /// Commands `failed` or `cancelled`.
    pub(crate) failed: usize,
    /// Commands `succeeded`.
    pub(crate) succeeded: usize,
    /// Commands `interrupted` (superseded by a newer instruction of their thread).
    pub(crate) interrupted: usize,
    /// Threads whose last instruction did not succeed.
    pub(crate) last_not_succeeded: usize,
    /// Reply emails sent.
    pub(crate) replies: usize,
    /// Commands without exactly one reply.
    pub(crate) reply_mismatches: usize,
    /// Workers killed / stopped.
    pub(crate) kills: usize,
    /// Workers stopped with SIGTERM.
    pub(crate) stops: usize,
    /// Command starts beyond the first (retries after kills and stops).
    pub(crate) retried: u64,
    /// Recovery after a SIGKILL: kill → outcome of a command it cut short (ms).
    pub(crate) recovery_ms: Vec<u64>,
    /// Wall time of the whole run (ms).
    pub(crate) elapsed_ms: u64,
}

impl ChaosReport {
    /// Whether every invariant holds.
    pub(crate) fn ok(&self) -> bool {
        self.lost == 0
            && self.stuck == 0
            && self.failed == 0
            && self.last_not_succeeded == 0
            && self.reply_mismatches == 0
            && self.commands == self.sent
    }

    /// A percentile of the recovery times.
    pub(crate) fn recovery(&self, p: f64) -> Option<u64> {
        let mut v = self.recovery_ms.clone();
        v.sort_unstable();
        (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * p).round() as usize])
    }
}

/// A tiny generator (xorshift), seeded from the clock: chaos without a crate.
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub(crate) fn seeded() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self(t ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub(crate) fn raw_email(from: &str, to: &str, id: &str, in_reply_to: Option<&str>, body: &str) -> Vec<u8> {
    let reply = in_reply_to.map(|r| format!("In-Reply-To: <{r}>\r\nReferences: <{r}>\r\n")).unwrap_or_default();
    format!("From: {from}\r\nTo: {to}\r\nSubject: chaos\r\nMessage-ID: <{id}>\r\n{reply}\r\n{body}\r\n").into_bytes()
}

/// Runs the plan on a fresh local runtime under `config.data_dir`.
pub(crate) async fn run(config: &CliConfig, plan: &ChaosPlan) -> anyhow::Result<ChaosReport> {
    let started = Instant::now();
    let env = [
        ("SWITCHYARD_POLL_WAIT_SECS", "1".to_string()),
        ("SWITCHYARD_HEARTBEAT_SECS", "2".into()),
        ("SWITCHYARD_GRACE_SECS", "1".into()),
        ("SWITCHYARD_VISIBILITY_SECS", plan.visibility_secs.to_string()),
    ];
    let Scratch { rt, data, remote, id } =
        Scratch::start(config, "chaos", DOMAIN, &env, Duration::from_secs(2)).await?;
    rt.orchestrator
        .put_project(ProjectConfig {
            max_run_secs: 120,
            acknowledge_email: false,
            ..ProjectConfig::new("acme", "site", &remote.to_string_lossy(), &USERS, JOB)
        })
        .await?;
    let mut rng = Rng::seeded();
    let mut report = ChaosReport::default();
    let inbox = rt.inbox.clone();

    // The burst: every thread's emails in order, threads interleaved, duplicates re-sent
    // later; kills and stops at random moments inside the burst.
    let mut emails: Vec<(Duration, Vec<u8>)> = Vec::new();
    let mut last_of_thread = Vec::new();
    for t in 0..plan.threads {
        let user = USERS[t % USERS.len()];
        let first = format!("{id}-t{t}-0@chaos");
        let thread = ThreadId::from_seed(&first);
        last_of_thread.push((SessionId::new("acme", &thread), plan.follow_ups as u64 + 1));
        let mut at = Duration::from_millis(rng.below(500));
        let mut previous: Option<String> = None;
        for k in 0..=plan.follow_ups {
            let msg_id = format!("{id}-t{t}-{k}@chaos");
            let to = if k == 0 { format!("acme.site@{DOMAIN}") } else { format!("acme.site+t.{thread}@{DOMAIN}") };
            let raw = raw_email(user, &to, &msg_id, previous.as_deref(), &format!("Instruction {k} of thread {t}."));
            emails.push((at, raw.clone()));
            report.sent += 1;
            if rng.chance(plan.duplicates) {
                emails.push((at + Duration::from_millis(50 + rng.below(1500)), raw));
                report.duplicates_sent += 1;
            }
            previous = Some(msg_id);
            at += Duration::from_millis(300 + rng.below(900));
        }
    }
    emails.sort_by_key(|(at, _)| *at);
    let burst = emails.last().map_or(Duration::ZERO, |(at, _)| *at);
    let mut faults: Vec<(Duration, bool)> = (0..plan.kills)
        .map(|_| (true, ()))
        .chain((0..plan.stops).map(|_| (false, ())))
        .map(|(kill, ())| (Duration::from_millis(800 + rng.below(burst.as_millis() as u64 + 1)), kill))
        .collect();
    faults.sort_by_key(|(at, _)| *at);

    let t0 = Instant::now();
    let mut pending_faults = faults.into_iter().peekable();
    let mut recoveries: Vec<(u64, SessionId, u64)> = Vec::new();
    for (at, raw) in emails {
        while let Some((fat, kill)) = pending_faults.peek().copied() {
            if fat > at {
                break;
            }
            pending_faults.next();
            tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + fat)).await;
            fault(&rt, kill, &mut rng, &mut report, &mut recoveries).await?;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + at)).await;
        inbox.send(&raw).await?;
    }
    for (fat, kill) in pending_faults {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + fat)).await;
        fault(&rt, kill, &mut rng, &mut report, &mut recoveries).await?;
    }

    // Wait for every thread to reach its last command with every command final.
    let store = rt.orchestrator.store.clone();
    let deadline = Instant::now() + plan.deadline;
    let mut all: BTreeMap<String, Vec<CommandItem>> = BTreeMap::new();
    loop {
        all.clear();
        for (session, _) in &last_of_thread {
            all.insert(session.to_string(), store.list_commands(session).await?);
        }
        let done = last_of_thread.iter().all(|(s, last)| {
            let cmds = &all[s.as_str()];
            cmds.len() as u64 >= *last && cmds.iter().all(|c| !c.status.is_pending())
        });
        let replies = count_replies(&rt.outbox)?;
        let replied = all
            .values()
            .flatten()
            .all(|c| replies.get(&c.command_id.as_str().to_ascii_lowercase()).is_some_and(|n| *n >= 1));
        if (done && replied) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Recovery: kill → the outcome of each command the killed worker held.
    for (wall_ms, session, seq) in &recoveries {
        if let Some(c) = all.get(session.as_str()).and_then(|cs| cs.iter().find(|c| c.seq == *seq)) {
            if let Some(f) = c.finished_ms {
                report.recovery_ms.push(f.saturating_sub(*wall_ms));
            }
        }
    }
    // Settle: a duplicate reply would arrive within a poll or two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let replies = count_replies(&rt.outbox)?;
    for (s, last) in &last_of_thread {
        let cmds = &all[s.as_str()];
        report.commands += cmds.len();
        report.lost += (*last as usize).saturating_sub(cmds.len());
        for c in cmds {
            match c.status.outcome() {
                None => report.stuck += 1,
                Some(Outcome::Succeeded) => report.succeeded += 1,
                Some(Outcome::Interrupted) => report.interrupted += 1,
                Some(_) => report.failed += 1,
            }
            report.retried += u64::from(c.attempts.saturating_sub(1));
            if replies.get(&c.command_id.as_str().to_ascii_lowercase()).copied().unwrap_or(0) != 1 {
                report.reply_mismatches += 1;
            }
        }
        if cmds.iter().find(|c| c.seq == *last).and_then(|c| c.status.outcome()) != Some(Outcome::Succeeded) {
            report.last_not_succeeded += 1;
        }
    }
    report.replies = replies.values().sum();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    rt.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(report)
}

/// Reply emails in the outbox per command id (file names start with the lower-case id).
pub(crate) fn count_replies(outbox: &Path) -> anyhow::Result<HashMap<String, usize>> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(outbox).context("outbox")? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some((command, _)) = name.split_once('.') {
            *out.entry(command.to_string()).or_default() += 1;
        }
    }
    Ok(out)
}

/// Kills (SIGKILL) or stops (SIGTERM) one running worker, remembering for a kill the
/// commands it held.
pub(crate) async fn fault(
    rt: &Runtime,
    kill: bool,
    rng: &mut Rng,
    report: &mut ChaosReport,
    recoveries: &mut Vec<(u64, SessionId, u64)>,
) -> anyhow::Result<()> {
    let tasks = rt.launcher.running();
    if tasks.is_empty() {
        return Ok(());
    }
    let task = &tasks[rng.below(tasks.len() as u64) as usize];
    let Some(pid) = rt.launcher.pid(task) else { return Ok(()) };
    let store = &rt.orchestrator.store;
    let holder = store
        .all_containers()
        .await?
        .into_iter()
        .find(|c| c.task_arn.as_deref() == Some(task.as_str()))
        .map(|c| (c.container_id, c.launch_token));
    let signal = if kill { nix::sys::signal::Signal::SIGKILL } else { nix::sys::signal::Signal::SIGTERM };
    let killed_ms = switchyard_aws::now_ms();
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).is_err() {
        return Ok(());
    }
    if kill {
        report.kills += 1;
        if let Some((container, Some(token))) = holder {
            for c in store.running_commands_of(&container).await? {
                if c.run_by.as_deref() == Some(token.as_str()) {
                    recoveries.push((killed_ms, c.session_id.clone(), c.seq));
                }
            }
        }
    } else {
        report.stops += 1;
    }
    Ok(())
}

/// Prints the report as a table (and `bench` lines when asked).
pub(crate) fn print(report: &ChaosReport) {
    println!(
        "chaos: {} emails ({} duplicate deliveries), {} SIGKILL, {} SIGTERM, {:.1} s",
        report.sent,
        report.duplicates_sent,
        report.kills,
        report.stops,
        report.elapsed_ms as f64 / 1000.0
    );
    println!(
        "  commands {:>4}   succeeded {:>4}   interrupted {:>4}   retried {:>3}",
        report.commands, report.succeeded, report.interrupted, report.retried
    );
    println!(
        "  lost     {:>4}   stuck     {:>4}   failed      {:>4}   last not succeeded {}",
        report.lost, report.stuck, report.failed, report.last_not_succeeded
    );
    println!("  replies  {:>4}   commands without exactly one reply {}", report.replies, report.reply_mismatches);
    if let (Some(p50), Some(p99)) = (report.recovery(0.5), report.recovery(0.99)) {
        println!(
            "  recovery after SIGKILL (kill → outcome): p50 {p50} ms, p99 {p99} ms over {} commands",
            report.recovery_ms.len()
        );
    }
    println!("  verdict: {}", if report.ok() { "OK" } else { "FAILED" });
}
