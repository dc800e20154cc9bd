//! `reconcile apply` through the real binary against the emulator, with the availability
//! invariant checked after every mutating call by a recording proxy.

use std::path::{Path, PathBuf};

use crate::emulator::{Emulator, Seeded};
use crate::proxy::{Invariant, Proxy};
use crate::support::{self, desired, text};

/// A proxy in front of `emu` that checks the availability invariant of `manifest`.
fn checked_proxy(emu: &Emulator, manifest: &Path) -> Proxy {
    Proxy::checked(&emu.url, desired(manifest)).0
}

/// Seeds the starting point with short TTLs, so that the waits take seconds.
fn seed_short(emu: &Emulator) -> Seeded {
    emu.seed(&["--ttl", "3", "--transition-ttl", "1"])
}

fn path(s: &Seeded) -> &str {
    s.manifest.to_str().unwrap()
}

fn assert_converged(emu: &Emulator, manifest: &str) {
    let out = emu.reconcile(&["plan", "-f", manifest, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "not converged:\n{}", text(&out));
}

/// Writes the seeded manifest with `edit` applied, next to it.
fn edited(s: &Seeded, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    support::edited(&s.manifest, name, edit)
}

#[test]
fn starting_point_migrates_keeping_the_site_up_after_every_call() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let proxy = checked_proxy(&emu, &s.manifest);
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("apply complete in "), "{}", text(&out));
    // What was done, and the site's new address.
    assert!(stdout.contains("10 added, "), "{}", text(&out));
    assert!(
        stdout.contains("www.example.com now leads to the load balancer www-example-"),
        "{}",
        text(&out)
    );
    proxy.assert_clean("apply");
    let log = proxy.log.lock().unwrap();
    assert!(
        log.checks >= 15,
        "only {} mutating calls were checked",
        log.checks
    );
    drop(log);
    // The order the article asks for, as the emulator saw it.
    let ops: Vec<String> = proxy
        .mutating_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    let first = |op: &str| {
        ops.iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("no {op} in {ops:?}"))
    };
    let last = |op: &str| ops.iter().rposition(|o| o == op).unwrap();
    assert!(
        first("ChangeResourceRecordSets") < first("CreateLoadBalancer"),
        "TTL lowered first: {ops:?}"
    );
    assert!(first("AuthorizeSecurityGroupIngress") < first("RevokeSecurityGroupIngress"));
    assert!(last("CreateListener") < first("RevokeSecurityGroupIngress"));
    assert_converged(&emu, path(&s));
    // The office ssh rule stays; the public web rules are gone.
    let backend = s.ids["security_group"].as_str().unwrap().to_owned();
    emu.boto(&format!(
        "g = ec2.describe_security_groups(GroupIds=['{backend}'])['SecurityGroups'][0]\n\
         perms = [(p['FromPort'], r['CidrIp']) for p in g['IpPermissions'] for r in p.get('IpRanges', [])]\n\
         assert perms == [(22, '198.51.100.0/24')], perms"
    ));
}

#[test]
fn empty_account_converges_and_the_same_site_under_another_stack_name_is_blocked() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    // No record yet: the name is created pointing at the load balancer.
    let zone = s.ids["zone_id"].as_str().unwrap().to_owned();
    let ip = s.ids["eip"]["public_ip"].as_str().unwrap().to_owned();
    emu.boto(&format!(
        "r53.change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [{{'Action': 'DELETE', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'A', 'TTL': 3, 'ResourceRecords': [{{'Value': '{ip}'}}]}}}}]}})"
    ));
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_converged(&emu, path(&s));

    // The same site under another `stack`: its record leads to the first stack's load
    // balancer, so the plan stops before building a second copy, naming both stacks.
    let renamed = edited(&s, "renamed.json", |v| v["stack"] = "www-renamed".into());
    let proxy = Proxy::start(&emu.url, Box::new(|_| None));
    for cmd in ["plan", "apply"] {
        let mut args = vec![cmd, "-f", renamed.to_str().unwrap()];
        if cmd == "apply" {
            args.push("--yes");
        }
        let out = emu.reconcile_at(&proxy.url, &args);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out));
        let all = text(&out);
        assert!(
            all.contains("of stack \"www-example\", not to stack \"www-renamed\"'s"),
            "{cmd}: {all}"
        );
    }
    assert!(
        proxy.mutating_calls().is_empty(),
        "{:?}",
        proxy.mutating_calls()
    );
}

/// Regression: the largest `--max-wait` the flag takes (u64::MAX seconds) is no limit at
/// all; adding it to the time the run began overflowed.
#[test]
fn the_largest_max_wait_is_no_limit() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let out = emu.reconcile(&[
        "apply",
        "-f",
        path(&s),
        "--yes",
        "--max-wait",
        &u64::MAX.to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_converged(&emu, path(&s));
}

#[test]
fn without_yes_and_without_a_terminal_nothing_changes() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let proxy = Proxy::start(&emu.url, Box::new(|_| None));
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path(&s)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "{}",
        text(&out)
    );
    assert!(
        proxy.mutating_calls().is_empty(),
        "{:?}",
        proxy.mutating_calls()
    );
}

#[test]
fn stopped_backends_stop_the_apply_before_the_dns_switch() {
    let emu = Emulator::start();
    let s = emu.seed(&[]);
    // First run: everything is built; the one-hour wait for the old TTL pauses it.
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes", "--max-wait", "2s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Run `reconcile apply` again after"),
        "{}",
        text(&out)
    );
    // Both backends stop.
    let ids: Vec<String> = s.ids["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    emu.boto(&format!("ec2.stop_instances(InstanceIds={ids:?})"));
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes", "--max-wait", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DNS switch was not made"), "{err}");
    for id in &ids {
        assert!(
            err.contains(&format!("{id} is unused (Target.InvalidState)")),
            "{err}"
        );
    }
    assert!(err.contains("hint: the instance is stopped"), "{err}");
    // The steps after the failed gate are reported as never started, each with what it
    // waited on: the switch among them.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("steps not started (nothing new starts after a failure"),
        "{}",
        text(&out)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(".switch: after ") && l.contains("healthy")),
        "the switch is not reported as waiting on the health gate: {}",
        text(&out)
    );
    // And as events: `not_started` before `stopped`, valid against the schema. Without
    // --max-wait the hour of the old TTL is left when the health gate fails, not waited.
    let t0 = std::time::Instant::now();
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(120),
        "a failed run waited {:?} before it stopped: {}",
        t0.elapsed(),
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    crate::support::assert_events_valid(&stdout);
    let events = crate::support::events(&out.stdout);
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|k| *k == "not_started" || *k == "stopped")
        .collect();
    assert_eq!(kinds, ["not_started", "stopped"], "{stdout}");
    assert!(
        events.iter().any(|e| e["event"] == "failed"
            && e["node"].as_str().is_some_and(|n| n.ends_with(".old-ttl"))
            && e["error"]
                .as_str()
                .is_some_and(|m| m.contains("stopped waiting, as another step failed"))),
        "the TTL wait is not reported as left: {stdout}"
    );
    let not_started = events
        .iter()
        .find(|e| e["event"] == "not_started")
        .cloned()
        .unwrap_or_default();
    let steps = not_started["steps"].as_array().cloned().unwrap_or_default();
    assert!(
        steps.iter().any(|st| {
            st["node"].as_str().is_some_and(|n| n.ends_with(".switch"))
                && st["waits_on"].as_array().is_some_and(|w| {
                    w.iter()
                        .any(|x| x.as_str().is_some_and(|x| x.ends_with(".healthy")))
                })
        }),
        "{not_started}"
    );
    // The old path is intact: the A record, and the backend open on 443.
    let ip = s.ids["eip"]["public_ip"].as_str().unwrap();
    let zone = s.ids["zone_id"].as_str().unwrap();
    let backend = s.ids["security_group"].as_str().unwrap();
    emu.boto(&format!(
        "rs = r53.list_resource_record_sets(HostedZoneId='{zone}')['ResourceRecordSets']\n\
         www = [r for r in rs if r['Name'].rstrip('.').lower() == 'www.example.com']\n\
         assert [(r['Type'], r['ResourceRecords'][0]['Value']) for r in www] == [('A', '{ip}')], www\n\
         g = ec2.describe_security_groups(GroupIds=['{backend}'])['SecurityGroups'][0]\n\
         assert any(p['FromPort'] == 443 and any(r['CidrIp'] == '0.0.0.0/0' for r in p['IpRanges']) for p in g['IpPermissions'])"
    ));
}

#[test]
fn a_target_group_port_change_replaces_it_without_a_failed_call() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let changed = edited(&s, "port.json", |v| {
        v["target_groups"]["app"]["port"] = 8089.into();
        v["security_groups"]["backend"]["ingress"][0]["ports"] =
            serde_json::json!([80, 8088, 8089]);
    });
    let proxy = checked_proxy(&emu, &changed);
    let changed = changed.to_str().unwrap();
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", changed, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("apply");
    let ops: Vec<String> = proxy
        .mutating_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert!(
        ops.contains(&"CreateTargetGroup".to_owned())
            && ops.contains(&"DeleteTargetGroup".to_owned()),
        "{ops:?}"
    );
    assert_converged(&emu, changed);
    emu.boto(
        "names = sorted(t['TargetGroupName'] for t in elb.describe_target_groups()['TargetGroups'])\n\
         assert names == ['www-example-app-r', 'www-example-http'], names",
    );
}

#[test]
fn a_target_group_left_out_is_deleted_after_its_listener() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    // A third listener, on 8080, with a group of its own, then left out again.
    let more = edited(&s, "more.json", |v| {
        v["target_groups"]["alt"] = v["target_groups"]["app"].clone();
        v["load_balancer"]["listeners"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"port": 8080, "protocol": "HTTP", "forward": "alt"}));
        v["security_groups"]["lb"]["ingress"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"ports": [8080], "cidrs": ["0.0.0.0/0"]}));
    });
    let out = emu.reconcile(&["apply", "-f", more.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let proxy = checked_proxy(&emu, &s.manifest);
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("apply");
    let ops: Vec<String> = proxy
        .mutating_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    let at = |op: &str| {
        ops.iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("no {op}: {ops:?}"))
    };
    assert!(at("DeleteListener") < at("DeleteTargetGroup"), "{ops:?}");
    assert!(!ops.iter().any(|o| o.starts_with("Create")), "{ops:?}");
    assert_converged(&emu, path(&s));
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let saved = s.manifest.with_file_name("saved.plan");
    let saved = saved.to_str().unwrap();
    let out = emu.reconcile(&["plan", "-f", path(&s), "--out", saved]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Someone opens 8443 on the backend meanwhile.
    let backend = s.ids["security_group"].as_str().unwrap();
    emu.boto(&format!(
        "ec2.authorize_security_group_ingress(GroupId='{backend}', IpPermissions=[{{'IpProtocol': 'tcp', 'FromPort': 8443, 'ToPort': 8443, 'IpRanges': [{{'CidrIp': '0.0.0.0/0'}}]}}])"
    ));
    let proxy = Proxy::start(&emu.url, Box::new(|_| None));
    let out = emu.reconcile_at(&proxy.url, &["apply", saved]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("live state changed since the plan was made"),
        "{err}"
    );
    assert!(
        err.contains("sg.backend.rules.remove"),
        "names what changed: {err}"
    );
    assert!(proxy.mutating_calls().is_empty());
    // A fresh plan applies.
    let out = emu.reconcile(&["plan", "-f", path(&s), "--out", saved]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = emu.reconcile(&["apply", saved]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_converged(&emu, path(&s));
}

/// With `--json`, a paused apply writes nothing but events: its `ran` event says it paused,
/// until when, and at which waits (the sentence for people is left out of the stream).
#[test]
fn a_paused_json_apply_writes_only_events_and_says_when_to_resume() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "6", "--transition-ttl", "1"]);
    let out = emu.reconcile(&[
        "apply",
        "-f",
        path(&s),
        "--yes",
        "--json",
        "--max-wait",
        "2s",
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let events = crate::support::events(&out.stdout);
    let ran: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "ran").collect();
    assert_eq!(ran.len(), 1, "{events:?}");
    assert_eq!(ran[0]["finished"], "paused", "{}", ran[0]);
    let resume_at = ran[0]["resume_at"].as_str().expect("resume_at");
    assert!(
        resume_at > reconcile::render::human::rfc3339(reconcile::apply::now()).as_str(),
        "{}",
        ran[0]
    );
    assert_eq!(
        ran[0]["waiting"],
        serde_json::json!(["gate.dns.www.example.com.old-ttl"]),
        "{}",
        ran[0]
    );
    crate::support::assert_events_valid(&String::from_utf8_lossy(&out.stdout));
    // Run again: the rest, then nothing to do, still only events.
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    crate::support::assert_events_valid(&String::from_utf8_lossy(&out.stdout));
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    crate::support::assert_events_valid(&stdout);
    assert!(stdout.contains("\"event\":\"unchanged\""), "{stdout}");
}

#[test]
fn a_long_wait_pauses_cleanly_and_a_rerun_waits_only_the_rest() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "6", "--transition-ttl", "1"]);
    let t0 = std::time::Instant::now();
    let out = emu.reconcile(&[
        "apply",
        "-f",
        path(&s),
        "--yes",
        "--max-wait",
        "2s",
        "--detailed-exitcode",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "paused, told apart from finished: {}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("paused at gate.dns.www.example.com.old-ttl"),
        "{stdout}"
    );
    assert!(stdout.contains("recorded in Route53"), "{stdout}");
    // The plan now counts the wait from the recorded start.
    let out = emu.reconcile(&["plan", "-f", path(&s)]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("counting from"),
        "{}",
        text(&out)
    );
    // A second run waits the remainder, not the whole TTL again.
    let out = emu.reconcile(&["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(20),
        "waited {:?}",
        t0.elapsed()
    );
    assert_converged(&emu, path(&s));
}

/// The checker is not vacuous: closing the direct path while DNS still points at it is
/// caught.
#[test]
fn the_invariant_checker_catches_a_closed_direct_path() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let mut inv = Invariant::new(desired(&s.manifest), &emu.url);
    assert_eq!(inv.check(), None, "the starting point serves");
    let backend = s.ids["security_group"].as_str().unwrap();
    emu.boto(&format!(
        "ec2.revoke_security_group_ingress(GroupId='{backend}', IpPermissions=[{{'IpProtocol': 'tcp', 'FromPort': 443, 'ToPort': 443, 'IpRanges': [{{'CidrIp': '0.0.0.0/0'}}]}}])"
    ));
    let found = inv.check().expect("a violation");
    assert!(found.contains("no longer admits 443"), "{found}");
}

/// A public record on an internal load balancer cannot serve: refused before any call.
#[test]
fn an_internal_load_balancer_for_the_public_record_is_refused_before_any_call() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let changed = edited(&s, "internal.json", |v| {
        v["load_balancer"]["scheme"] = "internal".into()
    });
    let proxy = Proxy::start(&emu.url, Box::new(|_| None));
    let out = emu.reconcile_at(
        &proxy.url,
        &["apply", "-f", changed.to_str().unwrap(), "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("load_balancer.scheme"), "{err}");
    assert!(
        proxy.log.lock().unwrap().calls.is_empty(),
        "a call was made"
    );
}

/// The manifest of a first stage: an internal load balancer, no DNS yet, the backends'
/// other rules left as they are.
pub fn internal_first(s: &Seeded) -> PathBuf {
    edited(s, "internal-first.json", |v| {
        v["load_balancer"]["scheme"] = "internal".into();
        v.as_object_mut().unwrap().remove("dns");
        v["security_groups"]["backend"]["exclusive"] = false.into();
    })
}

#[test]
fn an_internal_load_balancer_made_public_is_replaced_with_dns_moved_first() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let first = internal_first(&s);
    let out = emu.reconcile(&["apply", "-f", first.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let proxy = checked_proxy(&emu, &s.manifest);
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("apply");
    let ops: Vec<String> = proxy
        .mutating_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    let at = |op: &str| {
        ops.iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("no {op}: {ops:?}"))
    };
    assert!(
        at("CreateLoadBalancer") < at("DeleteLoadBalancer"),
        "{ops:?}"
    );
    assert!(
        at("ChangeResourceRecordSets") < at("DeleteLoadBalancer"),
        "DNS moves before the old one goes: {ops:?}"
    );
    assert_converged(&emu, path(&s));
    emu.boto(
        "lbs = [(l['LoadBalancerName'], l['Scheme']) for l in elb.describe_load_balancers()['LoadBalancers']]\n\
         assert lbs == [('www-example-r', 'internet-facing')], lbs",
    );
}

#[test]
fn a_starting_point_with_a_cname_to_the_instance_migrates_keeping_the_site_up() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    // The article allows either: here the name is a CNAME to the instance's public name.
    let zone = s.ids["zone_id"].as_str().unwrap().to_owned();
    let ip = s.ids["eip"]["public_ip"].as_str().unwrap().to_owned();
    let instance = s.ids["instances"][0].as_str().unwrap().to_owned();
    emu.boto(&format!(
        "name = ec2.describe_instances(InstanceIds=['{instance}'])['Reservations'][0]['Instances'][0]['PublicDnsName']\n\
         assert name\n\
         r53.change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [\n\
         {{'Action': 'DELETE', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'A', 'TTL': 3, 'ResourceRecords': [{{'Value': '{ip}'}}]}}}},\n\
         {{'Action': 'CREATE', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'CNAME', 'TTL': 3, 'ResourceRecords': [{{'Value': name}}]}}}}]}})"
    ));
    let proxy = checked_proxy(&emu, &s.manifest);
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("apply");
    let ops: Vec<String> = proxy
        .mutating_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    let first = |op: &str| ops.iter().position(|o| o == op).unwrap();
    assert!(
        first("ChangeResourceRecordSets") < first("CreateLoadBalancer"),
        "TTL lowered first: {ops:?}"
    );
    assert!(
        ops.iter().any(|o| o == "RevokeSecurityGroupIngress"),
        "{ops:?}"
    );
    assert_converged(&emu, path(&s));
}

#[test]
fn a_neighbour_record_on_the_backends_address_is_warned_about_and_left_alone() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let zone = s.ids["zone_id"].as_str().unwrap().to_owned();
    let ip = s.ids["eip"]["public_ip"].as_str().unwrap().to_owned();
    emu.boto(&format!(
        "r53.change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [\n\
         {{'Action': 'CREATE', 'ResourceRecordSet': {{'Name': 'api.example.com', 'Type': 'A', 'TTL': 300, 'ResourceRecords': [{{'Value': '{ip}'}}]}}}},\n\
         {{'Action': 'CREATE', 'ResourceRecordSet': {{'Name': 'mail.example.com', 'Type': 'A', 'TTL': 300, 'ResourceRecords': [{{'Value': '192.0.2.25'}}]}}}}]}})"
    ));
    let out = emu.reconcile(&["plan", "-f", path(&s)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning dns record api.example.com A: api.example.com")
            && stdout.contains("leads where www.example.com leads now"),
        "{stdout}"
    );
    assert!(!stdout.contains("mail.example.com"), "{stdout}");
    let out = emu.reconcile(&["plan", "-f", path(&s), "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = &doc["stacks"][0]["warnings"];
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{warnings}");
    assert_eq!(warnings[0]["subject"], "dns record api.example.com A");
    // init says so among its assumptions.
    let out = emu.reconcile(&["init", "--name", "www.example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("left as they are: api.example.com A (same address as www.example.com"),
        "{said}"
    );
    assert!(!said.contains("mail.example.com"), "{said}");

    // A warning does not stop the apply; the neighbour is not the stack's to change.
    let proxy = checked_proxy(&emu, &s.manifest);
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path(&s), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("apply");
    emu.boto(&format!(
        "rs = r53.list_resource_record_sets(HostedZoneId='{zone}')['ResourceRecordSets']\n\
         api = [(r['Type'], r['ResourceRecords'][0]['Value']) for r in rs if r['Name'].rstrip('.') == 'api.example.com']\n\
         assert api == [('A', '{ip}')], api"
    ));
    // Once migrated, nothing leads where the neighbour does: no warning any more.
    let out = emu.reconcile(&["plan", "-f", path(&s), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning"));
}

/// A saved plan is carried out only as `plan --out` made it: one whose edges into the
/// closing of the backend's public rules were deleted (so that they would go first), one
/// whose change was edited, and one of an unknown format are refused before any call.
#[test]
fn a_tampered_saved_plan_is_refused_before_any_call() {
    let emu = Emulator::start();
    let s = seed_short(&emu);
    let saved = s.manifest.with_file_name("saved.plan");
    let out = emu.reconcile(&["plan", "-f", path(&s), "--out", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let tamper = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = original.clone();
        edit(&mut v);
        let p = saved.with_file_name(name);
        std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
        p
    };
    let unordered = tamper("unordered.plan", &|v| {
        let edges = v["stacks"][0]["plan"]["edges"].as_array_mut().unwrap();
        let before = edges.len();
        edges.retain(|e| e[1] != "sg.backend.rules.remove");
        assert!(edges.len() < before, "the plan closes the public rules");
    });
    let edited_node = tamper("edited.plan", &|v| {
        let nodes = v["stacks"][0]["plan"]["nodes"].as_array_mut().unwrap();
        let record = nodes
            .iter_mut()
            .find(|n| n["id"].as_str().is_some_and(|id| id.contains("lower")))
            .expect("a TTL lowering");
        record["step"] = 99.into();
    });
    let future = tamper("future.plan", &|v| v["format_version"] = "2".into());
    let unknown_id = tamper("unknown-id.plan", &|v| {
        v["stacks"][0]["plan"]["nodes"][0]["id"] = "sg.backend.wreck".into();
    });
    for (file, expect) in [
        (
            &unknown_id,
            "\"sg.backend.wreck\" is not a node id reconcile writes",
        ),
        (&unordered, "edge(s) missing"),
        (&edited_node, "it was edited"),
        (&future, "format_version \"2\""),
    ] {
        let proxy = Proxy::start(&emu.url, Box::new(|_| None));
        let out = emu.reconcile_at(&proxy.url, &["apply", file.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            file.display(),
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{}: {err}", file.display());
        assert!(
            proxy.mutating_calls().is_empty(),
            "{}: {:?}",
            file.display(),
            proxy.mutating_calls()
        );
    }
    // The plan as saved is carried out.
    let out = emu.reconcile(&["apply", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_converged(&emu, path(&s));
}
