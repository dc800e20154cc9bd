//! Shared test support: running the real binary and locating the repository's files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where Cargo.toml is).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn repo_file(rel: &str) -> PathBuf {
    repo().join(rel)
}

/// Runs the real `reconcile` binary with `args`, without a terminal.
pub fn reconcile(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reconcile"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("the reconcile binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails the test if the process panicked or died from a signal.
pub fn assert_no_panic(o: &Output, what: &str) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked") && o.status.code().is_some(),
        "{what}: the binary crashed\n{err}"
    );
}

/// Exit code, stdout and stderr of a run, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The desired model of a manifest file (which must be valid).
pub fn desired(path: &Path) -> reconcile::model::Desired {
    reconcile::model::Desired::from_manifest(
        &reconcile::manifest::load(path).expect("valid manifest"),
    )
}

/// The manifest at `manifest` with `edit` applied, written next to it under `name`.
pub fn edited(manifest: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    edit(&mut v);
    let p = manifest.with_file_name(name);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    p
}
