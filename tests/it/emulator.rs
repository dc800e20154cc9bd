//! A private moto server per test: started on a free loopback port by the project's own
//! scripts, seeded on demand, stopped when the value is dropped.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::support::repo_file;

pub struct Emulator {
    dir: tempfile::TempDir,
    pub url: String,
}

/// The article's starting point, seeded: the manifest with real ids, and every id created.
pub struct Seeded {
    pub manifest: PathBuf,
    pub ids: serde_json::Value,
}

impl Emulator {
    pub fn start() -> Emulator {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = Command::new(repo_file("scripts/emulator-start"))
            .arg(dir.path())
            .output()
            .expect("scripts/emulator-start runs");
        assert!(
            out.status.success(),
            "the emulator did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Emulator { dir, url }
    }

    /// Seeds the article's starting point; `extra` goes to scripts/seed.py.
    pub fn seed(&self, extra: &[&str]) -> Seeded {
        let manifest = self.dir.path().join("site.json");
        let ids = self.dir.path().join("ids.json");
        let out = Command::new(repo_file("scripts/seed.py"))
            .args(["--endpoint", &self.url, "--out"])
            .arg(&manifest)
            .arg("--ids-out")
            .arg(&ids)
            .args(extra)
            .output()
            .expect("scripts/seed.py runs");
        assert!(
            out.status.success(),
            "seeding failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids = serde_json::from_str(&std::fs::read_to_string(ids).unwrap()).unwrap();
        Seeded { manifest, ids }
    }

    /// Runs the real binary against this emulator, without a terminal.
    pub fn reconcile(&self, args: &[&str]) -> Output {
        self.reconcile_at(&self.url, args)
    }

    /// Runs the real binary against `endpoint` (a proxy in front of this emulator).
    pub fn reconcile_at(&self, endpoint: &str, args: &[&str]) -> Output {
        command(endpoint, args)
            .output()
            .expect("the reconcile binary runs")
    }
}

/// The real binary set up for an emulator (or a proxy) at `endpoint`, without a terminal.
pub fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reconcile"));
    c.args(args)
        .current_dir(crate::support::repo())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1")
        .env_remove("AWS_PROFILE");
    c
}

impl Emulator {}

impl Emulator {
    /// Runs Python `code` with boto3 clients `ec2`, `elb`, `r53` on this emulator: test-side
    /// changes made behind the tool's back (drift, a stopped instance).
    pub fn boto(&self, code: &str) {
        let script = format!(
            "import boto3\nkw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nec2 = boto3.client('ec2', **kw)\nelb = boto3.client('elbv2', **kw)\nr53 = boto3.client('route53', **kw)\n{code}\n",
            self.url
        );
        let out = Command::new(repo_file(".venv/bin/python"))
            .args(["-c", &script])
            .output()
            .expect("the venv's python runs");
        assert!(
            out.status.success(),
            "boto3 script failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = Command::new(repo_file("scripts/emulator-stop"))
            .arg(self.dir.path())
            .output();
    }
}
