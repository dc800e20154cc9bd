//! `reconcile init` against the emulator seeded with the article's starting point: the
//! manifest it writes validates, applies with the site up after every call, and converges;
//! names it cannot follow are clear errors that write nothing.

use crate::emulator::Emulator;
use crate::proxy::Proxy;
use crate::support::{desired, text};

#[test]
fn init_plan_apply_is_the_whole_migration() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3"]);
    let out_file = s.manifest.with_file_name("init.json");
    let out_path = out_file.to_str().unwrap();
    let out = emu.reconcile(&["init", "--name", "www.example.com", "-o", out_path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for said in [
        "health check: HTTP /health/",
        "health check timing: every 10s, healthy after 2 passing checks while the site moves",
        "stack: www-example",
        "listeners: 80",
        "certificate: arn:aws:acm",
    ] {
        assert!(err.contains(said), "init should say {said:?}:\n{err}");
    }
    // What it found is the seeded account.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(m["vpc"], s.ids["vpc"]);
    assert_eq!(
        m["security_groups"]["backend"]["existing"],
        s.ids["security_group"]
    );
    let sorted = |v: &serde_json::Value| {
        let mut ids: Vec<String> = serde_json::from_value(v.clone()).unwrap();
        ids.sort();
        ids
    };
    assert_eq!(
        sorted(&m["target_groups"]["app"]["targets"]),
        sorted(&s.ids["instances"])
    );
    let mut subnets: Vec<String> =
        serde_json::from_value(m["load_balancer"]["subnets"].clone()).unwrap();
    let mut seeded: Vec<String> = serde_json::from_value(s.ids["subnets"].clone()).unwrap();
    subnets.sort();
    seeded.sort();
    assert_eq!(subnets, seeded);
    assert_eq!(m["dns"]["records"][0]["ttl"], 3);
    for key in ["http", "app"] {
        let h = &m["target_groups"][key]["health_check"];
        assert_eq!(
            (&h["interval_seconds"], &h["healthy_threshold"]),
            (&30.into(), &5.into()),
            "{key} at rest: {h}"
        );
        assert_eq!(
            h["transition"],
            serde_json::json!({ "interval_seconds": 10, "healthy_threshold": 2 }),
            "{key} during the move"
        );
    }
    // The office ssh rule is kept; the public web rules are not in the manifest.
    let ingress = m["security_groups"]["backend"]["ingress"].to_string();
    assert!(
        ingress.contains("198.51.100.0/24") && ingress.contains("office ssh"),
        "{ingress}"
    );
    assert!(!ingress.contains("0.0.0.0/0"), "{ingress}");
    let out = emu.reconcile(&["validate", "-f", out_path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // apply, with the invariant checked after every mutating call.
    let (proxy, _) = Proxy::checked(&emu.url, desired(&out_file));
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", out_path, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = proxy.log.lock().unwrap();
    assert!(log.violations.is_empty(), "{:#?}", log.violations);
    assert!(log.checks >= 15);
    drop(log);
    let out = emu.reconcile(&["plan", "-f", out_path, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn init_refuses_what_it_cannot_follow_and_writes_nothing() {
    let emu = Emulator::start();
    let s = emu.seed(&[]);
    let out_file = s.manifest.with_file_name("init.json");
    let out_path = out_file.to_str().unwrap();
    // A name with no record.
    let out = emu.reconcile(&["init", "--name", "shop.example.com", "-o", out_path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("shop.example.com has no A, AAAA or CNAME record in zone example.com"),
        "{}",
        text(&out)
    );
    assert!(!out_file.exists());
    // A name in no zone.
    let out = emu.reconcile(&["init", "--name", "www.example.org", "-o", out_path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no Route53 hosted zone holds www.example.org"),
        "{}",
        text(&out)
    );
    // An address that no instance holds.
    let zone = s.ids["zone_id"].as_str().unwrap();
    emu.boto(&format!(
        "r53.change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [{{'Action': 'UPSERT', 'ResourceRecordSet': {{'Name': 'old.example.com', 'Type': 'A', 'TTL': 300, 'ResourceRecords': [{{'Value': '203.0.113.99'}}]}}}}]}})"
    ));
    let out = emu.reconcile(&["init", "--name", "old.example.com", "-o", out_path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("203.0.113.99, which no instance in this region holds"),
        "{}",
        text(&out)
    );
    assert!(!out_file.exists());
    // An existing file is kept without --force.
    std::fs::write(&out_file, "keep me").unwrap();
    let out = emu.reconcile(&["init", "--name", "www.example.com", "-o", out_path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass --force"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "keep me");
    let out = emu.reconcile(&[
        "init",
        "--name",
        "www.example.com",
        "-o",
        out_path,
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(std::fs::read_to_string(&out_file)
        .unwrap()
        .contains("\"stack\": \"www-example\""));
}
