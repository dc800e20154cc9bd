//! `health_check.transition`: the planner checks a group with the faster values while a
//! change waits on its targets and sets the resting ones back as one of the plan's last
//! changes; the checker proves that order (a restore before the gate it would slow is
//! found); a run stopped in between is finished by the next plan.

use reconcile::model::{Desired, HealthCheck, Observed};
use reconcile::plan::{check, Gate, HealthStep, NodeKind, Op, Pace, Plan};
use reconcile::render::human::{self, Style};

use crate::fixtures::*;
use crate::support::repo_file;

/// The article's values: resting 30 s / 5 checks, 10 s / 2 during the move, on both groups.
fn article() -> Desired {
    desired_edited(|v| {
        for key in ["http", "app"] {
            let h = &mut v["target_groups"][key]["health_check"];
            h["interval_seconds"] = 30.into();
            h["healthy_threshold"] = 5.into();
            h["transition"] = serde_json::json!({ "interval_seconds": 10, "healthy_threshold": 2 });
        }
    })
}

fn position(p: &Plan, id: &str) -> usize {
    p.nodes
        .iter()
        .position(|n| n.id.to_string() == id)
        .unwrap_or_else(|| panic!("no node {id} in {:?}", ids(p)))
}

fn ids(p: &Plan) -> Vec<String> {
    p.nodes.iter().map(|n| n.id.to_string()).collect()
}

fn step(p: &Plan, id: &str) -> usize {
    p.nodes[position(p, id)].step
}

fn timing(h: &HealthCheck) -> (i32, i32) {
    (h.interval_seconds, h.healthy_threshold)
}

/// Every group's (interval, healthy threshold) in `o`, by name.
fn timings(o: &Observed) -> Vec<(String, (i32, i32))> {
    let mut v: Vec<_> = o
        .target_groups
        .iter()
        .map(|t| (t.name.clone(), timing(&t.health)))
        .collect();
    v.sort();
    v
}

/// `o` with every node of `p` run except the restores (a run stopped after its switch).
fn stopped_before_the_restore(d: &Desired, o: &Observed, p: &Plan) -> Observed {
    let order: Vec<usize> = (0..p.nodes.len())
        .filter(|&i| !p.nodes[i].id.to_string().ends_with(".health.rest"))
        .collect();
    reconcile::plan::check::model::check_order(d, o, &p.nodes, &order)
        .unwrap_or_else(|v| panic!("{v}"))
}

fn golden(name: &str, p: &Plan) {
    let text = human::plan(p, &format!("stack {}", p.stack), &Style { color: false });
    let path = repo_file(&format!("tests/output/plan-{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == text,
        "{} differs from the plan (UPDATE_GOLDEN=1 rewrites it):\n{text}",
        path.display()
    );
}

#[test]
fn the_article_creates_fast_switches_then_rests() {
    let d = article();
    let start = starting_point();
    let p = plan_of(&d, &start);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert!(p.checked.as_ref().is_some_and(|c| c.complete), "proven");
    for key in ["http", "app"] {
        let create = &p.nodes[position(&p, &format!("tg.{key}.create"))];
        let NodeKind::Change(c) = &create.kind else {
            panic!("a change")
        };
        let Op::CreateTargetGroup { health, .. } = &c.op else {
            panic!("{:?}", c.op)
        };
        assert_eq!(
            timing(health),
            (10, 2),
            "{key} is created with the transition"
        );
        let rest = &p.nodes[position(&p, &format!("tg.{key}.health.rest"))];
        let NodeKind::Change(c) = &rest.kind else {
            panic!("a change")
        };
        let Op::ModifyHealthCheck {
            health, step: how, ..
        } = &c.op
        else {
            panic!("{:?}", c.op)
        };
        assert_eq!((timing(health), *how), ((30, 5), HealthStep::Rest));
        // The restore comes once the switch's old answers have expired, after the gate it
        // would slow down, and the gate waits on the transition's timing.
        let gate = &p.nodes[position(&p, &format!("gate.tg.{key}.healthy"))];
        let NodeKind::Gate(Gate::TargetsHealthy { pace, .. }) = &gate.kind else {
            panic!("{:?}", gate.kind)
        };
        assert_eq!(
            *pace,
            Pace {
                interval_seconds: 10,
                healthy_threshold: 2
            }
        );
        assert!(step(&p, &format!("gate.tg.{key}.healthy")) < rest.step);
        assert!(step(&p, "gate.dns.www.example.com.old-answers") < rest.step);
        assert!(step(&p, "dns.www.example.com.CNAME.switch") < rest.step);
    }
    golden("starting-point-transition", &p);
    // Run to the end, the groups rest at 30 s / 5 and nothing is left to do.
    let end = run_in_order(&d, &start, &p);
    assert_eq!(
        timings(&end),
        vec![
            ("www-example-app".into(), (30, 5)),
            ("www-example-http".into(), (30, 5))
        ]
    );
    assert!(plan_of(&d, &end).nodes.is_empty(), "converged");
}

#[test]
fn a_run_stopped_after_its_switch_is_finished_by_the_restore() {
    let d = article();
    let start = starting_point();
    let p = plan_of(&d, &start);
    let stopped = stopped_before_the_restore(&d, &start, &p);
    assert!(timings(&stopped).iter().all(|(_, t)| *t == (10, 2)));
    let again = plan_of(&d, &stopped);
    assert!(again.blockers.is_empty(), "{:?}", again.blockers);
    assert_eq!(
        ids(&again),
        vec!["tg.app.health.rest", "tg.http.health.rest"],
        "only the restores are left"
    );
    for c in again.changes() {
        assert!(
            matches!(
                c.op,
                Op::ModifyHealthCheck {
                    step: HealthStep::Rest,
                    ..
                }
            ),
            "{:?}",
            c.op
        );
    }
    let end = run_in_order(&d, &stopped, &again);
    assert!(timings(&end).iter().all(|(_, t)| *t == (30, 5)));
    assert!(plan_of(&d, &end).nodes.is_empty());
}

#[test]
fn a_plan_that_waits_on_no_target_leaves_the_health_checks_alone() {
    let d = article();
    let start = starting_point();
    let converged = run_in_order(&d, &start, &plan_of(&d, &start));
    // A TLS policy set back by hand: the listener is changed in place, its targets are all
    // healthy, so no gate waits on them and neither the transition nor the restore runs.
    let mut drifted = converged.clone();
    for l in &mut drifted.load_balancers[0].listeners {
        if l.port == 443 {
            l.ssl_policy = Some("ELBSecurityPolicy-2016-08".into());
        }
    }
    let p = plan_of(&d, &drifted);
    assert!(!p.nodes.is_empty(), "the policy is put back");
    assert!(
        p.changes()
            .all(|c| !matches!(c.op, Op::ModifyHealthCheck { .. })),
        "{:?}",
        ids(&p)
    );
    let end = run_in_order(&d, &drifted, &p);
    assert_eq!(timings(&end), timings(&converged));
}

#[test]
fn an_existing_group_whose_targets_must_be_waited_on_is_sped_up_before_its_gate() {
    let d = article();
    let start = starting_point();
    let converged = run_in_order(&d, &start, &plan_of(&d, &start));
    // A target deregistered by hand: registering it again waits on the group's health.
    let mut drifted = converged.clone();
    let app = drifted
        .target_groups
        .iter_mut()
        .find(|t| t.name == "www-example-app")
        .expect("app group");
    app.targets.retain(|t| t.id != "i-0aaaaaaaaaaaaaaa2");
    let p = plan_of(&d, &drifted);
    assert!(p.checked.as_ref().is_some_and(|c| c.complete), "proven");
    let fast = step(&p, "tg.app.health.transition");
    assert!(fast < step(&p, "gate.tg.app.healthy"));
    assert!(step(&p, "gate.tg.app.healthy") < step(&p, "tg.app.health.rest"));
    assert!(
        !ids(&p).iter().any(|id| id.starts_with("tg.http.health")),
        "the other group waits on nothing: {:?}",
        ids(&p)
    );
    let end = run_in_order(&d, &drifted, &p);
    assert_eq!(timings(&end), timings(&converged));
}

#[test]
fn the_checker_finds_a_restore_ordered_before_the_gate_it_slows() {
    let d = article();
    let start = starting_point();
    let mut p = plan_of(&d, &start);
    // Drop what orders the app group's restore (but its group's creation): it may now
    // run before the group's gate.
    let rest = p.nodes[position(&p, "tg.app.health.rest")].id.clone();
    let create = p.nodes[position(&p, "tg.app.create")].id.clone();
    p.edges.retain(|(from, to)| *to != rest || *from == create);
    let err = check::check(&d, &start, &p).expect_err("the misordered restore is found");
    let c = err.counterexample().expect("a counterexample");
    let text = c.to_string();
    assert!(
        text.contains("checked every 30s, healthy after 5")
            && text.contains("every 10s, healthy after 2"),
        "{text}"
    );
}

#[test]
fn a_transition_as_slow_as_the_resting_values_changes_nothing() {
    // The same values twice: nothing to speed up, so no restore either.
    let d = desired_edited(|v| {
        for key in ["http", "app"] {
            v["target_groups"][key]["health_check"]["transition"] =
                serde_json::json!({ "interval_seconds": 30, "healthy_threshold": 2 });
        }
    });
    let p = plan_of(&d, &starting_point());
    let plain = plan_of(&desired(), &starting_point());
    assert_eq!(ids(&p), ids(&plain));
}

// ---- through the binary, on the emulator ----

/// The seeded article's manifest with `health` (resting 30 s / 5, transition 10 s / 2) on
/// both target groups.
fn with_transition(manifest: &std::path::Path) -> std::path::PathBuf {
    crate::support::edited(manifest, "transition.json", |v| {
        for key in ["http", "app"] {
            let h = &mut v["target_groups"][key]["health_check"];
            h["interval_seconds"] = 30.into();
            h["healthy_threshold"] = 5.into();
            h["transition"] = serde_json::json!({ "interval_seconds": 10, "healthy_threshold": 2 });
        }
    })
}

/// (interval, healthy threshold) a CreateTargetGroup or ModifyTargetGroup call sets.
fn timing_sent(body: &str) -> (u32, u32) {
    let field = |name: &str| {
        body.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        field("HealthCheckIntervalSeconds"),
        field("HealthyThresholdCount"),
    )
}

/// Every group of the stack's (interval, healthy threshold), as the emulator holds them.
fn live_timings(emu: &crate::emulator::Emulator) -> String {
    emu.boto_output(
        "print(sorted((g['TargetGroupName'], g['HealthCheckIntervalSeconds'], g['HealthyThresholdCount']) for g in elb.describe_target_groups()['TargetGroups'] if g['TargetGroupName'].startswith('www-example')))",
    )
    .trim()
    .to_owned()
}

const RESTED: &str = "[('www-example-app', 30, 5), ('www-example-http', 30, 5)]";

#[test]
fn the_migration_checks_fast_and_rests_after_its_old_answers_expired() {
    use crate::emulator::Emulator;
    use crate::proxy::Proxy;
    use crate::support::{desired, text};
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = with_transition(&s.manifest);
    let path = m.to_str().unwrap();
    let (proxy, _) = Proxy::checked(&emu.url, desired(&m));
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", path, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("the migration");
    let calls = proxy.mutating_calls();
    let creates: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "CreateTargetGroup")
        .collect();
    assert_eq!(creates.len(), 2);
    for c in &creates {
        assert_eq!(timing_sent(&c.body), (10, 2), "created fast: {}", c.body);
    }
    let switch = calls
        .iter()
        .find(|c| {
            c.operation == "ChangeResourceRecordSets" && c.body.contains("<Type>CNAME</Type>")
        })
        .expect("the switch");
    let modifies: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "ModifyTargetGroup")
        .collect();
    assert_eq!(modifies.len(), 2, "one restore per group");
    for c in &modifies {
        assert_eq!(timing_sent(&c.body), (30, 5), "restored: {}", c.body);
        // The switch's old answers (TTL 1 s) expire before the restore.
        assert!(
            c.at >= switch.at + std::time::Duration::from_secs(1),
            "the restore waits the switch's old answers out"
        );
    }
    assert_eq!(live_timings(&emu), RESTED);
    let out = emu.reconcile(&["plan", "-f", path, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "plans clean: {}", text(&out));
    // A group put back on the transition's values by hand: the restore is drift.
    emu.boto(
        "[elb.modify_target_group(TargetGroupArn=g['TargetGroupArn'], HealthCheckIntervalSeconds=10, HealthyThresholdCount=2) for g in elb.describe_target_groups()['TargetGroups'] if g['TargetGroupName'] == 'www-example-app']",
    );
    let out = emu.reconcile(&["plan", "-f", path, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("target_group www-example-app (health check: resting)")
            && shown.contains("1 to change"),
        "{shown}"
    );
}

#[test]
fn a_migration_killed_after_its_switch_ends_on_the_resting_values() {
    use crate::emulator::Emulator;
    use crate::proxy::{Options, Proxy};
    use crate::support::{desired, text};
    use std::sync::{Arc, Mutex};
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = with_transition(&s.manifest);
    let path = m.to_str().unwrap();
    let (checked, inv) = Proxy::checked(&emu.url, desired(&m));
    let pid = Arc::new(Mutex::new(None));
    let check = inv.clone();
    let killing = Proxy::with(
        &emu.url,
        Options {
            check: Some(Box::new(move |_| check.lock().unwrap().check())),
            kill_on: Some(("<Type>CNAME</Type>".into(), pid.clone())),
            ..Options::default()
        },
    );
    let child = crate::reliability::spawn(&killing.url, &["apply", "-f", path, "--yes"]);
    *pid.lock().unwrap() = Some(child.id());
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), None, "killed: {}", text(&first));
    killing.assert_clean("the killed run");
    let calls = killing.mutating_calls();
    let switch = calls
        .iter()
        .position(|c| c.body.contains("<Type>CNAME</Type>"))
        .expect("the switch was sent");
    // Calls already on their way when the process died may still arrive; none of them is
    // a change of a health check.
    assert!(
        calls[switch..]
            .iter()
            .all(|c| c.operation != "ModifyTargetGroup"),
        "killed right after the switch: {:?}",
        calls[switch..]
            .iter()
            .map(|c| &c.operation)
            .collect::<Vec<_>>()
    );
    // Left on the transition's values, which the next plan restores.
    assert_eq!(
        live_timings(&emu),
        "[('www-example-app', 10, 2), ('www-example-http', 10, 2)]"
    );
    let out = emu.reconcile(&["plan", "-f", path, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(health check: resting)"),
        "{}",
        text(&out)
    );
    let out = emu.reconcile_at(&checked.url, &["apply", "-f", path, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The rerun takes the killed run's lock over (a refused create of the lock group is
    // how it finds it); the site was served after every call.
    let log = checked.log.lock().unwrap();
    assert!(log.violations.is_empty(), "{:#?}", log.violations);
    drop(log);
    assert_eq!(live_timings(&emu), RESTED);
    let out = emu.reconcile(&["plan", "-f", path, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
