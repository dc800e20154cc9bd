//! Pure planner tests: fixtures in, plan out, compared with golden renderings under
//! tests/output (regenerate with UPDATE_GOLDEN=1 after checking the difference by eye).

use reconcile::model::{LbAttr, Observed, ObservedCert, RecordKind, ResponseHeader, Source};
use reconcile::plan::{Action, DnsStep, Gate, NodeKind, Op, Plan};
use reconcile::render::human::{self, Style};

use crate::fixtures::*;
use crate::support::repo_file;

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

fn ids(p: &Plan) -> Vec<String> {
    p.nodes.iter().map(|n| n.id.to_string()).collect()
}

fn position(p: &Plan, id: &str) -> usize {
    p.nodes
        .iter()
        .position(|n| n.id.to_string() == id)
        .unwrap_or_else(|| panic!("no node {id} in {:?}", ids(p)))
}

fn step(p: &Plan, id: &str) -> usize {
    p.nodes[position(p, id)].step
}

/// `before` runs strictly before `after` in every order the executor may choose.
fn precedes(p: &Plan, before: &str, after: &str) {
    assert!(
        step(p, before) < step(p, after),
        "{before} must precede {after}"
    );
}

#[test]
fn empty_account_builds_everything_and_creates_the_record() {
    let d = desired();
    let p = plan_of(&d, &empty_account());
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let summary = p.summary();
    assert_eq!(summary.get(&Action::Delete), None, "nothing to remove");
    for id in [
        "sg.lb.create",
        "tg.http.create",
        "tg.app.create",
        "lb.create",
        "listener.80.create",
        "listener.443.create",
        "dns.www.example.com.CNAME.create",
    ] {
        position(&p, id);
    }
    precedes(
        &p,
        "gate.tg.app.healthy",
        "dns.www.example.com.CNAME.create",
    );
    golden("empty-account", &p);
}

#[test]
fn starting_point_follows_the_migration_order() {
    let d = desired();
    let p = plan_of(&d, &starting_point());
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let name = "www.example.com";
    let lower = format!("dns.{name}.A.lower-ttl");
    let switch = format!("dns.{name}.CNAME.switch");
    let restore = format!("dns.{name}.CNAME.restore-ttl");
    precedes(&p, &lower, &format!("gate.dns.{name}.old-ttl"));
    precedes(&p, &format!("gate.dns.{name}.old-ttl"), &switch);
    for verified in [
        "gate.lb.active",
        "gate.tg.http.healthy",
        "gate.tg.app.healthy",
        "sg.backend.rules.add",
    ] {
        precedes(&p, verified, &switch);
    }
    precedes(&p, &switch, &format!("gate.dns.{name}.old-answers"));
    precedes(
        &p,
        &format!("gate.dns.{name}.old-answers"),
        "sg.backend.rules.remove",
    );
    precedes(&p, "sg.backend.rules.remove", &restore);
    // The lowering starts at once, beside the building.
    assert_eq!(step(&p, &lower), 1);
    // The old TTL is waited out in full; the transition TTL after the switch.
    let waits: Vec<u32> = p
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Gate(Gate::WaitTtl { seconds, .. }) => Some(*seconds),
            _ => None,
        })
        .collect();
    assert_eq!(waits, vec![3600, 300]);
    // Only the public rules go; the office ssh rule stays.
    let removed = p.changes().find_map(|c| match &c.op {
        Op::RevokeIngress {
            rules, direct_path, ..
        } => Some((rules.clone(), *direct_path)),
        _ => None,
    });
    let (rules, direct) = removed.expect("a removal of the public rules");
    assert!(direct);
    assert_eq!(rules.len(), 2);
    assert!(rules.iter().all(|r| r.is_from_internet()));
    // The switch replaces the A record by the CNAME in one change batch.
    let switch_op = p.changes().find_map(|c| match &c.op {
        Op::SetRecord {
            step: DnsStep::Switch,
            replaces,
            ttl,
            ..
        } => Some((replaces.clone(), *ttl)),
        _ => None,
    });
    let (replaces, ttl) = switch_op.expect("a switch");
    assert_eq!(replaces.len(), 1);
    assert_eq!(replaces[0].kind, RecordKind::A);
    assert_eq!(ttl, Some(300));
    golden("starting-point", &p);
}

#[test]
fn converged_stack_plans_nothing() {
    let d = desired();
    let p = plan_of(&d, &converged());
    assert!(!p.has_changes(), "{:#?}", p.nodes);
    assert!(p.nodes.is_empty(), "no gates either: {:?}", ids(&p));
    golden("converged", &p);
}

/// A drift case: an out-of-band edit of the converged state, and the change it must show.
fn drift(name: &str, edit: impl FnOnce(&mut Observed), expect_id: &str, expect_attr: &str) {
    let d = desired();
    let mut o = converged();
    edit(&mut o);
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let c = p
        .nodes
        .iter()
        .find(|n| n.id.to_string() == expect_id)
        .and_then(|n| match &n.kind {
            NodeKind::Change(c) => Some(c),
            NodeKind::Gate(_) => None,
        })
        .unwrap_or_else(|| panic!("{name}: no change {expect_id} in {:?}", ids(&p)));
    assert!(
        c.attrs.iter().any(|a| a.name.starts_with(expect_attr)),
        "{name}: {expect_id} does not name {expect_attr}: {:?}",
        c.attrs
    );
    // Applying the fix converges.
    let fixed = run_in_order(&d, &o, &p);
    assert!(
        !plan_of(&d, &fixed).has_changes(),
        "{name}: does not converge"
    );
    golden(&format!("drift-{name}"), &p);
}

fn backend(o: &mut Observed) -> &mut reconcile::model::ObservedSg {
    o.security_groups
        .iter_mut()
        .find(|g| g.id == BACKEND)
        .unwrap()
}

#[test]
fn drift_backend_opened_to_the_world() {
    drift(
        "backend-443-open",
        |o| backend(o).rules.push(world(443)),
        "sg.backend.rules.remove",
        "ingress",
    );
}

#[test]
fn drift_tags_edited_by_hand() {
    drift(
        "tags-edited",
        |o| {
            let tg = o
                .target_groups
                .iter_mut()
                .find(|t| t.name == "www-example-app")
                .unwrap();
            tg.tags.insert("owner".into(), "someone-else".into());
            // A tag the manifest does not name is left alone.
            tg.tags.insert("cost-center".into(), "42".into());
            o.load_balancers[0].tags.remove("owner");
        },
        "tg.app.tags",
        "tags.owner",
    );
    let mut o = converged();
    o.load_balancers[0].tags.remove("owner");
    o.target_groups[0]
        .tags
        .insert("cost-center".into(), "42".into());
    let p = plan_of(&desired(), &o);
    let changed = ids(&p);
    assert_eq!(changed, ["lb.tags"], "only the missing manifest tag is set");
}

#[test]
fn drift_health_check_path() {
    drift(
        "health-check-path",
        |o| {
            let tg = o
                .target_groups
                .iter_mut()
                .find(|t| t.name == "www-example-http")
                .unwrap();
            tg.health.path = "/".into();
        },
        "tg.http.health",
        "health_check.path",
    );
}

#[test]
fn drift_port_80_listener_deleted() {
    drift(
        "listener-80-deleted",
        |o| o.load_balancers[0].listeners.retain(|l| l.port != 80),
        "listener.80.create",
        "forward",
    );
}

#[test]
fn drift_listener_certificate_swapped() {
    drift(
        "certificate-swapped",
        |o| {
            let other = "arn:aws:acm:us-east-1:123456789012:certificate/99999999-0000-0000-0000-000000000000";
            o.certificates.push(ObservedCert {
                arn: other.into(),
                domain: "shop.example.com".into(),
                names: vec!["shop.example.com".into()],
                status: "ISSUED".into(),
                not_after: Some(2_100_000_000),
                expiring: false,
                renewal: None,
                validation: vec![],
                store: Default::default(),
                ..Default::default()
            });
            let l = o.load_balancers[0]
                .listeners
                .iter_mut()
                .find(|l| l.port == 443)
                .unwrap();
            l.certificates = vec![other.into()];
        },
        "listener.443.update",
        "certificate",
    );
}

#[test]
fn drift_target_deregistered() {
    drift(
        "target-deregistered",
        |o| {
            let tg = o
                .target_groups
                .iter_mut()
                .find(|t| t.name == "www-example-app")
                .unwrap();
            tg.targets.retain(|t| t.id != "i-0aaaaaaaaaaaaaaa2");
        },
        "tg.app.targets.add",
        "target",
    );
}

#[test]
fn drift_record_ttl_raised() {
    drift(
        "record-ttl-raised",
        |o| {
            let z = o.zone.as_mut().unwrap();
            let r = z
                .records
                .iter_mut()
                .find(|r| r.kind == RecordKind::Cname)
                .unwrap();
            r.ttl = Some(86400);
        },
        "dns.www.example.com.CNAME.set-ttl",
        "ttl",
    );
}

#[test]
fn untagged_resource_with_a_derived_name_is_a_conflict() {
    let d = desired();
    let mut o = converged();
    o.load_balancers[0].tags.clear();
    let p = plan_of(&d, &o);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.subject == "load balancer www-example"),
        "{:?}",
        p.blockers
    );
    assert!(
        !p.changes()
            .any(|c| c.resource.kind == "load_balancer" || c.resource.kind == "listener"),
        "never taken over"
    );
}

#[test]
fn missing_certificate_and_zone_block_the_plan() {
    let d = desired();
    let mut o = empty_account();
    o.certificates.clear();
    o.zone = None;
    let p = plan_of(&d, &o);
    let subjects: Vec<&str> = p.blockers.iter().map(|b| b.subject.as_str()).collect();
    assert!(subjects.contains(&"certificates.site"), "{subjects:?}");
    assert!(subjects.contains(&"dns.zone"), "{subjects:?}");
}

#[test]
fn rules_from_the_new_group_refer_to_it_by_key() {
    let d = desired();
    let p = plan_of(&d, &starting_point());
    let add = p.changes().find_map(|c| match &c.op {
        Op::AuthorizeIngress { group, rules } if c.resource.name.contains(BACKEND) => {
            Some((group.clone(), rules.clone()))
        }
        _ => None,
    });
    let (_, rules) = add.expect("backend rules added");
    assert!(rules
        .iter()
        .any(|(k, _)| k.source == Source::Key("lb".into())));
    precedes(&p, "sg.lb.create", "sg.backend.rules.add");
}

fn marker(values: &[&str]) -> reconcile::model::ObservedRecord {
    reconcile::model::ObservedRecord {
        weighted: None,
        name: "_reconcile.www.example.com".into(),
        kind: "TXT".into(),
        ttl: Some(60),
        values: values.iter().map(|v| v.to_string()).collect(),
        alias: None,
    }
}

fn wait_gate(p: &Plan, id: &str) -> (u32, Option<i64>) {
    match &p.nodes[position(p, id)].kind {
        NodeKind::Gate(Gate::WaitTtl { seconds, since, .. }) => (*seconds, *since),
        other => panic!("{id} is not a wait: {other:?}"),
    }
}

#[test]
fn a_lowering_recorded_by_an_earlier_run_is_waited_out_from_its_start() {
    let d = desired();
    let mut o = starting_point();
    let z = o.zone.as_mut().unwrap();
    z.records[0].ttl = Some(300);
    z.records.push(marker(&[
        "reconcile:stack=www-example",
        "lowered=1795511628;ttl=3600",
    ]));
    let p = plan_of(&d, &o);
    assert!(
        !ids(&p).iter().any(|i| i.ends_with("lower-ttl")),
        "{:?}",
        ids(&p)
    );
    assert_eq!(
        wait_gate(&p, "gate.dns.www.example.com.old-ttl"),
        (3600, Some(1_795_511_628))
    );
    precedes(
        &p,
        "gate.dns.www.example.com.old-ttl",
        "dns.www.example.com.CNAME.switch",
    );
    precedes(
        &p,
        "dns.www.example.com.CNAME.restore-ttl",
        "dns._reconcile.www.example.com.marker.clear",
    );
}

/// A marker written before its change was in sync adds the propagation allowance to the
/// wait: the one it records (`apply --propagation-allowance`), or Route53's 60 s for a bare
/// `pending` as earlier versions wrote it.
#[test]
fn a_pending_marker_adds_the_propagation_allowance() {
    for (stamp, wait) in [
        ("lowered=1795511628;ttl=3600;pending", 3660),
        ("lowered=1795511628;ttl=3600;pending=5", 3605),
    ] {
        let d = desired();
        let mut o = starting_point();
        let z = o.zone.as_mut().unwrap();
        z.records[0].ttl = Some(300);
        z.records
            .push(marker(&["reconcile:stack=www-example", stamp]));
        let p = plan_of(&d, &o);
        assert_eq!(
            wait_gate(&p, "gate.dns.www.example.com.old-ttl").0,
            wait,
            "{stamp}"
        );
    }
}

#[test]
fn a_switch_recorded_by_an_earlier_run_still_gates_closing_the_direct_path() {
    let d = desired();
    let mut o = converged();
    // As after a run stopped right after the switch: CNAME at the transition TTL, the
    // backend still open to the world, the marker of the switch.
    let z = o.zone.as_mut().unwrap();
    z.records.iter_mut().for_each(|r| r.ttl = Some(300));
    z.records.push(marker(&[
        "reconcile:stack=www-example",
        "switched=1795515228;ttl=300",
    ]));
    backend(&mut o).rules.extend([world(80), world(443)]);
    let p = plan_of(&d, &o);
    assert_eq!(
        wait_gate(&p, "gate.dns.www.example.com.old-answers"),
        (300, Some(1_795_515_228))
    );
    precedes(
        &p,
        "gate.dns.www.example.com.old-answers",
        "sg.backend.rules.remove",
    );
    precedes(
        &p,
        "sg.backend.rules.remove",
        "dns.www.example.com.CNAME.restore-ttl",
    );
    precedes(
        &p,
        "dns.www.example.com.CNAME.restore-ttl",
        "dns._reconcile.www.example.com.marker.clear",
    );
}

#[test]
fn another_stacks_marker_is_never_touched() {
    let d = desired();
    let mut o = converged();
    o.zone
        .as_mut()
        .unwrap()
        .records
        .push(marker(&["reconcile:stack=other", "switched=1;ttl=300"]));
    let p = plan_of(&d, &o);
    assert!(!p.has_changes(), "{:?}", ids(&p));
}

/// A record beside the managed one on the backends' address: warned about while the plan
/// closes the backend's public rules, never changed, and not warned about once they are
/// closed.
#[test]
fn a_neighbour_on_the_old_address_is_warned_about_only_while_the_direct_path_closes() {
    let with_neighbour = |mut o: Observed| {
        let zone = o.zone.as_mut().unwrap();
        let www = zone.records.first().cloned();
        let values = www.map_or_else(|| vec!["192.0.2.10".to_owned()], |r| r.values);
        zone.neighbours.push(reconcile::model::ObservedRecord {
            weighted: None,
            name: "api.example.com".into(),
            kind: "A".into(),
            ttl: Some(300),
            values,
            alias: None,
        });
        o
    };
    let d = desired();
    let p = plan_of(&d, &with_neighbour(starting_point()));
    let [w] = &p.warnings[..] else {
        panic!("one warning: {:?}", p.warnings)
    };
    assert_eq!(w.subject, "dns record api.example.com A");
    assert!(
        p.changes()
            .all(|c| !c.resource.name.contains("api.example.com")),
        "the neighbour is not changed"
    );
    assert!(plan_of(&d, &with_neighbour(converged()))
        .warnings
        .is_empty());
}

/// An exclusive `existing` group shared with another stack keeps the rules that let that
/// stack's load balancer in (removing them would cut its site off), and still removes
/// other rules it does not list.
#[test]
fn an_exclusive_shared_group_keeps_another_stacks_rules() {
    let mut o = converged();
    let other_lb = "sg-0aaaaaaaaaaaaaaa9";
    let stranger = "sg-0bbbbbbbbbbbbbbb9";
    for (id, name, tags) in [
        (
            other_lb,
            "shop-lb",
            [(reconcile::names::STACK_TAG.to_owned(), "shop".to_owned())].into(),
        ),
        (stranger, "admin", reconcile::model::Tags::new()),
    ] {
        o.security_groups.push(reconcile::model::ObservedSg {
            id: id.into(),
            name: name.into(),
            vpc: VPC.into(),
            description: String::new(),
            tags,
            rules: vec![],
        });
    }
    let b = backend(&mut o);
    b.rules
        .push(rule(8088, Source::Group(other_lb.into()), None));
    b.rules
        .push(rule(9000, Source::Group(stranger.into()), None));
    let p = plan_of(&desired(), &o);
    let removed: Vec<String> = p
        .changes()
        .filter(|c| matches!(c.op, Op::RevokeIngress { .. }))
        .flat_map(|c| c.attrs.iter().filter_map(|a| a.before.clone()))
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(removed.iter().any(|r| r.contains(stranger)), "{removed:?}");
    assert!(!removed.iter().any(|r| r.contains(other_lb)), "{removed:?}");
}

/// An `existing` group outside the manifest's VPC (a wrong `vpc`) blocks the plan before
/// anything is created in the wrong place.
#[test]
fn an_existing_group_in_another_vpc_blocks_the_plan() {
    let d = desired_edited(|m| m["vpc"] = "vpc-0fedcba9876543210".into());
    let p = plan_of(&d, &starting_point());
    let b = p
        .blockers
        .iter()
        .find(|b| b.subject == "security_groups.backend.existing")
        .unwrap_or_else(|| panic!("{:?}", p.blockers));
    assert!(b.message.contains(VPC), "{}", b.message);
    assert!(plan_of(&desired(), &starting_point()).blockers.is_empty());
}

/// A change naming a node the plan does not hold is a bug reported as one, not an edge
/// quietly dropped; in a plan a blocker stops, the diff may leave such a hole on purpose.
#[test]
fn a_reference_to_a_missing_node_is_a_bug_unless_the_plan_is_blocked() {
    use reconcile::plan::diff::{diff, Decided};
    use reconcile::plan::graph::{build, GraphError};
    use reconcile::plan::id::{GroupPart, TgPart};
    use reconcile::plan::NodeId;
    let d = desired();
    let holed = || -> Decided {
        let mut decided = diff(&d, &empty_account());
        assert!(decided.blockers.is_empty(), "{:?}", decided.blockers);
        let create = NodeId::tg("app", TgPart::Create);
        assert!(decided.changes.iter().any(|(id, _)| *id == create));
        decided.changes.retain(|(id, _)| *id != create);
        decided
    };
    match build(&d, holed()) {
        Err(GraphError::Dangling { missing, .. }) => {
            assert_eq!(missing, NodeId::tg("app", TgPart::Create));
        }
        other => panic!("expected a dangling reference, got {other:?}"),
    }
    let mut blocked = holed();
    blocked.blockers.push(reconcile::plan::Blocker {
        subject: "target group www-example-app".into(),
        message: "taken".into(),
        hint: "rename it".into(),
    });
    let p = build(&d, blocked).expect("a blocked plan is still drawn");
    assert!(!p.blockers.is_empty());
    assert!(p
        .nodes
        .iter()
        .any(|n| n.id == NodeId::group("lb", GroupPart::Create)));
}

/// The converged site as a team would have built it by hand from the article's checklist:
/// the same resources under names of their own, real-looking ARNs, nothing tagged.
fn hand_made() -> Observed {
    let o = converged();
    let mut text = serde_json::to_string(&o).unwrap();
    let arn = |kind: &str, name: &str, id: usize| {
        format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:{kind}/{name}/{id:016x}")
    };
    for (i, l) in o.load_balancers.iter().enumerate() {
        text = text.replace(&l.arn, &arn("loadbalancer/app", "handmade", i + 1));
    }
    for (i, t) in o.target_groups.iter().enumerate() {
        let name = t.name.replace("www-example", "handmade");
        text = text.replace(&t.arn, &arn("targetgroup", &name, i + 1));
    }
    for g in o
        .security_groups
        .iter()
        .filter(|g| g.id.starts_with("sg-sim"))
    {
        text = text.replace(&g.id, "sg-0aaaaaaaaaaaaaaa1");
    }
    let mut o: Observed = serde_json::from_str(&text).unwrap();
    for l in &mut o.load_balancers {
        l.name = "handmade".into();
        l.tags.clear();
    }
    for t in &mut o.target_groups {
        t.name = t.name.replace("www-example", "handmade");
        t.tags.clear();
    }
    for g in o
        .security_groups
        .iter_mut()
        .filter(|g| g.name == "www-example-lb")
    {
        g.name = "handmade-lb".into();
        g.tags.clear();
    }
    o
}

/// The example manifest adopting what `hand_made` holds, with `edit` applied.
fn adopting(o: &Observed, edit: impl FnOnce(&mut serde_json::Value)) -> reconcile::model::Desired {
    let tg = |name: &str| {
        o.target_groups
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.arn.clone())
            .unwrap()
    };
    let lb_group = o
        .security_groups
        .iter()
        .find(|g| g.name == "handmade-lb")
        .map(|g| g.id.clone())
        .unwrap();
    let (lb, http, app) = (
        o.load_balancers[0].arn.clone(),
        tg("handmade-http"),
        tg("handmade-app"),
    );
    desired_edited(|v| {
        v["load_balancer"]["adopt"] = lb.into();
        v["target_groups"]["http"]["adopt"] = http.into();
        v["target_groups"]["app"]["adopt"] = app.into();
        let g = v["security_groups"]["lb"].as_object_mut().unwrap();
        g.remove("description");
        g.insert("adopt".into(), lb_group.into());
        edit(v);
    })
}

#[test]
fn adopting_tags_first_and_then_changes_what_was_made_by_hand() {
    let o = hand_made();
    // Described as it is: the adoptions and nothing else, proven.
    let d = adopting(&o, |_| {});
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let adoptions: Vec<String> = p
        .nodes
        .iter()
        .filter(|n| matches!(&n.kind, NodeKind::Change(c) if c.action == Action::Adopt))
        .map(|n| n.id.to_string())
        .collect();
    assert_eq!(
        adoptions,
        ["lb.adopt", "sg.lb.adopt", "tg.app.adopt", "tg.http.adopt"],
        "{:?}",
        ids(&p)
    );
    assert_eq!(p.nodes.len(), 4, "nothing but the adoptions: {:?}", ids(&p));
    reconcile::plan::check::check(&d, &o, &p).expect("proven");
    let after = run_in_order(&d, &o, &p);
    assert!(
        !plan_of(&d, &after).has_changes(),
        "adopted: nothing left to do"
    );

    // A change to what is adopted waits for the adoptions, and is a change to something
    // the stack does not own without them.
    let d = adopting(&o, |v| {
        v["target_groups"]["app"]["health_check"]["interval_seconds"] = 10.into();
        v["security_groups"]["lb"]["ingress"][0]["ports"] = serde_json::json!([80, 443, 8443]);
    });
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    reconcile::plan::check::check(&d, &o, &p).expect("proven");
    for (adoption, change) in [
        ("tg.app.adopt", "tg.app.health"),
        ("sg.lb.adopt", "sg.lb.rules.add"),
    ] {
        precedes(&p, adoption, change);
        // Without the adoption's edges (those into the change, and those into what
        // follows it, which order it too).
        let mut q = p.clone();
        q.edges.retain(|(from, _)| from.to_string() != adoption);
        let c = reconcile::plan::check::check(&d, &o, &q)
            .expect_err(&format!("{change} before {adoption}"));
        assert!(
            c.counterexample()
                .is_some_and(|c| c.message.contains("does not own")),
            "{c}"
        );
    }
    let after = run_in_order(&d, &o, &p);
    assert!(!plan_of(&d, &after).has_changes(), "converges");
}

#[test]
fn adopting_what_another_stack_owns_or_what_does_not_exist_is_blocked() {
    let mut o = hand_made();
    o.load_balancers[0]
        .tags
        .insert("reconcile:stack".into(), "shop".into());
    let d = adopting(&o, |_| {});
    let p = plan_of(&d, &o);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.subject == "load_balancer.adopt"
                && b.message.contains("belongs to stack shop")),
        "{:?}",
        p.blockers
    );
    assert!(p.nodes.iter().all(|n| !matches!(&n.kind, NodeKind::Change(c) if c.op == Op::DeleteLoadBalancer { arn: o.load_balancers[0].arn.clone(), name: "handmade".into() })));
    let mut gone = hand_made();
    let d = adopting(&gone, |_| {});
    gone.target_groups.retain(|t| t.name != "handmade-app");
    let p = plan_of(&d, &gone);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.subject == "target_groups.app.adopt" && b.message.contains("does not exist")),
        "{:?}",
        p.blockers
    );
}

/// The example with port 80 redirected to https by the load balancer itself: no port-80
/// target group, the backend admitting the load balancer on the app's port only.
fn redirecting() -> reconcile::model::Desired {
    desired_edited(crate::frontdoor::redirect_at_the_load_balancer)
}

fn change_of(p: &Plan, f: impl Fn(&Op) -> bool) -> &reconcile::plan::Node {
    p.nodes
        .iter()
        .find(|n| matches!(&n.kind, NodeKind::Change(c) if f(&c.op)))
        .unwrap_or_else(|| panic!("no such change in {:?}", ids(p)))
}

#[test]
fn the_migration_with_a_redirect_at_the_load_balancer_builds_no_port_80_group() {
    let d = redirecting();
    let o = starting_point();
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    reconcile::plan::check::check(&d, &o, &p).expect("proven");
    let redirect = change_of(&p, |op| {
        matches!(
            op,
            Op::CreateListener {
                port: 80,
                serve: reconcile::plan::Serve::Redirect(_),
                ..
            }
        )
    });
    assert!(
        !ids(&p).iter().any(|i| i.starts_with("tg.http")),
        "{:?}",
        ids(&p)
    );
    let after = run_in_order(&d, &o, &p);
    assert_eq!(after.target_groups.len(), 1, "only the app's group");
    let l80 = after.load_balancers[0]
        .listeners
        .iter()
        .find(|l| l.port == 80)
        .unwrap();
    assert_eq!(l80.redirect, Some(reconcile::model::Redirect::https()));
    assert!(l80.forward.is_empty());
    assert!(!plan_of(&d, &after).has_changes(), "converges");
    assert_eq!(redirect.id.to_string(), "listener.80.create");
}

#[test]
fn port_80_moves_from_forward_to_redirect_and_back_under_the_checker() {
    use reconcile::plan::Serve;
    let forward = desired();
    let start = converged();
    // Forward to redirect: the listener redirects first; the port-80 group and the backend's
    // port-80 rule from the load balancer go after it.
    let d = redirecting();
    let p = plan_of(&d, &start);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    reconcile::plan::check::check(&d, &start, &p).expect("proven");
    let modify = change_of(&p, |op| {
        matches!(
            op,
            Op::ModifyListener {
                port: 80,
                serve: Serve::Redirect(_),
                ..
            }
        )
    })
    .id
    .to_string();
    let delete = change_of(&p, |op| matches!(op, Op::DeleteTargetGroup { .. }))
        .id
        .to_string();
    let revoke = change_of(&p, |op| matches!(op, Op::RevokeIngress { .. }))
        .id
        .to_string();
    precedes(&p, &modify, &delete);
    precedes(&p, &modify, &revoke);
    let redirected = run_in_order(&d, &start, &p);
    assert!(!plan_of(&d, &redirected).has_changes(), "converges");

    // And back: the new port-80 group is attached on standby to the HTTPS listener (a
    // redirecting listener has nowhere to hold it), verified healthy, then port 80 forwards
    // to it, then it is detached from 443.
    let p = plan_of(&forward, &redirected);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    reconcile::plan::check::check(&forward, &redirected, &p).expect("proven");
    let attach = change_of(&p, |op| matches!(op, Op::AttachStandby { port: 443, .. }))
        .id
        .to_string();
    let moves = change_of(&p, |op| {
        matches!(
            op,
            Op::ModifyListener {
                port: 80,
                moves_traffic: true,
                ..
            }
        )
    })
    .id
    .to_string();
    let detach = change_of(&p, |op| matches!(op, Op::DetachStandby { port: 443, .. }))
        .id
        .to_string();
    precedes(&p, &attach, "gate.tg.http.healthy");
    precedes(&p, "gate.tg.http.healthy", &moves);
    precedes(&p, &moves, &detach);
    let back = run_in_order(&forward, &redirected, &p);
    assert!(!plan_of(&forward, &back).has_changes(), "converges");
    let l443 = back.load_balancers[0]
        .listeners
        .iter()
        .find(|l| l.port == 443)
        .unwrap();
    assert!(l443.standby.is_empty(), "nothing left on standby: {l443:?}");
    // Each of those orders is needed: without it the checker finds a state where port 80
    // is not served.
    for (from, to) in [
        ("gate.tg.http.healthy", moves.as_str()),
        (moves.as_str(), detach.as_str()),
    ] {
        let mut q = p.clone();
        q.edges
            .retain(|(f, t)| !(f.to_string() == from && t.to_string() == to));
        let c = reconcile::plan::check::check(&forward, &redirected, &q)
            .expect_err(&format!("without {from} → {to}"));
        assert!(
            c.counterexample().is_some_and(|c| c.message.contains("80")),
            "{from} → {to}: {c}"
        );
    }
}

fn listener_mut(o: &mut Observed, port: u16) -> &mut reconcile::model::ObservedListener {
    o.load_balancers[0]
        .listeners
        .iter_mut()
        .find(|l| l.port == port)
        .unwrap()
}

#[test]
fn drift_tls_policy_set_back_to_the_api_default() {
    drift(
        "tls-policy",
        |o| listener_mut(o, 443).ssl_policy = Some("ELBSecurityPolicy-2016-08".into()),
        "listener.443.update",
        "ssl_policy",
    );
}

#[test]
fn drift_hsts_set_by_hand_where_the_stack_managed_headers() {
    drift(
        "hsts-by-hand",
        |o| {
            o.load_balancers[0]
                .tags
                .insert(reconcile::names::HEADERS_TAG.into(), "443".into());
            listener_mut(o, 443).headers = Some(reconcile::model::Headers::from([(
                ResponseHeader::Hsts,
                "max-age=60".to_owned(),
            )]))
        },
        "listener.443.headers",
        "headers.hsts",
    );
}

/// With the example's headers on 443 (HSTS, no Server header).
fn with_headers() -> reconcile::model::Desired {
    desired_edited(|v| {
        v["load_balancer"]["listeners"][1]["headers"] = serde_json::json!({
            "hsts": "max-age=31536000; includeSubDomains",
            "server": false,
        })
    })
}

#[test]
fn response_headers_are_set_then_removed_as_listener_attributes_with_no_gate() {
    let start = converged();
    let d = with_headers();
    let p = plan_of(&d, &start);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    // The headers, and the load balancer's tag naming the listener whose headers the stack
    // now manages; nothing to wait for: neither changes a path to the site.
    assert_eq!(ids(&p), vec!["listener.443.headers", "lb.tags"]);
    let set = change_of(&p, |op| matches!(op, Op::SetListenerHeaders { .. }));
    let NodeKind::Change(c) = &set.kind else {
        unreachable!()
    };
    let Op::SetListenerHeaders { headers, .. } = &c.op else {
        unreachable!()
    };
    assert_eq!(
        headers,
        &std::collections::BTreeMap::from([
            (
                ResponseHeader::Hsts,
                "max-age=31536000; includeSubDomains".to_owned()
            ),
            (ResponseHeader::Server, "false".to_owned()),
        ])
    );
    let set_up = run_in_order(&d, &start, &p);
    assert!(!plan_of(&d, &set_up).has_changes(), "converges");

    // HSTS left out of the manifest again: it is removed (set to its unset value), the
    // Server header's setting stays.
    let d2 = desired_edited(|v| {
        v["load_balancer"]["listeners"][1]["headers"] = serde_json::json!({ "server": false })
    });
    let p = plan_of(&d2, &set_up);
    assert_eq!(ids(&p), vec!["listener.443.headers"]);
    let NodeKind::Change(c) = &p.nodes[0].kind else {
        unreachable!()
    };
    assert!(set_up.load_balancers[0].tags[reconcile::names::HEADERS_TAG] == "443");
    assert!(
        matches!(&c.op, Op::SetListenerHeaders { headers, .. }
            if headers == &std::collections::BTreeMap::from([(ResponseHeader::Hsts, String::new())])),
        "{:?}",
        c.op
    );
    let removed = run_in_order(&d2, &set_up, &p);
    assert!(!plan_of(&d2, &removed).has_changes(), "converges");
    // And the whole `headers` left out: the Server header comes back, and only then does
    // the tag stop naming the listener (emptied, not removed).
    let p = plan_of(&desired(), &removed);
    assert_eq!(ids(&p), vec!["listener.443.headers", "lb.tags"]);
    precedes(&p, "listener.443.headers", "lb.tags");
    let bare = run_in_order(&desired(), &removed, &p);
    assert_eq!(
        bare.load_balancers[0].tags[reconcile::names::HEADERS_TAG],
        ""
    );
    let l443 = bare.load_balancers[0]
        .listeners
        .iter()
        .find(|l| l.port == 443)
        .unwrap();
    assert_eq!(l443.headers, Some(reconcile::model::Headers::new()));
    assert!(!plan_of(&desired(), &bare).has_changes(), "converges");
}

#[test]
fn a_listener_whose_headers_the_stack_never_managed_is_left_alone() {
    let mut o = converged();
    listener_mut(&mut o, 80).headers = None;
    assert!(!plan_of(&desired(), &o).has_changes());
    // Even read with a header on it: the manifest gives it no `headers`, and the tag does
    // not name it.
    listener_mut(&mut o, 443).headers = Some(reconcile::model::Headers::from([(
        ResponseHeader::XFrameOptions,
        "DENY".to_owned(),
    )]));
    assert!(!plan_of(&desired(), &o).has_changes());
    // Asked for headers, it gets them even unread (setting them is safe to repeat).
    let d = desired_edited(|v| {
        v["load_balancer"]["listeners"][0]["headers"] =
            serde_json::json!({ "x_content_type_options": "nosniff" })
    });
    let p = plan_of(&d, &o);
    assert_eq!(ids(&p), vec!["listener.80.headers", "lb.tags"]);
}

#[test]
fn the_migration_states_the_default_tls_policy_and_sets_the_headers_on_the_new_listener() {
    let d = with_headers();
    let o = starting_point();
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let create = change_of(&p, |op| matches!(op, Op::CreateListener { port: 443, .. }));
    let NodeKind::Change(c) = &create.kind else {
        unreachable!()
    };
    assert!(c.reason.contains("ssl_policy not set"), "{}", c.reason);
    assert!(
        matches!(&c.op, Op::CreateListener { ssl_policy: Some(p), headers, .. }
            if p == reconcile::manifest::DEFAULT_SSL_POLICY && headers.len() == 2),
        "{:?}",
        c.op
    );
    assert!(c.attrs.iter().any(|a| a.name == "headers.hsts"));
    let after = run_in_order(&d, &o, &p);
    assert!(!plan_of(&d, &after).has_changes(), "converges");
    // A policy the manifest names is not said to be a default.
    let named = desired_edited(|v| {
        v["load_balancer"]["listeners"][1]["ssl_policy"] =
            serde_json::json!("ELBSecurityPolicy-TLS13-1-3-2021-06")
    });
    let p = plan_of(&named, &after);
    let NodeKind::Change(c) = &change_of(&p, |op| matches!(op, Op::ModifyListener { .. })).kind
    else {
        unreachable!()
    };
    assert!(!c.reason.contains("ssl_policy not set"), "{}", c.reason);
}

fn lb_attr_set(p: &Plan) -> std::collections::BTreeMap<LbAttr, String> {
    let NodeKind::Change(c) = &change_of(p, |op| matches!(op, Op::SetLbAttributes { .. })).kind
    else {
        unreachable!()
    };
    match &c.op {
        Op::SetLbAttributes { attributes, .. } => attributes.clone(),
        _ => unreachable!(),
    }
}

#[test]
fn a_new_load_balancer_drops_invalid_header_fields_and_nothing_else_differs_from_aws() {
    let d = desired();
    let o = starting_point();
    let p = plan_of(&d, &o);
    assert_eq!(
        lb_attr_set(&p),
        std::collections::BTreeMap::from([(LbAttr::DropInvalidHeaderFields, "true".to_owned())])
    );
    precedes(&p, "lb.create", "lb.attributes");
    let after = run_in_order(&d, &o, &p);
    assert!(!plan_of(&d, &after).has_changes(), "converges");
}

#[test]
fn drift_invalid_header_fields_let_through_again() {
    drift(
        "drop-invalid-header-fields",
        |o| {
            let a = o.load_balancers[0].attributes.as_mut().unwrap();
            a.insert(LbAttr::DropInvalidHeaderFields, "false".into());
        },
        "lb.attributes",
        "attributes.drop_invalid_header_fields",
    );
}

#[test]
fn drift_idle_timeout_changed_by_hand() {
    drift(
        "idle-timeout",
        |o| {
            let a = o.load_balancers[0].attributes.as_mut().unwrap();
            a.insert(LbAttr::IdleTimeout, "600".into());
        },
        "lb.attributes",
        "attributes.idle_timeout",
    );
}

#[test]
fn attributes_aws_did_not_describe_are_its_defaults_not_drift() {
    let mut o = converged();
    // As moto and older load balancers answer: no idle timeout, no desync mode.
    o.load_balancers[0].attributes = Some(LbAttr::from_aws([
        ("routing.http.drop_invalid_header_fields.enabled", "true"),
        ("access_logs.s3.bucket", "old-logs"),
        ("access_logs.s3.enabled", "false"),
    ]));
    assert!(!plan_of(&desired(), &o).has_changes());
}

/// The example with deletion protection, idle timeout, desync mode and access logs.
fn hardened() -> reconcile::model::Desired {
    desired_edited(|v| {
        v["load_balancer"]["attributes"] = serde_json::json!({
            "deletion_protection": true,
            "idle_timeout": 120,
            "desync_mitigation_mode": "strictest",
            "access_logs": { "bucket": "example-logs", "prefix": "www" },
        })
    })
}

#[test]
fn a_protected_load_balancer_is_unprotected_right_before_it_goes() {
    let start = converged();
    let d = hardened();
    let p = plan_of(&d, &start);
    assert_eq!(ids(&p), vec!["lb.attributes"]);
    let set = lb_attr_set(&p);
    assert_eq!(set[&LbAttr::DeletionProtection], "true");
    assert_eq!(set[&LbAttr::AccessLogsBucket], "example-logs");
    assert_eq!(set[&LbAttr::AccessLogsEnabled], "true");
    let protected = run_in_order(&d, &start, &p);
    assert!(!plan_of(&d, &protected).has_changes(), "converges");

    // The way back deletes it: protection goes first, as a step of its own, after the
    // waits that guard the delete.
    let back = desired_from("manifests/site.direct.json");
    let p = plan_of(&back, &protected);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let unprotect = change_of(&p, |op| matches!(op, Op::Unprotect { .. }))
        .id
        .to_string();
    let delete = change_of(&p, |op| matches!(op, Op::DeleteLoadBalancer { .. }))
        .id
        .to_string();
    precedes(&p, &unprotect, &delete);
    reconcile::plan::check::check(&back, &protected, &p).expect("proven");
    let gone = run_in_order(&back, &protected, &p);
    assert!(gone.load_balancers.is_empty());
    // Without that edge the model of AWS refuses the delete in some order.
    let mut q = p.clone();
    q.edges
        .retain(|(from, to)| !(from.to_string() == unprotect && to.to_string() == delete));
    assert!(reconcile::plan::check::check(&back, &protected, &q).is_err());
    // Unprotected by hand meanwhile: no such step.
    let mut o = protected.clone();
    o.load_balancers[0]
        .attributes
        .as_mut()
        .unwrap()
        .insert(LbAttr::DeletionProtection, "false".into());
    let p = plan_of(&back, &o);
    assert!(!p
        .nodes
        .iter()
        .any(|n| n.id.to_string().ends_with(".unprotect")));
}

#[test]
fn a_certificate_about_to_expire_or_failing_renewal_is_warned_about() {
    let d = desired();
    let mut o = converged();
    assert!(plan_of(&d, &o).warnings.is_empty());
    o.certificates[0].expiring = true;
    o.certificates[0].renewal = Some("FAILED".into());
    let p = plan_of(&d, &o);
    assert!(!p.has_changes(), "a warning, not a change");
    let said: Vec<&str> = p.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].contains("expires on 2033-05-18, within 30 days"),
        "{said:?}"
    );
    assert!(said[1].contains("renewal of certificate"), "{said:?}");
    assert!(p.warnings.iter().all(|w| w.subject == "certificates.site"));
}

/// The example with its certificate requested by the stack (the starting point's issued
/// one taken away).
fn requesting() -> (reconcile::model::Desired, Observed) {
    let d = desired_edited(crate::frontdoor::requested_certificate);
    let mut o = starting_point();
    o.certificates.clear();
    (d, o)
}

#[test]
fn a_requested_certificate_is_validated_through_the_zone_and_waited_for_before_a_listener_uses_it()
{
    let (d, o) = requesting();
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    precedes(&p, "cert.site.request", "cert.site.validation");
    precedes(&p, "cert.site.validation", "gate.cert.site.issued");
    precedes(&p, "gate.cert.site.issued", "listener.443.create");
    reconcile::plan::check::check(&d, &o, &p).expect("proven");
    let after = run_in_order(&d, &o, &p);
    let issued: Vec<_> = after
        .certificates
        .iter()
        .filter(|c| c.status == reconcile::model::CertStatus::Issued)
        .collect();
    assert_eq!(issued.len(), 1, "{:?}", after.certificates);
    let zone = after.zone.as_ref().unwrap();
    for v in &issued[0].validation {
        assert!(
            zone.records
                .iter()
                .any(|r| r.name == v.name && r.kind == RecordKind::Cname),
            "{v:?} not in the zone"
        );
    }
    assert!(!plan_of(&d, &after).has_changes(), "converges");
    // Without the validation records written first, ACM never issues it: the checker
    // finds the gate unreachable.
    let mut q = p.clone();
    q.edges.retain(|(from, to)| {
        !(from.to_string() == "cert.site.validation" && to.to_string() == "gate.cert.site.issued")
    });
    assert!(reconcile::plan::check::check(&d, &o, &q).is_err());
}

#[test]
fn a_request_left_pending_by_an_earlier_run_is_waited_for_not_repeated() {
    let (d, o) = requesting();
    let p = plan_of(&d, &o);
    // The run stopped right after the request: the certificate is there, pending, with
    // its records not yet in the zone.
    let mut stopped = o.clone();
    stopped.certificates.push(reconcile::model::ObservedCert {
        arn: "arn:aws:acm:us-east-1:123456789012:certificate/pending".into(),
        domain: "www.example.com".into(),
        names: vec!["www.example.com".into()],
        status: "PENDING_VALIDATION".into(),
        not_after: None,
        expiring: false,
        renewal: None,
        validation: vec![reconcile::model::ValidationRecord {
            name: "_abc.www.example.com".into(),
            value: "_def.acm-validations.aws".into(),
        }],
        store: Default::default(),
        ..Default::default()
    });
    assert!(ids(&p).contains(&"cert.site.request".to_owned()));
    let again = plan_of(&d, &stopped);
    assert!(again.blockers.is_empty(), "{:?}", again.blockers);
    let again_ids = ids(&again);
    assert!(
        !again_ids.contains(&"cert.site.request".to_owned()),
        "{again_ids:?}"
    );
    assert!(
        again_ids.contains(&"cert.site.validation".to_owned()),
        "{again_ids:?}"
    );
    reconcile::plan::check::check(&d, &stopped, &again).expect("proven");
    let after = run_in_order(&d, &stopped, &again);
    assert!(!plan_of(&d, &after).has_changes(), "converges");
}

/// An IAM server certificate pinned by ARN serves like ACM's: nothing to change when the
/// listener uses it, its expiry warned about with IAM's remedy (AWS never renews it), an
/// expired one a blocker, and the move to an ACM certificate one listener update in place.
#[test]
fn an_iam_server_certificate_serves_warns_as_iam_and_gives_way_in_place() {
    use reconcile::manifest::net::CertStore;
    use reconcile::model::CertSpec;
    let iam = "arn:aws:iam::123456789012:server-certificate/www-example";
    let mut d = desired();
    d.certificates
        .insert("site".into(), CertSpec::Arn(iam.into()));
    let mut o = converged();
    o.certificates.push(ObservedCert {
        arn: iam.into(),
        domain: "www.example.com".into(),
        names: vec!["www.example.com".into()],
        status: "ISSUED".into(),
        not_after: Some(2_000_000_000),
        expiring: true,
        renewal: None,
        validation: vec![],
        store: CertStore::Iam,
        ..Default::default()
    });
    let l = o.load_balancers[0]
        .listeners
        .iter_mut()
        .find(|l| l.port == 443)
        .unwrap();
    l.certificates = vec![iam.into()];
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert!(!p.has_changes(), "{:?}", ids(&p));
    assert!(
        p.warnings.iter().any(|w| w.subject == "certificates.site"
            && w.hint.contains("never renews an IAM server certificate")),
        "{:?}",
        p.warnings
    );

    // To ACM's certificate (the fixture's `domain`): the listener changes in place.
    let p = plan_of(&desired(), &o);
    let changes: Vec<String> = p
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Change(_)))
        .map(|n| n.id.to_string())
        .collect();
    assert_eq!(changes, vec!["listener.443.update"], "{:?}", ids(&p));
    let fixed = run_in_order(&desired(), &o, &p);
    assert!(!plan_of(&desired(), &fixed).has_changes());

    o.certificates.last_mut().unwrap().status = "EXPIRED".into();
    let p = plan_of(&d, &o);
    let [b] = &p.blockers[..] else {
        panic!("one blocker: {:?}", p.blockers)
    };
    assert!(b.message.contains("is EXPIRED"), "{b:?}");
    assert!(b.hint.contains("expired IAM server certificate"), "{b:?}");
}

/// The example requesting its certificate for one name more: the listener's certificate
/// (`converged`'s) is the one the stack requested earlier.
fn requested_earlier() -> (reconcile::model::Desired, Observed) {
    let d = desired_edited(|v| {
        v["certificates"]["site"] = serde_json::json!({
            "domain": "www.example.com",
            "request": true,
            "alternative_names": ["static.example.com"],
        });
    });
    let mut o = converged();
    let c = &mut o.certificates[0];
    c.tags = [
        (reconcile::names::STACK_TAG.to_owned(), d.stack.clone()),
        (
            reconcile::names::CERTIFICATE_TAG.to_owned(),
            "site".to_owned(),
        ),
    ]
    .into();
    c.in_use = Some(true);
    (d, o)
}

fn cert_delete_id(arn: &str) -> String {
    format!("cert.{}.delete", arn.rsplit('/').next().unwrap())
}

/// Changing the names requests the new certificate, moves the listener to it once ACM
/// has issued it, and only then deletes the one the stack had requested: proven by the
/// checker (ACM refuses to delete a certificate a listener uses), and never a certificate
/// the stack did not request or that something else uses.
#[test]
fn a_certificate_the_stack_requested_goes_once_the_listeners_use_its_successor() {
    let (d, o) = requested_earlier();
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let delete = cert_delete_id(CERT);
    precedes(&p, "cert.site.request", "gate.cert.site.issued");
    precedes(&p, "gate.cert.site.issued", "listener.443.update");
    precedes(&p, "listener.443.update", &delete);
    let tags = p
        .nodes
        .iter()
        .find_map(|n| match &n.kind {
            NodeKind::Change(c) => match &c.op {
                Op::RequestCertificate { tags, .. } => Some(tags.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("a request");
    assert_eq!(
        tags.get(reconcile::names::CERTIFICATE_TAG)
            .map(String::as_str),
        Some("site")
    );
    assert_eq!(
        tags.get(reconcile::names::STACK_TAG),
        Some(&d.stack),
        "{tags:?}"
    );
    reconcile::plan::check::check(&d, &o, &p).expect("proven");
    let after = run_in_order(&d, &o, &p);
    assert!(
        !after.certificates.iter().any(|c| c.arn == CERT),
        "{:?}",
        after.certificates
    );
    assert!(!plan_of(&d, &after).has_changes(), "converges");
    // Deleted before the listener lets go of it: ACM refuses, and the checker says so.
    let mut q = p.clone();
    q.edges.retain(|(_, to)| to.to_string() != delete);
    assert!(reconcile::plan::check::check(&d, &o, &q).is_err());

    // Not the stack's (no tags, or another stack's): kept.
    for tags in [
        reconcile::model::Tags::new(),
        [
            (reconcile::names::STACK_TAG.to_owned(), "another".to_owned()),
            (
                reconcile::names::CERTIFICATE_TAG.to_owned(),
                "site".to_owned(),
            ),
        ]
        .into(),
    ] {
        let mut o = o.clone();
        o.certificates[0].tags = tags;
        let p = plan_of(&d, &o);
        assert!(!ids(&p).contains(&delete), "{:?}", ids(&p));
        reconcile::plan::check::check(&d, &o, &p).expect("proven");
    }

    // The stack's, no longer used by its listener but by something else: kept, and said.
    let mut o = o.clone();
    o.load_balancers[0]
        .listeners
        .iter_mut()
        .for_each(|l| l.certificates.clear());
    let p = plan_of(&d, &o);
    assert!(!ids(&p).contains(&delete), "{:?}", ids(&p));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.message.contains("something outside the stack does: kept") && !w.drift),
        "{:?}",
        p.warnings
    );
}

fn request_token(p: &Plan) -> Option<String> {
    p.nodes.iter().find_map(|n| match &n.kind {
        NodeKind::Change(c) => match &c.op {
            Op::RequestCertificate { token, .. } => Some(token.clone()),
            _ => None,
        },
        _ => None,
    })
}

/// A request ACM failed is drift (a warning `plan --detailed-exitcode` exits 2 on), asked
/// again with another idempotency token (the same one would answer with the failed
/// certificate within ACM's hour), and the failed one, the stack's, deleted.
#[test]
fn a_failed_request_is_drift_asked_again_and_cleared() {
    let (d, o) = requesting();
    let first = request_token(&plan_of(&d, &o)).expect("a request");
    let failed = "arn:aws:acm:us-east-1:123456789012:certificate/failed-1";
    for status in ["FAILED", "VALIDATION_TIMED_OUT"] {
        let mut o = o.clone();
        o.certificates.push(ObservedCert {
            arn: failed.into(),
            domain: "www.example.com".into(),
            names: vec!["www.example.com".into()],
            status: status.into(),
            tags: [
                (reconcile::names::STACK_TAG.to_owned(), d.stack.clone()),
                (
                    reconcile::names::CERTIFICATE_TAG.to_owned(),
                    "site".to_owned(),
                ),
            ]
            .into(),
            in_use: Some(false),
            ..Default::default()
        });
        let p = plan_of(&d, &o);
        assert!(p.blockers.is_empty(), "{:?}", p.blockers);
        let w = p
            .warnings
            .iter()
            .find(|w| w.subject == "certificates.site")
            .expect("a warning");
        assert!(w.drift, "{w:?}");
        assert!(w.message.contains(&format!("it is {status}")), "{w:?}");
        assert!(p.drifted());
        let again = request_token(&p).expect("asked again");
        assert_ne!(again, first, "another token once one failed");
        assert!(ids(&p).contains(&cert_delete_id(failed)), "{:?}", ids(&p));
        reconcile::plan::check::check(&d, &o, &p).expect("proven");
        let after = run_in_order(&d, &o, &p);
        assert!(!after.certificates.iter().any(|c| c.arn == failed));
        assert!(!plan_of(&d, &after).drifted(), "converges");
    }
}

/// A request awaiting validation for over an hour is drift, with the likely causes; one
/// just made is not.
#[test]
fn a_request_awaiting_validation_too_long_is_drift() {
    let (d, mut o) = requesting();
    o.certificates.push(ObservedCert {
        arn: "arn:aws:acm:us-east-1:123456789012:certificate/slow".into(),
        domain: "www.example.com".into(),
        names: vec!["www.example.com".into()],
        status: "PENDING_VALIDATION".into(),
        ..Default::default()
    });
    let p = plan_of(&d, &o);
    assert!(!p.warnings.iter().any(|w| w.drift), "{:?}", p.warnings);
    o.certificates.last_mut().unwrap().overdue = true;
    let p = plan_of(&d, &o);
    let w = p
        .warnings
        .iter()
        .find(|w| w.drift)
        .expect("a drift warning");
    assert!(
        w.message
            .contains("has awaited DNS validation for over 60 minutes"),
        "{w:?}"
    );
    assert!(w.hint.contains("registrar"), "{w:?}");
    assert!(request_token(&p).is_none(), "waited for, not asked again");
}

#[test]
fn a_certificate_warning_is_drift_a_neighbour_warning_is_not() {
    let d = desired();
    let mut o = converged();
    assert!(!plan_of(&d, &o).drifted());
    o.certificates[0].expiring = true;
    let p = plan_of(&d, &o);
    assert!(!p.has_changes());
    assert!(p.drifted(), "{:?}", p.warnings);
}

#[test]
fn pending_too_long_counts_from_the_request() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    use reconcile::model::pending_too_long;
    assert!(!pending_too_long(
        &reconcile::model::CertStatus::PendingValidation,
        Some(now - 60)
    ));
    assert!(pending_too_long(
        &reconcile::model::CertStatus::PendingValidation,
        Some(now - 7200)
    ));
    assert!(!pending_too_long(
        &reconcile::model::CertStatus::Issued,
        Some(now - 7200)
    ));
    assert!(!pending_too_long(
        &reconcile::model::CertStatus::PendingValidation,
        None
    ));
}

/// `destroy` deletes the certificate the stack requested, after the load balancer that
/// used it.
#[test]
fn destroy_deletes_the_certificate_the_stack_requested_after_its_load_balancer() {
    let (d, mut o) = requested_earlier();
    // Away from the load balancer first (destroy refuses while the record leads to it).
    o.zone.as_mut().unwrap().records.clear();
    let gone = reconcile::plan::destroy_desired(&d, &o);
    let p = plan_of(&gone, &o);
    let delete = cert_delete_id(CERT);
    let lb = ids(&p)
        .into_iter()
        .find(|i| i.starts_with("lb.") && i.ends_with(".delete"))
        .expect("the load balancer goes");
    precedes(&p, &lb, &delete);
    reconcile::plan::check::check(&gone, &o, &p).expect("proven");
}

/// A record with a probe: the plan asks the site through the load balancer after every
/// build and verification and the old TTL's wait, right before the switch; the checker
/// proves it passes only once the load balancer serves (moved before the health gate, it
/// is refused).
#[test]
fn a_probe_comes_right_before_the_switch_once_the_load_balancer_serves() {
    let d = desired_edited(|v| {
        v["dns"]["records"][0]["probe"] =
            serde_json::json!({"path": "/about/", "expect": [200, 301]});
    });
    let o = starting_point();
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let probe = "gate.dns.www.example.com.probe";
    let switch = ids(&p)
        .into_iter()
        .find(|i| i.starts_with("dns.www.example.com.") && i.ends_with(".switch"))
        .expect("a switch");
    precedes(&p, probe, &switch);
    for before in ["gate.tg.app.healthy", "gate.dns.www.example.com.old-ttl"] {
        precedes(&p, before, probe);
    }
    let gate = p.nodes.iter().find(|n| n.id.to_string() == probe).unwrap();
    let NodeKind::Gate(Gate::Probe(reconcile::plan::Probe {
        path,
        expect,
        https,
        http,
        ..
    })) = &gate.kind
    else {
        panic!("{gate:?}")
    };
    assert_eq!(
        (path.as_str(), expect.as_slice()),
        ("/about/", &[200, 301][..])
    );
    assert_eq!((*https, *http), (Some(443), Some(80)));
    reconcile::plan::check::check(&d, &o, &p).expect("proven");
    // Without a probe, no such gate; and a record already on the load balancer is not
    // probed again.
    assert!(!ids(&plan_of(&desired(), &o)).contains(&probe.to_owned()));
    let after = run_in_order(&d, &o, &p);
    assert!(!ids(&plan_of(&d, &after)).contains(&probe.to_owned()));
    // Asked before the targets are healthy, it could not pass: the checker says so.
    let mut q = p.clone();
    q.edges.retain(|(_, to)| to.to_string() != probe);
    assert!(reconcile::plan::check::check(&d, &o, &q).is_err());
}

/// The walk never reports a plan done while one of its steps never started: a step whose
/// dependency is not in the plan is reported, by id and with what it waits on, as a bug.
#[test]
fn a_walk_that_leaves_a_step_unstarted_says_so() {
    use std::sync::Arc;
    let mut p = plan_of(&desired(), &starting_point());
    let switch = "dns.www.example.com.CNAME.switch";
    p.nodes.retain(|n| n.id.to_string() == switch);
    assert_eq!(p.nodes.len(), 1, "{:?}", ids(&p));
    struct Silent;
    impl reconcile::apply::Hooks for Silent {
        fn started(&self, _: &reconcile::plan::Node) {}
        fn finished(
            &self,
            _: &reconcile::plan::Node,
            _: &reconcile::apply::NodeEnd,
            _: std::time::Duration,
        ) {
        }
        fn failed(&self, _: &reconcile::plan::Node, _: &reconcile::apply::Error) {}
        fn waiting(
            &self,
            _: &reconcile::plan::Node,
            _: &str,
            _: std::time::Duration,
            _: Option<std::time::Duration>,
        ) {
        }
    }
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let clients = reconcile::aws::Clients::new(&config);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(reconcile::apply::run(
        &clients,
        &reconcile::aws::Meter::new(),
        &starting_point(),
        &p,
        &reconcile::apply::Options::default(),
        Arc::new(Silent),
    ));
    let Err(err) = out else {
        panic!("the walk ended done with a step never started");
    };
    let err = err.to_string();
    assert!(
        err.contains("1 of the plan's steps never started")
            && err.contains(switch)
            && err.contains("waiting on sg.backend.rules.add")
            && err.contains("gate.tg.app.healthy"),
        "{err}"
    );
}
