//! The way back and the way out through the real binary: the article's migration, then its
//! reverse (`init --direct`, one `apply`), each with the availability invariant checked
//! after every mutating call, each followed by a clean plan.

use std::path::{Path, PathBuf};

use crate::emulator::{Emulator, Seeded};
use crate::proxy::Proxy;
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
fn apply_checked(emu: &Emulator, manifest: &Path, what: &str) -> Vec<String> {
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

    // Nothing of the stack's is left; the backend is open to the world on 80 and 443, keeps
    // the office rule, and no rule names the deleted group.
    let backend = s.ids["security_group"].as_str().unwrap().to_owned();
    emu.boto(&format!(
        "lbs = [l['LoadBalancerName'] for l in elb.describe_load_balancers()['LoadBalancers']]\n\
         assert lbs == [], lbs\n\
         tgs = [t['TargetGroupName'] for t in elb.describe_target_groups()['TargetGroups']]\n\
         assert tgs == [], tgs\n\
         groups = ec2.describe_security_groups()['SecurityGroups']\n\
         tagged = [g['GroupName'] for g in groups if any(t['Key'] == 'reconcile:stack' for t in g.get('Tags', []))]\n\
         assert tagged == [], tagged\n\
         g = [g for g in groups if g['GroupId'] == '{backend}'][0]\n\
         named = [p for p in g['IpPermissions'] if p.get('UserIdGroupPairs')]\n\
         assert named == [], named\n\
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
