//! `switchyard demo` end to end: the real binaries, the emulator, real git.

use std::process::Command;

#[test]
fn demo_exits_zero_and_shows_every_step() -> anyhow::Result<()> {
    let worker = switchyard_tests::worker_binary()?;
    let cli = worker.with_file_name("switchyard");
    anyhow::ensure!(cli.exists(), "{} not built: run `make test`", cli.display());
    let data = switchyard_tests::scratch_dir("demo")?;
    let out = Command::new(&cli).arg("demo").env("SWITCHYARD_DATA_DIR", &data).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    for expected in [
        "email 1: Ann asks for a blue header",
        "email 2: Ann replies in the thread",
        "email 3: Bob asks for a pricing table",
        "email 5: Ann changes her mind mid-job",
        "long job interrupted, partial work committed: interrupted",
        "API: POST /v1/sessions",
        "→ 404",
        "== Sessions, commands and outcomes",
        "Re: Homepage header",
        "Interrupted: your newer instruction",
        "switchyard: interrupted",
        "== git log per branch",
        "Demo complete.",
    ] {
        assert!(stdout.contains(expected), "demo output lacks {expected:?}\n{stdout}");
    }
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
