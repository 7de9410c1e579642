//! Git helpers for the demo and the benchmarks: a sample project as a bare remote.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Runs git in `dir`.
pub(crate) fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Switchyard Demo", "-c", "user.email=demo@localhost", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A bare repository `remote.git` under `root` with a sample site committed on `main`.
pub(crate) fn bare_remote(root: &Path) -> anyhow::Result<PathBuf> {
    let bare = root.join("remote.git");
    let seed = root.join("seed");
    std::fs::create_dir_all(&seed)?;
    git(root, &["init", "--quiet", "--bare", "-b", "main", &bare.to_string_lossy()])?;
    git(&seed, &["init", "--quiet", "-b", "main"])?;
    std::fs::write(seed.join("index.html"), "<h1 style=\"color: black\">Acme</h1>\n")?;
    std::fs::write(seed.join("README.md"), "# Acme website\n")?;
    git(&seed, &["add", "."])?;
    git(&seed, &["commit", "--quiet", "-m", "initial site"])?;
    git(&seed, &["push", "--quiet", &bare.to_string_lossy(), "main"])?;
    Ok(bare)
}
