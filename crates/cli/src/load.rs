//! `switchyard load SCENARIO…`: the seed load suite on the real local runtime — emails on the
//! inbound queue and API calls in, real worker processes, real git, replies out — with every
//! outcome checked against what was sent.
//!
//! Each scenario runs on a fresh runtime (its own table, queues and data directory). Every
//! thread is a script of steps (instruction, interrupt, cancel, close) run by its own task;
//! the job records each start and end in a log, so re-executions and out-of-order execution
//! are measured from what actually ran, not from what the store says.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use switchyard_aws::store::CommandItem;
use switchyard_core::ids::{SessionId, ThreadId};
use switchyard_core::messages::Outcome;
use switchyard_core::project::ProjectConfig;
use switchyard_core::status::CommandStatus;
use switchyard_core::status::ErrorCode;
use switchyard_orchestrator::sessions::SessionControl;

use crate::config::CliConfig;
use crate::runtime::{Runtime, Scratch};

const DOMAIN: &str = "in.load.local";
const PROJECTS: [&str; 3] = ["site", "app", "docs"];

/// A scenario of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    /// One user, 10 sessions over 3 projects: exactly 3 containers, 3 queue sets, 3 launches.
    Seed,
    /// 25 sessions at once, mixed: new, follow-up, interrupt, cancel, close; email and API.
    Concurrent,
    /// 15 new sessions at once.
    Burst,
    /// 2 new sessions a second, each with follow-ups.
    Sustained,
    /// Many follow-ups in one session: executed in order, the last one succeeds.
    Fifo,
}

/// How big and how hostile a run is.
#[derive(Debug, Clone)]
pub(crate) struct LoadOptions {
    /// Small counts (seconds per scenario), for `make test`.
    pub(crate) short: bool,
    /// Follow-ups of the `fifo` scenario (default 1,000; 30 short).
    pub(crate) messages: Option<usize>,
    /// Workers killed with SIGKILL during the run.
    pub(crate) kill_workers: usize,
    /// Workers stopped with SIGTERM during the run.
    pub(crate) stop_workers: usize,
    /// Share of emails delivered twice.
    pub(crate) duplicates: f64,
    /// Share of AWS calls failed by injection (set in the environment by `main`).
    pub(crate) aws_faults: f64,
    /// Share of instructions (never a thread's last) the workers cannot process: they reach
    /// the DLQ and their sender is told (set in the workers' environment by `main`).
    pub(crate) poison: f64,
    /// Give up waiting for outcomes after this long.
    pub(crate) deadline: Duration,
}

/// One thread's script step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// An instruction (`long` ones run for 3 s, so an interrupt or cancel lands mid-job).
    Instruction { long: bool },
    /// Interrupt the running job.
    Interrupt,
    /// Cancel running and queued work.
    Cancel,
    /// Close the session (after its queued work).
    Close,
}

/// One conversation: who, where, through which door, and what.
#[derive(Debug, Clone)]
struct Script {
    user: String,
    project: &'static str,
    api: bool,
    start: Duration,
    steps: Vec<(Duration, Step)>,
}

/// What one thread did, as its task saw it.
#[derive(Debug, Clone, Default)]
struct Sent {
    session: Option<SessionId>,
    instructions: usize,
    /// Send time (epoch ms) of each instruction, by its step in the script (the `k` of
    /// "Instruction {k} of thread {t}"): emails may be routed in another order than sent.
    sent_ms: HashMap<usize, u64>,
    email: bool,
    cancelled: bool,
    errors: Vec<String>,
}

/// The figures of one scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ScenarioReport {
    /// Which scenario.
    pub(crate) scenario: String,
    /// Instructions sent.
    pub(crate) sent: usize,
    /// Duplicate deliveries sent on top.
    pub(crate) duplicate_deliveries: usize,
    /// Share of AWS calls failed by injection (`--aws-faults`).
    pub(crate) aws_faults: f64,
    /// Faults injected into this process's own calls (router, responder, reaper, the checks;
    /// the workers inject theirs unseen): refused before the service, responses lost.
    pub(crate) aws_faults_injected: (u64, u64),
    /// Commands that reached an expected final outcome, in % of `sent`.
    pub(crate) handled_pct: f64,
    /// Instructions with no command.
    pub(crate) lost: usize,
    /// Commands answered (finalised and replied to) more than once.
    pub(crate) duplicated: usize,
    /// Commands whose job process ran to its end more than once: a worker killed after the job
    /// ended but before its outcome was recorded runs it again (at-least-once execution of the
    /// job, exactly-once outcome). Expected only under SIGKILL.
    pub(crate) reexecuted: usize,
    /// Job starts of a seq lower than one already started in the same session.
    pub(crate) out_of_order: usize,
    /// Commands failed (or cancelled where nothing was cancelled), or still queued/running.
    /// A poisoned instruction is expected to fail with `dlq`, and counts as handled.
    pub(crate) failed: usize,
    /// Poisoned instructions sent, and how many of them were answered `failed (dlq)`.
    pub(crate) poisoned: (usize, usize),
    /// The share of instructions asked to be poisoned (`--poison`).
    pub(crate) poison: f64,
    /// Extra starts (retries after kills and stops).
    pub(crate) retried: u64,
    /// Commands interrupted (superseded or interrupted on request).
    pub(crate) interrupted: usize,
    /// Commands cancelled on request.
    pub(crate) cancelled: usize,
    /// Threads whose last instruction did not succeed.
    pub(crate) last_not_succeeded: usize,
    /// Containers (= queue sets) created.
    pub(crate) containers: usize,
    /// `RunTask`s (launches).
    pub(crate) run_tasks: u32,
    /// Workers killed / stopped.
    pub(crate) kills: usize,
    /// Workers stopped with SIGTERM.
    pub(crate) stops: usize,
    /// Email sent → reply in the outbox (ms): p50, p95, p99.
    pub(crate) email_to_reply_ms: [u64; 3],
    /// Instruction sent → command recorded (ms): p50, p95, p99.
    pub(crate) route_ms: [u64; 3],
    /// Wall time (ms).
    pub(crate) elapsed_ms: u64,
    /// Commands per container: (container, seq, session, started, finished, outcome) for the timeline.
    #[serde(skip)]
    timeline: Vec<(String, String, u64, u64, CommandStatus)>,
    /// Email → reply latencies, for the histogram.
    #[serde(skip)]
    reply_latencies: Vec<u64>,
    /// Whether the scenario's own expectation (e.g. seed's 3 containers) held.
    pub(crate) expectation_met: bool,
}

impl ScenarioReport {
    /// Whether nothing was lost, duplicated, reordered or failed, and all was handled. A job
    /// may run to its end twice only when a worker was SIGKILLed: at most one per job the
    /// worker had between its end and its recorded outcome, so at most `SLOTS` per kill (seen:
    /// two re-runs from one kill, both jobs ended, their commits and outcomes not yet written).
    pub(crate) fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reexecuted <= self.kills * SLOTS
            && self.out_of_order == 0
            && self.failed == 0
            && self.last_not_succeeded == 0
            && self.handled_pct >= 100.0
            && (self.poison <= 0.0 || (self.poisoned.0 > 0 && self.poisoned.0 == self.poisoned.1))
            && self.expectation_met
    }
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}@load.example")).collect()
}

/// The scripts of a scenario.
fn scripts(s: Scenario, o: &LoadOptions) -> Vec<Script> {
    let ms = Duration::from_millis;
    let instr = |long| Step::Instruction { long };
    match s {
        Scenario::Seed => (0..10)
            .map(|i| Script {
                user: users(1)[0].clone(),
                project: PROJECTS[i % 3],
                api: false,
                start: ms(i as u64 * 100),
                steps: vec![(ms(0), instr(false)), (ms(500), instr(false))],
            })
            .collect(),
        Scenario::Burst => (0..15)
            .map(|i| Script {
                user: users(3)[i % 3].clone(),
                project: PROJECTS[0],
                api: false,
                start: ms(0),
                steps: vec![(ms(0), instr(false))],
            })
            .collect(),
        Scenario::Concurrent => (0..25)
            .map(|i| {
                let steps = match i % 5 {
                    0 => vec![(ms(0), instr(false)), (ms(400), instr(false)), (ms(400), instr(false))],
                    1 => vec![(ms(0), instr(false)), (ms(500), instr(false))],
                    2 => vec![(ms(0), instr(true)), (ms(1200), Step::Interrupt), (ms(300), instr(false))],
                    3 => vec![(ms(0), instr(true)), (ms(1200), Step::Cancel), (ms(300), instr(false))],
                    _ => vec![(ms(0), instr(false)), (ms(300), instr(false)), (ms(300), Step::Close)],
                };
                Script {
                    user: users(5)[i % 5].clone(),
                    project: PROJECTS[i % 2],
                    api: i % 5 == 1 || i % 5 == 4,
                    start: ms(0),
                    steps,
                }
            })
            .collect(),
        Scenario::Sustained => {
            let seconds = if o.short { 5 } else { 60 };
            (0..seconds * 2)
                .map(|i| Script {
                    user: users(6)[i % 6].clone(),
                    project: PROJECTS[i % 3],
                    api: i % 4 == 3,
                    start: ms(i as u64 * 500),
                    steps: vec![(ms(0), instr(false)), (ms(700), instr(false)), (ms(700), instr(false))],
                })
                .collect()
        }
        Scenario::Fifo => {
            let n = o.messages.unwrap_or(if o.short { 30 } else { 1000 });
            vec![Script {
                user: users(1)[0].clone(),
                project: PROJECTS[0],
                api: false,
                start: ms(0),
                steps: (0..=n).map(|_| (ms(0), instr(false))).collect(),
            }]
        }
    }
}

/// The job: logs its start and end (outside the worktree), works briefly, edits a file.
fn job(log: &Path) -> String {
    format!(
        r#"i=$(cat "$SWITCHYARD_INSTRUCTION_FILE"); echo "start $SWITCHYARD_COMMAND_ID" >> {log}; case "$i" in *long*) sleep 3;; *) sleep 0.2;; esac; printf '%s\n' "$i" >> notes.md; echo "end $SWITCHYARD_COMMAND_ID" >> {log}; echo done"#,
        log = log.display()
    )
}

/// Runs one scenario on a fresh local runtime.
pub(crate) async fn run(config: &CliConfig, scenario: Scenario, o: &LoadOptions) -> anyhow::Result<ScenarioReport> {
    let started = Instant::now();
    // Fault injection is read by every SDK client this process and its workers build: set
    // (or cleared) before the scenario's runtime exists, and only when it changes (the
    // environment is process-wide; nothing else of this process writes it).
    let wanted = (o.aws_faults > 0.0).then(|| o.aws_faults.to_string());
    if std::env::var(switchyard_aws::faults::ENV).ok() != wanted {
        match &wanted {
            Some(rate) => std::env::set_var(switchyard_aws::faults::ENV, rate),
            None => std::env::remove_var(switchyard_aws::faults::ENV),
        }
    }
    let faults_before = switchyard_aws::faults::injected();
    // The workers inherit this process's environment: poison only where asked.
    if o.poison > 0.0 {
        std::env::set_var("SWITCHYARD_TEST_POISON", POISON.trim());
    } else {
        std::env::remove_var("SWITCHYARD_TEST_POISON");
    }
    let env = [
        ("SWITCHYARD_POLL_WAIT_SECS", "1".to_string()),
        ("SWITCHYARD_HEARTBEAT_SECS", "2".into()),
        ("SWITCHYARD_GRACE_SECS", "1".into()),
        ("SWITCHYARD_VISIBILITY_SECS", "30".into()),
    ];
    let Scratch { rt, data, remote, id } =
        Scratch::start(config, "load", DOMAIN, &env, Duration::from_secs(10)).await?;
    let log = data.join("ran.log");
    std::fs::write(&log, "")?;
    // Jobs run as the unprivileged job user: the log is theirs to append to.
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
    let rt = Arc::new(rt);
    let everyone = users(6);
    for project in PROJECTS {
        rt.orchestrator
            .put_project(ProjectConfig {
                max_concurrent_sessions: SLOTS as u32,
                max_run_secs: 120,
                acknowledge_email: false,
                ..ProjectConfig::new("acme", project, &remote.to_string_lossy(), &["@load.example"], &job(&log))
            })
            .await?;
    }
    let mut keys = HashMap::new();
    for u in &everyone {
        let projects: Vec<String> = PROJECTS.iter().map(|p| p.to_string()).collect();
        keys.insert(u.clone(), rt.orchestrator.create_api_key("acme", u, &projects, &["sessions".into()]).await?);
    }
    let scripts = scripts(scenario, o);
    let total: usize =
        scripts.iter().map(|s| s.steps.iter().filter(|(_, st)| matches!(st, Step::Instruction { .. })).count()).sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("  {prefix:>10} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{scenario:?}").to_lowercase());
    bar.set_message("sending");

    // Faults during the send window: SIGKILL / SIGTERM to random workers.
    let window =
        scripts.iter().map(|s| s.start + s.steps.iter().map(|(d, _)| *d).sum::<Duration>()).max().unwrap_or_default();
    let mut rng = crate::chaos::Rng::seeded();
    let faults: Vec<(Duration, bool)> = (0..o.kill_workers)
        .map(|_| true)
        .chain((0..o.stop_workers).map(|_| false))
        .map(|kill| (Duration::from_millis(500 + rng.below(window.as_millis() as u64 + 1)), kill))
        .collect();
    // Faults land inside the send window, so this task is done before outcomes are judged.
    let fault_task = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let mut faults = faults;
            faults.sort_by_key(|(at, _)| *at);
            let (mut rng, mut report, mut recoveries) =
                (crate::chaos::Rng::seeded(), crate::chaos::ChaosReport::default(), Vec::new());
            for (at, kill) in faults {
                tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + at)).await;
                let _ = crate::chaos::fault(&rt, kill, &mut rng, &mut report, &mut recoveries).await;
            }
            report
        })
    };

    // Every thread its own task.
    let duplicates = Arc::new(Mutex::new(0usize));
    let eligible = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (t, script) in scripts.into_iter().enumerate() {
        let (rt, key, bar, dup, run) =
            (rt.clone(), keys[&script.user].clone(), bar.clone(), duplicates.clone(), id.clone());
        let (dup_rate, poison_rate, eligible) = (o.duplicates, o.poison, eligible.clone());
        tasks.spawn(async move {
            let mut sent = Sent { email: !script.api, ..Sent::default() };
            tokio::time::sleep(script.start).await;
            let mut rng = crate::chaos::Rng::seeded();
            let mut previous: Option<String> = None;
            for (k, (delay, step)) in script.steps.iter().enumerate() {
                tokio::time::sleep(*delay).await;
                let ctx = Ctx {
                    rt: &rt,
                    script: &script,
                    key: &key,
                    run: &run,
                    dup_rate,
                    dups: &dup,
                    poison_rate,
                    eligible: &eligible,
                };
                let res = perform(&ctx, t, k, *step, &mut sent, &mut previous, &mut rng).await;
                if let Err(e) = res {
                    sent.errors.push(format!("step {k}: {e:#}"));
                }
                if matches!(step, Step::Instruction { .. }) {
                    bar.inc(1);
                }
            }
            sent
        });
    }
    let mut threads = Vec::new();
    while let Some(r) = tasks.join_next().await {
        threads.push(r?);
    }
    bar.set_message("waiting for outcomes");

    // Wait until every thread's commands are final and every email command has its reply.
    let store = rt.orchestrator.store.clone();
    let deadline = Instant::now() + o.deadline;
    let mut all: BTreeMap<String, Vec<CommandItem>> = BTreeMap::new();
    loop {
        // Only what is not final yet is read again: polling a 1,000-command session whole
        // every round was a large share of the emulator's work, i.e. of what we measure.
        for s in threads.iter().filter_map(|t| t.session.as_ref()) {
            let known = all.entry(s.to_string()).or_default();
            let settled = known.iter().take_while(|c| !c.status.is_pending()).count();
            let from = known.get(settled).map_or(known.len() as u64 + 1, |c| c.seq);
            known.truncate(settled);
            known.extend(store.list_commands_from(s, from).await?);
        }
        let replies = crate::chaos::count_replies(&rt.outbox)?;
        let done = threads.iter().all(|t| {
            let Some(s) = &t.session else { return true };
            let cmds = &all[s.as_str()];
            cmds.len() >= t.instructions
                && cmds.iter().all(|c| !c.status.is_pending())
                && (!t.email || cmds.iter().all(|c| replies.contains_key(&c.command_id.as_str().to_ascii_lowercase())))
        });
        if done {
            break;
        }
        if Instant::now() >= deadline {
            for t in &threads {
                let Some(s) = &t.session else { continue };
                let cmds = &all[s.as_str()];
                let open: Vec<String> = cmds
                    .iter()
                    .filter(|c| {
                        c.status.is_pending()
                            || (t.email && !replies.contains_key(&c.command_id.as_str().to_ascii_lowercase()))
                    })
                    .map(|c| format!("#{} {} {}", c.seq, c.command_id, c.status))
                    .collect();
                if cmds.len() < t.instructions || !open.is_empty() {
                    eprintln!("  not done: {s}: {}/{} commands; open: {open:?}", cmds.len(), t.instructions);
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let faults = fault_task.await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bar.finish_and_clear();

    // Judge.
    let replies = crate::chaos::count_replies(&rt.outbox)?;
    let reply_times = reply_times(&rt.outbox)?;
    let ran = std::fs::read_to_string(&log)?;
    let mut starts: Vec<&str> = Vec::new();
    let mut ends: HashMap<&str, usize> = HashMap::new();
    for line in ran.lines() {
        match line.split_once(' ') {
            Some(("start", c)) => starts.push(c),
            Some(("end", c)) => *ends.entry(c).or_default() += 1,
            _ => {}
        }
    }
    let started_ids: std::collections::HashSet<&str> = starts.iter().copied().collect();
    let mut r = ScenarioReport { scenario: format!("{scenario:?}").to_lowercase(), ..ScenarioReport::default() };
    let by_id: HashMap<String, &CommandItem> = all.values().flatten().map(|c| (c.command_id.to_string(), c)).collect();
    let mut route = Vec::new();
    let mut slowest: Vec<(u64, u64, u64, &CommandItem)> = Vec::new();
    let mut handled = 0usize;
    for t in &threads {
        r.sent += t.instructions;
        let Some(s) = &t.session else {
            r.lost += t.instructions;
            continue;
        };
        let cmds = &all[s.as_str()];
        r.lost += t.instructions.saturating_sub(cmds.len());
        for c in cmds {
            if c.instruction.contains(POISON) {
                r.poisoned.0 += 1;
                // Expected: never started, set aside in the DLQ, answered once as failed.
                let lower = c.command_id.as_str().to_ascii_lowercase();
                let started = started_ids.contains(c.command_id.as_str());
                let answered_once = !t.email || replies.get(&lower).copied() == Some(1);
                if !started
                    && answered_once
                    && c.status == CommandStatus::Final(Outcome::Failed)
                    && c.error_code == Some(ErrorCode::Dlq)
                {
                    r.poisoned.1 += 1;
                    handled += 1;
                } else {
                    r.failed += 1;
                }
                continue;
            }
            match c.status.outcome() {
                Some(Outcome::Succeeded | Outcome::Interrupted) => handled += 1,
                Some(Outcome::Cancelled) if t.cancelled => {
                    handled += 1;
                    r.cancelled += 1;
                }
                _ => r.failed += 1,
            }
            if c.status == CommandStatus::Final(Outcome::Interrupted) {
                r.interrupted += 1;
            }
            r.retried += u64::from(c.attempts.saturating_sub(1));
            let lower = c.command_id.as_str().to_ascii_lowercase();
            if replies.get(&lower).copied().unwrap_or(0) > 1 {
                r.duplicated += 1;
            }
            if ends.get(c.command_id.as_str()).copied().unwrap_or(0) > 1 {
                r.reexecuted += 1;
            }
            if let Some(sent) = step_of(&c.instruction).and_then(|k| t.sent_ms.get(&k)) {
                route.push(c.created_ms.saturating_sub(*sent));
                if let Some(at) = reply_times.get(&lower) {
                    r.reply_latencies.push(at.saturating_sub(*sent));
                    slowest.push((at.saturating_sub(*sent), *sent, *at, c));
                }
            }
            if let (Some(st), Some(fin)) = (c.started_ms, c.finished_ms) {
                r.timeline.push((c.session_id.to_string(), format!("{} #{}", c.session_id, c.seq), st, fin, c.status));
            }
        }
        // The session's last command must succeed — unless it is a poisoned one, judged
        // above: an email retried after a fault (`--aws-faults`: intake's answer lost, the
        // message redelivered after its visibility timeout) can arrive after the thread's
        // next one, and the latest arrival is the session's last command.
        let last = cmds.iter().max_by_key(|c| c.seq);
        let last_poisoned = last.is_some_and(|c| c.instruction.contains(POISON));
        if !last_poisoned && last.and_then(|c| c.status.outcome()) != Some(Outcome::Succeeded) {
            r.last_not_succeeded += 1;
            // Evidence for whoever reads the run: the whole session, command by command.
            eprintln!("  last not succeeded: session {s}:");
            for c in cmds {
                let started = started_ids.contains(c.command_id.as_str());
                eprintln!(
                    "    #{} {} {} attempts {} started {started} error {:?} {:?} instruction {:?}",
                    c.seq, c.command_id, c.status, c.attempts, c.error_code, c.error_message, c.instruction
                );
            }
        }
        for e in &t.errors {
            eprintln!("  {}: {e}", s);
        }
    }
    // Where the slowest answers spent their time, for whoever reads the run.
    slowest.sort_by_key(|(ms, ..)| std::cmp::Reverse(*ms));
    for (ms, sent, replied, c) in slowest.iter().take(3) {
        let after =
            |at: Option<u64>, from: u64| at.map_or("-".to_string(), |at| format!("{} ms", at.saturating_sub(from)));
        eprintln!(
            "  slow: {} #{} {} ms: routed +{} ms, started {}, finished {}, replied +{} ms after the outcome (attempts {})",
            c.session_id,
            c.seq,
            ms,
            c.created_ms.saturating_sub(*sent),
            after(c.started_ms, c.created_ms),
            after(c.finished_ms, c.started_ms.unwrap_or(c.created_ms)),
            replied.saturating_sub(c.finished_ms.unwrap_or(*replied)),
            c.attempts,
        );
    }
    // Out of order: a start of a lower seq after a higher one in the same session.
    let mut highest: HashMap<&str, u64> = HashMap::new();
    for c in starts {
        if let Some(cmd) = by_id.get(c) {
            let h = highest.entry(cmd.session_id.as_str()).or_default();
            if cmd.seq < *h {
                r.out_of_order += 1;
            }
            *h = (*h).max(cmd.seq);
        }
    }
    let containers = store.all_containers().await?;
    r.containers = containers.len();
    r.run_tasks = containers.iter().map(|c| c.launches).sum();
    r.expectation_met = scenario != Scenario::Seed || (r.containers == 3 && r.run_tasks == 3);
    r.handled_pct = if r.sent == 0 { 100.0 } else { 100.0 * handled as f64 / r.sent as f64 };
    r.duplicate_deliveries = duplicates.lock().map(|d| *d).unwrap_or(0);
    (r.kills, r.stops) = (faults.kills, faults.stops);
    r.aws_faults = o.aws_faults;
    r.poison = o.poison;
    let faults_after = switchyard_aws::faults::injected();
    r.aws_faults_injected = (faults_after.0 - faults_before.0, faults_after.1 - faults_before.1);
    let mut lat = r.reply_latencies.clone();
    r.email_to_reply_ms = [pct(&mut lat, 0.5), pct(&mut lat, 0.95), pct(&mut lat, 0.99)];
    r.route_ms = [pct(&mut route, 0.5), pct(&mut route, 0.95), pct(&mut route, 0.99)];
    // Container lanes for the timeline.
    let session_container: HashMap<String, String> = {
        let mut m = HashMap::new();
        for s in threads.iter().filter_map(|t| t.session.as_ref()) {
            if let Some(item) = store.get_session(s).await? {
                m.insert(item.session_id.to_string(), item.session_container.to_string());
            }
        }
        m
    };
    for row in &mut r.timeline {
        row.0 = session_container.get(&row.0).cloned().unwrap_or_default();
    }
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    if let Ok(rt) = Arc::try_unwrap(rt) {
        rt.shutdown().await;
    }
    if r.ok() && std::env::var_os("SWITCHYARD_LOAD_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&data);
    } else {
        eprintln!("  {}: evidence kept in {}", r.scenario, data.display());
    }
    Ok(r)
}

/// The script step `k` of an instruction text "Instruction {k} of thread {t}…".
fn step_of(instruction: &str) -> Option<usize> {
    instruction.strip_prefix("Instruction ")?.split(' ').next()?.parse().ok()
}

/// The text that marks a poisoned instruction (`SWITCHYARD_TEST_POISON` of the workers).
pub(crate) const POISON: &str = " [poison]";

/// Job slots of each worker (the projects' `max_concurrent_sessions`).
const SLOTS: usize = 4;

/// What every step of a thread works with.
struct Ctx<'a> {
    rt: &'a Runtime,
    script: &'a Script,
    key: &'a str,
    run: &'a str,
    dup_rate: f64,
    dups: &'a Mutex<usize>,
    poison_rate: f64,
    /// Instructions that could be poisoned so far (all threads): every `1/rate`-th one is,
    /// so a run poisons a fixed share, not a random one.
    eligible: &'a std::sync::atomic::AtomicUsize,
}

/// Performs step `k` of thread `t`.
async fn perform(
    c: &Ctx<'_>,
    t: usize,
    k: usize,
    step: Step,
    sent: &mut Sent,
    previous: &mut Option<String>,
    rng: &mut crate::chaos::Rng,
) -> anyhow::Result<()> {
    let (rt, script, key, run) = (c.rt, c.script, c.key, c.run);
    match step {
        Step::Instruction { long } => {
            let last = script.steps.iter().rposition(|(_, s)| matches!(s, Step::Instruction { .. }));
            // Never the thread's last instruction: the last one must succeed.
            // Nor in a thread with controls (interrupt, cancel, close): a poisoned message holds
            // its session's FIFO group for its receives, so a control timed for the poisoned
            // instruction lands on the thread's last one instead.
            let controls = script.steps.iter().any(|(_, s)| !matches!(s, Step::Instruction { .. }));
            let poisoned = last != Some(k) && !controls && c.poison_rate > 0.0 && {
                let every = (1.0 / c.poison_rate).round().max(1.0) as usize;
                // The first eligible one and every `every`-th after it: a run that asks for
                // poison always gets some.
                c.eligible.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(every)
            };
            let text = format!(
                "Instruction {k} of thread {t}{}{}.",
                if long { " (long)" } else { "" },
                if poisoned { POISON } else { "" }
            );
            sent.sent_ms.insert(k, switchyard_aws::now_ms());
            sent.instructions += 1;
            if script.api {
                let (status, body) = match &sent.session {
                    None => {
                        let body = serde_json::json!({ "project": script.project, "instruction": text }).to_string();
                        crate::demo::http(rt.api_addr, "POST", "/v1/sessions", key, Some(&body)).await?
                    }
                    Some(s) => {
                        let body = serde_json::json!({ "instruction": text }).to_string();
                        crate::demo::http(rt.api_addr, "POST", &format!("/v1/sessions/{s}/messages"), key, Some(&body))
                            .await?
                    }
                };
                anyhow::ensure!(status == 202, "API answered {status}: {body}");
                let session = body["session"].as_str().context("session in the answer")?;
                sent.session = Some(SessionId::parse(session)?);
            } else {
                let message_id = format!("{run}-{t}-{k}@load");
                let first = format!("{run}-{t}-0@load");
                let thread = ThreadId::from_seed(&first);
                let to = if k == 0 {
                    format!("acme.{}@{DOMAIN}", script.project)
                } else {
                    format!("acme.{}+t.{thread}@{DOMAIN}", script.project)
                };
                let raw = crate::chaos::raw_email(&script.user, &to, &message_id, previous.as_deref(), &text);
                rt.inbox.send(&raw).await?;
                if rng.chance(c.dup_rate) {
                    rt.inbox.send(&raw).await?;
                    if let Ok(mut d) = c.dups.lock() {
                        *d += 1;
                    }
                }
                sent.session = Some(SessionId::new("acme", &thread));
                *previous = Some(message_id);
            }
        }
        Step::Interrupt | Step::Cancel | Step::Close => {
            let Some(s) = &sent.session else { return Ok(()) };
            // The command the step concerns must exist first (the email may still be in the
            // inbound queue).
            let session = wait_session(rt, s, sent.instructions).await?;
            let what = match step {
                Step::Interrupt => SessionControl::Interrupt,
                Step::Cancel => {
                    sent.cancelled = true;
                    SessionControl::Cancel
                }
                _ => SessionControl::Close,
            };
            if script.api && what == SessionControl::Close {
                let (status, body) =
                    crate::demo::http(rt.api_addr, "DELETE", &format!("/v1/sessions/{s}"), key, None).await?;
                anyhow::ensure!(status == 202, "API answered {status}: {body}");
            } else {
                rt.orchestrator.control_session(&session, what).await?;
            }
        }
    }
    Ok(())
}

/// The session once it holds `commands` commands.
async fn wait_session(
    rt: &Runtime,
    s: &SessionId,
    commands: usize,
) -> anyhow::Result<switchyard_aws::store::SessionItem> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(item) = rt.orchestrator.store.get_session(s).await? {
            if item.next_seq as usize > commands {
                return Ok(item);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "session {s} never reached {commands} commands");
        // Gently: the emulator serves DynamoDB one request at a time, and the load we
        // measure must not be our own polling.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// When each reply landed in the outbox (epoch ms), by lower-case command id.
fn reply_times(outbox: &Path) -> anyhow::Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(outbox).context("outbox")? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let at =
            e.metadata()?.modified()?.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        if let Some((command, _)) = name.split_once('.') {
            out.entry(command.to_string()).or_insert(at);
        }
    }
    Ok(out)
}

/// The table of reports.
pub(crate) fn print_table(reports: &[ScenarioReport]) {
    println!(
        "{:<11} {:>5} {:>8} {:>7} {:>5} {:>5} {:>5} {:>5} {:>6} {:>7} {:>6} {:>5} {:>4} {:>5} {:>22} {:>18}",
        "scenario",
        "sent",
        "handled",
        "poison",
        "lost",
        "dup",
        "rerun",
        "order",
        "failed",
        "retried",
        "intr",
        "cont",
        "run",
        "kills",
        "email→reply p50/95/99",
        "route p50/95/99"
    );
    for r in reports {
        println!(
            "{:<11} {:>5} {:>7.1}% {:>7} {:>5} {:>5} {:>5} {:>5} {:>6} {:>7} {:>6} {:>5} {:>4} {:>5} {:>22} {:>18}  {}",
            r.scenario,
            r.sent,
            r.handled_pct,
            format!("{}/{}", r.poisoned.1, r.poisoned.0),
            r.lost,
            r.duplicated,
            r.reexecuted,
            r.out_of_order,
            r.failed,
            r.retried,
            r.interrupted,
            r.containers,
            r.run_tasks,
            r.kills + r.stops,
            format!("{}/{}/{} ms", r.email_to_reply_ms[0], r.email_to_reply_ms[1], r.email_to_reply_ms[2]),
            format!("{}/{}/{} ms", r.route_ms[0], r.route_ms[1], r.route_ms[2]),
            if r.ok() { "OK" } else { "FAILED" }
        );
    }
}

/// A self-contained HTML report: the table, a latency histogram and a timeline of commands
/// per container, as inline SVG.
pub(crate) fn html(reports: &[ScenarioReport]) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut body = String::from("<h1>Switchyard load report</h1><table><tr><th>scenario</th><th>sent</th><th>handled</th><th>lost</th><th>duplicated</th><th>re-executed</th><th>out of order</th><th>failed</th><th>retried</th><th>interrupted</th><th>containers</th><th>RunTasks</th><th>email→reply p50/p95/p99</th><th>route p50/p95/p99</th><th></th></tr>");
    for r in reports {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}/{} ms</td><td>{}/{}/{} ms</td><td class=\"{}\">{}</td></tr>",
            esc(&r.scenario), r.sent, r.handled_pct, r.lost, r.duplicated, r.reexecuted, r.out_of_order, r.failed, r.retried, r.interrupted,
            r.containers, r.run_tasks, r.email_to_reply_ms[0], r.email_to_reply_ms[1], r.email_to_reply_ms[2],
            r.route_ms[0], r.route_ms[1], r.route_ms[2], if r.ok() { "ok" } else { "bad" }, if r.ok() { "OK" } else { "FAILED" }
        ));
    }
    body.push_str("</table>");
    for r in reports {
        body.push_str(&format!("<h2>{}</h2>", esc(&r.scenario)));
        // Histogram of email → reply.
        if !r.reply_latencies.is_empty() {
            let max = r.reply_latencies.iter().copied().max().unwrap_or(1).max(1);
            let bins = 30usize;
            let mut counts = vec![0usize; bins];
            for v in &r.reply_latencies {
                counts[((*v as f64 / max as f64) * (bins - 1) as f64) as usize] += 1;
            }
            let top = counts.iter().copied().max().unwrap_or(1).max(1);
            let mut svg = String::from("<svg width=\"640\" height=\"170\" xmlns=\"http://www.w3.org/2000/svg\">");
            for (i, c) in counts.iter().enumerate() {
                let h = 140.0 * *c as f64 / top as f64;
                svg.push_str(&format!("<rect x=\"{}\" y=\"{:.1}\" width=\"19\" height=\"{:.1}\" fill=\"#4a7\"><title>{} replies</title></rect>", 20 + i * 20, 145.0 - h, h, c));
            }
            svg.push_str(&format!("<text x=\"20\" y=\"165\" font-size=\"11\">0 ms</text><text x=\"560\" y=\"165\" font-size=\"11\">{max} ms</text></svg>"));
            body.push_str(&format!("<h3>Email → reply latency ({} replies)</h3>{svg}", r.reply_latencies.len()));
        }
        // Timeline: one lane per container, one bar per command run.
        if !r.timeline.is_empty() {
            let t0 = r.timeline.iter().map(|t| t.2).min().unwrap_or(0);
            let t1 = r.timeline.iter().map(|t| t.3).max().unwrap_or(t0 + 1).max(t0 + 1);
            let mut lanes: Vec<&str> = r.timeline.iter().map(|t| t.0.as_str()).collect();
            lanes.sort_unstable();
            lanes.dedup();
            let height = 20 * lanes.len() + 30;
            let mut svg = format!("<svg width=\"900\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">");
            for (i, lane) in lanes.iter().enumerate() {
                svg.push_str(&format!(
                    "<text x=\"0\" y=\"{}\" font-size=\"10\">{}</text>",
                    20 * i + 14,
                    esc(&lane.chars().take(28).collect::<String>())
                ));
            }
            for (lane, label, st, fin, status) in &r.timeline {
                let y = 20 * lanes.iter().position(|l| l == lane).unwrap_or(0) + 2;
                let x = 180.0 + 700.0 * (st - t0) as f64 / (t1 - t0) as f64;
                let w = (700.0 * (fin.saturating_sub(*st)) as f64 / (t1 - t0) as f64).max(1.0);
                let color = match status.outcome() {
                    Some(Outcome::Succeeded) => "#4a7",
                    Some(Outcome::Interrupted) => "#e93",
                    Some(Outcome::Cancelled) => "#999",
                    _ => "#d33",
                };
                svg.push_str(&format!("<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{color}\"><title>{} {status} {} ms</title></rect>", esc(label), fin.saturating_sub(*st)));
            }
            svg.push_str(&format!("<text x=\"180\" y=\"{}\" font-size=\"11\">0 s</text><text x=\"840\" y=\"{}\" font-size=\"11\">{:.1} s</text></svg>", height - 4, height - 4, (t1 - t0) as f64 / 1000.0));
            body.push_str(&format!("<h3>Commands per container (green succeeded, orange interrupted, grey cancelled, red failed)</h3>{svg}"));
        }
    }
    format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>Switchyard load report</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}.ok{{color:#080}}.bad{{color:#c00;font-weight:bold}}</style></head><body>{body}</body></html>")
}

/// Where `--html` writes by default.
pub(crate) fn default_html(config: &CliConfig) -> PathBuf {
    config.data_dir.join("load-report.html")
}
