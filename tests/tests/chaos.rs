//! The chaos run of issue 8 on the local runtime (real binaries, the emulator, real git):
//! a burst of follow-ups on several threads with duplicate deliveries while workers are
//! killed (SIGKILL) and stopped (SIGTERM). Bounded: the run gives up after 150 s.

use std::process::Command;

#[test]
fn a_burst_with_duplicates_kills_and_stops_loses_nothing_and_answers_once() -> anyhow::Result<()> {
    let worker = switchyard_tests::worker_binary()?;
    let cli = worker.with_file_name("switchyard");
    anyhow::ensure!(cli.exists(), "{} not built: run `make test`", cli.display());
    let data = switchyard_tests::scratch_dir("chaos")?;
    let out = Command::new(&cli)
        .args(["chaos", "--threads", "6", "--follow-ups", "3", "--duplicates", "0.2", "--kills", "2", "--stops", "2"])
        .args(["--deadline-secs", "150", "--json"])
        .env("SWITCHYARD_DATA_DIR", &data)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .map_err(|e| anyhow::anyhow!("no JSON report ({e})\nstdout:\n{stdout}\nstderr:\n{stderr}"))?;
    let n = |k: &str| report[k].as_u64().unwrap_or(u64::MAX);
    // Straight to stderr (not the captured `println!`): `make test` shows the counts.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "chaos: sent {} (+{} duplicates), commands {}, succeeded {}, interrupted {}, lost {}, stuck {}, failed {}, \
         last not succeeded {}, replies {}, reply mismatches {}, kills {}, stops {}, retried {}",
        n("sent"),
        n("duplicates_sent"),
        n("commands"),
        n("succeeded"),
        n("interrupted"),
        n("lost"),
        n("stuck"),
        n("failed"),
        n("last_not_succeeded"),
        n("replies"),
        n("reply_mismatches"),
        n("kills"),
        n("stops"),
        n("retried")
    );
    // THEN no command lost, none stuck, none failed, every thread's last instruction
    // succeeded, and exactly one reply per command
    assert_eq!(n("sent"), 24);
    assert_eq!(n("commands"), n("sent"), "one command per distinct email: {report}");
    for zero in ["lost", "stuck", "failed", "last_not_succeeded", "reply_mismatches"] {
        assert_eq!(n(zero), 0, "{zero}: {report}");
    }
    assert_eq!(n("replies"), n("commands"), "{report}");
    assert!(n("kills") + n("stops") > 0, "no fault was injected: {report}");
    assert!(out.status.success(), "stderr:\n{stderr}");
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
