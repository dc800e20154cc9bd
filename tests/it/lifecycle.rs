//! The way back and the way out through the real binary: the article's migration, then its
//! reverse (`init --direct`, one `apply`), each with the availability invariant checked
//! after every mutating call, each followed by a clean plan.

use std::path::{Path, PathBuf};

use crate::emulator::{Emulator, Seeded};
use std::sync::{Arc, Mutex};

use crate::proxy::{Options, Proxy};
use crate::support::{desired, text};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_converged(emu: &Emulator, manifest: &Path, what: &str) {
    let out = emu.reconcile(&["plan", "-f", path(manifest), "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: not converged:\n{}",
        text(&out)
    );
}

/// One apply of `manifest` through a proxy checking its invariant after every mutating
/// call; returns the operations that reached the emulator, in order.
pub fn apply_checked(emu: &Emulator, manifest: &Path, what: &str) -> Vec<String> {
    let (proxy, _) = Proxy::checked(&emu.url, desired(manifest));
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path(manifest), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
    proxy.assert_clean(what);
    assert!(
        proxy.log.lock().unwrap().checks > 0,
        "{what}: nothing was checked"
    );
    assert_converged(emu, manifest, what);
    proxy
        .mutating_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect()
}

/// `reconcile init --direct` for the seeded site, written next to its manifest.
pub fn init_direct(emu: &Emulator, s: &Seeded) -> PathBuf {
    let out_file = s.manifest.with_file_name("direct.json");
    let out = emu.reconcile(&[
        "init",
        "--direct",
        "--name",
        "www.example.com",
        "-o",
        path(&out_file),
    ]);
    assert_eq!(out.status.code(), Some(0), "init --direct: {}", text(&out));
    out_file
}

/// No load balancer, target group or group tagged with a stack is left, and no rule of any
/// group names another group.
fn assert_nothing_of_the_stack_left(emu: &Emulator) {
    emu.boto(
        "lbs = elb.describe_load_balancers()['LoadBalancers']\n\
         assert lbs == [], lbs\n\
         tgs = elb.describe_target_groups()['TargetGroups']\n\
         assert tgs == [], tgs\n\
         groups = ec2.describe_security_groups()['SecurityGroups']\n\
         tagged = [g['GroupName'] for g in groups if any(t['Key'] == 'reconcile:stack' for t in g.get('Tags', []))]\n\
         assert tagged == [], tagged\n\
         named = [(g['GroupName'], p) for g in groups for p in g['IpPermissions'] if p.get('UserIdGroupPairs')]\n\
         assert named == [], named",
    );
}

#[test]
fn the_migration_and_its_reverse_each_keep_the_site_served() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    apply_checked(&emu, &s.manifest, "the migration");

    let direct = init_direct(&emu, &s);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&direct).unwrap()).unwrap();
    let eip = s.ids["eip"]["public_ip"].as_str().unwrap();
    let record = &m["dns"]["records"][0];
    assert_eq!(record["type"], "A", "{m}");
    assert_eq!(record["values"], serde_json::json!([eip]), "{m}");
    assert!(m.get("load_balancer").is_none(), "{m}");
    let out = emu.reconcile(&["validate", "-f", path(&direct)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let ops = apply_checked(&emu, &direct, "the way back");
    let first = |op: &str| {
        ops.iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("no {op} in {ops:?}"))
    };
    let last = |op: &str| ops.iter().rposition(|o| o == op).unwrap();
    // The direct path opens before anything that leads away from the load balancer, and
    // the load balancer, its groups and the backend's rules admitting it go last.
    assert!(
        first("AuthorizeSecurityGroupIngress") < first("DeleteLoadBalancer"),
        "{ops:?}"
    );
    assert!(
        first("DeleteLoadBalancer") < first("DeleteTargetGroup"),
        "{ops:?}"
    );
    assert!(
        last("RevokeSecurityGroupIngress") < first("DeleteSecurityGroup"),
        "{ops:?}"
    );

    // Nothing of the stack's is left; the backend is open to the world on 80 and 443 and
    // keeps the office rule.
    assert_nothing_of_the_stack_left(&emu);
    let backend = s.ids["security_group"].as_str().unwrap().to_owned();
    emu.boto(&format!(
        "g = ec2.describe_security_groups(GroupIds=['{backend}'])['SecurityGroups'][0]\n\
         perms = sorted((p['FromPort'], r['CidrIp']) for p in g['IpPermissions'] for r in p.get('IpRanges', []))\n\
         assert perms == [(22, '198.51.100.0/24'), (80, '0.0.0.0/0'), (443, '0.0.0.0/0')], perms\n\
         recs = r53.list_resource_record_sets(HostedZoneId='{zone}')['ResourceRecordSets']\n\
         www = [(r['Type'], r.get('TTL'), [v['Value'] for v in r.get('ResourceRecords', [])]) for r in recs if r['Name'] == 'www.example.com.']\n\
         assert www == [('A', 3, ['{eip}'])], www\n\
         assert not [r for r in recs if r['Name'].startswith('_reconcile.')], recs",
        zone = s.ids["zone_id"].as_str().unwrap(),
    ));

    // And forward again: the way back is a manifest like any other.
    apply_checked(&emu, &s.manifest, "the migration again");
}

#[test]
fn init_direct_refuses_a_site_not_behind_a_load_balancer() {
    let emu = Emulator::start();
    let _s = emu.seed(&[]);
    let out = emu.reconcile(&["init", "--direct", "--name", "www.example.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("which is not a load balancer"), "{all}");
    assert!(all.contains("nothing was written"), "{all}");
}

#[test]
fn destroy_is_refused_while_the_record_leads_to_the_load_balancer() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let out = emu.reconcile(&["apply", "-f", path(&s.manifest), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let proxy = Proxy::start(&emu.url, Box::new(|_| None));
    let out = emu.reconcile_at(&proxy.url, &["destroy", "-f", path(&s.manifest), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("www.example.com still leads to the stack's load balancer www-example"),
        "{all}"
    );
    assert!(all.contains("init --direct"), "{all}");
    assert!(
        proxy.mutating_calls().is_empty(),
        "refused before any change, the lock's included: {:?}",
        proxy.mutating_calls()
    );
    let out = emu.reconcile(&["plan", "--destroy", "-f", path(&s.manifest)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A manifest that manages no record cannot tell: the destroy is shown with a warning.
    let blind = crate::support::edited(&s.manifest, "no-dns.json", |v| {
        v.as_object_mut().unwrap().remove("dns");
    });
    let out = emu.reconcile(&["plan", "--destroy", "-f", path(&blind)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("the manifest manages no DNS record"), "{all}");
    assert!(all.contains("- load_balancer www-example"), "{all}");
}

/// The way back stopped right after its switch (`--max-wait`), then `destroy`: it waits out
/// the answers that still lead to the load balancer (from the marker the switch left), then
/// deletes everything the stack owns, the site served throughout; nothing tagged is left.
/// Killed after each mutating call and run again, it still finishes.
#[test]
fn destroy_waits_out_the_switch_deletes_everything_and_resumes() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let out = emu.reconcile(&["apply", "-f", path(&s.manifest), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let direct = init_direct(&emu, &s);
    // A longer TTL after the switch, so that the load balancer's answers are still held.
    let direct = crate::support::edited(&direct, "direct-slow.json", |v| {
        v["dns"]["records"][0]["ttl"] = 20.into();
        v["dns"]["records"][0]["transition_ttl"] = 8.into();
    });
    let (proxy, inv) = Proxy::checked(&emu.url, desired(&direct));
    let mut switched = false;
    for _ in 0..10 {
        let out = emu.reconcile_at(
            &proxy.url,
            &[
                "apply",
                "-f",
                path(&direct),
                "--yes",
                "--max-wait",
                "0s",
                "--detailed-exitcode",
            ],
        );
        assert_eq!(out.status.code(), Some(3), "paused: {}", text(&out));
        if proxy
            .mutating_calls()
            .iter()
            .any(|c| c.operation == "ChangeResourceRecordSets")
            && String::from_utf8_lossy(&out.stdout).contains("answers given before the switch")
        {
            switched = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert!(switched, "the way back paused after its switch");
    // Destroy through the same checker: it must wait the switch's answers out first.
    let before = proxy.mutating_calls().len();
    let out = emu.reconcile_at(
        &proxy.url,
        &[
            "destroy",
            "-f",
            path(&direct),
            "--yes",
            "--max-wait",
            "0s",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "destroy waits: {}", text(&out));
    let deleted = proxy.mutating_calls()[before..]
        .iter()
        .any(|c| c.operation == "DeleteLoadBalancer");
    assert!(
        !deleted,
        "the load balancer stays while its answers are held"
    );
    // Then killed right after its third mutating call (past the lock), and run again to
    // the end, the same checker watching.
    std::thread::sleep(std::time::Duration::from_secs(9));
    let pid = Arc::new(Mutex::new(None));
    let check = inv.clone();
    let killing = Proxy::with(
        &emu.url,
        Options {
            check: Some(Box::new(move |_| check.lock().unwrap().check())),
            kill_after: Some((3, pid.clone())),
            ..Options::default()
        },
    );
    let child = crate::reliability::spawn(&killing.url, &["destroy", "-f", path(&direct), "--yes"]);
    *pid.lock().unwrap() = Some(child.id());
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), None, "killed: {}", text(&first));
    killing.assert_clean("the killed destroy");
    let out = emu.reconcile_at(&proxy.url, &["destroy", "-f", path(&direct), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The rerun took over the killed run's lock (a refused create of the lock group is
    // how it finds it); the site was served after every call of every run.
    for p in [&proxy, &killing] {
        let log = p.log.lock().unwrap();
        assert!(log.violations.is_empty(), "{:#?}", log.violations);
    }
    let out = emu.reconcile(&[
        "plan",
        "--destroy",
        "-f",
        path(&direct),
        "--detailed-exitcode",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nothing left to destroy: {}",
        text(&out)
    );
    assert_nothing_of_the_stack_left(&emu);
}

/// A site behind a load balancer made by hand (the article done from its checklist, nothing
/// tagged): `init` writes a manifest adopting the load balancer, its target groups and its
/// group; its plan shows the adoptions and nothing else; `apply` tags them and sends no
/// other change; then a change to the manifest (the backend's public rules closed, a health
/// check of an adopted group changed) is applied under the availability invariant.
#[test]
fn a_site_behind_a_hand_made_load_balancer_is_adopted_then_managed() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1", "--handmade"]);
    let hand = &s.ids["handmade"];
    let adopt = s.manifest.with_file_name("adopt.json");
    let out = emu.reconcile(&["init", "--name", "www.example.com", "-o", path(&adopt)]);
    assert_eq!(out.status.code(), Some(0), "init: {}", text(&out));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&adopt).unwrap()).unwrap();
    assert_eq!(m["load_balancer"]["adopt"], hand["load_balancer"], "{m}");
    let mut adopted: Vec<&str> = m["target_groups"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["adopt"].as_str().unwrap())
        .collect();
    adopted.sort_unstable();
    let mut made: Vec<&str> = hand["target_groups"]
        .as_object()
        .unwrap()
        .values()
        .map(|a| a.as_str().unwrap())
        .collect();
    made.sort_unstable();
    assert_eq!(adopted, made, "{m}");
    assert_eq!(
        m["security_groups"]["lb"]["adopt"], hand["security_group"],
        "{m}"
    );
    assert_eq!(m["security_groups"]["backend"]["exclusive"], false, "{m}");

    let out = emu.reconcile(&["plan", "-f", path(&adopt), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("⇐ load_balancer handmade"), "{shown}");
    assert!(
        shown.contains("4 to adopt, 0 to add, 0 to change, 0 to replace, 0 to remove"),
        "{shown}"
    );

    let ops = apply_checked(&emu, &adopt, "the adoption");
    assert!(
        ops.iter().all(|o| o == "AddTags" || o == "CreateTags"),
        "nothing but tags: {ops:?}"
    );
    assert_eq!(ops.len(), 4, "{ops:?}");
    emu.boto(&format!(
        "tags = elb.describe_tags(ResourceArns=['{lb}'])['TagDescriptions'][0]['Tags']\n\
         assert {{'Key': 'reconcile:stack', 'Value': 'www-example'}} in tags, tags\n\
         g = ec2.describe_security_groups(GroupIds=['{sg}'])['SecurityGroups'][0]\n\
         assert {{'Key': 'reconcile:stack', 'Value': 'www-example'}} in g['Tags'], g",
        lb = hand["load_balancer"].as_str().unwrap(),
        sg = hand["security_group"].as_str().unwrap(),
    ));

    // Now the stack's: the checklist's last step (the backend's public rules closed) and a
    // faster health check on an adopted group.
    let app = m["target_groups"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, t)| t["port"] == 8088)
        .map(|(k, _)| k.clone())
        .unwrap();
    let changed = crate::support::edited(&adopt, "adopted-changed.json", |v| {
        v["security_groups"]["backend"]["exclusive"] = true.into();
        v["target_groups"][&app]["health_check"]["interval_seconds"] = 10.into();
    });
    let ops = apply_checked(&emu, &changed, "a change to what was adopted");
    assert!(
        ops.contains(&"RevokeSecurityGroupIngress".to_owned()),
        "{ops:?}"
    );
    assert!(ops.contains(&"ModifyTargetGroup".to_owned()), "{ops:?}");
    let backend = s.ids["security_group"].as_str().unwrap();
    emu.boto(&format!(
        "g = ec2.describe_security_groups(GroupIds=['{backend}'])['SecurityGroups'][0]\n\
         public = [p['FromPort'] for p in g['IpPermissions'] for r in p.get('IpRanges', []) if r['CidrIp'] == '0.0.0.0/0']\n\
         assert public == [], public"
    ));

    // And the way back from it: the manifest of the way back names no load balancer, and
    // the one adopted is found by its tag through the record, moved away from, and deleted
    // with its target groups and group.
    let direct = init_direct(&emu, &s);
    apply_checked(&emu, &direct, "the way back from what was adopted");
    assert_nothing_of_the_stack_left(&emu);
}

/// `init` on a site behind its own stack's load balancer writes a plain manifest (no
/// `adopt`) whose plan is clean.
#[test]
fn init_on_a_stack_s_own_site_writes_a_manifest_with_a_clean_plan() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "2", "--transition-ttl", "1"]);
    let out = emu.reconcile(&["apply", "-f", path(&s.manifest), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let again = s.manifest.with_file_name("again.json");
    let out = emu.reconcile(&["init", "--name", "www.example.com", "-o", path(&again)]);
    assert_eq!(out.status.code(), Some(0), "init: {}", text(&out));
    let written = std::fs::read_to_string(&again).unwrap();
    assert!(!written.contains("\"adopt\""), "{written}");
    assert!(written.contains("\"stack\": \"www-example\""), "{written}");
    assert_converged(
        &emu,
        &again,
        "the manifest init wrote for the stack's own site",
    );
}
