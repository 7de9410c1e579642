//! The job runner: the project's command in the session worktree, in its own process
//! group (a shell job: instruction on stdin and in a file; an agent CLI: as an argument and
//! in the file), bounded output, its limits (wall clock, inactivity, cost), and
//! interrupt (SIGINT to the group, grace, then SIGKILL).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::watch;

/// What the job is told about itself.
#[derive(Debug, Clone)]
pub struct JobSpec<'a> {
    /// Who the job runs as and the base of its environment.
    pub identity: &'a crate::identity::JobIdentity,
    /// Its resource limits (applied when it runs as a job user).
    pub limits: Option<&'a crate::identity::JobLimits>,
    /// The project's secrets (environment variables of the job only).
    pub secrets: &'a [(String, String)],
    /// What runs.
    pub program: Program<'a>,
    /// Variables of the job's environment besides the worker's own (an agent's state
    /// directory, its provider's address).
    pub extra_env: &'a [(String, String)],
    /// Stop a job that prints nothing for this long.
    pub inactivity: Option<Duration>,
    /// Instruction (on stdin).
    pub instruction: &'a str,
    /// The same instruction in a file (`SWITCHYARD_INSTRUCTION_FILE`): an environment string
    /// is capped at 128 KiB by Linux (`MAX_ARG_STRLEN`), a file is not.
    pub instruction_file: &'a Path,
    /// The email's attachments, relative to the worktree (`SWITCHYARD_ATTACHMENTS`, one
    /// per line).
    pub attachments: &'a [String],
    /// Session id.
    pub session: &'a str,
    /// Command id.
    pub command_id: &'a str,
    /// Branch.
    pub branch: &'a str,
    /// Maximum run time.
    pub max_run: Duration,
    /// SIGINT → SIGKILL grace.
    pub grace: Duration,
    /// Output bytes kept (tail).
    pub max_output: usize,
}

use switchyard_core::agent::Limit;
pub use switchyard_core::plan::JobEnd;

/// What a job runs.
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    /// The project's `job_command`, with `sh -c`.
    Shell(&'a str),
    /// A coding agent CLI: the executable and its arguments, no shell.
    Exec(&'a str, &'a [String]),
}

/// Longest output line handed to the line reader (a longer one is cut there).
const MAX_LINE: usize = 4 * 1024 * 1024;

/// Splits a stream's chunks into lines for the reader; `true` from the reader stops the job.
struct Lines {
    partial: [Vec<u8>; 2],
}

impl Lines {
    fn feed(&mut self, stream: usize, chunk: &[u8], reader: &mut (dyn FnMut(&str) -> bool + Send)) -> bool {
        let buf = &mut self.partial[stream];
        let mut stop = false;
        for b in chunk {
            if *b == b'\n' {
                stop |= reader(&String::from_utf8_lossy(buf));
                buf.clear();
            } else if buf.len() < MAX_LINE {
                buf.push(*b);
            }
        }
        stop
    }

    fn flush(&mut self, reader: &mut (dyn FnMut(&str) -> bool + Send)) {
        for buf in &mut self.partial {
            if !buf.is_empty() {
                reader(&String::from_utf8_lossy(buf));
                buf.clear();
            }
        }
    }
}

/// The result of a job.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// How it ended.
    pub end: JobEnd,
    /// The tail of stdout and stderr, interleaved by arrival.
    pub output: String,
    /// Spawn to exit.
    pub elapsed: Duration,
}

/// A job could not be started.
#[derive(Debug, thiserror::Error)]
#[error("job could not start: {0}")]
pub struct SpawnError(#[from] pub std::io::Error);

fn signal_group(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The group may already be gone; nothing to do then.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// Runs a job until it exits, hits a limit, or `interrupt` turns true. Every line of its
/// output goes to `reader`, which stops the job (cost cap) by answering `true`.
pub async fn run(
    spec: &JobSpec<'_>,
    dir: &Path,
    mut interrupt: watch::Receiver<bool>,
    reader: &mut (dyn FnMut(&str) -> bool + Send),
) -> Result<JobResult, SpawnError> {
    let mut vars: Vec<(&str, String)> = vec![
        ("SWITCHYARD_INSTRUCTION_FILE", spec.instruction_file.to_string_lossy().into_owned()),
        ("SWITCHYARD_SESSION_ID", spec.session.to_string()),
        ("SWITCHYARD_COMMAND_ID", spec.command_id.to_string()),
        ("SWITCHYARD_BRANCH", spec.branch.to_string()),
        ("SWITCHYARD_ATTACHMENTS", spec.attachments.join("\n")),
    ];
    vars.extend(spec.extra_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
    vars.extend(spec.secrets.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let env = spec.identity.environment(&vars);
    let (program, args): (&str, Vec<String>) = match spec.program {
        Program::Shell(command) => ("sh", vec!["-c".into(), command.into()]),
        Program::Exec(program, args) => (program, args.to_vec()),
    };
    // Limits are set by `prlimit` as the job user, before the program runs (soft and hard:
    // the job cannot raise them). An isolated worker does not start without `prlimit`.
    let limited = spec.limits.filter(|_| spec.identity.ids.is_some());
    let mut cmd = match limited {
        Some(limits) => {
            let mut c = Command::new(crate::identity::PRLIMIT);
            c.args(limits.wrap(program, &args));
            c
        }
        None => {
            let mut c = Command::new(program);
            c.args(&args);
            c
        }
    };
    // Nothing of the worker's environment reaches the job but the allow-list.
    cmd.current_dir(dir).env_clear().envs(env);
    if let Some((uid, gid)) = spec.identity.ids {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    // A shell job reads the instruction on stdin; an agent gets it as an argument (a CLI
    // that also reads stdin would see it twice).
    let stdin = match spec.program {
        Program::Shell(_) => Stdio::piped(),
        Program::Exec(..) => Stdio::null(),
    };
    let mut child =
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true).spawn()?;
    let spawned = tokio::time::Instant::now();
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        let text = spec.instruction.to_string();
        tokio::spawn(async move {
            // A job that does not read stdin closes it; that is fine.
            let _ = stdin.write_all(text.as_bytes()).await;
        });
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Vec<u8>)>(64);
    for (stream, mut pipe) in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|p| Box::new(p) as _),
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(i, p)| p.map(|p| (i, p)))
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 || tx.send((stream, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let max = spec.max_output.max(1024);
    let mut output: Vec<u8> = Vec::new();
    let keep = |chunk: &[u8], output: &mut Vec<u8>| {
        output.extend_from_slice(chunk);
        if output.len() > max {
            let cut = output.len() - max;
            output.drain(..cut);
        }
    };
    let mut lines = Lines { partial: [Vec::new(), Vec::new()] };
    let deadline = tokio::time::sleep(spec.max_run);
    tokio::pin!(deadline);
    // Far in the future when there is no inactivity limit.
    let quiet_for = spec.inactivity.unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let quiet = tokio::time::sleep(quiet_for);
    tokio::pin!(quiet);
    let mut ending: Option<JobEnd> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let stop_for = |end: JobEnd, ending: &mut Option<JobEnd>, kill_at: &mut Option<tokio::time::Instant>| {
        *ending = Some(end);
        signal_group(pid, Signal::SIGINT);
        *kill_at = Some(tokio::time::Instant::now() + spec.grace);
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            Some((stream, chunk)) = rx.recv() => {
                keep(&chunk, &mut output);
                quiet.as_mut().reset(tokio::time::Instant::now() + quiet_for);
                if lines.feed(stream, &chunk, reader) && ending.is_none() {
                    stop_for(JobEnd::Limit(Limit::Cost), &mut ending, &mut kill_at);
                }
            }
            _ = &mut quiet, if ending.is_none() => stop_for(JobEnd::Limit(Limit::Inactivity), &mut ending, &mut kill_at),
            changed = interrupt.changed(), if ending.is_none() => {
                if changed.is_err() || *interrupt.borrow() {
                    ending = Some(JobEnd::Interrupted);
                    signal_group(pid, Signal::SIGINT);
                    kill_at = Some(tokio::time::Instant::now() + spec.grace);
                }
            }
            _ = &mut deadline, if ending.is_none() => stop_for(JobEnd::Limit(Limit::WallClock), &mut ending, &mut kill_at),
            _ = async { if let Some(t) = kill_at { tokio::time::sleep_until(t).await } else { std::future::pending().await } } => {
                signal_group(pid, Signal::SIGKILL);
                kill_at = None;
            }
        }
    };
    // Whatever the pipes still hold (bounded: the group is gone).
    while let Ok(Some((stream, chunk))) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        keep(&chunk, &mut output);
        lines.feed(stream, &chunk, reader);
    }
    lines.flush(reader);
    // Children of the job that outlived it must not keep writing to the worktree.
    signal_group(pid, Signal::SIGKILL);
    let end = ending.unwrap_or(JobEnd::Exited(status.and_then(|s| s.code())));
    Ok(JobResult { end, output: String::from_utf8_lossy(&output).into_owned(), elapsed: spawned.elapsed() })
}
