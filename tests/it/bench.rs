//! The benchmark's driver (`scripts/bench.py`, which `scripts/bench` runs on the release
//! binary) run small on the test binary: its proxy counts what the binary counts, delays
//! what it says it delays, and the read and apply costs stay within the targets
//! (requests and rounds; wall times depend on the machine, so they are not tested here).

use std::process::Command;

use crate::support::repo_file;

#[test]
fn the_benchmark_measures_what_the_binary_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("bench.json");
    let out = Command::new(repo_file(".venv/bin/python"))
        .arg(repo_file("scripts/bench.py"))
        .args(["--bin", env!("CARGO_BIN_EXE_reconcile"), "--profile", "dev"])
        .args([
            "--repeat", "1", "--stacks", "1,3", "--delay", "20ms", "--out",
        ])
        .arg(&out_file)
        .output()
        .expect("scripts/bench.py runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(doc["delay_ms"], 20.0);
    let scenarios = doc["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plan-example", "apply-empty", "plan-1", "plan-3"]);
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        assert!(
            stdout.contains(&format!("| {name} |")),
            "{name} not in the table"
        );
        let (requests, rounds, chain) = (
            s["requests"].as_u64().unwrap(),
            s["rounds"].as_u64().unwrap(),
            s["chain"].as_u64().unwrap(),
        );
        // Each round waits for the one before, so the proxy sees at least that many
        // requests one after another, each held for the delay.
        assert!(rounds >= 1 && chain >= rounds, "{name}: {s}");
        assert!(
            s["wall_ms"].as_f64().unwrap() >= 20.0 * chain as f64,
            "{name}: the proxy did not hold the requests: {s}"
        );
        if name.starts_with("plan-") {
            // The proxy saw exactly the requests the plan says it made.
            assert_eq!(s["binary_requests"].as_u64(), Some(requests), "{name}: {s}");
        }
        assert!(s["peak_mib"].as_f64().unwrap() > 0.0, "{name}: {s}");
    }
    let by = |n: &str| scenarios.iter().find(|s| s["name"] == n).unwrap();
    let example = by("plan-example");
    assert!(example["requests"].as_u64() <= Some(12), "{example}");
    assert!(example["rounds"].as_u64() <= Some(3), "{example}");
    let apply = by("apply-empty");
    assert!(apply["rounds"].as_u64() <= Some(8), "{apply}");
    assert!(apply["executor_requests"].as_u64() < apply["requests"].as_u64());
    let three = by("plan-3");
    assert_eq!(three["stacks"], 3);
    assert!(three["rounds"].as_u64() <= Some(4), "{three}");
    assert!(three["requests"].as_u64().unwrap() < 8 * 3, "{three}");
}
