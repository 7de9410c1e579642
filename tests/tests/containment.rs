//! Jobs are contained processes (crates/worker/src/identity.rs): real workers, as root, with
//! jobs as the slot users. A hostile job (the agent runs whatever a prompt injection asks)
//! leaves no process behind and cannot reach another session's trees.
//!
//! Root only: without root the worker cannot switch users and the local launcher runs jobs
//! unisolated (development), so there is nothing to test; `make test` runs as root here and
//! in CI.

use switchyard_core::messages::Outcome;
use switchyard_core::project::InterruptScope;
use switchyard_tests::unique;
use switchyard_tests::world::{world, ANN};

const TO: &str = "acme.site@in.example.com";

fn root() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("skipped: not root (jobs cannot be isolated without root)");
    }
    root
}

/// Whether `pid` is a live process: a zombie waiting for its reaper is not, unless it has
/// other threads (its main thread exited while they run).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        let field = |n: &str| s.lines().find_map(|l| l.strip_prefix(n)).map(str::trim).unwrap_or("").to_string();
        !field("State:").starts_with(['Z', 'X']) || field("Threads:").parse::<u32>().unwrap_or(1) > 1
    })
}

#[tokio::test]
async fn a_process_the_job_detached_with_setsid_does_not_outlive_the_job() -> anyhow::Result<()> {
    if !root() {
        return Ok(());
    }
    // GIVEN a job that leaves a process in a session (and process group) of its own, which
    // a kill of the job's process group never reaches
    let job = r#"setsid sh -c 'echo $$ > "$MARKS/survivor-$SWITCHYARD_COMMAND_ID"; exec sleep 300' </dev/null >/dev/null 2>&1 &
        while [ ! -s "$MARKS/survivor-$SWITCHYARD_COMMAND_ID" ]; do sleep 0.05; done; echo left one behind"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Do it.").await?;
    // WHEN the command is answered (its work committed: root has worked in its tree)
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    // THEN the detached process is gone
    let pid: i32 = std::fs::read_to_string(w.marks.join(format!("survivor-{}", r.command_id)))?.trim().parse()?;
    assert!(!alive(pid), "the job's setsid process {pid} outlived it");
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn a_job_cannot_read_another_sessions_worktree() -> anyhow::Result<()> {
    if !root() {
        return Ok(());
    }
    // GIVEN a job that, told `steal:<session>`, reads that session's worktree next door, and
    // otherwise leaves a private file in its own
    let job = r#"i=$(cat "$SWITCHYARD_INSTRUCTION_FILE")
        case "$i" in
          steal:*) s=${i#steal:}; s=${s%%[!a-z0-9-]*}; cat "../$s/private.txt" > "$MARKS/stolen-$SWITCHYARD_COMMAND_ID" 2>/dev/null; echo "tried $s" ;;
          *) echo "ann's draft" > private.txt ;;
        esac"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let first = w.send(ANN, TO, &format!("{}@x", unique()), "Write the draft.").await?;
    assert_eq!(w.responses(&first, 1).await?[0].outcome, Outcome::Succeeded);
    // WHEN a job of another session of the same container (same person, same project: the
    // same worker) tries to read it
    let thief = w.send(ANN, TO, &format!("{}@x", unique()), &format!("steal:{}", first.session)).await?;
    assert_ne!(thief.session, first.session);
    let rs = w.responses(&thief, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    assert!(rs[0].summary.contains(&format!("tried {}", first.session)), "{:?}", rs[0].summary);
    // THEN it read nothing: the other worktree is root's (taken back after its job) and `0700`
    let stolen = std::fs::read_to_string(w.marks.join(format!("stolen-{}", thief.command_id)))?;
    assert!(stolen.is_empty(), "a job read another session's worktree: {stolen:?}");
    w.stop_all().await;
    Ok(())
}

#[tokio::test]
async fn a_process_whose_main_thread_exited_does_not_outlive_the_job() -> anyhow::Result<()> {
    if !root() || !std::path::Path::new("/usr/bin/python3").exists() || std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: needs root, /usr/bin/python3 and x86_64 (SYS_exit = 60)");
        return Ok(());
    }
    // GIVEN a job that leaves a detached process whose main thread exits (SYS_exit, not
    // exit_group) while another thread runs on: /proc shows it as a zombie, and it is not
    let job = r#"setsid /usr/bin/python3 -c '
import ctypes, os, threading, time
def spin():
    while True:
        time.sleep(0.05)
threading.Thread(target=spin).start()
open("$MARKS/zombie-" + os.environ["SWITCHYARD_COMMAND_ID"], "w").write(str(os.getpid()))
ctypes.CDLL(None).syscall(60, 0)
' </dev/null >/dev/null 2>&1 &
        while [ ! -s "$MARKS/zombie-$SWITCHYARD_COMMAND_ID" ]; do sleep 0.05; done; echo left one behind"#;
    let mut w = world(job, InterruptScope::Session, 600).await?;
    let r = w.send(ANN, TO, &format!("{}@x", unique()), "Do it.").await?;
    let rs = w.responses(&r, 1).await?;
    assert_eq!(rs[0].outcome, Outcome::Succeeded, "{:?}", rs[0]);
    // THEN it is gone, every thread of it
    let pid: i32 = std::fs::read_to_string(w.marks.join(format!("zombie-{}", r.command_id)))?.trim().parse()?;
    assert!(!alive(pid), "the job's process {pid} (main thread exited) outlived it");
    w.stop_all().await;
    Ok(())
}
