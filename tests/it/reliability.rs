//! Reliability through the real binary: faults injected between it and the emulator, a
//! crash after every mutating call of the migration, the apply lock, concurrent applies.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::emulator::{Emulator, Seeded};
use crate::proxy::{Fault, Faults, Invariant, Options, Proxy};
use crate::support::{desired, text};

fn seed(emu: &Emulator) -> Seeded {
    emu.seed(&["--ttl", "2", "--transition-ttl", "1"])
}

fn invariant(emu: &Emulator, s: &Seeded) -> Arc<Mutex<Invariant>> {
    Arc::new(Mutex::new(Invariant::new(desired(&s.manifest), &emu.url)))
}

fn checked(inv: &Arc<Mutex<Invariant>>) -> Option<crate::proxy::Check> {
    let inv = inv.clone();
    Some(Box::new(move |_| inv.lock().unwrap().check()))
}

fn converged(emu: &Emulator, s: &Seeded) {
    let out = emu.reconcile(&[
        "plan",
        "-f",
        s.manifest.to_str().unwrap(),
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(0), "not converged:\n{}", text(&out));
}

/// Exactly the stack's resources, once each: no duplicate, nothing orphaned, no lock or
/// wait marker left behind.
pub fn no_duplicates_or_orphans(emu: &Emulator) {
    emu.boto(
        "tagged = lambda tags: any(t['Key'] == 'reconcile:stack' and t['Value'] == 'www-example' for t in tags)\n\
         lbs = elb.describe_load_balancers()['LoadBalancers']\n\
         lb_tags = {d['ResourceArn']: d['Tags'] for d in elb.describe_tags(ResourceArns=[l['LoadBalancerArn'] for l in lbs])['TagDescriptions']} if lbs else {}\n\
         assert sorted(l['LoadBalancerName'] for l in lbs if tagged(lb_tags[l['LoadBalancerArn']])) == ['www-example'], lbs\n\
         tgs = elb.describe_target_groups()['TargetGroups']\n\
         tg_tags = {d['ResourceArn']: d['Tags'] for d in elb.describe_tags(ResourceArns=[t['TargetGroupArn'] for t in tgs])['TagDescriptions']}\n\
         names = sorted(t['TargetGroupName'] for t in tgs if tagged(tg_tags[t['TargetGroupArn']]))\n\
         assert names == ['www-example-app', 'www-example-http'], names\n\
         sgs = ec2.describe_security_groups()['SecurityGroups']\n\
         assert sorted(g['GroupName'] for g in sgs if tagged(g.get('Tags', []))) == ['www-example-lb'], sgs\n\
         assert not [g for g in sgs if g['GroupName'].startswith('reconcile-lock-')], 'lock left'\n\
         z = r53.list_hosted_zones()['HostedZones'][0]['Id']\n\
         rs = r53.list_resource_record_sets(HostedZoneId=z)['ResourceRecordSets']\n\
         assert not [r for r in rs if r['Name'].lower().startswith('_reconcile.')], 'marker left'",
    );
}

pub fn spawn(endpoint: &str, args: &[&str]) -> std::process::Child {
    crate::emulator::command(endpoint, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

#[test]
fn with_20_percent_of_requests_faulted_the_migration_converges() {
    let emu = Emulator::start();
    let s = seed(&emu);
    let inv = invariant(&emu, &s);
    let proxy = Proxy::with(
        &emu.url,
        Options {
            check: checked(&inv),
            faults: Some(Faults {
                seed: 20261124,
                percent: 20,
                kinds: vec![
                    Fault::Throttle,
                    Fault::Status500,
                    Fault::Status503,
                    Fault::DropBefore,
                    Fault::DropAfter,
                ],
                latency: Duration::ZERO,
                only_mutating: false,
            }),
            ..Options::default()
        },
    );
    let m = s.manifest.to_str().unwrap();
    let out = emu.reconcile_at(
        &proxy.url,
        &[
            "apply",
            "-f",
            m,
            "--yes",
            "--max-attempts",
            "10",
            "--max-backoff",
            "200ms",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = proxy.log.lock().unwrap();
    let faulted = log.calls.iter().filter(|c| c.fault.is_some()).count();
    let kinds: std::collections::BTreeSet<String> = log
        .calls
        .iter()
        .filter_map(|c| c.fault.map(|f| format!("{f:?}")))
        .collect();
    assert!(
        faulted * 10 >= log.calls.len(),
        "only {faulted} faults in {} calls",
        log.calls.len()
    );
    assert!(kinds.len() >= 3, "mixed kinds: {kinds:?}");
    assert!(log.violations.is_empty(), "{:#?}", log.violations);
    drop(log);
    converged(&emu, &s);
    no_duplicates_or_orphans(&emu);
}

#[test]
fn faults_beyond_the_retries_name_the_failing_call_and_a_rerun_converges() {
    let emu = Emulator::start();
    let s = seed(&emu);
    let proxy = Proxy::with(
        &emu.url,
        Options {
            faults: Some(Faults {
                seed: 5,
                percent: 100,
                kinds: vec![Fault::Status503],
                latency: Duration::ZERO,
                only_mutating: true,
            }),
            ..Options::default()
        },
    );
    let m = s.manifest.to_str().unwrap();
    let out = emu.reconcile_at(
        &proxy.url,
        &[
            "apply",
            "-f",
            m,
            "--yes",
            "--max-attempts",
            "2",
            "--max-backoff",
            "100ms",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed: ServiceUnavailable"), "{err}");
    let named = [
        "CreateSecurityGroup",
        "CreateTargetGroup",
        "ChangeResourceRecordSets",
        "AuthorizeSecurityGroupIngress",
    ]
    .iter()
    .any(|op| err.contains(op));
    assert!(named, "the failing call is named: {err}");
    let out = emu.reconcile(&["apply", "-f", m, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    converged(&emu, &s);
    no_duplicates_or_orphans(&emu);
}

/// The number of mutating calls of an uninterrupted migration (lock included).
fn full_run_calls() -> usize {
    let emu = Emulator::start();
    let s = seed(&emu);
    let proxy = Proxy::with(&emu.url, Options::default());
    let out = emu.reconcile_at(
        &proxy.url,
        &["apply", "-f", s.manifest.to_str().unwrap(), "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let n = proxy
        .log
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.mutating)
        .count();
    n
}

/// Kills the binary right after its k-th mutating call, runs apply again, and checks that
/// it converges with nothing duplicated or orphaned and the site up throughout.
fn crash_at(k: usize) {
    let emu = Emulator::start();
    let s = seed(&emu);
    let inv = invariant(&emu, &s);
    let pid = Arc::new(Mutex::new(None));
    let proxy = Proxy::with(
        &emu.url,
        Options {
            check: checked(&inv),
            kill_after: Some((k, pid.clone())),
            ..Options::default()
        },
    );
    let m = s.manifest.to_str().unwrap();
    let child = spawn(&proxy.url, &["apply", "-f", m, "--yes"]);
    *pid.lock().unwrap() = Some(child.id());
    let first = child.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        None,
        "k={k}: the first run was not killed:\n{}",
        text(&first)
    );
    let again = Proxy::with(
        &emu.url,
        Options {
            check: checked(&inv),
            ..Options::default()
        },
    );
    let out = emu.reconcile_at(&again.url, &["apply", "-f", m, "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "k={k}: the rerun failed:\n{}",
        text(&out)
    );
    let before: Vec<String> = proxy
        .log
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.mutating)
        .map(|c| c.operation.clone())
        .collect();
    for p in [&proxy, &again] {
        let log = p.log.lock().unwrap();
        assert!(
            log.violations.is_empty(),
            "k={k}: {:#?}\nthe killed run's mutating calls: {before:?}\nthe rerun:\n{}",
            log.violations,
            text(&out)
        );
    }
    converged(&emu, &s);
    no_duplicates_or_orphans(&emu);
}

/// Crashes after every k-th mutating call of the migration with k ≡ `shard` (mod 3): the
/// three shards together cover every k, and run side by side.
fn crash_after_every_call_of_shard(shard: usize) {
    let n = full_run_calls();
    assert!(n >= 15, "only {n} mutating calls");
    for k in (1..=n).filter(|k| k % 3 == shard) {
        crash_at(k);
    }
}

#[test]
fn a_crash_after_any_mutating_call_resumes_cleanly_k_mod_3_is_0() {
    crash_after_every_call_of_shard(0);
}

#[test]
fn a_crash_after_any_mutating_call_resumes_cleanly_k_mod_3_is_1() {
    crash_after_every_call_of_shard(1);
}

#[test]
fn a_crash_after_any_mutating_call_resumes_cleanly_k_mod_3_is_2() {
    crash_after_every_call_of_shard(2);
}

/// Where a hand-made lock says its holder ran.
pub struct HeldBy<'a> {
    pub stack: &'a str,
    pub holder: &'a str,
    pub host: &'a str,
    pub pid: u32,
    pub machine: &'a str,
    pub expires_in: i64,
}

/// A lock group as another run would have left it in `vpc` (token `tok-<holder>`).
pub fn held_lock(emu: &Emulator, vpc: &str, by: &HeldBy) {
    let HeldBy {
        stack,
        holder,
        host,
        pid,
        machine,
        expires_in,
    } = by;
    emu.boto(&format!(
        "import time\n\
         ec2.create_security_group(GroupName='reconcile-lock-{stack}', Description='lock', VpcId='{vpc}', TagSpecifications=[{{'ResourceType': 'security-group', 'Tags': [\
         {{'Key': 'reconcile:lock', 'Value': '{stack}'}}, {{'Key': 'reconcile:lock-token', 'Value': 'tok-{holder}'}}, {{'Key': 'reconcile:holder', 'Value': '{holder}'}}, \
         {{'Key': 'reconcile:host', 'Value': '{host}'}}, {{'Key': 'reconcile:pid', 'Value': '{pid}'}}, {{'Key': 'reconcile:machine', 'Value': '{machine}'}}, \
         {{'Key': 'reconcile:expires', 'Value': str(int(time.time()) + {expires_in})}}]}}])"
    ));
}

/// A lock of the example's stack held on a machine named ci-runner-7 (pid 4242), its
/// lease ending in `expires_in` seconds.
fn lock_group(emu: &Emulator, s: &Seeded, holder: &str, expires_in: i64) {
    let by = HeldBy {
        stack: "www-example",
        holder,
        host: "ci-runner-7",
        pid: 4242,
        machine: "another-machine",
        expires_in,
    };
    held_lock(emu, s.ids["vpc"].as_str().unwrap(), &by);
}

/// `apply` with `--lock-timeout timeout` through a recording proxy: it must exit 1 before
/// any mutating call, its stderr containing every one of `expect`. Returns that stderr.
fn refused_before_any_call(emu: &Emulator, m: &str, timeout: &str, expect: &[&str]) -> String {
    let proxy = Proxy::with(&emu.url, Options::default());
    let out = emu.reconcile_at(
        &proxy.url,
        &["apply", "-f", m, "--yes", "--lock-timeout", timeout],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for e in expect {
        assert!(err.contains(e), "{e}: {err}");
    }
    assert!(
        proxy.mutating_calls().is_empty(),
        "{:?}",
        proxy.mutating_calls()
    );
    err
}

#[test]
fn a_held_lock_makes_apply_wait_then_name_the_holder_and_unlock_releases_it() {
    let emu = Emulator::start();
    let s = seed(&emu);
    lock_group(&emu, &s, "alice", 600);
    let m = s.manifest.to_str().unwrap();
    let t0 = Instant::now();
    refused_before_any_call(
        &emu,
        m,
        "2s",
        &[
            "locked by alice (pid 4242 on ci-runner-7, token tok-alice)",
            "--force tok-alice",
        ],
    );
    assert!(t0.elapsed() >= Duration::from_secs(2), "did not wait");
    // plan needs no lock.
    let out = emu.reconcile(&["plan", "-f", m]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A live lock is released only by its token.
    let out = emu.reconcile(&["unlock", "-f", m]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("whose lease has not ended"),
        "{}",
        text(&out)
    );
    let out = emu.reconcile(&["unlock", "-f", m, "--force", "tok-bob"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not by token tok-bob"),
        "{}",
        text(&out)
    );
    let out = emu.reconcile(&["unlock", "-f", m, "--force", "tok-alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("released the lock held by alice"),
        "{}",
        text(&out)
    );
    let out = emu.reconcile(&["apply", "-f", m, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    no_duplicates_or_orphans(&emu);
}

#[test]
fn an_expired_lock_is_taken_over() {
    let emu = Emulator::start();
    let s = seed(&emu);
    lock_group(&emu, &s, "bob", -30);
    let out = emu.reconcile(&[
        "apply",
        "-f",
        s.manifest.to_str().unwrap(),
        "--yes",
        "--lock-timeout",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    converged(&emu, &s);
    no_duplicates_or_orphans(&emu);
}

#[test]
fn two_concurrent_applies_never_interleave_their_changes() {
    let emu = Emulator::start();
    let s = seed(&emu);
    let m = s.manifest.to_str().unwrap();
    let (a, b) = (
        Proxy::with(&emu.url, Options::default()),
        Proxy::with(&emu.url, Options::default()),
    );
    let first = spawn(
        &a.url,
        &["apply", "-f", m, "--yes", "--lock-timeout", "60s"],
    );
    let second = spawn(
        &b.url,
        &["apply", "-f", m, "--yes", "--lock-timeout", "60s"],
    );
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let (ca, cb) = (a.mutating_calls(), b.mutating_calls());
    // One of them made every change; the other planned after it and found nothing to do.
    assert!(
        ca.is_empty() != cb.is_empty(),
        "both changed the stack: {} and {} calls",
        ca.len(),
        cb.len()
    );
    let (worker, idle) = if ca.is_empty() { (&b, &a) } else { (&a, &b) };
    let changes = worker.mutating_calls();
    let (start, end) = (changes.first().unwrap().at, changes.last().unwrap().at);
    let idle_stack_calls = idle.mutating_calls();
    assert!(idle_stack_calls.iter().all(|c| c.at < start || c.at > end));
    assert!(
        String::from_utf8_lossy(&if ca.is_empty() { &first } else { &second }.stdout)
            .contains("No changes")
    );
    converged(&emu, &s);
    no_duplicates_or_orphans(&emu);
}

#[test]
fn an_interrupted_apply_releases_its_lock_and_a_rerun_finishes() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "8", "--transition-ttl", "1"]);
    let m = s.manifest.to_str().unwrap();
    let child = spawn(&emu.url, &["apply", "-f", m, "--yes"]);
    // Into the wait for the old TTL, then Ctrl-C.
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted"),
        "{}",
        text(&out)
    );
    emu.boto(
        "assert not [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'].startswith('reconcile-lock-')], 'lock left'",
    );
    let out = emu.reconcile(&["apply", "-f", m, "--yes", "--lock-timeout", "0s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    converged(&emu, &s);
    no_duplicates_or_orphans(&emu);
}

/// A group with the lock's name that reconcile did not make (no lock tags) is someone
/// else's: apply refuses before any change and never deletes it, and unlock leaves it.
#[test]
fn a_hand_made_group_with_the_lock_name_is_left_alone() {
    let emu = Emulator::start();
    let s = seed(&emu);
    let vpc = s.ids["vpc"].as_str().unwrap();
    emu.boto(&format!(
        "ec2.create_security_group(GroupName='reconcile-lock-www-example', Description='freeze', VpcId='{vpc}', TagSpecifications=[{{'ResourceType': 'security-group', 'Tags': [{{'Key': 'owner', 'Value': 'ops-freeze'}}]}}])"
    ));
    let m = s.manifest.to_str().unwrap();
    refused_before_any_call(&emu, m, "0s", &["is not a reconcile lock"]);
    let out = emu.reconcile(&["unlock", "-f", m]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("left alone"),
        "{}",
        text(&out)
    );
    emu.boto(
        "assert [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'] == 'reconcile-lock-www-example'], 'the hand-made group was deleted'",
    );
}

/// A live holder with this host's name and a pid that does not exist here, but on
/// another machine (another PID namespace, a runner of the same name), is not taken over.
#[test]
fn a_live_holder_elsewhere_with_this_hosts_name_is_not_taken_over() {
    let emu = Emulator::start();
    let s = seed(&emu);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let by = HeldBy {
        stack: "www-example",
        holder: "carol",
        host: &host,
        pid: 999_999,
        machine: "a-container",
        expires_in: 600,
    };
    held_lock(&emu, s.ids["vpc"].as_str().unwrap(), &by);
    let m = s.manifest.to_str().unwrap();
    refused_before_any_call(&emu, m, "1s", &["locked by carol"]);
}

/// An apply whose lock is released under it (`unlock --force` by someone who thought it
/// gone) finds out at its next renewal and stops before its next change: the DNS switch
/// after the TTL wait is not made.
#[test]
fn an_apply_that_loses_its_lock_stops_before_its_next_change() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "40", "--transition-ttl", "1"]);
    let m = s.manifest.to_str().unwrap();
    let child = spawn(&emu.url, &["apply", "-f", m, "--yes"]);
    // Into the 40 s wait for the old TTL; then release the lock by its token.
    std::thread::sleep(Duration::from_secs(8));
    let token = emu.boto_output(
        "gs = [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'] == 'reconcile-lock-www-example']\n\
         assert len(gs) == 1, gs\n\
         print([t['Value'] for t in gs[0]['Tags'] if t['Key'] == 'reconcile:lock-token'][0])",
    );
    let out = emu.reconcile(&["unlock", "-f", m, "--force", token.trim()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the lock was lost"),
        "{}",
        text(&out)
    );
    // The switch was not made: the record still leads to the instance.
    emu.boto(
        "zone = r53.list_hosted_zones_by_name(DNSName='example.com')['HostedZones'][0]['Id']\n\
         rs = [r for r in r53.list_resource_record_sets(HostedZoneId=zone)['ResourceRecordSets'] if r['Name'] == 'www.example.com.' and r['Type'] == 'A']\n\
         assert rs and 'AliasTarget' not in rs[0], rs",
    );
}
