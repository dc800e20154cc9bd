//! `reconcile plan` through the real binary against the emulator seeded with the article's
//! starting point: the JSON plan read back into typed structs, the request budget, exit
//! codes, the saved plan.

use reconcile::plan::{Gate, Op};
use reconcile::render::json::PlanDocument;

use crate::emulator::Emulator;
use crate::support::stderr;

#[test]
fn plan_of_the_starting_point_as_json() {
    let emu = Emulator::start();
    let seeded = emu.seed(&[]);
    let manifest = seeded.manifest.to_str().unwrap();
    let out = emu.reconcile(&["plan", "-f", manifest, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: PlanDocument = serde_json::from_slice(&out.stdout).expect("a plan document");
    assert_eq!(doc.format_version, "1");
    let [stack] = &doc.stacks[..] else {
        panic!("one stack")
    };
    assert_eq!(stack.stack, "www-example");
    assert!(stack.blockers.is_empty(), "{:?}", stack.blockers);
    // The checker's verdict: every state of the run covered, none breaking a guarantee (the
    // reduced search explores about a hundred for this plan, one per node and more where
    // orders matter).
    let checked = stack.checked.as_ref().expect("a checked plan");
    assert!(
        checked.complete && checked.states >= plan_nodes(stack),
        "{checked:?}"
    );
    let requests = stack.stats["requests"].as_u64().unwrap();
    let rounds = stack.stats["rounds"].as_u64().unwrap();
    assert!(requests <= 12, "{requests} requests");
    assert!(rounds <= 3, "{rounds} rounds");
    // The migration: lower the TTL, wait the old one out, switch, wait, close, restore.
    let id = |suffix: &str| {
        stack
            .changes
            .iter()
            .find(|c| c.id.ends_with(suffix))
            .unwrap_or_else(|| panic!("no change *{suffix}"))
    };
    let lower = id("A.lower-ttl");
    let switch = id("CNAME.switch");
    let close = id("sg.backend.rules.remove");
    let restore = id("CNAME.restore-ttl");
    assert!(lower.step < switch.step && switch.step < close.step && close.step < restore.step);
    let waits: Vec<u32> = stack
        .gates
        .iter()
        .filter_map(|g| match &g.gate {
            Gate::WaitTtl { seconds, .. } => Some(*seconds),
            _ => None,
        })
        .collect();
    assert_eq!(waits, vec![3600, 300]);
    let Op::RevokeIngress { rules, .. } = &close.change.op else {
        panic!("a revoke")
    };
    let revoked: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        revoked,
        vec!["tcp/80 from 0.0.0.0/0", "tcp/443 from 0.0.0.0/0"]
    );
    assert!(!stack.edges.is_empty());
}

#[test]
fn detailed_exitcode_and_saved_plan() {
    let emu = Emulator::start();
    let seeded = emu.seed(&[]);
    let manifest = seeded.manifest.to_str().unwrap();
    let saved = seeded.manifest.with_file_name("saved.plan");
    let out = emu.reconcile(&[
        "plan",
        "-f",
        manifest,
        "--detailed-exitcode",
        "--out",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Plan: 10 to add"), "{text}");
    assert!(text.contains("read in 8 requests, 2 rounds"), "{text}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let stack = &plan["stacks"][0];
    assert_eq!(stack["manifest_digest"].as_str().unwrap().len(), 64);
    assert_eq!(stack["observed_fingerprint"].as_str().unwrap().len(), 64);
    // Absolute, so that the plan applies from any folder.
    assert!(
        std::path::Path::new(stack["manifest"].as_str().unwrap()).is_absolute(),
        "{}",
        stack["manifest"]
    );
    // Without the flag, changes still exit 0.
    let out = emu.reconcile(&["plan", "-f", manifest]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // `show` renders the saved plan without reading AWS (no endpoint to read from), as
    // text and as the same document `plan --json` writes.
    let shown = crate::support::reconcile(&["show", saved.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("Plan: 10 to add"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
    let shown = crate::support::reconcile(&["show", saved.to_str().unwrap(), "--json"]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let doc: PlanDocument = serde_json::from_slice(&shown.stdout).expect("a plan document");
    let fresh = emu.reconcile(&["plan", "-f", manifest, "--json"]);
    let fresh: PlanDocument = serde_json::from_slice(&fresh.stdout).expect("a plan document");
    assert_eq!(
        serde_json::to_value(&doc.stacks[0].changes).unwrap(),
        serde_json::to_value(&fresh.stacks[0].changes).unwrap()
    );
    // For a pull-request comment: a table row per change and wait.
    let md = emu.reconcile(&["plan", "-f", manifest, "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(0), "{}", stderr(&md));
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.starts_with("### stack www-example ("), "{md}");
    assert!(md.contains("**Plan:** 10 to add"), "{md}");
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| step"))
        .count();
    let nodes = fresh.stacks[0].changes.len() + fresh.stacks[0].gates.len();
    assert_eq!(rows, nodes, "{md}");
    assert!(md.contains("Checked: "), "{md}");
}

#[test]
fn an_invalid_manifest_is_refused_before_any_aws_call() {
    // No emulator: a request would fail to connect, so exit 1 with the JSON path shows
    // nothing was sent.
    let out = crate::support::reconcile(&["plan", "-f", "tests/bad/dangling-forward.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("load_balancer.listeners[0].forward"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_name_taken_by_something_else_blocks_the_plan() {
    let emu = Emulator::start();
    let seeded = emu.seed(&[]);
    // An untagged security group with the name the stack derives for its "lb" group.
    let vpc = seeded.ids["vpc"].as_str().unwrap();
    emu.boto(&format!(
        "ec2.create_security_group(GroupName='www-example-lb', Description='someone else', VpcId='{vpc}')"
    ));
    let out = emu.reconcile(&["plan", "-f", seeded.manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("blocked security group www-example-lb"),
        "{text}"
    );
    assert!(text.contains("never takes over"), "{text}");
}

/// A mistyped flag or a missing argument is an error (exit 1), never "changes present"
/// (exit 2): a drift job must not raise a drift alarm for a typo. Help is a success.
#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    for args in [
        &[
            "plan",
            "-f",
            "manifests/site.example.json",
            "--detailed-exitcode",
            "--bogus",
        ][..],
        &["plan", "--detailed-exitcode"][..],
        &[
            "apply",
            "--max-wait",
            "soon",
            "-f",
            "manifests/site.example.json",
        ][..],
        &["frobnicate"][..],
    ] {
        let out = crate::support::reconcile(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error"), "{args:?}: {}", stderr(&out));
    }
    let out = crate::support::reconcile(&["plan", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(crate::support::stdout(&out).contains("--detailed-exitcode"));
}

/// The nodes of a stack's plan: its changes and its gates.
fn plan_nodes(stack: &reconcile::render::json::StackPlan) -> usize {
    stack.changes.len() + stack.gates.len()
}
