//! A private moto server per test: started on a free loopback port by the project's own
//! scripts, seeded on demand, stopped when the value is dropped.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::support::repo_file;

pub struct Emulator {
    dir: tempfile::TempDir,
    /// Where the tool is pointed: moto, or the AWS-like layer in front of it.
    pub url: String,
    /// With the AWS-like layer: its oracle port, which shows what AWS would show (load
    /// balancers provisioning, targets initial) without latency, throttling or stale
    /// answers. Seeding, test-side changes and the availability checker go through it.
    pub oracle: Option<String>,
}

/// The AWS-like layer's timings in tests: AWS's waits scaled down to seconds (a load
/// balancer provisioning 2 s; a target initial for interval × threshold × 0.05, 3 s for
/// the example's 30 s × 2; draining 300 s × 0.01; Route53 PENDING 1 s; a new resource
/// unknown for 1 s; a deleted load balancer's interfaces holding its groups for 2 s).
/// Rate limits and latency (5-60 ms a call) are the layer's defaults.
pub const AWS_LIKE_TIMINGS: &[&str] = &[
    "--provisioning",
    "2",
    "--health-scale",
    "0.05",
    "--draining-scale",
    "0.01",
    "--route53-pending",
    "1",
    "--consistency",
    "1",
    "--eni-linger",
    "2",
];

/// Starts an emulator in a new private folder with scripts/emulator-start (`--aws-like`
/// with `layer` arguments when there are any): the folder and the URL it printed.
fn started(layer: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut start = Command::new(repo_file("scripts/emulator-start"));
    if layer.is_empty() {
        start.arg(dir.path());
    } else {
        start
            .arg("--aws-like")
            .arg(dir.path())
            .arg("--")
            .args(layer);
    }
    let out = start.output().expect("scripts/emulator-start runs");
    assert!(
        out.status.success(),
        "the emulator did not start:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (dir, url)
}

/// The article's starting point, seeded: the manifest with real ids, and every id created.
pub struct Seeded {
    pub manifest: PathBuf,
    pub ids: serde_json::Value,
}

/// Each AWS-like layer's oracle, by the layer's URL: a checker handed the URL the tool
/// talks to reads what AWS would show through the oracle instead.
fn oracles() -> &'static std::sync::Mutex<std::collections::HashMap<String, String>> {
    static ORACLES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, String>>,
    > = std::sync::OnceLock::new();
    ORACLES.get_or_init(Default::default)
}

/// Where a checker should read the state behind `url`: the oracle of an AWS-like layer,
/// else `url` itself.
pub fn reading_url(url: &str) -> String {
    oracles()
        .lock()
        .unwrap()
        .get(url)
        .cloned()
        .unwrap_or_else(|| url.to_owned())
}

impl Emulator {
    /// A private emulator: moto, or, with `RECONCILE_EMULATOR=aws-like` in the environment
    /// (`scripts/test --aws-like`), moto behind the AWS-like layer, latency seeded by
    /// `RECONCILE_EMULATOR_SEED` (default 1): the whole suite against AWS as it behaves.
    pub fn start() -> Emulator {
        if std::env::var("RECONCILE_EMULATOR").is_ok_and(|v| v == "aws-like") {
            let seed = std::env::var("RECONCILE_EMULATOR_SEED")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            return Emulator::aws_like(seed, &[]);
        }
        Emulator::moto()
    }

    /// A private moto server, whatever the environment says.
    pub fn moto() -> Emulator {
        let (dir, url) = started(&[]);
        Emulator {
            dir,
            url,
            oracle: None,
        }
    }

    /// moto behind the AWS-like layer (scripts/aws-like.py), its latencies drawn from
    /// `seed`, with the test timings ([`AWS_LIKE_TIMINGS`]) and `extra` layer arguments.
    pub fn aws_like(seed: u64, extra: &[&str]) -> Emulator {
        let seed = seed.to_string();
        let mut layer = vec!["--seed", seed.as_str()];
        layer.extend_from_slice(AWS_LIKE_TIMINGS);
        layer.extend_from_slice(extra);
        let (dir, url) = started(&layer);
        let oracle = std::fs::read_to_string(dir.path().join("aws-like.oracle"))
            .expect("the layer records its oracle URL")
            .trim()
            .to_owned();
        oracles()
            .lock()
            .unwrap()
            .insert(url.clone(), oracle.clone());
        Emulator {
            dir,
            url,
            oracle: Some(oracle),
        }
    }

    /// Where the test itself reads and writes: the oracle with the AWS-like layer, else
    /// moto.
    pub fn direct(&self) -> &str {
        self.oracle.as_deref().unwrap_or(&self.url)
    }

    /// The AWS-like layer's counts (requests, throttled, refused, by operation).
    pub fn layer_stats(&self) -> serde_json::Value {
        serde_json::from_slice(&self.layer("stats", None)).expect("the layer's stats are JSON")
    }

    /// Changes the AWS-like layer's settings (`{"check_url": ...}`, timings).
    pub fn layer_config(&self, config: &serde_json::Value) {
        self.layer("config", Some(&config.to_string()));
    }

    /// One request to the AWS-like layer's admin endpoint `/_aws_like/<path>` (a POST of
    /// `body` when given); its answer.
    fn layer(&self, path: &str, body: Option<&str>) -> Vec<u8> {
        let out = Command::new(repo_file(".venv/bin/python"))
            .args([
                "-c",
                "import sys, urllib.request\n\
                 data = sys.argv[3].encode() if len(sys.argv) > 3 else None\n\
                 r = urllib.request.Request(sys.argv[1] + '/_aws_like/' + sys.argv[2], data=data, headers={'Content-Type': 'application/json'})\n\
                 sys.stdout.write(urllib.request.urlopen(r).read().decode())",
                &self.url,
                path,
            ])
            .args(body)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "the layer refused {path} {body:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Seeds the article's starting point; `extra` goes to scripts/seed.py.
    pub fn seed(&self, extra: &[&str]) -> Seeded {
        let manifest = self.dir.path().join("site.json");
        let ids = self.dir.path().join("ids.json");
        let out = Command::new(repo_file("scripts/seed.py"))
            .args(["--endpoint", self.direct(), "--out"])
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
        // The emulator under load (twenty stacks, every change checked under one lock)
        // answers far slower than AWS: the tests give each call the time it needs.
        .env("RECONCILE_CALL_TIMEOUT", "120s")
        // A change reaches every server of the emulator's Route53 at once (the AWS-like
        // layer's PENDING lasts 1 s): a run killed before its change was in sync leaves a
        // 3 s allowance for the next run to add, not AWS's 60 s.
        .env("RECONCILE_PROPAGATION_ALLOWANCE", "3s")
        .env_remove("AWS_PROFILE");
    c
}

impl Emulator {}

impl Emulator {
    /// Runs Python `code` with boto3 clients `ec2`, `elb`, `r53` on this emulator: test-side
    /// changes made behind the tool's back (drift, a stopped instance).
    pub fn boto(&self, code: &str) {
        self.boto_output(code);
    }

    /// Runs `code` as [`Emulator::boto`] does and returns what it printed.
    pub fn boto_output(&self, code: &str) -> String {
        let script = format!(
            "import boto3\nkw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nec2 = boto3.client('ec2', **kw)\nelb = boto3.client('elbv2', **kw)\nr53 = boto3.client('route53', **kw)\n{code}\n",
            self.direct()
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Forget the oracle before the layer stops: once its port is free, a later emulator
        // may be given the same URL, and a checker must then read that one, not this
        // stopped layer's oracle (a refused connection on every check).
        oracles().lock().unwrap().remove(&self.url);
        let _ = Command::new(repo_file("scripts/emulator-stop"))
            .arg(self.dir.path())
            .output();
    }
}

/// A stopped AWS-like layer leaves no oracle behind: the kernel hands its freed port to a
/// later emulator, and a checker of that one must read it, not the stopped oracle (CI saw
/// every check of a moto test refused that way).
#[test]
fn a_stopped_layer_leaves_no_oracle_behind() {
    let emu = Emulator::aws_like(1, &[]);
    let url = emu.url.clone();
    assert_ne!(
        reading_url(&url),
        url,
        "the layer's checker reads its oracle"
    );
    drop(emu);
    assert_eq!(reading_url(&url), url);
}
