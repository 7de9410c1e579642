//! `switchyard load` in its short form (issue 11): every scenario of the seed suite on the
//! local runtime — real binaries, the emulator, real git — then a chaos pass with worker
//! kills, stops, duplicate deliveries, poison messages and injected AWS faults. Counts are
//! small so the suite cannot rot; the full sizes run in `make bench`.

use std::process::Command;

fn load(args: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    let worker = switchyard_tests::worker_binary()?;
    let cli = worker.with_file_name("switchyard");
    anyhow::ensure!(cli.exists(), "{} not built: run `make test`", cli.display());
    let data = switchyard_tests::scratch_dir("load")?;
    let out = Command::new(&cli)
        .arg("load")
        .args(args)
        .args(["--short", "--json"])
        .env("SWITCHYARD_DATA_DIR", &data)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reports: Vec<serde_json::Value> = serde_json::from_str(stdout.lines().last().unwrap_or("[]"))
        .map_err(|e| anyhow::anyhow!("no JSON report ({e})\nstdout:\n{stdout}\nstderr:\n{stderr}"))?;
    assert!(data.join("load-report.html").exists(), "HTML report written");
    let _ = std::fs::remove_dir_all(&data);
    // Straight to stderr (not the captured `println!`): `make test` shows the figures.
    use std::io::Write;
    for r in &reports {
        let _ = writeln!(std::io::stderr(), "load {}: {r}", r["scenario"]);
    }
    assert!(out.status.success(), "stderr:\n{stderr}");
    Ok(reports)
}

fn check(r: &serde_json::Value, zeros: &[&str]) {
    let n = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(r["handled_pct"].as_f64(), Some(100.0), "{r}");
    for zero in zeros {
        assert_eq!(n(zero), 0, "{zero}: {r}");
    }
    assert_eq!(r["expectation_met"].as_bool(), Some(true), "{r}");
}

// One test, two runs in sequence: each starts its own runtime and workers, and two at once
// would measure the machine, not the system.
#[test]
fn every_scenario_and_a_chaos_pass_handle_everything_once_and_in_order() -> anyhow::Result<()> {
    let reports = load(&["seed", "burst", "concurrent", "fifo", "sustained"])?;
    assert_eq!(reports.len(), 5);
    for r in &reports {
        check(r, &["lost", "duplicated", "out_of_order", "failed", "last_not_succeeded"]);
    }
    // seed: one user, 10 sessions over 3 projects ⇒ exactly 3 containers and 3 launches
    assert_eq!((reports[0]["containers"].as_u64(), reports[0]["run_tasks"].as_u64()), (Some(3), Some(3)));

    // THEN under chaos: kills, stops, duplicate deliveries, poison messages (released unread
    // by the workers until SQS sets them aside in the DLQ) and 2 % AWS faults (half refused
    // before the service, half executed with the response lost; the SDK retries them)
    let reports = load(&[
        "concurrent",
        "--kill-workers",
        "2",
        "--stop-workers",
        "2",
        "--duplicates",
        "0.2",
        "--poison",
        "0.1",
        "--aws-faults",
        "0.02",
    ])?;
    check(&reports[0], &["lost", "duplicated", "out_of_order", "failed", "last_not_succeeded"]);
    // A job may run to its end again only after a SIGKILL between its end and its recorded
    // outcome (at most each of the killed worker's 4 jobs); its answer is still sent once.
    let kills = reports[0]["kills"].as_u64().unwrap_or(0);
    assert!(reports[0]["reexecuted"].as_u64().is_some_and(|n| n <= kills * 4), "{}", reports[0]);
    // Every poisoned instruction never started and was answered once, failed (dlq).
    let poisoned = &reports[0]["poisoned"];
    assert!(poisoned[0].as_u64().unwrap_or(0) > 0 && poisoned[0] == poisoned[1], "poisoned: {poisoned}");
    let injected = &reports[0]["aws_faults_injected"];
    assert!(
        injected[0].as_u64().unwrap_or(0) + injected[1].as_u64().unwrap_or(0) > 0,
        "faults were injected: {injected}"
    );
    assert!(reports[0]["kills"].as_u64().unwrap_or(0) + reports[0]["stops"].as_u64().unwrap_or(0) > 0);
    Ok(())
}
