//! Finding the pattern binaries, and building them when the tour runs under `cargo run`.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::Command;

/// The directory of the running executable, `deps/` stripped: `target/<profile>/`, where cargo
/// puts every binary of the workspace.
pub fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let mut dir = exe
        .parent()
        .context("the running executable has no directory")?
        .to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// The workspace root (where this crate was built from).
pub fn workspace_dir() -> PathBuf {
    crate::scenario::scenarios_dir()
        .parent()
        .expect("scenarios/ has a parent")
        .to_owned()
}

/// Under `cargo run` (the `CARGO` variable is set), builds every binary of the workspace with the
/// tour's own profile, so the scenarios run fresh binaries next to the tour. Returns whether it
/// built; outside cargo it does nothing.
pub fn build_under_cargo(quiet: bool) -> anyhow::Result<bool> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(false);
    };
    let manifest = workspace_dir().join("Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--workspace", "--bins", "--manifest-path"])
        .arg(&manifest);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    if quiet {
        cmd.arg("--quiet");
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", PathBuf::from(&cargo).display()))?;
    if !status.success() {
        bail!("`cargo build --workspace --bins` failed ({status})");
    }
    Ok(true)
}
