//! Many stacks in one run: ten stacks in one seeded account, read in one batched pass
//! (fewer than 8 requests per stack on average, at most 4 rounds), each stack planned
//! exactly as when it is planned alone, applied together (several at once, each labelled),
//! and drift in one of them found.

use std::collections::{BTreeMap, BTreeSet};

use reconcile::render::json::{PlanDocument, StackPlan};

use crate::emulator::Emulator;
use crate::support::text;

const STACKS: usize = 10;

/// `reconcile plan ... --json`: its exit code and document.
fn plan_json(emu: &Emulator, files: &str, detailed: bool) -> (Option<i32>, PlanDocument) {
    let mut args = vec!["plan", "-f", files, "--json"];
    if detailed {
        args.push("--detailed-exitcode");
    }
    let out = emu.reconcile(&args);
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a plan document ({e}):\n{}", text(&out)));
    (out.status.code(), doc)
}

/// What a stack's plan decides, without the read's statistics.
fn decisions(s: &StackPlan) -> serde_json::Value {
    serde_json::json!([s.changes, s.gates, s.edges, s.blockers])
}

/// The run's cost against the targets for many stacks.
fn check_cost(what: &str, doc: &PlanDocument) {
    let requests = doc.stats["requests"].as_u64().unwrap_or(u64::MAX) as usize;
    let rounds = doc.stats["rounds"].as_u64().unwrap_or(u64::MAX);
    eprintln!("{what}: {}", doc.stats);
    assert_eq!(doc.stats["stacks"], STACKS);
    assert!(
        requests < 8 * STACKS,
        "{what}: {requests} requests for {STACKS} stacks"
    );
    assert!(rounds <= 4, "{what}: {rounds} rounds");
}

#[test]
fn ten_stacks_are_read_together_applied_and_converge() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("stacks");
    let folder = folder.to_str().unwrap();
    emu.seed(&["--stacks", &STACKS.to_string(), "--stacks-dir", folder]);

    // Planned together: every stack there, labelled, and the read within the targets.
    let (code, doc) = plan_json(&emu, folder, true);
    assert_eq!(code, Some(2), "changes, with --detailed-exitcode");
    let names: BTreeSet<String> = doc.stacks.iter().map(|s| s.stack.clone()).collect();
    let want: BTreeSet<String> = (1..=STACKS).map(|i| format!("site-{i}")).collect();
    assert_eq!(names, want);
    for s in &doc.stacks {
        assert!(s.blockers.is_empty(), "{}: {:?}", s.stack, s.blockers);
        assert_eq!(s.summary.create, 11, "{}", s.stack);
    }
    check_cost("empty, 10 stacks", &doc);

    // Each stack's share of the read gives the plan a read of it alone gives.
    for s in &doc.stacks {
        let (_, alone) = plan_json(&emu, &s.manifest, false);
        let [alone] = &alone.stacks[..] else {
            panic!("one stack")
        };
        assert_eq!(decisions(alone), decisions(s), "{}", s.stack);
    }

    // Applied together, three at a time; then nothing is left to do for any of them.
    let out = emu.reconcile(&[
        "apply",
        "-f",
        folder,
        "--yes",
        "--json",
        "--parallel-stacks",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    crate::support::assert_events_valid(&String::from_utf8_lossy(&out.stdout));
    let events = crate::support::events(&out.stdout);
    let mut spans: BTreeMap<String, (usize, Option<usize>)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let stack = e["stack"]
            .as_str()
            .unwrap_or_else(|| panic!("no stack: {e}"));
        let span = spans.entry(stack.to_owned()).or_insert((i, None));
        if e["event"] == "ran" {
            assert_eq!(e["finished"], "done", "{e}");
            span.1 = Some(i);
        }
    }
    assert_eq!(spans.keys().cloned().collect::<BTreeSet<_>>(), want);
    let in_flight = (0..events.len())
        .map(|i| {
            spans
                .values()
                .filter(|(first, ran)| *first <= i && ran.is_some_and(|r| i <= r))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        (2..=3).contains(&in_flight),
        "stacks in flight at once: {in_flight} (at most 3 asked, and more than one expected)"
    );
    let (code, doc) = plan_json(&emu, folder, true);
    assert_eq!(code, Some(0), "converged: {:?}", doc.stats);
    check_cost("converged, 10 stacks", &doc);
    // 30 ARNs (a load balancer and two target groups per stack), whole stacks per call.
    assert_eq!(doc.stats["by_operation"]["DescribeTags"], 2);
    for s in &doc.stacks {
        // Its listings, shared, and its own listeners, target health and tags.
        assert!(s.stats["shared"].as_u64() >= Some(7), "{}", s.stats);
        assert_eq!(s.stats["by_operation"]["DescribeTargetHealth"], 2);
    }

    // Drift in one stack: the run exits 2, and only that stack has changes.
    emu.boto(
        "lb = elb.describe_load_balancers(Names=['site-7'])['LoadBalancers'][0]['LoadBalancerArn']\n\
         l = [x for x in elb.describe_listeners(LoadBalancerArn=lb)['Listeners'] if x['Port'] == 80][0]\n\
         elb.delete_listener(ListenerArn=l['ListenerArn'])",
    );
    let (code, doc) = plan_json(&emu, folder, true);
    assert_eq!(code, Some(2));
    let drifted: Vec<&str> = doc
        .stacks
        .iter()
        .filter(|s| !s.changes.is_empty())
        .map(|s| s.stack.as_str())
        .collect();
    assert_eq!(drifted, ["site-7"]);

    // Two stacks drift; applied at once, each line of progress says which stack it is about.
    emu.boto(
        "lb = elb.describe_load_balancers(Names=['site-8'])['LoadBalancers'][0]['LoadBalancerArn']\n\
         l = [x for x in elb.describe_listeners(LoadBalancerArn=lb)['Listeners'] if x['Port'] == 80][0]\n\
         elb.delete_listener(ListenerArn=l['ListenerArn'])",
    );
    let out = emu.reconcile(&["apply", "-f", folder, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ["site-7", "site-8"] {
        assert!(
            stdout.contains(&format!("stack {name}: apply complete")),
            "{name} not applied:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("  [{name}] + listener ")),
            "{name}'s progress is not labelled:\n{stdout}"
        );
    }
    let (code, _) = plan_json(&emu, folder, true);
    assert_eq!(code, Some(0));

    // The human plan labels every stack and ends with the run's figures.
    let out = emu.reconcile(&["plan", "-f", folder]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in &want {
        assert!(
            stdout.contains(&format!("stack {name} (")),
            "{name}:\n{stdout}"
        );
    }
    assert!(stdout.contains("10 stacks read in "), "{stdout}");
}

#[test]
fn one_stack_failing_does_not_stop_the_others() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("stacks");
    let s = emu.seed(&["--stacks", "3", "--stacks-dir", folder.to_str().unwrap()]);
    // site-2 is served by a stopped instance only: it cannot be registered.
    let subnet = s.ids["subnets"][0].as_str().unwrap();
    let ami = s.ids["ami"].as_str().unwrap();
    let stopped = dir.path().join("stopped");
    emu.boto(&format!(
        "i = ec2.run_instances(ImageId='{ami}', MinCount=1, MaxCount=1, SubnetId='{subnet}')['Instances'][0]['InstanceId']\n\
         ec2.stop_instances(InstanceIds=[i])\n\
         open({:?}, 'w').write(i)",
        stopped.display().to_string()
    ));
    let stopped = std::fs::read_to_string(stopped).unwrap();
    let site2 = folder.join("site-2.json");
    crate::support::edited(&site2, "site-2.json", |m| {
        for tg in m["target_groups"].as_object_mut().unwrap().values_mut() {
            tg["targets"] = serde_json::json!([stopped]);
        }
    });

    let out = emu.reconcile(&["apply", "-f", folder.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for done in ["site-1", "site-3"] {
        assert!(
            stdout.contains(&format!("stack {done}: apply complete")),
            "{done} should finish:\n{}",
            text(&out)
        );
    }
    assert!(stderr.contains("error: stack site-2:"), "{stderr}");
    // AWS (and moto) refuse to register an instance that is not running.
    assert!(stderr.contains(&format!("'{stopped}'")), "{stderr}");
    assert!(stderr.contains("not in a running state"), "{stderr}");
    assert!(
        stderr.contains("Stack site-2 stopped (see above). Run `reconcile apply` again"),
        "{stderr}"
    );
    for (manifest, code) in [("site-1.json", 0), ("site-3.json", 0), ("site-2.json", 2)] {
        let path = folder.join(manifest);
        let out = emu.reconcile(&["plan", "-f", path.to_str().unwrap(), "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(code), "{manifest}:\n{}", text(&out));
    }
}

#[test]
fn stacks_sharing_an_exclusive_backend_group_keep_each_others_rules() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("stacks");
    let s = emu.seed(&["--stacks", "2", "--stacks-dir", folder.to_str().unwrap()]);
    let shared = s.ids["stack_backends"][0].as_str().unwrap().to_owned();
    let site2 = folder.join("site-2.json");
    crate::support::edited(&site2, "site-2.json", |m| {
        m["security_groups"]["backend"]["existing"] = shared.clone().into();
        m["security_groups"]["backend"]["exclusive"] = true.into();
    });
    let site1 = folder.join("site-1.json");
    crate::support::edited(&site1, "site-1.json", |m| {
        m["security_groups"]["backend"]["exclusive"] = true.into();
    });
    let folder = folder.to_str().unwrap();
    let out = emu.reconcile(&["apply", "-f", folder, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Each stack, planned alone or together, leaves the other's load balancer let in.
    for files in [
        vec![folder],
        vec![site1.to_str().unwrap()],
        vec![site2.to_str().unwrap()],
    ] {
        let mut args = vec!["plan", "--detailed-exitcode"];
        for f in &files {
            args.extend(["-f", f]);
        }
        let out = emu.reconcile(&args);
        assert_eq!(out.status.code(), Some(0), "{files:?}:\n{}", text(&out));
    }
    emu.boto(&format!(
        "g = ec2.describe_security_groups(GroupIds=['{shared}'])['SecurityGroups'][0]\n\
         names = {{x['GroupId']: x['GroupName'] for x in ec2.describe_security_groups()['SecurityGroups']}}\n\
         admitted = sorted({{names[p['GroupId']] for r in g['IpPermissions'] for p in r.get('UserIdGroupPairs', [])}})\n\
         assert admitted == ['site-1-lb', 'site-2-lb'], admitted"
    ));
}

/// Two stacks that manage the same record would flip it between their load balancers on
/// every apply: both are blocked, each naming the other, before any change.
#[test]
fn a_record_managed_by_two_stacks_blocks_both() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("stacks");
    emu.seed(&["--stacks", "2", "--stacks-dir", folder.to_str().unwrap()]);
    let first = folder.join("site-1.json");
    let second = folder.join("site-2.json");
    let one: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    let name = one["dns"]["records"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::support::edited(&second, "site-2.json", |v| {
        v["dns"]["records"][0]["name"] = name.clone().into();
        for (_, cert) in v["certificates"].as_object_mut().unwrap() {
            cert["domain"] = "*.example.com".into();
        }
    });
    let out = emu.reconcile(&["plan", "-f", folder.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{name} is also managed by stack site-2"))
            && said.contains(&format!("{name} is also managed by stack site-1")),
        "{}",
        text(&out)
    );
    let out = emu.reconcile(&["apply", "-f", folder.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    emu.boto("assert not elb.describe_load_balancers()['LoadBalancers'], 'nothing was created'");
}

/// A stack whose lock another run holds is left out; the other stacks of the run go on
/// (and the run exits 1, naming the locked stack).
#[test]
fn a_held_lock_stops_only_its_own_stack() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("stacks");
    let s = emu.seed(&["--stacks", "2", "--stacks-dir", folder.to_str().unwrap()]);
    let by = crate::reliability::HeldBy {
        stack: "site-2",
        holder: "dave",
        host: "elsewhere",
        pid: 7,
        machine: "elsewhere",
        expires_in: 600,
    };
    crate::reliability::held_lock(&emu, s.ids["vpc"].as_str().unwrap(), &by);
    let out = emu.reconcile(&[
        "apply",
        "-f",
        folder.to_str().unwrap(),
        "--yes",
        "--lock-timeout",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stack site-2 is locked by dave"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stack site-1: apply complete"),
        "{}",
        text(&out)
    );
    for (manifest, code) in [("site-1.json", 0), ("site-2.json", 2)] {
        let path = folder.join(manifest);
        let out = emu.reconcile(&["plan", "-f", path.to_str().unwrap(), "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(code), "{manifest}:\n{}", text(&out));
    }
}
