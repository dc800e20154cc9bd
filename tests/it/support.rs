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

/// Every line of `stdout` is an event of `apply --json` valid under the schema that
/// `reconcile schema --events` prints (checked by Python's jsonschema, from the venv).
/// The events of an `apply --json` run's standard output, one per line; a line that is not
/// JSON fails the test.
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event ({e}): {l}")))
        .collect()
}

pub fn assert_events_valid(stdout: &str) {
    let schema = std::process::Command::new(env!("CARGO_BIN_EXE_reconcile"))
        .args(["schema", "--events"])
        .output()
        .expect("the binary runs");
    assert!(schema.status.success());
    let check = "import json, sys, jsonschema\n\
                 schema = json.loads(open(sys.argv[1]).read())\n\
                 lines = [l for l in sys.stdin.read().splitlines()]\n\
                 assert lines, 'no events'\n\
                 for l in lines:\n    jsonschema.validate(json.loads(l), schema)\n";
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("events.schema.json");
    std::fs::write(&file, &schema.stdout).expect("written");
    let mut child = std::process::Command::new(repo_file(".venv/bin/python"))
        .args(["-c", check, file.to_str().unwrap_or_default()])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(stdout.as_bytes()).expect("written");
    }
    let out = child.wait_with_output().expect("python ends");
    assert!(
        out.status.success(),
        "events not valid under the schema:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
}
