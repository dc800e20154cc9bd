//! The command line as a contract for people and pipelines: what happens when the output
//! is closed, the endpoint never answers, or Ctrl-C comes at the confirmation question.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::emulator::{command, Emulator};
use crate::support::{repo, text};

/// `apply --yes | head -3`: the reader goes away after three lines. Nothing panics, the
/// run goes on to its end (its progress lost), and the lock is released.
#[test]
fn a_closed_output_neither_panics_nor_leaves_the_lock() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = s.manifest.to_str().unwrap();
    let mut child = command(&emu.url, &["apply", "-f", m, "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    {
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        for _ in 0..3 {
            lines.next();
        }
        // Dropped here: the pipe is closed with the run still going.
    }
    let out = child.wait_with_output().expect("the run ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{:?}: {err}",
        out.status
    );
    emu.boto(
        "assert not [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'].startswith('reconcile-lock-')], 'lock left'",
    );
    // Whatever was done is continued by the next run.
    let out = emu.reconcile(&["apply", "-f", m, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// An endpoint that accepts connections and never answers is an error naming the call
/// within the attempts' timeouts, not a hang.
#[test]
fn a_silent_endpoint_is_an_error_naming_the_call_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let m = repo().join("manifests/site.example.json");
    let t0 = Instant::now();
    let out = command(
        &url,
        &[
            "plan",
            "-f",
            m.to_str().unwrap(),
            "--call-timeout",
            "1s",
            "--max-attempts",
            "2",
        ],
    )
    .output()
    .expect("the binary runs");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("got no answer"), "{err}");
}

/// Runs `reconcile ARGS` on a pseudo-terminal against `url`, types Ctrl-C once `cue` is
/// on screen, and returns the exit code, the seconds from Ctrl-C to the exit, and what the
/// terminal showed.
fn ctrl_c_on_a_terminal(url: &str, args: &[&str], cue: &str) -> (String, f64, String) {
    let argv: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_reconcile"))
        .chain(args.iter().copied())
        .map(|a| format!("{a:?}"))
        .collect();
    let script = format!(
        r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.environ.update(AWS_ENDPOINT_URL="{url}", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", NO_COLOR="1")
    os.environ.pop("AWS_PROFILE", None)
    argv = [{argv}]
    os.execv(argv[0], argv)
seen = b""
def read(until, limit):
    global seen
    end = time.time() + limit
    while until not in seen and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen += chunk
read({cue:?}.encode(), 60)
assert {cue:?}.encode() in seen, seen
t0 = time.time()
os.write(fd, b"\x03")
read(b"\xff", 30)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), round(time.time() - t0, 1))
sys.stdout.write(seen.decode(errors="replace"))
"#,
        argv = argv.join(", "),
    );
    let out = std::process::Command::new(repo().join(".venv/bin/python"))
        .args(["-c", &script])
        .output()
        .expect("python runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut first = said.lines().next().unwrap_or_default().split(' ');
    let code = first.next().unwrap_or_default().to_owned();
    let took: f64 = first.next().unwrap_or_default().parse().unwrap_or(f64::MAX);
    (code, took, said)
}

/// Ctrl-C at "Apply these changes?" (on a pseudo-terminal, as a person would press it)
/// ends the run at once with 130, says nothing was changed, and releases the lock.
#[test]
fn ctrl_c_at_the_question_exits_130_and_releases_the_lock() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = s.manifest.to_str().unwrap();
    let (code, took, said) =
        ctrl_c_on_a_terminal(&emu.url, &["apply", "-f", m], "Only 'yes' is accepted");
    assert_eq!(code, "130", "{said}");
    assert!(took < 10.0, "took {took}s after Ctrl-C: {said}");
    assert!(said.contains("nothing was changed"), "{said}");
    emu.boto(
        "assert not [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'].startswith('reconcile-lock-')], 'lock left'",
    );
}

/// Ctrl-C during the apply's wait for the old TTL (on a pseudo-terminal): the run stops
/// between two calls, releases the lock and exits 130; running it again finishes.
#[test]
fn ctrl_c_mid_apply_on_a_terminal_stops_releases_and_resumes() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "20", "--transition-ttl", "1"]);
    let m = s.manifest.to_str().unwrap();
    let (code, took, said) =
        ctrl_c_on_a_terminal(&emu.url, &["apply", "-f", m, "--yes"], "waiting until");
    assert_eq!(code, "130", "{said}");
    assert!(took < 10.0, "took {took}s after Ctrl-C: {said}");
    assert!(said.contains("interrupted"), "{said}");
    emu.boto(
        "assert not [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'].startswith('reconcile-lock-')], 'lock left'",
    );
    let out = emu.reconcile(&["apply", "-f", m, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// No credentials anywhere in the chain: one error, once, saying what to set.
#[test]
fn missing_credentials_are_one_error_saying_what_to_set() {
    let home = tempfile::tempdir().unwrap();
    let m = repo().join("manifests/site.example.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reconcile"))
        .args(["plan", "-f", m.to_str().unwrap(), "--max-attempts", "1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("no usable AWS credentials").count(), 1, "{err}");
    assert!(err.contains("AWS_PROFILE"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// Completions for each shell and the man pages come from the command line's own
/// definitions: every command is in them.
#[test]
fn completions_and_man_pages_name_every_command() {
    let commands = [
        "validate",
        "plan",
        "apply",
        "init",
        "unlock",
        "schema",
        "backend",
        "completions",
        "man",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let out = crate::support::reconcile(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for c in commands {
            assert!(script.contains(c), "{shell} completions lack {c}");
        }
        assert!(script.contains("detailed-exitcode"), "{shell}: flags too");
    }
    let out = crate::support::reconcile(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unknown shell is a usage error"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::reconcile(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for c in commands {
        let page = std::fs::read_to_string(dir.path().join(format!("reconcile-{c}.1")))
            .unwrap_or_else(|e| panic!("reconcile-{c}.1: {e}"));
        assert!(
            page.starts_with(".ie") || page.contains(".TH"),
            "{c}: {page}"
        );
    }
    let main = std::fs::read_to_string(dir.path().join("reconcile.1")).unwrap();
    assert!(main.contains(".TH reconcile 1"), "{main}");
}

/// Every operation the meter counts in a plan is in the read-only policy, and every one
/// an apply counts in the full one.
#[test]
fn the_iam_policy_covers_every_operation_a_run_sends() {
    let actions = |read_only: bool| -> Vec<String> {
        let mut args = vec!["iam-policy"];
        if read_only {
            args.push("--read-only");
        }
        let out = crate::support::reconcile(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        doc["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    let (read, all) = (actions(true), actions(false));
    let covered =
        |policy: &[String], op: &str| policy.iter().any(|a| a.ends_with(&format!(":{op}")));
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = s.manifest.to_str().unwrap();
    let out = emu.reconcile(&["plan", "-f", m, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a plan document");
    let ops = doc["stats"]["by_operation"]
        .as_object()
        .expect("by_operation");
    assert!(ops.len() >= 5, "{ops:?}");
    for op in ops.keys() {
        assert!(
            covered(&read, op),
            "plan sends {op}, not in the read-only policy"
        );
    }
    let out = emu.reconcile(&["apply", "-f", m, "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut seen = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("an event");
        if let Some(ops) = e["by_operation"].as_object() {
            for op in ops.keys() {
                seen += 1;
                assert!(covered(&all, op), "apply sends {op}, not in the policy");
            }
        }
    }
    assert!(seen >= 10, "only {seen} operations counted");
}

/// `--color always` colours even off a terminal, `never` (the default off one) does not;
/// `--debug` logs each AWS answer with its operation, status and request id on stderr.
#[test]
fn color_and_debug_flags() {
    let emu = Emulator::start();
    let s = emu.seed(&[]);
    let m = s.manifest.to_str().unwrap();
    let out = emu.reconcile(&["plan", "-f", m, "--color", "always"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\x1b["));
    let out = emu.reconcile(&["plan", "-f", m, "--color", "never", "--debug"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\x1b["));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "operation=\"DescribeLoadBalancers\"",
        "status=200",
        "request_id=",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    // Without it, nothing of the kind.
    let out = emu.reconcile(&["plan", "-f", m]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("request_id="));
}
