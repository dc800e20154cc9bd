//! The real binary against AWS as it behaves: moto behind the AWS-like layer
//! (scripts/aws-like.py), which answers slowly and in any order (a seeded latency per
//! call), eventually consistently, within AWS's documented request rates, with AWS's
//! refusals and waits (load balancers provisioning, targets unused then initial, Route53
//! PENDING). After every mutating call, while the layer holds the next back, the
//! availability invariant is checked on what AWS would serve. Each scenario must converge
//! in one apply, with no call throttled: under one latency seed of its own in the default
//! run (the scenarios' seeds spread over 1, 2 and 3), under every seed with
//! `scripts/test --long`.

use std::path::Path;

use crate::emulator::{Emulator, Seeded};
use crate::proxy::Hook;
use crate::support::{desired, edited, text};

/// Latency seeds: each gives other completion orders for calls sent together.
const SEEDS: &[u64] = &[1, 2, 3];

/// The seeds a scenario runs under: `own` in the default run, every one of [`SEEDS`] in
/// the long run (`RECONCILE_LONG=1`, set by `scripts/test --long`).
fn seeds(own: u64) -> Vec<u64> {
    if std::env::var("RECONCILE_LONG").is_ok_and(|v| v == "1") {
        SEEDS.to_vec()
    } else {
        vec![own]
    }
}

fn start(seed: u64) -> (Emulator, Seeded) {
    let emu = Emulator::aws_like(seed, &[]);
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    (emu, s)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the binary through the layer and checks that none of its requests was
/// throttled. Each run starts a second after the one before: a run keeps to AWS's rates
/// on its own, but two processes cannot share their buckets (Route53 allows the account
/// five requests a second, and each run may start with a burst of two); a second run's
/// throttled request would be retried by the SDK, but it is not the run's own doing.
fn run(emu: &Emulator, args: &[&str], what: &str) -> std::process::Output {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = emu.layer_stats()["throttled"].as_u64().unwrap_or(0);
    let out = emu.reconcile(args);
    let stats = emu.layer_stats();
    let throttled: Vec<&serde_json::Value> = stats["calls"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["throttled"] == true).collect())
        .unwrap_or_default();
    assert_eq!(
        stats["throttled"].as_u64().unwrap_or(0),
        before,
        "{what}: requests were throttled: {}; the calls: {throttled:?}\n{}",
        stats["by_service"],
        text(&out)
    );
    out
}

/// One apply of `manifest` under the checker: exit 0, the site served after every call,
/// nothing throttled, and a clean plan right after.
fn apply_checked(emu: &Emulator, manifest: &Path, what: &str) -> Hook {
    let hook = Hook::watch(emu, desired(manifest));
    let out = run(emu, &["apply", "-f", path(manifest), "--yes"], what);
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
    hook.assert_served(what);
    assert!(
        hook.log.lock().unwrap().checks > 0,
        "{what}: no mutating call reached the checker"
    );
    assert_converged(emu, manifest, what);
    hook
}

/// Where `op` first took effect among `ops`.
fn position(ops: &[String], op: &str, seed: u64) -> usize {
    ops.iter()
        .position(|o| o == op)
        .unwrap_or_else(|| panic!("seed {seed}: no {op} in {ops:?}"))
}

fn assert_converged(emu: &Emulator, manifest: &Path, what: &str) {
    let out = run(
        emu,
        &["plan", "-f", path(manifest), "--detailed-exitcode"],
        what,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: not converged:\n{}",
        text(&out)
    );
}

#[test]
fn the_migration_converges_in_one_apply_under_random_latency() {
    for seed in seeds(1) {
        let (emu, s) = start(seed);
        let what = format!("migration, seed {seed}");
        let hook = apply_checked(&emu, &s.manifest, &what);
        let ops = hook.operations();
        let first = |op: &str| ops.iter().position(|o| o == op);
        assert!(
            first("CreateLoadBalancer").is_some() && first("RevokeSecurityGroupIngress").is_some(),
            "{what}: {ops:?}"
        );
    }
}

#[test]
fn an_empty_account_converges_in_one_apply_under_random_latency() {
    for seed in seeds(2) {
        let (emu, s) = start(seed);
        let zone = s.ids["zone_id"].as_str().unwrap().to_owned();
        let ip = s.ids["eip"]["public_ip"].as_str().unwrap().to_owned();
        emu.boto(&format!(
            "r53.change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [{{'Action': 'DELETE', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'A', 'TTL': 3, 'ResourceRecords': [{{'Value': '{ip}'}}]}}}}]}})"
        ));
        let what = format!("empty account, seed {seed}");
        let out = run(&emu, &["apply", "-f", path(&s.manifest), "--yes"], &what);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
        assert_converged(&emu, &s.manifest, &what);
    }
}

#[test]
fn a_target_group_port_change_and_back_keep_the_site_up_under_random_latency() {
    for seed in seeds(3) {
        let (emu, s) = start(seed);
        apply_checked(&emu, &s.manifest, &format!("migration, seed {seed}"));
        let changed = edited(&s.manifest, "port.json", |v| {
            v["target_groups"]["app"]["port"] = 8089.into();
            v["security_groups"]["backend"]["ingress"][0]["ports"] =
                serde_json::json!([80, 8088, 8089]);
        });
        let hook = apply_checked(&emu, &changed, &format!("port change, seed {seed}"));
        let ops = hook.operations();
        assert!(
            ops.iter().any(|o| o == "CreateTargetGroup")
                && ops.iter().any(|o| o == "DeleteTargetGroup"),
            "seed {seed}: {ops:?}"
        );
        apply_checked(&emu, &s.manifest, &format!("port change back, seed {seed}"));
    }
}

#[test]
fn a_load_balancer_group_swap_and_back_keep_the_site_up_under_random_latency() {
    for seed in seeds(1) {
        let (emu, s) = start(seed);
        apply_checked(&emu, &s.manifest, &format!("migration, seed {seed}"));
        // The load balancer moves to a new group "edge" with the same rules; the backend
        // admits it instead of the old one, which goes.
        let swapped = edited(&s.manifest, "swap.json", |v| {
            let groups = v["security_groups"].as_object_mut().unwrap();
            let lb = groups.remove("lb").unwrap();
            groups.insert("edge".into(), lb);
            v["security_groups"]["backend"]["ingress"][0]["from"] = "edge".into();
            v["load_balancer"]["security_groups"] = serde_json::json!(["edge"]);
        });
        let hook = apply_checked(&emu, &swapped, &format!("group swap, seed {seed}"));
        let ops = hook.operations();
        let at = |op: &str| position(&ops, op, seed);
        assert!(
            at("SetSecurityGroups") < at("DeleteSecurityGroup"),
            "{ops:?}"
        );
        apply_checked(&emu, &s.manifest, &format!("group swap back, seed {seed}"));
    }
}

/// Killed right after its k-th mutating call (as the layer applies it, before the answer
/// leaves), then run again: the rerun finishes in one apply, with AWS still settling what
/// the first run created a moment before (stale "not found" answers, groups still in
/// use), the site up throughout, nothing duplicated or left behind.
#[test]
fn a_crash_at_any_point_resumes_in_one_more_apply() {
    for (seed, k) in [(1, 3), (2, 8), (3, 13), (1, 18)] {
        let (emu, s) = start(seed);
        let what = format!("crash after call {k}, seed {seed}");
        let hook = Hook::watch(&emu, desired(&s.manifest));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let child =
            crate::reliability::spawn(&emu.url, &["apply", "-f", path(&s.manifest), "--yes"]);
        *hook.kill_after.lock().unwrap() = Some((k, Some(child.id())));
        let first = child.wait_with_output().unwrap();
        assert_eq!(
            first.status.code(),
            None,
            "{what}: the first run was not killed:\n{}",
            text(&first)
        );
        *hook.kill_after.lock().unwrap() = None;
        let out = run(&emu, &["apply", "-f", path(&s.manifest), "--yes"], &what);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: the rerun: {}",
            text(&out)
        );
        hook.assert_served(&what);
        assert_converged(&emu, &s.manifest, &what);
        crate::reliability::no_duplicates_or_orphans(&emu);
    }
}

/// Twenty stacks of one account applied in one run, all at once: AWS's rates are shared
/// by every stack (load balancers are created ten at once, then one every five seconds),
/// yet none of the run's requests is throttled, every stack converges in that one apply,
/// and every stack's site serves after every call.
#[test]
fn twenty_stacks_converge_in_one_apply_within_the_rates() {
    const STACKS: usize = 20;
    let emu = Emulator::aws_like(4, &[]);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("stacks");
    emu.seed(&[
        "--stacks",
        &STACKS.to_string(),
        "--stacks-dir",
        path(&folder),
    ]);
    let mut manifests: Vec<std::path::PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    manifests.sort();
    assert_eq!(manifests.len(), STACKS);
    let hook = Hook::watch_all(&emu, manifests.iter().map(|m| desired(m)).collect());
    let what = "20 stacks";
    let out = run(
        &emu,
        &[
            "apply",
            "-f",
            path(&folder),
            "--yes",
            "--parallel-stacks",
            "20",
        ],
        what,
    );
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
    hook.assert_served(what);
    assert_converged(&emu, &folder, what);
    let stats = emu.layer_stats();
    eprintln!(
        "{what}: {} requests, {} throttled, by service {}",
        stats["requests"], stats["throttled"], stats["by_service"]
    );
}

/// An internal load balancer made public is replaced: the new one is provisioned and its
/// targets turn healthy (AWS's own pace) before DNS moves to it; the old one goes only once
/// the answers given before the switch have run out, and its groups' interfaces linger.
#[test]
fn a_load_balancer_replacement_keeps_the_site_up_under_random_latency() {
    for seed in seeds(2) {
        let (emu, s) = start(seed);
        let first = crate::apply::internal_first(&s);
        let what = format!("internal first, seed {seed}");
        let out = run(&emu, &["apply", "-f", path(&first), "--yes"], &what);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
        let hook = apply_checked(&emu, &s.manifest, &format!("replacement, seed {seed}"));
        let ops = hook.operations();
        let at = |op: &str| position(&ops, op, seed);
        assert!(
            at("CreateLoadBalancer") < at("DeleteLoadBalancer"),
            "{ops:?}"
        );
    }
}

/// The way back on AWS as it behaves: the migration, then `init --direct` and one apply of
/// its manifest (the load balancer's group refused with DependencyViolation for a while
/// after the load balancer is gone), the site served after every call, both converged.
#[test]
fn the_way_back_converges_in_one_apply_under_random_latency() {
    for seed in seeds(3) {
        let (emu, s) = start(seed);
        apply_checked(&emu, &s.manifest, &format!("migration, seed {seed}"));
        let direct = crate::lifecycle::init_direct(&emu, &s);
        let what = format!("the way back, seed {seed}");
        let hook = apply_checked(&emu, &direct, &what);
        let ops = hook.operations();
        let first = |op: &str| position(&ops, op, seed);
        assert!(
            first("AuthorizeSecurityGroupIngress") < first("DeleteLoadBalancer")
                && first("DeleteLoadBalancer") < first("DeleteSecurityGroup"),
            "{what}: {ops:?}"
        );
    }
}

/// Taking over a site behind a load balancer made by hand, on AWS as it behaves: `init`
/// writes the manifest adopting it, one apply tags it and changes nothing else, then a
/// change to what was adopted (the backend's public rules closed, a health check changed)
/// is applied with the site served after every call; each plan clean after.
#[test]
fn adopting_a_hand_made_site_then_changing_it_under_random_latency() {
    for seed in seeds(1) {
        let emu = Emulator::aws_like(seed, &[]);
        let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1", "--handmade"]);
        let adopt = s.manifest.with_file_name("adopt.json");
        let what = format!("init behind the hand-made load balancer, seed {seed}");
        let out = run(
            &emu,
            &["init", "--name", "www.example.com", "-o", path(&adopt)],
            &what,
        );
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
        let hook = apply_checked(&emu, &adopt, &format!("adoption, seed {seed}"));
        // (The layer's hook sees the apply lock's calls too: its group made and deleted.)
        let ops = hook.operations();
        let lock = ["CreateSecurityGroup", "DeleteSecurityGroup"];
        let stack: Vec<&String> = ops.iter().filter(|o| !lock.contains(&o.as_str())).collect();
        assert!(
            stack.iter().all(|o| *o == "AddTags" || *o == "CreateTags"),
            "seed {seed}: nothing but tags: {ops:?}"
        );
        assert_eq!(
            stack.iter().filter(|o| **o == "AddTags").count(),
            3,
            "seed {seed}: the load balancer and its two groups: {ops:?}"
        );
        let changed = crate::support::edited(&adopt, "adopted-changed.json", |v| {
            v["security_groups"]["backend"]["exclusive"] = true.into();
            v["target_groups"]["http-8088"]["health_check"]["interval_seconds"] = 10.into();
        });
        let hook = apply_checked(
            &emu,
            &changed,
            &format!("change after adoption, seed {seed}"),
        );
        let ops = hook.operations();
        assert!(
            ops.contains(&"RevokeSecurityGroupIngress".to_owned())
                && ops.contains(&"ModifyTargetGroup".to_owned()),
            "seed {seed}: {ops:?}"
        );
    }
}

/// Port 80 from forwarding to redirecting at the load balancer and back, on AWS as it
/// behaves (a group detached or newly attached is checked again from `initial`): the
/// site served after every call, each plan clean after.
#[test]
fn port_80_to_a_redirect_and_back_under_random_latency() {
    for seed in seeds(2) {
        let (emu, s) = start(seed);
        apply_checked(&emu, &s.manifest, &format!("migration, seed {seed}"));
        let redirect = crate::support::edited(
            &s.manifest,
            "redirect.json",
            crate::frontdoor::redirect_at_the_load_balancer,
        );
        apply_checked(
            &emu,
            &redirect,
            &format!("forward to redirect, seed {seed}"),
        );
        let hook = apply_checked(
            &emu,
            &s.manifest,
            &format!("redirect to forward, seed {seed}"),
        );
        let ops = hook.operations();
        let at = |op: &str| position(&ops, op, seed);
        assert!(at("CreateTargetGroup") < at("ModifyListener"), "{ops:?}");
    }
}

/// A protected load balancer on AWS as it behaves (which refuses to delete it while its
/// protection is on): the migration with deletion protection, then the way back, which
/// turns the protection off as a step of its own right before the delete; the site served
/// after every call.
#[test]
fn the_way_back_lifts_deletion_protection_first_under_random_latency() {
    for seed in seeds(3) {
        let (emu, s) = start(seed);
        let hardened =
            crate::support::edited(&s.manifest, "hardened.json", crate::frontdoor::hardened);
        apply_checked(
            &emu,
            &hardened,
            &format!("migration, protected, seed {seed}"),
        );
        let direct = crate::lifecycle::init_direct(&emu, &s);
        let what = format!("the way back from a protected load balancer, seed {seed}");
        let hook = apply_checked(&emu, &direct, &what);
        let ops = hook.operations();
        let last = |op: &str| ops.iter().rposition(|o| o == op).unwrap_or(usize::MAX);
        assert!(
            last("ModifyLoadBalancerAttributes") < position(&ops, "DeleteLoadBalancer", seed),
            "{what}: {ops:?}"
        );
    }
}

/// A requested certificate on AWS as it behaves: ACM issues it only once its validation
/// record is in the zone, and a listener cannot use it before (UnsupportedCertificate);
/// the migration requests it, writes the record, waits, and converges in one apply under
/// every seed with the site served after every call.
#[test]
fn a_requested_certificate_is_issued_only_after_its_record_under_random_latency() {
    for seed in seeds(1) {
        let (emu, s) = start(seed);
        crate::frontdoor::without_issued_certificates(&emu);
        let requested = crate::support::edited(
            &s.manifest,
            "requested.json",
            crate::frontdoor::requested_certificate,
        );
        let what = format!("migration with a requested certificate, seed {seed}");
        let hook = apply_checked(&emu, &requested, &what);
        let ops = hook.operations();
        // The layer refuses a listener with a certificate not yet issued, and issues it
        // only once its record is in the zone: the run got there in that order.
        assert!(
            position(&ops, "RequestCertificate", seed) < position(&ops, "CreateListener", seed),
            "{what}: {ops:?}"
        );
    }
}

/// The article's certificate uploaded to IAM on AWS as it behaves: the migration on it
/// converges, then the move to a certificate the stack requests from ACM (held pending
/// until its record is in the zone, refused by a listener before) swaps the listener's
/// certificate in place; a later change of its names requests the successor and deletes
/// the stack's own certificate once the listener has moved; under every seed with the
/// site served after every call.
#[test]
fn the_iam_certificate_gives_way_to_a_requested_one_under_random_latency() {
    for seed in seeds(2) {
        let emu = Emulator::aws_like(seed, &[]);
        let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1", "--iam-cert"]);
        let what = format!("migration on the IAM certificate, seed {seed}");
        apply_checked(&emu, &s.manifest, &what);
        let requested = crate::support::edited(
            &s.manifest,
            "requested.json",
            crate::frontdoor::requested_certificate,
        );
        let what = format!("IAM certificate to a requested one, seed {seed}");
        let ops = apply_checked(&emu, &requested, &what).operations();
        assert!(
            position(&ops, "RequestCertificate", seed) < position(&ops, "ModifyListener", seed),
            "{what}: {ops:?}"
        );
        assert!(
            !ops.iter().any(|o| o == "DeleteListener"),
            "{what}: {ops:?}"
        );
        // Then one name more: the stack's own request gives way to the new one, deleted
        // only after the listener moved (the layer refuses deleting one in use).
        let more = crate::support::edited(&requested, "more-names.json", |v| {
            v["certificates"]["site"]["alternative_names"] =
                serde_json::json!(["static.example.com"]);
        });
        let what = format!("a requested certificate to its successor, seed {seed}");
        let ops = apply_checked(&emu, &more, &what).operations();
        assert!(
            position(&ops, "ModifyListener", seed) < position(&ops, "DeleteCertificate", seed),
            "{what}: {ops:?}"
        );
    }
}

/// `health_check.transition` where targets take AWS's time to turn healthy (interval x
/// healthy threshold, scaled): the article's migration with 30 s / 5 at rest, once with a
/// transition of 10 s / 2 and once without, side by side under the same seed. With it, the
/// groups are created on the fast values and restored after the backend's public rules
/// went (so after the switch's old answers expired), the site served after every call; and
/// the gates on the new targets are measurably shorter.
#[test]
fn health_checks_are_fast_during_the_move_and_rest_after_it_under_random_latency() {
    for seed in seeds(2) {
        let migrate = |transition: bool| {
            let (emu, s) = start(seed);
            let what = format!("transition {transition}, seed {seed}");
            let m = edited(&s.manifest, "health.json", |v| {
                for key in ["http", "app"] {
                    let h = &mut v["target_groups"][key]["health_check"];
                    h["interval_seconds"] = 30.into();
                    h["healthy_threshold"] = 5.into();
                    if transition {
                        h["transition"] =
                            serde_json::json!({ "interval_seconds": 10, "healthy_threshold": 2 });
                    }
                }
            });
            let hook = Hook::watch(&emu, desired(&m));
            let out = run(&emu, &["apply", "-f", path(&m), "--yes", "--json"], &what);
            assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
            hook.assert_served(&what);
            assert_converged(&emu, &m, &what);
            // The longest wait for a group's targets, from the run's own events.
            let gate = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| {
                    e["event"] == "finished"
                        && e["node"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("gate.tg.") && n.ends_with(".healthy"))
                })
                .filter_map(|e| e["seconds"].as_f64())
                .fold(0.0, f64::max);
            let timings = emu.boto_output(
                "print(sorted((g['HealthCheckIntervalSeconds'], g['HealthyThresholdCount']) for g in elb.describe_target_groups()['TargetGroups'] if g['TargetGroupName'].startswith('www-example')))",
            );
            (gate, hook.operations(), timings.trim().to_owned())
        };
        let (fast, slow) = std::thread::scope(|scope| {
            let fast = scope.spawn(|| migrate(true));
            let slow = scope.spawn(|| migrate(false));
            (fast.join().unwrap(), slow.join().unwrap())
        });
        let (fast_gate, ops, timings) = fast;
        assert_eq!(timings, "[(30, 5), (30, 5)]", "seed {seed}: at rest");
        let restores: Vec<usize> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| *o == "ModifyTargetGroup")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(restores.len(), 2, "seed {seed}: {ops:?}");
        let closed = ops
            .iter()
            .rposition(|o| o == "RevokeSecurityGroupIngress")
            .expect("the backend's public rules go");
        assert!(restores.iter().all(|&i| i > closed), "seed {seed}: {ops:?}");
        let (slow_gate, slow_ops, slow_timings) = slow;
        assert_eq!(slow_timings, "[(30, 5), (30, 5)]");
        assert!(!slow_ops.iter().any(|o| o == "ModifyTargetGroup"));
        eprintln!(
            "seed {seed}: longest health gate {fast_gate:.1} s with the transition, {slow_gate:.1} s without"
        );
        assert!(
            fast_gate * 2.0 < slow_gate,
            "seed {seed}: the faster checks shorten the gate: {fast_gate:.1} s against {slow_gate:.1} s"
        );
    }
}
